//! Jobs: the record of every upload and what became of it.
//!
//! `model` holds the plain data and the status strings the original
//! client understands, `table` the set of jobs with id allocation, `eta`
//! the smoothed time-left estimate, `quality` the quality report. All of it is pure; the async parts
//! live in `pipeline` and `service`. `commands` are the durable changes:
//! Raft log entries applied by one deterministic function on every node.

mod commands;
#[cfg(test)]
mod commands_tests;
mod eta;
pub mod listing;
mod model;
pub mod package;
mod package_apply;
pub mod quality;
mod quality_wire;
mod stop;
mod table;

pub use commands::{Command, CommandReply, PlannedShard, apply};
pub use eta::EtaEstimator;
pub use model::{
    JobRecord, JobStatus, RungTask, ShardRecord, ShardState, SourceSummary, StageTimes,
};
pub use package_apply::PublishedInit;
pub use stop::JobStop;
pub use table::{JobTable, SharedJobs, now_unix_ms};
