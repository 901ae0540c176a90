//! The door of every node: which credential each RPC needs, and the tower
//! layer that refuses a call before any handler (or message decoding)
//! runs. Three kinds of caller: a **peer** (a member of this cluster: it
//! carries the join token), an **operator** (the operator token) and
//! anyone else. Peers may call everything; operators the admin and client
//! RPCs; anyone else the client RPCs when they are open (`--clients`,
//! `--original-clients`) and, from an allowed address, the original
//! workers' and masters' RPCs (`--original-peers`), which can carry no
//! token. Health and reflection stay open for load balancers and grpcurl.

use std::net::IpAddr;
use std::sync::Arc;
use std::task::{Context, Poll};

use futures::future::{Either, Ready, ready};
use tonic::codegen::http;
use tonic::transport::server::{TcpConnectInfo, TlsConnectInfo};

use crate::cluster::credentials::Credentials;
use crate::cluster::token::same;
use crate::config::{ClientAccess, OriginalClientAccess};

/// What an RPC asks of its caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Need {
    /// Health and reflection.
    Open,
    /// Our clients: upload, status, list, retrieve, watch.
    Client,
    /// The original client: upload, status, retrieve, who is master.
    OriginalClient,
    /// Original workers and masters (no token possible).
    OriginalPeer,
    /// Admin: delete, elect, remove.
    Operator,
    /// Members only: Raft, shard transfer, heartbeats, joins.
    Peer,
}

/// The credential a call carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Caller {
    Peer,
    Operator,
    /// No token, or one this cluster does not know.
    Anonymous {
        sent_token: bool,
    },
}

/// Which original peers may call (addresses resolved at start).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PeerAddresses {
    Any,
    Off,
    Only(Vec<IpAddr>),
}

/// The configured policy for callers without the join token.
#[derive(Debug, Clone)]
pub struct Policy {
    pub clients: ClientAccess,
    pub original_clients: OriginalClientAccess,
    pub original_peers: PeerAddresses,
}

/// The credential an RPC (by its gRPC path) needs; `None` for a path no
/// service of ours serves (the gate then asks for the join token).
pub fn need(path: &str) -> Option<Need> {
    let (service, method) = path.trim_start_matches('/').split_once('/')?;
    Some(match (service, method) {
        ("grpc.health.v1.Health", _)
        | ("grpc.reflection.v1.ServerReflection", _)
        | ("grpc.reflection.v1alpha.ServerReflection", _) => Need::Open,
        ("replication.MasterService", "UploadVideo" | "RetrieveVideo" | "GetVideoStatus")
        | ("replication.NodeService", "GetNodeStats" | "GetCurrentMaster" | "GetAllNodes") => {
            Need::OriginalClient
        }
        ("replication.MasterService", "RegisterWorker" | "ReportWorkerShardStatus")
        | ("replication.WorkerService", "ProcessShard" | "RequestShard")
        | (
            "replication.NodeService",
            "AnnounceMaster"
            | "RequestVote"
            | "ReportResourceScore"
            | "RegisterNode"
            | "UpdateNodeList"
            | "ReplicateVideo"
            | "RequestBackupData",
        ) => Need::OriginalPeer,
        (
            "vidshard.v1.Jobs",
            "Upload" | "GetJob" | "ListJobs" | "Retrieve" | "GetPackage" | "Link",
        )
        | ("vidshard.v1.Cluster", "ListNodes" | "WatchCluster") => Need::Client,
        ("vidshard.v1.Jobs", "DeleteJob")
        | ("vidshard.v1.Cluster", "TriggerElection" | "RemoveNode") => Need::Operator,
        ("vidshard.v1.Cluster", "Heartbeat" | "JoinCluster")
        | ("vidshard.v1.Raft", "AppendEntries" | "Vote" | "InstallSnapshot" | "Steer")
        | ("vidshard.v1.Worker", "RunShard" | "FetchBlob" | "PushBlob") => Need::Peer,
        _ => return None,
    })
}

