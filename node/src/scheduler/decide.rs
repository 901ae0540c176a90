//! Which shard goes to which worker: a pure function of the job's shards
//! and the live workers, unit-tested without a network.
//!
//! Rules, in order:
//! 1. Copies running on a dead worker are cancelled; their shards are
//!    pending again at once (a death is not the shard's fault).
//! 2. Copies of a finished shard are cancelled (first verified result wins).
//! 3. A shard that failed [`Policy::max_failures`] times fails the job.
//! 4. Pending shards, longest first, go to the live worker with a free
//!    slot and the best (lowest) score among those able to encode them
//!    (their ffmpeg has the encoder, their build the features); a worker
//!    the shard already failed on gets it again only when every live,
//!    able worker has failed it.
//! 5. A pending ladder task placed on a worker that can run bundles,
//!    when no other able worker has a free slot left, takes its piece's
//!    other pending rungs along ([`Decision::Ride`]): one slot, one
//!    decode. Spreading them would gain nothing then (every slot is
//!    busy) and cost a decode each; while other workers are free, the
//!    rungs are spread instead, so a piece's rungs come out at once.
//! 6. With nothing pending left, a straggler (a single running copy whose
//!    estimated time left exceeds `straggler_factor` × a fresh run) is
//!    duplicated on an idle worker.

use std::collections::HashMap;

