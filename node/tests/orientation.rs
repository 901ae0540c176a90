//! Phone videos come out upright: a clip whose display matrix turns it
//! (as a phone writes a portrait video) is encoded through three nodes to
//! the picture plain ffmpeg shows, every frame kept, sizes counted on the
//! displayed picture, and no matrix left to turn it twice.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::clips::{make_clip, report};
use common::cluster::{Cluster, lazy_channel};
use common::{Params, retrieve, upload_file, wait_finished};

const JOB_TIMEOUT: Duration = Duration::from_secs(240);

/// `source` with a display matrix written by the mp4 muxer's `rotate`
/// tag (stream copy: the stored pictures are unchanged).
fn turned(source: &Path, degrees: u32) -> PathBuf {
    let out = source.with_file_name(format!("turned{degrees}.mp4"));
    let status = Command::new("ffmpeg")
        .args(["-nostdin", "-v", "error", "-y", "-i"])
        .arg(source)
        .args(["-c", "copy", "-metadata:s:v:0"])
        .arg(format!("rotate={degrees}"))
        .arg(&out)
        .status()
        .expect("run ffmpeg");
    assert!(status.success(), "writing the rotate tag");
    out
}

/// The display matrix's rotation ffprobe reports, if the file has one.
fn matrix_rotation(path: &Path) -> Option<i64> {
    let out = Command::new("ffprobe")
        .args(["-v", "error", "-select_streams", "v:0", "-show_entries"])
        .args(["stream_side_data=rotation", "-of", "csv=p=0"])
        .arg(path)
        .output()
        .expect("run ffprobe");
    String::from_utf8_lossy(&out.stdout).trim().parse().ok()
}

/// Mean PSNR of `encoded` against `source` as ffmpeg decodes it (turned
/// by its matrix unless `autorotate` is false), scaled to the encoded size.
fn psnr_against(encoded: &Path, source: &Path, autorotate: bool, size: (u64, u64)) -> f64 {
    let mut cmd = Command::new("ffmpeg");
    cmd.args(["-nostdin", "-hide_banner", "-i"]).arg(encoded);
    if !autorotate {
        cmd.arg("-noautorotate");
    }
    let graph = format!(
        "[1:v]scale={}:{}:flags=bicubic,format=yuv420p[ref];[0:v]format=yuv420p[enc];[enc][ref]psnr",
        size.0, size.1
    );
    let out = cmd
        .arg("-i")
        .arg(source)
        .args(["-lavfi", &graph, "-f", "null", "-"])
        .output()
        .expect("run ffmpeg");
    let log = String::from_utf8_lossy(&out.stderr);
    let average = log
        .lines()
        .filter(|l| l.contains("PSNR"))
        .find_map(|l| l.split("average:").nth(1))
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("no PSNR in ffmpeg's log:\n{log}"));
    if average == "inf" {
        return f64::INFINITY;
    }
    average.parse().expect("a PSNR figure")
}

/// Encodes `clip` through the cluster at `width`×`height` (0: keep) and
/// answers the retrieved output.
async fn encode(cluster: &Cluster, master: &str, clip: &Path, width: i32, height: i32) -> PathBuf {
    let channel = lazy_channel(master);
    let name = clip
        .file_name()
        .expect("a file name")
        .to_string_lossy()
        .into_owned();
    let id = upload_file(
        channel.clone(),
        &name,
        clip,
        &Params::size(width, height, "mp4"),
    )
    .await;
    let info = wait_finished(channel.clone(), &id, JOB_TIMEOUT).await;
    if info.status != "completed" {
        cluster.print_logs(40);
    }
    assert_eq!(info.status, "completed", "{}", info.message);
    assert!(info.shards.len() >= 2, "{} shards", info.shards.len());
    let out = cluster.root.join(format!("out-{name}"));
    retrieve(channel, &id, &out).await.expect("retrieve");
    out
}

#[tokio::test(flavor = "multi_thread")]
async fn turned_videos_come_out_as_they_are_displayed() {
    let dir = tempfile::tempdir().expect("temp dir");
    let plain = make_clip(&dir.path().join("plain.mp4"), 4, 320, 180, true);
    let cluster = Cluster::start(&dir.path().join("cluster"));
    let master = cluster.formed().await;
    let source = report(&plain);

    for degrees in [90, 180, 270] {
        let clip = turned(&plain, degrees);
        assert!(matrix_rotation(&clip).is_some(), "the clip has a matrix");
        let out = encode(&cluster, &master, &clip, 0, 0).await;
        let got = report(&out);
        let upright = if degrees == 180 {
            (320, 180)
        } else {
            (180, 320)
        };
        assert_eq!(
            (got.width, got.height),
            upright,
            "rotate={degrees}: the source size, as displayed"
        );
        assert_eq!(got.frames, source.frames, "rotate={degrees}: every frame");
        assert_eq!(
            matrix_rotation(&out),
            None,
            "rotate={degrees}: upright pixels, no matrix to turn them again"
        );
        // The pictures are ffmpeg's own upright ones, not the stored ones.
        let shown = psnr_against(&out, &clip, true, upright);
        let stored = psnr_against(&out, &clip, false, upright);
        assert!(
            shown > 30.0 && stored < shown - 10.0,
            "rotate={degrees}: PSNR {shown:.1} dB against the displayed picture, {stored:.1} dB against the stored one"
        );
        let audio = (got.audio_seconds.expect("output audio")
            - source.audio_seconds.expect("source audio"))
        .abs();
        assert!(audio <= 0.05, "rotate={degrees}: audio off by {audio} s");
    }

    // Sizes are of the displayed picture: a width of 90 on a portrait.
    let portrait = dir.path().join("portrait.mp4");
    std::fs::copy(turned(&plain, 90), &portrait).expect("copy");
    let out = encode(&cluster, &master, &portrait, 90, 0).await;
    let got = report(&out);
    assert_eq!((got.width, got.height), (90, 160));

    // Upright in every codec, not only H.264.
    for (codec, format) in [("hevc", "mp4"), ("av1", "webm"), ("vp9", "webm")] {
        let out = dir.path().join(format!("portrait-{codec}.{format}"));
        let options = ["--codec", codec, "--format", format, "--width", "90"];
        common::client::encode_with_cli(&cluster, &master, &portrait, &out, &options);
        let got = report(&out);
        assert_eq!((got.width, got.height), (90, 160), "{codec}: upright");
        assert_eq!(got.video_codec, codec);
        assert_eq!(got.frames, report(&portrait).frames, "{codec}: every frame");
        assert_eq!(matrix_rotation(&out), None, "{codec}: no matrix left");
        let shown = psnr_against(&out, &portrait, true, (90, 160));
        let stored = psnr_against(&out, &portrait, false, (90, 160));
        assert!(
            shown > 30.0 && stored < shown - 10.0,
            "{codec}: PSNR {shown:.1} dB against the displayed picture, {stored:.1} dB against the stored one"
        );
    }
}
