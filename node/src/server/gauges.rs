//! The metrics gauges, sampled from the assembled node every second
//! (jobs by state, nodes alive, term, encode fps, Raft lag, output copies
//! missing); term changes between samples are counted as elections.

use std::time::Duration;

use std::sync::Arc;

use crate::metrics::GaugeSample;
use crate::pipeline::Master;
use crate::worker::Worker;

/// How often the gauges are recomputed.
const GAUGE_PERIOD: Duration = Duration::from_secs(1);

/// What the gauges show now.
pub fn sample(worker: &Worker, master: &Master) -> GaugeSample {
    let ctx = &master.sys;
    let others = ctx.other_live_nodes();
    let is_master = ctx.is_master();
    let wanted = crate::backups::plan::wanted(ctx.config.backup_replicas, others);
    let (job_states, backup_copies_missing) = {
        let table = ctx.jobs.lock();
        let jobs = table.list();
        let missing = if is_master {
            jobs.iter()
                .filter(|job| job.output.is_some())
                .map(|job| wanted.saturating_sub(job.output_holders.len()))
                .sum()
        } else {
            0
        };
        (jobs.iter().map(|job| job.status).collect(), missing)
    };
    GaugeSample {
        job_states,
        nodes_alive: others + 1,
        term: ctx.term(),
        node_fps: worker.tasks.total_fps(),
        cluster_fps: master.scheduler.board.total_fps(),
        raft_lag: ctx.consensus.replication_lag(),
        backup_copies_missing,
    }
}

/// Refreshes the gauges every second until shutdown.
pub async fn run(worker: Arc<Worker>, master: Arc<Master>) {
    let ctx = &master.sys;
    let mut tick = tokio::time::interval(GAUGE_PERIOD);
    let mut term = ctx.term();
    crate::metrics::elections(0);
    loop {
        tokio::select! {
            _ = tick.tick() => {
                crate::metrics::set_gauges(&sample(&worker, &master));
                let now = ctx.term();
                if now > term {
                    crate::metrics::elections(now - term);
                    term = now;
                }
            }
            _ = ctx.shutdown.cancelled() => return,
        }
    }
}
