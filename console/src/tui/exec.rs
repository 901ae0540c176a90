//! Performs the app's actions in the background: upload, retrieve, force
//! an election, list a directory for completion.
//!
//! Each runs as its own tokio task through the same client code as the
//! subcommands (`client.rs`, `transfer.rs`: sha256 on upload, temp file +
//! verify + rename on retrieve), reports progress as events, and always
//! ends with exactly one `Finished` event, even if it panicked, so a
//! failed action is a message in the console and never a crash.

use std::future::Future;

use anyhow::{Context, Result, bail};
use tokio::sync::mpsc;
use vidshard_proto::v1::{
    DeleteJobRequest, JobParams, LinkRequest, TriggerElectionRequest, UploadHeader,
};

use super::form::{self, Entry, UploadSpec};
use super::msg::{Action, Event, Outcome, TaskUpdate};
use super::task_bar::Bars;
use crate::client::{Node, Reach, rpc};
use crate::commands::{check_output_target, expected_output};
use crate::transfer;

/// Directory entries read at most for one completion.
const MAX_ENTRIES: usize = 10_000;

/// Runs actions, sending their progress and results to the app.
#[derive(Clone)]
pub struct Executor {
    tx: mpsc::Sender<Event>,
    home: Option<String>,
}

impl Executor {
    pub fn new(tx: mpsc::Sender<Event>) -> Self {
        let home = std::env::var("HOME").ok().filter(|h| !h.is_empty());
        Executor { tx, home }
    }

    /// Starts `action`; `Quit` and `Log` belong to the run loop.
    pub fn perform(&self, action: Action) {
        let home = self.home.clone();
        match action {
            Action::Quit | Action::Log(_) => {}
            Action::Upload { id, node, spec } => {
                let bars = Bars {
                    tx: self.tx.clone(),
                    id,
                };
                self.supervise(id, async move {
                    upload(&node, &spec, home.as_deref(), bars).await
                });
            }
            Action::Retrieve {
                id,
                node,
                job_id,
                path,
            } => {
                let bars = Bars {
                    tx: self.tx.clone(),
                    id,
                };
                let path = form::expand_home(&path, home.as_deref());
                self.supervise(
                    id,
                    async move { retrieve(&node, &job_id, &path, bars).await },
                );
            }
            Action::Elect {
                id,
                node,
                to_node_id,
            } => {
                self.supervise(id, async move { elect(&node, to_node_id).await });
            }
            Action::Delete { id, node, job_id } => {
                self.supervise(id, async move { delete(&node, job_id).await });
            }
            Action::Link { id, node, job_id } => {
                self.supervise(id, async move { link(&node, job_id).await });
            }
            Action::ListDir { input } => {
                let tx = self.tx.clone();
                tokio::spawn(async move {
                    let dir = form::listing_dir(&input, home.as_deref());
                    let result = tokio::task::spawn_blocking(move || list(&dir))
                        .await
                        .unwrap_or_else(|e| Err(e.to_string()));
                    let _ = tx.send(Event::Listing { input, result }).await;
                });
            }
        }
    }

    /// Runs `work` and reports its end, a panic included.
    fn supervise(&self, id: u64, work: impl Future<Output = Result<Outcome>> + Send + 'static) {
        let tx = self.tx.clone();
        let handle = tokio::spawn(work);
        tokio::spawn(async move {
            let result = match handle.await {
                Ok(Ok(outcome)) => Ok(outcome),
                Ok(Err(err)) => Err(crate::reason(&err)),
                Err(join) if join.is_panic() => {
                    Err("internal error: the task panicked (see the log)".into())
                }
                Err(_) => Err("cancelled".into()),
            };
            let update = TaskUpdate::Finished(result);
            let _ = tx.send(Event::Task { id, update }).await;
        });
    }
}

async fn upload(node: &str, spec: &UploadSpec, home: Option<&str>, bars: Bars) -> Result<Outcome> {
    let path = form::expand_home(&spec.path, home);
    let meta = tokio::fs::metadata(&path)
        .await
        .with_context(|| format!("cannot read {}", path.display()))?;
    if !meta.is_file() {
        bail!("{} is not a regular file", path.display());
    }
    let filename = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .with_context(|| format!("{} has no file name", path.display()))?;
    let mut reach = Reach::to_leader(node).await?;
    let header = UploadHeader {
        params: Some(JobParams {
            target_width: spec.width,
            target_height: spec.height,
            output_format: spec.format.to_owned(),
            codec: spec.codec.to_owned(),
            original_filename: filename,
            ..Default::default()
        }),
        requested_id: String::new(),
        expected_size: meta.len(),
        expected_sha256: String::new(),
        upload_key: transfer::new_upload_key(),
    };
    let bar = bars.bar("uploading", meta.len());
    let reply = transfer::upload(&mut reach, &path, header, bar).await?;
    if !reply.success {
        let reason = if reply.message.is_empty() {
            reply.status
        } else {
            reply.message
        };
        bail!("rejected by the node: {reason}");
    }
    Ok(Outcome::Uploaded {
        job_id: reply.id,
        status: reply.status,
    })
}

