//! The original `replication.NodeService`. `GetNodeStats`,
//! `GetCurrentMaster` and `GetAllNodes` answer truthfully from Raft (the
//! leader and its term); the original election RPCs are answered but
//! never depose our leader or touch Raft state: votes are refused with
//! our term, announcements are not followed. `ReplicateVideo` and
//! `RequestBackupData` keep bounded, validated backups for original
//! masters (`legacy::backups`).

use tonic::{Request, Response, Status};
use vidshard_proto::replication::node_service_server::NodeService;
use vidshard_proto::replication::*;

use std::time::Instant;

use crate::cluster::Member;
use crate::cluster::membership::Load;
use std::sync::Arc;

use crate::legacy::Legacy;
use crate::legacy::backups;
use crate::service::reply_limits::HoldUntilSent;

use crate::cluster::Sys;
use crate::worker::Worker;

pub struct Node {
    sys: Sys,
    /// This node's slots, for `GetNodeStats`.
    worker: Arc<Worker>,
    /// The backups original masters keep here.
    legacy: Arc<Legacy>,
}

impl Node {
    pub fn new(worker: Arc<Worker>, legacy: Arc<Legacy>) -> Self {
        Self {
            sys: worker.sys.clone(),
            worker,
            legacy,
        }
    }
}

/// Splits "host:port" into its parts (port 0 when absent or bad).
fn host_port(address: &str) -> (String, i32) {
    match address.rsplit_once(':') {
        Some((host, port)) => (host.to_string(), port.parse().unwrap_or(0)),
        None => (address.to_string(), 0),
    }
}

/// This node and every live member it knows, as the original `NodeInfo`.
fn known_nodes(ctx: &Sys) -> Vec<NodeInfo> {
    let (address, port) = host_port(&ctx.address);
    let mut nodes = vec![NodeInfo {
        node_id: ctx.node_id.clone(),
        address,
        port,
    }];
    let mut add = |name: &str, at: &str| {
        if nodes.iter().all(|n| n.node_id != name) {
            let (address, port) = host_port(at);
            nodes.push(NodeInfo {
                node_id: name.to_string(),
                address,
                port,
            });
        }
    };
    for m in ctx.consensus.members() {
        add(&m.info.name, &m.info.address);
    }
    for m in ctx.membership.lock().members().filter(|m| m.alive) {
        add(&m.node_id, &m.address);
    }
    nodes
}

#[tonic::async_trait]
impl NodeService for Node {
    async fn announce_master(
        &self,
        request: Request<MasterAnnouncement>,
    ) -> Result<Response<MasterAnnouncementResponse>, Status> {
        let announced = request.into_inner();
        // A node working for an original master follows its announcements
        // (and registers with the new one); a Raft member never does.
        if self.sys.original_master.address().is_some() && !announced.master_address.is_empty() {
            tracing::info!(master = %announced.master_address, term = announced.term, "the original master changed");
            self.sys.original_master.set(&announced.master_address);
            return Ok(Response::new(MasterAnnouncementResponse {
                status: "accepted".into(),
                node_id: self.sys.node_id.clone(),
            }));
        }
        tracing::info!(master = %announced.master_address, term = announced.term, "ignored a master announcement");
        Ok(Response::new(MasterAnnouncementResponse {
            status: "rejected: masters are not changed by announcements".into(),
            node_id: self.sys.node_id.clone(),
        }))
    }

    async fn request_vote(
        &self,
        request: Request<VoteRequest>,
    ) -> Result<Response<VoteResponse>, Status> {
        let vote = request.into_inner();
        tracing::info!(candidate = %vote.candidate_id, term = vote.term, "refused a vote request");
        Ok(Response::new(VoteResponse {
            term: crate::legacy::original_term(self.sys.term()),
            vote_granted: false,
            voter_id: self.sys.node_id.clone(),
        }))
    }

