//! Talking to a node: addresses, the cluster token, and [`Node`], an open
//! channel with typed clients on top of it.
//!
//! gRPC error mapping lives in `error.rs`, job lookup and waiting in
//! `lookup.rs`; streaming transfers in `transfer/`. The client reports
//! progress through callbacks and knows nothing of how it is shown.

mod error;
mod lookup;
mod reach;

pub use error::{RpcError, code_name, rpc};
pub use lookup::{Lookup, lookup_job, wait_for_job};
pub use reach::{FAILOVER_GRACE, Reach, node_lost};

use std::time::Duration;

use anyhow::{Context, Result, bail};
use tonic::Status;
use tonic::metadata::{Ascii, MetadataValue};
use tonic::transport::{Channel, Endpoint};
use vidshard_proto::replication::GetCurrentMasterRequest;
use vidshard_proto::replication::master_service_client::MasterServiceClient;
use vidshard_proto::replication::node_service_client::NodeServiceClient;
use vidshard_proto::v1::cluster_client::ClusterClient;
use vidshard_proto::v1::jobs_client::JobsClient;
use vidshard_proto::v1::{GetJobRequest, JobInfo};

use self::error::innermost_reason;

/// Largest message we accept from a node.
const MAX_DECODING: usize = 8 * 1024 * 1024;
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a TLS session without a client certificate may take to
/// answer its first call (see `Node::check_session_accepted`).
const SESSION_CHECK_TIMEOUT: Duration = Duration::from_secs(5);

/// Turns `HOST:PORT`, `http://HOST:PORT` or `https://HOST:PORT` into the
/// URI tonic connects to (https for a bare `HOST:PORT` when TLS flags were
/// given).
pub fn normalize_address(raw: &str) -> Result<String> {
    normalize_with(raw, crate::tls::enabled())
}

/// The addresses of a `--node` value: one `HOST:PORT`, or several
/// separated by commas (as etcdctl's `--endpoints`), in the order given
/// (pure).
pub fn node_list(raw: &str) -> Vec<String> {
    raw.split(',')
        .map(str::trim)
        .filter(|a| !a.is_empty())
        .map(String::from)
        .collect()
}

/// [`normalize_address`] with the TLS default given (pure).
pub fn normalize_with(raw: &str, tls: bool) -> Result<String> {
    let trimmed = raw.trim();
    if trimmed.is_empty() {
        bail!("empty node address");
    }
    let (scheme, rest) = if let Some(rest) = trimmed.strip_prefix("https://") {
        ("https", rest)
    } else if let Some(rest) = trimmed.strip_prefix("http://") {
        ("http", rest)
    } else {
        (if tls { "https" } else { "http" }, trimmed)
    };
    let rest = rest.trim_end_matches('/');
    if rest.is_empty() || rest.contains("://") || rest.contains('/') {
        bail!("node address {raw:?} is not HOST:PORT");
    }
    Ok(format!("{scheme}://{rest}"))
}

/// The cluster token every call carries (set once at start).
static TOKEN: std::sync::OnceLock<Option<MetadataValue<Ascii>>> = std::sync::OnceLock::new();

/// Sets the token from `--token`/`VIDSHARD_TOKEN`.
pub fn set_token(token: Option<&str>) -> Result<()> {
    let value = match token.filter(|t| !t.is_empty()) {
        None => None,
        Some(t) => Some(
            format!("Bearer {t}")
                .parse()
                .map_err(|_| anyhow::anyhow!("--token must be printable ASCII"))?,
        ),
    };
    let _ = TOKEN.set(value);
    Ok(())
}

/// Adds the token to every call.
#[derive(Clone, Copy)]
pub struct WithToken;

impl tonic::service::Interceptor for WithToken {
    fn call(&mut self, mut request: tonic::Request<()>) -> Result<tonic::Request<()>, Status> {
        if let Some(Some(value)) = TOKEN.get() {
            request
                .metadata_mut()
                .insert("authorization", value.clone());
        }
        Ok(request)
    }
}

type NodeChannel = tonic::service::interceptor::InterceptedService<Channel, WithToken>;

/// An open channel to one node, with typed clients on top of it.
#[derive(Clone)]
pub struct Node {
    channel: NodeChannel,
    /// The address as given (shown in messages).
    pub address: String,
}

impl Node {
    /// Connects eagerly so that an unreachable node fails with one clear line.
    pub async fn connect(raw: &str) -> Result<Self> {
        let uri = normalize_address(raw)?;
        let mut endpoint = Endpoint::from_shared(uri.clone())
            .with_context(|| format!("invalid node address {raw:?}"))?;
        if uri.starts_with("https://") {
            endpoint = endpoint
                .tls_config(crate::tls::client_config())
                .context("setting up TLS")?;
        }
        let endpoint = endpoint
            .connect_timeout(CONNECT_TIMEOUT)
            .http2_keep_alive_interval(Duration::from_secs(30))
            .keep_alive_timeout(Duration::from_secs(20));
        let channel = endpoint.connect().await.map_err(|e| {
            // The interesting part (certificate refused, connection
            // refused) sits deep in the source chain.
            let why = innermost_reason(&e).unwrap_or_else(|| e.to_string());
            anyhow::anyhow!("cannot connect to node {uri}: {why}")
        })?;
        let node = Node {
            channel: tonic::service::interceptor::InterceptedService::new(channel, WithToken),
            address: uri,
        };
        if crate::tls::lacks_client_certificate() {
            node.check_session_accepted().await?;
        }
        Ok(node)
    }

