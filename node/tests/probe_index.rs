//! The MP4/MOV index reader (`media::mp4index`) gives exactly ffprobe's
//! packet listing on real files made by ffmpeg: B-frames and edit lists,
//! no B-frames, MOV, 29.97 fps, faststart, with and without audio, a 2 s
//! GOP; and it declines (so ffprobe lists) what it does not read: MKV,
//! WebM, fragmented MP4.

mod common;

use std::path::Path;
use std::process::Command;

use vidshard_node::media::{Tools, list_packets, mp4index};

fn tools() -> Tools {
    Tools {
        ffmpeg: "ffmpeg".into(),
        ffprobe: "ffprobe".into(),
    }
}

/// Makes a 4 s clip at `rate` with the given output options.
fn make(path: &Path, rate: &str, audio: bool, options: &[&str]) {
    let mut cmd = Command::new("ffmpeg");
    cmd.args(["-v", "error", "-y", "-f", "lavfi", "-i"])
        .arg(format!("testsrc2=size=160x120:rate={rate}"));
    if audio {
        cmd.args(["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000"]);
    }
    let status = cmd
        .args(["-t", "4", "-pix_fmt", "yuv420p"])
        .args(options)
        .arg(path)
        .status()
        .expect("run ffmpeg");
    assert!(status.success(), "ffmpeg made {}", path.display());
}

#[tokio::test(flavor = "multi_thread")]
async fn the_index_gives_exactly_ffprobes_packets() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cases: Vec<(&str, &str, bool, Vec<&str>)> = vec![
        (
            "bframes.mp4",
            "30",
            true,
            vec!["-c:v", "libx264", "-c:a", "aac"],
        ),
        (
            "baseline.mp4",
            "30",
            false,
            vec!["-c:v", "libx264", "-profile:v", "baseline"],
        ),
        (
            "ntsc.mp4",
            "30000/1001",
            true,
            vec!["-c:v", "libx264", "-c:a", "aac"],
        ),
        (
            "gop.mp4",
            "25",
            true,
            vec!["-c:v", "libx264", "-g", "50", "-bf", "3", "-c:a", "aac"],
        ),
        (
            "fast.mp4",
            "30",
            true,
            vec!["-c:v", "libx264", "-movflags", "+faststart", "-c:a", "aac"],
        ),
        (
            "clip.mov",
            "24",
            true,
            vec!["-c:v", "libx264", "-c:a", "aac"],
        ),
        ("mpeg4.mp4", "30", false, vec!["-c:v", "mpeg4", "-bf", "2"]),
    ];
    for (name, rate, audio, options) in &cases {
        let path = dir.path().join(name);
        make(&path, rate, *audio, options);
        let listed = list_packets(&tools(), &path).await.expect("ffprobe lists");
        let index = mp4index::read_index(&path)
            .await
            .unwrap_or_else(|| panic!("{name}: the index is read"));
        assert_eq!(index.packets.len(), listed.len(), "{name}: packet count");
        for (i, (a, b)) in index.packets.iter().zip(&listed).enumerate() {
            assert_eq!(a, b, "{name}: packet {i}");
        }
    }
    for (name, options) in [
        ("clip.mkv", vec!["-c:v", "libx264"]),
        (
            "clip.webm",
            vec!["-c:v", "libvpx-vp9", "-deadline", "realtime"],
        ),
        (
            "fragmented.mp4",
            vec!["-c:v", "libx264", "-movflags", "+frag_keyframe+empty_moov"],
        ),
    ] {
        let path = dir.path().join(name);
        make(&path, "30", false, &options);
        assert!(
            mp4index::read_index(&path).await.is_none(),
            "{name}: left to ffprobe"
        );
    }
}
