//! Running one copy of a shard: on this node (the master is a worker
//! too) or on a remote vidshard worker, streaming the shard there and the
//! encoded result back in ≤1 MiB chunks with sha256 checks both ways. The
//! result is verified here (frames, size, codec) before it is accepted.

use futures::{StreamExt, stream};
use tokio::io::AsyncReadExt;
use vidshard_proto::v1::worker_client::WorkerClient;
use vidshard_proto::v1::{
    EncodeSettings, FetchBlobRequest, RunShardRequest, ShardTask, run_shard_request::Msg,
};

use crate::context::Ctx;
use crate::media::{self, EncodeSpec, Progress};
use crate::store::{BlobRef, CHUNK};
use crate::worker::{self, ShardTask as LocalTask};

/// One attempt at one shard.
#[derive(Debug, Clone)]
pub struct CopyRequest {
    pub job_id: String,
    pub shard_index: u32,
    pub task_id: String,
    pub spec: EncodeSpec,
    pub expected_frames: u64,
    pub source: BlobRef,
    pub total_shards: u32,
}

pub fn settings(spec: &EncodeSpec) -> EncodeSettings {
    EncodeSettings {
        width: spec.width,
        height: spec.height,
        format: spec.format.extension().into(),
        preset: spec.preset.clone(),
        crf: spec.crf,
    }
}

/// A verified result and where its time went.
#[derive(Debug, Clone, PartialEq)]
pub struct CopyOutcome {
    pub blob: BlobRef,
    pub encode_seconds: f64,
    /// Sending the shard, fetching and verifying the result.
    pub transfer_seconds: f64,
}

/// Why a copy produced nothing.
#[derive(Debug, Clone, PartialEq)]
pub struct CopyError {
    pub message: String,
    /// The worker went away (connection refused or broken): not the
    /// shard's fault, and a sign the worker is dead.
    pub worker_lost: bool,
    /// The worker is stopping and gave the shard back (queued, refused,
    /// or past its drain timeout): run it elsewhere, spend no attempt,
    /// and leave the worker's other shards alone.
    pub handed_back: bool,
}

impl From<String> for CopyError {
    fn from(message: String) -> Self {
        Self {
            message,
            worker_lost: false,
            handed_back: false,
        }
    }
}

/// Metadata a stopping worker puts on the UNAVAILABLE status of a shard
/// it gives back (`worker::drain`).
pub const HANDED_BACK: &str = "x-vidshard-handed-back";

/// The status a stopping worker answers for a shard it gives back.
pub fn handed_back_status(message: &str) -> tonic::Status {
    let mut status = tonic::Status::unavailable(message);
    status.metadata_mut().insert(
        HANDED_BACK,
        tonic::metadata::MetadataValue::from_static("1"),
    );
    status
}

/// Whether a gRPC error means the peer is gone rather than that it
/// refused the work (pure).
pub fn is_lost(code: tonic::Code) -> bool {
    use tonic::Code::*;
    matches!(
        code,
        Unavailable | Unknown | Cancelled | DeadlineExceeded | Aborted
    )
}

pub(super) fn rpc_error(address: &str, what: &str, status: tonic::Status) -> CopyError {
    let handed_back = status.metadata().contains_key(HANDED_BACK);
    CopyError {
        message: format!("{what} {address}: {}", status.message()),
        worker_lost: is_lost(status.code()) && !handed_back,
        handed_back,
    }
}

/// Encodes on this node within its slots.
pub async fn run_local(
    ctx: &Ctx,
    req: &CopyRequest,
    on_progress: impl FnMut(Progress),
) -> Result<CopyOutcome, CopyError> {
    let _permit = ctx.encode_slot().await?;
    let started = std::time::Instant::now();
    let input = ctx
        .store
        .path(&req.source.sha256)
        .map_err(|e| e.to_string())?;
    let scratch = crate::pipeline::Scratch::create(&ctx.store.tmp_dir(), &req.task_id)
        .await
        .map_err(|e| e.to_string())?;
    let task = LocalTask {
        input: &input,
        expected_frames: req.expected_frames,
        spec: &req.spec,
        target: crate::media::EncodeTarget::SHARD,
    };
    let result =
        worker::encode_verified(&ctx.tools, &ctx.store, &task, scratch.path(), on_progress).await;
    scratch.remove().await;
    let blob = result.map_err(|e| e.to_string())?;
    Ok(CopyOutcome {
        blob,
        encode_seconds: started.elapsed().as_secs_f64(),
        transfer_seconds: 0.0,
    })
}

