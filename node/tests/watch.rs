//! The console's watch stream: served by every node (a worker relays the
//! master's view), bounded for slow readers, ended by shutdown.

mod common;

use std::time::{Duration, Instant};

use common::clips::make_clip;
use common::node::NodeProc;
use common::{Params, upload_file};
use vidshard_proto::v1::cluster_client::ClusterClient;
use vidshard_proto::v1::{ClusterSnapshot, ListNodesRequest, WatchRequest};

/// Reads snapshots until `pick` returns something, or panics after `timeout`.
async fn next_matching<T>(
    stream: &mut tonic::Streaming<ClusterSnapshot>,
    what: &str,
    timeout: Duration,
    mut pick: impl FnMut(ClusterSnapshot) -> Option<T>,
) -> T {
    let found = tokio::time::timeout(timeout, async {
        while let Some(snap) = stream.message().await.expect("watch stream") {
            if let Some(found) = pick(snap) {
                return found;
            }
        }
        panic!("watch stream ended while waiting for {what}");
    })
    .await;
    found.unwrap_or_else(|_| panic!("timed out after {timeout:?} waiting for {what}"))
}

async fn watch(node: &NodeProc, interval_ms: u32) -> tonic::Streaming<ClusterSnapshot> {
    ClusterClient::new(node.channel().await)
        .watch_cluster(WatchRequest { interval_ms })
        .await
        .expect("watch")
        .into_inner()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_worker_serves_the_masters_view_with_jobs_and_events() {
    let dir = tempfile::tempdir().expect("tempdir");
    let master = NodeProc::start(&dir.path().join("m"), &[]);
    let worker = NodeProc::start(
        &dir.path().join("w"),
        &["--role", "worker", "--master", &master.address],
    );
    let mut stream = watch(&worker, 200).await;
    let snap = next_matching(
        &mut stream,
        "both nodes alive in the worker's stream",
        Duration::from_secs(20),
        |snap| (snap.nodes.iter().filter(|n| n.alive).count() == 2).then_some(snap),
    )
    .await;
    assert_eq!(
        snap.node_address, worker.address,
        "served by the node we asked"
    );
    assert_eq!(snap.master_address, master.address);
    assert!(snap.has_quorum);
    assert!(
        snap.events
            .iter()
            .any(|e| e.message.contains("node joined")),
        "{:?}",
        snap.events
    );

    let clip = make_clip(&dir.path().join("c.mp4"), 4, 320, 240, true);
    let id = upload_file(
        master.channel().await,
        "c.mp4",
        &clip,
        &Params::size(160, 120, "mp4"),
    )
    .await;
    let job = next_matching(
        &mut stream,
        "the job to complete in the stream",
        Duration::from_secs(120),
        |snap| {
            snap.jobs
                .into_iter()
                .find(|j| j.id == id && j.status == "completed")
        },
    )
    .await;
    assert!(!job.shards.is_empty() && job.shards.iter().all(|s| s.state == "done"));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_slow_reader_gets_fresh_snapshots_and_never_slows_the_node() {
    let dir = tempfile::tempdir().expect("tempdir");
    let node = NodeProc::start(&dir.path().join("n"), &[]);
    let mut slow = watch(&node, 100).await;
    // Do not read for a while: the node must keep answering quickly.
    for _ in 0..10 {
        let started = Instant::now();
        ClusterClient::new(node.channel().await)
            .list_nodes(ListNodesRequest {})
            .await
            .expect("list");
        assert!(started.elapsed() < Duration::from_secs(1));
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // What was queued is at most a couple of snapshots: soon they are fresh.
    let fresh = next_matching(
        &mut slow,
        "a fresh snapshot",
        Duration::from_secs(5),
        |snap| {
            let age = vidshard_node::jobs::now_unix_ms().saturating_sub(snap.sent_unix_ms);
            (age < 500).then_some(age)
        },
    )
    .await;
    assert!(fresh < 500);
}

#[tokio::test(flavor = "multi_thread")]
async fn shutdown_ends_open_watch_streams() {
    let dir = tempfile::tempdir().expect("tempdir");
    let node = NodeProc::start(&dir.path().join("n"), &[]);
    let mut stream = watch(&node, 100).await;
    assert!(stream.message().await.expect("first snapshot").is_some());
    let started = Instant::now();
    let status = node.terminate();
    assert!(status.success(), "{status:?}");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "shutdown waited on the stream"
    );
    // The stream ends (cleanly or with an error), it does not hang.
    let ended = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            match stream.message().await {
                Ok(Some(_)) => continue,
                _ => return,
            }
        }
    })
    .await;
    assert!(ended.is_ok(), "stream still open after shutdown");
}

/// `GetJob` with `wait_ms` is a long poll: it holds the answer until the
/// job is final or the wait is over, so a waiting client starts its
/// download the moment the output is ready, not up to a poll later.
#[tokio::test(flavor = "multi_thread")]
async fn get_job_waits_for_the_end_of_the_job() {
    use vidshard_proto::v1::GetJobRequest;
    use vidshard_proto::v1::jobs_client::JobsClient;
    let dir = tempfile::tempdir().expect("tempdir");
    let node = NodeProc::start(&dir.path().join("node"), &[]);
    let channel = node.channel().await;
    let clip = make_clip(&dir.path().join("clip.mp4"), 6, 320, 240, true);
    let id = upload_file(
        channel.clone(),
        "clip.mp4",
        &clip,
        &Params::size(160, 120, "mp4"),
    )
    .await;
    let wait = Duration::from_millis(250);
    let deadline = Instant::now() + Duration::from_secs(180);
    let mut held = 0;
    let finished = loop {
        let asked = Instant::now();
        let job = JobsClient::new(channel.clone())
            .get_job(GetJobRequest {
                id: id.clone(),
                wait_ms: wait.as_millis() as u32,
            })
            .await
            .expect("get_job")
            .into_inner();
        if job.finished {
            break job;
        }
        assert!(
            asked.elapsed() >= wait - Duration::from_millis(25),
            "a job still running ({}) is answered only after the wait, not after {:?}",
            job.status,
            asked.elapsed()
        );
        held += 1;
        assert!(Instant::now() < deadline, "the job did not end");
    };
    assert_eq!(finished.status, "completed", "{}", finished.message);
    let asked = Instant::now();
    let again = JobsClient::new(channel)
        .get_job(GetJobRequest {
            id,
            wait_ms: 60_000,
        })
        .await
        .expect("get_job")
        .into_inner();
    assert!(again.finished);
    assert!(
        asked.elapsed() < Duration::from_secs(2),
        "a final job is answered at once"
    );
    assert!(
        held >= 1,
        "the job ran longer than one wait: some poll was held"
    );
}
