//! Streaming manifests: renders the HLS playlists and the DASH MPD of a
//! ladder job from its recorded [`Package`]. Pure, no I/O: the HTTP layer
//! reads the package from the job table and serves what these return, so
//! every node that applied the log serves the same manifests (a running
//! job's MPD differs only in the clock given to it).
//!
//! Layer 1 in docs/design.md's module map: uses only `jobs` (and, in
//! its test fixtures, `store::BlobRef`).
//!
//! Every URI is relative, so a signed prefix in the page's URL carries
//! over to every request a player makes. The layout under the package
//! root: `master.m3u8`, `manifest.mpd`, and per rendition
//! `{id}/media.m3u8`, `{id}/init.mp4`, `{id}/{n}.m4s` (`n` from 0).

// The data model. This line and the `BlobRef` one in `fixtures` are the
// only ones naming where it lives; `hls` and `dash` take it from here.
use crate::jobs::package::{Package, Rendition, RenditionKind, Segment};

pub mod dash;
pub mod hls;

/// `ticks / timescale` with `places` decimals, rounded half up, computed
/// in integers so the text follows from the ticks alone: a float cannot
/// hold every `u64` tick count, and it rounds an exact half by whichever
/// side its binary approximation fell on. A zero timescale (no init
/// segment read yet) reads as 0 seconds, like [`Rendition::seconds`].
fn decimal(ticks: u64, timescale: u32, places: u32) -> String {
    let scale = 10u128.pow(places);
    let scaled = if timescale == 0 {
        0
    } else {
        let ts = u128::from(timescale);
        (u128::from(ticks) * scale * 2 + ts) / (2 * ts)
    };
    let (whole, frac) = (scaled / scale, scaled % scale);
    if places == 0 {
        whole.to_string()
    } else {
        format!("{whole}.{frac:0width$}", width = places as usize)
    }
}

/// A rendition's picture, when it is a video rung.
fn picture(r: &Rendition) -> Option<(u32, u32, (u32, u32))> {
    match r.kind {
        RenditionKind::Video {
            width,
            height,
            frame_rate,
        } => Some((width, height, frame_rate)),
        RenditionKind::Audio { .. } => None,
    }
}

#[cfg(test)]
pub(crate) mod fixtures {
    //! Packages the HLS and DASH tests share.

    use super::{Package, Rendition, RenditionKind, Segment};
    // Where the blob reference lives (see the `use` at the top).
    use crate::store::BlobRef;

    pub const VIDEO_TS: u32 = 15360;
    pub const AUDIO_TS: u32 = 48000;

    /// Back-to-back segments from 0: `(duration ticks, bytes)` each.
    pub fn segments(parts: &[(u64, u64)]) -> Vec<Segment> {
        let mut start = 0;
        parts
            .iter()
            .map(|&(duration, size)| {
                let s = Segment {
                    blob: BlobRef {
                        sha256: "ab".repeat(32),
                        size,
                    },
                    start,
                    duration,
                };
                start += duration;
                s
            })
            .collect()
    }

    pub fn video(id: &str, (w, h): (u32, u32), codecs: &str, parts: &[(u64, u64)]) -> Rendition {
        Rendition {
            id: id.into(),
            kind: RenditionKind::Video {
                width: w,
                height: h,
                frame_rate: (30, 1),
            },
            codecs: codecs.into(),
            timescale: VIDEO_TS,
            nominal_bitrate: 1_000_000,
            init: Some(BlobRef {
                sha256: "cd".repeat(32),
                size: 800,
            }),
            segments: segments(parts),
            shards_packaged: 0,
        }
    }

    pub fn audio(id: &str, language: Option<&str>, name: &str, parts: &[(u64, u64)]) -> Rendition {
        Rendition {
            id: id.into(),
            kind: RenditionKind::Audio {
                language: language.map(String::from),
                name: name.into(),
                channels: 2,
                sample_rate: AUDIO_TS,
            },
            codecs: "mp4a.40.2".into(),
            timescale: AUDIO_TS,
            nominal_bitrate: 128_000,
            init: Some(BlobRef {
                sha256: "ef".repeat(32),
                size: 600,
            }),
            segments: segments(parts),
            shards_packaged: 0,
        }
    }

