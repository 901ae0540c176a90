//! Serving a finished output: from this node's copy, or else streamed
//! from a node holding one; every byte is checked against the output's
//! sha256 while it streams, and a damaged copy never reaches a client
//! whole (a damaged local copy is removed and reported, so the next try
//! is served from a good one).

use std::pin::Pin;
use std::sync::Arc;

use futures::{Stream, StreamExt};
use sha2::{Digest, Sha256};
use tokio_stream::wrappers::ReceiverStream;

use super::Backups;
use crate::cluster::Sys;
use crate::cluster::blob_stream::{SendError, send_blob};
use crate::cluster::blobs::{BlobTransferError, address_of, open_fetch};
use crate::ids::{self, BadId};
use crate::jobs::JobStatus;
use crate::store::{BlobRef, StoreError};

/// Why an output was not served, or stopped streaming.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error(transparent)]
    BadId(#[from] BadId),
    #[error("no video {0:?}")]
    Unknown(String),
    #[error("video {id:?} is not ready: {status} ({message})")]
    NotReady {
        id: String,
        status: &'static str,
        message: String,
    },
    #[error("no reachable node holds a copy of video {id:?} ({reasons})")]
    NoCopy { id: String, reasons: String },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Local(#[from] SendError),
    /// The holder streaming it broke off.
    #[error("{}", .0.message())]
    Remote(tonic::Status),
    #[error(
        "the stored copy is damaged (sha256 {sha256}, {size} bytes); retry: another copy will be used"
    )]
    Damaged { sha256: String, size: u64 },
}

pub type Chunks = Pin<Box<dyn Stream<Item = Result<Vec<u8>, ServeError>> + Send>>;

/// `chunks` without their first `offset` bytes (a resumed download).
/// The whole content is still read and verified: only what the caller
/// already has is not sent again.
pub fn from_offset(chunks: Chunks, offset: u64) -> Chunks {
    let mut to_skip = offset;
    Box::pin(chunks.filter_map(move |chunk| {
        let chunk = match chunk {
            Ok(data) if to_skip >= data.len() as u64 => {
                to_skip -= data.len() as u64;
                None
            }
            Ok(data) => {
                let keep = data[to_skip as usize..].to_vec();
                to_skip = 0;
                Some(Ok(keep))
            }
            Err(e) => Some(Err(e)),
        };
        std::future::ready(chunk)
    }))
}

/// Whether this node's replicated table has job `id` completed (a
/// follower can then serve it without the master).
pub fn completed_here(sys: &Sys, id: &str) -> bool {
    sys.jobs
        .lock()
        .get(id)
        .is_some_and(|job| job.status == JobStatus::Completed && job.output.is_some())
}

impl Backups {
    /// Opens job `id`'s output as a stream of verified chunks.
    pub async fn output(self: &Arc<Self>, id: &str) -> Result<Chunks, ServeError> {
        let sys = &self.sys;
        ids::check_lookup(id)?;
        let (blob, holders) = {
            let jobs = sys.jobs.lock();
            let job = jobs
                .get(id)
                .ok_or_else(|| ServeError::Unknown(id.to_string()))?;
            match (&job.status, &job.output) {
                (JobStatus::Completed, Some(blob)) => (blob.clone(), job.output_holders.clone()),
                (status, _) => {
                    return Err(ServeError::NotReady {
                        id: id.to_string(),
                        status: status.as_str(),
                        message: job.message.clone(),
                    });
                }
            }
        };
        if sys.store.contains(&blob).await {
            let path = sys.store.path(&blob.sha256)?;
            let chunks = send_blob(sys, path, blob.size, None).await?;
            let chunks = chunks.map(|c| c.map_err(ServeError::from));
            return Ok(self.verified(Box::pin(chunks), blob, true, None));
        }
        let mut reasons = Vec::new();
        for holder in holders.iter().filter(|h| **h != sys.node_id) {
            let Some(address) = address_of(sys, holder) else {
                continue;
            };
            match remote_chunks(sys, &address, &blob).await {
                Ok(chunks) => return Ok(self.verified(chunks, blob, false, None)),
                Err(e) => reasons.push(format!("{holder}: {e}")),
            }
        }
        Err(ServeError::NoCopy {
            id: id.to_string(),
            reasons: if reasons.is_empty() {
                "no holder known".into()
            } else {
                reasons.join("; ")
            },
        })
    }

    /// Passes `chunks` on one behind, hashing them: the last chunk is
    /// sent only once the whole content matched `blob`'s sha256 and size;
    /// otherwise the stream ends with [`ServeError::Damaged`] and, when
    /// the copy is this node's (`local`), it is removed and reported lost
    /// (repair restores it from a holder). `pin` (if any) holds the blob
    /// in the store until the stream ends.
    pub fn verified(
        self: &Arc<Self>,
        mut chunks: Chunks,
        blob: BlobRef,
        local: bool,
        pin: Option<crate::store::BlobPin>,
    ) -> Chunks {
        let (tx, rx) = tokio::sync::mpsc::channel(2);
        let backups = self.clone();
        self.sys.tasks.spawn(async move {
            let _pin = pin;
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
                    Err(e) => {
                        let _ = tx.send(Err(e)).await;
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
            let _ = tx.send(Err(ServeError::Damaged { sha256, size })).await;
        });
        Box::pin(ReceiverStream::new(rx))
    }
}

/// The blob's chunks as the node at `address` streams them.
async fn remote_chunks(
    sys: &Sys,
    address: &str,
    blob: &BlobRef,
) -> Result<Chunks, BlobTransferError> {
    let stream = open_fetch(sys, address, blob).await?;
    Ok(Box::pin(stream.map(|chunk| {
        chunk.map(|c| c.data).map_err(ServeError::Remote)
    })))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_resumed_stream_starts_at_its_offset_across_chunks() {
        let whole: Vec<u8> = (0..=255u8).cycle().take(1000).collect();
        for offset in [0u64, 1, 299, 300, 301, 999, 1000, 5000] {
            let chunks: Chunks = Box::pin(futures::stream::iter(
                whole
                    .chunks(300)
                    .map(|c| Ok(c.to_vec()))
                    .collect::<Vec<_>>(),
            ));
            let sent: Vec<u8> = from_offset(chunks, offset)
                .map(|c| c.expect("chunk"))
                .concat()
                .await;
            let start = (offset as usize).min(whole.len());
            assert_eq!(sent, whole[start..], "offset {offset}");
        }
    }
}
