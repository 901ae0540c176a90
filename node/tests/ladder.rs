//! Ladder jobs end to end: a 3-rung HLS/DASH package made by three
//! nodes, read back over HTTP the way players read it (ffmpeg's HLS and
//! DASH demuxers), frame-exact on every rung with keyframes at the same
//! instants, continuous timestamps, the audio once, and the top rung as
//! one MP4 for clients that download a file.

mod common;

use std::collections::BTreeSet;
use std::process::Command;

use common::client::{json_of, upload_ladder, vidshard};
use common::clips::{decoded, make_clip, report};
use common::cluster::Cluster;
use common::http;
use serde_json::Value;

const FPS: f64 = 30.0;

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

    // An original client's RetrieveVideo gets the same single file.
    let original = dir.path().join("original.mp4");
    common::retrieve(common::cluster::lazy_channel(&master), &id, &original)
        .await
        .expect("RetrieveVideo");
    assert_eq!(
        std::fs::read(&original).expect("read"),
        std::fs::read(&top).expect("read")
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
        // One rung at a time: ffmpeg 5.1's DASH demuxer, reading every
        // representation at once, stops each at the MPD's duration as it
        // (wrongly) shifts B-frame timestamps, and drops the last two
        // frames (docs/streaming.md).
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
    // Each rung's quality report: every piece measured against the
    // source scaled to the rung.
    for rendition in status["ladder"]["renditions"]
        .as_array()
        .expect("renditions")
    {
        if rendition["kind"] != "video" {
            assert!(rendition["quality"].is_null(), "{rendition}");
            continue;
        }
        let quality = &rendition["quality"];
        assert_eq!(
            quality["measured_shards"], rendition["pieces"],
            "{rendition}"
        );
        let psnr = quality["psnr"]["mean"].as_f64().expect("a PSNR");
        assert!(psnr > 30.0, "{}: PSNR {psnr}", rendition["id"]);
    }
    assert_eq!(
        status["quality"]["psnr"], status["ladder"]["renditions"][0]["quality"]["psnr"],
        "the job's report is its top rung's"
    );
    cluster.stop_all().await;
}

/// An ffmpeg that waits `seconds` before every x264 encode, so a job
/// stays running long enough to be watched (and to lose its master).
fn slow_ffmpeg(dir: &std::path::Path, seconds: f64) -> String {
    common::wrapper::slow_ffmpeg(dir, "slow-ffmpeg", "libx264", seconds, 0.0)
}

/// The segment URIs and durations of a media playlist, in order.
fn entries(playlist: &str) -> Vec<(String, String)> {
    let mut found = Vec::new();
    let mut extinf = None;
    for line in playlist.lines() {
        if let Some(d) = line.strip_prefix("#EXTINF:") {
            extinf = Some(d.to_string());
        } else if !line.starts_with('#') && !line.is_empty() {
            found.push((extinf.take().unwrap_or_default(), line.to_string()));
        }
    }
    found
}

/// Follows a media playlist like a player: every answer must extend the
/// one before (same entries first, nothing changed or removed). Returns
/// the last playlist once it has `#EXT-X-ENDLIST`, and how many
/// different lengths it was seen with.
async fn follow(url: &str, timeout: std::time::Duration) -> (String, usize) {
    let deadline = std::time::Instant::now() + timeout;
    let mut seen: Vec<(String, String)> = Vec::new();
    let mut lengths = BTreeSet::new();
    loop {
        let answer = http::get(url);
        if answer.status == 200 {
            let text = answer.text();
            let now = entries(&text);
            assert!(
                now.len() >= seen.len() && now[..seen.len()] == seen[..],
                "the playlist changed under its viewer:\nbefore {seen:?}\nnow {now:?}"
            );
            lengths.insert(now.len());
            seen = now;
            if text.contains("#EXT-X-ENDLIST") {
                return (text, lengths.len());
            }
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{url} did not end within {timeout:?} (last status {})",
            answer.status
        );
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    }
}

/// Frames in a rung's init segment and first media segment, fetched
/// over HTTP and read by ffprobe (what a player starting at once gets).
fn first_segment_frames(media_playlist_url: &str, dir: &std::path::Path) -> u64 {
    let init = http::get(&url_beside(media_playlist_url, "init.mp4"));
    let first = http::get(&url_beside(media_playlist_url, "0.m4s"));
    assert_eq!((init.status, first.status), (200, 200));
    let file = dir.join("first-segment.mp4");
    std::fs::write(&file, [init.body, first.body].concat()).expect("write the segment");
    assert_eq!(common::clips::decode_errors(&file), "");
    report(&file).frames
}

