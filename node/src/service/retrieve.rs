//! Streaming a finished output back in ≤1 MiB chunks, read from disk (or
//! from a node holding a copy) as the client consumes them (a bounded
//! channel keeps memory flat), checked against its sha256 on the way.

use std::pin::Pin;

use futures::{Stream, StreamExt};
use sha2::{Digest, Sha256};
use tokio::io::AsyncReadExt;
use tokio_stream::wrappers::ReceiverStream;
use tonic::Status;
use vidshard_proto::v1::FetchBlobRequest;
use vidshard_proto::v1::worker_client::WorkerClient;

use std::sync::Arc;

use crate::backups::Backups;
use crate::cluster::Sys;
use crate::cluster::blobs::{BlobTransferError, peer_error};
use crate::ids;
use crate::jobs::JobStatus;
use crate::store::{BlobRef, BlobStore, CHUNK};

pub type ChunkStream = Pin<Box<dyn Stream<Item = Result<Vec<u8>, Status>> + Send>>;

/// Whether this node's replicated table has job `id` completed (a
/// follower can then serve it without the master).
pub fn completed_here(sys: &Sys, id: &str) -> bool {
    sys.jobs
        .lock()
        .get(id)
        .is_some_and(|job| job.status == JobStatus::Completed && job.output.is_some())
}

/// Opens job `id`'s output as a stream of chunks, from this node's copy
/// or else from a node holding one; every byte is checked against the
/// output's sha256 while it streams (see [`verified`]).
pub async fn output_stream(backups: &Arc<Backups>, id: &str) -> Result<ChunkStream, Status> {
    let sys = &backups.sys;
    ids::check_lookup(id).map_err(|e| Status::invalid_argument(e.to_string()))?;
    let (blob, holders) = {
        let jobs = sys.jobs.lock();
        let job = jobs
            .get(id)
            .ok_or_else(|| Status::not_found(format!("no video {id:?}")))?;
        match (&job.status, &job.output) {
            (JobStatus::Completed, Some(blob)) => (blob.clone(), job.output_holders.clone()),
            (status, _) => {
                return Err(Status::failed_precondition(format!(
                    "video {id:?} is not ready: {} ({})",
                    status.as_str(),
                    job.message
                )));
            }
        }
    };
    if sys.store.contains(&blob).await {
        let path = sys
            .store
            .path(&blob.sha256)
            .map_err(|e| Status::internal(e.to_string()))?;
        let chunks = blob_stream(sys, path, blob.size, None).await?;
        return Ok(verified(backups, chunks, blob, true));
    }
    let mut reasons = Vec::new();
    for holder in holders.iter().filter(|h| **h != sys.node_id) {
        let Some(address) = crate::cluster::blobs::address_of(sys, holder) else {
            continue;
        };
        match remote_stream(sys, &address, &blob).await {
            Ok(chunks) => return Ok(verified(backups, chunks, blob, false)),
            Err(e) => reasons.push(format!("{holder}: {e}")),
        }
    }
    Err(Status::unavailable(format!(
        "no reachable node holds a copy of video {id:?} ({})",
        if reasons.is_empty() {
            "no holder known".into()
        } else {
            reasons.join("; ")
        }
    )))
}

/// The blob's chunks as the node at `address` streams them.
async fn remote_stream(
    sys: &Sys,
    address: &str,
    blob: &BlobRef,
) -> Result<ChunkStream, BlobTransferError> {
    let channel = sys
        .peers
        .channel(address)
        .map_err(|e| peer_error(address, e))?;
    let stream = WorkerClient::new(channel)
        .max_decoding_message_size(4 << 20)
        .fetch_blob(FetchBlobRequest {
            sha256: blob.sha256.clone(),
            release: false,
        })
        .await
        .map_err(|e| peer_error(address, e.message()))?
        .into_inner();
    Ok(Box::pin(stream.map(|chunk| chunk.map(|c| c.data))))
}

/// Passes `chunks` on one behind, hashing them: the last chunk is sent
/// only once the whole content matched `blob`'s sha256 and size, so a
/// damaged copy never reaches a client whole; it ends with DATA_LOSS
/// instead (and a damaged local copy is removed and reported, so the
/// next try is served from a good one).
fn verified(
    backups: &Arc<Backups>,
    mut chunks: ChunkStream,
    blob: BlobRef,
    local: bool,
) -> ChunkStream {
    let (tx, rx) = tokio::sync::mpsc::channel(2);
    let backups = backups.clone();
    backups.sys.tasks.clone().spawn(async move {
        let mut hasher = Sha256::new();
        let (mut size, mut held): (u64, Option<Vec<u8>>) = (0, None);
        while let Some(next) = chunks.next().await {
            match next {
                Ok(chunk) => {
                    hasher.update(&chunk);
                    size += chunk.len() as u64;
                    if let Some(previous) = held.replace(chunk)
                        && tx.send(Ok(previous)).await.is_err()
                    {
                        return;
                    }
                }
                Err(status) => {
                    let _ = tx.send(Err(status)).await;
                    return;
                }
            }
        }
        let sha256 = hex::encode(hasher.finalize());
        if sha256 == blob.sha256 && size == blob.size {
            if let Some(last) = held {
                let _ = tx.send(Ok(last)).await;
            }
            return;
        }
        tracing::warn!(blob = %blob.sha256, got = %sha256, size, "refused to finish serving a damaged copy");
        if local {
            let _ = backups.sys.store.remove(&blob.sha256).await;
            backups.lost_here(&blob.sha256);
        }
        let _ = tx
            .send(Err(Status::data_loss(format!(
                "the stored copy is damaged (sha256 {sha256}, {size} bytes); retry: another copy will be used"
            ))))
            .await;
    });
    Box::pin(ReceiverStream::new(rx))
}

/// Streams the file at `path` (expected to hold `size` bytes) in chunks.
/// With `release`, the blob is deleted once it was sent whole.
pub async fn blob_stream(
    sys: &Sys,
    path: std::path::PathBuf,
    size: u64,
    release: Option<(BlobStore, String)>,
) -> Result<ChunkStream, Status> {
    let mut file = tokio::fs::File::open(&path)
        .await
        .map_err(|e| Status::unavailable(format!("blob is not readable on this node: {e}")))?;
    let (tx, rx) = tokio::sync::mpsc::channel(2);
    let shutdown = sys.shutdown.clone();
    sys.tasks.spawn(async move {
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
            crate::metrics::bytes_sent(n as u64);
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
