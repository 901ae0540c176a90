//! A master holding many jobs (issue 17, item 3): writes N completed jobs
//! (default 100,000; each accepted, planned in 2 shards, both encoded and
//! completed: 5 Raft commands) through one node's Raft log, then reports
//! the table's memory, a listing page's cost, the snapshot (size and
//! build time; the log is compacted to it), and a restart: a fresh
//! process opens the same data dir and is timed until it is the leader
//! with every job loaded, its RSS beside it.
//!
//!   cargo bench -p vidshard-node --bench many_jobs [-- JOBS]

use std::time::{Duration, Instant};

use vidshard_node::cluster::peers::Peers;
use vidshard_node::cluster::raft::consensus::Consensus;
use vidshard_node::jobs::listing::{StateFilter, page};
use vidshard_node::jobs::{
    Command, PlannedShard, SharedJobs, SourceSummary, StageTimes, now_unix_ms,
};
use vidshard_node::params::RawParams;
use vidshard_node::store::BlobRef;

const WRITERS: usize = 32;
const SHARDS: u32 = 2;

fn blob(tag: &str, i: usize) -> BlobRef {
    let hex: String = format!("{tag}{i}")
        .bytes()
        .map(|b| format!("{b:02x}"))
        .collect();
    BlobRef {
        sha256: format!("{hex:0>64}")[..64].to_string(),
        size: 20 << 20,
    }
}

/// The commands of one job's whole life.
fn job_commands(i: usize) -> Vec<Command> {
    let job = format!("clip-{i:06}.mp4");
    let at_ms = now_unix_ms();
    let params = RawParams {
        target_width: 1280,
        target_height: 720,
        original_filename: format!("holiday-{i:06}.mov"),
        ..Default::default()
    }
    .validate()
    .expect("valid params");
    let mut commands = vec![
        Command::Accept {
            requested_id: job.clone(),
            upload_key: format!("key-{i}"),
            params,
            source: blob("s", i),
            source_holders: vec!["node-a".into(), "node-b".into()],
            at_ms,
        },
        Command::Plan {
            job: job.clone(),
            summary: SourceSummary {
                width: 1920,
                height: 1080,
                frames: 600,
                duration_seconds: 20.0,
                has_audio: true,
            },
            output_size: (1280, 720),
            shards: (0..SHARDS)
                .map(|s| PlannedShard {
                    frames: 300,
                    start_seconds: f64::from(s) * 10.0,
                    duration_seconds: 10.0,
                    rung: None,
                })
                .collect(),
            message: "encoding".into(),
            at_ms,
            package: None,
        },
    ];
    for shard in 0..SHARDS {
        commands.push(Command::ShardDone {
            job: job.clone(),
            shard,
            encoded: blob(&format!("e{shard}"), i),
            worker_id: "node-b".into(),
            worker: "10.0.0.2:50051".into(),
            holders: vec!["node-b".into(), "node-a".into()],
            encode_seconds: 4.2,
            transfer_seconds: 0.3,
            at_ms,
            quality: None,
        });
    }
    commands.push(Command::Complete {
        job,
        output: blob("o", i),
        frames: 600,
        holders: vec!["node-a".into(), "node-c".into()],
        timings: StageTimes::default(),
        message: "done".into(),
        at_ms,
    });
    commands
}

fn rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

async fn open(dir: &std::path::Path) -> (Consensus, SharedJobs) {
    let jobs = SharedJobs::default();
    let consensus = Consensus::start(dir, "node-a", jobs.clone(), Peers::default(), 5)
        .await
        .expect("start raft");
    consensus.bootstrap("127.0.0.1:1").await.expect("bootstrap");
    consensus
        .wait_for_leader(Duration::from_secs(30))
        .await
        .expect("a leader");
    (consensus, jobs)
}

/// The restarted process: open, wait to lead with every job loaded.
async fn reopen(dir: &std::path::Path, expect: usize) {
    let started = Instant::now();
    let (consensus, jobs) = open(dir).await;
    while jobs.lock().iter().count() < expect {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    println!(
        "restart: leader with {} jobs after {:.2} s, RSS {:.0} MiB",
        jobs.lock().iter().count(),
        started.elapsed().as_secs_f64(),
        rss_mib()
    );
    consensus.raft.shutdown().await.expect("shutdown");
}

async fn fill(dir: &std::path::Path, n: usize) {
    let before = rss_mib();
    let (consensus, jobs) = open(dir).await;
    let started = Instant::now();
    let mut tasks = Vec::new();
    for w in 0..WRITERS {
        let consensus = consensus.clone();
        tasks.push(tokio::spawn(async move {
            for i in (w..n).step_by(WRITERS) {
                for command in job_commands(i) {
                    consensus.write(command).await.expect("write");
                }
            }
        }));
    }
    for task in tasks {
        task.await.expect("writer");
    }
    let took = started.elapsed().as_secs_f64();
    let commands = n * (3 + SHARDS as usize);
    println!(
        "wrote {n} jobs ({commands} commands) in {took:.1} s: {:.0} commands/s",
        commands as f64 / took
    );
    println!(
        "table: {} jobs, RSS {:.0} MiB ({:.0} MiB before)",
        jobs.lock().iter().count(),
        rss_mib(),
        before
    );
    let listed = Instant::now();
    let count = {
        let table = jobs.lock();
        page(&table, StateFilter::All, 50, None).jobs.len()
    };
    println!(
        "first page of `vidshard jobs` ({count} of {n}): {:.1} ms",
        listed.elapsed().as_secs_f64() * 1000.0
    );
    let json = serde_json::to_vec(&*jobs.lock()).expect("json").len();
    // A trigger while an automatic build (every 1,000 entries) is under
    // way is dropped: trigger until a snapshot covers everything applied.
    let applied = consensus.raft.metrics().borrow().last_applied;
    let built = Instant::now();
    while consensus.raft.metrics().borrow().snapshot < applied {
        consensus.raft.trigger().snapshot().await.expect("snapshot");
        let deadline = Instant::now() + Duration::from_secs(5);
        while consensus.raft.metrics().borrow().snapshot < applied && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert!(built.elapsed() < Duration::from_secs(600), "no snapshot");
    }
    println!(
        "snapshot: {:.1} MiB of JSON, built and stored in {:.2} s; raft.redb {:.1} MiB; RSS {:.0} MiB",
        json as f64 / (1 << 20) as f64,
        built.elapsed().as_secs_f64(),
        std::fs::metadata(dir.join("raft.redb")).map_or(0, |m| m.len()) as f64 / (1 << 20) as f64,
        rss_mib()
    );
    consensus.raft.shutdown().await.expect("shutdown");
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    if let Some(at) = args.iter().position(|a| a == "--reopen") {
        let dir = std::path::PathBuf::from(&args[at + 1]);
        let expect: usize = args[at + 2].parse().expect("job count");
        runtime.block_on(reopen(&dir, expect));
        return;
    }
    let n: usize = args
        .iter()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(100_000);
    let dir = tempfile::tempdir().expect("tempdir");
    runtime.block_on(fill(dir.path(), n));
    drop(runtime);
    let status = std::process::Command::new(std::env::current_exe().expect("self"))
        .arg("--reopen")
        .arg(dir.path())
        .arg(n.to_string())
        .status()
        .expect("restart");
    assert!(status.success(), "the restarted process failed");
}
