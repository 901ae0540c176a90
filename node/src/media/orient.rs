//! Which way a video is displayed: the display matrix a phone writes into
//! its MP4 (a portrait video is stored landscape, "rotate 90 when shown"),
//! read from ffprobe and turned into the filters ffmpeg's own autorotate
//! inserts. Shards are cut by stream copy into NUT, which keeps no display
//! matrix, so every shard encode applies these filters itself, before the
//! scale; the output then holds upright pixels and no matrix, as plain
//! `ffmpeg -i phone.mp4 out.mp4` gives.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// How the stored pictures are turned to be displayed upright: one of the
/// eight ways of mapping a rectangle onto itself or its transpose.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Orientation {
    /// Displayed as stored.
    #[default]
    Upright,
    /// A quarter turn clockwise (`transpose=clock`): the phone's portrait.
    Clock,
    /// A quarter turn counter-clockwise (`transpose=cclock`).
    Cclock,
    /// A half turn (`hflip,vflip`).
    Half,
    /// Mirrored left to right.
    Hflip,
    /// Mirrored top to bottom.
    Vflip,
    /// A quarter turn clockwise, then mirrored top to bottom.
    ClockFlip,
    /// A quarter turn counter-clockwise, then mirrored top to bottom.
    CclockFlip,
}

/// A display matrix that is no multiple of a quarter turn.
#[derive(Debug, Clone, Copy, PartialEq, thiserror::Error)]
#[error(
    "the video's display matrix turns it by {degrees:.1}°: only quarter turns and mirrors are supported"
)]
pub struct OddRotation {
    pub degrees: f64,
}

impl Orientation {
    /// The name on the wire (`EncodeSettings.orientation`); "" is upright.
    pub fn name(self) -> &'static str {
        match self {
            Self::Upright => "",
            Self::Clock => "clock",
            Self::Cclock => "cclock",
            Self::Half => "half",
            Self::Hflip => "hflip",
            Self::Vflip => "vflip",
            Self::ClockFlip => "clock_flip",
            Self::CclockFlip => "cclock_flip",
        }
    }

    /// The orientation a wire name stands for; None for a name this node
    /// does not know (the shard is then refused, not encoded sideways).
    pub fn from_name(name: &str) -> Option<Self> {
        [
            Self::Upright,
            Self::Clock,
            Self::Cclock,
            Self::Half,
            Self::Hflip,
            Self::Vflip,
            Self::ClockFlip,
            Self::CclockFlip,
        ]
        .into_iter()
        .find(|o| o.name() == name)
    }

    /// The filters that turn a stored picture upright, to run before the
    /// scale (empty when upright).
    pub fn filters(self) -> &'static str {
        match self {
            Self::Upright => "",
            Self::Clock => "transpose=clock",
            Self::Cclock => "transpose=cclock",
            Self::Half => "hflip,vflip",
            Self::Hflip => "hflip",
            Self::Vflip => "vflip",
            Self::ClockFlip => "transpose=clock_flip",
            Self::CclockFlip => "transpose=cclock_flip",
        }
    }

    /// Whether the displayed picture has width and height swapped.
    pub fn swaps_sides(self) -> bool {
        matches!(
            self,
            Self::Clock | Self::Cclock | Self::ClockFlip | Self::CclockFlip
        )
    }

    /// The displayed size of a `width`×`height` stored picture.
    pub fn displayed(self, width: u32, height: u32) -> (u32, u32) {
        if self.swaps_sides() {
            (height, width)
        } else {
            (width, height)
        }
    }

    /// What ffmpeg's autorotate (fftools 5.1, `configure_input_video_filter`)
    /// does for a display matrix (row-major, 16.16 fixed point), as pure
    /// arithmetic: the angle from `av_display_rotation_get`, normalised as
    /// `get_rotation` does, and the flips from the matrix's signs.
    pub fn from_matrix(m: [i64; 9]) -> Result<Self, OddRotation> {
        let fp = |v: i64| v as f64 / 65536.0;
        let scale0 = fp(m[0]).hypot(fp(m[3]));
        let scale1 = fp(m[1]).hypot(fp(m[4]));
        if scale0 == 0.0 || scale1 == 0.0 {
            return Ok(Self::Upright);
        }
        let rotation = -(fp(m[1]) / scale1).atan2(fp(m[0]) / scale0).to_degrees();
        let mut theta = -rotation.round();
        theta -= 360.0 * (theta / 360.0 + 0.9 / 360.0).floor();
        let near = |angle: f64| (theta - angle).abs() < 1.0;
        Ok(if near(90.0) {
            if m[3] > 0 {
                Self::CclockFlip
            } else {
                Self::Clock
            }
        } else if near(180.0) {
            match (m[0] < 0, m[4] < 0) {
                (true, true) => Self::Half,
                (true, false) => Self::Hflip,
                (false, true) => Self::Vflip,
                (false, false) => Self::Upright,
            }
        } else if near(270.0) {
            if m[3] < 0 {
                Self::ClockFlip
            } else {
                Self::Cclock
            }
        } else if theta.abs() > 1.0 {
            return Err(OddRotation { degrees: theta });
        } else if m[4] < 0 {
            Self::Vflip
        } else {
            Self::Upright
        })
    }

    /// The orientation of an ffprobe stream object (`-show_streams` JSON):
    /// its "Display Matrix" side data, upright when there is none.
    pub fn of_stream(stream: &Value) -> Result<Self, OddRotation> {
        let matrix = stream
            .get("side_data_list")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter(|d| d.get("side_data_type").and_then(Value::as_str) == Some("Display Matrix"))
            .find_map(|d| parse_matrix(d.get("displaymatrix")?.as_str()?));
        matrix.map_or(Ok(Self::Upright), Self::from_matrix)
    }
}

