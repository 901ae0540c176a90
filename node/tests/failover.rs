//! Failover of the Raft-replicated master, with three real node processes
//! on 127.0.0.1: the leader killed mid-job (a new one is elected and
//! resumes the job, keeping the shards already encoded), the whole
//! cluster stopped and started again on the same ports and data dirs
//! (finished jobs survive, unfinished ones resume), and the original
//! client talking to a follower (which forwards to the leader).
//!
//! Set `VIDSHARD_TEST_LOGS=1` to print every node's log at the end of a
//! test; a failing test prints the tail of each log.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use tonic::transport::Channel;
use vidshard_proto::replication::master_service_client::MasterServiceClient;
use vidshard_proto::replication::node_service_client::NodeServiceClient;
use vidshard_proto::replication::{NodeStatsRequest, VideoStatusRequest};
use vidshard_proto::v1::JobInfo;

use common::clips::{make_clip, report};
use common::cluster::{Cluster, NODES, agreed_master, current_master, node_stats};
use common::{Params, job, retrieve, upload_bytes, upload_file, wait_for};

/// How long a job may take, failover included.
const JOB_TIMEOUT: Duration = Duration::from_secs(300);
/// The promise: a new master within this long of losing the old one.
const FAILOVER_LIMIT: Duration = Duration::from_secs(10);
/// Statuses of a job that is still under way.
const RUNNING: [&str; 4] = ["queued", "segmenting", "processing", "concatenating"];

