//! Pages of the job list: newest first, filtered by state, resumed after
//! the last job of the previous page (a token naming it, so jobs created
//! meanwhile do not shift the pages). Pure; the service cuts pages to
//! the message limit.

use super::model::{JobRecord, JobStatus};
use super::table::JobTable;

/// Which jobs a listing shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StateFilter {
    All,
    /// Not ended: queued, splitting, encoding or joining.
    Active,
    Completed,
    /// Any failure status.
    Failed,
    /// Exactly this status.
    Status(JobStatus),
}

impl StateFilter {
    /// Reads the wire's `state` (case-insensitive); the error names the
    /// words that work.
    pub fn parse(text: &str) -> Result<Self, String> {
        let text = text.trim().to_ascii_lowercase();
        match text.as_str() {
            "" | "all" => Ok(Self::All),
            "active" | "running" => Ok(Self::Active),
            "failed" => Ok(Self::Failed),
            other => JobStatus::ALL
                .iter()
                .find(|s| s.as_str() == other)
                .map(|s| match s {
                    JobStatus::Completed => Self::Completed,
                    s => Self::Status(*s),
                })
                .ok_or_else(|| {
                    let names: Vec<&str> = JobStatus::ALL.iter().map(|s| s.as_str()).collect();
                    format!(
                        "unknown job state {other:?}: use active, completed, failed or one of {}",
                        names.join(", ")
                    )
                }),
        }
    }

    pub fn matches(self, job: &JobRecord) -> bool {
        match self {
            Self::All => true,
            Self::Active => !job.status.is_final(),
            Self::Completed => job.status == JobStatus::Completed,
            Self::Failed => job.status.is_final() && job.status != JobStatus::Completed,
            Self::Status(status) => job.status == status,
        }
    }
}

/// Where a page resumes: the creation time and id of the last job listed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageToken {
    pub created_ms: u64,
    pub id: String,
}

impl PageToken {
    pub fn after(job: &JobRecord) -> Self {
        Self {
            created_ms: job.created_unix_ms,
            id: job.id.clone(),
        }
    }

    pub fn encode(&self) -> String {
        format!("{}.{}", self.created_ms, self.id)
    }

    /// `None` for an empty token (the first page).
    pub fn parse(text: &str) -> Result<Option<Self>, String> {
        if text.is_empty() {
            return Ok(None);
        }
        let bad = || format!("page token {text:?} is not one this node gave out");
        let (created, id) = text.split_once('.').ok_or_else(bad)?;
        let created_ms = created.parse().map_err(|_| bad())?;
        Ok(Some(Self {
            created_ms,
            id: id.to_string(),
        }))
    }

    /// Whether `job` comes after this token, newest first.
    fn precedes(&self, job: &JobRecord) -> bool {
        (job.created_unix_ms, job.id.as_str()) < (self.created_ms, self.id.as_str())
    }
}

/// One page of the listing.
#[derive(Debug)]
pub struct Page<'a> {
    /// Newest first.
    pub jobs: Vec<&'a JobRecord>,
    /// Jobs matching the filter, all pages together.
    pub matching: usize,
    /// Matching jobs after this page.
    pub after: usize,
}

/// The jobs of `table` matching `filter`, newest first, that come after
/// `token`, at most `limit` (0: no limit).
pub fn page<'a>(
    table: &'a JobTable,
    filter: StateFilter,
    limit: usize,
    token: Option<&PageToken>,
) -> Page<'a> {
    let mut matching: Vec<&JobRecord> = table.iter().filter(|j| filter.matches(j)).collect();
    matching.sort_by(|a, b| {
        (b.created_unix_ms, b.id.as_str()).cmp(&(a.created_unix_ms, a.id.as_str()))
    });
    let total = matching.len();
    let start = token.map_or(0, |t| matching.partition_point(|j| !t.precedes(j)));
    let end = match limit {
        0 => total,
        n => (start + n).min(total),
    };
    Page {
        jobs: matching[start..end].to_vec(),
        matching: total,
        after: total - end,
    }
}

#[cfg(test)]
#[path = "listing_tests.rs"]
mod tests;
