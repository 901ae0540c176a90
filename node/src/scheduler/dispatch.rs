//! Running one copy of a shard: on this node (the master is a worker
//! too) or on a remote vidshard worker, streaming the shard there and the
//! encoded result back in ≤1 MiB chunks with sha256 checks both ways. The
//! result is verified here (frames, size, codec) before it is accepted.

use futures::{StreamExt, stream};
use tokio::io::AsyncReadExt;
use vidshard_proto::v1::worker_client::WorkerClient;
use vidshard_proto::v1::{FetchBlobRequest, RunShardRequest, ShardTask, run_shard_request::Msg};

use crate::cluster::Sys;
use crate::jobs::quality::ShardQuality;
use crate::media::{self, Progress};
use crate::params::QualityTarget;
use crate::store::CHUNK;
use crate::worker::copy::{CopyError, CopyOutcome, CopyRequest, rpc_error, settings};
use crate::worker::{ShardTask as LocalTask, Worker, bundle, measure};

/// Encodes on this node within its slots.
pub async fn run_local(
    worker: &Worker,
    req: &CopyRequest,
    on_progress: impl FnMut(Progress),
) -> Result<CopyOutcome, CopyError> {
    let _permit = worker.encode_slot().await.map_err(|e| e.to_string())?;
    let started = std::time::Instant::now();
    let input = crate::worker::copy::local_source(&worker.sys.store, req).await?;
    let scratch = crate::store::Scratch::create(&worker.sys.store.tmp_dir(), &req.task_id)
        .await
        .map_err(|e| e.to_string())?;
    let task = LocalTask {
        input: &input,
        expected_frames: req.expected_frames,
        spec: &req.spec,
        target: crate::media::EncodeTarget::SHARD,
    };
    let sys = &worker.sys;
    let result = measure::encode_judged(
        &sys.tools,
        &sys.store,
        &task,
        scratch.path(),
        &sys.node_id,
        req.measure_quality,
        on_progress,
    )
    .await;
    scratch.remove().await;
    let (blob, pin, quality) = result.map_err(|e| e.to_string())?;
    Ok(CopyOutcome {
        blob,
        pin: Some(std::sync::Arc::new(pin)),
        encode_seconds: started.elapsed().as_secs_f64(),
        transfer_seconds: 0.0,
        quality,
    })
}

/// The shard's bytes as a request stream: the task header, then chunks.
fn upload_stream(
    task: ShardTask,
    file: tokio::fs::File,
) -> impl futures::Stream<Item = RunShardRequest> + Send {
    let header = stream::once(async move {
        RunShardRequest {
            msg: Some(Msg::Task(task)),
        }
    });
    let chunks = stream::unfold(Some(file), |file| async move {
        let mut file = file?;
        let mut buf = vec![0u8; CHUNK];
        match file.read(&mut buf).await {
            Ok(0) | Err(_) => None,
            Ok(n) => {
                buf.truncate(n);
                Some((
                    RunShardRequest {
                        msg: Some(Msg::Chunk(buf)),
                    },
                    Some(file),
                ))
            }
        }
    });
    header.chain(chunks)
}

/// Encodes on the vidshard worker at `address` and brings the result home.
pub async fn run_remote(
    sys: &Sys,
    address: &str,
    req: &CopyRequest,
) -> Result<CopyOutcome, CopyError> {
    let started = std::time::Instant::now();
    let channel = sys
        .peers
        .channel(address)
        .map_err(|e| format!("bad worker address {address}: {e}"))?;
    let mut client = WorkerClient::new(channel).max_decoding_message_size(4 << 20);
    let input = crate::worker::copy::local_source(&sys.store, req).await?;
    let file = tokio::fs::File::open(&input)
        .await
        .map_err(|e| format!("reading shard {}: {e}", req.shard_index))?;
    let task = ShardTask {
        job_id: req.job_id.clone(),
        shard_index: req.shard_index,
        task_id: req.task_id.clone(),
        settings: Some(settings(&req.spec)),
        expected_frames: req.expected_frames,
        sha256: req.source.sha256.clone(),
        size: req.source.size,
        term: sys.term(),
        measure_quality: req.measure_quality,
        target_ssim: QualityTarget::to_wire(req.spec.quality_target).0,
        target_psnr: QualityTarget::to_wire(req.spec.quality_target).1,
    };
    let reply = client
        .run_shard(upload_stream(task, file))
        .await
        .map_err(|e| rpc_error(address, "worker", e))?
        .into_inner();
    if !reply.success {
        let mut error = CopyError::from(format!("worker {address}: {}", reply.message));
        error.worker_full = crate::store::names_full_disk(&reply.message);
        return Err(error);
    }
    // The worker keeps its copy (a new master fetches it from there if
    // this one dies before the job ends), unless another copy of the
    // shard already won: then nothing will ever ask for this one.
    let lost_the_race = sys.jobs.lock().get(&req.job_id).is_some_and(|job| {
        job.shards
            .get(req.shard_index as usize)
            .is_some_and(|s| s.encoded.is_some())
    });
    let mut blobs = client
        .fetch_blob(FetchBlobRequest {
            sha256: reply.sha256.clone(),
            release: lost_the_race,
        })
        .await
        .map_err(|e| rpc_error(address, "fetching from", e))?
        .into_inner();
    let mut writer = sys.store.writer().await.map_err(CopyError::storing_here)?;
    while let Some(chunk) = blobs
        .message()
        .await
        .map_err(|e| rpc_error(address, "fetching from", e))?
    {
        if chunk.data.len() > CHUNK {
            return Err(format!("worker {address} sent a {} byte chunk", chunk.data.len()).into());
        }
        writer
            .write(&chunk.data)
            .await
            .map_err(CopyError::storing_here)?;
    }
    let (blob, pin) = writer
        .finish_pinned()
        .await
        .map_err(CopyError::storing_here)?;
    if blob.sha256 != reply.sha256 || blob.size != reply.size {
        drop(pin);
        crate::backups::discard::discard(sys, &blob.sha256, None).await;
        return Err(format!(
            "result from {address} damaged in transit (sha256 {} != {})",
            blob.sha256, reply.sha256
        )
        .into());
    }
    let path = sys.store.path(&blob.sha256).map_err(|e| e.to_string())?;
    let found = media::inspect(&sys.tools, &path)
        .await
        .map_err(|e| format!("result from {address} unreadable: {e}"))?;
    crate::worker::check_encoded(&found, req.expected_frames, &req.spec)
        .map_err(|e| format!("result from {address}: {e}"))?;
    // Not compared with the source here: a vidshard worker holds the join
    // token (it could forge Raft entries as well as frames), and the
    // comparison costs 30-55 % of the encode's CPU on the master. Original
    // workers, which prove nothing, are compared (`legacy::original_worker`).
    let encode_seconds = reply.encode_seconds.max(0.0);
    let transfer_seconds = (started.elapsed().as_secs_f64() - encode_seconds).max(0.0);
    Ok(CopyOutcome {
        blob,
        pin: Some(std::sync::Arc::new(pin)),
        encode_seconds,
        transfer_seconds,
        quality: reported_quality(address, reply.quality, req.expected_frames),
    })
}

