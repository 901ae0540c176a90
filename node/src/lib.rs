//! vidshard-node: the daemon of the vidshard encoding cluster.
//!
//! # Layout
//!
//! Modules by domain, each subsystem behind one handle that holds only
//! what it uses; a module uses only the lines above it (docs/design.md,
//! "Module map"):
//!
//! 0. `params` (job options, from `vidshard_proto` so the client shares
//!    the rules), `ids` (safe job ids), `config` (flags, TOML),
//!    `score` (the load score), `store` (blob files, scratch dirs)
//! 1. `stats` (load samples), `media` (every ffmpeg/ffprobe run), `jobs`
//!    (job records and the Raft commands), `events`, `metrics`
//!    (Prometheus recorders), `streaming` (HLS and DASH manifests of a
//!    ladder job's package, rendered from its record)
//! 2. `cluster`: [`cluster::System`], the shared infrastructure (identity,
//!    store, Raft, membership, peers, shutdown), and blob copies
//! 3. `backups`: [`backups::Backups`], copies of every output kept whole
//! 4. `worker`: [`worker::Worker`], encode slots, `RunShard`, heartbeats
//! 5. `legacy`: [`legacy::Legacy`], the original `replication` protocol
//! 6. `scheduler`: [`scheduler::Scheduler`], which shard runs where
//! 7. `pipeline`: [`pipeline::Master`], uploads in, jobs driven, heartbeats in
//! 8. `service`: gRPC handlers that only convert; `http`: ladder
//!    packages, player pages and signed links over HTTP (`--http-addr`)
//! 9. `server`: builds the handles, serves, stops cleanly

pub mod backups;
pub mod cluster;
pub mod config;
pub mod events;
pub mod http;
pub mod ids;
#[cfg(test)]
mod ids_props;
pub mod jobs;
pub mod legacy;
pub mod media;
pub mod metrics;
pub use vidshard_proto::params;
pub mod pipeline;
pub mod scheduler;
pub mod score;
pub mod server;
pub mod service;
pub mod stats;
pub mod store;
pub mod streaming;
pub mod worker;
