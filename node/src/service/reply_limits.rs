//! Bounds on replies, applied by the server's response layer. Error
//! messages often quote the id a client sent; an id of 100 KB quoted whole
//! makes a `grpc-message` header larger than HTTP/2 clients accept (16 KB
//! by default), so the client tears the whole connection down instead of
//! reading the error. Every response passes [`cap_grpc_message`] (the
//! server layer), and messages built here quote ids through [`quoted`].
//! The same layer keeps a handler's [`HoldUntilSent`] (a memory budget's
//! permit) alive until the reply has been sent ([`until_sent`]).

mod until_sent;

use tonic::body::Body;
use tonic::codegen::http::{HeaderValue, Response};

pub use until_sent::{HoldUntilSent, UntilSent};

/// Longest `grpc-message` header sent, in bytes (percent-encoded).
pub const MAX_MESSAGE_HEADER: usize = 2048;

/// Longest id quoted in a message, in characters.
const MAX_QUOTED: usize = 64;

/// `id` for a message: debug-quoted (control bytes escaped) and cut to
/// 64 characters with its full length noted (pure).
pub fn quoted(id: &str) -> String {
    let chars = id.chars().count();
    if chars <= MAX_QUOTED {
        return format!("{id:?}");
    }
    let head: String = id.chars().take(MAX_QUOTED).collect();
    format!("{head:?}… ({} bytes)", id.len())
}

/// A percent-encoded header value cut to at most `max` bytes without
/// splitting a `%XX` escape, with an encoded " …" marking the cut (pure).
pub fn cap_encoded(value: &[u8], max: usize) -> Vec<u8> {
    const MARK: &[u8] = b"%20%E2%80%A6";
    if value.len() <= max {
        return value.to_vec();
    }
    let mut cut = max.saturating_sub(MARK.len());
    // Step back over a partial escape: "%" or "%X" right before the cut.
    for back in 1..=2 {
        if cut >= back && value[cut - back] == b'%' {
            cut -= back;
            break;
        }
    }
    let mut capped = value[..cut].to_vec();
    capped.extend_from_slice(MARK);
    capped
}

/// Shows `root` (the data dir) as `<data-dir>` in the `grpc-message`
/// header (the server layer; the header carries `/` as is).
pub fn redact_grpc_message<B>(root: &str, mut response: Response<B>) -> Response<B> {
    let redacted = response
        .headers()
        .get("grpc-message")
        .and_then(|v| v.to_str().ok())
        .filter(|v| v.contains(root))
        .map(|v| crate::store::redact_root(v, root));
    if let Some(text) = redacted
        && let Ok(value) = HeaderValue::from_str(&text)
    {
        response.headers_mut().insert("grpc-message", value);
    }
    response
}

/// The server's response layer: caps the `grpc-message` header of a
/// response and, when the handler left a [`HoldUntilSent`] in its
/// extensions, moves it into the body so it lasts until the reply has
/// been sent.
pub fn cap_grpc_message(response: Response<Body>) -> Response<Body> {
    let mut response = cap_header(response);
    match response.extensions_mut().remove::<HoldUntilSent>() {
        Some(held) => response.map(|body| Body::new(UntilSent::new(body, held))),
        None => response,
    }
}

/// Caps the `grpc-message` header of a response.
fn cap_header<B>(mut response: Response<B>) -> Response<B> {
    let too_long = response
        .headers()
        .get("grpc-message")
        .filter(|v| v.len() > MAX_MESSAGE_HEADER)
        .map(|v| cap_encoded(v.as_bytes(), MAX_MESSAGE_HEADER));
    if let Some(capped) = too_long
        && let Ok(value) = HeaderValue::from_bytes(&capped)
    {
        response.headers_mut().insert("grpc-message", value);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_ids_are_cut_and_control_bytes_escaped() {
        assert_eq!(quoted("clip.mp4"), "\"clip.mp4\"");
        assert_eq!(quoted("a\0b"), "\"a\\0b\"");
        let long = quoted(&"x".repeat(100_000));
        assert!(
            long.len() < 100 && long.ends_with("(100000 bytes)"),
            "{long}"
        );
        let wide = quoted(&"ü".repeat(100));
        assert!(wide.contains("(200 bytes)"), "cut on characters: {wide}");
    }

    #[test]
    fn headers_are_cut_between_escapes() {
        assert_eq!(cap_encoded(b"short", 10), b"short");
        for value in [
            "x".repeat(5000),
            "%2F".repeat(2000),
            format!("a{}", "%2F".repeat(2000)),
            format!("ab{}", "%2F".repeat(2000)),
        ] {
            let capped = cap_encoded(value.as_bytes(), 100);
            assert!(capped.len() <= 100, "{}", capped.len());
            let text = String::from_utf8(capped).expect("ascii");
            let body = text.strip_suffix("%20%E2%80%A6").expect("marked");
            // Every % starts a whole escape.
            for (i, _) in body.match_indices('%') {
                assert!(i + 2 < body.len(), "split escape in {body}");
            }
        }
    }
}
