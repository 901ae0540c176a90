//! Plain-text renderings: `key: value` blocks and aligned tables.

use vidshard_proto::v1::{JobInfo, JobParams, ListJobsReply, ListNodesReply, ShardInfo};

use super::ladder::{ladder_lines, renditions_table};
use super::quality::{quality_lines, shard_psnr_cell};
use crate::format::{self, Align};
use crate::job::{backup_status, has_output, shard_counts};
use crate::transfer::Saved;

pub fn legacy_status_text(id: &str, status: &str, message: &str) -> String {
    let mut out = format!("id:        {id}\nstatus:    {status}\n");
    if !message.is_empty() {
        out.push_str(&format!("message:   {message}\n"));
    }
    out
}

pub fn saved_text(saved: &Saved) -> String {
    format!(
        "saved {} ({} bytes, {}), sha256 {}\n",
        saved.path.display(),
        saved.bytes,
        format::bytes(saved.bytes),
        saved.sha256
    )
}

fn dims(width: u32, height: u32) -> String {
    if width == 0 && height == 0 {
        "-".to_owned()
    } else {
        format!("{width}x{height}")
    }
}

fn params_text(p: &JobParams) -> String {
    let mut parts = vec![format!("target {}x{}", p.target_width, p.target_height)];
    if p.upscale_width != 0 || p.upscale_height != 0 {
        parts.push(format!("upscale {}x{}", p.upscale_width, p.upscale_height));
    }
    let or_default = |s: &str| {
        if s.is_empty() {
            "default".to_owned()
        } else {
            s.to_owned()
        }
    };
    parts.push(format!("format {}", or_default(&p.output_format)));
    if !p.codec.is_empty() {
        parts.push(format!("codec {}", p.codec));
    }
    parts.push(format!("preset {}", or_default(&p.preset)));
    let crf = if p.crf == 0 {
        "default".to_owned()
    } else {
        p.crf.to_string()
    };
    parts.push(format!("crf {crf}"));
    if p.skip_quality {
        parts.push("no quality report".to_owned());
    }
    if p.target_ssim > 0.0 {
        parts.push(format!("target SSIM {}", p.target_ssim));
    }
    if p.target_psnr > 0.0 {
        parts.push(format!("target PSNR {} dB", p.target_psnr));
    }
    parts.join(", ")
}

/// `status`: a block of `key: value` lines, then the shard table.
pub fn job_text(job: &JobInfo) -> String {
    let (done, total) = shard_counts(job);
    let mut lines = vec![("id", job.id.clone()), ("status", job.status.clone())];
    if !job.message.is_empty() {
        lines.push(("message", job.message.clone()));
    }
    lines.push((
        "progress",
        format!(
            "{} (shards {done}/{total} done)",
            format::percent(job.progress)
        ),
    ));
    if !job.finished {
        lines.push(("eta", format::eta(job.eta_seconds)));
    }
    if let Some(standing) = format::standing(
        job.queue_position,
        job.slots_held,
        job.slot_share,
        job.priority,
        job.wait_seconds,
    ) {
        lines.push(("queue", standing));
    }
    let audio = if job.source_has_audio { "yes" } else { "no" };
    lines.push((
        "source",
        format!(
            "{}, {} frames, {:.1} s, audio {audio}, {}",
            dims(job.source_width, job.source_height),
            job.source_frames,
            job.source_duration_seconds,
            format::bytes(job.source_bytes)
        ),
    ));
    if has_output(job) {
        let mut output = format!(
            "{}, {} frames, {} bytes",
            dims(job.output_width, job.output_height),
            job.output_frames,
            job.output_bytes
        );
        if !job.output_sha256.is_empty() {
            output.push_str(&format!(", sha256 {}", job.output_sha256));
        }
        lines.push(("output", output));
    }
    if let Some(backups) = backup_status(job) {
        lines.push(("backups", backups));
    }
    if let Some(params) = &job.params {
        lines.push(("params", params_text(params)));
    }
    lines.extend(quality_lines(job));
    lines.extend(ladder_lines(job));
    let mut out: String = lines
        .iter()
        .map(|(k, v)| format!("{:<10} {v}\n", format!("{k}:")))
        .collect();
    out.push('\n');
    if !job.renditions.is_empty() {
        out.push_str(&renditions_table(&job.renditions));
        out.push('\n');
    }
    if job.shards.is_empty() {
        out.push_str("no shards yet\n");
    } else {
        out.push_str(&shards_table(&job.shards));
    }
    out
}

