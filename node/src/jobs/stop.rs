//! Why one run of a job ended before it completed: paused (the job stays
//! unfinished for this or the next leader) or failed (a final status the
//! original client understands, with the reason recorded in the log).

use super::JobStatus;

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum JobStop {
    /// Not a failure of the job: this node stopped leading (or is
    /// stopping, or found no quorum for a write); the job is resumed
    /// here after a moment or by the next leader.
    #[error("paused: {0}")]
    Paused(String),
    /// The job failed for good. `reason` is the text users read in the
    /// job's status (it is replicated, so it is text by nature).
    #[error("{}: {reason}", status.as_str())]
    Failed { status: JobStatus, reason: String },
}

impl JobStop {
    pub fn failed(status: JobStatus, reason: impl Into<String>) -> Self {
        Self::Failed {
            status,
            reason: reason.into(),
        }
    }

    pub fn paused(reason: impl Into<String>) -> Self {
        Self::Paused(reason.into())
    }

    pub fn is_paused(&self) -> bool {
        matches!(self, Self::Paused(_))
    }

    /// The reason alone, as recorded in the job's status message.
    pub fn reason(&self) -> &str {
        match self {
            Self::Paused(reason) | Self::Failed { reason, .. } => reason,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_name_their_status_and_reason() {
        let failed = JobStop::failed(JobStatus::FailedSegmentation, "not a video");
        assert!(!failed.is_paused());
        assert_eq!(failed.reason(), "not a video");
        assert_eq!(failed.to_string(), "failed_segmentation: not a video");
        let paused = JobStop::paused("no quorum");
        assert!(paused.is_paused());
        assert_eq!(paused.reason(), "no quorum");
    }
}
