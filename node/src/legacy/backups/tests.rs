//! Tests of the [`LegacyBackups`] handle on a real data dir: storing,
//! replacing and reading back, refusals, the reply budget, restarts and
//! an index that cannot be opened.

use super::index::{BackupIndex, decode, encode};
use super::limits::{Holding, small};
use super::reply::backup_file_wire_len;
use super::*;

async fn blob_files(backups: &LegacyBackups) -> usize {
    let mut count = 0;
    let mut dirs = tokio::fs::read_dir(backups.store().root().join("blobs"))
        .await
        .expect("blobs");
    while let Some(dir) = dirs.next_entry().await.expect("dir") {
        let mut files = tokio::fs::read_dir(dir.path()).await.expect("fan-out");
        while files.next_entry().await.expect("file").is_some() {
            count += 1;
        }
    }
    count
}

async fn holding(backups: &LegacyBackups) -> Holding {
    backups.index.holding("").await.expect("holding").0
}

#[test]
fn entries_encode_and_decode() {
    let entry = BackupEntry {
        sha256: hex::encode(Sha256::digest(b"x")),
        size: 1 << 40,
        container: "webm".into(),
        stored_unix_ms: 1_700_000_000_123,
    };
    assert_eq!(decode(&encode(&entry).expect("encode")), Ok(entry.clone()));
    for bad in [
        BackupEntry {
            sha256: entry.sha256.to_uppercase(),
            ..entry.clone()
        },
        BackupEntry {
            sha256: "ab".into(),
            ..entry.clone()
        },
        BackupEntry {
            container: "avi".into(),
            ..entry.clone()
        },
    ] {
        assert!(encode(&bad).is_err(), "{bad:?}");
    }
    assert!(decode(&[1, 2, 3]).is_err());
}

#[tokio::test]
async fn replicate_replace_and_read_back() {
    let dir = tempfile::tempdir().expect("tempdir");
    let backups = LegacyBackups::open(dir.path(), small(10_000, 10_000))
        .await
        .expect("open");
    let tick = || tokio::time::sleep(std::time::Duration::from_millis(3));
    let first = backups.replicate("a.mkv", "", b"first").await.expect("a");
    assert_eq!((first.container, first.replaced), ("mkv", false));
    tick().await;
    backups.replicate("b", "mov", b"shared").await.expect("b");
    tick().await;
    backups.replicate("c", "", b"shared").await.expect("c");
    assert_eq!(blob_files(&backups).await, 2, "b and c share a blob");
    // Replacing b keeps the blob c still uses; replacing a drops its old one.
    tick().await;
    let again = backups
        .replicate("b", "mov", b"second b")
        .await
        .expect("b2");
    assert!(again.replaced);
    tick().await;
    backups
        .replicate("a.mkv", "", b"second a")
        .await
        .expect("a2");
    assert_eq!(blob_files(&backups).await, 3);
    let entries = backups.entries().await.expect("entries");
    assert_eq!(entries.len(), 3);
    assert_eq!(entries["a.mkv"].size, 8);
    let held = holding(&backups).await;
    assert_eq!((held.entries, held.total_bytes), (3, 22));

    let reply = backups.collect_for_reply().await.expect("reply");
    let got: Vec<(&str, &str, &[u8])> = reply
        .files
        .iter()
        .map(|f| (f.video_id.as_str(), f.container.as_str(), f.data.as_slice()))
        .collect();
    assert_eq!(
        got,
        [
            ("c", "mp4", &b"shared"[..]),
            ("b", "mov", b"second b"),
            ("a.mkv", "mkv", b"second a"),
        ]
    );
    assert_eq!(reply.message, "returned all 3 backups (22 bytes)");
}

#[tokio::test]
async fn refusals_store_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let backups = LegacyBackups::open(dir.path(), small(10, 10_000))
        .await
        .expect("open");
    for (id, data) in [
        ("../../x", &b"data"[..]),
        ("/etc/passwd", b"data"),
        ("", b"data"),
        ("ok", b""),
    ] {
        assert!(backups.replicate(id, "", data).await.is_err(), "{id}");
    }
    backups.replicate("six", "", b"123456").await.expect("fits");
    let over = backups
        .replicate("five", "", b"12345")
        .await
        .expect_err("over");
    assert!(
        matches!(over, BackupError::OverTotal { total: 11, .. }),
        "{over}"
    );
    assert_eq!(blob_files(&backups).await, 1);
    let entries = backups.entries().await.expect("entries");
    assert_eq!(entries.keys().collect::<Vec<_>>(), ["six"]);
    assert_eq!(holding(&backups).await.total_bytes, 6);
    let mut tmp = tokio::fs::read_dir(backups.store().tmp_dir())
        .await
        .expect("tmp");
    assert!(tmp.next_entry().await.expect("entry").is_none());
}

