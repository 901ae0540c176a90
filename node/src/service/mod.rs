//! gRPC services: thin handlers over the domain modules. The original
//! `replication` services (master, worker, node) and our `vidshard.v1`
//! services share one port, with gRPC health (`grpc.health.v1.Health`)
//! and server reflection (for grpcurl) beside them.

pub mod access;
mod cluster;
mod cluster_view;
mod convert;
mod convert_package;
mod election;
mod errors;
mod forward;
mod jobs;
mod links;
mod master;
mod membership;
mod node;
mod node_identity;
mod package;
mod raft;
pub mod reply_limits;
mod shard_worker;
mod watch;
mod worker;

use tonic::server::NamedService;
use tonic::service::Routes;
use tonic_health::ServingStatus;
use vidshard_proto::replication::master_service_server::MasterServiceServer;
use vidshard_proto::replication::node_service_server::NodeServiceServer;
use vidshard_proto::replication::worker_service_server::WorkerServiceServer;
use vidshard_proto::v1::cluster_server::ClusterServer;
use vidshard_proto::v1::jobs_server::JobsServer;
use vidshard_proto::v1::raft_server::RaftServer;
use vidshard_proto::v1::worker_server::WorkerServer;

use std::sync::Arc;

use crate::cluster::Sys;
use crate::legacy::Legacy;
use crate::pipeline::Master;
use crate::worker::Worker;

/// The subsystem handles the services are built from; each service gets
/// the ones of the subsystem it serves.
pub struct Handles {
    pub worker: Arc<Worker>,
    pub master: Arc<Master>,
    pub legacy: Arc<Legacy>,
    /// Signs watch links (`Jobs.Link`); off without `--http-addr`.
    pub links: crate::cluster::link_urls::Links,
}

/// Largest message any service decodes: a 1 MiB chunk plus headroom; the
/// original client sends 1 MiB chunks.
pub const MAX_MESSAGE: usize = 4 << 20;

/// Keeps MasterService's health in step with Raft leadership.
async fn follow_leadership(ctx: Sys, health: tonic_health::server::HealthReporter) {
    let mut metrics = ctx.consensus.raft.metrics();
    let mut serving = None;
    loop {
        let now = ctx.is_master();
        if serving != Some(now) {
            serving = Some(now);
            set_master_health(&health, now).await;
        }
        tokio::select! {
            _ = ctx.shutdown.cancelled() => return,
            changed = metrics.changed() => if changed.is_err() { return },
        }
    }
}

async fn set_master_health(health: &tonic_health::server::HealthReporter, is_master: bool) {
    let status = if is_master {
        ServingStatus::Serving
    } else {
        ServingStatus::NotServing
    };
    health
        .set_service_status(MasterServiceServer::<master::Master>::NAME, status)
        .await;
}

/// Every service of a node, ready to serve, with health and reflection.
pub async fn routes(handles: Handles) -> Result<Routes, tonic_reflection::server::Error> {
    let Handles {
        worker,
        master,
        legacy,
        links,
    } = handles;
    let ctx = master.sys.clone();
    // v1 for current grpcurl, v1alpha for older clients.
    let reflection = || {
        tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(vidshard_proto::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
    };
    let reflection_v1alpha = reflection().build_v1alpha()?;
    let reflection = reflection().build_v1()?;
    let (health, health_service) = tonic_health::server::health_reporter();
    // "This node is the master" follows Raft: set now, then the watcher
    // flips MasterService between SERVING and NOT_SERVING as it moves.
    set_master_health(&health, ctx.is_master()).await;
    ctx.tasks
        .spawn(follow_leadership(ctx.clone(), health.clone()));
    for name in [
        WorkerServiceServer::<worker::Worker>::NAME,
        NodeServiceServer::<node::Node>::NAME,
        JobsServer::<jobs::Jobs>::NAME,
        WorkerServer::<shard_worker::ShardWorker>::NAME,
        ClusterServer::<cluster_view::Cluster>::NAME,
    ] {
        health
            .set_service_status(name, ServingStatus::Serving)
            .await;
    }
    // "" (the whole server) starts SERVING in `health_reporter`.
    Ok(Routes::new(
        MasterServiceServer::new(master::Master::new(master.clone()))
            .max_decoding_message_size(MAX_MESSAGE),
    )
    .add_service(
        WorkerServiceServer::new(worker::Worker::new(legacy.clone()))
            .max_decoding_message_size(crate::legacy::MAX_LEGACY_SHARD + 4096),
    )
    .add_service(
        NodeServiceServer::new(node::Node::new(worker.clone(), legacy))
            .max_decoding_message_size(crate::legacy::backups::MAX_NODE_MESSAGE),
    )
    .add_service(
        JobsServer::new(jobs::Jobs::new(master.clone(), links))
            .max_decoding_message_size(MAX_MESSAGE),
    )
    .add_service(
        WorkerServer::new(shard_worker::ShardWorker::new(worker.clone()))
            .max_decoding_message_size(MAX_MESSAGE),
    )
    .add_service(ClusterServer::new(cluster_view::Cluster::new(
        worker, master,
    )))
    .add_service(
        RaftServer::new(raft::RaftService::new(ctx.consensus.clone()))
            .max_decoding_message_size(crate::cluster::raft::network::MAX_RAFT_MESSAGE),
    )
    .add_service(health_service)
    .add_service(reflection)
    .add_service(reflection_v1alpha))
}
