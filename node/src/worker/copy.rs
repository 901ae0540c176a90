//! One attempt at one shard as master and worker both see it: what is
//! asked ([`CopyRequest`]), what comes back ([`CopyOutcome`]) and why a
//! copy produced nothing ([`CopyError`]), including the signal a
//! stopping worker gives when it hands a shard back.

use vidshard_proto::v1::EncodeSettings;

use crate::media::EncodeSpec;
use crate::store::{BlobPin, BlobRef};

/// One attempt at one shard.
#[derive(Debug, Clone)]
pub struct CopyRequest {
    pub job_id: String,
    pub shard_index: u32,
    pub task_id: String,
    pub spec: EncodeSpec,
    pub expected_frames: u64,
    pub source: BlobRef,
    pub total_shards: u32,
    /// Compare every frame of the result with the source (the job wants
    /// a quality report).
    pub measure_quality: bool,
}

pub fn settings(spec: &EncodeSpec) -> EncodeSettings {
    EncodeSettings {
        width: spec.width,
        height: spec.height,
        format: spec.format.extension().into(),
        codec: spec.codec.name().into(),
        pix_fmt: spec.pix_fmt.name().into(),
        color_primaries: spec.colour.primaries.clone(),
        color_transfer: spec.colour.transfer.clone(),
        color_space: spec.colour.matrix.clone(),
        color_range: spec.colour.range.clone(),
        mastering_display: spec
            .colour
            .mastering
            .map_or_else(Vec::new, |m| m.to_numbers()),
        content_light: spec
            .colour
            .light
            .map_or_else(Vec::new, |l| vec![l.max_content, l.max_average]),
        tonemap: spec.tonemap,
        preset: spec.preset.clone(),
        crf: spec.crf,
        orientation: spec.orientation.name().into(),
        max_kbps: spec.rung.map_or(0, |r| r.max_kbps),
        keyframe_seconds: spec.rung.map_or(0, |r| r.keyframe_seconds),
        keyframe_frames: spec.rung.map_or(0, |r| r.keyframe_frames),
    }
}

/// A verified result and where its time went.
#[derive(Debug, Clone, PartialEq)]
pub struct CopyOutcome {
    pub blob: BlobRef,
    /// Holds the blob in this node's store until the result is recorded
    /// (dropped with the outcome).
    pub pin: Option<std::sync::Arc<BlobPin>>,
    pub encode_seconds: f64,
    /// Sending the shard, fetching and verifying the result.
    pub transfer_seconds: f64,
    /// Every frame against the source, when asked and measurable.
    pub quality: Option<crate::jobs::quality::ShardQuality>,
}

/// Why a copy produced nothing.
#[derive(Debug, Clone, PartialEq)]
pub struct CopyError {
    pub message: String,
    /// The worker went away (connection refused or broken): not the
    /// shard's fault, and a sign the worker is dead.
    pub worker_lost: bool,
    /// The worker is stopping and gave the shard back (queued, refused,
    /// or past its drain timeout): run it elsewhere, spend no attempt,
    /// and leave the worker's other shards alone.
    pub handed_back: bool,
    /// The result's frames are not pictures of the source (a forged or
    /// broken encode, `worker::fidelity`): the worker is given no more
    /// shards of the job.
    pub rejected: bool,
    /// The shard's split is not in the master's own store (nothing a
    /// worker did): the job is split again instead of blaming workers.
    pub source_missing: bool,
    /// The worker's data dir is full (a fault of that machine, not of the
    /// shard): run it elsewhere, spend no attempt.
    pub worker_full: bool,
    /// This node's own data dir is full, so the result could not be
    /// stored here (no fault of the shard or the worker): the job waits
    /// for room and runs again (`pipeline::transient`).
    pub here_full: bool,
}

impl CopyError {
    /// A failure storing the result in this node's own store.
    pub fn storing_here(error: impl std::fmt::Display) -> Self {
        let message = format!("storing the result on this node: {error}");
        Self {
            here_full: crate::store::names_full_disk(&message),
            ..Self::from(message)
        }
    }
}

impl CopyError {
    fn source_missing(shard: u32, why: impl std::fmt::Display) -> Self {
        Self {
            source_missing: true,
            ..Self::from(format!(
                "shard {shard}'s split is not in this node's store: {why}"
            ))
        }
    }
}

/// Where the shard's split is in this node's store, or why it is not.
pub async fn local_source(
    store: &crate::store::BlobStore,
    req: &CopyRequest,
) -> Result<std::path::PathBuf, CopyError> {
    let path = store
        .path(&req.source.sha256)
        .map_err(|e| CopyError::source_missing(req.shard_index, e))?;
    match tokio::fs::try_exists(&path).await {
        Ok(true) => Ok(path),
        Ok(false) => Err(CopyError::source_missing(req.shard_index, "no such file")),
        Err(e) => Err(CopyError::source_missing(req.shard_index, e)),
    }
}

impl From<String> for CopyError {
    fn from(message: String) -> Self {
        Self {
            message,
            worker_lost: false,
            handed_back: false,
            rejected: false,
            source_missing: false,
            worker_full: false,
            here_full: false,
        }
    }
}

/// Metadata a stopping worker puts on the UNAVAILABLE status of a shard
/// it gives back (`worker::drain`).
pub const HANDED_BACK: &str = "x-vidshard-handed-back";

/// The status a stopping worker answers for a shard it gives back.
pub fn handed_back_status(message: &str) -> tonic::Status {
    let mut status = tonic::Status::unavailable(message);
    status.metadata_mut().insert(
        HANDED_BACK,
        tonic::metadata::MetadataValue::from_static("1"),
    );
    status
}

/// Whether a gRPC error means the peer is gone rather than that it
/// refused the work (pure).
pub fn is_lost(code: tonic::Code) -> bool {
    use tonic::Code::*;
    matches!(
        code,
        Unavailable | Unknown | Cancelled | DeadlineExceeded | Aborted
    )
}

pub fn rpc_error(address: &str, what: &str, status: tonic::Status) -> CopyError {
    let handed_back = status.metadata().contains_key(HANDED_BACK);
    CopyError {
        message: format!("{what} {address}: {}", status.message()),
        worker_lost: is_lost(status.code()) && !handed_back,
        handed_back,
        rejected: false,
        source_missing: false,
        worker_full: crate::store::names_full_disk(status.message()),
        here_full: false,
    }
}
