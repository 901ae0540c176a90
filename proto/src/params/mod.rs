//! What a job asks for: output format, size rules and encoder settings,
//! validated from the raw numbers of an upload.
//!
//! Size rules (documented in the README), all of the picture as it is
//! displayed (a phone's portrait counts as portrait):
//! - `width`×`height` is the output box. 0 or -1 on one side keeps the
//!   source aspect ratio; on both sides it keeps the source size. The
//!   output is never larger than the source: a smaller source is scaled
//!   down only, never blown up by accident.
//! - `upscale_width`×`upscale_height`, when set, is an explicit output size
//!   that may exceed the source (0 = not set; 0/-1 on one side keeps aspect).
//! - Every side ends up even (yuv420p needs it) and within 2..=8192.

use serde::{Deserialize, Serialize};

mod codec;
mod ladder;
mod target;
pub use codec::{PixFmt, PixFmtChoice, VideoCodec, is_high_depth};
pub use ladder::{
    AUTO_TABLE, DEFAULT_SEGMENT_SECONDS, Ladder, LadderChoice, MAX_SEGMENT_SECONDS, Packages, Rung,
    check_ladder_options, h264_kbps, plan_rungs,
};
pub use target::QualityTarget;

/// Largest width or height we accept, in either direction.
pub const MAX_DIMENSION: i32 = 8192;

/// Largest picture, input or output, in pixels: 8192x4320 (DCI 8K). An
/// encoder's memory grows with the picture (a 3-frame 8192x8192 upload
/// took 1.96 GB per slot), so sides of 8192 are fine but not both.
pub const MAX_PIXELS: u64 = 8192 * 4320;

/// A job's priority weight when none is given.
pub const DEFAULT_PRIORITY: u32 = 10;
/// The largest priority weight (the smallest is 1).
pub const MAX_PRIORITY: u32 = 100;

fn default_priority() -> u32 {
    DEFAULT_PRIORITY
}

/// A picture over [`MAX_PIXELS`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error(
    "{width}x{height} is {:.1} megapixels, more than the {:.1} (8192x4320) vidshard encodes",
    *width as f64 * *height as f64 / 1e6,
    MAX_PIXELS as f64 / 1e6
)]
pub struct TooManyPixels {
    pub width: u64,
    pub height: u64,
}

/// Checks a picture size against [`MAX_PIXELS`] (pure).
pub fn check_pixels(width: u64, height: u64) -> Result<(), TooManyPixels> {
    if width.saturating_mul(height) > MAX_PIXELS {
        Err(TooManyPixels { width, height })
    } else {
        Ok(())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OutputFormat {
    Mp4,
    Mkv,
    Mov,
    Webm,
}

impl OutputFormat {
    pub fn parse(raw: &str) -> Result<Self, BadParams> {
        match raw.trim().to_ascii_lowercase().trim_start_matches('.') {
            "" | "mp4" => Ok(Self::Mp4),
            "mkv" => Ok(Self::Mkv),
            "mov" => Ok(Self::Mov),
            "webm" => Ok(Self::Webm),
            other => Err(BadParams::Format(other.to_string())),
        }
    }

    pub fn extension(self) -> &'static str {
        match self {
            Self::Mp4 => "mp4",
            Self::Mkv => "mkv",
            Self::Mov => "mov",
            Self::Webm => "webm",
        }
    }

    /// WebM: Opus audio and the codecs of the web (VP9, AV1); the others
    /// take AAC.
    pub fn is_webm(self) -> bool {
        self == Self::Webm
    }

    /// The codec a job gets when it names none.
    pub fn default_codec(self) -> VideoCodec {
        if self.is_webm() {
            VideoCodec::Vp9
        } else {
            VideoCodec::H264
        }
    }

    /// The codecs this container carries.
    pub fn codecs(self) -> &'static [VideoCodec] {
        if self.is_webm() {
            &[VideoCodec::Vp9, VideoCodec::Av1]
        } else {
            &[VideoCodec::H264, VideoCodec::Hevc, VideoCodec::Av1]
        }
    }
}

/// Which audio tracks of the source the output keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum AudioChoice {
    /// Every audio track, in order (the default for new jobs).
    All,
    /// The first audio track only (what jobs recorded before the choice
    /// existed did).
    #[default]
    First,
    None,
}

