//! Scheduling shards on workers: `decide` is the pure policy, `driver`
//! the thin async loop that applies it to one job, `dispatch` runs one
//! copy of a shard on the local node or a remote worker (original
//! workers through `legacy::original_worker`); `trust` keeps the workers
//! a job stopped trusting; `fair` shares the slots between jobs and
//! `standing` tells where each job stands; `runs` records what copies
//! do. [`Scheduler`] is the
//! subsystem's handle: the task board of copies running anywhere, and the
//! local worker it runs copies on.

mod board;
mod decide;
pub mod dispatch;
pub mod driver;
pub mod fair;
mod launch;
mod runs;
mod standing;
mod trust;

use std::sync::Arc;

pub use board::{TaskBoard, TaskEntry, TaskGuard};
pub use decide::{CopyView, Decision, Policy, ShardView, WorkerView, decide};
pub use standing::{Standing, Standings};

use crate::cluster::Sys;
use crate::media::Progress;
use crate::worker::Worker;

pub struct Scheduler {
    pub sys: Sys,
    /// This node as a worker: the master encodes shards too.
    pub worker: Arc<Worker>,
    /// Master side: shard copies running anywhere, with progress.
    pub board: TaskBoard,
    /// Master side: each running job's claim on the slots (`fair`).
    pub claims: fair::Claims,
}

impl Scheduler {
    pub fn new(worker: Arc<Worker>) -> Self {
        Self {
            sys: worker.sys.clone(),
            worker,
            board: TaskBoard::default(),
            claims: fair::Claims::default(),
        }
    }

    /// A worker reported the progress of copy `task_id` (a heartbeat).
    pub fn progress_reported(&self, task_id: &str, progress: Progress) {
        if let Some(entry) = self.board.report(task_id, progress) {
            launch::apply_progress(&self.sys.jobs, &entry);
        }
    }
}
