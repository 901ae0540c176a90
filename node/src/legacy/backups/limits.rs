//! The bounds of the legacy backups (pure): message and reply sizes, the
//! per-backup and per-node limits, the reply budget and the disk reserve,
//! the errors a request can get, and the checks that judge a request
//! before anything touches the disk.

use std::path::PathBuf;
use std::time::Duration;

use crate::store::StoreError;

pub(crate) const KIB: u64 = 1 << 10;
pub(crate) const MIB: u64 = 1 << 20;
pub(crate) const GIB: u64 = 1 << 30;

/// Largest message `replication.NodeService` decodes. Original masters
/// send a whole video in one `ReplicateVideo` message, so this matches the
/// 1 GiB the original `WorkerService` accepts for a whole shard.
pub const MAX_NODE_MESSAGE: usize = 1 << 30;

/// Largest whole `RequestBackupDataResponse` we send. The original peer
/// decodes the reply in one message, so it stays within the same 1 GiB.
pub const MAX_REPLY: u64 = GIB;

/// Part of [`MAX_REPLY`] kept for the reply's `success` and `message`
/// fields; the backups themselves get the rest.
pub(crate) const REPLY_HEADROOM: u64 = 64 * KIB;

/// Longest `message` of a reply (names of left-out backups are cut off
/// before this), well inside [`REPLY_HEADROOM`].
pub(crate) const MAX_REPLY_MESSAGE: usize = 16 * 1024;

/// Largest video accepted as a backup: below [`MAX_REPLY`] by enough
/// that every backup we accept can be handed back on its own, names and
/// framing included.
pub const MAX_BACKUP_VIDEO: u64 = GIB - 128 * KIB;

/// Total bytes of legacy backups one node keeps; more is refused so that
/// original masters cannot fill the disk the node needs for encoding.
pub const MAX_TOTAL: u64 = 64 * GIB;

/// Most backups one node keeps.
pub const MAX_ENTRIES: usize = 100_000;

/// Bytes of `RequestBackupData` replies in flight at once, node-wide (see
/// `budget`): one largest reply, which costs about twice this while tonic
/// encodes it.
pub const REPLY_BUDGET: u64 = MAX_REPLY;

/// How long a `RequestBackupData` waits for room in the reply budget
/// before it is refused as busy: long enough for a 1 GiB reply to be read,
/// checked and sent on a local network.
pub const REPLY_WAIT: Duration = Duration::from_secs(60);

/// Free space a backup must leave on the data dir's filesystem, at least
/// (the node needs room for its own encoding work) ...
pub const DISK_RESERVE: u64 = GIB;

/// ... or this share of the filesystem, in percent, when larger.
pub const DISK_RESERVE_PERCENT: u64 = 5;

/// Longest video id (bytes), as for the original's shard ids.
pub const MAX_VIDEO_ID: usize = 255;

/// Containers the original protocol knows.
pub const CONTAINERS: [&str; 4] = ["mp4", "mkv", "webm", "mov"];

/// Why a video id from an original master is refused (the id is shown
/// quoted and escaped, see `names::quoted`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BadVideoId {
    #[error("video_id {0} is empty")]
    Empty(String),
    #[error("video_id is {0} bytes, more than the {MAX_VIDEO_ID} allowed")]
    TooLong(usize),
    #[error("video_id {0} contains a NUL byte")]
    Nul(String),
    #[error("video_id {0} contains a control character")]
    Control(String),
    #[error("video_id {0} contains a path separator ('/' or '\\')")]
    Separator(String),
    #[error("video_id {0} is not a name")]
    NotAName(String),
    #[error("video_id {0} starts with '.'")]
    Hidden(String),
}

