//! Splitting: the video stream only, stream copy, cut at planned decode
//! indices, each shard's timestamps reset to zero. Audio stays out of the
//! shards (it is handled once for the whole file).

use std::path::{Path, PathBuf};

use super::plan::ShardPlan;
use super::run::{MediaError, Tools, command, run_lines};

/// Container for split shards: nut keeps exact timestamps for any codec.
pub const SHARD_EXTENSION: &str = "nut";

/// Splits `source` into `dir/shard-00000.nut`, ... following `plan`,
/// sending each shard's path to `done` as soon as ffmpeg has closed it (so
/// encoding can start while the rest is still being split).
pub async fn split_video(
    tools: &Tools,
    source: &Path,
    plan: &ShardPlan,
    total_frames: u64,
    dir: &Path,
    done: tokio::sync::mpsc::UnboundedSender<PathBuf>,
) -> Result<usize, MediaError> {
    let points = plan.split_points();
    let frames_arg = if points.is_empty() {
        // One segment: a split point past the end never triggers.
        (total_frames + 1).to_string()
    } else {
        points
            .iter()
            .map(usize::to_string)
            .collect::<Vec<_>>()
            .join(",")
    };
    let pattern = dir.join(format!("shard-%05d.{SHARD_EXTENSION}"));
    let mut cmd = command(&tools.ffmpeg);
    cmd.args(["-nostdin", "-hide_banner", "-v", "error", "-y", "-i"])
        .arg(source)
        .args([
            "-map",
            "0:v:0",
            "-c",
            "copy",
            "-f",
            "segment",
            "-segment_format",
            SHARD_EXTENSION,
        ])
        .args(["-segment_frames", &frames_arg, "-reset_timestamps", "1"])
        .args(["-segment_list", "pipe:1", "-segment_list_type", "flat"])
        .arg(&pattern);
    let mut count = 0usize;
    let mut unexpected = None;
    run_lines(cmd, |line| {
        let name = line.trim();
        let expected = format!("shard-{count:05}.{SHARD_EXTENSION}");
        if name != expected {
            unexpected.get_or_insert_with(|| name.to_string());
            return;
        }
        count += 1;
        let _ = done.send(dir.join(name));
    })
    .await?;
    if let Some(name) = unexpected {
        return Err(MediaError::Invalid(format!(
            "splitting produced an unexpected segment {name:?}"
        )));
    }
    if count != plan.shards.len() {
        return Err(MediaError::Invalid(format!(
            "splitting produced {count} shards, {} were planned",
            plan.shards.len()
        )));
    }
    Ok(count)
}

/// Copies the video stream (and the audio with `keep_audio`) of `input`
/// into `output` with the muxer `muxer`, no re-encode: used to hand shards
/// to original-protocol peers in a container they know, and to take their
/// results back as video-only nut.
pub async fn remux(
    tools: &Tools,
    input: &Path,
    output: &Path,
    muxer: &str,
    keep_audio: bool,
) -> Result<(), MediaError> {
    let mut cmd = command(&tools.ffmpeg);
    cmd.args(["-nostdin", "-hide_banner", "-v", "error", "-y", "-i"])
        .arg(input)
        .args(["-map", "0:v:0"]);
    if keep_audio {
        cmd.args(["-map", "0:a:0?"]);
    }
    cmd.args(["-c", "copy"]);
    if muxer == "mp4" || muxer == "mov" {
        cmd.args(["-movflags", "+faststart"]);
    }
    cmd.args(["-f", muxer]).arg(output);
    run_lines(cmd, |_| {}).await
}
