//! Key handling of [`App::handle`]: the main screen's commands and the
//! dialogs (help, upload form, retrieve prompt, confirmations).
//!
//! Only presses count: crossterm also reports releases and repeats on
//! some terminals, and acting on those would run `u` twice.

use crossterm::event::{KeyEvent, KeyEventKind};
use log::Level;
use tui_logger::TuiWidgetEvent;

use super::App;
use crate::job::{JobState, classify_status};
use crate::tui::form::{PathPrompt, UploadForm};
use crate::tui::keys::{Command, Scope, command_for};
use crate::tui::msg::Action;
use crate::tui::state::{Modal, Pane, Pending};

const PANES: [Pane; 4] = [Pane::Nodes, Pane::Jobs, Pane::Shards, Pane::Log];

impl App {
    pub(super) fn on_key(&mut self, key: KeyEvent) -> Vec<Action> {
        if key.kind != KeyEventKind::Press {
            return Vec::new();
        }
        let scope = self.scope();
        let command = command_for(scope, &key);
        if command == Some(Command::Quit) {
            return vec![Action::Quit];
        }
        match self.modal.take() {
            None => command.map(|c| self.on_command(c)).unwrap_or_default(),
            Some(Modal::Help) => {
                if command != Some(Command::Cancel) {
                    self.modal = Some(Modal::Help);
                }
                Vec::new()
            }
            Some(Modal::Confirm { pending, question }) => match command {
                Some(Command::Yes) => self.confirmed(pending),
                Some(Command::No) => vec![self.report(Level::Info, "cancelled".into())],
                _ => {
                    self.modal = Some(Modal::Confirm { pending, question });
                    Vec::new()
                }
            },
            Some(Modal::Upload(form)) => self.upload_key(form, command, &key),
            Some(Modal::Retrieve(prompt)) => self.retrieve_key(prompt, command, &key),
        }
    }

    /// Which key table applies now.
    pub fn scope(&self) -> Scope {
        match &self.modal {
            None => Scope::Main,
            Some(Modal::Help) => Scope::Help,
            Some(Modal::Confirm { .. }) => Scope::Confirm,
            Some(Modal::Upload(_) | Modal::Retrieve(_)) => Scope::Form,
        }
    }

    fn on_command(&mut self, command: Command) -> Vec<Action> {
        match command {
            Command::Upload => self.modal = Some(Modal::Upload(UploadForm::default())),
            Command::Retrieve => return self.open_retrieve(),
            Command::Elect => self.ask(Pending::Elect, self.election_question()),
            Command::Delete => match self.selected_job() {
                Some(job) => {
                    let question = format!("Delete job {} and its output?", job.id);
                    self.ask(
                        Pending::Delete {
                            job_id: job.id.clone(),
                        },
                        question,
                    );
                }
                None => return vec![self.report(Level::Warn, "no job selected".into())],
            },
            Command::Watch => return self.watch_link(),
            Command::Details => self.details = !self.details,
            Command::Pause => return self.toggle_pause(),
            Command::NextPane => self.move_pane(1),
            Command::PrevPane => self.move_pane(-1),
            Command::Down => self.move_row(1),
            Command::Up => self.move_row(-1),
            Command::Back => {
                self.details = false;
                self.log_state.transition(TuiWidgetEvent::EscapeKey);
            }
            Command::Help => self.modal = Some(Modal::Help),
            _ => {}
        }
        Vec::new()
    }

    /// Asks a node for the selected ladder job's watch URL (it goes to
    /// the log, where it can be copied).
    fn watch_link(&mut self) -> Vec<Action> {
        let Some(job) = self.selected_job() else {
            return vec![self.report(Level::Warn, "no job selected".into())];
        };
        let ladder = job.params.as_ref().is_some_and(|p| !p.ladder.is_empty());
        if !ladder {
            let say = format!(
                "job {} is not a ladder: nothing to watch (r retrieves it)",
                job.id
            );
            return vec![self.report(Level::Warn, say)];
        }
        let job_id = job.id.clone();
        let id = self.start_task(format!("link {job_id}"), "asking");
        let node = self.action_target();
        vec![Action::Link { id, node, job_id }]
    }

