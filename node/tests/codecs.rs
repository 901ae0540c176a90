//! Every codec through three nodes, as a user asks for it with
//! `vidshard upload --codec`: HEVC tagged for Apple players, AV1 in MP4
//! and WebM, each output frame-exact with its audio.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::client::vidshard;
use common::clips::{make_clip, report};
use common::cluster::Cluster;

/// ffprobe's `entry` (e.g. `codec_tag_string`) of the first video stream.
fn video_entry(path: &Path, entry: &str) -> String {
    let out = Command::new("ffprobe")
        .args(["-v", "error", "-select_streams", "v:0", "-show_entries"])
        .arg(format!("stream={entry}"))
        .args(["-of", "csv=p=0"])
        .arg(path)
        .output()
        .expect("run ffprobe");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// A 10-bit HEVC clip (video only) of `seconds` at 320x180.
fn ten_bit_clip(path: &Path, seconds: u32) -> PathBuf {
    let status = Command::new("ffmpeg")
        .args(["-nostdin", "-v", "error", "-y", "-f", "lavfi", "-i"])
        .arg(format!("testsrc2=size=320x180:rate=30:duration={seconds}"))
        .args(["-c:v", "libx265", "-preset", "ultrafast", "-x265-params"])
        .args(["log-level=error:keyint=60:min-keyint=60:scenecut=0:open-gop=0"])
        .args(["-pix_fmt", "yuv420p10le"])
        .arg(path)
        .status()
        .expect("run ffmpeg");
    assert!(status.success(), "making the 10-bit clip");
    path.to_path_buf()
}

/// Uploads `clip` with `options` and saves the output as `out`.
fn encode(cluster: &Cluster, master: &str, clip: &Path, out: &Path, options: &[&str]) {
    let mut args = vec!["upload", clip.to_str().expect("utf8")];
    args.extend_from_slice(options);
    args.extend(["--output", out.to_str().expect("utf8")]);
    let run = vidshard(master, &args);
    if !run.status.success() {
        cluster.print_logs(40);
    }
    assert!(
        run.status.success(),
        "{options:?}: {}",
        String::from_utf8_lossy(&run.stderr)
    );
}

/// Decode errors ffmpeg reports reading the whole file.
fn decode_errors(path: &Path) -> String {
    let out = Command::new("ffmpeg")
        .args(["-nostdin", "-v", "error", "-i"])
        .arg(path)
        .args(["-f", "null", "-"])
        .output()
        .expect("run ffmpeg");
    String::from_utf8_lossy(&out.stderr).trim().to_string()
}

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
    let deep = ten_bit_clip(&dir.path().join("deep.mkv"), 4);
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
