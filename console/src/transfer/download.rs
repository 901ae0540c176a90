//! The download side: streaming a job's output into a temp file next to the
//! target, verifying its size and sha256, and renaming it into place. The
//! temp file is removed if anything fails or the task is dropped. A node
//! lost mid-download is replaced by the next that answers, which resumes
//! at the byte reached (the sha256 covers the whole file either way).

use std::path::{Path, PathBuf};

use std::pin::Pin;
use std::time::Instant;

use anyhow::{Context, Result, anyhow, bail};
use futures::{Stream, StreamExt};
use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;
use tonic::{Code, Status};
use vidshard_proto::replication::RetrieveVideoRequest;
use vidshard_proto::v1::RetrieveRequest;

use super::{Expected, Progress, Saved};
use crate::client::{FAILOVER_GRACE, Node, Reach, node_lost, rpc};

/// Temp file next to `target`: `<dir>/.<name>.partial-<pid>`.
pub fn temp_path(target: &Path, pid: u32) -> Result<PathBuf> {
    let name = target
        .file_name()
        .ok_or_else(|| anyhow!("output path {} has no file name", target.display()))?;
    let dir = match target.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir.to_owned(),
        _ => PathBuf::from("."),
    };
    let mut temp = std::ffi::OsString::from(".");
    temp.push(name);
    temp.push(format!(".partial-{pid}"));
    Ok(dir.join(temp))
}

/// Deletes the temp file unless the download was committed.
struct TempGuard {
    path: PathBuf,
    armed: bool,
}

impl Drop for TempGuard {
    fn drop(&mut self) {
        if self.armed {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

type Bytes = Pin<Box<dyn Stream<Item = Result<Vec<u8>, Status>> + Send>>;

/// Opens job `id`'s output at byte `offset`: `vidshard.v1.Jobs/Retrieve`
/// (resumable), or from an original master its `RetrieveVideo` (from the
/// start only). The flag says whether a broken stream can be resumed.
async fn open(node: &Node, id: &str, offset: u64) -> Result<(Bytes, bool), Status> {
    let request = RetrieveRequest {
        id: id.to_owned(),
        offset,
        ..Default::default()
    };
    match node.jobs().retrieve(request).await {
        Ok(reply) => {
            let chunks = reply.into_inner().map(|c| c.map(|c| c.data));
            Ok((Box::pin(chunks), true))
        }
        Err(status) if status.code() == Code::Unimplemented && offset == 0 => {
            let request = RetrieveVideoRequest {
                video_id: id.to_owned(),
            };
            let reply = node.master().retrieve_video(request).await?;
            let chunks = reply.into_inner().map(|c| c.map(|c| c.data_chunk));
            Ok((Box::pin(chunks), false))
        }
        Err(status) => Err(status),
    }
}

/// Streams job `id`'s output into `target` atomically, verifying it.
pub async fn retrieve(
    reach: &mut Reach,
    id: &str,
    target: &Path,
    expected: &Expected,
    bar: impl Progress,
) -> Result<Saved> {
    if target.is_dir() {
        bail!("output path {} is a directory", target.display());
    }
    let temp = temp_path(target, std::process::id())?;
    if let Some(dir) = temp.parent().filter(|d| !d.is_dir()) {
        bail!("output directory {} does not exist", dir.display());
    }
    let mut file = tokio::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&temp)
        .await
        .with_context(|| format!("cannot create {}", temp.display()))?;
    let mut guard = TempGuard {
        path: temp.clone(),
        armed: true,
    };

    let mut hasher = Sha256::new();
    let mut bytes = 0u64;
    // A lost node costs a reconnect, not the download: the stream is
    // reopened on the next node that answers at the byte reached.
    let mut deadline = Instant::now() + FAILOVER_GRACE;
    'download: loop {
        let (mut stream, resumable) = match open(reach.node(), id, bytes).await {
            Ok(opened) => opened,
            Err(status) if node_lost(&status) && Instant::now() < deadline => {
                reach.recover(deadline).await;
                continue;
            }
            Err(status) => {
                bar.abandon();
                return Err(rpc(status))
                    .with_context(|| format!("download of job {id:?} failed after {bytes} bytes"));
            }
        };
        loop {
            let chunk = match stream.next().await {
                Some(Ok(chunk)) => chunk,
                None => break 'download,
                Some(Err(status))
                    if resumable && node_lost(&status) && Instant::now() < deadline =>
                {
                    reach.recover(deadline).await;
                    continue 'download;
                }
                Some(Err(status)) => {
                    bar.abandon();
                    return Err(rpc(status)).with_context(|| {
                        format!("download of job {id:?} failed after {bytes} bytes")
                    });
                }
            };
            hasher.update(&chunk);
            file.write_all(&chunk)
                .await
                .with_context(|| format!("cannot write {}", temp.display()))?;
            bytes += chunk.len() as u64;
            bar.inc(chunk.len() as u64);
            deadline = Instant::now() + FAILOVER_GRACE;
        }
    }
    file.flush().await?;
    file.sync_all()
        .await
        .with_context(|| format!("cannot sync {}", temp.display()))?;
    drop(file);
    bar.finish();

    let sha256 = hex::encode(hasher.finalize());
    if let Some(want) = expected.bytes.filter(|&b| b > 0 && b != bytes) {
        bail!("download of job {id:?} is {bytes} bytes, expected {want}; discarded");
    }
    let mismatch = expected
        .sha256
        .as_deref()
        .filter(|want| !want.is_empty() && !want.eq_ignore_ascii_case(&sha256));
    if let Some(want) = mismatch {
        bail!("sha256 mismatch for job {id:?}: got {sha256}, expected {want}; discarded");
    }
    tokio::fs::rename(&temp, target)
        .await
        .with_context(|| format!("cannot move {} to {}", temp.display(), target.display()))?;
    guard.armed = false;
    if let Some(dir) = temp.parent() {
        // Best effort: make the rename durable.
        if let Ok(dir) = tokio::fs::File::open(dir).await {
            let _ = dir.sync_all().await;
        }
    }
    Ok(Saved {
        path: target.to_owned(),
        bytes,
        sha256,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn temp_paths_sit_next_to_the_target() {
        assert_eq!(
            temp_path(Path::new("out/video.mp4"), 42).expect("has a name"),
            PathBuf::from("out/.video.mp4.partial-42")
        );
        assert_eq!(
            temp_path(Path::new("video.mp4"), 7).expect("has a name"),
            PathBuf::from("./.video.mp4.partial-7")
        );
        assert_eq!(
            temp_path(Path::new("/tmp/a b.webm"), 1).expect("has a name"),
            PathBuf::from("/tmp/.a b.webm.partial-1")
        );
        assert!(temp_path(Path::new("/"), 1).is_err());
        assert!(temp_path(Path::new("out/.."), 1).is_err());
    }
}
