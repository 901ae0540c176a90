//! What comes in from outside the keyboard, for [`App::handle`]: link
//! changes and snapshots from the watch task (with cluster events turned
//! into log lines, and holding while paused), and progress and results of
//! background actions.

use log::Level;
use vidshard_proto::v1::ClusterSnapshot;

use super::App;
use crate::tui::logview::{self, Source};
use crate::tui::msg::{Action, NetEvent, TaskUpdate};
use crate::tui::state::{Conn, View, or_none};

impl App {
    pub(super) fn on_net(&mut self, net: NetEvent) -> Vec<Action> {
        match net {
            NetEvent::Connecting { target, attempt } => {
                self.conn = Conn::Connecting { target, attempt };
                Vec::new()
            }
            NetEvent::Connected { target } => {
                let text = format!("connected to {target}");
                self.conn = Conn::Live {
                    target,
                    since_ms: self.now_ms,
                };
                self.failures.clear();
                vec![self.say(Level::Info, &text)]
            }
            NetEvent::Snapshot(snap) => self.on_snapshot(snap),
            NetEvent::Lost {
                target,
                error,
                next,
                attempt,
                retry_in_ms,
            } => {
                let mut out = Vec::new();
                // Each distinct failure is logged once while retrying, so
                // walking the same dead addresses does not flood the log.
                let failure = (target, error.clone());
                if !self.failures.contains(&failure) && self.failures.len() < 32 {
                    let text = format!("lost {}: {error}; retrying", failure.0);
                    out.push(self.say(Level::Warn, &text));
                    self.failures.push(failure);
                }
                self.conn = Conn::Retrying {
                    next,
                    attempt,
                    retry_at_ms: self.now_ms + retry_in_ms,
                    error,
                };
                out
            }
        }
    }

    fn on_snapshot(&mut self, snap: Box<ClusterSnapshot>) -> Vec<Action> {
        let mut out: Vec<Action> = Vec::new();
        for event in self.seen.fresh(&snap.events) {
            let level = logview::level_of(&event.level);
            let line = logview::line(
                level,
                Source::Cluster,
                event.unix_ms,
                &self.cfg.tz,
                &event.message,
            );
            out.push(Action::Log(line));
        }
        let view = View {
            snap,
            received_ms: self.now_ms,
        };
        if self.paused_since.is_some() {
            self.held = Some(view);
            self.held_count += 1;
        } else {
            out.extend(self.apply(view));
        }
        out
    }

    /// Makes `view` the one shown.
    pub(super) fn apply(&mut self, view: View) -> Vec<Action> {
        let mut out = Vec::new();
        if let Some(old) = &self.view {
            let (was, now) = (&old.snap.master_address, &view.snap.master_address);
            if was != now && !now.is_empty() {
                let text = format!(
                    "master changed: {} → {} (term {} → {})",
                    or_none(was),
                    now,
                    old.snap.term,
                    view.snap.term
                );
                self.master_change = Some((was.clone(), self.now_ms));
                out.push(self.say(Level::Warn, &text));
            }
        }
        self.history.record(&view.snap.nodes);
        self.view = Some(view);
        if self.job_sel.is_none() {
            self.job_sel = self.jobs().first().map(|j| j.id.clone());
        }
        out
    }

    pub(super) fn on_task(&mut self, id: u64, update: TaskUpdate) -> Vec<Action> {
        let Some(at) = self.tasks.iter().position(|t| t.id == id) else {
            return Vec::new();
        };
        match update {
            TaskUpdate::Progress { phase, done, total } => {
                let task = &mut self.tasks[at];
                (task.phase, task.done, task.total) = (phase, done, total);
                Vec::new()
            }
            TaskUpdate::Finished(result) => {
                let task = self.tasks.remove(at);
                let (level, text) = match result {
                    Ok(outcome) => outcome.describe(),
                    Err(error) => (Level::Error, format!("{} failed: {error}", task.label)),
                };
                vec![self.report(level, text)]
            }
        }
    }
}
