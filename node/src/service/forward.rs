//! Any node serves clients: a request that only the master can answer is
//! forwarded (streamed, chunk by chunk) to the Raft leader, so a client
//! that cannot follow a redirect (the original one) works against any
//! node. A forwarded request carries a marker and is never forwarded
//! again, so two nodes that disagree about the leader cannot bounce it.

use std::time::Duration;

use futures::{Stream, StreamExt};
use tonic::metadata::MetadataMap;
use tonic::{Request, Status};

use crate::cluster::Sys;

/// Metadata key marking a request one node forwarded to another.
pub const FORWARDED: &str = "x-vidshard-forwarded";

/// How long a request waits for an election before it is refused.
const ELECTION_WAIT: Duration = Duration::from_secs(5);

/// Where a master-only request goes: `None` to answer here (this node
/// leads), `Some(leader)` to forward. Refused when no leader emerges or
/// when the request was forwarded here already.
pub async fn leader_for(sys: &Sys, metadata: &MetadataMap) -> Result<Option<String>, Status> {
    if sys.is_master() {
        return Ok(None);
    }
    if metadata.contains_key(FORWARDED) {
        return Err(Status::unavailable(
            "forwarded here, but this node is not the master either (an election is under way); retry",
        ));
    }
    let leader = match sys.consensus.leader() {
        Some(leader) => Some(leader),
        None => sys.consensus.wait_for_leader(ELECTION_WAIT).await,
    };
    match leader {
        Some((_, info)) if info.address == sys.address => Ok(None),
        Some((_, info)) => Ok(Some(info.address)),
        None => Err(Status::unavailable(
            "no master is elected right now (no quorum reachable); retry shortly",
        )),
    }
}

/// Wraps `message` for forwarding.
pub fn marked<T>(message: T) -> Request<T> {
    let mut request = Request::new(message);
    request
        .metadata_mut()
        .insert(FORWARDED, tonic::metadata::MetadataValue::from_static("1"));
    request
}

/// A channel to the leader at `address`.
pub fn channel(sys: &Sys, address: &str) -> Result<crate::cluster::peers::PeerChannel, Status> {
    sys.peers
        .channel(address)
        .map_err(|e| Status::unavailable(format!("cannot reach the master at {address}: {e}")))
}

/// A client stream relayed as it arrives, and word of its failure.
pub struct Relay<T> {
    pub stream: tokio_stream::wrappers::ReceiverStream<T>,
    pub failed: tokio::sync::oneshot::Receiver<Status>,
}

/// Relays a client stream: items pass through as they arrive (a small
/// queue, so a slow leader slows the client). When the client's stream
/// fails, the relayed one never ends; [`until_failed`] then drops the
/// forwarded call, which resets it at the leader, so the leader sees an
/// aborted upload, not a short one.
pub fn relay<T: Send + 'static>(
    mut incoming: impl Stream<Item = Result<T, Status>> + Send + Unpin + 'static,
) -> Relay<T> {
    let (failed_tx, failed) = tokio::sync::oneshot::channel::<Status>();
    let (tx, rx) = tokio::sync::mpsc::channel::<T>(4);
    tokio::spawn(async move {
        while let Some(item) = incoming.next().await {
            match item {
                Ok(value) => {
                    if tx.send(value).await.is_err() {
                        return;
                    }
                }
                Err(status) => {
                    let _ = failed_tx.send(status);
                    // Keep the relayed stream open until the call is gone.
                    tx.closed().await;
                    return;
                }
            }
        }
    });
    Relay {
        stream: tokio_stream::wrappers::ReceiverStream::new(rx),
        failed,
    }
}

/// Runs the forwarded call unless the client's stream fails first.
pub async fn until_failed<R>(
    call: impl std::future::Future<Output = Result<R, Status>>,
    failed: tokio::sync::oneshot::Receiver<Status>,
) -> Result<R, Status> {
    tokio::select! {
        reply = call => reply,
        Ok(status) = failed => Err(status),
    }
}

/// Forwards a `vidshard.v1.Jobs/Upload` to the leader.
pub fn upload_v1(
    sys: Sys,
    leader: String,
    incoming: tonic::Streaming<vidshard_proto::v1::UploadRequest>,
) -> futures::future::BoxFuture<
    'static,
    Result<tonic::Response<vidshard_proto::v1::UploadReply>, Status>,
> {
    Box::pin(async move {
        let mut client = vidshard_proto::v1::jobs_client::JobsClient::new(channel(&sys, &leader)?);
        let relay = relay(incoming);
        until_failed(client.upload(marked(relay.stream)), relay.failed).await
    })
}

/// Forwards an original `MasterService/UploadVideo` to the leader.
pub fn upload_original(
    sys: Sys,
    leader: String,
    incoming: tonic::Streaming<vidshard_proto::replication::UploadVideoChunk>,
) -> futures::future::BoxFuture<
    'static,
    Result<tonic::Response<vidshard_proto::replication::UploadVideoResponse>, Status>,
> {
    Box::pin(async move {
        let mut client =
            vidshard_proto::replication::master_service_client::MasterServiceClient::new(channel(
                &sys, &leader,
            )?)
            .max_encoding_message_size(super::MAX_MESSAGE);
        let relay = relay(incoming);
        until_failed(client.upload_video(marked(relay.stream)), relay.failed).await
    })
}
