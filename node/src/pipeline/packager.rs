//! Stage 3 of a ladder job, in place of the join: started at the plan,
//! it publishes each rung's segments as soon as every earlier piece of
//! that rung is encoded, so the package is watchable while the job runs.
//! Each encoded piece is remuxed into fragmented MP4 (`media::fragment`),
//! cut at its keyframes into CMAF segments (`media::cmaf`) whose decode
//! times continue the rung's timeline exactly, stored as blobs and
//! recorded (`Command::Published`); the audio is packaged once, beside.
//! At the end the top rung and the audio become one ordinary MP4: the
//! job's output, for clients that download one file.

use std::path::{Path, PathBuf};

use tokio_util::sync::CancellationToken;

use super::join::Joiner;
use super::joiner::wait_encoded;
use super::split::Prepared;
use crate::cluster::Sys;
use crate::jobs::package::{Package, Segment};
use crate::jobs::{Command, JobStatus, JobStop, PublishedInit, now_unix_ms};
use crate::media::cmaf::{self, Rewrite};
use crate::media::fragment::{self, Fragmenting};
use crate::media::{self, TracksPlan};
use crate::store::{BlobPin, BlobRef, CHUNK};

/// Segments per `Published` command, so one Raft entry stays small.
const SEGMENTS_PER_RECORD: usize = 64;

fn failed(message: String) -> JobStop {
    JobStop::failed(JobStatus::ConcatenationFailed, message)
}

/// Starts packaging in the background; like the join it ends with the
/// output's path (the top rung with the audio, one MP4). `encoded` is
/// cancelled once every task is encoded.
pub fn start(
    sys: &Sys,
    id: &str,
    prepared: &Prepared,
    scratch: &Path,
    encoded: CancellationToken,
) -> Joiner {
    let (sys, id, scratch) = (sys.clone(), id.to_string(), scratch.to_path_buf());
    let (source, tracks) = (prepared.source_path.clone(), prepared.tracks.clone());
    let rungs = prepared.rung_specs.len();
    tokio::spawn(async move {
        let audio = async {
            if tracks.audio.is_empty() {
                return Ok(None);
            }
            let path = scratch.join("audio.m4a");
            media::prepare_audio(
                &sys.tools,
                &source,
                &tracks,
                crate::params::OutputFormat::Mp4,
                &path,
            )
            .await
            .map_err(|e| failed(format!("preparing the audio failed: {e}")))?;
            package_audio(&sys, &id, &path, &tracks, rungs, &scratch).await?;
            Ok::<_, JobStop>(Some(path))
        };
        let video = futures::future::try_join_all(
            (0..rungs).map(|rung| package_rung(&sys, &id, rung, rungs, &scratch, &encoded)),
        );
        let (audio, _) = tokio::try_join!(audio, video)?;
        single_file(&sys, &id, audio.as_deref(), &scratch).await
    })
}

fn package_of(sys: &Sys, id: &str) -> Result<Package, JobStop> {
    sys.jobs
        .lock()
        .get(id)
        .and_then(|job| job.package.clone())
        .ok_or_else(|| failed("the job has no package".into()))
}

/// Packages rung `rung` piece by piece, from the first piece not yet
/// published (a resumed job goes on where it was).
async fn package_rung(
    sys: &Sys,
    id: &str,
    rung: usize,
    rungs: usize,
    scratch: &Path,
    encoded: &CancellationToken,
) -> Result<(), JobStop> {
    let pieces = {
        let jobs = sys.jobs.lock();
        let job = jobs.get(id).ok_or_else(|| failed("job vanished".into()))?;
        job.shards.len() / rungs.max(1)
    };
    loop {
        let rendition = package_of(sys, id)?
            .renditions
            .get(rung)
            .cloned()
            .ok_or_else(|| failed(format!("rung {rung} is not in the package")))?;
        let piece = rendition.shards_packaged as usize;
        if piece >= pieces {
            return Ok(());
        }
        let task = piece * rungs + rung;
        let input = wait_encoded(sys, id, task, encoded).await?;
        let frames = sys
            .jobs
            .lock()
            .get(id)
            .and_then(|j| j.shards.get(task).map(|s| s.frames))
            .unwrap_or(0);
        let name = format!("{}-{piece:05}", rendition.id);
        let fragmented = scratch.join(format!("{name}.mp4"));
        fragment::fragment(
            &sys.tools,
            &input,
            "0:v:0",
            Fragmenting::AtKeyframes,
            &fragmented,
        )
        .await
        .map_err(|e| failed(format!("remuxing {name}: {e}")))?;
        let result = publish_file(
            sys,
            id,
            &rendition.id,
            &fragmented,
            Some(frames),
            piece as u32 + 1,
            scratch,
        )
        .await;
        let _ = tokio::fs::remove_file(&fragmented).await;
        result?;
    }
}

