//! Copying blobs between our nodes: fetch one from whichever holder
//! answers (a new master collecting a job's source and encoded shards),
//! or push one to a backup node (an upload before it is acknowledged);
//! streamed in ≤1 MiB chunks and checked by sha256 at the other end.

use futures::stream;
use tokio::io::AsyncReadExt;
use vidshard_proto::v1::push_blob_request::Part;
use vidshard_proto::v1::worker_client::WorkerClient;
use vidshard_proto::v1::{BlobHeader, FetchBlobRequest, PushBlobRequest};

use crate::cluster::Sys;
use crate::store::BlobRef;

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

/// Copies `blob` from the node at `address` into the local store.
pub async fn fetch(sys: &Sys, address: &str, blob: &BlobRef) -> Result<(), String> {
    let channel = sys.peers.channel(address).map_err(|e| e.to_string())?;
    let mut client = WorkerClient::new(channel).max_decoding_message_size(4 << 20);
    let mut stream = client
        .fetch_blob(FetchBlobRequest {
            sha256: blob.sha256.clone(),
            release: false,
        })
        .await
        .map_err(|e| format!("{address}: {}", e.message()))?
        .into_inner();
    let mut writer = sys.store.writer().await.map_err(|e| e.to_string())?;
    while let Some(chunk) = stream
        .message()
        .await
        .map_err(|e| format!("{address}: {}", e.message()))?
    {
        if chunk.data.len() > CHUNK {
            return Err(format!("{address} sent a {} byte chunk", chunk.data.len()));
        }
        writer.write(&chunk.data).await.map_err(|e| e.to_string())?;
    }
    let got = writer.finish().await.map_err(|e| e.to_string())?;
    if got != *blob {
        let _ = sys.store.remove(&got.sha256).await;
        return Err(format!(
            "{address} sent {} ({} bytes), not {}",
            got.sha256, got.size, blob.sha256
        ));
    }
    Ok(())
}

/// Makes sure `blob` is in the local store, fetching it from the first of
/// `holders` (node names) that has it. Answers why not otherwise.
pub async fn ensure_local(sys: &Sys, blob: &BlobRef, holders: &[String]) -> Result<(), String> {
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
            Err(e) => reasons.push(e),
        }
    }
    if reasons.is_empty() {
        reasons.push("no other node holds it".into());
    }
    Err(reasons.join("; "))
}

/// Streams `blob` from the local store to the node at `address`, which
/// answers once it is durable there.
pub async fn push(sys: &Sys, address: &str, blob: &BlobRef, purpose: &str) -> Result<(), String> {
    let path = sys.store.path(&blob.sha256).map_err(|e| e.to_string())?;
    let file = tokio::fs::File::open(&path)
        .await
        .map_err(|e| format!("reading {}: {e}", blob.sha256))?;
    let header = PushBlobRequest {
        part: Some(Part::Header(BlobHeader {
            sha256: blob.sha256.clone(),
            size: blob.size,
            term: sys.term(),
            purpose: purpose.to_string(),
        })),
    };
    let channel = sys.peers.channel(address).map_err(|e| e.to_string())?;
    let reply = WorkerClient::new(channel)
        .push_blob(push_stream(header, file))
        .await
        .map_err(|e| format!("{address}: {}", e.message()))?
        .into_inner();
    if reply.stored {
        Ok(())
    } else {
        Err(format!("{address}: {}", reply.message))
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
            Err(e) => errors.push(e),
        }
    }
    (holders, errors)
}
