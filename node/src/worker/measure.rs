//! A shard's quality report, measured where the shard was encoded: the
//! worker that made the result still holds its source and the result on
//! disk, so comparing every frame there costs no transfer, runs on as
//! many machines as encode, and stays inside the slot the encode held
//! (a measurement is CPU work like an encode; taking a slot of its own
//! would only let another encode crowd it).
//!
//! The report is information, not a verdict: a measurement that fails
//! leaves the shard unmeasured and does not fail it (the fidelity check
//! and `check_encoded` decide whether a result is accepted).

use std::path::Path;
use std::time::Instant;

use super::{ShardError, ShardTask};
use crate::jobs::quality::ShardQuality;
use crate::media::quality::{self, Picture};
use crate::media::{EncodeSpec, MediaError, Progress, Tools};
use crate::store::{BlobPin, BlobRef, BlobStore};

/// Compares every one of `frames` frames of `encoded` with `source` as
/// `spec` made them.
pub async fn measure(
    tools: &Tools,
    source: &Path,
    encoded: &Path,
    frames: u64,
    spec: &EncodeSpec,
    node_id: &str,
) -> Result<ShardQuality, MediaError> {
    let every: Vec<u64> = (0..frames).collect();
    let scores = quality::compare(tools, encoded, source, Picture::of(spec), &every).await?;
    if (scores.frames.len() as u64) < frames {
        return Err(MediaError::Invalid(format!(
            "only {} of {frames} frames could be compared",
            scores.frames.len()
        )));
    }
    let psnr: Vec<f64> = scores.frames.iter().map(|f| f.psnr).collect();
    let ssim: Vec<f64> = scores.frames.iter().map(|f| f.ssim).collect();
    Ok(ShardQuality::from_frames(&psnr, &ssim, node_id))
}

/// [`measure`], logged: None (with a warning) when it could not be done.
pub async fn measure_logged(
    tools: &Tools,
    source: &Path,
    encoded: &Path,
    frames: u64,
    spec: &EncodeSpec,
    node_id: &str,
) -> Option<ShardQuality> {
    let started = Instant::now();
    match measure(tools, source, encoded, frames, spec, node_id).await {
        Ok(q) => {
            tracing::debug!(
                seconds = started.elapsed().as_secs_f64(),
                psnr = q.psnr.mean,
                ssim = q.ssim.mean,
                "measured a shard against its source"
            );
            Some(q)
        }
        Err(e) => {
            tracing::warn!(error = %e, "could not measure a shard's quality; it stays unmeasured");
            None
        }
    }
}

/// Encodes and verifies a shard, measures it when `measure` asks, then
/// stores it; a shard with a quality target is encoded to it instead
/// (`target_encode`), which always measures. The measurement reads the
/// scratch file, before the store holds the result: a copy cancelled
/// meanwhile (its job failed or a duplicate won) leaves nothing in the
/// store that no record names.
pub async fn encode_judged(
    tools: &Tools,
    store: &BlobStore,
    task: &ShardTask<'_>,
    scratch: &Path,
    node_id: &str,
    measure: bool,
    on_progress: impl FnMut(Progress),
) -> Result<(BlobRef, BlobPin, Option<ShardQuality>), ShardError> {
    if let Some(target) = task.spec.quality_target {
        let (blob, pin, quality) = super::target_encode::encode_to_target(
            tools,
            store,
            task,
            scratch,
            node_id,
            target,
            on_progress,
        )
        .await?;
        return Ok((blob, pin, Some(quality)));
    }
    let output = super::encoded_path(scratch, task);
    let result = async {
        super::encode_checked(tools, task, &output, on_progress).await?;
        let quality = match measure {
            true => {
                let frames = task.expected_frames;
                measure_logged(tools, task.input, &output, frames, task.spec, node_id)
                    .await
                    .map(|q| ShardQuality {
                        crf: task.spec.crf,
                        ..q
                    })
            }
            false => None,
        };
        let (blob, pin) = store.import_pinned(&output).await?;
        Ok((blob, pin, quality))
    }
    .await;
    if result.is_err() {
        let _ = tokio::fs::remove_file(&output).await;
    }
    result
}
