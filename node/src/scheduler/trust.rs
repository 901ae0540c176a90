//! Workers a job no longer trusts: one that returned a result whose
//! frames are not the source (`worker::fidelity`) gets no more shards of
//! that job, and its copies still running for it are cancelled. Kept per
//! job by its driver, in memory: a new master starts with a clean slate
//! and checks every result again anyway.
//!
//! Not the shard's failure count: a forger excluded at once cannot fail
//! a job by forging, and the master (whose own encodes are not compared)
//! always remains to run the shard.

use std::collections::HashSet;

use super::decide::WorkerView;

#[derive(Debug, Default)]
pub struct Untrusted {
    workers: HashSet<String>,
}

impl Untrusted {
    /// Takes `worker` out of the job; true the first time.
    pub fn mark(&mut self, worker: &str) -> bool {
        self.workers.insert(worker.to_string())
    }

    pub fn contains(&self, worker: &str) -> bool {
        self.workers.contains(worker)
    }

    /// Shows untrusted workers to `decide` as gone: it gives them
    /// nothing and cancels what they run for this job (pure).
    pub fn hide(&self, workers: &mut [WorkerView]) {
        for view in workers.iter_mut().filter(|w| self.contains(&w.id)) {
            view.alive = false;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scheduler::decide::{CopyView, Decision, Policy, ShardView, decide};

    fn worker(id: &str, score: f32) -> WorkerView {
        WorkerView {
            id: id.into(),
            alive: true,
            free_slots: 1,
            score,
            able: true,
            bundles: false,
        }
    }

    #[test]
    fn an_untrusted_worker_gets_nothing_and_its_copies_stop() {
        let mut untrusted = Untrusted::default();
        assert!(untrusted.mark("forger"));
        assert!(!untrusted.mark("forger"), "marked once");
        // The forger has the best score and runs shard 1.
        let mut workers = vec![worker("forger", 0.0), worker("master", 40.0)];
        untrusted.hide(&mut workers);
        let shards = [
            ShardView {
                index: 0,
                frames: 300,
                done: false,
                running: Vec::new(),
                failed_on: Vec::new(),
                group: None,
            },
            ShardView {
                index: 1,
                frames: 200,
                done: false,
                running: vec![CopyView {
                    worker: "forger".into(),
                    elapsed_seconds: 1.0,
                    progress: 0.5,
                }],
                failed_on: Vec::new(),
                group: None,
            },
        ];
        let decisions = decide(&shards, &workers, None, Policy::default());
        assert!(decisions.contains(&Decision::Cancel {
            shard: 1,
            worker: "forger".into()
        }));
        assert!(decisions.contains(&Decision::Start {
            shard: 0,
            worker: "master".into(),
            duplicate: false
        }));
        assert!(
            !decisions
                .iter()
                .any(|d| matches!(d, Decision::Start { worker, .. } if worker == "forger")),
            "{decisions:?}"
        );
    }
}
