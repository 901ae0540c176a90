//! The streaming package of a ladder job as the cluster records it: one
//! set of CMAF (fragmented MP4) segments per rendition (each video rung,
//! each audio track), every segment a blob in the store. The HLS and DASH
//! manifests are rendered from this record on request (`streaming`), so
//! any node that applied the log serves the same manifests.
//!
//! Timestamps are in each rendition's own timescale. A segment's `start`
//! is its decode time (the `tfdt` written into it): the previous
//! segment's start plus its duration, from 0, with no gap and no overlap.

use serde::{Deserialize, Serialize};

use crate::store::BlobRef;

/// Which manifests a ladder job publishes.
pub use crate::params::Packages;

/// One media segment of a rendition.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Segment {
    pub blob: BlobRef,
    /// Decode time of its first sample, in the rendition's timescale.
    pub start: u64,
    /// Sum of its samples' durations, in the rendition's timescale.
    pub duration: u64,
}

/// What a rendition carries.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum RenditionKind {
    Video {
        width: u32,
        height: u32,
        /// Frames per second as a fraction (e.g. 30000/1001).
        frame_rate: (u32, u32),
    },
    Audio {
        /// ISO 639 language of the source track, when it had one.
        language: Option<String>,
        /// Shown by players in their audio menu.
        name: String,
        channels: u32,
        sample_rate: u32,
    },
}

/// One video rung or one audio track of the package.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Rendition {
    /// URL-safe name, used in paths and as the DASH `Representation@id`:
    /// `720p`, `audio`, `audio-2`.
    pub id: String,
    pub kind: RenditionKind,
    /// RFC 6381 codec string read from the init segment (`avc1.64001f`,
    /// `mp4a.40.2`); empty until the init segment exists.
    pub codecs: String,
    /// Ticks per second of `Segment::start` and `Segment::duration`.
    pub timescale: u32,
    /// The encoder's bitrate cap (video) or nominal rate (audio), bits/s:
    /// what manifests announce until segments are measured.
    pub nominal_bitrate: u64,
    pub init: Option<BlobRef>,
    /// Published in order: segment `n` is `segments[n]`.
    pub segments: Vec<Segment>,
    /// Video: shards of the job whose segments are all published (a
    /// resumed packager continues with the next one). Audio: 1 once
    /// every segment is published.
    pub shards_packaged: u32,
}

impl Rendition {
    pub fn is_video(&self) -> bool {
        matches!(self.kind, RenditionKind::Video { .. })
    }

    /// Decode time where the next segment starts.
    pub fn end(&self) -> u64 {
        self.segments.last().map_or(0, |s| s.start + s.duration)
    }

    /// Seconds published so far.
    pub fn seconds(&self) -> f64 {
        if self.timescale == 0 {
            return 0.0;
        }
        self.end() as f64 / self.timescale as f64
    }

    /// Largest segment bitrate, bits/s (HLS `BANDWIDTH`); the nominal
    /// rate until a segment exists.
    pub fn peak_bitrate(&self) -> u64 {
        self.segments
            .iter()
            .filter(|s| s.duration > 0)
            .map(|s| s.blob.size * 8 * self.timescale as u64 / s.duration)
            .max()
            .unwrap_or(self.nominal_bitrate)
    }

    /// Bits over seconds of every published segment (HLS
    /// `AVERAGE-BANDWIDTH`); the nominal rate until a segment exists.
    pub fn average_bitrate(&self) -> u64 {
        let (bytes, ticks) = self
            .segments
            .iter()
            .fold((0u64, 0u64), |(b, t), s| (b + s.blob.size, t + s.duration));
        if ticks == 0 {
            return self.nominal_bitrate;
        }
        bytes * 8 * self.timescale as u64 / ticks
    }
}

