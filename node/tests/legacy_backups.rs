//! A real node as a backup server for original-protocol masters:
//! `ReplicateVideo` stores a whole video, `RequestBackupData` hands back
//! identical bytes (also after a restart), and hostile names are refused
//! without anything being written outside the backup store.

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use tonic::transport::Channel;
use vidshard_proto::replication::node_service_client::NodeServiceClient;
use vidshard_proto::replication::{
    ReplicateVideoRequest, ReplicateVideoResponse, RequestBackupDataRequest,
    RequestBackupDataResponse,
};

use common::MIB;
use common::node::NodeProc;

fn client(channel: Channel) -> NodeServiceClient<Channel> {
    NodeServiceClient::new(channel).max_decoding_message_size(64 * MIB)
}

async fn replicate(
    channel: Channel,
    video_id: &str,
    container: &str,
    video_data: Vec<u8>,
) -> ReplicateVideoResponse {
    client(channel)
        .replicate_video(ReplicateVideoRequest {
            video_id: video_id.into(),
            video_data,
            container: container.into(),
        })
        .await
        .expect("replicate rpc")
        .into_inner()
}

async fn pull(channel: Channel) -> RequestBackupDataResponse {
    client(channel)
        .request_backup_data(RequestBackupDataRequest {
            new_master_address: "127.0.0.1:1".into(),
        })
        .await
        .expect("request backup data rpc")
        .into_inner()
}

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

/// Every path under `root` (files and dirs), relative to it.
fn walk(root: &Path) -> BTreeSet<PathBuf> {
    let mut found = BTreeSet::new();
    let mut pending = vec![root.to_path_buf()];
    while let Some(dir) = pending.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                pending.push(path.clone());
            }
            found.insert(path.strip_prefix(root).expect("under root").to_path_buf());
        }
    }
    found
}

fn blob_count(data_dir: &Path) -> usize {
    walk(&data_dir.join("legacy-backups/blobs"))
        .iter()
        .filter(|p| p.components().count() == 2)
        .count()
}

