//! Issue 20's hostile peer calls, each sent exactly as an attacker would
//! (a plain gRPC client, no metadata) against real nodes in their default
//! configuration, and what the node does instead of what it did:
//! - row 1: Raft messages carrying the term 2^64-1 (saved, then openraft
//!   panicked at the next campaign, on every restart) are refused before
//!   Raft sees them; the node stays master in its own small term, also
//!   after a restart;
//! - row 2: `JoinCluster` of two nodes nobody answers at (both became
//!   voters, a 1-node cluster lost its quorum for good) leaves them
//!   learners: uploads still complete, and removing them works;
//! - row 3: `FetchBlob {sha256: <output>, release: true}` (deleted the
//!   finished video) streams it and keeps it: the video is retrieved
//!   whole afterwards;
//! - row 4: a heartbeat with a real worker's id and another address (the
//!   master sent it work and bytes) is refused; the worker keeps its
//!   address;
//! - row 11: `RegisterWorker` from 5,000 addresses (all kept and probed
//!   every second, for ever) stops at 64 original-protocol workers, and
//!   those that never answer are forgotten, freeing their places;
//! - row 6: `PushBlob` with the header term 2^64-1 (remembered, so every
//!   later upload was refused "term 1 is older than …") is refused and
//!   remembers nothing: the next upload is acknowledged and completes.

mod common;
use common::node::{as_operator, as_peer};

use std::time::Duration;

use openraft::Vote;
use openraft::raft::{AppendEntriesRequest, VoteRequest};
use tonic::Code;
use vidshard_node::cluster::raft::{NodeId, TypeConfig};
use vidshard_proto::replication::RegisterWorkerRequest;
use vidshard_proto::replication::master_service_client::MasterServiceClient;
use vidshard_proto::v1::cluster_client::ClusterClient;
use vidshard_proto::v1::raft_client::RaftClient;
use vidshard_proto::v1::worker_client::WorkerClient;
use vidshard_proto::v1::{
    BlobHeader, FetchBlobRequest, HeartbeatRequest, JoinClusterRequest, PushBlobRequest,
    RaftMessage, RemoveNodeRequest, ScoreReport, push_blob_request,
};

use common::cluster::{Cluster, current_master, lazy_channel};
use common::node::NodeProc;
use common::{encode_completed, nodes, retrieve, wait_for};

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
        let refused = raft.append_entries(as_peer(message)).await.expect_err(what);
        assert_eq!(refused.code(), Code::InvalidArgument, "{what}: {refused:?}");
        assert!(
            refused.message().contains("refused"),
            "{}",
            refused.message()
        );
    }
    let refused = raft
        .vote(as_peer(vote_request(HUGE)))
        .await
        .expect_err("Vote");
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
            .push_blob(as_peer(futures::stream::iter([header, chunk])))
            .await
            .expect("an answer")
            .into_inner();
        assert!(!reply.stored, "{follower} stored a blob of term 2^64-1");
        assert!(reply.message.contains("refused"), "{}", reply.message);
    }
    // Uploads are acknowledged only once a follower took a copy, which
    // the remembered term used to refuse.
    let channel = lazy_channel(&master);
    encode_completed(channel.clone(), "after-attack.mp4", &clip, 160, 120).await;
}

/// A one-node cluster that completed a job: the node, the job id and its
/// output's sha256.
async fn node_with_a_video(dir: &std::path::Path) -> (NodeProc, String, String) {
    let node = NodeProc::start(&dir.join("n1"), &["--shard-seconds", "2"]);
    let clip = common::clips::make_clip(&dir.join("clip.mp4"), 4, 160, 120, true);
    let channel = node.channel().await;
    let id = encode_completed(channel.clone(), "clip.mp4", &clip, 160, 120).await;
    let (sha256, _) = retrieve(channel, &id, &dir.join("first.mp4"))
        .await
        .expect("retrieve");
    (node, id, sha256)
}

