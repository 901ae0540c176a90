//! The quality report on the wire (`vidshard.v1` messages) and back:
//! a worker's measurement in its `RunShardReply`, a job's report in
//! `JobInfo`.

use vidshard_proto::v1;

use super::quality::{JobQuality, Probe, SeamQuality, ShardQuality, Stats};

impl From<Stats> for v1::QualityStats {
    fn from(s: Stats) -> Self {
        Self {
            frames: s.frames,
            mean: s.mean,
            p5: s.p5,
            p1: s.p1,
            min: s.min,
        }
    }
}

impl From<v1::QualityStats> for Stats {
    fn from(s: v1::QualityStats) -> Self {
        Self {
            frames: s.frames,
            mean: s.mean,
            p5: s.p5,
            p1: s.p1,
            min: s.min,
        }
    }
}

impl From<&ShardQuality> for v1::ShardQuality {
    fn from(q: &ShardQuality) -> Self {
        Self {
            psnr: Some(q.psnr.into()),
            ssim: Some(q.ssim.into()),
            interior_psnr: Some(q.interior_psnr.into()),
            interior_ssim: Some(q.interior_ssim.into()),
            head_psnr: q.head_psnr.clone(),
            head_ssim: q.head_ssim.clone(),
            tail_psnr: q.tail_psnr.clone(),
            tail_ssim: q.tail_ssim.clone(),
            measured_on: q.measured_on.clone(),
            crf: q.crf,
            probes: q
                .probes
                .iter()
                .map(|p| v1::QualityProbe {
                    crf: p.crf,
                    score: p.score,
                })
                .collect(),
        }
    }
}

impl From<v1::ShardQuality> for ShardQuality {
    fn from(q: v1::ShardQuality) -> Self {
        let stats = |s: Option<v1::QualityStats>| s.map(Stats::from).unwrap_or_default();
        Self {
            psnr: stats(q.psnr),
            ssim: stats(q.ssim),
            interior_psnr: stats(q.interior_psnr),
            interior_ssim: stats(q.interior_ssim),
            head_psnr: q.head_psnr,
            head_ssim: q.head_ssim,
            tail_psnr: q.tail_psnr,
            tail_ssim: q.tail_ssim,
            measured_on: q.measured_on,
            crf: q.crf,
            probes: q
                .probes
                .into_iter()
                .map(|p| Probe {
                    crf: p.crf,
                    score: p.score,
                })
                .collect(),
        }
    }
}

impl From<&SeamQuality> for v1::SeamQuality {
    fn from(s: &SeamQuality) -> Self {
        Self {
            after_shard: s.after_shard,
            psnr: Some(s.psnr.into()),
            ssim: Some(s.ssim.into()),
            flagged: s.flag.is_some(),
            reason: s.flag.clone().unwrap_or_default(),
        }
    }
}

impl From<&JobQuality> for v1::JobQuality {
    fn from(q: &JobQuality) -> Self {
        Self {
            measured_shards: q.measured_shards,
            shards: q.shards,
            psnr: Some(q.psnr.into()),
            ssim: Some(q.ssim.into()),
            seams: q.seams.iter().map(v1::SeamQuality::from).collect(),
            flagged_seams: q.flagged_seams(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_shard_measurement_survives_the_wire() {
        let psnr: Vec<f64> = (0..40).map(|i| 35.0 + f64::from(i) / 10.0).collect();
        let ssim = vec![0.98; 40];
        let mut q = ShardQuality::from_frames(&psnr, &ssim, "n2");
        q.crf = 27;
        q.probes = vec![Probe {
            crf: 23,
            score: 0.99,
        }];
        let back = ShardQuality::from(v1::ShardQuality::from(&q));
        assert_eq!(back, q);
    }
}
