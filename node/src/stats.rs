//! Machine load as the node reports it (GetNodeStats, node listings, the
//! resource score). A background task samples every `every` (a couple of
//! seconds) on the blocking pool: CPU, memory, load and network with
//! sysinfo, iowait from `/proc/stat` and disk throughput from
//! `/proc/diskstats`. RPCs only read the last [`Sample`]; nothing sleeps or
//! touches `/proc` on the async runtime.
//!
//! Rates (iowait, network, disk) are deltas between two consecutive
//! samples over the monotonic time between them, not since-boot counters;
//! the first sample reports 0 rates, as does anything unavailable (no
//! `/proc`, counters that went backwards).

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sysinfo::{Disks, Networks, System};
use tokio_util::sync::CancellationToken;

use crate::score::ScoreParts;

/// One sample of the machine's load.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Sample {
    /// Percent of all cores busy.
    pub cpu_percent: f32,
    /// Used memory, percent of total.
    pub memory_percent: f32,
    /// 1-minute load average.
    pub load_avg_1m: f32,
    /// `load_avg_1m` / logical cores (1.0 = one runnable task per core).
    pub load_per_core: f32,
    /// Percent of CPU time spent in iowait since the previous sample.
    pub iowait_percent: f32,
    /// Network received + transmitted since the previous sample, MB/s
    /// (10⁶ bytes), all interfaces except `lo`.
    pub net_mb_per_s: f32,
    /// Disk read + written since the previous sample, MB/s (10⁶ bytes),
    /// whole physical disks only.
    pub disk_mb_per_s: f32,
    /// Free bytes on the filesystem holding the data directory.
    pub disk_free_bytes: u64,
    /// Size of the filesystem holding the data directory.
    pub disk_total_bytes: u64,
}

impl Sample {
    /// The inputs of [`crate::score::node_score`] from this sample and the
    /// node's encode slots.
    pub fn score_parts(&self, slots_busy: u32, slots_total: u32) -> ScoreParts {
        ScoreParts {
            load_per_core: self.load_per_core,
            iowait_percent: self.iowait_percent,
            net_mb_per_s: self.net_mb_per_s,
            disk_mb_per_s: self.disk_mb_per_s,
            memory_percent: self.memory_percent,
            slots_busy,
            slots_total,
        }
    }
}

/// The latest [`Sample`], shared between the sampler and the RPCs.
#[derive(Debug, Clone, Default)]
pub struct Stats(Arc<Mutex<Sample>>);

impl Stats {
    /// The last sample (all zero before the first one); never blocks on I/O.
    pub fn latest(&self) -> Sample {
        *self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Samples every `every` until `stop` is cancelled. Every sysinfo and
    /// `/proc` read runs inside `spawn_blocking`.
    pub async fn run(self, data_dir: PathBuf, every: Duration, stop: CancellationToken) {
        let mut sampler: Option<Sampler> = None;
        loop {
            let dir = data_dir.clone();
            let sampled = tokio::task::spawn_blocking(move || {
                let mut sampler = sampler.unwrap_or_else(Sampler::new);
                let sample = sampler.sample(&dir);
                (sampler, sample)
            })
            .await;
            match sampled {
                Ok((back, sample)) => {
                    sampler = Some(back);
                    *self.0.lock().unwrap_or_else(|p| p.into_inner()) = sample;
                }
                Err(err) => {
                    if !err.is_panic() {
                        return;
                    }
                    // Start afresh (rates restart at 0) on the next tick.
                    tracing::warn!(%err, "sampling machine stats panicked");
                    sampler = None;
                }
            }
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = tokio::time::sleep(every) => {}
            }
        }
    }
}

/// Sampler state carried from one blocking sample to the next.
struct Sampler {
    system: System,
    networks: Networks,
    /// Running total of non-loopback bytes seen by `networks` refreshes
    /// (sysinfo's per-refresh deltas, so interfaces coming and going
    /// don't make it jump).
    net_bytes: u64,
    previous: Option<(Instant, Counters)>,
}

impl Sampler {
    /// Blocking: reads the network interface list.
    fn new() -> Self {
        Self {
            system: System::new(),
            networks: Networks::new_with_refreshed_list(),
            net_bytes: 0,
            previous: None,
        }
    }

