//! Fair sharing of the cluster's slots between the jobs running at once.
//! Each job's driver states its claim (how many tasks it could run right
//! now) and gets a max-min fair share of the live slots: a job that wants
//! fewer than an equal part gets all it wants, the rest is split among
//! the others. A driver starts copies only while it holds less than its
//! share, so a 10 s clip behind a 2-hour film gets a slot as soon as one
//! of the film's copies ends, instead of after the film (no copy is
//! stopped for it: the wait is at most one shard's encode).
//!
//! [`fair_shares`] is the pure rule; [`Claims`] the shared table the
//! drivers write and read; [`cap_free_slots`] fits one decision's view
//! of the workers to what the job may still start.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use super::decide::WorkerView;

/// One job's claim on the slots.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claim {
    pub job: String,
    /// Tasks it could run right now: running plus ready to start.
    pub wants: u32,
    /// Its priority weight (1..=100): shares are in proportion.
    pub weight: u32,
    /// When the job was created: leftover slots go to the oldest first.
    pub created_ms: u64,
}

impl Claim {
    /// The order jobs are served in (pure): higher priority first, then
    /// the oldest, then by id. Leftover slots go in this order, and the
    /// admission queue and `queue_position` follow it too.
    pub fn order_key(&self) -> (std::cmp::Reverse<u32>, u64, &str) {
        (std::cmp::Reverse(self.weight), self.created_ms, &self.job)
    }
}

/// Weighted max-min fair shares of `slots` (pure): one per claim, in
/// order. Shares are in proportion to the weights; no job gets more than
/// it wants; slots one job cannot use go to the others; what does not
/// divide evenly goes one by one in [`Claim::order_key`] order.
pub fn fair_shares(slots: u32, claims: &[Claim]) -> Vec<u32> {
    let mut shares = vec![0u32; claims.len()];
    let mut left = slots;
    let weight = |i: usize| u64::from(claims[i].weight.max(1));
    let mut open: Vec<usize> = (0..claims.len()).filter(|&i| claims[i].wants > 0).collect();
    while left > 0 && !open.is_empty() {
        let total: u64 = open.iter().map(|&i| weight(i)).sum();
        let mut given = 0;
        let mut next = Vec::new();
        for &i in &open {
            let fair = (u64::from(left) * weight(i) / total) as u32;
            let give = fair.min(claims[i].wants - shares[i]);
            shares[i] += give;
            given += give;
            if shares[i] < claims[i].wants {
                next.push(i);
            }
        }
        left -= given;
        if given == 0 {
            // Fewer slots than a whole share each: one by one, in order.
            next.sort_by(|&a, &b| claims[a].order_key().cmp(&claims[b].order_key()));
            for &i in next.iter().take(left as usize) {
                shares[i] += 1;
            }
            break;
        }
        open = next;
    }
    shares
}

/// Lowers the free slots `workers` show so that at most `budget` new
/// copies can be placed (pure): the best-scored workers keep theirs.
pub fn cap_free_slots(workers: &mut [WorkerView], budget: u32) {
    let mut order: Vec<usize> = (0..workers.len()).collect();
    order.sort_by(|&a, &b| {
        workers[a]
            .score
            .total_cmp(&workers[b].score)
            .then(workers[a].id.cmp(&workers[b].id))
    });
    let mut left = budget;
    for i in order {
        let w = &mut workers[i];
        if !w.alive || !w.able {
            continue;
        }
        w.free_slots = w.free_slots.min(left);
        left -= w.free_slots;
    }
}

/// The claims of the jobs this master drives, shared by their drivers,
/// and the live slots the latest of them counted.
#[derive(Debug, Clone, Default)]
pub struct Claims(Arc<Mutex<ClaimTable>>);

#[derive(Debug, Default)]
struct ClaimTable {
    claims: HashMap<String, Claim>,
    slots: u32,
}

impl ClaimTable {
    /// Every claim with its share, in [`Claim::order_key`] order.
    fn shares(&self) -> Vec<(Claim, u32)> {
        let mut list: Vec<Claim> = self.claims.values().cloned().collect();
        list.sort_by(|a, b| a.order_key().cmp(&b.order_key()));
        let shares = fair_shares(self.slots, &list);
        list.into_iter().zip(shares).collect()
    }
}

impl Claims {
    fn lock(&self) -> MutexGuard<'_, ClaimTable> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Records `claim` and answers the job's share of `slots` now.
    pub fn share(&self, claim: Claim, slots: u32) -> u32 {
        let mut table = self.lock();
        let job = claim.job.clone();
        table.claims.insert(job.clone(), claim);
        table.slots = slots;
        table
            .shares()
            .into_iter()
            .find(|(c, _)| c.job == job)
            .map_or(0, |(_, s)| s)
    }

