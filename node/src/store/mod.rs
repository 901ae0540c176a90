//! The blob store: every video byte a node keeps (uploaded sources, split
//! shards, encoded shards, outputs) is a file under `<data>/blobs`, named
//! by its sha256. Files are written to `<data>/tmp` first, fsynced, then
//! renamed into place, so a blob is either whole or absent. Names from the
//! network never reach a path here: only our own hex digests do.

mod pins;
mod scratch;
mod writer;

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

pub use pins::BlobPin;
pub use scratch::Scratch;
pub use writer::BlobWriter;

/// Largest chunk read or written at once anywhere a video streams.
pub const CHUNK: usize = vidshard_proto::MAX_CHUNK;

/// How every message about a full data dir begins, wherever it arises
/// (a blob write here, an ffmpeg run in `media`), so that a reason passed
/// along as text (a remote worker's error, a job's failure) can still be
/// recognised as "the disk is full" by [`names_full_disk`].
pub const DISK_FULL: &str = "no space left on the data dir";

/// Whether an I/O error means the filesystem (or the user's quota) is
/// full: ENOSPC or EDQUOT.
pub fn is_disk_full(error: &std::io::Error) -> bool {
    matches!(
        error.kind(),
        std::io::ErrorKind::StorageFull | std::io::ErrorKind::QuotaExceeded
    )
}

/// Whether a reason (possibly relayed from another node) says a data dir
/// is full.
pub fn names_full_disk(reason: &str) -> bool {
    reason.contains(DISK_FULL)
}

/// `text` with every occurrence of `root` (an absolute path) replaced by
/// `<data-dir>` (pure).
pub fn redact_root(text: &str, root: &str) -> String {
    if root.len() < 2 || !root.starts_with('/') {
        return text.to_string();
    }
    text.replace(root.trim_end_matches('/'), "<data-dir>")
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("not a blob name: {0:?}")]
    BadName(String),
    #[error("no blob {0}")]
    Missing(String),
    #[error("blob {name} is corrupt: its content hashes to {actual}")]
    Corrupt { name: String, actual: String },
    /// The data dir's filesystem is full. Named as such (not as a raw
    /// I/O error) because the operator's remedy is plain: free space.
    #[error("{DISK_FULL} {}", .dir.display())]
    Full { dir: PathBuf },
    #[error("storage i/o error: {0}")]
    Io(#[from] std::io::Error),
}

impl StoreError {
    pub fn is_disk_full(&self) -> bool {
        match self {
            Self::Full { .. } => true,
            Self::Io(e) => is_disk_full(e),
            _ => false,
        }
    }
}

/// A stored blob: its hex sha256 and size.
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct BlobRef {
    pub sha256: String,
    pub size: u64,
}

/// A blob as found on disk.
#[derive(Debug, Clone)]
pub struct StoredBlob {
    pub sha256: String,
    pub size: u64,
    pub modified: std::time::SystemTime,
}

#[derive(Debug, Clone)]
pub struct BlobStore {
    root: PathBuf,
    /// Blobs running operations need before the table refers to them.
    pins: pins::Pins,
}

