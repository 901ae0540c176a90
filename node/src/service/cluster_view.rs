//! What the cluster service shows, built from the handles it holds: the
//! node rows (this node, every member, Raft members not heard from), the
//! voter counts, and the whole snapshot consoles watch, built at most
//! once per [`SHARED_FOR`] for every watcher ([`Watches`]).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use vidshard_proto::v1::*;

use crate::cluster::{Member, Sys};
use crate::pipeline::Master;
use crate::worker::Worker;

/// The handles the cluster service reads: the node's infrastructure,
/// this node as a worker (its own row), and the master side (heartbeats,
/// the board of running copies).
#[derive(Clone)]
pub struct Cluster {
    pub sys: Sys,
    pub worker: Arc<Worker>,
    pub master: Arc<Master>,
    /// Watch streams: one snapshot shared by all, a cap per client.
    pub watches: Arc<Watches>,
}

impl Cluster {
    pub fn new(worker: Arc<Worker>, master: Arc<Master>) -> Self {
        Self {
            sys: master.sys.clone(),
            worker,
            master,
            watches: Arc::default(),
        }
    }
}

/// This node and every member it knows, as `NodeEntry` rows.
pub fn node_entries(ctx: &Cluster) -> Vec<NodeEntry> {
    let report = ctx.worker.score_report();
    let me = NodeEntry {
        node_id: ctx.sys.node_id.clone(),
        address: ctx.sys.address.clone(),
        role: if ctx.sys.is_master() {
            "master"
        } else {
            "worker"
        }
        .into(),
        term: ctx.sys.term(),
        alive: true,
        score: report.score,
        slots_busy: ctx.worker.slots_busy(),
        slots_total: ctx.worker.slots_total,
        last_seen_ms: 0,
        current_shards: ctx.master.scheduler.board.shards_on(&ctx.sys.node_id),
        score_parts: Some(report),
        protocol: "vidshard".into(),
        raft_role: String::new(),
    };
    let now = Instant::now();
    let mut nodes = vec![me];
    nodes.extend(
        ctx.sys
            .membership
            .lock()
            .members()
            .filter(|m| m.node_id != ctx.sys.node_id)
            .map(|m| member_entry(ctx, m, now)),
    );
    // Raft members the master has not heard from (yet) are listed too.
    let raft = ctx.sys.consensus.members();
    for m in &raft {
        if nodes.iter().all(|n| n.node_id != m.info.name) {
            nodes.push(NodeEntry {
                node_id: m.info.name.clone(),
                address: m.info.address.clone(),
                role: "worker".into(),
                term: ctx.sys.term(),
                alive: false,
                protocol: "vidshard".into(),
                ..Default::default()
            });
        }
    }
    for node in &mut nodes {
        if let Some(m) = raft.iter().find(|m| m.info.name == node.node_id) {
            node.raft_role = if m.voter { "voter" } else { "learner" }.into();
        }
    }
    nodes
}

/// What the cluster survives, from its voter count.
pub fn fault_tolerance(ctx: &Cluster) -> String {
    let voters = ctx
        .sys
        .consensus
        .members()
        .iter()
        .filter(|m| m.voter)
        .count();
    crate::cluster::raft::voters::tolerance_note(voters)
}

/// Everything a console shows, as the master sees it now.
pub fn snapshot(ctx: &Cluster) -> ClusterSnapshot {
    let (voters_up, voters_total) = voter_counts(ctx);
    let (jobs, jobs_omitted) = {
        let table = ctx.sys.jobs.lock();
        let standings = ctx.master.scheduler.standings(&table);
        super::convert::jobs_within(&ctx.sys, &standings, &table.list())
    };
    ClusterSnapshot {
        node_address: ctx.sys.address.clone(),
        node_id: ctx.sys.node_id.clone(),
        master_address: ctx.sys.master_address().unwrap_or_default(),
        term: ctx.sys.term(),
        nodes: node_entries(ctx),
        jobs,
        events: ctx.sys.events.recent(),
        sent_unix_ms: crate::jobs::now_unix_ms(),
        voters_up,
        voters_total,
        has_quorum: voters_up * 2 > voters_total,
        election_in_progress: ctx.sys.consensus.election_in_progress(),
        jobs_omitted,
    }
}

