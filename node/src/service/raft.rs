//! Our `vidshard.v1.Raft` service: hands openraft's messages from other
//! nodes to the local Raft and sends its answer back as JSON
//! (`Result<reply, RaftError>`, so the caller sees Raft's own errors).

use openraft::raft::{AppendEntriesRequest, InstallSnapshotRequest, VoteRequest};
use serde::Serialize;
use tonic::{Request, Response, Status};
use vidshard_proto::v1::raft_server;
use vidshard_proto::v1::{RaftMessage, SnapshotChunk, SteerReply, SteerRequest};

use crate::cluster::raft::consensus::Consensus;
use crate::cluster::raft::{NodeId, TypeConfig};

pub struct RaftService {
    consensus: Consensus,
}

impl RaftService {
    pub fn new(consensus: Consensus) -> Self {
        Self { consensus }
    }

    /// A term no real cluster reaches is refused before Raft saves it.
    fn admit(&self, term: u64) -> Result<(), Status> {
        self.consensus.admit_term(term).map_err(|e| {
            tracing::warn!(term, reason = %e, "refused a Raft message");
            Status::invalid_argument(e.to_string())
        })
    }
}

fn decode<T: serde::de::DeserializeOwned>(json: &[u8]) -> Result<T, Status> {
    serde_json::from_slice(json)
        .map_err(|e| Status::invalid_argument(format!("bad Raft message: {e}")))
}

fn encode<T: Serialize>(answer: &T) -> Result<Response<RaftMessage>, Status> {
    serde_json::to_vec(answer)
        .map(|json| Response::new(RaftMessage { json }))
        .map_err(|e| Status::internal(format!("encoding the Raft answer: {e}")))
}

#[tonic::async_trait]
impl raft_server::Raft for RaftService {
    async fn append_entries(
        &self,
        request: Request<RaftMessage>,
    ) -> Result<Response<RaftMessage>, Status> {
        let rpc: AppendEntriesRequest<TypeConfig> = decode(&request.get_ref().json)?;
        self.admit(rpc.vote.leader_id().term)?;
        let answer = self.consensus.raft.append_entries(rpc).await;
        if answer.as_ref().is_ok_and(|reply| reply.is_success()) {
            self.consensus.heard_from_leader();
        }
        encode(&answer)
    }

    async fn vote(&self, request: Request<RaftMessage>) -> Result<Response<RaftMessage>, Status> {
        let rpc: VoteRequest<NodeId> = decode(&request.get_ref().json)?;
        self.admit(rpc.vote.leader_id().term)?;
        encode(&self.consensus.raft.vote(rpc).await)
    }

    async fn install_snapshot(
        &self,
        request: Request<SnapshotChunk>,
    ) -> Result<Response<RaftMessage>, Status> {
        let chunk = request.into_inner();
        let mut rpc: InstallSnapshotRequest<TypeConfig> = decode(&chunk.header_json)?;
        self.admit(rpc.vote.leader_id().term)?;
        rpc.data = chunk.data;
        encode(&self.consensus.raft.install_snapshot(rpc).await)
    }

    async fn steer(&self, request: Request<SteerRequest>) -> Result<Response<SteerReply>, Status> {
        let SteerRequest {
            action,
            term,
            hold_ms,
        } = request.into_inner();
        let outcome =
            crate::cluster::raft::transfer::obey(&self.consensus, &action, term, hold_ms).await;
        if let Err(why) = &outcome {
            tracing::warn!(%action, term, reason = %why, "refused a steering request");
        }
        Ok(Response::new(SteerReply {
            ok: outcome.is_ok(),
            message: outcome.err().map(|e| e.to_string()).unwrap_or_default(),
        }))
    }
}
