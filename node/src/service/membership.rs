//! Raft membership requests of `vidshard.v1.Cluster`: joining (any member
//! takes it and forwards it to the leader) and removing a node.

use tonic::{Response, Status};
use vidshard_proto::v1::cluster_client::ClusterClient;
use vidshard_proto::v1::{
    JoinClusterReply, JoinClusterRequest, RemoveNodeReply, RemoveNodeRequest,
};

use super::node_identity::check_heartbeat;
use crate::cluster::Sys;

/// The leader's address when it is another node; an error when no leader
/// is known.
fn leader_elsewhere(sys: &Sys) -> Result<Option<String>, Status> {
    if sys.is_master() {
        return Ok(None);
    }
    match sys.consensus.leader() {
        Some((_, info)) if info.address != sys.address => Ok(Some(info.address)),
        _ => Err(Status::unavailable(
            "no master is elected right now; retry shortly",
        )),
    }
}

pub async fn join(
    sys: &Sys,
    request: JoinClusterRequest,
) -> Result<Response<JoinClusterReply>, Status> {
    let as_heartbeat = vidshard_proto::v1::HeartbeatRequest {
        node_id: request.node_id.clone(),
        address: request.address.clone(),
        ..Default::default()
    };
    check_heartbeat(&as_heartbeat).map_err(|e| Status::invalid_argument(e.to_string()))?;
    if let Some(leader) = leader_elsewhere(sys)? {
        let channel = sys
            .peers
            .channel(&leader)
            .map_err(|e| Status::unavailable(e.to_string()))?;
        return ClusterClient::new(channel).join_cluster(request).await;
    }
    let info = crate::cluster::raft::NodeInfo {
        address: request.address.clone(),
        name: request.node_id.clone(),
    };
    let reply = match sys.consensus.admit(info).await {
        Ok(voter) => {
            tracing::info!(node = %request.node_id, address = %request.address, voter, "node admitted to the cluster");
            JoinClusterReply {
                accepted: true,
                message: if voter {
                    "joined as a voter"
                } else {
                    "joined as a learner"
                }
                .into(),
                leader_address: sys.address.clone(),
                voter,
                term: sys.term(),
            }
        }
        Err(e) => JoinClusterReply {
            accepted: false,
            message: e.to_string(),
            leader_address: sys.address.clone(),
            voter: false,
            term: sys.term(),
        },
    };
    Ok(Response::new(reply))
}

pub async fn remove(
    sys: &Sys,
    request: RemoveNodeRequest,
) -> Result<Response<RemoveNodeReply>, Status> {
    if let Some(leader) = leader_elsewhere(sys)? {
        let channel = sys
            .peers
            .channel(&leader)
            .map_err(|e| Status::unavailable(e.to_string()))?;
        return ClusterClient::new(channel).remove_node(request).await;
    }
    let reply = match sys.consensus.remove(&request.node_id).await {
        Ok(()) => {
            sys.membership.forget(&request.node_id);
            tracing::info!(node = %request.node_id, "node removed from the cluster");
            RemoveNodeReply {
                removed: true,
                message: format!("{} removed", request.node_id),
            }
        }
        Err(e) => RemoveNodeReply {
            removed: false,
            message: e.to_string(),
        },
    };
    Ok(Response::new(reply))
}
