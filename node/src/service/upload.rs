//! Taking an upload: stream the bytes into the blob store (≤1 MiB at a
//! time, hashed on the way), check them, and accept a job. Shared by the
//! original `UploadVideo` and our `Jobs/Upload`. What is accepted is decided
//! by the pure `upload_check::UploadCheck`; this is its async shell. A
//! client that goes away mid-stream leaves no job and no temp file (the
//! writer cleans up).

use futures::{Stream, StreamExt};
use tonic::Status;

use crate::cluster::blobs;
use crate::context::Ctx;
use crate::jobs::{Command, CommandReply, now_unix_ms};
use crate::params::RawParams;
use crate::pipeline;
use crate::store::StoreError;

use super::upload_check::UploadCheck;

/// What the first message of an upload says.
#[derive(Debug, Default)]
pub struct UploadStart {
    pub requested_id: String,
    pub params: RawParams,
    pub expected_size: u64,
    pub expected_sha256: String,
}

/// How an upload ended, in the words the client gets.
#[derive(Debug)]
pub enum Outcome {
    Accepted { id: String, size: u64 },
    Refused(String),
}

/// The client's answer when the upload could not be written. A full
/// disk is RESOURCE_EXHAUSTED with a plain reason (the client can only
/// wait for space; the temp file goes when the writer is dropped, so the
/// node has its space back at once); anything else is an internal error.
fn storing_failed(error: StoreError, received: u64) -> Status {
    if error.is_disk_full() {
        tracing::warn!(bytes = received, reason = %error, "upload dropped: the disk is full");
        Status::resource_exhausted(format!(
            "{error}: the upload does not fit (dropped after {received} bytes); \
             free disk space on the node and upload again"
        ))
    } else {
        Status::internal(format!("storing the upload: {error}"))
    }
}

/// Stores the upload and starts its job. `first` is the data of the
/// header message (the original protocol carries bytes in it too).
pub async fn ingest<S>(
    ctx: &Ctx,
    start: UploadStart,
    first: Vec<u8>,
    mut rest: S,
) -> Result<Outcome, Status>
where
    S: Stream<Item = Result<Vec<u8>, Status>> + Unpin + Send,
{
    if !ctx.is_master() && ctx.consensus.leader().is_none() {
        // An election may be running: give it a moment before refusing.
        ctx.consensus
            .wait_for_leader(std::time::Duration::from_secs(5))
            .await;
    }
    if !ctx.is_master() {
        let master = ctx.master_address().unwrap_or_else(|| "unknown".into());
        return Ok(Outcome::Refused(format!(
            "this node is a worker; upload to the master at {master}"
        )));
    }
    let params = match start.params.validate() {
        Ok(p) => p,
        Err(reason) => return Ok(Outcome::Refused(reason)),
    };
    let Ok(_receiving) = ctx.uploads.clone().try_acquire_owned() else {
        return Err(Status::resource_exhausted(format!(
            "this node is already receiving {} uploads; retry later",
            ctx.config.max_uploads
        )));
    };
    let idle = std::time::Duration::from_secs_f64(ctx.config.upload_idle_seconds.max(0.1));
    let mut check = UploadCheck::new(
        ctx.config.max_upload_bytes,
        start.expected_size,
        &start.expected_sha256,
    );
    let mut writer = ctx.store.writer().await.map_err(|e| storing_failed(e, 0))?;
    let mut pending = Some(first);
    loop {
        let chunk = match pending.take() {
            Some(c) => c,
            None => match tokio::time::timeout(idle, rest.next()).await {
                Ok(Some(c)) => c?,
                Ok(None) => break,
                // Dropping the writer removes the temp file.
                Err(_) => {
                    return Err(Status::deadline_exceeded(format!(
                        "no data for {:.0} s: upload dropped",
                        idle.as_secs_f64()
                    )));
                }
            },
        };
        if let Err(refusal) = check.on_chunk(chunk.len() as u64) {
            return Ok(Outcome::Refused(refusal.to_string()));
        }
        writer
            .write(&chunk)
            .await
            .map_err(|e| storing_failed(e, check.received))?;
    }
    // Judged before the bytes enter the store, so a refused upload never
    // touches a stored blob (an identical earlier upload keeps its copy).
    if let Err(refusal) = check.on_end(&writer.sha256()) {
        return Ok(Outcome::Refused(refusal.to_string()));
    }
    let size = writer.size();
    let blob = writer.finish().await.map_err(|e| storing_failed(e, size))?;
    // Until `Accept` is applied nothing in the table refers to the blob;
    // the copy to a backup node can take minutes for a large upload.
    let _pinned = ctx.store.pin(&blob.sha256);
    let requested_id =
        crate::ids::sanitize(&start.requested_id).unwrap_or_else(crate::ids::generate);
    // Acknowledged only once a second node holds the bytes too (when
    // there is one), so losing this node loses no acknowledged upload.
    let purpose = format!("source of upload {requested_id}");
    let (backups, errors) = blobs::replicate(ctx, &blob, 1, &purpose).await;
    if backups.is_empty() && !errors.is_empty() {
        return Err(Status::unavailable(format!(
            "no backup node could take a copy of the upload, so it is not accepted: {}",
            errors.join("; ")
        )));
    }
    let mut source_holders = vec![ctx.node_id.clone()];
    source_holders.extend(backups);
    let command = Command::Accept {
        requested_id,
        params,
        source: blob.clone(),
        source_holders,
        at_ms: now_unix_ms(),
    };
    let id = match ctx.consensus.write(command).await {
        Ok(CommandReply::Applied { job }) => job,
        Ok(CommandReply::Ignored { reason }) => return Err(Status::internal(reason)),
        Err(e) => {
            return Err(Status::unavailable(format!(
                "the upload could not be recorded (no quorum, or this node stopped leading): {e}"
            )));
        }
    };
    tracing::info!(job = %id, bytes = size, "upload accepted");
    if let Some(lead) = ctx.leadership.current() {
        ctx.tasks
            .spawn(pipeline::run_job(ctx.clone(), id.clone(), lead));
    }
    Ok(Outcome::Accepted { id, size })
}
