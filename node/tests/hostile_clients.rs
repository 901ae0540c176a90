//! Issue 20's hostile client calls against a real node in its default
//! configuration, each sent exactly as an attacker would, and what the
//! node does now:
//! - row 8: an upload that trickles (a byte every 300 ms: never idle,
//!   so it used to hold an upload slot for ever) is dropped once its
//!   average pace is below 16 KiB/s after the idle limit, leaving no
//!   temp file; the next upload is taken;
//! - row 9: failed uploads (6,400 of them once broke `vidshard jobs` and
//!   the console, over the message limit, and stayed for ever) are
//!   forgotten after `--keep-sources` (completed jobs, with their
//!   outputs, after `--keep-jobs` days when it is set); their messages never show the data
//!   dir's absolute path; listings keep to 2 MiB of jobs and say how many
//!   they left out (the choice itself is unit-tested in `convert.rs`);
//! - a client that never answers the node's GOAWAY (its runtime is
//!   blocked) used to keep a stopping node alive for ever; the node now
//!   closes such connections 5 s after the stop;
//! - row 10: watch streams nobody reads cost one shared snapshot, and one
//!   client holds at most 16 of them: the 17th is refused, and a slot
//!   frees when a stream closes.

mod common;

use std::time::Duration;

use tonic::Code;
use vidshard_proto::replication::UploadVideoChunk;
use vidshard_proto::replication::master_service_client::MasterServiceClient;
use vidshard_proto::v1::WatchRequest;
use vidshard_proto::v1::cluster_client::ClusterClient;

use common::node::NodeProc;
use common::{Params, encode_completed, job, upload_bytes, wait_finished, wait_for};

