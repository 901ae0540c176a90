//! Describing an input: ffprobe's JSON for streams and format, and the
//! video packet list (decode order) from which shards are planned.

use std::path::Path;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::colour::Colour;
use super::orient::Orientation;
use super::packets::{MAX_FRAMES, Packet};
use super::run::{MediaError, Tools, command, run_lines, run_output};
use super::tracks::{Track, tracks_of};
use crate::params::MAX_DIMENSION;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StreamInfo {
    pub codec: String,
    pub duration_seconds: Option<f64>,
}

/// What we know about an input after probing it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MediaInfo {
    pub format_name: String,
    pub video: StreamInfo,
    /// Stored size of the pictures (before `orientation`).
    pub width: u32,
    pub height: u32,
    /// How the pictures are turned for display (a phone's portrait).
    #[serde(default)]
    pub orientation: Orientation,
    /// More than 8 bits per sample (a 10-bit HDR source).
    #[serde(default)]
    pub high_depth: bool,
    /// Colour tags and HDR10 metadata.
    #[serde(default)]
    pub colour: Colour,
    /// Video stream time base as (num, den).
    pub time_base: (i64, i64),
    pub packets: Vec<Packet>,
    /// End of the video stream in seconds (last pts + duration).
    pub video_end_seconds: f64,
    /// The first audio track (what the output's audio is checked with
    /// when the plan keeps no list of tracks).
    pub audio: Option<StreamInfo>,
    /// Every audio and subtitle track (empty in records from before
    /// tracks were listed: then the first audio track is the only one).
    #[serde(default)]
    pub tracks: Vec<Track>,
}

impl MediaInfo {
    pub fn frames(&self) -> u64 {
        self.packets.len() as u64
    }

    /// The size the video is displayed at (the stored size, turned).
    pub fn displayed_size(&self) -> (u32, u32) {
        self.orientation.displayed(self.width, self.height)
    }

    pub fn seconds(&self, ticks: i64) -> f64 {
        ticks as f64 * self.time_base.0 as f64 / self.time_base.1 as f64
    }

    /// First presentation time of the video, in seconds.
    pub fn video_start_seconds(&self) -> f64 {
        let first = self.packets.iter().filter_map(|p| p.pts).min();
        first.map(|t| self.seconds(t)).unwrap_or(0.0)
    }
}

fn number(value: Option<&Value>) -> Option<f64> {
    match value? {
        Value::String(s) => s.parse().ok(),
        Value::Number(n) => n.as_f64(),
        _ => None,
    }
}

/// "HH:MM:SS.fraction" as written in Matroska DURATION tags.
fn clock_seconds(text: &str) -> Option<f64> {
    let mut parts = text.split(':');
    let (h, m, s) = (parts.next()?, parts.next()?, parts.next()?);
    Some(h.parse::<f64>().ok()? * 3600.0 + m.parse::<f64>().ok()? * 60.0 + s.parse::<f64>().ok()?)
}

fn stream_duration(stream: &Value) -> Option<f64> {
    number(stream.get("duration")).or_else(|| {
        let tags = stream.get("tags")?;
        let tag = tags.get("DURATION").or_else(|| tags.get("duration"))?;
        clock_seconds(tag.as_str()?)
    })
}

fn parse_time_base(text: &str) -> Option<(i64, i64)> {
    let (num, den) = text.split_once('/')?;
    let (num, den) = (num.parse().ok()?, den.parse().ok()?);
    (num > 0 && den > 0).then_some((num, den))
}

/// Parses one `pts,dts,duration,flags` CSV row.
pub(crate) fn parse_packet_row(line: &str) -> Option<Packet> {
    let mut fields = line.split(',');
    let pts = fields.next()?.trim().parse().ok();
    let _dts = fields.next()?;
    let duration = fields.next()?.trim().parse().ok();
    let flags = fields.next()?;
    Some(Packet {
        pts,
        duration,
        key: flags.contains('K'),
    })
}

