//! The console's state and its single entry point, [`App::handle`].
//!
//! `handle` is pure: it takes an [`Event`] (a key, a snapshot, a connection
//! change, an action's progress or result, a clock tick) and returns the
//! [`Action`]s to perform, touching nothing outside `self`. The run loop
//! performs them (`tui/mod.rs`, `tui/exec.rs`), so every behaviour of the console
//! can be driven and checked in unit tests.
//!
//! The `impl App` blocks are split by concern: `feed.rs` (snapshots, link
//! changes, task results), `input.rs` and `form_keys.rs` (keys), and
//! `query.rs` (read-only views for the key handlers and the drawing code).
//! The types they work on are plain data in `../state.rs` and `../msg.rs`.

mod feed;
mod form_keys;
mod input;
mod query;

use log::Level;
use tui_logger::TuiWidgetState;

use super::history::{EventDedup, ScoreHistory};
use super::logview::{self, Source};
use super::msg::{Action, Event};
use super::state::{Config, Conn, Modal, Pane, Status, Task, View};

/// Data older than this while connected is shown as late.
pub const LATE_AFTER_MS: u64 = 3_000;
/// How long an action's message stays above the footer.
pub const STATUS_TTL_MS: u64 = 60_000;
/// How long the header points out a new master.
pub const MASTER_NOTE_MS: u64 = 60_000;

/// The whole state of the console.
pub struct App {
    pub cfg: Config,
    pub now_ms: u64,
    pub conn: Conn,
    pub view: Option<View>,
    /// Latest snapshot received while paused, and how many were held.
    pub held: Option<View>,
    pub held_count: u32,
    pub paused_since: Option<u64>,
    pub history: ScoreHistory,
    pub(super) seen: EventDedup,
    /// Previous master and when it changed.
    pub master_change: Option<(String, u64)>,
    pub focus: Pane,
    pub node_sel: usize,
    pub job_sel: Option<String>,
    pub shard_sel: usize,
    pub details: bool,
    pub modal: Option<Modal>,
    pub tasks: Vec<Task>,
    pub status: Option<Status>,
    pub log_state: TuiWidgetState,
    pub(super) next_task: u64,
    /// Connection failures already logged since the last connection.
    pub(super) failures: Vec<(String, String)>,
}

impl App {
    pub fn new(cfg: Config, now_ms: u64) -> Self {
        let log_state = logview::widget_state(&cfg.log_scope);
        App {
            conn: Conn::Connecting {
                target: cfg.node.clone(),
                attempt: 0,
            },
            cfg,
            now_ms,
            view: None,
            held: None,
            held_count: 0,
            paused_since: None,
            history: ScoreHistory::default(),
            seen: EventDedup::default(),
            master_change: None,
            focus: Pane::Jobs,
            node_sel: 0,
            job_sel: None,
            shard_sel: 0,
            details: false,
            modal: None,
            tasks: Vec::new(),
            status: None,
            log_state,
            next_task: 1,
            failures: Vec::new(),
        }
    }

    /// The one entry point: applies `event`, returns what to do.
    pub fn handle(&mut self, event: Event) -> Vec<Action> {
        match event {
            Event::Key(key) => self.on_key(key),
            Event::Resize => Vec::new(),
            Event::Tick { now_ms } => {
                self.now_ms = self.now_ms.max(now_ms);
                if let Some(status) = &self.status
                    && self.now_ms.saturating_sub(status.at_ms) > STATUS_TTL_MS
                {
                    self.status = None;
                }
                Vec::new()
            }
            Event::Net { at_ms, net } => {
                self.now_ms = self.now_ms.max(at_ms);
                self.on_net(net)
            }
            Event::Task { id, update } => self.on_task(id, update),
            Event::Listing { input, result } => {
                self.on_listing(&input, result);
                Vec::new()
            }
        }
    }

    /// A console line stamped with the app's clock.
    pub(super) fn say(&self, level: Level, message: &str) -> Action {
        Action::Log(logview::line(
            level,
            Source::Console,
            self.now_ms,
            &self.cfg.tz,
            message,
        ))
    }

    /// Shows `text` above the footer and logs it.
    pub(super) fn report(&mut self, level: Level, text: String) -> Action {
        let action = self.say(level, &text);
        self.status = Some(Status {
            level,
            text,
            at_ms: self.now_ms,
        });
        action
    }

    /// Registers a background task and returns its id.
    pub(super) fn start_task(&mut self, label: String, phase: &'static str) -> u64 {
        let id = self.next_task;
        self.next_task += 1;
        self.tasks.push(Task {
            id,
            label,
            phase,
            done: 0,
            total: 0,
        });
        id
    }
}
