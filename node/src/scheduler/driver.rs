//! Encoding one job's shards across the cluster: a loop that builds the
//! views `decide` needs (shards, live workers with free slots and
//! scores), applies its decisions (start/cancel copies, fail the job) and
//! records results. Woken by finished copies, membership changes and a
//! short tick for progress. A worker whose result is rejected as not the
//! source is hidden from `decide` for the rest of the job (`trust`).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use tokio::sync::mpsc::UnboundedReceiver;
use tokio::task::{AbortHandle, JoinSet};

use super::board::{TaskEntry, TaskGuard};
use super::decide::{CopyView, Decision, Policy, ShardView, WorkerView, decide};
use super::dispatch::{run_local, run_remote};
use super::trust::Untrusted;
use crate::cluster::Protocol;
use crate::legacy::original_worker::run_original;
use crate::worker::copy::{CopyError, CopyOutcome, CopyRequest};
use std::sync::Arc;

use super::Scheduler;
use crate::jobs::JobStop;
use crate::jobs::{Command, JobStatus, ShardState, SharedJobs, now_unix_ms};
use crate::media::{EncodeSpec, Progress};
use crate::store::BlobRef;

const TICK: Duration = Duration::from_millis(500);

struct RunningCopy {
    worker_id: String,
    task_id: String,
    started: Instant,
    abort: AbortHandle,
}

#[derive(Default)]
struct ShardRun {
    done: bool,
    copies: Vec<RunningCopy>,
    failed_on: Vec<String>,
    last_error: String,
}

/// A copy's identity and result, with its place on the task board: the
/// worker's slot stays taken until the driver has handled the result, so
/// no decision in between sees a worker free whose result (perhaps a
/// rejected one) is still unread.
type CopyResult = (
    u32,
    String,
    String,
    Duration,
    Result<CopyOutcome, CopyError>,
    TaskGuard,
);

/// Records a copy's progress in the job table (the shard shows its most
/// advanced copy). Called for local encodes and for heartbeat reports.
pub fn apply_progress(jobs: &SharedJobs, entry: &TaskEntry) {
    jobs.lock().update(&entry.job_id, |job| {
        let Some(shard) = job.shards.get_mut(entry.shard as usize) else {
            return;
        };
        if shard.state == ShardState::Done {
            return;
        }
        shard.frames_done = shard
            .frames_done
            .max(entry.progress.frames.min(shard.frames));
        shard.fps = entry.progress.fps;
        if shard.frames_done >= shard.frames {
            shard.state = ShardState::Verifying;
        }
        let done = job.frames_done();
        job.eta.record(Instant::now(), done);
    });
}

/// Live workers as the scheduler sees them: this node plus every live
/// vidshard member, with free slots counted across all jobs, and whether
/// each can encode shards of `spec`.
fn worker_views(
    sched: &Arc<Scheduler>,
    spec: &EncodeSpec,
) -> (Vec<WorkerView>, HashMap<String, (String, Protocol)>) {
    let mut addresses = HashMap::new();
    let local_free = if sched.worker.drain.is_draining() {
        0
    } else {
        sched
            .worker
            .slots_total
            .saturating_sub(sched.board.assigned(&sched.sys.node_id))
    };
    let mut views = vec![WorkerView {
        id: sched.sys.node_id.clone(),
        alive: true,
        free_slots: local_free,
        score: sched.worker.score_report().score,
        able: sched.worker.abilities.missing_for(spec).is_empty(),
    }];
    addresses.insert(
        sched.sys.node_id.clone(),
        (sched.sys.address.clone(), Protocol::Vidshard),
    );
    for m in sched.sys.membership.lock().members() {
        if m.node_id == sched.sys.node_id {
            continue;
        }
        let busy = m.slots_busy.max(sched.board.assigned(&m.node_id));
        views.push(WorkerView {
            id: m.node_id.clone(),
            alive: m.alive,
            free_slots: m.slots_total.saturating_sub(busy),
            score: m.load.score,
            able: m.abilities.missing_for(spec).is_empty(),
        });
        addresses.insert(m.node_id.clone(), (m.address.clone(), m.protocol));
    }
    (views, addresses)
}

