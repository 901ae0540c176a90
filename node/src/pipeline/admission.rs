//! How many jobs the master drives at once. A running job holds, on the
//! master, its split, an audio ffmpeg and the early join's ffmpeg; a new
//! master that started every unfinished job at once probed and split a
//! backlog of 114 jobs together (the chaos soak: load 90 on two cores,
//! heartbeats late, elections, and the next master did it again). Jobs
//! past the limit wait their turn here, oldest first; the limit follows
//! the cluster's live encoding slots, so every slot can still be busy.

use std::collections::BTreeSet;
use std::sync::Mutex;
use std::time::Duration;

use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

/// Jobs driven at once however few slots are live.
pub const LEAST_ACTIVE_JOBS: usize = 2;

/// How many jobs may run at once with `live_slots` encoding slots in the
/// cluster (pure): one per slot (a job keeps at least one slot busy), and
/// never fewer than [`LEAST_ACTIVE_JOBS`].
pub fn active_limit(live_slots: usize) -> usize {
    live_slots.max(LEAST_ACTIVE_JOBS)
}

/// Whether the waiter at `position` in the queue (0: oldest) may start
/// now (pure): the free places go to the oldest waiters.
pub fn may_start(running: usize, limit: usize, position: usize) -> bool {
    position < limit.saturating_sub(running)
}

/// A place in the queue: higher priority first, then the job's creation
/// time, then its id (the order `scheduler::fair` serves jobs in).
type Place = (std::cmp::Reverse<u32>, u64, String);

#[derive(Debug, Default)]
struct Queue {
    running: usize,
    waiting: BTreeSet<Place>,
}

/// The queue of jobs waiting to run on this master.
#[derive(Debug, Default)]
pub struct Admission {
    queue: Mutex<Queue>,
    changed: Notify,
}

/// A job's turn: while held it counts against the limit.
#[derive(Debug)]
pub struct Turn<'a> {
    admission: &'a Admission,
}

impl Drop for Turn<'_> {
    fn drop(&mut self) {
        self.admission.lock().running -= 1;
        self.admission.changed.notify_waiters();
    }
}

/// Leaves the queue when the wait ends without a turn (cancelled, or the
/// waiting future dropped).
struct Waiting<'a> {
    admission: &'a Admission,
    place: Option<Place>,
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        if let Some(place) = self.place.take() {
            self.admission.lock().waiting.remove(&place);
            self.admission.changed.notify_waiters();
        }
    }
}

impl Admission {
    fn lock(&self) -> std::sync::MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Jobs running and waiting now.
    pub fn counts(&self) -> (usize, usize) {
        let queue = self.lock();
        (queue.running, queue.waiting.len())
    }

