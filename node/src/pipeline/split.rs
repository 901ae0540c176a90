//! Stage 1: probe the source and plan the shards, then split with
//! stream copy, storing each shard and handing it to the scheduler the
//! moment ffmpeg closes it, so encoding overlaps the split.

use std::path::{Path, PathBuf};

use tokio::sync::mpsc;

use crate::jobs::JobStop;
use std::sync::Arc;

use super::Master;
use super::ladder_plan;
use crate::jobs::{Command, JobStatus, PlannedShard, ShardState, SourceSummary, now_unix_ms};
use crate::media::{self, EncodeSpec, MediaInfo, ShardPlan};
use crate::params::{self, JobParams};
use crate::store::BlobRef;

/// What the later stages need from the first one.
pub struct Prepared {
    pub info: MediaInfo,
    pub params: JobParams,
    pub spec: EncodeSpec,
    pub source_path: std::path::PathBuf,
    /// What becomes of the audio and subtitle tracks.
    pub tracks: media::TracksPlan,
    /// A ladder job's spec per rung, highest first (empty: one file of
    /// `spec`); a task's spec is `task_specs()[rung]`.
    pub rung_specs: Vec<EncodeSpec>,
}

impl Prepared {
    pub fn is_ladder(&self) -> bool {
        !self.rung_specs.is_empty()
    }

    /// The specs tasks refer to: a ladder's rungs, else the one spec.
    pub fn task_specs(&self) -> Vec<EncodeSpec> {
        if self.is_ladder() {
            self.rung_specs.clone()
        } else {
            vec![self.spec.clone()]
        }
    }
}

