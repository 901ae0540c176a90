//! A ladder package saved into a directory (`retrieve ID --output DIR/`),
//! as text and JSON. Pure.

use serde_json::{Value, json};

use crate::format;
use crate::transfer::SavedPackage;

/// `{id, dir, files, bytes, already}`: `already` counts the files a
/// rerun found in place with the right sha256 and kept.
pub fn package_json(id: &str, saved: &SavedPackage) -> Value {
    json!({
        "id": id,
        "dir": saved.dir.display().to_string(),
        "files": saved.files,
        "bytes": saved.bytes,
        "already": saved.already,
    })
}

/// `saved N files (B bytes, 1.2 MiB) to DIR`, saying how many were
/// already there (a rerun resumes rather than downloads again).
pub fn package_text(saved: &SavedPackage) -> String {
    let mut out = format!(
        "saved {} files ({} bytes, {}) to {}",
        saved.files,
        saved.bytes,
        format::bytes(saved.bytes),
        saved.dir.display()
    );
    if saved.already > 0 {
        out.push_str(&format!(" ({} already there)", saved.already));
    }
    out.push('\n');
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    #[test]
    fn a_saved_package_says_where_how_much_and_what_was_kept() {
        let mut saved = SavedPackage {
            dir: PathBuf::from("out/"),
            files: 20,
            bytes: 3 << 20,
            already: 0,
        };
        assert_eq!(
            package_text(&saved),
            "saved 20 files (3145728 bytes, 3.0 MiB) to out/\n"
        );
        saved.already = 20;
        assert!(package_text(&saved).ends_with(" to out/ (20 already there)\n"));
        assert_eq!(
            package_json("job-1", &saved),
            json!({"id": "job-1", "dir": "out/", "files": 20, "bytes": 3 << 20, "already": 20})
        );
    }
}
