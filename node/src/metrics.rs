//! Prometheus metrics on `--metrics-addr HOST:PORT` (off when unset).
//!
//! The `metrics` facade records; `metrics-exporter-prometheus` serves
//! `/metrics` over plain HTTP on its own listener. Without an installed
//! exporter every recording function here is a no-op, so call sites stay
//! one line and cost nothing when metrics are off.
//!
//! Counters are bumped where things happen ([`shard_encoded`],
//! [`bytes_sent`] and friends); the gauges (jobs by state, nodes alive,
//! term, encode fps, Raft lag per follower, output copies missing) are
//! set from a [`GaugeSample`] the server's gauge loop takes every second
//! (it also counts term changes as elections).

use std::net::SocketAddr;

use anyhow::Context as _;
use metrics_exporter_prometheus::PrometheusBuilder;

use crate::jobs::JobStatus;

/// Every job status, so each `vidshard_jobs{state=...}` series exists (0 included).
const JOB_STATES: [JobStatus; 11] = JobStatus::ALL;

/// Resolves `address` (HOST:PORT) and starts the `/metrics` HTTP listener
/// on it; must run inside the Tokio runtime. Installs the process-wide
/// recorder, so call it once.
pub async fn install(address: &str) -> anyhow::Result<SocketAddr> {
    let socket = tokio::net::lookup_host(address)
        .await
        .with_context(|| format!("resolving --metrics-addr {address}"))?
        .next()
        .with_context(|| format!("--metrics-addr {address} resolves to no address"))?;
    PrometheusBuilder::new()
        .with_http_listener(socket)
        .install()
        .with_context(|| format!("serving metrics on {socket}"))?;
    metrics::describe_gauge!("vidshard_jobs", "Jobs in the job table, by state");
    metrics::describe_counter!(
        "vidshard_shards_encoded_total",
        "Shards encoded (first finished copy of each)"
    );
    metrics::describe_counter!("vidshard_shards_failed_total", "Shard copies that failed");
    metrics::describe_counter!(
        "vidshard_shards_retried_total",
        "Shard copies started again after an earlier copy ended without a result"
    );
    metrics::describe_counter!("vidshard_upload_bytes_total", "Bytes of accepted uploads");
    metrics::describe_gauge!(
        "vidshard_nodes_alive",
        "Nodes alive as this node sees them, itself included"
    );
    metrics::describe_gauge!("vidshard_term", "Cluster term");
    metrics::describe_counter!(
        "vidshard_elections_total",
        "Term changes this node has seen since it started (each is an election)"
    );
    metrics::describe_counter!(
        "vidshard_blob_bytes_sent_total",
        "Blob bytes this node streamed out: downloads, shard results, backup copies"
    );
    metrics::describe_gauge!(
        "vidshard_encode_fps",
        "Frames per second encoded right now: scope=node (shards this node runs for a master) or scope=cluster (on the master: every running copy)"
    );
    metrics::describe_gauge!(
        "vidshard_raft_lag_entries",
        "On the master: Raft log entries each follower has not confirmed yet"
    );
    metrics::describe_gauge!(
        "vidshard_backup_copies_missing",
        "On the master: output copies still to make to reach --backup-replicas"
    );
    // Counters show up at 0 before their first event.
    for counter in [
        "vidshard_shards_encoded_total",
        "vidshard_shards_failed_total",
        "vidshard_shards_retried_total",
        "vidshard_upload_bytes_total",
    ] {
        metrics::counter!(counter).increment(0);
    }
    Ok(socket)
}

/// A shard's first finished copy.
pub fn shard_encoded() {
    metrics::counter!("vidshard_shards_encoded_total").increment(1);
}

/// A shard copy that failed (including a lost worker).
pub fn shard_failed() {
    metrics::counter!("vidshard_shards_failed_total").increment(1);
}

/// A shard copy starts; `retry` when it replaces an earlier copy that
/// ended without a result (not a deliberate duplicate).
pub fn shard_started(retry: bool) {
    if retry {
        metrics::counter!("vidshard_shards_retried_total").increment(1);
    }
}

/// `bytes` of an accepted upload.
pub fn upload_bytes(bytes: u64) {
    metrics::counter!("vidshard_upload_bytes_total").increment(bytes);
}

/// What the gauges show, sampled from the node by the caller (the
/// server's gauge loop), so this module needs nothing but the numbers.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct GaugeSample {
    /// Status of every job in the table.
    pub job_states: Vec<JobStatus>,
    /// Nodes alive as this node sees them, itself included.
    pub nodes_alive: usize,
    pub term: u64,
    /// Frames per second of the shards this node runs for a master.
    pub node_fps: f64,
    /// Frames per second of every copy the master runs (0 elsewhere).
    pub cluster_fps: f64,
    /// Raft entries each follower has not confirmed (the master only).
    pub raft_lag: Vec<(String, u64)>,
    /// Output copies still to make (the master only).
    pub backup_copies_missing: usize,
}

/// Sets every gauge from `sample`.
pub fn set_gauges(sample: &GaugeSample) {
    let mut counts = [0u32; JOB_STATES.len()];
    for status in &sample.job_states {
        if let Some(i) = JOB_STATES.iter().position(|s| s == status) {
            counts[i] += 1;
        }
    }
    for (state, count) in JOB_STATES.iter().zip(counts) {
        metrics::gauge!("vidshard_jobs", "state" => state.as_str()).set(count);
    }
    metrics::gauge!("vidshard_nodes_alive").set(sample.nodes_alive as f64);
    metrics::gauge!("vidshard_term").set(sample.term as f64);
    metrics::gauge!("vidshard_encode_fps", "scope" => "node").set(sample.node_fps);
    metrics::gauge!("vidshard_encode_fps", "scope" => "cluster").set(sample.cluster_fps);
    for (follower, lag) in &sample.raft_lag {
        metrics::gauge!("vidshard_raft_lag_entries", "node" => follower.clone()).set(*lag as f64);
    }
    metrics::gauge!("vidshard_backup_copies_missing").set(sample.backup_copies_missing as f64);
}

/// `count` term changes seen (each is an election).
pub fn elections(count: u64) {
    metrics::counter!("vidshard_elections_total").increment(count);
}

/// Counts blob bytes streamed out of this node.
pub fn bytes_sent(bytes: u64) {
    metrics::counter!("vidshard_blob_bytes_sent_total").increment(bytes);
}
