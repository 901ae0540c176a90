//! `WatchCluster`: the live stream consoles read. The master builds one
//! snapshot at most every `cluster_view::SHARED_FOR` and every watcher
//! gets that one (a thousand unread watches used to cost most of a core:
//! one snapshot each, built even when nobody read it); a watcher that has
//! not read the last two gets none built; one client holds at most
//! `cluster_view::MAX_WATCHES_PER_CLIENT` streams. A worker relays the
//! master's stream.

use std::time::Duration;

use tonic::Status;
use vidshard_proto::v1::cluster_client::ClusterClient;
use vidshard_proto::v1::{ClusterEvent, ClusterSnapshot, WatchRequest};

use super::cluster_view::{Cluster, WatchSlot, snapshot};

/// Streams snapshots to `tx` every `every` until the reader goes away or
/// the node stops; `slot` is held as long.
pub async fn stream(ctx: Cluster, every: Duration, tx: SnapshotSender, slot: WatchSlot) {
    let _slot = slot;
    if ctx.sys.is_master() {
        serve_watch(ctx, every, tx).await;
    } else {
        relay_from_master(ctx, every, tx).await;
    }
}

/// Snapshot interval from the request: 0 means 500 ms; bounded (pure).
pub fn watch_interval(interval_ms: u32) -> Duration {
    let ms = if interval_ms == 0 {
        500
    } else {
        interval_ms.clamp(100, 10_000)
    };
    Duration::from_millis(u64::from(ms))
}

type SnapshotSender = tokio::sync::mpsc::Sender<Result<ClusterSnapshot, Status>>;

/// A worker serves the watch by relaying the master's stream, marked as
/// served by itself; while the master is unreachable it sends what it
/// knows alone (itself) with the reason in the events, and retries.
async fn relay_from_master(ctx: Cluster, every: Duration, tx: SnapshotSender) {
    loop {
        if ctx.sys.is_master() {
            // This node became the master: serve the watch itself.
            return serve_watch(ctx, every, tx).await;
        }
        let master = ctx.sys.master_address().unwrap_or_default();
        let relayed = async {
            let channel = ctx.sys.peers.channel(&master).map_err(|e| e.to_string())?;
            let mut stream = ClusterClient::new(channel)
                .watch_cluster(WatchRequest {
                    interval_ms: every.as_millis() as u32,
                })
                .await
                .map_err(|e| e.message().to_string())?
                .into_inner();
            while let Some(mut snap) = stream
                .message()
                .await
                .map_err(|e| e.message().to_string())?
            {
                snap.node_address = ctx.sys.address.clone();
                snap.node_id = ctx.sys.node_id.clone();
                if tx.is_closed() {
                    return Ok(());
                }
                let _ = tx.try_send(Ok(snap));
            }
            Err("the master ended the stream".to_string())
        };
        let reason = tokio::select! {
            r = relayed => match r { Ok(()) => return, Err(e) => e },
            _ = ctx.sys.shutdown.cancelled() => return,
        };
        let mut alone = snapshot(&ctx);
        alone.master_address = master.clone();
        alone.has_quorum = false;
        alone.voters_up = 0;
        alone.events.push(ClusterEvent {
            unix_ms: crate::jobs::now_unix_ms(),
            level: "warn".into(),
            message: format!("this worker cannot reach the master {master}: {reason}"),
        });
        if tx.is_closed() {
            return;
        }
        let _ = tx.try_send(Ok(alone));
        tokio::select! {
            _ = ctx.sys.shutdown.cancelled() => return,
            _ = tokio::time::sleep(every.max(Duration::from_secs(1))) => {}
        }
    }
}

/// The master's own watch stream: a snapshot every `every` until the
/// reader goes away; if this node stops leading, it relays the new
/// master's stream instead.
async fn serve_watch(ctx: Cluster, every: Duration, tx: SnapshotSender) {
    loop {
        if tx.is_closed() {
            return;
        }
        if !ctx.sys.is_master() {
            return Box::pin(relay_from_master(ctx, every, tx)).await;
        }
        // A reader that has not taken the last two is behind: build
        // nothing for it this tick.
        if tx.capacity() > 0 {
            let _ = tx.try_send(Ok(ctx.watches.snapshot(&ctx)));
        }
        tokio::select! {
            _ = ctx.sys.shutdown.cancelled() => return,
            _ = tokio::time::sleep(every) => {}
        }
    }
}
