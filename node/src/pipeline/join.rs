//! Stage 3: audio (once, started alongside the encodes), the join, and the
//! final verification against the source before the output is stored.

use std::path::{Path, PathBuf};

use tokio::task::JoinHandle;

use super::Failure;
use super::split::Prepared;
use crate::context::Ctx;
use crate::jobs::JobStatus;
use crate::media::{self, Inspection, MediaInfo};
use crate::store::BlobRef;

/// Largest audio duration difference accepted between output and source.
const AUDIO_TOLERANCE_SECONDS: f64 = 0.05;

type AudioTask = JoinHandle<Result<Option<PathBuf>, media::MediaError>>;

/// Starts preparing the output's audio track in the background.
pub fn start_audio(ctx: &Ctx, prepared: &Prepared, scratch: &Path) -> AudioTask {
    let plan = media::audio_plan(&prepared.info, prepared.params.format);
    let (tools, source) = (ctx.tools.clone(), prepared.source_path.clone());
    let output = plan
        .extension()
        .map(|ext| scratch.join(format!("audio.{ext}")));
    tokio::spawn(async move {
        let Some(output) = output else {
            return Ok(None);
        };
        media::prepare_audio(&tools, &source, &plan, &output).await?;
        Ok(Some(output))
    })
}

/// Checks the joined output against the source (pure): same frame count,
/// the planned size and codec, audio present exactly when the source has
/// it and as long as the source's within 50 ms.
pub fn check_output(
    found: &Inspection,
    source: &MediaInfo,
    size: (u32, u32),
    vp9: bool,
) -> Result<(), String> {
    if found.frames != source.frames() {
        return Err(format!(
            "output has {} frames, the source {}",
            found.frames,
            source.frames()
        ));
    }
    if (found.width, found.height) != size {
        return Err(format!(
            "output is {}x{}, expected {}x{}",
            found.width, found.height, size.0, size.1
        ));
    }
    let codec = if vp9 { "vp9" } else { "h264" };
    if found.codec != codec {
        return Err(format!("output video is {}, expected {codec}", found.codec));
    }
    match (&source.audio, &found.audio) {
        (None, None) => Ok(()),
        (Some(_), None) => Err("output lost the audio".into()),
        (None, Some(_)) => Err("output has audio the source lacks".into()),
        (Some(src), Some((_, out))) => match (src.duration_seconds, out) {
            (Some(a), Some(b)) if (a - b).abs() > AUDIO_TOLERANCE_SECONDS => Err(format!(
                "output audio lasts {b:.3} s, the source's {a:.3} s"
            )),
            _ => Ok(()),
        },
    }
}

pub async fn join_and_store(
    ctx: &Ctx,
    id: &str,
    prepared: &Prepared,
    audio: AudioTask,
    scratch: &Path,
) -> Result<(BlobRef, u64), Failure> {
    let fail = |m: String| Failure::new(JobStatus::ConcatenationFailed, m);
    super::set_status(
        ctx,
        id,
        JobStatus::Concatenating,
        "joining the encoded shards",
    )
    .await?;
    let shards: Vec<(PathBuf, f64)> = {
        let jobs = ctx.jobs.lock();
        let job = jobs.get(id).ok_or_else(|| fail("job vanished".into()))?;
        let mut list = Vec::with_capacity(job.shards.len());
        for shard in &job.shards {
            let blob = shard.encoded.as_ref().ok_or_else(|| {
                Failure::new(
                    JobStatus::ConcatenationPrerequisitesFailed,
                    format!("shard {} has no encoded result", shard.index),
                )
            })?;
            let path = ctx
                .store
                .path(&blob.sha256)
                .map_err(|e| fail(e.to_string()))?;
            list.push((path, shard.duration_seconds));
        }
        list
    };
    let audio_path = match audio.await {
        Ok(Ok(path)) => path,
        Ok(Err(e)) => return Err(fail(format!("preparing the audio failed: {e}"))),
        Err(e) => return Err(fail(format!("the audio task died: {e}"))),
    };
    let list_path = scratch.join("shards.ffconcat");
    tokio::fs::write(&list_path, media::ffconcat_list(&shards))
        .await
        .map_err(|e| fail(format!("writing the shard list: {e}")))?;
    let format = prepared.params.format;
    let output = scratch.join(format!("output.{}", format.extension()));
    media::join(
        &ctx.tools,
        &list_path,
        audio_path.as_deref(),
        format,
        &output,
    )
    .await
    .map_err(|e| fail(format!("join failed: {e}")))?;
    let found = media::inspect(&ctx.tools, &output)
        .await
        .map_err(|e| fail(format!("output unreadable: {e}")))?;
    let size = (prepared.spec.width, prepared.spec.height);
    check_output(&found, &prepared.info, size, format.is_vp9()).map_err(fail)?;
    let blob = ctx
        .store
        .import(&output)
        .await
        .map_err(|e| fail(format!("storing the output: {e}")))?;
    Ok((blob, found.frames))
}
