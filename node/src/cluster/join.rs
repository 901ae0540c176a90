//! The worker side of membership: heartbeat the master (the Raft leader,
//! or the configured master before one is known) about once a second
//! with slots, score and task progress. A master that is not there yet
//! (or went away) is retried with capped exponential backoff, so a worker
//! may start before its master and joins as soon as it can. The leader
//! itself sends none.

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
        lost_blobs: ctx
            .my_losses
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .cloned()
            .collect(),
    }
}

/// Heartbeats the master until shutdown.
pub async fn run(ctx: Ctx) {
    let mut failures = 0u32;
    let mut joined = false;
    let mut last_master = String::new();
    loop {
        let master = match ctx.master_address() {
            Some(m) if !ctx.is_master() && m != ctx.address => m,
            _ => {
                joined = false;
                tokio::select! {
                    _ = ctx.shutdown.cancelled() => return,
                    _ = tokio::time::sleep(HEARTBEAT_EVERY) => {}
                }
                continue;
            }
        };
        if master != last_master {
            joined = false;
            failures = 0;
            last_master = master.clone();
        }
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
                // The master has the losses this beat carried.
                ctx.my_losses
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .clear();
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
        // A new leader is heartbeated at once, not after the backoff.
        tokio::select! {
            _ = ctx.shutdown.cancelled() => return,
            _ = tokio::time::sleep(wait) => {}
            _ = leader_changed(&ctx, &master) => {}
        }
    }
}

/// Resolves when the known master is no longer `master`.
async fn leader_changed(ctx: &Ctx, master: &str) {
    let mut metrics = ctx.consensus.raft.metrics();
    loop {
        if ctx.master_address().as_deref() != Some(master) {
            return;
        }
        if metrics.changed().await.is_err() {
            std::future::pending::<()>().await;
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
