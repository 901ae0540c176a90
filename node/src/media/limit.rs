//! The memory limit of every ffmpeg/ffprobe this node runs: RLIMIT_AS
//! (address space, soft and hard) set on each child right after it starts
//! (`prlimit`, through rustix: no `unsafe`, no `pre_exec`), so a hostile
//! or simply huge input fails its own encode with a clear reason instead
//! of taking the machine's memory from the other slots and the node.
//!
//! The limit is one setting for the whole process, like the resource
//! limits themselves: `main.rs` sets it once at start from
//! `--encoder-memory-mb` ([`limit_for`]); children started before that (or
//! in unit tests) are not limited. The child runs for a moment before the
//! limit lands; ffmpeg only allocates pictures after it has opened and
//! probed its input, well after that.
//!
//! Sizes measured here (ffmpeg 5.1, x264 `veryfast`, 20-frame inputs,
//! peak VmPeak / VmHWM): 1280x720 with the default threads of a 2-core
//! node 593 / 136 MiB; 3840x2160 1116 / 682 MiB; 8192x4320 3196 / 2675
//! MiB (4097 MiB with 2 encoder threads; 4860 MiB with 16 decoder and
//! filter threads; 9967 MiB with 16 of each and 16 encoder threads;
//! `veryslow` 5121 MiB). Address space grows with threads (8 MiB of stack
//! each, glibc arenas of 64 MiB, which fall back to shared arenas under
//! the limit) while resident memory grows with the picture, so the
//! default is a share of the machine, not one figure.

use std::sync::atomic::{AtomicU64, Ordering};

const MIB: u64 = 1 << 20;

/// The least the automatic limit gives one encoder: an 8192x4320 encode
/// with the threads of a small machine (3.2 GiB measured) fits.
pub const AUTO_FLOOR: u64 = 4096 * MIB;

/// The limit in force for new children, in bytes; 0 = none.
static LIMIT: AtomicU64 = AtomicU64::new(0);

/// Sets the limit of children started from now on (`None`: unlimited).
pub fn set_memory_limit(bytes: Option<u64>) {
    LIMIT.store(bytes.unwrap_or(0), Ordering::Relaxed);
}

/// The limit of new children, if any.
pub fn memory_limit() -> Option<u64> {
    Some(LIMIT.load(Ordering::Relaxed)).filter(|&b| b > 0)
}

/// The limit for `--encoder-memory-mb` = `setting_mb` (pure): that many
/// MiB when set; with 0, three quarters of the machine's memory shared
/// among the `slots` (the rest is the node's and the system's), at least
/// [`AUTO_FLOOR`].
pub fn limit_for(setting_mb: u64, machine_memory: u64, slots: u32) -> u64 {
    if setting_mb > 0 {
        return setting_mb.saturating_mul(MIB);
    }
    (machine_memory / 4 * 3 / u64::from(slots.max(1))).max(AUTO_FLOOR)
}

/// The machine's memory, or the node's cgroup limit when lower. Blocking
/// (reads /proc and /sys).
pub fn machine_memory() -> u64 {
    let kinds = sysinfo::RefreshKind::nothing()
        .with_memory(sysinfo::MemoryRefreshKind::nothing().with_ram());
    let system = sysinfo::System::new_with_specifics(kinds);
    let total = system.total_memory();
    match system.cgroup_limits() {
        Some(cgroup) if cgroup.total_memory > 0 => total.min(cgroup.total_memory),
        _ => total,
    }
}

/// Sets RLIMIT_AS of process `pid` to `bytes` (soft and hard, so the
/// child cannot raise it).
pub(crate) fn apply(pid: u32, bytes: u64) -> std::io::Result<()> {
    let pid = i32::try_from(pid)
        .ok()
        .and_then(rustix::process::Pid::from_raw)
        .ok_or_else(|| std::io::Error::other(format!("not a process id: {pid}")))?;
    let limit = rustix::process::Rlimit {
        current: Some(bytes),
        maximum: Some(bytes),
    };
    rustix::process::prlimit(Some(pid), rustix::process::Resource::As, limit)?;
    Ok(())
}

/// What ffmpeg, its libraries and glibc print when an allocation fails:
/// ENOMEM's strerror, libavutil's and x264's own words, C++'s exception,
/// and the EAGAIN of a thread whose stack could not be mapped.
const OUT_OF_MEMORY: [&str; 8] = [
    "Cannot allocate memory",
    "Could not allocate",
    "malloc of size",
    "Out of memory",
    "out of memory",
    "failed to allocate",
    "std::bad_alloc",
    "Resource temporarily unavailable",
];

/// Signals a failed allocation ends a process with when the program does
/// not check it: SIGSEGV, SIGBUS, SIGABRT.
const CRASH_SIGNALS: [i32; 3] = [11, 7, 6];

/// Whether a failed run of a limited child ran out of memory (pure): its
/// stderr says an allocation failed, or it crashed.
pub fn ran_out_of_memory(stderr: &str, signal: Option<i32>) -> bool {
    OUT_OF_MEMORY.iter().any(|words| stderr.contains(words))
        || signal.is_some_and(|s| CRASH_SIGNALS.contains(&s))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_setting_wins_else_a_share_of_the_machine() {
        const GIB: u64 = 1 << 30;
        assert_eq!(limit_for(512, 64 * GIB, 4), 512 * MIB);
        assert_eq!(limit_for(0, 24 * GIB, 2), 9 * GIB);
        assert_eq!(limit_for(0, 64 * GIB, 4), 12 * GIB);
        // Many slots on a small machine: the floor still encodes 8K.
        assert_eq!(limit_for(0, 8 * GIB, 16), AUTO_FLOOR);
        assert_eq!(limit_for(0, 8 * GIB, 0), 6 * GIB);
        assert_eq!(limit_for(u64::MAX, 1, 1), u64::MAX);
    }

    #[test]
    fn allocation_failures_are_recognised() {
        for stderr in [
            "[h264 @ 0x55] Could not allocate memory",
            "Error while decoding stream #0:0: Cannot allocate memory",
            "x264 [error]: malloc of size 109239616 failed",
            "terminate called after throwing an instance of 'std::bad_alloc'",
        ] {
            assert!(ran_out_of_memory(stderr, None), "{stderr}");
        }
        assert!(ran_out_of_memory("", Some(11)));
        assert!(!ran_out_of_memory(
            "Invalid data found when processing input",
            None
        ));
        assert!(!ran_out_of_memory("", Some(15)));
        assert!(!ran_out_of_memory("", None));
    }

    #[test]
    fn the_limit_lands_on_a_running_child() {
        let mut child = std::process::Command::new("sleep")
            .arg("5")
            .spawn()
            .expect("sleep");
        apply(child.id(), 3 * 1024 * MIB).expect("prlimit");
        let limits =
            std::fs::read_to_string(format!("/proc/{}/limits", child.id())).expect("limits");
        let _ = child.kill();
        let _ = child.wait();
        let line = limits
            .lines()
            .find(|l| l.starts_with("Max address space"))
            .expect("address space line");
        assert!(line.contains("3221225472"), "{line}");
        assert!(apply(u32::MAX, MIB).is_err());
    }
}
