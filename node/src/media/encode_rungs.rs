//! Encoding several rungs of one ladder piece in one ffmpeg: the piece
//! is decoded (tone-mapped and turned upright) once and split to one
//! scale and encoder per rung. Each output is exactly what
//! [`super::encode_shard`] would make of that rung alone (same filters,
//! same options); only the decode is shared, about a sixth of the CPU of
//! three separate 720/480/360 encodes (docs/streaming.md, "Bundles").

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use super::encode::{EncodeSpec, scale_filter, upright_filter, video_output_args};
use super::run::{MediaError, Progress, Tools, command, run_with_progress};

/// The filter graph: one decode, its common steps, a split, and a scale
/// per output labelled `[v0]`, `[v1]`, … (pure).
pub fn rungs_graph(specs: &[EncodeSpec]) -> Result<String, MediaError> {
    let first = specs
        .first()
        .ok_or_else(|| MediaError::Invalid("a bundle of no rungs".into()))?;
    if specs
        .iter()
        .any(|s| s.tonemap != first.tonemap || s.orientation != first.orientation)
    {
        return Err(MediaError::Invalid(
            "the rungs of a bundle differ in tone map or orientation".into(),
        ));
    }
    let upright = upright_filter(first.tonemap, first.orientation);
    let head = if upright.is_empty() {
        String::new()
    } else {
        format!("{upright},")
    };
    let labels: String = (0..specs.len()).map(|i| format!("[s{i}]")).collect();
    let branches = specs
        .iter()
        .enumerate()
        .map(|(i, s)| format!("[s{i}]{}[v{i}]", scale_filter(s.width, s.height)));
    let mut graph = format!("[0:v:0]{head}split={}{labels}", specs.len());
    for branch in branches {
        graph.push(';');
        graph.push_str(&branch);
    }
    Ok(graph)
}

/// The whole argument list after the program name (pure): one input, the
/// graph, then per rung its map, options, muxer and output path.
pub fn rungs_args(
    specs: &[EncodeSpec],
    input: &Path,
    outputs: &[PathBuf],
    muxer: &str,
) -> Result<Vec<OsString>, MediaError> {
    if specs.len() != outputs.len() {
        return Err(MediaError::Invalid(format!(
            "{} rungs for {} outputs",
            specs.len(),
            outputs.len()
        )));
    }
    let mut args: Vec<OsString> = [
        "-nostdin",
        "-hide_banner",
        "-v",
        "error",
        "-y",
        "-progress",
        "pipe:1",
        "-nostats",
        "-noautorotate",
        "-i",
    ]
    .into_iter()
    .map(OsString::from)
    .collect();
    args.push(input.into());
    args.push("-filter_complex".into());
    args.push(rungs_graph(specs)?.into());
    for (i, (spec, output)) in specs.iter().zip(outputs).enumerate() {
        args.extend(["-map".into(), format!("[v{i}]").into(), "-an".into()]);
        args.extend(video_output_args(spec).into_iter().map(OsString::from));
        args.extend(["-f".into(), muxer.into(), output.into()]);
    }
    Ok(args)
}

/// Encodes `input` once per spec into the matching output (video only,
/// like a shard), reporting the decode's progress.
pub async fn encode_rungs(
    tools: &Tools,
    specs: &[EncodeSpec],
    input: &Path,
    outputs: &[PathBuf],
    muxer: &str,
    on_progress: impl FnMut(Progress),
) -> Result<(), MediaError> {
    let mut cmd = command(&tools.ffmpeg);
    cmd.args(rungs_args(specs, input, outputs, muxer)?);
    run_with_progress(cmd, on_progress).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::RungEncode;
    use crate::media::colour::Colour;
    use crate::media::orient::Orientation;
    use crate::params::{OutputFormat, PixFmt, VideoCodec};

    fn rung(height: u32, kbps: u32) -> EncodeSpec {
        EncodeSpec {
            width: height * 16 / 9,
            height,
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
            rung: Some(RungEncode {
                max_kbps: kbps,
                keyframe_seconds: 4,
                keyframe_frames: 120,
            }),
        }
    }

    #[test]
    fn one_decode_splits_to_a_scale_per_rung() {
        let graph = rungs_graph(&[rung(720, 3000), rung(360, 700)]).expect("graph");
        assert_eq!(
            graph,
            "[0:v:0]split=2[s0][s1];[s0]scale=1280:720:flags=bicubic,setsar=1[v0];\
             [s1]scale=640:360:flags=bicubic,setsar=1[v1]"
        );
        let mut turned = [rung(720, 3000), rung(360, 700)];
        for r in &mut turned {
            r.orientation = Orientation::Clock;
        }
        let graph = rungs_graph(&turned).expect("graph");
        assert!(
            graph.starts_with("[0:v:0]transpose=clock,split=2"),
            "turned once, before the split: {graph}"
        );
    }

    #[test]
    fn each_output_has_its_own_cap_and_cadence() {
        let outputs = [PathBuf::from("/s/a.nut"), PathBuf::from("/s/b.nut")];
        let args = rungs_args(
            &[rung(720, 3000), rung(360, 700)],
            Path::new("/s/in.nut"),
            &outputs,
            "nut",
        )
        .expect("args");
        let text = args
            .iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect::<Vec<_>>()
            .join(" ");
        let first = text.find("-map [v0] -an").expect("first output");
        let second = text.find("-map [v1] -an").expect("second output");
        assert!(first < second, "{text}");
        assert!(text[first..second].contains("-maxrate 3000k"), "{text}");
        assert!(text[second..].contains("-maxrate 700k"), "{text}");
        assert!(
            text[first..second].ends_with("-f nut /s/a.nut ") && text.ends_with("-f nut /s/b.nut"),
            "{text}"
        );
        assert!(text.matches("-fps_mode passthrough").count() == 2, "{text}");
    }

    #[test]
    fn rungs_that_differ_in_orientation_are_not_bundled() {
        let mut specs = [rung(720, 3000), rung(360, 700)];
        specs[1].orientation = Orientation::Clock;
        assert!(rungs_graph(&specs).is_err());
        assert!(rungs_graph(&[]).is_err());
        let err = rungs_args(&specs[..1], Path::new("in"), &[], "nut");
        assert!(err.is_err(), "one output per rung");
    }
}
