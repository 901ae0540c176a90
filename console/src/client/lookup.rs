//! Asking a node about one job: a lookup with the original-protocol
//! fallback, and polling until the job is final. Progress goes to a
//! caller's callback; this module draws nothing.

use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use tonic::Code;
use vidshard_proto::replication::VideoStatusRequest;
use vidshard_proto::v1::JobInfo;

use super::Node;
use super::error::{RpcError, rpc};
use crate::job::{JobState, classify_status};

/// How often `wait_for_job` polls.
pub const POLL_INTERVAL: Duration = Duration::from_millis(500);
/// How long `wait_for_job` rides out an unreachable node (e.g. a master failover).
const UNAVAILABLE_GRACE: Duration = Duration::from_secs(30);

/// What a job lookup found: the rich `vidshard.v1` view, or only the
/// original protocol's id/status/message from an original master.
#[derive(Debug, Clone)]
pub enum Lookup {
    Job(Box<JobInfo>),
    Legacy {
        id: String,
        status: String,
        message: String,
    },
}

/// Looks a job up, falling back to `GetVideoStatus` when the node does not
/// implement `vidshard.v1.Jobs`. An unknown id is an error either way.
pub async fn lookup_job(node: &Node, id: &str) -> Result<Lookup> {
    match node.get_job_raw(id).await {
        Ok(job) => Ok(Lookup::Job(Box::new(job))),
        Err(status) if status.code() == Code::Unimplemented => {
            let request = VideoStatusRequest {
                video_id: id.to_owned(),
            };
            let reply = node
                .master()
                .get_video_status(request)
                .await
                .map_err(rpc)?
                .into_inner();
            if reply.status == "not_found" {
                return Err(RpcError {
                    code: Code::NotFound,
                    message: format!("no job {id:?}"),
                }
                .into());
            }
            let id = if reply.video_id.is_empty() {
                id.to_owned()
            } else {
                reply.video_id
            };
            Ok(Lookup::Legacy {
                id,
                status: reply.status,
                message: reply.message,
            })
        }
        Err(status) => Err(rpc(status)),
    }
}

/// Polls `GetJob` until the job is final or `timeout` passes, handing every
/// answer to `on_update` (the caller's progress display).
/// Returns the final job whatever its outcome; the caller judges it.
pub async fn wait_for_job(
    node: &Node,
    id: &str,
    timeout: Duration,
    mut on_update: impl FnMut(&JobInfo),
) -> Result<JobInfo> {
    let started = Instant::now();
    let mut unavailable_since: Option<Instant> = None;
    let mut last: Option<JobInfo> = None;
    loop {
        match node.get_job_raw(id).await {
            Ok(job) => {
                unavailable_since = None;
                on_update(&job);
                if job.finished || classify_status(&job.status) != JobState::Working {
                    return Ok(job);
                }
                last = Some(job);
            }
            Err(status) if status.code() == Code::Unavailable => {
                let since = *unavailable_since.get_or_insert_with(Instant::now);
                if since.elapsed() > UNAVAILABLE_GRACE {
                    return Err(rpc(status)).with_context(|| {
                        format!("lost node {} while waiting for job {id:?}", node.address)
                    });
                }
            }
            Err(status) => return Err(rpc(status)),
        }
        if started.elapsed() >= timeout {
            let state = last
                .map(|job| {
                    format!(
                        " (status {}, {})",
                        job.status,
                        crate::format::percent(job.progress)
                    )
                })
                .unwrap_or_default();
            bail!(
                "timed out after {} s waiting for job {id:?}{state}",
                timeout.as_secs()
            );
        }
        tokio::time::sleep(POLL_INTERVAL).await;
    }
}