/// Views of the shards the splitter has delivered (the others do not
/// exist for the scheduler yet).
fn shard_views(
    sched: &Arc<Scheduler>,
    runs: &[ShardRun],
    frames: &[u64],
    sources: &[Option<BlobRef>],
) -> Vec<ShardView> {
    runs.iter()
        .enumerate()
        .filter(|(i, _)| sources[*i].is_some())
        .map(|(i, run)| ShardView {
            index: i as u32,
            frames: frames[i],
            done: run.done,
            running: run
                .copies
                .iter()
                .map(|c| CopyView {
                    worker: c.worker_id.clone(),
                    elapsed_seconds: c.started.elapsed().as_secs_f64(),
                    progress: if frames[i] == 0 {
                        0.0
                    } else {
                        sched.board.progress(&c.task_id).frames as f32 / frames[i] as f32
                    },
                })
                .collect(),
            failed_on: run.failed_on.clone(),
        })
        .collect()
}

/// Encodes every shard of job `id` somewhere in the cluster: shard `i`
/// with `specs[rung of i]` (a plain job has one spec, a ladder one per
/// rung). Shards become available as the splitter stores them
/// (`arrivals`); returns once every shard has a verified encoded result.
pub async fn encode_all(
    sched: &Arc<Scheduler>,
    id: &str,
    specs: &[EncodeSpec],
    arrivals: UnboundedReceiver<(u32, BlobRef)>,
) -> Result<(), JobStop> {
    let mut running: JoinSet<CopyResult> = JoinSet::new();
    let ended = drive(sched, id, specs, arrivals, &mut running).await;
    abandon(sched, running).await;
    ended
}

/// Stops the copies still running once the job needs no more of them
/// (all shards done, or the job failed) and throws away the results that
/// finished meanwhile but were never read: a copy that completed just as
/// the job failed (perhaps because the failure freed the disk it needed)
/// would otherwise leave an encoded shard no record names, kept as an
/// unknown blob for the collector's 10 minutes.
async fn abandon(sched: &Arc<Scheduler>, mut running: JoinSet<CopyResult>) {
    running.abort_all();
    while let Some(joined) = running.join_next().await {
        let Ok((_, _, _, _, Ok(outcome), _slot)) = joined else {
            continue;
        };
        let blob = outcome.blob.sha256.clone();
        // Unpinned first; `discard` keeps it if a job's record names it
        // (a late duplicate identical to the recorded result).
        drop(outcome);
        crate::backups::discard::discard(&sched.sys, &blob, None).await;
    }
}

