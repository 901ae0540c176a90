//! A ladder job's package as the v1 API shows it: each rendition's
//! progress and measured bitrates, and the time to first playable
//! segment.

use vidshard_proto::v1;

use crate::jobs::package::RenditionKind;
use crate::jobs::quality::{ShardQuality, job_report};
use crate::jobs::{JobRecord, ShardRecord};

/// The rung a task encodes ("720p"; empty in a plain job).
pub fn rung_name(job: &JobRecord, shard: &ShardRecord) -> String {
    let (Some(task), Some(package)) = (shard.rung, job.package.as_ref()) else {
        return String::new();
    };
    package
        .renditions
        .get(task.rung as usize)
        .map(|r| r.id.clone())
        .unwrap_or_default()
}

pub fn renditions(job: &JobRecord) -> Vec<v1::RenditionInfo> {
    let Some(package) = &job.package else {
        return Vec::new();
    };
    let rungs = package.video().count().max(1);
    let pieces = (job.shards.len() / rungs) as u32;
    package
        .renditions
        .iter()
        .map(|r| {
            let (kind, width, height, language) = match &r.kind {
                RenditionKind::Video { width, height, .. } => ("video", *width, *height, None),
                RenditionKind::Audio { language, .. } => ("audio", 0, 0, language.clone()),
            };
            let is_video = r.is_video();
            let rung = job
                .package
                .as_ref()
                .and_then(|p| p.video().position(|v| v.id == r.id));
            let quality = rung.and_then(|rung| job_report(&rung_qualities(job, rung)));
            v1::RenditionInfo {
                id: r.id.clone(),
                kind: kind.into(),
                width,
                height,
                codecs: r.codecs.clone(),
                segments: r.segments.len() as u32,
                seconds: r.seconds(),
                peak_bitrate: r.peak_bitrate(),
                average_bitrate: r.average_bitrate(),
                pieces_done: r.shards_packaged,
                pieces: if is_video { pieces } else { 1 },
                language: language.unwrap_or_default(),
                quality: quality.as_ref().map(Into::into),
            }
        })
        .collect()
}

/// The measurements of rung `rung`'s tasks in piece order (a plain job:
/// every shard's, and `rung` is ignored).
pub fn rung_qualities(job: &JobRecord, rung: usize) -> Vec<Option<&ShardQuality>> {
    job.shards
        .iter()
        .filter(|s| s.rung.is_none_or(|t| t.rung as usize == rung))
        .map(|s| s.quality.as_ref())
        .collect()
}

pub fn first_playable_ms(job: &JobRecord) -> u64 {
    job.package
        .as_ref()
        .and_then(|p| p.first_playable_ms)
        .unwrap_or(0)
}

/// Upload accepted → every rung has a segment, seconds (0: not yet).
pub fn first_playable_seconds(job: &JobRecord) -> f64 {
    match first_playable_ms(job) {
        0 => 0.0,
        at => at.saturating_sub(job.created_unix_ms) as f64 / 1000.0,
    }
}
