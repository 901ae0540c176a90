//! Stage 2: encode every shard, longest first, within this node's slots.
//! A failed shard is retried (up to [`MAX_ATTEMPTS`]); a shard that keeps
//! failing fails the job with the encoder's own words.

use std::path::{Path, PathBuf};
use std::time::Instant;

use tokio::task::JoinSet;

use super::Failure;
use super::split::Prepared;
use crate::context::Ctx;
use crate::jobs::{JobStatus, ShardState};
use crate::media::EncodeSpec;
use crate::worker::{self, ShardTask};

pub const MAX_ATTEMPTS: u32 = 3;

/// Shard indices in the order they should start: longest first, so the
/// last shard to finish is a short one (pure).
pub fn encode_order(durations: &[(u32, f64)]) -> Vec<u32> {
    let mut order = durations.to_vec();
    order.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    order.into_iter().map(|(i, _)| i).collect()
}

pub async fn encode_all(
    ctx: &Ctx,
    id: &str,
    prepared: &Prepared,
    scratch: &Path,
) -> Result<(), Failure> {
    let shards: Vec<(u32, f64)> = {
        let jobs = ctx.jobs.lock();
        let job = jobs
            .get(id)
            .ok_or_else(|| Failure::new(JobStatus::Error, "job vanished"))?;
        job.shards
            .iter()
            .map(|s| (s.index, s.duration_seconds))
            .collect()
    };
    let mut running = JoinSet::new();
    for index in encode_order(&shards) {
        let (ctx, id, spec, scratch) = (
            ctx.clone(),
            id.to_string(),
            prepared.spec.clone(),
            scratch.to_path_buf(),
        );
        running.spawn(async move { encode_one(ctx, id, index, spec, scratch).await });
    }
    while let Some(joined) = running.join_next().await {
        match joined {
            Ok(Ok(())) => {}
            Ok(Err(failure)) => return Err(failure),
            Err(e) => {
                return Err(Failure::new(
                    JobStatus::ProcessingFailed,
                    format!("a shard task died: {e}"),
                ));
            }
        }
    }
    Ok(())
}

/// Encodes shard `index` on this node, retrying on failure.
async fn encode_one(
    ctx: Ctx,
    id: String,
    index: u32,
    spec: EncodeSpec,
    scratch: PathBuf,
) -> Result<(), Failure> {
    let mut last_error = String::new();
    for attempt in 1..=MAX_ATTEMPTS {
        let _permit = ctx
            .slots
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| Failure::new(JobStatus::Error, "node is shutting down"))?;
        let Some((input, frames)) = ctx.jobs.lock().update(&id, |job| {
            let shard = &mut job.shards[index as usize];
            shard.state = ShardState::Encoding;
            shard.worker = ctx.node_id.clone();
            shard.attempts = attempt;
            shard.frames_done = 0;
            (shard.source.sha256.clone(), shard.frames)
        }) else {
            return Err(Failure::new(JobStatus::Error, "job vanished"));
        };
        let input = ctx
            .store
            .path(&input)
            .map_err(|e| Failure::new(JobStatus::Error, e.to_string()))?;
        let task = ShardTask {
            input: &input,
            expected_frames: frames,
            spec: &spec,
        };
        let progress_ctx = ctx.clone();
        let on_progress = |p: crate::media::Progress| {
            progress_ctx.jobs.lock().update(&id, |job| {
                let shard = &mut job.shards[index as usize];
                shard.frames_done = p.frames.min(shard.frames);
                shard.fps = p.fps;
                if shard.frames_done >= shard.frames {
                    shard.state = ShardState::Verifying;
                }
                let done = job.frames_done();
                job.eta.record(Instant::now(), done);
            });
        };
        match worker::encode_verified(&ctx.tools, &ctx.store, &task, &scratch, on_progress).await {
            Ok(blob) => {
                ctx.jobs.lock().update(&id, |job| {
                    let shard = &mut job.shards[index as usize];
                    shard.state = ShardState::Done;
                    shard.frames_done = shard.frames;
                    shard.encoded = Some(blob);
                    shard.message.clear();
                    let done = job.frames_done();
                    job.eta.record(Instant::now(), done);
                });
                return Ok(());
            }
            Err(e) => {
                last_error = e.to_string();
                tracing::warn!(job = %id, shard = index, attempt, error = %last_error, "shard failed");
                ctx.jobs.lock().update(&id, |job| {
                    let shard = &mut job.shards[index as usize];
                    shard.state = if attempt < MAX_ATTEMPTS {
                        ShardState::Queued
                    } else {
                        ShardState::Failed
                    };
                    shard.message = last_error.clone();
                });
            }
        }
    }
    Err(Failure::new(
        JobStatus::ProcessingFailed,
        format!(
            "shard {index} failed {MAX_ATTEMPTS} times on {}: {last_error}",
            ctx.node_id
        ),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn longest_shards_start_first() {
        let order = encode_order(&[(0, 8.3), (1, 16.6), (2, 1.9), (3, 16.6)]);
        assert_eq!(order, vec![1, 3, 0, 2]);
    }
}
