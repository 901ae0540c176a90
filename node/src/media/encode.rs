//! Encoding one shard: scale and re-encode the video with passthrough
//! frame timing, so every input frame becomes exactly one output frame.

use std::path::Path;

use serde::{Deserialize, Serialize};

use super::colour::Colour;
use super::orient::Orientation;
use super::run::{MediaError, Progress, Tools, command, run_with_progress};
use crate::params::{OutputFormat, PixFmt, VideoCodec};

/// Everything a worker needs to encode a shard.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EncodeSpec {
    pub width: u32,
    pub height: u32,
    pub format: OutputFormat,
    pub codec: VideoCodec,
    /// 8 or 10 bits per sample.
    #[serde(default)]
    pub pix_fmt: PixFmt,
    pub preset: String,
    pub crf: u32,
    /// Encoder threads; 0 lets the encoder decide.
    pub threads: u32,
    /// How the shard's pictures are turned upright before the scale
    /// (`width`×`height` is the displayed, turned size).
    #[serde(default)]
    pub orientation: Orientation,
    /// The source's colour tags and HDR10 metadata, written on the output.
    #[serde(default)]
    pub colour: Colour,
    /// Tone-map HDR to SDR BT.709 before anything else.
    #[serde(default)]
    pub tonemap: bool,
    /// Encode to this quality, probing CRFs from `crf` on
    /// (`worker::target_encode`), instead of at `crf`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quality_target: Option<crate::params::QualityTarget>,
    /// How a ladder rung is cut into segments (None: a plain shard).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rung: Option<RungEncode>,
}

/// What a ladder rung's encode adds to a shard's (see `ladder_args`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RungEncode {
    /// Bitrate cap, kbit/s: `maxrate` with a `bufsize` of twice it.
    pub max_kbps: u32,
    /// Keyframes exactly every this many seconds from the shard's first
    /// frame and nowhere else, so every rung's segments start at the same
    /// instants and a player can switch rungs at any segment.
    pub keyframe_seconds: u32,
    /// The same interval in frames at the source's frame rate, for the
    /// encoder that cannot be told keyframe times (SVT-AV1 ignores
    /// ffmpeg's forced keyframes; it gets a fixed GOP instead, which is
    /// also the same frames on every rung).
    pub keyframe_frames: u32,
}

/// The keyframe and bitrate options of a ladder rung (pure). Scene-cut
/// keyframes are turned off and every forced keyframe is an IDR, so each
/// segment starts a closed GOP.
pub fn ladder_args(codec: VideoCodec, rung: &RungEncode) -> Vec<String> {
    let force = format!(
        "expr:if(isnan(prev_forced_t),1,gte(t-prev_forced_t,{}))",
        rung.keyframe_seconds
    );
    let cap = [
        "-maxrate".to_string(),
        format!("{}k", rung.max_kbps),
        "-bufsize".to_string(),
        format!("{}k", rung.max_kbps.saturating_mul(2)),
    ];
    let mut args: Vec<String> = Vec::new();
    match codec {
        VideoCodec::H264 | VideoCodec::Hevc => {
            args.extend([
                "-force_key_frames".into(),
                force,
                "-forced-idr".into(),
                "1".into(),
            ]);
            args.extend(["-g".into(), "100000".into()]);
            args.extend(cap);
        }
        VideoCodec::Vp9 => {
            // Constrained quality: `-b:v` is the cap (set in the codec's
            // own arguments, which read `rung`).
            args.extend([
                "-force_key_frames".into(),
                force,
                "-g".into(),
                "100000".into(),
            ]);
        }
        VideoCodec::Av1 => {
            args.extend(["-g".into(), rung.keyframe_frames.max(1).to_string()]);
            args.extend(cap);
        }
    }
    args
}

/// VP9 speed for an x264-style preset name.
fn vp9_cpu_used(preset: &str) -> &'static str {
    match preset {
        "ultrafast" | "superfast" => "8",
        "veryfast" => "6",
        "faster" | "fast" => "5",
        "medium" => "4",
        "slow" => "3",
        "slower" => "2",
        _ => "1",
    }
}

/// SVT-AV1 preset (0 slowest … 13 fastest) for an x264-style preset name
/// (docs/codecs.md).
fn svtav1_preset(preset: &str) -> &'static str {
    match preset {
        "ultrafast" => "12",
        "superfast" => "11",
        "veryfast" => "10",
        "faster" => "9",
        "fast" => "8",
        "medium" => "7",
        "slow" => "6",
        "slower" => "5",
        "veryslow" => "4",
        _ => "2",
    }
}