    fn ask(&mut self, pending: Pending, question: String) {
        self.modal = Some(Modal::Confirm { pending, question });
    }

    /// Names the current master, so nobody moves leadership blindly.
    fn election_question(&self) -> String {
        let current = match self.snapshot() {
            Some(s) if !s.master_address.is_empty() => {
                let name = self.node_name(&s.master_address).unwrap_or("?");
                format!(
                    "The current master is {name} ({}), term {}",
                    s.master_address, s.term
                )
            }
            Some(_) => "No master is known right now".to_owned(),
            None => "The current master is unknown (no snapshot yet)".to_owned(),
        };
        let stale = if self.is_stale() {
            " (as last seen)"
        } else {
            ""
        };
        format!("Force an election? {current}{stale}.")
    }

    fn confirmed(&mut self, pending: Pending) -> Vec<Action> {
        match pending {
            Pending::Elect => {
                let id = self.start_task("election".into(), "asking");
                let node = self.action_target();
                let say = self.say(Level::Info, &format!("asking {node} for an election"));
                vec![
                    say,
                    Action::Elect {
                        id,
                        node,
                        to_node_id: String::new(),
                    },
                ]
            }
            Pending::Delete { job_id } => {
                let id = self.start_task(format!("delete {job_id}"), "asking");
                let node = self.action_target();
                let say = self.say(
                    Level::Info,
                    &format!("asking {node} to delete job {job_id}"),
                );
                vec![say, Action::Delete { id, node, job_id }]
            }
        }
    }

    fn open_retrieve(&mut self) -> Vec<Action> {
        let Some(job) = self.selected_job() else {
            return vec![self.report(Level::Warn, "no job selected".into())];
        };
        if classify_status(&job.status) != JobState::Completed {
            let text = format!("job {} has no output yet ({})", job.id, job.status);
            return vec![self.report(Level::Warn, text)];
        }
        let ext = job
            .params
            .as_ref()
            .map(|p| p.output_format.as_str())
            .filter(|f| !f.is_empty())
            .unwrap_or("mp4");
        let prompt = PathPrompt {
            job_id: job.id.clone(),
            path: format!("{}.{ext}", job.id),
            matches: Vec::new(),
            error: None,
        };
        self.modal = Some(Modal::Retrieve(prompt));
        Vec::new()
    }

    fn toggle_pause(&mut self) -> Vec<Action> {
        if self.paused_since.take().is_some() {
            let held = self.held.take();
            let text = format!("resumed ({} updates were held)", self.held_count);
            self.held_count = 0;
            let mut out = vec![self.say(Level::Info, &text)];
            if let Some(view) = held {
                out.extend(self.apply(view));
            }
            return out;
        }
        self.paused_since = Some(self.now_ms);
        vec![self.say(Level::Info, "paused live updates")]
    }

    fn move_pane(&mut self, delta: isize) {
        let at = PANES.iter().position(|p| *p == self.focus).unwrap_or(0) as isize;
        self.focus = PANES[(at + delta).rem_euclid(PANES.len() as isize) as usize];
    }

    fn move_row(&mut self, delta: isize) {
        let step = |at: usize, len: usize| -> usize {
            let last = len.saturating_sub(1) as isize;
            (at.min(last as usize) as isize + delta).clamp(0, last.max(0)) as usize
        };
        match self.focus {
            Pane::Nodes => self.node_sel = step(self.node_sel, self.nodes().len()),
            Pane::Jobs => {
                let at = step(self.selected_job_index().unwrap_or(0), self.jobs().len());
                let id = self.jobs().get(at).map(|j| j.id.clone());
                if id != self.job_sel {
                    self.shard_sel = 0;
                }
                self.job_sel = id;
            }
            Pane::Shards => {
                let len = self.selected_job().map(|j| j.shards.len()).unwrap_or(0);
                self.shard_sel = step(self.shard_sel, len);
            }
            Pane::Log => self.log_state.transition(if delta < 0 {
                TuiWidgetEvent::PrevPageKey
            } else {
                TuiWidgetEvent::NextPageKey
            }),
        }
    }
}
