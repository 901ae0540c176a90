//! The master's job driver: probe and split the source, encode every
//! shard, join them with the audio, verify, and store the output. Each
//! stage is its own file; the decisions in them are pure functions.

mod join;
mod scratch;
mod split;

use std::time::Instant;

use crate::context::Ctx;
use crate::jobs::JobStatus;
pub use join::check_output;
pub use scratch::Scratch;

/// Why a job stopped, with the status the original client understands.
pub struct Failure {
    pub status: JobStatus,
    pub message: String,
}

impl Failure {
    pub fn new(status: JobStatus, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
        }
    }
}

/// Runs job `id` to completion or failure, recording every step in the
/// job table. Never panics on bad input: every failure becomes a status.
pub async fn run_job(ctx: Ctx, id: String) {
    let started = Instant::now();
    crate::metrics::upload_bytes(ctx.jobs.lock().get(&id).map_or(0, |j| j.source.size));
    let scratch = match Scratch::create(&ctx.store.tmp_dir(), &id).await {
        Ok(s) => s,
        Err(e) => {
            ctx.jobs.lock().set_status(
                &id,
                JobStatus::Error,
                format!("cannot create a work directory: {e}"),
            );
            return;
        }
    };
    let outcome = tokio::select! {
        outcome = stages(&ctx, &id, &scratch) => outcome,
        _ = ctx.shutdown.cancelled() => Err(Failure::new(JobStatus::Error, "node shut down while the job was running")),
    };
    match outcome {
        Ok(frames) => {
            let seconds = started.elapsed().as_secs_f64();
            ctx.jobs
                .lock()
                .update(&id, |job| job.timings.total = seconds);
            tracing::info!(job = %id, frames, seconds, "job completed");
            ctx.jobs.lock().set_status(
                &id,
                JobStatus::Completed,
                format!("done: {frames} frames in {seconds:.1} s"),
            );
        }
        Err(failure) => {
            tracing::warn!(job = %id, status = failure.status.as_str(), message = %failure.message, "job failed");
            ctx.jobs
                .lock()
                .set_status(&id, failure.status, failure.message);
        }
    }
    split::remove_intermediates(&ctx, &id).await;
    scratch.remove().await;
}

/// Runs the stages, recording their wall times: probe+split (from the
/// start until the last shard is stored), encode (from the plan until the
/// last shard is encoded; overlaps the split) and join.
async fn stages(ctx: &Ctx, id: &str, scratch: &Scratch) -> Result<u64, Failure> {
    let record = |set: fn(&mut crate::jobs::StageTimes, f64), since: Instant| {
        let seconds = since.elapsed().as_secs_f64();
        ctx.jobs
            .lock()
            .update(id, |job| set(&mut job.timings, seconds));
    };
    let started = Instant::now();
    let (prepared, plan) = split::probe_and_plan(ctx, id).await?;
    let planned = Instant::now();
    let audio = join::start_audio(ctx, &prepared, scratch.path());
    let (ready, arrivals) = tokio::sync::mpsc::unbounded_channel();
    let splitting = async {
        split::split_into_store(ctx, id, &prepared, &plan, scratch.path(), ready).await?;
        record(|t, s| t.probe_split = s, started);
        Ok::<(), Failure>(())
    };
    let encoding = crate::scheduler::driver::encode_all(ctx, id, &prepared.spec, arrivals);
    tokio::try_join!(splitting, encoding)?;
    record(|t, s| t.encode_stage = s, planned);
    let joining = Instant::now();
    let frames = join::join_and_store(ctx, id, &prepared, audio, scratch.path()).await?;
    record(|t, s| t.join = s, joining);
    Ok(frames)
}
