//! Plain job data and its status vocabulary.

use serde::{Deserialize, Serialize};

use super::eta::EtaEstimator;
use crate::params::JobParams;
use crate::store::BlobRef;

/// A job's status, spelled on the wire exactly as the original client
/// expects (see PROTOCOL.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum JobStatus {
    Queued,
    Segmenting,
    Processing,
    Concatenating,
    Completed,
    FailedSegmentation,
    FailedDistribution,
    ProcessingFailed,
    ConcatenationFailed,
    ConcatenationPrerequisitesFailed,
    Error,
}

impl JobStatus {
    /// Every status, in the order a job can reach them.
    pub const ALL: [JobStatus; 11] = [
        JobStatus::Queued,
        JobStatus::Segmenting,
        JobStatus::Processing,
        JobStatus::Concatenating,
        JobStatus::Completed,
        JobStatus::FailedSegmentation,
        JobStatus::FailedDistribution,
        JobStatus::ProcessingFailed,
        JobStatus::ConcatenationFailed,
        JobStatus::ConcatenationPrerequisitesFailed,
        JobStatus::Error,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::Segmenting => "segmenting",
            Self::Processing => "processing",
            Self::Concatenating => "concatenating",
            Self::Completed => "completed",
            Self::FailedSegmentation => "failed_segmentation",
            Self::FailedDistribution => "failed_distribution",
            Self::ProcessingFailed => "processing_failed",
            Self::ConcatenationFailed => "concatenation_failed",
            Self::ConcatenationPrerequisitesFailed => "concatenation_prerequisites_failed",
            Self::Error => "error",
        }
    }

    /// Completed or failed: nothing more will happen to the job.
    pub fn is_final(self) -> bool {
        !matches!(
            self,
            Self::Queued | Self::Segmenting | Self::Processing | Self::Concatenating
        )
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ShardState {
    /// Planned; the splitter has not written it yet.
    Splitting,
    Queued,
    Encoding,
    Verifying,
    Done,
    Failed,
}

impl ShardState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Splitting => "splitting",
            Self::Queued => "queued",
            Self::Encoding => "encoding",
            Self::Verifying => "verifying",
            Self::Done => "done",
            Self::Failed => "failed",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ShardRecord {
    pub index: u32,
    pub frames: u64,
    pub start_seconds: f64,
    pub duration_seconds: f64,
    pub source: BlobRef,
    pub encoded: Option<BlobRef>,
    pub state: ShardState,
    /// Address of the worker of the current (or winning) copy.
    pub worker: String,
    pub worker_id: String,
    /// Node ids running a copy now (two while a straggler is duplicated).
    pub running_on: Vec<String>,
    pub attempts: u32,
    pub frames_done: u64,
    pub fps: f32,
    pub message: String,
    /// Of the accepted copy (see `vidshard.v1.ShardInfo`).
    pub encode_seconds: f64,
    pub transfer_seconds: f64,
    /// Node ids holding the encoded result (the worker that made it, and
    /// the master once it fetched it): a new master fetches from these
    /// instead of encoding the shard again.
    #[serde(default)]
    pub holders: Vec<String>,
    /// The accepted copy against its source, every frame (None: not
    /// measured, or recorded before reports existed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quality: Option<super::quality::ShardQuality>,
    /// In a ladder job, which piece of the source and which rung this
    /// task encodes (None: a plain job's shard, piece = index).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rung: Option<RungTask>,
}

/// A ladder task: piece `piece` of the split source at rung `rung`
/// (0 = the highest).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RungTask {
    pub piece: u32,
    pub rung: u32,
}

impl ShardRecord {
    /// A shard as planned, before the splitter has written it.
    pub fn planned(index: u32, frames: u64, start_seconds: f64, duration_seconds: f64) -> Self {
        Self {
            index,
            frames,
            start_seconds,
            duration_seconds,
            source: BlobRef {
                sha256: String::new(),
                size: 0,
            },
            encoded: None,
            state: ShardState::Splitting,
            worker: String::new(),
            worker_id: String::new(),
            running_on: Vec::new(),
            attempts: 0,
            frames_done: 0,
            fps: 0.0,
            message: String::new(),
            encode_seconds: 0.0,
            transfer_seconds: 0.0,
            holders: Vec::new(),
            quality: None,
            rung: None,
        }
    }

