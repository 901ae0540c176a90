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

/// The workers a decision may place copies on, and their free slots as
/// the decision spends them. Picks cost O(1) amortised for a shard that
/// failed nowhere (the common case), so a decision over 10,000 queued
/// shards and 1,000 workers stays well under a millisecond
/// (`benches/decide.rs`).
struct Placer<'a> {
    workers: &'a [WorkerView],
    /// Alive and able workers, best (lowest score, then id) first.
    ranked: Vec<usize>,
    /// Free slots by position in `workers` (0 for the dead).
    free: Vec<u32>,
    by_id: HashMap<&'a str, usize>,
    /// Every ranked worker before this one has no free slot left.
    cursor: usize,
    /// Free slots of the ranked workers, all together.
    free_left: u32,
}

impl<'a> Placer<'a> {
    fn new(workers: &'a [WorkerView]) -> Self {
        let mut ranked: Vec<usize> = (0..workers.len())
            .filter(|&i| workers[i].alive && workers[i].able)
            .collect();
        ranked.sort_by(|&a, &b| {
            workers[a]
                .score
                .total_cmp(&workers[b].score)
                .then(workers[a].id.cmp(&workers[b].id))
        });
        let free_left = ranked.iter().map(|&i| workers[i].free_slots).sum();
        Self {
            workers,
            ranked,
            free_left,
            free: workers
                .iter()
                .map(|w| if w.alive { w.free_slots } else { 0 })
                .collect(),
            by_id: workers
                .iter()
                .enumerate()
                .map(|(i, w)| (w.id.as_str(), i))
                .collect(),
            cursor: 0,
        }
    }

    fn alive(&self, id: &str) -> bool {
        self.by_id.get(id).is_some_and(|&i| self.workers[i].alive)
    }

    /// A slot of a cancelled copy is free again.
    fn give_back(&mut self, id: &str) {
        if let Some(&i) = self.by_id.get(id).filter(|&&i| self.workers[i].alive) {
            self.free[i] += 1;
            self.free_left += u32::from(self.workers[i].able);
            self.cursor = 0;
        }
    }

    /// Spends a slot of a worker `pick` answered.
    fn take(&mut self, i: usize) {
        self.free[i] -= 1;
        self.free_left -= 1;
    }

    /// The best free worker for a shard, never one in `busy_with`. A
    /// worker the shard failed on (`avoid`) is used only when every live,
    /// able worker has failed it (better to wait for a slot elsewhere
    /// than to repeat a failure); among the rest the lowest score wins,
    /// then the id.
    fn pick(&mut self, avoid: &[String], busy_with: &[String]) -> Option<usize> {
        while self
            .ranked
            .get(self.cursor)
            .is_some_and(|&i| self.free[i] == 0)
        {
            self.cursor += 1;
        }
        let id = |i: usize| &self.workers[i].id;
        if avoid.is_empty() && busy_with.is_empty() {
            return self.ranked.get(self.cursor).copied();
        }
        let untried_exists = self.ranked.iter().any(|&i| !avoid.contains(id(i)));
        self.ranked[self.cursor.min(self.ranked.len())..]
            .iter()
            .copied()
            .find(|&i| {
                self.free[i] > 0
                    && !busy_with.contains(id(i))
                    && (!untried_exists || !avoid.contains(id(i)))
            })
    }

    /// Whether an able worker other than `worker` has a free slot.
    fn other_free(&self, worker: usize) -> bool {
        self.ranked[self.cursor.min(self.ranked.len())..]
            .iter()
            .any(|&i| i != worker && self.free[i] > 0)
    }
}

/// The pending tasks of `leader`'s group that ride along with it on
/// `worker` (rule 5): none unless the worker runs bundles and no other
/// able worker has a free slot; never one already placed or one that
/// failed on this worker.
fn riders(
    leader: &ShardView,
    worker: usize,
    groups: &HashMap<u32, Vec<&ShardView>>,
    placed: &std::collections::HashSet<u32>,
    placer: &Placer,
) -> Vec<u32> {
    let Some(group) = leader.group else {
        return Vec::new();
    };
    if !placer.workers[worker].bundles || placer.other_free(worker) {
        return Vec::new();
    }
    let id = &placer.workers[worker].id;
    groups
        .get(&group)
        .into_iter()
        .flatten()
        .filter(|s| !placed.contains(&s.index))
        .filter(|s| !s.failed_on.iter().any(|w| w == id))
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
    let mut placer = Placer::new(workers);
    let mut decisions = Vec::new();
    let mut pending: Vec<&ShardView> = Vec::new();
    let mut live_copies: HashMap<u32, Vec<&CopyView>> = HashMap::new();

    for shard in shards {
        for copy in &shard.running {
            if shard.done || !placer.alive(&copy.worker) {
                decisions.push(Decision::Cancel {
                    shard: shard.index,
                    worker: copy.worker.clone(),
                });
                placer.give_back(&copy.worker);
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

    // Longest first, then by index; a heap, so a decision placing a few
    // shards among 10,000 queued ones does not sort them all.
    let order = |s: &ShardView| (s.frames, std::cmp::Reverse(s.index));
    let mut groups: HashMap<u32, Vec<&ShardView>> = HashMap::new();
    for shard in &pending {
        if let Some(group) = shard.group {
            groups.entry(group).or_default().push(shard);
        }
    }
    for members in groups.values_mut() {
        members.sort_by_key(|s| std::cmp::Reverse(order(s)));
    }
    let mut queue: std::collections::BinaryHeap<(u64, std::cmp::Reverse<u32>, usize)> = pending
        .iter()
        .enumerate()
        .map(|(i, s)| (s.frames, std::cmp::Reverse(s.index), i))
        .collect();
    let mut unplaced = 0;
    let mut placed: std::collections::HashSet<u32> = std::collections::HashSet::new();
    while let Some((_, _, i)) = queue.pop() {
        let shard = pending[i];
        if placed.contains(&shard.index) {
            continue;
        }
        if placer.free_left == 0 {
            // No slot anywhere: the rest waits.
            unplaced += 1;
            break;
        }
        match placer.pick(&shard.failed_on, &[]) {
            Some(worker) => {
                placer.take(worker);
                placed.insert(shard.index);
                let riders = riders(shard, worker, &groups, &placed, &placer);
                let worker = workers[worker].id.clone();
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
        if let Some(worker) = placer.pick(&shard.failed_on, &running_on) {
            placer.take(worker);
            decisions.push(Decision::Start {
                shard: shard.index,
                worker: workers[worker].id.clone(),
                duplicate: true,
            });
        }
    }
    decisions
}

#[cfg(test)]
#[path = "decide_tests.rs"]
mod tests;
