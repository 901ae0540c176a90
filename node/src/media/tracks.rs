//! Every track besides the video: audio tracks (each copied when it fits
//! the container, else encoded: AAC for mp4/mkv/mov, Opus for webm),
//! subtitle tracks (kept where the container can carry them), with their
//! languages and titles. They are prepared once for the whole file, into
//! one audio file and one subtitle file, while the shards encode; the
//! join takes chapters and global metadata (title, creation_time, …)
//! straight from the source, which costs it only the source's header.
//!
//! [`tracks_of`] reads them from ffprobe's JSON and [`plan`] decides what
//! becomes of each (both pure); [`prepare_audio`] and
//! [`prepare_subtitles`] write the files.

use std::path::Path;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::run::{MediaError, Tools, command, run_lines};
use crate::params::{AudioChoice, OutputFormat};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TrackKind {
    Audio,
    Subtitle,
}

/// An audio or subtitle track of the source.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Track {
    /// The stream's index in the source file.
    pub index: u32,
    pub kind: TrackKind,
    pub codec: String,
    #[serde(default)]
    pub language: String,
    #[serde(default)]
    pub title: String,
    pub duration_seconds: Option<f64>,
}

impl Track {
    /// Subtitles drawn as pictures (DVD, Blu-ray, DVB): no text to
    /// convert, so only Matroska carries them.
    pub fn is_bitmap(&self) -> bool {
        matches!(
            self.codec.as_str(),
            "hdmv_pgs_subtitle" | "dvd_subtitle" | "dvb_subtitle" | "xsub"
        )
    }
}

fn tag(stream: &Value, name: &str) -> String {
    stream
        .get("tags")
        .and_then(|t| t.get(name))
        .and_then(Value::as_str)
        .unwrap_or("")
        .chars()
        .take(200)
        .collect()
}

/// The audio and subtitle tracks among ffprobe's `streams` (pure); a
/// cover picture is not a track. `duration` reads a stream's duration.
pub fn tracks_of(streams: &[Value], duration: impl Fn(&Value) -> Option<f64>) -> Vec<Track> {
    streams
        .iter()
        .filter_map(|s| {
            let kind = match s.get("codec_type").and_then(Value::as_str)? {
                "audio" => TrackKind::Audio,
                "subtitle" => TrackKind::Subtitle,
                _ => return None,
            };
            Some(Track {
                index: u32::try_from(s.get("index")?.as_u64()?).ok()?,
                kind,
                codec: s
                    .get("codec_name")
                    .and_then(Value::as_str)
                    .unwrap_or("unknown")
                    .to_string(),
                language: tag(s, "language"),
                title: tag(s, "title"),
                duration_seconds: duration(s),
            })
        })
        .take(64)
        .collect()
}

/// What becomes of one track.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlannedTrack {
    pub track: Track,
    /// Stream copy; else encoded with `codec` at `bitrate` (audio) or
    /// converted to `codec` at the join (subtitles).
    pub copy: bool,
    pub codec: String,
    pub bitrate: String,
}

/// Everything but the video, for one output.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct TracksPlan {
    pub audio: Vec<PlannedTrack>,
    pub subtitles: Vec<PlannedTrack>,
    /// Tracks left out and why (said in the job's message).
    pub dropped: Vec<String>,
}

impl TracksPlan {
    /// The audio file's extension: m4a for mp4/mov/mkv, mka for webm.
    pub fn audio_extension(format: OutputFormat) -> &'static str {
        if format.is_webm() { "mka" } else { "m4a" }
    }

    /// The longest planned audio track, which the audio file is cut to
    /// (encoder padding never makes it longer).
    pub fn audio_seconds(&self) -> Option<f64> {
        self.audio
            .iter()
            .filter_map(|t| t.track.duration_seconds)
            .reduce(f64::max)
    }
}