/// The nine numbers of ffprobe's `displaymatrix` text: three lines of
/// `00000000: a b c` (an offset, then a row).
fn parse_matrix(text: &str) -> Option<[i64; 9]> {
    let numbers: Vec<i64> = text
        .lines()
        .filter_map(|line| line.split_once(':'))
        .flat_map(|(_, row)| row.split_whitespace().map(str::parse))
        .collect::<Result<_, _>>()
        .ok()?;
    numbers.try_into().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    const ONE: i64 = 65536;
    const W: i64 = 1 << 30;

    /// ffprobe's text for a matrix, as ffmpeg 5.1 prints it.
    fn text(m: [i64; 9]) -> String {
        let mut out = String::from("\n");
        for (row, values) in m.chunks(3).enumerate() {
            out += &format!(
                "{row:08}: {:>12} {:>12} {:>12}\n",
                values[0], values[1], values[2]
            );
        }
        out
    }

    fn stream(m: [i64; 9]) -> Value {
        serde_json::json!({
            "codec_type": "video",
            "side_data_list": [{
                "side_data_type": "Display Matrix",
                "displaymatrix": text(m),
                "rotation": 0
            }]
        })
    }

    #[test]
    fn a_phone_portrait_turns_the_way_ffmpeg_turns_it() {
        // Written by `-metadata:s:v rotate=90` (ffprobe: rotation 90).
        let tag_90 = [0, -ONE, 0, ONE, 0, 0, 0, 0, W];
        assert_eq!(
            Orientation::of_stream(&stream(tag_90)),
            Ok(Orientation::Cclock)
        );
        // rotate=270 (ffprobe: rotation -90): an iPhone held upright.
        let tag_270 = [0, ONE, 0, -ONE, 0, 0, 0, 0, W];
        assert_eq!(
            Orientation::of_stream(&stream(tag_270)),
            Ok(Orientation::Clock)
        );
        let half = [-ONE, 0, 0, 0, -ONE, 0, 0, 0, W];
        assert_eq!(Orientation::of_stream(&stream(half)), Ok(Orientation::Half));
        assert_eq!(Orientation::Clock.displayed(320, 180), (180, 320));
        assert_eq!(Orientation::Half.displayed(320, 180), (320, 180));
    }

    #[test]
    fn mirrors_are_kept_apart_from_turns() {
        assert_eq!(
            Orientation::from_matrix([-ONE, 0, 0, 0, ONE, 0, 0, 0, W]),
            Ok(Orientation::Hflip)
        );
        assert_eq!(
            Orientation::from_matrix([ONE, 0, 0, 0, -ONE, 0, 0, 0, W]),
            Ok(Orientation::Vflip)
        );
        assert_eq!(
            Orientation::from_matrix([0, ONE, 0, ONE, 0, 0, 0, 0, W]),
            Ok(Orientation::CclockFlip)
        );
        assert_eq!(
            Orientation::from_matrix([0, -ONE, 0, -ONE, 0, 0, 0, 0, W]),
            Ok(Orientation::ClockFlip)
        );
    }

    #[test]
    fn no_matrix_or_identity_is_upright_and_odd_angles_are_refused() {
        let plain = serde_json::json!({"codec_type": "video"});
        assert_eq!(Orientation::of_stream(&plain), Ok(Orientation::Upright));
        let identity = [ONE, 0, 0, 0, ONE, 0, 0, 0, W];
        assert_eq!(Orientation::from_matrix(identity), Ok(Orientation::Upright));
        // 30 degrees: cos = 0.866, sin = 0.5.
        let (c, s) = (56756, 32768);
        let odd = Orientation::from_matrix([c, -s, 0, s, c, 0, 0, 0, W]).unwrap_err();
        assert!(odd.to_string().contains("quarter turns"), "{odd}");
        assert_eq!(parse_matrix("garbage"), None);
    }

    #[test]
    fn wire_names_round_trip_and_unknown_names_are_none() {
        for o in [
            Orientation::Upright,
            Orientation::Clock,
            Orientation::Cclock,
            Orientation::Half,
            Orientation::Hflip,
            Orientation::Vflip,
            Orientation::ClockFlip,
            Orientation::CclockFlip,
        ] {
            assert_eq!(Orientation::from_name(o.name()), Some(o));
        }
        assert_eq!(Orientation::from_name("rotate=1"), None);
    }
}