#[tokio::test(flavor = "multi_thread")]
async fn original_masters_can_use_the_node_as_a_backup_server() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data_dir = dir.path().join("node");
    let node = NodeProc::start(&data_dir, &["--slots", "1"]);
    let channel = node.channel().await;

    let empty = pull(channel.clone()).await;
    assert!(empty.success, "{}", empty.message);
    assert_eq!(empty.message, "no backups held");
    assert!(empty.backup_files.is_empty());

    // A whole video in one message, as original masters send it; 6 MiB
    // is over the 4 MiB our other services decode.
    let video = generated(6 * MIB + 123, 7);
    let stored = replicate(channel.clone(), "holiday.mkv", "", video.clone()).await;
    assert!(stored.success, "{}", stored.message);
    assert!(
        stored.message.contains(&sha256(&video)) && stored.message.contains("6291579 bytes"),
        "{}",
        stored.message
    );
    let small = generated(1000, 9);
    let second = replicate(channel.clone(), "talk", "WEBM", small.clone()).await;
    assert!(second.success, "{}", second.message);

    let reply = pull(channel.clone()).await;
    assert!(reply.success, "{}", reply.message);
    assert_eq!(reply.message, "returned all 2 backups (6.0 MiB)");
    let got: Vec<(&str, &str, &str, String)> = reply
        .backup_files
        .iter()
        .map(|f| {
            (
                f.video_id.as_str(),
                f.filename.as_str(),
                f.container.as_str(),
                sha256(&f.file_data),
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            ("holiday.mkv", "holiday.mkv", "mkv", sha256(&video)),
            ("talk", "talk", "webm", sha256(&small)),
        ],
        "oldest first, identical bytes"
    );

    // Replicating an id again replaces it and drops the old bytes.
    let newer = generated(2000, 11);
    let again = replicate(channel.clone(), "talk", "webm", newer.clone()).await;
    assert!(
        again.success && again.message.contains("replaced"),
        "{}",
        again.message
    );
    assert_eq!(blob_count(&data_dir), 2);

    // Hostile or malformed requests: refused, nothing written anywhere.
    let index = data_dir.join("legacy-backups.redb");
    let index_before = std::fs::read(&index).expect("index");
    let escaped = dir.path().parent().map(|p| p.join("x"));
    let escaped_existed = escaped.as_ref().is_some_and(|p| p.exists());
    let before = walk(dir.path());
    let long = "v".repeat(256);
    for (id, container, data, why) in [
        ("../../x", "", vec![1u8; 10], "path separator"),
        ("/etc/passwd", "", vec![1; 10], "path separator"),
        ("", "", vec![1; 10], "empty"),
        ("   ", "mp4", vec![1; 10], "empty"),
        (".", "", vec![1; 10], "not a name"),
        ("..", "", vec![1; 10], "not a name"),
        ("a/b", "", vec![1; 10], "path separator"),
        ("a\\b", "", vec![1; 10], "path separator"),
        ("a\0b", "", vec![1; 10], "NUL"),
        ("a\u{1b}[2Jb", "", vec![1; 10], "control character"),
        (".hidden", "", vec![1; 10], "starts with '.'"),
        (long.as_str(), "", vec![1; 10], "256 bytes"),
        ("fine.mp4", "avi", vec![1; 10], "mp4, mkv, webm, mov"),
        ("fine.mp4", "../mp4", vec![1; 10], "mp4, mkv, webm, mov"),
        ("fine.mp4", "", Vec::new(), "empty"),
    ] {
        let reply = replicate(channel.clone(), id, container, data).await;
        assert!(!reply.success, "{id:?} was stored: {}", reply.message);
        assert!(
            reply.message.starts_with("not stored: refused: ") && reply.message.contains(why),
            "{id:?}: {}",
            reply.message
        );
    }
    let after = walk(dir.path());
    let new: Vec<&PathBuf> = after.difference(&before).collect();
    assert!(
        new.iter().all(|p| p.starts_with("node")
            && !p.starts_with("node/legacy-backups")
            && !p.ends_with("x")
            && !p.ends_with("passwd")
            && !p.ends_with("b")
            && !p.ends_with(".hidden")),
        "refused requests left files: {new:?}"
    );
    assert_eq!(std::fs::read(&index).expect("index"), index_before);
    assert_eq!(blob_count(&data_dir), 2);
    assert!(
        escaped_existed || !escaped.is_some_and(|p| p.exists()),
        "a file escaped the data dir"
    );
    assert!(!after.iter().any(|p| p.ends_with("passwd")));

    // The backups survive a restart of the node.
    drop(channel);
    let status = node.terminate();
    assert!(status.success() || status.code().is_none(), "{status:?}");
    let node = NodeProc::start(&data_dir, &["--slots", "1"]);
    let reply = pull(node.channel().await).await;
    assert!(reply.success, "{}", reply.message);
    let got: Vec<(&str, String)> = reply
        .backup_files
        .iter()
        .map(|f| (f.video_id.as_str(), sha256(&f.file_data)))
        .collect();
    assert_eq!(
        got,
        [("holiday.mkv", sha256(&video)), ("talk", sha256(&newer))]
    );
}

/// A message over the 1 GiB NodeService limit (what an original master
/// sends for a video that large) is refused with a clear status, and the
/// node neither stores anything nor falls over.
#[tokio::test(flavor = "multi_thread")]
async fn an_oversized_replicate_video_is_refused_with_a_clear_status() {
    let dir = tempfile::tempdir().expect("tempdir");
    let node = NodeProc::start(&dir.path().join("data"), &[]);
    let channel = node.channel().await;
    let before = blob_count(&dir.path().join("data"));
    let status = NodeServiceClient::new(channel.clone())
        .max_encoding_message_size(usize::MAX)
        .replicate_video(ReplicateVideoRequest {
            video_id: "huge.mp4".into(),
            video_data: vec![0u8; 1024 * MIB + MIB],
            container: "mp4".into(),
        })
        .await
        .expect_err("a message over 1 GiB must be refused");
    assert!(
        matches!(
            status.code(),
            tonic::Code::OutOfRange | tonic::Code::ResourceExhausted | tonic::Code::Internal
        ),
        "{status}"
    );
    assert!(
        status.message().contains("too large") || status.message().contains("larger"),
        "{status}"
    );
    assert_eq!(
        blob_count(&dir.path().join("data")),
        before,
        "nothing stored"
    );
    // Still serving.
    let pulled = pull(channel).await;
    assert!(pulled.success, "{}", pulled.message);
}
