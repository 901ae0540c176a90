//! Job-state changes as Raft commands, and the one deterministic function
//! that applies them. Every node applies the same log to its own
//! [`JobTable`], so every node knows every job; only the leader proposes.
//! Times travel inside the commands so replaying a log gives the same
//! table on every node and after every restart.

use serde::{Deserialize, Serialize};

use super::model::{JobStatus, ShardRecord, ShardState, SourceSummary, StageTimes};
use super::package_apply::PublishedInit;
use super::table::JobTable;
use crate::params::JobParams;
use crate::store::BlobRef;

/// A shard of the plan: where it starts, how long it is, its frames.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlannedShard {
    pub frames: u64,
    pub start_seconds: f64,
    pub duration_seconds: f64,
    /// A ladder task's piece and rung (None: a plain job's shard).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rung: Option<super::model::RungTask>,
}

/// One change to the replicated job state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Command {
    /// A durable upload becomes a queued job (answered with its id).
    Accept {
        requested_id: String,
        /// The client's idempotency key (absent in entries written before it).
        #[serde(default)]
        upload_key: String,
        params: JobParams,
        source: BlobRef,
        source_holders: Vec<String>,
        at_ms: u64,
    },
    /// The probe's findings and the shard plan. Shards already encoded
    /// keep their results when the plan is the same (a resumed job).
    Plan {
        job: String,
        summary: SourceSummary,
        output_size: (u32, u32),
        shards: Vec<PlannedShard>,
        message: String,
        at_ms: u64,
        /// A ladder job's renditions, before any segment (None: a plain
        /// job). A resumed job with the same renditions keeps what it
        /// published.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        package: Option<Box<super::package::Package>>,
    },
    /// A ladder rendition's init segment and/or next segments, in order.
    Published {
        job: String,
        rendition: String,
        /// The init segment with the codec string and timescale read
        /// from it (sent once, with the first segments).
        init: Option<PublishedInit>,
        segments: Vec<super::package::Segment>,
        /// Video: shards of the job whose segments are now all published.
        shards_packaged: u32,
        /// Nodes holding these blobs.
        #[serde(default)]
        holders: Vec<String>,
        at_ms: u64,
    },
    /// A copy of a shard was handed to a worker.
    ShardAssigned {
        job: String,
        shard: u32,
        worker_id: String,
        worker: String,
        at_ms: u64,
    },
    /// A copy of a shard failed on a worker.
    ShardFailed {
        job: String,
        shard: u32,
        worker_id: String,
        message: String,
        at_ms: u64,
    },
    /// A verified encoded shard, and the nodes holding it.
    ShardDone {
        job: String,
        shard: u32,
        encoded: BlobRef,
        worker_id: String,
        worker: String,
        holders: Vec<String>,
        encode_seconds: f64,
        transfer_seconds: f64,
        at_ms: u64,
        /// The result against its source (None: not measured).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        quality: Option<Box<super::quality::ShardQuality>>,
    },
    /// No live node holds the encoded shard any more: encode it again.
    ShardLost { job: String, shard: u32, at_ms: u64 },
    /// A status change that is not completion (segmenting, joining, any
    /// failure).
    Status {
        job: String,
        status: JobStatus,
        message: String,
        at_ms: u64,
    },
    /// The verified output and its holders.
    Complete {
        job: String,
        output: BlobRef,
        frames: u64,
        holders: Vec<String>,
        timings: StageTimes,
        message: String,
        at_ms: u64,
    },
    /// Who holds the output now (replication and repair).
    OutputHolders {
        job: String,
        holders: Vec<String>,
        at_ms: u64,
    },
    /// `node` no longer has the blob `sha256` (missing or damaged): it is
    /// dropped from every holder list naming it.
    BlobLost {
        sha256: String,
        node: String,
        at_ms: u64,
    },
    /// The job is removed; every node then deletes the blobs nothing else
    /// refers to.
    Delete { job: String, at_ms: u64 },
}

/// What applying a command answered.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum CommandReply {
    /// The command changed the table (for `Accept`, the new job's id).
    Applied { job: String },
    /// The command named no known job or shard, or came too late (the job
    /// already ended): nothing changed.
    Ignored { reason: String },
}

impl Command {
    /// The job the command is about (for `Accept`: the requested id).
    pub fn job(&self) -> &str {
        match self {
            Self::Accept { requested_id, .. } => requested_id,
            Self::Plan { job, .. }
            | Self::Published { job, .. }
            | Self::ShardAssigned { job, .. }
            | Self::ShardFailed { job, .. }
            | Self::ShardDone { job, .. }
            | Self::ShardLost { job, .. }
            | Self::Status { job, .. }
            | Self::Complete { job, .. }
            | Self::OutputHolders { job, .. }
            | Self::Delete { job, .. } => job,
            Self::BlobLost { sha256, .. } => sha256,
        }
    }
}

