//! The memory limit on the node's ffmpeg children (`--encoder-memory-mb`):
//! the real encoder of a shard runs under it and still encodes a normal
//! job, and an encode that needs more than the limit fails the job with a
//! reason naming the limit, while the node goes on serving.

mod common;

use std::time::{Duration, Instant};

use common::clips::make_clip;
use common::node::NodeProc;
use common::{Params, upload_file, wait_finished};

const JOB_TIMEOUT: Duration = Duration::from_secs(240);

/// The parent process id in a /proc/<pid>/stat line (after the command
/// name, which may hold spaces and parentheses).
fn parent_of(stat: &str) -> Option<u32> {
    let after_name = &stat[stat.rfind(')')? + 1..];
    after_name.split_whitespace().nth(1)?.parse().ok()
}

/// The "Max address space" soft limit of every running x264 encoder that
/// `parent` started (its ffmpeg children encoding a shard).
fn encoder_limits(parent: u32) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    let mut found = Vec::new();
    for entry in entries.flatten() {
        let proc_dir = entry.path();
        let stat = std::fs::read_to_string(proc_dir.join("stat")).unwrap_or_default();
        if parent_of(&stat) != Some(parent) {
            continue;
        }
        let cmdline = std::fs::read(proc_dir.join("cmdline")).unwrap_or_default();
        if !String::from_utf8_lossy(&cmdline).contains("libx264") {
            continue;
        }
        let limits = std::fs::read_to_string(proc_dir.join("limits")).unwrap_or_default();
        if let Some(line) = limits.lines().find(|l| l.starts_with("Max address space")) {
            found.extend(line.split_whitespace().nth(3).map(str::to_string));
        }
    }
    found
}

#[tokio::test(flavor = "multi_thread")]
async fn shard_encoders_run_under_the_memory_limit() {
    let dir = tempfile::tempdir().expect("tempdir");
    let clip = make_clip(&dir.path().join("clip.mp4"), 20, 1280, 720, true);
    let node = NodeProc::start(
        &dir.path().join("node"),
        &["--slots", "1", "--encoder-memory-mb", "6000"],
    );
    assert!(
        node.log_text()
            .contains("each ffmpeg/ffprobe may map at most 6000 MiB"),
        "{}",
        node.log_text()
    );
    let channel = node.channel().await;
    let id = upload_file(
        channel.clone(),
        "clip.mp4",
        &clip,
        &Params::size(640, 360, "mp4"),
    )
    .await;
    // Watch the node's children until an encoder shows up.
    let deadline = Instant::now() + JOB_TIMEOUT;
    let limits = loop {
        let limits = encoder_limits(node.pid());
        if !limits.is_empty() {
            break limits;
        }
        assert!(Instant::now() < deadline, "no encoder seen");
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    assert!(
        limits.iter().all(|l| l == &(6000u64 << 20).to_string()),
        "the encoders' address-space limits: {limits:?}"
    );
    let info = wait_finished(channel, &id, JOB_TIMEOUT).await;
    assert_eq!(info.status, "completed", "{}", info.message);
}

/// A 4K upscale maps about 1.1 GiB in ffmpeg; under a 600 MiB limit (the
/// probe, split and join of the small source need under 300 MiB) every
/// try of the shard runs out of memory and the job fails saying so.
#[tokio::test(flavor = "multi_thread")]
async fn an_encode_over_the_limit_fails_naming_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let clip = make_clip(&dir.path().join("clip.mp4"), 4, 320, 240, true);
    let mut node = NodeProc::start(
        &dir.path().join("node"),
        &["--slots", "1", "--encoder-memory-mb", "600"],
    );
    let channel = node.channel().await;
    let params = Params {
        upscale_width: 3840,
        upscale_height: 2160,
        ..Params::size(3840, 2160, "mp4")
    };
    let id = upload_file(channel.clone(), "clip.mp4", &clip, &params).await;
    let info = wait_finished(channel.clone(), &id, JOB_TIMEOUT).await;
    println!("the job's reason: {}", info.message);
    assert_eq!(info.status, "processing_failed", "{}", info.message);
    assert!(
        info.message.contains(
            "ran out of memory under this node's limit of 600 MiB per ffmpeg process (--encoder-memory-mb)"
        ),
        "the job's reason names the limit: {}",
        info.message
    );
    assert!(
        info.message.len() < 1000,
        "a plain reason: {}",
        info.message
    );
    assert!(node.is_running(), "the node survives");
    // And still encodes what fits.
    let small = Params::size(320, 240, "mp4");
    let id = upload_file(channel.clone(), "small.mp4", &clip, &small).await;
    let info = wait_finished(channel, &id, JOB_TIMEOUT).await;
    assert_eq!(info.status, "completed", "{}", info.message);
}
