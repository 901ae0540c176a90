//! The stop sequence: at the first SIGTERM/Ctrl-C the node stops taking
//! shards, a leader hands leadership to another voter, the shards this
//! node runs for a master finish or are handed back, then shutdown begins.

use std::time::Duration;

use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use crate::pipeline::Master;
use crate::worker::Worker;

/// How long a stopping leader tries to hand leadership over.
const HAND_OVER_LIMIT: Duration = Duration::from_secs(6);

/// On the stop request: the node stops taking shards, a leader with
/// another voter hands leadership over (clients see a new master in ~2 s
/// instead of an election after a timeout), the shards this node encodes
/// for a master finish or are handed back (`--drain-timeout`), then the
/// node's shutdown begins.
pub async fn step_down_then_stop(
    worker: Arc<Worker>,
    master: Arc<Master>,
    stop: CancellationToken,
) {
    let ctx = &master.sys;
    tokio::select! {
        _ = stop.cancelled() => {}
        _ = ctx.shutdown.cancelled() => return,
    }
    worker.drain.begin();
    hand_over_leadership(&master).await;
    drain_shards(&worker).await;
    ctx.shutdown.cancel();
}

/// How often the drain looks whether it is done.
const DRAIN_POLL: Duration = Duration::from_millis(100);
/// How long handed-back shards get to tell their master.
const HAND_BACK_LIMIT: Duration = Duration::from_secs(3);

/// Waits until the shards this node runs for a master are done and
/// fetched, or `--drain-timeout` passes; then hands back what still runs.
async fn drain_shards(worker: &Worker) {
    let ctx = &worker.sys;
    let limit = Duration::from_secs_f64(ctx.config.drain_timeout.clamp(0.0, 86_400.0));
    let deadline = tokio::time::Instant::now() + limit;
    let is_drained = || {
        crate::worker::drain::drained(
            worker.tasks.running(),
            &worker.drain.unfetched(),
            std::time::Instant::now(),
        )
    };
    if !is_drained() {
        tracing::info!(
            running = worker.tasks.running(),
            unfetched = worker.drain.unfetched().len(),
            "draining: letting running shards finish for up to {limit:?}"
        );
    }
    while !is_drained() && tokio::time::Instant::now() < deadline {
        tokio::select! {
            _ = tokio::time::sleep(DRAIN_POLL) => {}
            _ = ctx.shutdown.cancelled() => return,
        }
    }
    let running = worker.tasks.running();
    if running == 0 {
        if !limit.is_zero() {
            tracing::info!("drained: every shard this node ran is finished and handed over");
        }
        return;
    }
    tracing::warn!(
        running,
        "drain timeout: handing the running shards back to their master"
    );
    worker.drain.hand_back();
    let until = tokio::time::Instant::now() + HAND_BACK_LIMIT;
    while worker.tasks.running() > 0 && tokio::time::Instant::now() < until {
        tokio::time::sleep(DRAIN_POLL).await;
    }
}

/// A leader with another live voter hands leadership over (best effort).
async fn hand_over_leadership(master: &Master) {
    let ctx = &master.sys;
    if !ctx.is_master() {
        return;
    }
    if let Ok(target) = ctx.handover_target(None) {
        let handing =
            crate::cluster::raft::transfer::hand_over(&ctx.consensus, &ctx.peers, &target);
        match tokio::time::timeout(HAND_OVER_LIMIT, handing).await {
            Ok(Ok(term)) => {
                tracing::info!(to = %target.info.name, term, "handed leadership over before stopping")
            }
            Ok(Err(why)) => {
                tracing::warn!(reason = %why, "could not hand leadership over; stopping anyway")
            }
            Err(_) => tracing::warn!("handing leadership over took too long; stopping anyway"),
        }
    }
}
