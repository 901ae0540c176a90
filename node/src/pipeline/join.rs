//! Stage 3: audio and subtitle tracks (once, started alongside the
//! encodes), the end of the join (`joiner.rs` runs it), and the final
//! verification against the source while the output is stored.

use std::path::{Path, PathBuf};

use tokio::task::JoinHandle;

use super::split::Prepared;
use crate::cluster::Sys;
use crate::jobs::JobStatus;
use crate::jobs::JobStop;
use crate::media::{self, Inspection, MediaInfo, TracksPlan};
use crate::params::VideoCodec;
use crate::store::BlobRef;

/// Largest audio duration difference accepted between output and source.
const AUDIO_TOLERANCE_SECONDS: f64 = 0.05;

/// The prepared audio and subtitle files (None: the output has none).
#[derive(Debug, Default)]
pub struct SideFiles {
    pub audio: Option<PathBuf>,
    pub subtitles: Option<PathBuf>,
}

pub(super) type SideTask = JoinHandle<Result<SideFiles, media::MediaError>>;

/// The join running from the plan on (see `joiner`): the output's path
/// once every shard was fed to it.
pub type Joiner = JoinHandle<Result<PathBuf, JobStop>>;

/// Starts preparing the output's audio and subtitle files in the
/// background (both at once: each reads the source once).
pub fn start_side_tracks(sys: &Sys, prepared: &Prepared, scratch: &Path) -> SideTask {
    let plan = prepared.tracks.clone();
    let format = prepared.params.format;
    let (tools, source) = (sys.tools.clone(), prepared.source_path.clone());
    let audio_path = scratch.join(format!(
        "audio.{}",
        media::TracksPlan::audio_extension(format)
    ));
    let subtitles_path = scratch.join("subtitles.mkv");
    tokio::spawn(async move {
        let audio = async {
            if plan.audio.is_empty() {
                return Ok(None);
            }
            media::prepare_audio(&tools, &source, &plan, format, &audio_path).await?;
            Ok::<_, media::MediaError>(Some(audio_path))
        };
        let subtitles = async {
            if plan.subtitles.is_empty() {
                return Ok(None);
            }
            media::prepare_subtitles(&tools, &source, &plan, &subtitles_path).await?;
            Ok(Some(subtitles_path))
        };
        let (audio, subtitles) = tokio::try_join!(audio, subtitles)?;
        Ok(SideFiles { audio, subtitles })
    })
}

/// How a joined output differs from its source.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum OutputMismatch {
    #[error("output has {found} frames, the source {source_frames}")]
    Frames { found: u64, source_frames: u64 },
    #[error("output is {}x{}, expected {}x{}", found.0, found.1, expected.0, expected.1)]
    Size {
        found: (u32, u32),
        expected: (u32, u32),
    },
    #[error("output video is {found}, expected {expected}")]
    Codec {
        found: String,
        expected: &'static str,
    },
    #[error("output has {found} audio tracks, {planned} were planned")]
    AudioTracks { found: usize, planned: usize },
    #[error("output audio track {track} lasts {found:.3} s, the source's {source_seconds:.3} s")]
    AudioLength {
        track: usize,
        found: f64,
        source_seconds: f64,
    },
    #[error("output has {found} subtitle tracks, {planned} were planned")]
    Subtitles { found: u32, planned: usize },
}

/// Checks the joined output against the source (pure): same frame count,
/// the planned size and codec, the planned audio tracks each as long as
/// its source track within 50 ms, the planned subtitle tracks.
pub fn check_output(
    found: &Inspection,
    source: &MediaInfo,
    tracks: &TracksPlan,
    size: (u32, u32),
    codec: VideoCodec,
) -> Result<(), OutputMismatch> {
    if found.frames != source.frames() {
        return Err(OutputMismatch::Frames {
            found: found.frames,
            source_frames: source.frames(),
        });
    }
    if (found.width, found.height) != size {
        return Err(OutputMismatch::Size {
            found: (found.width, found.height),
            expected: size,
        });
    }
    if found.codec != codec.name() {
        return Err(OutputMismatch::Codec {
            found: found.codec.clone(),
            expected: codec.name(),
        });
    }
    if found.audio_tracks.len() != tracks.audio.len() {
        return Err(OutputMismatch::AudioTracks {
            found: found.audio_tracks.len(),
            planned: tracks.audio.len(),
        });
    }
    for (track, (out, planned)) in found.audio_tracks.iter().zip(&tracks.audio).enumerate() {
        if let (Some(a), Some(b)) = (planned.track.duration_seconds, out)
            && (a - b).abs() > AUDIO_TOLERANCE_SECONDS
        {
            return Err(OutputMismatch::AudioLength {
                track,
                found: *b,
                source_seconds: a,
            });
        }
    }
    if found.subtitles as usize != tracks.subtitles.len() {
        return Err(OutputMismatch::Subtitles {
            found: found.subtitles,
            planned: tracks.subtitles.len(),
        });
    }
    Ok(())
}

/// Waits for the join (started at the plan, see `joiner.rs`), then checks
/// the output against the source while it is hashed into the store: both
/// read the finished file at once (the check through a hard link, as the
/// store moves the file). A failed check takes the blob out of the store
/// again unless another job's output has the same bytes.
pub async fn join_and_store(
    sys: &Sys,
    id: &str,
    prepared: &Prepared,
    joiner: Joiner,
    scratch: &Path,
) -> Result<(BlobRef, u64), JobStop> {
    let fail = |m: String| JobStop::failed(JobStatus::ConcatenationFailed, m);
    {
        let jobs = sys.jobs.lock();
        let job = jobs.get(id).ok_or_else(|| fail("job vanished".into()))?;
        if let Some(shard) = job.shards.iter().find(|s| s.encoded.is_none()) {
            return Err(JobStop::failed(
                JobStatus::ConcatenationPrerequisitesFailed,
                format!("shard {} has no encoded result", shard.index),
            ));
        }
    }
    let status =
        sys.consensus
            .record_status(id, JobStatus::Concatenating, "joining the encoded shards");
    let joined = async {
        match joiner.await {
            Ok(result) => result,
            Err(e) => Err(fail(format!("the join task died: {e}"))),
        }
    };
    let ((), output) = tokio::try_join!(status, joined)?;
    let format = prepared.params.format;
    let link = scratch.join(format!("verify.{}", format.extension()));
    tokio::fs::hard_link(&output, &link)
        .await
        .map_err(|e| fail(format!("linking the output for its check: {e}")))?;
    let (found, stored) =
        tokio::join!(media::inspect(&sys.tools, &link), sys.store.import(&output));
    let blob = stored.map_err(|e| fail(format!("storing the output: {e}")))?;
    // A ladder's single file is its top rung.
    let top = prepared.rung_specs.first().unwrap_or(&prepared.spec);
    let size = (top.width, top.height);
    let checked = found
        .map_err(|e| format!("output unreadable: {e}"))
        .and_then(|found| {
            check_output(
                &found,
                &prepared.info,
                &prepared.tracks,
                size,
                prepared.spec.codec,
            )
            .map(|()| found.frames)
            .map_err(|e| e.to_string())
        });
    match checked {
        Ok(frames) => Ok((blob, frames)),
        Err(message) => {
            let shared = sys.jobs.lock().list().iter().any(|job| {
                job.id != id && job.output.as_ref().is_some_and(|o| o.sha256 == blob.sha256)
            });
            if !shared {
                let _ = sys.store.remove(&blob.sha256).await;
            }
            Err(fail(message))
        }
    }
}
