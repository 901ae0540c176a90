//! The node-wide byte budget of `RequestBackupData` replies.
//!
//! The original protocol hands every backup back in one unary message, so
//! a reply is whole in memory twice over: the backups read from disk, then
//! tonic's encoded copy, which hyper keeps until the client has read it.
//! Without a bound, N callers at once cost N whole replies (issue 20: four
//! 30-byte requests drove a node to 4 GB). Each reply first takes its wire
//! size out of one semaphore of [`Limits::reply_budget`] bytes (by default
//! [`MAX_REPLY`](super::limits::MAX_REPLY), so one largest reply at a time)
//! and gives it back only when its body has been sent: the permit travels
//! in the response's extensions and `service::reply_limits` keeps it alive
//! with the body. Callers that do not fit wait their turn, up to
//! [`Limits::reply_wait`], then get [`BackupError::Busy`].

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::limits::{BackupError, Limits};

/// Bytes a reply of `wire_bytes` takes out of a budget of `budget` bytes
/// (pure): all of it, but never more than the whole budget (a reply the
/// selection let through always fits; clamping keeps a wrong figure from
/// waiting for ever).
pub fn units_for(wire_bytes: u64, budget: u32) -> u32 {
    u32::try_from(wire_bytes).map_or(budget, |bytes| bytes.min(budget))
}

/// The budget itself; one per node (see [`super::LegacyBackups`]).
#[derive(Debug)]
pub struct ReplyBudget {
    bytes: Arc<Semaphore>,
    total: u32,
    wait: Duration,
}

/// Bytes of the budget held by one reply until it is dropped.
#[derive(Debug)]
pub struct ReplyPermit {
    _permit: OwnedSemaphorePermit,
    bytes: u64,
}

impl ReplyPermit {
    /// Bytes held.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }
}

impl ReplyBudget {
    /// A budget of `limits.reply_budget` bytes (at most `u32::MAX`, the
    /// most a semaphore hands out at once).
    pub fn new(limits: &Limits) -> Self {
        let total = u32::try_from(limits.reply_budget).unwrap_or(u32::MAX);
        Self {
            bytes: Arc::new(Semaphore::new(total as usize)),
            total,
            wait: limits.reply_wait,
        }
    }

    /// Whether `permit` holds what a reply of `wire_bytes` takes (a reply
    /// larger than the whole budget takes all of it).
    pub fn covers(&self, permit: &ReplyPermit, wire_bytes: u64) -> bool {
        permit.bytes >= u64::from(units_for(wire_bytes, self.total))
    }

    /// `wire_bytes` of the budget now, if free.
    pub fn try_take(&self, wire_bytes: u64) -> Option<ReplyPermit> {
        let units = units_for(wire_bytes, self.total);
        let permit = self.bytes.clone().try_acquire_many_owned(units).ok()?;
        Some(ReplyPermit {
            _permit: permit,
            bytes: u64::from(units),
        })
    }

    /// `wire_bytes` of the budget, waiting up to the budget's wait for
    /// other replies to be sent.
    pub async fn take(&self, wire_bytes: u64) -> Result<ReplyPermit, BackupError> {
        let units = units_for(wire_bytes, self.total);
        let busy = || BackupError::Busy {
            needed: wire_bytes,
            budget: u64::from(self.total),
            waited: self.wait,
        };
        let permit = tokio::time::timeout(self.wait, self.bytes.clone().acquire_many_owned(units))
            .await
            .map_err(|_| busy())?
            // Only a closed semaphore fails, and this one is never closed.
            .map_err(|_| busy())?;
        Ok(ReplyPermit {
            _permit: permit,
            bytes: u64::from(units),
        })
    }

    /// Bytes of the budget free now.
    pub fn available(&self) -> u64 {
        self.bytes.available_permits() as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reply_takes_its_size_never_more_than_the_budget() {
        assert_eq!(units_for(0, 100), 0);
        assert_eq!(units_for(40, 100), 40);
        assert_eq!(units_for(100, 100), 100);
        assert_eq!(units_for(101, 100), 100);
        assert_eq!(units_for(u64::MAX, 100), 100);
        assert_eq!(units_for(1 << 30, u32::MAX), 1 << 30);
    }

    #[tokio::test]
    async fn callers_wait_their_turn_then_give_up_clearly() {
        let limits = Limits {
            reply_budget: 100,
            reply_wait: Duration::from_millis(200),
            ..Limits::DEFAULT
        };
        let budget = ReplyBudget::new(&limits);
        let first = budget.take(70).await.expect("free");
        assert_eq!((first.bytes(), budget.available()), (70, 30));
        assert!(budget.try_take(40).is_none(), "only 30 bytes left");
        let small = budget.try_take(30).expect("fits beside the first");
        assert!(budget.covers(&small, 30) && !budget.covers(&small, 31));
        assert!(budget.covers(&first, 70) && budget.covers(&small, 0));
        drop(small);
        // A caller that does not fit waits and is let in once the first
        // reply is gone.
        let waiting = tokio::spawn({
            let budget = Arc::new(budget);
            let inner = budget.clone();
            async move { (inner.take(60).await.map(|p| p.bytes()), budget) }
        });
        tokio::time::sleep(Duration::from_millis(50)).await;
        drop(first);
        let (second, budget) = waiting.await.expect("task");
        assert_eq!(second.expect("let in"), 60);
        // Nobody gives the budget back: a clear refusal after the wait.
        let held = budget.take(100).await.expect("whole budget");
        let err = budget.take(1).await.expect_err("busy");
        assert!(matches!(err, BackupError::Busy { needed: 1, .. }), "{err}");
        assert!(err.to_string().contains("try again"), "{err}");
        drop(held);
    }
}
