//! The original `replication` protocol in one place: what this node keeps
//! and answers for masters and peers that speak the original protocol
//! rather than `vidshard.v1`.
//!
//! For now: [`backups`], the videos original masters store here with
//! `ReplicateVideo` and take back with `RequestBackupData`.

pub mod backups;
