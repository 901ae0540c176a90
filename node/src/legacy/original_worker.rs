//! Running a shard copy on a worker that speaks only the original
//! protocol (see `run_original`).

use crate::cluster::Sys;
use crate::media;
use crate::worker::copy::{CopyError, CopyOutcome, CopyRequest, rpc_error};
use crate::worker::{self, fidelity, measure};

/// Encodes on a worker that speaks only the original protocol: the shard
/// goes as one mp4 message (`ProcessShard`), the result comes back whole
/// from `RequestShard` once ready (polled; a `failed_processing` report
/// ends the wait early), and only its video stream is kept: the audio is
/// muxed from the source at the join, so nothing the worker did to it
/// matters; its frames are compared with the source like every remote
/// result (`worker::fidelity`). `failed_reported` tells whether the
/// worker reported `failed_processing` for this shard to the master
/// meanwhile.
pub async fn run_original(
    sys: &Sys,
    address: &str,
    req: &CopyRequest,
    failed_reported: impl Fn() -> bool,
) -> Result<CopyOutcome, CopyError> {
    use vidshard_proto::replication::worker_service_client::WorkerServiceClient;
    use vidshard_proto::replication::{DistributeShardRequest, RequestShardRequest};

    const LIMIT: usize = super::MAX_LEGACY_SHARD + 4096;
    if req.spec.codec != crate::params::VideoCodec::H264 {
        return Err("original-protocol workers are only given H.264 jobs"
            .to_string()
            .into());
    }
    let started = std::time::Instant::now();
    let scratch = crate::store::Scratch::create(&sys.store.tmp_dir(), &req.task_id)
        .await
        .map_err(|e| e.to_string())?;
    let input = crate::worker::copy::local_source(&sys.store, req).await?;
    let sent = scratch.path().join("shard.mp4");
    media::remux(&sys.tools, &input, &sent, "mp4", false)
        .await
        .map_err(|e| format!("preparing the shard: {e}"))?;
    let data = tokio::fs::read(&sent).await.map_err(|e| e.to_string())?;
    if data.len() > super::MAX_LEGACY_SHARD {
        return Err(format!(
            "shard of {} bytes is too big for the original protocol",
            data.len()
        )
        .into());
    }
    let shard_id = format!("{}.mp4", req.task_id);
    let channel = sys
        .peers
        .channel(address)
        .map_err(|e| format!("bad worker address {address}: {e}"))?;
    let mut client = WorkerServiceClient::new(channel)
        .max_decoding_message_size(LIMIT)
        .max_encoding_message_size(LIMIT);
    let accepted = client
        .process_shard(DistributeShardRequest {
            video_id: req.job_id.clone(),
            shard_id: shard_id.clone(),
            shard_data: data,
            shard_index: req.shard_index as i32,
            total_shards: req.total_shards as i32,
            target_width: req.spec.width as i32,
            target_height: req.spec.height as i32,
            original_filename: format!("{}.mp4", req.job_id),
            upscale_width: 0,
            upscale_height: 0,
            output_format: "mp4".into(),
        })
        .await
        .map_err(|e| rpc_error(address, "original worker", e))?
        .into_inner();
    if !accepted.success {
        return Err(format!(
            "original worker {address} refused the shard: {}",
            accepted.message
        )
        .into());
    }
    // Generous: an original worker gives no progress to judge it by; the
    // scheduler's straggler rule and liveness probes cover slow or dead ones.
    let deadline = started + std::time::Duration::from_secs(30 * 60);
    let bytes = loop {
        if failed_reported() {
            return Err(format!("original worker {address} reported failed_processing").into());
        }
        let reply = client
            .request_shard(RequestShardRequest {
                shard_id: shard_id.clone(),
            })
            .await
            .map_err(|e| rpc_error(address, "original worker", e))?
            .into_inner();
        if reply.success {
            break reply.shard_data;
        }
        if reply.message.contains("fail") {
            return Err(format!("original worker {address}: {}", reply.message).into());
        }
        if std::time::Instant::now() > deadline {
            return Err(format!("original worker {address} gave no result in 30 minutes").into());
        }
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    };
    let received = scratch.path().join("result.mp4");
    tokio::fs::write(&received, &bytes)
        .await
        .map_err(|e| e.to_string())?;
    drop(bytes);
    let video = scratch.path().join("result.nut");
    media::remux(&sys.tools, &received, &video, "nut", false)
        .await
        .map_err(|e| format!("result from {address} unreadable: {e}"))?;
    let found = media::inspect(&sys.tools, &video)
        .await
        .map_err(|e| format!("result from {address} unreadable: {e}"))?;
    worker::check_encoded(&found, req.expected_frames, &req.spec)
        .map_err(|e| format!("result from {address}: {e}"))?;
    fidelity::check_against_source(&sys.tools, &video, &input, req.expected_frames, &req.spec)
        .await
        .map_err(|e| e.into_copy_error(address))?;
    // An original worker measures nothing: the master does, from the
    // source it sent and the result it holds.
    let quality = match req.measure_quality {
        true => {
            let (frames, spec) = (req.expected_frames, &req.spec);
            measure::measure_logged(&sys.tools, &input, &video, frames, spec, &sys.node_id).await
        }
        false => None,
    };
    let (blob, pin) = sys
        .store
        .import_pinned(&video)
        .await
        .map_err(|e| e.to_string())?;
    scratch.remove().await;
    Ok(CopyOutcome {
        blob,
        pin: Some(std::sync::Arc::new(pin)),
        encode_seconds: started.elapsed().as_secs_f64(),
        transfer_seconds: 0.0,
        quality,
    })
}