    /// Waits for job `id` (of `priority`, created at `created_ms`) to have
    /// its turn: when fewer than `limit()` jobs run and no job before it
    /// (of a higher priority, or as high and older) waits. `None` when
    /// `stop` is cancelled or `gone()` says the job no longer needs one
    /// (deleted meanwhile). The limit is asked again at every change and
    /// every second, as slots come and go.
    pub async fn turn(
        &self,
        id: &str,
        priority: u32,
        created_ms: u64,
        limit: impl Fn() -> usize,
        gone: impl Fn() -> bool,
        stop: &CancellationToken,
    ) -> Option<Turn<'_>> {
        let place = (std::cmp::Reverse(priority), created_ms, id.to_string());
        self.lock().waiting.insert(place.clone());
        let mut waiting = Waiting {
            admission: self,
            place: Some(place.clone()),
        };
        loop {
            let changed = self.changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            {
                let mut queue = self.lock();
                let position = queue.waiting.range(..place.clone()).count();
                if may_start(queue.running, limit(), position) {
                    queue.waiting.remove(&place);
                    queue.running += 1;
                    waiting.place = None;
                    return Some(Turn { admission: self });
                }
            }
            if gone() {
                return None;
            }
            tokio::select! {
                _ = stop.cancelled() => return None,
                _ = changed => {}
                _ = tokio::time::sleep(Duration::from_secs(1)) => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    /// Waits (at most 5 s) until `counts()` answers `want`.
    async fn wait_counts(admission: &Admission, want: (usize, usize)) {
        tokio::time::timeout(Duration::from_secs(5), async {
            while admission.counts() != want {
                tokio::task::yield_now().await;
            }
        })
        .await
        .expect("the waiters queued");
    }

    async fn join_all(waiters: Vec<tokio::task::JoinHandle<()>>) {
        for waiter in waiters {
            tokio::time::timeout(Duration::from_secs(5), waiter)
                .await
                .expect("in time")
                .expect("joined");
        }
    }

    #[test]
    fn every_live_slot_can_have_a_job_and_two_always_run() {
        assert_eq!(active_limit(0), 2);
        assert_eq!(active_limit(1), 2);
        assert_eq!(active_limit(5), 5);
        assert_eq!(active_limit(64), 64);
    }

    #[test]
    fn the_free_places_go_to_the_oldest_waiters() {
        assert!(may_start(0, 2, 0));
        assert!(may_start(0, 2, 1));
        assert!(!may_start(0, 2, 2));
        assert!(may_start(1, 2, 0));
        assert!(!may_start(1, 2, 1));
        assert!(!may_start(2, 2, 0));
        assert!(!may_start(3, 2, 0), "a lowered limit admits nobody");
    }

    #[tokio::test]
    async fn jobs_past_the_limit_wait_and_start_oldest_first() {
        let admission = Arc::new(Admission::default());
        let stop = CancellationToken::new();
        let first = admission
            .turn("a", 10, 1, || 1, || false, &stop)
            .await
            .expect("a runs");
        assert_eq!(admission.counts(), (1, 0));
        let started = Arc::new(Mutex::new(Vec::new()));
        let mut waiters = Vec::new();
        // Queued newest first: the turns still go oldest first.
        for (id, created) in [("d", 4), ("c", 3), ("b", 2)] {
            let (admission, stop, started) = (admission.clone(), stop.clone(), started.clone());
            waiters.push(tokio::spawn(async move {
                let turn = admission.turn(id, 10, created, || 1, || false, &stop).await;
                started.lock().unwrap().push(id);
                drop(turn);
            }));
            tokio::task::yield_now().await;
        }
        wait_counts(&admission, (1, 3)).await;
        assert!(started.lock().unwrap().is_empty());
        drop(first);
        join_all(waiters).await;
        assert_eq!(*started.lock().unwrap(), vec!["b", "c", "d"]);
        assert_eq!(admission.counts(), (0, 0));
    }

    #[tokio::test]
    async fn a_stopped_or_deleted_waiter_leaves_the_queue() {
        let admission = Admission::default();
        let stop = CancellationToken::new();
        let _running = admission.turn("a", 10, 1, || 1, || false, &stop).await;
        assert!(
            admission
                .turn("b", 10, 2, || 1, || true, &stop)
                .await
                .is_none()
        );
        stop.cancel();
        assert!(
            admission
                .turn("c", 10, 3, || 1, || false, &stop)
                .await
                .is_none()
        );
        assert_eq!(admission.counts(), (1, 0));
    }

    #[tokio::test]
    async fn a_higher_priority_waiter_goes_before_older_ones() {
        let admission = Arc::new(Admission::default());
        let stop = CancellationToken::new();
        let first = admission.turn("a", 10, 1, || 1, || false, &stop).await;
        let started = Arc::new(Mutex::new(Vec::new()));
        let mut waiters = Vec::new();
        for (id, priority, created) in [("old", 10, 2), ("urgent", 20, 9)] {
            let (admission, stop, started) = (admission.clone(), stop.clone(), started.clone());
            waiters.push(tokio::spawn(async move {
                let turn = admission
                    .turn(id, priority, created, || 1, || false, &stop)
                    .await;
                started.lock().unwrap().push(id);
                drop(turn);
            }));
        }
        wait_counts(&admission, (1, 2)).await;
        drop(first);
        join_all(waiters).await;
        assert_eq!(*started.lock().unwrap(), vec!["urgent", "old"]);
    }
}
