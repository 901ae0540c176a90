//! Joining the Raft group through any member: a node started with
//! `--master` or `--nodes` asks the seeds (and, once known, the leader)
//! to admit it, with capped backoff, until the membership lists it at its
//! current address. A seed that speaks only the original protocol makes
//! this node its plain worker instead.

use std::time::Duration;

use vidshard_proto::v1::JoinClusterRequest;
use vidshard_proto::v1::cluster_client::ClusterClient;

use crate::cluster::Sys;
use crate::cluster::backoff::backoff;

/// True once the membership lists this node at the address it has now.
fn admitted(sys: &Sys) -> bool {
    sys.consensus
        .members()
        .iter()
        .any(|m| m.id == sys.consensus.id && m.info.address == sys.address)
}

enum Asked {
    Admitted { voter: bool },
    Refused(String),
    OriginalOnly,
}

async fn ask(sys: &Sys, seed: &str) -> Asked {
    let channel = match sys.peers.channel(seed) {
        Ok(c) => c,
        Err(e) => return Asked::Refused(e.to_string()),
    };
    let mut request = tonic::Request::new(JoinClusterRequest {
        node_id: sys.node_id.clone(),
        address: sys.address.clone(),
    });
    request.set_timeout(Duration::from_secs(15));
    match ClusterClient::new(channel).join_cluster(request).await {
        Ok(reply) => {
            let reply = reply.into_inner();
            if reply.accepted {
                Asked::Admitted { voter: reply.voter }
            } else {
                Asked::Refused(reply.message)
            }
        }
        Err(status) if status.code() == tonic::Code::Unimplemented => Asked::OriginalOnly,
        Err(status) => Asked::Refused(status.message().to_string()),
    }
}

/// Asks to join until admitted (or shutdown).
pub async fn run(sys: Sys, seeds: Vec<String>) {
    let mut failures = 0u32;
    loop {
        if admitted(&sys) {
            tracing::info!("this node is a member of the cluster");
            return;
        }
        let mut targets: Vec<String> = sys
            .consensus
            .leader()
            .map(|(_, n)| n.address)
            .into_iter()
            .collect();
        for seed in &seeds {
            if !targets.contains(seed) {
                targets.push(seed.clone());
            }
        }
        let mut reasons = Vec::new();
        for target in targets.iter().filter(|t| **t != sys.address) {
            match ask(&sys, target).await {
                Asked::Admitted { voter } => {
                    tracing::info!(via = %target, voter, "joined the cluster");
                    return;
                }
                Asked::OriginalOnly => {
                    tracing::info!(master = %target, "the master speaks only the original protocol: working as its worker, without Raft");
                    sys.original_master.set(target);
                    return;
                }
                Asked::Refused(why) => reasons.push(format!("{target}: {why}")),
            }
        }
        failures += 1;
        if failures == 1 || failures.is_multiple_of(10) {
            tracing::warn!(reasons = %reasons.join("; "), "cannot join the cluster yet; retrying");
        }
        tokio::select! {
            _ = sys.shutdown.cancelled() => return,
            _ = tokio::time::sleep(backoff(failures)) => {}
        }
    }
}
