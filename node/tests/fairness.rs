//! Fair sharing of the slots between jobs (issue 17, item 4): a short
//! clip submitted behind a long film, on one node whose every slot the
//! film holds, finishes within 1.5× the time it takes alone on the same
//! node (one shard, one slot either way), while the film is still
//! encoding; and the film then completes whole. While both run, the
//! listing shows the film first in the queue and one slot each as their
//! shares. (Measured 1.18–1.29×. With the share cap and the wake on a
//! freed slot taken out of the driver, the short job waited 42.9 s for
//! its first slot and the test failed: 2026-12-05.)

mod common;

use std::time::{Duration, Instant};

use common::clips::{make_clip, report};
use common::node::NodeProc;
use common::{Params, job, retrieve, upload_file, wait_finished, wait_for};
use tonic::transport::Channel;
use vidshard_proto::v1::ListJobsRequest;
use vidshard_proto::v1::jobs_client::JobsClient;

const TIMEOUT: Duration = Duration::from_secs(300);

/// 1920x1080 from a smaller source (upscaling allowed).
fn full_hd() -> Params {
    Params {
        width: 1920,
        height: 1080,
        upscale_width: 1920,
        upscale_height: 1080,
        format: "mp4".into(),
    }
}

/// Uploads `clip` (one shard) as `name` and waits for it to complete;
/// answers the job id and the time from the upload's start to completion.
async fn timed_job(channel: &Channel, name: &str, clip: &std::path::Path) -> (String, Duration) {
    let started = Instant::now();
    let id = upload_file(channel.clone(), name, clip, &full_hd()).await;
    let info = wait_finished(channel.clone(), &id, TIMEOUT).await;
    let took = started.elapsed();
    assert_eq!(info.status, "completed", "{name}: {}", info.message);
    assert_eq!(info.shards.len(), 1, "{name}: one shard");
    eprintln!(
        "{name}: {} shards, {:.2} s, timings {:?}",
        info.shards.len(),
        took.as_secs_f64(),
        info.timings
    );
    (id, took)
}

