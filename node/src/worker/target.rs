//! Target quality's search (pure): which CRF to try next on a shard, and
//! which to keep, from the scores of the CRFs tried so far. Scores are
//! compared in decibels (PSNR as is, SSIM as `-10·log10(1-SSIM)`), where
//! they fall close to linearly with CRF, so a line through the nearest
//! probes predicts the CRF that just meets the target. Every probe is an
//! encode of the whole shard, so the kept one is the result: the target
//! is met as measured, not as predicted (`worker::target_encode`).

pub use crate::jobs::quality::Probe;
use crate::params::QualityTarget;

/// Encodes tried per shard, the kept one included.
pub const MAX_PROBES: usize = 4;

/// dB per CRF step assumed before two probes give a slope (x264 and x265
/// lose 0.3-0.5 dB of PSNR per step on most content).
const DEFAULT_SLOPE: f64 = -0.4;

/// Farthest a prediction may jump from the probe it starts from.
const MAX_STEP: i64 = 16;

/// What to do next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    Try(u32),
    /// Keep the encode at this CRF (one already tried).
    Keep(u32),
}

fn decibels(target: QualityTarget, score: f64) -> f64 {
    match target {
        QualityTarget::Ssim(_) => -10.0 * (1.0 - score.min(0.999_999)).log10(),
        QualityTarget::Psnr(_) => score,
    }
}

/// The next step after `probes` (in the order tried), starting at
/// `first` and staying within 1..=`max_crf`.
pub fn next_step(target: QualityTarget, probes: &[Probe], first: u32, max_crf: u32) -> Step {
    let first = first.clamp(1, max_crf);
    if probes.is_empty() {
        return Step::Try(first);
    }
    let goal = decibels(target, target.value());
    let db = |p: &Probe| decibels(target, p.score);
    let meets = |p: &&Probe| db(p) >= goal;
    let best_pass = probes.iter().filter(meets).map(|p| p.crf).max();
    let worst_fail = probes
        .iter()
        .filter(|p| !meets(p) && best_pass.is_none_or(|c| p.crf > c))
        .map(|p| p.crf)
        .min();
    let keep = keep(target, probes);
    // The open range a better CRF may still be in.
    let low = best_pass.map_or(1, |c| c + 1);
    let high = worst_fail.map_or(max_crf, |c| c - 1);
    if probes.len() >= MAX_PROBES || low > high {
        return Step::Keep(keep);
    }
    // A line through the two probes nearest the goal (or the default
    // slope through the nearest one).
    let mut by_distance: Vec<&Probe> = probes.iter().collect();
    by_distance.sort_by(|a, b| (db(a) - goal).abs().total_cmp(&(db(b) - goal).abs()));
    let near = by_distance[0];
    let slope = by_distance
        .get(1)
        .filter(|far| far.crf != near.crf)
        .map(|far| (db(far) - db(near)) / (f64::from(far.crf) - f64::from(near.crf)))
        .filter(|s| *s < -0.01)
        .unwrap_or(DEFAULT_SLOPE);
    let step = ((goal - db(near)) / slope).floor() as i64;
    let predicted = i64::from(near.crf) + step.clamp(-MAX_STEP, MAX_STEP);
    let next = predicted.clamp(i64::from(low), i64::from(high)) as u32;
    if probes.iter().any(|p| p.crf == next) {
        return Step::Keep(keep);
    }
    Step::Try(next)
}

/// The CRF to keep: the highest that met the target, else the best
/// scoring (the target cannot be met; the report shows by how much).
pub fn keep(target: QualityTarget, probes: &[Probe]) -> u32 {
    let goal = target.value();
    probes
        .iter()
        .filter(|p| p.score >= goal)
        .map(|p| p.crf)
        .max()
        .or_else(|| {
            probes
                .iter()
                .max_by(|a, b| a.score.total_cmp(&b.score))
                .map(|p| p.crf)
        })
        .unwrap_or(1)
}

#[cfg(test)]
#[path = "target_tests.rs"]
mod tests;