fn is_digest(name: &str) -> bool {
    name.len() == 64
        && name
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

impl BlobStore {
    /// Opens (creating) the store under `data_dir` and clears leftovers of
    /// interrupted writes from `tmp/`.
    pub async fn open(data_dir: &Path) -> Result<Self, StoreError> {
        tokio::fs::create_dir_all(data_dir).await?;
        // Absolute, so paths handed to ffmpeg (e.g. in concat lists) resolve
        // the same from any directory.
        let root = tokio::fs::canonicalize(data_dir).await?;
        let tmp = root.join("tmp");
        if tokio::fs::try_exists(&tmp).await? {
            tokio::fs::remove_dir_all(&tmp).await?;
        }
        tokio::fs::create_dir_all(&tmp).await?;
        tokio::fs::create_dir_all(root.join("blobs")).await?;
        Ok(Self {
            root,
            pins: pins::Pins::default(),
        })
    }

    /// Removes everything in `tmp/` (at the end of a clean stop: nothing
    /// runs any more that could be writing there). Best effort.
    pub async fn clear_tmp(&self) {
        let tmp = self.tmp_dir();
        if let Ok(mut entries) = tokio::fs::read_dir(&tmp).await {
            while let Ok(Some(entry)) = entries.next_entry().await {
                let path = entry.path();
                let removed = match entry.file_type().await {
                    Ok(kind) if kind.is_dir() => tokio::fs::remove_dir_all(&path).await,
                    _ => tokio::fs::remove_file(&path).await,
                };
                if let Err(e) = removed {
                    tracing::warn!(path = %path.display(), error = %e, "could not remove a temp file");
                }
            }
        }
    }

    /// Keeps `sha256` from the garbage collector until the guard drops.
    pub fn pin(&self, sha256: &str) -> BlobPin {
        self.pins.pin(sha256)
    }

    pub fn is_pinned(&self, sha256: &str) -> bool {
        self.pins.is_pinned(sha256)
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// `text` with this store's absolute root shown as `<data-dir>`:
    /// what clients read (job messages, error statuses) never reveals
    /// where a node keeps its files.
    pub fn redact(&self, text: &str) -> String {
        redact_root(text, &self.root.to_string_lossy())
    }

    pub fn tmp_dir(&self) -> PathBuf {
        self.root.join("tmp")
    }

    /// Turns an error of a write under this store into [`StoreError::Full`]
    /// when the disk is full, naming the data dir.
    pub(crate) fn classify(&self, error: impl Into<StoreError>) -> StoreError {
        let error = error.into();
        if error.is_disk_full() {
            StoreError::Full {
                dir: self.root.clone(),
            }
        } else {
            error
        }
    }

    /// The path of blob `sha256`, after checking the name is a digest.
    pub fn path(&self, sha256: &str) -> Result<PathBuf, StoreError> {
        if !is_digest(sha256) {
            return Err(StoreError::BadName(sha256.to_string()));
        }
        Ok(self.root.join("blobs").join(&sha256[..2]).join(sha256))
    }

    pub async fn contains(&self, blob: &BlobRef) -> bool {
        match self.path(&blob.sha256) {
            Ok(p) => tokio::fs::metadata(p)
                .await
                .is_ok_and(|m| m.len() == blob.size),
            Err(_) => false,
        }
    }

    /// Starts writing a new blob.
    pub async fn writer(&self) -> Result<BlobWriter, StoreError> {
        BlobWriter::create(self.clone()).await
    }

    /// Moves a finished file (e.g. ffmpeg's output in a scratch dir on the
    /// same filesystem) into the store, hashing it in ≤1 MiB reads.
    pub async fn import(&self, file: &Path) -> Result<BlobRef, StoreError> {
        Ok(self.import_pinned(file).await?.0)
    }

    /// As [`Store::import`], with the blob pinned from before it enters
    /// the store until the returned pin is dropped.
    pub async fn import_pinned(&self, file: &Path) -> Result<(BlobRef, BlobPin), StoreError> {
        self.import_file(file).await.map_err(|e| self.classify(e))
    }

    async fn import_file(&self, file: &Path) -> Result<(BlobRef, BlobPin), StoreError> {
        let (sha256, size) = hash_file(file).await?;
        let handle = tokio::fs::File::open(file).await?;
        handle.sync_all().await?;
        drop(handle);
        let dest = self.path(&sha256)?;
        let pin = self.pin(&sha256);
        self.place(file, &dest).await?;
        Ok((BlobRef { sha256, size }, pin))
    }

    /// Renames `from` to `dest` (creating the fan-out dir) and syncs the dir.
    pub(crate) async fn place(&self, from: &Path, dest: &Path) -> Result<(), StoreError> {
        self.rename_synced(from, dest)
            .await
            .map_err(|e| self.classify(e))
    }

    async fn rename_synced(&self, from: &Path, dest: &Path) -> Result<(), StoreError> {
        let dir = dest.parent().unwrap_or(&self.root).to_path_buf();
        tokio::fs::create_dir_all(&dir).await?;
        tokio::fs::rename(from, dest).await?;
        tokio::task::spawn_blocking(move || std::fs::File::open(&dir).and_then(|d| d.sync_all()))
            .await
            .map_err(std::io::Error::other)??;
        Ok(())
    }

    /// Removes a blob; a missing blob is not an error.
    pub async fn remove(&self, sha256: &str) -> Result<(), StoreError> {
        match tokio::fs::remove_file(self.path(sha256)?).await {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e.into()),
            _ => Ok(()),
        }
    }

    /// Every blob stored here with its size and age (for garbage
    /// collection); walks the fan-out dirs on the blocking pool.
    pub async fn list(&self) -> Result<Vec<StoredBlob>, StoreError> {
        let blobs = self.root.join("blobs");
        tokio::task::spawn_blocking(move || -> std::io::Result<Vec<StoredBlob>> {
            let mut found = Vec::new();
            for dir in std::fs::read_dir(&blobs)? {
                let dir = dir?;
                if !dir.file_type()?.is_dir() {
                    continue;
                }
                for entry in std::fs::read_dir(dir.path())? {
                    let entry = entry?;
                    let name = entry.file_name().to_string_lossy().into_owned();
                    if !is_digest(&name) {
                        continue;
                    }
                    let meta = entry.metadata()?;
                    found.push(StoredBlob {
                        sha256: name,
                        size: meta.len(),
                        modified: meta.modified().unwrap_or(std::time::SystemTime::UNIX_EPOCH),
                    });
                }
            }
            Ok(found)
        })
        .await
        .map_err(std::io::Error::other)?
        .map_err(StoreError::from)
    }

    /// Re-hashes a blob and fails if its content no longer matches its name.
    pub async fn verify(&self, blob: &BlobRef) -> Result<(), StoreError> {
        let path = self.path(&blob.sha256)?;
        if !tokio::fs::try_exists(&path).await? {
            return Err(StoreError::Missing(blob.sha256.clone()));
        }
        let (actual, _) = hash_file(&path).await?;
        if actual != blob.sha256 {
            return Err(StoreError::Corrupt {
                name: blob.sha256.clone(),
                actual,
            });
        }
        Ok(())
    }
}

/// sha256 and size of a file, read in [`CHUNK`]-sized pieces on the
/// blocking pool (one hop for the whole file, not one per chunk).
pub async fn hash_file(path: &Path) -> Result<(String, u64), StoreError> {
    let path = path.to_path_buf();
    tokio::task::spawn_blocking(move || -> std::io::Result<(String, u64)> {
        use std::io::Read;
        let mut file = std::fs::File::open(&path)?;
        let mut hasher = Sha256::new();
        let mut buf = vec![0u8; CHUNK];
        let mut size = 0u64;
        loop {
            let n = file.read(&mut buf)?;
            if n == 0 {
                break;
            }
            hasher.update(&buf[..n]);
            size += n as u64;
        }
        Ok((hex::encode(hasher.finalize()), size))
    })
    .await
    .map_err(std::io::Error::other)?
    .map_err(StoreError::from)
}

#[cfg(test)]
mod tests;
