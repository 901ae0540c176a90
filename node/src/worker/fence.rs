//! Fencing: every command from a master carries its Raft term. This node
//! judges it against its own Raft term, never against what senders
//! claimed before: a term below ours comes from a deposed master (it
//! cannot hand out work or push data once a newer master exists), and a
//! term no real cluster reaches is forged. Nothing a sender writes in a
//! header is remembered, so one forged term cannot make every later
//! (real) master look stale.

use crate::cluster::raft::consensus::{TermOutOfReach, check_term};

/// A command this node does not take from the term it carries.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StaleTerm {
    #[error(
        "refused: the sender's term {term} is older than term {own} here (it is no longer the master)"
    )]
    Older { term: u64, own: u64 },
    #[error("refused: {0}")]
    OutOfReach(#[from] TermOutOfReach),
}

/// The check (pure): `term` passes when it is at least this node's Raft
/// term `own` and within reach of it.
pub fn check(term: u64, own: u64) -> Result<(), StaleTerm> {
    if term < own {
        return Err(StaleTerm::Older { term, own });
    }
    Ok(check_term(term, own)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn older_and_forged_terms_are_refused_and_nothing_is_remembered() {
        assert!(check(3, 3).is_ok());
        assert!(
            check(4, 3).is_ok(),
            "a newer master this node has not heard yet"
        );
        assert!(matches!(check(2, 3), Err(StaleTerm::Older { .. })));
        assert!(matches!(check(u64::MAX, 3), Err(StaleTerm::OutOfReach(_))));
        // A forged term changes nothing for the real master after it.
        assert!(check(3, 3).is_ok());
    }
}
