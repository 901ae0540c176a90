//! Backups with three real nodes: outputs copied to other nodes and
//! retrievable from every survivor after the master dies; a damaged copy
//! never served whole and replaced; a lost holder replaced on the third
//! node; an upload acknowledged just before the master dies still
//! finishes; `DeleteJob` removes a job's blobs from every node.

mod common;
use common::node::as_operator;

use std::path::{Path, PathBuf};
use std::time::Duration;

use vidshard_proto::v1::jobs_client::JobsClient;
use vidshard_proto::v1::{DeleteJobRequest, JobInfo};

use common::clips::{make_clip, report};
use common::cluster::{Cluster, NODES, lazy_channel};
use common::{Params, blob_files, job, retrieve, upload_file, wait_for};

const JOB_TIMEOUT: Duration = Duration::from_secs(240);
const BACKUP_TIMEOUT: Duration = Duration::from_secs(60);

fn target() -> Params {
    Params::size(160, 120, "mp4")
}

/// The job once `until` holds for it (asked of the node at `address`).
async fn job_when(
    address: &str,
    id: &str,
    what: &str,
    until: impl Fn(&JobInfo) -> bool,
) -> JobInfo {
    wait_for(what, JOB_TIMEOUT, || {
        let channel = lazy_channel(address);
        let until = &until;
        async move { job(channel, id).await.ok().filter(|j| until(j)) }
    })
    .await
}

/// Where node `i` keeps blob `sha256`.
fn blob_path(cluster: &Cluster, i: usize, sha256: &str) -> PathBuf {
    cluster.nodes[i]
        .data_dir
        .join("blobs")
        .join(&sha256[..2])
        .join(sha256)
}

fn node_index(cluster: &Cluster, node_id: &str) -> usize {
    (0..NODES)
        .find(|&i| {
            cluster.nodes[i]
                .log_text()
                .lines()
                .any(|l| l.contains("listening on") && l.contains(&format!("node={node_id} ")))
        })
        .unwrap_or_else(|| panic!("no node {node_id}"))
}

async fn upload_and_complete(
    cluster: &Cluster,
    master: &str,
    dir: &Path,
    seconds: u32,
) -> (PathBuf, JobInfo) {
    let clip = make_clip(
        &dir.join(format!("clip{seconds}.mp4")),
        seconds,
        320,
        240,
        true,
    );
    let index = cluster.index_of(master).expect("master index");
    let id = upload_file(
        cluster.nodes[index].channel().await,
        "clip.mp4",
        &clip,
        &target(),
    )
    .await;
    let done = job_when(master, &id, "the job to finish", |j| j.finished).await;
    assert_eq!(done.status, "completed", "{}", done.message);
    (clip, done)
}

