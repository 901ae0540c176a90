//! Joining: encoded shards in index order through the concat demuxer with
//! each shard's exact duration, audio muxed from the one audio file,
//! subtitles from the one subtitle file (converted where the container
//! needs it), chapters and global metadata from the source; all else
//! stream copy.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use super::run::{MediaError, Tools, command, run_lines};
use super::tracks::TracksPlan;
use crate::params::{OutputFormat, VideoCodec};

/// An `ffconcat version 1.0` list: one `file` + `duration` per shard.
/// Paths are quoted for the concat demuxer (single quotes escaped).
pub fn ffconcat_list(shards: &[(PathBuf, f64)]) -> String {
    let mut list = String::from("ffconcat version 1.0\n");
    for (path, duration) in shards {
        let quoted = path.to_string_lossy().replace('\'', r"'\''");
        let _ = writeln!(list, "file '{quoted}'\nduration {duration:.6}");
    }
    list
}

fn muxer(format: OutputFormat) -> &'static str {
    match format {
        OutputFormat::Mp4 => "mp4",
        OutputFormat::Mov => "mov",
        OutputFormat::Mkv => "matroska",
        OutputFormat::Webm => "webm",
    }
}

/// What the join takes besides the shards.
pub struct SideInputs<'a> {
    /// Every planned audio track, in plan order.
    pub audio: Option<&'a Path>,
    /// Every planned subtitle track, as in the source.
    pub subtitles: Option<&'a Path>,
    /// The upload: chapters and global metadata only (ffmpeg reads its
    /// header, none of its packets).
    pub source: &'a Path,
    pub plan: &'a TracksPlan,
}

/// Joins the shards listed in `list_path` and the side inputs into
/// `output`. HEVC in MP4/MOV is tagged `hvc1` (parameter sets in the
/// sample description), the tag Apple's players require. MP4/MOV keep a
/// track's title as its handler name (what players show there).
pub async fn join(
    tools: &Tools,
    list_path: &Path,
    side: &SideInputs<'_>,
    (format, codec): (OutputFormat, VideoCodec),
    output: &Path,
) -> Result<(), MediaError> {
    let mut cmd = command(&tools.ffmpeg);
    cmd.args(["-nostdin", "-hide_banner", "-v", "error", "-y"])
        .args(["-f", "concat", "-safe", "0", "-i"])
        .arg(list_path);
    cmd.args(side_args(side, format));
    if matches!(format, OutputFormat::Mp4 | OutputFormat::Mov) {
        cmd.args(["-movflags", "+faststart"]);
        if codec == VideoCodec::Hevc {
            cmd.args(["-tag:v", "hvc1"]);
        }
    }
    cmd.args(["-f", muxer(format)]).arg(output);
    run_lines(cmd, |_| {}).await
}

/// The inputs after the shard list, the maps and the codecs (pure).
fn side_args(side: &SideInputs<'_>, format: OutputFormat) -> Vec<String> {
    let mut inputs: Vec<String> = Vec::new();
    let mut maps = vec!["-map".to_string(), "0:v:0".to_string()];
    let mut next = 1;
    for (path, selector) in [(side.audio, "a"), (side.subtitles, "s")] {
        if let Some(path) = path {
            inputs.extend(["-i".to_string(), path.to_string_lossy().into_owned()]);
            maps.extend(["-map".to_string(), format!("{next}:{selector}")]);
            next += 1;
        }
    }
    inputs.extend(["-i".to_string(), side.source.to_string_lossy().into_owned()]);
    maps.extend(
        [
            "-map_metadata",
            &next.to_string(),
            "-map_chapters",
            &next.to_string(),
        ]
        .map(String::from),
    );
    let mut args = inputs;
    args.extend(maps);
    args.extend(["-c".to_string(), "copy".to_string()]);
    if side.subtitles.is_some() {
        let subtitle_codec = match format {
            OutputFormat::Mp4 | OutputFormat::Mov => Some("mov_text"),
            OutputFormat::Webm => Some("webvtt"),
            OutputFormat::Mkv => None,
        };
        if let Some(codec) = subtitle_codec {
            args.extend(["-c:s".to_string(), codec.to_string()]);
        }
    }
    // The audio file is MP4 for all but WebM, which keeps no titles:
    // each track's title is set again from the plan.
    let key = match format {
        OutputFormat::Mp4 | OutputFormat::Mov => "handler_name",
        OutputFormat::Mkv | OutputFormat::Webm => "title",
    };
    let titled = [("a", &side.plan.audio), ("s", &side.plan.subtitles)];
    for (selector, tracks) in titled {
        for (n, planned) in tracks.iter().enumerate() {
            if !planned.track.title.is_empty() {
                args.push(format!("-metadata:s:{selector}:{n}"));
                args.push(format!("{key}={}", planned.track.title));
            }
        }
    }
    args
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::tracks::{PlannedTrack, Track, TrackKind};

    #[test]
    fn side_inputs_are_mapped_titled_and_converted() {
        let track = |index, kind, title: &str| PlannedTrack {
            track: Track {
                index,
                kind,
                codec: "aac".into(),
                language: "eng".into(),
                title: title.into(),
                duration_seconds: None,
            },
            copy: true,
            codec: "copy".into(),
            bitrate: String::new(),
        };
        let plan = TracksPlan {
            audio: vec![
                track(1, TrackKind::Audio, ""),
                track(2, TrackKind::Audio, "Commentary"),
            ],
            subtitles: vec![track(3, TrackKind::Subtitle, "Forced")],
            dropped: Vec::new(),
        };
        let side = SideInputs {
            audio: Some(Path::new("/s/audio.m4a")),
            subtitles: Some(Path::new("/s/subtitles.mkv")),
            source: Path::new("/s/source"),
            plan: &plan,
        };
        let args = side_args(&side, OutputFormat::Mp4).join(" ");
        assert_eq!(
            args,
            "-i /s/audio.m4a -i /s/subtitles.mkv -i /s/source -map 0:v:0 -map 1:a -map 2:s \
             -map_metadata 3 -map_chapters 3 -c copy -c:s mov_text \
             -metadata:s:a:1 handler_name=Commentary -metadata:s:s:0 handler_name=Forced"
        );
        let bare = SideInputs {
            audio: None,
            subtitles: None,
            source: Path::new("/s/source"),
            plan: &TracksPlan::default(),
        };
        assert_eq!(
            side_args(&bare, OutputFormat::Mkv).join(" "),
            "-i /s/source -map 0:v:0 -map_metadata 1 -map_chapters 1 -c copy"
        );
    }

    #[test]
    fn list_has_a_duration_per_shard_and_escapes_quotes() {
        let list = ffconcat_list(&[
            (PathBuf::from("/data/a.nut"), 10.0),
            (PathBuf::from("/data/it's.nut"), 3.3366),
        ]);
        assert_eq!(
            list,
            "ffconcat version 1.0\nfile '/data/a.nut'\nduration 10.000000\nfile '/data/it'\\''s.nut'\nduration 3.336600\n"
        );
    }
}
