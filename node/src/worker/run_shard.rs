//! A master's `RunShard` on this node: admit the task (fence, drain,
//! settings), receive the shard's bytes checked against what was
//! announced, encode and verify it within this node's slots, and answer
//! with the result for the master to fetch. Also `PushBlob`: a master's
//! copy of a blob, received through the same checks.

use std::time::Instant;

use futures::{Stream, StreamExt};
use vidshard_proto::v1::ShardTask as TaskHeader;

use super::drain::{Drain, FetchDone};
use super::fence::StaleTerm;
use super::{ShardError, ShardTask, Worker};
use crate::jobs::quality::ShardQuality;
use crate::media::colour::{self, Colour};
use crate::media::{EncodeSpec, Orientation};
use crate::params::{MAX_DIMENSION, PixFmt, QualityTarget, RawParams};
use crate::store::{BlobRef, CHUNK, Scratch, StoreError};

/// Largest shard accepted (a 10 s shard is far smaller; this bounds disk).
const MAX_SHARD_BYTES: u64 = 8 << 30;

/// Why a `RunShard` or `PushBlob` produced no result.
#[derive(Debug, thiserror::Error)]
pub enum RunShardError {
    /// Refused with a reason the master records against the shard.
    #[error("{0}")]
    Refused(String),
    #[error(transparent)]
    Stale(#[from] StaleTerm),
    /// This node is stopping and gives the shard back: the master runs it
    /// elsewhere without counting a failure.
    #[error("{0}")]
    HandedBack(&'static str),
    /// The master's stream broke or sent something else than bytes.
    #[error("the shard stream broke: {0}")]
    Broken(tonic::Status),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// An encoded shard ready to fetch, or why the encode failed, with the
/// seconds it took.
pub struct ShardOutcome {
    pub result: Result<BlobRef, ShardError>,
    pub seconds: f64,
    /// Every frame against the source, when the task asked for it and it
    /// could be measured.
    pub quality: Option<ShardQuality>,
}

/// Checks a task header and turns it into encoder settings (pure).
pub fn spec_of(task: &TaskHeader, threads: u32) -> Result<EncodeSpec, RunShardError> {
    let refuse = RunShardError::Refused;
    let s = task
        .settings
        .clone()
        .ok_or_else(|| refuse("task without encoder settings".into()))?;
    let even_in_range = |v: u32| (2..=MAX_DIMENSION as u32).contains(&v) && v.is_multiple_of(2);
    if !even_in_range(s.width) || !even_in_range(s.height) {
        return Err(refuse(format!("bad output size {}x{}", s.width, s.height)));
    }
    crate::params::check_pixels(s.width.into(), s.height.into())
        .map_err(|too_big| refuse(format!("output size {too_big}")))?;
    let checked = RawParams {
        target_width: s.width as i32,
        target_height: s.height as i32,
        output_format: s.format.clone(),
        codec: s.codec.clone(),
        preset: s.preset.clone(),
        crf: s.crf as i32,
        ..Default::default()
    }
    .validate()
    .map_err(|e| refuse(e.to_string()))?;
    if task.expected_frames == 0 {
        return Err(refuse("task expects no frames".into()));
    }
    if task.size == 0 || task.size > MAX_SHARD_BYTES {
        return Err(refuse(format!(
            "shard size {} is outside 1..={MAX_SHARD_BYTES}",
            task.size
        )));
    }
    Ok(EncodeSpec {
        width: s.width,
        height: s.height,
        format: checked.format,
        codec: checked.codec(),
        pix_fmt: PixFmt::parse(&s.pix_fmt)
            .ok_or_else(|| refuse(format!("unknown pixel format {:?}", s.pix_fmt)))?,
        preset: checked.preset,
        crf: checked.crf,
        threads,
        orientation: Orientation::from_name(&s.orientation).ok_or_else(|| {
            refuse(format!(
                "unknown orientation {:?}: this node turns pictures only by quarter turns and mirrors",
                s.orientation
            ))
        })?,
        colour: colour_of(&s).map_err(refuse)?,
        tonemap: s.tonemap,
        quality_target: QualityTarget::parse(task.target_ssim, task.target_psnr)
            .map_err(|e| refuse(e.to_string()))?,
        rung: rung_of(&s).map_err(refuse)?,
    })
}

/// The ladder rung of a task's settings (pure): all three numbers or
/// none, each within what a job may ask.
fn rung_of(
    s: &vidshard_proto::v1::EncodeSettings,
) -> Result<Option<crate::media::RungEncode>, String> {
    if s.max_kbps == 0 && s.keyframe_seconds == 0 && s.keyframe_frames == 0 {
        return Ok(None);
    }
    if !(1..=crate::params::MAX_SEGMENT_SECONDS).contains(&s.keyframe_seconds)
        || !(1..=100_000).contains(&s.max_kbps)
        || !(1..=100_000).contains(&s.keyframe_frames)
    {
        return Err(format!(
            "bad ladder rung: cap {} kbit/s, keyframes every {} s ({} frames)",
            s.max_kbps, s.keyframe_seconds, s.keyframe_frames
        ));
    }
    Ok(Some(crate::media::RungEncode {
        max_kbps: s.max_kbps,
        keyframe_seconds: s.keyframe_seconds,
        keyframe_frames: s.keyframe_frames,
    }))
}

/// The colour description of a task's settings (pure): tags must look
/// like ffmpeg's names, HDR10 numbers must come whole.
fn colour_of(s: &vidshard_proto::v1::EncodeSettings) -> Result<Colour, String> {
    let tag = |value: &str| {
        if value.is_empty() || colour::is_tag(value) {
            Ok(value.to_string())
        } else {
            Err(format!("bad colour tag {value:?}"))
        }
    };
    let mastering = match &s.mastering_display[..] {
        [] => None,
        numbers => Some(
            colour::Mastering::from_numbers(numbers).ok_or("mastering display needs 10 numbers")?,
        ),
    };
    let light = match s.content_light[..] {
        [] => None,
        [max_content, max_average] => Some(colour::LightLevel {
            max_content,
            max_average,
        }),
        _ => return Err("content light level needs 2 numbers".into()),
    };
    Ok(Colour {
        primaries: tag(&s.color_primaries)?,
        transfer: tag(&s.color_transfer)?,
        matrix: tag(&s.color_space)?,
        range: tag(&s.color_range)?,
        mastering,
        light,
    })
}

impl Worker {
    /// Runs a master's shard: `chunks` are its bytes as they arrive.
    pub async fn run_shard(
        &self,
        task: TaskHeader,
        chunks: impl Stream<Item = Result<Vec<u8>, tonic::Status>> + Unpin,
    ) -> Result<ShardOutcome, RunShardError> {
        if let Err(stale) = super::fence::check(task.term, self.sys.term()) {
            tracing::warn!(job = %task.job_id, shard = task.shard_index, term = task.term, "refused a shard from a stale master");
            return Err(stale.into());
        }
        if self.drain.is_draining() {
            return Err(RunShardError::HandedBack(
                "this node is stopping: give the shard to another node",
            ));
        }
        let spec = spec_of(&task, self.sys.config.encoder_threads())?;
        let announced = BlobRef {
            sha256: task.sha256.clone(),
            size: task.size,
        };
        // Another task with the same bytes (two jobs can share a shard)
        // must not discard this input while it is received or encoded.
        let input_pin = self.sys.store.pin(&task.sha256);
        let input = self
            .receive_blob(chunks, &announced)
            .await
            .map_err(|e| match e {
                RunShardError::Refused(reason) => RunShardError::Refused(format!("shard {reason}")),
                other => other,
            })?;
        // Counted as running (a stopping node waits for it) until its
        // result is marked unfetched: dropped any earlier, the drain
        // could end between the two and the node stop before the master
        // fetched the result (CI saw exactly that: the shard ran again).
        let running = self.tasks.start(&task.task_id);
        let started = Instant::now();
        let scratch = Scratch::create(&self.sys.store.tmp_dir(), "shard")
            .await
            .map_err(StoreError::from)?;
        let result = tokio::select! {
            result = self.encode_here(&task, &spec, &input, scratch.path(), &running) => Some(result),
            // Dropping the encode kills ffmpeg.
            _ = self.drain.handing_back() => None,
        };
        scratch.remove().await;
        drop(input_pin);
        crate::backups::discard::discard(&self.sys, &input.sha256, None).await;
        let seconds = started.elapsed().as_secs_f64();
        let Some(result) = result else {
            tracing::warn!(job = %task.job_id, shard = task.shard_index, "handed a running shard back (drain timeout)");
            return Err(RunShardError::HandedBack(
                "this node stopped before the shard was done (--drain-timeout): shard handed back",
            ));
        };
        let (result, quality) = result?;
        match &result {
            Ok(blob) => {
                self.drain.replied(&blob.sha256);
                tracing::info!(job = %task.job_id, shard = task.shard_index, seconds, "encoded a shard for the master");
            }
            Err(e) => {
                tracing::warn!(job = %task.job_id, shard = task.shard_index, error = %e, "shard failed here");
            }
        }
        drop(running);
        Ok(ShardOutcome {
            result,
            seconds,
            quality,
        })
    }

    /// Encodes a received shard within this node's slots, reporting
    /// progress for the heartbeats, and measures the result when the task
    /// asks (in the same slot). The outer error: the node is stopping (a
    /// shard still waiting for a slot then goes back at once).
    async fn encode_here(
        &self,
        task: &TaskHeader,
        spec: &EncodeSpec,
        input: &BlobRef,
        scratch: &std::path::Path,
        running: &super::tasks::RunningTask,
    ) -> Result<(Result<BlobRef, ShardError>, Option<ShardQuality>), RunShardError> {
        let _permit = tokio::select! {
            permit = self.encode_slot() => permit.map_err(|_| RunShardError::HandedBack("node is shutting down"))?,
            _ = self.drain.begun() => {
                tracing::info!(job = %task.job_id, shard = task.shard_index, "handed a queued shard back: this node is stopping");
                return Err(RunShardError::HandedBack(
                    "this node is stopping: shard handed back before it started",
                ));
            }
        };
        let path = self.sys.store.path(&input.sha256)?;
        let local = ShardTask {
            input: &path,
            expected_frames: task.expected_frames,
            spec,
            target: crate::media::EncodeTarget::SHARD,
        };
        let (tools, store) = (&self.sys.tools, &self.sys.store);
        let (node, measure) = (&self.sys.node_id, task.measure_quality);
        let report = |p| running.report(p);
        Ok(
            match super::measure::encode_judged(
                tools, store, &local, scratch, node, measure, report,
            )
            .await
            {
                Ok((blob, _pin, quality)) => (Ok(blob), quality),
                Err(e) => (Err(e), None),
            },
        )
    }

    /// A blob a master pushes here (a backup copy of a source or shard),
    /// after the fence and the size limit.
    pub async fn push_blob(
        &self,
        term: u64,
        announced: BlobRef,
        chunks: impl Stream<Item = Result<Vec<u8>, tonic::Status>> + Unpin,
    ) -> Result<BlobRef, RunShardError> {
        super::fence::check(term, self.sys.term())?;
        let limit = self.sys.config.max_upload_bytes;
        if announced.size > limit {
            return Err(RunShardError::Refused(format!(
                "{} bytes is more than the {limit} this node accepts",
                announced.size
            )));
        }
        self.receive_blob(chunks, &announced).await
    }

    /// Stores streamed bytes as a blob, checked against what was
    /// announced: chunks of at most 1 MiB, never more than
    /// `announced.size` bytes, and the sha256 and size at the end (a
    /// damaged blob is removed).
    async fn receive_blob(
        &self,
        mut chunks: impl Stream<Item = Result<Vec<u8>, tonic::Status>> + Unpin,
        announced: &BlobRef,
    ) -> Result<BlobRef, RunShardError> {
        let store = &self.sys.store;
        let mut writer = store.writer().await?;
        while let Some(bytes) = chunks.next().await {
            let bytes = bytes.map_err(RunShardError::Broken)?;
            if bytes.len() > CHUNK {
                return Err(RunShardError::Refused(format!(
                    "chunk of {} bytes is over 1 MiB",
                    bytes.len()
                )));
            }
            if writer.size() + bytes.len() as u64 > announced.size {
                return Err(RunShardError::Refused(format!(
                    "more than the announced {} bytes arrived",
                    announced.size
                )));
            }
            writer.write(&bytes).await?;
        }
        let got = writer.finish().await?;
        if got != *announced {
            crate::backups::discard::discard(&self.sys, &got.sha256, None).await;
            return Err(RunShardError::Refused(format!(
                "damaged in transit: got {} bytes with sha256 {}",
                got.size, got.sha256
            )));
        }
        Ok(got)
    }

    /// Whether a fetch's `release` may delete `sha256` here: only a blob
    /// the replicated job table does not mention at all. `release` is a
    /// hint from whoever fetches; a source, shard or output a job still
    /// names is kept whoever asks (nothing of ours sends it today).
    pub fn may_release(&self, sha256: &str) -> bool {
        let jobs = self.sys.jobs.lock();
        !crate::backups::plan::mentioned(jobs.list().iter().copied()).contains(sha256)
    }

    /// A guard that ends the drain's wait for `sha256` when dropped (when
    /// the master's fetch of the result ends).
    pub fn fetching(&self, sha256: &str) -> FetchDone {
        FetchDone::new(self.drain.clone(), sha256.to_string())
    }

    /// The drain state, for the stop sequence.
    pub fn drain(&self) -> &Drain {
        &self.drain
    }
}
