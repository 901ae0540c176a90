//! Rendering of results: pure functions from the proto structs to plain text
//! (`text.rs`, a `String`) or JSON (`json.rs`, a `serde_json::Value`).
//! No I/O happens here; `main.rs` prints whichever the user asked for.

mod json;
mod text;

pub use json::{job_json, jobs_json, legacy_status_json, nodes_json, retrieve_json, upload_json};
pub use text::{job_text, jobs_text, legacy_status_text, nodes_text, saved_text};

use vidshard_proto::v1::JobInfo;

use crate::client::{JobState, classify_status};

/// Number of shards in state `done`, and the total.
pub fn shard_counts(job: &JobInfo) -> (usize, usize) {
    let done = job.shards.iter().filter(|s| s.state == "done").count();
    (done, job.shards.len())
}

/// Whether the job has an output worth showing.
pub fn has_output(job: &JobInfo) -> bool {
    classify_status(&job.status) == JobState::Completed
        || job.output_bytes > 0
        || !job.output_sha256.is_empty()
}

#[cfg(test)]
mod tests;
