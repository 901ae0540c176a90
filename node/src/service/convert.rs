//! Job records as the wire sees them: the `vidshard.v1` messages and the
//! human summary in the original status `message`.

use std::time::Instant;

use vidshard_proto::v1;

use crate::jobs::quality::job_report;
use crate::jobs::{JobRecord, JobStatus};
use crate::params::QualityTarget;

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

/// Encoded bytes of job entries one reply or snapshot carries at most:
/// clients decode up to 4 MiB (the console 8 MiB), and nodes and events
/// share the message. 6,400 failed uploads with long names once made
/// 8.9 MB and broke `vidshard jobs` and the console.
pub const MAX_JOB_BYTES: usize = 2 << 20;

/// Which entries fit in `budget` bytes (pure): each entry is (ended,
/// last changed, encoded length); running jobs are kept first, then the
/// most recently changed. Answers a keep flag per entry, in their order.
pub fn fit_jobs(entries: &[(bool, u64, usize)], budget: usize) -> Vec<bool> {
    let mut order: Vec<usize> = (0..entries.len()).collect();
    order.sort_by_key(|&i| (entries[i].0, std::cmp::Reverse(entries[i].1)));
    let mut keep = vec![false; entries.len()];
    let mut used = 0usize;
    for i in order {
        let len = entries[i].2;
        if used + len <= budget {
            used += len;
            keep[i] = true;
        }
    }
    keep
}

/// The jobs of `jobs` as wire entries within [`MAX_JOB_BYTES`], in table
/// order, and how many were left out.
pub fn jobs_within(sys: &crate::cluster::Sys, jobs: &[&JobRecord]) -> (Vec<v1::JobInfo>, u32) {
    use prost::Message as _;
    let infos: Vec<v1::JobInfo> = jobs.iter().map(|job| job_info_for(sys, job)).collect();
    let entries: Vec<(bool, u64, usize)> = jobs
        .iter()
        .zip(&infos)
        .map(|(job, info)| {
            // The length prefix and tag take a few bytes more.
            (
                job.status.is_final(),
                job.updated_unix_ms,
                info.encoded_len() + 8,
            )
        })
        .collect();
    let keep = fit_jobs(&entries, MAX_JOB_BYTES);
    let omitted = keep.iter().filter(|k| !**k).count() as u32;
    let kept = infos
        .into_iter()
        .zip(keep)
        .filter_map(|(info, keep)| keep.then_some(info))
        .collect();
    (kept, omitted)
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
    // A ladder's job report is its top rung's (the single file's).
    let shard_qualities = super::convert_package::rung_qualities(job, 0);
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
            codec: job.params.codec().name().into(),
            pix_fmt: match job.params.pix_fmt {
                crate::params::PixFmtChoice::Auto => "auto",
                crate::params::PixFmtChoice::Yuv420p => "yuv420p",
                crate::params::PixFmtChoice::Yuv420p10le => "yuv420p10le",
            }
            .into(),
            tonemap: job.params.tonemap,
            skip_quality: job.params.skip_quality,
            audio: job.params.audio.name().into(),
            target_ssim: QualityTarget::to_wire(job.params.quality_target).0,
            target_psnr: QualityTarget::to_wire(job.params.quality_target).1,
            ladder: job
                .params
                .ladder
                .as_ref()
                .map(|l| l.rungs.describe())
                .unwrap_or_default(),
            package: job
                .params
                .ladder
                .as_ref()
                .map(|l| l.packages.describe().to_string())
                .unwrap_or_default(),
            segment_seconds: job.params.ladder.as_ref().map(|l| l.segment_seconds),
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
                quality: s.quality.as_ref().map(Into::into),
                rung: super::convert_package::rung_name(job, s),
                piece: s.piece(),
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
        quality: job_report(&shard_qualities).as_ref().map(Into::into),
        renditions: super::convert_package::renditions(job),
        first_playable_unix_ms: super::convert_package::first_playable_ms(job),
        first_playable_seconds: super::convert_package::first_playable_seconds(job),
        packages: job
            .package
            .as_ref()
            .map(|p| p.packages.describe().to_string())
            .unwrap_or_default(),
    }
}

#[cfg(test)]
mod tests {
    use super::fit_jobs;

    #[test]
    fn running_jobs_first_then_the_most_recent_within_the_budget() {
        // (ended, last changed, bytes)
        let entries = [
            (true, 10, 40),
            (false, 1, 40),
            (true, 30, 40),
            (true, 20, 40),
        ];
        assert_eq!(fit_jobs(&entries, 100), vec![false, true, true, false]);
        assert_eq!(fit_jobs(&entries, 1000), vec![true; 4]);
        // One too big for the budget is skipped, smaller ones still fit.
        let entries = [(false, 1, 500), (true, 5, 40)];
        assert_eq!(fit_jobs(&entries, 100), vec![false, true]);
    }
}
