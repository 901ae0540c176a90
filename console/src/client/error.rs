//! gRPC failures as the user sees them: [`RpcError`] prints as
//! `<code words>: <message>` on one line, and [`rpc`] turns a tonic status
//! into one (naming a refused TLS handshake's real reason).

use std::fmt;

use tonic::{Code, Status};

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
pub(super) fn innermost_reason(error: &(dyn std::error::Error + 'static)) -> Option<String> {
    let mut source = error.source()?;
    while let Some(inner) = source.source() {
        source = inner;
    }
    Some(source.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

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