/// The loop of [`encode_all`]; copies run in `running`.
async fn drive(
    sched: &Arc<Scheduler>,
    id: &str,
    specs: &[EncodeSpec],
    mut arrivals: UnboundedReceiver<(u32, BlobRef)>,
    running: &mut JoinSet<CopyResult>,
) -> Result<(), JobStop> {
    let (frames, already_done, task_specs, measure_quality) = {
        let jobs = sched.sys.jobs.lock();
        let job = jobs
            .get(id)
            .ok_or_else(|| JobStop::failed(JobStatus::Error, "job vanished"))?;
        let (frames, done) = job
            .shards
            .iter()
            .map(|s| (s.frames, s.state == ShardState::Done))
            .unzip();
        let frames: Vec<u64> = frames;
        let done: Vec<bool> = done;
        let task_specs: Option<Vec<EncodeSpec>> = job
            .shards
            .iter()
            .map(|s| specs.get(s.rung.map_or(0, |r| r.rung) as usize).cloned())
            .collect();
        let task_specs = task_specs
            .ok_or_else(|| JobStop::failed(JobStatus::Error, "a task names a rung not planned"))?;
        let measure = !job.params.skip_quality;
        (frames, done, task_specs, measure)
    };
    let spec = specs
        .first()
        .ok_or_else(|| JobStop::failed(JobStatus::Error, "no encode spec"))?;
    let mut sources: Vec<Option<BlobRef>> = vec![None; frames.len()];
    let mut splitting = true;
    let mut runs: Vec<ShardRun> = already_done
        .iter()
        .map(|done| ShardRun {
            done: *done,
            ..Default::default()
        })
        .collect();
    let mut seconds_per_frame: Option<f64> = None;
    let policy = Policy::default();
    let mut untrusted = Untrusted::default();
    loop {
        let (mut workers, addresses) = worker_views(sched, spec);
        untrusted.hide(&mut workers);
        for decision in decide(
            &shard_views(sched, &runs, &frames, &sources),
            &workers,
            seconds_per_frame,
            policy,
        ) {
            match decision {
                Decision::Start {
                    shard,
                    worker,
                    duplicate,
                } => {
                    let task_id = format!("{id}.{shard}.{}", uuid::Uuid::new_v4().simple());
                    let req = CopyRequest {
                        job_id: id.to_string(),
                        shard_index: shard,
                        task_id: task_id.clone(),
                        spec: task_specs[shard as usize].clone(),
                        expected_frames: frames[shard as usize],
                        source: sources[shard as usize].clone().unwrap_or(BlobRef {
                            sha256: String::new(),
                            size: 0,
                        }),
                        total_shards: frames.len() as u32,
                        measure_quality,
                    };
                    let (address, protocol) = addresses
                        .get(&worker)
                        .cloned()
                        .unwrap_or((String::new(), Protocol::Vidshard));
                    // Recorded before the worker hears of it: a master
                    // without a quorum hands out nothing.
                    let assigned = Command::ShardAssigned {
                        job: id.to_string(),
                        shard,
                        worker_id: worker.clone(),
                        worker: address.clone(),
                        at_ms: now_unix_ms(),
                    };
                    sched.sys.consensus.record(assigned).await?;
                    tracing::info!(job = %id, shard, %worker, %address, duplicate, "shard assigned");
                    // On the board before the next decision, which would
                    // otherwise see the worker's slot still free.
                    let slot = sched.board.register(&task_id, id, shard, &worker);
                    let abort = running.spawn(run_copy(
                        sched.clone(),
                        worker.clone(),
                        (address.clone(), protocol),
                        req,
                        slot,
                    ));
                    runs[shard as usize].copies.push(RunningCopy {
                        worker_id: worker.clone(),
                        task_id,
                        started: Instant::now(),
                        abort,
                    });
                    record_start(sched, id, shard, duplicate, &runs[shard as usize]);
                }
                Decision::Cancel { shard, worker } => {
                    let run = &mut runs[shard as usize];
                    run.copies.retain(|c| {
                        let keep = c.worker_id != worker;
                        if !keep {
                            c.abort.abort();
                            tracing::info!(job = %id, shard, %worker, "shard copy cancelled");
                        }
                        keep
                    });
                    if !run.done {
                        record_running_on(sched, id, shard, run);
                    }
                }
                Decision::FailJob { shard } => {
                    let run = &runs[shard as usize];
                    return Err(JobStop::failed(
                        JobStatus::ProcessingFailed,
                        format!(
                            "shard {shard} failed {} times (on {}); last error: {}",
                            run.failed_on.len(),
                            run.failed_on.join(", "),
                            run.last_error
                        ),
                    ));
                }
            }
        }
        if runs.iter().all(|r| r.done) {
            return Ok(());
        }
        tokio::select! {
            Some(joined) = running.join_next() => {
                let Ok((shard, worker, task_id, took, result, _slot)) = joined else { continue };
                let run = &mut runs[shard as usize];
                run.copies.retain(|c| c.task_id != task_id);
                match result {
                    Ok(outcome) if !run.done => {
                        run.done = true;
                        let spf = took.as_secs_f64() / frames[shard as usize].max(1) as f64;
                        seconds_per_frame = Some(seconds_per_frame.map_or(spf, |old| (old + spf) / 2.0));
                        tracing::info!(job = %id, shard, %worker, seconds = took.as_secs_f64(), "shard done");
                        crate::metrics::shard_encoded();
                        record_done(sched, id, shard, &worker, outcome).await?;
                    }
                    Ok(late) => {
                        // A slower duplicate: its result is not used.
                        let winner = sched.sys.jobs.lock().get(id).and_then(|j| j.shards[shard as usize].encoded.clone());
                        if winner.is_none_or(|w| w.sha256 != late.blob.sha256) {
                            let late_blob = late.blob.sha256.clone();
                            drop(late);
                            crate::backups::discard::discard(&sched.sys, &late_blob, None).await;
                        }
                    }
                    Err(error) if error.here_full && !run.done => {
                        // This node's disk, not the shard nor the worker:
                        // the job runs again once there is room.
                        tracing::warn!(job = %id, shard, %worker, error = %error.message, "no room for a shard's result on this node");
                        return Err(JobStop::failed(crate::jobs::JobStatus::Error, error.message));
                    }
                    Err(error) if error.source_missing => {
                        // Split again on the next try; no worker is to blame.
                        tracing::warn!(job = %id, shard, error = %error.message, "a shard's split is gone from this node's store");
                        return Err(JobStop::paused(format!("{}; the job is split again", error.message)));
                    }
                    Err(error) if error.rejected => {
                        tracing::warn!(job = %id, shard, %worker, error = %error.message, "result rejected: its frames are not the source; the worker gets no more shards of this job");
                        untrusted.mark(&worker);
                        crate::metrics::shard_failed();
                        if !run.done {
                            run.last_error = format!("{worker}: {}", error.message);
                            record_failure(sched, id, shard, &worker, run).await?;
                        }
                    }
                    Err(error) if !run.done && (error.worker_full || error.handed_back) => {
                        // No fault of the shard's: it runs elsewhere, and the
                        // worker gets no more until it reports room again.
                        let why = if error.worker_full {
                            "a worker's data dir is full"
                        } else {
                            "a stopping worker handed the shard back"
                        };
                        tracing::info!(job = %id, shard, %worker, error = %error.message, "{why}; running the shard elsewhere");
                        run.last_error = format!("{worker}: {}", error.message);
                        sched.sys.membership.mark_full(&worker);
                        record_failure(sched, id, shard, &worker, run).await?;
                    }
                    Err(error) if !run.done && error.worker_lost => {
                        tracing::warn!(job = %id, shard, %worker, error = %error.message, "lost the worker running a shard");
                        run.last_error = format!("{worker}: {}", error.message);
                        sched.sys.membership.mark_lost(&worker);
                        crate::metrics::shard_failed();
                        record_failure(sched, id, shard, &worker, run).await?;
                    }
                    Err(error) if !run.done => {
                        tracing::warn!(job = %id, shard, %worker, error = %error.message, "shard copy failed");
                        run.failed_on.push(worker.clone());
                        run.last_error = format!("{worker}: {}", error.message);
                        crate::metrics::shard_failed();
                        record_failure(sched, id, shard, &worker, run).await?;
                    }
                    Err(_) => {}
                }
            }
            arrived = arrivals.recv(), if splitting => match arrived {
                Some((index, blob)) => {
                    if let Some(slot) = sources.get_mut(index as usize) {
                        *slot = Some(blob);
                    }
                }
                None => splitting = false,
            },
            _ = sched.sys.membership.changed().notified() => {}
            _ = tokio::time::sleep(TICK) => {}
        }
    }
}