/// Packages every audio track (each its own rendition, after the rungs)
/// unless a resumed job already did.
async fn package_audio(
    sys: &Sys,
    id: &str,
    audio: &Path,
    tracks: &TracksPlan,
    rungs: usize,
    scratch: &Path,
) -> Result<(), JobStop> {
    let package = package_of(sys, id)?;
    for n in 0..tracks.audio.len() {
        let Some(rendition) = package.renditions.get(rungs + n) else {
            return Err(failed(format!("audio track {n} is not in the package")));
        };
        if rendition.shards_packaged > 0 {
            continue;
        }
        let fragmented = scratch.join(format!("{}.mp4", rendition.id));
        let how = Fragmenting::Every(package.segment_seconds);
        fragment::fragment(&sys.tools, audio, &format!("0:a:{n}"), how, &fragmented)
            .await
            .map_err(|e| failed(format!("remuxing audio track {n}: {e}")))?;
        let result = publish_file(sys, id, &rendition.id, &fragmented, None, 1, scratch).await;
        let _ = tokio::fs::remove_file(&fragmented).await;
        result?;
    }
    Ok(())
}

/// Cuts a fragmented file into segments continuing `rendition`'s
/// timeline, stores them and records them. A video piece must start
/// each fragment with a keyframe and hold exactly `frames` frames.
async fn publish_file(
    sys: &Sys,
    id: &str,
    rendition: &str,
    fragmented: &Path,
    frames: Option<u64>,
    shards_packaged: u32,
    scratch: &Path,
) -> Result<(), JobStop> {
    let found = cmaf::scan(fragmented)
        .await
        .map_err(|e| failed(format!("reading the fragments of {rendition}: {e}")))?;
    let samples: u64 = found.fragments.iter().map(|f| u64::from(f.samples)).sum();
    if let Some(frames) = frames {
        if found.fragments.iter().any(|f| !f.starts_with_sync) {
            return Err(failed(format!(
                "{rendition}: a segment does not start with a keyframe"
            )));
        }
        if samples != frames {
            return Err(failed(format!(
                "{rendition}: {samples} frames in the segments, {frames} encoded"
            )));
        }
    }
    let current = package_of(sys, id)?
        .rendition(rendition)
        .cloned()
        .ok_or_else(|| failed(format!("{rendition} is not in the package")))?;
    if current.timescale != 0 && current.timescale != found.track.timescale {
        return Err(failed(format!(
            "{rendition}: timescale {} after {}: the pieces do not fit one timeline",
            found.track.timescale, current.timescale
        )));
    }
    if current.init.is_some() && current.codecs != found.track.codecs {
        return Err(failed(format!(
            "{rendition}: codec {} after {}: the pieces do not fit one init segment",
            found.track.codecs, current.codecs
        )));
    }
    let mut pins: Vec<BlobPin> = Vec::new();
    let mut init = None;
    if current.init.is_none() {
        let (blob, pin) = store_bytes(sys, &found.init).await?;
        pins.push(pin);
        init = Some(PublishedInit {
            blob,
            codecs: found.track.codecs.clone(),
            timescale: found.track.timescale,
        });
    }
    // The first picture is shown at the segment's decode time: B-frame
    // reordering delays it by the first sample's composition offset.
    let shift = found
        .fragments
        .first()
        .map_or(0, |f| f.first_composition_offset);
    let (mut start, mut sequence) = (current.end(), current.segments.len() as u32 + 1);
    let mut segments = Vec::with_capacity(found.fragments.len());
    for fragment in &found.fragments {
        let out = scratch.join(format!("{rendition}-segment.m4s"));
        let rewrite = Rewrite {
            sequence,
            decode_time: start,
            composition_shift: shift,
        };
        cmaf::write_segment(fragmented, fragment, rewrite, &out)
            .await
            .map_err(|e| failed(format!("writing a segment of {rendition}: {e}")))?;
        let (blob, pin) = sys
            .store
            .import_pinned(&out)
            .await
            .map_err(|e| failed(format!("storing a segment of {rendition}: {e}")))?;
        pins.push(pin);
        segments.push(Segment {
            blob,
            start,
            duration: fragment.duration,
        });
        start += fragment.duration;
        sequence += 1;
    }
    let holders = replicate(
        sys,
        init.iter()
            .map(|i| &i.blob)
            .chain(segments.iter().map(|s| &s.blob)),
        rendition,
    )
    .await;
    let mut batches: Vec<&[Segment]> = segments.chunks(SEGMENTS_PER_RECORD).collect();
    if batches.is_empty() {
        // A file without fragments still records its init and progress.
        batches.push(&[]);
    }
    let last = batches.len() - 1;
    for (n, batch) in batches.into_iter().enumerate() {
        let command = Command::Published {
            job: id.to_string(),
            rendition: rendition.to_string(),
            init: if n == 0 { init.clone() } else { None },
            segments: batch.to_vec(),
            shards_packaged: if n == last {
                shards_packaged
            } else {
                current.shards_packaged
            },
            holders: holders.clone(),
            at_ms: now_unix_ms(),
        };
        sys.consensus.record(command).await?;
    }
    let recorded = package_of(sys, id)?.rendition(rendition).map(|r| r.end());
    if recorded != Some(start) {
        return Err(JobStop::paused(format!(
            "the segments of {rendition} were not recorded (another master took over?)"
        )));
    }
    drop(pins);
    Ok(())
}