    /// Blocking: refreshes sysinfo and reads `/proc`.
    fn sample(&mut self, data_dir: &Path) -> Sample {
        self.system.refresh_cpu_usage();
        self.system.refresh_memory();
        self.networks.refresh(true);
        let moved: u64 = self
            .networks
            .list()
            .iter()
            .filter(|(name, _)| name.as_str() != "lo")
            .map(|(_, data)| data.received().saturating_add(data.transmitted()))
            .fold(0, u64::saturating_add);
        self.net_bytes = self.net_bytes.wrapping_add(moved);
        let now = Instant::now();
        let counters = Counters {
            cpu: std::fs::read_to_string("/proc/stat")
                .ok()
                .and_then(|text| parse_proc_stat(&text)),
            disk_bytes: std::fs::read_to_string("/proc/diskstats")
                .ok()
                .and_then(|text| parse_diskstats(&text)),
            net_bytes: self.net_bytes,
        };
        let rates = match &self.previous {
            Some((then, previous)) => rates(previous, &counters, now.duration_since(*then)),
            None => Rates::default(),
        };
        self.previous = Some((now, counters));

        let total_memory = self.system.total_memory().max(1);
        let cores = match self.system.cpus().len() {
            0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
            n => n,
        };
        let load_avg_1m = System::load_average().one as f32;
        let (disk_free_bytes, disk_total_bytes) = disk_of(data_dir);
        Sample {
            cpu_percent: self.system.global_cpu_usage(),
            memory_percent: (self.system.used_memory() as f64 / total_memory as f64 * 100.0) as f32,
            load_avg_1m,
            load_per_core: load_avg_1m / cores as f32,
            iowait_percent: rates.iowait_percent,
            net_mb_per_s: rates.net_mb_per_s,
            disk_mb_per_s: rates.disk_mb_per_s,
            disk_free_bytes,
            disk_total_bytes,
        }
    }
}

/// Aggregate CPU time from `/proc/stat`, in clock ticks since boot.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct CpuTicks {
    iowait: u64,
    /// user + nice + system + idle + iowait + irq + softirq + steal (guest
    /// time is already counted in user and nice).
    total: u64,
}

/// Since-boot counters read at one instant; rates come from two of them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Counters {
    cpu: Option<CpuTicks>,
    /// Bytes read + written on whole disks.
    disk_bytes: Option<u64>,
    /// Network bytes received + transmitted, loopback excluded.
    net_bytes: u64,
}

#[derive(Debug, Clone, Copy, Default, PartialEq)]
struct Rates {
    iowait_percent: f32,
    net_mb_per_s: f32,
    disk_mb_per_s: f32,
}

/// Rates between two counter readings `elapsed` apart (pure). Missing
/// counters, counters that went backwards and a zero interval give 0.
fn rates(previous: &Counters, current: &Counters, elapsed: Duration) -> Rates {
    let seconds = elapsed.as_secs_f64();
    let per_second_mb = |delta: u64| {
        if seconds > 0.0 {
            (delta as f64 / seconds / 1e6) as f32
        } else {
            0.0
        }
    };
    let iowait_percent = match (previous.cpu, current.cpu) {
        (Some(before), Some(now)) => {
            let total = now.total.saturating_sub(before.total);
            let iowait = now.iowait.saturating_sub(before.iowait);
            if total == 0 {
                0.0
            } else {
                (iowait as f64 / total as f64 * 100.0).min(100.0) as f32
            }
        }
        _ => 0.0,
    };
    let disk = match (previous.disk_bytes, current.disk_bytes) {
        (Some(before), Some(now)) => now.saturating_sub(before),
        _ => 0,
    };
    Rates {
        iowait_percent,
        net_mb_per_s: per_second_mb(current.net_bytes.saturating_sub(previous.net_bytes)),
        disk_mb_per_s: per_second_mb(disk),
    }
}

/// The aggregate `cpu` line of `/proc/stat` (pure): `cpu user nice system
/// idle iowait irq softirq steal guest guest_nice`. `None` without an
/// aggregate line or an iowait column.
fn parse_proc_stat(text: &str) -> Option<CpuTicks> {
    let line = text
        .lines()
        .find(|line| line.split_whitespace().next() == Some("cpu"))?;
    let ticks: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .map(str::parse)
        .collect::<Result<_, _>>()
        .ok()?;
    let iowait = *ticks.get(4)?;
    let total = ticks
        .iter()
        .take(8)
        .fold(0u64, |sum, &t| sum.saturating_add(t));
    Some(CpuTicks { iowait, total })
}

/// Bytes read + written since boot over the whole disks of
/// `/proc/diskstats` (pure): fields 6 and 10 (sectors read and written,
/// always 512-byte units) of every line whose device
/// [`is_whole_disk`]. `None` if no line could be read.
fn parse_diskstats(text: &str) -> Option<u64> {
    let mut any = false;
    let mut bytes = 0u64;
    for line in text.lines() {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let (Some(name), Some(read), Some(written)) = (fields.get(2), fields.get(5), fields.get(9))
        else {
            continue;
        };
        let (Ok(read), Ok(written)) = (read.parse::<u64>(), written.parse::<u64>()) else {
            continue;
        };
        any = true;
        if is_whole_disk(name) {
            bytes = bytes.saturating_add(read.saturating_add(written).saturating_mul(512));
        }
    }
    any.then_some(bytes)
}

