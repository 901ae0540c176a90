//! A full data dir: the node names the full disk as the reason, cleans up
//! after itself and keeps serving. The data dir is a small tmpfs, so the
//! disk really fills (needs root to mount; skipped otherwise).

mod common;
use common::node::as_operator;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::clips::{make_clip, report};
use common::node::NodeProc;
use common::{MIB, Params, job, retrieve, upload_bytes, upload_file, wait_finished, wait_for};
use tonic::Code;
use tonic::transport::Channel;
use vidshard_proto::v1::jobs_client::JobsClient;
use vidshard_proto::v1::upload_request::Msg;
use vidshard_proto::v1::{DeleteJobRequest, JobParams, UploadHeader, UploadReply, UploadRequest};

const TIMEOUT: Duration = Duration::from_secs(180);

/// What every "the disk is full" reason starts with.
const DISK_FULL: &str = "no space left on the data dir";

/// A tmpfs mounted for one test, unmounted when dropped (also when the
/// test panics). Drop it after the node using it.
struct Tmpfs {
    dir: PathBuf,
}

impl Tmpfs {
    /// Mounts a tmpfs of `mib` MiB at `dir`; `None` (after saying why)
    /// when this is not root or the mount fails.
    fn mount(dir: &Path, mib: u32) -> Option<Self> {
        std::fs::create_dir_all(dir).expect("mount point");
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={mib}m"), "tmpfs"])
            .arg(dir)
            .status();
        match status {
            Ok(s) if s.success() => Some(Self {
                dir: dir.to_path_buf(),
            }),
            other => {
                eprintln!(
                    "skipped: needs root to mount tmpfs (mount at {} gave {other:?})",
                    dir.display()
                );
                None
            }
        }
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let unmounted = Command::new("umount")
            .arg(&self.dir)
            .status()
            .is_ok_and(|s| s.success());
        if !unmounted {
            // Still busy (a process not yet reaped): detach it now, the
            // kernel frees it when the last user goes.
            let _ = Command::new("umount").arg("-l").arg(&self.dir).status();
        }
    }
}

/// Bytes free on the filesystem holding `path`, as `df` reports them.
fn free_bytes(path: &Path) -> u64 {
    let out = Command::new("df")
        .args(["-B1", "--output=avail"])
        .arg(path)
        .output()
        .expect("run df");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .nth(1)
        .and_then(|l| l.trim().parse().ok())
        .expect("df output")
}

/// Every file under `dir`, recursively.
fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(files_under(&path));
        } else {
            out.push(path);
        }
    }
    out
}

/// Waits until nothing is left in the node's `tmp/` (temp uploads,
/// scratch dirs of jobs and encodes).
async fn wait_tmp_empty(node: &NodeProc, what: &str) {
    let tmp = node.data_dir.join("tmp");
    wait_for(what, Duration::from_secs(15), || {
        let left: Vec<_> = std::fs::read_dir(&tmp)
            .expect("tmp")
            .flatten()
            .map(|e| e.path())
            .collect();
        async move { left.is_empty().then_some(()) }
    })
    .await;
}

fn sha256_of(path: &Path) -> String {
    use sha2::{Digest, Sha256};
    hex::encode(Sha256::digest(std::fs::read(path).expect("read")))
}

/// Uploads a file through `vidshard.v1.Jobs/Upload` (which, unlike the
/// original protocol, carries preset and crf).
async fn upload_v1(channel: Channel, path: &Path, params: JobParams) -> UploadReply {
    let data = std::fs::read(path).expect("read clip");
    let mut requests = vec![UploadRequest {
        msg: Some(Msg::Header(UploadHeader {
            params: Some(params),
            requested_id: String::new(),
            expected_size: data.len() as u64,
            expected_sha256: sha256_of(path),
            upload_key: String::new(),
        })),
    }];
    requests.extend(data.chunks(MIB).map(|c| UploadRequest {
        msg: Some(Msg::Chunk(c.to_vec())),
    }));
    JobsClient::new(channel)
        .upload(tokio_stream::iter(requests))
        .await
        .expect("upload rpc")
        .into_inner()
}

