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
use crate::store::CHUNK;

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
    let mut file = tokio::fs::File::open(&path).await.map_err(|e| {
        Status::unavailable(format!(
            "output of {id:?} is not readable on this node: {e}"
        ))
    })?;
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
                        .send(Err(Status::internal(format!("reading the output: {e}"))))
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
        if sent != blob.size {
            let _ = tx
                .send(Err(Status::data_loss(format!(
                    "output shrank to {sent} of {} bytes",
                    blob.size
                ))))
                .await;
        }
    });
    Ok(Box::pin(ReceiverStream::new(rx)))
}