/// Whether a `/proc/diskstats` device is a whole physical disk (pure,
/// by name). Partitions would count their disk's I/O twice, as would the
/// stacked `dm-*` and `md*` devices; `loop*`, `ram*` and `zram*` are not
/// disks, nor are optical (`sr*`) and floppy (`fd*`) drives.
fn is_whole_disk(name: &str) -> bool {
    const SKIP: [&str; 7] = ["loop", "ram", "zram", "dm-", "md", "sr", "fd"];
    // Families whose whole-disk names end in a digit; their partitions
    // add `p<n>` (nvme0n1p1, mmcblk0p2, nbd0p1, pmem0p1, rbd0p1, zd0p1).
    const NUMBERED: [&str; 6] = ["nvme", "mmcblk", "nbd", "pmem", "rbd", "zd"];
    if name.is_empty() || SKIP.iter().any(|p| name.starts_with(p)) {
        return false;
    }
    if NUMBERED.iter().any(|p| name.starts_with(p)) {
        let stem = name.trim_end_matches(|c: char| c.is_ascii_digit());
        let partition = stem.len() < name.len()
            && stem
                .strip_suffix('p')
                .is_some_and(|s| s.ends_with(|c: char| c.is_ascii_digit()));
        return !partition;
    }
    // sda, vdb, xvdf, hdc are disks; sda1, vdb2, xvdf1 partitions.
    !name.ends_with(|c: char| c.is_ascii_digit())
}

/// Free and total bytes of the filesystem holding `dir` (the mount with
/// the longest matching prefix). Blocking.
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

    const PROC_STAT: &str = "\
cpu  10132153 290696 3084719 46828483 16683 0 25195 0 175628 0
cpu0 1393280 32966 572056 13343292 6130 0 17875 0 23933 0
cpu1 1335690 30519 502838 13506620 4532 0 3985 0 51615 0
intr 1462898 0 0 0
ctxt 2087645
btime 1700000000
";

    const DISKSTATS: &str = "\
   7       0 loop0 100 0 2000 10 0 0 0 0 0 10 10 0 0 0 0 0 0
   1       0 ram0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0
   8       0 sda 4000 100 100000 500 2000 300 50000 800 0 900 1300 0 0 0 0 0 0
   8       1 sda1 3900 100 99000 490 1990 300 49000 790 0 880 1280 0 0 0 0 0 0
 259       0 nvme0n1 9000 0 200000 700 7000 0 300000 900 0 1500 1600
 259       1 nvme0n1p1 8000 0 190000 690 6000 0 290000 880 0 1400 1570
 179       0 mmcblk0 10 0 20 1 10 0 30 1 0 2 2
 179       1 mmcblk0p1 10 0 20 1 10 0 30 1 0 2 2
 253       0 dm-0 5000 0 150000 600 4000 0 200000 700 0 1000 1300
   9       0 md0 1 0 8 0 1 0 8 0 0 0 0
  11       0 sr0 5 0 40 1 0 0 0 0 0 1 1
