//! Every codec through three nodes, as a user asks for it with
//! `vidshard upload --codec`: HEVC tagged for Apple players, AV1 in MP4
//! and WebM, each output frame-exact with its audio.

mod common;

use common::client::encode_with_cli as encode;
use common::clips::{decode_errors, hevc_clip, make_clip, report, video_entry};
use common::cluster::Cluster;

#[tokio::test(flavor = "multi_thread")]
async fn hevc_and_av1_come_out_frame_exact_in_their_containers() {
    let dir = tempfile::tempdir().expect("temp dir");
    let clip = make_clip(&dir.path().join("clip.mp4"), 6, 320, 180, true);
    let source = report(&clip);
    let cluster = Cluster::start(&dir.path().join("cluster"));
    let master = cluster.formed().await;

    for (codec, format, tag) in [
        ("hevc", "mp4", Some("hvc1")),
        ("av1", "mp4", Some("av01")),
        ("av1", "webm", None),
        ("hevc", "mkv", None),
    ] {
        let out = dir.path().join(format!("{codec}.{format}"));
        let options = ["--codec", codec, "--format", format, "--height", "90"];
        encode(&cluster, &master, &clip, &out, &options);
        let got = report(&out);
        assert_eq!(got.video_codec, codec, "{codec} in {format}");
        assert_eq!((got.width, got.height), (160, 90), "{codec} in {format}");
        assert_eq!(
            got.frames, source.frames,
            "{codec} in {format}: every frame"
        );
        let audio = (got.audio_seconds.expect("output audio")
            - source.audio_seconds.expect("source audio"))
        .abs();
        assert!(audio <= 0.05, "{codec} in {format}: audio off by {audio} s");
        if let Some(tag) = tag {
            assert_eq!(
                video_entry(&out, "codec_tag_string"),
                tag,
                "{codec} in {format}"
            );
        }
        assert_eq!(
            video_entry(&out, "pix_fmt"),
            "yuv420p",
            "{codec} in {format}"
        );
        assert_eq!(
            decode_errors(&out),
            "",
            "{codec} in {format} decodes cleanly"
        );
    }

    // A 10-bit source stays 10-bit in HEVC and AV1 unless 8 bits are
    // asked for; H.264 is 8-bit unless 10 bits are asked for.
    let deep = hevc_clip(&dir.path().join("deep.mkv"), 4, "");
    let frames = report(&deep).frames;
    for (options, pix_fmt) in [
        (&["--codec", "hevc"][..], "yuv420p10le"),
        (&["--codec", "av1", "--format", "mkv"], "yuv420p10le"),
        (&["--codec", "hevc", "--pix-fmt", "yuv420p"], "yuv420p"),
        (&["--codec", "h264"], "yuv420p"),
        (
            &[
                "--codec",
                "h264",
                "--pix-fmt",
                "yuv420p10le",
                "--format",
                "mkv",
            ],
            "yuv420p10le",
        ),
    ] {
        let out = dir.path().join(format!("deep-{}.out", options.join("")));
        encode(&cluster, &master, &deep, &out, options);
        assert_eq!(video_entry(&out, "pix_fmt"), pix_fmt, "{options:?}");
        assert_eq!(report(&out).frames, frames, "{options:?}: every frame");
        assert_eq!(decode_errors(&out), "", "{options:?} decodes cleanly");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_job_no_node_can_encode_fails_at_once_with_the_reason() {
    let dir = tempfile::tempdir().expect("temp dir");
    let clip = make_clip(&dir.path().join("clip.mp4"), 4, 320, 180, true);
    // An ffmpeg built without SVT-AV1: it lists every encoder but that one.
    let no_av1 = dir.path().join("ffmpeg-without-av1");
    std::fs::write(
        &no_av1,
        "#!/bin/sh\ncase \"$*\" in *-encoders*) ffmpeg \"$@\" | grep -v libsvtav1; exit 0;; esac\n\
         exec ffmpeg \"$@\"\n",
    )
    .expect("write the wrapper");
    std::fs::set_permissions(&no_av1, std::os::unix::fs::PermissionsExt::from_mode(0o755))
        .expect("make it executable");
    let node = common::node::NodeProc::start(
        &dir.path().join("node"),
        &["--ffmpeg", no_av1.to_str().expect("utf8")],
    );
    let out = dir.path().join("out.mp4");
    let run = common::client::vidshard(
        &node.address,
        &[
            "upload",
            clip.to_str().expect("utf8"),
            "--codec",
            "av1",
            "--id",
            "av1",
            "--output",
            out.to_str().expect("utf8"),
        ],
    );
    assert!(!run.status.success(), "nobody can encode AV1 here");
    let err = String::from_utf8_lossy(&run.stderr);
    assert!(
        err.contains("no live node can encode this job: it needs libsvtav1")
            && err.contains("libx264"),
        "{err}"
    );
    assert!(!out.exists());
    let info = common::job(node.channel().await, "av1")
        .await
        .expect("get job");
    assert_eq!(info.status, "failed_segmentation", "{}", info.message);
    assert!(
        info.shards.iter().all(|s| s.attempts == 0),
        "no shard was tried"
    );
    // H.264 still works on the same node.
    let h264 = dir.path().join("h264.mp4");
    let run = common::client::vidshard(
        &node.address,
        &[
            "upload",
            clip.to_str().expect("utf8"),
            "--output",
            h264.to_str().expect("utf8"),
        ],
    );
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
}