    /// The piece of the split source this task encodes.
    pub fn piece(&self) -> u32 {
        self.rung.map_or(self.index, |r| r.piece)
    }

    pub fn progress(&self) -> f32 {
        match self.state {
            ShardState::Done | ShardState::Verifying => 1.0,
            _ if self.frames == 0 => 0.0,
            _ => (self.frames_done as f32 / self.frames as f32).min(1.0),
        }
    }
}

/// What the probe said about the source, kept for status displays.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SourceSummary {
    pub width: u32,
    pub height: u32,
    pub frames: u64,
    pub duration_seconds: f64,
    pub has_audio: bool,
}

/// Wall-clock seconds of the pipeline stages.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct StageTimes {
    pub probe_split: f64,
    pub encode_stage: f64,
    pub join: f64,
    pub total: f64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct JobRecord {
    pub id: String,
    pub params: JobParams,
    pub source: BlobRef,
    /// Node ids holding the source (the master that took the upload and
    /// its backup): a new master fetches it from these.
    #[serde(default)]
    pub source_holders: Vec<String>,
    pub status: JobStatus,
    pub message: String,
    pub summary: Option<SourceSummary>,
    pub output_size: Option<(u32, u32)>,
    pub shards: Vec<ShardRecord>,
    pub output: Option<BlobRef>,
    /// Node ids holding the finished output.
    #[serde(default)]
    pub output_holders: Vec<String>,
    /// Node ids a copy of the output is being sent to (leader, in memory).
    #[serde(skip)]
    pub output_pending: Vec<String>,
    pub output_frames: u64,
    /// The client's idempotency key for the upload (`Jobs.Upload`), so a
    /// retry of it elsewhere finds this job; empty when none was sent.
    #[serde(default)]
    pub upload_key: String,
    pub created_unix_ms: u64,
    pub updated_unix_ms: u64,
    /// When its first shard was handed to a worker (0: not yet): the
    /// end of the job's wait for a slot.
    #[serde(default)]
    pub first_encode_unix_ms: u64,
    pub timings: StageTimes,
    #[serde(skip)]
    pub eta: EtaEstimator,
    /// A ladder job's streaming package (None: a plain job).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub package: Option<super::package::Package>,
}

impl JobRecord {
    /// Seconds from the upload's acceptance until its first shard was
    /// handed to a worker: so far while none was, and until it ended for
    /// a job that ended without any (0 for one recorded before this was).
    pub fn wait_seconds(&self, now_ms: u64) -> f64 {
        let end = match self.first_encode_unix_ms {
            // Encoded before the field existed: not known.
            0 if self.shards.iter().any(|s| s.attempts > 0) => self.created_unix_ms,
            0 if self.status.is_final() => self.updated_unix_ms,
            0 => now_ms,
            first => first,
        };
        end.saturating_sub(self.created_unix_ms) as f64 / 1000.0
    }

    /// Frames encoded so far over all shards.
    pub fn frames_done(&self) -> u64 {
        self.shards
            .iter()
            .map(|s| match s.state {
                ShardState::Done | ShardState::Verifying => s.frames,
                _ => s.frames_done.min(s.frames),
            })
            .sum()
    }

    /// Overall progress 0..=1: 5 % for the split, 90 % for encoding
    /// (by frames), 5 % for the join.
    pub fn progress(&self) -> f32 {
        match self.status {
            JobStatus::Completed => 1.0,
            JobStatus::Concatenating => 0.95,
            _ if self.shards.is_empty() => 0.0,
            _ => {
                let total: u64 = self.shards.iter().map(|s| s.frames).sum();
                let encoded = if total == 0 {
                    0.0
                } else {
                    self.frames_done() as f32 / total as f32
                };
                0.05 + 0.9 * encoded
            }
        }
    }

    pub fn shards_done(&self) -> usize {
        self.shards
            .iter()
            .filter(|s| s.state == ShardState::Done)
            .count()
    }
}
