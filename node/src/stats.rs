//! Machine load as the node reports it (GetNodeStats, node listings):
//! CPU and memory sampled with sysinfo on the blocking pool every couple
//! of seconds, so an RPC only reads the last sample and never sleeps.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sysinfo::{Disks, System};
use tokio_util::sync::CancellationToken;

#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Sample {
    /// Percent of all cores busy.
    pub cpu_percent: f32,
    pub memory_percent: f32,
    pub load_avg_1m: f32,
    pub disk_free_bytes: u64,
    pub disk_total_bytes: u64,
}

#[derive(Debug, Clone, Default)]
pub struct Stats(Arc<Mutex<Sample>>);

impl Stats {
    pub fn latest(&self) -> Sample {
        *self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Samples every `every` until `stop` is cancelled.
    pub async fn run(self, data_dir: PathBuf, every: Duration, stop: CancellationToken) {
        let mut system = System::new();
        loop {
            let dir = data_dir.clone();
            let sampled = tokio::task::spawn_blocking(move || {
                system.refresh_cpu_usage();
                system.refresh_memory();
                let sample = sample(&system, &dir);
                (system, sample)
            })
            .await;
            match sampled {
                Ok((back, sample)) => {
                    system = back;
                    *self.0.lock().unwrap_or_else(|p| p.into_inner()) = sample;
                }
                Err(_) => return,
            }
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = tokio::time::sleep(every) => {}
            }
        }
    }
}

fn sample(system: &System, data_dir: &Path) -> Sample {
    let total = system.total_memory().max(1);
    let (disk_free_bytes, disk_total_bytes) = disk_of(data_dir);
    Sample {
        cpu_percent: system.global_cpu_usage(),
        memory_percent: (system.used_memory() as f64 / total as f64 * 100.0) as f32,
        load_avg_1m: System::load_average().one as f32,
        disk_free_bytes,
        disk_total_bytes,
    }
}

/// Free and total bytes of the filesystem holding `dir` (the mount with
/// the longest matching prefix).
fn disk_of(dir: &Path) -> (u64, u64) {
    let dir = std::fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf());
    let disks = Disks::new_with_refreshed_list();
    disks
        .list()
        .iter()
        .filter(|d| dir.starts_with(d.mount_point()))
        .max_by_key(|d| d.mount_point().as_os_str().len())
        .map(|d| (d.available_space(), d.total_space()))
        .unwrap_or((0, 0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn root_filesystem_has_a_size() {
        let (free, total) = disk_of(Path::new("/"));
        assert!(total > 0 && free <= total, "{free}/{total}");
    }
}
