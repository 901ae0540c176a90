//! The set of jobs a node knows, with unique id allocation.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{SystemTime, UNIX_EPOCH};

use super::eta::EtaEstimator;
use super::model::{JobRecord, JobStatus};
use crate::ids;
use crate::params::JobParams;
use crate::store::BlobRef;

pub fn now_unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

#[derive(Debug, Default, Clone, serde::Serialize, serde::Deserialize)]
pub struct JobTable {
    jobs: BTreeMap<String, JobRecord>,
    /// Blobs of deleted jobs (sha256 → deletion time), so every node's
    /// garbage collector knows them as garbage; kept a day.
    #[serde(default)]
    tombstones: BTreeMap<String, u64>,
}

/// How long a deleted job's blobs are remembered as garbage.
const TOMBSTONE_MS: u64 = 24 * 3_600_000;

impl JobTable {
    /// Accepts a stored upload as a new queued job. The id is the
    /// sanitised request (or a generated one), made unique: an existing
    /// job is never overwritten.
    /// Deterministic (a Raft command applies it on every node): the
    /// time comes from the caller and a missing id is derived from it.
    pub fn accept(
        &mut self,
        requested_id: &str,
        params: JobParams,
        source: BlobRef,
        source_holders: Vec<String>,
        now: u64,
    ) -> String {
        let base = ids::sanitize(requested_id).unwrap_or_else(|| format!("job-{now}"));
        let id = ids::unique(&base, |candidate| self.jobs.contains_key(candidate));
        self.jobs.insert(
            id.clone(),
            JobRecord {
                id: id.clone(),
                params,
                source,
                source_holders,
                status: JobStatus::Queued,
                message: "waiting to be split into shards".into(),
                summary: None,
                output_size: None,
                shards: Vec::new(),
                output: None,
                output_holders: Vec::new(),
                output_pending: Vec::new(),
                output_frames: 0,
                upload_key: String::new(),
                created_unix_ms: now,
                first_encode_unix_ms: 0,
                updated_unix_ms: now,
                timings: Default::default(),
                eta: EtaEstimator::default(),
                package: None,
            },
        );
        id
    }

    pub fn get(&self, id: &str) -> Option<&JobRecord> {
        self.jobs.get(id)
    }

    /// Changes a job and stamps its update time.
    pub fn update<R>(&mut self, id: &str, change: impl FnOnce(&mut JobRecord) -> R) -> Option<R> {
        self.update_at(id, now_unix_ms(), change)
    }

    /// Changes a job's in-memory-only fields, leaving its update time (the
    /// replicated one) alone.
    pub fn edit<R>(&mut self, id: &str, change: impl FnOnce(&mut JobRecord) -> R) -> Option<R> {
        self.jobs.get_mut(id).map(change)
    }

    /// Changes a job and stamps the given update time.
    pub fn update_at<R>(
        &mut self,
        id: &str,
        now: u64,
        change: impl FnOnce(&mut JobRecord) -> R,
    ) -> Option<R> {
        let job = self.jobs.get_mut(id)?;
        let result = change(job);
        job.updated_unix_ms = now;
        Some(result)
    }

    /// Sets the status and message of a job.
    pub fn set_status(&mut self, id: &str, status: JobStatus, message: impl Into<String>) {
        let message = message.into();
        self.update(id, |job| {
            job.status = status;
            job.message = message;
        });
    }

    /// Removes job `id`, remembering its blobs as garbage; answers
    /// whether it existed.
    pub fn remove(&mut self, id: &str, now: u64) -> bool {
        let Some(job) = self.jobs.remove(id) else {
            return false;
        };
        self.tombstones
            .retain(|_, at| now.saturating_sub(*at) < TOMBSTONE_MS);
        let shards = job
            .shards
            .iter()
            .flat_map(|s| std::iter::once(&s.source).chain(s.encoded.as_ref()));
        // A ladder's segments go with it too.
        let package = job.package.iter().flat_map(|p| p.blobs());
        for blob in std::iter::once(&job.source)
            .chain(job.output.as_ref())
            .chain(shards)
            .chain(package)
        {
            if !blob.sha256.is_empty() {
                self.tombstones.insert(blob.sha256.clone(), now);
            }
        }
        true
    }

    /// Blobs of recently deleted jobs.
    pub fn tombstones(&self) -> impl Iterator<Item = &str> {
        self.tombstones.keys().map(String::as_str)
    }

    /// Drops `node` from every holder list of the blob `sha256`; answers
    /// how many jobs changed.
    pub fn forget_holder(&mut self, sha256: &str, node: &str, now: u64) -> usize {
        let mut changed = 0;
        for job in self.jobs.values_mut() {
            let before = (
                job.source_holders.len(),
                job.output_holders.len(),
                job.shards.iter().map(|s| s.holders.len()).sum::<usize>(),
            );
            if job.source.sha256 == sha256 {
                job.source_holders.retain(|h| h != node);
            }
            if job.output.as_ref().is_some_and(|o| o.sha256 == sha256) {
                job.output_holders.retain(|h| h != node);
            }
            for shard in &mut job.shards {
                if shard.encoded.as_ref().is_some_and(|e| e.sha256 == sha256) {
                    shard.holders.retain(|h| h != node);
                }
            }
            let after = (
                job.source_holders.len(),
                job.output_holders.len(),
                job.shards.iter().map(|s| s.holders.len()).sum::<usize>(),
            );
            if before != after {
                job.updated_unix_ms = now;
                changed += 1;
            }
        }
        changed
    }

    pub fn len(&self) -> usize {
        self.jobs.len()
    }

    pub fn is_empty(&self) -> bool {
        self.jobs.is_empty()
    }

