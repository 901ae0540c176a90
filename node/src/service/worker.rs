//! The original `replication.WorkerService`, for masters that speak only
//! the original protocol (this service alone decodes messages up to
//! 1 GiB): `ProcessShard` and `RequestShard` over `legacy::Legacy`.

use std::sync::Arc;

use tonic::{Request, Response, Status};
use vidshard_proto::replication::worker_service_server::WorkerService;
use vidshard_proto::replication::*;

use super::errors::store_status;
use crate::legacy::{Legacy, ProcessShardError, ShardResult};

pub struct Worker {
    legacy: Arc<Legacy>,
}

impl Worker {
    pub fn new(legacy: Arc<Legacy>) -> Self {
        Self { legacy }
    }
}

#[tonic::async_trait]
impl WorkerService for Worker {
    async fn process_shard(
        &self,
        request: Request<DistributeShardRequest>,
    ) -> Result<Response<ProcessShardResponse>, Status> {
        self.legacy.sys.original_master.heard();
        let shard = request.into_inner();
        let shard_id = shard.shard_id.clone();
        let (success, message) = match self.legacy.process_shard(shard).await {
            Ok(()) => (true, "accepted; encoding".to_string()),
            Err(ProcessShardError::Refused(reason)) => (false, reason),
            Err(ProcessShardError::Store(e)) => return Err(store_status(e)),
        };
        Ok(Response::new(ProcessShardResponse {
            shard_id,
            success,
            message,
        }))
    }

    async fn request_shard(
        &self,
        request: Request<RequestShardRequest>,
    ) -> Result<Response<RequestShardResponse>, Status> {
        self.legacy.sys.original_master.heard();
        let shard_id = request.into_inner().shard_id;
        let (shard_data, success, message) = match self.legacy.request_shard(&shard_id).await {
            Ok(ShardResult::Ready(data)) => (data, true, String::new()),
            Ok(ShardResult::NotReady(message)) => (Vec::new(), false, message),
            Err(e) => return Err(Status::internal(format!("reading the result: {e}"))),
        };
        Ok(Response::new(RequestShardResponse {
            shard_id,
            shard_data,
            success,
            message,
        }))
    }
}