impl AudioChoice {
    /// `all` (or ""), `first`, `none`.
    pub fn parse(raw: &str) -> Result<Self, BadParams> {
        match raw.trim().to_ascii_lowercase().as_str() {
            "" | "all" => Ok(Self::All),
            "first" => Ok(Self::First),
            "none" => Ok(Self::None),
            other => Err(BadParams::Audio(other.to_string())),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::All => "all",
            Self::First => "first",
            Self::None => "none",
        }
    }
}

/// A requested size where either side may be "keep aspect".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SizeRequest {
    /// `None` keeps the aspect ratio on this side.
    pub width: Option<u32>,
    pub height: Option<u32>,
}

/// A validated job description.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobParams {
    pub target: SizeRequest,
    pub upscale: Option<SizeRequest>,
    pub format: OutputFormat,
    /// None in jobs recorded before codecs could be chosen: the format's
    /// default (see [`JobParams::codec`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub video_codec: Option<VideoCodec>,
    #[serde(default)]
    pub pix_fmt: PixFmtChoice,
    /// Tone-map an HDR source to SDR (BT.709).
    #[serde(default)]
    pub tonemap: bool,
    /// Make no quality report (jobs recorded before reports existed
    /// read as wanting one; they simply have no measured shards).
    #[serde(default)]
    pub skip_quality: bool,
    /// Every shard at least this good, with the highest CRF that is
    /// (None: one CRF for all).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quality_target: Option<QualityTarget>,
    /// Audio tracks kept (records from before the choice: the first).
    #[serde(default)]
    pub audio: AudioChoice,
    /// An adaptive-bitrate package instead of one file (None: one file).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ladder: Option<Ladder>,
    pub preset: String,
    pub crf: u32,
    pub original_filename: String,
    /// Weight of the job's share of the slots when jobs compete
    /// (1..=[`MAX_PRIORITY`]; records from before priorities: the default).
    #[serde(default = "default_priority")]
    pub priority: u32,
}

impl JobParams {
    /// The output's video codec.
    pub fn codec(&self) -> VideoCodec {
        self.video_codec
            .unwrap_or_else(|| self.format.default_codec())
    }
}

/// The numbers as they arrive on the wire.
#[derive(Debug, Clone, Default)]
pub struct RawParams {
    pub target_width: i32,
    pub target_height: i32,
    pub upscale_width: i32,
    pub upscale_height: i32,
    pub output_format: String,
    /// "" picks the format's default.
    pub codec: String,
    /// auto (or ""), yuv420p, yuv420p10le.
    pub pix_fmt: String,
    pub tonemap: bool,
    pub skip_quality: bool,
    /// 0 = none.
    pub target_ssim: f64,
    pub target_psnr: f64,
    /// all (or ""), first, none.
    pub audio: String,
    /// "" (one file), auto, or heights: 1080,720,480.
    pub ladder: String,
    /// hls, dash or both ("" = both).
    pub package: String,
    /// None: the default (4 s).
    pub segment_seconds: Option<u32>,
    pub preset: String,
    pub crf: i32,
    pub original_filename: String,
    /// None: [`DEFAULT_PRIORITY`].
    pub priority: Option<u32>,
}

impl From<crate::v1::JobParams> for RawParams {
    fn from(p: crate::v1::JobParams) -> Self {
        Self {
            target_width: p.target_width,
            target_height: p.target_height,
            upscale_width: p.upscale_width,
            upscale_height: p.upscale_height,
            output_format: p.output_format,
            codec: p.codec,
            pix_fmt: p.pix_fmt,
            tonemap: p.tonemap,
            skip_quality: p.skip_quality,
            target_ssim: p.target_ssim,
            target_psnr: p.target_psnr,
            audio: p.audio,
            ladder: p.ladder,
            package: p.package,
            segment_seconds: p.segment_seconds,
            preset: p.preset,
            crf: p.crf,
            original_filename: p.original_filename,
            priority: p.priority,
        }
    }
}

const X264_PRESETS: [&str; 10] = [
    "ultrafast",
    "superfast",
    "veryfast",
    "faster",
    "fast",
    "medium",
    "slow",
    "slower",
    "veryslow",
    "placebo",
];

