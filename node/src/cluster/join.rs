//! The worker side of membership: heartbeat the master about once a
//! second with slots, score and task progress. A master that is not there
//! yet (or went away) is retried with capped exponential backoff, so a
//! worker may start before its master and joins as soon as it can.

use std::time::Duration;

use vidshard_proto::v1::HeartbeatRequest;
use vidshard_proto::v1::cluster_client::ClusterClient;

use crate::context::Ctx;

pub const HEARTBEAT_EVERY: Duration = Duration::from_secs(1);
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// The next wait after `failures` consecutive failed heartbeats (pure):
/// 1 s, 2 s, 4 s, then 5 s.
pub fn backoff(failures: u32) -> Duration {
    if failures == 0 {
        return HEARTBEAT_EVERY;
    }
    let doubled = HEARTBEAT_EVERY.saturating_mul(1u32 << failures.min(16).saturating_sub(1));
    doubled.min(MAX_BACKOFF)
}

/// The heartbeat this node would send now.
pub fn heartbeat(ctx: &Ctx) -> HeartbeatRequest {
    HeartbeatRequest {
        node_id: ctx.node_id.clone(),
        address: ctx.address.clone(),
        slots_total: ctx.slots_total,
        slots_busy: ctx.slots_busy(),
        score: Some(ctx.score_report()),
        tasks: ctx.worker_tasks.progress_reports(),
    }
}

/// Heartbeats `master` until shutdown.
pub async fn run(ctx: Ctx, master: String) {
    let mut failures = 0u32;
    let mut joined = false;
    loop {
        let sent = async {
            let channel = ctx.peers.channel(&master).map_err(|e| e.to_string())?;
            let mut client = ClusterClient::new(channel);
            let mut request = tonic::Request::new(heartbeat(&ctx));
            request.set_timeout(Duration::from_secs(3));
            client
                .heartbeat(request)
                .await
                .map(|r| r.into_inner())
                .map_err(|e| e.message().to_string())
        };
        let wait = match sent.await {
            Ok(reply) if reply.accepted => {
                if !joined {
                    tracing::info!(%master, "joined the cluster");
                    joined = true;
                }
                failures = 0;
                backoff(0)
            }
            Ok(reply) => {
                failures += 1;
                tracing::warn!(%master, reason = %reply.message, "master refused this node");
                backoff(failures)
            }
            Err(reason) => {
                failures += 1;
                if joined || failures == 1 {
                    tracing::warn!(%master, %reason, "cannot reach the master; retrying");
                }
                joined = false;
                backoff(failures)
            }
        };
        tokio::select! {
            _ = ctx.shutdown.cancelled() => return,
            _ = tokio::time::sleep(wait) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_is_capped() {
        let secs: Vec<u64> = (0..6).map(|f| backoff(f).as_secs()).collect();
        assert_eq!(secs, vec![1, 1, 2, 4, 5, 5]);
        assert_eq!(backoff(u32::MAX), MAX_BACKOFF);
    }
}
