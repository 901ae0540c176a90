//! The master: [`Master`] is the handle of what a leading node does. It
//! takes uploads (`intake`, judged by the pure `upload_check`), hears the
//! workers' heartbeats, and drives each job: probe and split the source,
//! encode every shard (through the scheduler), join them with the audio,
//! verify, and store the output. Each stage is its own file; the
//! decisions in them are pure functions.
//! Every durable step is a Raft command, so a new master resumes a job
//! where the old one left it.

pub mod admission;
pub mod intake;
mod join;
mod joiner;
mod ladder_plan;
mod leadership;
mod master;
mod packager;
mod resume;
mod split;
mod upload_check;

use std::time::Instant;

use tokio_util::sync::CancellationToken;

use crate::jobs::{Command, JobStatus, JobStop, now_unix_ms};
use crate::store::Scratch;
pub use join::check_output;
pub use leadership::{Leadership, run as run_leadership};
pub use master::{DeleteError, HeartbeatRefusal, Master, WorkerReport};
use std::sync::Arc;

/// Runs job `id` to completion or failure while this node leads (`lead`),
/// recording every durable step in the Raft log. Never panics on bad
/// input: every failure becomes a status.
pub async fn run_job(master: Arc<Master>, id: String, lead: CancellationToken) {
    // Another driver may hold the job: one of an earlier term of this
    // node's, still stopping (its token is cancelled), or one of this term
    // (an upload accepted as leadership began). Waiting for it to let go,
    // instead of leaving, keeps a node that lost and quickly regained
    // leadership from leaving the job to nobody.
    let _driving = loop {
        if let Some(driving) = master.leadership.claim(&id) {
            break driving;
        }
        tokio::select! {
            _ = lead.cancelled() => return,
            _ = tokio::time::sleep(std::time::Duration::from_millis(200)) => {}
        }
    };
    // A pause while this node still leads (a write that found no quorum)
    // is retried after a moment; a lost leadership ends it here.
    let mut transient_retries = 0;
    while !lead.is_cancelled() {
        let may_retry = transient_retries < TRANSIENT_RETRIES;
        match attempt(&master, &id, &lead, may_retry).await {
            Ended::Done => return,
            Ended::Paused => {}
            Ended::Transient => {
                transient_retries += 1;
                wait_for_free_space(&master, &lead).await;
            }
        }
        tokio::select! {
            _ = lead.cancelled() => return,
            _ = tokio::time::sleep(std::time::Duration::from_secs(2)) => {}
        }
        tracing::info!(job = %id, "trying the paused job again");
    }
}

/// Failures a job gets run again for, at most (see [`transient`]).
const TRANSIENT_RETRIES: u32 = 2;

/// How one run of a job ended.
enum Ended {
    /// Completed, failed for good, or no longer ours: nothing more to do.
    Done,
    /// Paused (no quorum, lost leadership): try again in a moment.
    Paused,
    /// Failed in a way another run may not (see [`transient`]).
    Transient,
}

/// Whether a failure may pass on its own (pure): a full data dir (freed
/// by the operator or by other jobs ending) or a join whose output failed
/// its check (a join cut short, e.g. by a disk that filled for a moment).
/// The shards stay, so another run only joins again.
pub fn transient(status: JobStatus, reason: &str) -> bool {
    crate::store::names_full_disk(reason) || status == JobStatus::ConcatenationFailed
}

/// Waits (at most a minute, or until leadership ends) until the data dir
/// has some room again: 64 MiB or a tenth of it, whichever is less.
async fn wait_for_free_space(master: &Arc<Master>, lead: &CancellationToken) {
    let deadline = Instant::now() + std::time::Duration::from_secs(60);
    while Instant::now() < deadline && !lead.is_cancelled() {
        match crate::legacy::backups::disk::space_of(master.sys.store.root()).await {
            Ok(space) if space.free < (64 << 20).min(space.total / 10) => {}
            _ => return,
        }
        tokio::select! {
            _ = lead.cancelled() => return,
            _ = tokio::time::sleep(std::time::Duration::from_millis(500)) => {}
        }
    }
}

