//! Backups this node keeps for original-protocol masters: what
//! `ReplicateVideo` stores and `RequestBackupData` hands back.
//!
//! This module owns `<data>/legacy-backups.json` (the index: video id →
//! blob, size, container, time stored) and the blob store under
//! `<data>/legacy-backups/` that holds the bytes. The bytes live in their
//! own [`BlobStore`], not the node's main one, because the main store is
//! content-addressed without reference counts and is swept by our own
//! jobs' garbage collection: a backup sharing a digest with a job's blob
//! could be deleted by the job, and a replaced backup could delete a job's
//! blob. Video ids from the network are only ever JSON keys; no path is
//! built from them (blob paths come from our own hex digests).
//!
//! Validation, capacity checks and the choice of what fits in one reply
//! are pure functions, so the bounds are unit-tested without a node.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;

use super::{BlobRef, BlobStore, CHUNK, StoreError};

const KIB: u64 = 1 << 10;
const MIB: u64 = 1 << 20;
const GIB: u64 = 1 << 30;

/// Largest message `replication.NodeService` decodes. Original masters
/// send a whole video in one `ReplicateVideo` message, so this matches the
/// 1 GiB the original `WorkerService` accepts for a whole shard.
pub const MAX_NODE_MESSAGE: usize = 1 << 30;

/// Largest whole `RequestBackupDataResponse` we send. The original peer
/// decodes the reply in one message, so it stays within the same 1 GiB.
pub const MAX_REPLY: u64 = GIB;

/// Part of [`MAX_REPLY`] kept for the reply's `success` and `message`
/// fields; the backups themselves get the rest.
const REPLY_HEADROOM: u64 = 64 * KIB;

/// Longest `message` of a reply (names of left-out backups are cut off
/// before this), well inside [`REPLY_HEADROOM`].
const MAX_REPLY_MESSAGE: usize = 16 * 1024;

/// Largest video accepted as a backup: below [`MAX_REPLY`] by enough
/// that every backup we accept can be handed back on its own, names and
/// framing included.
pub const MAX_BACKUP_VIDEO: u64 = GIB - 128 * KIB;

/// Total bytes of legacy backups one node keeps; more is refused so that
/// original masters cannot fill the disk the node needs for encoding.
pub const MAX_TOTAL: u64 = 64 * GIB;

/// Most backups one node keeps (bounds the index to a few tens of MB).
pub const MAX_ENTRIES: usize = 100_000;

/// Largest index file we parse; a bigger one is not ours.
const MAX_INDEX_FILE: u64 = 64 * MIB;

/// Longest video id (bytes), as for the original's shard ids.
pub const MAX_VIDEO_ID: usize = 255;

/// Containers the original protocol knows.
pub const CONTAINERS: [&str; 4] = ["mp4", "mkv", "webm", "mov"];

/// Index file name, directly under the data dir.
pub const INDEX_FILE: &str = "legacy-backups.json";

/// Directory (under the data dir) of the blob store holding the bytes.
pub const BLOB_DIR: &str = "legacy-backups";

const INDEX_VERSION: u32 = 1;

#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    #[error("refused: {0}")]
    BadId(String),
    #[error("refused: container {0} is not one of mp4, mkv, webm, mov")]
    BadContainer(String),
    #[error("refused: video_data is empty")]
    Empty,
    #[error(
        "refused: the video is {size} bytes, more than the {} ({limit} bytes) allowed for one backup",
        human(*limit)
    )]
    TooLarge { size: u64, limit: u64 },
    #[error(
        "refused: storing {size} more bytes would bring this node's legacy backups to {} ({total} bytes), over its {} per-node total",
        human(*total),
        human(*limit)
    )]
    OverTotal { size: u64, total: u64, limit: u64 },
    #[error("refused: this node already holds the {limit} legacy backups it keeps at most")]
    TooMany { limit: usize },
    #[error("the backup index {path} is unusable (left as it is): {reason}")]
    Index { path: PathBuf, reason: String },
    #[error("encoding the backup index: {0}")]
    Json(#[from] serde_json::Error),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("storage i/o error: {0}")]
    Io(#[from] std::io::Error),
}

/// The bounds one [`LegacyBackups`] enforces (the constants above in
/// production; tests use small ones).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub max_video: u64,
    pub max_total: u64,
    pub max_entries: usize,
    /// Bytes of encoded `BackupFile`s one reply may carry.
    pub reply_files: u64,
}

