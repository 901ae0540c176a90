//! Room on disk that belongs to the Raft log before anyone else can take
//! it. redb poisons its database on the first failed write, and openraft
//! then ends its core for good, so a data dir filled to the last byte by
//! an upload, an encode or an operator's file would take the node out of
//! every election. The log file therefore always has blocks allocated a
//! little past its end (`fallocate` with `KEEP_SIZE`: the file's length,
//! which redb reads, does not change). When redb grows the file, the new
//! pages land on blocks that are already the file's, so its writes keep
//! succeeding on a full disk; the headroom is topped up before each write
//! while there is space for it.
//!
//! Why blocks of the file itself and not a ballast file to delete when the
//! disk fills: whatever filled the disk would be racing Raft for the freed
//! room; blocks allocated to the log's inode are nobody else's.
//!
//! redb also shrinks its file when the pages at its end fall free, and a
//! truncation frees every block past the new end, the headroom with them
//! (the 30-minute chaos soak lost a node to exactly that on a full disk).
//! So redb writes through [`KeptFile`], its own file backend wrapped to
//! take the headroom back the moment the length changes.

use std::io;
use std::ops::Bound;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use redb::backends::FileBackend;
use redb::{BackendError, StorageBackend};

/// The most room kept (plenty for a snapshot of the job table and every
/// log entry between two snapshots).
const MOST: u64 = 64 << 20;
/// The least room kept, however small the filesystem.
const LEAST: u64 = 1 << 20;
/// Overrides the size in MiB (0 keeps none: for tests of what happens
/// without it).
pub const SIZE_ENV: &str = "VIDSHARD_RAFT_HEADROOM_MIB";

/// The room to keep on a filesystem of `total` bytes (pure): a sixteenth
/// of it, between 1 and 64 MiB.
pub fn size_for(total: u64) -> u64 {
    (total / 16).clamp(LEAST, MOST)
}

/// Where the allocated range should end, if it must grow now (pure): once
/// less than half the headroom is left past the file's end, allocate a
/// whole headroom past it again.
pub fn top_up_to(file_len: u64, allocated_to: u64, headroom: u64) -> Option<u64> {
    let wanted = file_len.saturating_add(headroom);
    (headroom > 0 && allocated_to < file_len.saturating_add(headroom / 2)).then_some(wanted)
}

/// The headroom of one file. Shared by the log and the state machine,
/// which write the same redb file.
#[derive(Debug)]
pub struct Headroom {
    path: PathBuf,
    bytes: u64,
    allocated_to: AtomicU64,
    /// The last top-up failed for want of space (logged once per episode).
    short: AtomicBool,
    /// The filesystem cannot preallocate (logged once, then not tried).
    unsupported: AtomicBool,
}

impl Headroom {
    /// Keeps `bytes` of room past the end of the file at `path`.
    pub fn new(path: &Path, bytes: u64) -> Self {
        Self {
            path: path.to_path_buf(),
            bytes,
            allocated_to: AtomicU64::new(0),
            short: AtomicBool::new(false),
            unsupported: AtomicBool::new(false),
        }
    }

    /// The headroom for the file at `path`, sized for its filesystem (or
    /// by [`SIZE_ENV`]). Blocking.
    pub fn sized_for(path: &Path) -> Self {
        let from_env = std::env::var(SIZE_ENV)
            .ok()
            .and_then(|mib| mib.trim().parse::<u64>().ok())
            .map(|mib| mib << 20);
        let dir = path.parent().unwrap_or(Path::new("."));
        let bytes = from_env.unwrap_or_else(|| {
            rustix::fs::statvfs(dir)
                .map_or(MOST, |s| size_for(s.f_blocks.saturating_mul(s.f_frsize)))
        });
        Self::new(path, bytes)
    }

    /// Tops the room up if it ran low. Blocking: call it on the blocking
    /// pool right before a write. Never fails: without room the write is
    /// tried anyway (it may still fit in what is left).
    pub fn keep(&self) {
        if self.unsupported.load(Ordering::Relaxed) {
            return;
        }
        let Ok(len) = std::fs::metadata(&self.path).map(|m| m.len()) else {
            return;
        };
        let allocated_to = self.allocated_to.load(Ordering::Relaxed);
        if let Some(end) = top_up_to(len, allocated_to, self.bytes) {
            self.reserve(len, end);
        }
    }

    /// The file's length became `len` (redb grew or shrank it): the room
    /// past it is allocated again at once. After a shrink nothing past
    /// `len` is the file's any more, whatever was allocated before.
    pub fn length_changed(&self, len: u64) {
        if self.unsupported.load(Ordering::Relaxed) || self.bytes == 0 {
            return;
        }
        self.allocated_to.fetch_min(len, Ordering::Relaxed);
        self.reserve(len, len.saturating_add(self.bytes));
    }

    /// Allocates the file's blocks up to `end` (its length is `len`).
    fn reserve(&self, len: u64, end: u64) {
        let allocated_to = self.allocated_to.load(Ordering::Relaxed);
        match self.allocate(end) {
            Ok(()) => {
                self.allocated_to.store(end, Ordering::Relaxed);
                if self.short.swap(false, Ordering::Relaxed) {
                    tracing::info!(path = %self.path.display(), "the Raft log has its reserved room again");
                }
            }
            Err(e) if e.raw_os_error() == Some(rustix::io::Errno::NOSPC.raw_os_error()) => {
                if !self.short.swap(true, Ordering::Relaxed) {
                    tracing::warn!(
                        path = %self.path.display(),
                        left = allocated_to.saturating_sub(len),
                        "the data dir is full: the Raft log writes into the room reserved for it until space is freed"
                    );
                }
            }
            Err(e) => {
                self.unsupported.store(true, Ordering::Relaxed);
                tracing::warn!(path = %self.path.display(), error = %e, "cannot reserve room for the Raft log on this filesystem; a full disk may stop Raft");
            }
        }
    }

