//! Streaming a new blob to disk: bytes go to a temp file while being
//! hashed; `finish` fsyncs and renames it into place. Dropping an
//! unfinished writer removes the temp file, so an aborted upload leaves
//! nothing behind.

use std::path::PathBuf;

use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;

use super::{BlobPin, BlobRef, BlobStore, StoreError};

pub struct BlobWriter {
    store: BlobStore,
    temp: Option<PathBuf>,
    file: tokio::fs::File,
    hasher: Sha256,
    size: u64,
}

impl BlobWriter {
    pub(super) async fn create(store: BlobStore) -> Result<Self, StoreError> {
        let temp = store
            .tmp_dir()
            .join(format!("upload-{}", uuid::Uuid::new_v4().simple()));
        let file = tokio::fs::File::create(&temp)
            .await
            .map_err(|e| store.classify(e))?;
        Ok(Self {
            store,
            temp: Some(temp),
            file,
            hasher: Sha256::new(),
            size: 0,
        })
    }

    /// Appends `bytes`. A full disk is [`StoreError::Full`]; it may show
    /// on a later write or on `finish` (writes are buffered).
    pub async fn write(&mut self, bytes: &[u8]) -> Result<(), StoreError> {
        self.file
            .write_all(bytes)
            .await
            .map_err(|e| self.store.classify(e))?;
        self.hasher.update(bytes);
        self.size += bytes.len() as u64;
        Ok(())
    }

    pub fn size(&self) -> u64 {
        self.size
    }

    /// Lowercase hex sha256 of the bytes written so far, so an upload can
    /// be checked against its announced hash before it enters the store
    /// (a refused upload then never replaces or removes a stored blob).
    pub fn sha256(&self) -> String {
        hex::encode(self.hasher.clone().finalize())
    }

    /// Fsyncs and renames into the store; returns the blob's name and size.
    pub async fn finish(self) -> Result<BlobRef, StoreError> {
        Ok(self.finish_pinned().await?.0)
    }

    /// As [`BlobWriter::finish`], with the blob pinned from before it
    /// enters the store until the returned pin is dropped.
    pub async fn finish_pinned(mut self) -> Result<(BlobRef, BlobPin), StoreError> {
        // Delayed allocation can report a full disk only here.
        self.file
            .flush()
            .await
            .map_err(|e| self.store.classify(e))?;
        self.file
            .sync_all()
            .await
            .map_err(|e| self.store.classify(e))?;
        let sha256 = hex::encode(std::mem::take(&mut self.hasher).finalize());
        let dest = self.store.path(&sha256)?;
        let temp = self
            .temp
            .take()
            .ok_or_else(|| StoreError::Missing("temp file".into()))?;
        let pin = self.store.pin(&sha256);
        if let Err(e) = self.store.place(&temp, &dest).await {
            let _ = tokio::fs::remove_file(&temp).await;
            return Err(e);
        }
        Ok((
            BlobRef {
                sha256,
                size: self.size,
            },
            pin,
        ))
    }
}

impl Drop for BlobWriter {
    fn drop(&mut self) {
        if let Some(temp) = self.temp.take() {
            // One unlink; cheap enough not to need the blocking pool.
            let _ = std::fs::remove_file(temp);
        }
    }
}
