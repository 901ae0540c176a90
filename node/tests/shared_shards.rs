//! Blobs are named by content, so two jobs can hold the very same files:
//! a clip and a longer take of it split into identical first shards (and
//! encode into identical ones). The first job to end must not take the
//! other's shards with it (the chaos soak lost a job this way).

mod common;

use std::time::Duration;

use common::clips::{make_clip, report};
use common::node::NodeProc;
use common::{Params, retrieve, upload_file, wait_finished};

const JOB_TIMEOUT: Duration = Duration::from_secs(240);

#[tokio::test(flavor = "multi_thread")]
async fn a_job_ending_keeps_the_shards_a_running_job_shares() {
    let dir = tempfile::tempdir().expect("tempdir");
    let short = make_clip(&dir.path().join("short.mp4"), 3, 320, 240, true);
    let long = make_clip(&dir.path().join("long.mp4"), 12, 320, 240, true);
    let node = NodeProc::start(&dir.path().join("n"), &["--shard-seconds", "1"]);
    let channel = node.channel().await;
    let params = Params::size(320, 240, "mp4");
    let first = upload_file(channel.clone(), "short.mp4", &short, &params).await;
    let second = upload_file(channel.clone(), "long.mp4", &long, &params).await;

    let ended = wait_finished(channel.clone(), &first, JOB_TIMEOUT).await;
    assert_eq!(ended.status, "completed", "{}", ended.message);
    let running = wait_finished(channel.clone(), &second, JOB_TIMEOUT).await;
    assert_eq!(running.status, "completed", "{}", running.message);
    let log = node.log_text();
    assert!(
        log.contains("kept shard blobs another job shares"),
        "the two jobs shared no shard: nothing tested\n{log}"
    );

    for (id, clip) in [(&first, &short), (&second, &long)] {
        let out = dir.path().join(format!("{id}.mp4"));
        retrieve(channel.clone(), id, &out).await.expect("retrieve");
        let (got, want) = (report(&out), report(clip));
        assert_eq!(got.frames, want.frames, "{id}: every frame");
        assert_eq!((got.width, got.height), (320, 240), "{id}");
        let (heard, said) = (
            got.audio_seconds.expect("audio"),
            want.audio_seconds.expect("audio"),
        );
        assert!(
            (heard - said).abs() < 0.1,
            "{id}: audio {heard} s of {said} s"
        );
    }
}