fn shards_table(shards: &[ShardInfo]) -> String {
    let ladder = shards.iter().any(|s| !s.rung.is_empty());
    let rows: Vec<Vec<String>> = shards
        .iter()
        .map(|s| {
            let mut row = vec![
                s.index.to_string(),
                s.state.clone(),
                if s.worker.is_empty() {
                    "-".to_owned()
                } else {
                    s.worker.clone()
                },
                format::percent(s.progress),
                s.frames.to_string(),
                s.attempts.to_string(),
                shard_psnr_cell(s.quality.as_ref()),
            ];
            if ladder {
                row.insert(1, format!("{} {}", s.piece, s.rung));
            }
            row
        })
        .collect();
    let mut columns = vec![
        ("shard", Align::Right),
        ("state", Align::Left),
        ("worker", Align::Left),
        ("progress", Align::Right),
        ("frames", Align::Right),
        ("attempts", Align::Right),
        ("psnr dB", Align::Right),
    ];
    if ladder {
        columns.insert(1, ("piece rung", Align::Left));
    }
    format::table(&columns, &rows)
}

/// `jobs`: one row per job.
pub fn jobs_text(reply: &ListJobsReply) -> String {
    if reply.jobs.is_empty() && reply.omitted == 0 {
        return "no jobs\n".to_owned();
    }
    let rows: Vec<Vec<String>> = reply
        .jobs
        .iter()
        .map(|j| {
            let (done, total) = shard_counts(j);
            let ended = j.queue_position == 0;
            vec![
                j.id.clone(),
                j.status.clone(),
                format::percent(j.progress),
                format!("{done}/{total}"),
                if ended {
                    "-".to_owned()
                } else {
                    format!("#{}", j.queue_position)
                },
                if ended {
                    "-".to_owned()
                } else {
                    format!("{}/{}", j.slots_held, j.slot_share)
                },
                j.priority.to_string(),
                format::eta(j.wait_seconds),
                dims(j.output_width, j.output_height),
                j.params
                    .as_ref()
                    .map(|p| p.original_filename.clone())
                    .unwrap_or_default(),
            ]
        })
        .collect();
    let mut text = format::table(
        &[
            ("id", Align::Left),
            ("status", Align::Left),
            ("progress", Align::Right),
            ("shards", Align::Right),
            ("queue", Align::Right),
            ("slots", Align::Right),
            ("prio", Align::Right),
            ("waited", Align::Right),
            ("output", Align::Left),
            ("filename", Align::Left),
        ],
        &rows,
    );
    if !reply.next_page_token.is_empty() {
        text.push_str(&format!(
            "… {} more: vidshard jobs --page-token {}\n",
            reply.omitted, reply.next_page_token
        ));
    } else if reply.omitted > 0 {
        // An older node: no pages.
        text.push_str(&format!(
            "… and {} more jobs not listed (running jobs come first, then the most recently changed)\n",
            reply.omitted
        ));
    }
    text
}

/// `nodes`: a header line with the master and term, then one row per node.
pub fn nodes_text(reply: &ListNodesReply) -> String {
    let master = if reply.master_address.is_empty() {
        "unknown"
    } else {
        reply.master_address.as_str()
    };
    let mut out = format!("master: {master}  term: {}\n", reply.term);
    if !reply.fault_tolerance.is_empty() {
        out.push_str(&format!("raft:   {}\n", reply.fault_tolerance));
    }
    out.push('\n');
    let rows: Vec<Vec<String>> = reply
        .nodes
        .iter()
        .map(|n| {
            vec![
                n.node_id.clone(),
                n.address.clone(),
                n.role.clone(),
                if n.raft_role.is_empty() {
                    "-".to_owned()
                } else {
                    n.raft_role.clone()
                },
                n.term.to_string(),
                if n.alive { "yes" } else { "no" }.to_owned(),
                format!("{:.2}", n.score),
                format!("{}/{}", n.slots_busy, n.slots_total),
            ]
        })
        .collect();
    out.push_str(&format::table(
        &[
            ("id", Align::Left),
            ("address", Align::Left),
            ("role", Align::Left),
            ("raft", Align::Left),
            ("term", Align::Right),
            ("alive", Align::Left),
            ("score", Align::Right),
            ("slots", Align::Right),
        ],
        &rows,
    ));
    out
}
