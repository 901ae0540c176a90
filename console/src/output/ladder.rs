//! A ladder job in `status`: its renditions (per-rung progress and
//! measured bitrates) and time to first playable segment, as text lines,
//! a table and JSON. Pure.

use serde_json::{Value, json};
use vidshard_proto::v1::{JobInfo, RenditionInfo};

use super::quality::job_quality_json;
use crate::format::{self, Align, round};

/// `ladder:` and `playable:` lines (none for a plain job).
pub fn ladder_lines(job: &JobInfo) -> Vec<(&'static str, String)> {
    if job.renditions.is_empty() {
        return Vec::new();
    }
    let rungs: Vec<&str> = job
        .renditions
        .iter()
        .filter(|r| r.kind == "video")
        .map(|r| r.id.as_str())
        .collect();
    let audio = job.renditions.iter().filter(|r| r.kind == "audio").count();
    let segment = job
        .params
        .as_ref()
        .and_then(|p| p.segment_seconds)
        .map_or(String::new(), |s| format!(", {s} s segments"));
    let mut lines = vec![(
        "ladder",
        format!(
            "{} ({}{segment}), {audio} audio track(s)",
            rungs.join("/"),
            job.packages
        ),
    )];
    let playable = if job.first_playable_unix_ms == 0 {
        "not yet".to_owned()
    } else {
        format!(
            "{:.1} s after the upload was accepted",
            job.first_playable_seconds
        )
    };
    lines.push(("playable", playable));
    lines
}

/// One row per rendition: published pieces and seconds, bitrates.
pub fn renditions_table(renditions: &[RenditionInfo]) -> String {
    let rows: Vec<Vec<String>> = renditions
        .iter()
        .map(|r| {
            vec![
                r.id.clone(),
                if r.kind == "video" {
                    format!("{}x{}", r.width, r.height)
                } else if r.language.is_empty() {
                    "audio".to_owned()
                } else {
                    format!("audio ({})", r.language)
                },
                if r.codecs.is_empty() {
                    "-".to_owned()
                } else {
                    r.codecs.clone()
                },
                format!("{}/{}", r.pieces_done, r.pieces),
                r.segments.to_string(),
                format!("{:.1}", r.seconds),
                kbps(r.average_bitrate),
                kbps(r.peak_bitrate),
                quality_cell(r),
            ]
        })
        .collect();
    format::table(
        &[
            ("rendition", Align::Left),
            ("size", Align::Left),
            ("codecs", Align::Left),
            ("pieces", Align::Right),
            ("segments", Align::Right),
            ("seconds", Align::Right),
            ("avg kb/s", Align::Right),
            ("peak kb/s", Align::Right),
            ("psnr dB / ssim", Align::Right),
        ],
        &rows,
    )
}

/// A rung's mean PSNR and SSIM against the source ("-": not measured).
fn quality_cell(r: &RenditionInfo) -> String {
    match &r.quality {
        Some(q) => {
            let (psnr, ssim) = (q.psnr.unwrap_or_default(), q.ssim.unwrap_or_default());
            format!("{:.2} / {:.4}", psnr.mean, ssim.mean)
        }
        None => "-".to_owned(),
    }
}

fn kbps(bits_per_second: u64) -> String {
    format!("{}", (bits_per_second + 500) / 1000)
}

/// One short line per rendition (the console's job details).
pub fn rendition_lines(job: &JobInfo) -> Vec<String> {
    job.renditions
        .iter()
        .map(|r| {
            format!(
                "{:<8} {}/{} pieces, {} segments, {:.1} s, {} kb/s avg",
                r.id,
                r.pieces_done,
                r.pieces,
                r.segments,
                r.seconds,
                kbps(r.average_bitrate)
            )
        })
        .collect()
}

/// The `ladder` object of `status --json` (null for a plain job).
pub fn ladder_json(job: &JobInfo) -> Value {
    if job.renditions.is_empty() {
        return Value::Null;
    }
    let renditions: Vec<Value> = job
        .renditions
        .iter()
        .map(|r| {
            json!({
                "id": r.id,
                "kind": r.kind,
                "width": r.width,
                "height": r.height,
                "codecs": r.codecs,
                "language": r.language,
                "segments": r.segments,
                "seconds": round(r.seconds, 3),
                "pieces_done": r.pieces_done,
                "pieces": r.pieces,
                "average_bitrate": r.average_bitrate,
                "peak_bitrate": r.peak_bitrate,
                "quality": job_quality_json(r.quality.as_ref()),
            })
        })
        .collect();
    json!({
        "packages": job.packages,
        "first_playable_unix_ms": job.first_playable_unix_ms,
        "first_playable_seconds": round(job.first_playable_seconds, 3),
        "renditions": renditions,
    })
}
