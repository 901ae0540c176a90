//! Audio, handled once for the whole file: copied when the source codec
//! fits the target container, else encoded (AAC for mp4/mkv/mov, Opus for
//! webm), and cut to the source audio's own duration so encoder padding
//! never makes it longer.

use std::path::Path;

use serde::{Deserialize, Serialize};

use super::probe::MediaInfo;
use super::run::{MediaError, Tools, command, run_lines};
use crate::params::OutputFormat;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum AudioPlan {
    /// The source has no audio: the output has none either.
    None,
    /// Stream-copy the source audio into `extension`.
    Copy {
        extension: String,
        duration_seconds: Option<f64>,
    },
    /// Encode with `codec` at `bitrate` into `extension`.
    Encode {
        codec: String,
        bitrate: String,
        extension: String,
        duration_seconds: Option<f64>,
    },
}

impl AudioPlan {
    pub fn extension(&self) -> Option<&str> {
        match self {
            Self::None => None,
            Self::Copy { extension, .. } | Self::Encode { extension, .. } => Some(extension),
        }
    }
}

/// Decides what to do with the source audio for `format` (pure).
pub fn audio_plan(info: &MediaInfo, format: OutputFormat) -> AudioPlan {
    let Some(audio) = &info.audio else {
        return AudioPlan::None;
    };
    let duration_seconds = audio.duration_seconds;
    if format.is_webm() {
        let extension = "mka".to_string();
        if matches!(audio.codec.as_str(), "opus" | "vorbis") {
            return AudioPlan::Copy {
                extension,
                duration_seconds,
            };
        }
        return AudioPlan::Encode {
            codec: "libopus".into(),
            bitrate: "128k".into(),
            extension,
            duration_seconds,
        };
    }
    let extension = "m4a".to_string();
    if audio.codec == "aac" {
        return AudioPlan::Copy {
            extension,
            duration_seconds,
        };
    }
    AudioPlan::Encode {
        codec: "aac".into(),
        bitrate: "160k".into(),
        extension,
        duration_seconds,
    }
}

/// Writes the output's audio track to `output` following `plan`.
pub async fn prepare_audio(
    tools: &Tools,
    source: &Path,
    plan: &AudioPlan,
    output: &Path,
) -> Result<(), MediaError> {
    let (codec_args, duration, container): (Vec<&str>, Option<f64>, &str) = match plan {
        AudioPlan::None => return Ok(()),
        AudioPlan::Copy {
            extension,
            duration_seconds,
        } => (
            vec!["-c:a", "copy"],
            *duration_seconds,
            container_of(extension),
        ),
        AudioPlan::Encode {
            codec,
            bitrate,
            extension,
            duration_seconds,
        } => (
            vec!["-c:a", codec, "-b:a", bitrate],
            *duration_seconds,
            container_of(extension),
        ),
    };
    let mut cmd = command(&tools.ffmpeg);
    cmd.args(["-nostdin", "-hide_banner", "-v", "error", "-y", "-i"])
        .arg(source)
        .args(["-map", "0:a:0", "-vn", "-sn", "-dn"])
        .args(codec_args);
    if let Some(d) = duration.filter(|d| *d > 0.0) {
        cmd.args(["-t", &format!("{d:.6}")]);
    }
    cmd.args(["-f", container]).arg(output);
    run_lines(cmd, |_| {}).await
}

fn container_of(extension: &str) -> &'static str {
    if extension == "mka" {
        "matroska"
    } else {
        "mp4"
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::probe::StreamInfo;

    fn info(audio: Option<&str>) -> MediaInfo {
        MediaInfo {
            format_name: "mov,mp4".into(),
            video: StreamInfo {
                codec: "h264".into(),
                duration_seconds: Some(3.0),
            },
            width: 64,
            height: 64,
            orientation: Default::default(),
            high_depth: false,
            colour: Default::default(),
            time_base: (1, 30),
            packets: vec![],
            video_end_seconds: 3.0,
            audio: audio.map(|c| StreamInfo {
                codec: c.into(),
                duration_seconds: Some(3.0),
            }),
        }
    }

    #[test]
    fn audio_is_copied_only_when_it_fits() {
        assert_eq!(audio_plan(&info(None), OutputFormat::Mp4), AudioPlan::None);
        assert!(matches!(
            audio_plan(&info(Some("aac")), OutputFormat::Mkv),
            AudioPlan::Copy { .. }
        ));
        assert!(
            matches!(audio_plan(&info(Some("aac")), OutputFormat::Webm), AudioPlan::Encode { ref codec, .. } if codec == "libopus")
        );
        assert!(matches!(
            audio_plan(&info(Some("opus")), OutputFormat::Webm),
            AudioPlan::Copy { .. }
        ));
        assert!(
            matches!(audio_plan(&info(Some("mp3")), OutputFormat::Mov), AudioPlan::Encode { ref codec, .. } if codec == "aac")
        );
    }
}
