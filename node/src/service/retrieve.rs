//! Streaming a finished output back in ≤1 MiB chunks, read from disk as
//! the client consumes them (a bounded channel keeps memory flat).

use std::pin::Pin;

use futures::Stream;
use tokio::io::AsyncReadExt;
use tokio_stream::wrappers::ReceiverStream;
use tonic::Status;

use crate::context::Ctx;
use crate::ids;
use crate::jobs::JobStatus;
use crate::store::{BlobStore, CHUNK};

pub type ChunkStream = Pin<Box<dyn Stream<Item = Result<Vec<u8>, Status>> + Send>>;

/// Opens job `id`'s output as a stream of chunks, or says why it cannot.
pub async fn output_stream(ctx: &Ctx, id: &str) -> Result<ChunkStream, Status> {
    ids::check_lookup(id).map_err(Status::invalid_argument)?;
    let blob = {
        let jobs = ctx.jobs.lock();
        let job = jobs
            .get(id)
            .ok_or_else(|| Status::not_found(format!("no video {id:?}")))?;
        match (&job.status, &job.output) {
            (JobStatus::Completed, Some(blob)) => blob.clone(),
            (status, _) => {
                return Err(Status::failed_precondition(format!(
                    "video {id:?} is not ready: {} ({})",
                    status.as_str(),
                    job.message
                )));
            }
        }
    };
    let path = ctx
        .store
        .path(&blob.sha256)
        .map_err(|e| Status::internal(e.to_string()))?;
    blob_stream(ctx, path, blob.size, None).await
}

/// Streams the file at `path` (expected to hold `size` bytes) in chunks.
/// With `release`, the blob is deleted once it was sent whole.
pub async fn blob_stream(
    ctx: &Ctx,
    path: std::path::PathBuf,
    size: u64,
    release: Option<(BlobStore, String)>,
) -> Result<ChunkStream, Status> {
    let mut file = tokio::fs::File::open(&path)
        .await
        .map_err(|e| Status::unavailable(format!("blob is not readable on this node: {e}")))?;
    let (tx, rx) = tokio::sync::mpsc::channel(2);
    let shutdown = ctx.shutdown.clone();
    ctx.tasks.spawn(async move {
        let mut sent = 0u64;
        loop {
            let mut buf = vec![0u8; CHUNK];
            let n = match file.read(&mut buf).await {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) => {
                    let _ = tx
                        .send(Err(Status::internal(format!("reading the blob: {e}"))))
                        .await;
                    return;
                }
            };
            buf.truncate(n);
            sent += n as u64;
            tokio::select! {
                r = tx.send(Ok(buf)) => if r.is_err() { return },
                _ = shutdown.cancelled() => return,
            }
        }
        if sent != size {
            let _ = tx
                .send(Err(Status::data_loss(format!(
                    "blob shrank to {sent} of {size} bytes"
                ))))
                .await;
            return;
        }
        // Everything is queued for the peer; if it fails to take the
        // last chunks it asks for the work again, so release now.
        drop(tx);
        if let Some((store, sha256)) = release {
            let _ = store.remove(&sha256).await;
        }
    });
    Ok(Box::pin(ReceiverStream::new(rx)))
}
