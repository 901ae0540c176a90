//! Scrubbing, on every node: every `--scrub-every` seconds re-hash each
//! blob the replicated table says this node holds (outputs, sources,
//! encoded shards of running jobs), one at a time and at most 64 MB/s so
//! encodes do not starve. A missing or damaged copy is deleted and
//! reported to the leader (in the next heartbeat, or directly when this
//! node leads), which records the loss and has a copy made elsewhere.

use std::collections::BTreeSet;
use std::time::Duration;

use crate::context::Ctx;
use crate::store::{BlobRef, StoreError};

/// Re-hashing speed cap.
const BYTES_PER_SECOND: f64 = 64e6;

/// The blobs the table records this node as holding (pure over the table).
pub fn held_by(ctx: &Ctx) -> Vec<BlobRef> {
    let me = &ctx.node_id;
    let mut held = BTreeSet::new();
    let jobs = ctx.jobs.lock();
    // Only what is still kept: an expired source is garbage, not a loss.
    let keep_ms = (ctx.config.keep_sources.max(0.0) * 3_600_000.0) as u64;
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

/// Records that this node lost `sha256`.
pub fn report_loss(ctx: &Ctx, sha256: &str) {
    if ctx.is_master() {
        let mut lost = ctx
            .reported_losses
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        lost.insert((ctx.node_id.clone(), sha256.to_string()));
    } else {
        let mut lost = ctx.my_losses.lock().unwrap_or_else(|p| p.into_inner());
        lost.insert(sha256.to_string());
    }
    ctx.backups_wake.notify_one();
}

/// Checks one blob; answers whether it is intact.
pub async fn check(ctx: &Ctx, blob: &BlobRef) -> bool {
    let verdict = match ctx.store.verify(blob).await {
        Ok(()) if ctx.store.contains(blob).await => return true,
        Ok(()) => "has the wrong size".to_string(),
        Err(StoreError::Missing(_)) => "is missing".to_string(),
        Err(e) => e.to_string(),
    };
    tracing::warn!(blob = %blob.sha256, problem = %verdict, "scrub: a held copy is bad; removing and reporting it");
    let _ = ctx.store.remove(&blob.sha256).await;
    report_loss(ctx, &blob.sha256);
    false
}

pub async fn run(ctx: Ctx) {
    let every = Duration::from_secs_f64(ctx.config.scrub_every.max(1.0));
    loop {
        tokio::select! {
            _ = ctx.shutdown.cancelled() => return,
            _ = tokio::time::sleep(every) => {}
        }
        let held = held_by(&ctx);
        let (mut good, mut bad) = (0, 0);
        for blob in held {
            if ctx.shutdown.is_cancelled() {
                return;
            }
            if check(&ctx, &blob).await {
                good += 1;
            } else {
                bad += 1;
            }
            let pause = Duration::from_secs_f64(blob.size as f64 / BYTES_PER_SECOND);
            tokio::select! {
                _ = ctx.shutdown.cancelled() => return,
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
