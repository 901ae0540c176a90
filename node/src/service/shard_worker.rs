//! Our `vidshard.v1.Worker` service: a master streams a shard here, this
//! node encodes and verifies it within its slots, and the master fetches
//! the result. Cancelling the call drops the encode (ffmpeg is killed).

use std::pin::Pin;
use std::sync::Arc;

use futures::{Stream, StreamExt};
use tonic::{Request, Response, Status, Streaming};
use vidshard_proto::v1::push_blob_request::Part;
use vidshard_proto::v1::run_shard_request::Msg;
use vidshard_proto::v1::{
    BlobChunk, FetchBlobRequest, PushBlobReply, PushBlobRequest, RunShardReply, RunShardRequest,
};

use crate::cluster::blob_stream::send_blob;
use crate::store::BlobRef;
use crate::worker::Worker;
use crate::worker::run_shard::RunShardError;

pub struct ShardWorker {
    worker: Arc<Worker>,
}

impl ShardWorker {
    pub fn new(worker: Arc<Worker>) -> Self {
        Self { worker }
    }
}

/// A refusal the master records against the shard (`success: false`).
fn refused(message: String, encode_seconds: f64) -> Response<RunShardReply> {
    Response::new(RunShardReply {
        success: false,
        message,
        encode_seconds,
        ..Default::default()
    })
}

#[tonic::async_trait]
impl vidshard_proto::v1::worker_server::Worker for ShardWorker {
    async fn run_shard(
        &self,
        request: Request<Streaming<RunShardRequest>>,
    ) -> Result<Response<RunShardReply>, Status> {
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
        let expected_frames = task.expected_frames;
        let chunks = stream.map(|message| match message?.msg {
            Some(Msg::Chunk(bytes)) => Ok(bytes),
            _ => Err(Status::invalid_argument(
                "only shard bytes may follow the task",
            )),
        });
        match self.worker.run_shard(task, chunks).await {
            Ok(outcome) => Ok(match outcome.result {
                Ok(blob) => Response::new(RunShardReply {
                    success: true,
                    message: String::new(),
                    sha256: blob.sha256,
                    size: blob.size,
                    frames: expected_frames,
                    encode_seconds: outcome.seconds,
                    quality: outcome.quality.as_ref().map(Into::into),
                }),
                Err(e) => refused(e.to_string(), outcome.seconds),
            }),
            Err(e @ (RunShardError::Refused(_) | RunShardError::Stale(_))) => {
                Ok(refused(e.to_string(), 0.0))
            }
            Err(e) => Err(e.into()),
        }
    }

    type FetchBlobStream = Pin<Box<dyn Stream<Item = Result<BlobChunk, Status>> + Send>>;

    async fn fetch_blob(
        &self,
        request: Request<FetchBlobRequest>,
    ) -> Result<Response<Self::FetchBlobStream>, Status> {
        let request = request.into_inner();
        let sys = &self.worker.sys;
        let path = sys
            .store
            .path(&request.sha256)
            .map_err(|e| Status::invalid_argument(e.to_string()))?;
        let size = tokio::fs::metadata(&path)
            .await
            .map_err(|_| Status::not_found(format!("no blob {}", request.sha256)))?
            .len();
        let release = (request.release && self.worker.may_release(&request.sha256))
            .then(|| (sys.store.clone(), request.sha256.clone()));
        let chunks = send_blob(sys, path, size, release).await?;
        // Ends the drain's wait for this result when the stream ends.
        let done = self.worker.fetching(&request.sha256);
        Ok(Response::new(Box::pin(chunks.map(move |c| {
            let _ = &done;
            c.map(|data| BlobChunk { data }).map_err(Status::from)
        }))))
    }

    async fn push_blob(
        &self,
        request: Request<Streaming<PushBlobRequest>>,
    ) -> Result<Response<PushBlobReply>, Status> {
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
        if self.worker.sys.store.path(&header.sha256).is_err() {
            return Err(Status::invalid_argument(format!(
                "bad blob id {:?}",
                header.sha256
            )));
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
        match self.worker.push_blob(header.term, announced, chunks).await {
            Ok(got) => {
                tracing::info!(blob = %got.sha256, bytes = got.size, purpose = %header.purpose, "stored a backup copy");
                Ok(Response::new(PushBlobReply {
                    stored: true,
                    message: String::new(),
                }))
            }
            Err(e @ (RunShardError::Refused(_) | RunShardError::Stale(_))) => {
                Ok(Response::new(PushBlobReply {
                    stored: false,
                    message: e.to_string(),
                }))
            }
            Err(e) => Err(e.into()),
        }
    }
}