/// Polls GetJob every 50 ms until `until` holds for the job, or panics
/// after `timeout` with the last state seen. Failing calls are retried:
/// during an election there is briefly no master.
async fn poll_job(
    channel: &Channel,
    id: &str,
    what: &str,
    timeout: Duration,
    until: impl Fn(&JobInfo) -> bool,
) -> JobInfo {
    let deadline = Instant::now() + timeout;
    loop {
        let last = match job(channel.clone(), id).await {
            Ok(info) if until(&info) => return info,
            Ok(info) => format!(
                "{} ({}), shards {:?}",
                info.status,
                info.message,
                info.shards.iter().map(|s| &s.state).collect::<Vec<_>>()
            ),
            Err(status) => format!("GetJob failed: {status}"),
        };
        assert!(
            Instant::now() < deadline,
            "job {id}: timed out after {timeout:?} waiting for {what}; last: {last}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Waits for the job to finish and asserts it completed.
async fn completed(channel: &Channel, id: &str) -> JobInfo {
    let info = poll_job(channel, id, "the job to finish", JOB_TIMEOUT, |j| {
        j.finished
    })
    .await;
    assert_eq!(info.status, "completed", "job {id}: {}", info.message);
    info
}

fn done_count(info: &JobInfo) -> usize {
    info.shards.iter().filter(|s| s.state == "done").count()
}

/// Retrieves the output of job `id` into `out` and checks it against the
/// source `clip`: every frame, the target size, and the audio duration
/// within 0.05 s. Answers the output's sha256.
async fn check_output(channel: &Channel, id: &str, clip: &Path, out: &Path) -> String {
    let (sha256, size) = retrieve(channel.clone(), id, out)
        .await
        .expect("retrieve the output");
    assert!(size > 0, "empty output");
    let (src, got) = (report(clip), report(out));
    assert_eq!(got.frames, src.frames, "frames of the output vs the source");
    assert_eq!((got.width, got.height), (160, 120), "output size");
    match (src.audio_seconds, got.audio_seconds) {
        (Some(a), Some(b)) => assert!((a - b).abs() <= 0.05, "audio {b} s vs {a} s"),
        other => panic!("audio lost: {other:?}"),
    }
    sha256
}

/// The value of `name=` in a tracing log line.
fn log_field<'a>(line: &'a str, name: &str) -> Option<&'a str> {
    let prefix = format!("{name}=");
    line.split_whitespace()
        .find_map(|word| word.strip_prefix(prefix.as_str()))
}

fn target() -> Params {
    Params::size(160, 120, "mp4")
}

#[tokio::test(flavor = "multi_thread")]
async fn killing_the_leader_mid_job_elects_a_new_one_and_the_job_completes_without_reencoding_done_shards()
 {
    let dir = tempfile::tempdir().expect("tempdir");
    let clip = make_clip(&dir.path().join("clip.mp4"), 60, 320, 240, true);
    let cluster = Cluster::start(dir.path());
    let leader_address = cluster.formed().await;
    let leader = cluster.index_of(&leader_address).expect("leader index");
    if leader != 0 {
        eprintln!("note: node {} leads, not node 1", leader + 1);
    }

    let channel = cluster.nodes[0].channel().await;
    let id = upload_file(channel.clone(), "clip.mp4", &clip, &target()).await;
    let before = poll_job(
        &channel,
        &id,
        "a third of the shards done (or the job finished)",
        JOB_TIMEOUT,
        |j| j.finished || (!j.shards.is_empty() && done_count(j) * 3 >= j.shards.len()),
    )
    .await;
    assert!(
        !before.finished,
        "the job finished before the leader could be killed: nothing tested"
    );
    let done_before: Vec<(u32, u32, String)> = before
        .shards
        .iter()
        .filter(|s| s.state == "done")
        .map(|s| (s.index, s.attempts, s.worker_id.clone()))
        .collect();
    eprintln!(
        "killing the leader (node {}) with {} of {} shards done: {done_before:?}",
        leader + 1,
        done_before.len(),
        before.shards.len()
    );

    let killed_at = Instant::now();
    cluster.kill(leader);
    let survivors: Vec<usize> = (0..NODES).filter(|&i| i != leader).collect();
    let survivor_addresses: Vec<String> = survivors.iter().map(|&i| cluster.address(i)).collect();
    let addresses = &survivor_addresses;
    // What the survivors answer meanwhile, for the record.
    let answers = std::sync::Mutex::new(Vec::<String>::new());
    let answers_ref = &answers;
    let new_master = wait_for(
        "a survivor to name another live node as master",
        Duration::from_secs(60),
        move || async move {
            for address in addresses {
                let Some(reply) = current_master(address).await else {
                    continue;
                };
                let answer = format!(
                    "{address}: known={} master={} term={}",
                    reply.is_master_known, reply.master_address, reply.term
                );
                let mut seen = answers_ref.lock().expect("answers");
                if !seen.contains(&answer) {
                    seen.push(answer);
                }
                if reply.is_master_known && addresses.contains(&reply.master_address) {
                    return Some(reply.master_address);
                }
            }
            None
        },
    )
    .await;
    let failover = killed_at.elapsed();
    eprintln!(
        "failover: {new_master} named master {:.2} s after the kill; GetCurrentMaster answers seen: {:#?}",
        failover.as_secs_f64(),
        answers.lock().expect("answers")
    );
    assert!(
        failover < FAILOVER_LIMIT,
        "new master after {failover:?} (limit {FAILOVER_LIMIT:?})"
    );
    let (agreed, term) = wait_for(
        "both survivors to agree on the new master",
        Duration::from_secs(20),
        || agreed_master(&survivor_addresses),
    )
    .await;
    assert_eq!(agreed, new_master);
    let stats = node_stats(&new_master)
        .await
        .expect("GetNodeStats on the new master");
    assert!(
        stats.is_master,
        "{new_master} is named master but denies it"
    );
    eprintln!("survivors agree on {agreed} in term {term}");

    let new_leader = cluster.index_of(&new_master).expect("new leader index");
    let follower = *survivors
        .iter()
        .find(|&&i| i != new_leader)
        .expect("a surviving follower");
    // Through the follower: it forwards to the new leader.
    let survivor = cluster.nodes[follower].channel().await;
    let info = completed(&survivor, &id).await;
    for (index, attempts, worker_id) in &done_before {
        let shard = &info.shards[*index as usize];
        assert_eq!(shard.state, "done", "shard {index}");
        assert_eq!(
            (shard.attempts, &shard.worker_id),
            (*attempts, worker_id),
            "shard {index} was done before the failover: it must not be encoded again"
        );
    }

    let log = cluster.nodes[new_leader].log_text();
    let resumed = log
        .lines()
        .find(|l| {
            l.contains("resumed: shards already encoded are kept")
                && log_field(l, "job") == Some(id.as_str())
        })
        .unwrap_or_else(|| panic!("the new leader did not log the resume of job {id}"));
    eprintln!("new leader: {resumed}");
    assert_eq!(log_field(resumed, "lost"), Some("0"), "{resumed}");
    let kept: usize = log_field(resumed, "kept")
        .and_then(|k| k.parse().ok())
        .unwrap_or_else(|| panic!("no kept= in {resumed}"));
    assert!(
        kept >= done_before.len(),
        "kept {kept} shards, but {} were done before the kill",
        done_before.len()
    );

    check_output(&survivor, &id, &clip, &dir.path().join("out.mp4")).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_whole_cluster_restart_keeps_completed_jobs_and_resumes_in_flight_ones() {
    let dir = tempfile::tempdir().expect("tempdir");
    let short = make_clip(&dir.path().join("short.mp4"), 6, 320, 240, true);
    let long = make_clip(&dir.path().join("long.mp4"), 20, 320, 240, true);
    let mut cluster = Cluster::start(dir.path());
    cluster.formed().await;

    let channel = cluster.nodes[0].channel().await;
    let first = upload_file(channel.clone(), "short.mp4", &short, &target()).await;
    completed(&channel, &first).await;
    let first_sha = check_output(
        &channel,
        &first,
        &short,
        &dir.path().join("first-before.mp4"),
    )
    .await;

    let second = upload_file(channel.clone(), "long.mp4", &long, &target()).await;
    let before = poll_job(
        &channel,
        &second,
        "a shard done (or the job finished)",
        JOB_TIMEOUT,
        |j| j.finished || done_count(j) >= 1,
    )
    .await;
    assert!(
        !before.finished,
        "the second job finished before the stop: nothing tested"
    );
    eprintln!(
        "stopping all nodes with {} of {} shards of the second job done",
        done_count(&before),
        before.shards.len()
    );
    drop(channel);
    cluster.stop_all().await;

    let restarted_at = Instant::now();
    cluster.start_nodes();
    let master = cluster.formed().await;
    eprintln!(
        "cluster formed again {:.2} s after the restart; master {master}",
        restarted_at.elapsed().as_secs_f64()
    );

    let channel = cluster.nodes[0].channel().await;
    let info = job(channel.clone(), &first)
        .await
        .expect("the first job is known after the restart");
    assert_eq!(info.status, "completed", "first job: {}", info.message);
    let (sha, _) = retrieve(channel.clone(), &first, &dir.path().join("first-after.mp4"))
        .await
        .expect("retrieve the first job after the restart");
    assert_eq!(
        sha, first_sha,
        "the first output changed across the restart"
    );

    completed(&channel, &second).await;
    check_output(&channel, &second, &long, &dir.path().join("second.mp4")).await;

    let (agreed, term) = agreed_master(&cluster.addresses())
        .await
        .expect("all three nodes name the same master");
    assert_eq!(agreed, master);
    eprintln!("all nodes agree on {agreed} in term {term}");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_original_client_works_against_a_follower() {
    let dir = tempfile::tempdir().expect("tempdir");
    let clip = make_clip(&dir.path().join("clip.mp4"), 10, 320, 240, true);
    let cluster = Cluster::start(dir.path());
    let master = cluster.formed().await;
    let follower = (0..NODES)
        .find(|&i| cluster.address(i) != master)
        .expect("a follower");
    let follower_address = cluster.address(follower);
    eprintln!("master {master}, using follower {follower_address}");
    let channel = cluster.nodes[follower].channel().await;

    // Only the original protocol from here on.
    let data = tokio::fs::read(&clip).await.expect("read clip");
    let reply = upload_bytes(channel.clone(), "clip.mp4", data, &target())
        .await
        .expect("UploadVideo through the follower");
    assert!(reply.success, "upload refused: {}", reply.message);
    let id = reply.video_id;

    let mut master_service = MasterServiceClient::new(channel.clone());
    let status = wait_for(
        "GetVideoStatus to leave the running states",
        JOB_TIMEOUT,
        || {
            let mut client = master_service.clone();
            let id = id.clone();
            async move {
                let reply = client
                    .get_video_status(VideoStatusRequest { video_id: id })
                    .await
                    .ok()?
                    .into_inner();
                (!RUNNING.contains(&reply.status.as_str())).then_some(reply)
            }
        },
    )
    .await;
    assert_eq!(status.status, "completed", "{}", status.message);
    assert_eq!(status.video_id, id);
    let again = master_service
        .get_video_status(VideoStatusRequest {
            video_id: id.clone(),
        })
        .await
        .expect("GetVideoStatus")
        .into_inner();
    assert_eq!(again.status, "completed");

    check_output(&channel, &id, &clip, &dir.path().join("out.mp4")).await;

    let mut term = None;
    for address in cluster.addresses() {
        let reply = current_master(&address)
            .await
            .unwrap_or_else(|| panic!("GetCurrentMaster on {address}"));
        assert!(reply.is_master_known, "{address} knows no master");
        assert_eq!(reply.master_address, master, "master named by {address}");
        assert_eq!(
            *term.get_or_insert(reply.term),
            reply.term,
            "term named by {address}"
        );
    }
    let stats = NodeServiceClient::new(channel)
        .get_node_stats(NodeStatsRequest {})
        .await
        .expect("GetNodeStats on the follower")
        .into_inner();
    assert!(!stats.is_master, "the follower says it is the master");
    assert_eq!(stats.current_master_address, master);
    assert_eq!(stats.node_address, follower_address);
}
