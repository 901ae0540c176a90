//! Noticing that Raft itself stopped. openraft ends its core on a storage
//! error (a full disk failing a log write, say) and never starts it again;
//! the node would then serve on without ever taking part in elections or
//! seeing a new entry. The node stops instead, with an error, so its
//! service manager (systemd `Restart=on-failure`) starts it afresh, which
//! replays the log and catches up.

use tokio_util::sync::CancellationToken;

use super::types::Raft;

/// Waits until Raft's core has stopped while the node is not shutting
/// down; answers why (None: the node is shutting down).
pub async fn stopped(raft: Raft, shutdown: CancellationToken) -> Option<String> {
    let mut metrics = raft.metrics();
    loop {
        if let Err(fatal) = &metrics.borrow().running_state {
            return Some(fatal.to_string());
        }
        tokio::select! {
            _ = shutdown.cancelled() => return None,
            changed = metrics.changed() => {
                if changed.is_err() {
                    return (!shutdown.is_cancelled()).then(|| "its core ended".to_string());
                }
            }
        }
    }
}