/// The stream-level part of [`probe`]: format, video and audio streams.
#[derive(Debug)]
struct Description {
    format_name: String,
    video: StreamInfo,
    width: u32,
    height: u32,
    orientation: Orientation,
    high_depth: bool,
    colour: Colour,
    time_base: (i64, i64),
    video_end: Option<f64>,
    audio: Option<StreamInfo>,
    tracks: Vec<Track>,
}

fn describe(json: &str) -> Result<Description, MediaError> {
    let root: Value = serde_json::from_str(json)
        .map_err(|e| MediaError::Invalid(format!("unreadable ffprobe output: {e}")))?;
    let streams = root
        .get("streams")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let of_type = |kind: &str| {
        streams.iter().find(|s| {
            s.get("codec_type").and_then(Value::as_str) == Some(kind)
                && s.get("disposition")
                    .and_then(|d| d.get("attached_pic"))
                    .and_then(Value::as_i64)
                    != Some(1)
        })
    };
    let video = of_type("video")
        .ok_or_else(|| MediaError::Invalid("no video stream in the input".into()))?;
    let codec = |s: &Value| {
        s.get("codec_name")
            .and_then(Value::as_str)
            .unwrap_or("unknown")
            .to_string()
    };
    let width = video.get("width").and_then(Value::as_u64).unwrap_or(0);
    let height = video.get("height").and_then(Value::as_u64).unwrap_or(0);
    if width == 0 || height == 0 {
        return Err(MediaError::Invalid(format!(
            "video stream has no usable size ({width}x{height})"
        )));
    }
    if width > MAX_DIMENSION as u64 || height > MAX_DIMENSION as u64 {
        return Err(MediaError::Invalid(format!(
            "video is {width}x{height}, larger than the {MAX_DIMENSION}x{MAX_DIMENSION} vidshard accepts"
        )));
    }
    if let Err(too_big) = crate::params::check_pixels(width, height) {
        return Err(MediaError::Invalid(format!("video is {too_big}")));
    }
    let orientation =
        Orientation::of_stream(video).map_err(|odd| MediaError::Invalid(odd.to_string()))?;
    let time_base = video
        .get("time_base")
        .and_then(Value::as_str)
        .and_then(parse_time_base)
        .ok_or_else(|| MediaError::Invalid("video stream has no time base".into()))?;
    let video_info = StreamInfo {
        codec: codec(video),
        duration_seconds: stream_duration(video),
    };
    let start = number(video.get("start_time"));
    let format = root.get("format");
    let format_name = format
        .and_then(|f| f.get("format_name"))
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    let format_duration = number(format.and_then(|f| f.get("duration")));
    let video_end = match (start, video_info.duration_seconds) {
        (Some(s), Some(d)) => Some(s + d),
        _ => format_duration,
    };
    let audio = of_type("audio").map(|a| StreamInfo {
        codec: codec(a),
        duration_seconds: stream_duration(a).or(format_duration),
    });
    let tracks = tracks_of(&streams, |s| stream_duration(s).or(format_duration));
    Ok(Description {
        format_name,
        video: video_info,
        width: width as u32,
        height: height as u32,
        orientation,
        high_depth: video
            .get("pix_fmt")
            .and_then(Value::as_str)
            .is_some_and(crate::params::is_high_depth),
        colour: Colour::of_stream(video),
        time_base,
        video_end,
        audio,
        tracks,
    })
}

