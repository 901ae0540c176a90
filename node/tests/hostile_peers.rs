//! Issue 20's hostile peer calls, each sent exactly as an attacker would
//! (a plain gRPC client, no metadata) against real nodes in their default
//! configuration, and what the node does instead of what it did:
//! - row 1: Raft messages carrying the term 2^64-1 (saved, then openraft
//!   panicked at the next campaign, on every restart) are refused before
//!   Raft sees them; the node stays master in its own small term, also
//!   after a restart;
//! - row 6: `PushBlob` with the header term 2^64-1 (remembered, so every
//!   later upload was refused "term 1 is older than …") is refused and
//!   remembers nothing: the next upload is acknowledged and completes.

mod common;

use std::time::Duration;

use openraft::Vote;
use openraft::raft::{AppendEntriesRequest, VoteRequest};
use tonic::Code;
use vidshard_node::cluster::raft::{NodeId, TypeConfig};
use vidshard_proto::v1::raft_client::RaftClient;
use vidshard_proto::v1::worker_client::WorkerClient;
use vidshard_proto::v1::{BlobHeader, PushBlobRequest, RaftMessage, push_blob_request};

use common::cluster::{Cluster, current_master, lazy_channel};
use common::node::NodeProc;
use common::{Params, upload_file, wait_finished, wait_for};

const HUGE: u64 = u64::MAX;

fn append_entries(term: u64) -> RaftMessage {
    let rpc = AppendEntriesRequest::<TypeConfig> {
        vote: Vote::new_committed(term, 7),
        prev_log_id: None,
        entries: Vec::new(),
        leader_commit: None,
    };
    RaftMessage {
        json: serde_json::to_vec(&rpc).expect("json"),
    }
}

fn vote_request(term: u64) -> RaftMessage {
    let rpc = VoteRequest::<NodeId> {
        vote: Vote::new(term, 7),
        last_log_id: None,
    };
    RaftMessage {
        json: serde_json::to_vec(&rpc).expect("json"),
    }
}

/// The node's term and whether it is master, by the original protocol.
async fn term_and_master(address: &str) -> Option<(i32, bool)> {
    let reply = current_master(address).await?;
    Some((reply.term, reply.master_address == address))
}

#[tokio::test]
async fn raft_messages_with_unreachable_terms_are_refused_and_never_saved() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("n1");
    let node = NodeProc::start(&data, &[]);
    let address = node.address.clone();
    let (term, master) = wait_for("a one-node master", Duration::from_secs(20), || {
        let address = address.clone();
        async move { term_and_master(&address).await.filter(|(_, m)| *m) }
    })
    .await;
    assert!(master);
    let mut raft = RaftClient::new(node.channel().await);
    for (what, message) in [
        ("AppendEntries", append_entries(HUGE)),
        ("AppendEntries", append_entries(1 << 62 | 1)),
        ("AppendEntries", append_entries(term as u64 + (1 << 32) + 1)),
    ] {
        let refused = raft.append_entries(message).await.expect_err(what);
        assert_eq!(refused.code(), Code::InvalidArgument, "{what}: {refused:?}");
        assert!(
            refused.message().contains("refused"),
            "{}",
            refused.message()
        );
    }
    let refused = raft.vote(vote_request(HUGE)).await.expect_err("Vote");
    assert_eq!(refused.code(), Code::InvalidArgument, "{refused:?}");
    // Still the master, in its own term.
    assert_eq!(term_and_master(&address).await, Some((term, true)));
    // Nothing was saved: after a restart it campaigns and wins in a small
    // term (before, raft.redb held 2^64-1 and openraft panicked).
    // (The client goes first: the node's graceful stop waits for open
    // connections, which this runtime drives.)
    drop(raft);
    let status = tokio::task::spawn_blocking(move || node.terminate())
        .await
        .expect("stop the node");
    assert!(status.success(), "stopped with {status}");
    let again = NodeProc::start(&data, &[]);
    let address = again.address.clone();
    let (term_after, _) = wait_for(
        "the restarted node leads again",
        Duration::from_secs(20),
        || {
            let address = address.clone();
            async move { term_and_master(&address).await.filter(|(_, m)| *m) }
        },
    )
    .await;
    assert!(
        (1..100).contains(&term_after),
        "term after the restart: {term_after}"
    );
}

#[tokio::test]
async fn a_forged_push_term_blocks_no_later_upload() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cluster = Cluster::start(dir.path());
    let master = cluster.formed().await;
    let clip = common::clips::make_clip(&dir.path().join("clip.mp4"), 4, 160, 120, true);
    // Every follower is sent a blob header with the term 2^64-1.
    for follower in cluster.addresses().into_iter().filter(|a| *a != master) {
        let header = PushBlobRequest {
            part: Some(push_blob_request::Part::Header(BlobHeader {
                sha256: "a".repeat(64),
                size: 1,
                term: HUGE,
                purpose: "attack".into(),
            })),
        };
        let chunk = PushBlobRequest {
            part: Some(push_blob_request::Part::Chunk(vec![0])),
        };
        let reply = WorkerClient::new(lazy_channel(&follower))
            .push_blob(futures::stream::iter([header, chunk]))
            .await
            .expect("an answer")
            .into_inner();
        assert!(!reply.stored, "{follower} stored a blob of term 2^64-1");
        assert!(reply.message.contains("refused"), "{}", reply.message);
    }
    // Uploads are acknowledged only once a follower took a copy, which
    // the remembered term used to refuse.
    let channel = lazy_channel(&master);
    let id = upload_file(
        channel.clone(),
        "after-attack.mp4",
        &clip,
        &Params::size(160, 120, "mp4"),
    )
    .await;
    let info = wait_finished(channel, &id, Duration::from_secs(120)).await;
    assert_eq!(info.status, "completed", "{}", info.message);
}
