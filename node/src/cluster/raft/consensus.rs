//! The node's handle on Raft: starting it over redb, asking who leads and
//! in which term, proposing job commands, and membership changes (join,
//! address update, voter promotion, removal). The leader is the master.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use openraft::{ChangeMembers, Config, ServerState, SnapshotPolicy};

use super::log_store::{LogStore, open_database};
use super::network::NetworkFactory;
use super::state_machine::StateMachine;
use super::types::{NodeId, NodeInfo, Raft, raft_id};
use super::voters;
use crate::cluster::peers::Peers;
use crate::jobs::{Command, CommandReply, JobStatus, JobStop, SharedJobs, now_unix_ms};

/// Heartbeats every 250 ms; a follower that hears nothing for 1–2 s
/// campaigns. Generous for a box whose cores are busy with ffmpeg.
const HEARTBEAT_MS: u64 = 250;
const ELECTION_MIN_MS: u64 = 1000;
const ELECTION_MAX_MS: u64 = 2000;
/// How long a follower trusts a leader it no longer hears (openraft's
/// leader lease is the election timeout maximum).
pub const LEADER_LEASE: Duration = Duration::from_millis(ELECTION_MAX_MS);

/// A write not confirmed by a quorum within this time fails: a leader cut
/// off from the others must not hang its clients.
const WRITE_TIMEOUT: Duration = Duration::from_secs(8);

/// How far above this node's term a peer's term may be. A real leader
/// gets ahead only by the elections this node missed (about one per
/// election timeout while cut off: 2^32 is centuries), so this refuses
/// nothing real; with [`MAX_TERM`] it keeps a forged term from walking
/// the term to where openraft's `term + 1` overflows and panics.
pub const MAX_TERM_STEP: u64 = 1 << 32;
/// No term beyond this is ever taken (a real cluster never gets there).
pub const MAX_TERM: u64 = 1 << 62;

/// A term from a peer that no real cluster reaches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error(
    "term {term} is refused: more than {MAX_TERM_STEP} above this node's term {own}, or beyond {MAX_TERM} (no real leader gets there)"
)]
pub struct TermOutOfReach {
    pub term: u64,
    pub own: u64,
}