    /// Every job, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = &JobRecord> {
        self.jobs.values()
    }

    /// Jobs, oldest first.
    pub fn list(&self) -> Vec<&JobRecord> {
        let mut jobs: Vec<&JobRecord> = self.jobs.values().collect();
        jobs.sort_by_key(|j| (j.created_unix_ms, j.id.clone()));
        jobs
    }

    /// The job an upload retries: the same idempotency key, source (by
    /// sha256) and options, accepted within `window_ms` before `now`, not
    /// failed, and with the id asked for (when one is). A client whose
    /// upload broke before the acknowledgement sends it again to another
    /// node; it must get the job the first try made, not a second one.
    /// Only the key tells a retry from another upload of the same file:
    /// two people sending the same clip get two jobs (one deleting its job
    /// must not delete the other's). An empty `sha256` (a client that
    /// hashes while it sends announces it only in the trailer) leaves the
    /// key and the options to decide.
    pub fn repeat_of(
        &self,
        upload_key: &str,
        sha256: &str,
        params: &JobParams,
        requested_id: &str,
        now: u64,
        window_ms: u64,
    ) -> Option<&JobRecord> {
        let wanted_id = ids::sanitize(requested_id);
        self.jobs
            .values()
            .filter(|job| {
                !upload_key.is_empty()
                    && job.upload_key == upload_key
                    && (sha256.is_empty() || job.source.sha256 == sha256)
                    && job.params == *params
                    && now.saturating_sub(job.created_unix_ms) <= window_ms
                    && (job.status == JobStatus::Completed || !job.status.is_final())
                    && wanted_id.as_deref().is_none_or(|id| id == job.id)
            })
            .max_by_key(|job| job.created_unix_ms)
    }

    /// Jobs not yet completed or failed.
    pub fn active_count(&self) -> usize {
        self.jobs.values().filter(|j| !j.status.is_final()).count()
    }
}

/// The job table shared between the services and the pipeline. Critical
/// sections are short and never await.
#[derive(Debug, Clone, Default)]
pub struct SharedJobs(Arc<Mutex<JobTable>>);

impl SharedJobs {
    pub fn lock(&self) -> MutexGuard<'_, JobTable> {
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::params::RawParams;

    fn params() -> JobParams {
        RawParams {
            target_width: 320,
            target_height: 180,
            ..Default::default()
        }
        .validate()
        .expect("valid")
    }

    fn blob() -> BlobRef {
        BlobRef {
            sha256: "0".repeat(64),
            size: 1,
        }
    }

    #[test]
    fn taken_ids_get_a_new_unique_id() {
        let mut table = JobTable::default();
        let a = table.accept("clip.mp4", params(), blob(), vec![], 1);
        let b = table.accept("clip.mp4", params(), blob(), vec![], 1);
        assert_eq!(a, "clip.mp4");
        assert_eq!(b, "clip.mp4-2");
        assert_eq!(table.list().len(), 2);
    }

    #[test]
    fn empty_or_hostile_ids_are_replaced() {
        let mut table = JobTable::default();
        let generated = table.accept("", params(), blob(), vec![], 7);
        assert_eq!(generated, "job-7");
        let evil = table.accept("../../etc/passwd", params(), blob(), vec![], 8);
        assert_eq!(evil, "etc_passwd");
    }

    #[test]
    fn status_changes_are_visible_and_final_states_known() {
        let mut table = JobTable::default();
        let id = table.accept("x", params(), blob(), vec![], 9);
        assert_eq!(table.active_count(), 1);
        table.set_status(&id, JobStatus::Completed, "done");
        let job = table.get(&id).expect("exists");
        assert_eq!(job.status.as_str(), "completed");
        assert_eq!(job.progress(), 1.0);
        assert_eq!(table.active_count(), 0);
        assert!(JobStatus::ConcatenationFailed.is_final());
        assert!(!JobStatus::Processing.is_final());
    }

    #[test]
    fn a_repeated_upload_finds_its_job_and_nothing_else() {
        let mut table = JobTable::default();
        let sha = blob().sha256;
        let id = table.accept("", params(), blob(), vec![], 1_000);
        let window = 600_000;
        assert_eq!(
            table
                .repeat_of("k1", &sha, &params(), "", 2_000, window)
                .map(|j| j.id.clone()),
            None,
            "an upload without a key is nobody's retry"
        );
        table.update(&id, |job| job.upload_key = "k1".into());
        assert!(
            table
                .repeat_of("k2", &sha, &params(), "", 2_000, window)
                .is_none(),
            "another upload"
        );
        assert!(
            table
                .repeat_of("", &sha, &params(), "", 2_000, window)
                .is_none()
        );
        let found = |t: &JobTable, sha: &str, p: &JobParams, req: &str, now: u64| {
            t.repeat_of("k1", sha, p, req, now, window)
                .map(|j| j.id.clone())
        };
        assert_eq!(found(&table, &sha, &params(), "", 2_000), Some(id.clone()));
        assert_eq!(found(&table, &sha, &params(), "", 1_000 + window + 1), None);
        assert_eq!(found(&table, &"1".repeat(64), &params(), "", 2_000), None);
        assert_eq!(
            found(&table, "", &params(), "", 2_000),
            Some(id.clone()),
            "the sha256 is not known before the bytes: the key decides"
        );
        let mut other = params();
        other.crf = 30;
        assert_eq!(found(&table, &sha, &other, "", 2_000), None);
        assert_eq!(found(&table, &sha, &params(), "another-id", 2_000), None);
        assert_eq!(found(&table, &sha, &params(), &id, 2_000), Some(id.clone()));
        table.set_status(&id, JobStatus::ProcessingFailed, "broken");
        assert_eq!(found(&table, &sha, &params(), "", 2_000), None);
    }
}
