//! The cluster token: with `--token` set, every RPC to this node must
//! carry `authorization: Bearer <token>` (compared in constant time), and
//! every call this node makes to another node carries it. gRPC health
//! stays open for load balancers; everything else, node-to-node traffic
//! (Raft, shard transfer, backups) included, is refused without it.

use tonic::metadata::{Ascii, MetadataValue};
use tonic::service::Interceptor;
use tonic::{Request, Status};

/// Equal in time independent of where the inputs differ (pure).
pub fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The server side: refuses calls without the token (when one is set).
#[derive(Clone, Default)]
pub struct RequireToken(Option<Vec<u8>>);

impl RequireToken {
    pub fn new(token: Option<&str>) -> Self {
        Self(
            token
                .filter(|t| !t.is_empty())
                .map(|t| format!("Bearer {t}").into_bytes()),
        )
    }
}

impl Interceptor for RequireToken {
    fn call(&mut self, request: Request<()>) -> Result<Request<()>, Status> {
        let Some(expected) = &self.0 else {
            return Ok(request);
        };
        match request.metadata().get("authorization") {
            Some(sent) if same(sent.as_bytes(), expected) => Ok(request),
            Some(_) => Err(Status::unauthenticated("wrong cluster token")),
            None => Err(Status::unauthenticated(
                "this cluster needs a token: pass --token (or VIDSHARD_TOKEN)",
            )),
        }
    }
}

/// The client side: adds the token to every call (when one is set).
#[derive(Clone, Default)]
pub struct SendToken(Option<MetadataValue<Ascii>>);

impl SendToken {
    /// `None` when `token` cannot travel in a header (it is checked at
    /// start, see `Config`).
    pub fn new(token: Option<&str>) -> Self {
        Self(
            token
                .filter(|t| !t.is_empty())
                .and_then(|t| format!("Bearer {t}").parse().ok()),
        )
    }
}

impl Interceptor for SendToken {
    fn call(&mut self, mut request: Request<()>) -> Result<Request<()>, Status> {
        if let Some(value) = &self.0 {
            request
                .metadata_mut()
                .insert("authorization", value.clone());
        }
        Ok(request)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_checked_only_when_set() {
        let mut open = RequireToken::new(None);
        assert!(open.call(Request::new(())).is_ok());
        let mut guarded = RequireToken::new(Some("s3cret"));
        assert_eq!(
            guarded
                .call(Request::new(()))
                .map(|_| ())
                .map_err(|s| s.code()),
            Err(tonic::Code::Unauthenticated)
        );
        let mut sender = SendToken::new(Some("s3cret"));
        let signed = sender.call(Request::new(())).expect("signed");
        assert!(guarded.call(signed).is_ok());
        let mut wrong = SendToken::new(Some("guess"));
        let signed = wrong.call(Request::new(())).expect("signed");
        assert!(guarded.call(signed).is_err());
        assert!(same(b"abc", b"abc") && !same(b"abc", b"abd") && !same(b"abc", b"ab"));
    }
}
