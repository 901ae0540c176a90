//! What a request path asks for (pure). Paths are matched as sent, still
//! percent-encoded: every name we serve is plain ASCII, so anything
//! encoded, any `..` or empty segment, a job id `ids` would not have
//! handed out, or a rendition or segment name we never write is no page
//! at all. Nothing parsed here ever builds a file path: blobs are looked
//! up by the digest the job table records.

/// A bundled player script (`/assets/…`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Asset {
    Hls,
    Dash,
}

/// Which player the watch page loads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Player {
    Hls,
    Dash,
}

/// A job's player page, or a file of its package.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Item {
    /// The player page; `None`: whichever the job publishes (HLS first).
    Watch(Option<Player>),
    File(File),
}

/// A file of a job's package (under `/s/{grant}/v/{job}/`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum File {
    /// `master.m3u8`
    Master,
    /// `manifest.mpd`
    Mpd,
    /// `{rendition}/media.m3u8`
    Media(String),
    /// `{rendition}/init.mp4`
    Init(String),
    /// `{rendition}/{n}.m4s`
    Segment(String, usize),
}

/// A path we serve.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    Asset(Asset),
    /// `/s/{grant}/…`: the grant is checked by the caller.
    Package {
        grant: String,
        job: String,
        item: Item,
    },
}

/// Longest rendition name accepted (ours are like `1080p`, `audio-2`).
const MAX_RENDITION: usize = 32;
/// Most digits in a segment number (a billion segments is plenty).
const MAX_SEGMENT_DIGITS: usize = 9;

/// The route of `path` (no query) and `query` (no `?`), or `None` (404).
pub fn parse(path: &str, query: Option<&str>) -> Option<Route> {
    let rest = path.strip_prefix('/')?;
    let parts: Vec<&str> = rest.split('/').collect();
    match parts.as_slice() {
        ["assets", "hls.min.js"] => Some(Route::Asset(Asset::Hls)),
        ["assets", "dash.all.min.js"] => Some(Route::Asset(Asset::Dash)),
        ["s", grant, tail @ ..] if !grant.is_empty() => {
            let (job, item) = package_item(tail, query)?;
            Some(Route::Package {
                grant: grant.to_string(),
                job: job.to_string(),
                item,
            })
        }
        _ => None,
    }
}

fn package_item<'a>(tail: &[&'a str], query: Option<&str>) -> Option<(&'a str, Item)> {
    let (job, item) = match tail {
        ["watch", job] => (*job, Item::Watch(player(query)?)),
        ["v", job, "master.m3u8"] => (*job, Item::File(File::Master)),
        ["v", job, "manifest.mpd"] => (*job, Item::File(File::Mpd)),
        ["v", job, rendition, name] if is_rendition(rendition) => {
            let r = rendition.to_string();
            let file = match *name {
                "media.m3u8" => File::Media(r),
                "init.mp4" => File::Init(r),
                name => File::Segment(r, segment_number(name.strip_suffix(".m4s")?)?),
            };
            (*job, Item::File(file))
        }
        _ => return None,
    };
    is_job_id(job).then_some((job, item))
}

/// A job id exactly as `ids::sanitize` hands them out (so no `/`, no
/// `..`, no leading dot, nothing encoded) and one `ids` would look up.
pub fn is_job_id(id: &str) -> bool {
    crate::ids::check_lookup(id).is_ok() && crate::ids::sanitize(id).as_deref() == Some(id)
}

/// `[a-z0-9-]+`, as the packager names renditions.
pub fn is_rendition(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_RENDITION
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

/// A plain decimal as our playlists write it: digits only, no sign, no
/// leading zero, at most [`MAX_SEGMENT_DIGITS`].
fn segment_number(text: &str) -> Option<usize> {
    let plain = !text.is_empty()
        && text.len() <= MAX_SEGMENT_DIGITS
        && text.bytes().all(|b| b.is_ascii_digit())
        && (text == "0" || !text.starts_with('0'));
    plain.then(|| text.parse().ok()).flatten()
}

/// The page's `player=` choice; an unknown value is no page (`None`),
/// no choice is `Some(None)`.
fn player(query: Option<&str>) -> Option<Option<Player>> {
    let mut chosen = None;
    for pair in query.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        if key == "player" {
            chosen = Some(match value {
                "hls" => Player::Hls,
                "dash" => Player::Dash,
                _ => return None,
            });
        }
    }
    Some(chosen)
}

#[cfg(test)]
#[path = "route_tests.rs"]
mod tests;
