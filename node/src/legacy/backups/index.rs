//! The index of the legacy backups, a redb file (`<data>/legacy-backups.redb`):
//! video id → [`BackupEntry`], the video ids of each blob (so a blob still
//! used by another backup is never deleted), and the running total of
//! bytes held (so the capacity check never scans the entries). Every
//! change is one write transaction; redb's calls block, so each runs on
//! the blocking pool. Video ids are only ever keys here.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use redb::{
    Database, MultimapTableDefinition, ReadableDatabase, ReadableMultimapTable, ReadableTable,
    ReadableTableMetadata, TableDefinition,
};

use super::limits::{BackupError, CONTAINERS, Holding};
use super::names::quoted;

/// Video id → entry, in the layout of [`encode`].
const BACKUPS: TableDefinition<&str, &[u8]> = TableDefinition::new("legacy_backups");
/// Blob sha256 → the video ids whose bytes it holds.
const BY_BLOB: MultimapTableDefinition<&str, &str> =
    MultimapTableDefinition::new("legacy_backups_by_blob");
/// Running figures kept with the entries.
const FIGURES: TableDefinition<&str, u64> = TableDefinition::new("legacy_backups_figures");
const TOTAL_BYTES: &str = "total_bytes";

/// Layout version, the first byte of every encoded entry.
const LAYOUT: u8 = 1;
/// Version, sha256, size, container, time stored.
const ENTRY_LEN: usize = 1 + 32 + 8 + 1 + 8;

/// One backup in the index.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct BackupEntry {
    pub sha256: String,
    pub size: u64,
    pub container: String,
    pub stored_unix_ms: u64,
}

/// An index entry that cannot be written or read back.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BadEntry {
    #[error("{0} is not a sha256 digest")]
    Digest(String),
    #[error("unknown container {0}")]
    Container(String),
    #[error("an entry of {len} bytes, layout {layout:?}")]
    Layout { len: usize, layout: Option<u8> },
    #[error("unknown container number {0}")]
    ContainerNumber(u8),
}

/// Encodes an entry (pure): the digest as its 32 bytes, the container as
/// its place in [`CONTAINERS`], numbers little-endian. Anything that does
/// not fit (not a lowercase hex digest, an unknown container) is refused.
pub fn encode(entry: &BackupEntry) -> Result<[u8; ENTRY_LEN], BadEntry> {
    let digest = hex::decode(&entry.sha256)
        .ok()
        .filter(|d| d.len() == 32 && hex::encode(d) == entry.sha256)
        .ok_or_else(|| BadEntry::Digest(quoted(&entry.sha256)))?;
    let container = CONTAINERS
        .iter()
        .position(|c| *c == entry.container)
        .ok_or_else(|| BadEntry::Container(quoted(&entry.container)))?;
    let mut out = [0u8; ENTRY_LEN];
    out[0] = LAYOUT;
    out[1..33].copy_from_slice(&digest);
    out[33..41].copy_from_slice(&entry.size.to_le_bytes());
    out[41] = container as u8;
    out[42..50].copy_from_slice(&entry.stored_unix_ms.to_le_bytes());
    Ok(out)
}

/// Decodes what [`encode`] wrote (pure).
pub fn decode(bytes: &[u8]) -> Result<BackupEntry, BadEntry> {
    if bytes.len() != ENTRY_LEN || bytes[0] != LAYOUT {
        return Err(BadEntry::Layout {
            len: bytes.len(),
            layout: bytes.first().copied(),
        });
    }
    let number = |at: usize| u64::from_le_bytes(bytes[at..at + 8].try_into().unwrap_or_default());
    let container = CONTAINERS
        .get(bytes[41] as usize)
        .ok_or(BadEntry::ContainerNumber(bytes[41]))?;
    Ok(BackupEntry {
        sha256: hex::encode(&bytes[1..33]),
        size: number(33),
        container: (*container).to_string(),
        stored_unix_ms: number(42),
    })
}

/// A redb result as a [`BackupError`].
trait OrDb<T> {
    fn db(self) -> Result<T, BackupError>;
}

impl<T, E: Into<redb::Error>> OrDb<T> for Result<T, E> {
    fn db(self) -> Result<T, BackupError> {
        self.map_err(|e| BackupError::Db(e.into()))
    }
}

/// What recording a backup changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recorded {
    /// The entry of the same id it replaced.
    pub previous: Option<BackupEntry>,
    /// The replaced entry's blob, when no backup uses it any more.
    pub orphaned: Option<String>,
}

/// The open index. Callers serialise operations (see `LegacyBackups`).
#[derive(Debug, Clone)]
pub struct BackupIndex {
    db: Arc<Database>,
    path: PathBuf,
}

