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

use super::{Member, Protocol};
use crate::context::Ctx;

const EVERY: Duration = Duration::from_secs(1);

/// The term each original peer was last told about.
type Announced = Arc<Mutex<HashMap<String, u64>>>;

pub async fn run(ctx: Ctx) {
    let announced = Announced::default();
    loop {
        tokio::select! {
            _ = ctx.shutdown.cancelled() => return,
            _ = tokio::time::sleep(EVERY) => {}
        }
        let originals: Vec<Member> = ctx
            .membership
            .lock()
            .members()
            .filter(|m| m.protocol == Protocol::Original)
            .cloned()
            .collect();
        for member in originals {
            let ctx = ctx.clone();
            let announced = announced.clone();
            tokio::spawn(async move {
                let Ok(channel) = ctx.peers.channel(&member.address) else {
                    return;
                };
                let mut request = tonic::Request::new(NodeStatsRequest {});
                request.set_timeout(Duration::from_secs(2));
                if NodeServiceClient::new(channel)
                    .get_node_stats(request)
                    .await
                    .is_ok()
                {
                    announce(&ctx, &member, &announced).await;
                    ctx.membership.heard_from(Member {
                        last_seen: Instant::now(),
                        ..member
                    });
                }
            });
        }
    }
}

/// Tells an original peer this node leads, once per term.
async fn announce(ctx: &Ctx, member: &Member, announced: &Announced) {
    let term = ctx.term();
    if !ctx.is_master() {
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
    let Ok(channel) = ctx.peers.channel(&member.address) else {
        return;
    };
    let mut request = tonic::Request::new(MasterAnnouncement {
        master_address: ctx.address.clone(),
        node_id_of_master: ctx.node_id.clone(),
        term: crate::service::original_term(ctx),
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
