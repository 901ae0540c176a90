//! The resource score: one number per node in 0..=100, lower is better
//! (less loaded). The master prefers the node with the lowest score.
//!
//! ```text
//! score = 0.35·min(100, 100·load_per_core)
//!       + 0.15·min(100, iowait%)
//!       + 0.05·min(100, net MB/s)
//!       + 0.05·min(100, disk MB/s)
//!       + 0.10·memory%
//!       + 0.30·(100·busy/total, 100 when total = 0)
//! ```
//!
//! - `load_per_core`: 1-minute load average divided by the logical cores,
//!   so 1.0 (every core has a runnable task) already counts as 100.
//! - `iowait%`: share of CPU time spent waiting for I/O since the previous
//!   sample (from `/proc/stat`).
//! - `net MB/s`, `disk MB/s`: bytes per second (1 MB = 10⁶ bytes) moved
//!   since the previous sample, network received + transmitted (loopback
//!   excluded) and disk read + written (whole disks); rates, not
//!   since-boot counters.
//! - `memory%`: used memory over total memory.
//! - `busy/total`: encode slots in use; a node without slots scores 100
//!   on that part so it is never preferred for encoding work.
//!
//! Every part is clamped to 0..=100 (NaN counts as 0) and the weights sum
//! to 1, so the score stays in 0..=100. The original system computed
//! 0.3·min(100, 10·load_avg_1m) + 0.2·io_wait% + 0.1·min(100, net_MB) +
//! 0.4·min(100, stored_MB); this version normalises load by cores, uses
//! rates instead of totals and accounts for free encode slots.

/// Inputs of [`node_score`], as sampled by [`crate::stats::Stats`]
/// (see `Sample::score_parts`) plus the slot counts.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct ScoreParts {
    /// 1-minute load average / logical cores (1.0 = fully loaded).
    pub load_per_core: f32,
    /// Percent of CPU time in iowait since the previous sample.
    pub iowait_percent: f32,
    /// Network received + transmitted, MB/s (10⁶ bytes), loopback excluded.
    pub net_mb_per_s: f32,
    /// Disk read + written, MB/s (10⁶ bytes), whole disks.
    pub disk_mb_per_s: f32,
    /// Used memory, percent of total.
    pub memory_percent: f32,
    /// Encode slots in use.
    pub slots_busy: u32,
    /// Encode slots configured; 0 means the node takes no encode work.
    pub slots_total: u32,
}

/// Clamps to 0..=100, NaN counting as 0.
fn part(x: f32) -> f32 {
    if x.is_nan() { 0.0 } else { x.clamp(0.0, 100.0) }
}

/// The node's score in 0..=100, lower is better (formula in the module
/// doc). Pure.
pub fn node_score(p: &ScoreParts) -> f32 {
    let slots = if p.slots_total == 0 {
        100.0
    } else {
        p.slots_busy as f32 / p.slots_total as f32 * 100.0
    };
    let score = 0.35 * part(100.0 * p.load_per_core)
        + 0.15 * part(p.iowait_percent)
        + 0.05 * part(p.net_mb_per_s)
        + 0.05 * part(p.disk_mb_per_s)
        + 0.10 * part(p.memory_percent)
        + 0.30 * part(slots);
    score.clamp(0.0, 100.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn idle() -> ScoreParts {
        ScoreParts {
            load_per_core: 0.05,
            iowait_percent: 0.5,
            net_mb_per_s: 0.1,
            disk_mb_per_s: 0.2,
            memory_percent: 20.0,
            slots_busy: 0,
            slots_total: 4,
        }
    }

    fn busy() -> ScoreParts {
        ScoreParts {
            load_per_core: 1.5,
            iowait_percent: 30.0,
            net_mb_per_s: 80.0,
            disk_mb_per_s: 250.0,
            memory_percent: 85.0,
            slots_busy: 4,
            slots_total: 4,
        }
    }

    #[test]
    fn idle_scores_lower_than_busy() {
        assert!(node_score(&idle()) < node_score(&busy()));
    }

    #[test]
    fn each_part_raises_the_score() {
        let base = idle();
        let s = node_score(&base);
        let worse: [(&str, ScoreParts); 7] = [
            (
                "load",
                ScoreParts {
                    load_per_core: 0.8,
                    ..base
                },
            ),
            (
                "iowait",
                ScoreParts {
                    iowait_percent: 20.0,
                    ..base
                },
            ),
            (
                "net",
                ScoreParts {
                    net_mb_per_s: 50.0,
                    ..base
                },
            ),
            (
                "disk",
                ScoreParts {
                    disk_mb_per_s: 50.0,
                    ..base
                },
            ),
            (
                "memory",
                ScoreParts {
                    memory_percent: 70.0,
                    ..base
                },
            ),
            (
                "busy slots",
                ScoreParts {
                    slots_busy: 2,
                    ..base
                },
            ),
            (
                "fewer slots",
                ScoreParts {
                    slots_busy: 1,
                    slots_total: 0,
                    ..base
                },
            ),
        ];
        for (name, parts) in worse {
            assert!(node_score(&parts) > s, "{name}: {parts:?}");
        }
        let better = ScoreParts {
            memory_percent: 5.0,
            ..base
        };
        assert!(node_score(&better) < s);
    }

    #[test]
    fn weights_match_the_formula() {
        let zero = ScoreParts {
            slots_total: 1,
            ..ScoreParts::default()
        };
        assert_eq!(node_score(&zero), 0.0);
        let check = |p: ScoreParts, want: f32| {
            let got = node_score(&p);
            assert!((got - want).abs() < 1e-4, "{p:?}: {got} != {want}");
        };
        check(
            ScoreParts {
                load_per_core: 0.5,
                ..zero
            },
            17.5,
        );
        check(
            ScoreParts {
                iowait_percent: 10.0,
                ..zero
            },
            1.5,
        );
        check(
            ScoreParts {
                net_mb_per_s: 10.0,
                ..zero
            },
            0.5,
        );
        check(
            ScoreParts {
                disk_mb_per_s: 10.0,
                ..zero
            },
            0.5,
        );
        check(
            ScoreParts {
                memory_percent: 50.0,
                ..zero
            },
            5.0,
        );
        check(
            ScoreParts {
                slots_busy: 1,
                slots_total: 2,
                ..zero
            },
            15.0,
        );
        check(ScoreParts::default(), 30.0);
        check(
            ScoreParts {
                slots_busy: 3,
                slots_total: 0,
                ..zero
            },
            30.0,
        );
    }

    #[test]
    fn clamping_keeps_the_score_in_range() {
        let max = ScoreParts {
            load_per_core: 64.0,
            iowait_percent: 250.0,
            net_mb_per_s: 1e9,
            disk_mb_per_s: f32::INFINITY,
            memory_percent: 150.0,
            slots_busy: 9,
            slots_total: 2,
        };
        assert_eq!(node_score(&max), 100.0);
        let min = ScoreParts {
            load_per_core: -1.0,
            iowait_percent: -5.0,
            net_mb_per_s: f32::NAN,
            disk_mb_per_s: -3.0,
            memory_percent: f32::NEG_INFINITY,
            slots_busy: 0,
            slots_total: 3,
        };
        assert_eq!(node_score(&min), 0.0);
        for p in [idle(), busy(), max, min, ScoreParts::default()] {
            let s = node_score(&p);
            assert!((0.0..=100.0).contains(&s), "{p:?}: {s}");
        }
    }
}
