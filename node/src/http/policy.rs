//! What every answer says about itself (pure): its media type, how long
//! caches may keep it, its entity tag and whether a client's copy is
//! still good, and the CORS headers that let a player on another origin
//! read it.
//!
//! Segments and init segments are named by position in a job whose
//! timeline only grows, and their tag is their content's sha256, so they
//! are cached for a year without revalidation; manifests change while
//! the job runs (`no-cache`: revalidate every time, cheap with the tag)
//! and are kept five minutes once it finished.

use sha2::{Digest, Sha256};

/// What a body is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `master.m3u8`, `{rendition}/media.m3u8`.
    Playlist,
    Mpd,
    /// An init segment of a video (`true`) or audio rendition.
    Init {
        video: bool,
    },
    Segment,
    Script,
    Page,
    /// An error's one-line reason.
    Text,
}

/// The `Content-Type` of `kind`.
pub fn content_type(kind: Kind) -> &'static str {
    match kind {
        Kind::Playlist => "application/vnd.apple.mpegurl",
        Kind::Mpd => "application/dash+xml",
        Kind::Init { video: true } => "video/mp4",
        Kind::Init { video: false } => "audio/mp4",
        Kind::Segment => "video/iso.segment",
        Kind::Script => "text/javascript",
        Kind::Page => "text/html; charset=utf-8",
        Kind::Text => "text/plain; charset=utf-8",
    }
}

/// Never revalidated: the bytes behind the URL never change.
pub const IMMUTABLE: &str = "public, max-age=31536000, immutable";
/// Kept, but checked with the server before every use.
pub const REVALIDATE: &str = "no-cache";
/// A finished job's manifests.
pub const FINISHED_MANIFEST: &str = "public, max-age=300";
/// Errors: "not playable yet" must not outlive the moment it is true.
pub const NO_STORE: &str = "no-store";

/// The `Cache-Control` of a `kind` body of a job that is `finished` (or not).
pub fn cache_control(kind: Kind, finished: bool) -> &'static str {
    match kind {
        Kind::Init { .. } | Kind::Segment | Kind::Script => IMMUTABLE,
        Kind::Playlist | Kind::Mpd if finished => FINISHED_MANIFEST,
        Kind::Playlist | Kind::Mpd | Kind::Page => REVALIDATE,
        Kind::Text => NO_STORE,
    }
}

/// A blob's entity tag: its sha256, which is its content.
pub fn blob_etag(sha256: &str) -> String {
    format!("\"{sha256}\"")
}

/// A rendered body's entity tag: a hash of the body, so two nodes that
/// render the same manifest give the same tag.
pub fn body_etag(body: &[u8]) -> String {
    let digest = Sha256::digest(body);
    format!("\"{}\"", hex::encode(&digest[..16]))
}

/// Whether `If-None-Match` (every value of the header) matches `etag`, so
/// the answer is 304: `*` matches anything, otherwise any tag in the
/// comma-separated lists equal to ours by the weak comparison (§13.1.2
/// asks for it: `W/"x"` matches `"x"`).
pub fn none_match<'a>(if_none_match: impl IntoIterator<Item = &'a str>, etag: &str) -> bool {
    let ours = opaque(etag);
    if_none_match
        .into_iter()
        .flat_map(|value| value.split(','))
        .map(str::trim)
        .any(|tag| tag == "*" || (ours.is_some() && opaque(tag) == ours))
}

/// Whether a range request may be served as a range: no `If-Range`, or
/// one naming our tag exactly (§13.1.5 asks for the strong comparison,
/// so a weak tag or a date never matches: we keep no modification time).
pub fn if_range_allows(if_range: Option<&str>, etag: &str) -> bool {
    match if_range.map(str::trim) {
        None => true,
        Some(tag) => !tag.starts_with("W/") && tag == etag,
    }
}

/// A tag's quoted part without its weakness prefix, if it is a tag.
fn opaque(tag: &str) -> Option<&str> {
    let tag = tag.strip_prefix("W/").unwrap_or(tag);
    (tag.len() >= 2 && tag.starts_with('"') && tag.ends_with('"')).then_some(tag)
}

/// Headers on every answer: any origin may read it, and see the headers
/// a player needs for ranges and revalidation. Pages and manifests carry
/// the grant in their URL, so no referrer is sent on from them.
pub const COMMON: &[(&str, &str)] = &[
    ("access-control-allow-origin", "*"),
    (
        "access-control-expose-headers",
        "Content-Length, Content-Range, ETag",
    ),
    ("x-content-type-options", "nosniff"),
    ("referrer-policy", "no-referrer"),
];

