//! Rendering of results: pure functions from the proto structs to plain text
//! (`text.rs`, a `String`) or JSON (`json.rs`, a `serde_json::Value`).
//! No I/O happens here; `main.rs` prints whichever the user asked for.
//!
//! Sits above `job.rs` (what a status means) and `transfer/` (whose
//! `Saved` result it reports); nothing below imports it.

mod json;
mod ladder;
mod package;
mod quality;
mod text;

pub use json::{job_json, jobs_json, legacy_status_json, nodes_json, retrieve_json, upload_json};
pub use ladder::rendition_lines;
pub use package::{package_json, package_text};
pub use quality::shard_quality_lines;
pub use text::{job_text, jobs_text, legacy_status_text, nodes_text, saved_text};

#[cfg(test)]
mod tests;
