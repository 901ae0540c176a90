//! Copying blobs between our nodes: fetch one from whichever holder
//! answers (a new master collecting a job's source and encoded shards),
//! or push one to a backup node (an upload before it is acknowledged);
//! streamed in ≤1 MiB chunks and checked by sha256 at the other end.

use futures::stream;
use tokio::io::AsyncReadExt;
use vidshard_proto::v1::push_blob_request::Part;
use vidshard_proto::v1::worker_client::WorkerClient;
use vidshard_proto::v1::{BlobChunk, BlobHeader, FetchBlobRequest, PushBlobRequest};

use crate::cluster::Sys;
use crate::store::{BlobRef, StoreError};

/// Largest chunk accepted from a peer.
const CHUNK: usize = 1 << 20;

/// The address of the node named `name`: from the Raft membership, else
/// from the heartbeat table.
pub fn address_of(sys: &Sys, name: &str) -> Option<String> {
    if name == sys.node_id {
        return Some(sys.address.clone());
    }
    sys.consensus
        .members()
        .into_iter()
        .find(|m| m.info.name == name)
        .map(|m| m.info.address)
        .or_else(|| sys.membership.lock().get(name).map(|m| m.address.clone()))
}

/// Why a blob did not move between nodes.
#[derive(Debug, thiserror::Error)]
pub enum BlobTransferError {
    /// The other node could not be reached, broke off, or refused.
    #[error("{address}: {reason}")]
    Peer { address: String, reason: String },
    #[error("{address} sent a {size} byte chunk")]
    BadChunk { address: String, size: usize },
    #[error("{address} sent {got} ({size} bytes), not {wanted}")]
    Damaged {
        address: String,
        got: String,
        size: u64,
        wanted: String,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("reading {sha256}: {error}")]
    Unreadable {
        sha256: String,
        error: std::io::Error,
    },
    /// No holder could provide it; one reason per holder tried.
    #[error("{}", .0.join("; "))]
    NoHolder(Vec<String>),
}

/// The node at `address` could not be reached, broke off, or refused.
pub fn peer_error(address: &str, reason: impl std::fmt::Display) -> BlobTransferError {
    BlobTransferError::Peer {
        address: address.to_string(),
        reason: reason.to_string(),
    }
}

/// Asks the node at `address` for `blob`'s chunks (it keeps its copy).
pub async fn open_fetch(
    sys: &Sys,
    address: &str,
    blob: &BlobRef,
) -> Result<tonic::Streaming<BlobChunk>, BlobTransferError> {
    let channel = sys
        .peers
        .channel(address)
        .map_err(|e| peer_error(address, e))?;
    Ok(WorkerClient::new(channel)
        .max_decoding_message_size(4 << 20)
        .fetch_blob(FetchBlobRequest {
            sha256: blob.sha256.clone(),
            release: false,
        })
        .await
        .map_err(|e| peer_error(address, e.message()))?
        .into_inner())
}

/// Copies `blob` from the node at `address` into the local store.
pub async fn fetch(sys: &Sys, address: &str, blob: &BlobRef) -> Result<(), BlobTransferError> {
    let mut stream = open_fetch(sys, address, blob).await?;
    let mut writer = sys.store.writer().await?;
    while let Some(chunk) = stream
        .message()
        .await
        .map_err(|e| peer_error(address, e.message()))?
    {
        if chunk.data.len() > CHUNK {
            return Err(BlobTransferError::BadChunk {
                address: address.to_string(),
                size: chunk.data.len(),
            });
        }
        writer.write(&chunk.data).await?;
    }
    // Checked before the copy enters the store: a damaged one is dropped
    // with its temp file and never replaces or removes a stored blob.
    let (got, size) = (writer.sha256(), writer.size());
    if got != blob.sha256 || size != blob.size {
        return Err(BlobTransferError::Damaged {
            address: address.to_string(),
            got,
            size,
            wanted: blob.sha256.clone(),
        });
    }
    writer.finish().await?;
    Ok(())
}