/// Why a job description is refused; the words go back to the client.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum BadParams {
    #[error("unknown output format {0:?}: use mp4, mkv, mov or webm")]
    Format(String),
    #[error("{side} {value} is negative: give a positive size, or 0/-1 to keep the aspect ratio")]
    Negative { side: &'static str, value: i32 },
    #[error("{side} {value} is larger than the {MAX_DIMENSION} allowed")]
    TooLarge { side: &'static str, value: i32 },
    #[error("unknown preset {0:?}: use one of {X264_PRESETS:?}")]
    Preset(String),
    #[error("crf {crf} is out of range (1..={max} for {codec})")]
    Crf {
        crf: i32,
        max: u32,
        codec: VideoCodec,
    },
    #[error("unknown codec {0:?}: use h264, hevc, av1 or vp9")]
    Codec(String),
    #[error("unknown pixel format {0:?}: use auto, yuv420p or yuv420p10le")]
    PixFmt(String),
    #[error("{codec} cannot go in {}: use {}", format.extension(), list(format.codecs()))]
    CodecInContainer {
        codec: VideoCodec,
        format: OutputFormat,
    },
    #[error(
        "the source is HDR ({transfer}) and an 8-bit {codec} output would show it washed out: \
         give --tonemap for SDR, or keep HDR with --codec hevc or av1 (10-bit)"
    )]
    HdrTo8Bit { transfer: String, codec: VideoCodec },
    #[error("unknown audio choice {0:?}: use all, first or none")]
    Audio(String),
    #[error("give --target-ssim or --target-psnr, not both")]
    TwoTargets,
    #[error("target SSIM {0} is out of range: use 0.5..=0.9999")]
    TargetSsim(f64),
    #[error("target PSNR {0} dB is out of range: use 20..=70")]
    TargetPsnr(f64),
    #[error("a quality target is met by measuring every shard: it cannot go with --no-quality")]
    TargetWithoutQuality,
    #[error("unknown rung {0:?}: give heights like 1080,720,480 or auto")]
    Rung(String),
    #[error("rung {0} is higher than the {MAX_DIMENSION} allowed")]
    RungTooLarge(u32),
    #[error("{0} rungs asked: a ladder has at most 8")]
    TooManyRungs(usize),
    #[error("unknown package {0:?}: use hls, dash or hls,dash")]
    Package(String),
    #[error(
        "a ladder is packaged as CMAF (fragmented MP4) for HLS and DASH: --format {} does not apply (leave --format out)",
        .0.extension()
    )]
    LadderFormat(OutputFormat),
    #[error("a ladder's sizes are its rungs: leave out --width/--height and the upscale size")]
    LadderWithSize,
    #[error("segment length {0} s is out of range: use 1..={MAX_SEGMENT_SECONDS} seconds")]
    SegmentSeconds(u32),
    #[error("a quality target is not made for ladders (each rung has a bitrate cap): leave it out")]
    LadderWithTarget,
    #[error("--package and --segment-seconds go with --ladder")]
    PackageWithoutLadder,
    #[error(
        "priority {0} is out of range: use 1..={MAX_PRIORITY} (the default is {DEFAULT_PRIORITY})"
    )]
    Priority(u32),
}

/// Whether a job may encode a source of `transfer` to `pix_fmt` (pure):
/// an HDR source (PQ or HLG) goes to an 8-bit output only tone-mapped,
/// since its pictures would otherwise keep HDR values in an SDR-sized
/// range. Checked by the node after its probe and by the client, when it
/// has ffprobe, before it sends a byte.
pub fn check_hdr(
    transfer: &str,
    codec: VideoCodec,
    pix_fmt: PixFmt,
    tonemap: bool,
) -> Result<(), BadParams> {
    let hdr = matches!(transfer, "smpte2084" | "arib-std-b67");
    if hdr && pix_fmt == PixFmt::Yuv420p && !tonemap {
        return Err(BadParams::HdrTo8Bit {
            transfer: transfer.to_string(),
            codec,
        });
    }
    Ok(())
}

fn list(codecs: &[VideoCodec]) -> String {
    codecs
        .iter()
        .map(|c| c.name())
        .collect::<Vec<_>>()
        .join(" or ")
}

fn side(name: &'static str, value: i32) -> Result<Option<u32>, BadParams> {
    match value {
        0 | -1 => Ok(None),
        v if v < -1 => Err(BadParams::Negative {
            side: name,
            value: v,
        }),
        v if v > MAX_DIMENSION => Err(BadParams::TooLarge {
            side: name,
            value: v,
        }),
        v => Ok(Some(round_even(v as u32))),
    }
}