/// Whether a peer's `term` is one a real cluster can reach from `own`
/// (pure).
pub fn check_term(term: u64, own: u64) -> Result<(), TermOutOfReach> {
    if term > MAX_TERM || term > own.saturating_add(MAX_TERM_STEP) {
        Err(TermOutOfReach { term, own })
    } else {
        Ok(())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConsensusError {
    #[error("opening the Raft store: {0}")]
    Store(String),
    #[error("starting Raft: {0}")]
    Start(String),
    #[error("this node is not the leader (leader: {leader})")]
    NotLeader { leader: String },
    #[error("Raft write failed: {0}")]
    Write(String),
    #[error("membership change failed: {0}")]
    Membership(String),
}

/// One member as the Raft membership lists it.
#[derive(Debug, Clone, PartialEq)]
pub struct RaftMember {
    pub id: NodeId,
    pub info: NodeInfo,
    pub voter: bool,
}

#[derive(Clone)]
pub struct Consensus {
    pub raft: Raft,
    pub id: NodeId,
    pub name: String,
    max_voters: usize,
    /// openraft takes one membership change at a time: joins arriving
    /// together wait here instead of failing.
    changes: Arc<tokio::sync::Mutex<()>>,
    /// When a leader last sent this node AppendEntries.
    leader_contact: Arc<std::sync::Mutex<Option<std::time::Instant>>>,
    /// When this node last campaigned because the leader asked it to (a
    /// forced election; see `transfer`).
    forced_campaign: Arc<std::sync::Mutex<Option<std::time::Instant>>>,
    /// Held for writing while leadership is handed over: job commands
    /// wait, so the leader's log stops growing and the target can catch
    /// up before it campaigns (a log one entry ahead loses it the vote).
    handing_over: Arc<tokio::sync::RwLock<()>>,
}

impl Consensus {
    /// Opens `<data_dir>/raft.redb` and starts Raft; the state machine
    /// applies into `jobs`, the table every service reads.
    pub async fn start(
        data_dir: &Path,
        name: &str,
        jobs: SharedJobs,
        peers: Peers,
        max_voters: usize,
    ) -> Result<Self, ConsensusError> {
        let path = data_dir.join("raft.redb");
        let (db, headroom) = tokio::task::spawn_blocking(move || open_database(&path))
            .await
            .map_err(|e| ConsensusError::Store(e.to_string()))?
            .map_err(|e| ConsensusError::Store(e.to_string()))?;
        let log = LogStore::new(db.clone(), headroom.clone());
        let state = StateMachine::open(db, headroom, jobs.clone())
            .await
            .map_err(|e| ConsensusError::Store(e.to_string()))?;
        let config = Config {
            cluster_name: "vidshard".into(),
            heartbeat_interval: HEARTBEAT_MS,
            election_timeout_min: ELECTION_MIN_MS,
            election_timeout_max: ELECTION_MAX_MS,
            install_snapshot_timeout: 5_000,
            // Snapshots are triggered by `compaction`, in step with the table.
            snapshot_policy: SnapshotPolicy::Never,
            snapshot_max_chunk_size: 1024 * 1024,
            max_in_snapshot_log_to_keep: 200,
            ..Default::default()
        }
        .validate()
        .map_err(|e| ConsensusError::Start(e.to_string()))?;
        let id = raft_id(name);
        let raft = Raft::new(id, Arc::new(config), NetworkFactory { peers }, log, state)
            .await
            .map_err(|e| ConsensusError::Start(e.to_string()))?;
        // Ends with the Raft instance (its metrics channel closes).
        tokio::spawn(super::compaction::run(raft.clone(), jobs));
        Ok(Self {
            raft,
            id,
            name: name.to_string(),
            max_voters,
            changes: Arc::default(),
            leader_contact: Arc::default(),
            forced_campaign: Arc::default(),
            handing_over: Arc::default(),
        })
    }

    /// Makes this node a one-voter cluster unless it already belongs to
    /// one (a restarted node keeps its log and never re-initialises).
    pub async fn bootstrap(&self, address: &str) -> Result<bool, ConsensusError> {
        if self
            .raft
            .is_initialized()
            .await
            .map_err(|e| ConsensusError::Start(e.to_string()))?
        {
            return Ok(false);
        }
        let members = BTreeMap::from([(self.id, self.info(address))]);
        self.raft
            .initialize(members)
            .await
            .map_err(|e| ConsensusError::Start(e.to_string()))?;
        Ok(true)
    }

    pub fn info(&self, address: &str) -> NodeInfo {
        NodeInfo {
            address: address.to_string(),
            name: self.name.clone(),
        }
    }

    pub fn term(&self) -> u64 {
        self.raft.metrics().borrow().current_term
    }

    /// This node campaigns because the leader asked it to.
    pub fn campaigning_on_request(&self) {
        *self
            .forced_campaign
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = Some(std::time::Instant::now());
    }

    /// How long ago this node, now leading, won a forced election
    /// (`None`: it leads by an ordinary election, or does not lead).
    pub fn since_forced_election(&self) -> Option<Duration> {
        if !self.is_leader() {
            return None;
        }
        let campaigned = *self
            .forced_campaign
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        campaigned.map(|at| at.elapsed())
    }

    /// Refuses a peer's term no real cluster reaches, before Raft sees
    /// (and saves) it.
    pub fn admit_term(&self, term: u64) -> Result<(), TermOutOfReach> {
        check_term(term, self.term())
    }

    pub fn is_leader(&self) -> bool {
        let metrics = self.raft.metrics();
        let m = metrics.borrow();
        m.state == ServerState::Leader && m.current_leader == Some(self.id)
    }

    /// True while no leader is known (a campaign is running or nobody can
    /// reach a quorum).
    pub fn election_in_progress(&self) -> bool {
        let candidate = self.raft.metrics().borrow().state == ServerState::Candidate;
        candidate || (self.is_member() && self.known_leader().is_none())
    }

    /// The current leader and how to reach it, as this node knows it.
    pub fn leader(&self) -> Option<(NodeId, NodeInfo)> {
        let metrics = self.raft.metrics();
        let m = metrics.borrow();
        let id = m.current_leader?;
        let info = m.membership_config.membership().get_node(&id)?.clone();
        Some((id, info))
    }

    /// Records that a leader just reached this node.
    pub fn heard_from_leader(&self) {
        let mut contact = self
            .leader_contact
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        *contact = Some(std::time::Instant::now());
    }

    /// The leader as far as anyone can tell now: this node when it leads;
    /// otherwise the leader Raft last followed, if it was heard from within
    /// its lease. While an election runs (the old leader silent), none:
    /// what `GetCurrentMaster` reports, so clients are not sent to a dead
    /// node.
    pub fn known_leader(&self) -> Option<(NodeId, NodeInfo)> {
        if self.is_leader() {
            return self.leader();
        }
        let fresh = self
            .leader_contact
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .is_some_and(|at| at.elapsed() <= LEADER_LEASE + Duration::from_millis(500));
        if fresh { self.leader() } else { None }
    }

    /// Waits up to `timeout` for a leader to be known.
    pub async fn wait_for_leader(&self, timeout: Duration) -> Option<(NodeId, NodeInfo)> {
        let mut metrics = self.raft.metrics();
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if let Some(leader) = self.leader() {
                return Some(leader);
            }
            if tokio::time::timeout_at(deadline, metrics.changed())
                .await
                .is_err()
            {
                return None;
            }
        }
    }

    /// Waits up to `timeout` for a leader other than `not`.
    pub async fn wait_for_leader_other_than(
        &self,
        not: NodeId,
        timeout: Duration,
    ) -> Option<(NodeId, NodeInfo)> {
        let mut metrics = self.raft.metrics();
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if let Some(leader) = self.leader().filter(|(id, _)| *id != not) {
                return Some(leader);
            }
            if tokio::time::timeout_at(deadline, metrics.changed())
                .await
                .is_err()
            {
                return None;
            }
        }
    }

    /// Every member with its address and whether it votes.
    pub fn members(&self) -> Vec<RaftMember> {
        let metrics = self.raft.metrics();
        let m = metrics.borrow();
        let membership = m.membership_config.membership();
        let voters: Vec<NodeId> = membership.voter_ids().collect();
        membership
            .nodes()
            .map(|(id, info)| RaftMember {
                id: *id,
                info: info.clone(),
                voter: voters.contains(id),
            })
            .collect()
    }

    /// Leader only: how many log entries each follower (by name) lacks.
    pub fn replication_lag(&self) -> Vec<(String, u64)> {
        let metrics = self.raft.metrics();
        let m = metrics.borrow();
        let (Some(replication), Some(last)) = (&m.replication, m.last_log_index) else {
            return Vec::new();
        };
        let names: BTreeMap<NodeId, String> = m
            .membership_config
            .membership()
            .nodes()
            .map(|(id, info)| (*id, info.name.clone()))
            .collect();
        replication
            .iter()
            .filter(|(id, _)| **id != self.id)
            .map(|(id, matched)| {
                let name = names.get(id).cloned().unwrap_or_else(|| id.to_string());
                (name, last.saturating_sub(matched.map_or(0, |l| l.index)))
            })
            .collect()
    }

    /// Leader only: the followers (by name) that answered replication in
    /// this term and are within [`voters::PROMOTE_LAG`] entries of the
    /// log's end. A dead voter never is.
    pub fn caught_up(&self) -> Vec<String> {
        let metrics = self.raft.metrics();
        let m = metrics.borrow();
        let (Some(replication), Some(last)) = (&m.replication, m.last_log_index) else {
            return Vec::new();
        };
        let matched: BTreeMap<NodeId, Option<u64>> = replication
            .iter()
            .map(|(id, log)| (*id, log.map(|l| l.index)))
            .collect();
        let followers: Vec<NodeId> = matched
            .keys()
            .copied()
            .filter(|id| *id != self.id)
            .collect();
        let able = voters::caught_up(&followers, &matched, last);
        m.membership_config
            .membership()
            .nodes()
            .filter(|(id, _)| able.contains(id))
            .map(|(_, info)| info.name.clone())
            .collect()
    }

    /// Stops job commands until the guard is dropped (see
    /// `handing_over`); waits at most `limit` for those under way.
    pub async fn pause_writes(
        &self,
        limit: Duration,
    ) -> Option<tokio::sync::OwnedRwLockWriteGuard<()>> {
        tokio::time::timeout(limit, self.handing_over.clone().write_owned())
            .await
            .ok()
    }

    /// Leader only: waits at most `limit` until `follower` holds every
    /// entry of this node's log; answers whether it does.
    pub async fn wait_replicated(&self, follower: NodeId, limit: Duration) -> bool {
        let mut metrics = self.raft.metrics();
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            let done = {
                let m = metrics.borrow();
                let matched = m
                    .replication
                    .as_ref()
                    .and_then(|r| r.get(&follower).copied().flatten())
                    .map(|l| l.index);
                matched.is_some() && matched == m.last_log_index
            };
            if done {
                return true;
            }
            if tokio::time::timeout_at(deadline, metrics.changed())
                .await
                .map_or(true, |changed| changed.is_err())
            {
                return false;
            }
        }
    }

    pub fn is_member(&self) -> bool {
        self.members().iter().any(|m| m.id == self.id)
    }

    /// Proposes a job command; only the leader can, and it returns once
    /// a quorum has it and it is applied here.
    pub async fn write(&self, command: Command) -> Result<CommandReply, ConsensusError> {
        let written = tokio::time::timeout(WRITE_TIMEOUT, async {
            let _open = self.handing_over.read().await;
            self.raft.client_write(command).await
        })
        .await;
        let Ok(written) = written else {
            return Err(ConsensusError::Write(format!(
                "no quorum confirmed the write within {WRITE_TIMEOUT:?} (this node may be cut off from the others)"
            )));
        };
        match written {
            Ok(reply) => Ok(reply.data),
            Err(e) => match e.forward_to_leader() {
                Some(forward) => Err(ConsensusError::NotLeader {
                    leader: forward
                        .leader_node
                        .as_ref()
                        .map_or_else(|| "unknown".into(), |n| n.address.clone()),
                }),
                None => Err(ConsensusError::Write(e.to_string())),
            },
        }
    }

    /// Records a step of a job the leader drives. A refusal pauses the
    /// job here ([`JobStop::Paused`]): this node no longer leads or found
    /// no quorum, and the next leader (or a retry) resumes the job.
    pub async fn record(&self, command: Command) -> Result<(), JobStop> {
        match self.write(command).await {
            Ok(CommandReply::Ignored { reason }) if reason == "unknown job" => {
                Err(JobStop::paused("the job was deleted"))
            }
            Ok(_) => Ok(()),
            Err(e) => Err(JobStop::paused(format!("cannot record progress: {e}"))),
        }
    }

    /// Records a status change of job `id`.
    pub async fn record_status(
        &self,
        id: &str,
        status: JobStatus,
        message: impl Into<String>,
    ) -> Result<(), JobStop> {
        self.record(Command::Status {
            job: id.to_string(),
            status,
            message: message.into(),
            at_ms: now_unix_ms(),
        })
        .await
    }

    /// Leader side of a join: adds the node as a learner (or updates its
    /// address), then promotes learners so voters stay odd. Returns
    /// whether the node votes.
    pub async fn admit(&self, info: NodeInfo) -> Result<bool, ConsensusError> {
        let id = raft_id(&info.name);
        let fail = |e: String| ConsensusError::Membership(e);
        let _one_at_a_time = self.changes.lock().await;
        match self.members().into_iter().find(|m| m.id == id) {
            None => {
                self.raft
                    .add_learner(id, info, true)
                    .await
                    .map_err(|e| fail(e.to_string()))?;
            }
            Some(known) if known.info != info => {
                let nodes = BTreeMap::from([(id, info)]);
                self.raft
                    .change_membership(ChangeMembers::SetNodes(nodes), true)
                    .await
                    .map_err(|e| fail(e.to_string()))?;
            }
            Some(_) => {}
        }
        self.promote_unlocked().await?;
        Ok(self.members().iter().any(|m| m.id == id && m.voter))
    }

    /// Promotes learners to keep an odd number of voters (see `voters`).
    pub async fn promote_learners(&self) -> Result<(), ConsensusError> {
        let _one_at_a_time = self.changes.lock().await;
        self.promote_unlocked().await
    }

    /// While leading, promotes learners once they have caught up (a new
    /// node usually has by the time its join is answered; one that had
    /// not is promoted here a moment later), until `shutdown`.
    pub async fn run_promotions(self, shutdown: tokio_util::sync::CancellationToken) {
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep(Duration::from_secs(1)) => {}
            }
            if self.is_leader()
                && let Err(e) = self.promote_learners().await
            {
                tracing::warn!(error = %e, "could not promote a learner");
            }
        }
    }

    async fn promote_unlocked(&self) -> Result<(), ConsensusError> {
        let members = self.members();
        let voter_ids = members.iter().filter(|m| m.voter).map(|m| m.id).collect();
        let learners: Vec<NodeId> = members.iter().filter(|m| !m.voter).map(|m| m.id).collect();
        let learners = {
            let metrics = self.raft.metrics();
            let m = metrics.borrow();
            let matched: BTreeMap<NodeId, Option<u64>> = m
                .replication
                .iter()
                .flatten()
                .map(|(id, log)| (*id, log.map(|l| l.index)))
                .collect();
            voters::caught_up(&learners, &matched, m.last_log_index.unwrap_or(0))
        };
        let promote = voters::promotions(&voter_ids, &learners, self.max_voters);
        if promote.is_empty() {
            return Ok(());
        }
        tracing::info!(?promote, "promoting learners to voters");
        self.raft
            .change_membership(ChangeMembers::AddVoterIds(promote), true)
            .await
            .map_err(|e| ConsensusError::Membership(e.to_string()))?;
        Ok(())
    }

    /// Removes the node named `name` from the group (voter or learner).
    pub async fn remove(&self, name: &str) -> Result<(), ConsensusError> {
        let id = raft_id(name);
        let fail = |e: String| ConsensusError::Membership(e);
        let _one_at_a_time = self.changes.lock().await;
        let member = self
            .members()
            .into_iter()
            .find(|m| m.id == id)
            .ok_or_else(|| fail(format!("{name} is not a member")))?;
        if member.voter {
            let ids = [id].into_iter().collect();
            self.raft
                .change_membership(ChangeMembers::RemoveVoters(ids), false)
                .await
                .map_err(|e| fail(e.to_string()))?;
        } else {
            let ids = [id].into_iter().collect();
            self.raft
                .change_membership(ChangeMembers::RemoveNodes(ids), false)
                .await
                .map_err(|e| fail(e.to_string()))?;
        }
        self.promote_unlocked().await
    }

    pub fn max_voters(&self) -> usize {
        self.max_voters
    }
}
