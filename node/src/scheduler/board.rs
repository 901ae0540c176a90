//! The master's board of running shard copies: which task runs where,
//! its latest progress, and how many copies each worker holds (so slots
//! are respected across all jobs at once). Progress arrives from local
//! encodes and from worker heartbeats through the same `report`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use crate::media::Progress;

#[derive(Debug, Clone)]
pub struct TaskEntry {
    pub job_id: String,
    pub shard: u32,
    pub worker_id: String,
    pub progress: Progress,
    /// Status reported by an original-protocol worker, if any.
    pub report: Option<String>,
    /// Whether it holds one of its worker's slots (not a bundle's rider).
    pub holds_slot: bool,
}

#[derive(Debug, Default)]
struct Inner {
    tasks: HashMap<String, TaskEntry>,
    assigned: HashMap<String, u32>,
}

#[derive(Debug, Clone, Default)]
pub struct TaskBoard(Arc<Mutex<Inner>>, Arc<tokio::sync::Notify>);

/// Removes its task from the board when dropped (finished, failed or
/// cancelled alike).
pub struct TaskGuard {
    board: TaskBoard,
    task_id: String,
    /// Whether the task holds one of its worker's slots (a rider in a
    /// bundle shares its leader's).
    holds_slot: bool,
}

impl Drop for TaskGuard {
    fn drop(&mut self) {
        let mut inner = self.board.lock();
        if let Some(entry) = inner.tasks.remove(&self.task_id)
            && self.holds_slot
            && let Some(n) = inner.assigned.get_mut(&entry.worker_id)
        {
            *n = n.saturating_sub(1);
        }
        drop(inner);
        if self.holds_slot {
            self.board.1.notify_waiters();
        }
    }
}

impl TaskBoard {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn register(&self, task_id: &str, job_id: &str, shard: u32, worker_id: &str) -> TaskGuard {
        self.register_task(task_id, job_id, shard, worker_id, true)
    }

    /// A task that runs in another task's slot (a rung riding in a
    /// bundle): on the board for its progress, not counted as busy.
    pub fn register_rider(
        &self,
        task_id: &str,
        job_id: &str,
        shard: u32,
        worker_id: &str,
    ) -> TaskGuard {
        self.register_task(task_id, job_id, shard, worker_id, false)
    }

    fn register_task(
        &self,
        task_id: &str,
        job_id: &str,
        shard: u32,
        worker_id: &str,
        holds_slot: bool,
    ) -> TaskGuard {
        let mut inner = self.lock();
        inner.tasks.insert(
            task_id.to_string(),
            TaskEntry {
                job_id: job_id.into(),
                shard,
                worker_id: worker_id.into(),
                progress: Progress::default(),
                report: None,
                holds_slot,
            },
        );
        if holds_slot {
            *inner.assigned.entry(worker_id.to_string()).or_default() += 1;
        }
        TaskGuard {
            board: self.clone(),
            task_id: task_id.to_string(),
            holds_slot,
        }
    }

    /// Woken whenever a task gives its slot back (another job's driver
    /// may now take it).
    pub fn slot_freed(&self) -> tokio::sync::futures::Notified<'_> {
        self.1.notified()
    }

    /// Slots the copies of job `job_id` hold, on every worker.
    pub fn held_by_job(&self, job_id: &str) -> u32 {
        self.lock()
            .tasks
            .values()
            .filter(|t| t.holds_slot && t.job_id == job_id)
            .count() as u32
    }

    /// Slots held per job (see [`Self::held_by_job`]), for every job
    /// holding any.
    pub fn held_by_jobs(&self) -> std::collections::HashMap<String, u32> {
        let mut held = std::collections::HashMap::new();
        for t in self.lock().tasks.values().filter(|t| t.holds_slot) {
            *held.entry(t.job_id.clone()).or_insert(0) += 1;
        }
        held
    }

    /// Records progress of a task; returns the task if it is known.
    pub fn report(&self, task_id: &str, progress: Progress) -> Option<TaskEntry> {
        let mut inner = self.lock();
        let entry = inner.tasks.get_mut(task_id)?;
        entry.progress = progress;
        Some(entry.clone())
    }

    /// Records an original worker's `ReportWorkerShardStatus`; false for
    /// tasks this master does not know (late or foreign reports).
    pub fn record_report(&self, task_id: &str, status: &str) -> bool {
        let mut inner = self.lock();
        match inner.tasks.get_mut(task_id) {
            Some(entry) => {
                entry.report = Some(status.to_string());
                true
            }
            None => false,
        }
    }

    pub fn report_of(&self, task_id: &str) -> Option<String> {
        self.lock()
            .tasks
            .get(task_id)
            .and_then(|t| t.report.clone())
    }

    pub fn progress(&self, task_id: &str) -> Progress {
        self.lock()
            .tasks
            .get(task_id)
            .map(|t| t.progress)
            .unwrap_or_default()
    }

    /// Frames per second of every copy running now, summed.
    pub fn total_fps(&self) -> f64 {
        self.lock()
            .tasks
            .values()
            .fold(0.0, |sum, t| sum + t.progress.fps as f64)
    }

    /// Copies this master runs on `worker_id` right now.
    pub fn assigned(&self, worker_id: &str) -> u32 {
        self.lock().assigned.get(worker_id).copied().unwrap_or(0)
    }

    /// "job/index" of every copy on `worker_id`.
    pub fn shards_on(&self, worker_id: &str) -> Vec<String> {
        let mut list: Vec<String> = self
            .lock()
            .tasks
            .values()
            .filter(|t| t.worker_id == worker_id)
            .map(|t| format!("{}/{}", t.job_id, t.shard))
            .collect();
        list.sort();
        list
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guards_release_slots_and_forget_tasks() {
        let board = TaskBoard::default();
        let a = board.register("t1", "job", 0, "w1");
        let b = board.register("t2", "job", 1, "w1");
        assert_eq!(board.assigned("w1"), 2);
        let p = Progress {
            frames: 10,
            fps: 5.0,
        };
        assert_eq!(board.report("t1", p).map(|e| e.shard), Some(0));
        assert_eq!(board.progress("t1"), p);
        assert_eq!(board.shards_on("w1"), vec!["job/0", "job/1"]);
        drop(a);
        assert_eq!(board.assigned("w1"), 1);
        assert!(board.report("t1", p).is_none());
        drop(b);
        assert_eq!(board.assigned("w1"), 0);
    }
}