/// The encoder and its settings for `spec` (x265 takes x264's preset
/// names as they are).
fn video_codec_args(spec: &EncodeSpec) -> Vec<String> {
    let crf = spec.crf.to_string();
    // HDR10 metadata only where the pictures stay HDR.
    let hdr = |params: Vec<String>| if spec.tonemap { Vec::new() } else { params };
    // x265 and SVT-AV1 ignore `-threads` and size their own pools to the
    // whole machine: each is held to its slot's share here, as x264 and
    // libvpx are by `-threads` (docs/codecs.md, "Threads").
    let (pools, lp) = match spec.threads {
        0 => (Vec::new(), Vec::new()),
        n => (vec![format!("pools={n}")], vec![format!("lp={n}")]),
    };
    let rung_x265 = match spec.rung {
        Some(_) => vec!["scenecut=0".to_string(), "open-gop=0".to_string()],
        None => Vec::new(),
    };
    let x265_params = std::iter::once("log-level=error".to_string())
        .chain(pools)
        .chain(rung_x265)
        .chain(hdr(spec.colour.x265_params()))
        .collect::<Vec<_>>()
        .join(":");
    let svtav1_params = lp
        .into_iter()
        .chain(hdr(spec.colour.svtav1_params()))
        .collect::<Vec<_>>()
        .join(":");
    let vp9_cap = spec
        .rung
        .map_or_else(|| "0".to_string(), |r| format!("{}k", r.max_kbps));
    let args: Vec<&str> = match spec.codec {
        VideoCodec::H264 if spec.rung.is_some() => vec![
            "-c:v",
            "libx264",
            "-preset",
            &spec.preset,
            "-crf",
            &crf,
            "-x264-params",
            "scenecut=0:open-gop=0",
        ],
        VideoCodec::H264 => vec!["-c:v", "libx264", "-preset", &spec.preset, "-crf", &crf],
        VideoCodec::Hevc => vec![
            "-c:v",
            "libx265",
            "-preset",
            &spec.preset,
            "-crf",
            &crf,
            "-x265-params",
            &x265_params,
        ],
        VideoCodec::Av1 => {
            let mut av1 = vec![
                "-c:v",
                "libsvtav1",
                "-preset",
                svtav1_preset(&spec.preset),
                "-crf",
                &crf,
            ];
            if !svtav1_params.is_empty() {
                av1.extend(["-svtav1-params", &svtav1_params]);
            }
            av1
        }
        VideoCodec::Vp9 => vec![
            "-c:v",
            "libvpx-vp9",
            "-crf",
            &crf,
            "-b:v",
            &vp9_cap,
            "-deadline",
            "good",
            "-cpu-used",
            vp9_cpu_used(&spec.preset),
            "-row-mt",
            "1",
        ],
    };
    args.into_iter().map(String::from).collect()
}

/// Where an encode goes: our shards are video-only nut; shards for an
/// original-protocol master keep their audio in the container they came in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EncodeTarget<'a> {
    pub muxer: &'a str,
    pub keep_audio: bool,
    /// The spec's orientation is the whole truth: ffmpeg must not turn
    /// the input by a display matrix of its own (our NUT shards carry
    /// none; an original master's shard may, and is turned as its own
    /// workers' ffmpeg would).
    pub explicit_orientation: bool,
}

impl EncodeTarget<'static> {
    pub const SHARD: Self = Self {
        muxer: "nut",
        keep_audio: false,
        explicit_orientation: true,
    };
}

/// HDR (PQ or HLG) to SDR BT.709: to linear light, Hable's curve, back
/// to BT.709 (zscale and tonemap, in Debian's ffmpeg).
pub(crate) const TONEMAP: &str = "zscale=t=linear:npl=100,format=gbrpf32le,zscale=p=bt709,\
     tonemap=tonemap=hable:desat=0,zscale=t=bt709:m=bt709:r=tv,format=yuv420p";

/// How a shard's pictures are tone-mapped, turned upright and scaled to
/// the output size: shared with `quality`, which must treat the source
/// exactly as the encoder did to compare like with like.
pub(crate) fn picture_filter(
    tonemap: bool,
    orientation: Orientation,
    width: u32,
    height: u32,
) -> String {
    let steps = [
        upright_filter(tonemap, orientation),
        scale_filter(width, height),
    ];
    steps
        .into_iter()
        .filter(|s| !s.is_empty())
        .collect::<Vec<_>>()
        .join(",")
}

/// The steps before the scale: the tone map, then the turn upright
/// (empty when neither applies). Shared by every rung of a piece.
pub(crate) fn upright_filter(tonemap: bool, orientation: Orientation) -> String {
    [if tonemap { TONEMAP } else { "" }, orientation.filters()]
        .into_iter()
        .filter(|s| !s.is_empty())
        .collect::<Vec<_>>()
        .join(",")
}

/// The scale to the output size, square pixels.
pub(crate) fn scale_filter(width: u32, height: u32) -> String {
    format!("scale={width}:{height}:flags=bicubic,setsar=1")
}

/// The colour options of the output: BT.709 after a tone map, else the
/// source's tags.
fn colour_args(spec: &EncodeSpec) -> Vec<String> {
    if spec.tonemap {
        let sdr = Colour {
            primaries: "bt709".into(),
            transfer: "bt709".into(),
            matrix: "bt709".into(),
            range: "tv".into(),
            ..Colour::default()
        };
        return sdr.tag_args();
    }
    spec.colour.tag_args()
}

