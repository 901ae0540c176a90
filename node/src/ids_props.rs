//! Property tests of the id rules: whatever arrives over the network, a
//! sanitised id is short, printable and can never name a path, and making
//! it unique keeps those properties.

use proptest::prelude::*;

use crate::ids::{MAX_ID_LEN, MAX_LOOKUP_LEN, check_lookup, sanitize, unique};

fn safe(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= MAX_ID_LEN
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
        && !id.starts_with(['.', '-', '_'])
        && !id.contains("..")
        && !id.ends_with('.')
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn sanitised_ids_are_safe_whatever_arrives(requested in any::<String>()) {
        if let Some(id) = sanitize(&requested) {
            prop_assert!(safe(&id), "{requested:?} -> {id:?}");
        }
    }

    #[test]
    fn path_like_names_never_survive(
        parts in prop::collection::vec("[a-z./\\\\]{0,6}", 0..8),
    ) {
        let requested = parts.join("/");
        if let Some(id) = sanitize(&requested) {
            prop_assert!(safe(&id));
            prop_assert!(!id.contains('/') && !id.contains('\\'));
        }
    }

    #[test]
    fn unique_ids_stay_safe_and_differ_from_every_taken_one(
        requested in "[ -~]{0,100}",
        taken_count in 0usize..20,
    ) {
        let base = sanitize(&requested).unwrap_or_else(|| "job".into());
        let taken: Vec<String> = std::iter::once(base.clone())
            .chain((2..taken_count as u64 + 2).map(|n| format!("{base}-{n}")))
            .take(taken_count)
            .collect();
        let id = unique(&base, |c| taken.iter().any(|t| t == c));
        prop_assert!(safe(&id), "{id:?}");
        prop_assert!(!taken.contains(&id));
    }

    #[test]
    fn lookups_accept_or_refuse_without_panicking(id in any::<String>()) {
        let verdict = check_lookup(&id);
        if id.len() > MAX_LOOKUP_LEN || id.contains('\0') || id.is_empty() {
            prop_assert!(verdict.is_err());
        }
    }
}