/// Probes `path`: streams, size, and every video packet. Fails with
/// ffprobe's own reason for files that are not video. An MP4/MOV's packet
/// table comes from its index (`mp4index`, read while ffprobe describes
/// the streams); other inputs are listed by ffprobe, which reads them
/// whole.
pub async fn probe(tools: &Tools, path: &Path) -> Result<MediaInfo, MediaError> {
    let mut cmd = command(&tools.ffprobe);
    cmd.args([
        "-v",
        "error",
        "-print_format",
        "json",
        "-show_format",
        "-show_streams",
    ])
    .arg(path);
    let describing = run_output(cmd, 4 << 20);
    // The index of an MP4/MOV gives the packet table without reading the
    // file; the description is read meanwhile.
    let (json, index) = tokio::join!(describing, super::mp4index::read_index(path));
    // The description's error names what is wrong with a non-video file.
    let Description {
        format_name,
        video,
        width,
        height,
        orientation,
        high_depth,
        mut colour,
        time_base,
        video_end: stream_end,
        audio,
        tracks,
    } = describe(&json?)?;
    // HEVC and AV1 carry HDR10 metadata in the stream, not the container:
    // read from the first frame.
    if colour.is_hdr()
        && (colour.mastering.is_none() || colour.light.is_none())
        && let Some(frame) = first_frame(tools, path).await
    {
        colour.take_side_data(&frame);
    }
    let from_index = index
        .filter(|t| format_name.contains("mp4") && time_base == (1, t.timescale as i64))
        .map(|t| t.packets);
    let packets = match from_index {
        Some(packets) => packets,
        None => list_packets(tools, path).await?,
    };
    let tb = time_base.0 as f64 / time_base.1 as f64;
    let packet_end = if packets
        .iter()
        .all(|p| p.pts.is_some() && p.duration.is_some_and(|d| d > 0))
    {
        packets
            .iter()
            .filter_map(|p| Some((p.pts? + p.duration?) as f64 * tb))
            .reduce(f64::max)
    } else {
        None
    };
    let video_end_seconds = packet_end
        .or(stream_end)
        .ok_or_else(|| MediaError::Invalid("cannot tell the video's duration".into()))?;
    Ok(MediaInfo {
        format_name,
        video,
        width,
        height,
        orientation,
        high_depth,
        colour,
        time_base,
        packets,
        video_end_seconds,
        audio,
        tracks,
    })
}

/// The first video frame of `path` as ffprobe describes it (its side
/// data holds HDR10 metadata); None when it cannot be read.
async fn first_frame(tools: &Tools, path: &Path) -> Option<Value> {
    let mut cmd = command(&tools.ffprobe);
    cmd.args([
        "-v",
        "error",
        "-select_streams",
        "v:0",
        "-read_intervals",
        "%+#1",
    ])
    .args(["-show_frames", "-of", "json"])
    .arg(path);
    let json = run_output(cmd, 1 << 20).await.ok()?;
    let root: Value = serde_json::from_str(&json).ok()?;
    root.get("frames")?.as_array()?.first().cloned()
}

/// Every video packet of `path` in decode order, listed by ffprobe (reads
/// the whole file); at most [`MAX_FRAMES`].
pub async fn list_packets(tools: &Tools, path: &Path) -> Result<Vec<Packet>, MediaError> {
    let mut cmd = command(&tools.ffprobe);
    cmd.args([
        "-v",
        "error",
        "-select_streams",
        "v:0",
        "-show_entries",
        "packet=pts,dts,duration,flags",
        "-of",
        "csv=p=0",
    ])
    .arg(path);
    let mut packets = Vec::new();
    let mut overflow = false;
    let listing = run_lines(cmd, |line| {
        if packets.len() >= MAX_FRAMES {
            overflow = true;
        } else if let Some(p) = parse_packet_row(line) {
            packets.push(p);
        }
    });
    listing.await?;
    if overflow {
        return Err(MediaError::Invalid(format!(
            "video has more than {MAX_FRAMES} frames"
        )));
    }
    if packets.is_empty() {
        return Err(MediaError::Invalid("video stream has no frames".into()));
    }
    Ok(packets)
}

/// What a finished file (encoded shard or output) holds, for verification.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Inspection {
    pub frames: u64,
    pub width: u32,
    pub height: u32,
    pub codec: String,
    /// ffmpeg's name of the video's pixel format.
    #[serde(default)]
    pub pix_fmt: String,
    /// (codec, duration in seconds) of the first audio stream.
    pub audio: Option<(String, Option<f64>)>,
    /// Every audio track's duration, in order.
    #[serde(default)]
    pub audio_tracks: Vec<Option<f64>>,
    /// Subtitle tracks.
    #[serde(default)]
    pub subtitles: u32,
}

