//! When a node compacts its Raft log into a snapshot. A snapshot is the
//! whole job table, so its cost grows with the table: built every 1,000
//! entries (openraft's fixed policy) a table of 100,000 jobs was
//! serialised over and over, overlapping builds took the writer's core
//! and over a gigabyte. Here a snapshot is due once the entries since the
//! last one reach half the table's jobs (at least 1,000): each entry then
//! pays a constant share of the snapshots, and the log kept between them
//! stays proportional to the state it rebuilds.

use std::time::Duration;

use super::types::Raft;
use crate::jobs::SharedJobs;

/// Entries between snapshots on a small table.
pub const LEAST_ENTRIES: u64 = 1_000;

/// Whether a snapshot is due (pure): `entries_since` applied entries
/// since the last snapshot, with `jobs` jobs in the table.
pub fn snapshot_due(entries_since: u64, jobs: usize) -> bool {
    entries_since >= LEAST_ENTRIES.max(jobs as u64 / 2)
}

/// Triggers snapshots when [`snapshot_due`] says so, every half second,
/// until the Raft instance shuts down (its metrics channel closes).
pub async fn run(raft: Raft, jobs: SharedJobs) {
    let metrics = raft.metrics();
    loop {
        tokio::time::sleep(Duration::from_millis(500)).await;
        if metrics.has_changed().is_err() {
            return;
        }
        let (applied, snapshot) = {
            let m = metrics.borrow();
            (
                m.last_applied.map_or(0, |l| l.index),
                m.snapshot.map_or(0, |l| l.index),
            )
        };
        let table = jobs.lock().len();
        if snapshot_due(applied.saturating_sub(snapshot), table)
            && let Err(e) = raft.trigger().snapshot().await
        {
            tracing::debug!(error = %e, "no snapshot: Raft is stopping");
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::snapshot_due;

    #[test]
    fn snapshots_come_every_thousand_entries_or_half_the_table() {
        assert!(!snapshot_due(999, 10));
        assert!(snapshot_due(1_000, 10));
        assert!(!snapshot_due(1_000, 100_000));
        assert!(!snapshot_due(49_999, 100_000));
        assert!(snapshot_due(50_000, 100_000));
    }
}