    pub fn package(renditions: Vec<Rendition>, finished: bool) -> Package {
        Package {
            packages: Default::default(),
            segment_seconds: 4,
            renditions,
            finished,
            first_playable_ms: None,
            holders: Vec::new(),
        }
    }

    /// 4 s of video ticks.
    pub const V4: u64 = 4 * VIDEO_TS as u64;

    /// A job half way through: 1080p has 3 segments, 720p 2, the audio 3
    /// (renditions are packaged independently).
    pub fn running() -> Package {
        package(
            vec![
                video(
                    "1080p",
                    (1920, 1080),
                    "avc1.640028",
                    &[(V4, 2_500_000), (V4, 2_000_000), (V4, 1_500_000)],
                ),
                video(
                    "720p",
                    (1280, 720),
                    "avc1.64001f",
                    &[(V4, 1_500_000), (V4, 1_000_000)],
                ),
                audio(
                    "audio",
                    Some("en"),
                    "English",
                    &[(192_000, 64_000), (191_488, 62_000), (192_000, 60_000)],
                ),
            ],
            false,
        )
    }

    /// A pseudo-random package from `seed` (xorshift, so a failure
    /// replays): 1-3 rungs, 0-2 audio tracks, 1-40 segments each, most of
    /// them the asked length; with `gaps`, some start after a hole.
    pub fn random_package(seed: u64, gaps: bool) -> Package {
        let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        let mut next = move |bound: u64| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state % bound.max(1)
        };
        let segment_seconds = 1 + next(10) as u32;
        let mut renditions = Vec::new();
        let rungs = 1 + next(3);
        for i in 0..rungs + next(3) {
            let timescale = match (i < rungs, next(3)) {
                (true, 0) => 90_000,
                (true, 1) => 12_800,
                (true, _) => VIDEO_TS,
                (false, 0) => 44_100,
                (false, _) => AUDIO_TS,
            };
            let full = u64::from(segment_seconds) * u64::from(timescale);
            let mut start = 0;
            let mut segments = Vec::new();
            for _ in 0..1 + next(40) {
                if gaps && next(6) == 0 {
                    start += 1 + next(u64::from(timescale));
                }
                let duration = if next(4) == 0 { 1 + next(full) } else { full };
                segments.push(Segment {
                    blob: BlobRef {
                        sha256: "ab".repeat(32),
                        size: 1 + next(3_000_000),
                    },
                    start,
                    duration,
                });
                start += duration;
            }
            let mut r = if i < rungs {
                let rate = [(30, 1), (30_000, 1001), (25, 1), (60, 1)][next(4) as usize];
                let mut r = video(&format!("r{i}"), (640, 360), "avc1.64001e", &[]);
                r.kind = RenditionKind::Video {
                    width: 640 * (3 - i as u32),
                    height: 360 * (3 - i as u32),
                    frame_rate: rate,
                };
                r
            } else {
                audio(&format!("audio-{i}"), Some("en"), "Main", &[])
            };
            r.timescale = timescale;
            r.segments = segments;
            renditions.push(r);
        }
        let mut p = package(renditions, next(2) == 0);
        p.segment_seconds = segment_seconds;
        p
    }

    /// The same job done: every rendition 10 s (4 + 4 + 2).
    pub fn finished() -> Package {
        let v = |id, size, codecs, scale: u64| {
            video(
                id,
                size,
                codecs,
                &[
                    (V4, 2_500_000 / scale),
                    (V4, 2_000_000 / scale),
                    (V4 / 2, 500_000 / scale),
                ],
            )
        };
        package(
            vec![
                v("1080p", (1920, 1080), "avc1.640028", 1),
                v("720p", (1280, 720), "avc1.64001f", 2),
                audio(
                    "audio",
                    Some("en"),
                    "English",
                    &[(192_000, 64_000), (192_000, 64_000), (96_000, 32_000)],
                ),
            ],
            true,
        )
    }
}