/// A `seconds` long 640x360 clip with audio whose only keyframe is its
/// first frame: it cannot be split.
fn one_gop_clip(path: &std::path::Path, seconds: u32) -> std::path::PathBuf {
    let status = std::process::Command::new("ffmpeg")
        .args(["-nostdin", "-v", "error", "-y", "-f", "lavfi", "-i"])
        .arg(format!("testsrc2=size=640x360:rate=30:duration={seconds}"))
        .args(["-f", "lavfi", "-i"])
        .arg(format!("sine=frequency=440:duration={seconds}"))
        .args(["-c:v", "libx264", "-preset", "ultrafast", "-g", "1000"])
        .args(["-pix_fmt", "yuv420p", "-c:a", "aac"])
        .arg(path)
        .status()
        .expect("run ffmpeg");
    assert!(status.success(), "making {} failed", path.display());
    path.to_path_buf()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_short_job_behind_a_long_one_finishes_about_as_fast_as_alone() {
    let dir = tempfile::tempdir().expect("tempdir");
    let node = NodeProc::start(
        &dir.path().join("node"),
        &["--slots", "2", "--shard-seconds", "2"],
    );
    let channel = node.channel().await;
    // The short job: 6 s upscaled to 1080p, one shard (the clip's only
    // keyframe is its first), so alone it uses one slot as it will
    // behind the film.
    let short = one_gop_clip(&dir.path().join("short.mp4"), 6);
    let (_, alone) = timed_job(&channel, "short-alone.mp4", &short).await;

    // The film: 60 s in 2 s shards at 1280x960, every slot busy (each
    // shard takes a few times longer to encode than to split, so the
    // split is far ahead and the film alone could fill every slot).
    let film_clip = make_clip(&dir.path().join("film.mp4"), 60, 320, 240, true);
    let film = upload_file(
        channel.clone(),
        "film.mp4",
        &film_clip,
        &Params {
            width: 1280,
            height: 960,
            upscale_width: 1280,
            upscale_height: 960,
            format: "mp4".into(),
        },
    )
    .await;
    wait_for(
        "the film to be well on and hold both slots",
        TIMEOUT,
        || {
            let channel = channel.clone();
            let film = film.clone();
            async move {
                let info = job(channel, &film).await.ok()?;
                assert!(!info.finished, "{}: {}", info.status, info.message);
                let count = |state: &str| info.shards.iter().filter(|s| s.state == state).count();
                (count("done") >= 6 && count("encoding") == 2).then_some(())
            }
        },
    )
    .await;

    let started = Instant::now();
    let short_id = upload_file(channel.clone(), "short-behind.mp4", &short, &full_hd()).await;
    // While both run, where each stands as `vidshard jobs` lists it.
    let (film_standing, short_standing) = wait_for(
        "the short job to hold a slot beside the film",
        TIMEOUT,
        || {
            let (channel, film, short_id) = (channel.clone(), film.clone(), short_id.clone());
            async move {
                let request = ListJobsRequest {
                    state: "active".into(),
                    ..Default::default()
                };
                let list = JobsClient::new(channel)
                    .list_jobs(request)
                    .await
                    .ok()?
                    .into_inner();
                let find = |id: &str| list.jobs.iter().find(|j| j.id == id).cloned();
                let (film, short) = (find(&film)?, find(&short_id)?);
                (short.slots_held == 1).then_some((film, short))
            }
        },
    )
    .await;
    eprintln!(
        "standing: film #{} {}/{} slots, short #{} {}/{} slots, waited {:.2} s",
        film_standing.queue_position,
        film_standing.slots_held,
        film_standing.slot_share,
        short_standing.queue_position,
        short_standing.slots_held,
        short_standing.slot_share,
        short_standing.wait_seconds
    );
    assert_eq!(
        (film_standing.queue_position, short_standing.queue_position),
        (1, 2),
        "the older job is served first"
    );
    assert_eq!(
        (film_standing.slot_share, short_standing.slot_share),
        (1, 1),
        "two slots, one each"
    );
    assert!(film_standing.slots_held <= 1, "{film_standing:?}");
    assert!(short_standing.wait_seconds > 0.0 && short_standing.wait_seconds < 60.0);
    let info = wait_finished(channel.clone(), &short_id, TIMEOUT).await;
    let behind = started.elapsed();
    assert_eq!(info.status, "completed", "{}", info.message);
    assert_eq!(info.queue_position, 0, "an ended job has no place");
    let film_info = job(channel.clone(), &film).await.expect("film");
    assert!(
        !film_info.finished,
        "the film was still encoding when the short job ended ({} of {} shards done)",
        film_info
            .shards
            .iter()
            .filter(|s| s.state == "done")
            .count(),
        film_info.shards.len()
    );
    eprintln!(
        "short job alone {:.2} s, behind the film {:.2} s ({:.2}x)",
        alone.as_secs_f64(),
        behind.as_secs_f64(),
        behind.as_secs_f64() / alone.as_secs_f64()
    );
    assert!(
        behind.as_secs_f64() <= 1.5 * alone.as_secs_f64(),
        "behind the film {:.2} s, alone {:.2} s",
        behind.as_secs_f64(),
        alone.as_secs_f64()
    );
    let out = dir.path().join("short.out.mp4");
    retrieve(channel.clone(), &short_id, &out)
        .await
        .expect("retrieve");
    assert_eq!(report(&out).frames, report(&short).frames);

    // The film still gets every frame.
    let info = wait_finished(channel.clone(), &film, TIMEOUT).await;
    assert_eq!(info.status, "completed", "{}", info.message);
    let out = dir.path().join("film.out.mp4");
    retrieve(channel, &film, &out).await.expect("retrieve");
    let (made, source) = (report(&out), report(&film_clip));
    assert_eq!(made.frames, source.frames);
    assert_eq!((made.width, made.height), (1280, 960));
}
