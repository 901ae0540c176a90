//! Ladder jobs end to end: a 3-rung HLS/DASH package made by three
//! nodes, read back over HTTP the way players read it (ffmpeg's HLS and
//! DASH demuxers), frame-exact on every rung with keyframes at the same
//! instants, continuous timestamps, the audio once, and the top rung as
//! one MP4 for clients that download a file.

mod common;

use std::collections::BTreeSet;
use std::process::Command;

use common::client::vidshard;
use common::clips::{make_clip, report};
use common::cluster::Cluster;
use common::http;
use serde_json::Value;

const FPS: f64 = 30.0;

/// Runs the client and parses its `--json` document.
fn json_of(node: &str, args: &[&str]) -> Value {
    let mut all = vec!["--json"];
    all.extend_from_slice(args);
    let run = vidshard(node, &all);
    assert!(
        run.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&run.stderr)
    );
    serde_json::from_slice(&run.stdout).expect("one JSON document")
}

/// Every video packet of the first video stream at `url` (an HLS media
/// playlist): (pts seconds, keyframe).
fn packets(url: &str) -> Vec<(f64, bool)> {
    let out = Command::new("ffprobe")
        .args(["-v", "error", "-select_streams", "v:0"])
        .args(["-show_entries", "packet=pts_time,flags", "-of", "csv=p=0"])
        .arg(url)
        .output()
        .expect("run ffprobe");
    assert!(
        out.status.success(),
        "ffprobe {url}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|line| {
            let mut cells = line.split(',');
            let pts: f64 = cells.next()?.parse().ok()?;
            Some((pts, cells.next()?.starts_with('K')))
        })
        .collect()
}

