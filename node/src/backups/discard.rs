//! Throwing a blob away safely. Blobs are named by content, so the copy
//! one job (or one transfer) is done with may be the very file another
//! job needs: the same source uploaded twice, or two sources that split
//! into some identical shards. Every "I am done with this blob" goes
//! through [`discard`], which keeps it while another job or a running
//! operation of this process (a pin) still needs it.

use crate::cluster::Sys;

/// Removes `sha256` from this node's store unless it is pinned or a job
/// other than `owner` still needs it (`plan::needed_elsewhere`; running
/// jobs' shards count on the master only). Answers whether it went.
pub async fn discard(sys: &Sys, sha256: &str, owner: Option<&str>) -> bool {
    if sha256.is_empty() || sys.store.is_pinned(sha256) {
        return false;
    }
    let needed = {
        let jobs = sys.jobs.lock();
        super::plan::needed_elsewhere(
            jobs.list().iter().copied(),
            sha256,
            owner,
            sys.is_master(),
            crate::jobs::now_unix_ms(),
            keep_sources_ms(sys),
        )
    };
    if needed {
        tracing::debug!(blob = %sha256, "kept a blob another job shares");
        return false;
    }
    match sys.store.remove(sha256).await {
        Ok(()) => true,
        Err(e) => {
            tracing::warn!(blob = %sha256, error = %e, "could not remove a blob");
            false
        }
    }
}

/// `--keep-sources` in milliseconds.
pub fn keep_sources_ms(sys: &Sys) -> u64 {
    (sys.config.keep_sources.max(0.0) * 3_600_000.0) as u64
}
