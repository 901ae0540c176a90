//! Backups this node keeps for original-protocol masters: what
//! `ReplicateVideo` stores and `RequestBackupData` hands back.
//!
//! [`LegacyBackups`] is opened once at start (`server.rs`) and shared by
//! the `NodeService` handler. It owns the index `<data>/legacy-backups.redb`
//! (video id → blob, size, container, time stored; see [`index`]) and the
//! blob store under `<data>/legacy-backups/` that holds the bytes. The
//! bytes live in their own [`BlobStore`], not the node's main one, because
//! the main store is content-addressed without reference counts and is
//! swept by our own jobs' garbage collection: a backup sharing a digest
//! with a job's blob could be deleted by the job, and a replaced backup
//! could delete a job's blob. Video ids from the network are only ever
//! index keys; no path is built from them (blob paths come from our own
//! hex digests).
//!
//! By concern: [`limits`] and [`names`] judge a request, [`reply`] chooses
//! what one reply carries (all pure, unit-tested without a node), [`disk`]
//! measures the room left on the disk, [`budget`] bounds the bytes of
//! replies in memory at once, [`index`] is the redb index and [`migrate`]
//! imports the JSON index of earlier versions.

pub mod budget;
pub mod disk;
pub mod index;
pub mod limits;
pub mod migrate;
pub mod names;
pub mod reply;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::path::Path;

use sha2::{Digest, Sha256};

use crate::store::{BlobRef, BlobStore, CHUNK};

pub use budget::{ReplyBudget, ReplyPermit};
pub use index::BackupEntry;
pub use limits::{BackupError, Limits, MAX_NODE_MESSAGE, check_capacity};
pub use names::{quoted, validate_request};
pub use reply::{HeldBackup, Reply};

use index::BackupIndex;
use reply::{oldest_first, reply_message, select_reply};

/// Index file name, directly under the data dir.
pub const INDEX_FILE: &str = "legacy-backups.redb";

/// Directory (under the data dir) of the blob store holding the bytes.
pub const BLOB_DIR: &str = "legacy-backups";

/// The outcome of a stored backup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stored {
    pub blob: BlobRef,
    pub container: &'static str,
    /// Whether an earlier backup of the same id was replaced.
    pub replaced: bool,
}

/// Milliseconds since the Unix epoch (0 if the clock is before it).
fn now_unix_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis().min(u64::MAX as u128) as u64)
        .unwrap_or(0)
}

/// The legacy backups of one data dir. Every operation holds `lock` from
/// reading the index to its last file operation, so a replaced blob can
/// never be removed while another request is recording or reading it.
/// `budget` is taken before a reply reads anything and never waited for
/// while `lock` is held, so a slow reader of a reply never holds up
/// `ReplicateVideo`.
#[derive(Debug)]
pub struct LegacyBackups {
    store: BlobStore,
    index: BackupIndex,
    limits: Limits,
    budget: ReplyBudget,
    lock: tokio::sync::Mutex<()>,
}

impl LegacyBackups {
    /// Opens (creating) the backups of `data_dir` with `limits`: clears
    /// leftovers of interrupted writes, opens the index and imports the
    /// JSON index of an earlier version if one is there. Errors name the
    /// file at fault. One open per data dir per process (redb locks the
    /// file).
    pub async fn open(data_dir: &Path, limits: Limits) -> Result<Self, BackupError> {
        let store = BlobStore::open(&data_dir.join(BLOB_DIR)).await?;
        let root = tokio::fs::canonicalize(data_dir).await?;
        // Checked before the index is created, so a broken one stops here.
        let old = migrate::read_json(&root, &store).await?;
        let index = BackupIndex::open(root.join(INDEX_FILE)).await?;
        if let Some(backups) = old {
            migrate::import(&root, &index, backups).await?;
        }
        Ok(Self {
            store,
            index,
            budget: ReplyBudget::new(&limits),
            limits,
            lock: tokio::sync::Mutex::new(()),
        })
    }

    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// The blob store holding the bytes.
    pub fn store(&self) -> &BlobStore {
        &self.store
    }

    /// The index file.
    pub fn index_path(&self) -> &Path {
        self.index.path()
    }

    /// Every backup held, by id.
    pub async fn entries(&self) -> Result<BTreeMap<String, BackupEntry>, BackupError> {
        let _guard = self.lock.lock().await;
        self.index.entries().await
    }

    /// The byte budget replies share.
    pub fn budget(&self) -> &ReplyBudget {
        &self.budget
    }

