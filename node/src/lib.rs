//! vidshard-node: the daemon of the vidshard encoding cluster.
//!
//! Modules by domain: `config` (flags and the TOML file), `ids` (safe job ids), `params`
//! (what a job asks for), `media` (ffmpeg/ffprobe), `store` (blob files),
//! `jobs` (job records), `pipeline` (the master's job driver), `worker`
//! (encoding one shard), `scheduler` (which shard runs where), `cluster`
//! (membership and heartbeats), `score`/`stats` (load), `service` (gRPC),
//! `legacy` (the original `replication` protocol's backups), `metrics`
//! (Prometheus) and `server` (startup and shutdown).

pub mod backups;
pub mod cluster;
pub mod config;
pub mod events;
pub mod ids;
#[cfg(test)]
mod ids_props;
pub mod jobs;
pub mod legacy;
pub mod media;
pub mod metrics;
pub mod params;
pub mod pipeline;
pub mod scheduler;
pub mod score;
pub mod server;
pub mod service;
pub mod stats;
pub mod store;
pub mod worker;
