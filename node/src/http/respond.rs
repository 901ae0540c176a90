//! Turning a body and what the request asked about it into a response:
//! `If-None-Match` (304), `Range`/`If-Range` (206, 416), `HEAD` (the
//! headers of the `GET`, no body), and the headers every answer carries.
//! File bodies stream from disk in chunks of at most 1 MiB; nothing is
//! read whole into memory.

use std::io::SeekFrom;
use std::path::PathBuf;

use axum::body::{Body, Bytes};
use axum::http::header::{self, HeaderMap, HeaderName, HeaderValue};
use axum::http::{Method, StatusCode};
use axum::response::Response;
use futures::StreamExt as _;
use tokio::io::{AsyncReadExt as _, AsyncSeekExt as _};
use tokio_util::io::ReaderStream;

use super::policy::{self, Kind};
use super::range::{self, Span};
use crate::store::{BlobPin, CHUNK};

/// What of the request decides how a body is sent.
#[derive(Debug, Clone, Default)]
pub struct Ask {
    pub head: bool,
    pub range: Option<String>,
    pub if_range: Option<String>,
    pub if_none_match: Vec<String>,
}

impl Ask {
    pub fn of(method: &Method, headers: &HeaderMap) -> Self {
        let text = |name: HeaderName| {
            headers
                .get(&name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        };
        Self {
            head: method == Method::HEAD,
            range: text(header::RANGE),
            if_range: text(header::IF_RANGE),
            if_none_match: headers
                .get_all(header::IF_NONE_MATCH)
                .iter()
                .filter_map(|v| v.to_str().ok())
                .map(str::to_string)
                .collect(),
        }
    }

    /// Whether the client's copy tagged like ours is still good.
    pub fn has(&self, etag: &str) -> bool {
        policy::none_match(self.if_none_match.iter().map(String::as_str), etag)
    }
}

/// Where a body's bytes are.
pub enum Source {
    Bytes(Bytes),
    /// A blob file, pinned until the body has been sent.
    File {
        path: PathBuf,
        pin: BlobPin,
    },
}

/// A body with what the response says about it.
pub struct Representation {
    pub source: Source,
    pub size: u64,
    pub kind: Kind,
    pub cache: &'static str,
    pub etag: String,
}

/// `name: value` unless the value cannot be a header (never for ours).
fn set(headers: &mut HeaderMap, name: HeaderName, value: &str) {
    if let Ok(value) = HeaderValue::from_str(value) {
        headers.insert(name, value);
    }
}

fn bare(status: StatusCode, body: Body) -> Response {
    let mut response = Response::new(body);
    *response.status_mut() = status;
    for (name, value) in policy::COMMON {
        response
            .headers_mut()
            .insert(*name, HeaderValue::from_static(value));
    }
    response
}

/// A one-line text answer (errors): the reason, never cached.
pub fn text(status: StatusCode, reason: &str, head: bool) -> Response {
    let line = format!("{}\n", reason.lines().next().unwrap_or(""));
    let length = line.len();
    let mut response = bare(status, if head { Body::empty() } else { line.into() });
    let headers = response.headers_mut();
    set(
        headers,
        header::CONTENT_TYPE,
        policy::content_type(Kind::Text),
    );
    set(headers, header::CACHE_CONTROL, policy::NO_STORE);
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(length));
    response
}

/// The answer to a preflight, or to a method we do not serve.
pub fn preflight(status: StatusCode) -> Response {
    let mut response = bare(status, Body::empty());
    for (name, value) in policy::PREFLIGHT {
        response
            .headers_mut()
            .insert(*name, HeaderValue::from_static(value));
    }
    response
}

/// 304 if the client's copy is current.
pub fn not_modified(ask: &Ask, etag: &str, cache: &str) -> Option<Response> {
    if !ask.has(etag) {
        return None;
    }
    let mut response = bare(StatusCode::NOT_MODIFIED, Body::empty());
    set(response.headers_mut(), header::ETAG, etag);
    set(response.headers_mut(), header::CACHE_CONTROL, cache);
    Some(response)
}

/// The body whole (200), in part (206), or a 416; headers only for HEAD.
pub async fn send(ask: &Ask, body: Representation) -> Response {
    let span = if policy::if_range_allows(ask.if_range.as_deref(), &body.etag) {
        range::span(ask.range.as_deref(), body.size)
    } else {
        Span::Whole
    };
    if span == Span::Unsatisfiable {
        let mut response = text(
            StatusCode::RANGE_NOT_SATISFIABLE,
            &format!("range not satisfiable: the body has {} bytes", body.size),
            ask.head,
        );
        set(
            response.headers_mut(),
            header::CONTENT_RANGE,
            &range::unsatisfied_range(body.size),
        );
        return response;
    }
    let (first, length) = span.window(body.size);
    let payload = if ask.head {
        Body::empty()
    } else {
        match stream(body.source, first, length).await {
            Ok(payload) => payload,
            Err(e) => {
                tracing::warn!(error = %e, "http: cannot read a stored blob");
                return text(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "this node cannot read its copy",
                    false,
                );
            }
        }
    };
    let status = match span {
        Span::Part { .. } => StatusCode::PARTIAL_CONTENT,
        _ => StatusCode::OK,
    };
    let mut response = bare(status, payload);
    let headers = response.headers_mut();
    set(
        headers,
        header::CONTENT_TYPE,
        policy::content_type(body.kind),
    );
    set(headers, header::CACHE_CONTROL, body.cache);
    set(headers, header::ETAG, &body.etag);
    set(headers, header::ACCEPT_RANGES, "bytes");
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(length));
    if let Span::Part { first, last } = span {
        set(
            headers,
            header::CONTENT_RANGE,
            &range::content_range(first, last, body.size),
        );
    }
    response
}

/// `length` bytes from `first`: a slice of in-memory bytes, or the file
/// read in chunks of at most [`CHUNK`] with its pin held to the end.
async fn stream(source: Source, first: u64, length: u64) -> std::io::Result<Body> {
    match source {
        Source::Bytes(bytes) => {
            let start = usize::try_from(first)
                .unwrap_or(usize::MAX)
                .min(bytes.len());
            let end = usize::try_from(first.saturating_add(length))
                .unwrap_or(usize::MAX)
                .min(bytes.len());
            Ok(Body::from(bytes.slice(start..end)))
        }
        Source::File { path, pin } => {
            let mut file = tokio::fs::File::open(&path).await?;
            if first > 0 {
                file.seek(SeekFrom::Start(first)).await?;
            }
            let chunks = ReaderStream::with_capacity(file.take(length), CHUNK).map(move |chunk| {
                // Moved in, so the pin lasts as long as the stream.
                let _held = &pin;
                chunk
            });
            Ok(Body::from_stream(chunks))
        }
    }
}

#[cfg(test)]
#[path = "respond_tests.rs"]
mod tests;
