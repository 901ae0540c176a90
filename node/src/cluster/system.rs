//! The node's shared infrastructure (garage's `System`): its identity and
//! configuration, the blob store, the ffmpeg tools, the replicated job
//! table, Raft, the membership the master keeps, the peer channels, the
//! event log for consoles, load samples, and the shutdown signal with the
//! task tracker. Every subsystem handle (worker, scheduler, backups,
//! master, legacy) holds an [`Sys`] and its own state beside it; nothing
//! here knows about them.

use std::path::Path;
use std::sync::Arc;

use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::SharedMembership;
use super::peers::Peers;
use super::raft::consensus::Consensus;
use super::raft::transfer;
use crate::config::Config;
use crate::events::EventLog;
use crate::jobs::SharedJobs;
use crate::media::Tools;
use crate::stats::Stats;
use crate::store::BlobStore;

/// The handle every subsystem holds.
pub type Sys = Arc<System>;

pub struct System {
    pub config: Config,
    pub node_id: String,
    /// HOST:PORT other nodes and clients reach this node at.
    pub address: String,
    pub store: BlobStore,
    pub tools: Tools,
    /// The replicated job table (applied by Raft on every node).
    pub jobs: SharedJobs,
    pub stats: Stats,
    pub shutdown: CancellationToken,
    pub tasks: TaskTracker,
    /// Master side: the nodes that joined and whether they are alive.
    pub membership: SharedMembership,
    pub peers: Peers,
    /// Recent events for consoles.
    pub events: EventLog,
    /// Raft: who leads (the master), the term, and the replicated jobs.
    pub consensus: Consensus,
    /// Set when this node works for a master that speaks only the
    /// original protocol (then it registers with `RegisterWorker`).
    pub original_master: super::original_master::OriginalMaster,
}

impl System {
    /// The voter this leader would hand leadership to: `wanted`, or the
    /// best-scored live voter whose log is caught up (see
    /// [`transfer::pick_target`]).
    pub fn handover_target(
        &self,
        wanted: Option<&str>,
    ) -> Result<super::raft::consensus::RaftMember, transfer::TransferError> {
        let score_of = |name: &str| {
            self.membership
                .lock()
                .get(name)
                .filter(|m| m.alive)
                .map(|m| m.load.score)
        };
        let caught_up = self.consensus.caught_up();
        let caught_up = |name: &str| caught_up.iter().any(|n| n == name);
        let members = self.consensus.members();
        transfer::pick_target(&members, self.consensus.id, wanted, score_of, caught_up)
    }

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

    /// Live members besides this node, as this node's membership sees them.
    pub fn other_live_nodes(&self) -> usize {
        self.membership
            .lock()
            .members()
            .filter(|m| m.alive && m.node_id != self.node_id)
            .count()
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