impl BackupIndex {
    /// Opens (creating) the index at `path` and its tables. A file that is
    /// not a redb index is an error naming it; it is left as it is.
    pub async fn open(path: PathBuf) -> Result<Self, BackupError> {
        let at = path.clone();
        let opened = tokio::task::spawn_blocking(move || {
            let db = Database::create(&at).map_err(|e| e.to_string())?;
            let created = || -> Result<(), redb::Error> {
                let txn = db.begin_write()?;
                txn.open_table(BACKUPS)?;
                txn.open_multimap_table(BY_BLOB)?;
                txn.open_table(FIGURES)?;
                txn.commit()?;
                Ok(())
            };
            created().map_err(|e| e.to_string())?;
            Ok::<_, String>(db)
        })
        .await
        .map_err(std::io::Error::other)?;
        match opened {
            Ok(db) => Ok(Self {
                db: Arc::new(db),
                path,
            }),
            Err(reason) => Err(BackupError::Index { path, reason }),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Runs `work` on the blocking pool.
    async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce(&Database, &Path) -> Result<T, BackupError> + Send + 'static,
    ) -> Result<T, BackupError> {
        let (db, path) = (self.db.clone(), self.path.clone());
        tokio::task::spawn_blocking(move || work(&db, &path))
            .await
            .map_err(std::io::Error::other)?
    }

    /// What the node holds, and the entry of `video_id` if there is one.
    pub async fn holding(
        &self,
        video_id: &str,
    ) -> Result<(Holding, Option<BackupEntry>), BackupError> {
        let id = video_id.to_string();
        self.run(move |db, path| {
            let txn = db.begin_read().db()?;
            let backups = txn.open_table(BACKUPS).db()?;
            let total_bytes = txn
                .open_table(FIGURES)
                .db()?
                .get(TOTAL_BYTES)
                .db()?
                .map_or(0, |v| v.value());
            let held = Holding {
                entries: backups.len().db()?,
                total_bytes,
            };
            let entry = match backups.get(id.as_str()).db()? {
                Some(bytes) => Some(decode(bytes.value()).map_err(|e| damaged(path, &id, e))?),
                None => None,
            };
            Ok((held, entry))
        })
        .await
    }

    /// Records `entry` as the backup `video_id`, replacing any earlier
    /// one, in one write transaction.
    pub async fn record(
        &self,
        video_id: &str,
        entry: BackupEntry,
    ) -> Result<Recorded, BackupError> {
        let id = video_id.to_string();
        self.run(move |db, path| {
            let txn = db.begin_write().db()?;
            let recorded = put(&txn, path, &id, &entry)?;
            txn.commit().db()?;
            Ok(recorded)
        })
        .await
    }

    /// Adds the `backups` whose ids it does not hold yet, in one write
    /// transaction (ids it holds keep their newer entry). Returns how
    /// many were added.
    pub async fn import(
        &self,
        backups: BTreeMap<String, BackupEntry>,
    ) -> Result<usize, BackupError> {
        self.run(move |db, path| {
            let txn = db.begin_write().db()?;
            let mut added = 0;
            for (id, entry) in &backups {
                if txn
                    .open_table(BACKUPS)
                    .db()?
                    .get(id.as_str())
                    .db()?
                    .is_none()
                {
                    put(&txn, path, id, entry)?;
                    added += 1;
                }
            }
            txn.commit().db()?;
            Ok(added)
        })
        .await
    }

    /// Whether any backup's bytes are blob `sha256`.
    pub async fn uses(&self, sha256: &str) -> Result<bool, BackupError> {
        let sha256 = sha256.to_string();
        self.run(move |db, _| {
            let txn = db.begin_read().db()?;
            let ids = txn.open_multimap_table(BY_BLOB).db()?;
            Ok(!ids.get(sha256.as_str()).db()?.is_empty())
        })
        .await
    }

    /// Every backup, by id.
    pub async fn entries(&self) -> Result<BTreeMap<String, BackupEntry>, BackupError> {
        self.run(|db, path| {
            let txn = db.begin_read().db()?;
            let mut all = BTreeMap::new();
            for item in txn.open_table(BACKUPS).db()?.iter().db()? {
                let (id, bytes) = item.db()?;
                let id = id.value().to_string();
                let entry = decode(bytes.value()).map_err(|e| damaged(path, &id, e))?;
                all.insert(id, entry);
            }
            Ok(all)
        })
        .await
    }
}

fn damaged(path: &Path, id: &str, reason: BadEntry) -> BackupError {
    BackupError::Index {
        path: path.to_path_buf(),
        reason: format!("the entry of {}: {reason}", quoted(id)),
    }
}

/// Writes one entry inside `txn`: the entry, its blob's ids, the total.
fn put(
    txn: &redb::WriteTransaction,
    path: &Path,
    id: &str,
    entry: &BackupEntry,
) -> Result<Recorded, BackupError> {
    let bytes = encode(entry).map_err(|e| damaged(path, id, e))?;
    let mut backups = txn.open_table(BACKUPS).db()?;
    let mut by_blob = txn.open_multimap_table(BY_BLOB).db()?;
    let mut figures = txn.open_table(FIGURES).db()?;
    let previous = match backups.insert(id, bytes.as_slice()).db()? {
        Some(old) => Some(decode(old.value()).map_err(|e| damaged(path, id, e))?),
        None => None,
    };
    let mut total = figures.get(TOTAL_BYTES).db()?.map_or(0, |v| v.value());
    if let Some(old) = &previous {
        by_blob.remove(old.sha256.as_str(), id).db()?;
        total = total.saturating_sub(old.size);
    }
    by_blob.insert(entry.sha256.as_str(), id).db()?;
    figures
        .insert(TOTAL_BYTES, total.saturating_add(entry.size))
        .db()?;
    let orphaned = match &previous {
        Some(old) if by_blob.get(old.sha256.as_str()).db()?.is_empty() => Some(old.sha256.clone()),
        _ => None,
    };
    Ok(Recorded { previous, orphaned })
}
