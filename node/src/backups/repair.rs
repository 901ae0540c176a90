//! The leader's backup loop: every finished output is copied to the
//! wanted number of live nodes (after completion, and again whenever a
//! holder dies or loses its copy), and losses reported by nodes' scrubs
//! are recorded. Woken at once by a completed job or a reported loss,
//! otherwise every few seconds.

use std::time::Duration;

use super::plan;
use crate::cluster::{Protocol, blobs};
use std::sync::Arc;

use super::Backups;
use crate::cluster::Sys;
use crate::jobs::{Command, JobStatus, now_unix_ms};
use crate::store::BlobRef;

const EVERY: Duration = Duration::from_secs(3);

/// One job whose output may need copies.
struct Output {
    job: String,
    blob: BlobRef,
    holders: Vec<String>,
}

/// Live vidshard nodes other than the leader: (id, address, score).
fn live_others(sys: &Sys) -> Vec<(String, String, f32)> {
    sys.membership
        .lock()
        .members()
        .filter(|m| m.alive && m.protocol == Protocol::Vidshard && m.node_id != sys.node_id)
        .map(|m| (m.node_id.clone(), m.address.clone(), m.load.score))
        .collect()
}

pub async fn run(backups: Arc<Backups>) {
    let sys = &backups.sys;
    loop {
        tokio::select! {
            _ = sys.shutdown.cancelled() => return,
            _ = backups.woken() => {}
            _ = tokio::time::sleep(EVERY) => {}
        }
        if sys.is_master() {
            record_losses(&backups).await;
            replicate_all(sys).await;
            expire_jobs(sys).await;
        }
    }
}

/// Records the losses nodes reported (their heartbeats, or this node's
/// own scrub) as `BlobLost` commands.
async fn record_losses(backups: &Backups) {
    let sys = &backups.sys;
    let reported = backups.take_reported();
    for (node, sha256) in reported {
        tracing::warn!(%node, blob = %sha256, "a node lost its copy of a blob; replacing it");
        let command = Command::BlobLost {
            sha256: sha256.clone(),
            node: node.clone(),
            at_ms: now_unix_ms(),
        };
        if sys.consensus.write(command).await.is_err() {
            // Not recorded (no longer leading?): keep it for the next try.
            backups.keep_reported(node, sha256);
        }
    }
}

async fn replicate_all(sys: &Sys) {
    let outputs: Vec<Output> = sys
        .jobs
        .lock()
        .list()
        .iter()
        .filter(|j| j.status == JobStatus::Completed)
        .filter_map(|j| {
            Some(Output {
                job: j.id.clone(),
                blob: j.output.clone()?,
                holders: j.output_holders.clone(),
            })
        })
        .collect();
    for output in outputs {
        if !sys.is_master() || sys.shutdown.is_cancelled() {
            return;
        }
        replicate(sys, output).await;
    }
}

/// Deletes failed jobs older than `--keep-sources` (their sources go
/// then too) and, with `--keep-jobs`, completed jobs that old (outputs
/// and all): the job table, listings and snapshots stay bounded.
async fn expire_jobs(sys: &Sys) {
    let keep_ms = super::discard::keep_sources_ms(sys);
    let keep_jobs = sys.config.keep_jobs;
    let keep_completed = (keep_jobs > 0.0).then_some((keep_jobs * 86_400_000.0) as u64);
    let expired = {
        let jobs = sys.jobs.lock();
        plan::expired_jobs(jobs.iter(), now_unix_ms(), keep_ms, keep_completed)
    };
    for job in expired {
        if !sys.is_master() || sys.shutdown.is_cancelled() {
            return;
        }
        let command = Command::Delete {
            job: job.clone(),
            at_ms: now_unix_ms(),
        };
        match sys.consensus.write(command).await {
            Ok(_) => {
                tracing::info!(%job, "forgot an ended job older than --keep-sources (failed) or --keep-jobs (completed)")
            }
            Err(e) => {
                tracing::warn!(%job, error = %e, "could not forget an ended job");
                return;
            }
        }
    }
}

/// Brings one output up to the wanted number of live copies.
async fn replicate(sys: &Sys, output: Output) {
    let live = live_others(sys);
    let wanted = plan::wanted(sys.config.backup_replicas, live.len());
    let candidates = plan::rank_candidates(&live, &sys.config.backup_servers);
    let is_live = |id: &str| live.iter().any(|(n, _, _)| n == id);
    let targets = plan::copies_to_make(&output.holders, is_live, &sys.node_id, &candidates, wanted);
    if targets.is_empty() {
        return;
    }
    // Sent from here: a new master first fetches the copy it lacks.
    if let Err(why) = blobs::ensure_local(sys, &output.blob, &output.holders).await {
        tracing::warn!(job = %output.job, reason = %why, "cannot replicate the output: no copy reachable");
        return;
    }
    let mut holders = output.holders.clone();
    if !holders.contains(&sys.node_id) {
        holders.insert(0, sys.node_id.clone());
    }
    set_pending(sys, &output.job, &targets);
    for target in &targets {
        let Some(address) = live
            .iter()
            .find(|(n, _, _)| n == target)
            .map(|(_, a, _)| a.clone())
        else {
            continue;
        };
        let purpose = format!("output of job {}", output.job);
        let started = std::time::Instant::now();
        match blobs::push(sys, &address, &output.blob, &purpose).await {
            Ok(()) => {
                let seconds = started.elapsed().as_secs_f64();
                let mb_s = output.blob.size as f64 / 1e6 / seconds.max(1e-6);
                tracing::info!(job = %output.job, to = %target, seconds, mb_s, "output copied to a backup node");
                holders.push(target.clone());
            }
            Err(e) => {
                tracing::warn!(job = %output.job, to = %target, error = %e, "copying the output failed")
            }
        }
    }
    set_pending(sys, &output.job, &[]);
    if holders != output.holders {
        let command = Command::OutputHolders {
            job: output.job.clone(),
            holders,
            at_ms: now_unix_ms(),
        };
        if let Err(e) = sys.consensus.write(command).await {
            tracing::warn!(job = %output.job, error = %e, "could not record the output's holders");
        }
    }
}

fn set_pending(sys: &Sys, job: &str, nodes: &[String]) {
    sys.jobs
        .lock()
        .edit(job, |j| j.output_pending = nodes.to_vec());
}
