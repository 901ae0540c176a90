//! Measuring how close an encoded video is to its source: PSNR and SSIM
//! of sampled frames, with the source scaled exactly as the encoder
//! scales it. Plain numbers only; what is good enough is for the caller
//! to decide (the master's check of returned shards, a quality report).
//!
//! One ffmpeg run decodes both files in step, keeps the sampled frames
//! of each (`select` by frame index, so timestamps need not agree),
//! scales only the source's sampled frames, and writes the per-frame
//! figures of the `psnr` and `ssim` filters to stdout. It stops after the
//! last sampled frame: nothing past it is decoded.

use std::path::Path;

use super::encode::picture_filter;
use super::orient::Orientation;
use super::run::{MediaError, Tools, command, run_lines};
use crate::params::PixFmt;

/// How one sampled frame compares with its source frame.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FrameScore {
    /// Frame index in presentation order, from 0.
    pub index: u64,
    /// PSNR over all three planes (ffmpeg's `psnr_avg`), dB; infinite
    /// for identical pictures.
    pub psnr: f64,
    /// PSNR of the luma plane alone, dB.
    pub psnr_y: f64,
    /// SSIM over all planes (ffmpeg's `All`), 0..=1.
    pub ssim: f64,
}

/// The sampled frames that could be compared, in sample order.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Quality {
    pub frames: Vec<FrameScore>,
}

impl Quality {
    /// The sampled frame furthest from its source (lowest PSNR; a figure
    /// that is not a number counts as the lowest).
    pub fn worst(&self) -> Option<&FrameScore> {
        let key = |f: &FrameScore| {
            if f.psnr.is_nan() {
                f64::NEG_INFINITY
            } else {
                f.psnr
            }
        };
        self.frames.iter().min_by(|a, b| key(a).total_cmp(&key(b)))
    }

    /// Mean PSNR of the sampled frames (infinite ones counted as 100 dB
    /// so one identical frame does not hide the others).
    pub fn mean_psnr(&self) -> Option<f64> {
        mean(self.frames.iter().map(|f| f.psnr.min(100.0)))
    }

    pub fn mean_ssim(&self) -> Option<f64> {
        mean(self.frames.iter().map(|f| f.ssim))
    }
}

fn mean(values: impl Iterator<Item = f64>) -> Option<f64> {
    let (sum, n) = values.fold((0.0, 0u32), |(s, n), v| (s + v, n + 1));
    (n > 0).then(|| sum / f64::from(n))
}

/// `count` frame indices out of `total`, ascending: the frames are cut
/// into `count` equal stretches and one frame is drawn from each with
/// `seed`, so the picks cover the whole video and cannot be foreseen by
/// whoever made it (pure). Every frame when `total <= count`.
pub fn sample_frames(total: u64, count: usize, seed: u64) -> Vec<u64> {
    let count = count as u64;
    if total <= count {
        return (0..total).collect();
    }
    let mut state = seed;
    (0..count)
        .map(|i| {
            let start = i * total / count;
            let end = (i + 1) * total / count;
            start + splitmix64(&mut state) % (end - start)
        })
        .collect()
}

/// SplitMix64: a small, well-mixed generator for the sample draw.
fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A `select` expression true for the frames `samples` (ascending):
/// runs of consecutive frames become one `between`, so comparing every
/// frame stays one short term (ffmpeg refuses expressions of a few
/// hundred terms).
pub(crate) fn select_expr(samples: &[u64]) -> String {
    let mut runs: Vec<(u64, u64)> = Vec::new();
    for &n in samples {
        match runs.last_mut() {
            Some((_, last)) if n == *last + 1 => *last = n,
            _ => runs.push((n, n)),
        }
    }
    runs.iter()
        .map(|&(first, last)| {
            if first == last {
                format!("eq(n\\,{first})")
            } else {
                format!("between(n\\,{first}\\,{last})")
            }
        })
        .collect::<Vec<_>>()
        .join("+")
}

/// ffmpeg arguments after the two inputs (encoded first, source second).
/// Both sides keep the sampled frames and renumber them 0, 1, 2, … so
/// the metric filters pair them by position; the source's are turned,
/// scaled and converted as the encoder does; both are compared in the
/// encoder's pixel format.
pub(crate) fn compare_args(picture: Picture, samples: &[u64]) -> Vec<String> {
    let select = select_expr(samples);
    let pick = format!("select='{select}',setpts=N/(25*TB)");
    let graph = format!(
        "[0:v]{pick},format={pix_fmt}[enc];\
         [1:v]{pick},{scale},format={pix_fmt},split[ref1][ref2];\
         [enc][ref1]psnr=stats_file=-[scored];\
         [scored][ref2]ssim=stats_file=-[out]",
        scale = picture_filter(
            picture.tonemap,
            picture.orientation,
            picture.width,
            picture.height
        ),
        pix_fmt = picture.pix_fmt.name(),
    );
    [
        "-filter_complex",
        &graph,
        "-map",
        "[out]",
        "-frames:v",
        &samples.len().to_string(),
        "-fps_mode",
        "passthrough",
        "-f",
        "null",
        "-",
    ]
    .map(String::from)
    .to_vec()
}

