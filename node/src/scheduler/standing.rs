//! Where each job stands in the scheduling between jobs, for status
//! (`vidshard jobs`, `--json`, the console): its place in the order jobs
//! are served, its fair share of the slots and the slots it holds.
//! [`queue_positions`] is the pure rule; [`Scheduler::standings`] reads
//! the claims and the task board.

use std::collections::HashMap;

use super::Scheduler;
use super::fair::Claim;
use crate::jobs::JobTable;

/// One job's standing; all 0 for a job that has ended.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Standing {
    /// 1: served first.
    pub position: u32,
    pub share: u32,
    pub held: u32,
}

/// Standings of the jobs of a table, by id.
#[derive(Debug, Clone, Default)]
pub struct Standings(HashMap<String, Standing>);

impl Standings {
    pub fn of(&self, job: &str) -> Standing {
        self.0.get(job).copied().unwrap_or_default()
    }
}

/// The place of each unfinished job in the order jobs are served (pure):
/// the order of [`Claim::order_key`] (priority, then age), counted from 1.
pub fn queue_positions(active: &[Claim]) -> HashMap<String, u32> {
    let mut order: Vec<&Claim> = active.iter().collect();
    order.sort_by(|a, b| a.order_key().cmp(&b.order_key()));
    order
        .into_iter()
        .enumerate()
        .map(|(i, c)| (c.job.clone(), i as u32 + 1))
        .collect()
}

impl Scheduler {
    /// The standing of every job in `table` as this master sees it now.
    pub fn standings(&self, table: &JobTable) -> Standings {
        let active: Vec<Claim> = table
            .iter()
            .filter(|j| !j.status.is_final())
            .map(|j| Claim {
                job: j.id.clone(),
                wants: 0,
                weight: j.params.priority,
                created_ms: j.created_unix_ms,
            })
            .collect();
        let shares: HashMap<String, u32> = self
            .claims
            .all()
            .into_iter()
            .map(|(c, share)| (c.job, share))
            .collect();
        let held = self.board.held_by_jobs();
        let positions = queue_positions(&active);
        Standings(
            positions
                .into_iter()
                .map(|(job, position)| {
                    let standing = Standing {
                        position,
                        share: shares.get(&job).copied().unwrap_or(0),
                        held: held.get(&job).copied().unwrap_or(0),
                    };
                    (job, standing)
                })
                .collect(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claim(job: &str, weight: u32, created_ms: u64) -> Claim {
        Claim {
            job: job.into(),
            wants: 0,
            weight,
            created_ms,
        }
    }

    #[test]
    fn the_oldest_is_first_unless_another_has_a_higher_priority() {
        let active = [
            claim("film", 10, 1),
            claim("clip", 10, 5),
            claim("urgent", 20, 9),
        ];
        let positions = queue_positions(&active);
        assert_eq!(positions["urgent"], 1);
        assert_eq!(positions["film"], 2);
        assert_eq!(positions["clip"], 3);
        assert!(queue_positions(&[]).is_empty());
    }
}
