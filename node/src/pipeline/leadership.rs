//! Driving jobs belongs to the leader of the current term. When this node
//! becomes leader it takes over every unfinished job from the replicated
//! table (shards already encoded are kept); when it stops leading, the
//! jobs it drives stop at once (their writes would be refused anyway).

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use tokio_util::sync::CancellationToken;

use super::Master;

/// The token of the term this node leads, if it leads, and the jobs it
/// drives now.
#[derive(Debug, Clone, Default)]
pub struct Leadership(
    Arc<Mutex<Option<(u64, CancellationToken)>>>,
    Arc<Mutex<HashSet<String>>>,
);

/// Held while a job is driven here; dropping it frees the job.
pub struct Driving(Arc<Mutex<HashSet<String>>>, String);

impl Drop for Driving {
    fn drop(&mut self) {
        let mut set = self.0.lock().unwrap_or_else(|p| p.into_inner());
        set.remove(&self.1);
    }
}

impl Leadership {
    /// Cancelled when this node stops leading; `None` when it does not.
    pub fn current(&self) -> Option<CancellationToken> {
        let guard = self.0.lock().unwrap_or_else(|p| p.into_inner());
        guard.as_ref().map(|(_, token)| token.clone())
    }

    /// Claims job `id` for one driver; `None` when one already runs it.
    pub fn claim(&self, id: &str) -> Option<Driving> {
        let mut set = self.1.lock().unwrap_or_else(|p| p.into_inner());
        set.insert(id.to_string())
            .then(|| Driving(self.1.clone(), id.to_string()))
    }

    /// Records the leadership state; answers whether a new term of
    /// leading began (the caller then takes the jobs over).
    fn update(
        &self,
        leading_term: Option<u64>,
        shutdown: &CancellationToken,
    ) -> Option<CancellationToken> {
        let mut guard = self.0.lock().unwrap_or_else(|p| p.into_inner());
        match (leading_term, guard.as_ref()) {
            (Some(term), Some((held, _))) if *held == term => None,
            (Some(term), _) => {
                if let Some((_, old)) = guard.take() {
                    old.cancel();
                }
                let token = shutdown.child_token();
                *guard = Some((term, token.clone()));
                Some(token)
            }
            (None, Some(_)) => {
                if let Some((_, old)) = guard.take() {
                    old.cancel();
                }
                None
            }
            (None, None) => None,
        }
    }
}

/// Watches Raft until shutdown, starting and stopping job drivers as
/// leadership comes and goes.
pub async fn run(master: Arc<Master>) {
    let mut metrics = master.sys.consensus.raft.metrics();
    loop {
        let leading = master.sys.consensus.is_leader().then(|| master.sys.term());
        let was_leading = master.leadership.current().is_some();
        if let Some(token) = master.leadership.update(leading, &master.sys.shutdown) {
            tracing::info!(term = master.sys.term(), "this node is now the master");
            master.sys.tasks.spawn(take_over(master.clone(), token));
        } else if was_leading && leading.is_none() {
            tracing::warn!(
                term = master.sys.term(),
                "this node is no longer the master: its jobs stop here"
            );
        }
        tokio::select! {
            _ = master.sys.shutdown.cancelled() => return,
            changed = metrics.changed() => if changed.is_err() { return },
        }
    }
}

/// The new leader's first steps: correct its own address in the
/// membership, promote learners, and resume every unfinished job.
async fn take_over(master: Arc<Master>, lead: CancellationToken) {
    let me = master.sys.consensus.info(&master.sys.address);
    if let Err(e) = master.sys.consensus.admit(me).await {
        tracing::warn!(error = %e, "could not update this node's membership entry");
    }
    // An entry the old master committed (an upload it acknowledged just
    // before it died) may not be applied here yet: this node may not
    // even know it is committed until its own term's first entry is.
    // Reading the table before would miss the job and leave it queued
    // for good, so wait until everything up to now is applied.
    while let Err(e) = master.sys.consensus.raft.ensure_linearizable().await {
        tracing::info!(error = %e, "waiting for the log to be applied before resuming jobs");
        tokio::select! {
            _ = lead.cancelled() => return,
            _ = tokio::time::sleep(std::time::Duration::from_millis(300)) => {}
        }
    }
    let unfinished: Vec<String> = master
        .sys
        .jobs
        .lock()
        .list()
        .iter()
        .filter(|job| !job.status.is_final())
        .map(|job| job.id.clone())
        .collect();
    if !unfinished.is_empty() {
        tracing::info!(jobs = unfinished.len(), "resuming unfinished jobs");
    }
    for id in unfinished {
        master
            .sys
            .tasks
            .spawn(super::run_job(master.clone(), id, lead.clone()));
    }
}
