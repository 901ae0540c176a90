//! Encoding a shard to a quality target: the CRFs `target::next_step`
//! picks are each an encode of the whole shard, verified and measured
//! against the source; the kept one (the highest CRF that met the
//! target) becomes the result, the others are dropped with the scratch
//! dir. At most `target::MAX_PROBES` encodes per shard.
//!
//! Whole-shard probes instead of Av1an's samples: the kept probe is the
//! result, so every shard meets the target as measured rather than as
//! predicted from a sample, and the last probe costs nothing extra. The
//! price is up to four encodes of a shard (usually two or three).

use std::path::{Path, PathBuf};

use super::target::{self, Probe, Step};
use super::{ShardError, ShardTask, encode_checked, measure};
use crate::jobs::quality::ShardQuality;
use crate::media::{EncodeSpec, Progress, Tools};
use crate::params::QualityTarget;
use crate::store::{BlobPin, BlobRef, BlobStore};

/// Encodes `task` to `quality_target`, answering the kept result (stored
/// and pinned) and its measurement with every probe.
pub async fn encode_to_target(
    tools: &Tools,
    store: &BlobStore,
    task: &ShardTask<'_>,
    scratch: &Path,
    node_id: &str,
    quality_target: QualityTarget,
    mut on_progress: impl FnMut(Progress),
) -> Result<(BlobRef, BlobPin, ShardQuality), ShardError> {
    let max_crf = task.spec.codec.max_crf();
    let mut probes: Vec<Probe> = Vec::new();
    let mut tried: Vec<(u32, PathBuf, ShardQuality)> = Vec::new();
    loop {
        match target::next_step(quality_target, &probes, task.spec.crf, max_crf) {
            Step::Try(crf) => {
                let spec = EncodeSpec {
                    crf,
                    ..task.spec.clone()
                };
                let output = scratch.join(format!("probe-crf{crf}.{}", task.target.muxer));
                let probe = ShardTask {
                    input: task.input,
                    expected_frames: task.expected_frames,
                    spec: &spec,
                    target: task.target,
                };
                // The gauge shows the share of the most work there can be.
                let (done, frames) = (probes.len() as u64, task.expected_frames);
                let per_probe = |p: Progress| Progress {
                    frames: (done * frames + p.frames) / target::MAX_PROBES as u64,
                    ..p
                };
                encode_checked(tools, &probe, &output, |p| on_progress(per_probe(p))).await?;
                let quality =
                    measure::measure(tools, task.input, &output, frames, &spec, node_id).await?;
                let score = quality_target.score(quality.psnr.mean, quality.ssim.mean);
                tracing::debug!(crf, score, "probed a CRF for the quality target");
                probes.push(Probe { crf, score });
                tried.push((crf, output, quality));
            }
            Step::Keep(crf) => {
                let (_, path, mut quality) = tried
                    .into_iter()
                    .find(|(c, ..)| *c == crf)
                    .expect("next_step keeps only a CRF it tried");
                let (blob, pin) = store.import_pinned(&path).await?;
                quality.crf = crf;
                quality.probes = probes;
                return Ok((blob, pin, quality));
            }
        }
    }
}
