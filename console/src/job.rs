//! What a job's status means: where a job stands from its original status
//! string ([`classify_status`]), how many of its shards are done, whether
//! it has an output worth showing, and its backup state.
//!
//! A leaf: pure functions of the proto structs, used by the client (to know
//! when to stop waiting), the renderings, the progress bars and the console.

use vidshard_proto::v1::JobInfo;

use crate::format;

/// Where a job stands, from its original status string.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobState {
    /// Done and retrievable.
    Completed,
    /// Finished without output.
    Failed,
    /// Still uploading, queued, segmenting, processing or concatenating.
    Working,
}

/// Classifies an original status string.
pub fn classify_status(status: &str) -> JobState {
    match status {
        "completed" => JobState::Completed,
        "failed_segmentation"
        | "failed_distribution"
        | "processing_failed"
        | "concatenation_failed"
        | "concatenation_prerequisites_failed"
        | "not_found"
        | "error" => JobState::Failed,
        _ => JobState::Working,
    }
}

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

/// A completed job's backup state as the master reports it.
pub fn backup_status(job: &JobInfo) -> Option<String> {
    format::backups(
        &job.output_sha256,
        &job.output_holders,
        &job.output_pending,
        job.output_replicas_wanted,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use vidshard_proto::v1::ShardInfo;

    #[test]
    fn statuses_are_classified() {
        assert_eq!(classify_status("completed"), JobState::Completed);
        for failed in [
            "failed_segmentation",
            "failed_distribution",
            "processing_failed",
            "concatenation_failed",
            "concatenation_prerequisites_failed",
            "not_found",
            "error",
        ] {
            assert_eq!(classify_status(failed), JobState::Failed, "{failed}");
        }
        for working in [
            "uploading",
            "queued",
            "segmenting",
            "processing",
            "concatenating",
        ] {
            assert_eq!(classify_status(working), JobState::Working, "{working}");
        }
    }

    #[test]
    fn shards_and_outputs_are_counted() {
        let shard = |state: &str| ShardInfo {
            state: state.into(),
            ..Default::default()
        };
        let mut job = JobInfo {
            status: "processing".into(),
            shards: vec![shard("done"), shard("encoding"), shard("done")],
            ..Default::default()
        };
        assert_eq!(shard_counts(&job), (2, 3));
        assert!(!has_output(&job));
        job.output_bytes = 10;
        assert!(has_output(&job));
        job.output_bytes = 0;
        job.status = "completed".into();
        assert!(has_output(&job));
    }
}
