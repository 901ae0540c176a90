//! Reaching the cluster through whichever node answers: a command starts
//! at the `--node` given (or the master it names), learns every member's
//! address from `ListNodes`, and when its node is lost (killed, cut off,
//! stepping down) goes on through the next one that answers. A leader
//! change then costs a command a few seconds, never its result.

use std::future::Future;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use tonic::{Code, Status};
use vidshard_proto::v1::ListNodesRequest;

use super::{Node, node_list, normalize_address, rpc};

/// How long a command keeps looking for a node that answers.
pub const FAILOVER_GRACE: Duration = Duration::from_secs(60);
/// Pause between two rounds over the known nodes.
const ROUND_PAUSE: Duration = Duration::from_millis(500);
/// How long one attempt of a quick call may take: a node that accepted
/// the connection but does not answer (stopped with SIGSTOP, or a TLS
/// session the server refused without the client noticing) counts as lost.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(20);
/// Calls broken right after a connection opened, in a row, that end the
/// retries (see [`Reach::call`]).
const BROKEN_CALLS_TO_GIVE_UP: u32 = 3;

/// Whether `status` says the node (or its link to the master) was lost
/// rather than that the call was wrong (pure). A refused certificate is
/// the caller's to fix, not a lost node: retrying elsewhere cannot help.
pub fn node_lost(status: &Status) -> bool {
    let refused_tls = super::error::innermost_reason(status).is_some_and(|reason| {
        let reason = reason.to_lowercase();
        reason.contains("certificate") || reason.contains("alert")
    });
    if refused_tls {
        return false;
    }
    match status.code() {
        Code::Unavailable | Code::Cancelled => true,
        Code::Unknown => {
            let message = status.message().to_lowercase();
            [
                "transport",
                "connection",
                "broken pipe",
                "h2 protocol",
                "stream closed",
            ]
            .iter()
            .any(|sign| message.contains(sign))
        }
        _ => false,
    }
}

/// Known nodes, the one in use first.
pub struct Reach {
    current: Node,
    /// Every address heard of, normalised, the given one first.
    known: Vec<String>,
}

impl Reach {
    /// Starts at the master of the first of `raw`'s addresses that
    /// answers (one hop for transfers) and learns the members.
    pub async fn to_leader(raw: &str) -> Result<Self> {
        Self::start(raw, Node::connect_first(raw, true).await?).await
    }

    /// Starts at the first of `raw`'s addresses that answers and learns
    /// the members.
    pub async fn to_node(raw: &str) -> Result<Self> {
        Self::start(raw, Node::connect_first(raw, false).await?).await
    }

    /// Every address given is known from the start, so a command rides
    /// through the loss of its first node even before it heard a member list.
    async fn start(raw: &str, current: Node) -> Result<Self> {
        let known = node_list(raw)
            .iter()
            .map(|a| normalize_address(a))
            .collect::<Result<Vec<_>>>()?;
        let mut reach = Reach { known, current };
        reach.remember(&reach.current.address.clone());
        reach.learn().await;
        Ok(reach)
    }

    /// The node in use.
    pub fn node(&self) -> &Node {
        &self.current
    }

    fn remember(&mut self, address: &str) {
        if let Ok(address) = normalize_address(address)
            && !self.known.contains(&address)
        {
            self.known.push(address);
        }
    }

    /// Adds every member the current node lists (best effort: a node that
    /// does not answer in 3 s, or speaks only the original protocol, adds none).
    pub async fn learn(&mut self) {
        let mut request = tonic::Request::new(ListNodesRequest {});
        request.set_timeout(Duration::from_secs(3));
        if let Ok(reply) = self.current.cluster().list_nodes(request).await {
            for entry in reply.into_inner().nodes {
                if entry.protocol != "original" {
                    self.remember(&entry.address);
                }
            }
        }
    }

    /// Moves to the next known node that answers (its master if it names
    /// one that answers), trying each once; false if none did.
    async fn move_on(&mut self) -> bool {
        let start = self
            .known
            .iter()
            .position(|a| *a == self.current.address)
            .map_or(0, |i| i + 1);
        let count = self.known.len();
        for step in 0..count {
            let address = self.known[(start + step) % count].clone();
            if let Ok(node) = Node::connect_leader(&address).await {
                self.current = node;
                self.learn().await;
                return true;
            }
        }
        false
    }

    /// Runs `call` on the current node; while the node is lost, on the next
    /// one that answers, for up to [`FAILOVER_GRACE`]. Only for calls that
    /// may be repeated (reads, or writes the node deduplicates).
    pub async fn call<T, F, Fut>(&mut self, mut call: F) -> Result<T>
    where
        F: FnMut(Node) -> Fut,
        Fut: Future<Output = Result<T, Status>>,
    {
        let deadline = Instant::now() + FAILOVER_GRACE;
        // Connections that opened and then broke the call, in a row: a
        // node refusing our TLS session looks like that (its alert often
        // arrives as a broken pipe), a node dying mid-call does it once.
        let mut broken_in_a_row = 0;
        loop {
            let attempt = tokio::time::timeout(ATTEMPT_TIMEOUT, call(self.current.clone()));
            let answer = attempt
                .await
                .unwrap_or_else(|_| Err(no_answer(&self.current.address)));
            match answer {
                Ok(value) => return Ok(value),
                Err(status) if node_lost(&status) && Instant::now() < deadline => {
                    // Unavailable: no connection (refused, timed out).
                    broken_in_a_row = match status.code() {
                        Code::Unavailable => 0,
                        _ => broken_in_a_row + 1,
                    };
                    if broken_in_a_row >= BROKEN_CALLS_TO_GIVE_UP {
                        return Err(rpc(status)).context(format!(
                            "{} calls in a row broke right after connecting",
                            BROKEN_CALLS_TO_GIVE_UP
                        ));
                    }
                    self.recover(deadline).await;
                }
                Err(status) if node_lost(&status) => {
                    return Err(rpc(status)).context(format!(
                        "no node of the cluster answered for {} s (tried {})",
                        FAILOVER_GRACE.as_secs(),
                        self.known.join(", ")
                    ));
                }
                Err(status) => return Err(rpc(status)),
            }
        }
    }

    /// After a lost node: pauses, then moves on (or retries the same node
    /// when it is the only one known) until one answers or `deadline`.
    pub async fn recover(&mut self, deadline: Instant) {
        while Instant::now() < deadline {
            tokio::time::sleep(ROUND_PAUSE).await;
            if self.move_on().await {
                return;
            }
        }
    }
}

/// The status of an attempt that got no answer in [`ATTEMPT_TIMEOUT`].
fn no_answer(address: &str) -> Status {
    let mut message = format!(
        "no answer from {address} in {} s",
        ATTEMPT_TIMEOUT.as_secs()
    );
    if crate::tls::lacks_client_certificate() {
        message.push_str(
            " (the node may require a client certificate: pass --tls-cert and --tls-key)",
        );
    }
    Status::unavailable(message)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lost_node_is_told_from_a_wrong_call() {
        assert!(node_lost(&Status::unavailable("tcp connect error")));
        assert!(node_lost(&Status::unknown("transport error")));
        assert!(node_lost(&Status::cancelled("")));
        assert!(!node_lost(&Status::not_found("no job")));
        assert!(!node_lost(&Status::unknown("ffmpeg said no")));
        assert!(!node_lost(&Status::unauthenticated("token")));
        let refused = std::io::Error::other("received fatal alert: CertificateRequired");
        let refused = Status::from_error(Box::new(refused));
        assert!(!node_lost(&refused), "{refused:?}");
    }
}
