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

async fn stages(ctx: &Ctx, id: &str, scratch: &Scratch) -> Result<u64, Failure> {
    let mut clock = Instant::now();
    let mut lap = |set: fn(&mut crate::jobs::StageTimes, f64)| {
        let seconds = clock.elapsed().as_secs_f64();
        clock = Instant::now();
        ctx.jobs
            .lock()
            .update(id, |job| set(&mut job.timings, seconds));
    };
    let prepared = split::probe_and_split(ctx, id, scratch.path()).await?;
    lap(|t, s| t.probe_split = s);
    let audio = join::start_audio(ctx, &prepared, scratch.path());
    crate::scheduler::driver::encode_all(ctx, id, &prepared.spec).await?;
    lap(|t, s| t.encode_stage = s);
    let frames = join::join_and_store(ctx, id, &prepared, audio, scratch.path()).await?;
    lap(|t, s| t.join = s);
    Ok(frames)
}
