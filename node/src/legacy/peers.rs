//! Liveness of original-protocol workers: they do not send our
//! heartbeats, so the master asks each one `GetNodeStats` every second;
//! an answer counts as a heartbeat, silence lets the sweeper mark it dead.
//! The master also tells each of them who leads (`AnnounceMaster`, with
//! the Raft term) once per term, as the original protocol expects.

use std::time::{Duration, Instant};

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use vidshard_proto::replication::node_service_client::NodeServiceClient;
use vidshard_proto::replication::{MasterAnnouncement, NodeStatsRequest};

use crate::cluster::Sys;
use crate::cluster::{Member, Protocol};

const EVERY: Duration = Duration::from_secs(1);

/// The term each original peer was last told about.
type Announced = Arc<Mutex<HashMap<String, u64>>>;

pub async fn run(sys: Sys) {
    let announced = Announced::default();
    loop {
        tokio::select! {
            _ = sys.shutdown.cancelled() => return,
            _ = tokio::time::sleep(EVERY) => {}
        }
        let originals: Vec<Member> = sys
            .membership
            .lock()
            .members()
            .filter(|m| m.protocol == Protocol::Original)
            .cloned()
            .collect();
        for member in originals {
            let sys = sys.clone();
            let announced = announced.clone();
            tokio::spawn(async move {
                let Ok(channel) = sys.peers.channel(&member.address) else {
                    return;
                };
                let mut request = tonic::Request::new(NodeStatsRequest {});
                request.set_timeout(Duration::from_secs(2));
                if NodeServiceClient::new(channel)
                    .get_node_stats(request)
                    .await
                    .is_ok()
                {
                    announce(&sys, &member, &announced).await;
                    sys.membership.heard_from(Member {
                        last_seen: Instant::now(),
                        ..member
                    });
                }
            });
        }
    }
}

/// Tells an original peer this node leads, once per term.
async fn announce(sys: &Sys, member: &Member, announced: &Announced) {
    let term = sys.term();
    if !sys.is_master() {
        return;
    }
    let told = announced
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .get(&member.node_id)
        .copied();
    if told == Some(term) {
        return;
    }
    let Ok(channel) = sys.peers.channel(&member.address) else {
        return;
    };
    let mut request = tonic::Request::new(MasterAnnouncement {
        master_address: sys.address.clone(),
        node_id_of_master: sys.node_id.clone(),
        term: super::original_term(sys.term()),
    });
    request.set_timeout(Duration::from_secs(2));
    if NodeServiceClient::new(channel)
        .announce_master(request)
        .await
        .is_ok()
    {
        tracing::info!(peer = %member.address, term, "announced this master to an original-protocol peer");
        announced
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(member.node_id.clone(), term);
    }
}
