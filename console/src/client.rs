//! Talking to a node: the channel, gRPC error mapping, job status lookup
//! (with the original-protocol fallback) and waiting for a job to finish.
//!
//! The pure helpers (address normalising, status classification, error code
//! names) sit at the top; streaming transfers live in `transfer.rs`.

use std::fmt;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use tonic::metadata::{Ascii, MetadataValue};
use tonic::transport::{Channel, Endpoint};
use tonic::{Code, Status};
use vidshard_proto::replication::master_service_client::MasterServiceClient;
use vidshard_proto::replication::node_service_client::NodeServiceClient;
use vidshard_proto::replication::{GetCurrentMasterRequest, VideoStatusRequest};
use vidshard_proto::v1::cluster_client::ClusterClient;
use vidshard_proto::v1::jobs_client::JobsClient;
use vidshard_proto::v1::{GetJobRequest, JobInfo};

use crate::progress::JobBar;

/// Largest message we accept from a node.
const MAX_DECODING: usize = 8 * 1024 * 1024;
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How often `wait_for_job` polls.
pub const POLL_INTERVAL: Duration = Duration::from_millis(500);
/// How long `wait_for_job` rides out an unreachable node (e.g. a master failover).
const UNAVAILABLE_GRACE: Duration = Duration::from_secs(30);

/// Turns `HOST:PORT`, `http://HOST:PORT` or `https://HOST:PORT` into the
/// URI tonic connects to (https for a bare `HOST:PORT` when TLS flags were
/// given).
pub fn normalize_address(raw: &str) -> Result<String> {
    normalize_with(raw, crate::tls::enabled())
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

/// Where a job stands, from its original status string.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobState {
    /// Done and retrievable.
    Completed,
    /// Finished without output.
    Failed,
    /// Still uploading, queued, segmenting, processing or concatenating.
    Working,
}

/// Classifies an original status string.
pub fn classify_status(status: &str) -> JobState {
    match status {
        "completed" => JobState::Completed,
        "failed_segmentation"
        | "failed_distribution"
        | "processing_failed"
        | "concatenation_failed"
        | "concatenation_prerequisites_failed"
        | "not_found"
        | "error" => JobState::Failed,
        _ => JobState::Working,
    }
}

/// Lowercase words for a gRPC code, as printed in error lines.
pub fn code_name(code: Code) -> &'static str {
    match code {
        Code::Ok => "ok",
        Code::Cancelled => "cancelled",
        Code::Unknown => "unknown error",
        Code::InvalidArgument => "invalid argument",
        Code::DeadlineExceeded => "deadline exceeded",
        Code::NotFound => "not found",
        Code::AlreadyExists => "already exists",
        Code::PermissionDenied => "permission denied",
        Code::ResourceExhausted => "resource exhausted",
        Code::FailedPrecondition => "failed precondition",
        Code::Aborted => "aborted",
        Code::OutOfRange => "out of range",
        Code::Unimplemented => "unimplemented",
        Code::Internal => "internal error",
        Code::Unavailable => "unavailable",
        Code::DataLoss => "data loss",
        Code::Unauthenticated => "unauthenticated",
    }
}

/// A gRPC failure, displayed as `<code words>: <message>`.
#[derive(Debug, Clone)]
pub struct RpcError {
    pub code: Code,
    pub message: String,
}

impl fmt::Display for RpcError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let message = self.message.replace('\n', " ");
        if message.is_empty() {
            f.write_str(code_name(self.code))
        } else {
            write!(f, "{}: {message}", code_name(self.code))
        }
    }
}

impl std::error::Error for RpcError {}

/// Converts a tonic status into an `anyhow` error that prints on one line.
pub fn rpc(status: Status) -> anyhow::Error {
    let mut message = status.message().to_owned();
    // A refused TLS handshake (no client certificate, unknown CA) only
    // surfaces as "transport error"; the reason is deepest in the chain.
    if let Some(reason) = innermost_reason(&status) {
        message = format!("{message}: {reason}");
        if crate::tls::lacks_client_certificate() {
            message.push_str(
                " (the node may require a client certificate: pass --tls-cert and --tls-key)",
            );
        }
    }
    RpcError {
        code: status.code(),
        message,
    }
    .into()
}

