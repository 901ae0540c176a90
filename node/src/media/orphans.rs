//! No encoder outlives its node. Every ffmpeg/ffprobe a node runs names a
//! file in its data dir (inputs, outputs and pipes live there), so the
//! processes of ours are told by their command line. Two moments reap
//! them: a starting node kills what an earlier run of it left; and a
//! small watcher process (`vidshard-node reap`, started by the node with
//! a pipe on its stdin) kills them as soon as the pipe closes, which is
//! when the node is gone however it died, `kill -9` included. (A
//! parent-death signal would need `pre_exec`, which is `unsafe`.)

use std::ffi::OsString;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::Duration;

use sysinfo::{ProcessRefreshKind, ProcessesToUpdate, Signal, UpdateKind};

/// The programs a node runs.
const OURS: [&str; 2] = ["ffmpeg", "ffprobe"];

/// The ways a process's command line may name `data_dir`: as configured
/// and as an absolute path, each ending in `/` so `n1` never matches `n10`.
pub fn data_dir_marks(data_dir: &Path) -> Vec<String> {
    let mut marks = vec![format!("{}/", data_dir.display())];
    if let Ok(absolute) = std::fs::canonicalize(data_dir) {
        marks.push(format!("{}/", absolute.display()));
    }
    marks.dedup();
    marks
}

/// Whether a process named `name` with arguments `cmd` (started in `cwd`)
/// is an encoder of the node whose data dir `marks` name (pure).
pub fn is_ours(name: &str, cmd: &[OsString], cwd: Option<&Path>, marks: &[String]) -> bool {
    if !OURS.contains(&name) {
        return false;
    }
    cmd.iter().skip(1).any(|arg| {
        let arg = arg.to_string_lossy();
        let resolved = match cwd {
            Some(cwd) if !arg.starts_with('/') => cwd.join(arg.as_ref()).display().to_string(),
            _ => arg.to_string(),
        };
        marks
            .iter()
            .any(|mark| arg.contains(mark.as_str()) || resolved.contains(mark.as_str()))
    })
}

/// Kills every encoder of the node at `data_dir` still running whose
/// parent is not a running node (a node restarted on the same data dir
/// keeps its own); answers how many. Blocking (reads /proc): call from a
/// blocking thread.
pub fn kill_encoders_of(data_dir: &Path) -> usize {
    let marks = data_dir_marks(data_dir);
    let mut system = sysinfo::System::new();
    system.refresh_processes_specifics(
        ProcessesToUpdate::All,
        true,
        ProcessRefreshKind::nothing()
            .with_cmd(UpdateKind::Always)
            .with_cwd(UpdateKind::Always),
    );
    let own = sysinfo::get_current_pid().ok();
    let node_name = std::env::current_exe()
        .ok()
        .and_then(|exe| exe.file_name().map(|n| n.to_string_lossy().into_owned()))
        .unwrap_or_else(|| "vidshard-node".into());
    let parent_is_a_node = |process: &sysinfo::Process| {
        process
            .parent()
            .and_then(|parent| system.process(parent))
            .is_some_and(|parent| {
                // The kernel keeps 15 bytes of a process name.
                let parent = parent.name().to_string_lossy();
                parent == node_name || (parent.len() == 15 && node_name.starts_with(&*parent))
            })
    };
    let mut killed = 0;
    for (pid, process) in system.processes() {
        let name = process.name().to_string_lossy();
        if Some(*pid) != own
            && is_ours(&name, process.cmd(), process.cwd(), &marks)
            && !parent_is_a_node(process)
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

    fn args(list: &[&str]) -> Vec<OsString> {
        list.iter().map(OsString::from).collect()
    }

    #[test]
    fn encoders_are_told_by_the_data_dir_they_name() {
        let marks = vec!["/var/lib/vidshard/n1/".to_string()];
        let ffmpeg = args(&["ffmpeg", "-i", "/var/lib/vidshard/n1/tmp/job/a.mp4", "out"]);
        assert!(is_ours("ffmpeg", &ffmpeg, None, &marks));
        assert!(!is_ours("bash", &ffmpeg, None, &marks));
        let other_node = args(&["ffmpeg", "-i", "/var/lib/vidshard/n10/tmp/a.mp4"]);
        assert!(!is_ours("ffmpeg", &other_node, None, &marks));
        let relative = args(&["ffprobe", "n1/blobs/ab/cd"]);
        assert!(is_ours(
            "ffprobe",
            &relative,
            Some(Path::new("/var/lib/vidshard")),
            &marks
        ));
        // The program path itself does not count.
        let named = args(&["/var/lib/vidshard/n1/ffmpeg", "-version"]);
        assert!(!is_ours("ffmpeg", &named, None, &marks));
    }
}
