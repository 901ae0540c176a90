//! A package blob on this node's disk before it is served: a node that
//! did not cut or receive a segment fetches it from the package's
//! holders (`cluster::blobs::ensure_local`) and serves its own copy, so
//! the next viewer of that segment on this node costs no transfer.
//!
//! Viewers of one live job ask for the same new segment within moments
//! of each other; the first fetches it and the others wait for that copy
//! rather than each pulling the same bytes. The blob is pinned from
//! before the fetch until the response has been sent, so the garbage
//! collector cannot take it from under a reader (a job deleted while
//! someone watches it).

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::cluster::Sys;
use crate::cluster::blobs::ensure_local;
use crate::store::{BlobPin, BlobRef};

/// Longest a request waits for a blob from another node (a player gives
/// up on a segment long before; this only bounds a hung holder).
const FETCH_TIMEOUT: Duration = Duration::from_secs(60);

/// The blobs being fetched right now, one gate each.
#[derive(Debug, Default)]
pub struct Fetches(Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>);

/// A waiter's hold on one blob's gate; the last one out removes the gate
/// (on every path, cancellation included: a viewer who leaves drops it).
struct Turn<'a> {
    fetches: &'a Fetches,
    sha256: String,
    gate: Arc<tokio::sync::Mutex<()>>,
}

impl Fetches {
    fn map(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<tokio::sync::Mutex<()>>>> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn turn(&self, sha256: &str) -> Turn<'_> {
        let gate = self.map().entry(sha256.to_string()).or_default().clone();
        Turn {
            fetches: self,
            sha256: sha256.to_string(),
            gate,
        }
    }
}

impl Drop for Turn<'_> {
    fn drop(&mut self) {
        let mut map = self.fetches.map();
        // The map's reference and ours: nobody else waits.
        if Arc::strong_count(&self.gate) <= 2 {
            map.remove(&self.sha256);
        }
    }
}

/// A local copy of `blob` and the pin that keeps it, or why there is none
/// (the 503's reason).
pub async fn local_copy(
    sys: &Sys,
    fetches: &Fetches,
    blob: &BlobRef,
    holders: &[String],
) -> Result<(PathBuf, BlobPin), String> {
    let pin = sys.store.pin(&blob.sha256);
    if !sys.store.contains(blob).await {
        let turn = fetches.turn(&blob.sha256);
        let _gate = turn.gate.lock().await;
        // `ensure_local` looks in the store first: a waiter finds the
        // copy the one before it fetched.
        match tokio::time::timeout(FETCH_TIMEOUT, ensure_local(sys, blob, holders)).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                return Err(format!(
                    "this node has no copy and none came from the package's holders: {}",
                    sys.store.redact(&e.to_string())
                ));
            }
            Err(_) => {
                return Err(format!(
                    "this node has no copy and the package's holders sent none within {}s",
                    FETCH_TIMEOUT.as_secs()
                ));
            }
        }
    }
    let path = sys.store.path(&blob.sha256).map_err(|e| e.to_string())?;
    Ok((path, pin))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_last_waiter_removes_the_gate() {
        let fetches = Fetches::default();
        let first = fetches.turn("ab");
        let second = fetches.turn("ab");
        assert!(Arc::ptr_eq(&first.gate, &second.gate), "one gate per blob");
        drop(first);
        assert!(fetches.map().contains_key("ab"), "the second still waits");
        drop(second);
        assert!(fetches.map().is_empty());
        let other = fetches.turn("cd");
        assert_eq!(fetches.map().len(), 1);
        drop(other);
        assert!(fetches.map().is_empty());
    }
}
