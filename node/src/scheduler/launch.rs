//! Starting what `decide` placed: one copy of one task, or a bundle (a
//! task and the rungs of its piece riding with it, `Decision::Ride`) run
//! on this node from one decode. Either is one task of the driver's set,
//! whose result lists one outcome per task it ran, so the driver handles
//! a bundle's rungs exactly as it would separate copies.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::Scheduler;
use super::board::{TaskEntry, TaskGuard};
use super::dispatch::{run_local, run_local_bundle, run_remote};
use crate::cluster::Protocol;
use crate::jobs::{ShardState, SharedJobs};
use crate::legacy::original_worker::run_original;
use crate::media::Progress;
use crate::worker::copy::{CopyError, CopyOutcome, CopyRequest};

/// A copy's identity and result, with its place on the task board: the
/// worker's slot stays taken until the driver has handled the result, so
/// no decision in between sees a worker free whose result (perhaps a
/// rejected one) is still unread.
pub(super) type CopyResult = (
    u32,
    String,
    String,
    Duration,
    Result<CopyOutcome, CopyError>,
    TaskGuard,
);

/// One task of a launch: what is asked and its place on the board.
pub(super) struct Member {
    pub req: CopyRequest,
    pub slot: TaskGuard,
}

/// What is started on one worker at once.
pub(super) struct Launch {
    pub worker: String,
    pub address: (String, Protocol),
    pub members: Vec<Member>,
}

impl Launch {
    /// Whether a rung may ride in this launch: only this node runs
    /// bundles (a remote worker's `RunShard` takes one task).
    pub(super) fn takes_riders(&self, local_node: &str) -> bool {
        self.worker == local_node && self.address.1 == Protocol::Vidshard
    }

    /// Runs the launch: a lone task as a copy, several as one bundle.
    pub(super) async fn run(mut self, sched: Arc<Scheduler>) -> Vec<CopyResult> {
        if self.members.len() > 1 && self.takes_riders(&sched.sys.node_id) {
            return run_bundle(sched, self.worker, self.members).await;
        }
        let mut results = Vec::with_capacity(self.members.len());
        for member in self.members.drain(..) {
            let (worker, address) = (self.worker.clone(), self.address.clone());
            results.push(run_copy(sched.clone(), worker, address, member.req, member.slot).await);
        }
        results
    }
}

/// Records a copy's progress in the job table (the shard shows its most
/// advanced copy). Called for local encodes and for heartbeat reports.
pub fn apply_progress(jobs: &SharedJobs, entry: &TaskEntry) {
    jobs.lock().update(&entry.job_id, |job| {
        let Some(shard) = job.shards.get_mut(entry.shard as usize) else {
            return;
        };
        if shard.state == ShardState::Done {
            return;
        }
        shard.frames_done = shard
            .frames_done
            .max(entry.progress.frames.min(shard.frames));
        shard.fps = entry.progress.fps;
        if shard.frames_done >= shard.frames {
            shard.state = ShardState::Verifying;
        }
        let done = job.frames_done();
        job.eta.record(Instant::now(), done);
    });
}

/// Runs one copy where `decide` put it; returns its identity with the result.
async fn run_copy(
    sched: Arc<Scheduler>,
    worker_id: String,
    (address, protocol): (String, Protocol),
    req: CopyRequest,
    slot: TaskGuard,
) -> CopyResult {
    let started = Instant::now();
    let result = if protocol == Protocol::Original {
        let board = &sched.board;
        let failed = || board.report_of(&req.task_id).as_deref() == Some("failed_processing");
        run_original(&sched.sys, &address, &req, failed).await
    } else if worker_id == sched.sys.node_id {
        let (progress_ctx, task_id) = (sched.clone(), req.task_id.clone());
        let on_progress = move |p: Progress| {
            if let Some(entry) = progress_ctx.board.report(&task_id, p) {
                apply_progress(&progress_ctx.sys.jobs, &entry);
            }
        };
        run_local(&sched.worker, &req, on_progress).await
    } else {
        run_remote(&sched.sys, &address, &req).await
    };
    (
        req.shard_index,
        worker_id,
        req.task_id,
        started.elapsed(),
        result,
        slot,
    )
}

/// Runs a bundle on this node: every member's progress is the shared
/// decode's.
async fn run_bundle(
    sched: Arc<Scheduler>,
    worker_id: String,
    members: Vec<Member>,
) -> Vec<CopyResult> {
    let started = Instant::now();
    let (reqs, slots): (Vec<CopyRequest>, Vec<TaskGuard>) =
        members.into_iter().map(|m| (m.req, m.slot)).unzip();
    let task_ids: Vec<String> = reqs.iter().map(|r| r.task_id.clone()).collect();
    let progress_ctx = sched.clone();
    let on_progress = move |p: Progress| {
        for task_id in &task_ids {
            if let Some(entry) = progress_ctx.board.report(task_id, p) {
                apply_progress(&progress_ctx.sys.jobs, &entry);
            }
        }
    };
    let results: Vec<Result<CopyOutcome, CopyError>> =
        run_local_bundle(&sched.worker, &reqs, on_progress).await;
    let took: Duration = started.elapsed();
    reqs.into_iter()
        .zip(results)
        .zip(slots)
        .map(|((req, result), slot)| {
            (
                req.shard_index,
                worker_id.clone(),
                req.task_id,
                took,
                result,
                slot,
            )
        })
        .collect()
}
