//! Ladder jobs: `--ladder auto|1080,720,…` asks for an adaptive-bitrate
//! package (one encode per rung, CMAF segments, HLS and/or DASH
//! manifests) instead of one output file.
//!
//! Rungs are heights; each rung's width keeps the source's aspect ratio
//! (even). `auto` takes the rungs of [`AUTO_TABLE`] at or below the
//! source height. Every rung is encoded with the job's CRF under a
//! bitrate cap (capped VBV: `maxrate` = the table's rate, `bufsize` twice
//! that) so a busy scene cannot blow a segment past what an ABR player
//! planned for, while an easy one spends less.

use serde::{Deserialize, Serialize};

use super::{BadParams, MAX_DIMENSION, OutputFormat, VideoCodec, round_even};

/// The rungs `auto` picks from and their H.264 bitrate caps, kbit/s
/// (close to Apple's HLS authoring guide for 16:9 at 30 fps).
pub const AUTO_TABLE: [(u32, u32); 6] = [
    (2160, 14_000),
    (1440, 9_000),
    (1080, 5_000),
    (720, 3_000),
    (480, 1_200),
    (360, 700),
];

/// Segment length when the job names none, seconds.
pub const DEFAULT_SEGMENT_SECONDS: u32 = 4;
/// Longest segment a job may ask for, seconds.
pub const MAX_SEGMENT_SECONDS: u32 = 20;
/// Most rungs in one ladder.
pub const MAX_RUNGS: usize = 8;

/// What rungs a ladder job asked for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LadderChoice {
    /// The rungs of [`AUTO_TABLE`] at or below the source height.
    Auto,
    /// These heights, highest first, no repeats.
    Heights(Vec<u32>),
}

impl LadderChoice {
    /// `auto`, or heights separated by commas (`1080,720,480` or
    /// `1080p,720p`); "" is no ladder.
    pub fn parse(raw: &str) -> Result<Option<Self>, BadParams> {
        let raw = raw.trim().to_ascii_lowercase();
        if raw.is_empty() {
            return Ok(None);
        }
        if raw == "auto" {
            return Ok(Some(Self::Auto));
        }
        let mut heights = Vec::new();
        for part in raw.split(',').map(str::trim) {
            let digits = part.strip_suffix('p').unwrap_or(part);
            let height: u32 = digits
                .parse()
                .map_err(|_| BadParams::Rung(part.to_string()))?;
            if height < 2 {
                return Err(BadParams::Rung(part.to_string()));
            }
            if height > MAX_DIMENSION as u32 {
                return Err(BadParams::RungTooLarge(height));
            }
            heights.push(round_even(height));
        }
        heights.sort_unstable_by(|a, b| b.cmp(a));
        heights.dedup();
        if heights.len() > MAX_RUNGS {
            return Err(BadParams::TooManyRungs(heights.len()));
        }
        Ok(Some(Self::Heights(heights)))
    }

    /// How the choice reads back (`auto` or `720,480,360`).
    pub fn describe(&self) -> String {
        match self {
            Self::Auto => "auto".into(),
            Self::Heights(h) => h.iter().map(u32::to_string).collect::<Vec<_>>().join(","),
        }
    }
}

/// Which manifests a ladder job publishes (both by default).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Packages {
    pub hls: bool,
    pub dash: bool,
}

impl Default for Packages {
    fn default() -> Self {
        Self {
            hls: true,
            dash: true,
        }
    }
}

impl Packages {
    /// `hls`, `dash`, `hls,dash` ("" is both).
    pub fn parse(raw: &str) -> Result<Self, BadParams> {
        let raw = raw.trim().to_ascii_lowercase();
        if raw.is_empty() {
            return Ok(Self::default());
        }
        let mut packages = Self {
            hls: false,
            dash: false,
        };
        for part in raw.split(',').map(str::trim) {
            match part {
                "hls" => packages.hls = true,
                "dash" => packages.dash = true,
                other => return Err(BadParams::Package(other.to_string())),
            }
        }
        Ok(packages)
    }

