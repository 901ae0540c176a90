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
