//! Fair sharing of the slots between jobs (issue 17, item 4): a short
//! clip submitted behind a long film, on one node whose every slot the
//! film holds, finishes within 1.5× the time it takes alone on the same
//! node, while the film is still encoding; and the film then completes
//! whole.

mod common;

use std::time::{Duration, Instant};

use common::clips::{make_clip, report};
use common::node::NodeProc;
use common::{Params, job, retrieve, upload_file, wait_finished, wait_for};
use tonic::transport::Channel;

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

/// Uploads `clip` as `name` and waits for it to complete; answers the
/// job id and the time from the upload's start to completion.
async fn timed_job(channel: &Channel, name: &str, clip: &std::path::Path) -> (String, Duration) {
    let started = Instant::now();
    let id = upload_file(channel.clone(), name, clip, &full_hd()).await;
    let info = wait_finished(channel.clone(), &id, TIMEOUT).await;
    assert_eq!(info.status, "completed", "{name}: {}", info.message);
    (id, started.elapsed())
}

#[tokio::test(flavor = "multi_thread")]
async fn a_short_job_behind_a_long_one_finishes_about_as_fast_as_alone() {
    let dir = tempfile::tempdir().expect("tempdir");
    let node = NodeProc::start(
        &dir.path().join("node"),
        &["--slots", "2", "--shard-seconds", "2"],
    );
    let channel = node.channel().await;
    // The short job: one 2 s shard, upscaled to 1080p.
    let short = make_clip(&dir.path().join("short.mp4"), 2, 640, 360, true);
    let (_, alone) = timed_job(&channel, "short-alone.mp4", &short).await;

    // The film: 60 s in 2 s shards at 960x720, every slot busy.
    let film_clip = make_clip(&dir.path().join("film.mp4"), 60, 320, 240, true);
    let film = upload_file(
        channel.clone(),
        "film.mp4",
        &film_clip,
        &Params {
            width: 960,
            height: 720,
            upscale_width: 960,
            upscale_height: 720,
            format: "mp4".into(),
        },
    )
    .await;
    wait_for("the film to hold both slots", TIMEOUT, || {
        let channel = channel.clone();
        let film = film.clone();
        async move {
            let info = job(channel, &film).await.ok()?;
            assert!(!info.finished, "{}: {}", info.status, info.message);
            let encoding = info.shards.iter().filter(|s| s.state == "encoding").count();
            let done = info.shards.iter().filter(|s| s.state == "done").count();
            (encoding == 2 && done >= 1).then_some(())
        }
    })
    .await;

    let (short_id, behind) = timed_job(&channel, "short-behind.mp4", &short).await;
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
    assert_eq!((made.width, made.height), (960, 720));
}
