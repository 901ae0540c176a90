//! Fencing: every command from a master carries its Raft term, and this
//! node refuses one whose term is lower than the highest it has seen (or
//! its own Raft term), so a deposed master cannot hand out work or push
//! data after a newer master exists.

use std::sync::atomic::{AtomicU64, Ordering};

/// A command from a master older than one this node has seen.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "refused: the sender's term {term} is older than term {floor} seen here (it is no longer the master)"
)]
pub struct StaleTerm {
    pub term: u64,
    pub floor: u64,
}

/// The check itself (pure): `term` passes when it is at least `floor`.
pub fn check(term: u64, floor: u64) -> Result<(), StaleTerm> {
    if term < floor {
        Err(StaleTerm { term, floor })
    } else {
        Ok(())
    }
}

/// The highest master term this node has accepted a command from.
#[derive(Debug, Default)]
pub struct Fence(AtomicU64);

impl Fence {
    /// Admits a command of `term`, given this node's own Raft term.
    pub fn admit(&self, term: u64, own_term: u64) -> Result<(), StaleTerm> {
        let floor = self.0.load(Ordering::SeqCst).max(own_term);
        check(term, floor)?;
        self.0.fetch_max(term, Ordering::SeqCst);
        Ok(())
    }

    pub fn highest(&self) -> u64 {
        self.0.load(Ordering::SeqCst)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn older_terms_are_refused_once_a_newer_one_was_seen() {
        let fence = Fence::default();
        assert!(fence.admit(3, 1).is_ok());
        assert!(fence.admit(3, 1).is_ok());
        assert!(fence.admit(2, 1).is_err());
        assert!(fence.admit(4, 1).is_ok());
        assert_eq!(fence.highest(), 4);
        assert!(fence.admit(4, 5).is_err(), "own Raft term counts too");
        assert!(check(0, 1).is_err());
    }
}
