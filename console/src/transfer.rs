//! Moving video bytes: hashing a local file, streaming it up with
//! `Jobs.Upload`, and streaming a job's output down with `RetrieveVideo`
//! into a temp file that is verified and then renamed into place.
//!
//! Files are always read and written in chunks of at most `MAX_CHUNK`;
//! a whole video is never held in memory.

use std::io::Read;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, anyhow, bail};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use vidshard_proto::MAX_CHUNK;
use vidshard_proto::replication::RetrieveVideoRequest;
use vidshard_proto::v1::upload_request::Msg;
use vidshard_proto::v1::{UploadHeader, UploadReply, UploadRequest};

use crate::client::{Node, rpc};
use crate::progress::ByteBar;

/// Size and lowercase hex sha256 of a local file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileDigest {
    pub size: u64,
    pub sha256: String,
}

/// A verified output written to disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Saved {
    pub path: PathBuf,
    pub bytes: u64,
    pub sha256: String,
}

/// Hashes `path` in `MAX_CHUNK` reads on a blocking thread.
pub async fn digest_file(path: &Path, bar: ByteBar) -> Result<FileDigest> {
    let path = path.to_owned();
    tokio::task::spawn_blocking(move || -> Result<FileDigest> {
        let mut file = std::fs::File::open(&path)
            .with_context(|| format!("cannot open {}", path.display()))?;
        let mut hasher = Sha256::new();
        let mut buf = vec![0u8; MAX_CHUNK];
        let mut size = 0u64;
        loop {
            let n = file
                .read(&mut buf)
                .with_context(|| format!("cannot read {}", path.display()))?;
            if n == 0 {
                break;
            }
            hasher.update(&buf[..n]);
            size += n as u64;
            bar.inc(n as u64);
        }
        bar.finish();
        Ok(FileDigest {
            size,
            sha256: hex::encode(hasher.finalize()),
        })
    })
    .await
    .context("hashing task failed")?
}

/// Reads until `buf` is full or the file ends; returns the bytes read.
async fn fill(file: &mut tokio::fs::File, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        let n = file.read(&mut buf[filled..]).await?;
        if n == 0 {
            break;
        }
        filled += n;
    }
    Ok(filled)
}

/// How far the reader side of an upload got.
struct Sent {
    bytes: u64,
    /// False when the RPC ended before the whole file was read.
    reached_eof: bool,
}

/// Streams the header then the file in `MAX_CHUNK` pieces via `Jobs.Upload`.
/// `expected` is the digest taken beforehand, to notice a file that changed.
pub async fn upload(
    node: &Node,
    path: &Path,
    header: UploadHeader,
    expected: &FileDigest,
    bar: ByteBar,
) -> Result<UploadReply> {
    let mut file = tokio::fs::File::open(path)
        .await
        .with_context(|| format!("cannot open {}", path.display()))?;
    let (tx, rx) = mpsc::channel::<UploadRequest>(4);
    let header = UploadRequest {
        msg: Some(Msg::Header(header)),
    };
    tx.send(header)
        .await
        .map_err(|_| anyhow!("upload stream closed before it started"))?;

    let display = path.display().to_string();
    let reader_bar = bar.clone();
    let reader = tokio::spawn(async move {
        let mut sent = 0u64;
        loop {
            let mut buf = vec![0u8; MAX_CHUNK];
            let n = fill(&mut file, &mut buf)
                .await
                .with_context(|| format!("cannot read {display}"))?;
            if n == 0 {
                return Ok::<_, anyhow::Error>(Sent {
                    bytes: sent,
                    reached_eof: true,
                });
            }
            buf.truncate(n);
            let chunk = UploadRequest {
                msg: Some(Msg::Chunk(buf)),
            };
            if tx.send(chunk).await.is_err() {
                // The RPC finished early (the node replied or failed).
                return Ok(Sent {
                    bytes: sent,
                    reached_eof: false,
                });
            }
            sent += n as u64;
            reader_bar.inc(n as u64);
        }
    });

    let result = node.jobs().upload(ReceiverStream::new(rx)).await;
    let sent = reader.await.context("upload reader task failed")?;
    let sent = match sent {
        Ok(sent) => sent,
        Err(err) => {
            bar.abandon();
            return Err(err);
        }
    };
    if sent.reached_eof && sent.bytes != expected.size {
        bar.abandon();
        bail!(
            "{} changed while uploading (hashed {} bytes, sent {})",
            path.display(),
            expected.size,
            sent.bytes
        );
    }
    match result {
        Ok(reply) => {
            bar.finish();
            Ok(reply.into_inner())
        }
        Err(status) => {
            bar.abandon();
            Err(rpc(status))
        }
    }
}

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

/// What the downloaded bytes must match (when known).
#[derive(Debug, Clone, Default)]
pub struct Expected {
    pub sha256: Option<String>,
    pub bytes: Option<u64>,
}

/// Streams job `id`'s output into `target` atomically, verifying it.
pub async fn retrieve(
    node: &Node,
    id: &str,
    target: &Path,
    expected: &Expected,
    bar: ByteBar,
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

    let request = RetrieveVideoRequest {
        video_id: id.to_owned(),
    };
    let mut stream = node
        .master()
        .retrieve_video(request)
        .await
        .map_err(rpc)?
        .into_inner();
    let mut hasher = Sha256::new();
    let mut bytes = 0u64;
    loop {
        let chunk = match stream.message().await {
            Ok(Some(chunk)) => chunk,
            Ok(None) => break,
            Err(status) => {
                bar.abandon();
                return Err(rpc(status))
                    .with_context(|| format!("download of job {id:?} failed after {bytes} bytes"));
            }
        };
        hasher.update(&chunk.data_chunk);
        file.write_all(&chunk.data_chunk)
            .await
            .with_context(|| format!("cannot write {}", temp.display()))?;
        bytes += chunk.data_chunk.len() as u64;
        bar.inc(chunk.data_chunk.len() as u64);
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
    use crate::progress::Mode;

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

    #[tokio::test]
    async fn digest_matches_known_sha256_across_chunks() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("input.bin");
        // Spans more than one read so the chunk loop is exercised.
        let data: Vec<u8> = (0..(MAX_CHUNK + 12_345)).map(|i| (i % 251) as u8).collect();
        std::fs::write(&path, &data).expect("write input");
        let digest = digest_file(&path, ByteBar::new(Mode::Lines, "hashing", 0))
            .await
            .expect("digest");
        assert_eq!(digest.size, data.len() as u64);
        assert_eq!(digest.sha256, hex::encode(Sha256::digest(&data)));

        let empty = dir.path().join("empty.bin");
        std::fs::write(&empty, b"").expect("write empty");
        let digest = digest_file(&empty, ByteBar::new(Mode::Lines, "hashing", 0))
            .await
            .expect("digest");
        assert_eq!(digest.size, 0);
        assert_eq!(
            digest.sha256,
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }
}