/// Uploads a small clip, waits for it and checks the output a user gets:
/// every frame, the asked size.
async fn small_job_completes(node: &NodeProc, dir: &Path, name: &str) {
    let channel = node.channel().await;
    let clip = make_clip(&dir.join(format!("{name}.mp4")), 2, 160, 120, true);
    let id = upload_file(channel.clone(), name, &clip, &Params::size(160, 120, "mp4")).await;
    let info = wait_finished(channel.clone(), &id, TIMEOUT).await;
    assert_eq!(info.status, "completed", "{}", info.message);
    let out = dir.join(format!("{name}-out.mp4"));
    retrieve(channel, &id, &out).await.expect("retrieve");
    let got = report(&out);
    assert_eq!(got.frames, 60, "every frame of the small clip");
    assert_eq!((got.width, got.height), (160, 120));
}

#[tokio::test(flavor = "multi_thread")]
async fn upload_larger_than_the_free_space_is_refused_and_leaves_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let Some(disk) = Tmpfs::mount(&dir.path().join("data"), 24) else {
        return;
    };
    let node = NodeProc::start(&disk.dir, &[]);
    let channel = node.channel().await;
    let free_before = free_bytes(&disk.dir);

    // Any bytes do: the upload is refused while it is written, before
    // anything looks at its content.
    let too_big = vec![7u8; free_before as usize + 4 * MIB];
    let status = upload_bytes(
        channel.clone(),
        "huge.mp4",
        too_big,
        &Params::size(160, 120, "mp4"),
    )
    .await
    .expect_err("an upload larger than the free space is refused");
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
    assert!(
        status.message().starts_with(DISK_FULL) && status.message().contains("upload again"),
        "the reason names the full disk: {status:?}"
    );

    // The partial upload is gone and its space free again.
    wait_tmp_empty(&node, "the refused upload's temp file to go").await;
    let blobs = files_under(&node.data_dir.join("blobs"));
    assert!(blobs.is_empty(), "nothing stored: {blobs:?}");
    assert!(
        free_bytes(&disk.dir) + MIB as u64 >= free_before,
        "space given back"
    );
    let missing = job(channel.clone(), "huge.mp4").await.expect_err("no job");
    assert_eq!(missing.code(), Code::NotFound);

    // The node keeps serving: the next upload that fits is encoded.
    small_job_completes(&node, dir.path(), "after-refusal").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn job_whose_intermediates_do_not_fit_fails_clearly_and_the_node_recovers() {
    let dir = tempfile::tempdir().expect("tempdir");
    let Some(disk) = Tmpfs::mount(&dir.path().join("data"), 24) else {
        return;
    };
    let node = NodeProc::start(&disk.dir, &[]);
    let channel = node.channel().await;
    let free_before = free_bytes(&disk.dir);

    // Under 1 MB uploaded; the near-lossless 1080p encode of its one
    // shard is about 35 MB, more than the whole tmpfs.
    let clip = make_clip(&dir.path().join("src.mp4"), 8, 320, 240, true);
    let source_bytes = std::fs::metadata(&clip).expect("clip").len();
    assert!(source_bytes < 2 * MIB as u64, "the upload itself fits");
    let reply = upload_v1(
        channel.clone(),
        &clip,
        JobParams {
            target_width: 1920,
            target_height: 1080,
            upscale_width: 1920,
            upscale_height: 1080,
            output_format: "mp4".into(),
            preset: "ultrafast".into(),
            crf: 1,
            ..Default::default()
        },
    )
    .await;
    assert!(reply.success, "the upload fits: {}", reply.message);

    let info = wait_finished(channel.clone(), &reply.id, TIMEOUT).await;
    assert_ne!(info.status, "completed");
    assert!(
        info.message.contains(DISK_FULL),
        "the job's reason names the full disk: {} {}",
        info.status,
        info.message
    );
    assert!(
        !info.message.contains("av_interleaved_write_frame") && info.message.len() < 600,
        "a plain reason, not an ffmpeg dump: {}",
        info.message
    );

    // Scratch dirs and the job's shards are gone; only the source stays
    // (kept for --keep-sources hours, as for any ended job).
    wait_tmp_empty(&node, "the failed job's scratch files to go").await;
    let source_sha = sha256_of(&clip);
    let blobs = wait_for(
        "the failed job's shards to be removed",
        Duration::from_secs(15),
        || {
            let blobs = files_under(&node.data_dir.join("blobs"));
            let only_source = blobs
                .iter()
                .all(|b| b.file_name().is_some_and(|n| n == source_sha.as_str()));
            async move { only_source.then_some(blobs) }
        },
    )
    .await;
    assert_eq!(blobs.len(), 1, "the source is kept: {blobs:?}");

    // The operator frees the space the way the README says: delete the job.
    let deleted = JobsClient::new(channel.clone())
        .delete_job(as_operator(DeleteJobRequest {
            id: reply.id.clone(),
        }))
        .await
        .expect("delete")
        .into_inner();
    assert!(deleted.deleted, "{}", deleted.message);
    let disk_dir = disk.dir.clone();
    // The garbage collector takes blobs once they are 30 s old.
    wait_for(
        "the space to be free again",
        Duration::from_secs(60),
        || {
            let free = free_bytes(&disk_dir);
            async move { (free + 2 * MIB as u64 >= free_before).then_some(()) }
        },
    )
    .await;

    // The same node encodes the next upload that fits, every frame of it.
    small_job_completes(&node, dir.path(), "after-full-disk").await;
}

