//! What a job asks for: output format, size rules and encoder settings,
//! validated from the raw numbers of an upload.
//!
//! Size rules (documented in the README):
//! - `width`×`height` is the output box. 0 or -1 on one side keeps the
//!   source aspect ratio. The output is never larger than the source: a
//!   smaller source is scaled down only, never blown up by accident.
//! - `upscale_width`×`upscale_height`, when set, is an explicit output size
//!   that may exceed the source (0 = not set; 0/-1 on one side keeps aspect).
//! - Every side ends up even (yuv420p needs it) and within 2..=8192.

use serde::{Deserialize, Serialize};

/// Largest width or height we accept, in either direction.
pub const MAX_DIMENSION: i32 = 8192;

/// Largest picture, input or output, in pixels: 8192x4320 (DCI 8K). An
/// encoder's memory grows with the picture (a 3-frame 8192x8192 upload
/// took 1.96 GB per slot), so sides of 8192 are fine but not both.
pub const MAX_PIXELS: u64 = 8192 * 4320;

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

    /// True for VP9 + Opus (webm); false for H.264 + AAC.
    pub fn is_vp9(self) -> bool {
        self == Self::Webm
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
    pub preset: String,
    pub crf: u32,
    pub original_filename: String,
}

/// The numbers as they arrive on the wire.
#[derive(Debug, Clone, Default)]
pub struct RawParams {
    pub target_width: i32,
    pub target_height: i32,
    pub upscale_width: i32,
    pub upscale_height: i32,
    pub output_format: String,
    pub preset: String,
    pub crf: i32,
    pub original_filename: String,
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
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BadParams {
    #[error("unknown output format {0:?}: use mp4, mkv, mov or webm")]
    Format(String),
    #[error("{side} {value} is negative: give a positive size, or 0/-1 to keep the aspect ratio")]
    Negative { side: &'static str, value: i32 },
    #[error("{side} {value} is larger than the {MAX_DIMENSION} allowed")]
    TooLarge { side: &'static str, value: i32 },
    #[error("width {width} and height {height} leave no size: set at least one of them")]
    NoSize { width: i32, height: i32 },
    #[error("unknown preset {0:?}: use one of {X264_PRESETS:?}")]
    Preset(String),
    #[error("crf {crf} is out of range (1..={max} for this format)")]
    Crf { crf: i32, max: u32 },
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
        if target.width.is_none() && target.height.is_none() {
            return Err(BadParams::NoSize {
                width: self.target_width,
                height: self.target_height,
            });
        }
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
        let crf = match (self.crf, format.is_vp9()) {
            (0, false) => 23,
            (0, true) => 32,
            (c, false) if (1..=51).contains(&c) => c as u32,
            (c, true) if (1..=63).contains(&c) => c as u32,
            (c, vp9) => {
                return Err(BadParams::Crf {
                    crf: c,
                    max: if vp9 { 63 } else { 51 },
                });
            }
        };
        Ok(JobParams {
            target,
            upscale,
            format,
            preset,
            crf,
            original_filename: self.original_filename.chars().take(255).collect(),
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
mod tests {
    use super::*;

    fn raw(w: i32, h: i32) -> RawParams {
        RawParams {
            target_width: w,
            target_height: h,
            ..Default::default()
        }
    }

    #[test]
    fn pictures_beyond_8k_are_refused() {
        assert!(check_pixels(8192, 4320).is_ok());
        assert!(check_pixels(4320, 8192).is_ok());
        let big = check_pixels(8192, 8192).unwrap_err();
        assert!(big.to_string().contains("67.1 megapixels"), "{big}");
    }

    #[test]
    fn defaults_are_mp4_veryfast_crf23() {
        let p = raw(320, 180).validate().expect("valid");
        assert_eq!(p.format, OutputFormat::Mp4);
        assert_eq!(p.preset, "veryfast");
        assert_eq!(p.crf, 23);
        assert_eq!(p.upscale, None);
        let webm = RawParams {
            output_format: "WEBM".into(),
            ..raw(320, 180)
        };
        assert_eq!(webm.validate().expect("valid").crf, 32);
    }

    #[test]
    fn bad_sizes_are_refused_with_a_reason() {
        assert!(
            raw(-5, 180)
                .validate()
                .unwrap_err()
                .to_string()
                .contains("negative")
        );
        assert!(
            raw(100000, 180)
                .validate()
                .unwrap_err()
                .to_string()
                .contains("8192")
        );
        assert!(
            raw(0, 0)
                .validate()
                .unwrap_err()
                .to_string()
                .contains("at least one")
        );
        assert!(raw(-1, -1).validate().is_err());
        let bad_format = RawParams {
            output_format: "avi".into(),
            ..raw(320, 180)
        };
        assert!(
            bad_format
                .validate()
                .unwrap_err()
                .to_string()
                .contains("avi")
        );
    }

    #[test]
    fn odd_sizes_round_to_even() {
        let p = raw(321, 181).validate().expect("valid");
        assert_eq!(p.target.width, Some(322));
        assert_eq!(p.target.height, Some(182));
        assert_eq!(output_size(&p, 640, 360), (322, 182));
    }

    #[test]
    fn zero_side_keeps_aspect() {
        let p = raw(0, 180).validate().expect("valid");
        assert_eq!(output_size(&p, 640, 360), (320, 180));
        let p = raw(320, -1).validate().expect("valid");
        assert_eq!(output_size(&p, 1280, 720), (320, 180));
        assert_eq!(output_size(&p, 640, 480), (320, 240));
    }

    #[test]
    fn never_upscales_without_asking() {
        let p = raw(1920, 1080).validate().expect("valid");
        assert_eq!(output_size(&p, 1280, 720), (1280, 720));
        assert_eq!(output_size(&p, 320, 180), (320, 180));
    }

    #[test]
    fn upscale_size_wins_and_may_exceed_source() {
        let p = RawParams {
            upscale_width: 640,
            upscale_height: 0,
            ..raw(160, 90)
        }
        .validate()
        .expect("valid");
        assert_eq!(output_size(&p, 320, 180), (640, 360));
        assert!(
            RawParams {
                upscale_width: 9000,
                ..raw(160, 90)
            }
            .validate()
            .is_err()
        );
    }
}