/// Extra headers of the answer to a CORS preflight (`OPTIONS`).
pub const PREFLIGHT: &[(&str, &str)] = &[
    ("access-control-allow-methods", "GET, HEAD, OPTIONS"),
    (
        "access-control-allow-headers",
        "Range, If-None-Match, If-Range",
    ),
    ("access-control-max-age", "86400"),
    ("allow", "GET, HEAD, OPTIONS"),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn media_types_per_kind() {
        assert_eq!(
            content_type(Kind::Playlist),
            "application/vnd.apple.mpegurl"
        );
        assert_eq!(content_type(Kind::Mpd), "application/dash+xml");
        assert_eq!(content_type(Kind::Init { video: true }), "video/mp4");
        assert_eq!(content_type(Kind::Init { video: false }), "audio/mp4");
        assert_eq!(content_type(Kind::Segment), "video/iso.segment");
        assert_eq!(content_type(Kind::Script), "text/javascript");
        assert_eq!(content_type(Kind::Page), "text/html; charset=utf-8");
    }

    #[test]
    fn caching_per_kind_and_job_state() {
        for finished in [false, true] {
            assert_eq!(cache_control(Kind::Segment, finished), IMMUTABLE);
            assert_eq!(
                cache_control(Kind::Init { video: false }, finished),
                IMMUTABLE
            );
            assert_eq!(cache_control(Kind::Script, finished), IMMUTABLE);
            assert_eq!(cache_control(Kind::Page, finished), "no-cache");
            assert_eq!(cache_control(Kind::Text, finished), "no-store");
        }
        assert_eq!(cache_control(Kind::Playlist, false), "no-cache");
        assert_eq!(cache_control(Kind::Mpd, false), "no-cache");
        assert_eq!(cache_control(Kind::Playlist, true), "public, max-age=300");
        assert_eq!(cache_control(Kind::Mpd, true), "public, max-age=300");
        assert_eq!(IMMUTABLE, "public, max-age=31536000, immutable");
    }

    #[test]
    fn tags_are_quoted_content_hashes() {
        assert_eq!(
            blob_etag(&"ab".repeat(32)),
            format!("\"{}\"", "ab".repeat(32))
        );
        let tag = body_etag(b"#EXTM3U\n");
        assert_eq!(tag.len(), 34);
        assert_eq!(tag, body_etag(b"#EXTM3U\n"));
        assert_ne!(tag, body_etag(b"#EXTM3U\n#"));
    }

    #[test]
    fn if_none_match_forms() {
        let ours = "\"abc\"";
        assert!(none_match(["\"abc\""], ours));
        assert!(none_match(["W/\"abc\""], ours), "weak comparison");
        assert!(none_match(["*"], ours));
        assert!(none_match(["\"x\", \"abc\""], ours));
        assert!(none_match(["\"x\",W/\"abc\" , \"y\""], ours));
        assert!(none_match(["\"x\"", "\"abc\""], ours), "several headers");
        assert!(!none_match(["\"abcd\""], ours));
        assert!(!none_match(["abc"], ours), "unquoted is no tag");
        assert!(!none_match(["W/abc"], ours));
        assert!(!none_match(["\"ab\"c\""], ours));
        assert!(!none_match([""], ours));
        assert!(!none_match(Vec::<&str>::new(), ours));
        assert!(!none_match(["\""], "\""), "a lone quote is no tag");
    }

    #[test]
    fn if_range_needs_our_strong_tag() {
        let ours = "\"abc\"";
        assert!(if_range_allows(None, ours));
        assert!(if_range_allows(Some("\"abc\""), ours));
        assert!(!if_range_allows(Some("W/\"abc\""), ours));
        assert!(!if_range_allows(Some("\"other\""), ours));
        assert!(!if_range_allows(
            Some("Wed, 21 Oct 2015 07:28:00 GMT"),
            ours
        ));
    }

    #[test]
    fn cors_lets_players_read_ranges() {
        fn get(list: &[(&'static str, &'static str)], name: &str) -> Option<&'static str> {
            list.iter().find(|(n, _)| *n == name).map(|(_, v)| *v)
        }
        assert_eq!(get(COMMON, "access-control-allow-origin"), Some("*"));
        assert!(
            get(COMMON, "access-control-expose-headers")
                .is_some_and(|v| v.contains("Content-Range"))
        );
        assert!(
            get(PREFLIGHT, "access-control-allow-headers").is_some_and(|v| v.contains("Range"))
        );
        assert!(get(PREFLIGHT, "access-control-allow-methods").is_some_and(|v| v.contains("HEAD")));
    }
}
