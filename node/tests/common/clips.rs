//! Generated test clips (lavfi testsrc2 + sine) and ffprobe measurements.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

/// Makes a clip: `seconds` of `w`x`h` at 30 fps, keyframe every 2 s,
/// H.264+AAC (or VP9+Opus for .webm), audio optional.
pub fn make_clip(path: &Path, seconds: u32, w: u32, h: u32, audio: bool) -> PathBuf {
    let mut cmd = Command::new("ffmpeg");
    cmd.args(["-nostdin", "-v", "error", "-y", "-f", "lavfi", "-i"])
        .arg(format!("testsrc2=size={w}x{h}:rate=30"));
    if audio {
        cmd.args(["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000"]);
    }
    cmd.args([
        "-t",
        &seconds.to_string(),
        "-frames:v",
        &(seconds * 30).to_string(),
    ]);
    let webm = path.extension().is_some_and(|e| e == "webm");
    if webm {
        cmd.args([
            "-c:v",
            "libvpx-vp9",
            "-cpu-used",
            "8",
            "-deadline",
            "realtime",
            "-g",
            "60",
        ]);
    } else {
        cmd.args([
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-g",
            "60",
            "-pix_fmt",
            "yuv420p",
        ]);
    }
    if audio {
        cmd.args([
            "-c:a",
            if webm { "libopus" } else { "aac" },
            "-t",
            &seconds.to_string(),
        ]);
    }
    cmd.arg(path);
    let status = cmd.status().expect("run ffmpeg");
    assert!(status.success(), "making {} failed", path.display());
    path.to_path_buf()
}

/// What a user checks in a video file.
#[derive(Debug, Clone)]
pub struct Report {
    pub frames: u64,
    pub width: u64,
    pub height: u64,
    pub video_codec: String,
    pub audio_codec: Option<String>,
    pub audio_seconds: Option<f64>,
    pub format_seconds: f64,
}

fn num(v: Option<&Value>) -> Option<f64> {
    match v? {
        Value::String(s) => s.parse().ok(),
        Value::Number(n) => n.as_f64(),
        _ => None,
    }
}

/// Audio duration measured by decoding it (container durations can carry
/// encoder padding).
fn decoded_audio_seconds(path: &Path) -> Option<f64> {
    let out = Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-select_streams",
            "a:0",
            "-show_entries",
            "frame=pts_time,pkt_duration_time",
            "-of",
            "csv=p=0",
        ])
        .arg(path)
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    let mut start = None;
    let mut end = 0.0f64;
    for line in text.lines() {
        let mut parts = line.split(',');
        let (Some(pts), Some(dur)) = (parts.next(), parts.next()) else {
            continue;
        };
        let (Ok(pts), Ok(dur)) = (pts.parse::<f64>(), dur.parse::<f64>()) else {
            continue;
        };
        start.get_or_insert(pts);
        end = end.max(pts + dur);
    }
    start.map(|s| end - s)
}

pub fn report(path: &Path) -> Report {
    let out = Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-count_packets",
            "-show_entries",
            "stream=codec_type,codec_name,width,height,nb_read_packets:format=duration",
            "-of",
            "json",
        ])
        .arg(path)
        .output()
        .expect("run ffprobe");
    assert!(
        out.status.success(),
        "ffprobe {}: {}",
        path.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    let root: Value = serde_json::from_slice(&out.stdout).expect("ffprobe json");
    let streams = root["streams"].as_array().cloned().unwrap_or_default();
    let video = streams
        .iter()
        .find(|s| s["codec_type"] == "video")
        .expect("a video stream")
        .clone();
    let audio = streams.iter().find(|s| s["codec_type"] == "audio").cloned();
    Report {
        frames: num(video.get("nb_read_packets")).unwrap_or(0.0) as u64,
        width: video["width"].as_u64().unwrap_or(0),
        height: video["height"].as_u64().unwrap_or(0),
        video_codec: video["codec_name"].as_str().unwrap_or("").into(),
        audio_codec: audio
            .as_ref()
            .map(|a| a["codec_name"].as_str().unwrap_or("").to_string()),
        audio_seconds: audio.as_ref().and_then(|_| decoded_audio_seconds(path)),
        format_seconds: num(root["format"].get("duration")).unwrap_or(0.0),
    }
}

/// ffprobe's `entry` (e.g. `codec_tag_string`) of the first video stream.
pub fn video_entry(path: &Path, entry: &str) -> String {
    let out = Command::new("ffprobe")
        .args(["-v", "error", "-select_streams", "v:0", "-show_entries"])
        .arg(format!("stream={entry}"))
        .args(["-of", "csv=p=0"])
        .arg(path)
        .output()
        .expect("run ffprobe");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// Decode errors ffmpeg reports reading the whole file.
pub fn decode_errors(path: &Path) -> String {
    let out = Command::new("ffmpeg")
        .args(["-nostdin", "-v", "error", "-i"])
        .arg(path)
        .args(["-f", "null", "-"])
        .output()
        .expect("run ffmpeg");
    String::from_utf8_lossy(&out.stderr).trim().to_string()
}

/// A 10-bit HEVC clip (video only, closed GOPs every 2 s) of `seconds`
/// at 320x180, with `x265_params` added (e.g. HDR10 metadata).
pub fn hevc_clip(path: &Path, seconds: u32, x265_params: &str) -> PathBuf {
    let mut params = "log-level=error:keyint=60:min-keyint=60:scenecut=0:open-gop=0".to_string();
    if !x265_params.is_empty() {
        params = format!("{params}:{x265_params}");
    }
    let status = Command::new("ffmpeg")
        .args(["-nostdin", "-v", "error", "-y", "-f", "lavfi", "-i"])
        .arg(format!("testsrc2=size=320x180:rate=30:duration={seconds}"))
        .args(["-c:v", "libx265", "-preset", "ultrafast", "-x265-params"])
        .arg(params)
        .args(["-pix_fmt", "yuv420p10le"])
        .arg(path)
        .status()
        .expect("run ffmpeg");
    assert!(status.success(), "making {}", path.display());
    path.to_path_buf()
}

/// Decodes stream `map` (`0:v:1`) of `input` (a file, or an HLS/DASH
/// URL) to its end: the frames ffmpeg decoded and whatever it printed at
/// `-v error` (empty: no error).
pub fn decoded(input: impl AsRef<std::ffi::OsStr>, map: &str) -> (u64, String) {
    let out = Command::new("ffmpeg")
        .args(["-nostdin", "-v", "error", "-i"])
        .arg(input)
        .args(["-map", map, "-f", "null", "-", "-progress", "pipe:1"])
        .output()
        .expect("run ffmpeg");
    let frames = String::from_utf8_lossy(&out.stdout)
        .lines()
        .rev()
        .filter_map(|l| l.strip_prefix("frame="))
        .find_map(|v| v.trim().parse().ok())
        .unwrap_or(0);
    (
        frames,
        String::from_utf8_lossy(&out.stderr).trim().to_string(),
    )
}