/// Fills the filesystem holding `path` to the last byte with one file.
fn fill_to_the_last_byte(path: &Path) {
    use std::io::Write;
    let mut file = std::fs::File::create(path).expect("balloon");
    let block = vec![0u8; MIB];
    while file.write_all(&block).is_ok() {}
    while file.write_all(&block[..4096]).is_ok() {}
}

/// Deletes of jobs that do not exist: each is a Raft write (logged before
/// it is found to name nothing). Stops early when the node exits.
async fn raft_writes(node: &mut NodeProc, channel: &Channel, count: usize) -> Vec<Code> {
    let mut codes = Vec::new();
    for attempt in 0..count {
        let reply = JobsClient::new(channel.clone())
            .delete_job(as_operator(DeleteJobRequest {
                id: format!("no-such-job-{attempt}"),
            }))
            .await;
        codes.push(reply.map_or_else(|status| status.code(), |_| Code::Ok));
        if node.exit_status().is_some() {
            break;
        }
    }
    codes
}

/// A data dir filled to the last byte by someone else (an operator's
/// file) does not stop Raft: the log writes into blocks it reserved past
/// its end, and the node goes on answering, leading and, once space is
/// freed, encoding.
#[tokio::test(flavor = "multi_thread")]
async fn raft_goes_on_when_the_data_dir_is_filled_to_the_last_byte() {
    let dir = tempfile::tempdir().expect("tempdir");
    let Some(disk) = Tmpfs::mount(&dir.path().join("data"), 24) else {
        return;
    };
    let mut node = NodeProc::start(&disk.dir, &[]);
    let channel = node.channel().await;
    let balloon = disk.dir.join("balloon");
    fill_to_the_last_byte(&balloon);
    assert!(free_bytes(&disk.dir) < MIB as u64, "the disk is full");
    let codes = raft_writes(&mut node, &channel, 400).await;
    assert_eq!(node.exit_status(), None, "the node still runs");
    assert!(
        codes.iter().all(|code| *code == Code::NotFound),
        "every delete was logged and answered 'no such job': {:?}",
        codes
            .iter()
            .filter(|c| **c != Code::NotFound)
            .take(5)
            .collect::<Vec<_>>()
    );
    std::fs::remove_file(&balloon).expect("free the disk");
    small_job_completes(&node, dir.path(), "after-raft-on-full-disk").await;
}

/// Without that room (`VIDSHARD_RAFT_HEADROOM_MIB=0`) a log write on a
/// full disk fails, and openraft ends its core for good: the node must not
/// serve on outside every election, it stops with an error (its service
/// manager starts it again).
#[tokio::test(flavor = "multi_thread")]
async fn a_node_whose_raft_log_cannot_be_written_exits_with_an_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let Some(disk) = Tmpfs::mount(&dir.path().join("data"), 24) else {
        return;
    };
    let mut node = NodeProc::start_with_env(&disk.dir, &[], &[("VIDSHARD_RAFT_HEADROOM_MIB", "0")]);
    let channel = node.channel().await;
    let balloon = disk.dir.join("balloon");
    fill_to_the_last_byte(&balloon);
    raft_writes(&mut node, &channel, 400).await;
    let status = wait_for("the node to exit", Duration::from_secs(30), || {
        let exited = node.exit_status();
        async move { exited }
    })
    .await;
    let _ = std::fs::remove_file(&balloon);
    assert!(!status.success(), "exited with an error: {status}");
    let log = node.log_text();
    assert!(log.contains("Raft stopped"), "the log says why:\n{log}");
}
