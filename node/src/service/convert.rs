//! Job records as the wire sees them: the `vidshard.v1` messages and the
//! human summary in the original status `message`.

use std::time::Instant;

use vidshard_proto::v1;

use crate::jobs::quality::job_report;
use crate::jobs::{JobRecord, JobStatus};
use crate::params::QualityTarget;
use crate::scheduler::{Standing, Standings};

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

/// [`job_info`] with the copies this cluster wants of the output now
/// and where the job stands in the scheduling between jobs.
pub fn job_info_for(sys: &crate::cluster::Sys, standing: Standing, job: &JobRecord) -> v1::JobInfo {
    let others = sys.other_live_nodes();
    let mut info = job_info(job);
    if job.output.is_some() {
        info.output_replicas_wanted =
            crate::backups::plan::wanted(sys.config.backup_replicas, others) as u32;
    }
    info.queue_position = standing.position;
    info.slot_share = standing.share;
    info.slots_held = standing.held;
    info
}

/// Encoded bytes of job entries one reply or snapshot carries at most:
/// clients decode up to 4 MiB (the console 8 MiB), and nodes and events
/// share the message. 6,400 failed uploads with long names once made
/// 8.9 MB and broke `vidshard jobs` and the console.
pub const MAX_JOB_BYTES: usize = 2 << 20;

/// Picks entries within `budget` bytes (pure but for `make`): each entry
/// is (ended, last changed); running jobs are visited first, then the
/// most recently changed, and `make(i)` builds entry `i` and says its
/// size only when it is visited. Stops at the first ended entry that
/// does not fit, so a table of 100,000 ended jobs costs a few hundred
/// entries. Answers (index, entry) in the entries' order.
pub fn pick_within<T>(
    entries: &[(bool, u64)],
    budget: usize,
    mut make: impl FnMut(usize) -> (T, usize),
) -> Vec<(usize, T)> {
    let mut order: Vec<usize> = (0..entries.len()).collect();
    order.sort_by_key(|&i| (entries[i].0, std::cmp::Reverse(entries[i].1)));
    let mut kept = Vec::new();
    let mut used = 0usize;
    for i in order {
        let (entry, len) = make(i);
        if used + len > budget {
            if entries[i].0 {
                break;
            }
            continue;
        }
        used += len;
        kept.push((i, entry));
    }
    kept.sort_by_key(|(i, _)| *i);
    kept
}

/// The jobs of `jobs` as wire entries within [`MAX_JOB_BYTES`], in table
/// order, and how many were left out (the console's snapshot).
pub fn jobs_within(
    sys: &crate::cluster::Sys,
    standings: &Standings,
    jobs: &[&JobRecord],
) -> (Vec<v1::JobInfo>, u32) {
    use prost::Message as _;
    let entries: Vec<(bool, u64)> = jobs
        .iter()
        .map(|j| (j.status.is_final(), j.updated_unix_ms))
        .collect();
    let kept = pick_within(&entries, MAX_JOB_BYTES, |i| {
        let info = job_info_for(sys, standings.of(&jobs[i].id), jobs[i]);
        // The length prefix and tag take a few bytes more.
        let len = info.encoded_len() + 8;
        (info, len)
    });
    let omitted = (jobs.len() - kept.len()) as u32;
    (kept.into_iter().map(|(_, info)| info).collect(), omitted)
}

/// A page of the listing as wire entries, cut where the reply would pass
/// [`MAX_JOB_BYTES`] (the next page starts there), and the token of the
/// next page (empty after the last).
pub fn page_within(
    sys: &crate::cluster::Sys,
    standings: &Standings,
    page: &crate::jobs::listing::Page<'_>,
) -> (Vec<v1::JobInfo>, String) {
    use prost::Message as _;
    let mut infos = Vec::new();
    let mut used = 0usize;
    for job in &page.jobs {
        let info = job_info_for(sys, standings.of(&job.id), job);
        let len = info.encoded_len() + 8;
        if used + len > MAX_JOB_BYTES && !infos.is_empty() {
            break;
        }
        used += len;
        infos.push(info);
    }
    let more = infos.len() < page.jobs.len() || page.after > 0;
    let next = match (more, infos.len().checked_sub(1)) {
        (true, Some(last)) => crate::jobs::listing::PageToken::after(page.jobs[last]).encode(),
        _ => String::new(),
    };
    (infos, next)
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
            priority: Some(job.params.priority),
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
        // Set by `job_info_for` on the master.
        queue_position: 0,
        slot_share: 0,
        slots_held: 0,
        wait_seconds: job.wait_seconds(crate::jobs::now_unix_ms()),
        priority: job.params.priority,
    }
}

#[cfg(test)]
mod tests {
    use super::pick_within;

    /// Keep flags of `pick_within` over (ended, last changed, bytes), and
    /// which entries it built.
    fn fit(entries: &[(bool, u64, usize)], budget: usize) -> (Vec<bool>, Vec<usize>) {
        let heads: Vec<(bool, u64)> = entries.iter().map(|e| (e.0, e.1)).collect();
        let mut built = Vec::new();
        let kept = pick_within(&heads, budget, |i| {
            built.push(i);
            ((), entries[i].2)
        });
        let mut keep = vec![false; entries.len()];
        for (i, ()) in kept {
            keep[i] = true;
        }
        (keep, built)
    }

    #[test]
    fn running_jobs_first_then_the_most_recent_within_the_budget() {
        let entries = [
            (true, 10, 40),
            (false, 1, 40),
            (true, 30, 40),
            (true, 20, 40),
        ];
        assert_eq!(fit(&entries, 100).0, vec![false, true, true, false]);
        assert_eq!(fit(&entries, 1000).0, vec![true; 4]);
        // A running job too big for the budget is skipped, others still fit.
        let entries = [(false, 1, 500), (true, 5, 40)];
        assert_eq!(fit(&entries, 100).0, vec![false, true]);
    }

    #[test]
    fn ended_jobs_past_the_budget_are_never_built() {
        let entries: Vec<(bool, u64, usize)> = (0..100_000).map(|i| (true, i, 40)).collect();
        let (keep, built) = fit(&entries, 400);
        assert_eq!(keep.iter().filter(|k| **k).count(), 10);
        assert!(keep[99_999] && !keep[0], "the most recent are kept");
        assert_eq!(built.len(), 11, "one past the budget, then it stops");
    }
}
