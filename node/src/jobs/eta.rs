//! A smoothed time-left estimate: the encode rate over a rolling window
//! of recent samples, so one slow progress report does not make the ETA
//! jump around.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

const WINDOW: Duration = Duration::from_secs(20);

#[derive(Debug, Clone, Default)]
pub struct EtaEstimator {
    samples: VecDeque<(Instant, u64)>,
}

impl EtaEstimator {
    /// Records that `done` units were finished at `now`.
    pub fn record(&mut self, now: Instant, done: u64) {
        if self.samples.back().is_some_and(|&(_, last)| last == done) {
            return;
        }
        self.samples.push_back((now, done));
        while self.samples.len() > 2
            && self
                .samples
                .front()
                .is_some_and(|&(t, _)| now.duration_since(t) > WINDOW)
        {
            self.samples.pop_front();
        }
    }

    /// Seconds until `total` is reached at the windowed rate, if known.
    pub fn eta_seconds(&self, now: Instant, total: u64) -> Option<f64> {
        let &(t0, d0) = self.samples.front()?;
        let &(_, d1) = self.samples.back()?;
        let elapsed = now.duration_since(t0).as_secs_f64();
        if d1 <= d0 || elapsed < 0.5 {
            return None;
        }
        let rate = (d1 - d0) as f64 / elapsed;
        Some(total.saturating_sub(d1) as f64 / rate)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steady_rate_gives_steady_eta() {
        let start = Instant::now();
        let mut eta = EtaEstimator::default();
        for s in 0..=10u64 {
            eta.record(start + Duration::from_secs(s), s * 30);
        }
        let now = start + Duration::from_secs(10);
        let left = eta.eta_seconds(now, 900).expect("known");
        assert!((left - 20.0).abs() < 1e-9, "{left}");
    }

    #[test]
    fn unknown_until_progress_is_made() {
        let start = Instant::now();
        let mut eta = EtaEstimator::default();
        assert_eq!(eta.eta_seconds(start, 100), None);
        eta.record(start, 0);
        assert_eq!(eta.eta_seconds(start + Duration::from_secs(5), 100), None);
    }

    #[test]
    fn one_burst_does_not_swing_the_estimate_much() {
        let start = Instant::now();
        let mut eta = EtaEstimator::default();
        for s in 0..=18u64 {
            eta.record(start + Duration::from_secs(s), s * 10);
        }
        let before = eta
            .eta_seconds(start + Duration::from_secs(18), 1000)
            .expect("known");
        eta.record(start + Duration::from_secs(19), 230);
        let after = eta
            .eta_seconds(start + Duration::from_secs(19), 1000)
            .expect("known");
        assert!(
            (before - after).abs() / before < 0.35,
            "{before} -> {after}"
        );
    }
}
