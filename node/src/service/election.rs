//! `vidshard.v1.Cluster/TriggerElection`: move leadership to a named
//! voter or to the best-scored live one. Any node takes the request and
//! forwards it to the leader, which steps aside (see `cluster::raft::transfer`).

use tonic::{Request, Response, Status};
use vidshard_proto::v1::cluster_client::ClusterClient;
use vidshard_proto::v1::{TriggerElectionReply, TriggerElectionRequest};

use super::forward;
use crate::cluster::Sys;
use crate::cluster::raft::transfer;

pub async fn trigger(
    sys: &Sys,
    request: Request<TriggerElectionRequest>,
) -> Result<Response<TriggerElectionReply>, Status> {
    if let Some(leader) = forward::leader_for(sys, request.metadata()).await? {
        let mut client = ClusterClient::new(forward::channel(sys, &leader)?);
        return client
            .trigger_election(forward::marked(request.into_inner()))
            .await;
    }
    let wanted = request.into_inner().to_node_id;
    let refused = |message: String| {
        Ok(Response::new(TriggerElectionReply {
            accepted: false,
            message,
            new_master_address: sys.address.clone(),
            term: sys.term(),
        }))
    };
    let target = match sys.handover_target(Some(&wanted)) {
        Ok(target) => target,
        Err(why) => return refused(why.to_string()),
    };
    if let Err(why) = transfer::election_allowed(sys.consensus.since_forced_election()) {
        return refused(why.to_string());
    }
    tracing::info!(to = %target.info.name, "handing leadership over on request");
    match transfer::hand_over(&sys.consensus, &sys.peers, &target).await {
        Ok(term) => Ok(Response::new(TriggerElectionReply {
            accepted: true,
            message: format!("{} is the master now (term {term})", target.info.name),
            new_master_address: target.info.address,
            term,
        })),
        Err(why) => refused(why.to_string()),
    }
}
