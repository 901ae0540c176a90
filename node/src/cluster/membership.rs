//! The member table: one row per node that ever joined, with its last
//! heartbeat, slots, score and running tasks. Liveness is a pure function
//! of the time since the last heartbeat.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use tokio::sync::Notify;

use crate::media::Abilities;

/// How a node talks: our `vidshard.v1` services or only the original ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    Vidshard,
    Original,
}

impl Protocol {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Vidshard => "vidshard",
            Self::Original => "original",
        }
    }
}

/// Load figures a node reports.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Load {
    pub score: f32,
    pub load_per_core: f32,
    pub iowait_percent: f32,
    pub net_mb_per_s: f32,
    pub disk_mb_per_s: f32,
    pub memory_percent: f32,
}

#[derive(Debug, Clone)]
pub struct Member {
    pub node_id: String,
    pub address: String,
    pub protocol: Protocol,
    pub last_seen: Instant,
    pub alive: bool,
    pub slots_total: u32,
    pub slots_busy: u32,
    pub load: Load,
    /// What its ffmpeg can encode: a shard goes only to a member able to
    /// run it.
    pub abilities: Abilities,
}

impl Member {
    /// A worker that speaks only the original protocol, heard from now:
    /// one slot, no score until it reports one.
    pub fn original(node_id: String, address: String) -> Self {
        Self {
            node_id,
            address,
            protocol: Protocol::Original,
            last_seen: Instant::now(),
            alive: true,
            slots_total: 1,
            slots_busy: 0,
            load: Load::default(),
            abilities: Abilities::original_worker(),
        }
    }
}

/// A change of a member's liveness.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Liveness {
    Joined(String),
    Died(String),
    Returned(String),
    /// An original-protocol worker dead for long: dropped from the table
    /// (it registers again when it comes back, as the original does).
    Forgotten(String),
}

/// Original-protocol workers the master keeps at once: each is probed
/// every second, so the table must not grow with every address a
/// stranger registers.
pub const MAX_ORIGINAL_WORKERS: usize = 64;
/// An original-protocol worker silent for this many `--dead-after`
/// periods is forgotten.
pub const FORGET_ORIGINAL_AFTER: u32 = 12;

/// `RegisterWorker` beyond [`MAX_ORIGINAL_WORKERS`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "this master already has {MAX_ORIGINAL_WORKERS} original-protocol workers; one that stays silent is forgotten after a while"
)]
pub struct TooManyOriginalWorkers;

#[derive(Debug, Default)]
pub struct Membership {
    members: BTreeMap<String, Member>,
}

impl Membership {
    /// Records a heartbeat (or any sign of life) from a node.
    pub fn heard_from(&mut self, mut member: Member) -> Option<Liveness> {
        member.alive = true;
        let id = member.node_id.clone();
        let change = match self.members.get(&id) {
            None => Some(Liveness::Joined(id.clone())),
            Some(old) if !old.alive => Some(Liveness::Returned(id.clone())),
            Some(_) => None,
        };
        // A node that moved to a new address under the same id replaces
        // its row; another row with the same address is a stale identity.
        self.members
            .retain(|other_id, m| other_id == &id || m.address != member.address);
        self.members.insert(id, member);
        change
    }

    /// Records an original-protocol worker's `RegisterWorker` (or a probe
    /// answer), refusing new ones beyond [`MAX_ORIGINAL_WORKERS`].
    pub fn register_original(
        &mut self,
        member: Member,
    ) -> Result<Option<Liveness>, TooManyOriginalWorkers> {
        let known = self.members.contains_key(&member.node_id)
            || self.by_address(&member.address).is_some();
        let originals = self
            .members
            .values()
            .filter(|m| m.protocol == Protocol::Original)
            .count();
        if !known && originals >= MAX_ORIGINAL_WORKERS {
            return Err(TooManyOriginalWorkers);
        }
        Ok(self.heard_from(member))
    }

    /// Marks nodes silent for longer than `dead_after` as dead, and
    /// forgets original-protocol workers silent for
    /// [`FORGET_ORIGINAL_AFTER`] times as long (pure).
    pub fn sweep(&mut self, now: Instant, dead_after: Duration) -> Vec<Liveness> {
        let mut changes = Vec::new();
        for member in self.members.values_mut() {
            if member.alive && now.saturating_duration_since(member.last_seen) > dead_after {
                member.alive = false;
                changes.push(Liveness::Died(member.node_id.clone()));
            }
        }
        let forget_after = dead_after.saturating_mul(FORGET_ORIGINAL_AFTER);
        self.members.retain(|id, m| {
            let stale = m.protocol == Protocol::Original
                && !m.alive
                && now.saturating_duration_since(m.last_seen) > forget_after;
            if stale {
                changes.push(Liveness::Forgotten(id.clone()));
            }
            !stale
        });
        changes
    }

    pub fn get(&self, node_id: &str) -> Option<&Member> {
        self.members.get(node_id)
    }

    pub fn members(&self) -> impl Iterator<Item = &Member> {
        self.members.values()
    }

