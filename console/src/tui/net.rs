//! The watch task: reads `Cluster/WatchCluster` and turns what happens to
//! the stream into [`NetEvent`]s for the app.
//!
//! It never gives up: when the stream fails, ends, or goes quiet for
//! [`STALL`], it reports the loss and reconnects after [`backoff`], walking
//! the addresses the cluster told it about (see `backoff.rs`), so the
//! console follows the cluster through a dead node or a new leader.

use std::time::Duration;

use tokio::sync::mpsc;
use tonic::Code;
use vidshard_proto::v1::WatchRequest;

use super::backoff::{AddressBook, backoff};
use super::msg::{Event, NetEvent};
use crate::client::{Node, rpc};

/// Snapshot period asked of the node.
pub const INTERVAL_MS: u32 = 500;
/// A stream this quiet is treated as lost (a hung node keeps the socket).
pub const STALL: Duration = Duration::from_secs(10);

/// Runs until the app goes away (its receiver is dropped).
pub async fn watch(seed: String, tx: mpsc::Sender<Event>) {
    let mut book = AddressBook::new(&seed);
    // 0 for the first connection, then the number of the retry.
    let mut attempt = 0u32;
    loop {
        let target = book.pick(attempt);
        let connecting = NetEvent::Connecting {
            target: target.clone(),
            attempt,
        };
        if send(&tx, connecting).await.is_err() {
            return;
        }
        let (error, streamed) = stream(&target, &tx, &mut book).await;
        if tx.is_closed() {
            return;
        }
        // A stream that delivered something was healthy: start over.
        attempt = if streamed { 1 } else { attempt + 1 };
        let delay = backoff(attempt);
        let lost = NetEvent::Lost {
            target,
            error,
            next: book.pick(attempt),
            attempt,
            retry_in_ms: delay.as_millis() as u64,
        };
        if send(&tx, lost).await.is_err() {
            return;
        }
        tokio::time::sleep(delay).await;
    }
}

async fn send(tx: &mpsc::Sender<Event>, net: NetEvent) -> Result<(), ()> {
    let event = Event::Net {
        at_ms: super::now_ms(),
        net,
    };
    tx.send(event).await.map_err(|_| ())
}

/// One connection: returns why it ended and whether any snapshot came.
async fn stream(target: &str, tx: &mpsc::Sender<Event>, book: &mut AddressBook) -> (String, bool) {
    let node = match Node::connect(target).await {
        Ok(node) => node,
        Err(err) => return (crate::reason(&err), false),
    };
    let request = WatchRequest {
        interval_ms: INTERVAL_MS,
    };
    let mut stream = match node.cluster().watch_cluster(request).await {
        Ok(reply) => reply.into_inner(),
        Err(status) => return (describe(status), false),
    };
    let connected = NetEvent::Connected {
        target: target.to_owned(),
    };
    if send(tx, connected).await.is_err() {
        return ("console closed".into(), false);
    }
    let mut streamed = false;
    loop {
        match tokio::time::timeout(STALL, stream.message()).await {
            Err(_) => return (format!("no snapshot for {} s", STALL.as_secs()), streamed),
            Ok(Ok(None)) => return ("the node ended the stream".into(), streamed),
            Ok(Err(status)) => return (describe(status), streamed),
            Ok(Ok(Some(snap))) => {
                book.learn(target, &snap);
                streamed = true;
                if send(tx, NetEvent::Snapshot(Box::new(snap))).await.is_err() {
                    return ("console closed".into(), streamed);
                }
            }
        }
    }
}

/// One line for a failed call; an old node gets a hint rather than a code.
fn describe(status: tonic::Status) -> String {
    if status.code() == Code::Unimplemented {
        return "this node does not serve WatchCluster (older vidshard?)".into();
    }
    rpc(status).to_string()
}
