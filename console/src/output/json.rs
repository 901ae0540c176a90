//! JSON documents printed with `--json`: one `serde_json::Value` per command.

use serde_json::{Value, json};
use vidshard_proto::v1::{JobInfo, JobParams, ListJobsReply, ListNodesReply, ShardInfo};

use super::ladder::ladder_json;
use super::quality::{job_quality_json, shard_quality_json};
use crate::format::round;
use crate::job::{JobState, classify_status, has_output, shard_counts};
use crate::transfer::Saved;

fn params_json(params: Option<&JobParams>) -> Value {
    let default = JobParams::default();
    let p = params.unwrap_or(&default);
    json!({
        "target_width": p.target_width,
        "target_height": p.target_height,
        "upscale_width": p.upscale_width,
        "upscale_height": p.upscale_height,
        "output_format": p.output_format,
        "codec": p.codec,
        "preset": p.preset,
        "crf": p.crf,
        "original_filename": p.original_filename,
        "pix_fmt": p.pix_fmt,
        "tonemap": p.tonemap,
        "skip_quality": p.skip_quality,
        "target_ssim": p.target_ssim,
        "target_psnr": p.target_psnr,
        "audio": p.audio,
        "ladder": p.ladder,
        "package": p.package,
        "segment_seconds": p.segment_seconds,
        "priority": p.priority,
    })
}

fn shard_json(shard: &ShardInfo) -> Value {
    json!({
        "index": shard.index,
        "state": shard.state,
        "worker": shard.worker,
        "progress": round(f64::from(shard.progress), 4),
        "frames": shard.frames,
        "attempts": shard.attempts,
        "fps": round(f64::from(shard.fps), 2),
        "start_seconds": round(shard.start_seconds, 3),
        "duration_seconds": round(shard.duration_seconds, 3),
        "message": shard.message,
        "worker_id": shard.worker_id,
        "running_on": shard.running_on,
        "encode_seconds": round(shard.encode_seconds, 3),
        "transfer_seconds": round(shard.transfer_seconds, 3),
        "quality": shard_quality_json(shard.quality.as_ref()),
        "rung": shard.rung,
        "piece": shard.piece,
    })
}

fn timings_json(job: &JobInfo) -> Value {
    let t = job.timings.unwrap_or_default();
    json!({
        "probe_split_seconds": round(t.probe_split_seconds, 3),
        "encode_stage_seconds": round(t.encode_stage_seconds, 3),
        "shard_encode_sum_seconds": round(t.shard_encode_sum_seconds, 3),
        "shard_encode_max_seconds": round(t.shard_encode_max_seconds, 3),
        "transfer_sum_seconds": round(t.transfer_sum_seconds, 3),
        "join_seconds": round(t.join_seconds, 3),
        "total_seconds": round(t.total_seconds, 3),
    })
}

/// One job as JSON; `with_shards` adds the `shards` array (for `status`).
pub fn job_json(job: &JobInfo, with_shards: bool) -> Value {
    let (done, total) = shard_counts(job);
    let output = if has_output(job) {
        json!({
            "width": job.output_width,
            "height": job.output_height,
            "frames": job.output_frames,
            "bytes": job.output_bytes,
            "sha256": job.output_sha256,
            "holders": job.output_holders,
            "pending": job.output_pending,
            "replicas_wanted": job.output_replicas_wanted,
        })
    } else {
        Value::Null
    };
    let eta =
        (job.eta_seconds.is_finite() && job.eta_seconds >= 0.0).then(|| round(job.eta_seconds, 1));
    let mut value = json!({
        "id": job.id,
        "status": job.status,
        "message": job.message,
        "finished": job.finished,
        "progress": round(f64::from(job.progress), 4),
        "eta_seconds": eta,
        "source": {
            "width": job.source_width,
            "height": job.source_height,
            "frames": job.source_frames,
            "duration_seconds": round(job.source_duration_seconds, 3),
            "has_audio": job.source_has_audio,
            "bytes": job.source_bytes,
        },
        "output": output,
        "params": params_json(job.params.as_ref()),
        "shards_done": done,
        "shards_total": total,
        "created_unix_ms": job.created_unix_ms,
        "updated_unix_ms": job.updated_unix_ms,
        "timings": timings_json(job),
        "quality": job_quality_json(job.quality.as_ref()),
        "ladder": ladder_json(job),
        // Scheduling between jobs: position 0 once the job has ended.
        "queue": {
            "position": job.queue_position,
            "slot_share": job.slot_share,
            "slots_held": job.slots_held,
            "priority": job.priority,
            "wait_seconds": round(job.wait_seconds, 3),
        },
    });
    if with_shards {
        value["shards"] = job.shards.iter().map(shard_json).collect();
    }
    value
}

/// `status` from an original-protocol master: only id, status and message.
pub fn legacy_status_json(id: &str, status: &str, message: &str) -> Value {
    json!({
        "id": id,
        "status": status,
        "message": message,
        "finished": classify_status(status) != JobState::Working,
    })
}

pub fn jobs_json(reply: &ListJobsReply) -> Value {
    let jobs: Vec<Value> = reply.jobs.iter().map(|j| job_json(j, false)).collect();
    let mut value = json!({ "jobs": jobs, "matching": reply.matching });
    if reply.omitted > 0 {
        value["omitted"] = json!(reply.omitted);
    }
    if !reply.next_page_token.is_empty() {
        value["next_page_token"] = json!(reply.next_page_token);
    }
    value
}

pub fn nodes_json(reply: &ListNodesReply) -> Value {
    let nodes: Vec<Value> = reply
        .nodes
        .iter()
        .map(|n| {
            json!({
                "id": n.node_id,
                "address": n.address,
                "role": n.role,
                "term": n.term,
                "alive": n.alive,
                "score": round(f64::from(n.score), 4),
                "slots_busy": n.slots_busy,
                "slots_total": n.slots_total,
                "raft_role": n.raft_role,
            })
        })
        .collect();
    json!({
        "master_address": reply.master_address,
        "term": reply.term,
        "fault_tolerance": reply.fault_tolerance,
        "nodes": nodes,
    })
}

/// `upload`: the job as accepted, plus the saved output when `--output` was used.
pub fn upload_json(id: &str, status: &str, message: &str, saved: Option<&Saved>) -> Value {
    json!({
        "id": id,
        "status": status,
        "message": message,
        "output": saved.map(|s| s.path.display().to_string()),
        "output_sha256": saved.map(|s| s.sha256.clone()),
        "output_bytes": saved.map(|s| s.bytes),
    })
}

pub fn retrieve_json(id: &str, saved: &Saved) -> Value {
    json!({
        "id": id,
        "output": saved.path.display().to_string(),
        "bytes": saved.bytes,
        "sha256": saved.sha256,
    })
}