/// Runs one copy where `decide` put it; returns its identity with the result.
async fn run_copy(
    sched: Arc<Scheduler>,
    worker_id: String,
    (address, protocol): (String, Protocol),
    req: CopyRequest,
    slot: TaskGuard,
) -> CopyResult {
    let started = Instant::now();
    let result = if protocol == Protocol::Original {
        let board = &sched.board;
        let failed = || board.report_of(&req.task_id).as_deref() == Some("failed_processing");
        run_original(&sched.sys, &address, &req, failed).await
    } else if worker_id == sched.sys.node_id {
        let (progress_ctx, task_id) = (sched.clone(), req.task_id.clone());
        let on_progress = move |p: Progress| {
            if let Some(entry) = progress_ctx.board.report(&task_id, p) {
                apply_progress(&progress_ctx.sys.jobs, &entry);
            }
        };
        run_local(&sched.worker, &req, on_progress).await
    } else {
        run_remote(&sched.sys, &address, &req).await
    };
    (
        req.shard_index,
        worker_id,
        req.task_id,
        started.elapsed(),
        result,
        slot,
    )
}

/// The in-memory side of a start (which copies run where); the durable
/// side is the `ShardAssigned` command.
fn record_start(sched: &Arc<Scheduler>, id: &str, shard: u32, duplicate: bool, run: &ShardRun) {
    sched.sys.jobs.lock().update(id, |job| {
        let s = &mut job.shards[shard as usize];
        crate::metrics::shard_started(!duplicate && s.attempts > 0);
        if !duplicate {
            s.frames_done = 0;
        }
        s.running_on = run.copies.iter().map(|c| c.worker_id.clone()).collect();
    });
}