/// Makes sure `blob` is in the local store, fetching it from the first of
/// `holders` (node names) that has it. Answers why not otherwise.
pub async fn ensure_local(
    sys: &Sys,
    blob: &BlobRef,
    holders: &[String],
) -> Result<(), BlobTransferError> {
    if sys.store.contains(blob).await {
        return Ok(());
    }
    let mut reasons = Vec::new();
    for holder in holders.iter().filter(|h| **h != sys.node_id) {
        let Some(address) = address_of(sys, holder) else {
            reasons.push(format!("{holder}: address unknown"));
            continue;
        };
        match fetch(sys, &address, blob).await {
            Ok(()) => {
                tracing::info!(blob = %blob.sha256, from = %holder, "fetched a blob from its holder");
                return Ok(());
            }
            Err(e) => reasons.push(e.to_string()),
        }
    }
    if reasons.is_empty() {
        reasons.push("no other node holds it".into());
    }
    Err(BlobTransferError::NoHolder(reasons))
}

/// Streams `blob` from the local store to the node at `address`, which
/// answers once it is durable there.
pub async fn push(
    sys: &Sys,
    address: &str,
    blob: &BlobRef,
    purpose: &str,
) -> Result<(), BlobTransferError> {
    let path = sys.store.path(&blob.sha256)?;
    let file =
        tokio::fs::File::open(&path)
            .await
            .map_err(|error| BlobTransferError::Unreadable {
                sha256: blob.sha256.clone(),
                error,
            })?;
    let header = PushBlobRequest {
        part: Some(Part::Header(BlobHeader {
            sha256: blob.sha256.clone(),
            size: blob.size,
            term: sys.term(),
            purpose: purpose.to_string(),
        })),
    };
    let channel = sys
        .peers
        .channel(address)
        .map_err(|e| peer_error(address, e))?;
    let reply = WorkerClient::new(channel)
        .push_blob(push_stream(header, file))
        .await
        .map_err(|e| peer_error(address, e.message()))?
        .into_inner();
    if reply.stored {
        Ok(())
    } else {
        Err(peer_error(address, reply.message))
    }
}

/// The header, then the file in chunks of at most 1 MiB.
fn push_stream(
    header: PushBlobRequest,
    file: tokio::fs::File,
) -> impl futures::Stream<Item = PushBlobRequest> + Send + 'static {
    let chunks = stream::unfold(Some(file), |file| async move {
        let mut file = file?;
        let mut buf = vec![0u8; CHUNK];
        match file.read(&mut buf).await {
            Ok(0) | Err(_) => None,
            Ok(n) => {
                buf.truncate(n);
                let part = Some(Part::Chunk(buf));
                Some((PushBlobRequest { part }, Some(file)))
            }
        }
    });
    futures::StreamExt::chain(stream::iter([header]), chunks)
}

/// Live vidshard nodes other than this one, best score first: where
/// backups go.
pub fn backup_candidates(sys: &Sys) -> Vec<(String, String)> {
    let mut live: Vec<(f32, String, String)> = sys
        .membership
        .lock()
        .members()
        .filter(|m| m.alive && m.node_id != sys.node_id)
        .filter(|m| m.protocol == crate::cluster::Protocol::Vidshard)
        .map(|m| (m.load.score, m.node_id.clone(), m.address.clone()))
        .collect();
    live.sort_by(|a, b| a.0.total_cmp(&b.0));
    live.into_iter()
        .map(|(_, id, address)| (id, address))
        .collect()
}

/// Copies `blob` to `copies` live nodes (best scored first); answers the
/// node ids that now hold it. Fewer than asked only when fewer nodes are
/// live or reachable; the caller decides whether that is enough.
pub async fn replicate(
    sys: &Sys,
    blob: &BlobRef,
    copies: usize,
    purpose: &str,
) -> (Vec<String>, Vec<String>) {
    let mut holders = Vec::new();
    let mut errors = Vec::new();
    for (id, address) in backup_candidates(sys) {
        if holders.len() >= copies {
            break;
        }
        match push(sys, &address, blob, purpose).await {
            Ok(()) => holders.push(id),
            Err(e) => errors.push(e.to_string()),
        }
    }
    (holders, errors)
}