/// Rounds to the nearest even number, at least 2 (yuv420p needs even sides).
pub fn round_even(v: u32) -> u32 {
    let even = if v % 2 == 1 { v + 1 } else { v };
    even.clamp(2, MAX_DIMENSION as u32)
}

impl RawParams {
    pub fn validate(&self) -> Result<JobParams, BadParams> {
        let target = SizeRequest {
            width: side("width", self.target_width)?,
            height: side("height", self.target_height)?,
        };
        let upscale = SizeRequest {
            width: side("upscale width", self.upscale_width)?,
            height: side("upscale height", self.upscale_height)?,
        };
        let upscale = (upscale.width.is_some() || upscale.height.is_some()).then_some(upscale);
        let format = OutputFormat::parse(&self.output_format)?;
        let preset = match self.preset.trim() {
            "" => "veryfast".to_string(),
            p if X264_PRESETS.contains(&p) => p.to_string(),
            p => return Err(BadParams::Preset(p.to_string())),
        };
        let codec = VideoCodec::parse(&self.codec)?.unwrap_or(format.default_codec());
        if !format.codecs().contains(&codec) {
            return Err(BadParams::CodecInContainer { codec, format });
        }
        let crf = match self.crf {
            0 => codec.default_crf(),
            c if c >= 1 && c as u32 <= codec.max_crf() => c as u32,
            c => {
                return Err(BadParams::Crf {
                    crf: c,
                    max: codec.max_crf(),
                    codec,
                });
            }
        };
        let quality_target = QualityTarget::parse(self.target_ssim, self.target_psnr)?;
        if quality_target.is_some() && self.skip_quality {
            return Err(BadParams::TargetWithoutQuality);
        }
        let ladder = match LadderChoice::parse(&self.ladder)? {
            Some(rungs) => {
                let sized = target
                    != SizeRequest {
                        width: None,
                        height: None,
                    }
                    || upscale.is_some();
                let segment_seconds = check_ladder_options(format, sized, self.segment_seconds)?;
                if quality_target.is_some() {
                    return Err(BadParams::LadderWithTarget);
                }
                Some(Ladder {
                    rungs,
                    packages: Packages::parse(&self.package)?,
                    segment_seconds,
                })
            }
            None if !self.package.trim().is_empty() || self.segment_seconds.is_some() => {
                return Err(BadParams::PackageWithoutLadder);
            }
            None => None,
        };
        Ok(JobParams {
            target,
            upscale,
            ladder,
            format,
            video_codec: Some(codec),
            pix_fmt: PixFmtChoice::parse(&self.pix_fmt)?,
            tonemap: self.tonemap,
            skip_quality: self.skip_quality,
            quality_target,
            audio: AudioChoice::parse(&self.audio)?,
            preset,
            crf,
            original_filename: self.original_filename.chars().take(255).collect(),
            priority: match self.priority {
                None => DEFAULT_PRIORITY,
                Some(p) if (1..=MAX_PRIORITY).contains(&p) => p,
                Some(p) => return Err(BadParams::Priority(p)),
            },
        })
    }
}

/// Resolves a size request against a source size: a missing side follows
/// the aspect ratio of the source.
fn resolve(request: SizeRequest, src_w: u32, src_h: u32) -> (f64, f64) {
    let (sw, sh) = (src_w as f64, src_h as f64);
    match (request.width, request.height) {
        (Some(w), Some(h)) => (w as f64, h as f64),
        (Some(w), None) => (w as f64, w as f64 * sh / sw),
        (None, Some(h)) => (h as f64 * sw / sh, h as f64),
        (None, None) => (sw, sh),
    }
}

/// The output size for a source of `src_w`×`src_h` (see the module docs).
pub fn output_size(params: &JobParams, src_w: u32, src_h: u32) -> (u32, u32) {
    let even = |v: f64| round_even(v.round().max(1.0) as u32);
    if let Some(upscale) = params.upscale {
        let (w, h) = resolve(upscale, src_w, src_h);
        return (even(w), even(h));
    }
    let (w, h) = resolve(params.target, src_w, src_h);
    let shrink = (src_w as f64 / w).min(src_h as f64 / h).min(1.0);
    (even(w * shrink), even(h * shrink))
}

#[cfg(test)]
mod tests;
