//! A job's quality report: what every encoded shard scored against its
//! source (PSNR and SSIM of every frame, measured by the worker that
//! encoded it, `worker::measure`) and what the seams between shards
//! look like next to the shards' interiors. Plain data and pure
//! functions; the figures are stored with the shard through Raft
//! (`Command::ShardDone`) and the job's summary is computed on demand.
//!
//! A chunked encode can go wrong exactly at its cuts (a keyframe starved
//! of bits, a frame dropped or doubled, a shard encoded with other
//! settings), so the frames within [`SEAM_FRAMES`] of every cut are
//! reported apart from the rest, and a seam is flagged when one side of
//! it averages more than [`SEAM_DROP_DB`] below the 5th percentile of
//! its own shard's interior.

use serde::{Deserialize, Serialize};

/// Frames on each side of a cut that count as the seam.
pub const SEAM_FRAMES: usize = 12;

/// How far (dB PSNR) a side of a seam may average below its shard's
/// interior p5 before the seam is flagged.
pub const SEAM_DROP_DB: f64 = 1.0;

/// PSNR of identical frames is infinite; it counts as this (dB), so one
/// untouched frame does not turn a mean infinite.
pub const PSNR_CAP_DB: f64 = 100.0;

/// mean, p5, p1 and min of one figure over some frames.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Stats {
    pub frames: u64,
    pub mean: f64,
    pub p5: f64,
    pub p1: f64,
    pub min: f64,
}

impl Stats {
    /// The figures of `values` (empty: all zero). Percentiles are the
    /// nearest-rank ones: p5 is a value at least 5 % of frames are at or
    /// below.
    pub fn of(values: &[f64]) -> Self {
        let mut sorted: Vec<f64> = values.iter().copied().filter(|v| !v.is_nan()).collect();
        if sorted.is_empty() {
            return Self::default();
        }
        sorted.sort_by(f64::total_cmp);
        let rank = |p: f64| {
            let index = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
            sorted[index.clamp(1, sorted.len()) - 1]
        };
        Self {
            frames: sorted.len() as u64,
            mean: sorted.iter().sum::<f64>() / sorted.len() as f64,
            p5: rank(5.0),
            p1: rank(1.0),
            min: sorted[0],
        }
    }
}

/// One CRF tried on a shard under a quality target, and its score (mean
/// SSIM, or mean PSNR in dB).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Probe {
    pub crf: u32,
    pub score: f64,
}

/// One encoded shard against its source.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ShardQuality {
    pub psnr: Stats,
    pub ssim: Stats,
    /// Without the first and last [`SEAM_FRAMES`] frames.
    pub interior_psnr: Stats,
    pub interior_ssim: Stats,
    /// Per frame, the first and last (up to) [`SEAM_FRAMES`].
    pub head_psnr: Vec<f64>,
    pub head_ssim: Vec<f64>,
    pub tail_psnr: Vec<f64>,
    pub tail_ssim: Vec<f64>,
    /// Node id of the node that measured it.
    pub measured_on: String,
    /// The CRF of this encode (0: not recorded).
    #[serde(default)]
    pub crf: u32,
    /// Under a quality target: every CRF tried, in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub probes: Vec<Probe>,
}

impl ShardQuality {
    /// The figures of a shard from the per-frame scores, in frame order
    /// (pure).
    pub fn from_frames(psnr: &[f64], ssim: &[f64], measured_on: &str) -> Self {
        // Stored as JSON in the Raft log, which has no NaN or infinity:
        // a figure that is not a number counts as the worst.
        let psnr: Vec<f64> = psnr
            .iter()
            .map(|v| if v.is_nan() { 0.0 } else { v.min(PSNR_CAP_DB) })
            .collect();
        let ssim: Vec<f64> = ssim
            .iter()
            .map(|v| if v.is_nan() { 0.0 } else { *v })
            .collect();
        let n = psnr.len().min(ssim.len());
        let (psnr, ssim) = (&psnr[..n], &ssim[..n]);
        let edge = SEAM_FRAMES.min(n);
        let interior = if n > 2 * SEAM_FRAMES {
            SEAM_FRAMES..n - SEAM_FRAMES
        } else {
            0..0
        };
        Self {
            psnr: Stats::of(psnr),
            ssim: Stats::of(ssim),
            interior_psnr: Stats::of(&psnr[interior.clone()]),
            interior_ssim: Stats::of(&ssim[interior]),
            head_psnr: psnr[..edge].to_vec(),
            head_ssim: ssim[..edge].to_vec(),
            tail_psnr: psnr[n - edge..].to_vec(),
            tail_ssim: ssim[n - edge..].to_vec(),
            measured_on: measured_on.to_string(),
            crf: 0,
            probes: Vec::new(),
        }
    }

