//! Distributed encoding with real node processes on 127.0.0.1: a master
//! and workers, shards spread over them, workers dying, failing, joining
//! late or starting before their master.

mod common;

use std::time::{Duration, Instant};

use common::clips::{make_clip, report};
use common::node::NodeProc;
use common::{Params, job, nodes, retrieve, upload_file, wait_finished, wait_for};

const JOB_TIMEOUT: Duration = Duration::from_secs(300);

fn worker_of(master: &NodeProc) -> Vec<String> {
    vec![
        "--role".into(),
        "worker".into(),
        "--master".into(),
        master.address.clone(),
    ]
}

fn start_worker(dir: &std::path::Path, master: &NodeProc, extra: &[&str]) -> NodeProc {
    let mut args = worker_of(master);
    args.extend(extra.iter().map(|s| s.to_string()));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    NodeProc::start(dir, &args)
}

async fn wait_alive(master: &NodeProc, count: usize) {
    let channel = master.channel().await;
    wait_for(
        &format!("{count} live nodes"),
        Duration::from_secs(20),
        || {
            let channel = channel.clone();
            async move {
                (nodes(channel)
                    .await
                    .nodes
                    .iter()
                    .filter(|n| n.alive)
                    .count()
                    >= count)
                    .then_some(())
            }
        },
    )
    .await;
}

/// Waits for a shard of job `id` to be encoding on node `node_id`.
async fn shard_encoding_on(channel: &tonic::transport::Channel, id: &str, node_id: &str) -> u32 {
    wait_for("a shard encoding on the node", JOB_TIMEOUT, || {
        let (channel, id, node_id) = (channel.clone(), id.to_string(), node_id.to_string());
        async move {
            let info = job(channel, &id).await.ok()?;
            info.shards
                .iter()
                .find(|s| s.state == "encoding" && s.running_on.contains(&node_id))
                .map(|s| s.index)
        }
    })
    .await
}

/// Waits (at most 10 s) until shard `shard` no longer runs on `node_id`.
async fn wait_shard_leaves(
    channel: &tonic::transport::Channel,
    id: &str,
    shard: u32,
    node_id: &str,
) {
    wait_for(
        "the shard to leave the node",
        Duration::from_secs(10),
        || {
            let (channel, id, node_id) = (channel.clone(), id.to_string(), node_id.to_string());
            async move {
                let info = job(channel, &id).await.ok()?;
                (!info.shards[shard as usize].running_on.contains(&node_id)).then_some(())
            }
        },
    )
    .await;
}

/// The node id the master lists for `address`.
async fn node_id_of(channel: &tonic::transport::Channel, address: &str) -> String {
    nodes(channel.clone())
        .await
        .nodes
        .into_iter()
        .find(|n| n.address == address)
        .expect("node listed")
        .node_id
}

