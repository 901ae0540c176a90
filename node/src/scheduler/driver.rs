//! Encoding one job's shards across the cluster: a loop that builds the
//! views `decide` needs (shards, live workers with free slots and
//! scores), applies its decisions (start/cancel copies, fail the job) and
//! records results. Woken by finished copies, membership changes and a
//! short tick for progress. A worker whose result is rejected as not the
//! source is hidden from `decide` for the rest of the job (`trust`).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::mpsc::UnboundedReceiver;
use tokio::task::JoinSet;

use super::Scheduler;
use super::decide::{CopyView, Decision, Policy, ShardView, WorkerView, decide};
use super::fair::{Claim, ClaimGuard, cap_free_slots};
use super::launch::{CopyResult, Launch};
use super::runs::{
    JobTasks, RunningCopy, ShardRun, assign, record_done, record_failure, record_running_on,
    record_start,
};
use super::trust::Untrusted;
use crate::cluster::Protocol;
use crate::jobs::{JobStatus, JobStop, ShardState};
use crate::media::EncodeSpec;
use crate::store::BlobRef;

const TICK: Duration = Duration::from_millis(500);

/// Live workers as the scheduler sees them: this node plus every live
/// vidshard member, with free slots counted across all jobs, and whether
/// each can encode shards of `spec`.
fn worker_views(
    sched: &Arc<Scheduler>,
    spec: &EncodeSpec,
) -> (Vec<WorkerView>, HashMap<String, (String, Protocol)>, u32) {
    let mut live_slots = sched.worker.slots_total;
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
        bundles: true,
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
        if m.alive {
            live_slots += m.slots_total;
        }
        views.push(WorkerView {
            id: m.node_id.clone(),
            alive: m.alive,
            free_slots: m.slots_total.saturating_sub(busy),
            score: m.load.score,
            able: m.abilities.missing_for(spec).is_empty(),
            // `RunShard` carries one task (`launch::Launch::takes_riders`).
            bundles: false,
        });
        addresses.insert(m.node_id.clone(), (m.address.clone(), m.protocol));
    }
    (views, addresses, live_slots)
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
            group: run.group,
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
    let mut running: JoinSet<Vec<CopyResult>> = JoinSet::new();
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
async fn abandon(sched: &Arc<Scheduler>, mut running: JoinSet<Vec<CopyResult>>) {
    running.abort_all();
    while let Some(joined) = running.join_next().await {
        if let Ok(results) = joined {
            abandon_results(sched, results).await;
        }
    }
}

