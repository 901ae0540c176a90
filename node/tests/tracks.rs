//! Every track of real-world files through three nodes: two audio tracks
//! with languages and titles, a text subtitle, chapters and global
//! metadata in MKV, to MP4 and MKV; `--audio first|none`; and a variable
//! frame rate video, frame-exact with its audio in step.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::client::encode_with_cli as encode;
use common::clips::{decode_errors, report};
use common::cluster::Cluster;
use serde_json::Value;

/// 6 s at 30 fps (keyframes every 2 s): English and French audio tracks
/// with titles, an English SubRip track, two chapters, a title and a
/// creation time.
fn rich_mkv(dir: &Path) -> PathBuf {
    let srt = dir.join("subs.srt");
    std::fs::write(
        &srt,
        "1\n00:00:00,500 --> 00:00:02,000\nHello\n\n2\n00:00:03,000 --> 00:00:05,000\nWorld\n",
    )
    .expect("test data");
    let meta = dir.join("meta.txt");
    std::fs::write(
        &meta,
        ";FFMETADATA1\ntitle=My Talk\ncreation_time=2024-05-01T10:00:00.000000Z\n\n\
         [CHAPTER]\nTIMEBASE=1/1000\nSTART=0\nEND=3000\ntitle=Intro\n\n\
         [CHAPTER]\nTIMEBASE=1/1000\nSTART=3000\nEND=6000\ntitle=Main\n",
    )
    .expect("test data");
    let path = dir.join("rich.mkv");
    let status = Command::new("ffmpeg")
        .args(["-nostdin", "-v", "error", "-y"])
        .args(["-f", "lavfi", "-i", "testsrc2=s=320x180:r=30:d=6"])
        .args(["-f", "lavfi", "-i", "sine=f=440:d=6:sample_rate=48000"])
        .args(["-f", "lavfi", "-i", "sine=f=660:d=6:sample_rate=48000"])
        .arg("-i")
        .arg(&srt)
        .arg("-i")
        .arg(&meta)
        .args(["-map", "0:v", "-map", "1:a", "-map", "2:a", "-map", "3:s"])
        .args(["-map_metadata", "4", "-map_chapters", "4"])
        .args(["-c:v", "libx264", "-preset", "ultrafast", "-g", "60"])
        .args(["-c:a:0", "aac", "-c:a:1", "libopus", "-c:s", "srt"])
        .args([
            "-metadata:s:a:0",
            "language=eng",
            "-metadata:s:a:0",
            "title=English",
        ])
        .args([
            "-metadata:s:a:1",
            "language=fra",
            "-metadata:s:a:1",
            "title=Français",
        ])
        .args(["-metadata:s:s:0", "language=eng"])
        .arg(&path)
        .status()
        .expect("run ffmpeg");
    assert!(status.success());
    path
}

fn probe(path: &Path) -> Value {
    let out = Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-show_streams",
            "-show_chapters",
            "-show_format",
        ])
        .args(["-of", "json"])
        .arg(path)
        .output()
        .expect("run ffprobe");
    serde_json::from_slice(&out.stdout).expect("ffprobe json")
}

fn streams<'a>(probe: &'a Value, kind: &str) -> Vec<&'a Value> {
    probe["streams"]
        .as_array()
        .expect("test data")
        .iter()
        .filter(|s| s["codec_type"] == kind)
        .collect()
}

fn tag<'a>(v: &'a Value, name: &str) -> &'a str {
    v["tags"][name].as_str().unwrap_or("")
}

fn duration(stream: &Value) -> f64 {
    stream["duration"]
        .as_str()
        .and_then(|d| d.parse().ok())
        .or_else(|| {
            let text = tag(stream, "DURATION");
            let mut parts = text.split(':').map(|p| p.parse::<f64>().ok());
            Some(parts.next()?? * 3600.0 + parts.next()?? * 60.0 + parts.next()??)
        })
        .expect("a duration")
}