    fn allocate(&self, end: u64) -> io::Result<()> {
        let file = std::fs::OpenOptions::new().write(true).open(&self.path)?;
        rustix::fs::fallocate(&file, rustix::fs::FallocateFlags::KEEP_SIZE, 0, end)?;
        Ok(())
    }
}

/// redb's own file backend, with the [`Headroom`] taken back whenever redb
/// changes the file's length. Everything else is passed through.
#[derive(Debug)]
pub struct KeptFile {
    inner: FileBackend,
    headroom: Arc<Headroom>,
}

impl KeptFile {
    pub fn new(inner: FileBackend, headroom: Arc<Headroom>) -> Self {
        Self { inner, headroom }
    }
}

impl StorageBackend for KeptFile {
    fn len(&self) -> io::Result<u64> {
        self.inner.len()
    }

    fn read(&self, offset: u64, out: &mut [u8]) -> io::Result<()> {
        self.inner.read(offset, out)
    }

    fn set_len(&self, len: u64) -> io::Result<()> {
        self.inner.set_len(len)?;
        self.headroom.length_changed(len);
        Ok(())
    }

    fn sync_data(&self) -> io::Result<()> {
        self.inner.sync_data()
    }

    fn write(&self, offset: u64, data: &[u8]) -> io::Result<()> {
        self.inner.write(offset, data)
    }

    fn close(&self) -> io::Result<()> {
        self.inner.close()
    }

    fn try_lock_range(&self, start: Bound<u64>, end: Bound<u64>) -> Result<bool, BackendError> {
        self.inner.try_lock_range(start, end)
    }

    fn try_lock_shared_range(
        &self,
        start: Bound<u64>,
        end: Bound<u64>,
    ) -> Result<bool, BackendError> {
        self.inner.try_lock_shared_range(start, end)
    }

    fn lock_range(&self, start: Bound<u64>, end: Bound<u64>) -> Result<(), BackendError> {
        self.inner.lock_range(start, end)
    }

    fn lock_shared_range(&self, start: Bound<u64>, end: Bound<u64>) -> Result<(), BackendError> {
        self.inner.lock_shared_range(start, end)
    }

    fn unlock_range(&self, start: Bound<u64>, end: Bound<u64>) -> Result<(), BackendError> {
        self.inner.unlock_range(start, end)
    }

    fn query_lock_range(&self, start: Bound<u64>, end: Bound<u64>) -> Result<bool, BackendError> {
        self.inner.query_lock_range(start, end)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    #[test]
    fn the_room_is_a_sixteenth_of_the_filesystem_within_bounds() {
        assert_eq!(size_for(0), LEAST);
        assert_eq!(size_for(24 << 20), LEAST.max(24 << 20 >> 4));
        assert_eq!(size_for(512 << 20), 32 << 20);
        assert_eq!(size_for(1 << 40), MOST);
    }

    #[test]
    fn the_room_is_topped_up_once_half_of_it_is_used() {
        let mib = 1 << 20;
        assert_eq!(top_up_to(10 * mib, 0, 8 * mib), Some(18 * mib));
        // 8 MiB past the end: nothing to do; 4 MiB: still enough.
        assert_eq!(top_up_to(10 * mib, 18 * mib, 8 * mib), None);
        assert_eq!(top_up_to(14 * mib, 18 * mib, 8 * mib), None);
        // Less than half left: a whole headroom past the end again.
        assert_eq!(top_up_to(15 * mib, 18 * mib, 8 * mib), Some(23 * mib));
        assert_eq!(top_up_to(10 * mib, 0, 0), None);
    }

    #[test]
    fn a_shrink_takes_the_room_back_at_once() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("log");
        std::fs::write(&path, vec![1u8; 8 << 20]).expect("write");
        let headroom = Headroom::new(&path, 4 << 20);
        headroom.keep();
        if headroom.unsupported.load(Ordering::Relaxed) {
            return;
        }
        // What redb's shrink does: a truncation, which frees the room too.
        let file = std::fs::OpenOptions::new()
            .write(true)
            .open(&path)
            .expect("open");
        file.set_len(1 << 20).expect("truncate");
        headroom.length_changed(1 << 20);
        let meta = std::fs::metadata(&path).expect("metadata");
        assert_eq!(meta.len(), 1 << 20);
        assert!(
            meta.blocks() * 512 >= 5 << 20,
            "the room is allocated again: {} bytes",
            meta.blocks() * 512
        );
    }

    #[test]
    fn the_blocks_are_allocated_without_changing_the_length() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("log");
        std::fs::write(&path, vec![1u8; 4096]).expect("write");
        let headroom = Headroom::new(&path, 4 << 20);
        headroom.keep();
        let meta = std::fs::metadata(&path).expect("metadata");
        assert_eq!(meta.len(), 4096, "redb sees the same length");
        if !headroom.unsupported.load(Ordering::Relaxed) {
            assert!(
                meta.blocks() * 512 >= 4 << 20,
                "{} bytes allocated",
                meta.blocks() * 512
            );
        }
    }
}
