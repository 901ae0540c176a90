//! Our `vidshard.v1.Cluster` service: node listing, worker heartbeats,
//! the live watch stream for consoles (`watch.rs`), and the election
//! trigger.

use std::pin::Pin;
use std::time::Instant;

use futures::Stream;
use tonic::{Request, Response, Status};
use vidshard_proto::v1::cluster_client::ClusterClient;
use vidshard_proto::v1::cluster_server;
use vidshard_proto::v1::*;

use super::node_identity::{check_heartbeat, reachable_address};
use super::watch::{Watches, watch_interval};
use crate::cluster::membership::Load;
use crate::cluster::{Member, Protocol};
use std::sync::Arc;

use crate::cluster::Sys;
use crate::media::Progress;
use crate::pipeline::{Master, WorkerReport};
use crate::worker::Worker;

/// The handles the cluster service reads: the node's infrastructure,
/// this node as a worker (its own row), and the master side (heartbeats,
/// the board of running copies).
#[derive(Clone)]
pub struct Cluster {
    pub(super) sys: Sys,
    worker: Arc<Worker>,
    master: Arc<Master>,
    /// Watch streams: one snapshot shared by all, a cap per client.
    pub(super) watches: Arc<Watches>,
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
fn node_entries(ctx: &Cluster) -> Vec<NodeEntry> {
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
fn fault_tolerance(ctx: &Cluster) -> String {
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
pub(super) fn snapshot(ctx: &Cluster) -> ClusterSnapshot {
    let (voters_up, voters_total) = voter_counts(ctx);
    let (jobs, jobs_omitted) = {
        let table = ctx.sys.jobs.lock();
        super::convert::jobs_within(&ctx.sys, &table.list())
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

#[tonic::async_trait]
impl cluster_server::Cluster for Cluster {
    async fn list_nodes(
        &self,
        request: Request<ListNodesRequest>,
    ) -> Result<Response<ListNodesReply>, Status> {
        let ctx = self;
        // Liveness and scores live on the master: ask it when it answers.
        if let Some(leader) = super::forward::leader_for(&ctx.sys, request.metadata())
            .await
            .ok()
            .flatten()
        {
            let mut client = ClusterClient::new(super::forward::channel(&ctx.sys, &leader)?);
            match client
                .list_nodes(super::forward::marked(ListNodesRequest {}))
                .await
            {
                Err(status) if status.code() == tonic::Code::Unavailable => {}
                answered => return answered,
            }
        }
        Ok(Response::new(ListNodesReply {
            nodes: node_entries(ctx),
            master_address: ctx.sys.master_address().unwrap_or_default(),
            term: ctx.sys.term(),
            fault_tolerance: fault_tolerance(ctx),
        }))
    }

    type WatchClusterStream = Pin<Box<dyn Stream<Item = Result<ClusterSnapshot, Status>> + Send>>;

    async fn watch_cluster(
        &self,
        request: Request<WatchRequest>,
    ) -> Result<Response<Self::WatchClusterStream>, Status> {
        let every = watch_interval(request.get_ref().interval_ms);
        let client = request.remote_addr().map(|a| a.ip());
        let slot = self
            .watches
            .admit(client)
            .map_err(|e| Status::resource_exhausted(e.to_string()))?;
        // Two snapshots at most wait for a reader; a slow one misses ticks.
        let (tx, rx) = tokio::sync::mpsc::channel(2);
        let tasks = self.sys.tasks.clone();
        tasks.spawn(super::watch::stream(self.clone(), every, tx, slot));
        Ok(Response::new(Box::pin(
            tokio_stream::wrappers::ReceiverStream::new(rx),
        )))
    }

    async fn trigger_election(
        &self,
        request: Request<TriggerElectionRequest>,
    ) -> Result<Response<TriggerElectionReply>, Status> {
        super::election::trigger(&self.sys, request).await
    }

    async fn join_cluster(
        &self,
        request: Request<JoinClusterRequest>,
    ) -> Result<Response<JoinClusterReply>, Status> {
        super::membership::join(&self.sys, request.into_inner()).await
    }

    async fn remove_node(
        &self,
        request: Request<RemoveNodeRequest>,
    ) -> Result<Response<RemoveNodeReply>, Status> {
        super::membership::remove(&self.sys, request.into_inner()).await
    }

    async fn heartbeat(
        &self,
        request: Request<HeartbeatRequest>,
    ) -> Result<Response<HeartbeatReply>, Status> {
        let sys = &self.sys;
        let peer_ip = request.remote_addr().map(|a| a.ip());
        let beat = request.into_inner();
        if sys.is_master() {
            check_heartbeat(&beat).map_err(|e| Status::invalid_argument(e.to_string()))?;
        }
        let score = beat.score.unwrap_or_default();
        let report = WorkerReport {
            member: Member {
                node_id: beat.node_id.clone(),
                address: reachable_address(&beat.address, peer_ip),
                protocol: Protocol::Vidshard,
                last_seen: Instant::now(),
                alive: true,
                slots_total: beat.slots_total,
                slots_busy: beat.slots_busy,
                load: Load {
                    score: score.score,
                    load_per_core: score.load_per_core,
                    iowait_percent: score.iowait_percent,
                    net_mb_per_s: score.net_mb_per_s,
                    disk_mb_per_s: score.disk_mb_per_s,
                    memory_percent: score.memory_percent,
                },
            },
            lost_blobs: beat.lost_blobs,
            tasks: beat
                .tasks
                .iter()
                .map(|task| {
                    let progress = Progress {
                        frames: task.frames_done,
                        fps: task.fps,
                    };
                    (task.task_id.clone(), progress)
                })
                .collect(),
        };
        let (accepted, message) = match self.master.heard_from(report, &beat.address) {
            Ok(()) => (true, String::new()),
            Err(refusal) => (false, refusal.to_string()),
        };
        Ok(Response::new(HeartbeatReply {
            accepted,
            master_address: sys.master_address().unwrap_or_default(),
            term: sys.term(),
            message,
        }))
    }
}
