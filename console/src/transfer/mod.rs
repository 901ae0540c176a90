//! Moving video bytes: hashing a local file, streaming it up with
//! `Jobs.Upload`, and streaming a job's output down with `RetrieveVideo`
//! into a temp file that is verified and then renamed into place
//! (`download.rs`). Progress goes to a caller's [`Progress`]; nothing here
//! draws it.
//!
//! Files are always read and written in chunks of at most `MAX_CHUNK`;
//! a whole video is never held in memory.

mod download;

pub use download::{retrieve, temp_path};

use std::io::Read;
use std::path::{Path, PathBuf};

use std::time::Instant;

use anyhow::{Context, Result, anyhow};
use sha2::{Digest, Sha256};
use tokio::io::AsyncReadExt;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::Status;
use vidshard_proto::MAX_CHUNK;
use vidshard_proto::v1::upload_request::Msg;
use vidshard_proto::v1::{UploadHeader, UploadReply, UploadRequest};

use crate::client::{FAILOVER_GRACE, Node, Reach, node_lost, rpc};

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

/// What the downloaded bytes must match (when known).
#[derive(Debug, Clone, Default)]
pub struct Expected {
    pub sha256: Option<String>,
    pub bytes: Option<u64>,
}

/// Where a transfer reports its progress: the command line's bars
/// (`progress.rs`) or the console's task line. Cheap to clone; called from
/// blocking threads and spawned tasks.
pub trait Progress: Clone + Send + Sync + 'static {
    /// `n` more bytes done.
    fn inc(&self, n: u64);
    /// The transfer completed.
    fn finish(&self);
    /// The transfer failed; what was shown stays.
    fn abandon(&self);
    /// The transfer starts over from byte 0 (an upload retried on
    /// another node).
    fn restart(&self) {}
}

/// A fresh idempotency key for one upload: sent with every retry of it, so
/// the node that takes a retry answers with the job the first try made.
pub fn new_upload_key() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

/// Hashes `path` in `MAX_CHUNK` reads on a blocking thread.
pub async fn digest_file(path: &Path, bar: impl Progress) -> Result<FileDigest> {
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

/// Streams the header then the file in `MAX_CHUNK` pieces via `Jobs.Upload`,
/// through any node that answers: an upload broken by a lost node before
/// its acknowledgement starts over on the next one (the master answers a
/// repeat of a recent upload, same sha256 and options, with the same job,
/// so a retry never makes a second job). `expected` is the digest taken
/// beforehand, to notice a file that changed.
pub async fn upload(
    reach: &mut Reach,
    path: &Path,
    header: UploadHeader,
    expected: &FileDigest,
    bar: impl Progress,
) -> Result<UploadReply> {
    let deadline = Instant::now() + FAILOVER_GRACE;
    loop {
        match upload_once(reach.node(), path, header.clone(), expected, bar.clone()).await {
            Err(Failed::Lost(_)) if Instant::now() < deadline => {
                bar.restart();
                reach.recover(deadline).await;
            }
            Err(Failed::Lost(status)) => return Err(rpc(status)),
            Err(Failed::Other(err)) => return Err(err),
            Ok(reply) => return Ok(reply),
        }
    }
}

/// Why one upload attempt failed.
enum Failed {
    /// The node was lost: another may take the upload.
    Lost(Status),
    Other(anyhow::Error),
}

impl From<anyhow::Error> for Failed {
    fn from(err: anyhow::Error) -> Self {
        Failed::Other(err)
    }
}

async fn upload_once(
    node: &Node,
    path: &Path,
    header: UploadHeader,
    expected: &FileDigest,
    bar: impl Progress,
) -> Result<UploadReply, Failed> {
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
            return Err(err.into());
        }
    };
    if sent.reached_eof && sent.bytes != expected.size {
        bar.abandon();
        return Err(anyhow!(
            "{} changed while uploading (hashed {} bytes, sent {})",
            path.display(),
            expected.size,
            sent.bytes
        )
        .into());
    }
    match result {
        Ok(reply) => {
            bar.finish();
            Ok(reply.into_inner())
        }
        Err(status) if node_lost(&status) => Err(Failed::Lost(status)),
        Err(status) => {
            bar.abandon();
            Err(rpc(status).into())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Progress nobody watches.
    #[derive(Clone)]
    struct Quiet;

    impl Progress for Quiet {
        fn inc(&self, _: u64) {}
        fn finish(&self) {}
        fn abandon(&self) {}
    }

    #[tokio::test]
    async fn digest_matches_known_sha256_across_chunks() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("input.bin");
        // Spans more than one read so the chunk loop is exercised.
        let data: Vec<u8> = (0..(MAX_CHUNK + 12_345)).map(|i| (i % 251) as u8).collect();
        std::fs::write(&path, &data).expect("write input");
        let digest = digest_file(&path, Quiet).await.expect("digest");
        assert_eq!(digest.size, data.len() as u64);
        assert_eq!(digest.sha256, hex::encode(Sha256::digest(&data)));

        let empty = dir.path().join("empty.bin");
        std::fs::write(&empty, b"").expect("write empty");
        let digest = digest_file(&empty, Quiet).await.expect("digest");
        assert_eq!(digest.size, 0);
        assert_eq!(
            digest.sha256,
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }
}