fn record_running_on(sched: &Arc<Scheduler>, id: &str, shard: u32, run: &ShardRun) {
    sched.sys.jobs.lock().update(id, |job| {
        let s = &mut job.shards[shard as usize];
        s.running_on = run.copies.iter().map(|c| c.worker_id.clone()).collect();
        if run.copies.is_empty() {
            s.state = ShardState::Queued;
        }
    });
}

/// Records a verified result: the worker that made it keeps a copy and
/// this node has one, so a new master can fetch it from either.
async fn record_done(
    sched: &Arc<Scheduler>,
    id: &str,
    shard: u32,
    worker: &str,
    outcome: CopyOutcome,
) -> Result<(), JobStop> {
    let address = crate::cluster::blobs::address_of(&sched.sys, worker).unwrap_or_default();
    let mut holders = vec![worker.to_string()];
    if worker != sched.sys.node_id {
        holders.push(sched.sys.node_id.clone());
    } else {
        // Encoded here: a copy elsewhere survives this node.
        let purpose = format!("encoded shard {shard} of job {id}");
        let (backups, _) =
            crate::cluster::blobs::replicate(&sched.sys, &outcome.blob, 1, &purpose).await;
        holders.extend(backups);
    }
    let command = Command::ShardDone {
        job: id.to_string(),
        shard,
        encoded: outcome.blob,
        worker_id: worker.to_string(),
        worker: address,
        holders,
        encode_seconds: outcome.encode_seconds,
        transfer_seconds: outcome.transfer_seconds,
        at_ms: now_unix_ms(),
        quality: outcome.quality.map(Box::new),
    };
    sched.sys.consensus.record(command).await?;
    sched.sys.jobs.lock().update(id, |job| {
        job.shards[shard as usize].running_on.clear();
        let done = job.frames_done();
        job.eta.record(Instant::now(), done);
    });
    Ok(())
}

async fn record_failure(
    sched: &Arc<Scheduler>,
    id: &str,
    shard: u32,
    worker: &str,
    run: &ShardRun,
) -> Result<(), JobStop> {
    if run.copies.is_empty() {
        let command = Command::ShardFailed {
            job: id.to_string(),
            shard,
            worker_id: worker.to_string(),
            message: run.last_error.clone(),
            at_ms: now_unix_ms(),
        };
        sched.sys.consensus.record(command).await?;
    }
    sched.sys.jobs.lock().update(id, |job| {
        let s = &mut job.shards[shard as usize];
        s.message = run.last_error.clone();
        s.running_on = run.copies.iter().map(|c| c.worker_id.clone()).collect();
    });
    Ok(())
}
