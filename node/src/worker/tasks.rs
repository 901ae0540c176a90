//! Shard tasks this node runs for a master, with their latest progress,
//! reported back in every heartbeat.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use vidshard_proto::v1::TaskProgress;

use crate::media::Progress;

#[derive(Debug, Clone, Default)]
pub struct WorkerTasks(Arc<Mutex<HashMap<String, Progress>>>);

/// Forgets its task when dropped (done, failed or cancelled).
pub struct RunningTask {
    tasks: WorkerTasks,
    task_id: String,
}

impl RunningTask {
    pub fn report(&self, progress: Progress) {
        self.tasks.lock().insert(self.task_id.clone(), progress);
    }
}

impl Drop for RunningTask {
    fn drop(&mut self) {
        self.tasks.lock().remove(&self.task_id);
    }
}

impl WorkerTasks {
    fn lock(&self) -> MutexGuard<'_, HashMap<String, Progress>> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn start(&self, task_id: &str) -> RunningTask {
        self.lock().insert(task_id.to_string(), Progress::default());
        RunningTask {
            tasks: self.clone(),
            task_id: task_id.to_string(),
        }
    }

    /// Frames per second of the tasks running here, summed.
    pub fn total_fps(&self) -> f64 {
        self.lock().values().fold(0.0, |sum, p| sum + p.fps as f64)
    }

    /// How many tasks are running now.
    pub fn running(&self) -> usize {
        self.lock().len()
    }

    pub fn progress_reports(&self) -> Vec<TaskProgress> {
        let mut reports: Vec<TaskProgress> = self
            .lock()
            .iter()
            .map(|(id, p)| TaskProgress {
                task_id: id.clone(),
                frames_done: p.frames,
                fps: p.fps,
            })
            .collect();
        reports.sort_by(|a, b| a.task_id.cmp(&b.task_id));
        reports
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn running_tasks_are_reported_until_dropped() {
        let tasks = WorkerTasks::default();
        let t = tasks.start("t1");
        t.report(Progress {
            frames: 42,
            fps: 7.5,
        });
        let reports = tasks.progress_reports();
        assert_eq!(reports.len(), 1);
        assert_eq!(
            (reports[0].task_id.as_str(), reports[0].frames_done),
            ("t1", 42)
        );
        drop(t);
        assert!(tasks.progress_reports().is_empty());
    }
}
