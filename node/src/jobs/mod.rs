//! Jobs: the record of every upload and what became of it.
//!
//! `model` holds the plain data and the status strings the original
//! client understands, `table` the set of jobs with id allocation, `eta`
//! the smoothed time-left estimate. All of it is pure; the async parts
//! live in `pipeline` and `service`. (The consensus issue turns the
//! mutations here into Raft commands; the shapes are kept for that.)

mod eta;
mod model;
mod table;

pub use eta::EtaEstimator;
pub use model::{JobRecord, JobStatus, ShardRecord, ShardState, SourceSummary, StageTimes};
pub use table::{JobTable, SharedJobs, now_unix_ms};