/// One run of the job. A failure `transient` says may pass is not
/// recorded while `may_retry`: the caller runs the job again.
async fn attempt(
    master: &Arc<Master>,
    id: &str,
    lead: &CancellationToken,
    may_retry: bool,
) -> Ended {
    let (master, id) = (master.clone(), id.to_string());
    let ended = master
        .sys
        .jobs
        .lock()
        .get(&id)
        .is_none_or(|job| job.status.is_final());
    if ended {
        // A write that timed out may still have been committed.
        return Ended::Done;
    }
    let (priority, created_ms) = master
        .sys
        .jobs
        .lock()
        .get(&id)
        .map_or((0, 0), |job| (job.params.priority, job.created_unix_ms));
    let gone = || {
        master
            .sys
            .jobs
            .lock()
            .get(&id)
            .is_none_or(|job| job.status.is_final())
    };
    let limit = || admission::active_limit(split::live_slots(&master) as usize);
    let Some(_turn) = master
        .admission
        .turn(&id, priority, created_ms, limit, gone, lead)
        .await
    else {
        return if lead.is_cancelled() {
            Ended::Paused
        } else {
            Ended::Done
        };
    };
    let started = Instant::now();
    crate::metrics::upload_bytes(master.sys.jobs.lock().get(&id).map_or(0, |j| j.source.size));
    let outcome = match Scratch::create(&master.sys.store.tmp_dir(), &id).await {
        Ok(scratch) => {
            let outcome = tokio::select! {
                outcome = stages(&master, &id, &scratch, started) => outcome,
                _ = lead.cancelled() => Err(JobStop::paused("this node stopped leading or is stopping")),
            };
            scratch.remove().await;
            outcome
        }
        Err(e) if crate::store::is_disk_full(&e) => Err(JobStop::failed(
            JobStatus::Error,
            format!(
                "{} {}: cannot create a work directory",
                crate::store::DISK_FULL,
                master.sys.store.root().display()
            ),
        )),
        Err(e) => Err(JobStop::failed(
            JobStatus::Error,
            format!("cannot create a work directory: {e}"),
        )),
    };
    match outcome {
        Ok(()) => master.backups.wake(),
        Err(JobStop::Paused(reason)) => {
            tracing::info!(job = %id, %reason, "job paused here");
            return Ended::Paused;
        }
        Err(JobStop::Failed { status, reason }) if may_retry && transient(status, &reason) => {
            let reason = master.sys.store.redact(&reason);
            tracing::warn!(job = %id, status = status.as_str(), message = %reason, "job failed in a way that may pass: running it again");
            return Ended::Transient;
        }
        Err(JobStop::Failed { status, reason }) => {
            let reason = master.sys.store.redact(&reason);
            tracing::warn!(job = %id, status = status.as_str(), message = %reason, "job failed");
            if crate::store::names_full_disk(&reason) {
                // Free the job's shards before recording the failure: the
                // Raft log lives on the same full disk. (Should the record
                // still fail, a resumed run re-encodes what is missing.)
                split::remove_intermediates(&master, &id).await;
            }
            if let Err(e) = master
                .sys
                .consensus
                .record_status(&id, status, reason)
                .await
            {
                tracing::warn!(job = %id, reason = %e.reason(), "could not record the failure");
                return Ended::Paused;
            }
        }
    }
    split::remove_intermediates(&master, &id).await;
    Ended::Done
}