/// Who sent `authorization` (pure; compared in constant time).
pub fn caller(authorization: Option<&[u8]>, credentials: &Credentials) -> Caller {
    let Some(sent) = authorization else {
        return Caller::Anonymous { sent_token: false };
    };
    let matches = |token: &Option<String>| {
        token
            .as_deref()
            .is_some_and(|t| same(sent, format!("Bearer {t}").as_bytes()))
    };
    if matches(&credentials.peer) {
        Caller::Peer
    } else if matches(&credentials.operator) {
        Caller::Operator
    } else {
        Caller::Anonymous { sent_token: true }
    }
}

/// Why a call is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("only members of this cluster may call this (it needs the cluster's join token){0}")]
    NotAMember(&'static str),
    #[error(
        "this needs the operator token: pass --token (or VIDSHARD_TOKEN); `vidshard-node token --operator` on a node prints it{0}"
    )]
    NotAnOperator(&'static str),
    #[error("the original client's calls are turned off on this node (--original-clients off)")]
    OriginalClientsOff,
    #[error("original workers and masters are turned off on this node (--original-peers off)")]
    OriginalPeersOff,
    #[error("{0} is not among the original workers and masters this node takes (--original-peers)")]
    OriginalPeerNotListed(String),
}

impl Refusal {
    pub fn status(&self) -> tonic::Status {
        match self {
            Refusal::NotAMember(_) | Refusal::NotAnOperator(_) => {
                tonic::Status::unauthenticated(self.to_string())
            }
            _ => tonic::Status::permission_denied(self.to_string()),
        }
    }
}

const WRONG: &str = " (the token sent is not one of this cluster's)";

fn hint(caller: Caller) -> &'static str {
    match caller {
        Caller::Anonymous { sent_token: true } => WRONG,
        _ => "",
    }
}

/// Whether `caller` from `remote` may call an RPC that needs `need` (pure).
pub fn decide(
    need: Need,
    caller: Caller,
    remote: Option<IpAddr>,
    policy: &Policy,
) -> Result<(), Refusal> {
    let operator = matches!(caller, Caller::Peer | Caller::Operator);
    match need {
        Need::Open => Ok(()),
        _ if caller == Caller::Peer => Ok(()),
        Need::Peer => Err(Refusal::NotAMember(hint(caller))),
        Need::Operator if operator => Ok(()),
        Need::Operator => Err(Refusal::NotAnOperator(hint(caller))),
        Need::Client => match policy.clients {
            ClientAccess::Open => Ok(()),
            ClientAccess::Token if operator => Ok(()),
            ClientAccess::Token => Err(Refusal::NotAnOperator(hint(caller))),
        },
        Need::OriginalClient => match policy.original_clients {
            OriginalClientAccess::Open => Ok(()),
            OriginalClientAccess::Token if operator => Ok(()),
            OriginalClientAccess::Token => Err(Refusal::NotAnOperator(hint(caller))),
            OriginalClientAccess::Off => Err(Refusal::OriginalClientsOff),
        },
        Need::OriginalPeer => match &policy.original_peers {
            PeerAddresses::Any => Ok(()),
            PeerAddresses::Off => Err(Refusal::OriginalPeersOff),
            PeerAddresses::Only(allowed) => match remote {
                Some(ip) if allowed.contains(&canonical(ip)) => Ok(()),
                Some(ip) => Err(Refusal::OriginalPeerNotListed(ip.to_string())),
                None => Err(Refusal::OriginalPeerNotListed("an unknown address".into())),
            },
        },
    }
}

/// `::ffff:10.0.0.1` and `10.0.0.1` are the same caller.
pub fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
        v4 => v4,
    }
}

/// `--original-peers` as addresses: names are resolved now (a name that
/// does not resolve stops the node, naming it).
pub async fn resolve_original_peers(
    peers: &crate::config::OriginalPeers,
) -> std::io::Result<PeerAddresses> {
    use crate::config::OriginalPeers;
    let hosts = match peers {
        OriginalPeers::Any => return Ok(PeerAddresses::Any),
        OriginalPeers::Off => return Ok(PeerAddresses::Off),
        OriginalPeers::Hosts(hosts) => hosts,
    };
    let mut allowed = Vec::new();
    for host in hosts {
        if let Ok(ip) = host.trim_matches(['[', ']']).parse::<IpAddr>() {
            allowed.push(canonical(ip));
            continue;
        }
        let found = tokio::net::lookup_host((host.as_str(), 0))
            .await
            .map_err(|e| std::io::Error::new(e.kind(), format!("{host}: {e}")))?;
        allowed.extend(found.map(|address| canonical(address.ip())));
    }
    Ok(PeerAddresses::Only(allowed))
}

