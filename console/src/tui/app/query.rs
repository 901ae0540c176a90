//! Read-only questions about the console's state, shared by the key
//! handlers and the drawing code: the snapshot's nodes and jobs, what is
//! selected, where actions go, and how fresh the data is.

use vidshard_proto::v1::{ClusterSnapshot, JobInfo, NodeEntry};

use super::{App, LATE_AFTER_MS};
use crate::tui::logview;
use crate::tui::state::{Conn, Freshness};

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
