//! Hostile ids on every RPC that takes one, against a real node: `/`,
//! `..`, absolute paths, NUL, 100 KB strings. Every call gets an answer
//! (an error code or a refusal with a reason, never a crash), no file
//! appears outside the data dir, nothing outside it changes, nothing is
//! left in its work dir, and the node keeps serving afterwards. Messages
//! over the 4 MiB decode limit (a 5 MiB chunk or id) are refused too.

mod common;
use common::node::{as_operator, as_peer};

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use tonic::Code;
use tonic::transport::Channel;
use vidshard_proto::replication::master_service_client::MasterServiceClient;
use vidshard_proto::replication::node_service_client::NodeServiceClient;
use vidshard_proto::replication::worker_service_client::WorkerServiceClient;
use vidshard_proto::replication::{
    DistributeShardRequest, GetCurrentMasterRequest, ReplicateVideoRequest, RequestShardRequest,
    RetrieveVideoRequest, VideoStatusRequest,
};
use vidshard_proto::v1::cluster_client::ClusterClient;
use vidshard_proto::v1::jobs_client::JobsClient;
use vidshard_proto::v1::worker_client::WorkerClient;
use vidshard_proto::v1::{
    BlobHeader, DeleteJobRequest, EncodeSettings, FetchBlobRequest, GetJobRequest,
    HeartbeatRequest, PushBlobRequest, RemoveNodeRequest, RunShardRequest, ShardTask,
    TriggerElectionRequest, push_blob_request, run_shard_request,
};

use common::node::NodeProc;

/// Every file under `dir`, recursively.
fn files_under(dir: &Path) -> BTreeSet<PathBuf> {
    let mut found = BTreeSet::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return found;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            found.extend(files_under(&path));
        } else {
            found.insert(path);
        }
    }
    found
}

fn hostile_ids() -> Vec<String> {
    vec![
        "../../evil".into(),
        "../../../../../../tmp/vidshard-evil".into(),
        "/tmp/vidshard-evil-abs".into(),
        "..".into(),
        "a/../../b".into(),
        "nul\0byte".into(),
        "x".repeat(100 * 1024),
        "../".repeat(30 * 1024),
        "ü/../..\\..\\evil".into(),
    ]
}

/// A call answered with an error code a client can act on, or a reply.
fn answered<T: std::fmt::Debug>(what: &str, id: &str, result: Result<T, tonic::Status>) {
    if let Err(status) = result {
        assert!(
            matches!(
                status.code(),
                Code::InvalidArgument
                    | Code::NotFound
                    | Code::FailedPrecondition
                    | Code::PermissionDenied
                    | Code::OutOfRange
                    | Code::AlreadyExists
            ),
            "{what} with id {:?}: unexpected {status:?}",
            id.chars().take(40).collect::<String>()
        );
        assert!(!status.message().is_empty(), "{what}: a reason");
    }
}

