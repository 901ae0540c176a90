//! Clients ride through a lost master (issue 19, item 1): `vidshard
//! upload --output` pointed at a follower keeps waiting through any node
//! when the master is killed with -9 mid-job, then saves the verified
//! output (exit 0, every frame); `status`, `jobs`, `nodes` and `retrieve`
//! run against a follower while the master is dead all exit 0; a retried
//! upload (the same idempotency key, bytes and options) gets the same job,
//! while another upload of the same file is another job; a retrieve
//! from an offset returns exactly the rest of the output; during a forced
//! election the same commands exit 0 too.

mod common;

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use futures::StreamExt;
use sha2::{Digest, Sha256};
use vidshard_proto::v1::RetrieveRequest;
use vidshard_proto::v1::jobs_client::JobsClient;

use common::clips::{make_clip, report};
use common::cluster::{Cluster, lazy_channel};
use common::node::{node_binary, operator_token};
use common::{job, wait_for};

/// Uploads `bytes` at 160x120 through `Jobs.Upload` with `upload_key`;
/// answers the job id.
async fn upload_with_key(node: &str, bytes: &[u8], upload_key: &str) -> String {
    use vidshard_proto::v1::upload_request::Msg;
    use vidshard_proto::v1::{JobParams, UploadHeader, UploadRequest};
    let header = UploadHeader {
        params: Some(JobParams {
            target_width: 160,
            target_height: 120,
            output_format: "mp4".into(),
            ..Default::default()
        }),
        expected_size: bytes.len() as u64,
        expected_sha256: hex::encode(Sha256::digest(bytes)),
        upload_key: upload_key.into(),
        ..Default::default()
    };
    let mut messages = vec![UploadRequest {
        msg: Some(Msg::Header(header)),
    }];
    messages.extend(bytes.chunks(1 << 20).map(|c| UploadRequest {
        msg: Some(Msg::Chunk(c.to_vec())),
    }));
    let reply = JobsClient::new(lazy_channel(node))
        .upload(tokio_stream::iter(messages))
        .await
        .expect("upload")
        .into_inner();
    assert!(reply.success, "{}", reply.message);
    reply.id
}

fn vidshard() -> Command {
    let mut command = Command::new(node_binary().with_file_name("vidshard"));
    command.env_remove("VIDSHARD_TOKEN");
    command
}

fn run(node: &str, args: &[&str]) -> Output {
    vidshard()
        .args(["--json", "--node", node])
        .args(args)
        .output()
        .expect("run vidshard")
}

fn json(out: &Output) -> serde_json::Value {
    assert!(
        out.status.success(),
        "exit {:?}: {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("json")
}

/// The bytes of `path` from `offset` on, via `Jobs/Retrieve`.
async fn retrieve_from(address: &str, id: &str, offset: u64) -> Vec<u8> {
    let mut stream = JobsClient::new(lazy_channel(address))
        .retrieve(RetrieveRequest {
            id: id.into(),
            offset,
            ..Default::default()
        })
        .await
        .expect("retrieve")
        .into_inner();
    let mut bytes = Vec::new();
    while let Some(chunk) = stream.next().await {
        bytes.extend(chunk.expect("chunk").data);
    }
    bytes
}

fn sha256_of(path: &Path) -> String {
    hex::encode(Sha256::digest(std::fs::read(path).expect("read")))
}

#[tokio::test(flavor = "multi_thread")]
async fn a_client_on_a_follower_rides_through_the_master_killed_mid_job() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cluster = Cluster::start(dir.path());
    let master = cluster.formed().await;
    let follower = cluster
        .addresses()
        .into_iter()
        .find(|a| *a != master)
        .expect("a follower");
    let clip = make_clip(&dir.path().join("in.mp4"), 16, 320, 240, true);
    let out = dir.path().join("out.mp4");
    let client = vidshard()
        .args(["--json", "--node", &follower, "upload"])
        .arg(&clip)
        .args(["--width", "160", "--height", "120", "--output"])
        .arg(&out)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the upload");

    // Kill the master once the job is being encoded.
    let id = wait_for("the job to be encoding", Duration::from_secs(60), || {
        let master = master.clone();
        async move {
            let reply = JobsClient::new(lazy_channel(&master))
                .list_jobs(vidshard_proto::v1::ListJobsRequest::default())
                .await
                .ok()?
                .into_inner();
            let job = reply.jobs.first()?;
            (job.status == "processing").then(|| job.id.clone())
        }
    })
    .await;
    cluster.kill(cluster.index_of(&master).expect("master index"));

    // While the master is dead, every read command on the follower works.
    for args in [vec!["status", id.as_str()], vec!["jobs"], vec!["nodes"]] {
        let out = run(&follower, &args);
        json(&out);
    }

    let done = client.wait_with_output().expect("the upload ends");
    if !done.status.success() {
        cluster.print_logs(40);
    }
    let doc = json(&done);
    assert_eq!(doc["id"], id.as_str(), "{doc}");
    let input = report(&clip);
    let output = report(&out);
    assert_eq!(output.frames, input.frames, "every frame");
    assert_eq!((output.width, output.height), (160, 120));

    // A retrieve through the follower and one from an offset.
    let again = dir.path().join("again.mp4");
    let out_doc = json(&run(
        &follower,
        &["retrieve", &id, "--output", again.to_str().expect("utf-8")],
    ));
    assert_eq!(sha256_of(&again), sha256_of(&out), "{out_doc}");
    let whole = std::fs::read(&out).expect("read");
    let tail = retrieve_from(&follower, &id, 1000).await;
    assert_eq!(tail, whole[1000..]);
    assert!(
        retrieve_from(&follower, &id, whole.len() as u64)
            .await
            .is_empty()
    );

    // Another upload of the same file and options (someone else's, say)
    // is another job; a retry of one upload (its key) is the same job.
    let again = json(&run(
        &follower,
        &[
            "upload",
            clip.to_str().expect("utf-8"),
            "--width",
            "160",
            "--height",
            "120",
        ],
    ));
    assert_ne!(again["id"], id.as_str(), "another upload is another job");
    let bytes = std::fs::read(&clip).expect("read clip");
    let first_try = upload_with_key(&follower, &bytes, "retry-key-1").await;
    let retry = upload_with_key(&follower, &bytes, "retry-key-1").await;
    assert_eq!(first_try, retry, "a retry of an upload gets its job");
    assert_ne!(first_try, id, "a new key is a new upload");
    let other = json(&run(
        &follower,
        &[
            "upload",
            clip.to_str().expect("utf-8"),
            "--width",
            "96",
            "--height",
            "72",
        ],
    ));
    assert_ne!(other["id"], id.as_str(), "other options make another job");
    assert_eq!(
        job(lazy_channel(&follower), &id).await.expect("job").status,
        "completed"
    );

    // During a forced election too, every command on a follower works.
    let elect = vidshard()
        .args([
            "--json",
            "--node",
            &follower,
            "--token",
            &operator_token(),
            "elect",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the election");
    for args in [vec!["status", id.as_str()], vec!["jobs"], vec!["nodes"]] {
        json(&run(&follower, &args));
    }
    let elected = elect.wait_with_output().expect("elect ends");
    if !elected.status.success() {
        cluster.print_logs(80);
    }
    json(&elected);
    let during = dir.path().join("during.mp4");
    json(&run(
        &follower,
        &["retrieve", &id, "--output", during.to_str().expect("utf-8")],
    ));
    assert_eq!(sha256_of(&during), sha256_of(&out));
}