    async fn get_node_stats(
        &self,
        _: Request<NodeStatsRequest>,
    ) -> Result<Response<NodeStatsResponse>, Status> {
        let ctx = &self.sys;
        ctx.original_master.heard();
        let sample = ctx.stats.latest();
        let active = ctx.jobs.lock().active_count() as i32;
        let free = sample.disk_free_bytes.min(i64::MAX as u64) as i64;
        let total = sample.disk_total_bytes.min(i64::MAX as u64) as i64;
        Ok(Response::new(NodeStatsResponse {
            node_id: ctx.node_id.clone(),
            node_address: ctx.address.clone(),
            is_master: ctx.is_master(),
            current_master_address: ctx.master_address().unwrap_or_default(),
            cpu_utilization: sample.cpu_percent,
            memory_utilization: sample.memory_percent,
            disk_space_free_shards: free,
            disk_space_total_shards: total,
            disk_space_free_masterdata: free,
            disk_space_total_masterdata: total,
            active_tasks: active + self.worker.slots_busy() as i32,
            known_nodes_count: known_nodes(ctx).len() as i32,
            election_in_progress: ctx.consensus.election_in_progress(),
            current_term: crate::legacy::original_term(self.sys.term()),
        }))
    }

    async fn get_current_master(
        &self,
        _: Request<GetCurrentMasterRequest>,
    ) -> Result<Response<GetCurrentMasterResponse>, Status> {
        let master = self.sys.master_address();
        Ok(Response::new(GetCurrentMasterResponse {
            is_master_known: master.is_some(),
            master_address: master.unwrap_or_default(),
            term: crate::legacy::original_term(self.sys.term()),
        }))
    }

    /// Scores from original-protocol workers (ours send theirs in the
    /// heartbeat). The original's score is on the same "lower is better"
    /// scale; it is clamped to 0..=100 and counts as a sign of life.
    async fn report_resource_score(
        &self,
        request: Request<ReportResourceScoreRequest>,
    ) -> Result<Response<ReportResourceScoreResponse>, Status> {
        let report = request.into_inner();
        let reply = |success: bool, message: String| {
            Ok(Response::new(ReportResourceScoreResponse {
                success,
                message,
            }))
        };
        if !self.sys.is_master() {
            return reply(false, "this node is not the master".into());
        }
        let Some(member) = self
            .sys
            .membership
            .lock()
            .by_address(&report.worker_address)
            .cloned()
        else {
            return reply(
                false,
                format!(
                    "unknown worker {:?}: call RegisterWorker first",
                    report.worker_address
                ),
            );
        };
        let score = report.resource_score.unwrap_or_default();
        let finite = |v: f32| {
            if v.is_finite() {
                v.clamp(0.0, 100.0)
            } else {
                100.0
            }
        };
        let load = Load {
            score: finite(score.score),
            load_per_core: finite(score.load_avg),
            iowait_percent: finite(score.io_wait),
            net_mb_per_s: finite(score.net_usage_mb),
            disk_mb_per_s: 0.0,
            memory_percent: member.load.memory_percent,
        };
        self.sys.membership.heard_from(Member {
            last_seen: Instant::now(),
            load,
            ..member
        });
        reply(true, format!("score {:.1} recorded", load.score))
    }

    async fn register_node(
        &self,
        request: Request<RegisterNodeRequest>,
    ) -> Result<Response<RegisterNodeResponse>, Status> {
        let node = request.into_inner();
        let ctx = &self.sys;
        let address = if node
            .address
            .rsplit_once(':')
            .is_some_and(|(_, p)| p.parse::<u16>().is_ok())
        {
            node.address.clone()
        } else {
            format!("{}:{}", node.address, node.port)
        };
        // An original node joins like an original worker: probed with
        // GetNodeStats, given H.264 shards over the original protocol.
        let member_id = super::master::original_worker_id(&address);
        let success = ctx.is_master() && member_id.is_some();
        if let (true, Some(node_id)) = (success, member_id) {
            ctx.membership
                .heard_from(Member::original(node_id, address));
        }
        Ok(Response::new(RegisterNodeResponse {
            success,
            current_leader: ctx.master_address().unwrap_or_default(),
            nodes: known_nodes(ctx)
                .into_iter()
                .map(|n| format!("{}:{}", n.address, n.port))
                .collect(),
        }))
    }

