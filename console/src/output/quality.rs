//! The quality report in `status`: JSON objects and text lines from the
//! `vidshard.v1` report (PSNR in dB, SSIM 0..1). Pure.

use serde_json::{Value, json};
use vidshard_proto::v1::{JobInfo, JobQuality, QualityStats, SeamQuality, ShardQuality};

use crate::format::round;

fn stats_json(stats: Option<&QualityStats>, digits: i32) -> Value {
    let s = stats.copied().unwrap_or_default();
    json!({
        "frames": s.frames,
        "mean": round(s.mean, digits),
        "p5": round(s.p5, digits),
        "p1": round(s.p1, digits),
        "min": round(s.min, digits),
    })
}

fn rounded(values: &[f64], digits: i32) -> Vec<f64> {
    values.iter().map(|v| round(*v, digits)).collect()
}

/// A shard's measurement; null when it has none.
pub fn shard_quality_json(quality: Option<&ShardQuality>) -> Value {
    let Some(q) = quality else {
        return Value::Null;
    };
    json!({
        "psnr": stats_json(q.psnr.as_ref(), 3),
        "ssim": stats_json(q.ssim.as_ref(), 5),
        "interior_psnr": stats_json(q.interior_psnr.as_ref(), 3),
        "interior_ssim": stats_json(q.interior_ssim.as_ref(), 5),
        "head_psnr": rounded(&q.head_psnr, 3),
        "tail_psnr": rounded(&q.tail_psnr, 3),
        "head_ssim": rounded(&q.head_ssim, 5),
        "tail_ssim": rounded(&q.tail_ssim, 5),
        "measured_on": q.measured_on,
        "crf": q.crf,
        "probes": q.probes.iter().map(|p| json!({"crf": p.crf, "score": round(p.score, 5)})).collect::<Vec<_>>(),
    })
}

fn seam_json(seam: &SeamQuality) -> Value {
    json!({
        "after_shard": seam.after_shard,
        "psnr": stats_json(seam.psnr.as_ref(), 3),
        "ssim": stats_json(seam.ssim.as_ref(), 5),
        "flagged": seam.flagged,
        "reason": seam.reason,
    })
}

/// The job's report; null when nothing is measured (yet, or at all).
pub fn job_quality_json(quality: Option<&JobQuality>) -> Value {
    let Some(q) = quality else {
        return Value::Null;
    };
    json!({
        "measured_shards": q.measured_shards,
        "shards": q.shards,
        "psnr": stats_json(q.psnr.as_ref(), 3),
        "ssim": stats_json(q.ssim.as_ref(), 5),
        "seams": q.seams.iter().map(seam_json).collect::<Vec<_>>(),
        "flagged_seams": q.flagged_seams,
    })
}

/// `key: value` lines for `status`: the summary, then one line per
/// flagged seam. None when there is no report.
pub fn quality_lines(job: &JobInfo) -> Vec<(&'static str, String)> {
    let Some(q) = &job.quality else {
        return Vec::new();
    };
    let (psnr, ssim) = (q.psnr.unwrap_or_default(), q.ssim.unwrap_or_default());
    let mut lines = vec![(
        "quality",
        format!(
            "PSNR {:.2} dB, min {:.2}; SSIM {:.4}, min {:.4}; {}/{} shards",
            psnr.mean, psnr.min, ssim.mean, ssim.min, q.measured_shards, q.shards
        ),
    )];
    if let Some(target) = target_line(job) {
        lines.push(("target", target));
    }
    let flagged: Vec<&SeamQuality> = q.seams.iter().filter(|s| s.flagged).collect();
    lines.push((
        "seams",
        match (q.seams.len(), flagged.len()) {
            (0, _) => "none measured".to_owned(),
            (n, 0) => format!("{n} measured, none flagged"),
            (n, f) => format!("{n} measured, {f} FLAGGED"),
        },
    ));
    for seam in flagged {
        lines.push((
            "flagged",
            format!("seam after shard {}: {}", seam.after_shard, seam.reason),
        ));
    }
    lines
}

/// A shard's mean PSNR for the shard table ("-" when unmeasured).
pub fn shard_psnr_cell(quality: Option<&ShardQuality>) -> String {
    quality
        .and_then(|q| q.psnr)
        .map_or_else(|| "-".to_owned(), |p| format!("{:.2}", p.mean))
}

/// `key: value` lines of one shard's measurement (the console's shard
/// details); empty when unmeasured.
pub fn shard_quality_lines(quality: Option<&ShardQuality>) -> Vec<(&'static str, String)> {
    let Some(q) = quality else {
        return vec![("quality", "not measured".to_owned())];
    };
    let line = |s: Option<QualityStats>, digits: usize| {
        let s = s.unwrap_or_default();
        format!(
            "mean {:.digits$}, p5 {:.digits$}, p1 {:.digits$}, min {:.digits$} ({} frames)",
            s.mean, s.p5, s.p1, s.min, s.frames
        )
    };
    let edge = |values: &[f64]| {
        if values.is_empty() {
            0.0
        } else {
            values.iter().sum::<f64>() / values.len() as f64
        }
    };
    vec![
        ("psnr dB", line(q.psnr, 2)),
        ("interior", line(q.interior_psnr, 2)),
        (
            "edges",
            format!(
                "first {} frames {:.2} dB, last {} frames {:.2} dB",
                q.head_psnr.len(),
                edge(&q.head_psnr),
                q.tail_psnr.len(),
                edge(&q.tail_psnr)
            ),
        ),
        ("ssim", line(q.ssim, 4)),
        ("crf", crf_text(q)),
        ("measured", format!("on {}", q.measured_on)),
    ]
}

/// The job's quality target, whether each measured shard met it, and the
/// CRF each got: `SSIM 0.98: met by 4 of 4 shards; CRF 30, 41, 18, 22`.
fn target_line(job: &JobInfo) -> Option<String> {
    let params = job.params.as_ref()?;
    let (metric, goal) = match (params.target_ssim, params.target_psnr) {
        (s, _) if s > 0.0 => ("SSIM", s),
        (_, p) if p > 0.0 => ("PSNR", p),
        _ => return None,
    };
    let measured: Vec<&ShardQuality> = job
        .shards
        .iter()
        .filter_map(|s| s.quality.as_ref())
        .collect();
    let met = measured
        .iter()
        .filter(|q| {
            let stats = if metric == "SSIM" { q.ssim } else { q.psnr };
            stats.is_some_and(|s| s.mean >= goal)
        })
        .count();
    let crfs: Vec<String> = job
        .shards
        .iter()
        .map(|s| {
            s.quality
                .as_ref()
                .map_or("-".to_owned(), |q| q.crf.to_string())
        })
        .collect();
    Some(format!(
        "{metric} {goal}: met by {met} of {} shards; CRF {}",
        measured.len(),
        crfs.join(", ")
    ))
}

/// `30` or, under a target, `30 (tried 23: 0.9912, 30: 0.9804, 33: 0.9771)`.
fn crf_text(q: &ShardQuality) -> String {
    if q.probes.is_empty() {
        return q.crf.to_string();
    }
    let tried: Vec<String> = q
        .probes
        .iter()
        .map(|p| format!("{}: {:.4}", p.crf, p.score))
        .collect();
    format!("{} (tried {})", q.crf, tried.join(", "))
}
