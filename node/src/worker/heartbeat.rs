//! The worker side of membership: heartbeat the master (the Raft leader,
//! or the configured master before one is known) about once a second
//! with slots, score, task progress and the blobs this node lost (from
//! [`Backups`], cleared once a master accepted them). A master that is not there yet
//! (or went away) is retried with capped exponential backoff, so a worker
//! may start before its master and joins as soon as it can. The leader
//! itself sends none.

use std::time::Duration;

use vidshard_proto::v1::HeartbeatRequest;
use vidshard_proto::v1::cluster_client::ClusterClient;

use std::sync::Arc;

use super::Worker;
use crate::backups::Backups;

use crate::cluster::backoff::{HEARTBEAT_EVERY, backoff};

/// The heartbeat this node would send now.
pub fn heartbeat(worker: &Worker, backups: &Backups) -> HeartbeatRequest {
    HeartbeatRequest {
        node_id: worker.sys.node_id.clone(),
        address: worker.sys.address.clone(),
        slots_total: worker.slots_total,
        slots_busy: worker.slots_busy(),
        score: Some(worker.score_report()),
        tasks: worker.tasks.progress_reports(),
        lost_blobs: backups.own_losses(),
        abilities: worker.abilities.names(),
    }
}

/// Heartbeats the master until shutdown.
pub async fn run(worker: Arc<Worker>, backups: Arc<Backups>) {
    let ctx = &worker.sys;
    let mut failures = 0u32;
    let mut joined = false;
    let mut last_master = String::new();
    loop {
        // An original master takes RegisterWorker, not heartbeats.
        let original = ctx.original_master.address().is_some();
        let master = match ctx.master_address() {
            Some(m) if !original && !ctx.is_master() && m != ctx.address => m,
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
            let beat = heartbeat(&worker, &backups);
            let lost = beat.lost_blobs.clone();
            let mut request = tonic::Request::new(beat);
            request.set_timeout(Duration::from_secs(3));
            client
                .heartbeat(request)
                .await
                .map(|r| (r.into_inner(), lost))
                .map_err(|e| e.message().to_string())
        };
        let wait = match sent.await {
            Ok((reply, lost)) if reply.accepted => {
                // The master has the losses this beat carried.
                backups.own_losses_accepted(&lost);
                if !joined {
                    tracing::info!(%master, "joined the cluster");
                    joined = true;
                }
                failures = 0;
                backoff(0)
            }
            Ok((reply, _)) => {
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
            _ = leader_changed(ctx, &master) => {}
        }
    }
}

/// Resolves when the known master is no longer `master`.
async fn leader_changed(ctx: &crate::cluster::System, master: &str) {
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
