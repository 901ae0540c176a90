//! Joining: encoded shards in index order through the concat demuxer with
//! each shard's exact duration, audio muxed from the one audio file, all
//! stream copy.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use super::run::{MediaError, Tools, command, run_lines};
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

/// Joins the shards listed in `list_path` (and `audio`, if any) into
/// `output`. HEVC in MP4/MOV is tagged `hvc1` (parameter sets in the
/// sample description), the tag Apple's players require.
pub async fn join(
    tools: &Tools,
    list_path: &Path,
    audio: Option<&Path>,
    (format, codec): (OutputFormat, VideoCodec),
    output: &Path,
) -> Result<(), MediaError> {
    let mut cmd = command(&tools.ffmpeg);
    cmd.args(["-nostdin", "-hide_banner", "-v", "error", "-y"])
        .args(["-f", "concat", "-safe", "0", "-i"])
        .arg(list_path);
    if let Some(audio) = audio {
        cmd.arg("-i").arg(audio);
    }
    cmd.args(["-map", "0:v:0"]);
    if audio.is_some() {
        cmd.args(["-map", "1:a:0"]);
    }
    cmd.args(["-c", "copy"]);
    if matches!(format, OutputFormat::Mp4 | OutputFormat::Mov) {
        cmd.args(["-movflags", "+faststart"]);
        if codec == VideoCodec::Hevc {
            cmd.args(["-tag:v", "hvc1"]);
        }
    }
    cmd.args(["-f", muxer(format)]).arg(output);
    run_lines(cmd, |_| {}).await
}

#[cfg(test)]
mod tests {
    use super::*;

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
