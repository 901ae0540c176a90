//! The cost of a job-state write: how many Raft commands per second one
//! node commits (redb fsync per append, then the state machine applies
//! it), one at a time and with 16 writers (openraft batches appends).
//!
//!   cargo bench -p vidshard-node --bench raft_writes [-- COMMANDS]

use std::time::{Duration, Instant};

use vidshard_node::cluster::peers::Peers;
use vidshard_node::cluster::raft::consensus::Consensus;
use vidshard_node::jobs::{Command, JobStatus, SharedJobs, now_unix_ms};
use vidshard_node::params::RawParams;
use vidshard_node::store::BlobRef;

fn accept(i: usize) -> Command {
    let params = RawParams {
        target_width: 640,
        target_height: 360,
        ..Default::default()
    }
    .validate()
    .expect("valid params");
    Command::Accept {
        requested_id: format!("bench-{i}"),
        upload_key: String::new(),
        params,
        source: BlobRef {
            sha256: format!("{i:064x}"),
            size: 1 << 20,
        },
        source_holders: vec!["node-a".into(), "node-b".into()],
        at_ms: now_unix_ms(),
    }
}

fn status(i: usize) -> Command {
    Command::Status {
        job: format!("bench-{}", i % 100),
        status: JobStatus::Processing,
        message: format!("step {i}"),
        at_ms: now_unix_ms(),
    }
}

async fn sequential(consensus: &Consensus, n: usize) -> Duration {
    let started = Instant::now();
    for i in 0..n {
        consensus.write(status(i)).await.expect("write");
    }
    started.elapsed()
}

async fn concurrent(consensus: &Consensus, n: usize, writers: usize) -> Duration {
    let started = Instant::now();
    let mut tasks = Vec::new();
    for w in 0..writers {
        let consensus = consensus.clone();
        tasks.push(tokio::spawn(async move {
            for i in (w..n).step_by(writers) {
                consensus.write(status(i)).await.expect("write");
            }
        }));
    }
    for task in tasks {
        task.await.expect("writer");
    }
    started.elapsed()
}

fn main() {
    let n: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(2000);
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    runtime.block_on(async {
        let dir = tempfile::tempdir().expect("tempdir");
        let jobs = SharedJobs::default();
        let consensus =
            Consensus::start(dir.path(), "node-bench", jobs.clone(), Peers::default(), 5)
                .await
                .expect("start raft");
        consensus.bootstrap("127.0.0.1:1").await.expect("bootstrap");
        consensus
            .wait_for_leader(Duration::from_secs(10))
            .await
            .expect("a leader");
        for i in 0..100 {
            consensus.write(accept(i)).await.expect("accept");
        }
        let one = sequential(&consensus, n).await;
        let many = concurrent(&consensus, n, 16).await;
        let per_second = |d: Duration| n as f64 / d.as_secs_f64();
        println!("raft writes on one node ({n} commands each, redb fsync per append):");
        println!(
            "  1 writer:   {:>8.0} commands/s  ({:.2} ms per write)",
            per_second(one),
            one.as_secs_f64() * 1000.0 / n as f64
        );
        println!("  16 writers: {:>8.0} commands/s", per_second(many));
        println!("  jobs in the table: {}", jobs.lock().list().len());
        consensus.raft.shutdown().await.expect("shutdown");
    });
}
