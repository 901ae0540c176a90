//! Graceful stop of a worker with real nodes and real ffmpeg
//! (`--drain-timeout`): SIGTERM while it encodes a shard for the master →
//! it takes no new shard, finishes the running one, the master fetches
//! the result (done there, first attempt), the node exits 0 and the job
//! completes with every frame. With a drain timeout shorter than the
//! encode, the running shard is handed back: the master hears it at once
//! and re-runs it elsewhere, the node still exits 0 and the job completes.
//! A second signal during the drain exits at once; the job still completes.

mod common;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use vidshard_proto::v1::JobInfo;

use common::clips::make_clip;
use common::cluster::{Cluster, lazy_channel};
use common::node::node_binary;
use common::{job, wait_for};

/// Uploads `clip` through the CLI with a slow preset (shards take
/// seconds to encode, so a stop signal lands mid-encode) as job `name`
/// (a new job each time: the same bytes and options within 10 minutes
/// would otherwise be answered with the first job); answers the id.
fn upload_slow(master: &str, clip: &Path, name: &str) -> String {
    let out = Command::new(node_binary().with_file_name("vidshard"))
        .args(["--node", master, "--json", "upload"])
        .arg(clip)
        .args(["--width", "1280", "--height", "720", "--preset", "slower"])
        .args(["--id", name])
        .output()
        .expect("run vidshard");
    assert!(
        out.status.success(),
        "upload: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    doc["id"].as_str().expect("id").to_string()
}

/// Waits until a shard of job `id` is encoding on node `worker_id` with
/// some progress; answers its index.
async fn shard_encoding_on(master: &str, id: &str, worker_id: &str) -> u32 {
    let channel = lazy_channel(master);
    wait_for(
        "a shard encoding on the node to stop",
        Duration::from_secs(90),
        || {
            let channel = channel.clone();
            async move {
                let info = job(channel, id).await.ok()?;
                info.shards
                    .iter()
                    .find(|s| s.state == "encoding" && s.worker_id == worker_id && s.progress > 0.0)
                    .map(|s| s.index)
            }
        },
    )
    .await
}

async fn completed(master: &str, id: &str) -> JobInfo {
    let channel = lazy_channel(master);
    wait_for("the job to complete", Duration::from_secs(180), || {
        let channel = channel.clone();
        async move {
            let info = job(channel, id).await.ok()?;
            assert_ne!(info.status, "processing_failed", "{info:?}");
            (info.status == "completed").then_some(info)
        }
    })
    .await
}

/// Waits until the master sees node `node_id` alive (after a restart).
async fn alive_again(master: &str, node_id: &str) {
    wait_for(
        "the restarted node to be alive",
        Duration::from_secs(30),
        || async {
            common::nodes(lazy_channel(master))
                .await
                .nodes
                .iter()
                .any(|n| n.node_id == node_id && n.alive)
                .then_some(())
        },
    )
    .await;
}

fn node_id(cluster: &Cluster, i: usize) -> String {
    std::fs::read_to_string(cluster.root.join(format!("n{}", i + 1)).join("node-id"))
        .expect("node-id")
        .trim()
        .to_string()
}

async fn terminate(cluster: Cluster, i: usize) -> (Cluster, bool, String) {
    tokio::task::spawn_blocking(move || {
        let mut cluster = cluster;
        let (status, log) = cluster.terminate(i);
        (cluster, status.success(), log)
    })
    .await
    .expect("terminate")
}

#[tokio::test(flavor = "multi_thread")]
async fn a_stopping_worker_finishes_its_shard_or_hands_it_back() {
    let dir = tempfile::tempdir().expect("tempdir");
    let clip = make_clip(&dir.path().join("clip.mp4"), 16, 1280, 720, true);
    let mut cluster = Cluster::start(dir.path());
    let master = cluster.formed().await;
    let f = (0..3)
        .find(|&i| cluster.address(i) != master)
        .expect("a follower");
    let f_id = node_id(&cluster, f);

    // 1. Drain: the running shard finishes on the stopping node.
    let id = upload_slow(&master, &clip, "drained");
    let shard = shard_encoding_on(&master, &id, &f_id).await;
    let (back, exited_cleanly, log) = terminate(cluster, f).await;
    cluster = back;
    if !exited_cleanly {
        cluster.print_logs(40);
    }
    assert!(exited_cleanly, "exit 0 after SIGTERM:\n{log}");
    assert!(
        log.contains("draining: letting running shards finish"),
        "the node drained a running shard:\n{log}"
    );
    assert!(log.contains("drained: every shard"), "{log}");
    let after_signal = log.split("draining:").nth(1).unwrap_or_default();
    assert!(
        after_signal
            .matches("encoded a shard for the master")
            .count()
            <= 1,
        "one slot: at most the running shard finished after the signal:\n{log}"
    );
    let info = completed(&master, &id).await;
    let s = &info.shards[shard as usize];
    assert_eq!(
        (s.worker_id.as_str(), s.attempts),
        (f_id.as_str(), 1),
        "the drained shard was kept, not re-run: {s:?}"
    );
    assert_eq!(info.shards.iter().map(|s| s.frames).sum::<u64>(), 480);

    // 2. Hand back: a drain timeout shorter than the encode.
    cluster.start_again(f, &["--drain-timeout", "0.5"]);
    alive_again(&master, &f_id).await;
    let id = upload_slow(&master, &clip, "handed-back");
    let shard = shard_encoding_on(&master, &id, &f_id).await;
    let (back, exited_cleanly, log) = terminate(cluster, f).await;
    cluster = back;
    assert!(exited_cleanly, "exit 0 after SIGTERM:\n{log}");
    assert!(
        log.contains("handed a running shard back"),
        "the running shard was handed back:\n{log}"
    );
    let info = completed(&master, &id).await;
    let s = &info.shards[shard as usize];
    assert_ne!(s.worker_id, f_id, "re-run elsewhere: {s:?}");
    assert_eq!(info.shards.iter().map(|s| s.frames).sum::<u64>(), 480);
    cluster.start_again(f, &[]);
    let master_log = cluster.nodes[cluster.index_of(&master).expect("master")].log_text();
    assert!(
        master_log.contains("shard handed back"),
        "the master heard the hand-back from the worker:\n{master_log}"
    );

    // 3. A second signal during the drain exits at once (status 130);
    //    the shard it was finishing is re-run elsewhere, nothing is lost.
    alive_again(&master, &f_id).await;
    let id = upload_slow(&master, &clip, "second-signal");
    shard_encoding_on(&master, &id, &f_id).await;
    cluster.nodes[f].signal_term();
    wait_for("the drain to begin", Duration::from_secs(10), || {
        let log = cluster.nodes[f].log_text();
        async move {
            log.contains("draining: letting running shards finish")
                .then_some(())
        }
    })
    .await;
    cluster.nodes[f].signal_term();
    let status = wait_for("the node to exit", Duration::from_secs(5), || {
        let status = cluster.nodes[f].exit_status();
        async move { status }
    })
    .await;
    assert_eq!(
        status.code(),
        Some(130),
        "exit at once on the second signal"
    );
    assert!(
        !cluster.nodes[f].log_text().contains("drained: every shard"),
        "it did not wait for the drain"
    );
    let info = completed(&master, &id).await;
    assert_eq!(info.shards.iter().map(|s| s.frames).sum::<u64>(), 480);
    cluster.restart(f);
    cluster.stop_all().await;
}