#[tokio::test]
async fn a_trickling_upload_is_dropped_and_frees_its_slot() {
    let dir = tempfile::tempdir().expect("tempdir");
    let node = NodeProc::start(
        &dir.path().join("n1"),
        &["--upload-idle-seconds", "1", "--max-uploads", "1"],
    );
    let (tx, rx) = tokio::sync::mpsc::channel::<UploadVideoChunk>(4);
    let mut client = MasterServiceClient::new(node.channel().await);
    let call = tokio::spawn(async move {
        client
            .upload_video(tokio_stream::wrappers::ReceiverStream::new(rx))
            .await
    });
    let trickle = tokio::spawn(async move {
        let mut first = true;
        loop {
            let chunk = UploadVideoChunk {
                video_id: "trickle.mp4".into(),
                data_chunk: vec![7],
                is_first_chunk: first,
                target_width: 160,
                target_height: 120,
                ..Default::default()
            };
            first = false;
            if tx.send(chunk).await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    });
    let reply = tokio::time::timeout(Duration::from_secs(15), call)
        .await
        .expect("the node must drop a trickling upload")
        .expect("join")
        .expect("an answer")
        .into_inner();
    trickle.abort();
    assert!(!reply.success, "a trickle was accepted");
    assert!(reply.message.contains("too slow"), "{}", reply.message);
    // The slot is free again (there is one): a real upload is taken.
    let clip = common::clips::make_clip(&dir.path().join("clip.mp4"), 3, 160, 120, true);
    let channel = node.channel().await;
    encode_completed(channel.clone(), "clip.mp4", &clip, 160, 120).await;
    let tmp = node.data_dir.join("tmp");
    wait_for("no upload temp file left", Duration::from_secs(10), || {
        let tmp = tmp.clone();
        async move {
            let left = std::fs::read_dir(&tmp)
                .map(|d| d.flatten().count())
                .unwrap_or(0);
            (left == 0).then_some(())
        }
    })
    .await;
}

#[tokio::test]
async fn one_client_holds_at_most_sixteen_watch_streams() {
    let dir = tempfile::tempdir().expect("tempdir");
    let node = NodeProc::start(&dir.path().join("n1"), &[]);
    let channel = node.channel().await;
    let mut held = Vec::new();
    for _ in 0..16 {
        let mut stream = ClusterClient::new(channel.clone())
            .watch_cluster(WatchRequest { interval_ms: 100 })
            .await
            .expect("a watch within the cap")
            .into_inner();
        // Each works (and is then left unread).
        stream.message().await.expect("snapshot").expect("one");
        held.push(stream);
    }
    let refused = ClusterClient::new(channel.clone())
        .watch_cluster(WatchRequest { interval_ms: 100 })
        .await
        .expect_err("a 17th watch");
    assert_eq!(refused.code(), Code::ResourceExhausted, "{refused:?}");
    assert!(
        refused.message().contains("16 watch streams"),
        "{}",
        refused.message()
    );
    // Closing one frees its slot.
    drop(held.pop());
    let mut again = wait_for("a watch slot freed", Duration::from_secs(10), || {
        let channel = channel.clone();
        async move {
            ClusterClient::new(channel)
                .watch_cluster(WatchRequest { interval_ms: 100 })
                .await
                .ok()
        }
    })
    .await
    .into_inner();
    let first = again.message().await.expect("snapshot").expect("one");
    let later = again.message().await.expect("snapshot").expect("one");
    assert!(later.sent_unix_ms >= first.sent_unix_ms);
}

#[tokio::test]
async fn failed_uploads_are_forgotten_and_never_show_the_data_dir() {
    let dir = tempfile::tempdir().expect("tempdir");
    // Sources (and now failed jobs) are kept 0.0005 h = 1.8 s, completed
    // jobs 0.0001 days = 8.6 s.
    let node = NodeProc::start(
        &dir.path().join("n1"),
        &["--keep-sources", "0.0005", "--keep-jobs", "0.0001"],
    );
    let channel = node.channel().await;
    let clip = common::clips::make_clip(&dir.path().join("clip.mp4"), 2, 160, 120, true);
    let done = encode_completed(channel.clone(), "kept-a-while.mp4", &clip, 160, 120).await;
    let output = job(channel.clone(), &done)
        .await
        .expect("the completed job")
        .output_sha256;
    let reply = upload_bytes(
        channel.clone(),
        "not-a-video.mp4",
        b"this is text, not a video".to_vec(),
        &Params::size(160, 120, "mp4"),
    )
    .await
    .expect("upload rpc");
    assert!(reply.success, "{}", reply.message);
    let id = reply.video_id;
    let info = wait_finished(channel.clone(), &id, Duration::from_secs(60)).await;
    assert_eq!(info.status, "failed_segmentation", "{}", info.message);
    let root = std::fs::canonicalize(&node.data_dir).expect("data dir");
    assert!(
        !info.message.contains(root.to_str().expect("utf8")),
        "the message shows the data dir: {}",
        info.message
    );
    let gone = wait_for("the failed job forgotten", Duration::from_secs(30), || {
        let (channel, id) = (channel.clone(), id.clone());
        async move { job(channel, &id).await.err() }
    })
    .await;
    assert_eq!(gone.code(), Code::NotFound, "{gone:?}");
    let listed = vidshard_proto::v1::jobs_client::JobsClient::new(channel.clone())
        .list_jobs(vidshard_proto::v1::ListJobsRequest::default())
        .await
        .expect("list")
        .into_inner();
    assert!(listed.jobs.iter().all(|j| j.id != id));
    assert_eq!(listed.omitted, 0);
    // The completed job goes after --keep-jobs, its output with it.
    let gone = wait_for("the completed job expired", Duration::from_secs(60), || {
        let (channel, id) = (channel.clone(), done.clone());
        async move { job(channel, &id).await.err() }
    })
    .await;
    assert_eq!(gone.code(), Code::NotFound, "{gone:?}");
    let blob = node.data_dir.join("blobs").join(&output[..2]).join(&output);
    wait_for(
        "the expired job's output removed",
        Duration::from_secs(60),
        || {
            let blob = blob.clone();
            async move { (!blob.exists()).then_some(()) }
        },
    )
    .await;
}

#[tokio::test]
async fn a_client_that_never_lets_go_does_not_keep_the_node_from_stopping() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut node = NodeProc::start(&dir.path().join("n1"), &[]);
    let mut stream = ClusterClient::new(node.channel().await)
        .watch_cluster(WatchRequest { interval_ms: 100 })
        .await
        .expect("watch")
        .into_inner();
    stream.message().await.expect("snapshot").expect("one");
    node.signal_term();
    // This test's runtime is blocked from here on: the client neither
    // reads its stream nor answers the node's GOAWAY.
    let started = std::time::Instant::now();
    let status = loop {
        if let Some(status) = node.exit_status() {
            break Some(status);
        }
        if started.elapsed() > Duration::from_secs(30) {
            break None;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let status = status.expect("the node was still running 30 s after SIGTERM");
    assert!(status.success(), "stopped with {status}");
    drop(stream);
}
