//! The original `replication.WorkerService`. Remote shard processing for
//! original-protocol masters arrives with the distributed-encoding work;
//! until then both RPCs say so plainly instead of pretending.

use tonic::{Request, Response, Status};
use vidshard_proto::replication::worker_service_server::WorkerService;
use vidshard_proto::replication::*;

use crate::context::Ctx;

pub struct Worker {
    _ctx: Ctx,
}

impl Worker {
    pub fn new(ctx: Ctx) -> Self {
        Self { _ctx: ctx }
    }
}

const NOT_YET: &str = "this vidshard node does not take shards from other masters yet";

#[tonic::async_trait]
impl WorkerService for Worker {
    async fn process_shard(
        &self,
        request: Request<DistributeShardRequest>,
    ) -> Result<Response<ProcessShardResponse>, Status> {
        let shard_id = request.into_inner().shard_id;
        Ok(Response::new(ProcessShardResponse {
            shard_id,
            success: false,
            message: NOT_YET.into(),
        }))
    }

    async fn request_shard(
        &self,
        request: Request<RequestShardRequest>,
    ) -> Result<Response<RequestShardResponse>, Status> {
        let shard_id = request.into_inner().shard_id;
        Ok(Response::new(RequestShardResponse {
            shard_id,
            shard_data: Vec::new(),
            success: false,
            message: NOT_YET.into(),
        }))
    }
}
