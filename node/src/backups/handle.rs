//! The backups subsystem's handle: the signal that wakes the leader's
//! repair loop (a job completed, a loss reported) and the blob losses not
//! recorded yet: reported to the leader by nodes' heartbeats, and this
//! node's own, sent with its heartbeats until the master accepts them.

use std::collections::BTreeSet;
use std::sync::{Mutex, MutexGuard};

use tokio::sync::Notify;

use crate::cluster::Sys;

pub struct Backups {
    pub sys: Sys,
    wake: Notify,
    /// Leader side: (node, blob) losses reported, not yet recorded.
    reported: Mutex<BTreeSet<(String, String)>>,
    /// This node's own losses, sent with its heartbeats until accepted.
    own: Mutex<BTreeSet<String>>,
}

fn locked<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|p| p.into_inner())
}

impl Backups {
    pub fn new(sys: Sys) -> Self {
        Self {
            sys,
            wake: Notify::new(),
            reported: Mutex::default(),
            own: Mutex::default(),
        }
    }

    /// Wakes the repair loop (a job completed, a loss was reported).
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    pub async fn woken(&self) {
        self.wake.notified().await;
    }

    /// Leader side: `node` reports it lost its copy of `sha256`.
    pub fn loss_reported(&self, node: &str, sha256: &str) {
        locked(&self.reported).insert((node.to_string(), sha256.to_string()));
        self.wake();
    }

    /// The reported losses, taken for recording.
    pub fn take_reported(&self) -> Vec<(String, String)> {
        std::mem::take(&mut *locked(&self.reported))
            .into_iter()
            .collect()
    }

    /// A loss that could not be recorded, kept for the next try.
    pub fn keep_reported(&self, node: String, sha256: String) {
        locked(&self.reported).insert((node, sha256));
    }

    /// This node lost `sha256`: the leader records it at once; a follower
    /// sends it with its heartbeats.
    pub fn lost_here(&self, sha256: &str) {
        if self.sys.is_master() {
            locked(&self.reported).insert((self.sys.node_id.clone(), sha256.to_string()));
        } else {
            locked(&self.own).insert(sha256.to_string());
        }
        self.wake();
    }

    /// This node's losses the master has not accepted yet.
    pub fn own_losses(&self) -> Vec<String> {
        locked(&self.own).iter().cloned().collect()
    }

    /// The master accepted a heartbeat carrying `sent`.
    pub fn own_losses_accepted(&self, sent: &[String]) {
        let mut own = locked(&self.own);
        for sha256 in sent {
            own.remove(sha256);
        }
    }
}
