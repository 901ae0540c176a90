//! The Raft type configuration: what a log entry carries (a job-state
//! [`Command`]), what applying one answers, and how a node is named.

use std::fmt;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::jobs::{Command, CommandReply};

/// Raft's numeric node id, derived from the node's stable name.
pub type NodeId = u64;

openraft::declare_raft_types!(
    /// vidshard's Raft types: job-state commands over nodes named by
    /// their stored id and reached at their advertised address.
    pub TypeConfig:
        D = Command,
        R = CommandReply,
        NodeId = NodeId,
        Node = NodeInfo,
        SnapshotData = std::io::Cursor<Vec<u8>>,
);

pub type Raft = openraft::Raft<TypeConfig>;
pub type Entry = openraft::Entry<TypeConfig>;
pub type LogId = openraft::LogId<NodeId>;
pub type Vote = openraft::Vote<NodeId>;
pub type StorageError = openraft::StorageError<NodeId>;
pub type StoredMembership = openraft::StoredMembership<NodeId, NodeInfo>;
pub type SnapshotMeta = openraft::SnapshotMeta<NodeId, NodeInfo>;
pub type Snapshot = openraft::Snapshot<TypeConfig>;

/// A member as Raft records it: where to reach it and its stable name
/// (the `node-…` id kept in its data dir).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeInfo {
    pub address: String,
    pub name: String,
}

impl fmt::Display for NodeInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}@{}", self.name, self.address)
    }
}

/// The Raft id of the node named `name` (pure): the first 8 bytes of its
/// sha256, never 0. Every node computes the same id for a name, so the
/// name stays the one identity operators see.
pub fn raft_id(name: &str) -> NodeId {
    let digest = Sha256::digest(name.as_bytes());
    let mut bytes = [0u8; 8];
    bytes.copy_from_slice(&digest[..8]);
    u64::from_be_bytes(bytes).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raft_ids_are_stable_and_distinct() {
        assert_eq!(raft_id("node-abc"), raft_id("node-abc"));
        assert_ne!(raft_id("node-abc"), raft_id("node-abd"));
        assert_ne!(raft_id(""), 0);
    }
}
