//! Our `vidshard.v1.Worker` service: a master streams a shard here, this
//! node encodes and verifies it within its slots, and the master fetches
//! the result. Cancelling the call drops the encode (ffmpeg is killed).

use std::pin::Pin;
use std::time::Instant;

use futures::{Stream, StreamExt};
use tonic::{Request, Response, Status, Streaming};
use vidshard_proto::v1::push_blob_request::Part;
use vidshard_proto::v1::run_shard_request::Msg;
use vidshard_proto::v1::worker_server::Worker;
use vidshard_proto::v1::{
    BlobChunk, FetchBlobRequest, PushBlobReply, PushBlobRequest, RunShardReply, RunShardRequest,
    ShardTask,
};

use super::retrieve::blob_stream;
use crate::context::Ctx;
use crate::media::EncodeSpec;
use crate::params::{MAX_DIMENSION, OutputFormat, RawParams};
use crate::pipeline::Scratch;
use crate::scheduler::dispatch::handed_back_status;
use crate::store::{BlobRef, CHUNK};
use crate::worker::drain::FetchDone;
use crate::worker::{self, ShardTask as LocalTask};

/// Largest shard accepted (a 10 s shard is far smaller; this bounds disk).
const MAX_SHARD_BYTES: u64 = 8 << 30;

pub struct ShardWorker {
    ctx: Ctx,
}

impl ShardWorker {
    pub fn new(ctx: Ctx) -> Self {
        Self { ctx }
    }
}

/// Checks a task header and turns it into encoder settings (pure).
pub fn spec_of(task: &ShardTask, threads: u32) -> Result<EncodeSpec, String> {
    let s = task
        .settings
        .clone()
        .ok_or("task without encoder settings")?;
    let even_in_range = |v: u32| (2..=MAX_DIMENSION as u32).contains(&v) && v.is_multiple_of(2);
    if !even_in_range(s.width) || !even_in_range(s.height) {
        return Err(format!("bad output size {}x{}", s.width, s.height));
    }
    let checked = RawParams {
        target_width: s.width as i32,
        target_height: s.height as i32,
        output_format: s.format.clone(),
        preset: s.preset.clone(),
        crf: s.crf as i32,
        ..Default::default()
    }
    .validate()?;
    if task.expected_frames == 0 {
        return Err("task expects no frames".into());
    }
    if task.size == 0 || task.size > MAX_SHARD_BYTES {
        return Err(format!(
            "shard size {} is outside 1..={MAX_SHARD_BYTES}",
            task.size
        ));
    }
    Ok(EncodeSpec {
        width: s.width,
        height: s.height,
        format: OutputFormat::parse(&s.format)?,
        preset: checked.preset,
        crf: checked.crf,
        threads,
    })
}

/// Stores streamed bytes as a blob, checked against what was announced:
/// chunks of at most 1 MiB, never more than `announced.size` bytes, and
/// the sha256 and size at the end (a damaged blob is removed). The outer
/// error is a broken call; the inner one a refusal, in words.
async fn receive_blob(
    ctx: &Ctx,
    mut chunks: impl Stream<Item = Result<Vec<u8>, Status>> + Unpin,
    announced: &BlobRef,
) -> Result<Result<BlobRef, String>, Status> {
    let internal = |e: crate::store::StoreError| Status::internal(e.to_string());
    let mut writer = ctx.store.writer().await.map_err(internal)?;
    while let Some(bytes) = chunks.next().await {
        let bytes = bytes?;
        if bytes.len() > CHUNK {
            return Ok(Err(format!("chunk of {} bytes is over 1 MiB", bytes.len())));
        }
        if writer.size() + bytes.len() as u64 > announced.size {
            return Ok(Err(format!(
                "more than the announced {} bytes arrived",
                announced.size
            )));
        }
        writer.write(&bytes).await.map_err(internal)?;
    }
    let got = writer.finish().await.map_err(internal)?;
    if got != *announced {
        let _ = ctx.store.remove(&got.sha256).await;
        return Ok(Err(format!(
            "damaged in transit: got {} bytes with sha256 {}",
            got.size, got.sha256
        )));
    }
    Ok(Ok(got))
}

