//! Liveness of original-protocol workers: they do not send our
//! heartbeats, so the master asks each one `GetNodeStats` every second;
//! an answer counts as a heartbeat, silence lets the sweeper mark it dead.

use std::time::{Duration, Instant};

use vidshard_proto::replication::NodeStatsRequest;
use vidshard_proto::replication::node_service_client::NodeServiceClient;

use super::{Member, Protocol};
use crate::context::Ctx;

const EVERY: Duration = Duration::from_secs(1);

pub async fn run(ctx: Ctx) {
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
                    ctx.membership.heard_from(Member {
                        last_seen: Instant::now(),
                        ..member
                    });
                }
            });
        }
    }
}
