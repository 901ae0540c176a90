//! No encoder outlives its node. Every ffmpeg/ffprobe a node runs carries
//! `VIDSHARD_ENCODER_OF=<its data dir>` in its environment (set in
//! `run::command`), so the processes of a node are told apart from any
//! other ffmpeg on the machine, even one writing into the same directory.
//! Two moments reap them: a starting node kills what an earlier run of it left; and a
//! small watcher process (`vidshard-node reap`, started by the node with
//! a pipe on its stdin) kills them as soon as the pipe closes, which is
//! when the node is gone however it died, `kill -9` included. (A
//! parent-death signal would need `pre_exec`, which is `unsafe`.)

use std::ffi::OsString;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::Duration;

use sysinfo::{ProcessRefreshKind, ProcessesToUpdate, Signal, UpdateKind};

/// The environment variable naming the node an encoder belongs to.
pub const MARK_VAR: &str = "VIDSHARD_ENCODER_OF";

/// This process's mark, set once when the node starts (process-wide: one
/// node per process, and `run::command` has no other handle to it).
static MARK: std::sync::OnceLock<String> = std::sync::OnceLock::new();

/// The mark of the node at `data_dir`: its absolute path.
pub fn mark_of(data_dir: &Path) -> String {
    std::fs::canonicalize(data_dir)
        .unwrap_or_else(|_| data_dir.to_path_buf())
        .display()
        .to_string()
}

/// Marks every encoder this process starts from now on as the node's at
/// `data_dir`.
pub fn mark_encoders(data_dir: &Path) {
    let _ = MARK.set(mark_of(data_dir));
}

/// `MARK_VAR=mark` for an encoder's environment, once the node set it.
pub fn encoder_mark() -> Option<(&'static str, &'static str)> {
    MARK.get().map(|mark| (MARK_VAR, mark.as_str()))
}

/// Whether a process with environment `environ` is an encoder of the
/// node whose mark is `mark` (pure).
pub fn is_ours(environ: &[OsString], mark: &str) -> bool {
    let wanted = format!("{MARK_VAR}={mark}");
    environ
        .iter()
        .any(|entry| entry.to_string_lossy() == wanted)
}

/// Kills every encoder of the node at `data_dir` still running with no
/// running node among its ancestors (a node restarted on the same data
/// dir keeps its own); answers how many. Blocking (reads /proc): call from a
/// blocking thread.
pub fn kill_encoders_of(data_dir: &Path) -> usize {
    let mark = mark_of(data_dir);
    let mut system = sysinfo::System::new();
    system.refresh_processes_specifics(
        ProcessesToUpdate::All,
        true,
        ProcessRefreshKind::nothing().with_environ(UpdateKind::Always),
    );
    let own = sysinfo::get_current_pid().ok();
    let node_name = std::env::current_exe()
        .ok()
        .and_then(|exe| exe.file_name().map(|n| n.to_string_lossy().into_owned()))
        .unwrap_or_else(|| "vidshard-node".into());
    let is_a_node = |process: &sysinfo::Process| {
        // The kernel keeps 15 bytes of a process name.
        let name = process.name().to_string_lossy();
        name == node_name || (name.len() == 15 && node_name.starts_with(&*name))
    };
    // A running node up the parent chain, not only the parent: an ffmpeg
    // started through a wrapper script that does not `exec` (a `nice`
    // wrapper, a test's slow ffmpeg) is a running node's too. An orphan's
    // chain ends at init without one.
    let under_a_node = |process: &sysinfo::Process| {
        let mut next = process.parent();
        for _ in 0..16 {
            let Some(ancestor) = next.and_then(|pid| system.process(pid)) else {
                return false;
            };
            if is_a_node(ancestor) {
                return true;
            }
            next = ancestor.parent();
        }
        false
    };
    let mut killed = 0;
    for (pid, process) in system.processes() {
        // sysinfo lists each thread too, with the process as its parent:
        // a SIGKILL to a thread's id kills its whole process, so a
        // running node's encoder would die through one of its threads.
        if process.thread_kind().is_none()
            && Some(*pid) != own
            && is_ours(process.environ(), &mark)
            && !under_a_node(process)
            && process.kill_with(Signal::Kill).unwrap_or(false)
        {
            killed += 1;
        }
    }
    killed
}

/// `vidshard-node reap --data-dir DIR`: waits until its stdin closes (the
/// node that started it is gone), then kills the node's encoders, looking
/// again for a second for any started in its last moments.
pub fn reap_when_parent_dies(data_dir: PathBuf) -> usize {
    let mut sink = [0u8; 64];
    let mut stdin = std::io::stdin();
    while matches!(stdin.read(&mut sink), Ok(n) if n > 0) {}
    let mut killed = 0;
    for _ in 0..5 {
        killed += kill_encoders_of(&data_dir);
        std::thread::sleep(Duration::from_millis(200));
    }
    killed
}

/// Starts the watcher for the node at `data_dir`: a child process whose
/// stdin is a pipe this process holds until it exits. Dropping the
/// returned child handle does not stop it.
pub fn start_watcher(data_dir: &Path) -> std::io::Result<std::process::Child> {
    std::process::Command::new(std::env::current_exe()?)
        .arg("reap")
        .arg("--data-dir")
        .arg(data_dir)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encoders_are_told_by_their_mark_alone() {
        let env = |list: &[&str]| list.iter().map(OsString::from).collect::<Vec<_>>();
        let ours = env(&["PATH=/usr/bin", "VIDSHARD_ENCODER_OF=/var/lib/vidshard/n1"]);
        assert!(is_ours(&ours, "/var/lib/vidshard/n1"));
        assert!(!is_ours(&ours, "/var/lib/vidshard/n10"));
        assert!(!is_ours(&ours, "/var/lib/vidshard"));
        assert!(!is_ours(&env(&["PATH=/usr/bin"]), "/var/lib/vidshard/n1"));
    }

    /// The threads of a running node's encoder are not taken for orphans
    /// (a kill through a thread id ended a join mid-way). The test binary
    /// stands for the node here: `kill_encoders_of` spares the children of
    /// a process named like itself.
    #[test]
    fn a_scan_spares_a_running_nodes_multithreaded_encoder() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut encoder = std::process::Command::new("ffmpeg")
            .args(["-nostdin", "-loglevel", "error", "-f", "lavfi", "-i"])
            .arg("testsrc2=size=640x360:rate=25:duration=600")
            .args(["-c:v", "libx264", "-threads", "4", "-f", "null", "-"])
            .env(MARK_VAR, mark_of(dir.path()))
            .spawn()
            .expect("start ffmpeg");
        let tasks = format!("/proc/{}/task", encoder.id());
        let started = std::time::Instant::now();
        while std::fs::read_dir(&tasks).map_or(0, |d| d.count()) < 2 {
            assert!(started.elapsed() < Duration::from_secs(20), "no threads");
            std::thread::sleep(Duration::from_millis(20));
        }
        assert_eq!(kill_encoders_of(dir.path()), 0);
        std::thread::sleep(Duration::from_millis(200));
        assert!(
            encoder.try_wait().expect("poll ffmpeg").is_none(),
            "the scan killed a running node's encoder"
        );
        encoder.kill().expect("stop ffmpeg");
        let _ = encoder.wait();
    }
}