    /// Whether figures that came over the network make sense: finite,
    /// SSIM within 0..=1, PSNR within 0..=cap, at most [`SEAM_FRAMES`] per
    /// edge and no more frames at an edge than in the shard (pure).
    pub fn is_plausible(&self, frames: u64) -> bool {
        let psnr_ok = |v: &f64| v.is_finite() && (0.0..=PSNR_CAP_DB).contains(v);
        let ssim_ok = |v: &f64| v.is_finite() && (0.0..=1.0).contains(v);
        let stats_ok = |s: &Stats, ok: &dyn Fn(&f64) -> bool| {
            s.frames <= frames && [s.mean, s.p5, s.p1, s.min].iter().all(ok)
        };
        let edges = [&self.head_psnr, &self.tail_psnr];
        let edges_ssim = [&self.head_ssim, &self.tail_ssim];
        let probes_ok = self.probes.len() <= 8
            && self
                .probes
                .iter()
                .all(|p| p.score.is_finite() && (1..=63).contains(&p.crf));
        probes_ok
            && stats_ok(&self.psnr, &psnr_ok)
            && stats_ok(&self.interior_psnr, &psnr_ok)
            && stats_ok(&self.ssim, &ssim_ok)
            && stats_ok(&self.interior_ssim, &ssim_ok)
            && self.psnr.frames > 0
            && edges
                .iter()
                .all(|e| e.len() <= SEAM_FRAMES && e.iter().all(psnr_ok))
            && edges_ssim
                .iter()
                .all(|e| e.len() <= SEAM_FRAMES && e.iter().all(ssim_ok))
    }
}

/// The frames around the cut after shard `after_shard`.
#[derive(Debug, Clone, PartialEq)]
pub struct SeamQuality {
    pub after_shard: u32,
    pub psnr: Stats,
    pub ssim: Stats,
    /// Why the seam is flagged; None when it is not.
    pub flag: Option<String>,
}

/// A job's report from its shards' measurements.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct JobQuality {
    pub measured_shards: u32,
    pub shards: u32,
    /// Over every measured frame: frame-weighted mean and min; p5 and p1
    /// are the worst shard's (the frames themselves are not kept).
    pub psnr: Stats,
    pub ssim: Stats,
    pub seams: Vec<SeamQuality>,
}

impl JobQuality {
    pub fn flagged_seams(&self) -> Vec<u32> {
        self.seams
            .iter()
            .filter(|s| s.flag.is_some())
            .map(|s| s.after_shard)
            .collect()
    }
}

/// The report of a job whose shards have the given measurements, in
/// shard order (pure). None when no shard is measured.
pub fn job_report(shards: &[Option<&ShardQuality>]) -> Option<JobQuality> {
    let measured: Vec<&ShardQuality> = shards.iter().flatten().copied().collect();
    if measured.is_empty() {
        return None;
    }
    let seams = shards
        .windows(2)
        .enumerate()
        .filter_map(|(k, pair)| Some(seam(k as u32, pair[0]?, pair[1]?)))
        .collect();
    Some(JobQuality {
        measured_shards: measured.len() as u32,
        shards: shards.len() as u32,
        psnr: pooled(measured.iter().map(|q| q.psnr)),
        ssim: pooled(measured.iter().map(|q| q.ssim)),
        seams,
    })
}

/// Stats of several shards together: exact frames, mean and min; p5 and
/// p1 the lowest of the shards'.
fn pooled(parts: impl Iterator<Item = Stats>) -> Stats {
    parts.fold(Stats::default(), |sum, s| {
        if sum.frames == 0 {
            return s;
        }
        let frames = sum.frames + s.frames;
        Stats {
            frames,
            mean: (sum.mean * sum.frames as f64 + s.mean * s.frames as f64) / frames.max(1) as f64,
            p5: sum.p5.min(s.p5),
            p1: sum.p1.min(s.p1),
            min: sum.min.min(s.min),
        }
    })
}

fn seam(after_shard: u32, before: &ShardQuality, after: &ShardQuality) -> SeamQuality {
    let psnr: Vec<f64> = before
        .tail_psnr
        .iter()
        .chain(&after.head_psnr)
        .copied()
        .collect();
    let ssim: Vec<f64> = before
        .tail_ssim
        .iter()
        .chain(&after.head_ssim)
        .copied()
        .collect();
    let sides = [
        (after_shard, &before.tail_psnr, &before.interior_psnr, "end"),
        (
            after_shard + 1,
            &after.head_psnr,
            &after.interior_psnr,
            "start",
        ),
    ];
    let flag = sides.iter().find_map(|(shard, side, interior, which)| {
        side_drop(side, interior).map(|(mean, p5)| {
            format!(
                "the {which} of shard {shard} averages {mean:.2} dB PSNR, more than \
                 {SEAM_DROP_DB} dB under the {p5:.2} dB p5 of its interior"
            )
        })
    });
    SeamQuality {
        after_shard,
        psnr: Stats::of(&psnr),
        ssim: Stats::of(&ssim),
        flag,
    }
}

/// A side's mean and its shard's interior p5 when the side is more than
/// [`SEAM_DROP_DB`] under it. A shard too short to have an interior of
/// [`SEAM_FRAMES`] frames has nothing to compare with.
fn side_drop(side: &[f64], interior: &Stats) -> Option<(f64, f64)> {
    if side.is_empty() || interior.frames < SEAM_FRAMES as u64 {
        return None;
    }
    let mean = side.iter().sum::<f64>() / side.len() as f64;
    (mean < interior.p5 - SEAM_DROP_DB).then_some((mean, interior.p5))
}

#[cfg(test)]
#[path = "quality_tests.rs"]
mod tests;
