//! End to end through a real node: upload over the original protocol,
//! wait, retrieve, and check what a user would check with ffprobe.

mod common;

use std::time::Duration;

use common::clips::{make_clip, report};
use common::node::NodeProc;
use common::{Params, retrieve, upload_file, wait_finished};

const JOB_TIMEOUT: Duration = Duration::from_secs(240);

/// Encodes `clip` with `params` and checks the output file against the
/// source; returns the output's report.
async fn encode_and_check(
    node: &NodeProc,
    clip: &std::path::Path,
    params: &Params,
    want: (u64, u64),
    codec: &str,
) -> common::clips::Report {
    let source = report(clip);
    let channel = node.channel().await;
    let id = upload_file(channel.clone(), "clip.mp4", clip, params).await;
    let info = wait_finished(channel.clone(), &id, JOB_TIMEOUT).await;
    assert_eq!(info.status, "completed", "{}", info.message);
    assert!(!info.shards.is_empty());
    assert!(
        info.shards.iter().all(|s| s.state == "done"),
        "{:?}",
        info.shards
    );
    let shard_frames: u64 = info.shards.iter().map(|s| s.frames).sum();
    assert_eq!(shard_frames, source.frames, "shards must cover every frame");

    let out = node.data_dir.join(format!("retrieved.{}", params.format));
    let (sha, size) = retrieve(channel, &id, &out).await.expect("retrieve");
    assert_eq!(
        sha, info.output_sha256,
        "bytes differ from what the node stored"
    );
    assert_eq!(size, info.output_bytes);

    let got = report(&out);
    assert_eq!(
        got.frames, source.frames,
        "frame count must equal the input's"
    );
    assert_eq!((got.width, got.height), want);
    assert_eq!(got.video_codec, codec);
    match (source.audio_seconds, got.audio_seconds) {
        (Some(a), Some(b)) => assert!((a - b).abs() <= 0.05, "audio {b} s vs source {a} s"),
        (None, None) => {}
        other => panic!("audio presence changed: {other:?}"),
    }
    assert!(
        (got.format_seconds - source.format_seconds).abs() <= 1.0 / 30.0 + 0.03,
        "{} vs {}",
        got.format_seconds,
        source.format_seconds
    );
    got
}

#[tokio::test(flavor = "multi_thread")]
async fn twenty_five_seconds_to_mp4_mkv_and_webm() {
    let dir = tempfile::tempdir().expect("tempdir");
    let clip = make_clip(&dir.path().join("clip.mp4"), 25, 640, 360, true);
    let node = NodeProc::start(&dir.path().join("node"), &[]);
    let mp4 = encode_and_check(
        &node,
        &clip,
        &Params::size(320, 180, "mp4"),
        (320, 180),
        "h264",
    )
    .await;
    assert_eq!(mp4.audio_codec.as_deref(), Some("aac"));
    let mkv = encode_and_check(
        &node,
        &clip,
        &Params::size(320, 180, "mkv"),
        (320, 180),
        "h264",
    )
    .await;
    assert_eq!(mkv.audio_codec.as_deref(), Some("aac"));
    let webm = encode_and_check(
        &node,
        &clip,
        &Params::size(320, 180, "webm"),
        (320, 180),
        "vp9",
    )
    .await;
    assert_eq!(webm.audio_codec.as_deref(), Some("opus"));
}

#[tokio::test(flavor = "multi_thread")]
async fn clip_without_audio_stays_silent_and_mov_works() {
    let dir = tempfile::tempdir().expect("tempdir");
    let clip = make_clip(&dir.path().join("silent.mp4"), 3, 640, 360, false);
    // A relative data dir, as a unit file or a shell would give it.
    let node = NodeProc::start_in(dir.path(), std::path::Path::new("node"), &[]);
    let got = encode_and_check(
        &node,
        &clip,
        &Params::size(0, 180, "mov"),
        (320, 180),
        "h264",
    )
    .await;
    assert_eq!(got.audio_codec, None);
}

#[tokio::test(flavor = "multi_thread")]
async fn upscale_size_makes_a_bigger_output() {
    let dir = tempfile::tempdir().expect("tempdir");
    let clip = make_clip(&dir.path().join("small.mp4"), 3, 320, 180, true);
    let node = NodeProc::start(&dir.path().join("node"), &[]);
    let params = Params {
        upscale_width: 640,
        upscale_height: 360,
        ..Params::size(160, 90, "mp4")
    };
    encode_and_check(&node, &clip, &params, (640, 360), "h264").await;
    // Without an upscale size, a box bigger than the source keeps the source size.
    encode_and_check(
        &node,
        &clip,
        &Params::size(1280, 720, "mp4"),
        (320, 180),
        "h264",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn webm_source_with_short_shards_keeps_every_frame() {
    let dir = tempfile::tempdir().expect("tempdir");
    let clip = make_clip(&dir.path().join("source.webm"), 8, 320, 240, true);
    let node = NodeProc::start(&dir.path().join("node"), &["--shard-seconds", "2"]);
    let channel = node.channel().await;
    let id = upload_file(
        channel.clone(),
        "source.webm",
        &clip,
        &Params::size(160, 120, "mp4"),
    )
    .await;
    let info = wait_finished(channel.clone(), &id, JOB_TIMEOUT).await;
    assert_eq!(info.status, "completed", "{}", info.message);
    assert!(
        info.shards.len() >= 3,
        "2 s shards expected, got {}",
        info.shards.len()
    );
    let out = dir.path().join("out.mp4");
    retrieve(channel, &id, &out).await.expect("retrieve");
    let got = report(&out);
    assert_eq!(got.frames, 240);
    assert_eq!(got.audio_codec.as_deref(), Some("aac"));
}

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_stops_the_node_cleanly() {
    let dir = tempfile::tempdir().expect("tempdir");
    let node = NodeProc::start(&dir.path().join("node"), &[]);
    let status = node.terminate();
    assert!(status.success(), "exit status {status:?}");
}
