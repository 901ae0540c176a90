//! The messages of the console: [`Event`]s that come in (keys, the watch
//! stream, background actions, the clock) and [`Action`]s that go out.
//! Plain data, so tests can build and compare them.
//!
//! A leaf of `tui/` next to `state.rs`: it imports only the form, log line
//! and state types, never `app/`.

use crossterm::event::KeyEvent;
use log::Level;
use vidshard_proto::v1::ClusterSnapshot;

use super::form::{Entry, UploadSpec};
use super::logview::LogLine;
use super::state::or_none;

/// Everything that can happen to the console.
#[derive(Debug)]
pub enum Event {
    Key(KeyEvent),
    /// The terminal changed size: only a redraw is needed.
    Resize,
    Tick {
        now_ms: u64,
    },
    Net {
        at_ms: u64,
        net: NetEvent,
    },
    Task {
        id: u64,
        update: TaskUpdate,
    },
    /// A directory listing asked for by [`Action::ListDir`].
    Listing {
        input: String,
        result: Result<Vec<Entry>, String>,
    },
}

/// What the watch task reports.
#[derive(Debug, Clone)]
pub enum NetEvent {
    Connecting {
        target: String,
        attempt: u32,
    },
    Connected {
        target: String,
    },
    Snapshot(Box<ClusterSnapshot>),
    /// The stream failed; `attempt` (1-based) goes to `next` in `retry_in_ms`.
    Lost {
        target: String,
        error: String,
        next: String,
        attempt: u32,
        retry_in_ms: u64,
    },
}

/// Progress or end of a background action.
#[derive(Debug, Clone, PartialEq)]
pub enum TaskUpdate {
    Progress {
        phase: &'static str,
        done: u64,
        total: u64,
    },
    Finished(Result<Outcome, String>),
}

/// What a background action achieved.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    Uploaded {
        job_id: String,
        status: String,
    },
    /// `verified`: the node published a sha256 and the download matched it.
    Retrieved {
        path: String,
        bytes: u64,
        sha256: String,
        verified: bool,
    },
    Election {
        accepted: bool,
        message: String,
        new_master: String,
        term: u64,
    },
    Deleted {
        job_id: String,
        message: String,
    },
    /// A watch link of a ladder job (valid until `expires_unix`).
    Linked {
        job_id: String,
        watch_url: String,
        expires_unix: u64,
    },
}

/// What the run loop must do.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    Quit,
    Log(LogLine),
    Upload {
        id: u64,
        node: String,
        spec: UploadSpec,
    },
    Retrieve {
        id: u64,
        node: String,
        job_id: String,
        path: String,
    },
    Elect {
        id: u64,
        node: String,
        to_node_id: String,
    },
    Delete {
        id: u64,
        node: String,
        job_id: String,
    },
    Link {
        id: u64,
        node: String,
        job_id: String,
    },
    /// List the directory of `input` for Tab completion.
    ListDir {
        input: String,
    },
}

impl Outcome {
    /// The message shown for an outcome, and how loud.
    pub fn describe(&self) -> (Level, String) {
        match self {
            Outcome::Uploaded { job_id, status } => {
                (Level::Info, format!("uploaded: job {job_id} ({status})"))
            }
            Outcome::Retrieved {
                path,
                bytes,
                sha256,
                verified,
            } => {
                let check = if *verified {
                    "verified"
                } else {
                    "not published by the node, not checked"
                };
                let size = crate::format::bytes(*bytes);
                (
                    Level::Info,
                    format!("saved {path} ({size}, sha256 {} {check})", short(sha256)),
                )
            }
            Outcome::Election {
                accepted: true,
                message,
                new_master,
                term,
            } => (
                Level::Info,
                format!(
                    "election accepted: master {} term {term}: {message}",
                    or_none(new_master)
                ),
            ),
            Outcome::Election {
                accepted: false,
                message,
                ..
            } => (Level::Warn, format!("election not accepted: {message}")),
            Outcome::Deleted { job_id, message } => {
                (Level::Info, format!("deleted job {job_id}: {message}"))
            }
            Outcome::Linked {
                job_id,
                watch_url,
                expires_unix,
            } => (
                Level::Info,
                format!("watch {job_id} (until unix {expires_unix}): {watch_url}"),
            ),
        }
    }
}

/// First 12 hex digits of a digest.
pub fn short(sha256: &str) -> &str {
    sha256.get(..12).unwrap_or(sha256)
}