/// The value of `key:` in a stats line ("n:3 mse_avg:4.20 psnr_avg:41.90 …").
fn field(line: &str, key: &str) -> Option<f64> {
    line.split_whitespace()
        .find_map(|part| part.strip_prefix(key)?.strip_prefix(':'))
        .and_then(|v| v.parse().ok())
}

/// A line of either filter's stats: which pair (1-based) and what it
/// says. PSNR lines carry `psnr_avg`, SSIM lines `All`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum StatsLine {
    Psnr { pair: u64, avg: f64, y: f64 },
    Ssim { pair: u64, all: f64 },
}

pub(crate) fn parse_stats_line(line: &str) -> Option<StatsLine> {
    let pair = field(line, "n")? as u64;
    if let Some(avg) = field(line, "psnr_avg") {
        let y = field(line, "psnr_y").unwrap_or(avg);
        return Some(StatsLine::Psnr { pair, avg, y });
    }
    field(line, "All").map(|all| StatsLine::Ssim { pair, all })
}

/// Folds the stats lines into one score per sampled frame; pairs missing
/// either figure are left out.
pub(crate) fn collect(samples: &[u64], lines: &[StatsLine]) -> Quality {
    let frames = samples
        .iter()
        .enumerate()
        .filter_map(|(i, &index)| {
            let pair = i as u64 + 1;
            let (psnr, psnr_y) = lines.iter().find_map(|l| match *l {
                StatsLine::Psnr { pair: p, avg, y } if p == pair => Some((avg, y)),
                _ => None,
            })?;
            let ssim = lines.iter().find_map(|l| match *l {
                StatsLine::Ssim { pair: p, all } if p == pair => Some(all),
                _ => None,
            })?;
            Some(FrameScore {
                index,
                psnr,
                psnr_y,
                ssim,
            })
        })
        .collect();
    Quality { frames }
}

/// How the encoder made its pictures from the source's: tone-mapped or
/// not, turned by `orientation`, scaled to `width`×`height`, in `pix_fmt`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Picture {
    pub tonemap: bool,
    pub orientation: Orientation,
    pub width: u32,
    pub height: u32,
    pub pix_fmt: PixFmt,
}

impl Picture {
    /// The pictures `spec` makes of its source.
    pub fn of(spec: &super::EncodeSpec) -> Self {
        Self {
            tonemap: spec.tonemap,
            orientation: spec.orientation,
            width: spec.width,
            height: spec.height,
            pix_fmt: spec.pix_fmt,
        }
    }

    /// Scaled only, as stored.
    pub fn scaled(width: u32, height: u32) -> Self {
        Self {
            tonemap: false,
            orientation: Orientation::Upright,
            width,
            height,
            pix_fmt: PixFmt::Yuv420p,
        }
    }
}

/// Compares frames `samples` (ascending indices) of `encoded` with the
/// same frames of `source` made into `picture`. Frames that could not be
/// compared (a video shorter than it claims) are missing from the
/// answer; an unreadable file is an error.
pub async fn compare(
    tools: &Tools,
    encoded: &Path,
    source: &Path,
    picture: Picture,
    samples: &[u64],
) -> Result<Quality, MediaError> {
    if samples.is_empty() {
        return Ok(Quality::default());
    }
    let mut cmd = command(&tools.ffmpeg);
    // One decoding thread per input: the check runs beside the master's
    // own encodes, so it spends as little CPU as it can.
    cmd.args(["-nostdin", "-hide_banner", "-v", "error", "-threads", "1"])
        .arg("-i")
        .arg(encoded)
        .args(["-threads", "1", "-noautorotate", "-i"])
        .arg(source)
        .args(["-filter_complex_threads", "1"])
        .args(compare_args(picture, samples));
    let mut lines = Vec::new();
    run_lines(cmd, |line| lines.extend(parse_stats_line(line))).await?;
    Ok(collect(samples, &lines))
}

#[cfg(test)]
#[path = "quality_tests.rs"]
mod tests;