    /// Stores `data` as the backup `video_id` (replacing an earlier one of
    /// that id), after checking the request, the node's totals and the
    /// room left on the disk (measured now, under the lock, so two
    /// backups cannot both count the same free bytes).
    pub async fn replicate(
        &self,
        video_id: &str,
        container: &str,
        data: &[u8],
    ) -> Result<Stored, BackupError> {
        let size = data.len() as u64;
        let container = validate_request(video_id, container, size, &self.limits)?;
        let _guard = self.lock.lock().await;
        let (held, previous) = self.index.holding(video_id).await?;
        check_capacity(&held, previous.map(|e| e.size), size, &self.limits)?;
        let space = disk::space_of(self.store.root()).await?;
        disk::check_free_disk(space, size, &self.limits)?;
        let mut writer = self.store.writer().await?;
        for slice in data.chunks(CHUNK) {
            writer.write(slice).await?;
        }
        let blob = writer.finish().await?;
        let entry = BackupEntry {
            sha256: blob.sha256.clone(),
            size: blob.size,
            container: container.to_string(),
            stored_unix_ms: now_unix_ms(),
        };
        let recorded = match self.index.record(video_id, entry).await {
            Ok(recorded) => recorded,
            Err(e) => {
                // The index is as it was: drop the new blob unless a
                // recorded backup already uses it (when unsure, keep it).
                if let Ok(false) = self.index.uses(&blob.sha256).await {
                    let _ = self.store.remove(&blob.sha256).await;
                }
                return Err(e);
            }
        };
        if let Some(old) = &recorded.orphaned
            && let Err(e) = self.store.remove(old).await
        {
            tracing::warn!(video = %quoted(video_id), blob = %old, error = %e, "could not remove a replaced backup");
        }
        Ok(Stored {
            blob,
            container,
            replaced: recorded.previous.is_some(),
        })
    }

    /// Every backup that fits in one reply (oldest first), each read back
    /// and checked against its digest; at most `limits.reply_files` bytes
    /// are loaded, and only once the reply's bytes are taken out of the
    /// node's reply budget (the returned [`Reply::permit`]: keep it until
    /// the reply has been sent). Waits for the budget without the lock,
    /// then chooses again: backups may have come or gone meanwhile.
    pub async fn collect_for_reply(&self) -> Result<Reply, BackupError> {
        let mut granted: Option<ReplyPermit> = None;
        loop {
            let guard = self.lock.lock().await;
            let backups = self.index.entries().await?;
            let entries = oldest_first(&backups);
            let selection = select_reply(&entries, self.limits.reply_files);
            // A permit waited for still serves if the choice did not grow;
            // else it is given back before asking again.
            let permit = granted
                .take()
                .filter(|p| self.budget.covers(p, selection.wire_bytes))
                .or_else(|| self.budget.try_take(selection.wire_bytes));
            let Some(permit) = permit else {
                drop(guard);
                granted = Some(self.budget.take(selection.wire_bytes).await?);
                continue;
            };
            let (files, message) = self.read_selection(&entries, &selection).await;
            return Ok(Reply {
                files,
                message,
                permit,
            });
        }
    }

    /// Reads the chosen backups (the caller holds the lock) and words the
    /// reply's message.
    async fn read_selection(
        &self,
        entries: &[(&str, &BackupEntry)],
        selection: &reply::Selection,
    ) -> (Vec<HeldBackup>, String) {
        let mut files = Vec::with_capacity(selection.chosen.len());
        let mut unreadable = Vec::new();
        let mut data_bytes = 0u64;
        for &i in &selection.chosen {
            let (id, entry) = entries[i];
            match self.read_verified(entry).await {
                Ok(data) => {
                    data_bytes += data.len() as u64;
                    files.push(HeldBackup {
                        video_id: id.to_string(),
                        container: entry.container.clone(),
                        data,
                    });
                }
                Err(reason) => {
                    tracing::warn!(video = %quoted(id), blob = %entry.sha256, %reason, "a legacy backup is unreadable");
                    unreadable.push((id, reason));
                }
            }
        }
        let returned: Vec<&str> = files.iter().map(|f| f.video_id.as_str()).collect();
        let too_big: Vec<&str> = selection.left_out.iter().map(|&i| entries[i].0).collect();
        let message = reply_message(entries.len(), &returned, data_bytes, &too_big, &unreadable);
        (files, message)
    }

    /// Reads a backup's bytes, never more than its recorded size, and
    /// checks them against its digest.
    async fn read_verified(&self, entry: &BackupEntry) -> Result<Vec<u8>, String> {
        let path = self.store.path(&entry.sha256).map_err(|e| e.to_string())?;
        let (size, sha256) = (entry.size, entry.sha256.clone());
        tokio::task::spawn_blocking(move || -> Result<Vec<u8>, String> {
            use std::io::Read;
            let file = std::fs::File::open(&path).map_err(|e| format!("opening the blob: {e}"))?;
            let on_disk = file
                .metadata()
                .map_err(|e| format!("reading the blob: {e}"))?
                .len();
            if on_disk != size {
                return Err(format!("the blob is {on_disk} bytes, {size} recorded"));
            }
            let capacity = usize::try_from(size).map_err(|e| e.to_string())?;
            let mut data = Vec::with_capacity(capacity);
            file.take(size)
                .read_to_end(&mut data)
                .map_err(|e| format!("reading the blob: {e}"))?;
            let actual = hex::encode(Sha256::digest(&data));
            if data.len() as u64 != size || actual != sha256 {
                return Err(format!("the blob's content hashes to {actual}"));
            }
            Ok(data)
        })
        .await
        .map_err(|e| format!("reading the blob: {e}"))?
    }
}
