//! Colour and HDR: the colour tags of a source (primaries, transfer,
//! matrix, range) and its HDR10 static metadata (mastering display,
//! content light level), read once by the master and written by every
//! shard's encoder, so the joined output is tagged as the source was.
//! Chunked encoders that re-encode without them lose HDR: the decoder
//! hands ffmpeg the tags with each frame, but the mastering display and
//! light level reach x265 and SVT-AV1 only as their own parameters.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The mastering display (SMPTE ST 2086) in the units of the HEVC SEI:
/// chromaticities in 1/50000, luminances in 1/10000 cd/m².
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mastering {
    /// Red, green, blue and white point, each (x, y).
    pub red: (u32, u32),
    pub green: (u32, u32),
    pub blue: (u32, u32),
    pub white: (u32, u32),
    pub max_luminance: u32,
    pub min_luminance: u32,
}

impl Mastering {
    /// The ten numbers of `EncodeSettings.mastering_display`: green,
    /// blue, red, white (x, y), then max and min luminance (x265's order).
    pub fn to_numbers(self) -> Vec<u32> {
        vec![
            self.green.0,
            self.green.1,
            self.blue.0,
            self.blue.1,
            self.red.0,
            self.red.1,
            self.white.0,
            self.white.1,
            self.max_luminance,
            self.min_luminance,
        ]
    }

    /// The inverse of [`Mastering::to_numbers`]; None unless ten numbers.
    pub fn from_numbers(numbers: &[u32]) -> Option<Self> {
        let [gx, gy, bx, by, rx, ry, wx, wy, max_luminance, min_luminance] = *numbers else {
            return None;
        };
        Some(Self {
            green: (gx, gy),
            blue: (bx, by),
            red: (rx, ry),
            white: (wx, wy),
            max_luminance,
            min_luminance,
        })
    }
}

/// Content light level (CTA-861.3): MaxCLL and MaxFALL in cd/m².
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct LightLevel {
    pub max_content: u32,
    pub max_average: u32,
}

/// A source's colour description; empty tags are unknown (left to the
/// encoder's defaults).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Colour {
    pub primaries: String,
    pub transfer: String,
    pub matrix: String,
    pub range: String,
    pub mastering: Option<Mastering>,
    pub light: Option<LightLevel>,
}

/// Transfers of HDR video: PQ (HDR10) and HLG.
const HDR_TRANSFERS: [&str; 2] = ["smpte2084", "arib-std-b67"];

impl Colour {
    /// The tags of an ffprobe stream object and any HDR side data it
    /// carries (MKV and MP4 keep it at the stream level).
    pub fn of_stream(stream: &Value) -> Self {
        let tag = |key: &str| {
            stream
                .get(key)
                .and_then(Value::as_str)
                .filter(|v| is_tag(v))
                .unwrap_or("")
                .to_string()
        };
        let mut colour = Self {
            primaries: tag("color_primaries"),
            transfer: tag("color_transfer"),
            matrix: tag("color_space"),
            range: tag("color_range"),
            ..Self::default()
        };
        colour.take_side_data(stream);
        colour
    }

    /// Reads mastering display and light level from an object's
    /// `side_data_list` (a stream's or a frame's), keeping what is known.
    pub fn take_side_data(&mut self, holder: &Value) {
        for data in holder
            .get("side_data_list")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            match data.get("side_data_type").and_then(Value::as_str) {
                Some("Mastering display metadata") => {
                    self.mastering = self.mastering.or_else(|| mastering(data));
                }
                Some("Content light level metadata") => {
                    self.light = self.light.or_else(|| light_level(data));
                }
                _ => {}
            }
        }
    }

    /// Whether the video is HDR (PQ or HLG transfer).
    pub fn is_hdr(&self) -> bool {
        HDR_TRANSFERS.contains(&self.transfer.as_str())
    }

    /// The colour tags as ffmpeg output options.
    pub fn tag_args(&self) -> Vec<String> {
        [
            ("-color_primaries", &self.primaries),
            ("-color_trc", &self.transfer),
            ("-colorspace", &self.matrix),
            ("-color_range", &self.range),
        ]
        .into_iter()
        .filter(|(_, value)| is_tag(value))
        .flat_map(|(flag, value)| [flag.to_string(), value.clone()])
        .collect()
    }

    /// x265's `master-display`/`max-cll` parameters (with `hdr10=1`), or
    /// nothing without HDR metadata.
    pub fn x265_params(&self) -> Vec<String> {
        let mut params = Vec::new();
        if let Some(m) = self.mastering {
            params.push(format!(
                "master-display=G({},{})B({},{})R({},{})WP({},{})L({},{})",
                m.green.0,
                m.green.1,
                m.blue.0,
                m.blue.1,
                m.red.0,
                m.red.1,
                m.white.0,
                m.white.1,
                m.max_luminance,
                m.min_luminance
            ));
        }
        if let Some(l) = self.light {
            params.push(format!("max-cll={},{}", l.max_content, l.max_average));
        }
        if !params.is_empty() {
            params.insert(0, "hdr10=1".into());
        }
        params
    }

    /// SVT-AV1's `mastering-display`/`content-light` parameters
    /// (chromaticities as fractions, luminances in cd/m²).
    pub fn svtav1_params(&self) -> Vec<String> {
        let mut params = Vec::new();
        if let Some(m) = self.mastering {
            let xy = |(x, y): (u32, u32)| {
                format!("({:.4},{:.4})", x as f64 / 50000.0, y as f64 / 50000.0)
            };
            params.push(format!(
                "mastering-display=G{}B{}R{}WP{}L({:.4},{:.4})",
                xy(m.green),
                xy(m.blue),
                xy(m.red),
                xy(m.white),
                m.max_luminance as f64 / 10000.0,
                m.min_luminance as f64 / 10000.0
            ));
        }
        if let Some(l) = self.light {
            params.push(format!("content-light={},{}", l.max_content, l.max_average));
        }
        params
    }
}

