//! One node killed with `kill -9` and started again on its data dir
//! (issue 19, item 6): killed mid-upload, mid-encode and mid-join, it
//! resumes each acknowledged job to a frame-exact output, keeps no
//! unacknowledged one, leaves no temp file, and the job list agrees with
//! what is on disk.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::clips::{make_clip, report};
use common::node::{NodeProc, as_operator};
use common::{MIB, Params, job, retrieve, upload_file, wait_finished, wait_for};
use tonic::transport::Channel;
use vidshard_proto::replication::UploadVideoChunk;
use vidshard_proto::replication::master_service_client::MasterServiceClient;
use vidshard_proto::v1::ListJobsRequest;
use vidshard_proto::v1::jobs_client::JobsClient;

const TIMEOUT: Duration = Duration::from_secs(240);
const ARGS: &[&str] = &["--shard-seconds", "2", "--slots", "1"];

/// `kill -9` of the node, then a start on the same data dir.
fn kill_and_restart(node: NodeProc, data_dir: &Path) -> NodeProc {
    let status = Command::new("kill")
        .args(["-9", &node.pid().to_string()])
        .status()
        .expect("kill -9");
    assert!(status.success());
    drop(node); // reaps it
    NodeProc::start(data_dir, ARGS)
}

/// A stop of the idle node, then a start on the same data dir with an ffmpeg whose
/// joins take 3 s longer.
fn restart_with_slow_join(node: NodeProc, data_dir: &Path, dir: &Path) -> NodeProc {
    drop(node);
    let ffmpeg = common::wrapper::slow_ffmpeg(dir, "slow-join-ffmpeg", "concat", 0.0, 3.0);
    let args: Vec<&str> = ARGS.iter().copied().chain(["--ffmpeg", &ffmpeg]).collect();
    NodeProc::start(data_dir, &args)
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

fn sha256_of(path: &Path) -> String {
    use sha2::{Digest, Sha256};
    hex::encode(Sha256::digest(std::fs::read(path).expect("read")))
}

/// Polls the job every 20 ms until its status is `status`.
async fn wait_status(channel: &Channel, id: &str, status: &str) {
    let what = format!("job {id} to be {status}");
    wait_for(&what, TIMEOUT, || {
        let channel = channel.clone();
        async move {
            let info = job(channel, id).await.ok()?;
            assert!(
                !info.finished,
                "{id} ended ({}: {}) before it was seen {status}",
                info.status, info.message
            );
            (info.status == status).then_some(())
        }
    })
    .await;
}

/// The job completes after the restart, every frame of `clip` in it.
async fn completes_whole(channel: &Channel, id: &str, clip: &Path, dir: &Path) {
    let info = wait_finished(channel.clone(), id, TIMEOUT).await;
    assert_eq!(info.status, "completed", "{id}: {}", info.message);
    let out = dir.join(format!("{id}.mp4"));
    retrieve(channel.clone(), id, &out).await.expect("retrieve");
    assert_eq!(
        report(&out).frames,
        report(clip).frames,
        "{id}: every frame"
    );
    assert_eq!(
        sha256_of(&out),
        info.output_sha256,
        "{id}: the listed output"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_single_node_killed_mid_upload_mid_encode_and_mid_join_recovers() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data_dir = dir.path().join("n");
    let mut node = NodeProc::start(&data_dir, ARGS);
    let clip = make_clip(&dir.path().join("in.mp4"), 12, 640, 480, true);
    let params = Params::size(1280, 960, "mp4");

    // Mid-upload: half the bytes sent, never acknowledged.
    let (tx, rx) = tokio::sync::mpsc::channel::<UploadVideoChunk>(4);
    let mut client = MasterServiceClient::new(node.channel().await);
    let call = tokio::spawn(async move {
        client
            .upload_video(tokio_stream::wrappers::ReceiverStream::new(rx))
            .await
    });
    tx.send(UploadVideoChunk {
        video_id: "never-acknowledged".into(),
        data_chunk: vec![1; MIB],
        is_first_chunk: true,
        target_width: 320,
        target_height: 240,
        ..Default::default()
    })
    .await
    .expect("send");
    wait_for("the upload's temp file", TIMEOUT, || {
        let tmp = data_dir.join("tmp");
        async move { (!files_under(&tmp).is_empty()).then_some(()) }
    })
    .await;
    node = kill_and_restart(node, &data_dir);
    assert!(call.await.expect("joined").is_err(), "never acknowledged");
    drop(tx);

    // Mid-encode: some shards encoded, others not.
    let channel = node.channel().await;
    let encoding = upload_file(channel.clone(), "mid-encode.mp4", &clip, &params).await;
    wait_for("a shard of the job encoded", TIMEOUT, || {
        let (channel, id) = (channel.clone(), encoding.clone());
        async move {
            let info = job(channel, &id).await.ok()?;
            assert!(!info.finished, "{}: {}", info.status, info.message);
            info.shards
                .iter()
                .any(|shard| shard.state == "done")
                .then_some(())
        }
    })
    .await;
    node = kill_and_restart(node, &data_dir);
    let channel = node.channel().await;
    completes_whole(&channel, &encoding, &clip, dir.path()).await;

    // Mid-join: every shard encoded, the output being joined and checked.
    // The join's ffmpeg (the one reading the concat list) lingers 3 s
    // after it ends, so the stage is seen however fast the machine.
    node = restart_with_slow_join(node, &data_dir, dir.path());
    let channel = node.channel().await;
    let joining = upload_file(channel.clone(), "mid-join.mp4", &clip, &params).await;
    wait_status(&channel, &joining, "concatenating").await;
    node = kill_and_restart(node, &data_dir);
    let channel = node.channel().await;
    completes_whole(&channel, &joining, &clip, dir.path()).await;

    // Nothing temporary is left, and the job list is what is on disk: the
    // two jobs, each source and output stored under its sha256.
    wait_for("tmp/ to be empty", Duration::from_secs(30), || {
        let left = files_under(&data_dir.join("tmp"));
        async move { left.is_empty().then_some(()) }
    })
    .await;
    let listed = JobsClient::new(channel)
        .list_jobs(as_operator(ListJobsRequest::default()))
        .await
        .expect("list jobs")
        .into_inner()
        .jobs;
    let mut ids: Vec<_> = listed.iter().map(|j| j.id.clone()).collect();
    ids.sort();
    let mut wanted = vec![encoding.clone(), joining.clone()];
    wanted.sort();
    assert_eq!(ids, wanted, "only the acknowledged uploads are jobs");
    let blobs: Vec<String> = files_under(&data_dir.join("blobs"))
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    for info in &listed {
        assert_eq!(info.status, "completed");
        assert!(
            blobs.contains(&info.output_sha256),
            "{}: its output is on disk",
            info.id
        );
    }
    let source = sha256_of(&clip);
    assert!(blobs.contains(&source), "the source is on disk");
    wait_for(
        "only sources and outputs left",
        Duration::from_secs(30),
        || {
            let blobs: Vec<String> = files_under(&data_dir.join("blobs"))
                .iter()
                .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
                .collect();
            let kept: Vec<&String> = listed
                .iter()
                .map(|j| &j.output_sha256)
                .chain([&source])
                .collect();
            async move { blobs.iter().all(|b| kept.contains(&b)).then_some(()) }
        },
    )
    .await;
}