/// Pushes every blob to `--backup-replicas` other live nodes (the same
/// ones for the whole batch, best scored first) and answers every node
/// that now holds some of them, this one first. A copy that fails is
/// logged, not fatal: the segment is still served from here, and a
/// viewer must not wait for a slow backup.
async fn replicate<'a>(
    sys: &Sys,
    blobs: impl Iterator<Item = &'a BlobRef>,
    rendition: &str,
) -> Vec<String> {
    let mut holders = vec![sys.node_id.clone()];
    let candidates = crate::cluster::blobs::backup_candidates(sys);
    let copies = crate::backups::plan::wanted(sys.config.backup_replicas, candidates.len());
    let purpose = format!("a segment of {rendition}");
    for blob in blobs {
        for (node, address) in candidates.iter().take(copies) {
            match crate::cluster::blobs::push(sys, address, blob, &purpose).await {
                Ok(()) if !holders.contains(node) => holders.push(node.clone()),
                Ok(()) => {}
                Err(e) => tracing::warn!(%node, error = %e, "could not copy a segment"),
            }
        }
    }
    holders
}

/// Stores `bytes` (an init segment, a few KiB) as a blob.
async fn store_bytes(sys: &Sys, bytes: &[u8]) -> Result<(BlobRef, BlobPin), JobStop> {
    let mut writer = sys
        .store
        .writer()
        .await
        .map_err(|e| failed(format!("storing an init segment: {e}")))?;
    for chunk in bytes.chunks(CHUNK) {
        writer
            .write(chunk)
            .await
            .map_err(|e| failed(format!("storing an init segment: {e}")))?;
    }
    writer
        .finish_pinned()
        .await
        .map_err(|e| failed(format!("storing an init segment: {e}")))
}

/// The top rung's init and segments, then the audio, as one ordinary
/// MP4 (stream copy): what `RetrieveVideo` and `vidshard retrieve` give.
async fn single_file(
    sys: &Sys,
    id: &str,
    audio: Option<&Path>,
    scratch: &Path,
) -> Result<PathBuf, JobStop> {
    let package = package_of(sys, id)?;
    let top = package
        .video()
        .next()
        .ok_or_else(|| failed("the package has no rung".into()))?;
    let init = top
        .init
        .as_ref()
        .ok_or_else(|| failed(format!("{} has no init segment", top.id)))?;
    let joined = scratch.join("top-rung.mp4");
    let mut out = tokio::fs::File::create(&joined)
        .await
        .map_err(|e| failed(format!("writing the top rung: {e}")))?;
    for blob in std::iter::once(init).chain(top.segments.iter().map(|s| &s.blob)) {
        // A new master may hold only what was copied to it.
        crate::cluster::blobs::ensure_local(sys, blob, &package.holders)
            .await
            .map_err(|e| failed(format!("a segment of {} is gone: {e}", top.id)))?;
        let path = sys
            .store
            .path(&blob.sha256)
            .map_err(|e| failed(e.to_string()))?;
        let mut file = tokio::fs::File::open(&path)
            .await
            .map_err(|e| failed(format!("reading a segment of {}: {e}", top.id)))?;
        tokio::io::copy(&mut file, &mut out)
            .await
            .map_err(|e| failed(format!("writing the top rung: {e}")))?;
    }
    drop(out);
    let output = scratch.join("output.mp4");
    fragment::unfragment(&sys.tools, &joined, audio, &output)
        .await
        .map_err(|e| failed(format!("making the single file: {e}")))?;
    let _ = tokio::fs::remove_file(&joined).await;
    Ok(output)
}
