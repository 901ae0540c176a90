//! A bundle: several rungs of one ladder piece encoded together from one
//! decode (`media::encode_rungs`), each output then checked, measured
//! and stored on its own exactly as a single shard's would be
//! (`measure::encode_judged`). One rung's bad output fails that rung
//! only; a failed encode fails them all.

use std::path::{Path, PathBuf};

use super::ShardError;
use super::measure::measure_logged;
use crate::cluster::Sys;
use crate::jobs::quality::ShardQuality;
use crate::media::{self, EncodeSpec, Progress, Tools};
use crate::store::{BlobPin, BlobRef, BlobStore};

/// One rung of a bundle: how to encode it and how many frames it must have.
pub struct Member {
    pub spec: EncodeSpec,
    pub expected_frames: u64,
}

/// A rung's stored result (pinned) and its measurement, when asked, or
/// why there is none (as a single shard's error reads).
pub type Judged = Result<(BlobRef, BlobPin, Option<ShardQuality>), String>;

/// Encodes every member from `input` in one ffmpeg, then checks,
/// measures (before storing, as `encode_judged` does) and stores each.
/// Answers one result per member, in order.
pub async fn encode_bundle_judged(
    sys: &Sys,
    input: &Path,
    members: &[Member],
    scratch: &Path,
    measure: bool,
    on_progress: impl FnMut(Progress),
) -> Vec<Judged> {
    let (tools, store, node_id) = (&sys.tools, &sys.store, sys.node_id.as_str());
    let muxer = media::EncodeTarget::SHARD.muxer;
    let outputs: Vec<PathBuf> = members
        .iter()
        .map(|_| scratch.join(format!("rung-{}.{muxer}", uuid::Uuid::new_v4().simple())))
        .collect();
    let specs: Vec<EncodeSpec> = members.iter().map(|m| m.spec.clone()).collect();
    if let Err(e) = media::encode_rungs(tools, &specs, input, &outputs, muxer, on_progress).await {
        let message = ShardError::from(e).to_string();
        for output in &outputs {
            let _ = tokio::fs::remove_file(output).await;
        }
        return members.iter().map(|_| Err(message.clone())).collect();
    }
    let mut results = Vec::with_capacity(members.len());
    for (member, output) in members.iter().zip(&outputs) {
        let result = judge(tools, store, input, member, output, node_id, measure)
            .await
            .map_err(|e| e.to_string());
        if result.is_err() {
            let _ = tokio::fs::remove_file(output).await;
        }
        results.push(result);
    }
    results
}

/// Checks one encoded rung against what was asked, measures it when
/// asked, then stores it.
async fn judge(
    tools: &Tools,
    store: &BlobStore,
    input: &Path,
    member: &Member,
    output: &Path,
    node_id: &str,
    measure: bool,
) -> Result<(BlobRef, BlobPin, Option<ShardQuality>), ShardError> {
    let found = media::inspect(tools, output).await?;
    super::check_encoded(&found, member.expected_frames, &member.spec)?;
    let quality = match measure {
        true => measure_logged(
            tools,
            input,
            output,
            member.expected_frames,
            &member.spec,
            node_id,
        )
        .await
        .map(|q| ShardQuality {
            crf: member.spec.crf,
            ..q
        }),
        false => None,
    };
    let (blob, pin) = store.import_pinned(output).await?;
    Ok((blob, pin, quality))
}
