//! Backup decisions as pure functions: how many copies an output needs,
//! where the next ones go, and which blobs a node must keep.

use std::collections::HashSet;

use crate::jobs::JobRecord;

/// Copies wanted besides the master's: `--backup-replicas`, capped by
/// the other live nodes (a 2-node cluster can keep 1).
pub fn wanted(backup_replicas: u32, other_live_nodes: usize) -> usize {
    (backup_replicas as usize).min(other_live_nodes)
}

/// Live nodes that may receive a copy, best first: `--backup-servers`
/// (by address, in the order given) before the others, then by score.
pub fn rank_candidates(live: &[(String, String, f32)], preferred: &[String]) -> Vec<String> {
    let mut ranked: Vec<&(String, String, f32)> = live.iter().collect();
    let preference = |address: &str| {
        preferred
            .iter()
            .position(|p| p == address)
            .unwrap_or(usize::MAX)
    };
    ranked.sort_by(|a, b| {
        preference(&a.1)
            .cmp(&preference(&b.1))
            .then(a.2.total_cmp(&b.2))
            .then(a.0.cmp(&b.0))
    });
    ranked.into_iter().map(|(id, _, _)| id.clone()).collect()
}

/// The nodes to copy an output to now: enough of the ranked candidates
/// (not holding it yet) to bring the live copies besides `master` up to
/// `wanted`.
pub fn copies_to_make(
    holders: &[String],
    is_live: impl Fn(&str) -> bool,
    master: &str,
    candidates: &[String],
    wanted: usize,
) -> Vec<String> {
    let live_backups = holders
        .iter()
        .filter(|h| h.as_str() != master && is_live(h))
        .count();
    let missing = wanted.saturating_sub(live_backups);
    candidates
        .iter()
        .filter(|c| c.as_str() != master && !holders.contains(c))
        .take(missing)
        .cloned()
        .collect()
}

/// The blobs a node must keep, from the replicated job table: every
/// output; the source of a job still running, or ended less than
/// `keep_sources_ms` ago; the shards (split and encoded) of running jobs.
pub fn referenced<'a>(
    jobs: impl IntoIterator<Item = &'a JobRecord>,
    now_ms: u64,
    keep_sources_ms: u64,
) -> HashSet<String> {
    let mut keep = HashSet::new();
    for job in jobs {
        if let Some(output) = &job.output {
            keep.insert(output.sha256.clone());
        }
        // A ladder's segments are its output: kept while the job is.
        keep.extend(package_blobs(job));
        let running = !job.status.is_final();
        if running || now_ms.saturating_sub(job.updated_unix_ms) < keep_sources_ms {
            keep.insert(job.source.sha256.clone());
        }
        if running {
            for shard in &job.shards {
                keep.insert(shard.source.sha256.clone());
                if let Some(encoded) = &shard.encoded {
                    keep.insert(encoded.sha256.clone());
                }
            }
        }
    }
    keep.remove("");
    keep
}

/// The blobs of a ladder job's package (init and media segments).
fn package_blobs(job: &JobRecord) -> impl Iterator<Item = String> + '_ {
    job.package
        .iter()
        .flat_map(|p| p.blobs())
        .map(|b| b.sha256.clone())
}

/// Whether a blob this node is about to throw away (a job's
/// intermediates once it ended, a worker's input once encoded, a damaged
/// or late copy) is still needed by a job other than `owner` (pure).
/// Blobs are named by content, so two jobs can share one: the same
/// source, or two sources with a common beginning (a clip and its longer
/// take) split into identical shards. `shards_too`: whether running jobs'
/// shards count, which they do on the master (it keeps them; a worker's
/// copy of one is only its input).
pub fn needed_elsewhere<'a>(
    jobs: impl IntoIterator<Item = &'a JobRecord>,
    sha256: &str,
    owner: Option<&str>,
    shards_too: bool,
    now_ms: u64,
    keep_sources_ms: u64,
) -> bool {
    jobs.into_iter()
        .filter(|job| owner != Some(job.id.as_str()))
        .any(|job| {
            let whole = job.source.sha256 == sha256
                || job.output.as_ref().is_some_and(|o| o.sha256 == sha256)
                || package_blobs(job).any(|b| b == sha256);
            let shard = job.shards.iter().any(|s| {
                s.source.sha256 == sha256 || s.encoded.as_ref().is_some_and(|e| e.sha256 == sha256)
            });
            (whole || (shards_too && shard))
                && referenced([job], now_ms, keep_sources_ms).contains(sha256)
        })
}

