use super::*;

#[tokio::test]
async fn written_blob_is_named_by_its_hash_and_verifies() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = BlobStore::open(dir.path()).await.expect("open");
    let mut w = store.writer().await.expect("writer");
    w.write(b"hello ").await.expect("write");
    w.write(b"world").await.expect("write");
    let blob = w.finish().await.expect("finish");
    assert_eq!(
        blob.sha256,
        "b94d27b9934d3e08a52e52d7da7dabfac484efe37a5380ee9088f7ace2efcde9"
    );
    assert_eq!(blob.size, 11);
    assert!(store.contains(&blob).await);
    store.verify(&blob).await.expect("verifies");
    let path = store.path(&blob.sha256).expect("path");
    assert_eq!(tokio::fs::read(&path).await.expect("read"), b"hello world");
    tokio::fs::write(&path, b"hello WORLD")
        .await
        .expect("corrupt it");
    assert!(matches!(
        store.verify(&blob).await,
        Err(StoreError::Corrupt { .. })
    ));
}

#[tokio::test]
async fn dropped_writer_leaves_no_temp_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = BlobStore::open(dir.path()).await.expect("open");
    let mut w = store.writer().await.expect("writer");
    w.write(&[7u8; 4096]).await.expect("write");
    drop(w);
    let mut entries = tokio::fs::read_dir(store.tmp_dir())
        .await
        .expect("read tmp");
    assert!(entries.next_entry().await.expect("entry").is_none());
}

#[tokio::test]
async fn names_that_are_not_digests_never_become_paths() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = BlobStore::open(dir.path()).await.expect("open");
    for bad in [
        "../../etc/passwd",
        "",
        "ab",
        &"g".repeat(64),
        &"A".repeat(64),
    ] {
        assert!(
            matches!(store.path(bad), Err(StoreError::BadName(_))),
            "{bad}"
        );
    }
}

#[tokio::test]
async fn leftovers_in_tmp_are_cleared_on_open() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = BlobStore::open(dir.path()).await.expect("open");
    tokio::fs::write(store.tmp_dir().join("upload-stale"), b"x")
        .await
        .expect("write");
    let store = BlobStore::open(dir.path()).await.expect("reopen");
    let mut entries = tokio::fs::read_dir(store.tmp_dir())
        .await
        .expect("read tmp");
    assert!(entries.next_entry().await.expect("entry").is_none());
}

#[tokio::test]
async fn a_full_disk_is_named_with_the_data_dir() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = BlobStore::open(dir.path()).await.expect("open");
    let full = store.classify(std::io::Error::from(std::io::ErrorKind::StorageFull));
    assert!(matches!(full, StoreError::Full { .. }), "{full:?}");
    let text = full.to_string();
    assert!(names_full_disk(&text), "{text}");
    assert!(text.contains(&*store.root().to_string_lossy()), "{text}");
    let other = store.classify(std::io::Error::from(std::io::ErrorKind::PermissionDenied));
    assert!(matches!(other, StoreError::Io(_)), "{other:?}");
    assert!(!names_full_disk(&other.to_string()));
}

#[test]
fn the_data_dir_is_never_shown() {
    assert_eq!(
        super::redact_root(
            "/srv/vs/blobs/ab/cd: Invalid data; no space left on the data dir /srv/vs",
            "/srv/vs"
        ),
        "<data-dir>/blobs/ab/cd: Invalid data; no space left on the data dir <data-dir>"
    );
    assert_eq!(
        super::redact_root("nothing here", "/srv/vs"),
        "nothing here"
    );
    assert_eq!(
        super::redact_root("a / b", "/"),
        "a / b",
        "the root dir is left alone"
    );
}