/// A colour tag ffmpeg may be given: a known-looking name (letters,
/// digits, '-', '_'), never "unknown"; the wire brings these from the
/// master, so nothing else reaches a command line.
pub fn is_tag(value: &str) -> bool {
    !value.is_empty()
        && value.len() <= 24
        && !matches!(value, "unknown" | "reserved" | "unspecified")
        && value
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
}

/// "34000/50000" in `unit`ths (34000 for 1/50000), rounded.
fn fraction_in(value: Option<&Value>, unit: f64) -> Option<u32> {
    let text = value?.as_str()?;
    let (num, den) = text.split_once('/').unwrap_or((text, "1"));
    let (num, den): (f64, f64) = (num.trim().parse().ok()?, den.trim().parse().ok()?);
    let scaled = (num / den * unit).round();
    (den > 0.0 && (0.0..=f64::from(u32::MAX)).contains(&scaled)).then_some(scaled as u32)
}

fn mastering(data: &Value) -> Option<Mastering> {
    let xy = |x: &str, y: &str| {
        Some((
            fraction_in(data.get(x), 50000.0)?,
            fraction_in(data.get(y), 50000.0)?,
        ))
    };
    Some(Mastering {
        red: xy("red_x", "red_y")?,
        green: xy("green_x", "green_y")?,
        blue: xy("blue_x", "blue_y")?,
        white: xy("white_point_x", "white_point_y")?,
        max_luminance: fraction_in(data.get("max_luminance"), 10000.0)?,
        min_luminance: fraction_in(data.get("min_luminance"), 10000.0)?,
    })
}

fn light_level(data: &Value) -> Option<LightLevel> {
    let number = |key: &str| data.get(key)?.as_u64().and_then(|v| u32::try_from(v).ok());
    Some(LightLevel {
        max_content: number("max_content")?,
        max_average: number("max_average")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A first frame of an HDR10 HEVC clip as ffprobe 5.1 prints it.
    fn hdr_frame() -> Value {
        serde_json::json!({
            "side_data_list": [
                {"side_data_type": "Mastering display metadata",
                 "red_x": "34000/50000", "red_y": "16000/50000",
                 "green_x": "13250/50000", "green_y": "34500/50000",
                 "blue_x": "7500/50000", "blue_y": "3000/50000",
                 "white_point_x": "15635/50000", "white_point_y": "16450/50000",
                 "min_luminance": "1/10000", "max_luminance": "10000000/10000"},
                {"side_data_type": "Content light level metadata",
                 "max_content": 1000, "max_average": 400},
                {"side_data_type": "H.26[45] User Data Unregistered SEI message"}
            ]
        })
    }

    #[test]
    fn hdr10_metadata_reaches_x265_and_svtav1_in_their_units() {
        let stream = serde_json::json!({
            "color_primaries": "bt2020", "color_transfer": "smpte2084",
            "color_space": "bt2020nc", "color_range": "tv"
        });
        let mut colour = Colour::of_stream(&stream);
        colour.take_side_data(&hdr_frame());
        assert!(colour.is_hdr());
        assert_eq!(
            colour.x265_params(),
            vec![
                "hdr10=1",
                "master-display=G(13250,34500)B(7500,3000)R(34000,16000)WP(15635,16450)L(10000000,1)",
                "max-cll=1000,400"
            ]
        );
        assert_eq!(
            colour.svtav1_params(),
            vec![
                "mastering-display=G(0.2650,0.6900)B(0.1500,0.0600)R(0.6800,0.3200)WP(0.3127,0.3290)L(1000.0000,0.0001)",
                "content-light=1000,400"
            ]
        );
        assert_eq!(
            colour.tag_args().join(" "),
            "-color_primaries bt2020 -color_trc smpte2084 -colorspace bt2020nc -color_range tv"
        );
        let mastering = colour.mastering.expect("mastering display");
        assert_eq!(
            Mastering::from_numbers(&mastering.to_numbers()),
            Some(mastering)
        );
        assert_eq!(Mastering::from_numbers(&[1, 2, 3]), None);
    }

    #[test]
    fn unknown_or_odd_tags_never_reach_ffmpeg() {
        let stream = serde_json::json!({
            "color_primaries": "unknown", "color_transfer": "bt709",
            "color_space": "bt709; rm -rf /", "color_range": "tv"
        });
        let colour = Colour::of_stream(&stream);
        assert!(!colour.is_hdr());
        assert_eq!(
            colour.tag_args().join(" "),
            "-color_trc bt709 -color_range tv"
        );
        assert!(colour.x265_params().is_empty() && colour.svtav1_params().is_empty());
    }
}