/// Applies `command` to `table` (pure and deterministic). A job that has
/// ended only takes `OutputHolders`: a late command from a deposed leader
/// cannot reopen or overwrite it.
pub fn apply(table: &mut JobTable, command: &Command) -> CommandReply {
    let ignored = |reason: &str| CommandReply::Ignored {
        reason: reason.to_string(),
    };
    if let Command::Accept {
        requested_id,
        upload_key,
        params,
        source,
        source_holders,
        at_ms,
    } = command
    {
        let job = table.accept(
            requested_id,
            params.clone(),
            source.clone(),
            source_holders.clone(),
            *at_ms,
        );
        if !upload_key.is_empty() {
            table.update_at(&job, *at_ms, |record| {
                record.upload_key = upload_key.clone();
            });
        }
        return CommandReply::Applied { job };
    }
    if let Command::BlobLost {
        sha256,
        node,
        at_ms,
    } = command
    {
        let changed = table.forget_holder(sha256, node, *at_ms);
        return CommandReply::Applied {
            job: format!("{changed} jobs"),
        };
    }
    if let Command::Delete { job, at_ms } = command {
        return match table.remove(job, *at_ms) {
            true => CommandReply::Applied { job: job.clone() },
            false => ignored("unknown job"),
        };
    }
    let id = command.job().to_string();
    let Some(existing) = table.get(&id) else {
        return ignored("unknown job");
    };
    if existing.status.is_final() && !matches!(command, Command::OutputHolders { .. }) {
        return ignored("the job has ended");
    }
    let changed = table.update_at(&id, at_ms(command), |job| match command {
        Command::Accept { .. } | Command::BlobLost { .. } | Command::Delete { .. } => false,
        Command::Plan {
            summary,
            output_size,
            shards,
            message,
            package,
            ..
        } => {
            let same_plan = job.shards.len() == shards.len()
                && job.shards.iter().zip(shards).all(|(old, new)| {
                    old.frames == new.frames
                        && old.start_seconds == new.start_seconds
                        && old.rung == new.rung
                });
            super::package_apply::plan(job, package.as_deref(), same_plan);
            if !same_plan {
                job.shards = shards
                    .iter()
                    .enumerate()
                    .map(|(i, s)| ShardRecord {
                        rung: s.rung,
                        ..ShardRecord::planned(
                            i as u32,
                            s.frames,
                            s.start_seconds,
                            s.duration_seconds,
                        )
                    })
                    .collect();
            } else {
                for shard in job
                    .shards
                    .iter_mut()
                    .filter(|s| s.state != ShardState::Done)
                {
                    shard.state = ShardState::Splitting;
                    shard.running_on.clear();
                    shard.frames_done = 0;
                }
            }
            job.summary = Some(summary.clone());
            job.output_size = Some(*output_size);
            job.status = JobStatus::Processing;
            job.message = message.clone();
            true
        }
        Command::ShardAssigned {
            shard,
            worker_id,
            worker,
            at_ms,
            ..
        } => {
            if job.first_encode_unix_ms == 0 {
                job.first_encode_unix_ms = *at_ms;
            }
            with_shard(job, *shard, |s| {
                if s.state != ShardState::Done {
                    s.state = ShardState::Encoding;
                    s.worker_id = worker_id.clone();
                    s.worker = worker.clone();
                    s.attempts += 1;
                }
            })
        }
        Command::ShardFailed {
            shard,
            worker_id,
            message,
            ..
        } => with_shard(job, *shard, |s| {
            if s.state != ShardState::Done {
                s.state = ShardState::Queued;
                s.message = format!("failed on {worker_id}: {message}");
            }
        }),
        Command::ShardDone {
            shard,
            encoded,
            worker_id,
            worker,
            holders,
            encode_seconds,
            transfer_seconds,
            quality,
            ..
        } => with_shard(job, *shard, |s| {
            s.state = ShardState::Done;
            s.quality = quality.as_deref().cloned();
            s.encoded = Some(encoded.clone());
            s.worker_id = worker_id.clone();
            s.worker = worker.clone();
            s.holders = holders.clone();
            s.encode_seconds = *encode_seconds;
            s.transfer_seconds = *transfer_seconds;
            s.frames_done = s.frames;
            s.message.clear();
        }),
        Command::ShardLost { shard, .. } => with_shard(job, *shard, |s| {
            s.state = ShardState::Queued;
            s.encoded = None;
            s.quality = None;
            s.holders.clear();
            s.frames_done = 0;
        }),
        Command::Status {
            status, message, ..
        } => {
            job.status = *status;
            job.message = message.clone();
            true
        }
        Command::Complete {
            output,
            frames,
            holders,
            timings,
            message,
            ..
        } => {
            job.status = JobStatus::Completed;
            if let Some(package) = &mut job.package {
                package.finished = true;
            }
            job.output = Some(output.clone());
            job.output_frames = *frames;
            job.output_holders = holders.clone();
            job.timings = *timings;
            job.message = message.clone();
            true
        }
        Command::Published {
            rendition,
            init,
            segments,
            shards_packaged,
            holders,
            at_ms,
            ..
        } => super::package_apply::publish(
            job,
            rendition,
            (init.as_ref(), segments),
            *shards_packaged,
            holders,
            *at_ms,
        ),
        Command::OutputHolders { holders, .. } => {
            job.output_holders = holders.clone();
            true
        }
    });
    match changed {
        Some(true) => CommandReply::Applied { job: id },
        Some(false) => ignored("no such shard"),
        None => ignored("unknown job"),
    }
}

fn at_ms(command: &Command) -> u64 {
    match command {
        Command::Accept { at_ms, .. }
        | Command::Plan { at_ms, .. }
        | Command::Published { at_ms, .. }
        | Command::ShardAssigned { at_ms, .. }
        | Command::ShardFailed { at_ms, .. }
        | Command::ShardDone { at_ms, .. }
        | Command::ShardLost { at_ms, .. }
        | Command::Status { at_ms, .. }
        | Command::Complete { at_ms, .. }
        | Command::OutputHolders { at_ms, .. }
        | Command::BlobLost { at_ms, .. }
        | Command::Delete { at_ms, .. } => *at_ms,
    }
}

fn with_shard(
    job: &mut super::model::JobRecord,
    index: u32,
    change: impl FnOnce(&mut ShardRecord),
) -> bool {
    match job.shards.get_mut(index as usize) {
        Some(shard) => {
            change(shard);
            true
        }
        None => false,
    }
}