/// Counts the video frames (packets) of a file and reads its size, codec
/// and audio duration.
pub async fn inspect(tools: &Tools, path: &Path) -> Result<Inspection, MediaError> {
    let mut cmd = command(&tools.ffprobe);
    cmd.args([
        "-v",
        "error",
        "-count_packets",
        "-show_entries",
        "stream=codec_type,codec_name,width,height,pix_fmt,nb_read_packets,duration:stream_tags=DURATION",
        "-of",
        "json",
    ])
    .arg(path);
    let json = run_output(cmd, 1 << 20).await?;
    let root: Value = serde_json::from_str(&json)
        .map_err(|e| MediaError::Invalid(format!("unreadable ffprobe output: {e}")))?;
    let streams = root
        .get("streams")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let kind = |s: &&Value, k: &str| s.get("codec_type").and_then(Value::as_str) == Some(k);
    let video = streams
        .iter()
        .find(|s| kind(s, "video"))
        .ok_or_else(|| MediaError::Invalid(format!("{} has no video stream", path.display())))?;
    let codec = |s: &Value| {
        s.get("codec_name")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string()
    };
    Ok(Inspection {
        frames: number(video.get("nb_read_packets")).unwrap_or(0.0) as u64,
        width: video.get("width").and_then(Value::as_u64).unwrap_or(0) as u32,
        height: video.get("height").and_then(Value::as_u64).unwrap_or(0) as u32,
        codec: codec(video),
        pix_fmt: video
            .get("pix_fmt")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string(),
        audio: streams
            .iter()
            .find(|s| kind(s, "audio"))
            .map(|a| (codec(a), stream_duration(a))),
        audio_tracks: streams
            .iter()
            .filter(|s| kind(s, "audio"))
            .map(stream_duration)
            .collect(),
        subtitles: streams.iter().filter(|s| kind(s, "subtitle")).count() as u32,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packet_rows_parse_with_missing_values() {
        assert_eq!(
            parse_packet_row("1024,0,512,K_"),
            Some(Packet {
                pts: Some(1024),
                duration: Some(512),
                key: true
            })
        );
        assert_eq!(
            parse_packet_row("N/A,N/A,N/A,__"),
            Some(Packet {
                pts: None,
                duration: None,
                key: false
            })
        );
        assert_eq!(parse_packet_row("garbage"), None);
    }

    #[test]
    fn description_rejects_absurd_sizes_and_missing_video() {
        let absurd = r#"{"streams":[{"codec_type":"video","codec_name":"h264","width":100000,"height":100000,"time_base":"1/30"}],"format":{}}"#;
        assert!(
            describe(absurd)
                .unwrap_err()
                .to_string()
                .contains("100000x100000")
        );
        let audio_only = r#"{"streams":[{"codec_type":"audio","codec_name":"aac"}],"format":{}}"#;
        assert!(
            describe(audio_only)
                .unwrap_err()
                .to_string()
                .contains("no video")
        );
    }

    #[test]
    fn matroska_duration_tags_are_read() {
        assert_eq!(clock_seconds("00:00:25.500000000"), Some(25.5));
        let mkv = r#"{"streams":[{"codec_type":"video","codec_name":"h264","width":64,"height":64,"time_base":"1/1000","start_time":"0.000"},
            {"codec_type":"audio","codec_name":"opus","tags":{"DURATION":"00:00:03.000000000"}}],"format":{"duration":"3.01","format_name":"matroska,webm"}}"#;
        let d = describe(mkv).expect("valid");
        assert_eq!(d.time_base, (1, 1000));
        assert_eq!(d.video_end, Some(3.01));
        assert_eq!(d.audio.and_then(|a| a.duration_seconds), Some(3.0));
    }
}