impl Limits {
    pub const DEFAULT: Limits = Limits {
        max_video: MAX_BACKUP_VIDEO,
        max_total: MAX_TOTAL,
        max_entries: MAX_ENTRIES,
        reply_files: MAX_REPLY - REPLY_HEADROOM,
    };
}

/// One backup in the index.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct BackupEntry {
    pub sha256: String,
    pub size: u64,
    pub container: String,
    pub stored_unix_ms: u64,
}

/// The durable index, as stored in [`INDEX_FILE`].
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Index {
    pub version: u32,
    pub backups: BTreeMap<String, BackupEntry>,
}

impl Index {
    /// Bytes held by every backup except `except` (the one being replaced).
    pub fn total_except(&self, except: &str) -> u64 {
        self.backups
            .iter()
            .filter(|(id, _)| id.as_str() != except)
            .fold(0u64, |sum, (_, e)| sum.saturating_add(e.size))
    }

    /// Whether any backup's bytes are blob `sha256`.
    pub fn uses(&self, sha256: &str) -> bool {
        self.backups.values().any(|e| e.sha256 == sha256)
    }

    /// Backups oldest first (ties by id), the order replies fill in.
    pub fn oldest_first(&self) -> Vec<(&str, &BackupEntry)> {
        let mut all: Vec<(&str, &BackupEntry)> = self
            .backups
            .iter()
            .map(|(id, e)| (id.as_str(), e))
            .collect();
        all.sort_by(|a, b| {
            a.1.stored_unix_ms
                .cmp(&b.1.stored_unix_ms)
                .then(a.0.cmp(b.0))
        });
        all
    }
}

/// A network string for a message or log line: quoted and escaped
/// (control characters cannot reach a terminal), cut to 64 characters.
pub fn quoted(s: &str) -> String {
    let mut cut: String = s.chars().take(64).collect();
    if cut.len() < s.len() {
        cut.push('…');
    }
    format!("{cut:?}")
}

/// Why `video_id` cannot name a backup (pure). Although it never builds a
/// path, names that look like paths or hide characters are refused, so
/// an original master gets a clear answer instead of a surprise later.
pub fn validate_video_id(video_id: &str) -> Result<(), String> {
    let shown = quoted(video_id);
    if video_id.trim().is_empty() {
        return Err(format!("video_id {shown} is empty"));
    }
    if video_id.len() > MAX_VIDEO_ID {
        return Err(format!(
            "video_id is {} bytes, more than the {MAX_VIDEO_ID} allowed",
            video_id.len()
        ));
    }
    if video_id.contains('\0') {
        return Err(format!("video_id {shown} contains a NUL byte"));
    }
    if video_id.chars().any(char::is_control) {
        return Err(format!("video_id {shown} contains a control character"));
    }
    if video_id.contains(['/', '\\']) {
        return Err(format!(
            "video_id {shown} contains a path separator ('/' or '\\')"
        ));
    }
    if video_id == "." || video_id == ".." {
        return Err(format!("video_id {shown} is not a name"));
    }
    if video_id.starts_with('.') {
        return Err(format!("video_id {shown} starts with '.'"));
    }
    Ok(())
}

/// The container to record (pure): `container` if it is one of
/// [`CONTAINERS`] (any case); when empty, the video id's extension if it
/// is one, else mp4.
pub fn resolve_container(container: &str, video_id: &str) -> Result<&'static str, BackupError> {
    let known = |name: &str| {
        CONTAINERS
            .iter()
            .copied()
            .find(|c| c.eq_ignore_ascii_case(name))
    };
    let wanted = container.trim();
    if wanted.is_empty() {
        let from_id = video_id.rsplit_once('.').and_then(|(_, ext)| known(ext));
        return Ok(from_id.unwrap_or("mp4"));
    }
    known(wanted).ok_or_else(|| BackupError::BadContainer(quoted(container)))
}

/// Everything about a `ReplicateVideo` request that can be judged without
/// the disk (pure): the id, the container (returned) and the size.
pub fn validate_request(
    video_id: &str,
    container: &str,
    size: u64,
    limits: &Limits,
) -> Result<&'static str, BackupError> {
    validate_video_id(video_id).map_err(BackupError::BadId)?;
    let container = resolve_container(container, video_id)?;
    if size == 0 {
        return Err(BackupError::Empty);
    }
    if size > limits.max_video {
        return Err(BackupError::TooLarge {
            size,
            limit: limits.max_video,
        });
    }
    Ok(container)
}

