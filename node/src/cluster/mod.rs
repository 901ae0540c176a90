//! The cluster as the master sees it: which nodes exist, whether they are
//! alive, how loaded they are (`membership`, pure), and the worker side of
//! joining it (`join`: heartbeats with capped backoff). The consensus work
//! replaces the fixed master with a Raft leader; these pieces stay.

pub mod backoff;
pub mod blob_stream;
pub mod blobs;
pub mod credentials;
pub mod link_urls;
pub mod links;
pub mod membership;
pub mod original_master;
pub mod peers;
pub mod raft;
mod system;
pub mod tls;
pub mod token;

pub use membership::{Liveness, Member, Membership, Protocol, SharedMembership};
pub use system::{Sys, System, load_node_id};
