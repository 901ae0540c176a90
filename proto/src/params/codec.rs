//! The codec side of a job: which video codec (and so which encoder),
//! and in how many bits per sample.

use serde::{Deserialize, Serialize};

use super::BadParams;

/// The video codec of an output, with the encoder vidshard drives for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum VideoCodec {
    H264,
    Hevc,
    Av1,
    Vp9,
}

impl VideoCodec {
    pub const ALL: [Self; 4] = [Self::H264, Self::Hevc, Self::Av1, Self::Vp9];

    /// The codec named `raw` (ffprobe's names, plus h265/x264/x265); None
    /// for "" (the container's default).
    pub fn parse(raw: &str) -> Result<Option<Self>, BadParams> {
        Ok(Some(match raw.trim().to_ascii_lowercase().as_str() {
            "" => return Ok(None),
            "h264" | "avc" | "x264" => Self::H264,
            "hevc" | "h265" | "x265" => Self::Hevc,
            "av1" => Self::Av1,
            "vp9" => Self::Vp9,
            other => return Err(BadParams::Codec(other.to_string())),
        }))
    }

    /// The name ffprobe gives streams of this codec.
    pub fn name(self) -> &'static str {
        match self {
            Self::H264 => "h264",
            Self::Hevc => "hevc",
            Self::Av1 => "av1",
            Self::Vp9 => "vp9",
        }
    }

    /// The ffmpeg encoder (what a worker's ffmpeg must have).
    pub fn encoder(self) -> &'static str {
        match self {
            Self::H264 => "libx264",
            Self::Hevc => "libx265",
            Self::Av1 => "libsvtav1",
            Self::Vp9 => "libvpx-vp9",
        }
    }

    /// The largest CRF the encoder takes (the smallest is 1).
    pub fn max_crf(self) -> u32 {
        match self {
            Self::H264 | Self::Hevc => 51,
            Self::Av1 | Self::Vp9 => 63,
        }
    }

    /// vidshard's default CRF: each encoder's own default, except VP9
    /// (libvpx has none in constant-quality mode) and AV1, chosen to look
    /// about like x264's 23.
    pub fn default_crf(self) -> u32 {
        match self {
            Self::H264 => 23,
            Self::Hevc => 28,
            Self::Av1 => 35,
            Self::Vp9 => 32,
        }
    }
}

/// The pixel format a job asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PixFmtChoice {
    /// 10-bit for HEVC and AV1 when the source has more than 8 bits,
    /// otherwise 8-bit.
    #[default]
    Auto,
    Yuv420p,
    Yuv420p10le,
}

impl PixFmtChoice {
    pub fn parse(raw: &str) -> Result<Self, BadParams> {
        match raw.trim().to_ascii_lowercase().as_str() {
            "" | "auto" => Ok(Self::Auto),
            "yuv420p" | "8bit" => Ok(Self::Yuv420p),
            "yuv420p10le" | "yuv420p10" | "10bit" => Ok(Self::Yuv420p10le),
            other => Err(BadParams::PixFmt(other.to_string())),
        }
    }

    /// The pixel format of the output for `codec` and a source with
    /// more than 8 bits per sample or not (pure).
    pub fn resolve(self, codec: VideoCodec, source_high_depth: bool) -> PixFmt {
        match self {
            Self::Yuv420p => PixFmt::Yuv420p,
            Self::Yuv420p10le => PixFmt::Yuv420p10le,
            Self::Auto
                if source_high_depth && matches!(codec, VideoCodec::Hevc | VideoCodec::Av1) =>
            {
                PixFmt::Yuv420p10le
            }
            Self::Auto => PixFmt::Yuv420p,
        }
    }
}

/// The pixel format every shard of a job is encoded in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PixFmt {
    #[default]
    Yuv420p,
    Yuv420p10le,
}

impl PixFmt {
    /// ffmpeg's name; "" on the wire (an older master) is 8-bit.
    pub fn name(self) -> &'static str {
        match self {
            Self::Yuv420p => "yuv420p",
            Self::Yuv420p10le => "yuv420p10le",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "" | "yuv420p" => Some(Self::Yuv420p),
            "yuv420p10le" => Some(Self::Yuv420p10le),
            _ => None,
        }
    }
}

impl std::fmt::Display for VideoCodec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Whether an ffmpeg pixel format has more than 8 bits per sample
/// (yuv420p10le, p010le, yuv444p12be, gbrp16le, …).
pub fn is_high_depth(pix_fmt: &str) -> bool {
    const PLANAR: [&str; 4] = ["p9", "p10", "p12", "p14"];
    const PACKED: [&str; 12] = [
        "p010", "p012", "p016", "p210", "p216", "p410", "p416", "rgb48", "bgr48", "rgba64",
        "bgra64", "2rgb10",
    ];
    let planar = pix_fmt.starts_with(['y', 'g']) && PLANAR.iter().any(|p| pix_fmt.contains(p));
    let sixteen = pix_fmt.starts_with(['y', 'g']) && pix_fmt.contains("p16");
    let gray = ["gray9", "gray10", "gray12", "gray14", "gray16"]
        .iter()
        .any(|g| pix_fmt.starts_with(g));
    planar || sixteen || gray || PACKED.iter().any(|p| pix_fmt.contains(p))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bit_depth_is_told_from_the_pixel_format_name() {
        for deep in [
            "yuv420p10le",
            "yuv422p12be",
            "p010le",
            "gbrp10le",
            "gray10le",
            "yuv444p16le",
            "rgb48le",
            "yuv420p9le",
        ] {
            assert!(is_high_depth(deep), "{deep}");
        }
        for eight in [
            "yuv420p", "yuvj420p", "nv12", "nv21", "rgb24", "gray", "pal8", "bgr0", "yuv444p",
        ] {
            assert!(!is_high_depth(eight), "{eight}");
        }
    }
}