/// Whether storing `size` bytes as `video_id` keeps the node within its
/// totals (pure). Replacing a backup frees the old one's bytes first.
pub fn check_capacity(
    index: &Index,
    video_id: &str,
    size: u64,
    limits: &Limits,
) -> Result<(), BackupError> {
    if !index.backups.contains_key(video_id) && index.backups.len() >= limits.max_entries {
        return Err(BackupError::TooMany {
            limit: limits.max_entries,
        });
    }
    let total = index.total_except(video_id).saturating_add(size);
    if total > limits.max_total {
        return Err(BackupError::OverTotal {
            size,
            total,
            limit: limits.max_total,
        });
    }
    Ok(())
}

/// Bytes a protobuf varint of `value` takes.
fn varint_len(value: u64) -> u64 {
    prost::encoding::encoded_len_varint(value) as u64
}

/// Bytes a non-empty length-delimited field of `len` bytes takes (every
/// field number here is below 16, so its key is one byte). Saturates, so
/// an absurd size from a damaged index is simply too big, never a panic.
fn field_len(len: u64) -> u64 {
    if len == 0 {
        0
    } else {
        len.saturating_add(1 + varint_len(len))
    }
}

/// Exact bytes one backup adds to a `RequestBackupDataResponse`: the
/// `backup_files` key and length around a `BackupFile` with `video_id`,
/// `file_data`, `container` and `filename` (= video id). Pure.
pub fn backup_file_wire_len(video_id: &str, container: &str, size: u64) -> u64 {
    let id = video_id.len() as u64;
    let inner = [
        field_len(id),
        field_len(size),
        field_len(container.len() as u64),
        field_len(id),
    ]
    .iter()
    .fold(0u64, |sum, len| sum.saturating_add(*len));
    inner.saturating_add(1 + varint_len(inner))
}

/// What goes into one reply: indexes into the oldest-first list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Selection {
    pub chosen: Vec<usize>,
    pub left_out: Vec<usize>,
    /// Encoded bytes of the chosen backups.
    pub wire_bytes: u64,
}

/// Picks the backups one reply carries (pure): in the given order
/// (oldest first), each that still fits in `budget` encoded bytes; the
/// others are left out. Nothing is read, so nothing beyond the budget is
/// ever loaded.
pub fn select_reply(entries: &[(&str, &BackupEntry)], budget: u64) -> Selection {
    let mut selection = Selection::default();
    for (i, (id, entry)) in entries.iter().enumerate() {
        let len = backup_file_wire_len(id, &entry.container, entry.size);
        match selection.wire_bytes.checked_add(len) {
            Some(total) if total <= budget => {
                selection.wire_bytes = total;
                selection.chosen.push(i);
            }
            _ => selection.left_out.push(i),
        }
    }
    selection
}

/// A byte count for people: "64 GiB", "3.0 MiB", "512 bytes".
pub fn human(bytes: u64) -> String {
    for (unit, name) in [(GIB, "GiB"), (MIB, "MiB"), (KIB, "KiB")] {
        if bytes >= unit {
            return if bytes.is_multiple_of(unit) {
                format!("{} {name}", bytes / unit)
            } else {
                format!("{:.1} {name}", bytes as f64 / unit as f64)
            };
        }
    }
    format!("{bytes} bytes")
}

/// Quoted names, comma-separated, cut off (with a count of the rest)
/// before `room` bytes.
fn name_list<'a>(names: impl ExactSizeIterator<Item = &'a str>, room: usize) -> String {
    let total = names.len();
    let mut out = String::new();
    for (shown, name) in names.enumerate() {
        let item = quoted(name);
        if out.len() + item.len() + 2 > room {
            out.push_str(&format!(" … and {} more", total - shown));
            break;
        }
        if shown > 0 {
            out.push_str(", ");
        }
        out.push_str(&item);
    }
    out
}

/// A backup read back for a reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeldBackup {
    pub video_id: String,
    pub container: String,
    pub data: Vec<u8>,
}

/// Backups for one `RequestBackupData` reply and the message saying what
/// was left out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub files: Vec<HeldBackup>,
    pub message: String,
}

/// The outcome of a stored backup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stored {
    pub blob: BlobRef,
    pub container: &'static str,
    /// Whether an earlier backup of the same id was replaced.
    pub replaced: bool,
}