/// Probes the upload, picks the output size and plans the shards; the
/// job's shard rows exist from here on (state `splitting`).
pub async fn probe_and_plan(
    master: &Arc<Master>,
    id: &str,
) -> Result<(Prepared, ShardPlan), JobStop> {
    let fail = |m: String| JobStop::failed(JobStatus::FailedSegmentation, m);
    let (source, params, fresh) = {
        let jobs = master.sys.jobs.lock();
        let job = jobs.get(id).ok_or_else(|| fail("job vanished".into()))?;
        (
            job.source.clone(),
            job.params.clone(),
            job.shards.is_empty(),
        )
    };
    let source_path = master
        .sys
        .store
        .path(&source.sha256)
        .map_err(|e| fail(e.to_string()))?;
    // The status is recorded while ffprobe runs, not before.
    let status = async {
        if fresh {
            master
                .sys
                .consensus
                .record_status(id, JobStatus::Segmenting, "probing the upload")
                .await?;
        }
        Ok::<(), JobStop>(())
    };
    let (status, probed) = tokio::join!(status, media::probe(&master.sys.tools, &source_path));
    status?;
    let info = probed.map_err(|e| fail(format!("not a usable video: {e}")))?;
    // Sizes are of the picture as displayed: a phone's portrait is
    // stored landscape and turned by its display matrix.
    let (shown_width, shown_height) = info.displayed_size();
    let (width, height) = params::output_size(&params, shown_width, shown_height);
    params::check_pixels(width.into(), height.into())
        .map_err(|too_big| fail(format!("the output size asked for: {too_big}")))?;
    let pix_fmt = params.pix_fmt.resolve(params.codec(), info.high_depth);
    params::check_hdr(
        &info.colour.transfer,
        params.codec(),
        pix_fmt,
        params.tonemap,
    )
    .map_err(|refused| fail(refused.to_string()))?;
    let spec = EncodeSpec {
        width,
        height,
        format: params.format,
        codec: params.codec(),
        pix_fmt,
        preset: params.preset.clone(),
        crf: params.crf,
        threads: master.sys.config.encoder_threads(),
        orientation: info.orientation,
        colour: info.colour.clone(),
        // Only an HDR source is tone-mapped.
        tonemap: params.tonemap && info.colour.is_hdr(),
        quality_target: params.quality_target,
        rung: None,
    };
    let mut tracks = media::tracks::plan(&info.tracks, params.format, params.audio);
    if params.ladder.is_some() && !tracks.subtitles.is_empty() {
        tracks.dropped.push(format!(
            "{} subtitle track(s) left out: ladders carry video and audio only (docs/streaming.md)",
            tracks.subtitles.len()
        ));
        tracks.subtitles.clear();
    }
    let duration_seconds = info.video_end_seconds - info.video_start_seconds();
    let rate = ladder_plan::frame_rate(info.frames(), duration_seconds);
    let (rungs, dropped_rungs) = match &params.ladder {
        Some(ladder) => {
            crate::params::plan_rungs(&ladder.rungs, spec.codec, shown_width, shown_height)
        }
        None => (Vec::new(), Vec::new()),
    };
    let rung_specs = match &params.ladder {
        Some(ladder) => ladder_plan::rung_specs(&spec, &rungs, ladder, rate),
        None => Vec::new(),
    };
    let needed = rung_specs.first().unwrap_or(&spec);
    if let Some(why) = media::abilities::why_none_can_run(needed, &live_abilities(master)) {
        return Err(fail(why));
    }
    let shard_seconds = match &params.ladder {
        Some(ladder) => {
            ladder_plan::shard_seconds(master.sys.config.shard_seconds, ladder.segment_seconds)
        }
        None => master.sys.config.shard_seconds,
    };
    // A ladder has a task per rung of every piece, enough to keep the
    // slots busy to the end without shorter last pieces; and its plan
    // must not depend on who is alive, or a new master's plan would
    // differ and throw away the segments viewers already have.
    let tail = if params.ladder.is_some() {
        0
    } else {
        media::tail_shards(live_slots(master))
    };
    let plan = media::plan_shards_with_tail(
        &info.packets,
        info.time_base,
        info.video_end_seconds,
        shard_seconds,
        tail,
    );
    let count = plan.shards.len();
    let pieces: Vec<PlannedShard> = plan
        .shards
        .iter()
        .map(|cut| PlannedShard {
            frames: cut.frames,
            start_seconds: cut.start_seconds,
            duration_seconds: cut.duration_seconds,
            rung: None,
        })
        .collect();
    let (shards, package, what) = match &params.ladder {
        Some(ladder) => (
            ladder_plan::tasks(&pieces, rungs.len()),
            Some(Box::new(ladder_plan::package(
                ladder, &rungs, &tracks, rate,
            ))),
            ladder_words(&rungs, &dropped_rungs, ladder.packages.describe()),
        ),
        None => (
            pieces,
            None,
            format!("{width}x{height} {}", params.format.extension()),
        ),
    };
    let command = Command::Plan {
        job: id.to_string(),
        summary: SourceSummary {
            width: shown_width,
            height: shown_height,
            frames: info.frames(),
            duration_seconds,
            has_audio: info.audio.is_some(),
        },
        output_size: rungs
            .first()
            .map_or((width, height), |r| (r.width, r.height)),
        shards,
        message: format!(
            "splitting {} frames into {count} shards and encoding them to {what}",
            info.frames(),
        ),
        at_ms: now_unix_ms(),
        package,
    };
    master.sys.consensus.record(command).await?;
    Ok((
        Prepared {
            tracks,
            rung_specs,
            info,
            params,
            spec,
            source_path,
        },
        plan,
    ))
}

/// How the plan message names a ladder: its rungs, the ones above the
/// source that were left out, and the manifests.
fn ladder_words(rungs: &[crate::params::Rung], dropped: &[u32], packages: &str) -> String {
    let names: Vec<String> = rungs.iter().map(|r| r.name()).collect();
    let mut words = format!("a {} ladder ({packages})", names.join("/"));
    if !dropped.is_empty() {
        let heights: Vec<String> = dropped.iter().map(|h| format!("{h}p")).collect();
        words.push_str(&format!(
            "; {} left out: above the source's height",
            heights.join(", ")
        ));
    }
    words
}

