//! Resuming a job on a new master: fetch the source from a node holding
//! it, and collect the encoded shards the old master recorded as done,
//! so they are not encoded again. A shard no live node holds any more is
//! marked lost (a Raft command) and encoded again.

use super::Failure;
use crate::cluster::blobs;
use crate::context::Ctx;
use crate::jobs::{Command, JobStatus, ShardState, now_unix_ms};

/// Makes sure the job's source is in the local store.
pub async fn ensure_source(ctx: &Ctx, id: &str) -> Result<(), Failure> {
    let (source, holders) = {
        let jobs = ctx.jobs.lock();
        let job = jobs
            .get(id)
            .ok_or_else(|| Failure::new(JobStatus::Error, "job vanished"))?;
        (job.source.clone(), job.source_holders.clone())
    };
    blobs::ensure_local(ctx, &source, &holders)
        .await
        .map_err(|why| {
            Failure::new(
                JobStatus::FailedSegmentation,
                format!("the uploaded source is not available on any live node: {why}"),
            )
        })
}

/// Fetches every encoded shard recorded as done that is not stored here;
/// those that cannot be found are marked lost (and encoded again).
pub async fn gather_encoded(ctx: &Ctx, id: &str) -> Result<(), Failure> {
    let done: Vec<(u32, crate::store::BlobRef, Vec<String>)> = {
        let jobs = ctx.jobs.lock();
        let Some(job) = jobs.get(id) else {
            return Ok(());
        };
        job.shards
            .iter()
            .filter(|s| s.state == ShardState::Done)
            .filter_map(|s| Some((s.index, s.encoded.clone()?, s.holders.clone())))
            .collect()
    };
    let (mut kept, mut lost) = (0, 0);
    for (index, blob, holders) in done {
        match blobs::ensure_local(ctx, &blob, &holders).await {
            Ok(()) => kept += 1,
            Err(why) => {
                lost += 1;
                tracing::warn!(job = %id, shard = index, reason = %why, "re-encoding shard: its encoded result is gone");
                let command = Command::ShardLost {
                    job: id.to_string(),
                    shard: index,
                    at_ms: now_unix_ms(),
                };
                super::propose(ctx, command).await?;
            }
        }
    }
    if kept + lost > 0 {
        tracing::info!(job = %id, kept, lost, "resumed: shards already encoded are kept, not encoded again");
    }
    Ok(())
}
