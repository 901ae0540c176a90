//! gRPC services: thin handlers over the domain modules. The original
//! `replication` services (master, worker, node) and our `vidshard.v1`
//! services share one port.

mod cluster;
mod convert;
mod jobs;
mod master;
mod node;
mod retrieve;
mod shard_worker;
mod upload;
mod worker;

pub use node::FIXED_TERM;
pub use worker::MAX_LEGACY_SHARD;

use tonic::service::Routes;
use vidshard_proto::replication::master_service_server::MasterServiceServer;
use vidshard_proto::replication::node_service_server::NodeServiceServer;
use vidshard_proto::replication::worker_service_server::WorkerServiceServer;
use vidshard_proto::v1::cluster_server::ClusterServer;
use vidshard_proto::v1::jobs_server::JobsServer;
use vidshard_proto::v1::worker_server::WorkerServer;

use crate::context::Ctx;

/// Largest message any service decodes: a 1 MiB chunk plus headroom; the
/// original client sends 1 MiB chunks.
pub const MAX_MESSAGE: usize = 4 << 20;

/// Every service of a node, ready to serve.
pub fn routes(ctx: Ctx) -> Routes {
    Routes::new(
        MasterServiceServer::new(master::Master::new(ctx.clone()))
            .max_decoding_message_size(MAX_MESSAGE),
    )
    .add_service(
        WorkerServiceServer::new(worker::Worker::new(ctx.clone()))
            .max_decoding_message_size(worker::MAX_LEGACY_SHARD + 4096),
    )
    .add_service(
        NodeServiceServer::new(node::Node::new(ctx.clone())).max_decoding_message_size(MAX_MESSAGE),
    )
    .add_service(
        JobsServer::new(jobs::Jobs::new(ctx.clone())).max_decoding_message_size(MAX_MESSAGE),
    )
    .add_service(
        WorkerServer::new(shard_worker::ShardWorker::new(ctx.clone()))
            .max_decoding_message_size(MAX_MESSAGE),
    )
    .add_service(ClusterServer::new(cluster::Cluster::new(ctx)))
}