#[tokio::test]
async fn joins_from_nowhere_never_vote_and_can_be_removed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (node, _, _) = node_with_a_video(dir.path()).await;
    let mut cluster = ClusterClient::new(node.channel().await);
    for bogus in ["bogus-x", "bogus-y"] {
        let reply = cluster
            .join_cluster(as_peer(JoinClusterRequest {
                node_id: bogus.into(),
                address: "127.0.0.1:1".into(),
            }))
            .await
            .expect("an answer")
            .into_inner();
        assert!(!reply.voter, "{bogus} became a voter: {}", reply.message);
    }
    // The promoter runs every second: give it a few rounds.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let listing = nodes(node.channel().await).await;
    assert!(
        listing.fault_tolerance.starts_with("1 voter:"),
        "{}",
        listing.fault_tolerance
    );
    // Still a quorum: a new upload is recorded and completes.
    let clip = common::clips::make_clip(&dir.path().join("second.mp4"), 3, 160, 120, false);
    let channel = node.channel().await;
    encode_completed(channel.clone(), "second.mp4", &clip, 160, 120).await;
    for bogus in ["bogus-x", "bogus-y"] {
        let reply = cluster
            .remove_node(as_operator(RemoveNodeRequest {
                node_id: bogus.into(),
            }))
            .await
            .expect("an answer")
            .into_inner();
        assert!(reply.removed, "{bogus}: {}", reply.message);
    }
}

#[tokio::test]
async fn a_release_from_a_fetch_never_deletes_a_finished_video() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (node, id, sha256) = node_with_a_video(dir.path()).await;
    let mut stream = WorkerClient::new(node.channel().await)
        .fetch_blob(as_peer(FetchBlobRequest {
            sha256: sha256.clone(),
            release: true,
        }))
        .await
        .expect("fetch")
        .into_inner();
    while stream.message().await.expect("chunk").is_some() {}
    // The release (had it been honoured) happens once the stream ends.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (again, _) = retrieve(node.channel().await, &id, &dir.path().join("again.mp4"))
        .await
        .expect("the video is still there");
    assert_eq!(again, sha256);
}

#[tokio::test]
async fn a_heartbeat_with_a_members_id_from_another_address_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cluster = Cluster::start(dir.path());
    let master = cluster.formed().await;
    let worker = cluster
        .addresses()
        .into_iter()
        .find(|a| *a != master)
        .expect("a worker");
    let listing = nodes(lazy_channel(&master)).await;
    let worker_id = listing
        .nodes
        .iter()
        .find(|n| n.address == worker)
        .map(|n| n.node_id.clone())
        .expect("the worker is listed");
    let reply = ClusterClient::new(lazy_channel(&master))
        .heartbeat(as_peer(HeartbeatRequest {
            node_id: worker_id.clone(),
            address: "127.0.0.1:1".into(),
            slots_total: 64,
            slots_busy: 0,
            score: Some(ScoreReport::default()),
            ..Default::default()
        }))
        .await
        .expect("an answer")
        .into_inner();
    assert!(!reply.accepted, "the impersonation was accepted");
    assert!(
        reply.message.contains("joined the cluster at"),
        "{}",
        reply.message
    );
    let listing = nodes(lazy_channel(&master)).await;
    let entry = listing
        .nodes
        .iter()
        .find(|n| n.node_id == worker_id)
        .expect("still listed");
    assert_eq!(entry.address, worker, "the worker's address was taken over");
    assert!(entry.slots_total < 64, "the forged slots were recorded");
}

#[tokio::test]
async fn registrations_from_nowhere_are_capped_and_forgotten() {
    let dir = tempfile::tempdir().expect("tempdir");
    let node = NodeProc::start(&dir.path().join("n1"), &["--dead-after", "0.5"]);
    let mut master = MasterServiceClient::new(node.channel().await);
    let register = |i: u32| RegisterWorkerRequest {
        worker_address: format!("127.0.{}.{}:9", i / 250, i % 250 + 1),
    };
    for i in 0..64 {
        let reply = master
            .register_worker(register(i))
            .await
            .expect("an answer")
            .into_inner();
        assert!(reply.success, "registration {i}: {}", reply.message);
    }
    let refused = master
        .register_worker(register(64))
        .await
        .expect("an answer")
        .into_inner();
    assert!(!refused.success, "a 65th original worker was taken");
    assert!(
        refused.message.contains("64 original-protocol workers"),
        "{}",
        refused.message
    );
    // Nobody answers at those addresses: they die, then are forgotten
    // (12 x --dead-after), and a new registration is taken again.
    let channel = node.channel().await;
    wait_for(
        "the silent registrations forgotten",
        Duration::from_secs(30),
        || {
            let channel = channel.clone();
            async move {
                let listed = nodes(channel.clone()).await.nodes.len();
                let reply = MasterServiceClient::new(channel)
                    .register_worker(register(64))
                    .await
                    .ok()?
                    .into_inner();
                (reply.success && listed < 10).then_some(())
            }
        },
    )
    .await;
}
