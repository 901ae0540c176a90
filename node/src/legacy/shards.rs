//! Shards from a master that speaks only the original protocol: it sends
//! a whole shard in `ProcessShard` (audio included, container named by the
//! shard id's extension), we encode it in the background, report
//! `processed_successfully` / `failed_processing` with
//! `ReportWorkerShardStatus`, and hand the result back in `RequestShard`.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};

use crate::store::BlobRef;

/// Shards remembered at most; the oldest finished ones are forgotten first.
pub const MAX_REMEMBERED: usize = 1000;

#[derive(Debug, Clone, PartialEq)]
pub enum LegacyState {
    Encoding,
    Done(BlobRef),
    Failed(String),
}

#[derive(Debug, Default)]
struct Inner {
    shards: HashMap<String, LegacyState>,
    order: VecDeque<String>,
}

#[derive(Debug, Clone, Default)]
pub struct LegacyShards(Arc<Mutex<Inner>>);

/// Container for a shard id: (ffmpeg muxer, output format), from its
/// extension; unknown extensions get mp4 (pure).
pub fn container_of(shard_id: &str) -> (&'static str, crate::params::OutputFormat) {
    use crate::params::OutputFormat;
    let ext = shard_id
        .rsplit_once('.')
        .map(|(_, e)| e.to_ascii_lowercase())
        .unwrap_or_default();
    match ext.as_str() {
        "mkv" => ("matroska", OutputFormat::Mkv),
        "webm" => ("webm", OutputFormat::Webm),
        "mov" => ("mov", OutputFormat::Mov),
        "ts" => ("mpegts", OutputFormat::Mp4),
        _ => ("mp4", OutputFormat::Mp4),
    }
}

/// Why a shard from an original master is not taken.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ShardRefused {
    #[error("shard id must be 1..=255 bytes, got {0}")]
    IdLength(usize),
    #[error("shard id {0:?} contains a path separator, '..' or NUL")]
    IdPath(String),
    #[error("shard {0:?} is already being encoded")]
    AlreadyEncoding(String),
}

/// Why a shard id from the network cannot be used.
pub fn check_shard_id(shard_id: &str) -> Result<(), ShardRefused> {
    if shard_id.is_empty() || shard_id.len() > 255 {
        return Err(ShardRefused::IdLength(shard_id.len()));
    }
    if shard_id.contains('/')
        || shard_id.contains('\\')
        || shard_id.contains("..")
        || shard_id.contains('\0')
    {
        return Err(ShardRefused::IdPath(shard_id.to_string()));
    }
    Ok(())
}

impl LegacyShards {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Starts tracking a shard; false if it is already being encoded.
    /// Returns the blobs of forgotten shards for the caller to delete.
    pub fn begin(&self, shard_id: &str) -> Result<Vec<BlobRef>, ShardRefused> {
        let mut inner = self.lock();
        if inner.shards.get(shard_id) == Some(&LegacyState::Encoding) {
            return Err(ShardRefused::AlreadyEncoding(shard_id.to_string()));
        }
        if inner
            .shards
            .insert(shard_id.to_string(), LegacyState::Encoding)
            .is_none()
        {
            inner.order.push_back(shard_id.to_string());
        }
        let mut forgotten = Vec::new();
        while inner.order.len() > MAX_REMEMBERED {
            let Some(oldest) = inner.order.pop_front() else {
                break;
            };
            match inner.shards.get(&oldest) {
                Some(LegacyState::Encoding) => inner.order.push_back(oldest),
                _ => {
                    if let Some(LegacyState::Done(blob)) = inner.shards.remove(&oldest) {
                        forgotten.push(blob);
                    }
                }
            }
        }
        Ok(forgotten)
    }

    pub fn finish(&self, shard_id: &str, state: LegacyState) {
        self.lock().shards.insert(shard_id.to_string(), state);
    }

    pub fn state(&self, shard_id: &str) -> Option<LegacyState> {
        self.lock().shards.get(shard_id).cloned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn containers_follow_the_extension() {
        assert_eq!(container_of("v_shard_0.mkv").0, "matroska");
        assert_eq!(container_of("v_shard_0.WEBM").0, "webm");
        assert_eq!(container_of("noext").0, "mp4");
    }

    #[test]
    fn hostile_shard_ids_are_refused() {
        for bad in ["../../x.mp4", "/etc/passwd", "a\0b", "", &"x".repeat(300)] {
            assert!(check_shard_id(bad).is_err(), "{bad:?}");
        }
        assert!(check_shard_id("video_shard_3.mp4").is_ok());
    }

    #[test]
    fn a_shard_is_tracked_until_forgotten() {
        let shards = LegacyShards::default();
        assert_eq!(shards.begin("a.mp4"), Ok(vec![]));
        assert!(
            shards.begin("a.mp4").is_err(),
            "no second encode of the same shard"
        );
        let blob = BlobRef {
            sha256: "0".repeat(64),
            size: 1,
        };
        shards.finish("a.mp4", LegacyState::Done(blob.clone()));
        assert_eq!(shards.state("a.mp4"), Some(LegacyState::Done(blob.clone())));
        for i in 0..MAX_REMEMBERED {
            shards.begin(&format!("s{i}")).expect("begin");
            shards.finish(&format!("s{i}"), LegacyState::Failed("x".into()));
        }
        assert_eq!(
            shards.state("a.mp4"),
            None,
            "oldest finished shard forgotten"
        );
    }
}
