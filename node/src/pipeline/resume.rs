//! Resuming a job on a new master: fetch the source from a node holding
//! it, and collect the encoded shards the old master recorded as done,
//! so they are not encoded again. A shard no live node holds any more is
//! marked lost (a Raft command) and encoded again.

use crate::cluster::Sys;
use crate::cluster::blobs;
use crate::jobs::JobStop;
use crate::jobs::{Command, JobStatus, ShardState, now_unix_ms};

/// Makes sure the job's source is in the local store.
pub async fn ensure_source(sys: &Sys, id: &str) -> Result<(), JobStop> {
    let (source, holders) = {
        let jobs = sys.jobs.lock();
        let job = jobs
            .get(id)
            .ok_or_else(|| JobStop::failed(JobStatus::Error, "job vanished"))?;
        (job.source.clone(), job.source_holders.clone())
    };
    let Err(why) = blobs::ensure_local(sys, &source, &holders).await else {
        return Ok(());
    };
    // A holder that is still a member may be restarting or cut off for a
    // moment: wait for it (the job is tried again) rather than fail.
    let members = sys.consensus.members();
    let may_come_back = holders
        .iter()
        .any(|holder| members.iter().any(|m| m.info.name == *holder));
    if may_come_back {
        return Err(JobStop::paused(format!(
            "the uploaded source is on no node that answers now ({why}); waiting for its holders"
        )));
    }
    Err(JobStop::failed(
        JobStatus::FailedSegmentation,
        format!("the uploaded source is not available on any live node: {why}"),
    ))
}

/// Fetches every encoded shard recorded as done that is not stored here;
/// those that cannot be found are marked lost (and encoded again).
pub async fn gather_encoded(sys: &Sys, id: &str) -> Result<(), JobStop> {
    let done: Vec<(u32, crate::store::BlobRef, Vec<String>)> = {
        let jobs = sys.jobs.lock();
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
        match blobs::ensure_local(sys, &blob, &holders).await {
            Ok(()) => kept += 1,
            Err(why) => {
                lost += 1;
                tracing::warn!(job = %id, shard = index, reason = %why, "re-encoding shard: its encoded result is gone");
                let command = Command::ShardLost {
                    job: id.to_string(),
                    shard: index,
                    at_ms: now_unix_ms(),
                };
                sys.consensus.record(command).await?;
            }
        }
    }
    if kept + lost > 0 {
        tracing::info!(job = %id, kept, lost, "resumed: shards already encoded are kept, not encoded again");
    }
    Ok(())
}