";

    #[test]
    fn parses_the_aggregate_cpu_line() {
        let ticks = parse_proc_stat(PROC_STAT).expect("a cpu line");
        assert_eq!(ticks.iowait, 16683);
        // user..steal; guest (175628) and guest_nice are inside user/nice.
        let total = 10132153 + 290696 + 3084719 + 46828483 + 16683 + 25195;
        assert_eq!(ticks.total, total);
    }

    #[test]
    fn proc_stat_without_iowait_or_cpu_is_none() {
        assert_eq!(parse_proc_stat(""), None);
        assert_eq!(parse_proc_stat("cpu0 1 2 3 4 5 6 7\nintr 1\n"), None);
        assert_eq!(parse_proc_stat("cpu 1 2 3 4\n"), None);
        assert_eq!(parse_proc_stat("cpu 1 2 x 4 5\n"), None);
        assert_eq!(
            parse_proc_stat("cpu 1 2 3 4 5\n"),
            Some(CpuTicks {
                iowait: 5,
                total: 15
            })
        );
    }

    #[test]
    fn diskstats_sums_whole_disks_only() {
        // sda (100000 + 50000), nvme0n1 (200000 + 300000), mmcblk0 (20 + 30).
        let sectors = 100_000 + 50_000 + 200_000 + 300_000 + 20 + 30;
        assert_eq!(parse_diskstats(DISKSTATS), Some(sectors * 512));
        assert_eq!(parse_diskstats(""), None);
        assert_eq!(parse_diskstats("8 0 sda 1 2\n"), None);
        assert_eq!(
            parse_diskstats("7 0 loop0 1 0 8 0 1 0 8 0 0 0 0\n"),
            Some(0)
        );
    }

    #[test]
    fn tells_whole_disks_from_partitions_and_virtual_devices() {
        for disk in [
            "sda", "sdab", "vdb", "xvdf", "hdc", "nvme0n1", "nvme10n2", "mmcblk0",
        ] {
            assert!(is_whole_disk(disk), "{disk}");
        }
        for other in [
            "sda1",
            "vdb2",
            "xvdf1",
            "nvme0n1p1",
            "nvme1n1p12",
            "mmcblk0p1",
            "loop0",
            "ram1",
            "zram0",
            "dm-0",
            "md127",
            "sr0",
            "fd0",
            "",
        ] {
            assert!(!is_whole_disk(other), "{other}");
        }
    }

    #[test]
    fn rates_are_deltas_over_elapsed_time() {
        let before = Counters {
            cpu: Some(CpuTicks {
                iowait: 100,
                total: 10_000,
            }),
            disk_bytes: Some(1_000_000_000),
            net_bytes: 5_000_000,
        };
        let after = Counters {
            cpu: Some(CpuTicks {
                iowait: 150,
                total: 10_200,
            }),
            disk_bytes: Some(1_040_000_000),
            net_bytes: 25_000_000,
        };
        let r = rates(&before, &after, Duration::from_secs(2));
        assert!((r.iowait_percent - 25.0).abs() < 1e-4, "{r:?}");
        assert!((r.disk_mb_per_s - 20.0).abs() < 1e-4, "{r:?}");
        assert!((r.net_mb_per_s - 10.0).abs() < 1e-4, "{r:?}");
        let r = rates(&before, &after, Duration::from_millis(500));
        assert!((r.net_mb_per_s - 40.0).abs() < 1e-4, "{r:?}");
    }

    #[test]
    fn rates_without_a_usable_delta_are_zero() {
        let some = Counters {
            cpu: Some(CpuTicks {
                iowait: 10,
                total: 100,
            }),
            disk_bytes: Some(4096),
            net_bytes: 4096,
        };
        assert_eq!(
            rates(&some, &some, Duration::from_secs(2)),
            Rates::default()
        );
        let later = Counters {
            cpu: Some(CpuTicks {
                iowait: 20,
                total: 200,
            }),
            disk_bytes: Some(8192),
            net_bytes: 8192,
        };
        assert_eq!(rates(&some, &later, Duration::ZERO).net_mb_per_s, 0.0);
        assert_eq!(rates(&some, &later, Duration::ZERO).disk_mb_per_s, 0.0);
        // Counters that went backwards (device gone, iowait quirk).
        assert_eq!(
            rates(&later, &some, Duration::from_secs(1)),
            Rates::default()
        );
        // Missing /proc files.
        let none = Counters::default();
        let r = rates(&none, &later, Duration::from_secs(1));
        assert_eq!((r.iowait_percent, r.disk_mb_per_s), (0.0, 0.0));
        let r = rates(&later, &none, Duration::from_secs(1));
        assert_eq!(r, Rates::default());
    }

    #[test]
    fn first_sample_reports_zero_rates_then_finite_ones() {
        let mut sampler = Sampler::new();
        let first = sampler.sample(Path::new("/"));
        assert_eq!(
            (
                first.iowait_percent,
                first.net_mb_per_s,
                first.disk_mb_per_s
            ),
            (0.0, 0.0, 0.0)
        );
        assert!(first.load_per_core >= 0.0 && first.load_per_core.is_finite());
        std::thread::sleep(Duration::from_millis(50));
        let second = sampler.sample(Path::new("/"));
        for rate in [
            second.iowait_percent,
            second.net_mb_per_s,
            second.disk_mb_per_s,
        ] {
            assert!(rate.is_finite() && rate >= 0.0, "{second:?}");
        }
        assert!(second.iowait_percent <= 100.0, "{second:?}");
    }

    #[test]
    fn score_parts_carry_the_sample() {
        let sample = Sample {
            load_per_core: 0.5,
            iowait_percent: 3.0,
            net_mb_per_s: 4.0,
            disk_mb_per_s: 5.0,
            memory_percent: 60.0,
            ..Sample::default()
        };
        let parts = sample.score_parts(1, 2);
        assert_eq!(
            parts,
            ScoreParts {
                load_per_core: 0.5,
                iowait_percent: 3.0,
                net_mb_per_s: 4.0,
                disk_mb_per_s: 5.0,
                memory_percent: 60.0,
                slots_busy: 1,
                slots_total: 2,
            }
        );
    }

    #[test]
    fn root_filesystem_has_a_size() {
        let (free, total) = disk_of(Path::new("/"));
        assert!(total > 0 && free <= total, "{free}/{total}");
    }
}
