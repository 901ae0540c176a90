//! Tokens on the wire: every call this node makes to another node carries
//! the join token as `authorization: Bearer <token>`; [`same`] compares
//! what callers send in constant time (the gate is `service::access`).

use tonic::metadata::{Ascii, MetadataValue};
use tonic::service::Interceptor;
use tonic::{Request, Status};

/// Equal in time independent of where the inputs differ (pure).
pub fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
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
    fn tokens_are_sent_only_when_set_and_compared_whole() {
        let mut none = SendToken::new(None);
        let plain = none.call(Request::new(())).expect("sent");
        assert!(plain.metadata().get("authorization").is_none());
        let mut sender = SendToken::new(Some("s3cret"));
        let signed = sender.call(Request::new(())).expect("signed");
        assert_eq!(
            signed.metadata().get("authorization").map(|v| v.as_bytes()),
            Some(&b"Bearer s3cret"[..])
        );
        assert!(same(b"abc", b"abc") && !same(b"abc", b"abd") && !same(b"abc", b"ab"));
    }
}