    async fn update_node_list(
        &self,
        _: Request<UpdateNodeListRequest>,
    ) -> Result<Response<UpdateNodeListResponse>, Status> {
        Ok(Response::new(UpdateNodeListResponse {
            success: false,
            message: "node lists are not taken from peers: membership is not supported yet".into(),
        }))
    }

    async fn get_all_nodes(
        &self,
        _: Request<GetAllNodesRequest>,
    ) -> Result<Response<GetAllNodesResponse>, Status> {
        Ok(Response::new(GetAllNodesResponse {
            nodes: known_nodes(&self.sys),
        }))
    }

    /// An original master's finished video, kept as a backup (see
    /// `legacy::backups`). Every refusal is `success: false` with the
    /// reason, so the original peer can log it.
    async fn replicate_video(
        &self,
        request: Request<ReplicateVideoRequest>,
    ) -> Result<Response<ReplicateVideoResponse>, Status> {
        let video = request.into_inner();
        let stored = self
            .legacy
            .backups
            .replicate(&video.video_id, &video.container, &video.video_data)
            .await;
        let (success, message) = match stored {
            Ok(stored) => {
                tracing::info!(video = %backups::quoted(&video.video_id), bytes = stored.blob.size, sha256 = %stored.blob.sha256, replaced = stored.replaced, "stored a backup for an original master");
                (
                    true,
                    format!(
                        "stored {} bytes of {} ({}) as a backup, sha256 {}{}",
                        stored.blob.size,
                        backups::quoted(&video.video_id),
                        stored.container,
                        stored.blob.sha256,
                        if stored.replaced {
                            "; replaced the earlier copy"
                        } else {
                            ""
                        }
                    ),
                )
            }
            Err(e) => {
                tracing::warn!(video = %backups::quoted(&video.video_id), bytes = video.video_data.len(), error = %e, "did not store a backup");
                (false, format!("not stored: {e}"))
            }
        };
        Ok(Response::new(ReplicateVideoResponse { success, message }))
    }

    /// Every backup held for original masters that fits in one reply
    /// (oldest first); `message` names what was left out. The reply's
    /// bytes hold part of the node's reply budget until it has been sent
    /// (see `legacy::backups::budget`); a caller that waited too long for
    /// it gets RESOURCE_EXHAUSTED.
    async fn request_backup_data(
        &self,
        request: Request<RequestBackupDataRequest>,
    ) -> Result<Response<RequestBackupDataResponse>, Status> {
        let new_master = request.into_inner().new_master_address;
        let (reply, permit) = match self.legacy.backups.collect_for_reply().await {
            Ok(reply) => {
                tracing::info!(new_master = %backups::quoted(&new_master), files = reply.files.len(), message = %reply.message, "handed backups to an original master");
                let response = RequestBackupDataResponse {
                    success: true,
                    message: reply.message,
                    backup_files: reply
                        .files
                        .into_iter()
                        .map(|held| BackupFile {
                            filename: held.video_id.clone(),
                            video_id: held.video_id,
                            file_data: held.data,
                            container: held.container,
                        })
                        .collect(),
                };
                (response, Some(reply.permit))
            }
            Err(e @ backups::BackupError::Busy { .. }) => {
                tracing::warn!(new_master = %backups::quoted(&new_master), error = %e, "backup reply refused");
                return Err(Status::resource_exhausted(e.to_string()));
            }
            Err(e) => {
                tracing::warn!(new_master = %backups::quoted(&new_master), error = %e, "could not hand backups to an original master");
                let response = RequestBackupDataResponse {
                    success: false,
                    message: format!("could not read the backups: {e}"),
                    backup_files: Vec::new(),
                };
                (response, None)
            }
        };
        let mut response = Response::new(reply);
        if let Some(permit) = permit {
            response.extensions_mut().insert(HoldUntilSent::new(permit));
        }
        Ok(response)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_split_into_host_and_port() {
        assert_eq!(
            host_port("127.0.0.1:50051"),
            ("127.0.0.1".to_string(), 50051)
        );
        assert_eq!(host_port("[::1]:7"), ("[::1]".to_string(), 7));
        assert_eq!(host_port("nohost"), ("nohost".to_string(), 0));
    }
}
