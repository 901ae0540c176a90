//! The original `replication.WorkerService`, for masters that speak only
//! the original protocol: `ProcessShard` takes a whole shard (this service
//! alone decodes messages up to 1 GiB), encodes it in the background with
//! its audio, reports the outcome to the master with
//! `ReportWorkerShardStatus`, and `RequestShard` returns the result.

use std::time::Duration;

use tonic::{Request, Response, Status};
use vidshard_proto::replication::master_service_client::MasterServiceClient;
use vidshard_proto::replication::worker_service_server::WorkerService;
use vidshard_proto::replication::*;

use crate::context::Ctx;
use crate::media::{self, EncodeSpec, EncodeTarget};
use crate::params::{self, RawParams};
use crate::pipeline::Scratch;
use crate::worker::legacy::{LegacyState, check_shard_id, container_of};
use crate::worker::{self, ShardTask};

/// Largest shard an original master may send in one message.
pub const MAX_LEGACY_SHARD: usize = 1 << 30;

pub struct Worker {
    ctx: Ctx,
}

impl Worker {
    pub fn new(ctx: Ctx) -> Self {
        Self { ctx }
    }
}

#[tonic::async_trait]
impl WorkerService for Worker {
    async fn process_shard(
        &self,
        request: Request<DistributeShardRequest>,
    ) -> Result<Response<ProcessShardResponse>, Status> {
        let shard = request.into_inner();
        let shard_id = shard.shard_id.clone();
        let refuse = |message: String| {
            Ok(Response::new(ProcessShardResponse {
                shard_id: shard_id.clone(),
                success: false,
                message,
            }))
        };
        if let Err(reason) = check_shard_id(&shard.shard_id) {
            return refuse(reason);
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
            Err(reason) => return refuse(reason),
        };
        let forgotten = match self.ctx.legacy_shards.begin(&shard.shard_id) {
            Ok(f) => f,
            Err(reason) => return refuse(reason),
        };
        for blob in forgotten {
            let _ = self.ctx.store.remove(&blob.sha256).await;
        }
        let mut writer = self
            .ctx
            .store
            .writer()
            .await
            .map_err(|e| Status::internal(e.to_string()))?;
        for chunk in shard.shard_data.chunks(crate::store::CHUNK) {
            writer
                .write(chunk)
                .await
                .map_err(|e| Status::internal(e.to_string()))?;
        }
        let input = writer
            .finish()
            .await
            .map_err(|e| Status::internal(e.to_string()))?;
        tracing::info!(video = %shard.video_id, shard = %shard.shard_id, bytes = input.size, "shard from an original-protocol master");
        let ctx = self.ctx.clone();
        let (video_id, id) = (shard.video_id.clone(), shard.shard_id.clone());
        self.ctx.tasks.spawn(async move {
            let outcome = encode_legacy(&ctx, &id, &input, &job_params).await;
            let _ = ctx.store.remove(&input.sha256).await;
            let status = match &outcome {
                Ok(_) => "processed_successfully",
                Err(reason) => {
                    tracing::warn!(shard = %id, %reason, "shard from an original master failed");
                    "failed_processing"
                }
            };
            ctx.legacy_shards.finish(
                &id,
                match outcome {
                    Ok(blob) => LegacyState::Done(blob),
                    Err(reason) => LegacyState::Failed(reason),
                },
            );
            report(&ctx, &video_id, &id, status).await;
        });
        Ok(Response::new(ProcessShardResponse {
            shard_id,
            success: true,
            message: "accepted; encoding".into(),
        }))
    }

    async fn request_shard(
        &self,
        request: Request<RequestShardRequest>,
    ) -> Result<Response<RequestShardResponse>, Status> {
        let shard_id = request.into_inner().shard_id;
        let reply = |shard_data: Vec<u8>, success: bool, message: String| {
            Ok(Response::new(RequestShardResponse {
                shard_id: shard_id.clone(),
                shard_data,
                success,
                message,
            }))
        };
        match self.ctx.legacy_shards.state(&shard_id) {
            None => reply(Vec::new(), false, format!("unknown shard {shard_id:?}")),
            Some(LegacyState::Encoding) => reply(Vec::new(), false, "still encoding".into()),
            Some(LegacyState::Failed(reason)) => {
                reply(Vec::new(), false, format!("failed_processing: {reason}"))
            }
            Some(LegacyState::Done(blob)) => {
                let path = self
                    .ctx
                    .store
                    .path(&blob.sha256)
                    .map_err(|e| Status::internal(e.to_string()))?;
                // The original protocol returns a shard in one message.
                let data = tokio::fs::read(&path)
                    .await
                    .map_err(|e| Status::internal(format!("reading the result: {e}")))?;
                reply(data, true, String::new())
            }
        }
    }
}

/// Encodes a shard from an original master, keeping its audio and its
/// container, and verifies the frame count.
async fn encode_legacy(
    ctx: &Ctx,
    shard_id: &str,
    input: &crate::store::BlobRef,
    job: &params::JobParams,
) -> Result<crate::store::BlobRef, String> {
    let path = ctx.store.path(&input.sha256).map_err(|e| e.to_string())?;
    let info = media::probe(&ctx.tools, &path)
        .await
        .map_err(|e| format!("not a usable shard: {e}"))?;
    let (width, height) = params::output_size(job, info.width, info.height);
    let spec = EncodeSpec {
        width,
        height,
        format: job.format,
        preset: job.preset.clone(),
        crf: job.crf,
        threads: ctx.config.encoder_threads(),
    };
    let (muxer, _) = container_of(shard_id);
    let _permit = ctx.encode_slot().await?;
    let scratch = Scratch::create(&ctx.store.tmp_dir(), "legacy")
        .await
        .map_err(|e| e.to_string())?;
    let task = ShardTask {
        input: &path,
        expected_frames: info.frames(),
        spec: &spec,
        target: EncodeTarget {
            muxer,
            keep_audio: true,
        },
    };
    let running = ctx.worker_tasks.start(shard_id);
    let result = worker::encode_verified(&ctx.tools, &ctx.store, &task, scratch.path(), |p| {
        running.report(p)
    })
    .await;
    scratch.remove().await;
    result.map_err(|e| e.to_string())
}

/// Tells the master how a shard ended (a few tries: the master may be busy).
async fn report(ctx: &Ctx, video_id: &str, shard_id: &str, status: &str) {
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