/// Voters in the Raft membership, and how many of them are alive as the
/// master sees it (itself, and voters whose heartbeats arrive).
fn voter_counts(ctx: &Cluster) -> (u32, u32) {
    let members = ctx.sys.consensus.members();
    let table = ctx.sys.membership.lock();
    let voters: Vec<_> = members.iter().filter(|m| m.voter).collect();
    let up = voters
        .iter()
        .filter(|m| {
            m.info.name == ctx.sys.node_id || table.get(&m.info.name).is_some_and(|t| t.alive)
        })
        .count();
    (up as u32, voters.len() as u32)
}

/// One row of `ListNodes` from a member of the table.
fn member_entry(ctx: &Cluster, m: &Member, now: Instant) -> NodeEntry {
    NodeEntry {
        node_id: m.node_id.clone(),
        address: m.address.clone(),
        role: "worker".into(),
        term: ctx.sys.term(),
        alive: m.alive,
        score: m.load.score,
        slots_busy: m
            .slots_busy
            .max(ctx.master.scheduler.board.assigned(&m.node_id)),
        slots_total: m.slots_total,
        last_seen_ms: now.saturating_duration_since(m.last_seen).as_millis() as u64,
        current_shards: ctx.master.scheduler.board.shards_on(&m.node_id),
        score_parts: Some(ScoreReport {
            score: m.load.score,
            load_per_core: m.load.load_per_core,
            iowait_percent: m.load.iowait_percent,
            net_mb_per_s: m.load.net_mb_per_s,
            disk_mb_per_s: m.load.disk_mb_per_s,
            memory_percent: m.load.memory_percent,
        }),
        protocol: m.protocol.as_str().into(),
        raft_role: String::new(),
    }
}

/// How long one built snapshot serves every watcher.
pub const SHARED_FOR: Duration = Duration::from_millis(100);
/// Watch streams one client address may hold at once.
pub const MAX_WATCHES_PER_CLIENT: usize = 16;

/// A client with too many watch streams open.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("this client already holds {MAX_WATCHES_PER_CLIENT} watch streams; close one first")]
pub struct TooManyWatches;

/// The shared snapshot and the open streams per client.
#[derive(Default)]
pub struct Watches {
    latest: Mutex<Option<(Instant, ClusterSnapshot)>>,
    open: Arc<Mutex<HashMap<Option<IpAddr>, usize>>>,
}

/// One open watch stream; dropping it frees the client's slot.
pub struct WatchSlot {
    open: Arc<Mutex<HashMap<Option<IpAddr>, usize>>>,
    client: Option<IpAddr>,
}

impl Drop for WatchSlot {
    fn drop(&mut self) {
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(count) = open.get_mut(&self.client) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                open.remove(&self.client);
            }
        }
    }
}

impl Watches {
    /// Admits one more stream for `client`, or refuses past the cap.
    pub fn admit(&self, client: Option<IpAddr>) -> Result<WatchSlot, TooManyWatches> {
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        let count = open.entry(client).or_default();
        if *count >= MAX_WATCHES_PER_CLIENT {
            return Err(TooManyWatches);
        }
        *count += 1;
        Ok(WatchSlot {
            open: self.open.clone(),
            client,
        })
    }

    /// The snapshot every watcher gets now: the last one built, when it
    /// is younger than [`SHARED_FOR`]; else a new one (built under the
    /// lock, so watchers arriving together share it).
    pub fn snapshot(&self, ctx: &Cluster) -> ClusterSnapshot {
        let mut latest = self.latest.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((built, snap)) = latest.as_ref()
            && built.elapsed() < SHARED_FOR
        {
            return snap.clone();
        }
        let snap = snapshot(ctx);
        *latest = Some((Instant::now(), snap.clone()));
        snap
    }
}
