//! The worker subsystem's handle: this node's encode slots, the shards it
//! runs for a master (with their progress for heartbeats), the drain of a
//! stopping node (stale masters are fenced by `fence` against the Raft
//! term). The scheduler runs
//! local copies through it, `service` passes it `RunShard` calls.

use std::sync::Arc;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use vidshard_proto::v1::ScoreReport;

use super::drain::Drain;
use super::tasks::WorkerTasks;
use crate::cluster::Sys;
use crate::media::Abilities;

/// The node is stopping: no slot will be given any more.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("node is shutting down")]
pub struct Stopping;

pub struct Worker {
    pub sys: Sys,
    slots: Arc<Semaphore>,
    pub slots_total: u32,
    /// Tasks this node runs for a master, with their progress.
    pub tasks: WorkerTasks,
    /// A stopping node takes no new shard and finishes (or hands back)
    /// the ones it runs.
    pub drain: Arc<Drain>,
    /// What this node's ffmpeg can encode (listed in heartbeats).
    pub abilities: Abilities,
}

impl Worker {
    pub fn new(sys: Sys, slots_total: u32, abilities: Abilities) -> Self {
        Self {
            sys,
            slots: Arc::new(Semaphore::new(slots_total as usize)),
            slots_total,
            abilities,
            tasks: WorkerTasks::default(),
            drain: Arc::default(),
        }
    }

    /// Waits for one of this node's encode slots.
    pub async fn encode_slot(&self) -> Result<OwnedSemaphorePermit, Stopping> {
        self.slots
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| Stopping)
    }

    /// No slot is given any more (the node stops).
    pub fn close_slots(&self) {
        self.slots.close();
    }

    /// Slots in use; all of them while draining, so no master sends more.
    pub fn slots_busy(&self) -> u32 {
        if self.drain.is_draining() {
            return self.slots_total;
        }
        self.slots_total
            .saturating_sub(self.slots.available_permits() as u32)
    }

    /// This node's resource score and its parts, from the last sample.
    pub fn score_report(&self) -> ScoreReport {
        let parts = self
            .sys
            .stats
            .latest()
            .score_parts(self.slots_busy(), self.slots_total);
        ScoreReport {
            score: crate::score::node_score(&parts),
            load_per_core: parts.load_per_core,
            iowait_percent: parts.iowait_percent,
            net_mb_per_s: parts.net_mb_per_s,
            disk_mb_per_s: parts.disk_mb_per_s,
            memory_percent: parts.memory_percent,
        }
    }
}