    /// Under TLS 1.3 a server that wants a client certificate refuses
    /// the session only after the client thinks the handshake is done,
    /// and the refusal often never reaches the waiting call (it hangs).
    /// Without a client certificate, one quick call tells it at once.
    async fn check_session_accepted(&self) -> Result<()> {
        let mut request = tonic::Request::new(GetCurrentMasterRequest {});
        request.set_timeout(SESSION_CHECK_TIMEOUT);
        let answer = tokio::time::timeout(
            SESSION_CHECK_TIMEOUT,
            NodeServiceClient::new(self.channel.clone()).get_current_master(request),
        )
        .await;
        let why = match answer {
            Ok(Ok(_)) => return Ok(()),
            // It answered (a refusal of the call itself is for later).
            Ok(Err(status))
                if !matches!(
                    status.code(),
                    tonic::Code::Unknown
                        | tonic::Code::Cancelled
                        | tonic::Code::Unavailable
                        | tonic::Code::DeadlineExceeded
                ) =>
            {
                return Ok(());
            }
            Ok(Err(status)) => {
                innermost_reason(&status).unwrap_or_else(|| status.message().to_string())
            }
            Err(_) => format!("no answer in {} s", SESSION_CHECK_TIMEOUT.as_secs()),
        };
        bail!(
            "node {} did not accept this TLS session ({why}); it may require a client certificate: pass --tls-cert and --tls-key",
            self.address
        )
    }

    /// Connects to `raw`, then to the master it names (`GetCurrentMaster`,
    /// which every node serves), so uploads and downloads take one hop.
    /// Stays with `raw` when no master is known or it cannot be reached:
    /// that node forwards to the master itself.
    pub async fn connect_leader(raw: &str) -> Result<Self> {
        let first = Self::connect(raw).await?;
        let mut request = tonic::Request::new(GetCurrentMasterRequest {});
        request.set_timeout(Duration::from_secs(3));
        let named = NodeServiceClient::new(first.channel.clone())
            .get_current_master(request)
            .await
            .ok()
            .map(|r| r.into_inner())
            .filter(|m| m.is_master_known && !m.master_address.is_empty());
        let Some(master) = named else {
            return Ok(first);
        };
        if normalize_address(&master.master_address).ok().as_deref() == Some(first.address.as_str())
        {
            return Ok(first);
        }
        match Self::connect(&master.master_address).await {
            Ok(leader) => Ok(leader),
            Err(_) => Ok(first),
        }
    }

    /// Connects to the first of the `--node` addresses that answers (to
    /// its master when `leader`). With one address its error is the
    /// answer; with several, every address's error is named.
    pub async fn connect_first(raw: &str, leader: bool) -> Result<Self> {
        let given = node_list(raw);
        if given.len() <= 1 {
            return match leader {
                true => Self::connect_leader(raw).await,
                false => Self::connect(raw).await,
            };
        }
        let mut failures = Vec::new();
        for address in &given {
            let connected = match leader {
                true => Self::connect_leader(address).await,
                false => Self::connect(address).await,
            };
            match connected {
                Ok(node) => return Ok(node),
                Err(e) => failures.push(format!("{e:#}")),
            }
        }
        bail!(
            "none of the {} nodes given answered: {}",
            given.len(),
            failures.join("; ")
        )
    }

    pub fn jobs(&self) -> JobsClient<NodeChannel> {
        JobsClient::new(self.channel.clone()).max_decoding_message_size(MAX_DECODING)
    }

    pub fn cluster(&self) -> ClusterClient<NodeChannel> {
        ClusterClient::new(self.channel.clone()).max_decoding_message_size(MAX_DECODING)
    }

    pub fn master(&self) -> MasterServiceClient<NodeChannel> {
        MasterServiceClient::new(self.channel.clone()).max_decoding_message_size(MAX_DECODING)
    }

    /// `Jobs.GetJob`, keeping the raw status so callers can fall back.
    pub async fn get_job_raw(&self, id: &str) -> Result<JobInfo, Status> {
        self.get_job_waiting(id, Duration::ZERO).await
    }

    /// `GetJob` as a long poll: the node answers once the job is final or
    /// after `wait` (a node that predates the long poll answers at once).
    pub async fn get_job_waiting(&self, id: &str, wait: Duration) -> Result<JobInfo, Status> {
        let request = GetJobRequest {
            id: id.to_owned(),
            wait_ms: u32::try_from(wait.as_millis()).unwrap_or(u32::MAX),
        };
        Ok(self.jobs().get_job(request).await?.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_node_value_may_list_several_addresses() {
        assert_eq!(node_list("a:1"), vec!["a:1"]);
        assert_eq!(node_list(" a:1, b:2,,c:3 "), vec!["a:1", "b:2", "c:3"]);
        assert!(node_list(" , ").is_empty());
    }

    #[test]
    fn addresses_are_normalised() {
        assert_eq!(
            normalize_address("127.0.0.1:50051").expect("valid"),
            "http://127.0.0.1:50051"
        );
        assert_eq!(
            normalize_address(" http://node-a:6000/ ").expect("valid"),
            "http://node-a:6000"
        );
        assert_eq!(
            normalize_address("[::1]:50051").expect("valid"),
            "http://[::1]:50051"
        );
        assert_eq!(
            normalize_with("node:1", true).expect("valid"),
            "https://node:1"
        );
        assert_eq!(
            normalize_with("https://node:1", false).expect("valid"),
            "https://node:1"
        );
        assert_eq!(
            normalize_with("http://node:1", true).expect("valid"),
            "http://node:1"
        );
        assert!(normalize_address("").is_err());
        assert!(normalize_address("https://").is_err());
        assert!(normalize_address("grpc://node:1").is_err());
        assert!(normalize_address("node:1/path").is_err());
    }
}