/// Aborts a background task when dropped (a finished one is unaffected);
/// its ffmpeg is killed with it (`kill_on_drop`).
struct AbortOnDrop(tokio::task::AbortHandle);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Runs the stages, recording their wall times: probe+split (from the
/// start until the last shard is stored), encode (from the plan until the
/// last shard is encoded; overlaps the split) and join (from then until
/// the output is checked and stored; the join itself runs from the plan
/// on, fed each shard as it is encoded).
async fn stages(
    master: &Arc<Master>,
    id: &str,
    scratch: &Scratch,
    started: Instant,
) -> Result<(), JobStop> {
    let record = |set: fn(&mut crate::jobs::StageTimes, f64), since: Instant| {
        let seconds = since.elapsed().as_secs_f64();
        master
            .sys
            .jobs
            .lock()
            .update(id, |job| set(&mut job.timings, seconds));
    };
    resume::ensure_source(&master.sys, id).await?;
    let (prepared, plan) = split::probe_and_plan(master, id).await?;
    resume::gather_encoded(&master.sys, id).await?;
    let planned = Instant::now();
    let encoded = CancellationToken::new();
    let (joiner, _stop_side) = if prepared.is_ladder() {
        // The packager publishes each rung's segments as they are
        // encoded and makes the single file at the end.
        let packager = packager::start(&master.sys, id, &prepared, scratch.path(), encoded.clone());
        (packager, None)
    } else {
        let side = join::start_side_tracks(&master.sys, &prepared, scratch.path());
        // If a stage fails (or the job pauses) before the join awaits
        // the audio, its ffmpeg must stop too, not keep writing into a
        // scratch dir that is being removed (on a full disk, the space
        // is wanted).
        let stop_side = AbortOnDrop(side.abort_handle());
        // The join starts now and is fed each shard as it is encoded,
        // so little of it is left once the last one is.
        let joiner = joiner::start(
            &master.sys,
            id,
            &prepared,
            side,
            scratch.path(),
            encoded.clone(),
        );
        (joiner, Some(stop_side))
    };
    let _stop_join = AbortOnDrop(joiner.abort_handle());
    let (ready, arrivals) = tokio::sync::mpsc::unbounded_channel();
    let splitting = async {
        split::split_into_store(master, id, &prepared, &plan, scratch.path(), ready).await?;
        record(|t, s| t.probe_split = s, started);
        Ok::<(), JobStop>(())
    };
    let specs = prepared.task_specs();
    let encoding = crate::scheduler::driver::encode_all(&master.scheduler, id, &specs, arrivals);
    tokio::try_join!(splitting, encoding)?;
    encoded.cancel();
    record(|t, s| t.encode_stage = s, planned);
    let joining = Instant::now();
    let (output, frames) =
        join::join_and_store(&master.sys, id, &prepared, joiner, scratch.path()).await?;
    record(|t, s| t.join = s, joining);
    let seconds = started.elapsed().as_secs_f64();
    let mut timings = master
        .sys
        .jobs
        .lock()
        .get(id)
        .map(|j| j.timings)
        .unwrap_or_default();
    timings.total = seconds;
    tracing::info!(job = %id, frames, seconds, "job completed");
    master
        .sys
        .consensus
        .record(Command::Complete {
            job: id.to_string(),
            output,
            frames,
            holders: vec![master.sys.node_id.clone()],
            timings,
            message: completion_message(frames, seconds, &prepared.tracks.dropped),
            at_ms: now_unix_ms(),
        })
        .await
}

/// The message of a completed job: frames and time, then every track the
/// output could not carry (pure).
fn completion_message(frames: u64, seconds: f64, dropped: &[String]) -> String {
    let mut message = format!("done: {frames} frames in {seconds:.1} s");
    for why in dropped {
        message.push_str("; ");
        message.push_str(why);
    }
    message
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_full_disk_or_a_join_cut_short_is_run_again() {
        let full = format!("{} /var/lib/vidshard", crate::store::DISK_FULL);
        assert!(transient(JobStatus::ProcessingFailed, &full));
        assert!(transient(
            JobStatus::ConcatenationFailed,
            "output has 97 frames, the source 360"
        ));
        assert!(!transient(
            JobStatus::FailedSegmentation,
            "not a usable video"
        ));
        assert!(!transient(
            JobStatus::ProcessingFailed,
            "shard 2 failed 3 times"
        ));
    }
}
