//! This node as a worker of a master that speaks only the original
//! protocol: `ProcessShard` hands over a whole shard, encoded here in the
//! background with its audio; the outcome goes to the master with
//! `ReportWorkerShardStatus`, and `RequestShard` returns the result.

use std::time::Duration;

use std::sync::Arc;

use vidshard_proto::replication::master_service_client::MasterServiceClient;
use vidshard_proto::replication::*;

use super::{Legacy, LegacyState, check_shard_id, container_of};
use crate::media::{self, EncodeSpec, EncodeTarget};
use crate::params::{self, RawParams};
use crate::store::{BlobRef, Scratch, StoreError};
use crate::worker::{self, ShardTask};

/// Why `ProcessShard` took no shard.
#[derive(Debug, thiserror::Error)]
pub enum ProcessShardError {
    /// A refusal the original master reads (`success: false`).
    #[error("{0}")]
    Refused(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What `RequestShard` finds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ShardResult {
    /// The encoded shard, whole (the original protocol returns it in one
    /// message).
    Ready(Vec<u8>),
    /// Not there: unknown, still encoding, or failed (in words).
    NotReady(String),
}

impl Legacy {
    /// Takes a shard from an original master and encodes it in the
    /// background.
    pub async fn process_shard(
        self: &Arc<Self>,
        shard: DistributeShardRequest,
    ) -> Result<(), ProcessShardError> {
        let refuse = |message: String| Err(ProcessShardError::Refused(message));
        if let Err(reason) = check_shard_id(&shard.shard_id) {
            return refuse(reason.to_string());
        }
        if shard.shard_data.is_empty() {
            return refuse("the shard is empty".into());
        }
        let (_, format) = container_of(&shard.shard_id);
        let format_name = if shard.output_format.is_empty() {
            format.extension().to_string()
        } else {
            shard.output_format.clone()
        };
        let raw = RawParams {
            target_width: shard.target_width,
            target_height: shard.target_height,
            upscale_width: shard.upscale_width,
            upscale_height: shard.upscale_height,
            output_format: format_name,
            original_filename: shard.original_filename.clone(),
            ..Default::default()
        };
        let job_params = match raw.validate() {
            Ok(p) => p,
            Err(reason) => return refuse(reason.to_string()),
        };
        let forgotten = match self.shards.begin(&shard.shard_id) {
            Ok(f) => f,
            Err(reason) => return refuse(reason.to_string()),
        };
        let store = &self.sys.store;
        for blob in forgotten {
            crate::backups::discard::discard(&self.sys, &blob.sha256, None).await;
        }
        let mut writer = store.writer().await?;
        for chunk in shard.shard_data.chunks(crate::store::CHUNK) {
            writer.write(chunk).await?;
        }
        let (input, input_pin) = writer.finish_pinned().await?;
        tracing::info!(video = %shard.video_id, shard = %shard.shard_id, bytes = input.size, "shard from an original-protocol master");
        let legacy = self.clone();
        let (video_id, id) = (shard.video_id.clone(), shard.shard_id.clone());
        self.sys.tasks.spawn(async move {
            let outcome = legacy.encode(&id, &input, &job_params).await;
            drop(input_pin);
            crate::backups::discard::discard(&legacy.sys, &input.sha256, None).await;
            let status = match &outcome {
                Ok(_) => "processed_successfully",
                Err(reason) => {
                    tracing::warn!(shard = %id, %reason, "shard from an original master failed");
                    "failed_processing"
                }
            };
            legacy.shards.finish(
                &id,
                match outcome {
                    Ok(blob) => LegacyState::Done(blob),
                    Err(reason) => LegacyState::Failed(reason.to_string()),
                },
            );
            legacy.report(&video_id, &id, status).await;
        });
        Ok(())
    }

    /// The result of shard `shard_id`, when it is ready.
    pub async fn request_shard(&self, shard_id: &str) -> Result<ShardResult, StoreError> {
        Ok(match self.shards.state(shard_id) {
            None => ShardResult::NotReady(format!("unknown shard {shard_id:?}")),
            Some(LegacyState::Encoding) => ShardResult::NotReady("still encoding".into()),
            Some(LegacyState::Failed(reason)) => {
                ShardResult::NotReady(format!("failed_processing: {reason}"))
            }
            Some(LegacyState::Done(blob)) => {
                let path = self.sys.store.path(&blob.sha256)?;
                // The original protocol returns a shard in one message.
                ShardResult::Ready(tokio::fs::read(&path).await?)
            }
        })
    }

    /// Encodes a shard from an original master, keeping its audio and its
    /// container, and verifies the frame count.
    async fn encode(
        &self,
        shard_id: &str,
        input: &BlobRef,
        job: &params::JobParams,
    ) -> Result<BlobRef, LegacyEncodeError> {
        let ctx = &self.sys;
        let path = ctx.store.path(&input.sha256)?;
        let info = media::probe(&ctx.tools, &path)
            .await
            .map_err(LegacyEncodeError::NotAShard)?;
        let (shown_width, shown_height) = info.displayed_size();
        let (width, height) = params::output_size(job, shown_width, shown_height);
        params::check_pixels(width.into(), height.into())?;
        let spec = EncodeSpec {
            width,
            height,
            format: job.format,
            codec: job.codec(),
            pix_fmt: job.pix_fmt.resolve(job.codec(), info.high_depth),
            preset: job.preset.clone(),
            crf: job.crf,
            threads: ctx.config.encoder_threads(),
            // ffmpeg turns the shard by its own display matrix, as the
            // original workers' ffmpeg does.
            orientation: media::Orientation::Upright,
            colour: info.colour.clone(),
            tonemap: false,
            quality_target: None,
            rung: None,
        };
        let (muxer, _) = container_of(shard_id);
        let _permit = self.worker.encode_slot().await?;
        let scratch = Scratch::create(&ctx.store.tmp_dir(), "legacy")
            .await
            .map_err(StoreError::from)?;
        let task = ShardTask {
            input: &path,
            expected_frames: info.frames(),
            spec: &spec,
            target: EncodeTarget {
                muxer,
                keep_audio: true,
                explicit_orientation: false,
            },
        };
        let running = self.worker.tasks.start(shard_id);
        let result = worker::encode_verified(&ctx.tools, &ctx.store, &task, scratch.path(), |p| {
            running.report(p)
        })
        .await;
        scratch.remove().await;
        Ok(result?.0)
    }
}

/// Tells the master how a shard ended (a few tries: the master may be busy).
impl Legacy {
    async fn report(&self, video_id: &str, shard_id: &str, status: &str) {
        let ctx = &self.sys;
        let Some(master) = ctx.config.master_address() else {
            tracing::warn!(shard = %shard_id, "no --master to report the shard to; it waits for RequestShard");
            return;
        };
        for attempt in 0..3u32 {
            let sent = async {
                let channel = ctx.peers.channel(&master).map_err(|e| e.to_string())?;
                let mut request = tonic::Request::new(ReportWorkerShardStatusRequest {
                    video_id: video_id.into(),
                    shard_id: shard_id.into(),
                    worker_address: ctx.address.clone(),
                    status: status.into(),
                });
                request.set_timeout(Duration::from_secs(5));
                MasterServiceClient::new(channel)
                    .report_worker_shard_status(request)
                    .await
                    .map_err(|e| e.message().to_string())
            };
            match sent.await {
                Ok(_) => return,
                Err(e) => {
                    tracing::warn!(%master, shard = %shard_id, error = %e, "could not report the shard status");
                    tokio::time::sleep(Duration::from_secs(1 << attempt)).await;
                }
            }
        }
    }
}

/// Why a shard from an original master did not encode.
#[derive(Debug, thiserror::Error)]
enum LegacyEncodeError {
    #[error("not a usable shard: {0}")]
    NotAShard(media::MediaError),
    #[error(transparent)]
    Stopping(#[from] worker::Stopping),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Shard(#[from] worker::ShardError),
    #[error("output size {0}")]
    TooBig(#[from] params::TooManyPixels),
}