/// The shard's bytes as a request stream: the task header, then chunks.
fn upload_stream(
    task: ShardTask,
    file: tokio::fs::File,
) -> impl futures::Stream<Item = RunShardRequest> + Send {
    let header = stream::once(async move {
        RunShardRequest {
            msg: Some(Msg::Task(task)),
        }
    });
    let chunks = stream::unfold(Some(file), |file| async move {
        let mut file = file?;
        let mut buf = vec![0u8; CHUNK];
        match file.read(&mut buf).await {
            Ok(0) | Err(_) => None,
            Ok(n) => {
                buf.truncate(n);
                Some((
                    RunShardRequest {
                        msg: Some(Msg::Chunk(buf)),
                    },
                    Some(file),
                ))
            }
        }
    });
    header.chain(chunks)
}

/// Encodes on the vidshard worker at `address` and brings the result home.
pub async fn run_remote(
    ctx: &Ctx,
    address: &str,
    req: &CopyRequest,
) -> Result<CopyOutcome, CopyError> {
    let started = std::time::Instant::now();
    let channel = ctx
        .peers
        .channel(address)
        .map_err(|e| format!("bad worker address {address}: {e}"))?;
    let mut client = WorkerClient::new(channel).max_decoding_message_size(4 << 20);
    let input = ctx
        .store
        .path(&req.source.sha256)
        .map_err(|e| e.to_string())?;
    let file = tokio::fs::File::open(&input)
        .await
        .map_err(|e| format!("reading shard {}: {e}", req.shard_index))?;
    let task = ShardTask {
        job_id: req.job_id.clone(),
        shard_index: req.shard_index,
        task_id: req.task_id.clone(),
        settings: Some(settings(&req.spec)),
        expected_frames: req.expected_frames,
        sha256: req.source.sha256.clone(),
        size: req.source.size,
        term: ctx.term(),
    };
    let reply = client
        .run_shard(upload_stream(task, file))
        .await
        .map_err(|e| rpc_error(address, "worker", e))?
        .into_inner();
    if !reply.success {
        return Err(format!("worker {address}: {}", reply.message).into());
    }
    let mut blobs = client
        .fetch_blob(FetchBlobRequest {
            sha256: reply.sha256.clone(),
            // The worker keeps its copy: a new master fetches it from
            // there if this one dies before the job ends.
            release: false,
        })
        .await
        .map_err(|e| rpc_error(address, "fetching from", e))?
        .into_inner();
    let mut writer = ctx.store.writer().await.map_err(|e| e.to_string())?;
    while let Some(chunk) = blobs
        .message()
        .await
        .map_err(|e| rpc_error(address, "fetching from", e))?
    {
        if chunk.data.len() > CHUNK {
            return Err(format!("worker {address} sent a {} byte chunk", chunk.data.len()).into());
        }
        writer.write(&chunk.data).await.map_err(|e| e.to_string())?;
    }
    let blob = writer.finish().await.map_err(|e| e.to_string())?;
    if blob.sha256 != reply.sha256 || blob.size != reply.size {
        let _ = ctx.store.remove(&blob.sha256).await;
        return Err(format!(
            "result from {address} damaged in transit (sha256 {} != {})",
            blob.sha256, reply.sha256
        )
        .into());
    }
    let path = ctx.store.path(&blob.sha256).map_err(|e| e.to_string())?;
    let found = media::inspect(&ctx.tools, &path)
        .await
        .map_err(|e| format!("result from {address} unreadable: {e}"))?;
    worker::check_encoded(&found, req.expected_frames, &req.spec)
        .map_err(|e| format!("result from {address}: {e}"))?;
    let encode_seconds = reply.encode_seconds.max(0.0);
    let transfer_seconds = (started.elapsed().as_secs_f64() - encode_seconds).max(0.0);
    Ok(CopyOutcome {
        blob,
        encode_seconds,
        transfer_seconds,
    })
}
