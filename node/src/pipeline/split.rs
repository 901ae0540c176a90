//! Stage 1: probe the source, plan the shards, split with stream copy,
//! check each shard's frame count and store it.

use std::path::Path;

use super::Failure;
use crate::context::Ctx;
use crate::jobs::{JobStatus, ShardRecord, ShardState, SourceSummary};
use crate::media::{self, EncodeSpec, MediaInfo};
use crate::params::{self, JobParams};

/// What the later stages need from the first one.
pub struct Prepared {
    pub info: MediaInfo,
    pub params: JobParams,
    pub spec: EncodeSpec,
    pub source_path: std::path::PathBuf,
}

pub async fn probe_and_split(ctx: &Ctx, id: &str, scratch: &Path) -> Result<Prepared, Failure> {
    let fail = |m: String| Failure::new(JobStatus::FailedSegmentation, m);
    let (source, params) = {
        let mut jobs = ctx.jobs.lock();
        jobs.set_status(id, JobStatus::Segmenting, "probing the upload");
        let job = jobs.get(id).ok_or_else(|| fail("job vanished".into()))?;
        (job.source.clone(), job.params.clone())
    };
    let source_path = ctx
        .store
        .path(&source.sha256)
        .map_err(|e| fail(e.to_string()))?;
    let info = media::probe(&ctx.tools, &source_path)
        .await
        .map_err(|e| fail(format!("not a usable video: {e}")))?;
    let (width, height) = params::output_size(&params, info.width, info.height);
    let spec = EncodeSpec {
        width,
        height,
        format: params.format,
        preset: params.preset.clone(),
        crf: params.crf,
        threads: ctx.config.encoder_threads(),
    };
    let plan = media::plan_shards(
        &info.packets,
        info.time_base,
        info.video_end_seconds,
        ctx.config.shard_seconds,
    );
    ctx.jobs.lock().update(id, |job| {
        job.summary = Some(SourceSummary {
            width: info.width,
            height: info.height,
            frames: info.frames(),
            duration_seconds: info.video_end_seconds - info.video_start_seconds(),
            has_audio: info.audio.is_some(),
        });
        job.output_size = Some((width, height));
        job.message = format!(
            "splitting {} frames into {} shards",
            info.frames(),
            plan.shards.len()
        );
    });

    let paths = media::split_video(&ctx.tools, &source_path, &plan, info.frames(), scratch)
        .await
        .map_err(|e| fail(format!("splitting failed: {e}")))?;
    // Shards are hashed into the store in parallel. Their frame counts are
    // the plan's; each encoded shard is checked against it and the output
    // against the source, so a bad split cannot pass unnoticed.
    let imports = paths.iter().map(|path| ctx.store.import(path));
    let blobs = futures::future::join_all(imports).await;
    let mut shards = Vec::with_capacity(paths.len());
    for (index, (blob, cut)) in blobs.into_iter().zip(&plan.shards).enumerate() {
        let blob = blob.map_err(|e| fail(format!("storing shard {index}: {e}")))?;
        shards.push(ShardRecord {
            index: index as u32,
            frames: cut.frames,
            start_seconds: cut.start_seconds,
            duration_seconds: cut.duration_seconds,
            source: blob,
            encoded: None,
            state: ShardState::Queued,
            worker: String::new(),
            worker_id: String::new(),
            running_on: Vec::new(),
            attempts: 0,
            frames_done: 0,
            fps: 0.0,
            message: String::new(),
            encode_seconds: 0.0,
            transfer_seconds: 0.0,
        });
    }
    let count = shards.len();
    ctx.jobs.lock().update(id, |job| {
        job.shards = shards;
        job.status = JobStatus::Processing;
        job.message = format!(
            "encoding {count} shards to {width}x{height} {}",
            params.format.extension()
        );
    });
    Ok(Prepared {
        info,
        params,
        spec,
        source_path,
    })
}

/// Deletes the job's split and encoded shards from the store: once a job
/// has ended they are of no further use (the source and output stay).
/// Blobs are named by content, so while another running job has the same
/// source (and so the same shards) they are left for that job to remove.
pub async fn remove_intermediates(ctx: &Ctx, id: &str) {
    let blobs: Vec<String> = {
        let jobs = ctx.jobs.lock();
        let Some(job) = jobs.get(id) else { return };
        let shared = jobs
            .list()
            .iter()
            .any(|other| other.id != id && !other.status.is_final() && other.source == job.source);
        if shared {
            return;
        }
        job.shards
            .iter()
            .flat_map(|s| {
                std::iter::once(s.source.sha256.clone())
                    .chain(s.encoded.as_ref().map(|e| e.sha256.clone()))
            })
            .collect()
    };
    for blob in blobs {
        if let Err(e) = ctx.store.remove(&blob).await {
            tracing::warn!(job = %id, %blob, error = %e, "could not remove an intermediate shard");
        }
    }
}