/// The reply message (pure): how many of how many backups, their bytes,
/// and which were left out and why.
pub fn reply_message(
    held: usize,
    returned: &[&str],
    data_bytes: u64,
    too_big: &[&str],
    unreadable: &[(&str, String)],
) -> String {
    if held == 0 {
        return "no backups held".into();
    }
    let mut message = if returned.len() == held {
        format!("returned all {held} backups ({})", human(data_bytes))
    } else {
        format!(
            "returned {} of {held} backups ({})",
            returned.len(),
            human(data_bytes)
        )
    };
    if !too_big.is_empty() {
        message.push_str(&format!(
            "; the rest exceed the {} reply limit: {}",
            human(MAX_REPLY),
            name_list(too_big.iter().copied(), MAX_REPLY_MESSAGE / 2)
        ));
    }
    if !unreadable.is_empty() {
        let first = unreadable
            .first()
            .map(|(_, why)| why.as_str())
            .unwrap_or("");
        message.push_str(&format!(
            "; unreadable here, not returned: {} (first reason: {})",
            name_list(unreadable.iter().map(|(id, _)| *id), MAX_REPLY_MESSAGE / 4),
            first.chars().take(512).collect::<String>()
        ));
    }
    message
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
#[derive(Debug)]
pub struct LegacyBackups {
    store: BlobStore,
    index_path: PathBuf,
    limits: Limits,
    lock: tokio::sync::Mutex<()>,
}

/// One [`LegacyBackups`] per data dir in this process. The `NodeService`
/// handler has no slot of its own for it (its context is shared with the
/// whole node), so it is opened on first use and kept here.
static OPENED: tokio::sync::Mutex<BTreeMap<PathBuf, Arc<LegacyBackups>>> =
    tokio::sync::Mutex::const_new(BTreeMap::new());

impl LegacyBackups {
    /// Opens (creating) the backups of `data_dir` with `limits`; clears
    /// leftovers of interrupted writes.
    pub async fn open(data_dir: &Path, limits: Limits) -> Result<Self, BackupError> {
        let store = BlobStore::open(&data_dir.join(BLOB_DIR)).await?;
        let root = tokio::fs::canonicalize(data_dir).await?;
        Ok(Self {
            store,
            index_path: root.join(INDEX_FILE),
            limits,
            lock: tokio::sync::Mutex::new(()),
        })
    }

    /// The process-wide instance for `data_dir`, with [`Limits::DEFAULT`].
    pub async fn shared(data_dir: &Path) -> Result<Arc<Self>, BackupError> {
        let mut opened = OPENED.lock().await;
        if let Some(found) = opened.get(data_dir) {
            return Ok(found.clone());
        }
        let backups = Arc::new(Self::open(data_dir, Limits::DEFAULT).await?);
        opened.insert(data_dir.to_path_buf(), backups.clone());
        Ok(backups)
    }

    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// The blob store holding the bytes.
    pub fn store(&self) -> &BlobStore {
        &self.store
    }

    fn index_error(&self, reason: impl Into<String>) -> BackupError {
        BackupError::Index {
            path: self.index_path.clone(),
            reason: reason.into(),
        }
    }

    /// Reads the index (none yet is an empty one). A file that is too big,
    /// not our JSON, or names something we would refuse is an error, never
    /// silently replaced: it may hold the only record of someone's backups.
    pub async fn load(&self) -> Result<Index, BackupError> {
        let meta = match tokio::fs::metadata(&self.index_path).await {
            Ok(m) => m,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Ok(Index {
                    version: INDEX_VERSION,
                    backups: BTreeMap::new(),
                });
            }
            Err(e) => return Err(e.into()),
        };
        if meta.len() > MAX_INDEX_FILE {
            return Err(self.index_error(format!(
                "{} bytes, more than the {} an index may be",
                meta.len(),
                human(MAX_INDEX_FILE)
            )));
        }
        let bytes = tokio::fs::read(&self.index_path).await?;
        let index: Index =
            serde_json::from_slice(&bytes).map_err(|e| self.index_error(e.to_string()))?;
        if index.version != INDEX_VERSION {
            return Err(self.index_error(format!("unknown version {}", index.version)));
        }
        for (id, entry) in &index.backups {
            validate_video_id(id).map_err(|e| self.index_error(e))?;
            resolve_container(&entry.container, id).map_err(|e| self.index_error(e.to_string()))?;
            self.store
                .path(&entry.sha256)
                .map_err(|e| self.index_error(e.to_string()))?;
        }
        Ok(index)
    }

    /// Writes the index atomically: temp file, fsync, rename, fsync dir.
    async fn save(&self, index: &Index) -> Result<(), BackupError> {
        let json = serde_json::to_vec_pretty(index)?;
        let temp = self.index_path.with_extension("json.tmp");
        let written = async {
            let mut file = tokio::fs::File::create(&temp).await?;
            file.write_all(&json).await?;
            file.flush().await?;
            file.sync_all().await?;
            drop(file);
            tokio::fs::rename(&temp, &self.index_path).await?;
            if let Some(dir) = self.index_path.parent().map(Path::to_path_buf) {
                tokio::task::spawn_blocking(move || {
                    std::fs::File::open(&dir).and_then(|d| d.sync_all())
                })
                .await
                .map_err(std::io::Error::other)??;
            }
            Ok::<(), std::io::Error>(())
        }
        .await;
        if written.is_err() {
            let _ = tokio::fs::remove_file(&temp).await;
        }
        written.map_err(BackupError::from)
    }

    /// Stores `data` as the backup `video_id` (replacing an earlier one of
    /// that id), after checking the request and the node's totals.
    pub async fn replicate(
        &self,
        video_id: &str,
        container: &str,
        data: &[u8],
    ) -> Result<Stored, BackupError> {
        let container = validate_request(video_id, container, data.len() as u64, &self.limits)?;
        let _guard = self.lock.lock().await;
        let mut index = self.load().await?;
        check_capacity(&index, video_id, data.len() as u64, &self.limits)?;
        let mut writer = self.store.writer().await?;
        for slice in data.chunks(CHUNK) {
            writer.write(slice).await?;
        }
        let blob = writer.finish().await?;
        let before = index.clone();
        let previous = index.backups.insert(
            video_id.to_string(),
            BackupEntry {
                sha256: blob.sha256.clone(),
                size: blob.size,
                container: container.to_string(),
                stored_unix_ms: now_unix_ms(),
            },
        );
        if let Err(e) = self.save(&index).await {
            // The index on disk is still `before`: drop the new blob
            // unless it already belonged to a recorded backup.
            if !before.uses(&blob.sha256) {
                let _ = self.store.remove(&blob.sha256).await;
            }
            return Err(e);
        }
        if let Some(old) = &previous
            && !index.uses(&old.sha256)
            && let Err(e) = self.store.remove(&old.sha256).await
        {
            tracing::warn!(video = %quoted(video_id), blob = %old.sha256, error = %e, "could not remove a replaced backup");
        }
        Ok(Stored {
            blob,
            container,
            replaced: previous.is_some(),
        })
    }

    /// Every backup that fits in one reply (oldest first), each read back
    /// and checked against its digest; at most `limits.reply_files` bytes
    /// are loaded.
    pub async fn collect_for_reply(&self) -> Result<Reply, BackupError> {
        let _guard = self.lock.lock().await;
        let index = self.load().await?;
        let entries = index.oldest_first();
        let selection = select_reply(&entries, self.limits.reply_files);
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
        Ok(Reply { files, message })
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

#[cfg(test)]
mod tests {
    use super::*;
    use prost::Message;
    use vidshard_proto::replication::{BackupFile, RequestBackupDataResponse};

    fn entry(size: u64, at: u64) -> BackupEntry {
        BackupEntry {
            sha256: "a".repeat(64),
            size,
            container: "mp4".into(),
            stored_unix_ms: at,
        }
    }

    fn small(max_total: u64, reply_files: u64) -> Limits {
        Limits {
            max_video: 1000,
            max_total,
            max_entries: 3,
            reply_files,
        }
    }

    #[test]
    fn hostile_ids_are_refused_with_a_reason() {
        for (evil, why) in [
            ("../../x", "path separator"),
            ("/etc/passwd", "path separator"),
            ("a/b", "path separator"),
            ("a\\b", "path separator"),
            ("", "empty"),
            ("   ", "empty"),
            (".", "not a name"),
            ("..", "not a name"),
            (".hidden", "starts with '.'"),
            ("a\0b", "NUL"),
            ("a\nb", "control character"),
            ("a\u{1b}[2Jb", "control character"),
        ] {
            let reason = validate_video_id(evil).expect_err(evil);
            assert!(reason.contains(why), "{evil:?}: {reason}");
            assert!(!reason.contains('\0') && !reason.contains('\n'), "{reason}");
        }
        let long = "v".repeat(MAX_VIDEO_ID + 1);
        assert!(
            validate_video_id(&long)
                .expect_err("long")
                .contains("256 bytes")
        );
    }

    #[test]
    fn ordinary_ids_pass() {
        for ok in [
            "clip.mp4",
            "My Video (2).mkv",
            "vidéo-1",
            "a..b",
            &"v".repeat(MAX_VIDEO_ID),
        ] {
            assert_eq!(validate_video_id(ok), Ok(()), "{ok}");
        }
    }

    #[test]
    fn containers_are_checked_or_derived() {
        assert_eq!(resolve_container("mkv", "x.mp4").ok(), Some("mkv"));
        assert_eq!(resolve_container(" WebM ", "x").ok(), Some("webm"));
        assert_eq!(resolve_container("", "clip.MOV").ok(), Some("mov"));
        assert_eq!(resolve_container("", "clip.avi").ok(), Some("mp4"));
        assert_eq!(resolve_container("", "clip").ok(), Some("mp4"));
        let refused = resolve_container("avi", "clip.mp4").expect_err("avi");
        assert!(
            refused.to_string().contains("mp4, mkv, webm, mov"),
            "{refused}"
        );
        assert!(resolve_container("../mp4", "x").is_err());
    }

    #[test]
    fn requests_are_bounded() {
        let limits = small(10_000, 10_000);
        assert_eq!(validate_request("v.mkv", "", 10, &limits).ok(), Some("mkv"));
        assert!(matches!(
            validate_request("v", "", 0, &limits),
            Err(BackupError::Empty)
        ));
        let big = validate_request("v", "", 1001, &limits).expect_err("too big");
        assert!(matches!(
            big,
            BackupError::TooLarge {
                size: 1001,
                limit: 1000
            }
        ));
        assert!(matches!(
            validate_request("../x", "mp4", 10, &limits),
            Err(BackupError::BadId(_))
        ));
        let max = validate_request("v", "", MAX_BACKUP_VIDEO + 1, &Limits::DEFAULT)
            .expect_err("over the default");
        assert!(max.to_string().contains("1023.9 MiB"), "{max}");
    }

    #[test]
    fn the_per_node_total_counts_replacements_once() {
        let limits = small(100, 1000);
        let mut index = Index::default();
        index.backups.insert("a".into(), entry(60, 1));
        assert!(check_capacity(&index, "b", 40, &limits).is_ok());
        let over = check_capacity(&index, "b", 41, &limits).expect_err("over");
        assert!(
            matches!(
                over,
                BackupError::OverTotal {
                    total: 101,
                    limit: 100,
                    ..
                }
            ),
            "{over}"
        );
        assert!(over.to_string().contains("per-node total"), "{over}");
        // Replacing "a" frees its 60 bytes first.
        assert!(check_capacity(&index, "a", 100, &limits).is_ok());
        let default_msg = BackupError::OverTotal {
            size: 1,
            total: MAX_TOTAL + 1,
            limit: MAX_TOTAL,
        }
        .to_string();
        assert!(
            default_msg.contains("64 GiB per-node total"),
            "{default_msg}"
        );
        index.backups.insert("b".into(), entry(1, 2));
        index.backups.insert("c".into(), entry(1, 3));
        assert!(matches!(
            check_capacity(&index, "d", 1, &limits),
            Err(BackupError::TooMany { limit: 3 })
        ));
        assert!(check_capacity(&index, "c", 1, &limits).is_ok());
    }

    #[test]
    fn wire_length_is_exact() {
        for (id, container, size) in [
            ("v", "mp4", 1u64),
            ("clip.webm", "webm", 300),
            (&*"x".repeat(255), "mov", 70_000),
        ] {
            let file = BackupFile {
                video_id: id.into(),
                file_data: vec![0; size as usize],
                container: container.into(),
                filename: id.into(),
            };
            let reply = RequestBackupDataResponse {
                success: false,
                message: String::new(),
                backup_files: vec![file],
            };
            assert_eq!(
                backup_file_wire_len(id, container, size),
                reply.encoded_len() as u64,
                "{id}"
            );
        }
    }

    #[test]
    fn every_accepted_backup_fits_in_a_reply_alone() {
        let worst = backup_file_wire_len(&"x".repeat(MAX_VIDEO_ID), "webm", MAX_BACKUP_VIDEO);
        assert!(worst <= Limits::DEFAULT.reply_files);
        // `success` and the longest `message` fit in the headroom.
        assert!(2 + field_len(MAX_REPLY_MESSAGE as u64) <= REPLY_HEADROOM);
        assert_eq!(Limits::DEFAULT.reply_files + REPLY_HEADROOM, MAX_REPLY);
        assert!(MAX_REPLY <= MAX_NODE_MESSAGE as u64);
    }

    #[test]
    fn selection_is_oldest_first_and_never_over_budget() {
        let mut index = Index::default();
        index.backups.insert("v3".into(), entry(500, 3));
        index.backups.insert("v1".into(), entry(400, 1));
        index.backups.insert("v2".into(), entry(400, 2));
        index.backups.insert("v4".into(), entry(50, 4));
        let entries = index.oldest_first();
        let ids: Vec<&str> = entries.iter().map(|e| e.0).collect();
        assert_eq!(ids, ["v1", "v2", "v3", "v4"]);
        let budget = 1000;
        let s = select_reply(&entries, budget);
        assert_eq!(s.chosen, [0, 1, 3], "v3 does not fit, the smaller v4 does");
        assert_eq!(s.left_out, [2]);
        assert!(s.wire_bytes <= budget);
        assert_eq!(
            s.wire_bytes,
            [0, 1, 3]
                .iter()
                .map(|&i| backup_file_wire_len(entries[i].0, "mp4", entries[i].1.size))
                .sum::<u64>()
        );
        assert_eq!(select_reply(&entries, 10).chosen, Vec::<usize>::new());
        assert_eq!(select_reply(&[], 10), Selection::default());
        let huge = entry(u64::MAX - 10, 9);
        let s = select_reply(&[("a", &entry(5, 1)), ("b", &huge)], u64::MAX);
        assert_eq!((s.chosen, s.left_out), (vec![0], vec![1]));
    }

    #[test]
    fn messages_say_what_was_left_out() {
        assert_eq!(reply_message(0, &[], 0, &[], &[]), "no backups held");
        assert_eq!(
            reply_message(2, &["a", "b"], 3 * MIB, &[], &[]),
            "returned all 2 backups (3 MiB)"
        );
        let m = reply_message(5, &["v1", "v2", "v3"], 1288490189, &["v4", "v5"], &[]);
        assert_eq!(
            m,
            "returned 3 of 5 backups (1.2 GiB); the rest exceed the 1 GiB reply limit: \"v4\", \"v5\""
        );
        let many: Vec<String> = (0..5000).map(|i| format!("video-{i}")).collect();
        let many: Vec<&str> = many.iter().map(String::as_str).collect();
        let m = reply_message(5001, &["x"], 1, &many, &[("bad", "gone".into())]);
        assert!(m.len() <= MAX_REPLY_MESSAGE, "{}", m.len());
        assert!(m.contains("more"), "{m}");
        assert!(m.contains("unreadable here, not returned: \"bad\" (first reason: gone)"));
    }

    #[test]
    fn quoting_escapes_and_cuts() {
        assert_eq!(quoted("a\nb"), "\"a\\nb\"");
        assert_eq!(quoted(&"y".repeat(100)).chars().count(), 64 + 3);
    }

    #[test]
    fn human_sizes() {
        assert_eq!(human(MAX_TOTAL), "64 GiB");
        assert_eq!(human(3 * MIB + MIB / 2), "3.5 MiB");
        assert_eq!(human(512), "512 bytes");
    }

    async fn blob_files(backups: &LegacyBackups) -> usize {
        let mut count = 0;
        let mut dirs = tokio::fs::read_dir(backups.store().root().join("blobs"))
            .await
            .expect("blobs");
        while let Some(dir) = dirs.next_entry().await.expect("dir") {
            let mut files = tokio::fs::read_dir(dir.path()).await.expect("fan-out");
            while files.next_entry().await.expect("file").is_some() {
                count += 1;
            }
        }
        count
    }

    #[tokio::test]
    async fn replicate_replace_and_read_back() {
        let dir = tempfile::tempdir().expect("tempdir");
        let backups = LegacyBackups::open(dir.path(), small(10_000, 10_000))
            .await
            .expect("open");
        let tick = || tokio::time::sleep(std::time::Duration::from_millis(3));
        let first = backups.replicate("a.mkv", "", b"first").await.expect("a");
        assert_eq!((first.container, first.replaced), ("mkv", false));
        tick().await;
        backups.replicate("b", "mov", b"shared").await.expect("b");
        tick().await;
        backups.replicate("c", "", b"shared").await.expect("c");
        assert_eq!(blob_files(&backups).await, 2, "b and c share a blob");
        // Replacing b keeps the blob c still uses; replacing a drops its old one.
        tick().await;
        let again = backups
            .replicate("b", "mov", b"second b")
            .await
            .expect("b2");
        assert!(again.replaced);
        tick().await;
        backups
            .replicate("a.mkv", "", b"second a")
            .await
            .expect("a2");
        assert_eq!(blob_files(&backups).await, 3);
        let index: Index = serde_json::from_slice(
            &tokio::fs::read(dir.path().join(INDEX_FILE))
                .await
                .expect("index"),
        )
        .expect("json");
        assert_eq!(index.backups.len(), 3);
        assert_eq!(index.backups["a.mkv"].size, 8);

        let reply = backups.collect_for_reply().await.expect("reply");
        let got: Vec<(&str, &str, &[u8])> = reply
            .files
            .iter()
            .map(|f| (f.video_id.as_str(), f.container.as_str(), f.data.as_slice()))
            .collect();
        assert_eq!(
            got,
            [
                ("c", "mp4", &b"shared"[..]),
                ("b", "mov", b"second b"),
                ("a.mkv", "mkv", b"second a"),
            ]
        );
        assert_eq!(reply.message, "returned all 3 backups (22 bytes)");
        assert!(
            !dir.path()
                .join(INDEX_FILE)
                .with_extension("json.tmp")
                .exists()
        );
    }

    #[tokio::test]
    async fn refusals_store_nothing() {
        let dir = tempfile::tempdir().expect("tempdir");
        let backups = LegacyBackups::open(dir.path(), small(10, 10_000))
            .await
            .expect("open");
        for (id, data) in [
            ("../../x", &b"data"[..]),
            ("/etc/passwd", b"data"),
            ("", b"data"),
            ("ok", b""),
        ] {
            assert!(backups.replicate(id, "", data).await.is_err(), "{id}");
        }
        backups.replicate("six", "", b"123456").await.expect("fits");
        let over = backups
            .replicate("five", "", b"12345")
            .await
            .expect_err("over");
        assert!(
            matches!(over, BackupError::OverTotal { total: 11, .. }),
            "{over}"
        );
        assert_eq!(blob_files(&backups).await, 1);
        let index = backups.load().await.expect("index");
        assert_eq!(index.backups.keys().collect::<Vec<_>>(), ["six"]);
        let mut tmp = tokio::fs::read_dir(backups.store().tmp_dir())
            .await
            .expect("tmp");
        assert!(tmp.next_entry().await.expect("entry").is_none());
    }

    #[tokio::test]
    async fn replies_stay_within_the_budget_and_report_damage() {
        let dir = tempfile::tempdir().expect("tempdir");
        let budget = backup_file_wire_len("v1", "mp4", 100) * 2;
        let backups = LegacyBackups::open(dir.path(), small(10_000, budget))
            .await
            .expect("open");
        for id in ["v1", "v2", "v3"] {
            backups
                .replicate(id, "", &[id.as_bytes()[1]; 100])
                .await
                .expect(id);
            tokio::time::sleep(std::time::Duration::from_millis(2)).await;
        }
        let reply = backups.collect_for_reply().await.expect("reply");
        assert_eq!(reply.files.len(), 2);
        assert_eq!(
            reply.message,
            "returned 2 of 3 backups (200 bytes); the rest exceed the 1 GiB reply limit: \"v3\""
        );
        // A damaged blob is reported, not returned.
        let index = backups.load().await.expect("index");
        let path = backups
            .store()
            .path(&index.backups["v1"].sha256)
            .expect("path");
        tokio::fs::write(&path, [0u8; 100]).await.expect("damage");
        let reply = backups.collect_for_reply().await.expect("reply");
        assert_eq!(reply.files.len(), 1);
        assert!(
            reply
                .message
                .contains("unreadable here, not returned: \"v1\""),
            "{}",
            reply.message
        );
    }

    #[tokio::test]
    async fn a_broken_index_is_reported_and_kept() {
        let dir = tempfile::tempdir().expect("tempdir");
        let backups = LegacyBackups::open(dir.path(), small(10_000, 10_000))
            .await
            .expect("open");
        let path = dir.path().join(INDEX_FILE);
        for broken in [
            &b"not json"[..],
            br#"{"version":1,"backups":{"../x":{"sha256":"aa","size":1,"container":"mp4","stored_unix_ms":1}}}"#,
            br#"{"version":9,"backups":{}}"#,
        ] {
            tokio::fs::write(&path, broken).await.expect("write");
            let err = backups.replicate("v", "", b"x").await.expect_err("refused");
            assert!(matches!(err, BackupError::Index { .. }), "{err}");
            assert!(backups.collect_for_reply().await.is_err());
            assert_eq!(tokio::fs::read(&path).await.expect("kept"), broken);
        }
    }

    #[tokio::test]
    async fn shared_instances_are_per_data_dir() {
        let one = tempfile::tempdir().expect("tempdir");
        let two = tempfile::tempdir().expect("tempdir");
        let a = LegacyBackups::shared(one.path()).await.expect("a");
        let b = LegacyBackups::shared(one.path()).await.expect("b");
        let c = LegacyBackups::shared(two.path()).await.expect("c");
        assert!(Arc::ptr_eq(&a, &b));
        assert!(!Arc::ptr_eq(&a, &c));
        assert_eq!(a.limits(), &Limits::DEFAULT);
    }
}