/// Encodes a received shard within this node's slots, reporting progress
/// for the heartbeats. The outer error: the node is stopping (a shard
/// still waiting for a slot then goes back to the master at once).
async fn encode_here(
    ctx: &Ctx,
    task: &ShardTask,
    spec: &EncodeSpec,
    input: &BlobRef,
    scratch: &std::path::Path,
) -> Result<Result<BlobRef, worker::ShardError>, Status> {
    let running = ctx.worker_tasks.start(&task.task_id);
    let _permit = tokio::select! {
        permit = ctx.slots.clone().acquire_owned() => {
            permit.map_err(|_| Status::unavailable("node is shutting down"))?
        }
        _ = ctx.drain.begun() => {
            tracing::info!(job = %task.job_id, shard = task.shard_index, "handed a queued shard back: this node is stopping");
            return Err(handed_back_status(
                "this node is stopping: shard handed back before it started",
            ));
        }
    };
    let path = ctx
        .store
        .path(&input.sha256)
        .map_err(|e| Status::internal(e.to_string()))?;
    let local = LocalTask {
        input: &path,
        expected_frames: task.expected_frames,
        spec,
        target: crate::media::EncodeTarget::SHARD,
    };
    Ok(
        worker::encode_verified(&ctx.tools, &ctx.store, &local, scratch, |p| {
            running.report(p)
        })
        .await,
    )
}

fn refuse(message: impl Into<String>) -> Response<RunShardReply> {
    Response::new(RunShardReply {
        success: false,
        message: message.into(),
        ..Default::default()
    })
}

#[tonic::async_trait]
impl Worker for ShardWorker {
    async fn run_shard(
        &self,
        request: Request<Streaming<RunShardRequest>>,
    ) -> Result<Response<RunShardReply>, Status> {
        let ctx = &self.ctx;
        let mut stream = request.into_inner();
        let task = match stream.next().await {
            Some(Ok(RunShardRequest {
                msg: Some(Msg::Task(task)),
            })) => task,
            Some(Err(e)) => return Err(e),
            _ => {
                return Err(Status::invalid_argument(
                    "the first message must be the shard task",
                ));
            }
        };
        if let Err(reason) = ctx.fence.admit(task.term, ctx.term()) {
            tracing::warn!(job = %task.job_id, shard = task.shard_index, term = task.term, "refused a shard from a stale master");
            return Ok(refuse(reason));
        }
        if ctx.drain.is_draining() {
            // UNAVAILABLE: the master places it elsewhere at once.
            return Err(handed_back_status(
                "this node is stopping: give the shard to another node",
            ));
        }
        let spec = match spec_of(&task, ctx.config.encoder_threads()) {
            Ok(spec) => spec,
            Err(reason) => return Ok(refuse(reason)),
        };
        let chunks = stream.map(|message| match message?.msg {
            Some(Msg::Chunk(bytes)) => Ok(bytes),
            _ => Err(Status::invalid_argument(
                "only shard bytes may follow the task",
            )),
        });
        let announced = BlobRef {
            sha256: task.sha256.clone(),
            size: task.size,
        };
        let input = match receive_blob(ctx, chunks, &announced).await? {
            Ok(input) => input,
            Err(reason) => return Ok(refuse(format!("shard {reason}"))),
        };
        let started = Instant::now();
        let scratch = Scratch::create(&ctx.store.tmp_dir(), "shard")
            .await
            .map_err(|e| Status::internal(e.to_string()))?;
        let result = tokio::select! {
            result = encode_here(ctx, &task, &spec, &input, scratch.path()) => Some(result),
            // Dropping the encode kills ffmpeg.
            _ = ctx.drain.handing_back() => None,
        };
        scratch.remove().await;
        let _ = ctx.store.remove(&input.sha256).await;
        let seconds = started.elapsed().as_secs_f64();
        let Some(result) = result else {
            tracing::warn!(job = %task.job_id, shard = task.shard_index, "handed a running shard back (drain timeout)");
            return Err(handed_back_status(
                "this node stopped before the shard was done (--drain-timeout): shard handed back",
            ));
        };
        let result = result?;
        Ok(Response::new(match result {
            Ok(blob) => {
                ctx.drain.replied(&blob.sha256);
                tracing::info!(job = %task.job_id, shard = task.shard_index, seconds, "encoded a shard for the master");
                RunShardReply {
                    success: true,
                    message: String::new(),
                    sha256: blob.sha256,
                    size: blob.size,
                    frames: task.expected_frames,
                    encode_seconds: seconds,
                }
            }
            Err(e) => {
                tracing::warn!(job = %task.job_id, shard = task.shard_index, error = %e, "shard failed here");
                RunShardReply {
                    success: false,
                    message: e.to_string(),
                    encode_seconds: seconds,
                    ..Default::default()
                }
            }
        }))
    }

