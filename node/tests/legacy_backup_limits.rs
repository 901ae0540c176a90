//! What original-protocol backups may cost a real node: concurrent
//! `RequestBackupData` replies share one byte budget, so the node's peak
//! memory stays near one reply however many callers ask at once (and
//! every caller still gets every byte), and `ReplicateVideo` refuses a
//! backup that would leave the data dir's disk under its reserve.

mod common;

use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};
use tonic::body::Body;
use tonic::codegen::Bytes;
use tonic::codegen::http;
use tonic::transport::Channel;
use vidshard_proto::replication::node_service_client::NodeServiceClient;
use vidshard_proto::replication::{
    ReplicateVideoRequest, ReplicateVideoResponse, RequestBackupDataRequest,
    RequestBackupDataResponse,
};

use common::MIB;
use common::node::NodeProc;

/// Deterministic bytes that do not compress or repeat (xorshift).
fn generated(len: usize, mut seed: u64) -> Vec<u8> {
    let mut out = Vec::with_capacity(len);
    while out.len() < len {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        out.extend_from_slice(&seed.to_le_bytes());
    }
    out.truncate(len);
    out
}

fn sha256(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

async fn replicate(channel: Channel, video_id: &str, data: Vec<u8>) -> ReplicateVideoResponse {
    NodeServiceClient::new(channel)
        .max_encoding_message_size(1 << 30)
        .replicate_video(ReplicateVideoRequest {
            video_id: video_id.into(),
            video_data: data,
            container: "mp4".into(),
        })
        .await
        .expect("replicate rpc")
        .into_inner()
}

/// A reply body whose reader waits `delay` before reading anything, like
/// an original master that decodes slowly: until then the node can only
/// send what fits in the stream's flow-control window.
struct SlowStart {
    inner: Body,
    delay: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl tonic::codegen::Body for SlowStart {
    type Data = Bytes;
    type Error = tonic::Status;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, tonic::Status>>> {
        if let Some(delay) = self.delay.as_mut() {
            ready!(delay.as_mut().poll(cx));
            self.delay = None;
        }
        Pin::new(&mut self.inner).poll_frame(cx)
    }
}

/// `RequestBackupData` on its own connection, read only after `delay`.
async fn slow_pull(channel: Channel, delay: Duration) -> RequestBackupDataResponse {
    let slow = tower::ServiceBuilder::new()
        .map_response(move |reply: http::Response<Body>| {
            reply.map(|inner| SlowStart {
                inner,
                delay: Some(Box::pin(tokio::time::sleep(delay))),
            })
        })
        .service(channel);
    NodeServiceClient::new(slow)
        .max_decoding_message_size(1 << 30)
        .request_backup_data(RequestBackupDataRequest {
            new_master_address: "127.0.0.1:1".into(),
        })
        .await
        .expect("request backup data rpc")
        .into_inner()
}

/// A field of /proc/<pid>/status in KiB, as MiB.
fn status_mib(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("proc status");
    status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map(|kib| kib / 1024)
        .unwrap_or_else(|| panic!("no {field} in /proc/{pid}/status"))
}

/// Four original masters ask for the same 600 MiB of backups at once and
/// read slowly. Before the byte budget every reply was read, encoded and
/// queued for sending at once (peak ≈ 4 × 600 MiB over the node's idle
/// size); with the 1 GiB budget one such reply is in flight at a time
/// (≈ 2 × 600 MiB while it is encoded: the backups read and their encoded
/// copy), and the others wait their turn.
#[tokio::test(flavor = "multi_thread")]
async fn concurrent_backup_replies_share_one_byte_budget() {
    const BACKUPS: usize = 3;
    const SIZE: usize = 200 * MIB;
    const CALLERS: usize = 4;
    let dir = tempfile::tempdir().expect("tempdir");
    let node = NodeProc::start(&dir.path().join("node"), &["--slots", "1"]);
    let channel = node.channel().await;
    let mut expected = Vec::new();
    for i in 0..BACKUPS {
        let data = generated(SIZE, 100 + i as u64);
        expected.push((format!("video-{i}"), sha256(&data)));
        let stored = replicate(channel.clone(), &format!("video-{i}"), data).await;
        assert!(stored.success, "{}", stored.message);
    }
    // Measure the replies alone: reset the node's peak RSS to its RSS now.
    std::fs::write(format!("/proc/{}/clear_refs", node.pid()), "5").expect("reset VmHWM");
    let idle = status_mib(node.pid(), "VmRSS");

    let started = Instant::now();
    let mut callers = Vec::new();
    for _ in 0..CALLERS {
        let channel = node.channel().await;
        callers.push(tokio::spawn(slow_pull(channel, Duration::from_secs(2))));
    }
    for caller in callers {
        let reply = tokio::time::timeout(Duration::from_secs(120), caller)
            .await
            .expect("every caller is answered within 120 s")
            .expect("caller task");
        assert!(reply.success, "{}", reply.message);
        let got: Vec<(String, String)> = reply
            .backup_files
            .iter()
            .map(|f| (f.video_id.clone(), sha256(&f.file_data)))
            .collect();
        assert_eq!(
            got, expected,
            "every caller gets every backup, byte-identical"
        );
    }
    let peak = status_mib(node.pid(), "VmHWM");
    let reply_mib = (BACKUPS * SIZE / MIB) as u64;
    println!(
        "{CALLERS} callers × {reply_mib} MiB in {:.1} s: node RSS {idle} MiB idle, peak {peak} MiB (+{} MiB)",
        started.elapsed().as_secs_f64(),
        peak - idle
    );
    assert!(
        (peak - idle) * 2 <= 5 * reply_mib,
        "the node's peak RSS grew by {} MiB for {CALLERS} concurrent replies of {reply_mib} MiB, more than 2.5 replies' worth",
        peak - idle
    );
}

/// Six original masters send a 150 MiB backup each at once. tonic decodes
/// a whole message before the handler runs (about twice its size while it
/// does), so unbounded the node held all six at once; the gate lets two
/// be received at a time and the rest wait their turn. All are stored.
#[tokio::test(flavor = "multi_thread")]
async fn concurrent_big_backups_are_received_two_at_a_time() {
    const SIZE: usize = 150 * MIB;
    const SENDERS: usize = 6;
    let dir = tempfile::tempdir().expect("tempdir");
    let node = NodeProc::start(&dir.path().join("node"), &["--slots", "1"]);
    let _ = node.channel().await;
    std::fs::write(format!("/proc/{}/clear_refs", node.pid()), "5").expect("reset VmHWM");
    let idle = status_mib(node.pid(), "VmRSS");
    // Every backup made and every connection open first, so the sends
    // overlap.
    let mut ready = Vec::new();
    for i in 0..SENDERS {
        ready.push((node.channel().await, generated(SIZE, 500 + i as u64)));
    }
    let mut senders = Vec::new();
    for (i, (channel, data)) in ready.into_iter().enumerate() {
        senders.push(tokio::spawn(async move {
            replicate(channel, &format!("big-{i}"), data).await
        }));
    }
    for sender in senders {
        let stored = tokio::time::timeout(Duration::from_secs(240), sender)
            .await
            .expect("every sender is answered")
            .expect("sender task");
        assert!(stored.success, "{}", stored.message);
    }
    let peak = status_mib(node.pid(), "VmHWM");
    let all = (SENDERS * SIZE / MIB) as u64;
    println!(
        "{SENDERS} × {} MiB received: node RSS {idle} MiB idle, peak +{} MiB",
        SIZE / MIB,
        peak - idle
    );
    assert!(
        peak - idle < all,
        "the node's peak RSS grew by {} MiB for {SENDERS} backups of {} MiB: they were decoded all at once",
        peak - idle,
        SIZE / MIB
    );
}

/// A tmpfs of its own for one test (the node's disk), unmounted when
/// dropped: declare it before the node, so the node stops first.
struct Tmpfs(std::path::PathBuf);

impl Tmpfs {
    /// Mounts a tmpfs of `size` (e.g. "1200m") at `at`; the reason when
    /// that is not possible here (not root, no mount namespace rights).
    fn mount(at: &std::path::Path, size: &str) -> Result<Self, String> {
        std::fs::create_dir_all(at).map_err(|e| e.to_string())?;
        let out = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(at)
            .output()
            .map_err(|e| format!("running mount: {e}"))?;
        if !out.status.success() {
            return Err(String::from_utf8_lossy(&out.stderr).trim().to_string());
        }
        Ok(Self(at.to_path_buf()))
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let umount = |lazy: bool| {
            let mut cmd = std::process::Command::new("umount");
            if lazy {
                // Still busy (a process not yet reaped): detach it now.
                cmd.arg("-l");
            }
            cmd.arg(&self.0).status().is_ok_and(|s| s.success())
        };
        if !umount(false) {
            umount(true);
        }
    }
}

/// On a 1200 MiB disk the node keeps 1 GiB free (the larger of 1 GiB and
/// 5%): a first backup of 100 MiB fits, a second is refused naming the
/// reserve, and the first is still handed back whole.
#[tokio::test(flavor = "multi_thread")]
async fn backups_leave_the_disk_reserve_free() {
    let dir = tempfile::tempdir().expect("tempdir");
    let disk = match Tmpfs::mount(&dir.path().join("disk"), "1200m") {
        Ok(disk) => disk,
        Err(why) => {
            println!("skipped: cannot mount a tmpfs here: {why}");
            return;
        }
    };
    let node = NodeProc::start(&disk.0.join("node"), &["--slots", "1"]);
    let channel = node.channel().await;
    let first = generated(100 * MIB, 1);
    let stored = replicate(channel.clone(), "first", first.clone()).await;
    assert!(stored.success, "{}", stored.message);
    let refused = replicate(channel.clone(), "second", generated(100 * MIB, 2)).await;
    assert!(
        !refused.success,
        "stored past the reserve: {}",
        refused.message
    );
    assert!(
        refused
            .message
            .starts_with("not stored: refused: storing 100 MiB would leave")
            && refused
                .message
                .contains("free on the data dir's disk, less than the 1 GiB this node keeps free"),
        "{}",
        refused.message
    );
    let reply = slow_pull(channel, Duration::ZERO).await;
    let got: Vec<(String, String)> = reply
        .backup_files
        .iter()
        .map(|f| (f.video_id.clone(), sha256(&f.file_data)))
        .collect();
    assert_eq!(got, [("first".to_string(), sha256(&first))]);
    drop(node);
}
