//! Saving a ladder job's whole package into a directory
//! (`vidshard retrieve ID --output DIR/`), from the listing
//! `Jobs.GetPackage` gave: every init and media segment fetched with
//! `Jobs.Retrieve` and its `path`, hashed while written to a temp file,
//! checked against the listed sha256 and size and renamed into place; the
//! manifests written last from their listed text, so a directory with a
//! `master.m3u8` in it holds everything that playlist names. The URIs in
//! the manifests are relative: the directory plays as it is.
//!
//! A file already there with the listed size and sha256 is kept, so a
//! rerun after an interruption fetches only what is missing or damaged.
//! Files are not fsynced one by one for the same reason: the next run
//! checks every one. Paths come from the node and are checked against
//! the names a package has before anything is written: a listing cannot
//! write outside the directory.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use vidshard_proto::MAX_CHUNK;
use vidshard_proto::v1::{PackageFile, PackageListing, RetrieveRequest};

use super::{Progress, temp_path};
use crate::client::{FAILOVER_GRACE, Reach, node_lost, rpc};

/// A package saved into a directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SavedPackage {
    pub dir: PathBuf,
    /// Files of the package (all of them are in `dir` now).
    pub files: usize,
    /// Their bytes.
    pub bytes: u64,
    /// Of `files`, those already there with the right sha256 (a rerun).
    pub already: usize,
}

/// What a listed path is (pure).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Listed {
    /// `master.m3u8`, `manifest.mpd`, `{rendition}/media.m3u8`: written
    /// from the listing's text.
    Manifest,
    /// `{rendition}/init.mp4`, `{rendition}/{n}.m4s`: fetched.
    Blob,
}

/// Whether `path` names a file a package has, and which kind (pure):
/// a rendition `[a-z0-9-]{1,32}`, a segment number a plain decimal.
pub fn listed_kind(path: &str) -> Option<Listed> {
    let parts: Vec<&str> = path.split('/').collect();
    match parts.as_slice() {
        ["master.m3u8" | "manifest.mpd"] => Some(Listed::Manifest),
        [rendition, name] if is_rendition(rendition) => match *name {
            "media.m3u8" => Some(Listed::Manifest),
            "init.mp4" => Some(Listed::Blob),
            name => {
                let n = name.strip_suffix(".m4s")?;
                let plain = !n.is_empty()
                    && n.len() <= 9
                    && n.bytes().all(|b| b.is_ascii_digit())
                    && (n == "0" || !n.starts_with('0'));
                plain.then_some(Listed::Blob)
            }
        },
        _ => None,
    }
}

fn is_rendition(name: &str) -> bool {
    (1..=32).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

/// Whether `--output` names a directory: it ends with `/` or is one.
pub fn is_directory_target(path: &Path) -> bool {
    path.as_os_str()
        .to_string_lossy()
        .ends_with(std::path::MAIN_SEPARATOR)
        || path.is_dir()
}

/// The file name a plain job's output gets in a directory (pure): the
/// job id with the output's extension (`job-5f1c.mp4`, and `clip.mp4`
/// stays `clip.mp4`). The id rather than the source's name: ids are
/// unique, so nothing saved before, the source included, is overwritten.
pub fn output_name(id: &str, extension: &str) -> Result<String> {
    if id.is_empty() || id.starts_with('.') || id.contains(['/', '\\', '\0']) {
        bail!("job id {id:?} cannot be a file name; give --output a file path");
    }
    let suffix = format!(".{extension}");
    if id.to_ascii_lowercase().ends_with(&suffix) {
        Ok(id.to_string())
    } else {
        Ok(format!("{id}{suffix}"))
    }
}

/// Writes every file of `listing` (job `id`'s package) under `dir`,
/// creating it and its rendition folders.
pub async fn save_package(
    reach: &mut Reach,
    id: &str,
    dir: &Path,
    listing: &PackageListing,
    bar: impl Progress,
) -> Result<SavedPackage> {
    let mut kinds = Vec::with_capacity(listing.files.len());
    for file in &listing.files {
        let Some(kind) = listed_kind(&file.path) else {
            bail!(
                "the node listed {:?}, which is not a file of a package; nothing was saved",
                file.path
            );
        };
        kinds.push(kind);
    }
    tokio::fs::create_dir_all(dir)
        .await
        .with_context(|| format!("cannot create {}", dir.display()))?;
    let mut saved = SavedPackage {
        dir: dir.to_path_buf(),
        files: listing.files.len(),
        bytes: listing.files.iter().map(|f| f.size).sum(),
        already: 0,
    };
    // Blobs first, manifests last (see the module comment).
    for wanted in [Listed::Blob, Listed::Manifest] {
        for (file, _) in listing
            .files
            .iter()
            .zip(&kinds)
            .filter(|(_, k)| **k == wanted)
        {
            let target = dir.join(&file.path);
            if let Some(parent) = target.parent() {
                tokio::fs::create_dir_all(parent)
                    .await
                    .with_context(|| format!("cannot create {}", parent.display()))?;
            }
            if already_there(&target, file).await {
                saved.already += 1;
                bar.inc(file.size);
                continue;
            }
            let written = match wanted {
                Listed::Blob => fetch(reach, id, file, &target, &bar).await,
                Listed::Manifest => write_manifest(file, &target).await,
            };
            if let Err(err) = written {
                bar.abandon();
                return Err(err);
            }
            if wanted == Listed::Manifest {
                bar.inc(file.size);
            }
        }
    }
    bar.finish();
    Ok(saved)
}

/// `target` exists with `file`'s size and sha256.
async fn already_there(target: &Path, file: &PackageFile) -> bool {
    match tokio::fs::metadata(target).await {
        Ok(meta) if meta.is_file() && meta.len() == file.size => {}
        _ => return false,
    }
    let Ok(mut reader) = tokio::fs::File::open(target).await else {
        return false;
    };
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; MAX_CHUNK];
    loop {
        match reader.read(&mut buf).await {
            Ok(0) => break,
            Ok(n) => hasher.update(&buf[..n]),
            Err(_) => return false,
        }
    }
    hex::encode(hasher.finalize()).eq_ignore_ascii_case(&file.sha256)
}

