//! Remuxing by stream copy into and out of fragmented MP4: a rung's
//! encoded shard or an audio track becomes fragments `cmaf` cuts into
//! segments, and a ladder's top rung becomes one ordinary MP4 again for
//! the clients that download a single file.

use std::path::Path;

use super::run::{MediaError, Tools, command, run_lines};

/// Where the fragments of a remux begin.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fragmenting {
    /// At every keyframe: a rung's keyframes are its segment starts.
    AtKeyframes,
    /// Every this many seconds (audio, where every frame is a keyframe).
    Every(u32),
}

/// The argv after the input (pure). Video keeps B-frame reordering as
/// composition offsets (`negative_cts_offsets` lets the packager shift
/// them so a segment's first picture is shown at its decode time).
pub fn fragment_args(stream: &str, how: Fragmenting) -> Vec<String> {
    let mut args: Vec<String> = ["-map", stream, "-c", "copy", "-dn", "-sn"]
        .map(String::from)
        .to_vec();
    match how {
        Fragmenting::AtKeyframes => args.extend(
            [
                "-movflags",
                "+frag_keyframe+empty_moov+default_base_moof+negative_cts_offsets",
            ]
            .map(String::from),
        ),
        Fragmenting::Every(seconds) => args.extend([
            "-movflags".into(),
            "+empty_moov+default_base_moof".into(),
            "-frag_duration".into(),
            (u64::from(seconds.max(1)) * 1_000_000).to_string(),
        ]),
    }
    args.extend(["-f".into(), "mp4".into()]);
    args
}

/// Remuxes `stream` (`0:v:0`, `0:a:1`) of `input` into the fragmented
/// MP4 `output`.
pub async fn fragment(
    tools: &Tools,
    input: &Path,
    stream: &str,
    how: Fragmenting,
    output: &Path,
) -> Result<(), MediaError> {
    let mut cmd = command(&tools.ffmpeg);
    cmd.args(["-nostdin", "-hide_banner", "-v", "error", "-y", "-i"])
        .arg(input)
        .args(fragment_args(stream, how))
        .arg(output);
    run_lines(cmd, |_| {}).await
}

/// One ordinary MP4 (moov up front) of a fragmented video and, when
/// there is one, the prepared audio file with every track.
pub async fn unfragment(
    tools: &Tools,
    video: &Path,
    audio: Option<&Path>,
    output: &Path,
) -> Result<(), MediaError> {
    let mut cmd = command(&tools.ffmpeg);
    cmd.args(["-nostdin", "-hide_banner", "-v", "error", "-y", "-i"])
        .arg(video);
    if let Some(audio) = audio {
        cmd.arg("-i").arg(audio);
    }
    cmd.args(["-map", "0:v:0"]);
    if audio.is_some() {
        cmd.args(["-map", "1:a"]);
    }
    cmd.args(["-c", "copy", "-movflags", "+faststart", "-f", "mp4"])
        .arg(output);
    run_lines(cmd, |_| {}).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn video_fragments_at_keyframes_audio_by_time() {
        let video = fragment_args("0:v:0", Fragmenting::AtKeyframes).join(" ");
        assert!(video.contains("-map 0:v:0 -c copy"), "{video}");
        assert!(
            video.contains("+frag_keyframe+empty_moov+default_base_moof"),
            "{video}"
        );
        let audio = fragment_args("0:a:1", Fragmenting::Every(4)).join(" ");
        assert!(audio.contains("-frag_duration 4000000"), "{audio}");
        assert!(!audio.contains("frag_keyframe"), "{audio}");
    }
}
