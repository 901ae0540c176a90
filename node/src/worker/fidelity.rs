//! Whether an encoded shard shows its source. Frame count, size and
//! codec (`check_encoded`) are easy to fake: a solid red video of the
//! right length passes them. So the master compares a few frames of
//! every result a remote worker returns with the same frames of the
//! source, scaled as the encoder scales them (`media::quality`), and
//! rejects a result that is not a picture of the source; the worker
//! that sent it is then not trusted with the job again (the scheduler's
//! driver). [`judge`] is the rule, [`check_against_source`] its shell.
//!
//! The floor is set far below what any real encode gets and far above
//! what another picture gets (numbers in `docs/design.md`): it tells a
//! forgery from an encode, it does not grade quality.

use std::path::Path;

use crate::media::quality::{self, Quality};
use crate::media::{EncodeSpec, MediaError, Tools};
use crate::worker::copy::CopyError;

/// Frames compared per result: one drawn at random from each tenth of
/// the shard, so a worker cannot know which frames will be looked at.
pub const SAMPLED_FRAMES: usize = 10;

/// Lowest PSNR (all planes, dB) a sampled frame may have. Honest
/// encodes at crf 51 of hard synthetic content measured 18 dB, of
/// testsrc2 28 dB; a solid colour or another pattern 6-12 dB.
pub const PSNR_FLOOR_DB: f64 = 15.0;

/// Why a result is not taken for a picture of its source.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum NotTheSource {
    #[error(
        "frame {frame} is not the source's picture (PSNR {psnr:.1} dB, SSIM {ssim:.3}; the floor is {floor} dB)"
    )]
    BelowFloor {
        frame: u64,
        psnr: f64,
        ssim: f64,
        floor: f64,
    },
    #[error("only {compared} of {sampled} sampled frames decode (the rest are missing)")]
    Missing { compared: usize, sampled: usize },
}

/// A result fails when a sampled frame could not be compared or one of
/// them is below `floor_db` (pure).
pub fn judge(quality: &Quality, sampled: usize, floor_db: f64) -> Result<(), NotTheSource> {
    if quality.frames.len() < sampled {
        return Err(NotTheSource::Missing {
            compared: quality.frames.len(),
            sampled,
        });
    }
    match quality.worst() {
        Some(worst) if worst.psnr.is_nan() || worst.psnr < floor_db => {
            Err(NotTheSource::BelowFloor {
                frame: worst.index,
                psnr: worst.psnr,
                ssim: worst.ssim,
                floor: floor_db,
            })
        }
        _ => Ok(()),
    }
}

/// Why the check produced no verdict, or its verdict.
#[derive(Debug, thiserror::Error)]
pub enum FidelityError {
    /// The comparison could not run (unreadable result, ffmpeg missing):
    /// an ordinary verification failure, not proof of a forgery.
    #[error("comparing with the source failed: {0}")]
    Media(#[from] MediaError),
    #[error("{0}")]
    NotTheSource(#[from] NotTheSource),
}

impl FidelityError {
    /// The copy's error as the scheduler sees it; a result that is not
    /// the source is `rejected`, so its worker loses its place.
    pub fn into_copy_error(self, address: &str) -> CopyError {
        let rejected = matches!(self, Self::NotTheSource(_));
        let mut error = CopyError::from(format!("result from {address} rejected: {self}"));
        error.rejected = rejected;
        error
    }
}

/// Compares [`SAMPLED_FRAMES`] random frames of `encoded` (already
/// checked for frame count and size) with `source` as `spec` scales it,
/// and judges them. Answers the measurements of an accepted result.
pub async fn check_against_source(
    tools: &Tools,
    encoded: &Path,
    source: &Path,
    frames: u64,
    spec: &EncodeSpec,
) -> Result<Quality, FidelityError> {
    let seed = uuid::Uuid::new_v4().as_u64_pair().0;
    let samples = quality::sample_frames(frames, SAMPLED_FRAMES, seed);
    let started = std::time::Instant::now();
    let picture = quality::Picture::of(spec);
    let measured = quality::compare(tools, encoded, source, picture, &samples).await?;
    tracing::debug!(
        seconds = started.elapsed().as_secs_f64(),
        worst_psnr = measured.worst().map(|f| f.psnr),
        "compared a result with its source"
    );
    judge(&measured, samples.len(), PSNR_FLOOR_DB)?;
    Ok(measured)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::quality::FrameScore;

    fn scores(psnrs: &[f64]) -> Quality {
        Quality {
            frames: psnrs
                .iter()
                .enumerate()
                .map(|(i, &psnr)| FrameScore {
                    index: i as u64 * 30,
                    psnr,
                    psnr_y: psnr,
                    ssim: 0.5,
                })
                .collect(),
        }
    }

    #[test]
    fn low_quality_encodes_pass_and_other_pictures_fail() {
        // crf 51 of testsrc2 (28.5 dB) and of cellular automata (18 dB).
        assert_eq!(judge(&scores(&[28.5, 29.9, 31.2]), 3, 15.0), Ok(()));
        assert_eq!(judge(&scores(&[18.1, 19.0, 18.4]), 3, 15.0), Ok(()));
        // Identical pictures measure infinity.
        assert_eq!(judge(&scores(&[f64::INFINITY; 3]), 3, 15.0), Ok(()));
        // Solid red over testsrc2: 9.1 dB.
        let red = judge(&scores(&[9.1, 9.2, 9.1]), 3, 15.0).unwrap_err();
        assert!(matches!(red, NotTheSource::BelowFloor { frame: 0, .. }));
        assert!(red.to_string().contains("PSNR 9.1 dB"), "{red}");
    }

    #[test]
    fn one_forged_frame_among_real_ones_fails() {
        let err = judge(&scores(&[30.0, 31.0, 7.2, 30.5]), 4, 15.0).unwrap_err();
        assert!(matches!(err, NotTheSource::BelowFloor { frame: 60, .. }));
    }

    #[test]
    fn frames_that_do_not_decode_fail() {
        let err = judge(&scores(&[30.0, 31.0]), 10, 15.0).unwrap_err();
        assert_eq!(
            err,
            NotTheSource::Missing {
                compared: 2,
                sampled: 10
            }
        );
        assert_eq!(judge(&Quality::default(), 0, 15.0), Ok(()));
        assert!(judge(&scores(&[f64::NAN]), 1, 15.0).is_err());
    }
}
