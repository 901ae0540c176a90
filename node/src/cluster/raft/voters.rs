//! Which members vote (pure). An even number of voters tolerates no more
//! failures than one fewer, and a 2-voter cluster stops at the first
//! loss, so learners are promoted two at a time: 1, 3, 5 … up to the
//! configured maximum. Further nodes stay learners and still work.

use std::collections::BTreeSet;

use super::types::NodeId;

/// The learners to promote now, given the current voters and learners
/// (learners in a stable order: the longest-known first).
pub fn promotions(
    voters: &BTreeSet<NodeId>,
    learners: &[NodeId],
    max_voters: usize,
) -> BTreeSet<NodeId> {
    let max_voters = if max_voters.is_multiple_of(2) {
        max_voters.saturating_sub(1).max(1)
    } else {
        max_voters
    };
    let candidates: Vec<NodeId> = learners
        .iter()
        .filter(|id| !voters.contains(id))
        .copied()
        .collect();
    let mut count = voters.len();
    let mut taken = 0;
    // An even voter count (after a removal) is made odd with one learner.
    if count.is_multiple_of(2) && count < max_voters && taken < candidates.len() {
        taken += 1;
        count += 1;
    }
    while count + 2 <= max_voters && taken + 2 <= candidates.len() {
        taken += 2;
        count += 2;
    }
    candidates[..taken].iter().copied().collect()
}

/// What `vidshard nodes` says about surviving failures with `voters`.
pub fn tolerance_note(voters: usize) -> String {
    match voters {
        0 => "not initialised".into(),
        1 => "1 voter: the cluster stops if that node is lost".into(),
        2 => "2 voters: the cluster stops if either node is lost".into(),
        n => format!("{n} voters: survives the loss of {}", (n - 1) / 2),
    }
}

/// How far behind the leader's log a learner may be and still be
/// promoted (it answers AppendEntries and keeps up).
pub const PROMOTE_LAG: u64 = 64;

/// The learners that may vote (pure): those that answered replication
/// (`matched` holds the last index each one confirmed, `None` for one
/// that never did) and are within [`PROMOTE_LAG`] of `last`. A node that
/// joined with an address nobody answers at stays a learner, so it can
/// never take part in a quorum it would break.
pub fn caught_up(
    learners: &[NodeId],
    matched: &std::collections::BTreeMap<NodeId, Option<u64>>,
    last: u64,
) -> Vec<NodeId> {
    learners
        .iter()
        .filter(|id| {
            matched
                .get(id)
                .copied()
                .flatten()
                .is_some_and(|index| last.saturating_sub(index) <= PROMOTE_LAG)
        })
        .copied()
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(ids: &[NodeId]) -> BTreeSet<NodeId> {
        ids.iter().copied().collect()
    }

    #[test]
    fn learners_join_in_pairs_up_to_the_maximum() {
        assert_eq!(promotions(&set(&[1]), &[2], 5), set(&[]));
        assert_eq!(promotions(&set(&[1]), &[2, 3], 5), set(&[2, 3]));
        assert_eq!(promotions(&set(&[1, 2, 3]), &[4], 5), set(&[]));
        assert_eq!(promotions(&set(&[1, 2, 3]), &[4, 5, 6], 5), set(&[4, 5]));
        assert_eq!(
            promotions(&set(&[1]), &[2, 3, 4, 5, 6, 7], 5),
            set(&[2, 3, 4, 5])
        );
        assert_eq!(promotions(&set(&[1, 2, 3, 4, 5]), &[6, 7], 5), set(&[]));
    }

    #[test]
    fn an_even_count_after_a_removal_is_made_odd() {
        assert_eq!(promotions(&set(&[1, 2]), &[3], 5), set(&[3]));
        assert_eq!(promotions(&set(&[1, 2]), &[], 5), set(&[]));
        assert_eq!(promotions(&set(&[1, 2, 3, 4]), &[9], 5), set(&[9]));
    }

    #[test]
    fn an_even_maximum_means_the_odd_number_below_it() {
        assert_eq!(promotions(&set(&[1, 2, 3]), &[4, 5], 4), set(&[]));
        assert_eq!(promotions(&set(&[1]), &[2, 3], 1), set(&[]));
    }

    #[test]
    fn tolerance_is_stated_plainly() {
        assert!(tolerance_note(2).contains("either"));
        assert!(tolerance_note(3).contains("loss of 1"));
        assert!(tolerance_note(5).contains("loss of 2"));
    }

    #[test]
    fn only_learners_that_answered_and_kept_up_are_promoted() {
        use std::collections::BTreeMap;
        let matched = BTreeMap::from([(1, Some(100)), (2, None), (3, Some(10)), (4, Some(40))]);
        assert_eq!(caught_up(&[1, 2, 3, 4, 5], &matched, 100), vec![1, 4]);
        assert_eq!(caught_up(&[2], &matched, 0), Vec::<NodeId>::new());
    }
}
