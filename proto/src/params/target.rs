//! Target quality: `--target-ssim X` or `--target-psnr DB` asks every
//! shard to score at least X (mean over its frames, against the source
//! scaled as the encoder scaled it) with the highest CRF that does, so
//! easy shards spend few bits and hard ones as many as they need.

use serde::{Deserialize, Serialize};

use super::BadParams;

/// The lowest and highest SSIM a target may ask for: below 0.5 nothing
/// is left to aim at, 0.9999 is already beyond what CRF 1 gives.
pub const SSIM_RANGE: (f64, f64) = (0.5, 0.9999);
/// The same for PSNR, dB.
pub const PSNR_RANGE: (f64, f64) = (20.0, 70.0);

/// What every shard must reach. Stored in whole units of 1/10000 SSIM or
/// 1/100 dB, so job parameters stay comparable and hashable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum QualityTarget {
    /// Mean SSIM (all planes), in 1/10000.
    Ssim(u32),
    /// Mean PSNR (all planes), in 1/100 dB.
    Psnr(u32),
}

impl QualityTarget {
    /// The target from the wire's two numbers (0 = not asked), refused
    /// when both are given or one is out of range.
    pub fn parse(ssim: f64, psnr: f64) -> Result<Option<Self>, BadParams> {
        let asked = |v: f64| v != 0.0;
        match (asked(ssim), asked(psnr)) {
            (false, false) => Ok(None),
            (true, true) => Err(BadParams::TwoTargets),
            (true, false) if in_range(ssim, SSIM_RANGE) => {
                Ok(Some(Self::Ssim((ssim * 10_000.0).round() as u32)))
            }
            (true, false) => Err(BadParams::TargetSsim(ssim)),
            (false, true) if in_range(psnr, PSNR_RANGE) => {
                Ok(Some(Self::Psnr((psnr * 100.0).round() as u32)))
            }
            (false, true) => Err(BadParams::TargetPsnr(psnr)),
        }
    }

    /// The target as a number (SSIM 0..1, or PSNR dB).
    pub fn value(self) -> f64 {
        match self {
            Self::Ssim(v) => f64::from(v) / 10_000.0,
            Self::Psnr(v) => f64::from(v) / 100.0,
        }
    }

    /// The figure of a shard this target looks at.
    pub fn score(self, mean_psnr: f64, mean_ssim: f64) -> f64 {
        match self {
            Self::Ssim(_) => mean_ssim,
            Self::Psnr(_) => mean_psnr,
        }
    }

    /// "ssim" or "psnr".
    pub fn metric(self) -> &'static str {
        match self {
            Self::Ssim(_) => "ssim",
            Self::Psnr(_) => "psnr",
        }
    }

    /// The wire's (ssim, psnr) pair.
    pub fn to_wire(target: Option<Self>) -> (f64, f64) {
        match target {
            None => (0.0, 0.0),
            Some(t @ Self::Ssim(_)) => (t.value(), 0.0),
            Some(t @ Self::Psnr(_)) => (0.0, t.value()),
        }
    }
}

fn in_range(v: f64, (low, high): (f64, f64)) -> bool {
    v.is_finite() && (low..=high).contains(&v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_parse_within_their_ranges() {
        assert_eq!(QualityTarget::parse(0.0, 0.0), Ok(None));
        let ssim = QualityTarget::parse(0.985, 0.0)
            .expect("test data")
            .expect("test data");
        assert_eq!(ssim, QualityTarget::Ssim(9850));
        assert!((ssim.value() - 0.985).abs() < 1e-12);
        assert_eq!(
            QualityTarget::parse(0.0, 42.5),
            Ok(Some(QualityTarget::Psnr(4250)))
        );
        assert_eq!(QualityTarget::to_wire(Some(ssim)), (0.985, 0.0));
        assert_eq!(QualityTarget::parse(0.98, 40.0), Err(BadParams::TwoTargets));
        for bad in [0.3, 1.0, 1.5, -0.9, f64::NAN] {
            assert!(QualityTarget::parse(bad, 0.0).is_err(), "{bad}");
        }
        for bad in [10.0, 99.0, f64::INFINITY] {
            assert!(QualityTarget::parse(0.0, bad).is_err(), "{bad}");
        }
    }
}
