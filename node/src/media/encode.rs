//! Encoding one shard: scale and re-encode the video with passthrough
//! frame timing, so every input frame becomes exactly one output frame.

use std::path::Path;

use serde::{Deserialize, Serialize};

use super::run::{MediaError, Progress, Tools, command, parse_progress_line, run_lines};
use crate::params::OutputFormat;

/// Everything a worker needs to encode a shard.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EncodeSpec {
    pub width: u32,
    pub height: u32,
    pub format: OutputFormat,
    pub preset: String,
    pub crf: u32,
    /// Encoder threads; 0 lets the encoder decide.
    pub threads: u32,
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

/// Where an encode goes: our shards are video-only nut; shards for an
/// original-protocol master keep their audio in the container they came in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EncodeTarget<'a> {
    pub muxer: &'a str,
    pub keep_audio: bool,
}

impl EncodeTarget<'static> {
    pub const SHARD: Self = Self {
        muxer: "nut",
        keep_audio: false,
    };
}

/// The pixel format of every encoded shard.
pub(crate) const PIX_FMT: &str = "yuv420p";

/// How a shard's pictures are scaled to the output size: shared with
/// `quality`, which must scale the source exactly as the encoder did to
/// compare like with like.
pub(crate) fn scale_filter(width: u32, height: u32) -> String {
    format!("scale={width}:{height}:flags=bicubic,setsar=1")
}

pub(crate) fn encode_args(spec: &EncodeSpec, keep_audio: bool) -> Vec<String> {
    let audio: Vec<String> = if keep_audio {
        let codec = if spec.format.is_vp9() {
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
    args.extend(vec![
        "-sn".into(),
        "-dn".into(),
        "-fps_mode".into(),
        "passthrough".into(),
        "-enc_time_base".into(),
        "-1".into(),
        "-vf".into(),
        scale_filter(spec.width, spec.height),
        "-pix_fmt".into(),
        PIX_FMT.into(),
    ]);
    let codec: Vec<String> = if spec.format.is_vp9() {
        vec![
            "-c:v",
            "libvpx-vp9",
            "-crf",
            &spec.crf.to_string(),
            "-b:v",
            "0",
            "-deadline",
            "good",
            "-cpu-used",
            vp9_cpu_used(&spec.preset),
            "-row-mt",
            "1",
        ]
        .into_iter()
        .map(String::from)
        .collect()
    } else {
        vec![
            "-c:v",
            "libx264",
            "-preset",
            &spec.preset,
            "-crf",
            &spec.crf.to_string(),
        ]
        .into_iter()
        .map(String::from)
        .collect()
    };
    args.extend(codec);
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
    mut on_progress: impl FnMut(Progress),
) -> Result<(), MediaError> {
    let mut cmd = command(&tools.ffmpeg);
    cmd.args(["-nostdin", "-hide_banner", "-v", "error", "-y", "-i"])
        .arg(input)
        .args(encode_args(spec, target.keep_audio))
        .args(["-progress", "pipe:1", "-nostats", "-f", target.muxer])
        .arg(output);
    let mut progress = Progress::default();
    run_lines(cmd, |line| {
        if parse_progress_line(line, &mut progress) {
            on_progress(progress);
        }
    })
    .await
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
            preset: "veryfast".into(),
            crf: 23,
            threads: 1,
        };
        let args = encode_args(&spec, false).join(" ");
        assert!(
            args.contains("-fps_mode passthrough -enc_time_base -1"),
            "{args}"
        );
        assert!(args.contains("scale=320:180"), "{args}");
        assert!(
            args.contains("-c:v libx264 -preset veryfast -crf 23"),
            "{args}"
        );
        assert!(args.contains("-an"), "{args}");
        spec.format = OutputFormat::Webm;
        let args = encode_args(&spec, false).join(" ");
        assert!(args.contains("-c:v libvpx-vp9"), "{args}");
        assert!(args.contains("-cpu-used 6"), "{args}");
        let with_audio = encode_args(&spec, true).join(" ");
        assert!(
            with_audio.contains("-map 0:a:0? -c:a libopus") && !with_audio.contains("-an"),
            "{with_audio}"
        );
    }
}
