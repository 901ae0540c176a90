//! Taking an upload: stream the bytes into the blob store (≤1 MiB at a
//! time, hashed on the way), check them, and accept a job. Shared by the
//! original `UploadVideo` and our `Jobs/Upload` (their handlers convert). What is accepted is decided
//! by the pure `upload_check::UploadCheck`; this is its async shell. A
//! client that goes away mid-stream leaves no job and no temp file (the
//! writer cleans up).

use std::sync::Arc;

use futures::{Stream, StreamExt};

use super::Master;
use super::upload_check::{Refusal, UploadCheck, pace_deadline};
use crate::cluster::blobs;
use crate::jobs::{Command, CommandReply, now_unix_ms};
use crate::params::RawParams;
use crate::store::StoreError;

/// How long an upload of the same bytes (by the sha256 the client
/// announces) with the same options is taken as a retry of the first.
pub const REPEAT_WINDOW_MS: u64 = 10 * 60 * 1000;

/// What the first message of an upload says.
#[derive(Debug, Default)]
pub struct UploadStart {
    pub requested_id: String,
    pub params: RawParams,
    pub expected_size: u64,
    pub expected_sha256: String,
    /// The client's idempotency key (empty: not a retry of anything).
    pub upload_key: String,
}

/// One message after an upload's header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UploadPiece {
    /// Video bytes.
    Bytes(Vec<u8>),
    /// The last message: what the client hashed while sending (v1 only).
    Trailer { sha256: String, size: u64 },
}

/// How an upload ended, in the words the client gets.
#[derive(Debug)]
pub enum Outcome {
    Accepted { id: String, size: u64 },
    Refused(String),
}

/// Why an upload was not taken (a refusal in words is an [`Outcome`]).
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error("this node is already receiving {max} uploads; retry later")]
    Busy { max: u32 },
    #[error("no data for {seconds:.0} s: upload dropped")]
    Idle { seconds: f64 },
    /// The upload could not be written; the temp file is gone already.
    #[error("storing the upload: {error}")]
    Storing { error: StoreError, received: u64 },
    #[error("no backup node could take a copy of the upload, so it is not accepted: {0}")]
    NoBackup(String),
    #[error("the upload could not be recorded (no quorum, or this node stopped leading): {0}")]
    NotRecorded(String),
    #[error("the upload was not recorded: {0}")]
    Ignored(String),
    /// The client's stream broke.
    #[error("the upload stream broke: {0}")]
    Broken(tonic::Status),
}

fn storing_failed(error: StoreError, received: u64) -> IngestError {
    if error.is_disk_full() {
        tracing::warn!(bytes = received, reason = %error, "upload dropped: the disk is full");
    }
    IngestError::Storing { error, received }
}

/// Stores the upload and starts its job. `first` is the data of the
/// header message (the original protocol carries bytes in it too).
pub async fn ingest<S>(
    master: &Arc<Master>,
    start: UploadStart,
    first: Vec<u8>,
    mut rest: S,
) -> Result<Outcome, IngestError>
where
    S: Stream<Item = Result<UploadPiece, tonic::Status>> + Unpin + Send,
{
    let ctx = &master.sys;
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
        Err(reason) => return Ok(Outcome::Refused(reason.to_string())),
    };
    let repeat = ctx
        .jobs
        .lock()
        .repeat_of(
            &start.upload_key,
            &start.expected_sha256,
            &params,
            &start.requested_id,
            now_unix_ms(),
            REPEAT_WINDOW_MS,
        )
        .map(|job| (job.id.clone(), job.source.size));
    if let Some((id, size)) = repeat {
        tracing::info!(job = %id, "upload repeats a recent one: answered with its job");
        return Ok(Outcome::Accepted { id, size });
    }
    let Ok(_receiving) = master.uploads.clone().try_acquire_owned() else {
        return Err(IngestError::Busy {
            max: ctx.config.max_uploads,
        });
    };
    let idle = std::time::Duration::from_secs_f64(ctx.config.upload_idle_seconds.max(0.1));
    let mut check = UploadCheck::new(
        ctx.config.max_upload_bytes,
        start.expected_size,
        &start.expected_sha256,
    );
    let mut writer = ctx.store.writer().await.map_err(|e| storing_failed(e, 0))?;
    let mut pending = Some(UploadPiece::Bytes(first));
    let mut trailer_seen = false;
    let started = std::time::Instant::now();
    let mut last_chunk = started;
    loop {
        let piece = match pending.take() {
            Some(c) => c,
            None => {
                // Dropped when nothing arrives for `idle`, or when the
                // average pace falls below the minimum (a trickle must
                // not hold an upload slot for ever).
                let pace_left =
                    pace_deadline(check.received, idle).saturating_sub(started.elapsed());
                match tokio::time::timeout(idle.min(pace_left), rest.next()).await {
                    Ok(Some(c)) => c.map_err(IngestError::Broken)?,
                    Ok(None) => break,
                    // Dropping the writer removes the temp file.
                    Err(_) if check.received == 0 || last_chunk.elapsed() >= idle => {
                        return Err(IngestError::Idle {
                            seconds: idle.as_secs_f64(),
                        });
                    }
                    Err(_) => {
                        let slow = Refusal::TooSlow {
                            received: check.received,
                            seconds: started.elapsed().as_secs_f64(),
                        };
                        tracing::warn!(bytes = check.received, "upload dropped: {slow}");
                        return Ok(Outcome::Refused(slow.to_string()));
                    }
                }
            }
        };
        last_chunk = std::time::Instant::now();
        let chunk = match piece {
            _ if trailer_seen => return Ok(Outcome::Refused(Refusal::AfterTrailer.to_string())),
            UploadPiece::Bytes(bytes) => bytes,
            UploadPiece::Trailer { sha256, size } => {
                trailer_seen = true;
                if let Err(refusal) = check.on_trailer(&sha256, size) {
                    return Ok(Outcome::Refused(refusal.to_string()));
                }
                continue;
            }
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
        return Err(IngestError::NoBackup(errors.join("; ")));
    }
    let mut source_holders = vec![ctx.node_id.clone()];
    source_holders.extend(backups);
    let command = Command::Accept {
        requested_id,
        upload_key: start.upload_key.clone(),
        params,
        source: blob.clone(),
        source_holders,
        at_ms: now_unix_ms(),
    };
    let id = match ctx.consensus.write(command).await {
        Ok(CommandReply::Applied { job }) => job,
        Ok(CommandReply::Ignored { reason }) => return Err(IngestError::Ignored(reason)),
        Err(e) => return Err(IngestError::NotRecorded(e.to_string())),
    };
    tracing::info!(job = %id, bytes = size, "upload accepted");
    if let Some(lead) = master.leadership.current() {
        ctx.tasks
            .spawn(super::run_job(master.clone(), id.clone(), lead));
    }
    Ok(Outcome::Accepted { id, size })
}