async fn retrieve(
    node: &str,
    job_id: &str,
    target: &std::path::Path,
    bars: Bars,
) -> Result<Outcome> {
    check_output_target(target)?;
    let mut reach = Reach::to_leader(node).await?;
    let (expected, total) = expected_output(&mut reach, job_id).await?;
    let verified = expected.sha256.as_deref().is_some_and(|s| !s.is_empty());
    let bar = bars.bar("downloading", total);
    let saved = transfer::retrieve(&mut reach, job_id, target, &expected, bar).await?;
    Ok(Outcome::Retrieved {
        path: saved.path.display().to_string(),
        bytes: saved.bytes,
        sha256: saved.sha256,
        verified,
    })
}

async fn delete(node: &str, job_id: String) -> Result<Outcome> {
    let node = Node::connect(node).await?;
    let reply = node
        .jobs()
        .delete_job(DeleteJobRequest { id: job_id.clone() })
        .await
        .map_err(rpc)?
        .into_inner();
    if !reply.deleted {
        anyhow::bail!("job {job_id} not deleted: {}", reply.message);
    }
    Ok(Outcome::Deleted {
        job_id,
        message: reply.message,
    })
}

async fn link(node: &str, job_id: String) -> Result<Outcome> {
    let node = Node::connect(node).await?;
    let reply = node
        .jobs()
        .link(LinkRequest {
            id: job_id.clone(),
            ttl_seconds: 0,
        })
        .await
        .map_err(rpc)?
        .into_inner();
    Ok(Outcome::Linked {
        job_id,
        watch_url: reply.watch_url,
        expires_unix: reply.expires_unix,
    })
}

async fn elect(node: &str, to_node_id: String) -> Result<Outcome> {
    let node = Node::connect(node).await?;
    let reply = node
        .cluster()
        .trigger_election(TriggerElectionRequest { to_node_id })
        .await
        .map_err(rpc)?
        .into_inner();
    Ok(Outcome::Election {
        accepted: reply.accepted,
        message: reply.message,
        new_master: reply.new_master_address,
        term: reply.term,
    })
}

/// Names and kinds of the entries of `dir` (symlinks followed).
fn list(dir: &std::path::Path) -> Result<Vec<Entry>, String> {
    let read = std::fs::read_dir(dir).map_err(|e| e.to_string())?;
    Ok(read
        .flatten()
        .take(MAX_ENTRIES)
        .map(|e| Entry {
            name: e.file_name().to_string_lossy().into_owned(),
            is_dir: std::fs::metadata(e.path())
                .map(|m| m.is_dir())
                .unwrap_or(false),
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listing_reads_names_and_kinds() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir(dir.path().join("sub")).expect("mkdir");
        std::fs::write(dir.path().join("a.mp4"), b"x").expect("write");
        let mut entries = list(dir.path()).expect("listed");
        entries.sort_by(|a, b| a.name.cmp(&b.name));
        let got: Vec<(&str, bool)> = entries
            .iter()
            .map(|e| (e.name.as_str(), e.is_dir))
            .collect();
        assert_eq!(got, vec![("a.mp4", false), ("sub", true)]);
        assert!(list(&dir.path().join("missing")).is_err());
    }

    #[tokio::test]
    async fn failed_actions_end_with_one_message() {
        let (tx, mut rx) = mpsc::channel(8);
        let exec = Executor::new(tx);
        let spec = UploadSpec {
            path: "/nonexistent/clip.mp4".into(),
            width: 640,
            height: -1,
            format: "mp4",
            codec: "",
        };
        exec.perform(Action::Upload {
            id: 7,
            node: "127.0.0.1:1".into(),
            spec,
        });
        let Some(Event::Task {
            id,
            update: TaskUpdate::Finished(Err(reason)),
        }) = rx.recv().await
        else {
            panic!("expected a failed task");
        };
        assert_eq!(id, 7);
        assert!(
            reason.starts_with("cannot read /nonexistent/clip.mp4"),
            "{reason}"
        );
        exec.supervise(8, async { panic!("boom") });
        let Some(Event::Task {
            id: 8,
            update: TaskUpdate::Finished(Err(reason)),
        }) = rx.recv().await
        else {
            panic!("expected the panic reported");
        };
        assert!(reason.contains("panicked"));
    }
}
