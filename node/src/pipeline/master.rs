//! The master subsystem's handle: what a node does while it leads. It
//! takes uploads (`intake`), drives every job (`run_job`, started by the
//! leadership watcher), and hears the workers' heartbeats: their liveness
//! and load go to the membership, their shards' progress to the
//! scheduler's board, the blob losses they report to the backups.

use std::sync::Arc;
use std::time::Instant;

use tokio::sync::Semaphore;

use super::Leadership;
use crate::backups::Backups;
use crate::cluster::{Member, Sys};
use crate::media::Progress;
use crate::scheduler::Scheduler;

pub struct Master {
    pub sys: Sys,
    pub scheduler: Arc<Scheduler>,
    pub backups: Arc<Backups>,
    /// Cancelled when this node stops leading: the jobs it drives stop.
    pub leadership: Leadership,
    /// Uploads being received now (bounded by `--max-uploads`).
    pub uploads: Arc<Semaphore>,
    /// Jobs driven now, and those waiting their turn.
    pub admission: super::admission::Admission,
}

/// A worker's heartbeat, as plain data.
#[derive(Debug, Clone)]
pub struct WorkerReport {
    /// Liveness, address and load (`last_seen` is set on arrival).
    pub member: Member,
    /// Blobs the worker lost (at most the first 1024 are taken).
    pub lost_blobs: Vec<String>,
    /// Progress of the shard copies it runs, by task id.
    pub tasks: Vec<(String, Progress)>,
}

/// Why a heartbeat was not taken; the worker retries or follows the
/// master named in the reply.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HeartbeatRefusal {
    #[error("this node is not the master; the master is {0:?}")]
    NotMaster(String),
    #[error("{0} is not a member of the cluster (not joined yet, or removed)")]
    NotMember(String),
    /// The heartbeat names a member but another address than the one the
    /// member joined with (a node that moved joins again first).
    #[error(
        "{node} joined the cluster at {joined}, not at {claimed}: heartbeat refused (a node at a new address joins again first)"
    )]
    WrongAddress {
        node: String,
        joined: String,
        claimed: String,
    },
}

/// Why a job was not deleted.
#[derive(Debug, thiserror::Error)]
pub enum DeleteError {
    #[error(transparent)]
    BadId(#[from] crate::ids::BadId),
    #[error("no job {0:?}")]
    Unknown(String),
    #[error("the deletion could not be recorded: {0}")]
    NotRecorded(crate::cluster::raft::consensus::ConsensusError),
}

impl Master {
    /// Deletes job `id` everywhere: the command is replicated, and every
    /// node removes the job's blobs when it applies it.
    pub async fn delete(&self, id: &str) -> Result<(), DeleteError> {
        crate::ids::check_lookup(id)?;
        let command = crate::jobs::Command::Delete {
            job: id.to_string(),
            at_ms: crate::jobs::now_unix_ms(),
        };
        match self.sys.consensus.write(command).await {
            Ok(crate::jobs::CommandReply::Applied { .. }) => {
                tracing::info!(job = %id, "job deleted; every node removes its blobs");
                Ok(())
            }
            Ok(crate::jobs::CommandReply::Ignored { .. }) => {
                Err(DeleteError::Unknown(id.to_string()))
            }
            Err(e) => Err(DeleteError::NotRecorded(e)),
        }
    }

    pub fn new(scheduler: Arc<Scheduler>, backups: Arc<Backups>, max_uploads: usize) -> Self {
        Self {
            sys: scheduler.sys.clone(),
            scheduler,
            backups,
            leadership: Leadership::default(),
            uploads: Arc::new(Semaphore::new(max_uploads)),
            admission: Default::default(),
        }
    }

    /// A worker's heartbeat: only the master takes them, and only from
    /// members (a node joins through Raft first, and one removed with
    /// `vidshard nodes remove` gets nothing more).
    /// `claimed_address` is the address the heartbeat carries, which must
    /// be the one the member joined Raft with (`report.member.address` is
    /// where to reach it, which differs for a node listening on every
    /// interface).
    pub fn heard_from(
        &self,
        report: WorkerReport,
        claimed_address: &str,
    ) -> Result<(), HeartbeatRefusal> {
        let sys = &self.sys;
        if !sys.is_master() {
            return Err(HeartbeatRefusal::NotMaster(
                sys.master_address().unwrap_or_default(),
            ));
        }
        let node_id = report.member.node_id.clone();
        let members = sys.consensus.members();
        let Some(joined) = members.iter().find(|m| m.info.name == node_id) else {
            return Err(HeartbeatRefusal::NotMember(format!("{node_id:?}")));
        };
        if joined.info.address != claimed_address {
            return Err(HeartbeatRefusal::WrongAddress {
                node: node_id,
                joined: joined.info.address.clone(),
                claimed: claimed_address.to_string(),
            });
        }
        for sha256 in report.lost_blobs.iter().take(1024) {
            self.backups.loss_reported(&node_id, sha256);
        }
        sys.membership.heard_from(Member {
            last_seen: Instant::now(),
            alive: true,
            ..report.member
        });
        for (task_id, progress) in report.tasks {
            self.scheduler.progress_reported(&task_id, progress);
        }
        Ok(())
    }
}
