//! Serving: bind `--http-addr`, announce the bound address (a log line
//! and `<data-dir>/http.addr`, so tests and scripts that asked for port 0
//! find the port), serve until the node stops, then give open responses
//! a few seconds before cutting them (a viewer halfway through a segment
//! must not hold the node up).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use tokio::net::TcpListener;

use super::{Http, fetch, handle};
use crate::cluster::Sys;

/// The file in the data dir holding the bound `HOST:PORT` while the
/// server runs.
pub const ADDR_FILE: &str = "http.addr";

/// How long open responses get once the node stops.
const CONNECTION_GRACE: Duration = Duration::from_secs(5);

/// `--http-addr` could not be bound.
#[derive(Debug, thiserror::Error)]
#[error("binding --http-addr {address}: {source}")]
pub struct BindError {
    pub address: String,
    pub source: std::io::Error,
}

/// Binds `address` (`HOST:PORT`; port 0 picks a free one). Done at start,
/// before the node serves anything, so a taken port stops the start
/// with a clear message instead of leaving a node without its pages.
pub async fn bind(address: &str) -> Result<TcpListener, BindError> {
    TcpListener::bind(address)
        .await
        .map_err(|source| BindError {
            address: address.to_string(),
            source,
        })
}

/// Serves `listener` until the node's shutdown; `key` checks grants.
pub async fn serve(sys: Sys, key: Option<[u8; 32]>, listener: TcpListener) {
    let addr_file = sys.config.data_dir.join(ADDR_FILE);
    match listener.local_addr() {
        Ok(bound) => announce(&addr_file, bound).await,
        Err(e) => tracing::warn!(error = %e, "http: cannot read the bound address"),
    }
    if key.is_none() {
        tracing::warn!(
            "http: this node has no join token, so every watch link is refused (403); give it --join-token"
        );
    }
    let shutdown = sys.shutdown.clone();
    let router = Router::new().fallback(handle).with_state(Arc::new(Http {
        sys,
        key,
        fetches: fetch::Fetches::default(),
    }));
    let serving = std::future::IntoFuture::into_future(
        axum::serve(listener, router).with_graceful_shutdown(shutdown.clone().cancelled_owned()),
    );
    let grace_over = async {
        shutdown.cancelled().await;
        tokio::time::sleep(CONNECTION_GRACE).await;
    };
    tokio::select! {
        served = serving => if let Err(e) = served {
            tracing::error!(error = %e, "http: the server stopped");
        },
        _ = grace_over => tracing::warn!(
            "http: responses still open {CONNECTION_GRACE:?} after the stop: closing them"
        ),
    }
    if let Err(e) = tokio::fs::remove_file(&addr_file).await
        && e.kind() != std::io::ErrorKind::NotFound
    {
        tracing::warn!(error = %e, "http: cannot remove {}", addr_file.display());
    }
}

/// Logs the bound address and writes it to `addr_file` (whole or not at
/// all: a reader never sees half a line).
async fn announce(addr_file: &Path, bound: SocketAddr) {
    // Not "listening on": test harnesses take the first such line for
    // the gRPC address.
    tracing::info!("serving HTTP at http://{bound}/");
    if !bound.ip().is_loopback() {
        tracing::warn!(%bound, "http: serving beyond loopback in plain HTTP: watch links (and their grants) cross the network in clear; put a TLS proxy in front, or keep this network trusted");
    }
    let temp: PathBuf = addr_file.with_extension("addr.tmp");
    let written = async {
        tokio::fs::write(&temp, format!("{bound}\n")).await?;
        tokio::fs::rename(&temp, addr_file).await
    };
    if let Err(e) = written.await {
        tracing::warn!(error = %e, "http: cannot write {}", addr_file.display());
    }
}
