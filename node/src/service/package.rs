//! A ladder job's package over gRPC, so a client can save it whole
//! (`vidshard retrieve ID --output DIR/`) through the port it already
//! uses, without `--http-addr`: `Jobs.GetPackage` lists every file (the
//! manifests with their rendered text, the init and media segments by
//! sha256 and size), and `Jobs.Retrieve` with a `path` streams one init
//! or media segment. Any node answers from its own job table, the way
//! `http` does; a segment it lacks is fetched from the package's holders
//! first.
//!
//! The path a client sends is parsed against the names the packager
//! writes and only ever used to look a blob up in the record: it never
//! becomes a file path.

use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use futures::{Stream, StreamExt};
use sha2::{Digest, Sha256};
use tonic::Status;
use vidshard_proto::v1::{PackageFile, PackageListing, RetrieveChunk};

use crate::backups::Backups;
use crate::backups::serve::{Chunks, ServeError, from_offset};
use crate::cluster::Sys;
use crate::cluster::blob_stream::send_blob;
use crate::cluster::blobs::ensure_local;
use crate::ids;
use crate::jobs::JobRecord;
use crate::jobs::package::Package;
use crate::store::BlobRef;
use crate::streaming::{dash, hls};

/// Longest a call waits for a segment from another node (bounds a hung
/// holder; the client retries through another node).
const FETCH_TIMEOUT: Duration = Duration::from_secs(60);
/// Longest rendition name accepted (ours are like `1080p`, `audio-2`).
const MAX_RENDITION: usize = 32;
/// Most digits in a segment number (a billion segments is plenty).
const MAX_SEGMENT_DIGITS: usize = 9;

/// A blob file of a package, as `Retrieve` names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PackagePath {
    /// `{rendition}/init.mp4`
    Init(String),
    /// `{rendition}/{n}.m4s`
    Segment(String, usize),
}

/// Parses `{rendition}/init.mp4` or `{rendition}/{n}.m4s` (pure): a
/// rendition `[a-z0-9-]+`, `n` a plain decimal (no sign, no leading
/// zero). Anything else, `..` and encodings included, is refused with
/// the reason.
pub fn parse_path(path: &str) -> Result<PackagePath, String> {
    let refuse = || {
        format!(
            "{path:?} is not a file of a package: \
             `{{rendition}}/init.mp4` or `{{rendition}}/{{n}}.m4s` (manifests come with GetPackage)"
        )
    };
    let (rendition, name) = path.split_once('/').ok_or_else(refuse)?;
    if !is_rendition(rendition) {
        return Err(refuse());
    }
    if name == "init.mp4" {
        return Ok(PackagePath::Init(rendition.to_string()));
    }
    let number = name.strip_suffix(".m4s").ok_or_else(refuse)?;
    let plain = !number.is_empty()
        && number.len() <= MAX_SEGMENT_DIGITS
        && number.bytes().all(|b| b.is_ascii_digit())
        && (number == "0" || !number.starts_with('0'));
    match number.parse() {
        Ok(n) if plain => Ok(PackagePath::Segment(rendition.to_string(), n)),
        _ => Err(refuse()),
    }
}

