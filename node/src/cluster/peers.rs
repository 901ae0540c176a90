//! gRPC channels to other nodes, one per address, created lazily and
//! reused (tonic channels multiplex and reconnect by themselves); over TLS
//! when the node has a certificate (`cluster::tls`).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Channel, ClientTlsConfig, Endpoint};

use super::token::SendToken;

/// A channel to another node that adds the cluster token to every call.
pub type PeerChannel = InterceptedService<Channel, SendToken>;

/// HTTP/2 flow-control window for node-to-node streams.
pub const WINDOW: u32 = 8 << 20;

/// How long connecting to a peer may take before the call fails.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);

#[derive(Clone, Default)]
pub struct Peers {
    channels: Arc<Mutex<HashMap<String, Channel>>>,
    token: SendToken,
    /// `Some` when the cluster runs TLS: peers are `https://` then.
    tls: Option<ClientTlsConfig>,
}

impl std::fmt::Debug for Peers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Peers")
    }
}

impl Peers {
    /// Peers reached with the cluster `token` (if any), over TLS when
    /// `tls` is set.
    pub fn new(token: Option<&str>, tls: Option<ClientTlsConfig>) -> Self {
        Self {
            channels: Arc::default(),
            token: SendToken::new(token),
            tls,
        }
    }

    /// A channel to `address` ("host:port"). Connection happens on first
    /// use, so this never blocks.
    pub fn channel(&self, address: &str) -> Result<PeerChannel, tonic::transport::Error> {
        let mut channels = self.channels.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(channel) = channels.get(address) {
            return Ok(InterceptedService::new(channel.clone(), self.token.clone()));
        }
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        let mut endpoint = Endpoint::from_shared(format!("{scheme}://{address}"))?;
        if let Some(tls) = &self.tls {
            endpoint = endpoint.tls_config(tls.clone())?;
        }
        let channel = endpoint
            .connect_timeout(CONNECT_TIMEOUT)
            .tcp_nodelay(true)
            .http2_keep_alive_interval(Duration::from_secs(2))
            .keep_alive_timeout(Duration::from_secs(4))
            .keep_alive_while_idle(true)
            // Blobs stream at disk speed only with windows far above
            // HTTP/2's 64 KiB default.
            .initial_stream_window_size(WINDOW)
            .initial_connection_window_size(2 * WINDOW)
            .connect_lazy();
        channels.insert(address.to_string(), channel.clone());
        Ok(InterceptedService::new(channel, self.token.clone()))
    }
}
