//! Scrubbing, on every node: every `--scrub-every` seconds re-hash each
//! blob the replicated table says this node holds (outputs, sources,
//! encoded shards of running jobs), one at a time and at most 64 MB/s so
//! encodes do not starve. A missing or damaged copy is deleted and
//! reported to the leader (in the next heartbeat, or directly when this
//! node leads), which records the loss and has a copy made elsewhere.

use std::collections::BTreeSet;
use std::time::Duration;

use std::sync::Arc;

use super::Backups;
use crate::cluster::Sys;
use crate::store::{BlobRef, StoreError};

/// Re-hashing speed cap.
const BYTES_PER_SECOND: f64 = 64e6;

/// The blobs the table records this node as holding (pure over the table).
pub fn held_by(sys: &Sys) -> Vec<BlobRef> {
    let me = &sys.node_id;
    let mut held = BTreeSet::new();
    let jobs = sys.jobs.lock();
    // Only what is still kept: an expired source is garbage, not a loss.
    let keep_ms = super::discard::keep_sources_ms(sys);
    let kept = super::plan::referenced(jobs.list(), crate::jobs::now_unix_ms(), keep_ms);
    for job in jobs.list() {
        if job.source_holders.contains(me) {
            held.insert((job.source.sha256.clone(), job.source.size));
        }
        if let Some(output) = job
            .output
            .as_ref()
            .filter(|_| job.output_holders.contains(me))
        {
            held.insert((output.sha256.clone(), output.size));
        }
        if !job.status.is_final() {
            for shard in job.shards.iter().filter(|s| s.holders.contains(me)) {
                if let Some(encoded) = &shard.encoded {
                    held.insert((encoded.sha256.clone(), encoded.size));
                }
            }
        }
    }
    held.into_iter()
        .filter(|(sha, _)| kept.contains(sha))
        .map(|(sha256, size)| BlobRef { sha256, size })
        .collect()
}

/// Checks one blob; answers whether it is intact.
pub async fn check(backups: &Backups, blob: &BlobRef) -> bool {
    let sys = &backups.sys;
    let verdict = match sys.store.verify(blob).await {
        Ok(()) if sys.store.contains(blob).await => return true,
        Ok(()) => "has the wrong size".to_string(),
        Err(StoreError::Missing(_)) => "is missing".to_string(),
        Err(e) => e.to_string(),
    };
    tracing::warn!(blob = %blob.sha256, problem = %verdict, "scrub: a held copy is bad; removing and reporting it");
    let _ = sys.store.remove(&blob.sha256).await;
    backups.lost_here(&blob.sha256);
    false
}

pub async fn run(backups: Arc<Backups>) {
    let sys = &backups.sys;
    let every = Duration::from_secs_f64(sys.config.scrub_every.max(1.0));
    loop {
        tokio::select! {
            _ = sys.shutdown.cancelled() => return,
            _ = tokio::time::sleep(every) => {}
        }
        let held = held_by(sys);
        let (mut good, mut bad) = (0, 0);
        for blob in held {
            if sys.shutdown.is_cancelled() {
                return;
            }
            if check(&backups, &blob).await {
                good += 1;
            } else {
                bad += 1;
            }
            let pause = Duration::from_secs_f64(blob.size as f64 / BYTES_PER_SECOND);
            tokio::select! {
                _ = sys.shutdown.cancelled() => return,
                _ = tokio::time::sleep(pause) => {}
            }
        }
        if bad > 0 {
            tracing::warn!(good, bad, "scrub pass found damaged or missing copies");
        } else {
            tracing::debug!(good, "scrub pass: every held copy intact");
        }
    }
}
