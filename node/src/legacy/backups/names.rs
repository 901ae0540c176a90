//! Names from original masters (pure): video ids and containers are
//! checked here, and [`quoted`] makes any network string safe to show.
//! A video id is only ever a key of the index; no path is built from it,
//! but names that look like paths or hide characters are still refused so
//! an original master gets a clear answer instead of a surprise later.

use super::limits::{BackupError, BadVideoId, CONTAINERS, Limits, MAX_VIDEO_ID};

/// A network string for a message or log line: quoted and escaped
/// (control characters cannot reach a terminal), cut to 64 characters.
pub fn quoted(s: &str) -> String {
    let mut cut: String = s.chars().take(64).collect();
    if cut.len() < s.len() {
        cut.push('…');
    }
    format!("{cut:?}")
}

/// Why `video_id` cannot name a backup (pure).
pub fn validate_video_id(video_id: &str) -> Result<(), BadVideoId> {
    let shown = || quoted(video_id);
    if video_id.trim().is_empty() {
        return Err(BadVideoId::Empty(shown()));
    }
    if video_id.len() > MAX_VIDEO_ID {
        return Err(BadVideoId::TooLong(video_id.len()));
    }
    if video_id.contains('\0') {
        return Err(BadVideoId::Nul(shown()));
    }
    if video_id.chars().any(char::is_control) {
        return Err(BadVideoId::Control(shown()));
    }
    if video_id.contains(['/', '\\']) {
        return Err(BadVideoId::Separator(shown()));
    }
    if video_id == "." || video_id == ".." {
        return Err(BadVideoId::NotAName(shown()));
    }
    if video_id.starts_with('.') {
        return Err(BadVideoId::Hidden(shown()));
    }
    Ok(())
}

/// The container to record (pure): `container` if it is one of
/// [`CONTAINERS`] (any case); when empty, the video id's extension if it
/// is one, else mp4.
pub fn resolve_container(container: &str, video_id: &str) -> Result<&'static str, BackupError> {
    let known = |name: &str| {
        CONTAINERS
            .iter()
            .copied()
            .find(|c| c.eq_ignore_ascii_case(name))
    };
    let wanted = container.trim();
    if wanted.is_empty() {
        let from_id = video_id.rsplit_once('.').and_then(|(_, ext)| known(ext));
        return Ok(from_id.unwrap_or("mp4"));
    }
    known(wanted).ok_or_else(|| BackupError::BadContainer(quoted(container)))
}

/// Everything about a `ReplicateVideo` request that can be judged without
/// the disk (pure): the id, the container (returned) and the size.
pub fn validate_request(
    video_id: &str,
    container: &str,
    size: u64,
    limits: &Limits,
) -> Result<&'static str, BackupError> {
    validate_video_id(video_id).map_err(BackupError::BadId)?;
    let container = resolve_container(container, video_id)?;
    if size == 0 {
        return Err(BackupError::Empty);
    }
    if size > limits.max_video {
        return Err(BackupError::TooLarge {
            size,
            limit: limits.max_video,
        });
    }
    Ok(container)
}

#[cfg(test)]
mod tests {
    use super::super::limits::{MAX_BACKUP_VIDEO, small};
    use super::*;

    #[test]
    fn hostile_ids_are_refused_with_a_reason() {
        for (evil, why) in [
            ("../../x", "path separator"),
            ("/etc/passwd", "path separator"),
            ("a/b", "path separator"),
            ("a\\b", "path separator"),
            ("", "empty"),
            ("   ", "empty"),
            (".", "not a name"),
            ("..", "not a name"),
            (".hidden", "starts with '.'"),
            ("a\0b", "NUL"),
            ("a\nb", "control character"),
            ("a\u{1b}[2Jb", "control character"),
        ] {
            let reason = validate_video_id(evil).expect_err(evil).to_string();
            assert!(reason.contains(why), "{evil:?}: {reason}");
            assert!(!reason.contains('\0') && !reason.contains('\n'), "{reason}");
        }
        let long = "v".repeat(MAX_VIDEO_ID + 1);
        assert!(
            validate_video_id(&long)
                .expect_err("long")
                .to_string()
                .contains("256 bytes")
        );
    }

    #[test]
    fn ordinary_ids_pass() {
        for ok in [
            "clip.mp4",
            "My Video (2).mkv",
            "vidéo-1",
            "a..b",
            &"v".repeat(MAX_VIDEO_ID),
        ] {
            assert_eq!(validate_video_id(ok), Ok(()), "{ok}");
        }
    }

    #[test]
    fn containers_are_checked_or_derived() {
        assert_eq!(resolve_container("mkv", "x.mp4").ok(), Some("mkv"));
        assert_eq!(resolve_container(" WebM ", "x").ok(), Some("webm"));
        assert_eq!(resolve_container("", "clip.MOV").ok(), Some("mov"));
        assert_eq!(resolve_container("", "clip.avi").ok(), Some("mp4"));
        assert_eq!(resolve_container("", "clip").ok(), Some("mp4"));
        let refused = resolve_container("avi", "clip.mp4").expect_err("avi");
        assert!(
            refused.to_string().contains("mp4, mkv, webm, mov"),
            "{refused}"
        );
        assert!(resolve_container("../mp4", "x").is_err());
    }

    #[test]
    fn quoting_escapes_and_cuts() {
        assert_eq!(quoted("a\nb"), "\"a\\nb\"");
        assert_eq!(quoted(&"y".repeat(100)).chars().count(), 64 + 3);
    }

    #[test]
    fn requests_are_bounded() {
        let limits = small(10_000, 10_000);
        assert_eq!(validate_request("v.mkv", "", 10, &limits).ok(), Some("mkv"));
        assert!(matches!(
            validate_request("v", "", 0, &limits),
            Err(BackupError::Empty)
        ));
        let big = validate_request("v", "", 1001, &limits).expect_err("too big");
        assert!(matches!(
            big,
            BackupError::TooLarge {
                size: 1001,
                limit: 1000
            }
        ));
        assert!(matches!(
            validate_request("../x", "mp4", 10, &limits),
            Err(BackupError::BadId(_))
        ));
        let max = validate_request("v", "", MAX_BACKUP_VIDEO + 1, &Limits::DEFAULT)
            .expect_err("over the default");
        assert!(max.to_string().contains("1023.9 MiB"), "{max}");
    }
}