    pub fn describe(self) -> &'static str {
        match (self.hls, self.dash) {
            (true, true) => "hls,dash",
            (true, false) => "hls",
            _ => "dash",
        }
    }
}

/// A validated ladder request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ladder {
    pub rungs: LadderChoice,
    pub packages: Packages,
    pub segment_seconds: u32,
}

/// One rung as planned against a source.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rung {
    pub width: u32,
    pub height: u32,
    /// The encoder's bitrate cap, kbit/s.
    pub max_kbps: u32,
}

impl Rung {
    /// `720p`: the rung's name in paths, manifests and displays.
    pub fn name(&self) -> String {
        format!("{}p", self.height)
    }
}

/// The H.264 cap for a height: the table's rate at its heights, linear
/// in pixels between them, and in proportion to pixels beyond them (pure).
pub fn h264_kbps(height: u32) -> u32 {
    let table = AUTO_TABLE;
    let pixels = |h: u32| f64::from(h) * f64::from(h);
    if let Some(&(_, kbps)) = table.iter().find(|(h, _)| *h == height) {
        return kbps;
    }
    let (top_h, top_k) = table[0];
    let (low_h, low_k) = table[table.len() - 1];
    let kbps = if height > top_h {
        f64::from(top_k) * pixels(height) / pixels(top_h)
    } else if height < low_h {
        f64::from(low_k) * pixels(height) / pixels(low_h)
    } else {
        let above = table.iter().rev().find(|(h, _)| *h > height);
        let below = table.iter().find(|(h, _)| *h < height);
        match (above, below) {
            (Some(&(ah, ak)), Some(&(bh, bk))) => {
                let t = (pixels(height) - pixels(bh)) / (pixels(ah) - pixels(bh));
                f64::from(bk) + t * (f64::from(ak) - f64::from(bk))
            }
            _ => f64::from(low_k),
        }
    };
    (kbps.round() as u32).max(50)
}

/// How much less than H.264 a codec needs for the same picture.
fn codec_factor(codec: VideoCodec) -> f64 {
    match codec {
        VideoCodec::H264 => 1.0,
        VideoCodec::Hevc | VideoCodec::Vp9 => 0.6,
        VideoCodec::Av1 => 0.5,
    }
}

/// The rungs of a ladder for a source shown as `src_w`×`src_h` (pure):
/// heights above the source are dropped (a ladder never upscales; the
/// dropped ones are returned for the job's message), and when none is
/// left the source height is the one rung.
pub fn plan_rungs(
    choice: &LadderChoice,
    codec: VideoCodec,
    src_w: u32,
    src_h: u32,
) -> (Vec<Rung>, Vec<u32>) {
    let asked: Vec<u32> = match choice {
        LadderChoice::Auto => AUTO_TABLE.iter().map(|(h, _)| *h).collect(),
        LadderChoice::Heights(h) => h.clone(),
    };
    let (mut kept, dropped): (Vec<u32>, Vec<u32>) = asked.into_iter().partition(|h| *h <= src_h);
    if kept.is_empty() {
        kept = vec![round_even(src_h)];
    }
    let dropped = if matches!(choice, LadderChoice::Auto) {
        Vec::new()
    } else {
        dropped
    };
    let rungs = kept
        .into_iter()
        .map(|height| {
            let width = round_even(
                (f64::from(height) * f64::from(src_w) / f64::from(src_h.max(1))).round() as u32,
            );
            let kbps = f64::from(h264_kbps(height)) * codec_factor(codec);
            Rung {
                width,
                height,
                max_kbps: (kbps.round() as u32).max(50),
            }
        })
        .collect();
    (rungs, dropped)
}

