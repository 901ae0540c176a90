//! Job records as the wire sees them: the `vidshard.v1` messages and the
//! human summary in the original status `message`.

use std::time::Instant;

use vidshard_proto::v1;

use crate::jobs::{JobRecord, JobStatus};

/// The original `message` text: what is happening, with shard counts,
/// percent and ETA while processing.
pub fn status_message(job: &JobRecord) -> String {
    match job.status {
        JobStatus::Processing => {
            let total: u64 = job.shards.iter().map(|s| s.frames).sum();
            let eta = job
                .eta
                .eta_seconds(Instant::now(), total)
                .map(|s| format!(", about {s:.0} s left"))
                .unwrap_or_default();
            format!(
                "{}: {}/{} shards done, {:.0}%{eta}",
                job.message,
                job.shards_done(),
                job.shards.len(),
                job.progress() * 100.0
            )
        }
        _ => job.message.clone(),
    }
}

/// [`job_info`] with the copies this cluster wants of the output now.
pub fn job_info_for(sys: &crate::cluster::Sys, job: &JobRecord) -> v1::JobInfo {
    let others = sys.other_live_nodes();
    let mut info = job_info(job);
    if job.output.is_some() {
        info.output_replicas_wanted =
            crate::backups::plan::wanted(sys.config.backup_replicas, others) as u32;
    }
    info
}

pub fn job_info(job: &JobRecord) -> v1::JobInfo {
    let total: u64 = job.shards.iter().map(|s| s.frames).sum();
    let eta = match job.status {
        JobStatus::Completed => Some(0.0),
        JobStatus::Processing => job.eta.eta_seconds(Instant::now(), total),
        _ => None,
    };
    let summary = job.summary.clone();
    let (output_width, output_height) = job.output_size.unwrap_or((0, 0));
    v1::JobInfo {
        id: job.id.clone(),
        status: job.status.as_str().into(),
        message: status_message(job),
        params: Some(v1::JobParams {
            target_width: job.params.target.width.map_or(0, |v| v as i32),
            target_height: job.params.target.height.map_or(0, |v| v as i32),
            upscale_width: job
                .params
                .upscale
                .and_then(|u| u.width)
                .map_or(0, |v| v as i32),
            upscale_height: job
                .params
                .upscale
                .and_then(|u| u.height)
                .map_or(0, |v| v as i32),
            output_format: job.params.format.extension().into(),
            preset: job.params.preset.clone(),
            crf: job.params.crf as i32,
            original_filename: job.params.original_filename.clone(),
        }),
        source_bytes: job.source.size,
        source_frames: summary.as_ref().map_or(0, |s| s.frames),
        source_duration_seconds: summary.as_ref().map_or(0.0, |s| s.duration_seconds),
        source_width: summary.as_ref().map_or(0, |s| s.width),
        source_height: summary.as_ref().map_or(0, |s| s.height),
        source_has_audio: summary.as_ref().is_some_and(|s| s.has_audio),
        output_width,
        output_height,
        output_bytes: job.output.as_ref().map_or(0, |o| o.size),
        output_sha256: job
            .output
            .as_ref()
            .map(|o| o.sha256.clone())
            .unwrap_or_default(),
        output_frames: job.output_frames,
        shards: job
            .shards
            .iter()
            .map(|s| v1::ShardInfo {
                index: s.index,
                state: s.state.as_str().into(),
                worker: s.worker.clone(),
                progress: s.progress(),
                frames: s.frames,
                start_seconds: s.start_seconds,
                duration_seconds: s.duration_seconds,
                attempts: s.attempts,
                fps: s.fps,
                message: s.message.clone(),
                worker_id: s.worker_id.clone(),
                running_on: s.running_on.clone(),
                encode_seconds: s.encode_seconds,
                transfer_seconds: s.transfer_seconds,
            })
            .collect(),
        progress: job.progress(),
        eta_seconds: eta.unwrap_or(-1.0),
        created_unix_ms: job.created_unix_ms,
        updated_unix_ms: job.updated_unix_ms,
        finished: job.status.is_final(),
        timings: Some(v1::JobTimings {
            probe_split_seconds: job.timings.probe_split,
            encode_stage_seconds: job.timings.encode_stage,
            shard_encode_sum_seconds: job.shards.iter().map(|s| s.encode_seconds).sum(),
            shard_encode_max_seconds: job
                .shards
                .iter()
                .map(|s| s.encode_seconds)
                .fold(0.0, f64::max),
            transfer_sum_seconds: job.shards.iter().map(|s| s.transfer_seconds).sum(),
            join_seconds: job.timings.join,
            total_seconds: job.timings.total,
        }),
        output_holders: job.output_holders.clone(),
        output_pending: job.output_pending.clone(),
        output_replicas_wanted: 0,
    }
}