    pub fn by_address(&self, address: &str) -> Option<&Member> {
        self.members.values().find(|m| m.address == address)
    }

    /// Drops a node removed from the cluster.
    pub fn forget(&mut self, node_id: &str) -> bool {
        self.members.remove(node_id).is_some()
    }
}

/// The member table shared by the services, the sweeper and the scheduler,
/// with a notification whenever liveness changes.
#[derive(Debug, Clone, Default)]
pub struct SharedMembership {
    table: Arc<Mutex<Membership>>,
    changed: Arc<Notify>,
}

impl SharedMembership {
    pub fn lock(&self) -> MutexGuard<'_, Membership> {
        self.table.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Woken whenever a node joins, dies or returns.
    pub fn changed(&self) -> &Notify {
        &self.changed
    }

    pub fn heard_from(&self, member: Member) {
        let change = self.lock().heard_from(member);
        if let Some(change) = change {
            log_change(&change);
            self.changed.notify_waiters();
        }
    }

    /// See [`Membership::register_original`].
    pub fn register_original(&self, member: Member) -> Result<(), TooManyOriginalWorkers> {
        let change = self.lock().register_original(member)?;
        if let Some(change) = change {
            log_change(&change);
            self.changed.notify_waiters();
        }
        Ok(())
    }

    /// Drops a node removed from the cluster.
    pub fn forget(&self, node_id: &str) {
        if self.lock().forget(node_id) {
            self.changed.notify_waiters();
        }
    }

    /// Counts every slot of `node_id` busy until its next heartbeat (which
    /// says the same while it drains): a stopping node gets no more shards.
    pub fn mark_full(&self, node_id: &str) {
        if let Some(m) = self.lock().members.get_mut(node_id) {
            m.slots_busy = m.slots_total;
        }
    }

    /// Marks a node dead at once, e.g. when a call to it found no one
    /// there; its next heartbeat brings it back.
    pub fn mark_lost(&self, node_id: &str) {
        let died = {
            let mut table = self.lock();
            match table.members.get_mut(node_id) {
                Some(m) if m.alive => {
                    m.alive = false;
                    true
                }
                _ => false,
            }
        };
        if died {
            log_change(&Liveness::Died(node_id.to_string()));
            self.changed.notify_waiters();
        }
    }

    /// Runs the liveness sweep every `every` until `stop`.
    pub async fn run_sweeper(
        self,
        dead_after: Duration,
        every: Duration,
        stop: tokio_util::sync::CancellationToken,
    ) {
        loop {
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = tokio::time::sleep(every) => {}
            }
            let changes = self.lock().sweep(Instant::now(), dead_after);
            for change in &changes {
                log_change(change);
            }
            if !changes.is_empty() {
                self.changed.notify_waiters();
            }
        }
    }
}

fn log_change(change: &Liveness) {
    match change {
        Liveness::Joined(id) => tracing::info!(node = %id, "node joined"),
        Liveness::Died(id) => tracing::warn!(node = %id, "node stopped heartbeating: marked dead"),
        Liveness::Returned(id) => tracing::info!(node = %id, "node is back"),
        Liveness::Forgotten(id) => {
            tracing::info!(node = %id, "forgot an original-protocol worker silent for long")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn member(id: &str, address: &str, at: Instant) -> Member {
        Member {
            node_id: id.into(),
            address: address.into(),
            protocol: Protocol::Vidshard,
            last_seen: at,
            alive: true,
            slots_total: 2,
            slots_busy: 0,
            load: Load::default(),
            abilities: Abilities::default(),
        }
    }

    #[test]
    fn silence_longer_than_the_limit_kills_and_a_heartbeat_revives() {
        let t0 = Instant::now();
        let mut table = Membership::default();
        assert_eq!(
            table.heard_from(member("a", "h:1", t0)),
            Some(Liveness::Joined("a".into()))
        );
        assert_eq!(table.heard_from(member("a", "h:1", t0)), None);
        let limit = Duration::from_secs(5);
        // One missed 1 s heartbeat is nothing.
        assert!(table.sweep(t0 + Duration::from_secs(2), limit).is_empty());
        assert_eq!(
            table.sweep(t0 + Duration::from_secs(6), limit),
            vec![Liveness::Died("a".into())]
        );
        assert!(!table.get("a").expect("row").alive);
        assert!(
            table.sweep(t0 + Duration::from_secs(7), limit).is_empty(),
            "dies once"
        );
        let back = member("a", "h:1", t0 + Duration::from_secs(8));
        assert_eq!(table.heard_from(back), Some(Liveness::Returned("a".into())));
        assert!(table.get("a").expect("row").alive);
    }

    #[test]
    fn a_new_identity_on_an_old_address_replaces_the_stale_row() {
        let t0 = Instant::now();
        let mut table = Membership::default();
        table.heard_from(member("old", "h:1", t0));
        table.heard_from(member("new", "h:1", t0));
        assert_eq!(table.members().count(), 1);
        assert_eq!(
            table.by_address("h:1").map(|m| m.node_id.as_str()),
            Some("new")
        );
    }
}
