//! Job ids: turning a name that arrived over the network into a safe id.
//!
//! Ids never build a path (blobs are named by content hash), but they are
//! shown in logs, listings and terminals, so they are kept to a short,
//! printable alphabet anyway. Lookups use the id exactly as sent.

/// Longest id we hand out; longer requests are truncated.
pub const MAX_ID_LEN: usize = 64;

/// Longest id we even look up; anything longer is a malformed request.
pub const MAX_LOOKUP_LEN: usize = 1024;

/// Maps a requested id to a safe one: `[A-Za-z0-9._-]`, no leading dot or
/// dash, no `..`, at most [`MAX_ID_LEN`] characters. Returns `None` when
/// nothing usable is left (the caller then generates an id).
pub fn sanitize(requested: &str) -> Option<String> {
    let mapped: String = requested
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '_'
            }
        })
        .collect();
    let mut out = String::with_capacity(mapped.len());
    for c in mapped.chars() {
        if c == '.' && out.ends_with('.') {
            out.pop();
            out.push('_');
            continue;
        }
        out.push(c);
    }
    let trimmed = out.trim_start_matches(['.', '-', '_']);
    let mut id: String = trimmed.chars().take(MAX_ID_LEN).collect();
    while id.ends_with('.') {
        id.pop();
    }
    if id.is_empty() { None } else { Some(id) }
}

/// A fresh id for uploads that did not ask for one.
pub fn generate() -> String {
    let uuid = uuid::Uuid::new_v4().simple().to_string();
    format!("job-{}", &uuid[..12])
}

/// The first of `base`, `base-2`, `base-3`, ... for which `taken` is false,
/// kept within [`MAX_ID_LEN`].
pub fn unique(base: &str, taken: impl Fn(&str) -> bool) -> String {
    if !taken(base) {
        return base.to_string();
    }
    (2u64..)
        .map(|n| {
            let suffix = format!("-{n}");
            let keep = MAX_ID_LEN.saturating_sub(suffix.len());
            let stem: String = base.chars().take(keep).collect();
            format!("{stem}{suffix}")
        })
        .find(|candidate| !taken(candidate))
        .unwrap_or_else(generate)
}

/// Why a looked-up id cannot name any job.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BadId {
    #[error("empty video id")]
    Empty,
    #[error("video id of {0} bytes is longer than the {MAX_LOOKUP_LEN} allowed")]
    TooLong(usize),
    #[error("video id contains a NUL byte")]
    Nul,
}

/// Checks an id a client looks up (pure).
pub fn check_lookup(id: &str) -> Result<(), BadId> {
    if id.is_empty() {
        return Err(BadId::Empty);
    }
    if id.len() > MAX_LOOKUP_LEN {
        return Err(BadId::TooLong(id.len()));
    }
    if id.contains('\0') {
        return Err(BadId::Nul);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_ordinary_file_names() {
        assert_eq!(sanitize("clip.mp4").as_deref(), Some("clip.mp4"));
        assert_eq!(sanitize("My_Video-2").as_deref(), Some("My_Video-2"));
    }

    #[test]
    fn path_tricks_cannot_survive() {
        for evil in [
            "../../etc/passwd",
            "/etc/passwd",
            "a/../../b",
            "..",
            ".hidden",
            "a\0b",
        ] {
            let id = sanitize(evil).unwrap_or_default();
            assert!(!id.contains('/'), "{evil} -> {id}");
            assert!(!id.contains(".."), "{evil} -> {id}");
            assert!(!id.contains('\0'), "{evil} -> {id}");
            assert!(!id.starts_with('.'), "{evil} -> {id}");
        }
        assert_eq!(sanitize("../../etc/passwd").as_deref(), Some("etc_passwd"));
        assert_eq!(sanitize(".."), None);
        assert_eq!(sanitize(""), None);
        assert_eq!(sanitize("///"), None);
    }

    #[test]
    fn long_ids_are_bounded() {
        let long = "x".repeat(5000);
        assert_eq!(sanitize(&long).map(|s| s.len()), Some(MAX_ID_LEN));
        assert!(check_lookup(&long).is_err());
        assert!(check_lookup(&"y".repeat(100)).is_ok());
    }

    #[test]
    fn unique_appends_a_counter() {
        let taken = ["a", "a-2"];
        assert_eq!(unique("a", |c| taken.contains(&c)), "a-3");
        assert_eq!(unique("b", |c| taken.contains(&c)), "b");
        let long = "z".repeat(MAX_ID_LEN);
        let next = unique(&long, |c| c == long);
        assert_eq!(next.len(), MAX_ID_LEN);
        assert!(next.ends_with("-2"));
    }

    #[test]
    fn generated_ids_are_distinct_and_safe() {
        let a = generate();
        assert_ne!(a, generate());
        assert_eq!(sanitize(&a).as_deref(), Some(a.as_str()));
    }
}