/// Encode slots in the cluster now: this node's and every live member's
/// (the tail of the plan is shaped for them).
/// Encoding slots of this node and every live member.
pub(super) fn live_slots(master: &Arc<Master>) -> u32 {
    let others: u32 = master
        .sys
        .membership
        .lock()
        .members()
        .filter(|m| m.alive && m.node_id != master.sys.node_id)
        .map(|m| m.slots_total)
        .sum();
    master.scheduler.worker.slots_total + others
}

/// Every live node's abilities, this one's first.
fn live_abilities(master: &Master) -> Vec<(String, media::Abilities)> {
    let sys = &master.sys;
    let mut nodes = vec![(
        sys.node_id.clone(),
        master.scheduler.worker.abilities.clone(),
    )];
    nodes.extend(
        sys.membership
            .lock()
            .members()
            .filter(|m| m.alive && m.node_id != sys.node_id)
            .map(|m| (m.node_id.clone(), m.abilities.clone())),
    );
    nodes
}

/// Splits the source, moving each finished shard into the store and
/// sending it to the scheduler. Frame counts are the plan's; each encoded
/// shard is checked against it and the output against the source, so a
/// bad split cannot pass unnoticed.
pub async fn split_into_store(
    master: &Arc<Master>,
    id: &str,
    prepared: &Prepared,
    plan: &ShardPlan,
    scratch: &Path,
    ready: mpsc::UnboundedSender<(u32, BlobRef)>,
) -> Result<(), JobStop> {
    let fail = |m: String| JobStop::failed(JobStatus::FailedSegmentation, m);
    let (paths_tx, mut paths) = mpsc::unbounded_channel::<PathBuf>();
    let split = media::split_video(
        &master.sys.tools,
        &prepared.source_path,
        plan,
        prepared.info.frames(),
        scratch,
        paths_tx,
    );
    let store = async {
        let mut index = 0u32;
        while let Some(path) = paths.recv().await {
            // Pinned until the table names it: another job's end must
            // not discard a blob of the same bytes in between.
            let (blob, _pinned) = master
                .sys
                .store
                .import_pinned(&path)
                .await
                .map_err(|e| fail(format!("storing shard {index}: {e}")))?;
            // Every task of the piece (one per rung in a ladder).
            let tasks: Vec<u32> = master
                .sys
                .jobs
                .lock()
                .update(id, |job| {
                    let mut tasks = Vec::new();
                    for shard in job.shards.iter_mut().filter(|s| s.piece() == index) {
                        shard.source = blob.clone();
                        if shard.state == ShardState::Splitting {
                            shard.state = ShardState::Queued;
                        }
                        tasks.push(shard.index);
                    }
                    tasks
                })
                .unwrap_or_default();
            for task in tasks {
                let _ = ready.send((task, blob.clone()));
            }
            index += 1;
        }
        Ok::<(), JobStop>(())
    };
    let (split, stored) = tokio::join!(split, store);
    split.map_err(|e| fail(format!("splitting failed: {e}")))?;
    stored
}

/// Deletes the job's split and encoded shards from the store: once a job
/// has ended they are of no further use (the source and output stay).
/// Blobs are named by content: one another job still needs (the same
/// source, or a source that splits into some identical shards) stays
/// (`backups::discard`).
pub async fn remove_intermediates(master: &Arc<Master>, id: &str) {
    let blobs: Vec<String> = {
        let jobs = master.sys.jobs.lock();
        let Some(job) = jobs.get(id) else { return };
        job.shards
            .iter()
            .flat_map(|s| {
                std::iter::once(s.source.sha256.clone())
                    .chain(s.encoded.as_ref().map(|e| e.sha256.clone()))
            })
            .filter(|sha| !sha.is_empty())
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect()
    };
    let mut shared = 0;
    for blob in blobs {
        if !crate::backups::discard::discard(&master.sys, &blob, Some(id)).await {
            shared += 1;
        }
    }
    if shared > 0 {
        tracing::info!(job = %id, shared, "kept shard blobs another job shares");
    }
}