/// The last error in `error`'s source chain, when it has one.
fn innermost_reason(error: &(dyn std::error::Error + 'static)) -> Option<String> {
    let mut source = error.source()?;
    while let Some(inner) = source.source() {
        source = inner;
    }
    Some(source.to_string())
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
        Ok(Node {
            channel: tonic::service::interceptor::InterceptedService::new(channel, WithToken),
            address: uri,
        })
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
        let request = GetJobRequest { id: id.to_owned() };
        Ok(self.jobs().get_job(request).await?.into_inner())
    }
}

/// What a job lookup found: the rich `vidshard.v1` view, or only the
/// original protocol's id/status/message from an original master.
#[derive(Debug, Clone)]
pub enum Lookup {
    Job(Box<JobInfo>),
    Legacy {
        id: String,
        status: String,
        message: String,
    },
}

/// Looks a job up, falling back to `GetVideoStatus` when the node does not
/// implement `vidshard.v1.Jobs`. An unknown id is an error either way.
pub async fn lookup_job(node: &Node, id: &str) -> Result<Lookup> {
    match node.get_job_raw(id).await {
        Ok(job) => Ok(Lookup::Job(Box::new(job))),
        Err(status) if status.code() == Code::Unimplemented => {
            let request = VideoStatusRequest {
                video_id: id.to_owned(),
            };
            let reply = node
                .master()
                .get_video_status(request)
                .await
                .map_err(rpc)?
                .into_inner();
            if reply.status == "not_found" {
                return Err(RpcError {
                    code: Code::NotFound,
                    message: format!("no job {id:?}"),
                }
                .into());
            }
            let id = if reply.video_id.is_empty() {
                id.to_owned()
            } else {
                reply.video_id
            };
            Ok(Lookup::Legacy {
                id,
                status: reply.status,
                message: reply.message,
            })
        }
        Err(status) => Err(rpc(status)),
    }
}

/// Polls `GetJob` until the job is final or `timeout` passes, driving `bar`.
/// Returns the final job whatever its outcome; the caller judges it.
pub async fn wait_for_job(
    node: &Node,
    id: &str,
    timeout: Duration,
    bar: &JobBar,
) -> Result<JobInfo> {
    let started = Instant::now();
    let mut unavailable_since: Option<Instant> = None;
    let mut last: Option<JobInfo> = None;
    loop {
        match node.get_job_raw(id).await {
            Ok(job) => {
                unavailable_since = None;
                bar.update(&job);
                if job.finished || classify_status(&job.status) != JobState::Working {
                    return Ok(job);
                }
                last = Some(job);
            }
            Err(status) if status.code() == Code::Unavailable => {
                let since = *unavailable_since.get_or_insert_with(Instant::now);
                if since.elapsed() > UNAVAILABLE_GRACE {
                    return Err(rpc(status)).with_context(|| {
                        format!("lost node {} while waiting for job {id:?}", node.address)
                    });
                }
            }
            Err(status) => return Err(rpc(status)),
        }
        if started.elapsed() >= timeout {
            let state = last
                .map(|job| {
                    format!(
                        " (status {}, {})",
                        job.status,
                        crate::format::percent(job.progress)
                    )
                })
                .unwrap_or_default();
            bail!(
                "timed out after {} s waiting for job {id:?}{state}",
                timeout.as_secs()
            );
        }
        tokio::time::sleep(POLL_INTERVAL).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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

    #[test]
    fn statuses_are_classified() {
        assert_eq!(classify_status("completed"), JobState::Completed);
        for failed in [
            "failed_segmentation",
            "failed_distribution",
            "processing_failed",
            "concatenation_failed",
            "concatenation_prerequisites_failed",
            "not_found",
            "error",
        ] {
            assert_eq!(classify_status(failed), JobState::Failed, "{failed}");
        }
        for working in [
            "uploading",
            "queued",
            "segmenting",
            "processing",
            "concatenating",
        ] {
            assert_eq!(classify_status(working), JobState::Working, "{working}");
        }
    }

    #[test]
    fn rpc_errors_print_code_words_and_message() {
        let err = rpc(Status::not_found("no job \"abc\""));
        assert_eq!(err.to_string(), "not found: no job \"abc\"");
        let err = rpc(Status::new(Code::FailedPrecondition, ""));
        assert_eq!(err.to_string(), "failed precondition");
        let err = rpc(Status::internal("line one\nline two"));
        assert_eq!(err.to_string(), "internal error: line one line two");
    }
}
