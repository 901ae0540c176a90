//! Moving video bytes: hashing a local file, streaming it up with
//! `Jobs.Upload`, and streaming a job's output down with `RetrieveVideo`
//! into a temp file that is verified and then renamed into place
//! (`download.rs`), or a ladder job's whole package into a directory
//! (`package.rs`). Progress goes to a caller's [`Progress`]; nothing here
//! draws it.
//!
//! Files are always read and written in chunks of at most `MAX_CHUNK`;
//! a whole video is never held in memory.

mod download;
mod package;

pub use download::{retrieve, temp_path};
pub use package::{SavedPackage, is_directory_target, output_name, save_package};

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
use vidshard_proto::v1::{UploadHeader, UploadReply, UploadRequest, UploadTrailer};

use crate::client::{FAILOVER_GRACE, Node, Reach, node_lost, rpc};

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

/// Reads `file` in `MAX_CHUNK` pieces into `tx`, hashing on the way, and
/// ends with the trailer naming the sha256 and size of what was sent: the
/// file is read once, and the node checks the bytes it stored against
/// what was read here. Stops quietly when the RPC ends first (the node
/// replied or failed: the caller hears which from the RPC).
async fn send_file(
    mut file: tokio::fs::File,
    display: String,
    tx: mpsc::Sender<UploadRequest>,
    bar: impl Progress,
) -> Result<()> {
    let mut hasher = Sha256::new();
    let mut sent = 0u64;
    loop {
        let mut buf = vec![0u8; MAX_CHUNK];
        let n = fill(&mut file, &mut buf)
            .await
            .with_context(|| format!("cannot read {display}"))?;
        if n == 0 {
            let trailer = UploadRequest {
                msg: Some(Msg::Trailer(UploadTrailer {
                    sha256: hex::encode(hasher.finalize()),
                    size: sent,
                })),
            };
            let _ = tx.send(trailer).await;
            return Ok(());
        }
        buf.truncate(n);
        hasher.update(&buf);
        let chunk = UploadRequest {
            msg: Some(Msg::Chunk(buf)),
        };
        if tx.send(chunk).await.is_err() {
            return Ok(());
        }
        sent += n as u64;
        bar.inc(n as u64);
    }
}

/// Streams the header, the file in `MAX_CHUNK` pieces and a trailer with
/// the sha256 hashed on the way via `Jobs.Upload`, through any node that
/// answers: an upload broken by a lost node before its acknowledgement
/// starts over on the next one (the header's idempotency key makes the
/// master answer a retry of an accepted upload with its job, so a retry
/// never makes a second job). `header.expected_size` is the size the file
/// had when the command started: a file that changes size meanwhile is
/// refused by the node as truncated.
pub async fn upload(
    reach: &mut Reach,
    path: &Path,
    header: UploadHeader,
    bar: impl Progress,
) -> Result<UploadReply> {
    let deadline = Instant::now() + FAILOVER_GRACE;
    loop {
        match upload_once(reach.node(), path, header.clone(), bar.clone()).await {
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
    bar: impl Progress,
) -> Result<UploadReply, Failed> {
    let file = tokio::fs::File::open(path)
        .await
        .with_context(|| format!("cannot open {}", path.display()))?;
    let (tx, rx) = mpsc::channel::<UploadRequest>(4);
    let header = UploadRequest {
        msg: Some(Msg::Header(header)),
    };
    tx.send(header)
        .await
        .map_err(|_| anyhow!("upload stream closed before it started"))?;
    let reader = tokio::spawn(send_file(file, path.display().to_string(), tx, bar.clone()));
    let result = node.jobs().upload(ReceiverStream::new(rx)).await;
    let sent = reader.await.context("upload reader task failed")?;
    if let Err(err) = sent {
        bar.abandon();
        return Err(err.into());
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

    /// Every message `send_file` sends for a file of `data`.
    async fn messages_for(data: &[u8]) -> Vec<UploadRequest> {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("input.bin");
        std::fs::write(&path, data).expect("write input");
        let file = tokio::fs::File::open(&path).await.expect("open");
        let (tx, mut rx) = mpsc::channel(1024);
        send_file(file, "input".into(), tx, Quiet)
            .await
            .expect("send");
        let mut messages = Vec::new();
        while let Some(message) = rx.recv().await {
            messages.push(message);
        }
        messages
    }

    #[tokio::test]
    async fn the_trailer_names_the_sha256_of_every_chunk_sent() {
        // Spans more than one read so the chunk loop is exercised.
        let data: Vec<u8> = (0..(MAX_CHUNK + 12_345)).map(|i| (i % 251) as u8).collect();
        let messages = messages_for(&data).await;
        let mut joined = Vec::new();
        for message in &messages[..messages.len() - 1] {
            match &message.msg {
                Some(Msg::Chunk(bytes)) => {
                    assert!(bytes.len() <= MAX_CHUNK);
                    joined.extend_from_slice(bytes);
                }
                other => panic!("a chunk, not {other:?}"),
            }
        }
        assert_eq!(joined, data);
        let Some(Msg::Trailer(trailer)) = &messages.last().expect("trailer").msg else {
            panic!("the last message is the trailer");
        };
        assert_eq!(trailer.sha256, hex::encode(Sha256::digest(&data)));
        assert_eq!(trailer.size, data.len() as u64);

        let messages = messages_for(b"").await;
        assert_eq!(messages.len(), 1, "an empty file sends only the trailer");
        let Some(Msg::Trailer(trailer)) = &messages[0].msg else {
            panic!("trailer");
        };
        assert_eq!(
            trailer.sha256,
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }
}