#[tokio::test(flavor = "multi_thread")]
async fn outputs_reach_two_backups_and_every_survivor_serves_them_after_the_master_dies() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cluster = Cluster::start(dir.path());
    let master = cluster.formed().await;
    let (clip, done) = upload_and_complete(&cluster, &master, dir.path(), 6).await;
    let backed = job_when(&master, &done.id, "the output on 3 nodes", |j| {
        j.output_holders.len() == 3 && j.output_pending.is_empty()
    })
    .await;
    assert_eq!(backed.output_replicas_wanted, 2);
    for holder in &backed.output_holders {
        let i = node_index(&cluster, holder);
        assert!(
            blob_path(&cluster, i, &backed.output_sha256).exists(),
            "{holder} has no copy"
        );
    }
    cluster.kill(cluster.index_of(&master).expect("index"));
    for address in cluster.addresses().into_iter().filter(|a| *a != master) {
        let out = dir
            .path()
            .join(format!("out-{}.mp4", address.replace(':', "_")));
        let (sha256, size) = wait_for("a survivor to serve the output", BACKUP_TIMEOUT, || {
            let (address, out, id) = (address.clone(), out.clone(), done.id.clone());
            async move { retrieve(lazy_channel(&address), &id, &out).await.ok() }
        })
        .await;
        assert_eq!(
            (sha256.as_str(), size),
            (done.output_sha256.as_str(), done.output_bytes),
            "via {address}"
        );
        assert_eq!(report(&out).frames, report(&clip).frames);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_damaged_copy_is_never_served_whole_and_the_scrub_replaces_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cluster = Cluster::start_with(
        dir.path(),
        &["--backup-replicas", "1", "--scrub-every", "1"],
    );
    let master = cluster.formed().await;
    let (_, done) = upload_and_complete(&cluster, &master, dir.path(), 4).await;
    let backed = job_when(&master, &done.id, "one backup copy", |j| {
        j.output_holders.len() == 2
    })
    .await;
    let backup = backed.output_holders[1].clone();
    let b = node_index(&cluster, &backup);
    let path = blob_path(&cluster, b, &done.output_sha256);
    let mut bytes = std::fs::read(&path).expect("read the copy");
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0xff;
    std::fs::write(&path, &bytes).expect("damage the copy");

    // Served by the damaged node: it never hands out the whole damaged
    // file (it ends in an error), or it already found the damage and
    // serves a good copy from the master.
    let out = dir.path().join("via-backup.mp4");
    match retrieve(cluster.nodes[b].channel().await, &done.id, &out).await {
        Ok((sha256, _)) => assert_eq!(sha256, done.output_sha256),
        Err(status) => assert!(
            matches!(
                status.code(),
                tonic::Code::DataLoss | tonic::Code::Unavailable
            ),
            "{status}"
        ),
    }
    // The scrub (or the refused retrieve) reports it; a good copy is made.
    let repaired = job_when(&master, &done.id, "the damaged copy replaced", |j| {
        j.output_holders.len() == 2
            && j.output_holders.iter().all(|h| {
                let i = node_index(&cluster, h);
                let p = blob_path(&cluster, i, &done.output_sha256);
                std::fs::read(&p).is_ok_and(|b| sha256_hex(&b) == done.output_sha256)
            })
    })
    .await;
    eprintln!("holders after repair: {:?}", repaired.output_holders);
    let (sha256, _) = retrieve(cluster.nodes[b].channel().await, &done.id, &out)
        .await
        .expect("retrieve after the repair");
    assert_eq!(sha256, done.output_sha256);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_holder_gone_for_good_is_replaced_on_the_third_node() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cluster = Cluster::start_with(dir.path(), &["--backup-replicas", "1", "--dead-after", "2"]);
    let master = cluster.formed().await;
    let (_, done) = upload_and_complete(&cluster, &master, dir.path(), 4).await;
    let backed = job_when(&master, &done.id, "one backup copy", |j| {
        j.output_holders.len() == 2
    })
    .await;
    let gone = backed.output_holders[1].clone();
    let g = node_index(&cluster, &gone);
    eprintln!("killing {gone}: node {} at {}", g + 1, cluster.address(g));
    cluster.kill(g);
    let third = job_when(&master, &done.id, "a copy on the third node", |j| {
        j.output_holders.len() == 3 && !j.output_holders[2..].contains(&gone)
    })
    .await;
    let i = node_index(&cluster, &third.output_holders[2]);
    let copy = std::fs::read(blob_path(&cluster, i, &done.output_sha256)).expect("the new copy");
    assert_eq!(sha256_hex(&copy), done.output_sha256);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_upload_acknowledged_just_before_the_master_dies_is_finished_by_the_next() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cluster = Cluster::start(dir.path());
    let master = cluster.formed().await;
    let clip = make_clip(&dir.path().join("clip.mp4"), 10, 320, 240, true);
    let m = cluster.index_of(&master).expect("index");
    let id = upload_file(
        cluster.nodes[m].channel().await,
        "clip.mp4",
        &clip,
        &target(),
    )
    .await;
    cluster.kill(m);
    let survivor = cluster
        .addresses()
        .into_iter()
        .find(|a| *a != master)
        .expect("survivor");
    let finished = tokio::time::timeout(
        JOB_TIMEOUT - Duration::from_secs(5),
        job_when(&survivor, &id, "the job to finish on the new master", |j| {
            j.finished
        }),
    )
    .await;
    let Ok(done) = finished else {
        cluster.print_logs(80);
        let last = job(lazy_channel(&survivor), &id).await;
        panic!("the job did not finish on the new master within {JOB_TIMEOUT:?}: {last:?}");
    };
    assert_eq!(done.status, "completed", "{}", done.message);
    let out = dir.path().join("out.mp4");
    retrieve(lazy_channel(&survivor), &id, &out)
        .await
        .expect("retrieve");
    assert_eq!(report(&out).frames, report(&clip).frames);
}

#[tokio::test(flavor = "multi_thread")]
async fn deleting_a_job_removes_its_blobs_from_every_node() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cluster = Cluster::start_with(dir.path(), &["--keep-sources", "24"]);
    let master = cluster.formed().await;
    let (_, done) = upload_and_complete(&cluster, &master, dir.path(), 4).await;
    job_when(&master, &done.id, "the output on 3 nodes", |j| {
        j.output_holders.len() == 3
    })
    .await;
    let follower = cluster
        .addresses()
        .into_iter()
        .find(|a| *a != master)
        .expect("follower");
    let reply = JobsClient::new(lazy_channel(&follower))
        .delete_job(as_operator(DeleteJobRequest {
            id: done.id.clone(),
        }))
        .await
        .expect("delete")
        .into_inner();
    assert!(reply.deleted, "{}", reply.message);
    let status = job(lazy_channel(&master), &done.id)
        .await
        .expect_err("the job is gone");
    assert_eq!(status.code(), tonic::Code::NotFound);
    let deadline = std::time::Instant::now() + BACKUP_TIMEOUT;
    loop {
        let left: Vec<String> = (0..NODES)
            .flat_map(|i| blob_files(&cluster.nodes[i].data_dir.join("blobs")))
            .collect();
        if left.is_empty() {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "blobs still on disk {BACKUP_TIMEOUT:?} after the delete: {left:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(bytes))
}
