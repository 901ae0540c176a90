//! The parts of the console's state as plain data: the link to the
//! cluster, how fresh the data is, panes, dialogs, running tasks and fixed
//! settings. `app::App` holds them; the questions asked of
//! them live in `app/query.rs`.
//!
//! A leaf of `tui/`: it imports only the form types.

use jiff::tz::TimeZone;
use log::Level;
use vidshard_proto::v1::ClusterSnapshot;

use super::form::{PathPrompt, UploadForm};

/// The link to the cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Conn {
    /// Dialing `target`; `attempt` 0 is the first connection, then retries.
    Connecting {
        target: String,
        attempt: u32,
    },
    Live {
        target: String,
        since_ms: u64,
    },
    Retrying {
        next: String,
        attempt: u32,
        retry_at_ms: u64,
        error: String,
    },
}

/// How far the shown data can be trusted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Freshness {
    NoData,
    Live {
        age_ms: u64,
    },
    /// Connected, but no snapshot for a while.
    Late {
        age_ms: u64,
    },
    /// Not connected: the data is what was known at `since_ms`.
    Stale {
        since_ms: u64,
    },
}

/// A snapshot and when it arrived.
#[derive(Debug, Clone, PartialEq)]
pub struct View {
    pub snap: Box<ClusterSnapshot>,
    pub received_ms: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pane {
    Nodes,
    Jobs,
    Shards,
    Log,
}

/// A running background action.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Task {
    pub id: u64,
    pub label: String,
    pub phase: &'static str,
    pub done: u64,
    pub total: u64,
}

/// The last action message, shown above the footer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Status {
    pub level: Level,
    pub text: String,
    pub at_ms: u64,
}

/// Something asked with y/n.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Pending {
    Elect,
    Delete { job_id: String },
}

/// A dialog over the main screen; it takes the keys while open.
#[derive(Debug, Clone, PartialEq)]
pub enum Modal {
    Help,
    Upload(UploadForm),
    Retrieve(PathPrompt),
    Confirm { pending: Pending, question: String },
}

/// Fixed settings of a console.
#[derive(Debug, Clone)]
pub struct Config {
    /// `--node`: where the console starts.
    pub node: String,
    /// Time zone of the clock shown.
    pub tz: TimeZone,
    /// Log targets prefix (see `logview.rs`).
    pub log_scope: String,
}

/// `"(none)"` for an empty address.
pub fn or_none(address: &str) -> &str {
    if address.is_empty() {
        "(none)"
    } else {
        address
    }
}