#[tokio::test]
async fn replies_stay_within_the_budget_and_report_damage() {
    let dir = tempfile::tempdir().expect("tempdir");
    let budget = backup_file_wire_len("v1", "mp4", 100) * 2;
    let backups = LegacyBackups::open(dir.path(), small(10_000, budget))
        .await
        .expect("open");
    for id in ["v1", "v2", "v3"] {
        backups
            .replicate(id, "", &[id.as_bytes()[1]; 100])
            .await
            .expect(id);
        tokio::time::sleep(std::time::Duration::from_millis(2)).await;
    }
    let reply = backups.collect_for_reply().await.expect("reply");
    assert_eq!(reply.files.len(), 2);
    assert_eq!(
        reply.message,
        "returned 2 of 3 backups (200 bytes); the rest exceed the 1 GiB reply limit: \"v3\""
    );
    // A damaged blob is reported, not returned.
    drop(reply);
    let entries = backups.entries().await.expect("entries");
    let path = backups.store().path(&entries["v1"].sha256).expect("path");
    tokio::fs::write(&path, [0u8; 100]).await.expect("damage");
    let reply = backups.collect_for_reply().await.expect("reply");
    assert_eq!(reply.files.len(), 1);
    assert!(
        reply
            .message
            .contains("unreadable here, not returned: \"v1\""),
        "{}",
        reply.message
    );
}

#[tokio::test]
async fn replies_wait_for_the_budget_held_by_replies_not_yet_sent() {
    let dir = tempfile::tempdir().expect("tempdir");
    let limits = Limits {
        reply_budget: 1000,
        reply_wait: std::time::Duration::from_millis(300),
        ..small(10_000, 10_000)
    };
    let backups = std::sync::Arc::new(LegacyBackups::open(dir.path(), limits).await.expect("open"));
    backups.replicate("a", "", &[1; 600]).await.expect("a");
    let first = backups.collect_for_reply().await.expect("reply");
    assert_eq!(first.permit.bytes(), backup_file_wire_len("a", "mp4", 600));
    // The budget of 1000 bytes holds one such reply, not two (a reply
    // larger than the whole budget takes all of it).
    backups
        .replicate("b", "", &[2; 600])
        .await
        .expect("b: the lock is free");
    let busy = backups.collect_for_reply().await.expect_err("busy");
    assert!(matches!(busy, BackupError::Busy { .. }), "{busy}");
    // A waiting caller gets in once the first reply is gone.
    let waiting = tokio::spawn({
        let backups = backups.clone();
        async move { backups.collect_for_reply().await.map(|r| r.files.len()) }
    });
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    drop(first);
    assert_eq!(waiting.await.expect("task").expect("let in"), 2);
    assert_eq!(backups.budget().available(), 1000);
}

#[tokio::test]
async fn entries_survive_a_restart() {
    let dir = tempfile::tempdir().expect("tempdir");
    let backups = LegacyBackups::open(dir.path(), small(10_000, 10_000))
        .await
        .expect("open");
    backups.replicate("a", "webm", b"alpha").await.expect("a");
    backups.replicate("b", "", b"beta").await.expect("b");
    backups
        .replicate("a", "webm", b"alpha 2")
        .await
        .expect("a2");
    let before = backups.entries().await.expect("entries");
    drop(backups);

    let backups = LegacyBackups::open(dir.path(), small(10_000, 10_000))
        .await
        .expect("reopen");
    assert_eq!(backups.entries().await.expect("entries"), before);
    let held = holding(&backups).await;
    assert_eq!((held.entries, held.total_bytes), (2, 11));
    let reply = backups.collect_for_reply().await.expect("reply");
    assert_eq!(reply.message, "returned all 2 backups (11 bytes)");
    // The running figures go on from where they were.
    let over = backups.replicate("c", "", &[0; 1000]).await.expect("fits");
    assert!(!over.replaced);
    assert_eq!(holding(&backups).await.total_bytes, 1011);
}

#[tokio::test]
async fn an_index_that_cannot_be_opened_is_an_error_naming_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join(INDEX_FILE);
    let junk = vec![7u8; 4096];
    tokio::fs::write(&path, &junk).await.expect("write");
    let err = LegacyBackups::open(dir.path(), small(10_000, 10_000))
        .await
        .expect_err("not an index");
    assert!(matches!(err, BackupError::Index { .. }), "{err}");
    assert!(err.to_string().contains(INDEX_FILE), "{err}");
    assert_eq!(tokio::fs::read(&path).await.expect("kept"), junk);
    // Held open elsewhere in this process: an error, not a second handle.
    let other = tempfile::tempdir().expect("tempdir");
    let _open = BackupIndex::open(other.path().join(INDEX_FILE))
        .await
        .expect("open");
    let twice = LegacyBackups::open(other.path(), small(10_000, 10_000))
        .await
        .expect_err("already open");
    assert!(twice.to_string().contains(INDEX_FILE), "{twice}");
}
