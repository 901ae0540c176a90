//! Garbage collection, on every node: blobs nothing in the replicated
//! table refers to any more are deleted (see `plan::referenced` for what
//! is kept and for how long). A blob the table mentions (or mentioned at
//! the previous pass: its job was deleted) goes once it is 30 s old
//! (blobs are named by content: an ended job's shard may have just been
//! written again for a running job); one never seen mentioned waits until
//! it is 10 minutes old, since it may be an upload or shard whose Raft
//! command is not applied yet. Blobs pinned by a running operation (an
//! upload being copied to its backup node) are never collected. Only `<data>/blobs` is
//! collected: original-protocol backups (`ReplicateVideo`) live in their
//! own store under `<data>/legacy-backups/`.

use std::collections::HashSet;
use std::time::{Duration, SystemTime};

use super::plan;
use crate::cluster::Sys;

const EVERY: Duration = Duration::from_secs(5);
const MIN_AGE_SECONDS: f64 = 600.0;

/// [`MIN_AGE_SECONDS`], or `VIDSHARD_GC_UNKNOWN_AFTER` (seconds, at least
/// [`FRESH_SECONDS`]): the chaos soak shortens it to see every node's
/// store come back to what the jobs need within minutes of its end.
fn min_age_seconds() -> f64 {
    std::env::var("VIDSHARD_GC_UNKNOWN_AFTER")
        .ok()
        .and_then(|v| v.parse::<f64>().ok())
        .map_or(MIN_AGE_SECONDS, |v| v.max(FRESH_SECONDS))
}
/// No blob younger than this is collected: it may have just been written
/// (again) for a job whose Raft command is not applied yet (a shard
/// result between its encode and `ShardDone`, a backup copy between its
/// arrival and `Accept`: seconds). Longer operations pin their blob.
const FRESH_SECONDS: f64 = 30.0;

pub async fn run(sys: Sys) {
    let mut previously: HashSet<String> = HashSet::new();
    let min_age = min_age_seconds();
    loop {
        tokio::select! {
            _ = sys.shutdown.cancelled() => return,
            _ = tokio::time::sleep(EVERY) => {}
        }
        let keep_ms = super::discard::keep_sources_ms(&sys);
        let (referenced, mentioned) = {
            let jobs = sys.jobs.lock();
            let list = jobs.list();
            (
                plan::referenced(list.iter().copied(), crate::jobs::now_unix_ms(), keep_ms),
                plan::mentioned(list.iter().copied())
                    .into_iter()
                    .chain(jobs.tombstones().map(str::to_string))
                    .collect::<HashSet<String>>(),
            )
        };
        let stored = match sys.store.list().await {
            Ok(stored) => stored,
            Err(e) => {
                tracing::warn!(error = %e, "gc: cannot list the blob store");
                continue;
            }
        };
        let now = SystemTime::now();
        for blob in stored
            .iter()
            .filter(|b| !referenced.contains(&b.sha256) && !sys.store.is_pinned(&b.sha256))
        {
            let age = now
                .duration_since(blob.modified)
                .unwrap_or_default()
                .as_secs_f64();
            let known = mentioned.contains(&blob.sha256) || previously.contains(&blob.sha256);
            if plan::collect_now(known, age, FRESH_SECONDS, min_age) {
                match sys.store.remove(&blob.sha256).await {
                    Ok(()) => {
                        tracing::info!(blob = %blob.sha256, bytes = blob.size, "gc: removed a blob nothing refers to")
                    }
                    Err(e) => {
                        tracing::warn!(blob = %blob.sha256, error = %e, "gc: could not remove a blob")
                    }
                }
            }
        }
        previously = mentioned;
    }
}