async fn try_every_rpc(channel: Channel, id: &str) {
    let short = id.chars().take(40).collect::<String>();
    let mut jobs = JobsClient::new(channel.clone());
    let mut master = MasterServiceClient::new(channel.clone());
    let mut node = NodeServiceClient::new(channel.clone());
    let mut original_worker = WorkerServiceClient::new(channel.clone());
    let mut cluster = ClusterClient::new(channel.clone());
    let mut worker = WorkerClient::new(channel.clone());

    let got = jobs
        .get_job(GetJobRequest {
            id: id.into(),
            ..Default::default()
        })
        .await;
    assert!(got.is_err(), "GetJob {short:?} found something");
    answered("GetJob", id, got);
    let deleted = jobs
        .delete_job(as_operator(DeleteJobRequest { id: id.into() }))
        .await;
    if let Ok(reply) = &deleted {
        assert!(
            !reply.get_ref().deleted,
            "DeleteJob {short:?} deleted something"
        );
    }
    answered("DeleteJob", id, deleted);

    let status = master
        .get_video_status(VideoStatusRequest {
            video_id: id.into(),
        })
        .await
        .expect("GetVideoStatus answers")
        .into_inner();
    assert_eq!(status.status, "not_found", "{short:?}");
    let retrieved = match master
        .retrieve_video(RetrieveVideoRequest {
            video_id: id.into(),
        })
        .await
    {
        Ok(stream) => stream.into_inner().message().await.map(|_| ()),
        Err(status) => Err(status),
    };
    assert!(retrieved.is_err(), "RetrieveVideo {short:?} sent bytes");
    answered("RetrieveVideo", id, retrieved);

    let shard = original_worker
        .request_shard(RequestShardRequest {
            shard_id: id.into(),
        })
        .await;
    if let Ok(reply) = &shard {
        assert!(!reply.get_ref().success, "RequestShard {short:?} succeeded");
        assert!(reply.get_ref().shard_data.is_empty());
    }
    answered("RequestShard", id, shard);
    let processed = original_worker
        .process_shard(DistributeShardRequest {
            video_id: id.into(),
            shard_id: id.into(),
            shard_data: b"not a video".to_vec(),
            target_width: 160,
            target_height: 120,
            output_format: "mp4".into(),
            ..Default::default()
        })
        .await;
    if let Ok(reply) = &processed {
        assert!(!reply.get_ref().success, "ProcessShard {short:?} succeeded");
    }
    answered("ProcessShard", id, processed);
    let replicated = node
        .replicate_video(ReplicateVideoRequest {
            video_id: id.into(),
            video_data: b"backup bytes".to_vec(),
            container: "../../mp4".into(),
        })
        .await;
    answered("ReplicateVideo", id, replicated);

    let elected = cluster
        .trigger_election(as_operator(TriggerElectionRequest {
            to_node_id: id.into(),
        }))
        .await;
    if let Ok(reply) = &elected {
        assert!(!reply.get_ref().accepted, "election to {short:?} accepted");
    }
    answered("TriggerElection", id, elected);
    let removed = cluster
        .remove_node(as_operator(RemoveNodeRequest { node_id: id.into() }))
        .await;
    if let Ok(reply) = &removed {
        assert!(
            !reply.get_ref().removed,
            "RemoveNode {short:?} removed something"
        );
    }
    answered("RemoveNode", id, removed);
    let beat = cluster
        .heartbeat(as_peer(HeartbeatRequest {
            node_id: id.into(),
            address: id.into(),
            slots_total: 1,
            ..Default::default()
        }))
        .await;
    if let Ok(reply) = &beat {
        assert!(
            !reply.get_ref().accepted,
            "heartbeat from {short:?} accepted"
        );
    }
    answered("Heartbeat", id, beat);

    let fetched = match worker
        .fetch_blob(as_peer(FetchBlobRequest {
            sha256: id.into(),
            release: true,
        }))
        .await
    {
        Ok(stream) => stream.into_inner().message().await.map(|_| ()),
        Err(status) => Err(status),
    };
    assert!(fetched.is_err(), "FetchBlob {short:?} sent bytes");
    answered("FetchBlob", id, fetched);
    let pushed = worker
        .push_blob(as_peer(tokio_stream::iter([
            PushBlobRequest {
                part: Some(push_blob_request::Part::Header(BlobHeader {
                    sha256: id.into(),
                    size: 5,
                    term: u64::MAX,
                    purpose: id.into(),
                })),
            },
            PushBlobRequest {
                part: Some(push_blob_request::Part::Chunk(b"bytes".to_vec())),
            },
        ])))
        .await;
    if let Ok(reply) = &pushed {
        assert!(!reply.get_ref().stored, "PushBlob {short:?} stored");
    }
    answered("PushBlob", id, pushed);
    let ran = worker
        .run_shard(as_peer(tokio_stream::iter([
            RunShardRequest {
                msg: Some(run_shard_request::Msg::Task(ShardTask {
                    job_id: id.into(),
                    shard_index: 0,
                    task_id: id.into(),
                    settings: Some(EncodeSettings {
                        width: 160,
                        height: 120,
                        format: "mp4".into(),
                        ..Default::default()
                    }),
                    expected_frames: 1,
                    sha256: id.into(),
                    size: 5,
                    term: 0,
                    measure_quality: true,
                    ..Default::default()
                })),
            },
            RunShardRequest {
                msg: Some(run_shard_request::Msg::Chunk(b"bytes".to_vec())),
            },
        ])))
        .await;
    if let Ok(reply) = &ran {
        assert!(!reply.get_ref().success, "RunShard {short:?} succeeded");
    }
    answered("RunShard", id, ran);
}