/// `[a-z0-9-]+`, as the packager names renditions.
fn is_rendition(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_RENDITION
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

/// The ladder package of `job`, or why it has none to give.
fn package_of(job: &JobRecord) -> Result<&Package, Status> {
    let id = &job.id;
    match (&job.package, &job.params.ladder) {
        (Some(package), _) => Ok(package),
        (None, Some(_)) => Err(Status::failed_precondition(format!(
            "{id} is not playable yet: its renditions are not planned ({})",
            job.status.as_str()
        ))),
        (None, None) => Err(Status::failed_precondition(format!(
            "{id} is not a ladder job: it was encoded to one file (save it with `vidshard retrieve {id} --output FILE`)"
        ))),
    }
}

/// Every file of `job`'s package at `now_ms` (pure): the manifests it
/// publishes with their text, then each rendition's init and segments.
/// Refused until the package is playable, as HTTP refuses its manifests.
pub fn listing(job: &JobRecord, now_ms: u64) -> Result<PackageListing, Status> {
    let package = package_of(job)?;
    if !package.playable() {
        let why = if job.status.is_final() {
            format!(
                "not playable: the job ended ({}) before its first segments: {}",
                job.status.as_str(),
                job.message
            )
        } else {
            format!("not playable yet ({})", job.status.as_str())
        };
        return Err(Status::failed_precondition(format!("{}: {why}", job.id)));
    }
    let mut files = Vec::new();
    if package.packages.hls {
        files.push(text_file("master.m3u8", hls::master_playlist(package)));
    }
    if package.packages.dash {
        let since = package.first_playable_ms.unwrap_or(job.created_unix_ms);
        files.push(text_file("manifest.mpd", dash::mpd(package, now_ms, since)));
    }
    // Only renditions with an init segment: the manifests list no other.
    let listed = || package.renditions.iter().filter(|r| r.init.is_some());
    if package.packages.hls {
        for r in listed() {
            let text = hls::media_playlist(package, r);
            files.push(text_file(&format!("{}/media.m3u8", r.id), text));
        }
    }
    for r in listed() {
        let blobs = r.init.iter().map(|b| ("init.mp4".to_string(), b));
        let segments = r.segments.iter().enumerate();
        for (name, blob) in blobs.chain(segments.map(|(n, s)| (format!("{n}.m4s"), &s.blob))) {
            files.push(PackageFile {
                path: format!("{}/{name}", r.id),
                sha256: blob.sha256.clone(),
                size: blob.size,
                text: String::new(),
            });
        }
    }
    Ok(PackageListing {
        files,
        finished: package.finished,
    })
}

fn text_file(path: &str, text: String) -> PackageFile {
    PackageFile {
        path: path.to_string(),
        sha256: hex::encode(Sha256::digest(text.as_bytes())),
        size: text.len() as u64,
        text,
    }
}

/// `Jobs.GetPackage`: the listing of job `id` from this node's table.
pub fn get_package(sys: &Sys, id: &str) -> Result<PackageListing, Status> {
    ids::check_lookup(id).map_err(|e| Status::invalid_argument(e.to_string()))?;
    let jobs = sys.jobs.lock();
    let job = jobs
        .get(id)
        .ok_or_else(|| Status::not_found(format!("no job {id:?}")))?;
    listing(job, crate::jobs::now_unix_ms())
}

/// The blob `path` names in `job`'s package, and the nodes holding it.
fn find(job: &JobRecord, path: &PackagePath) -> Result<(BlobRef, Vec<String>), Status> {
    let package = package_of(job)?;
    let rendition_of = |r: &str| {
        package
            .rendition(r)
            .ok_or_else(|| Status::not_found(format!("{} has no rendition {r}", job.id)))
    };
    let blob = match path {
        PackagePath::Init(r) => rendition_of(r)?
            .init
            .clone()
            .ok_or_else(|| Status::not_found(format!("{r} has no init segment yet")))?,
        PackagePath::Segment(r, n) => {
            let rendition = rendition_of(r)?;
            let segment = rendition.segments.get(*n).ok_or_else(|| {
                Status::not_found(format!(
                    "segment {n} of {r} is not published ({} so far)",
                    rendition.segments.len()
                ))
            })?;
            segment.blob.clone()
        }
    };
    Ok((blob, package.holders.clone()))
}

pub type FileStream = Pin<Box<dyn Stream<Item = Result<RetrieveChunk, Status>> + Send>>;

/// `Jobs.Retrieve` with a `path`: that file of job `id`'s package from
/// byte `offset`, in ≤1 MiB chunks. The blob is pinned from before it is
/// fetched until the stream ends, so garbage collection cannot take it
/// from under the reader (a job deleted meanwhile).
pub async fn retrieve_file(
    sys: &Sys,
    backups: &Arc<Backups>,
    id: &str,
    path: &str,
    offset: u64,
) -> Result<FileStream, Status> {
    ids::check_lookup(id).map_err(|e| Status::invalid_argument(e.to_string()))?;
    let wanted = parse_path(path).map_err(Status::invalid_argument)?;
    let (blob, holders) = {
        let jobs = sys.jobs.lock();
        let job = jobs
            .get(id)
            .ok_or_else(|| Status::not_found(format!("no job {id:?}")))?;
        find(job, &wanted)?
    };
    let pin = sys.store.pin(&blob.sha256);
    match tokio::time::timeout(FETCH_TIMEOUT, ensure_local(sys, &blob, &holders)).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => {
            return Err(Status::unavailable(format!(
                "{path} of {id}: this node has no copy and none came from the package's holders: {}",
                sys.store.redact(&e.to_string())
            )));
        }
        Err(_) => {
            return Err(Status::unavailable(format!(
                "{path} of {id}: this node has no copy and the package's holders sent none within {}s",
                FETCH_TIMEOUT.as_secs()
            )));
        }
    }
    let file = sys
        .store
        .path(&blob.sha256)
        .map_err(super::errors::store_status)?;
    let chunks = send_blob(sys, file, blob.size, None).await?;
    let chunks: Chunks = Box::pin(chunks.map(|c| c.map_err(ServeError::from)));
    // The last chunk goes out only once the whole blob matched: a copy
    // damaged on this disk never reaches a client whole.
    let checked = backups.verified(chunks, blob, true, Some(pin));
    Ok(Box::pin(from_offset(checked, offset).map(|chunk| {
        chunk
            .map(|data| RetrieveChunk { data })
            .map_err(Status::from)
    })))
}

#[cfg(test)]
#[path = "package_tests.rs"]
mod tests;
