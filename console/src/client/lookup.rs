//! Asking a node about one job: a lookup with the original-protocol
//! fallback, and polling until the job is final. Progress goes to a
//! caller's callback; this module draws nothing.

use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use tonic::Code;
use vidshard_proto::replication::VideoStatusRequest;
use vidshard_proto::v1::JobInfo;

use super::Reach;
use super::error::{RpcError, rpc};
use crate::job::{JobState, classify_status};

/// How often `wait_for_job` polls.
pub const POLL_INTERVAL: Duration = Duration::from_millis(500);

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

/// Looks a job up (through any node that answers), falling back to
/// `GetVideoStatus` when the node does not implement `vidshard.v1.Jobs`.
/// An unknown id is an error either way.
pub async fn lookup_job(reach: &mut Reach, id: &str) -> Result<Lookup> {
    let found = reach
        .call(|node| {
            let id = id.to_owned();
            async move {
                match node.get_job_raw(&id).await {
                    Ok(job) => Ok(Some(job)),
                    Err(status) if status.code() == Code::Unimplemented => Ok(None),
                    Err(status) => Err(status),
                }
            }
        })
        .await?;
    if let Some(job) = found {
        return Ok(Lookup::Job(Box::new(job)));
    }
    let node = reach.node();
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

/// Polls `GetJob` (a long poll of [`POLL_INTERVAL`], so the end is heard
/// the moment it comes) until the job is final or `timeout` passes,
/// handing every answer to `on_update` (the caller's progress display), through any node
/// of the cluster that answers (see [`Reach`]).
/// Returns the final job whatever its outcome; the caller judges it.
pub async fn wait_for_job(
    reach: &mut Reach,
    id: &str,
    timeout: Duration,
    mut on_update: impl FnMut(&JobInfo),
) -> Result<JobInfo> {
    let started = Instant::now();
    loop {
        let asked = Instant::now();
        // The job exists (its upload was acknowledged): a node that does
        // not know it is behind the master (restarted, or cut off), so the
        // poll moves on to another node, as for a lost one.
        let job = reach
            .call(|node| {
                let id = id.to_owned();
                async move {
                    node.get_job_waiting(&id, POLL_INTERVAL)
                        .await
                        .map_err(|status| match status.code() {
                            tonic::Code::NotFound => tonic::Status::unavailable(format!(
                                "{} does not know job {id:?} (behind the master?): {}",
                                node.address,
                                status.message()
                            )),
                            _ => status,
                        })
                }
            })
            .await?;
        on_update(&job);
        if job.finished || classify_status(&job.status) != JobState::Working {
            return Ok(job);
        }
        if started.elapsed() >= timeout {
            bail!(
                "timed out after {} s waiting for job {id:?} (status {}, {})",
                timeout.as_secs(),
                job.status,
                crate::format::percent(job.progress)
            );
        }
        // A node that answered early without the job being final does not
        // know the long poll: wait out the rest of the interval here.
        tokio::time::sleep(POLL_INTERVAL.saturating_sub(asked.elapsed())).await;
    }
}