#[derive(Debug, Clone, PartialEq)]
pub struct WorkerView {
    pub id: String,
    pub alive: bool,
    pub free_slots: u32,
    pub score: f32,
    /// Whether it can encode this job's shards (`media::abilities`).
    pub able: bool,
    /// Whether it can run several rungs of a piece as one task
    /// (`Decision::Ride`).
    pub bundles: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct CopyView {
    pub worker: String,
    pub elapsed_seconds: f64,
    /// 0..=1 as reported by the worker.
    pub progress: f32,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ShardView {
    pub index: u32,
    pub frames: u64,
    pub done: bool,
    pub running: Vec<CopyView>,
    /// Workers on which this shard failed, one entry per failure.
    pub failed_on: Vec<String>,
    /// Tasks with the same group may run as one bundle (the rungs of a
    /// ladder piece: one source); None for a plain shard.
    pub group: Option<u32>,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Policy {
    pub max_failures: usize,
    pub straggler_factor: f64,
    /// Stragglers with less time left than this are left alone.
    pub straggler_min_seconds: f64,
}

impl Default for Policy {
    fn default() -> Self {
        Self {
            max_failures: 3,
            straggler_factor: 1.5,
            straggler_min_seconds: 2.0,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Decision {
    Start {
        shard: u32,
        worker: String,
        duplicate: bool,
    },
    /// Run `shard` inside the copy of `with` started just before, on
    /// the same worker and in its slot (same piece, another rung).
    Ride {
        shard: u32,
        worker: String,
        with: u32,
    },
    Cancel {
        shard: u32,
        worker: String,
    },
    FailJob {
        shard: u32,
    },
}

/// Picks the best free worker for a shard, never one in `busy_with`. A
/// worker the shard failed on is used only when every live worker has
/// failed it (better to wait for a slot elsewhere than to repeat a
/// failure); among the rest the lowest score wins, then the id.
fn pick(
    free: &HashMap<String, u32>,
    workers: &[WorkerView],
    avoid: &[String],
    busy_with: &[String],
) -> Option<String> {
    let untried_exists = workers
        .iter()
        .any(|w| w.alive && w.able && !avoid.contains(&w.id));
    workers
        .iter()
        .filter(|w| {
            w.alive
                && w.able
                && free.get(&w.id).copied().unwrap_or(0) > 0
                && !busy_with.contains(&w.id)
        })
        .filter(|w| !untried_exists || !avoid.contains(&w.id))
        .min_by(|a, b| a.score.total_cmp(&b.score).then(a.id.cmp(&b.id)))
        .map(|w| w.id.clone())
}

/// The pending tasks of `leader`'s group that ride along with it on
/// `worker` (rule 5): none unless the worker runs bundles and no other
/// able worker has a free slot; never one already placed or one that
/// failed on this worker.
fn riders(
    leader: &ShardView,
    worker: &str,
    pending: &[&ShardView],
    placed: &std::collections::HashSet<u32>,
    free: &HashMap<String, u32>,
    workers: &[WorkerView],
) -> Vec<u32> {
    let Some(group) = leader.group else {
        return Vec::new();
    };
    let bundles = workers.iter().any(|w| w.id == worker && w.bundles);
    let other_free = workers
        .iter()
        .any(|w| w.id != worker && w.alive && w.able && free.get(&w.id).copied().unwrap_or(0) > 0);
    if !bundles || other_free {
        return Vec::new();
    }
    pending
        .iter()
        .filter(|s| s.group == Some(group) && !placed.contains(&s.index))
        .filter(|s| !s.failed_on.iter().any(|w| w == worker))
        .map(|s| s.index)
        .collect()
}

/// Seconds a running copy still needs, if it can be told.
fn time_left(copy: &CopyView, frames: u64, seconds_per_frame: Option<f64>) -> Option<f64> {
    let p = f64::from(copy.progress);
    if p >= 0.05 {
        return Some(copy.elapsed_seconds * (1.0 - p) / p);
    }
    seconds_per_frame.map(|spf| (frames as f64 * spf - copy.elapsed_seconds).max(0.0))
}

/// Decides what to start and cancel now. `seconds_per_frame` is the
/// measured encode speed of finished shards (None before the first).
pub fn decide(
    shards: &[ShardView],
    workers: &[WorkerView],
    seconds_per_frame: Option<f64>,
    policy: Policy,
) -> Vec<Decision> {
    let alive = |id: &str| workers.iter().any(|w| w.id == id && w.alive);
    let mut free: HashMap<String, u32> = workers
        .iter()
        .filter(|w| w.alive)
        .map(|w| (w.id.clone(), w.free_slots))
        .collect();
    let mut decisions = Vec::new();
    let mut pending: Vec<&ShardView> = Vec::new();
    let mut live_copies: HashMap<u32, Vec<&CopyView>> = HashMap::new();

    for shard in shards {
        for copy in &shard.running {
            if shard.done || !alive(&copy.worker) {
                decisions.push(Decision::Cancel {
                    shard: shard.index,
                    worker: copy.worker.clone(),
                });
                if let Some(f) = free.get_mut(&copy.worker) {
                    *f += 1;
                }
            } else {
                live_copies.entry(shard.index).or_default().push(copy);
            }
        }
        if shard.done {
            continue;
        }
        if shard.failed_on.len() >= policy.max_failures {
            decisions.push(Decision::FailJob { shard: shard.index });
            return decisions;
        }
        if !live_copies.contains_key(&shard.index) {
            pending.push(shard);
        }
    }

    pending.sort_by(|a, b| b.frames.cmp(&a.frames).then(a.index.cmp(&b.index)));
    let mut unplaced = 0;
    let mut placed: std::collections::HashSet<u32> = std::collections::HashSet::new();
    for shard in &pending {
        if placed.contains(&shard.index) {
            continue;
        }
        match pick(&free, workers, &shard.failed_on, &[]) {
            Some(worker) => {
                if let Some(f) = free.get_mut(&worker) {
                    *f -= 1;
                }
                placed.insert(shard.index);
                let riders = riders(shard, &worker, &pending, &placed, &free, workers);
                decisions.push(Decision::Start {
                    shard: shard.index,
                    worker: worker.clone(),
                    duplicate: false,
                });
                for rider in riders {
                    placed.insert(rider);
                    decisions.push(Decision::Ride {
                        shard: rider,
                        worker: worker.clone(),
                        with: shard.index,
                    });
                }
            }
            None => unplaced += 1,
        }
    }
    if unplaced > 0 {
        return decisions;
    }

    // Stragglers: longest time left first, one duplicate per shard.
    let Some(spf) = seconds_per_frame else {
        return decisions;
    };
    let mut stragglers: Vec<(f64, &ShardView, Vec<String>)> = shards
        .iter()
        .filter(|s| !s.done)
        .filter_map(|s| {
            let copies = live_copies.get(&s.index)?;
            if copies.len() != 1 {
                return None;
            }
            let left = time_left(copies[0], s.frames, Some(spf))?;
            let fresh = s.frames as f64 * spf;
            (left > policy.straggler_factor * fresh && left > policy.straggler_min_seconds)
                .then(|| (left, s, copies.iter().map(|c| c.worker.clone()).collect()))
        })
        .collect();
    stragglers.sort_by(|a, b| b.0.total_cmp(&a.0));
    for (_, shard, running_on) in stragglers {
        if let Some(worker) = pick(&free, workers, &shard.failed_on, &running_on) {
            if let Some(f) = free.get_mut(&worker) {
                *f -= 1;
            }
            decisions.push(Decision::Start {
                shard: shard.index,
                worker,
                duplicate: true,
            });
        }
    }
    decisions
}

#[cfg(test)]
#[path = "decide_tests.rs"]
mod tests;