/// The streams of a whole manifest (every variant or representation):
/// (codec type, width).
fn streams(url: &str) -> Vec<(String, u64)> {
    let out = Command::new("ffprobe")
        .args(["-v", "error", "-show_entries", "stream=codec_type,width"])
        .args(["-of", "json"])
        .arg(url)
        .output()
        .expect("run ffprobe");
    assert!(
        out.status.success(),
        "ffprobe {url}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let root: Value = serde_json::from_slice(&out.stdout).expect("ffprobe json");
    root["streams"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .map(|s| {
            (
                s["codec_type"].as_str().unwrap_or("").to_string(),
                s["width"].as_u64().unwrap_or(0),
            )
        })
        .collect()
}

/// Decodes stream `map` of `url` to the end: the frames ffmpeg decoded
/// and the errors it printed. One rung at a time: ffmpeg 5.1's DASH
/// demuxer, reading every representation at once, stops each at the
/// MPD's duration as it (wrongly) shifts B-frame timestamps, and drops
/// the last two frames (docs/streaming.md).
fn decoded(url: &str, map: &str) -> (u64, String) {
    let out = Command::new("ffmpeg")
        .args(["-nostdin", "-v", "error", "-i"])
        .arg(url)
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

/// Seconds the first audio stream at `url` spans, from its packets
/// (first pts to last pts plus duration).
fn audio_seconds(url: &str) -> f64 {
    let out = Command::new("ffprobe")
        .args(["-v", "error", "-select_streams", "a:0"])
        .args([
            "-show_entries",
            "packet=pts_time,duration_time",
            "-of",
            "csv=p=0",
        ])
        .arg(url)
        .output()
        .expect("run ffprobe");
    let spans: Vec<(f64, f64)> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|line| {
            let mut cells = line.split(',');
            Some((cells.next()?.parse().ok()?, cells.next()?.parse().ok()?))
        })
        .collect();
    let start = spans.iter().map(|s| s.0).fold(f64::INFINITY, f64::min);
    let end = spans.iter().map(|s| s.0 + s.1).fold(0.0, f64::max);
    (end - start).max(0.0)
}

/// `#EXT-X-TARGETDURATION` and every `#EXTINF` of a media playlist.
fn durations(playlist: &str) -> (f64, Vec<f64>) {
    let target = playlist
        .lines()
        .find_map(|l| l.strip_prefix("#EXT-X-TARGETDURATION:"))
        .and_then(|v| v.trim().parse().ok())
        .expect("a target duration");
    let extinf = playlist
        .lines()
        .filter_map(|l| l.strip_prefix("#EXTINF:"))
        .filter_map(|v| v.trim_end_matches(',').parse().ok())
        .collect();
    (target, extinf)
}

fn url_beside(url: &str, name: &str) -> String {
    let base = url.rsplit_once('/').expect("a path").0;
    format!("{base}/{name}")
}

fn assert_audio_close(seconds: f64, source: f64, what: &str) {
    assert!(
        (seconds - source).abs() <= 0.05,
        "{what}: audio {seconds:.3} s, source {source:.3} s"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_three_rung_ladder_from_three_nodes_plays_through_hls_and_dash() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut cluster = Cluster::start_with(dir.path(), &["--http-addr", "127.0.0.1:0"]);
    let master = cluster.formed().await;
    let seconds = 60;
    let clip = make_clip(&dir.path().join("talk.mp4"), seconds, 1280, 720, true);
    let source = report(&clip);
    let top = dir.path().join("top.mp4");
    let run = vidshard(
        &master,
        &[
            "upload",
            clip.to_str().expect("utf8"),
            "--ladder",
            "720,480,360",
            "--preset",
            "ultrafast",
            "--output",
            top.to_str().expect("utf8"),
        ],
    );
    if !run.status.success() {
        cluster.print_logs(60);
    }
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let stdout = String::from_utf8_lossy(&run.stdout).into_owned();
    let mut lines = stdout.lines();
    let id = lines.next().expect("the job id").to_string();
    let watch = lines.next().expect("the watch line");
    assert!(
        watch.starts_with("watch: http://127.0.0.1:") && watch.contains(&format!("/watch/{id}")),
        "{stdout}"
    );

    // The single file: the top rung with the audio, every frame.
    let single = report(&top);
    assert_eq!(single.frames, u64::from(seconds) * 30);
    assert_eq!((single.width, single.height), (1280, 720));
    assert_audio_close(
        single.audio_seconds.expect("audio"),
        source.audio_seconds.expect("source audio"),
        "the single file",
    );

    // Every node serves the package: read it through a worker.
    let other = cluster
        .addresses()
        .into_iter()
        .find(|a| *a != master)
        .expect("a worker");
    let link = json_of(&other, &["link", &id]);
    let hls = link["hls_url"].as_str().expect("an HLS URL").to_string();
    let dash = link["dash_url"].as_str().expect("a DASH URL").to_string();
    assert_ne!(
        hls.split('/').nth(2),
        watch.split('/').nth(2),
        "the worker links to itself"
    );

    let master_playlist = http::get(&hls);
    assert_eq!(master_playlist.status, 200, "{}", master_playlist.text());
    assert_eq!(
        master_playlist.header("content-type"),
        Some("application/vnd.apple.mpegurl")
    );
    let text = master_playlist.text();
    assert!(
        text.contains("#EXT-X-STREAM-INF:") && text.contains("RESOLUTION=854x480"),
        "{text}"
    );

    let frames = u64::from(seconds) * 30;
    let mut keyframes: Vec<BTreeSet<i64>> = Vec::new();
    for rung in ["720p", "480p", "360p"] {
        let media = url_beside(&hls, &format!("{rung}/media.m3u8"));
        let playlist = http::get(&media).text();
        assert!(
            playlist.contains("#EXT-X-PLAYLIST-TYPE:VOD") && playlist.contains("#EXT-X-ENDLIST"),
            "{playlist}"
        );
        let (target, extinf) = durations(&playlist);
        assert!(
            extinf.iter().all(|d| *d <= target + 1e-9 && *d > 0.0),
            "{rung}: segments {extinf:?} over the target {target}"
        );
        let total: f64 = extinf.iter().sum();
        assert!(
            (total - f64::from(seconds)).abs() < 0.05,
            "{rung}: {total} s"
        );
        let found = packets(&media);
        assert_eq!(found.len() as u64, frames, "{rung}: frames");
        // Every frame once, one frame apart: no gap, no overlap, no
        // negative time across the shard boundaries.
        let mut pts: Vec<f64> = found.iter().map(|(p, _)| *p).collect();
        pts.sort_by(f64::total_cmp);
        assert!(pts[0] >= 0.0, "{rung}: first pts {}", pts[0]);
        for pair in pts.windows(2) {
            let step = pair[1] - pair[0];
            assert!(
                (step - 1.0 / FPS).abs() < 1e-3,
                "{rung}: frames at {} and {}",
                pair[0],
                pair[1]
            );
        }
        keyframes.push(
            found
                .iter()
                .filter(|(_, key)| *key)
                .map(|(p, _)| (p * 1000.0).round() as i64)
                .collect(),
        );
    }
    assert!(
        keyframes[0].len() >= (seconds / 4) as usize,
        "{:?}",
        keyframes[0]
    );
    assert_eq!(keyframes[0], keyframes[1], "720p and 480p keyframes differ");
    assert_eq!(keyframes[0], keyframes[2], "720p and 360p keyframes differ");

    // Through the master playlist and the MPD: every rung, every frame,
    // no decode error, the audio as long as the source's.
    let source_audio = source.audio_seconds.expect("source audio");
    for manifest in [&hls, &dash] {
        let found = streams(manifest);
        let widths: Vec<u64> = found
            .iter()
            .filter(|s| s.0 == "video")
            .map(|s| s.1)
            .collect();
        assert_eq!(
            widths.iter().copied().collect::<BTreeSet<_>>(),
            BTreeSet::from([1280, 854, 640]),
            "{manifest}: {found:?}"
        );
        assert_eq!(
            found.iter().filter(|s| s.0 == "audio").count(),
            1,
            "{found:?}"
        );
        for n in 0..widths.len() {
            let (decoded, errors) = decoded(manifest, &format!("0:v:{n}"));
            assert_eq!(decoded, frames, "{manifest}: rung {n}");
            assert_eq!(errors, "", "{manifest}: rung {n}");
        }
        assert_audio_close(audio_seconds(manifest), source_audio, manifest);
    }

    // The tasks of the job ran on all three nodes.
    let status = json_of(&master, &["status", &id]);
    let workers: BTreeSet<&str> = status["shards"]
        .as_array()
        .expect("shards")
        .iter()
        .filter_map(|s| s["worker_id"].as_str())
        .collect();
    assert_eq!(workers.len(), 3, "{workers:?}");
    assert!(
        status["ladder"]["first_playable_seconds"]
            .as_f64()
            .expect("playable")
            > 0.0
    );
    cluster.stop_all().await;
}