/// A temp file next to its target, removed unless it was renamed.
struct Temp {
    path: PathBuf,
    kept: bool,
}

impl Temp {
    fn beside(target: &Path) -> Result<Self> {
        Ok(Temp {
            path: temp_path(target, std::process::id())?,
            kept: false,
        })
    }

    async fn rename_to(mut self, target: &Path) -> Result<()> {
        tokio::fs::rename(&self.path, target)
            .await
            .with_context(|| {
                format!(
                    "cannot move {} to {}",
                    self.path.display(),
                    target.display()
                )
            })?;
        self.kept = true;
        Ok(())
    }
}

impl Drop for Temp {
    fn drop(&mut self) {
        if !self.kept {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// A manifest from its listed text, which must match its listed sha256.
async fn write_manifest(file: &PackageFile, target: &Path) -> Result<()> {
    let sha256 = hex::encode(Sha256::digest(file.text.as_bytes()));
    if !sha256.eq_ignore_ascii_case(&file.sha256) || file.text.len() as u64 != file.size {
        bail!(
            "{}: the text the node sent does not match its sha256 and size; nothing written",
            file.path
        );
    }
    let temp = Temp::beside(target)?;
    tokio::fs::write(&temp.path, file.text.as_bytes())
        .await
        .with_context(|| format!("cannot write {}", temp.path.display()))?;
    temp.rename_to(target).await
}

/// Streams one blob of the package into `target`, verified. A node lost
/// mid-file is replaced by the next that answers, which resumes at the
/// byte reached.
async fn fetch(
    reach: &mut Reach,
    id: &str,
    file: &PackageFile,
    target: &Path,
    bar: &impl Progress,
) -> Result<()> {
    let temp = Temp::beside(target)?;
    let mut out = tokio::fs::File::create(&temp.path)
        .await
        .with_context(|| format!("cannot create {}", temp.path.display()))?;
    let failed = |bytes: u64| {
        format!(
            "download of {} of job {id:?} failed after {bytes} bytes",
            file.path
        )
    };
    let mut hasher = Sha256::new();
    let mut bytes = 0u64;
    let mut deadline = Instant::now() + FAILOVER_GRACE;
    'download: loop {
        let request = RetrieveRequest {
            id: id.to_owned(),
            offset: bytes,
            path: file.path.clone(),
        };
        let mut stream = match reach.node().jobs().retrieve(request).await {
            Ok(reply) => reply.into_inner(),
            Err(status) if node_lost(&status) && Instant::now() < deadline => {
                reach.recover(deadline).await;
                continue;
            }
            Err(status) => return Err(rpc(status)).with_context(|| failed(bytes)),
        };
        loop {
            let chunk = match stream.message().await {
                Ok(Some(chunk)) => chunk.data,
                Ok(None) => break 'download,
                Err(status) if node_lost(&status) && Instant::now() < deadline => {
                    reach.recover(deadline).await;
                    continue 'download;
                }
                Err(status) => return Err(rpc(status)).with_context(|| failed(bytes)),
            };
            bytes += chunk.len() as u64;
            if bytes > file.size {
                bail!(
                    "{}: the node sent more than its {} bytes; discarded",
                    file.path,
                    file.size
                );
            }
            hasher.update(&chunk);
            out.write_all(&chunk)
                .await
                .with_context(|| format!("cannot write {}", temp.path.display()))?;
            bar.inc(chunk.len() as u64);
            deadline = Instant::now() + FAILOVER_GRACE;
        }
    }
    out.flush().await?;
    drop(out);
    let sha256 = hex::encode(hasher.finalize());
    if bytes != file.size || !sha256.eq_ignore_ascii_case(&file.sha256) {
        bail!(
            "{}: got {bytes} bytes with sha256 {sha256}, expected {} bytes with {}; discarded",
            file.path,
            file.size,
            file.sha256
        );
    }
    temp.rename_to(target).await
}

#[cfg(test)]
#[path = "package_tests.rs"]
mod tests;