    type FetchBlobStream = Pin<Box<dyn Stream<Item = Result<BlobChunk, Status>> + Send>>;

    async fn fetch_blob(
        &self,
        request: Request<FetchBlobRequest>,
    ) -> Result<Response<Self::FetchBlobStream>, Status> {
        let request = request.into_inner();
        let path = self
            .ctx
            .store
            .path(&request.sha256)
            .map_err(|e| Status::invalid_argument(e.to_string()))?;
        let size = tokio::fs::metadata(&path)
            .await
            .map_err(|_| Status::not_found(format!("no blob {}", request.sha256)))?
            .len();
        let release = request
            .release
            .then(|| (self.ctx.store.clone(), request.sha256.clone()));
        let chunks = blob_stream(&self.ctx, path, size, release).await?;
        // Ends the drain's wait for this result when the stream ends.
        let done = FetchDone::new(self.ctx.clone(), request.sha256.clone());
        Ok(Response::new(Box::pin(chunks.map(move |c| {
            let _ = &done;
            c.map(|data| BlobChunk { data })
        }))))
    }

    async fn push_blob(
        &self,
        request: Request<Streaming<PushBlobRequest>>,
    ) -> Result<Response<PushBlobReply>, Status> {
        let ctx = &self.ctx;
        let mut stream = request.into_inner();
        let header = match stream.next().await {
            Some(Ok(PushBlobRequest {
                part: Some(Part::Header(header)),
            })) => header,
            Some(Err(e)) => return Err(e),
            _ => {
                return Err(Status::invalid_argument(
                    "the first message must be the blob header",
                ));
            }
        };
        let refused = |message: String| {
            Ok(Response::new(PushBlobReply {
                stored: false,
                message,
            }))
        };
        if let Err(reason) = ctx.fence.admit(header.term, ctx.term()) {
            return refused(reason);
        }
        if ctx.store.path(&header.sha256).is_err() {
            return Err(Status::invalid_argument(format!(
                "bad blob id {:?}",
                header.sha256
            )));
        }
        if header.size > ctx.config.max_upload_bytes {
            return refused(format!(
                "{} bytes is more than the {} this node accepts",
                header.size, ctx.config.max_upload_bytes
            ));
        }
        let chunks = stream.map(|message| match message?.part {
            Some(Part::Chunk(bytes)) => Ok(bytes),
            _ => Err(Status::invalid_argument(
                "only blob bytes may follow the header",
            )),
        });
        let announced = BlobRef {
            sha256: header.sha256.clone(),
            size: header.size,
        };
        let got = match receive_blob(ctx, chunks, &announced).await? {
            Ok(got) => got,
            Err(reason) => return refused(reason),
        };
        tracing::info!(blob = %got.sha256, bytes = got.size, purpose = %header.purpose, "stored a backup copy");
        Ok(Response::new(PushBlobReply {
            stored: true,
            message: String::new(),
        }))
    }
}
