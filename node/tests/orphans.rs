//! No encoder outlives its node (issue 19, item 2): `kill -9` of a node
//! mid-encode leaves none of its ffmpeg processes running 2 s later, and
//! a node starting on a data dir kills the encoders an earlier run left
//! (marked `VIDSHARD_ENCODER_OF=<data dir>`), never another ffmpeg, even
//! one writing into the data dir.

mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::clips::make_clip;
use common::node::NodeProc;
use common::{Params, upload_file, wait_for};

/// The environment entry marking the encoders of the node at `data_dir`.
fn mark(data_dir: &Path) -> String {
    let absolute = std::fs::canonicalize(data_dir).expect("data dir");
    format!("VIDSHARD_ENCODER_OF={}", absolute.display())
}

/// Pids of ffmpeg/ffprobe processes marked as the node's at `data_dir`.
fn encoders_of(data_dir: &Path) -> Vec<u32> {
    let mark = mark(data_dir);
    let mut pids = Vec::new();
    for entry in std::fs::read_dir("/proc").expect("/proc").flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let comm = std::fs::read_to_string(entry.path().join("comm")).unwrap_or_default();
        if !matches!(comm.trim(), "ffmpeg" | "ffprobe") {
            continue;
        }
        let environ = std::fs::read(entry.path().join("environ")).unwrap_or_default();
        if environ
            .split(|b| *b == 0)
            .any(|entry| entry == mark.as_bytes())
        {
            pids.push(pid);
        }
    }
    pids
}

/// The command line of process `pid`, arguments joined by spaces.
fn cmdline(pid: u32) -> String {
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .unwrap_or_default()
        .split(|b| *b == 0)
        .map(|arg| String::from_utf8_lossy(arg).into_owned())
        .collect::<Vec<_>>()
        .join(" ")
}

#[tokio::test(flavor = "multi_thread")]
async fn a_node_killed_mid_encode_leaves_no_encoder_running() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data_dir = dir.path().join("n");
    let node = NodeProc::start(&data_dir, &["--shard-seconds", "4"]);
    let clip = make_clip(&dir.path().join("in.mp4"), 24, 640, 480, true);
    upload_file(
        node.channel().await,
        "in.mp4",
        &clip,
        &Params::size(1280, 960, "mp4"),
    )
    .await;
    // Mid-encode and mid-join at once: a shard's x264 and the join's
    // ffmpeg (started at the plan, fed each shard as it is encoded).
    let running = wait_for(
        "a shard encoder and the join running",
        Duration::from_secs(60),
        || {
            let data_dir = data_dir.clone();
            async move {
                let pids = encoders_of(&data_dir);
                let lines: Vec<String> = pids.iter().map(|pid| cmdline(*pid)).collect();
                let encoding = lines.iter().any(|l| l.contains("libx264"));
                let joining = lines.iter().any(|l| l.contains("concat"));
                (encoding && joining).then_some(pids)
            }
        },
    )
    .await;
    let status = Command::new("kill")
        .args(["-9", &node.pid().to_string()])
        .status()
        .expect("kill -9");
    assert!(status.success());
    let killed = Instant::now();
    wait_for(
        "the node's encoders to be gone",
        Duration::from_secs(2),
        || {
            let data_dir = data_dir.clone();
            async move { encoders_of(&data_dir).is_empty().then_some(()) }
        },
    )
    .await;
    eprintln!(
        "{} encoder(s) gone {:?} after kill -9",
        running.len(),
        killed.elapsed()
    );
}

/// Kills a child when the test ends, however it ends.
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_starting_node_kills_encoders_an_earlier_run_left() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data_dir = dir.path().join("n");
    std::fs::create_dir_all(&data_dir).expect("data dir");
    // An encoder of an earlier run (marked as the node's), and an ffmpeg
    // of someone else writing into the same directory.
    let unrelated = Command::new("ffmpeg")
        .args(["-nostdin", "-v", "error", "-re", "-f", "lavfi", "-i"])
        .arg("testsrc2=size=160x120:rate=30")
        .args(["-t", "120", "-y"])
        .arg(data_dir.join("unrelated.mkv"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start ffmpeg");
    let mut unrelated = KillOnDrop(unrelated);
    let mut leftover = Command::new("ffmpeg")
        .env(
            "VIDSHARD_ENCODER_OF",
            std::fs::canonicalize(&data_dir).expect("data dir"),
        )
        .args(["-nostdin", "-v", "error", "-re", "-f", "lavfi", "-i"])
        .arg("testsrc2=size=160x120:rate=30")
        .args(["-t", "120", "-y"])
        .arg(data_dir.join("leftover.mkv"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start ffmpeg");
    wait_for("the leftover to run", Duration::from_secs(10), || {
        let data_dir = data_dir.clone();
        async move { (!encoders_of(&data_dir).is_empty()).then_some(()) }
    })
    .await;
    let node = NodeProc::start(&data_dir, &[]);
    // Killed before the node listened; at most a moment to be reaped here.
    let ended = wait_for("the leftover to end", Duration::from_secs(2), || {
        let ended = leftover.try_wait().expect("wait");
        async move { ended }
    })
    .await;
    assert!(!ended.success(), "killed, not finished: {ended:?}");
    assert_eq!(
        unrelated.0.try_wait().expect("wait"),
        None,
        "an ffmpeg that is not the node's keeps running"
    );
    assert!(
        node.log_text()
            .contains("killed encoders an earlier run of this node left running"),
        "the node says so"
    );
}