/// Jobs whose record has outlived what is kept of it (pure): failed jobs
/// `keep_failed_ms` after they last changed, so a flood of failed uploads
/// does not stay in every listing for ever; completed jobs
/// `keep_completed_ms` after they ended, when set (`--keep-jobs`; never
/// by default: their outputs are what the cluster is for). The leader
/// deletes them, outputs and all.
pub fn expired_jobs<'a>(
    jobs: impl IntoIterator<Item = &'a JobRecord>,
    now_ms: u64,
    keep_failed_ms: u64,
    keep_completed_ms: Option<u64>,
) -> Vec<String> {
    jobs.into_iter()
        .filter(|job| job.status.is_final())
        .filter(|job| {
            let age = now_ms.saturating_sub(job.updated_unix_ms);
            match job.status {
                crate::jobs::JobStatus::Completed => keep_completed_ms.is_some_and(|k| age > k),
                _ => age > keep_failed_ms,
            }
        })
        .map(|job| job.id.clone())
        .collect()
}

/// Every blob the table mentions at all (sources, outputs, shards of any
/// job): a blob mentioned but not [`referenced`] is known garbage.
pub fn mentioned<'a>(jobs: impl IntoIterator<Item = &'a JobRecord>) -> HashSet<String> {
    let mut all = HashSet::new();
    for job in jobs {
        all.insert(job.source.sha256.clone());
        if let Some(output) = &job.output {
            all.insert(output.sha256.clone());
        }
        all.extend(package_blobs(job));
        for shard in &job.shards {
            all.insert(shard.source.sha256.clone());
            if let Some(encoded) = &shard.encoded {
                all.insert(encoded.sha256.clone());
            }
        }
    }
    all.remove("");
    all
}