pub(crate) fn encode_args(spec: &EncodeSpec, keep_audio: bool) -> Vec<String> {
    let audio: Vec<String> = if keep_audio {
        let codec = if spec.format.is_webm() {
            "libopus"
        } else {
            "aac"
        };
        ["-map", "0:a:0?", "-c:a", codec].map(String::from).to_vec()
    } else {
        vec!["-an".into()]
    };
    let mut args: Vec<String> = vec!["-map".into(), "0:v:0".into()];
    args.extend(audio);
    args.extend([
        "-vf".into(),
        picture_filter(spec.tonemap, spec.orientation, spec.width, spec.height),
    ]);
    args.extend(video_output_args(spec));
    args
}

/// The options of one video output after its pictures are chosen: every
/// frame passed through with its own time, the pixel format, colour
/// tags, encoder, ladder cadence and threads.
pub(crate) fn video_output_args(spec: &EncodeSpec) -> Vec<String> {
    let mut args: Vec<String> = vec![
        "-sn".into(),
        "-dn".into(),
        "-fps_mode".into(),
        "passthrough".into(),
        "-enc_time_base".into(),
        "-1".into(),
        "-pix_fmt".into(),
        spec.pix_fmt.name().into(),
    ];
    args.extend(colour_args(spec));
    args.extend(video_codec_args(spec));
    if let Some(rung) = &spec.rung {
        args.extend(ladder_args(spec.codec, rung));
    }
    if spec.threads > 0 {
        args.extend(["-threads".into(), spec.threads.to_string()]);
    }
    args.extend(["-flags".into(), "+global_header".into()]);
    args
}

/// Encodes `input` to `output`, reporting progress after each ffmpeg
/// progress block.
pub async fn encode_shard(
    tools: &Tools,
    spec: &EncodeSpec,
    input: &Path,
    output: &Path,
    target: EncodeTarget<'_>,
    on_progress: impl FnMut(Progress),
) -> Result<(), MediaError> {
    let mut cmd = command(&tools.ffmpeg);
    cmd.args(["-nostdin", "-hide_banner", "-v", "error", "-y"]);
    if target.explicit_orientation {
        cmd.arg("-noautorotate");
    }
    cmd.arg("-i")
        .arg(input)
        .args(encode_args(spec, target.keep_audio))
        .args(["-progress", "pipe:1", "-nostats", "-f", target.muxer])
        .arg(output);
    run_with_progress(cmd, on_progress).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn args_keep_every_frame_and_pick_the_codec() {
        let mut spec = EncodeSpec {
            width: 320,
            height: 180,
            format: OutputFormat::Mp4,
            codec: VideoCodec::H264,
            pix_fmt: PixFmt::Yuv420p,
            preset: "veryfast".into(),
            crf: 23,
            threads: 1,
            orientation: Orientation::Upright,
            colour: Colour::default(),
            tonemap: false,
            quality_target: None,
            rung: None,
        };
        let args = encode_args(&spec, false).join(" ");
        assert!(
            args.contains("-fps_mode passthrough -enc_time_base -1"),
            "{args}"
        );
        assert!(args.contains("-vf scale=320:180"), "{args}");
        assert!(
            args.contains("-c:v libx264 -preset veryfast -crf 23"),
            "{args}"
        );
        assert!(args.contains("-an"), "{args}");
        spec.codec = VideoCodec::Hevc;
        let args = encode_args(&spec, false).join(" ");
        assert!(
            args.contains(
                "-c:v libx265 -preset veryfast -crf 23 -x265-params log-level=error:pools=1"
            ),
            "each x265 holds to its slot's threads: {args}"
        );
        spec.codec = VideoCodec::Av1;
        let args = encode_args(&spec, false).join(" ");
        assert!(
            args.contains("-c:v libsvtav1 -preset 10 -crf 23 -svtav1-params lp=1"),
            "{args}"
        );
        spec.threads = 0;
        let args = encode_args(&spec, false).join(" ");
        assert!(
            !args.contains("lp="),
            "0 threads: the encoder decides: {args}"
        );
        spec.threads = 1;
        spec.format = OutputFormat::Webm;
        spec.codec = VideoCodec::Vp9;
        let args = encode_args(&spec, false).join(" ");
        assert!(args.contains("-c:v libvpx-vp9"), "{args}");
        assert!(args.contains("-cpu-used 6"), "{args}");
        spec.orientation = Orientation::Clock;
        let turned = encode_args(&spec, false).join(" ");
        assert!(
            turned.contains("-vf transpose=clock,scale=320:180"),
            "{turned}"
        );
        let with_audio = encode_args(&spec, true).join(" ");
        assert!(
            with_audio.contains("-map 0:a:0? -c:a libopus") && !with_audio.contains("-an"),
            "{with_audio}"
        );
    }
}