/// Checks the retrieved output of a completed job against its source.
async fn check_output(master: &NodeProc, id: &str, clip: &std::path::Path, size: (u64, u64)) {
    let out = master.data_dir.join(format!("{id}.out"));
    retrieve(master.channel().await, id, &out)
        .await
        .expect("retrieve");
    let (src, got) = (report(clip), report(&out));
    assert_eq!(got.frames, src.frames);
    assert_eq!((got.width, got.height), size);
    match (src.audio_seconds, got.audio_seconds) {
        (Some(a), Some(b)) => assert!((a - b).abs() <= 0.05, "audio {b} vs {a}"),
        other => panic!("audio lost: {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn sixty_second_clip_spreads_over_three_nodes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let clip = make_clip(&dir.path().join("clip.mp4"), 60, 320, 240, true);
    let master = NodeProc::start(&dir.path().join("master"), &["--slots", "1"]);
    let _w1 = start_worker(&dir.path().join("w1"), &master, &["--slots", "1"]);
    let _w2 = start_worker(&dir.path().join("w2"), &master, &["--slots", "1"]);
    wait_alive(&master, 3).await;
    let channel = master.channel().await;
    let listed = nodes(channel.clone()).await;
    assert_eq!(listed.nodes.len(), 3);
    assert_eq!(listed.master_address, master.address);

    let id = upload_file(
        channel.clone(),
        "clip.mp4",
        &clip,
        &Params::size(160, 120, "mp4"),
    )
    .await;
    let info = wait_finished(channel.clone(), &id, JOB_TIMEOUT).await;
    assert_eq!(info.status, "completed", "{}", info.message);
    let mut workers: Vec<&str> = info.shards.iter().map(|s| s.worker_id.as_str()).collect();
    workers.sort();
    workers.dedup();
    assert!(workers.len() >= 2, "shards ran on {workers:?} only");
    check_output(&master, &id, &clip, (160, 120)).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn killed_worker_loses_no_shard_and_is_replaced_within_ten_seconds() {
    let dir = tempfile::tempdir().expect("tempdir");
    let clip = make_clip(&dir.path().join("clip.mp4"), 40, 640, 360, true);
    let master = NodeProc::start(
        &dir.path().join("master"),
        &["--slots", "1", "--shard-seconds", "4"],
    );
    let victim = start_worker(&dir.path().join("victim"), &master, &["--slots", "1"]);
    let _survivor = start_worker(&dir.path().join("survivor"), &master, &["--slots", "1"]);
    wait_alive(&master, 3).await;
    let channel = master.channel().await;
    let victim_id = node_id_of(&channel, &victim.address).await;

    // VP9 at the source size keeps every shard busy for a while.
    let id = upload_file(
        channel.clone(),
        "clip.mp4",
        &clip,
        &Params::size(640, 360, "webm"),
    )
    .await;
    let shard = shard_encoding_on(&channel, &id, &victim_id).await;
    let killed_at = Instant::now();
    let pid = victim.pid();
    std::process::Command::new("kill")
        .args(["-9", &pid.to_string()])
        .status()
        .expect("kill -9");

    // Reassigned: taken off the dead worker (queued for the next free
    // slot, or already running elsewhere) within 10 s of the kill.
    wait_shard_leaves(&channel, &id, shard, &victim_id).await;
    let reassigned_after = killed_at.elapsed();
    eprintln!("shard {shard} moved off the killed worker after {reassigned_after:?}");
    if std::env::var_os("VIDSHARD_TEST_LOGS").is_some() {
        eprintln!("{}", master.log_text());
    }
    let info = wait_finished(channel.clone(), &id, JOB_TIMEOUT).await;
    assert_eq!(info.status, "completed", "{}", info.message);
    assert_ne!(
        info.shards[shard as usize].worker_id, victim_id,
        "the killed worker cannot have finished it"
    );
    check_output(&master, &id, &clip, (640, 360)).await;
    let listed = nodes(channel).await;
    assert!(
        !listed
            .nodes
            .iter()
            .find(|n| n.node_id == victim_id)
            .expect("still listed")
            .alive,
        "the dead worker must show as dead"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn worker_with_broken_ffmpeg_never_loses_the_job() {
    let dir = tempfile::tempdir().expect("tempdir");
    let clip = make_clip(&dir.path().join("clip.mp4"), 20, 320, 240, true);
    let master = NodeProc::start(
        &dir.path().join("master"),
        &["--slots", "1", "--shard-seconds", "4"],
    );
    // An ffmpeg that lists the encoders (so the node looks able) but
    // fails every encode.
    let fake = dir.path().join("broken-ffmpeg");
    std::fs::write(
        &fake,
        "#!/bin/sh\ncase \"$*\" in *-encoders*|*-filters*) exec ffmpeg \"$@\";; esac\nexit 1\n",
    )
    .expect("write the fake ffmpeg");
    std::fs::set_permissions(&fake, std::os::unix::fs::PermissionsExt::from_mode(0o755))
        .expect("make it executable");
    let broken = start_worker(
        &dir.path().join("broken"),
        &master,
        &["--slots", "2", "--ffmpeg", fake.to_str().expect("utf8")],
    );
    wait_alive(&master, 2).await;
    let channel = master.channel().await;
    let broken_id = node_id_of(&channel, &broken.address).await;
    let id = upload_file(
        channel.clone(),
        "clip.mp4",
        &clip,
        &Params::size(160, 120, "mp4"),
    )
    .await;
    let info = wait_finished(channel, &id, JOB_TIMEOUT).await;
    assert_eq!(info.status, "completed", "{}", info.message);
    assert!(
        info.shards.iter().all(|s| s.worker_id != broken_id),
        "a shard was accepted from the broken node"
    );
    let retried: Vec<_> = info.shards.iter().filter(|s| s.attempts > 1).collect();
    assert!(
        !retried.is_empty(),
        "the broken node got no shard, so nothing was tested: {:?}",
        info.shards
    );
    check_output(&master, &id, &clip, (160, 120)).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn worker_joining_mid_job_gets_shards_and_early_worker_waits_for_master() {
    let dir = tempfile::tempdir().expect("tempdir");
    let clip = make_clip(&dir.path().join("clip.mp4"), 40, 640, 360, true);
    // A worker started before its master keeps retrying and joins later.
    let port = common::free_port();
    let master_address = format!("127.0.0.1:{port}");
    let early = NodeProc::start(
        &dir.path().join("early"),
        &[
            "--role",
            "worker",
            "--master",
            &master_address,
            "--slots",
            "1",
        ],
    );
    let master = NodeProc::start(
        &dir.path().join("master"),
        &[
            "--port",
            &port.to_string(),
            "--slots",
            "1",
            "--shard-seconds",
            "4",
        ],
    );
    assert_eq!(master.address, master_address);
    wait_alive(&master, 2).await;

    let channel = master.channel().await;
    let id = upload_file(
        channel.clone(),
        "clip.mp4",
        &clip,
        &Params::size(640, 360, "webm"),
    )
    .await;
    wait_for("the job to start encoding", JOB_TIMEOUT, || {
        let (channel, id) = (channel.clone(), id.clone());
        async move {
            job(channel, &id)
                .await
                .ok()
                .filter(|j| j.shards.iter().any(|s| s.state == "encoding"))
                .map(|_| ())
        }
    })
    .await;
    // Remote progress arrives with the worker's heartbeats.
    let early_address = early.address.clone();
    wait_for(
        "partial progress of a shard on the remote worker",
        JOB_TIMEOUT,
        || {
            let (channel, id, early_address) = (channel.clone(), id.clone(), early_address.clone());
            async move {
                let info = job(channel, &id).await.ok()?;
                info.shards
                    .iter()
                    .find(|s| {
                        s.state == "encoding"
                            && s.worker == early_address
                            && s.progress > 0.0
                            && s.progress < 1.0
                    })
                    .map(|_| ())
            }
        },
    )
    .await;
    let late = start_worker(&dir.path().join("late"), &master, &["--slots", "1"]);
    let info = wait_finished(channel.clone(), &id, JOB_TIMEOUT).await;
    assert_eq!(info.status, "completed", "{}", info.message);
    let by_late = info
        .shards
        .iter()
        .filter(|s| s.worker == late.address)
        .count();
    let by_early = info
        .shards
        .iter()
        .filter(|s| s.worker == early.address)
        .count();
    assert!(
        by_late > 0,
        "the late worker got no shard: {:?}",
        info.shards.iter().map(|s| &s.worker).collect::<Vec<_>>()
    );
    assert!(by_early > 0, "the early worker got no shard");
    check_output(&master, &id, &clip, (640, 360)).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn original_node_registration_is_listed_then_pruned_when_silent() {
    use vidshard_proto::replication::node_service_client::NodeServiceClient;
    use vidshard_proto::replication::{GetAllNodesRequest, NodeStatsRequest, RegisterNodeRequest};

    let dir = tempfile::tempdir().expect("tempdir");
    let master = NodeProc::start(&dir.path().join("master"), &[]);
    let mut client = NodeServiceClient::new(master.channel().await);
    // Nobody listens there, so the liveness probe will never be answered.
    let ghost_port = common::free_port();
    let reply = client
        .register_node(RegisterNodeRequest {
            node_id: "old-node".into(),
            address: "127.0.0.1".into(),
            port: ghost_port.into(),
        })
        .await
        .expect("register")
        .into_inner();
    assert!(reply.success);
    assert_eq!(reply.current_leader, master.address);
    let listed = |c: &mut NodeServiceClient<tonic::transport::Channel>| {
        let mut c = c.clone();
        async move {
            // The node may die between two calls (the count only ever
            // falls): compare GetNodeStats with two GetAllNodes around it
            // that agree with each other.
            loop {
                let all = c
                    .get_all_nodes(GetAllNodesRequest {})
                    .await
                    .expect("all")
                    .into_inner()
                    .nodes;
                let stats = c
                    .get_node_stats(NodeStatsRequest {})
                    .await
                    .expect("stats")
                    .into_inner();
                let again = c
                    .get_all_nodes(GetAllNodesRequest {})
                    .await
                    .expect("all")
                    .into_inner()
                    .nodes;
                if again.len() != all.len() {
                    continue;
                }
                assert_eq!(
                    stats.known_nodes_count as usize,
                    all.len(),
                    "GetNodeStats agrees with GetAllNodes"
                );
                assert!(stats.is_master);
                return all.iter().any(|n| n.port == i32::from(ghost_port));
            }
        }
    };
    assert!(listed(&mut client).await, "a registered node is listed");
    let started = Instant::now();
    wait_for(
        "the silent node to be pruned",
        Duration::from_secs(15),
        || {
            let mut c = client.clone();
            async move { (!listed(&mut c).await).then_some(()) }
        },
    )
    .await;
    assert!(
        started.elapsed() >= Duration::from_secs(3),
        "pruned too early: one missed probe must not prune"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn original_workers_register_and_report_scores() {
    use vidshard_proto::replication::master_service_client::MasterServiceClient;
    use vidshard_proto::replication::node_service_client::NodeServiceClient;
    use vidshard_proto::replication::{
        RegisterWorkerRequest, ReportResourceScoreRequest, ResourceScore,
    };

    let dir = tempfile::tempdir().expect("tempdir");
    let master = NodeProc::start(&dir.path().join("master"), &[]);
    let channel = master.channel().await;
    let address = format!("127.0.0.1:{}", common::free_port());
    let score = |worker: &str, value: f32| ReportResourceScoreRequest {
        worker_address: worker.into(),
        resource_score: Some(ResourceScore {
            server_id: "w".into(),
            score: value,
            load_avg: 0.5,
            ..Default::default()
        }),
    };
    let unknown = NodeServiceClient::new(channel.clone())
        .report_resource_score(score(&address, 42.0))
        .await
        .expect("rpc")
        .into_inner();
    assert!(
        !unknown.success && unknown.message.contains("RegisterWorker"),
        "{}",
        unknown.message
    );

    let registered = MasterServiceClient::new(channel.clone())
        .register_worker(RegisterWorkerRequest {
            worker_address: address.clone(),
        })
        .await
        .expect("rpc")
        .into_inner();
    assert!(registered.success, "{}", registered.message);
    let bad = MasterServiceClient::new(channel.clone())
        .register_worker(RegisterWorkerRequest {
            worker_address: "../../etc:passwd".into(),
        })
        .await
        .expect("rpc")
        .into_inner();
    assert!(!bad.success);

    let reply = NodeServiceClient::new(channel.clone())
        .report_resource_score(score(&address, 42.0))
        .await
        .expect("rpc")
        .into_inner();
    assert!(reply.success, "{}", reply.message);
    let listed = nodes(channel).await;
    let row = listed
        .nodes
        .iter()
        .find(|n| n.address == address)
        .expect("the original worker is listed");
    assert_eq!(row.score, 42.0);
    assert_eq!(row.protocol, "original");
    assert!(row.alive);
}

#[tokio::test(flavor = "multi_thread")]
async fn hung_worker_is_declared_dead_its_shard_moves_and_it_comes_back() {
    let dir = tempfile::tempdir().expect("tempdir");
    let clip = make_clip(&dir.path().join("clip.mp4"), 24, 640, 360, true);
    let master = NodeProc::start(
        &dir.path().join("master"),
        &["--slots", "1", "--shard-seconds", "4"],
    );
    let hung = start_worker(&dir.path().join("hung"), &master, &["--slots", "1"]);
    wait_alive(&master, 2).await;
    let channel = master.channel().await;
    let hung_id = node_id_of(&channel, &hung.address).await;
    let id = upload_file(
        channel.clone(),
        "clip.mp4",
        &clip,
        &Params::size(640, 360, "webm"),
    )
    .await;
    let shard = shard_encoding_on(&channel, &id, &hung_id).await;
    // SIGSTOP: the process and its sockets stay open but nothing answers,
    // so only the missing heartbeats can tell.
    let stopped_at = Instant::now();
    std::process::Command::new("kill")
        .args(["-STOP", &hung.pid().to_string()])
        .status()
        .expect("kill -STOP");
    wait_shard_leaves(&channel, &id, shard, &hung_id).await;
    eprintln!(
        "shard {shard} left the hung worker after {:?}",
        stopped_at.elapsed()
    );
    assert!(
        !nodes(channel.clone())
            .await
            .nodes
            .iter()
            .find(|n| n.node_id == hung_id)
            .expect("listed")
            .alive
    );

    std::process::Command::new("kill")
        .args(["-CONT", &hung.pid().to_string()])
        .status()
        .expect("kill -CONT");
    wait_for(
        "the worker to be alive again",
        Duration::from_secs(15),
        || {
            let (channel, hung_id) = (channel.clone(), hung_id.clone());
            async move {
                nodes(channel)
                    .await
                    .nodes
                    .iter()
                    .any(|n| n.node_id == hung_id && n.alive)
                    .then_some(())
            }
        },
    )
    .await;
    let info = wait_finished(channel, &id, JOB_TIMEOUT).await;
    assert_eq!(info.status, "completed", "{}", info.message);
    check_output(&master, &id, &clip, (640, 360)).await;
}
