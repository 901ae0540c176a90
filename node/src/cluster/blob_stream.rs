//! Sending a blob this node holds, in ≤1 MiB chunks read from disk as the
//! reader takes them (a bounded channel keeps memory flat): a download, a
//! shard result a master fetches, a backup copy.

use std::path::PathBuf;
use std::pin::Pin;

use futures::Stream;
use tokio::io::AsyncReadExt;
use tokio_stream::wrappers::ReceiverStream;

use super::Sys;
use crate::store::{BlobStore, CHUNK};

/// Why sending a local blob stopped.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    #[error("blob is not readable on this node: {0}")]
    Unreadable(std::io::Error),
    #[error("reading the blob: {0}")]
    Read(std::io::Error),
    #[error("blob shrank to {sent} of {size} bytes")]
    Shrank { sent: u64, size: u64 },
}

pub type LocalChunks = Pin<Box<dyn Stream<Item = Result<Vec<u8>, SendError>> + Send>>;

/// Streams the file at `path` (expected to hold `size` bytes) in chunks.
/// With `release`, the blob is deleted once it was sent whole.
pub async fn send_blob(
    sys: &Sys,
    path: PathBuf,
    size: u64,
    release: Option<(BlobStore, String)>,
) -> Result<LocalChunks, SendError> {
    let mut file = tokio::fs::File::open(&path)
        .await
        .map_err(SendError::Unreadable)?;
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
                    let _ = tx.send(Err(SendError::Read(e))).await;
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
            let _ = tx.send(Err(SendError::Shrank { sent, size })).await;
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
