//! Scheduling shards on workers: `decide` is the pure policy, `driver`
//! the thin async loop that applies it to one job, `dispatch` runs one
//! copy of a shard on the local node or a remote worker.

mod board;
mod decide;
pub mod dispatch;
pub mod driver;
pub mod original;

pub use board::{TaskBoard, TaskEntry, TaskGuard};
pub use decide::{CopyView, Decision, Policy, ShardView, WorkerView, decide};
