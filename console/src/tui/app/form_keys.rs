//! Keys of the upload form and the retrieve path prompt, and applying a
//! directory listing to them (Tab completion). Part of `App::handle`.

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

use super::App;
use crate::tui::form::{self, Entry, PathPrompt, UploadForm};
use crate::tui::keys::Command;
use crate::tui::msg::Action;
use crate::tui::state::{Modal, or_none};

impl App {
    pub(super) fn upload_key(
        &mut self,
        mut form: UploadForm,
        command: Option<Command>,
        key: &KeyEvent,
    ) -> Vec<Action> {
        let mut out = Vec::new();
        match command {
            Some(Command::Cancel) => return out,
            Some(Command::Submit) => match form.validate() {
                Ok(spec) => {
                    let label = format!("upload {}", spec.path);
                    let id = self.start_task(label, "starting");
                    let node = self.action_target();
                    return vec![Action::Upload { id, node, spec }];
                }
                Err(error) => form.error = Some(error),
            },
            Some(Command::Complete) if form.field == form::Field::Path => {
                out.push(Action::ListDir {
                    input: form.path.clone(),
                });
            }
            Some(Command::Complete | Command::NextField) => form.move_field(1),
            Some(Command::PrevField) => form.move_field(-1),
            Some(Command::FormatNext) => form.cycle_format(1),
            Some(Command::FormatPrev) => form.cycle_format(-1),
            _ => match edit(key) {
                Some(Edit::Push(c)) => form.type_char(c),
                Some(Edit::Pop) => form.backspace(),
                Some(Edit::Clear) => form.clear_field(),
                None => {}
            },
        }
        self.modal = Some(Modal::Upload(form));
        out
    }

    pub(super) fn retrieve_key(
        &mut self,
        mut prompt: PathPrompt,
        command: Option<Command>,
        key: &KeyEvent,
    ) -> Vec<Action> {
        let mut out = Vec::new();
        match command {
            Some(Command::Cancel) => return out,
            Some(Command::Submit) if prompt.path.trim().is_empty() => {
                prompt.error = Some("the output path is empty".into());
            }
            Some(Command::Submit) => {
                let path = prompt.path.trim().to_owned();
                let id =
                    self.start_task(format!("retrieve {} → {path}", prompt.job_id), "starting");
                let node = self.action_target();
                return vec![Action::Retrieve {
                    id,
                    node,
                    job_id: prompt.job_id,
                    path,
                }];
            }
            Some(Command::Complete) => out.push(Action::ListDir {
                input: prompt.path.clone(),
            }),
            _ => {
                match edit(key) {
                    Some(Edit::Push(c)) => prompt.path.push(c),
                    Some(Edit::Pop) => _ = prompt.path.pop(),
                    Some(Edit::Clear) => prompt.path.clear(),
                    None => {}
                }
                prompt.matches.clear();
                prompt.error = None;
            }
        }
        self.modal = Some(Modal::Retrieve(prompt));
        out
    }

    /// Applies a directory listing to the open path field, if it still
    /// holds the text the listing was asked for.
    pub(super) fn on_listing(&mut self, input: &str, result: Result<Vec<Entry>, String>) {
        let (path, matches, error) = match &mut self.modal {
            Some(Modal::Upload(f)) if f.field == form::Field::Path => {
                (&mut f.path, &mut f.matches, &mut f.error)
            }
            Some(Modal::Retrieve(p)) => (&mut p.path, &mut p.matches, &mut p.error),
            _ => return,
        };
        if path != input {
            return;
        }
        match result {
            Ok(entries) => {
                let done = form::complete(input, &entries);
                *path = done.text;
                *matches = done.matches;
                *error = None;
            }
            Err(e) => *error = Some(format!("cannot list {}: {e}", or_none(input))),
        }
    }
}

/// A text edit of a field.
enum Edit {
    Push(char),
    Pop,
    Clear,
}

/// Text editing shared by the fields: characters, Backspace, Ctrl-U.
fn edit(key: &KeyEvent) -> Option<Edit> {
    let ctrl = key.modifiers.contains(KeyModifiers::CONTROL);
    match key.code {
        KeyCode::Char('u') if ctrl => Some(Edit::Clear),
        KeyCode::Char(c) if !ctrl && !c.is_control() => Some(Edit::Push(c)),
        KeyCode::Backspace => Some(Edit::Pop),
        _ => None,
    }
}
