//! What a package request gets (pure): from the job's record as this
//! node applied it, the rendered manifest or page, the blob to send, or
//! why there is none (a 404 with a sentence a person can act on).
//!
//! Manifests answer 404 "not playable yet: …" until every rendition has
//! its init segment and a first segment (`Package::playable`), so a
//! player never sees a manifest it cannot start from; the watch page
//! polls on exactly that prefix, and stops on any other 404 (a job that
//! failed before it became playable will never be).

use super::page;
use super::policy::Kind;
use super::route::{File, Item, Player};
use crate::jobs::JobRecord;
use crate::jobs::package::{Package, Packages};
use crate::store::BlobRef;
use crate::streaming::{dash, hls};

/// The answer to a request for a job's page or package file.
#[derive(Debug, Clone, PartialEq)]
pub enum Answer {
    /// A manifest or the page; `finished`: the job's package is final.
    Text {
        body: String,
        kind: Kind,
        finished: bool,
    },
    /// A blob of the package, fetched from `holders` if not stored here.
    Blob {
        blob: BlobRef,
        kind: Kind,
        holders: Vec<String>,
    },
    NotFound(String),
}

/// The prefix of every 404 that will turn into a manifest (the page
/// polls while it reads this).
pub const NOT_YET: &str = "not playable yet";

/// The answer for `item` of job `id`, whose record is `job`, at `now_ms`.
pub fn resolve(job: Option<&JobRecord>, id: &str, item: &Item, now_ms: u64) -> Answer {
    let Some(job) = job else {
        return Answer::NotFound(format!("no such video: {id}"));
    };
    let Some(packages) = published(job) else {
        return Answer::NotFound(format!(
            "{id} is not a ladder job: it was encoded to one file (download it with `vidshard retrieve`)"
        ));
    };
    match item {
        Item::Watch(asked) => watch(id, *asked, packages),
        Item::File(file) => match job.package.as_ref() {
            Some(package) => package_file(job, package, file, now_ms),
            None => Answer::NotFound(unplayable(job, "its renditions are not planned yet".into())),
        },
    }
}

/// The player page: the one asked for, else HLS if published, else DASH;
/// it links to the other player when that is published too.
fn watch(id: &str, asked: Option<Player>, packages: Packages) -> Answer {
    let player = asked.unwrap_or(if packages.hls {
        Player::Hls
    } else {
        Player::Dash
    });
    let other = match player {
        Player::Hls if packages.dash => Some(Player::Dash),
        Player::Dash if packages.hls => Some(Player::Hls),
        _ => None,
    };
    Answer::Text {
        body: page::render(id, player, other),
        kind: Kind::Page,
        finished: false,
    }
}

fn package_file(job: &JobRecord, package: &Package, file: &File, now_ms: u64) -> Answer {
    let id = job.id.as_str();
    let (hls_ok, dash_ok) = (package.packages.hls, package.packages.dash);
    match file {
        File::Master | File::Media(_) if !hls_ok => {
            Answer::NotFound(format!("{id} publishes no HLS playlists (DASH only)"))
        }
        File::Mpd if !dash_ok => {
            Answer::NotFound(format!("{id} publishes no DASH manifest (HLS only)"))
        }
        File::Master | File::Mpd | File::Media(_) if !package.playable() => {
            Answer::NotFound(unplayable(job, progress(package)))
        }
        File::Master => manifest(hls::master_playlist(package), Kind::Playlist, package),
        File::Mpd => {
            let since = package.first_playable_ms.unwrap_or(job.created_unix_ms);
            manifest(dash::mpd(package, now_ms, since), Kind::Mpd, package)
        }
        File::Media(r) => match package.rendition(r) {
            Some(rendition) => manifest(
                hls::media_playlist(package, rendition),
                Kind::Playlist,
                package,
            ),
            None => no_rendition(id, r),
        },
        File::Init(r) => match package.rendition(r) {
            Some(rendition) => match &rendition.init {
                Some(blob) => Answer::Blob {
                    blob: blob.clone(),
                    kind: Kind::Init {
                        video: rendition.is_video(),
                    },
                    holders: package.holders.clone(),
                },
                None => Answer::NotFound(format!("{r} has no init segment yet")),
            },
            None => no_rendition(id, r),
        },
        File::Segment(r, n) => match package.rendition(r) {
            Some(rendition) => match rendition.segments.get(*n) {
                Some(segment) => Answer::Blob {
                    blob: segment.blob.clone(),
                    kind: Kind::Segment,
                    holders: package.holders.clone(),
                },
                None => Answer::NotFound(format!(
                    "segment {n} of {r} is not published yet ({} so far)",
                    rendition.segments.len()
                )),
            },
            None => no_rendition(id, r),
        },
    }
}

/// Which manifests the job publishes: its package's choice, else (before
/// the package is planned) what it asked for; `None` for a plain job.
fn published(job: &JobRecord) -> Option<Packages> {
    match (&job.package, &job.params.ladder) {
        (Some(package), _) => Some(package.packages),
        (None, Some(ladder)) => Some(ladder.packages),
        (None, None) => None,
    }
}

fn manifest(body: String, kind: Kind, package: &Package) -> Answer {
    Answer::Text {
        body,
        kind,
        finished: package.finished,
    }
}

/// Why a job's manifests do not exist: "not playable yet: {why}" while it
/// runs, and a final reason once it ended without becoming playable.
fn unplayable(job: &JobRecord, why: String) -> String {
    if job.status.is_final() {
        format!(
            "not playable: the job ended ({}) before its first segments: {}",
            job.status.as_str(),
            job.message
        )
    } else {
        format!("{NOT_YET}: {why} (job {})", job.status.as_str())
    }
}

/// How far the package is from playable.
fn progress(package: &Package) -> String {
    let ready = package
        .renditions
        .iter()
        .filter(|r| r.init.is_some() && !r.segments.is_empty())
        .count();
    format!(
        "{ready} of {} renditions have their first segment",
        package.renditions.len()
    )
}

fn no_rendition(id: &str, r: &str) -> Answer {
    Answer::NotFound(format!("{id} has no rendition {r}"))
}

#[cfg(test)]
#[path = "resolve_tests.rs"]
mod tests;