/// A worker's measurement, when it makes sense for a shard of `frames`
/// frames (a report, so nonsense is dropped with a warning, not held
/// against the result).
fn reported_quality(
    address: &str,
    quality: Option<vidshard_proto::v1::ShardQuality>,
    frames: u64,
) -> Option<ShardQuality> {
    let quality = ShardQuality::from(quality?);
    if quality.is_plausible(frames) {
        Some(quality)
    } else {
        tracing::warn!(%address, "a worker's quality figures make no sense; the shard stays unmeasured");
        None
    }
}

/// Encodes several rungs of one piece on this node in one slot and one
/// decode (`worker::bundle`); `on_progress` hears the shared decode's
/// progress. One result per request, in order; all requests name the
/// same source.
pub async fn run_local_bundle(
    worker: &Worker,
    reqs: &[CopyRequest],
    on_progress: impl FnMut(Progress),
) -> Vec<Result<CopyOutcome, CopyError>> {
    let failed_all = |e: CopyError| reqs.iter().map(|_| Err(e.clone())).collect();
    let Some(first) = reqs.first() else {
        return Vec::new();
    };
    if reqs.iter().any(|r| r.source.sha256 != first.source.sha256) {
        return failed_all(CopyError::from(
            "a bundle of rungs from different pieces".to_string(),
        ));
    }
    let _permit = match worker.encode_slot().await {
        Ok(permit) => permit,
        Err(e) => return failed_all(CopyError::from(e.to_string())),
    };
    let started = std::time::Instant::now();
    let input = match crate::worker::copy::local_source(&worker.sys.store, first).await {
        Ok(input) => input,
        Err(e) => return failed_all(e),
    };
    let scratch =
        match crate::store::Scratch::create(&worker.sys.store.tmp_dir(), &first.task_id).await {
            Ok(scratch) => scratch,
            Err(e) => return failed_all(CopyError::from(e.to_string())),
        };
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get() as u32);
    let members: Vec<bundle::Member> = reqs
        .iter()
        .map(|r| bundle::Member {
            spec: crate::media::EncodeSpec {
                threads: bundle_threads(r.spec.threads, cores),
                ..r.spec.clone()
            },
            expected_frames: r.expected_frames,
        })
        .collect();
    let sys = &worker.sys;
    let measure = reqs.iter().any(|r| r.measure_quality);
    let results =
        bundle::encode_bundle_judged(sys, &input, &members, scratch.path(), measure, on_progress)
            .await;
    scratch.remove().await;
    let encode_seconds = started.elapsed().as_secs_f64();
    results
        .into_iter()
        .map(|result| {
            let (blob, pin, quality) = result.map_err(CopyError::from)?;
            Ok(CopyOutcome {
                blob,
                pin: Some(std::sync::Arc::new(pin)),
                encode_seconds,
                transfer_seconds: 0.0,
                quality,
            })
        })
        .collect()
}

/// Encoder threads for each rung of a bundle (pure). A bundle holds one
/// slot but runs an encoder per rung; with the slot's threads each (one
/// on a node with a slot per core) ffmpeg runs them all on one thread,
/// so a bundle left alone at the end of a job would use one core of the
/// machine. Twice the slot's threads, at most the cores: a lone
/// 720/480/360 bundle of an 8 s piece took 4.42 s with 1 thread each and
/// 2.63 s with 2; two bundles at once 5.10 s and 5.03 s (2 cores).
pub fn bundle_threads(slot_threads: u32, cores: u32) -> u32 {
    match slot_threads {
        0 => 0,
        n => (n * 2).min(cores.max(n)),
    }
}

#[cfg(test)]
mod bundle_tests {
    use super::bundle_threads;

    #[test]
    fn a_bundle_can_use_the_machine_alone() {
        assert_eq!(bundle_threads(1, 2), 2);
        assert_eq!(bundle_threads(1, 1), 1, "never past the cores");
        assert_eq!(bundle_threads(4, 16), 8);
        assert_eq!(bundle_threads(8, 4), 8, "never below the slot's own");
        assert_eq!(bundle_threads(0, 8), 0, "the encoder decides");
    }
}
