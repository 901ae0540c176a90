//! The original `replication` protocol in one place: its limits, the
//! shards this node encodes for original masters (`shards`), the client
//! the scheduler uses to run shards on original workers
//! (`original_worker`), and the liveness probe and master announcements
//! the master sends original peers (`peers`), and the videos original
//! masters keep here with `ReplicateVideo` (`backups`), and this node's
//! registration with an original master it works for (`register`). The gRPC handlers in
//! `service/` convert messages and call in here.

pub mod backups;
pub mod original_worker;
pub mod peers;
pub mod register;
pub mod shard_worker;
pub mod shards;

use std::sync::Arc;

pub use shard_worker::{ProcessShardError, ShardResult};
pub use shards::{LegacyShards, LegacyState, check_shard_id, container_of};

use backups::LegacyBackups;

use crate::cluster::Sys;
use crate::worker::Worker;

/// The legacy subsystem's handle: this node as a worker of original
/// masters (the shards they sent, encoded on this node's slots).
pub struct Legacy {
    pub sys: Sys,
    pub worker: Arc<Worker>,
    /// Shards from original-protocol masters and what became of them.
    pub shards: LegacyShards,
    /// Backups original masters keep on this node.
    pub backups: Arc<LegacyBackups>,
}

impl Legacy {
    pub fn new(worker: Arc<Worker>, backups: LegacyBackups) -> Self {
        Self {
            sys: worker.sys.clone(),
            worker,
            shards: LegacyShards::default(),
            backups: Arc::new(backups),
        }
    }
}

/// Largest shard an original master may send in one message (and the
/// most we send an original worker): the original protocol moves a shard
/// whole in one message.
pub const MAX_LEGACY_SHARD: usize = 1 << 30;

/// The Raft term in the original protocol's `int32` (saturating).
pub fn original_term(term: u64) -> i32 {
    term.min(i32::MAX as u64) as i32
}

#[cfg(test)]
mod tests {
    #[test]
    fn terms_beyond_int32_saturate() {
        assert_eq!(super::original_term(7), 7);
        assert_eq!(super::original_term(u64::MAX), i32::MAX);
    }
}
