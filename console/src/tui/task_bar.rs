//! Transfer progress of a background action, sent to the app as
//! [`TaskUpdate::Progress`] events: the console's side of
//! `transfer::Progress` (the command line's is `progress.rs`, on stderr).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::sync::mpsc;

use super::msg::{Event, TaskUpdate};
use crate::transfer::Progress;

/// Makes the progress reporters of one task.
pub struct Bars {
    pub tx: mpsc::Sender<Event>,
    pub id: u64,
}

impl Bars {
    /// Progress of `phase` over `total` bytes (0 = unknown).
    pub fn bar(&self, phase: &'static str, total: u64) -> TaskBar {
        TaskBar(Arc::new(Inner {
            tx: self.tx.clone(),
            id: self.id,
            phase,
            total,
            position: AtomicU64::new(0),
            last: AtomicU64::new(u64::MAX),
        }))
    }
}

struct Inner {
    tx: mpsc::Sender<Event>,
    id: u64,
    phase: &'static str,
    total: u64,
    position: AtomicU64,
    /// Last step reported.
    last: AtomicU64,
}

/// Reports `(bytes so far, total)` to the app, at most every half percent.
/// Cheap to clone; the clones share the position.
#[derive(Clone)]
pub struct TaskBar(Arc<Inner>);

impl Progress for TaskBar {
    fn inc(&self, n: u64) {
        let bar = &*self.0;
        let done = bar.position.fetch_add(n, Ordering::Relaxed) + n;
        let total = bar.total;
        // Half percents of a known total, else MiB.
        let step = done
            .saturating_mul(200)
            .checked_div(total)
            .unwrap_or(done >> 20);
        if bar.last.swap(step, Ordering::Relaxed) != step {
            let update = TaskUpdate::Progress {
                phase: bar.phase,
                done,
                total,
            };
            // Progress may be dropped when the app is busy; the end never is.
            let _ = bar.tx.try_send(Event::Task { id: bar.id, update });
        }
    }

    fn finish(&self) {}

    fn abandon(&self) {}

    fn restart(&self) {
        self.0.position.store(0, Ordering::Relaxed);
        self.0.last.store(u64::MAX, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn progress(rx: &mut mpsc::Receiver<Event>) -> Vec<(u64, u64, &'static str)> {
        let mut seen = Vec::new();
        while let Ok(event) = rx.try_recv() {
            let Event::Task {
                id: 3,
                update: TaskUpdate::Progress { phase, done, total },
            } = event
            else {
                panic!("unexpected event {event:?}");
            };
            seen.push((done, total, phase));
        }
        seen
    }

    #[test]
    fn bars_report_positions_once_per_step() {
        let (tx, mut rx) = mpsc::channel(16);
        let bars = Bars { tx, id: 3 };
        let bar = bars.bar("uploading", 1000);
        bar.inc(4);
        bar.clone().inc(6);
        bar.inc(1);
        bar.finish();
        // 10 and 11 bytes of 1000 are the same half percent.
        assert_eq!(
            progress(&mut rx),
            vec![(4, 1000, "uploading"), (10, 1000, "uploading")]
        );
        let unknown = bars.bar("downloading", 0);
        unknown.inc(1);
        unknown.inc(1 << 20);
        assert_eq!(
            progress(&mut rx),
            vec![(1, 0, "downloading"), ((1 << 20) + 1, 0, "downloading")]
        );
    }
}
