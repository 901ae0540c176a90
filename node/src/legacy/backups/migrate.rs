//! Import of the JSON index earlier versions kept, so a node upgraded in
//! place keeps the backups it held. At open, an old index found under the
//! data dir is checked as those versions checked it, imported into the
//! redb index in one transaction, and renamed to `<name>.migrated`. One
//! that is too big, not their JSON, or names something we would refuse is
//! an error and stays where it is, never silently dropped: it may hold
//! the only record of someone's backups.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::index::{BackupEntry, BackupIndex};
use super::limits::human;
use super::limits::{BackupError, MIB};
use super::names::{resolve_container, validate_video_id};
use crate::store::BlobStore;

/// The JSON index of earlier versions, directly under the data dir.
pub const JSON_INDEX: &str = "legacy-backups.json";

/// Largest JSON index we parse; a bigger one is not theirs.
const MAX_JSON_INDEX: u64 = 64 * MIB;

const JSON_VERSION: u32 = 1;

/// The JSON index as earlier versions wrote it.
#[derive(serde::Deserialize)]
struct JsonIndex {
    version: u32,
    backups: BTreeMap<String, BackupEntry>,
}

/// Where an imported JSON index is moved to.
pub fn migrated_path(json: &Path) -> PathBuf {
    json.with_extension("json.migrated")
}

/// Reads and checks the old JSON index under `root`, if there is one.
pub async fn read_json(
    root: &Path,
    store: &BlobStore,
) -> Result<Option<BTreeMap<String, BackupEntry>>, BackupError> {
    let path = root.join(JSON_INDEX);
    let unusable = |reason: String| BackupError::Index {
        path: path.clone(),
        reason: format!("{reason}; fix or move it aside, and the node imports the rest"),
    };
    let meta = match tokio::fs::metadata(&path).await {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    if meta.len() > MAX_JSON_INDEX {
        return Err(unusable(format!(
            "{} bytes, more than the {} an index may be",
            meta.len(),
            human(MAX_JSON_INDEX)
        )));
    }
    let bytes = tokio::fs::read(&path).await?;
    let index: JsonIndex = serde_json::from_slice(&bytes).map_err(|e| unusable(e.to_string()))?;
    if index.version != JSON_VERSION {
        return Err(unusable(format!("unknown version {}", index.version)));
    }
    let mut backups = index.backups;
    for (id, entry) in backups.iter_mut() {
        validate_video_id(id).map_err(|e| unusable(e.to_string()))?;
        let container =
            resolve_container(&entry.container, id).map_err(|e| unusable(e.to_string()))?;
        entry.container = container.to_string();
        store
            .path(&entry.sha256)
            .map_err(|e| unusable(e.to_string()))?;
    }
    Ok(Some(backups))
}

/// Imports `backups` (read by [`read_json`]) into `index` in one
/// transaction, then renames the JSON index so it is imported only once.
/// A crash between the two imports it again at the next open, which adds
/// nothing: ids already held keep their entry.
pub async fn import(
    root: &Path,
    index: &BackupIndex,
    backups: BTreeMap<String, BackupEntry>,
) -> Result<usize, BackupError> {
    let held = backups.len();
    let added = index.import(backups).await?;
    let json = root.join(JSON_INDEX);
    let migrated = migrated_path(&json);
    tokio::fs::rename(&json, &migrated).await?;
    let dir = root.to_path_buf();
    tokio::task::spawn_blocking(move || std::fs::File::open(&dir).and_then(|d| d.sync_all()))
        .await
        .map_err(std::io::Error::other)??;
    tracing::info!(index = %index.path().display(), from = %migrated.display(), held, added, "imported the legacy backups' JSON index");
    Ok(added)
}

#[cfg(test)]
mod tests {
    use super::super::limits::small;
    use super::super::{BLOB_DIR, INDEX_FILE, LegacyBackups};
    use super::*;

    /// Stores `data` in the backups' blob store, as an earlier version did.
    async fn blob(root: &Path, data: &[u8]) -> String {
        let store = BlobStore::open(&root.join(BLOB_DIR)).await.expect("store");
        let mut writer = store.writer().await.expect("writer");
        writer.write(data).await.expect("write");
        writer.finish().await.expect("finish").sha256
    }

    #[tokio::test]
    async fn an_index_of_an_earlier_version_is_imported_once() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (old, new) = (
            blob(dir.path(), b"old one").await,
            blob(dir.path(), b"new").await,
        );
        let json = format!(
            r#"{{"version":1,"backups":{{
                "b.mkv":{{"sha256":"{new}","size":3,"container":"mkv","stored_unix_ms":20}},
                "a":{{"sha256":"{old}","size":7,"container":"mp4","stored_unix_ms":10}}}}}}"#
        );
        let path = dir.path().join(JSON_INDEX);
        tokio::fs::write(&path, &json).await.expect("write");

        let backups = LegacyBackups::open(dir.path(), small(10_000, 10_000))
            .await
            .expect("open");
        let entries = backups.entries().await.expect("entries");
        assert_eq!(entries.keys().collect::<Vec<_>>(), ["a", "b.mkv"]);
        assert_eq!(entries["a"].sha256, old);
        assert_eq!(entries["b.mkv"].stored_unix_ms, 20);
        let (held, _) = backups.index.holding("").await.expect("holding");
        assert_eq!((held.entries, held.total_bytes), (2, 10));
        assert!(!path.exists());
        let migrated = migrated_path(&path);
        assert_eq!(
            tokio::fs::read_to_string(&migrated).await.expect("kept"),
            json
        );
        let reply = backups.collect_for_reply().await.expect("reply");
        assert_eq!(reply.message, "returned all 2 backups (10 bytes)");
        assert_eq!(reply.files[0].data, b"old one");
        // A new backup counts on top of the imported ones.
        backups.replicate("c", "", b"12345").await.expect("c");
        drop(backups);

        // Interrupted before the rename: imported again, nothing added.
        tokio::fs::rename(&migrated, &path).await.expect("put back");
        let backups = LegacyBackups::open(dir.path(), small(10_000, 10_000))
            .await
            .expect("reopen");
        assert_eq!(backups.entries().await.expect("entries").len(), 3);
        let (held, _) = backups.index.holding("").await.expect("holding");
        assert_eq!(held.total_bytes, 15);
        assert!(!path.exists() && migrated.exists());
    }

    #[tokio::test]
    async fn a_broken_index_is_reported_and_kept() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join(JSON_INDEX);
        for broken in [
            &b"not json"[..],
            br#"{"version":1,"backups":{"../x":{"sha256":"aa","size":1,"container":"mp4","stored_unix_ms":1}}}"#,
            br#"{"version":1,"backups":{"x":{"sha256":"aa","size":1,"container":"mp4","stored_unix_ms":1}}}"#,
            br#"{"version":9,"backups":{}}"#,
        ] {
            tokio::fs::write(&path, broken).await.expect("write");
            let err = LegacyBackups::open(dir.path(), small(10_000, 10_000))
                .await
                .expect_err("refused");
            assert!(matches!(err, BackupError::Index { .. }), "{err}");
            assert!(err.to_string().contains(JSON_INDEX), "{err}");
            assert_eq!(tokio::fs::read(&path).await.expect("kept"), broken);
            assert!(!migrated_path(&path).exists());
            assert!(!dir.path().join(INDEX_FILE).exists());
        }
    }
}