#[tokio::test(flavor = "multi_thread")]
async fn audio_tracks_subtitles_chapters_and_metadata_survive_the_cluster() {
    let dir = tempfile::tempdir().expect("temp dir");
    let clip = rich_mkv(dir.path());
    let source = probe(&clip);
    let source_frames = report(&clip).frames;
    let cluster = Cluster::start(&dir.path().join("cluster"));
    let master = cluster.formed().await;

    for (codec, format, subtitle_codec) in [
        ("h264", "mp4", "mov_text"),
        ("h264", "mkv", "subrip"),
        ("hevc", "mp4", "mov_text"),
        ("av1", "mkv", "subrip"),
        ("vp9", "webm", "webvtt"),
    ] {
        let out = dir.path().join(format!("out-{codec}.{format}"));
        let options = ["--codec", codec, "--format", format, "--height", "90"];
        encode(&cluster, &master, &clip, &out, &options);
        assert_eq!(
            report(&out).video_codec,
            codec,
            "{format}: the codec asked for"
        );
        let got = probe(&out);
        assert_eq!(report(&out).frames, source_frames, "{format}: every frame");
        assert_eq!(decode_errors(&out), "", "{format} decodes cleanly");
        let audio = streams(&got, "audio");
        assert_eq!(audio.len(), 2, "{format}: both audio tracks");
        let languages: Vec<&str> = audio.iter().map(|s| tag(s, "language")).collect();
        assert_eq!(languages, ["eng", "fra"], "{format}");
        let title_tag = if format == "mp4" {
            "handler_name"
        } else {
            "title"
        };
        let titles: Vec<&str> = audio.iter().map(|s| tag(s, title_tag)).collect();
        assert_eq!(titles, ["English", "Français"], "{format}");
        for (out_track, src_track) in audio.iter().zip(streams(&source, "audio")) {
            let off = (duration(out_track) - duration(src_track)).abs();
            assert!(off <= 0.05, "{format}: an audio track is off by {off} s");
        }
        let subs = streams(&got, "subtitle");
        assert_eq!(subs.len(), 1, "{format}: the subtitle track");
        assert_eq!(subs[0]["codec_name"], subtitle_codec, "{format}");
        assert_eq!(tag(subs[0], "language"), "eng", "{format}");
        let chapters: Vec<&str> = got["chapters"]
            .as_array()
            .expect("test data")
            .iter()
            .map(|c| tag(c, "title"))
            .collect();
        assert_eq!(chapters, ["Intro", "Main"], "{format}: chapters");
        let title = tag(&got["format"], "title");
        assert!(
            title == "My Talk" || tag(&got["format"], "TITLE") == "My Talk",
            "{format}: {got}"
        );
        if format == "mp4" {
            assert!(
                tag(&got["format"], "creation_time").starts_with("2024-05-01T10:00:00"),
                "{}",
                got["format"]
            );
        }
    }

    // A file without audio gives outputs without audio, in each codec.
    let silent = common::clips::make_clip(&dir.path().join("silent.mp4"), 4, 320, 180, false);
    let silent_frames = report(&silent).frames;
    for (codec, format) in [("hevc", "mkv"), ("vp9", "webm")] {
        let out = dir.path().join(format!("silent-{codec}.{format}"));
        encode(
            &cluster,
            &master,
            &silent,
            &out,
            &["--codec", codec, "--format", format],
        );
        let got = probe(&out);
        assert!(streams(&got, "audio").is_empty(), "{codec}: no audio");
        assert_eq!(report(&out).frames, silent_frames, "{codec}: every frame");
    }

    // Fewer audio tracks when asked; subtitles stay.
    for (which, count) in [("first", 1), ("none", 0)] {
        let out = dir.path().join(format!("{which}.mkv"));
        encode(
            &cluster,
            &master,
            &clip,
            &out,
            &["--format", "mkv", "--audio", which],
        );
        let got = probe(&out);
        assert_eq!(streams(&got, "audio").len(), count, "--audio {which}");
        assert_eq!(streams(&got, "subtitle").len(), 1, "--audio {which}");
        assert_eq!(report(&out).frames, source_frames);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_variable_frame_rate_video_keeps_every_frame_and_its_timing() {
    let dir = tempfile::tempdir().expect("temp dir");
    let clip = dir.path().join("vfr.mp4");
    // Every fifth frame dropped with its time left as a gap: frames come
    // 1/30 s apart, sometimes 2/30 s.
    let status = Command::new("ffmpeg")
        .args(["-nostdin", "-v", "error", "-y"])
        .args(["-f", "lavfi", "-i", "testsrc2=s=320x180:r=30:d=8"])
        .args(["-f", "lavfi", "-i", "sine=f=440:d=8:sample_rate=48000"])
        .args([
            "-vf",
            "select='not(eq(mod(n\\,5)\\,2))'",
            "-fps_mode",
            "vfr",
        ])
        .args([
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-g",
            "48",
            "-c:a",
            "aac",
        ])
        .arg(&clip)
        .status()
        .expect("run ffmpeg");
    assert!(status.success());
    let source = report(&clip);
    assert_eq!(source.frames, 192, "8 s at 30 fps less every fifth frame");
    let cluster = Cluster::start(&dir.path().join("cluster"));
    let master = cluster.formed().await;
    // The gaps are kept: the same frame times as the source.
    let times = |path: &Path| -> Vec<String> {
        let out = Command::new("ffprobe")
            .args(["-v", "error", "-select_streams", "v:0", "-show_entries"])
            .args(["packet=pts_time", "-of", "csv=p=0"])
            .arg(path)
            .output()
            .expect("ffprobe");
        let mut times: Vec<f64> = String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| l.trim().parse().ok())
            .collect();
        times.sort_by(f64::total_cmp);
        let first = times[0];
        times.iter().map(|t| format!("{:.2}", t - first)).collect()
    };
    for (codec, format) in [("h264", "mp4"), ("av1", "mkv")] {
        let out = dir.path().join(format!("out-{codec}.{format}"));
        let options = ["--codec", codec, "--format", format, "--height", "90"];
        encode(&cluster, &master, &clip, &out, &options);
        let got = report(&out);
        assert_eq!(got.frames, source.frames, "{codec}: every frame");
        let audio =
            (got.audio_seconds.expect("audio") - source.audio_seconds.expect("audio")).abs();
        assert!(audio <= 0.05, "{codec}: audio off by {audio} s");
        assert!(
            (got.format_seconds - source.format_seconds).abs() <= 0.1,
            "{codec}: duration {} vs {}",
            got.format_seconds,
            source.format_seconds
        );
        assert_eq!(times(&out), times(&clip), "{codec}: frame times");
        assert_eq!(decode_errors(&out), "", "{codec}");
    }
}
