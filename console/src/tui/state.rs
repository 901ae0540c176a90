//! The parts of the console's state and the views derived from it (what
//! is selected, where actions go, how fresh the data is), shared by the
//! key handlers and the drawing code.

use jiff::tz::TimeZone;
use log::Level;
use vidshard_proto::v1::{ClusterSnapshot, JobInfo, NodeEntry};

use super::app::{App, LATE_AFTER_MS};
use super::form::{PathPrompt, UploadForm};
use super::logview;

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

impl App {
    pub fn snapshot(&self) -> Option<&ClusterSnapshot> {
        self.view.as_ref().map(|v| &*v.snap)
    }

    pub fn nodes(&self) -> &[NodeEntry] {
        self.snapshot()
            .map(|s| s.nodes.as_slice())
            .unwrap_or_default()
    }

    pub fn jobs(&self) -> &[JobInfo] {
        self.snapshot()
            .map(|s| s.jobs.as_slice())
            .unwrap_or_default()
    }

    pub fn selected_job_index(&self) -> Option<usize> {
        let id = self.job_sel.as_deref()?;
        self.jobs().iter().position(|j| j.id == id)
    }

    pub fn selected_job(&self) -> Option<&JobInfo> {
        self.selected_job_index().map(|i| &self.jobs()[i])
    }

    pub fn selected_node(&self) -> Option<&NodeEntry> {
        let nodes = self.nodes();
        nodes.get(self.node_sel.min(nodes.len().saturating_sub(1)))
    }

    /// The node id for an address, if the snapshot lists it.
    pub fn node_name(&self, address: &str) -> Option<&str> {
        self.nodes()
            .iter()
            .find(|n| n.address == address)
            .map(|n| n.node_id.as_str())
            .filter(|id| !id.is_empty())
    }

    /// Where actions are sent: the master (workers refuse uploads), else
    /// the node streaming to us, else `--node`.
    pub fn action_target(&self) -> String {
        let master = self
            .snapshot()
            .map(|s| s.master_address.clone())
            .filter(|m| !m.is_empty());
        let live = match &self.conn {
            Conn::Live { target, .. } => Some(target.clone()),
            _ => None,
        };
        master.or(live).unwrap_or_else(|| self.cfg.node.clone())
    }

    pub fn freshness(&self) -> Freshness {
        let Some(view) = &self.view else {
            return Freshness::NoData;
        };
        let age_ms = self.now_ms.saturating_sub(view.received_ms);
        match &self.conn {
            Conn::Live { since_ms, .. } if view.received_ms >= *since_ms => {
                if age_ms > LATE_AFTER_MS && self.paused_since.is_none() {
                    Freshness::Late { age_ms }
                } else {
                    Freshness::Live { age_ms }
                }
            }
            _ => Freshness::Stale {
                since_ms: view.received_ms,
            },
        }
    }

    pub fn is_stale(&self) -> bool {
        matches!(self.freshness(), Freshness::Stale { .. })
    }

    pub fn clock(&self, unix_ms: u64) -> String {
        logview::clock(unix_ms, &self.cfg.tz)
    }
}

/// `"(none)"` for an empty address.
pub fn or_none(address: &str) -> &str {
    if address.is_empty() {
        "(none)"
    } else {
        address
    }
}