    /// Forgets a job's claim (its driver ended).
    pub fn withdraw(&self, job: &str) {
        self.lock().claims.remove(job);
    }

    /// Every claim with its share of the slots last counted, in the
    /// order jobs are served (for status).
    pub fn all(&self) -> Vec<(Claim, u32)> {
        self.lock().shares()
    }
}

/// Withdraws a job's claim when its driver ends, however it ends.
pub struct ClaimGuard {
    pub claims: Claims,
    pub job: String,
}

impl Drop for ClaimGuard {
    fn drop(&mut self) {
        self.claims.withdraw(&self.job);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claim(job: &str, wants: u32, created_ms: u64) -> Claim {
        Claim {
            job: job.into(),
            wants,
            weight: 10,
            created_ms,
        }
    }

    fn weighted(job: &str, wants: u32, weight: u32, created_ms: u64) -> Claim {
        Claim {
            weight,
            ..claim(job, wants, created_ms)
        }
    }

    #[test]
    fn shares_follow_the_priorities() {
        let claims = [weighted("film", 700, 10, 1), weighted("urgent", 700, 20, 2)];
        assert_eq!(fair_shares(9, &claims), vec![3, 6]);
        assert_eq!(
            fair_shares(10, &claims),
            vec![3, 7],
            "the odd slot goes to the higher priority"
        );
        // Weight does not make a job take more than it wants.
        let claims = [weighted("film", 700, 1, 1), weighted("clip", 2, 100, 2)];
        assert_eq!(fair_shares(8, &claims), vec![6, 2]);
        // A heavy job waiting behind two light ones is served first.
        let claims = [
            weighted("a", 9, 1, 1),
            weighted("b", 9, 1, 2),
            weighted("c", 9, 50, 3),
        ];
        assert_eq!(fair_shares(1, &claims), vec![0, 0, 1]);
        assert_eq!(fair_shares(3, &claims), vec![0, 0, 3]);
        assert_eq!(fair_shares(12, &claims), vec![2, 1, 9]);
    }

    #[test]
    fn a_short_job_gets_what_it_wants_and_the_film_the_rest() {
        let claims = [claim("film", 700, 1), claim("clip", 1, 2)];
        assert_eq!(fair_shares(8, &claims), vec![7, 1]);
        let claims = [claim("film", 700, 1), claim("other", 700, 2)];
        assert_eq!(fair_shares(8, &claims), vec![4, 4]);
        assert_eq!(
            fair_shares(7, &claims),
            vec![4, 3],
            "the older gets the odd slot"
        );
    }

    #[test]
    fn slots_nobody_wants_stay_free_and_too_few_go_to_the_oldest() {
        let claims = [claim("a", 1, 5), claim("b", 2, 6)];
        assert_eq!(fair_shares(8, &claims), vec![1, 2]);
        let claims = [claim("young", 9, 9), claim("old", 9, 1), claim("mid", 9, 5)];
        assert_eq!(fair_shares(2, &claims), vec![0, 1, 1]);
        assert_eq!(fair_shares(0, &claims), vec![0, 0, 0]);
        assert_eq!(fair_shares(3, &[claim("idle", 0, 1)]), vec![0]);
    }

    #[test]
    fn three_jobs_split_evenly_after_the_small_one_is_served() {
        let claims = [claim("a", 100, 1), claim("b", 2, 2), claim("c", 100, 3)];
        assert_eq!(fair_shares(12, &claims), vec![5, 2, 5]);
    }

    fn worker(id: &str, free: u32, score: f32) -> WorkerView {
        WorkerView {
            id: id.into(),
            alive: true,
            free_slots: free,
            score,
            able: true,
            bundles: false,
        }
    }

    #[test]
    fn the_budget_keeps_the_best_workers_slots() {
        let mut workers = [worker("slow", 2, 90.0), worker("fast", 2, 10.0)];
        cap_free_slots(&mut workers, 3);
        assert_eq!(workers[1].free_slots, 2);
        assert_eq!(workers[0].free_slots, 1);
        cap_free_slots(&mut workers, 0);
        assert!(workers.iter().all(|w| w.free_slots == 0));
    }

    #[test]
    fn claims_answer_shares_and_forget_ended_jobs() {
        let claims = Claims::default();
        assert_eq!(claims.share(claim("film", 50, 1), 4), 4);
        assert_eq!(claims.share(claim("clip", 1, 2), 4), 1);
        assert_eq!(claims.share(claim("film", 50, 1), 4), 3);
        {
            let _guard = ClaimGuard {
                claims: claims.clone(),
                job: "clip".into(),
            };
        }
        assert_eq!(claims.share(claim("film", 50, 1), 4), 4);
        assert_eq!(claims.all().len(), 1);
    }
}