#[tokio::test(flavor = "multi_thread")]
async fn hostile_ids_on_every_rpc_are_answered_and_touch_nothing_outside() {
    let dir = tempfile::tempdir().expect("tempdir");
    let outside = dir.path().join("outside");
    std::fs::create_dir_all(outside.join("deeper")).expect("mkdir");
    std::fs::write(outside.join("keep.txt"), b"untouched").expect("write");
    // The node runs two levels below `outside`'s parent, so `../../evil`
    // from its data dir or any folder in it would land around here.
    let data = dir.path().join("a").join("b").join("node");
    let node = NodeProc::start(&data, &[]);
    let tmp_before = std::env::temp_dir();
    let tmp_files_before: BTreeSet<_> = std::fs::read_dir(&tmp_before)
        .expect("read /tmp")
        .flatten()
        .map(|e| e.file_name())
        .collect();
    let before_outside = files_under(dir.path())
        .into_iter()
        .filter(|p| !p.starts_with(&data))
        .collect::<BTreeSet<_>>();

    let channel = node.channel().await;
    for id in hostile_ids() {
        tokio::time::timeout(Duration::from_secs(30), try_every_rpc(channel.clone(), &id))
            .await
            .expect("every RPC answers within 30 s");
    }

    // Still serving, as master.
    let master = NodeServiceClient::new(channel.clone())
        .get_current_master(GetCurrentMasterRequest {})
        .await
        .expect("still serving")
        .into_inner();
    assert_eq!(master.master_address, node.address);
    // Nothing new or changed outside the data dir.
    let after_outside = files_under(dir.path())
        .into_iter()
        .filter(|p| !p.starts_with(&data))
        .collect::<BTreeSet<_>>();
    assert_eq!(before_outside, after_outside, "files outside the data dir");
    assert_eq!(
        std::fs::read(outside.join("keep.txt")).expect("read"),
        b"untouched"
    );
    let new_in_tmp: Vec<_> = std::fs::read_dir(&tmp_before)
        .expect("read /tmp")
        .flatten()
        .map(|e| e.file_name())
        .filter(|n| !tmp_files_before.contains(n) && n.to_string_lossy().contains("evil"))
        .collect();
    assert!(new_in_tmp.is_empty(), "created in /tmp: {new_in_tmp:?}");
    // No file inside the data dir is named after a hostile id.
    for file in files_under(&data) {
        let name = file.file_name().map(|n| n.to_string_lossy().into_owned());
        assert!(
            name.as_deref()
                .is_none_or(|n| !n.contains("evil") && n.len() < 300),
            "{file:?}"
        );
    }
    assert!(
        files_under(&data.join("tmp")).is_empty(),
        "work files left behind: {:?}",
        files_under(&data.join("tmp"))
    );
    // And it still takes real work.
    let clip = common::clips::make_clip(&dir.path().join("c.mp4"), 2, 160, 120, true);
    let id = common::upload_file(
        channel.clone(),
        "after.mp4",
        &clip,
        &common::Params::size(160, 120, "mp4"),
    )
    .await;
    let info = common::wait_finished(channel, &id, Duration::from_secs(120)).await;
    assert_eq!(info.status, "completed", "{}", info.message);
}

/// Messages over the 4 MiB our services decode: refused with a status
/// naming the size, nothing stored, the node still serving.
#[tokio::test(flavor = "multi_thread")]
async fn messages_beyond_the_size_bounds_are_refused() {
    use vidshard_proto::replication::UploadVideoChunk;
    use vidshard_proto::v1::{UploadHeader, UploadRequest, upload_request};

    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("node");
    let node = NodeProc::start(&data, &[]);
    let channel = node.channel().await;
    let big = vec![0u8; 5 << 20];
    let too_big = |status: tonic::Status| {
        assert!(
            matches!(status.code(), Code::OutOfRange | Code::ResourceExhausted),
            "{status:?}"
        );
        assert!(
            status.message().contains("too large") || status.message().contains("larger"),
            "{status:?}"
        );
    };

    // The original upload with one 5 MiB chunk.
    let original = MasterServiceClient::new(channel.clone())
        .max_encoding_message_size(64 << 20)
        .upload_video(tokio_stream::iter([UploadVideoChunk {
            video_id: "big.mp4".into(),
            data_chunk: big.clone(),
            is_first_chunk: true,
            target_width: 160,
            target_height: 120,
            output_format: "mp4".into(),
            ..Default::default()
        }]))
        .await;
    too_big(original.expect_err("a 5 MiB message must be refused"));
    // Ours, a header then one 5 MiB chunk.
    let ours = JobsClient::new(channel.clone())
        .max_encoding_message_size(64 << 20)
        .upload(tokio_stream::iter([
            UploadRequest {
                msg: Some(upload_request::Msg::Header(UploadHeader {
                    requested_id: "big.mp4".into(),
                    params: Some(vidshard_proto::v1::JobParams {
                        target_width: 160,
                        target_height: 120,
                        ..Default::default()
                    }),
                    ..Default::default()
                })),
            },
            UploadRequest {
                msg: Some(upload_request::Msg::Chunk(big.clone())),
            },
        ]))
        .await;
    too_big(ours.expect_err("a 5 MiB chunk must be refused"));
    // A 5 MiB id.
    let id = "y".repeat(5 << 20);
    let lookup = JobsClient::new(channel.clone())
        .max_encoding_message_size(64 << 20)
        .get_job(GetJobRequest {
            id,
            ..Default::default()
        })
        .await;
    too_big(lookup.expect_err("a 5 MiB request must be refused"));

    // Nothing stored, nothing left over, still serving.
    let mut leftovers = files_under(&data.join("tmp"));
    leftovers.extend(files_under(&data.join("blobs")));
    assert!(leftovers.is_empty(), "{leftovers:?}");
    let jobs = JobsClient::new(channel)
        .list_jobs(vidshard_proto::v1::ListJobsRequest::default())
        .await
        .expect("still serving")
        .into_inner();
    assert!(jobs.jobs.is_empty(), "no job from refused uploads");
}