/// Whether an unreferenced blob goes now (pure). Blobs are named by
/// content, so a blob an ended job mentions may have just been written
/// again for a running job whose command is not applied yet (the same
/// source encoded with the same settings gives the same shard bytes):
/// nothing younger than `fresh_s` goes. Past that, one the table
/// mentions, or mentioned at the last pass (its job ended or was
/// deleted), goes; one never seen mentioned only once older than
/// `min_age_s` (an upload or shard whose command is slow to apply).
pub fn collect_now(known: bool, age_s: f64, fresh_s: f64, min_age_s: f64) -> bool {
    age_s >= fresh_s && (known || age_s >= min_age_s)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    fn blob(n: u8) -> crate::store::BlobRef {
        crate::store::BlobRef {
            sha256: format!("{n:02x}").repeat(32),
            size: 1,
        }
    }

    fn test_params() -> crate::params::JobParams {
        crate::params::RawParams {
            target_width: 320,
            target_height: 180,
            ..Default::default()
        }
        .validate()
        .expect("valid")
    }

    #[test]
    fn copies_go_to_the_best_nodes_not_holding_one_until_enough_are_live() {
        let live = |n: &str| n != "dead";
        let candidates = ids(&["b", "c", "d"]);
        assert_eq!(
            copies_to_make(&ids(&["m"]), live, "m", &candidates, 2),
            ids(&["b", "c"])
        );
        assert_eq!(
            copies_to_make(&ids(&["m", "b"]), live, "m", &candidates, 2),
            ids(&["c"])
        );
        assert!(copies_to_make(&ids(&["m", "b", "c"]), live, "m", &candidates, 2).is_empty());
        // A dead holder does not count; its replacement is another node.
        assert_eq!(
            copies_to_make(&ids(&["m", "dead", "b"]), live, "m", &candidates, 2),
            ids(&["c"])
        );
        // A new master that holds no copy itself: backups still count.
        assert!(copies_to_make(&ids(&["old", "b", "c"]), live, "m", &candidates, 2).is_empty());
    }

    #[test]
    fn wanted_copies_are_capped_by_the_cluster() {
        assert_eq!(wanted(2, 5), 2);
        assert_eq!(wanted(2, 1), 1);
        assert_eq!(wanted(2, 0), 0);
        assert_eq!(wanted(0, 4), 0);
    }

    #[test]
    fn preferred_backup_servers_come_first_then_the_lowest_score() {
        let live = vec![
            ("a".to_string(), "h1:1".to_string(), 5.0),
            ("b".to_string(), "h2:1".to_string(), 1.0),
            ("c".to_string(), "h3:1".to_string(), 3.0),
        ];
        assert_eq!(rank_candidates(&live, &[]), ids(&["b", "c", "a"]));
        assert_eq!(
            rank_candidates(&live, &ids(&["h1:1"])),
            ids(&["a", "b", "c"])
        );
    }

    #[test]
    fn outputs_stay_sources_for_a_while_and_shards_only_while_running() {
        use crate::jobs::{Command, JobTable, apply};
        let params = test_params();
        let mut table = JobTable::default();
        let accept = Command::Accept {
            requested_id: "j".into(),
            upload_key: String::new(),
            params,
            source: blob(1),
            source_holders: vec![],
            at_ms: 0,
        };
        apply(&mut table, &accept);
        let running = referenced(table.list(), 1_000, 10_000);
        assert!(running.contains(&blob(1).sha256));
        let complete = Command::Complete {
            job: "j".into(),
            output: blob(2),
            frames: 1,
            holders: vec![],
            timings: Default::default(),
            message: String::new(),
            at_ms: 1_000,
        };
        apply(&mut table, &complete);
        let fresh = referenced(table.list(), 2_000, 10_000);
        assert!(fresh.contains(&blob(1).sha256) && fresh.contains(&blob(2).sha256));
        let later = referenced(table.list(), 20_000, 10_000);
        assert!(!later.contains(&blob(1).sha256), "the source expired");
        assert!(later.contains(&blob(2).sha256), "outputs stay");
        assert!(mentioned(table.list()).contains(&blob(1).sha256));
        // Completed jobs never expire; failed ones do once old.
        assert!(expired_jobs(table.list(), 1_000_000, 10_000, None).is_empty());
        assert!(expired_jobs(table.list(), 1_000_000, 10_000, Some(2_000_000)).is_empty());
        assert_eq!(
            expired_jobs(table.list(), 1_000_000, 10_000, Some(500_000)),
            vec![table.list()[0].id.clone()],
            "--keep-jobs expires completed jobs too"
        );
        let other = Command::Accept {
            requested_id: "f".into(),
            upload_key: String::new(),
            params: table.list()[0].params.clone(),
            source: blob(3),
            source_holders: vec![],
            at_ms: 0,
        };
        apply(&mut table, &other);
        let failed = Command::Status {
            job: "f".into(),
            status: crate::jobs::JobStatus::FailedSegmentation,
            message: "not a video".into(),
            at_ms: 2_000,
        };
        apply(&mut table, &failed);
        assert!(expired_jobs(table.list(), 5_000, 10_000, None).is_empty());
        assert_eq!(
            expired_jobs(table.list(), 20_000, 10_000, None),
            vec!["f".to_string()]
        );
    }

    #[test]
    fn unreferenced_blobs_go_at_once_only_if_they_were_referenced_before() {
        assert!(collect_now(true, 61.0, 60.0, 600.0));
        assert!(
            !collect_now(true, 0.5, 60.0, 600.0),
            "an ended job's shard just written again for a running job stays"
        );
        assert!(!collect_now(false, 10.0, 60.0, 600.0));
        assert!(!collect_now(false, 120.0, 60.0, 600.0));
        assert!(collect_now(false, 601.0, 60.0, 600.0));
    }

    /// Two jobs with different sources whose first shards are the same
    /// bytes (a clip and its longer take): the first to end must not
    /// take the other's shard with it (the chaos soak's lost job).
    #[test]
    fn a_shard_shared_with_a_running_job_is_needed_on_the_master_only() {
        use crate::jobs::{Command, JobTable, PlannedShard, SourceSummary, apply};
        let params = test_params();
        let mut table = JobTable::default();
        for (id, source) in [("short", 1), ("long", 2)] {
            let accept = Command::Accept {
                requested_id: id.into(),
                upload_key: String::new(),
                params: params.clone(),
                source: blob(source),
                source_holders: vec![],
                at_ms: 0,
            };
            apply(&mut table, &accept);
            let plan = Command::Plan {
                job: id.into(),
                summary: SourceSummary {
                    width: 320,
                    height: 180,
                    frames: 25,
                    duration_seconds: 1.0,
                    has_audio: false,
                },
                output_size: (320, 180),
                shards: vec![PlannedShard {
                    frames: 25,
                    start_seconds: 0.0,
                    duration_seconds: 1.0,
                    rung: None,
                }],
                message: String::new(),
                at_ms: 0,
                package: None,
            };
            apply(&mut table, &plan);
            table.update(id, |job| job.shards[0].source = blob(9));
        }
        let shard = blob(9).sha256;
        let needed = |table: &JobTable, owner, shards_too| {
            needed_elsewhere(table.list(), &shard, owner, shards_too, 1_000, 10_000)
        };
        assert!(needed(&table, Some("short"), true), "the long job runs");
        assert!(
            !needed(&table, Some("short"), false),
            "a worker's input copy"
        );
        let failed = Command::Status {
            job: "long".into(),
            status: crate::jobs::JobStatus::ProcessingFailed,
            message: "gave up".into(),
            at_ms: 1_000,
        };
        apply(&mut table, &failed);
        assert!(!needed(&table, Some("short"), true), "the long job ended");
        let source = blob(2).sha256;
        assert!(
            needed_elsewhere(table.list(), &source, None, false, 1_000, 10_000),
            "an ended job's source stays for --keep-sources"
        );
        assert!(!needed_elsewhere(
            table.list(),
            &source,
            Some("long"),
            false,
            1_000,
            10_000
        ));
    }
}