/// The credentials and policy every call is checked against.
#[derive(Debug)]
pub struct Gate {
    pub credentials: Credentials,
    pub policy: Policy,
    /// Original `ReplicateVideo` calls decoded at once: tonic reads and
    /// decodes a whole message (up to 1 GiB, held about twice while
    /// decoding) before the handler runs, so the bound must sit here.
    big_decodes: Arc<tokio::sync::Semaphore>,
}

/// The one RPC whose single message may be 1 GiB.
const BIG_DECODE_PATH: &str = "/replication.NodeService/ReplicateVideo";
/// `ReplicateVideo` calls decoded at once.
pub const BIG_DECODES: usize = 2;
/// How long a `ReplicateVideo` waits for a turn before RESOURCE_EXHAUSTED.
const BIG_DECODE_WAIT: std::time::Duration = std::time::Duration::from_secs(120);

impl Gate {
    pub fn new(credentials: Credentials, policy: Policy) -> Self {
        Self {
            credentials,
            policy,
            big_decodes: Arc::new(tokio::sync::Semaphore::new(BIG_DECODES)),
        }
    }
}

impl Gate {
    /// `Ok` when the call may go on, else the status to answer with.
    fn check<B>(&self, request: &http::Request<B>) -> Result<(), tonic::Status> {
        let need = need(request.uri().path()).unwrap_or(Need::Peer);
        let sent = request
            .headers()
            .get(http::header::AUTHORIZATION)
            .map(|v| v.as_bytes());
        let remote = remote_ip(request);
        decide(need, caller(sent, &self.credentials), remote, &self.policy)
            .map_err(|refusal| refusal.status())
    }
}

fn remote_ip<B>(request: &http::Request<B>) -> Option<IpAddr> {
    let extensions = request.extensions();
    extensions
        .get::<TcpConnectInfo>()
        .and_then(TcpConnectInfo::remote_addr)
        .or_else(|| {
            extensions
                .get::<TlsConnectInfo<TcpConnectInfo>>()
                .and_then(|tls| tls.get_ref().remote_addr())
        })
        .map(|address| canonical(address.ip()))
}

/// The tower layer putting [`Gate`] in front of every service.
#[derive(Clone)]
pub struct AccessLayer(pub Arc<Gate>);

impl<S> tower::Layer<S> for AccessLayer {
    type Service = Guarded<S>;
    fn layer(&self, inner: S) -> Guarded<S> {
        Guarded {
            inner,
            gate: self.0.clone(),
        }
    }
}

/// A service behind the [`Gate`].
#[derive(Clone)]
pub struct Guarded<S> {
    inner: S,
    gate: Arc<Gate>,
}

impl<S, B, R> tower::Service<http::Request<B>> for Guarded<S>
where
    S: tower::Service<http::Request<B>, Response = http::Response<R>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    B: Send + 'static,
    R: Default + Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Either<
        Either<Ready<Result<S::Response, S::Error>>, S::Future>,
        futures::future::BoxFuture<'static, Result<S::Response, S::Error>>,
    >;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        if let Err(status) = self.gate.check(&request) {
            return Either::Left(Either::Left(ready(Ok(status.into_http()))));
        }
        if request.uri().path() != BIG_DECODE_PATH {
            return Either::Left(Either::Right(self.inner.call(request)));
        }
        // The service made ready is the one that takes the call, later.
        let fresh = self.inner.clone();
        let mut ready_inner = std::mem::replace(&mut self.inner, fresh);
        let slots = self.gate.big_decodes.clone();
        Either::Right(Box::pin(async move {
            let Ok(Ok(_turn)) = tokio::time::timeout(BIG_DECODE_WAIT, slots.acquire_owned()).await
            else {
                let busy = tonic::Status::resource_exhausted(format!(
                    "busy: {BIG_DECODES} ReplicateVideo calls are being received; retry later"
                ));
                return Ok(busy.into_http());
            };
            ready_inner.call(request).await
        }))
    }
}

#[cfg(test)]
#[path = "access_tests.rs"]
mod tests;
