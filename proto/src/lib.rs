//! Generated gRPC code for vidshard.
//!
//! `replication` is the original wire contract (see `proto/replication.proto`),
//! served unchanged so that existing clients and nodes keep working.
//! `v1` is our own package for everything the original protocol lacks.
//! `params` holds the rules a job description must follow, shared by the
//! node (which enforces them) and the client (which checks them before
//! it sends a byte).

pub mod params;

/// The original protocol, package `replication`.
#[allow(clippy::all, clippy::pedantic, missing_docs)]
pub mod replication {
    tonic::include_proto!("replication");
}

/// Our own additions, package `vidshard.v1`.
#[allow(clippy::all, clippy::pedantic, missing_docs)]
pub mod v1 {
    tonic::include_proto!("vidshard.v1");
}

/// Largest payload of one streamed chunk: the original client caps a
/// received message at 1 MiB + 1 KiB, so data chunks stay at 1 MiB.
pub const MAX_CHUNK: usize = 1024 * 1024;

/// The encoded `FileDescriptorSet` of both packages, for gRPC server
/// reflection (`grpcurl list`).
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/vidshard_descriptor.bin"));
