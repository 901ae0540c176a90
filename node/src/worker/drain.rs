//! Draining a stopping node (`--drain-timeout`): from the stop signal on
//! it takes no new shard (it reports no free slot and refuses `RunShard`
//! with UNAVAILABLE, so the master places the shard elsewhere at once),
//! hands back at once the shards queued for a slot, lets the shards it is
//! encoding for a master finish and waits until the
//! master has fetched their results; when the deadline passes first, the
//! encodes still running are stopped and handed back (UNAVAILABLE, which
//! the master treats as a lost worker: reassigned at once, no attempt
//! spent).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

/// How long a result waits for its fetch before the drain stops waiting
/// for it (the master fetches right after the reply; a master that does
/// not come within this time has gone away).
pub const FETCH_GRACE: Duration = Duration::from_secs(10);

/// The drain state shared by the worker service and the stop sequence.
#[derive(Debug, Default)]
pub struct Drain {
    /// Cancelled at the stop signal: no new shards from then on.
    draining: CancellationToken,
    /// Cancelled when the drain deadline passes: running encodes stop.
    hand_back: CancellationToken,
    /// Results replied to a master and not fetched yet, by sha256, with
    /// when they were replied.
    unfetched: Mutex<HashMap<String, Instant>>,
}

/// Whether the drain is over (pure): nothing running, and every result
/// fetched or left unfetched for longer than [`FETCH_GRACE`].
pub fn drained(running: usize, unfetched: &[Instant], now: Instant) -> bool {
    running == 0
        && unfetched
            .iter()
            .all(|replied| now.saturating_duration_since(*replied) >= FETCH_GRACE)
}

impl Drain {
    /// Starts draining (idempotent).
    pub fn begin(&self) {
        self.draining.cancel();
    }

    pub fn is_draining(&self) -> bool {
        self.draining.is_cancelled()
    }

    /// Resolves when draining begins.
    pub async fn begun(&self) {
        self.draining.cancelled().await;
    }

    /// Stops the encodes still running (the deadline passed).
    pub fn hand_back(&self) {
        self.hand_back.cancel();
    }

    /// Resolves when running encodes must stop and be handed back.
    pub async fn handing_back(&self) {
        self.hand_back.cancelled().await;
    }

    /// A result was replied to a master and awaits its fetch.
    pub fn replied(&self, sha256: &str) {
        self.lock().insert(sha256.to_string(), Instant::now());
    }

    /// A fetch of `sha256` ended (whole or broken off).
    pub fn fetched(&self, sha256: &str) {
        self.lock().remove(sha256);
    }

    /// When each unfetched result was replied.
    pub fn unfetched(&self) -> Vec<Instant> {
        self.lock().values().copied().collect()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Instant>> {
        self.unfetched.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Removes a result from the unfetched set when dropped, i.e. when the
/// fetch stream ends, whether it completed or broke off.
pub struct FetchDone {
    drain: std::sync::Arc<Drain>,
    sha256: String,
}

impl FetchDone {
    pub fn new(drain: std::sync::Arc<Drain>, sha256: String) -> Self {
        Self { drain, sha256 }
    }
}

impl Drop for FetchDone {
    fn drop(&mut self) {
        self.drain.fetched(&self.sha256);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drained_once_nothing_runs_and_results_are_fetched_or_abandoned() {
        let now = Instant::now();
        assert!(drained(0, &[], now));
        assert!(!drained(1, &[], now), "an encode still runs");
        assert!(!drained(0, &[now], now), "a result awaits its fetch");
        let long_ago = now - FETCH_GRACE - Duration::from_millis(1);
        assert!(drained(0, &[long_ago], now), "the master never came");
        assert!(!drained(0, &[long_ago, now], now));
    }

    #[test]
    fn tokens_follow_the_stop_sequence() {
        let drain = Drain::default();
        assert!(!drain.is_draining());
        drain.begin();
        assert!(drain.is_draining());
        drain.replied("abc");
        assert_eq!(drain.unfetched().len(), 1);
        drain.fetched("abc");
        assert!(drain.unfetched().is_empty());
    }
}
