//! What the driver tracks of each shard of a job (its running copies,
//! the workers it failed on) and how each change is recorded: the
//! durable side as Raft commands (assignment, result, failure), the
//! in-memory side in the job table (which workers run it now).

use std::sync::Arc;
use std::time::Instant;

use tokio::task::AbortHandle;

use super::Scheduler;
use super::launch::Member;
use crate::jobs::{Command, JobStop, ShardState, now_unix_ms};
use crate::media::EncodeSpec;
use crate::store::BlobRef;
use crate::worker::copy::{CopyOutcome, CopyRequest};

pub struct RunningCopy {
    pub worker_id: String,
    pub task_id: String,
    pub started: Instant,
    pub abort: AbortHandle,
}

#[derive(Default)]
pub struct ShardRun {
    pub done: bool,
    /// The ladder piece, when the task may ride in a bundle with its
    /// piece's other rungs (`decide`, rule 5).
    pub group: Option<u32>,
    pub copies: Vec<RunningCopy>,
    pub failed_on: Vec<String>,
    pub last_error: String,
}

/// What the driver knows of a job's tasks, to build their requests.
pub struct JobTasks<'a> {
    pub id: &'a str,
    pub specs: &'a [EncodeSpec],
    pub frames: &'a [u64],
    pub sources: &'a [Option<BlobRef>],
    pub measure_quality: bool,
}

/// Puts `shard` on the board for `worker`, then records the assignment;
/// answers its request. Recorded before the worker hears of it: a master
/// without a quorum hands out nothing. On the board first, so no
/// decision of this or another job sees the worker's slot still free (a
/// `rider` shares its bundle's slot).
pub async fn assign(
    sched: &Arc<Scheduler>,
    job: &JobTasks<'_>,
    shard: u32,
    worker: &str,
    address: &str,
    rider: bool,
    duplicate: bool,
) -> Result<Member, JobStop> {
    let id = job.id;
    let task_id = format!("{id}.{shard}.{}", uuid::Uuid::new_v4().simple());
    let req = CopyRequest {
        job_id: id.to_string(),
        shard_index: shard,
        task_id: task_id.clone(),
        spec: job.specs[shard as usize].clone(),
        expected_frames: job.frames[shard as usize],
        source: job.sources[shard as usize].clone().unwrap_or(BlobRef {
            sha256: String::new(),
            size: 0,
        }),
        total_shards: job.frames.len() as u32,
        measure_quality: job.measure_quality,
    };
    // The slot is taken before the write: another job's driver deciding
    // meanwhile must not see it free (it is given back if the write fails).
    let slot = match rider {
        true => sched.board.register_rider(&task_id, id, shard, worker),
        false => sched.board.register(&task_id, id, shard, worker),
    };
    let assigned = Command::ShardAssigned {
        job: id.to_string(),
        shard,
        worker_id: worker.to_string(),
        worker: address.to_string(),
        at_ms: now_unix_ms(),
    };
    sched.sys.consensus.record(assigned).await?;
    tracing::info!(job = %id, shard, %worker, %address, duplicate, bundled = rider, "shard assigned");
    Ok(Member { req, slot })
}

/// The in-memory side of a start (which copies run where); the durable
/// side is the `ShardAssigned` command.
pub fn record_start(sched: &Arc<Scheduler>, id: &str, shard: u32, duplicate: bool, run: &ShardRun) {
    sched.sys.jobs.lock().update(id, |job| {
        let s = &mut job.shards[shard as usize];
        crate::metrics::shard_started(!duplicate && s.attempts > 0);
        if !duplicate {
            s.frames_done = 0;
        }
        s.running_on = run.copies.iter().map(|c| c.worker_id.clone()).collect();
    });
}

pub fn record_running_on(sched: &Arc<Scheduler>, id: &str, shard: u32, run: &ShardRun) {
    sched.sys.jobs.lock().update(id, |job| {
        let s = &mut job.shards[shard as usize];
        s.running_on = run.copies.iter().map(|c| c.worker_id.clone()).collect();
        if run.copies.is_empty() {
            s.state = ShardState::Queued;
        }
    });
}

/// Records a verified result: the worker that made it keeps a copy and
/// this node has one, so a new master can fetch it from either.
pub async fn record_done(
    sched: &Arc<Scheduler>,
    id: &str,
    shard: u32,
    worker: &str,
    outcome: CopyOutcome,
) -> Result<(), JobStop> {
    let address = crate::cluster::blobs::address_of(&sched.sys, worker).unwrap_or_default();
    let mut holders = vec![worker.to_string()];
    if worker != sched.sys.node_id {
        holders.push(sched.sys.node_id.clone());
    } else {
        // Encoded here: a copy elsewhere survives this node.
        let purpose = format!("encoded shard {shard} of job {id}");
        let (backups, _) =
            crate::cluster::blobs::replicate(&sched.sys, &outcome.blob, 1, &purpose).await;
        holders.extend(backups);
    }
    let command = Command::ShardDone {
        job: id.to_string(),
        shard,
        encoded: outcome.blob,
        worker_id: worker.to_string(),
        worker: address,
        holders,
        encode_seconds: outcome.encode_seconds,
        transfer_seconds: outcome.transfer_seconds,
        at_ms: now_unix_ms(),
        quality: outcome.quality.map(Box::new),
    };
    sched.sys.consensus.record(command).await?;
    sched.sys.jobs.lock().update(id, |job| {
        job.shards[shard as usize].running_on.clear();
        let done = job.frames_done();
        job.eta.record(Instant::now(), done);
    });
    Ok(())
}

pub async fn record_failure(
    sched: &Arc<Scheduler>,
    id: &str,
    shard: u32,
    worker: &str,
    run: &ShardRun,
) -> Result<(), JobStop> {
    if run.copies.is_empty() {
        let command = Command::ShardFailed {
            job: id.to_string(),
            shard,
            worker_id: worker.to_string(),
            message: run.last_error.clone(),
            at_ms: now_unix_ms(),
        };
        sched.sys.consensus.record(command).await?;
    }
    sched.sys.jobs.lock().update(id, |job| {
        let s = &mut job.shards[shard as usize];
        s.message = run.last_error.clone();
        s.running_on = run.copies.iter().map(|c| c.worker_id.clone()).collect();
    });
    Ok(())
}
