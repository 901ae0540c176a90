//! Room on the disk for a backup: the free space of the filesystem holding
//! the backups, measured when a backup arrives, and the reserve it must
//! leave. The 64 GiB per-node total alone would let original masters fill
//! a smaller disk that the node needs for its own shards and outputs.
//!
//! Measured with `statvfs` (rustix): sysinfo's disk list, which the load
//! samples use, leaves out tmpfs and other virtual filesystems, so a data
//! dir there would look like it had no disk at all.

use std::path::Path;

use super::limits::{BackupError, Limits};

/// The filesystem's size and the bytes an unprivileged writer may still
/// use (`f_bavail`: the root-only reserve does not count as free).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DiskSpace {
    pub free: u64,
    pub total: u64,
}

/// Bytes a backup must leave free on a filesystem of `total` bytes
/// (pure): the larger of the fixed reserve and the percentage.
pub fn reserve_for(total: u64, limits: &Limits) -> u64 {
    let share = total / 100 * limits.disk_reserve_percent.min(100);
    limits.disk_reserve.max(share)
}

/// Whether writing `size` more bytes leaves the reserve free (pure). The
/// whole size counts even when it replaces an earlier backup: the new
/// bytes are written before the old ones are removed.
pub fn check_free_disk(space: DiskSpace, size: u64, limits: &Limits) -> Result<(), BackupError> {
    let reserve = reserve_for(space.total, limits);
    if space.free.saturating_sub(size) < reserve || size > space.free {
        return Err(BackupError::DiskLow {
            size,
            free: space.free,
            reserve,
        });
    }
    Ok(())
}

/// The space of the filesystem holding `path`, now.
pub async fn space_of(path: &Path) -> Result<DiskSpace, BackupError> {
    let path = path.to_path_buf();
    let stat = tokio::task::spawn_blocking(move || rustix::fs::statvfs(&path))
        .await
        .map_err(std::io::Error::other)?
        .map_err(std::io::Error::from)?;
    Ok(DiskSpace {
        free: stat.f_bavail.saturating_mul(stat.f_frsize),
        total: stat.f_blocks.saturating_mul(stat.f_frsize),
    })
}

#[cfg(test)]
mod tests {
    use super::super::limits::{GIB, MIB, human};
    use super::*;

    #[test]
    fn a_backup_leaves_the_larger_reserve_free() {
        let limits = Limits::DEFAULT;
        // 1 GiB on disks up to 20 GiB, 5% above.
        assert_eq!(reserve_for(10 * GIB, &limits), GIB);
        assert_eq!(reserve_for(100 * GIB, &limits), 5 * GIB);
        let small_disk = DiskSpace {
            free: GIB + 100 * MIB,
            total: 10 * GIB,
        };
        assert!(check_free_disk(small_disk, 100 * MIB, &limits).is_ok());
        let err = check_free_disk(small_disk, 100 * MIB + 1, &limits).expect_err("low");
        assert!(
            matches!(err, BackupError::DiskLow { reserve, .. } if reserve == GIB),
            "{err}"
        );
        let text = err.to_string();
        assert!(
            text.contains(
                "would leave 1024.0 MiB free on the data dir's disk, less than the 1 GiB"
            ),
            "{text}"
        );
        let big_disk = DiskSpace {
            free: 6 * GIB,
            total: 100 * GIB,
        };
        assert!(check_free_disk(big_disk, GIB, &limits).is_ok());
        assert!(check_free_disk(big_disk, GIB + 1, &limits).is_err());
        // No reserve: only what is there.
        let none = Limits {
            disk_reserve: 0,
            disk_reserve_percent: 0,
            ..limits
        };
        let tiny = DiskSpace {
            free: 10,
            total: 10,
        };
        assert!(check_free_disk(tiny, 10, &none).is_ok());
        assert!(check_free_disk(tiny, 11, &none).is_err());
        assert_eq!(
            human(reserve_for(u64::MAX, &limits)),
            human(u64::MAX / 100 * 5)
        );
    }

    #[tokio::test]
    async fn the_data_dirs_filesystem_is_measured() {
        let dir = tempfile::tempdir().expect("tempdir");
        let space = space_of(dir.path()).await.expect("statvfs");
        assert!(space.total > 0 && space.free <= space.total, "{space:?}");
        assert!(space_of(&dir.path().join("missing")).await.is_err());
    }
}
