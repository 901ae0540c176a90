//! `Jobs.Link`: a signed URL to watch a ladder job over this node's
//! HTTP server (`--http-addr`), valid for a while.

use tonic::Status;
use vidshard_proto::v1::{LinkReply, LinkRequest};

use crate::cluster::Sys;
use crate::cluster::link_urls::Links;

/// A link's life when the caller names none: a day.
const DEFAULT_TTL_SECONDS: u64 = 24 * 3600;
/// The longest a link may live: 30 days.
const MAX_TTL_SECONDS: u64 = 30 * 24 * 3600;

/// How long a link asked for `ttl_seconds` lives (pure).
pub fn ttl(asked: u64) -> Result<u64, Status> {
    match asked {
        0 => Ok(DEFAULT_TTL_SECONDS),
        s if s <= MAX_TTL_SECONDS => Ok(s),
        s => Err(Status::invalid_argument(format!(
            "a link may live at most 30 days ({MAX_TTL_SECONDS} s), not {s} s"
        ))),
    }
}

pub fn link(sys: &Sys, links: &Links, request: LinkRequest) -> Result<LinkReply, Status> {
    let id = request.id;
    crate::ids::check_lookup(&id).map_err(|e| Status::invalid_argument(e.to_string()))?;
    let ttl = ttl(request.ttl_seconds)?;
    {
        let jobs = sys.jobs.lock();
        let job = jobs
            .get(&id)
            .ok_or_else(|| Status::not_found(format!("no job {id}")))?;
        if job.params.ladder.is_none() {
            return Err(Status::failed_precondition(format!(
                "job {id} is not a ladder job: it has one output file (vidshard retrieve), nothing to stream"
            )));
        }
    }
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let urls = links.urls(&id, now + ttl).ok_or_else(|| {
        Status::failed_precondition(
            "this node serves no HTTP: start it with --http-addr HOST:PORT (and a join token)",
        )
    })?;
    Ok(LinkReply {
        watch_url: urls.watch,
        hls_url: urls.hls,
        dash_url: urls.dash,
        dash_watch_url: urls.dash_watch,
        expires_unix: urls.expires_unix,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_live_a_day_unless_asked_and_never_past_30_days() {
        assert_eq!(ttl(0).expect("default"), 86_400);
        assert_eq!(ttl(60).expect("a minute"), 60);
        let long = ttl(31 * 86_400).expect_err("too long");
        assert_eq!(long.code(), tonic::Code::InvalidArgument);
    }
}
