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
    /// When the job was created: leftover slots go to the oldest first.
    pub created_ms: u64,
}

/// Max-min fair shares of `slots` (pure): one per claim, in order. No
/// job gets more than it wants; slots one job cannot use go to the
/// others; what does not divide evenly goes to the oldest jobs.
pub fn fair_shares(slots: u32, claims: &[Claim]) -> Vec<u32> {
    let mut shares = vec![0u32; claims.len()];
    let mut left = slots;
    let mut open: Vec<usize> = (0..claims.len()).filter(|&i| claims[i].wants > 0).collect();
    while left > 0 && !open.is_empty() {
        let each = left / open.len() as u32;
        if each == 0 {
            // Fewer slots than jobs still wanting: the oldest first.
            open.sort_by_key(|&i| (claims[i].created_ms, claims[i].job.clone()));
            for &i in open.iter().take(left as usize) {
                shares[i] += 1;
            }
            break;
        }
        let mut next = Vec::new();
        for &i in &open {
            let give = each.min(claims[i].wants - shares[i]);
            shares[i] += give;
            left -= give;
            if shares[i] < claims[i].wants {
                next.push(i);
            }
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

/// The claims of the jobs this master drives, shared by their drivers.
#[derive(Debug, Clone, Default)]
pub struct Claims(Arc<Mutex<HashMap<String, Claim>>>);

impl Claims {
    fn lock(&self) -> MutexGuard<'_, HashMap<String, Claim>> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Records `claim` and answers the job's share of `slots` now.
    pub fn share(&self, claim: Claim, slots: u32) -> u32 {
        let mut claims = self.lock();
        let job = claim.job.clone();
        claims.insert(job.clone(), claim);
        let mut list: Vec<Claim> = claims.values().cloned().collect();
        list.sort_by(|a, b| a.created_ms.cmp(&b.created_ms).then(a.job.cmp(&b.job)));
        let shares = fair_shares(slots, &list);
        list.iter()
            .zip(shares)
            .find(|(c, _)| c.job == job)
            .map_or(0, |(_, s)| s)
    }

    /// Forgets a job's claim (its driver ended).
    pub fn withdraw(&self, job: &str) {
        self.lock().remove(job);
    }

    /// Every claim with its share of `slots`, oldest job first (for
    /// status).
    pub fn all(&self, slots: u32) -> Vec<(Claim, u32)> {
        let mut list: Vec<Claim> = self.lock().values().cloned().collect();
        list.sort_by(|a, b| a.created_ms.cmp(&b.created_ms).then(a.job.cmp(&b.job)));
        let shares = fair_shares(slots, &list);
        list.into_iter().zip(shares).collect()
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
            created_ms,
        }
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
        assert_eq!(claims.all(4).len(), 1);
    }
}