/// Checks the options that go with `--ladder` (pure): a ladder is
/// packaged as CMAF (fragmented MP4), so the format must be mp4, and its
/// sizes come from the rungs, not `--width/--height`.
pub fn check_ladder_options(
    format: OutputFormat,
    sized: bool,
    segment_seconds: Option<u32>,
) -> Result<u32, BadParams> {
    if format != OutputFormat::Mp4 {
        return Err(BadParams::LadderFormat(format));
    }
    if sized {
        return Err(BadParams::LadderWithSize);
    }
    match segment_seconds {
        None => Ok(DEFAULT_SEGMENT_SECONDS),
        Some(s) if (1..=MAX_SEGMENT_SECONDS).contains(&s) => Ok(s),
        Some(s) => Err(BadParams::SegmentSeconds(s)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rungs_parse_as_heights_highest_first() {
        assert_eq!(LadderChoice::parse("").expect("none"), None);
        assert_eq!(
            LadderChoice::parse("AUTO").expect("auto"),
            Some(LadderChoice::Auto)
        );
        assert_eq!(
            LadderChoice::parse("480, 720p,1080,720").expect("heights"),
            Some(LadderChoice::Heights(vec![1080, 720, 480]))
        );
        let unknown = LadderChoice::parse("720,hd").unwrap_err().to_string();
        assert!(unknown.contains("unknown rung \"hd\""), "{unknown}");
        let big = LadderChoice::parse("9000").unwrap_err().to_string();
        assert!(big.contains("9000") && big.contains("8192"), "{big}");
        assert!(LadderChoice::parse("0").is_err());
        assert!(LadderChoice::parse("1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18").is_err());
    }

    #[test]
    fn auto_takes_the_rungs_at_or_below_the_source() {
        let (rungs, dropped) = plan_rungs(&LadderChoice::Auto, VideoCodec::H264, 1280, 720);
        let heights: Vec<u32> = rungs.iter().map(|r| r.height).collect();
        assert_eq!(heights, vec![720, 480, 360]);
        assert!(dropped.is_empty());
        assert_eq!(
            rungs[0],
            Rung {
                width: 1280,
                height: 720,
                max_kbps: 3000
            }
        );
        assert_eq!(rungs[1].width, 854);
        assert_eq!(rungs[2].width, 640);
        // A small source is one rung at its own height.
        let (small, _) = plan_rungs(&LadderChoice::Auto, VideoCodec::H264, 320, 180);
        assert_eq!(small.len(), 1);
        assert_eq!((small[0].width, small[0].height), (320, 180));
    }

    #[test]
    fn asked_rungs_above_the_source_are_dropped_and_named() {
        let choice = LadderChoice::Heights(vec![1080, 720, 360]);
        let (rungs, dropped) = plan_rungs(&choice, VideoCodec::Hevc, 1280, 720);
        assert_eq!(rungs.len(), 2);
        assert_eq!(dropped, vec![1080]);
        assert_eq!(rungs[0].max_kbps, 1800);
        // Portrait: heights are of the picture as shown.
        let (portrait, _) = plan_rungs(&choice, VideoCodec::H264, 720, 1280);
        assert_eq!((portrait[0].width, portrait[0].height), (608, 1080));
    }

    #[test]
    fn bitrates_follow_the_table_and_scale_between() {
        assert_eq!(h264_kbps(720), 3000);
        let k540 = h264_kbps(540);
        assert!(k540 > 1200 && k540 < 3000, "{k540}");
        assert_eq!(h264_kbps(180), 175);
        assert!(h264_kbps(4320) > 50_000);
    }

    #[test]
    fn ladder_options_are_checked() {
        assert_eq!(check_ladder_options(OutputFormat::Mp4, false, None), Ok(4));
        assert_eq!(
            check_ladder_options(OutputFormat::Mp4, false, Some(6)),
            Ok(6)
        );
        let zero = check_ladder_options(OutputFormat::Mp4, false, Some(0))
            .unwrap_err()
            .to_string();
        assert!(zero.contains("segment length 0"), "{zero}");
        let webm = check_ladder_options(OutputFormat::Webm, false, None)
            .unwrap_err()
            .to_string();
        assert!(webm.contains("CMAF") && webm.contains("webm"), "{webm}");
        assert!(check_ladder_options(OutputFormat::Mp4, true, None).is_err());
        assert_eq!(
            Packages::parse("dash").expect("dash"),
            Packages {
                hls: false,
                dash: true
            }
        );
        assert!(Packages::parse("smooth").is_err());
    }
}