/// Throws away the stored results among `results` (see [`abandon`]).
async fn abandon_results(sched: &Arc<Scheduler>, results: impl IntoIterator<Item = CopyResult>) {
    for (_, _, _, _, result, _slot) in results {
        let Ok(outcome) = result else { continue };
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
    running: &mut JoinSet<Vec<CopyResult>>,
) -> Result<(), JobStop> {
    let (frames, already_done, task_specs, measure_quality, groups, created_ms, weight) = {
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
        // A rung encoded to a quality target probes CRFs on its own.
        let groups: Vec<Option<u32>> = job
            .shards
            .iter()
            .zip(&task_specs)
            .map(|(s, spec)| {
                s.rung
                    .filter(|_| spec.quality_target.is_none())
                    .map(|r| r.piece)
            })
            .collect();
        (
            frames,
            done,
            task_specs,
            measure,
            groups,
            job.created_unix_ms,
            job.params.priority,
        )
    };
    let spec = specs
        .first()
        .ok_or_else(|| JobStop::failed(JobStatus::Error, "no encode spec"))?;
    let mut sources: Vec<Option<BlobRef>> = vec![None; frames.len()];
    let mut splitting = true;
    let mut runs: Vec<ShardRun> = already_done
        .iter()
        .zip(&groups)
        .map(|(done, group)| ShardRun {
            done: *done,
            group: *group,
            ..Default::default()
        })
        .collect();
    let mut seconds_per_frame: Option<f64> = None;
    let policy = Policy::default();
    let _claim = ClaimGuard {
        claims: sched.claims.clone(),
        job: id.to_string(),
    };
    let mut untrusted = Untrusted::default();
    loop {
        let (mut workers, addresses, live_slots) = worker_views(sched, spec);
        untrusted.hide(&mut workers);
        // This job's fair share of the slots (`fair`): it starts copies
        // only while it holds fewer.
        let wants = runs
            .iter()
            .zip(&sources)
            .filter(|(r, source)| !r.done && (source.is_some() || !r.copies.is_empty()))
            .count() as u32;
        let claim = Claim {
            job: id.to_string(),
            wants,
            weight,
            created_ms,
        };
        let share = sched.claims.share(claim, live_slots);
        cap_free_slots(
            &mut workers,
            share.saturating_sub(sched.board.held_by_job(id)),
        );
        let mut launches: Vec<(Launch, bool)> = Vec::new();
        for decision in decide(
            &shard_views(sched, &runs, &frames, &sources),
            &workers,
            seconds_per_frame,
            policy,
        ) {
            let job = JobTasks {
                id,
                specs: &task_specs,
                frames: &frames,
                sources: &sources,
                measure_quality,
            };
            match decision {
                Decision::Start {
                    shard,
                    worker,
                    duplicate,
                } => {
                    let address = addresses
                        .get(&worker)
                        .cloned()
                        .unwrap_or((String::new(), Protocol::Vidshard));
                    let member =
                        assign(sched, &job, shard, &worker, &address.0, false, duplicate).await?;
                    launches.push((
                        Launch {
                            worker,
                            address,
                            members: vec![member],
                        },
                        duplicate,
                    ));
                }
                Decision::Ride {
                    shard,
                    worker,
                    with,
                } => {
                    let local = sched.sys.node_id.clone();
                    let leader = launches.iter_mut().find(|(l, _)| {
                        l.worker == worker
                            && l.takes_riders(&local)
                            && l.members.first().is_some_and(|m| m.req.shard_index == with)
                    });
                    let address = addresses
                        .get(&worker)
                        .cloned()
                        .unwrap_or((String::new(), Protocol::Vidshard));
                    match leader {
                        Some((launch, _)) => {
                            let member =
                                assign(sched, &job, shard, &worker, &address.0, true, false)
                                    .await?;
                            launch.members.push(member);
                        }
                        None => {
                            // No bundle to join: a copy of its own.
                            let member =
                                assign(sched, &job, shard, &worker, &address.0, false, false)
                                    .await?;
                            let members = vec![member];
                            launches.push((
                                Launch {
                                    worker,
                                    address,
                                    members,
                                },
                                false,
                            ));
                        }
                    }
                }
                Decision::Cancel { shard, worker } => {
                    // A bundle's task is shared by its rungs: it stops only
                    // when none of them wants it any more.
                    let shared: Vec<tokio::task::Id> = runs
                        .iter()
                        .enumerate()
                        .filter(|(i, _)| *i != shard as usize)
                        .flat_map(|(_, r)| r.copies.iter().map(|c| c.abort.id()))
                        .collect();
                    let run = &mut runs[shard as usize];
                    run.copies.retain(|c| {
                        let keep = c.worker_id != worker;
                        if !keep {
                            if !shared.contains(&c.abort.id()) {
                                c.abort.abort();
                            }
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
        for (launch, duplicate) in launches {
            let worker = launch.worker.clone();
            let tasks: Vec<(u32, String)> = launch
                .members
                .iter()
                .map(|m| (m.req.shard_index, m.req.task_id.clone()))
                .collect();
            let abort = running.spawn(launch.run(sched.clone()));
            for (shard, task_id) in tasks {
                runs[shard as usize].copies.push(RunningCopy {
                    worker_id: worker.clone(),
                    task_id,
                    started: Instant::now(),
                    abort: abort.clone(),
                });
                record_start(sched, id, shard, duplicate, &runs[shard as usize]);
            }
        }
        if runs.iter().all(|r| r.done) {
            return Ok(());
        }
        tokio::select! {
            Some(joined) = running.join_next() => {
                let Ok(results) = joined else { continue };
                let mut results = results.into_iter();
                while let Some((shard, worker, task_id, took, result, _slot)) = results.next() {
                    let handled: Result<(), JobStop> = async {
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
                        Ok(())
                    }
                    .await;
                    if let Err(stop) = handled {
                        // The rest of a bundle's results go unread.
                        abandon_results(sched, results).await;
                        return Err(stop);
                    }
                }
            }
            arrived = arrivals.recv(), if splitting => match arrived {
                Some(first) => {
                    // Everything already sent is read before deciding: the
                    // rungs of a piece arrive together and may be bundled.
                    let mut next = Some(first);
                    while let Some((index, blob)) = next {
                        if let Some(slot) = sources.get_mut(index as usize) {
                            *slot = Some(blob);
                        }
                        next = arrivals.try_recv().ok();
                    }
                }
                None => splitting = false,
            },
            _ = sched.sys.membership.changed().notified() => {}
            _ = sched.board.slot_freed() => {}
            _ = tokio::time::sleep(TICK) => {}
        }
    }
}
