//! Reconnection policy, kept pure so it can be tested: how long to wait
//! before an attempt, and which node to try.
//!
//! The console follows the cluster rather than one address: after losing
//! its node it tries the last known master first, then the node it was
//! talking to, the address it was started with, and every other node the
//! last snapshot listed (alive ones first), round-robin.

use std::time::Duration;

use vidshard_proto::v1::ClusterSnapshot;

/// Wait before the first retry.
pub const FIRST: Duration = Duration::from_millis(500);
/// Longest wait between retries.
pub const CAP: Duration = Duration::from_secs(5);
/// Addresses remembered besides the live ones.
const KEEP: usize = 32;

/// Delay before retry number `attempt` (1-based): 0.5 s doubling to 5 s.
pub fn backoff(attempt: u32) -> Duration {
    let doublings = attempt.saturating_sub(1).min(16);
    FIRST.saturating_mul(1u32 << doublings).min(CAP)
}

/// Addresses the console knows about, learnt from snapshots.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddressBook {
    /// The `--node` addresses, always candidates (the first is tried
    /// first).
    seeds: Vec<String>,
    /// The address that last served a stream.
    last: Option<String>,
    master: Option<String>,
    alive: Vec<String>,
    /// Dead, or known from earlier snapshots only.
    others: Vec<String>,
}

impl AddressBook {
    /// `seed` is the `--node` value: one address or several,
    /// comma-separated.
    pub fn new(seed: &str) -> Self {
        let mut seeds = crate::client::node_list(seed);
        if seeds.is_empty() {
            seeds.push(seed.to_owned());
        }
        AddressBook {
            seeds,
            last: None,
            master: None,
            alive: Vec::new(),
            others: Vec::new(),
        }
    }

    /// Remembers who served `snap` (reached at `target`) and who it lists.
    /// Addresses seen before stay known (after the live ones): a node cut
    /// off from its master may list only itself. An empty master (an
    /// election under way) keeps the last known one.
    pub fn learn(&mut self, target: &str, snap: &ClusterSnapshot) {
        self.last = Some(target.to_owned());
        let master = snap.master_address.trim();
        if !master.is_empty() {
            self.master = Some(master.to_owned());
        }
        let listed = |alive: bool| -> Vec<String> {
            snap.nodes
                .iter()
                .filter(|n| n.alive == alive && !n.address.trim().is_empty())
                .map(|n| n.address.trim().to_owned())
                .collect()
        };
        let alive = listed(true);
        let mut others = listed(false);
        for old in self.alive.iter().chain(&self.others) {
            if !alive.contains(old) && !others.contains(old) {
                others.push(old.clone());
            }
        }
        others.truncate(KEEP);
        (self.alive, self.others) = (alive, others);
    }

    /// Candidates in order of preference, without duplicates.
    pub fn candidates(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        let ordered = self
            .master
            .iter()
            .chain(&self.last)
            .chain(&self.seeds)
            .chain(&self.alive)
            .chain(&self.others);
        for address in ordered {
            if !out.contains(address) {
                out.push(address.clone());
            }
        }
        out
    }

    /// The address for connection attempt `attempt`: 0 is the very first
    /// connection (the seed); retries 1, 2, … walk the candidates.
    pub fn pick(&self, attempt: u32) -> String {
        let first_seed = || self.seeds.first().cloned().unwrap_or_default();
        if attempt == 0 {
            return self.last.clone().unwrap_or_else(first_seed);
        }
        let candidates = self.candidates();
        let i = (attempt as usize - 1) % candidates.len().max(1);
        candidates.get(i).cloned().unwrap_or_else(first_seed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use vidshard_proto::v1::NodeEntry;

    #[test]
    fn backoff_doubles_from_half_a_second_to_five() {
        let ms: Vec<u128> = (1..=7).map(|a| backoff(a).as_millis()).collect();
        assert_eq!(ms, vec![500, 1000, 2000, 4000, 5000, 5000, 5000]);
        assert_eq!(backoff(0), FIRST);
        assert_eq!(backoff(u32::MAX), CAP);
    }

    fn node(address: &str, alive: bool) -> NodeEntry {
        NodeEntry {
            address: address.into(),
            alive,
            ..Default::default()
        }
    }

    #[test]
    fn retries_try_the_master_then_the_rest_of_the_cluster() {
        let mut book = AddressBook::new("seed:1");
        assert_eq!(book.pick(0), "seed:1");
        assert_eq!(book.pick(1), "seed:1");
        assert_eq!(book.pick(7), "seed:1", "only the seed is known");
        let snap = ClusterSnapshot {
            master_address: "a:1".into(),
            nodes: vec![node("a:1", true), node("c:1", false), node("b:1", true)],
            ..Default::default()
        };
        book.learn("b:1", &snap);
        assert_eq!(book.candidates(), vec!["a:1", "b:1", "seed:1", "c:1"]);
        assert_eq!(book.pick(0), "b:1");
        let tries: Vec<String> = (1..=5).map(|a| book.pick(a)).collect();
        assert_eq!(tries, vec!["a:1", "b:1", "seed:1", "c:1", "a:1"]);
    }

    #[test]
    fn every_node_given_is_tried_before_any_snapshot() {
        let book = AddressBook::new("a:1, b:1,c:1");
        assert_eq!(book.pick(0), "a:1");
        let tries: Vec<String> = (1..=4).map(|a| book.pick(a)).collect();
        assert_eq!(tries, vec!["a:1", "b:1", "c:1", "a:1"]);
    }

    #[test]
    fn a_new_master_is_tried_first() {
        let mut book = AddressBook::new("a:1");
        let snap = ClusterSnapshot {
            master_address: "b:1".into(),
            nodes: vec![node("a:1", false), node("b:1", true)],
            ..Default::default()
        };
        book.learn("a:1", &snap);
        assert_eq!(book.pick(1), "b:1");
        assert_eq!(book.pick(2), "a:1");
    }

    #[test]
    fn addresses_stay_known_when_a_snapshot_lists_fewer() {
        let mut book = AddressBook::new("a:1");
        let full = ClusterSnapshot {
            master_address: "a:1".into(),
            nodes: vec![node("a:1", true), node("b:1", true), node("c:1", true)],
            ..Default::default()
        };
        book.learn("a:1", &full);
        // c:1 cut off from the master: lists only itself, knows no master.
        let alone = ClusterSnapshot {
            nodes: vec![node("c:1", true)],
            ..Default::default()
        };
        book.learn("c:1", &alone);
        assert_eq!(book.candidates(), vec!["a:1", "c:1", "b:1"]);
    }
}
