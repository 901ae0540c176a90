//! This node as the worker of a master that speaks only the original
//! protocol: which master that is (found when joining, changed by its
//! `AnnounceMaster`) and when it last called this node. The
//! registration loop (`legacy::register`) reads it; nothing else of the
//! cluster runs for such a node (no Raft, no `vidshard.v1` heartbeats).

use std::sync::Mutex;
use std::time::{Duration, Instant};

use tokio::sync::Notify;

/// The original master this node works for, if any.
#[derive(Debug)]
pub struct OriginalMaster {
    state: Mutex<State>,
    changed: Notify,
}

#[derive(Debug)]
struct State {
    address: Option<String>,
    last_heard: Instant,
}

impl Default for OriginalMaster {
    fn default() -> Self {
        Self {
            state: Mutex::new(State {
                address: None,
                last_heard: Instant::now(),
            }),
            changed: Notify::new(),
        }
    }
}

impl OriginalMaster {
    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The original master's address, when this node works for one.
    pub fn address(&self) -> Option<String> {
        self.state().address.clone()
    }

    /// Works for the original master at `address` from now on (joining
    /// found it, or it announced itself).
    pub fn set(&self, address: &str) {
        let mut state = self.state();
        if state.address.as_deref() != Some(address) {
            state.address = Some(address.to_string());
            state.last_heard = Instant::now();
            drop(state);
            self.changed.notify_one();
        }
    }

    /// The original master called this node (a shard, a question).
    pub fn heard(&self) {
        self.state().last_heard = Instant::now();
    }

    /// How long the original master has not called this node.
    pub fn silent_for(&self) -> Duration {
        self.state().last_heard.elapsed()
    }

    /// Resolves at the next change of master.
    pub async fn changed(&self) {
        self.changed.notified().await
    }
}
