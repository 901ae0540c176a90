//! What every part of a running node shares: configuration, identity,
//! blob store, job table, encode slots and the shutdown signal.

use std::path::Path;
use std::sync::Arc;

use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use vidshard_proto::v1::ScoreReport;

use crate::cluster::SharedMembership;
use crate::cluster::peers::Peers;
use crate::cluster::raft::consensus::Consensus;
use crate::config::Config;
use crate::jobs::SharedJobs;
use crate::legacy::backups::LegacyBackups;
use crate::media::Tools;
use crate::scheduler::TaskBoard;
use crate::stats::Stats;
use crate::store::BlobStore;
use crate::worker::{LegacyShards, WorkerTasks};

pub struct NodeContext {
    pub config: Config,
    pub node_id: String,
    /// HOST:PORT other nodes and clients reach this node at.
    pub address: String,
    pub store: BlobStore,
    pub tools: Tools,
    pub jobs: SharedJobs,
    pub slots: Arc<Semaphore>,
    pub slots_total: u32,
    pub stats: Stats,
    pub shutdown: CancellationToken,
    pub tasks: TaskTracker,
    /// Master side: the nodes that joined and whether they are alive.
    pub membership: SharedMembership,
    /// Master side: shard copies running anywhere, with progress.
    pub board: TaskBoard,
    /// Worker side: tasks this node runs for a master.
    pub worker_tasks: WorkerTasks,
    /// Worker side: shards from original-protocol masters.
    pub legacy_shards: LegacyShards,
    /// Backups kept for original-protocol masters (`NodeService`).
    pub legacy_backups: Arc<LegacyBackups>,
    pub peers: Peers,
    /// Uploads being received now (bounded by `--max-uploads`).
    pub uploads: Arc<Semaphore>,
    /// Recent events for consoles.
    pub events: crate::events::EventLog,
    /// Raft: who leads (the master), the term, and the replicated jobs.
    pub consensus: Consensus,
    /// Wakes the leader's backup loop (a job completed, a loss reported).
    pub backups_wake: Arc<tokio::sync::Notify>,
    /// Leader side: (node, blob) losses reported by scrubs, not yet recorded.
    pub reported_losses: std::sync::Mutex<std::collections::BTreeSet<(String, String)>>,
    /// This node's own losses, sent with its heartbeats until accepted.
    pub my_losses: std::sync::Mutex<std::collections::BTreeSet<String>>,
    /// Worker side: the highest master term seen (stale masters refused).
    pub fence: crate::worker::fence::Fence,
    /// Cancelled when this node stops leading: the jobs it drives stop.
    pub leadership: crate::pipeline::Leadership,
    /// Worker side: a stopping node takes no new shard and finishes (or
    /// hands back) the ones it runs.
    pub drain: crate::worker::drain::Drain,
}

impl NodeContext {
    /// The master is the Raft leader.
    pub fn is_master(&self) -> bool {
        self.consensus.is_leader()
    }

    /// The master's address as far as this node knows it: the Raft
    /// leader's (none while an election runs); for a node outside Raft,
    /// the configured master (an original-protocol node).
    pub fn master_address(&self) -> Option<String> {
        match self.consensus.known_leader() {
            Some((_, info)) => Some(info.address),
            None if !self.consensus.is_member() => self.config.master_address(),
            None => None,
        }
    }

    /// The current Raft term.
    pub fn term(&self) -> u64 {
        self.consensus.term()
    }

    /// Waits for one of this node's encode slots.
    pub async fn encode_slot(&self) -> Result<tokio::sync::OwnedSemaphorePermit, String> {
        self.slots
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| "node is shutting down".to_string())
    }

    /// Live members besides this node, as this node's membership sees them.
    pub fn other_live_nodes(&self) -> usize {
        self.membership
            .lock()
            .members()
            .filter(|m| m.alive && m.node_id != self.node_id)
            .count()
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

/// The node's stable identity: a random id kept in `<data>/node-id`, so a
/// node keeps it across restarts and address changes.
pub async fn load_node_id(data_dir: &Path) -> std::io::Result<String> {
    let path = data_dir.join("node-id");
    if let Ok(existing) = tokio::fs::read_to_string(&path).await {
        let id = existing.trim();
        if !id.is_empty()
            && id.len() <= 64
            && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        {
            return Ok(id.to_string());
        }
    }
    let id = format!("node-{}", &uuid::Uuid::new_v4().simple().to_string()[..10]);
    let temp = data_dir.join("node-id.tmp");
    tokio::fs::write(&temp, format!("{id}\n")).await?;
    tokio::fs::File::open(&temp).await?.sync_all().await?;
    tokio::fs::rename(&temp, &path).await?;
    Ok(id)
}

pub type Ctx = Arc<NodeContext>;
