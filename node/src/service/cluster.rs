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

use super::cluster_view::{Cluster, fault_tolerance, node_entries};
use super::node_identity::{check_heartbeat, reachable_address};
use super::watch::watch_interval;
use crate::cluster::membership::Load;
use crate::cluster::{Member, Protocol};

use crate::media::Progress;
use crate::pipeline::WorkerReport;

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
                abilities: crate::media::Abilities::from_heartbeat(&beat.abilities),
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