/// The package of a ladder job.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Package {
    pub packages: Packages,
    /// The segment length asked for (the last segment of each shard may
    /// be shorter).
    pub segment_seconds: u32,
    /// Video rungs, highest first, then the audio tracks.
    pub renditions: Vec<Rendition>,
    /// Every rendition is complete and the job finished: manifests are
    /// final (HLS `VOD` with `ENDLIST`, DASH `static`).
    pub finished: bool,
    /// When every rung first had a segment (unix ms): the job's time to
    /// first playable segment is this minus its upload's acceptance.
    pub first_playable_ms: Option<u64>,
    /// Nodes that were sent blobs of the package (the master that cut
    /// them and the copies it pushed): where a node without a segment
    /// fetches it from.
    #[serde(default)]
    pub holders: Vec<String>,
}

impl Package {
    pub fn rendition(&self, id: &str) -> Option<&Rendition> {
        self.renditions.iter().find(|r| r.id == id)
    }

    pub fn video(&self) -> impl Iterator<Item = &Rendition> {
        self.renditions.iter().filter(|r| r.is_video())
    }

    pub fn audio(&self) -> impl Iterator<Item = &Rendition> {
        self.renditions.iter().filter(|r| !r.is_video())
    }

    /// Every rendition has its init segment and at least one segment: a
    /// player can start.
    pub fn playable(&self) -> bool {
        !self.renditions.is_empty()
            && self
                .renditions
                .iter()
                .all(|r| r.init.is_some() && !r.segments.is_empty())
    }

    /// HLS `#EXT-X-TARGETDURATION`: the longest segment rounded up, at
    /// least the asked segment length (constant while segments stay
    /// within it, as an EVENT playlist needs).
    pub fn target_duration(&self) -> u32 {
        let longest = self
            .renditions
            .iter()
            .flat_map(|r| {
                r.segments
                    .iter()
                    .map(move |s| s.duration as f64 / r.timescale.max(1) as f64)
            })
            .fold(0.0f64, f64::max);
        (longest.ceil() as u32).max(self.segment_seconds).max(1)
    }

    /// Every blob the package refers to.
    pub fn blobs(&self) -> impl Iterator<Item = &BlobRef> {
        self.renditions
            .iter()
            .flat_map(|r| r.init.iter().chain(r.segments.iter().map(|s| &s.blob)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn segment(size: u64, start: u64, duration: u64) -> Segment {
        Segment {
            blob: BlobRef {
                sha256: "ab".repeat(32),
                size,
            },
            start,
            duration,
        }
    }

    fn rung(segments: Vec<Segment>) -> Rendition {
        Rendition {
            id: "720p".into(),
            kind: RenditionKind::Video {
                width: 1280,
                height: 720,
                frame_rate: (30, 1),
            },
            codecs: "avc1.64001f".into(),
            timescale: 15360,
            nominal_bitrate: 3_000_000,
            init: None,
            segments,
            shards_packaged: 0,
        }
    }

    #[test]
    fn bitrates_are_measured_once_segments_exist() {
        assert_eq!(rung(vec![]).peak_bitrate(), 3_000_000);
        assert_eq!(rung(vec![]).average_bitrate(), 3_000_000);
        // 1 MB over 4 s, then 0.25 MB over 2 s.
        let r = rung(vec![
            segment(1_000_000, 0, 4 * 15360),
            segment(250_000, 4 * 15360, 2 * 15360),
        ]);
        assert_eq!(r.peak_bitrate(), 2_000_000);
        assert_eq!(r.average_bitrate(), 1_666_666);
        assert_eq!(r.end(), 6 * 15360);
        assert!((r.seconds() - 6.0).abs() < 1e-9);
    }

    #[test]
    fn target_duration_covers_the_longest_segment() {
        let package = |segments| Package {
            packages: Packages::default(),
            segment_seconds: 4,
            renditions: vec![rung(segments)],
            finished: false,
            first_playable_ms: None,
            holders: Vec::new(),
        };
        assert_eq!(package(vec![]).target_duration(), 4);
        assert_eq!(
            package(vec![segment(1, 0, 4 * 15360 + 512)]).target_duration(),
            5
        );
        assert!(!package(vec![segment(1, 0, 15360)]).playable());
    }
}
