//! The worker role: encode one shard and verify the result before anyone
//! accepts it (frame count, resolution, codec). The master runs this for
//! shards it encodes itself; remote workers run the same code for the
//! master's `RunShard` calls (`run_shard`; `tasks` tracks their progress).
//! `fidelity` is the master's check that a returned result shows the
//! source at all.
//! [`Worker`] is the subsystem's handle; `heartbeat` tells the master
//! this node is alive, how loaded it is and how its shards progress.

pub mod bundle;
pub mod copy;
pub mod drain;
pub mod fence;
pub mod fidelity;
mod handle;
pub mod heartbeat;
pub mod measure;
pub mod run_shard;
pub mod target;
mod target_encode;
mod tasks;

pub use handle::{Stopping, Worker};
pub use tasks::{RunningTask, WorkerTasks};

use std::path::Path;

use crate::media::{self, EncodeSpec, EncodeTarget, Progress, Tools};
use crate::store::{BlobPin, BlobRef, BlobStore};

/// A shard the worker is asked to encode.
pub struct ShardTask<'a> {
    pub input: &'a Path,
    pub expected_frames: u64,
    pub spec: &'a EncodeSpec,
    pub target: EncodeTarget<'a>,
}

/// Why a shard did not produce a usable result.
#[derive(Debug, thiserror::Error)]
pub enum ShardError {
    #[error("encode failed: {0}")]
    Encode(#[from] media::MediaError),
    #[error("verification failed: {0}")]
    Verify(#[from] Mismatch),
    #[error("storing the result failed: {0}")]
    Store(#[from] crate::store::StoreError),
}

/// How an encoded shard differs from what was asked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Mismatch {
    #[error("encoded {found} frames, expected {expected}")]
    Frames { found: u64, expected: u64 },
    #[error("encoded {}x{}, expected {}x{}", found.0, found.1, expected.0, expected.1)]
    Size {
        found: (u32, u32),
        expected: (u32, u32),
    },
    #[error("encoded with {found}, expected {expected}")]
    Codec {
        found: String,
        expected: &'static str,
    },
    #[error("encoded in {found}, expected {expected}")]
    PixFmt {
        found: String,
        expected: &'static str,
    },
}

/// Checks an encoded shard against what was asked (pure).
pub fn check_encoded(
    found: &media::Inspection,
    expected_frames: u64,
    spec: &EncodeSpec,
) -> Result<(), Mismatch> {
    let codec = spec.codec.name();
    if found.frames != expected_frames {
        return Err(Mismatch::Frames {
            found: found.frames,
            expected: expected_frames,
        });
    }
    if (found.width, found.height) != (spec.width, spec.height) {
        return Err(Mismatch::Size {
            found: (found.width, found.height),
            expected: (spec.width, spec.height),
        });
    }
    if found.codec != codec {
        return Err(Mismatch::Codec {
            found: found.codec.clone(),
            expected: codec,
        });
    }
    if found.pix_fmt != spec.pix_fmt.name() {
        return Err(Mismatch::PixFmt {
            found: found.pix_fmt.clone(),
            expected: spec.pix_fmt.name(),
        });
    }
    Ok(())
}

/// Encodes `task.input` into `scratch`, verifies it and moves it into the
/// store, pinned until the caller has recorded it somewhere (names are
/// content: another job's end could otherwise discard the same bytes).
pub async fn encode_verified(
    tools: &Tools,
    store: &BlobStore,
    task: &ShardTask<'_>,
    scratch: &Path,
    on_progress: impl FnMut(Progress),
) -> Result<(BlobRef, BlobPin), ShardError> {
    let output = encoded_path(scratch, task);
    let result = async {
        encode_checked(tools, task, &output, on_progress).await?;
        Ok(store.import_pinned(&output).await?)
    }
    .await;
    if result.is_err() {
        let _ = tokio::fs::remove_file(&output).await;
    }
    result
}

/// A fresh name in `scratch` for `task`'s encoded result.
pub fn encoded_path(scratch: &Path, task: &ShardTask<'_>) -> std::path::PathBuf {
    scratch.join(format!(
        "encoded-{}.{}",
        uuid::Uuid::new_v4().simple(),
        task.target.muxer
    ))
}

/// Encodes `task.input` into `output` and checks the result against
/// what was asked (frames, size, codec, pixel format).
pub async fn encode_checked(
    tools: &Tools,
    task: &ShardTask<'_>,
    output: &Path,
    on_progress: impl FnMut(Progress),
) -> Result<(), ShardError> {
    media::encode_shard(
        tools,
        task.spec,
        task.input,
        output,
        task.target,
        on_progress,
    )
    .await?;
    let found = media::inspect(tools, output).await?;
    check_encoded(&found, task.expected_frames, task.spec)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::params::OutputFormat;

    #[test]
    fn verification_names_what_is_wrong() {
        let spec = EncodeSpec {
            width: 320,
            height: 180,
            format: OutputFormat::Mp4,
            codec: crate::params::VideoCodec::H264,
            pix_fmt: crate::params::PixFmt::Yuv420p,
            preset: "veryfast".into(),
            crf: 23,
            threads: 0,
            orientation: Default::default(),
            colour: Default::default(),
            tonemap: false,
            quality_target: None,
            rung: None,
        };
        let good = media::Inspection {
            frames: 300,
            width: 320,
            height: 180,
            codec: "h264".into(),
            pix_fmt: "yuv420p".into(),
            audio: None,
            audio_tracks: Vec::new(),
            subtitles: 0,
        };
        assert_eq!(check_encoded(&good, 300, &spec), Ok(()));
        assert!(
            check_encoded(&good, 301, &spec)
                .unwrap_err()
                .to_string()
                .contains("300 frames")
        );
        let small = media::Inspection {
            width: 160,
            ..good.clone()
        };
        assert!(
            check_encoded(&small, 300, &spec)
                .unwrap_err()
                .to_string()
                .contains("160x180")
        );
        let ten_bit = media::Inspection {
            pix_fmt: "yuv420p10le".into(),
            ..good.clone()
        };
        assert!(
            check_encoded(&ten_bit, 300, &spec)
                .unwrap_err()
                .to_string()
                .contains("yuv420p10le")
        );
        let vp9 = media::Inspection {
            codec: "vp9".into(),
            ..good
        };
        assert!(
            check_encoded(&vp9, 300, &spec)
                .unwrap_err()
                .to_string()
                .contains("vp9")
        );
    }
}
