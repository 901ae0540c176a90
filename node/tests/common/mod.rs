//! Test harness: real `vidshard-node` processes on 127.0.0.1 (port 0, the
//! bound port read from the log), real ffmpeg clips, real gRPC clients.
#![allow(dead_code)]

pub mod browser;
pub mod client;
pub mod clips;
pub mod cluster;
pub mod http;
pub mod node;
pub mod wrapper;

use std::path::Path;
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;
use tonic::transport::Channel;
use vidshard_proto::replication::master_service_client::MasterServiceClient;
use vidshard_proto::replication::{RetrieveVideoRequest, UploadVideoChunk};
use vidshard_proto::v1::jobs_client::JobsClient;
use vidshard_proto::v1::{GetJobRequest, JobInfo};

pub const MIB: usize = 1024 * 1024;

/// Upload parameters in the original protocol's shape.
#[derive(Clone, Debug, Default)]
pub struct Params {
    pub width: i32,
    pub height: i32,
    pub upscale_width: i32,
    pub upscale_height: i32,
    pub format: String,
}

impl Params {
    pub fn size(width: i32, height: i32, format: &str) -> Self {
        Self {
            width,
            height,
            format: format.into(),
            ..Default::default()
        }
    }
}

/// Uploads `data` like the original client: 1 MiB chunks, parameters on
/// the first one.
pub async fn upload_bytes(
    channel: Channel,
    video_id: &str,
    data: Vec<u8>,
    params: &Params,
) -> Result<vidshard_proto::replication::UploadVideoResponse, tonic::Status> {
    let mut chunks: Vec<UploadVideoChunk> = data
        .chunks(MIB)
        .map(|c| UploadVideoChunk {
            video_id: video_id.into(),
            data_chunk: c.to_vec(),
            ..Default::default()
        })
        .collect();
    if chunks.is_empty() {
        chunks.push(UploadVideoChunk {
            video_id: video_id.into(),
            ..Default::default()
        });
    }
    let first = &mut chunks[0];
    first.is_first_chunk = true;
    first.target_width = params.width;
    first.target_height = params.height;
    first.upscale_width = params.upscale_width;
    first.upscale_height = params.upscale_height;
    first.output_format = params.format.clone();
    first.original_filename = video_id.into();
    let mut client = MasterServiceClient::new(channel);
    client
        .upload_video(tokio_stream::iter(chunks))
        .await
        .map(|r| r.into_inner())
}

pub async fn upload_file(channel: Channel, video_id: &str, path: &Path, params: &Params) -> String {
    let data = tokio::fs::read(path).await.expect("read clip");
    let reply = upload_bytes(channel, video_id, data, params)
        .await
        .expect("upload rpc");
    assert!(reply.success, "upload refused: {}", reply.message);
    reply.video_id
}

/// Uploads `clip` as `name` at `width`x`height` (mp4) and waits until its
/// job completed; answers the job id.
pub async fn encode_completed(
    channel: Channel,
    name: &str,
    clip: &Path,
    width: i32,
    height: i32,
) -> String {
    let id = upload_file(
        channel.clone(),
        name,
        clip,
        &Params::size(width, height, "mp4"),
    )
    .await;
    let info = wait_finished(channel, &id, Duration::from_secs(120)).await;
    assert_eq!(info.status, "completed", "{}", info.message);
    id
}

pub async fn job(channel: Channel, id: &str) -> Result<JobInfo, tonic::Status> {
    JobsClient::new(channel)
        .get_job(GetJobRequest {
            id: id.into(),
            ..Default::default()
        })
        .await
        .map(|r| r.into_inner())
}

/// Polls until the job is finished (completed or failed).
pub async fn wait_finished(channel: Channel, id: &str, timeout: Duration) -> JobInfo {
    let deadline = Instant::now() + timeout;
    loop {
        let info = job(channel.clone(), id).await.expect("get job");
        if info.finished {
            return info;
        }
        assert!(
            Instant::now() < deadline,
            "job {id} not finished after {timeout:?}: {} {}",
            info.status,
            info.message
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Retrieves an output like the original client (each chunk ≤ 1 MiB),
/// returning its sha256 and size.
pub async fn retrieve(
    channel: Channel,
    id: &str,
    out: &Path,
) -> Result<(String, u64), tonic::Status> {
    let mut client = MasterServiceClient::new(channel).max_decoding_message_size(MIB + 1024);
    let mut stream = client
        .retrieve_video(RetrieveVideoRequest {
            video_id: id.into(),
        })
        .await?
        .into_inner();
    let mut file = tokio::fs::File::create(out).await.expect("create output");
    let mut hasher = Sha256::new();
    let mut size = 0u64;
    while let Some(chunk) = stream.message().await? {
        assert!(
            chunk.data_chunk.len() <= MIB,
            "chunk of {} bytes",
            chunk.data_chunk.len()
        );
        hasher.update(&chunk.data_chunk);
        size += chunk.data_chunk.len() as u64;
        file.write_all(&chunk.data_chunk).await.expect("write");
    }
    file.flush().await.expect("flush");
    Ok((hex::encode(hasher.finalize()), size))
}

/// Node listing as the master sees it.
pub async fn nodes(channel: Channel) -> vidshard_proto::v1::ListNodesReply {
    vidshard_proto::v1::cluster_client::ClusterClient::new(channel)
        .list_nodes(vidshard_proto::v1::ListNodesRequest {})
        .await
        .expect("list nodes")
        .into_inner()
}

/// Polls `check` every 100 ms until it returns `Some`, or panics after
/// `timeout` naming `what`.
pub async fn wait_for<T, F, Fut>(what: &str, timeout: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A free 127.0.0.1 port (bound then released).
pub fn free_port() -> u16 {
    // Below the kernel's ephemeral range (32768–60999): a port handed out
    // here cannot be taken meanwhile by another node binding port 0 (the
    // reason a test that starts its node later once failed to bind).
    // Each call in this process starts further on, so two calls before
    // either port is bound do not meet.
    static CALLS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let call = CALLS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let seed = (std::process::id() as usize).wrapping_mul(7919) + call * 101;
    (0..12_000)
        .map(|i| 20_000 + ((seed + i * 7919) % 12_000) as u16)
        .find(|&port| std::net::TcpListener::bind(("127.0.0.1", port)).is_ok())
        .expect("a free port in 20000..32000")
}

/// The blob files under a node's `blobs/` dir, as paths.
pub fn blob_files(dir: &Path) -> Vec<String> {
    let Ok(fanout) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    fanout
        .flatten()
        .flat_map(|d| std::fs::read_dir(d.path()).into_iter().flatten().flatten())
        .map(|f| f.path().display().to_string())
        .collect()
}
