//! Raft's transport, client side: openraft's requests to another node go
//! over that node's `vidshard.v1.Raft` gRPC service as JSON; snapshot
//! chunks (at most 1 MiB, as configured) travel as raw bytes.

// openraft fixes these error types; boxing them here would only be undone.
#![allow(clippy::result_large_err)]

use openraft::error::{
    InstallSnapshotError, NetworkError, RPCError, RaftError, RemoteError, Unreachable,
};
use openraft::network::{RPCOption, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use serde::Serialize;
use serde::de::DeserializeOwned;
use vidshard_proto::v1::raft_client::RaftClient;
use vidshard_proto::v1::{RaftMessage, SnapshotChunk};

use super::types::{NodeId, NodeInfo, TypeConfig};
use crate::cluster::peers::Peers;

/// Largest Raft message accepted or sent (append batches are small; this
/// bounds a hostile peer).
pub const MAX_RAFT_MESSAGE: usize = 16 * 1024 * 1024;

/// Makes a [`PeerNetwork`] per target node, sharing the node's channels.
#[derive(Clone)]
pub struct NetworkFactory {
    pub peers: Peers,
}

impl RaftNetworkFactory<TypeConfig> for NetworkFactory {
    type Network = PeerNetwork;

    async fn new_client(&mut self, target: NodeId, node: &NodeInfo) -> Self::Network {
        PeerNetwork {
            target,
            node: node.clone(),
            peers: self.peers.clone(),
        }
    }
}

pub struct PeerNetwork {
    target: NodeId,
    node: NodeInfo,
    peers: Peers,
}

type RpcResult<T, E = openraft::error::Infallible> =
    Result<T, RPCError<NodeId, NodeInfo, RaftError<NodeId, E>>>;

impl PeerNetwork {
    fn client<E: std::error::Error>(
        &self,
    ) -> RpcResult<RaftClient<crate::cluster::peers::PeerChannel>, E> {
        let channel = self
            .peers
            .channel(&self.node.address)
            .map_err(|e| RPCError::Unreachable(Unreachable::new(&e)))?;
        Ok(RaftClient::new(channel)
            .max_decoding_message_size(MAX_RAFT_MESSAGE)
            .max_encoding_message_size(MAX_RAFT_MESSAGE))
    }

    /// Turns the peer's JSON answer (`Result<reply, RaftError>`) or a
    /// transport failure into what openraft expects.
    fn answer<T, E>(
        &self,
        sent: Result<tonic::Response<RaftMessage>, tonic::Status>,
    ) -> RpcResult<T, E>
    where
        T: DeserializeOwned,
        E: std::error::Error + DeserializeOwned,
    {
        let message = sent
            .map_err(|status| transport_error(&status))?
            .into_inner();
        let decoded: Result<T, RaftError<NodeId, E>> = serde_json::from_slice(&message.json)
            .map_err(|e| RPCError::Network(NetworkError::new(&e)))?;
        decoded.map_err(|e| {
            RPCError::RemoteError(RemoteError::new_with_node(
                self.target,
                self.node.clone(),
                e,
            ))
        })
    }
}

/// A call that never reached the peer's Raft is "unreachable" (openraft
/// backs off); anything else is a network error.
fn transport_error<E: std::error::Error>(
    status: &tonic::Status,
) -> RPCError<NodeId, NodeInfo, RaftError<NodeId, E>> {
    match status.code() {
        tonic::Code::Unavailable | tonic::Code::Unimplemented => {
            RPCError::Unreachable(Unreachable::new(status))
        }
        _ => RPCError::Network(NetworkError::new(status)),
    }
}

fn request<T: Serialize, E: std::error::Error>(
    body: &T,
    option: &RPCOption,
) -> RpcResult<tonic::Request<RaftMessage>, E> {
    let json = serde_json::to_vec(body).map_err(|e| RPCError::Network(NetworkError::new(&e)))?;
    let mut request = tonic::Request::new(RaftMessage { json });
    request.set_timeout(option.hard_ttl());
    Ok(request)
}

impl RaftNetwork<TypeConfig> for PeerNetwork {
    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        option: RPCOption,
    ) -> RpcResult<AppendEntriesResponse<NodeId>> {
        let mut client = self.client()?;
        let sent = client.append_entries(request(&rpc, &option)?).await;
        self.answer(sent)
    }

    async fn install_snapshot(
        &mut self,
        mut rpc: InstallSnapshotRequest<TypeConfig>,
        option: RPCOption,
    ) -> RpcResult<InstallSnapshotResponse<NodeId>, InstallSnapshotError> {
        let mut client = self.client()?;
        let data = std::mem::take(&mut rpc.data);
        let header_json =
            serde_json::to_vec(&rpc).map_err(|e| RPCError::Network(NetworkError::new(&e)))?;
        let mut chunk = tonic::Request::new(SnapshotChunk { header_json, data });
        chunk.set_timeout(option.hard_ttl());
        let sent = client.install_snapshot(chunk).await;
        self.answer(sent)
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<NodeId>,
        option: RPCOption,
    ) -> RpcResult<VoteResponse<NodeId>> {
        let mut client = self.client()?;
        let sent = client.vote(request(&rpc, &option)?).await;
        self.answer(sent)
    }
}
