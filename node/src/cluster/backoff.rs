//! Retrying a peer that does not answer: a heartbeat a second, then
//! capped exponential backoff, so a node may start before its master or
//! its seeds and joins as soon as it can.

use std::time::Duration;

pub const HEARTBEAT_EVERY: Duration = Duration::from_secs(1);
pub const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// The next wait after `failures` consecutive failed heartbeats (pure):
/// 1 s, 2 s, 4 s, then 5 s.
pub fn backoff(failures: u32) -> Duration {
    if failures == 0 {
        return HEARTBEAT_EVERY;
    }
    let doubled = HEARTBEAT_EVERY.saturating_mul(1u32 << failures.min(16).saturating_sub(1));
    doubled.min(MAX_BACKOFF)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_is_capped() {
        let secs: Vec<u64> = (0..6).map(|f| backoff(f).as_secs()).collect();
        assert_eq!(secs, vec![1, 1, 2, 4, 5, 5]);
        assert_eq!(backoff(u32::MAX), MAX_BACKOFF);
    }
}