#[tokio::test(flavor = "multi_thread")]
async fn a_ladder_is_watchable_while_it_encodes_and_its_playlists_only_grow() {
    let dir = tempfile::tempdir().expect("temp dir");
    let ffmpeg = slow_ffmpeg(dir.path(), 0.7);
    let node = common::node::NodeProc::start(
        &dir.path().join("node"),
        &[
            "--http-addr",
            "127.0.0.1:0",
            "--slots",
            "1",
            "--shard-seconds",
            "2",
            "--ffmpeg",
            &ffmpeg,
        ],
    );
    let clip = make_clip(&dir.path().join("clip.mp4"), 24, 640, 360, true);
    let (id, _) = upload_ladder(
        &node.address,
        &clip,
        &[
            "--ladder",
            "360,240",
            "--segment-seconds",
            "2",
            "--preset",
            "ultrafast",
        ],
    );
    let link = json_of(&node.address, &["link", &id]);
    let hls = link["hls_url"].as_str().expect("an HLS URL").to_string();

    // Playable before the job ends: the master playlist answers, and the
    // first segment of a rung plays.
    let started = std::time::Instant::now();
    common::wait_for(
        "the master playlist",
        std::time::Duration::from_secs(120),
        || {
            let hls = hls.clone();
            async move { (http::get(&hls).status == 200).then_some(()) }
        },
    )
    .await;
    let playable_after = started.elapsed();
    let status = json_of(&node.address, &["status", &id]);
    assert_eq!(
        status["finished"], false,
        "the job ended before it was playable"
    );
    let media = url_beside(&hls, "360p/media.m3u8");
    let running = http::get(&media).text();
    assert!(running.contains("#EXT-X-PLAYLIST-TYPE:EVENT"), "{running}");
    assert!(!running.contains("#EXT-X-ENDLIST"), "{running}");
    assert_eq!(first_segment_frames(&media, dir.path()), 60);

    // Followed to the end, the playlist only grows, then turns VOD.
    let (last_seen, lengths) = follow(&media, std::time::Duration::from_secs(180)).await;
    assert!(
        lengths >= 3,
        "seen with only {lengths} lengths: not watched while growing"
    );
    let fresh = http::get(&media).text();
    assert_eq!(last_seen, fresh);
    assert!(fresh.contains("#EXT-X-PLAYLIST-TYPE:VOD"), "{fresh}");
    assert_eq!(entries(&fresh).len(), 12);
    let status = json_of(&node.address, &["status", &id]);
    assert_eq!(status["status"], "completed");
    let playable = status["ladder"]["first_playable_seconds"]
        .as_f64()
        .expect("playable");
    // From acceptance to completion (`timings.total` is the last run's
    // alone: a run paused and taken up again has a shorter one).
    let ms = |key: &str| status[key].as_u64().expect("unix ms") as f64;
    let total = (ms("updated_unix_ms") - ms("created_unix_ms")) / 1000.0;
    assert!(
        playable > 0.0 && playable < total,
        "playable after {playable} s of {total} s"
    );
    println!(
        "first playable {playable:.1} s after acceptance (seen after {:.1} s), job {total:.1} s",
        playable_after.as_secs_f64()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_ladder_survives_its_master_killed_and_its_viewer_sees_no_gap() {
    let dir = tempfile::tempdir().expect("temp dir");
    let ffmpeg = slow_ffmpeg(dir.path(), 0.5);
    let cluster = Cluster::start_with(
        dir.path(),
        &["--http-addr", "127.0.0.1:0", "--ffmpeg", &ffmpeg],
    );
    let master = cluster.formed().await;
    let seconds = 30;
    let clip = make_clip(&dir.path().join("clip.mp4"), seconds, 640, 360, true);
    let (id, _) = upload_ladder(
        &master,
        &clip,
        &[
            "--ladder",
            "360,240",
            "--segment-seconds",
            "2",
            "--preset",
            "ultrafast",
        ],
    );
    let viewer_node = cluster
        .addresses()
        .into_iter()
        .find(|a| *a != master)
        .expect("another node");
    let link = json_of(&viewer_node, &["link", &id]);
    let hls = link["hls_url"].as_str().expect("an HLS URL").to_string();
    let media = url_beside(&hls, "360p/media.m3u8");

    // Mid-ladder: a few segments out, then the master dies.
    let before = common::wait_for(
        "3 segments of 360p",
        std::time::Duration::from_secs(120),
        || {
            let media = media.clone();
            async move {
                let answer = http::get(&media);
                (answer.status == 200 && entries(&answer.text()).len() >= 3).then(|| answer.text())
            }
        },
    )
    .await;
    assert!(
        !before.contains("#EXT-X-ENDLIST"),
        "the job ended before the kill"
    );
    let master_index = cluster.index_of(&master).expect("the master is a node");
    cluster.kill(master_index);

    // The viewer on another node follows the playlist to its end: it
    // only grows (`follow` checks every answer extends the one before).
    let (last, _) = follow(&media, std::time::Duration::from_secs(240)).await;
    assert!(last.starts_with("#EXTM3U"));
    let before_entries = entries(&before);
    assert_eq!(entries(&last)[..before_entries.len()], before_entries[..]);

    // Every rung complete and frame-exact, timestamps continuous.
    let frames = u64::from(seconds) * 30;
    for rung in ["360p", "240p"] {
        let url = url_beside(&hls, &format!("{rung}/media.m3u8"));
        let found = packets(&url);
        assert_eq!(found.len() as u64, frames, "{rung}");
        let mut pts: Vec<f64> = found.iter().map(|(p, _)| *p).collect();
        pts.sort_by(f64::total_cmp);
        assert!(
            pts.windows(2)
                .all(|w| ((w[1] - w[0]) - 1.0 / FPS).abs() < 1e-3),
            "{rung}: a gap or an overlap"
        );
    }
    let alive: Vec<String> = cluster
        .addresses()
        .into_iter()
        .filter(|a| *a != master)
        .collect();
    let status = json_of(&alive.join(","), &["status", &id]);
    assert_eq!(status["status"], "completed", "{status}");
    assert_eq!(status["output"]["frames"], frames);

    // Deleted with the job: every segment of its package, on every node
    // still up. (Blobs the killed master made but never recorded, such
    // as a copy it pushed just before dying, are no job's: they go after
    // the collector's 10-minute wait for unknown blobs.)
    let segment = url_beside(&media, "0.m4s");
    assert_eq!(http::get(&segment).status, 200);
    let mut jobs = vidshard_proto::v1::jobs_client::JobsClient::new(common::cluster::lazy_channel(
        &viewer_node,
    ));
    let package: Vec<String> = jobs
        .get_package(vidshard_proto::v1::GetPackageRequest { id: id.clone() })
        .await
        .expect("the package listing")
        .into_inner()
        .files
        .into_iter()
        .filter(|f| f.text.is_empty())
        .map(|f| f.sha256)
        .collect();
    assert!(package.len() > 30, "{package:?}");
    let deleted = jobs
        .delete_job(common::node::as_operator(
            vidshard_proto::v1::DeleteJobRequest { id: id.clone() },
        ))
        .await
        .expect("delete")
        .into_inner();
    assert!(deleted.deleted, "{}", deleted.message);
    common::wait_for(
        "the segment gone over HTTP",
        std::time::Duration::from_secs(30),
        || {
            let gone = http::get(&segment).status == 404;
            async move { gone.then_some(()) }
        },
    )
    .await;
    common::wait_for(
        "every segment gone",
        std::time::Duration::from_secs(120),
        || {
            let left: Vec<String> = (0..common::cluster::NODES)
                .filter(|i| *i != master_index)
                .flat_map(|i| common::blob_files(&cluster.nodes[i].data_dir.join("blobs")))
                .filter(|path| package.iter().any(|sha| path.ends_with(sha.as_str())))
                .collect();
            async move { left.is_empty().then_some(()) }
        },
    )
    .await;
}

/// Bad ladder options sent straight to the API (no client checks) end
/// the upload at its header: INVALID_ARGUMENT with the reason, no job.
#[tokio::test(flavor = "multi_thread")]
async fn bad_ladder_options_are_refused_at_the_header() {
    use tokio_stream::StreamExt as _;
    use vidshard_proto::v1::upload_request::Msg;
    use vidshard_proto::v1::{JobParams, UploadHeader, UploadRequest};
    let dir = tempfile::tempdir().expect("temp dir");
    let node = common::node::NodeProc::start(&dir.path().join("node"), &[]);
    let channel = node.channel().await;
    let cases: [(JobParams, &str); 5] = [
        (
            JobParams {
                ladder: "720,hd".into(),
                ..Default::default()
            },
            "unknown rung \"hd\"",
        ),
        (
            JobParams {
                ladder: "9000".into(),
                ..Default::default()
            },
            "rung 9000 is higher than the 8192",
        ),
        (
            JobParams {
                ladder: "auto".into(),
                segment_seconds: Some(0),
                ..Default::default()
            },
            "segment length 0 s is out of range",
        ),
        (
            JobParams {
                ladder: "auto".into(),
                output_format: "webm".into(),
                ..Default::default()
            },
            "--format webm does not apply",
        ),
        (
            JobParams {
                segment_seconds: Some(4),
                ..Default::default()
            },
            "go with --ladder",
        ),
    ];
    for (params, reason) in cases {
        let header = UploadRequest {
            msg: Some(Msg::Header(UploadHeader {
                params: Some(params.clone()),
                expected_size: 1 << 20,
                ..Default::default()
            })),
        };
        // The header and then a stream that never sends a byte: the
        // answer must come from the header alone.
        let requests = tokio_stream::iter(vec![header]).chain(tokio_stream::pending());
        let refused = tokio::time::timeout(
            std::time::Duration::from_secs(20),
            vidshard_proto::v1::jobs_client::JobsClient::new(channel.clone()).upload(requests),
        )
        .await
        .expect("answered without waiting for bytes")
        .expect_err("bad options accepted");
        assert_eq!(refused.code(), tonic::Code::InvalidArgument, "{params:?}");
        assert!(
            refused.message().contains(reason),
            "{params:?}: {}",
            refused.message()
        );
    }
    let jobs = json_of(&node.address, &["jobs"]);
    assert_eq!(jobs["jobs"].as_array().map_or(0, Vec::len), 0, "{jobs}");
}