#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    #[error("refused: {0}")]
    BadId(#[from] BadVideoId),
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
    #[error(
        "refused: storing {} would leave {} free on the data dir's disk, less than the {} this node keeps free for its own work",
        human(*size),
        human(free.saturating_sub(*size)),
        human(*reserve)
    )]
    DiskLow { size: u64, free: u64, reserve: u64 },
    /// Other replies hold the reply budget and did not give it back in
    /// time (see `budget`).
    #[error(
        "busy: other backup replies being sent hold this node's {} reply budget (this one needs {}); waited {} s, try again later",
        human(*budget),
        human(*needed),
        waited.as_secs()
    )]
    Busy {
        needed: u64,
        budget: u64,
        waited: Duration,
    },
    /// The index (or an old JSON index being imported) cannot be used;
    /// the file is left as it is.
    #[error("the backup index {path} is unusable (left as it is): {reason}")]
    Index { path: PathBuf, reason: String },
    #[error("the backup index: {0}")]
    Db(#[from] redb::Error),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("storage i/o error: {0}")]
    Io(#[from] std::io::Error),
}

/// The bounds one `LegacyBackups` enforces (the constants above in
/// production; tests use small ones).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub max_video: u64,
    pub max_total: u64,
    pub max_entries: usize,
    /// Bytes of encoded `BackupFile`s one reply may carry.
    pub reply_files: u64,
    /// Bytes of replies in flight at once, node-wide.
    pub reply_budget: u64,
    /// How long a reply waits for room in `reply_budget`.
    pub reply_wait: Duration,
    /// Free bytes a backup must leave on the data dir's filesystem ...
    pub disk_reserve: u64,
    /// ... or this percentage of the filesystem, when larger.
    pub disk_reserve_percent: u64,
}

impl Limits {
    pub const DEFAULT: Limits = Limits {
        max_video: MAX_BACKUP_VIDEO,
        max_total: MAX_TOTAL,
        max_entries: MAX_ENTRIES,
        reply_files: MAX_REPLY - REPLY_HEADROOM,
        reply_budget: REPLY_BUDGET,
        reply_wait: REPLY_WAIT,
        disk_reserve: DISK_RESERVE,
        disk_reserve_percent: DISK_RESERVE_PERCENT,
    };
}

/// What the node holds now: backups and their bytes (kept as running
/// figures by the index, so judging a request never scans it).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Holding {
    pub entries: u64,
    pub total_bytes: u64,
}

/// Whether storing `size` more bytes keeps the node within its totals
/// (pure). `replacing` is the size of the backup of the same id, if one
/// is held: replacing it frees its bytes first and adds no entry.
pub fn check_capacity(
    held: &Holding,
    replacing: Option<u64>,
    size: u64,
    limits: &Limits,
) -> Result<(), BackupError> {
    if replacing.is_none() && held.entries >= limits.max_entries as u64 {
        return Err(BackupError::TooMany {
            limit: limits.max_entries,
        });
    }
    let total = held
        .total_bytes
        .saturating_sub(replacing.unwrap_or(0))
        .saturating_add(size);
    if total > limits.max_total {
        return Err(BackupError::OverTotal {
            size,
            total,
            limit: limits.max_total,
        });
    }
    Ok(())
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

#[cfg(test)]
pub(crate) fn small(max_total: u64, reply_files: u64) -> Limits {
    Limits {
        max_video: 1000,
        max_total,
        max_entries: 3,
        reply_files,
        reply_budget: reply_files,
        reply_wait: Duration::from_secs(5),
        disk_reserve: 0,
        disk_reserve_percent: 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_per_node_total_counts_replacements_once() {
        let limits = small(100, 1000);
        // "a" holds 60 bytes.
        let mut held = Holding {
            entries: 1,
            total_bytes: 60,
        };
        assert!(check_capacity(&held, None, 40, &limits).is_ok());
        let over = check_capacity(&held, None, 41, &limits).expect_err("over");
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
        assert!(check_capacity(&held, Some(60), 100, &limits).is_ok());
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
        // "b" and "c" of 1 byte each: three backups, the most kept.
        held = Holding {
            entries: 3,
            total_bytes: 62,
        };
        assert!(matches!(
            check_capacity(&held, None, 1, &limits),
            Err(BackupError::TooMany { limit: 3 })
        ));
        assert!(check_capacity(&held, Some(1), 1, &limits).is_ok());
    }
}
