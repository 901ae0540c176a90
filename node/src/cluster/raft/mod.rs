//! Consensus: openraft wired to redb storage and our gRPC transport.

pub mod compaction;
pub mod consensus;
pub mod fatal;
pub mod headroom;
pub mod joining;
pub mod log_store;
pub mod network;
pub mod state_machine;
#[cfg(test)]
mod storage_tests;
pub mod transfer;
pub mod types;
pub mod voters;

pub use types::{NodeId, NodeInfo, Raft, TypeConfig, raft_id};
