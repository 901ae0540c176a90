//! HTTP: ladder jobs' streaming packages served to browsers and players
//! from any node (`--http-addr`). A job's HLS playlists and DASH MPD are
//! rendered from its record in the replicated job table (`streaming`),
//! its segments come from the blob store (fetched from the package's
//! holders first when this node has no copy), and `/s/{grant}/watch/{id}`
//! is a player page with hls.js or dash.js, both built into the binary.
//!
//! Every package URL sits under a signed, expiring grant
//! (`cluster::links`), which the gRPC `Link` call hands out
//! (`cluster::link_urls::Links`, in `cluster` so `service` needs nothing
//! of this module). Layer 8 in docs/design.md's module map, beside
//! `service`: it uses `cluster`, `jobs`, `streaming`, `store`, `ids` and
//! `config`, and nothing uses it but `server`.
//!
//! The decisions are pure (`route`, `links`, `resolve`, `range`,
//! `policy`, `page`); `respond`, `fetch` and `listen` are the
//! async shell around them.

mod assets;
mod fetch;
mod listen;
mod page;
mod policy;
mod range;
mod resolve;
mod respond;
mod route;

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{Method, StatusCode};
use axum::response::Response;

pub use crate::cluster::link_urls::{LinkUrls, Links, http_base_url};
pub use crate::cluster::links::{self, grant, link_key, watch_path};
pub use listen::{ADDR_FILE, bind, serve};

use crate::cluster::Sys;
use policy::Kind;
use resolve::Answer;
use respond::{Ask, Representation, Source};
use route::Route;

/// What the request handler holds.
struct Http {
    sys: Sys,
    /// The link key; `None` on a node without a join token (every
    /// package URL is then refused, saying why).
    key: Option<[u8; 32]>,
    fetches: fetch::Fetches,
}

/// Every request: the method, then the route, then the grant, then the
/// job table, then the body.
async fn handle(State(http): State<Arc<Http>>, request: Request) -> Response {
    let method = request.method().clone();
    if method == Method::OPTIONS {
        return respond::preflight(StatusCode::NO_CONTENT);
    }
    if method != Method::GET && method != Method::HEAD {
        return respond::preflight(StatusCode::METHOD_NOT_ALLOWED);
    }
    let ask = Ask::of(&method, request.headers());
    let uri = request.uri();
    let Some(route) = route::parse(uri.path(), uri.query()) else {
        return respond::text(StatusCode::NOT_FOUND, "no such page", ask.head);
    };
    match route {
        Route::Asset(asset) => player_script(asset, &ask).await,
        Route::Package { grant, job, item } => {
            let now_ms = crate::jobs::now_unix_ms();
            if let Err(refused) = links::verify(http.key.as_ref(), &grant, &job, now_ms / 1000) {
                return respond::text(StatusCode::FORBIDDEN, &refused.to_string(), ask.head);
            }
            // Rendered under the lock (no await here), sent after it.
            let answer = {
                let jobs = http.sys.jobs.lock();
                resolve::resolve(jobs.get(&job), &job, &item, now_ms)
            };
            package_answer(&http, answer, &ask).await
        }
    }
}

async fn player_script(asset: route::Asset, ask: &Ask) -> Response {
    let (bytes, path) = assets::player(asset);
    let etag =
        assets::locked_sha256(path).map_or_else(|| policy::body_etag(bytes), policy::blob_etag);
    let cache = policy::cache_control(Kind::Script, true);
    if let Some(current) = respond::not_modified(ask, &etag, cache) {
        return current;
    }
    let body = Representation {
        source: Source::Bytes(axum::body::Bytes::from_static(bytes)),
        size: bytes.len() as u64,
        kind: Kind::Script,
        cache,
        etag,
    };
    respond::send(ask, body).await
}

async fn package_answer(http: &Http, answer: Answer, ask: &Ask) -> Response {
    match answer {
        Answer::NotFound(why) => respond::text(StatusCode::NOT_FOUND, &why, ask.head),
        Answer::Text {
            body,
            kind,
            finished,
        } => {
            let etag = policy::body_etag(body.as_bytes());
            let cache = policy::cache_control(kind, finished);
            if let Some(current) = respond::not_modified(ask, &etag, cache) {
                return current;
            }
            let size = body.len() as u64;
            let body = Representation {
                source: Source::Bytes(body.into()),
                size,
                kind,
                cache,
                etag,
            };
            respond::send(ask, body).await
        }
        Answer::Blob {
            blob,
            kind,
            holders,
        } => {
            // The tag is the content hash: a client's copy is checked
            // before this node looks for (or fetches) its own.
            let etag = policy::blob_etag(&blob.sha256);
            let cache = policy::cache_control(kind, true);
            if let Some(current) = respond::not_modified(ask, &etag, cache) {
                return current;
            }
            let (path, pin) =
                match fetch::local_copy(&http.sys, &http.fetches, &blob, &holders).await {
                    Ok(copy) => copy,
                    Err(why) => {
                        let mut response =
                            respond::text(StatusCode::SERVICE_UNAVAILABLE, &why, ask.head);
                        response.headers_mut().insert(
                            axum::http::header::RETRY_AFTER,
                            axum::http::HeaderValue::from_static("2"),
                        );
                        return response;
                    }
                };
            let body = Representation {
                source: Source::File { path, pin },
                size: blob.size,
                kind,
                cache,
                etag,
            };
            respond::send(ask, body).await
        }
    }
}