/// Decides what becomes of every track for `format` (pure).
pub fn plan(tracks: &[Track], format: OutputFormat, choice: AudioChoice) -> TracksPlan {
    let mut plan = TracksPlan::default();
    let audio = tracks.iter().filter(|t| t.kind == TrackKind::Audio);
    let kept: Vec<&Track> = match choice {
        AudioChoice::All => audio.collect(),
        AudioChoice::First => audio.take(1).collect(),
        AudioChoice::None => Vec::new(),
    };
    for track in kept {
        let fits = if format.is_webm() {
            matches!(track.codec.as_str(), "opus" | "vorbis")
        } else {
            track.codec == "aac"
        };
        let (codec, bitrate) = if format.is_webm() {
            ("libopus", "128k")
        } else {
            ("aac", "160k")
        };
        plan.audio.push(PlannedTrack {
            track: track.clone(),
            copy: fits,
            codec: if fits { "copy" } else { codec }.into(),
            bitrate: if fits { "" } else { bitrate }.into(),
        });
    }
    for track in tracks.iter().filter(|t| t.kind == TrackKind::Subtitle) {
        let target = match format {
            OutputFormat::Mkv => Some("copy"),
            _ if track.is_bitmap() => None,
            OutputFormat::Mp4 | OutputFormat::Mov => Some("mov_text"),
            OutputFormat::Webm => Some("webvtt"),
        };
        match target {
            Some(codec) => plan.subtitles.push(PlannedTrack {
                track: track.clone(),
                copy: codec == "copy" || codec == track.codec,
                codec: codec.into(),
                bitrate: String::new(),
            }),
            None => plan.dropped.push(format!(
                "subtitle track {} ({}{}) is drawn as pictures, which {} cannot carry: dropped (use --format mkv to keep it)",
                track.index,
                track.codec,
                if track.language.is_empty() {
                    String::new()
                } else {
                    format!(", {}", track.language)
                },
                format.extension()
            )),
        }
    }
    plan
}

/// Writes every planned audio track of `source` into `output` (one file,
/// tracks in plan order, each keeping its language and title).
pub async fn prepare_audio(
    tools: &Tools,
    source: &Path,
    plan: &TracksPlan,
    format: OutputFormat,
    output: &Path,
) -> Result<(), MediaError> {
    let mut cmd = command(&tools.ffmpeg);
    cmd.args(["-nostdin", "-hide_banner", "-v", "error", "-y", "-i"])
        .arg(source);
    for (n, planned) in plan.audio.iter().enumerate() {
        cmd.args(["-map", &format!("0:{}", planned.track.index)]);
        cmd.args([&format!("-c:a:{n}"), &planned.codec]);
        if !planned.copy {
            cmd.args([&format!("-b:a:{n}"), &planned.bitrate]);
        }
    }
    cmd.args(["-vn", "-sn", "-dn"]);
    if let Some(d) = plan.audio_seconds().filter(|d| *d > 0.0) {
        cmd.args(["-t", &format!("{d:.6}")]);
    }
    let container = if format.is_webm() { "matroska" } else { "mp4" };
    cmd.args(["-f", container]).arg(output);
    run_lines(cmd, |_| {}).await
}

/// Writes every planned subtitle track of `source`, as it is, into the
/// Matroska file `output` (converted, where needed, at the join).
pub async fn prepare_subtitles(
    tools: &Tools,
    source: &Path,
    plan: &TracksPlan,
    output: &Path,
) -> Result<(), MediaError> {
    let mut cmd = command(&tools.ffmpeg);
    cmd.args(["-nostdin", "-hide_banner", "-v", "error", "-y", "-i"])
        .arg(source);
    for planned in &plan.subtitles {
        cmd.args(["-map", &format!("0:{}", planned.track.index)]);
    }
    cmd.args(["-vn", "-an", "-dn", "-c:s", "copy", "-f", "matroska"])
        .arg(output);
    run_lines(cmd, |_| {}).await
}

#[cfg(test)]
#[path = "tracks_tests.rs"]
mod tests;
