//! Planning a ladder job (pure): the rungs' encode specs, one task per
//! (piece of the source × rung), and the package's renditions before any
//! segment exists. Tasks are ordered piece by piece, so a 3-rung job on
//! 3 machines keeps all of them busy from its first piece on.

use crate::jobs::package::{Package, Rendition, RenditionKind};
use crate::jobs::{PlannedShard, RungTask};
use crate::media::{EncodeSpec, RungEncode, TracksPlan};
use crate::params::{Ladder, Rung};

/// Nominal rate of an AAC audio rendition, bits/s (what `prepare_audio`
/// encodes to; a copied track announces the same until measured).
const AUDIO_BITRATE: u64 = 160_000;

/// Shard length for a ladder: a whole number of segments, at least one,
/// so that only a shard's last segment can be short (and most have none).
pub fn shard_seconds(asked: f64, segment_seconds: u32) -> f64 {
    let segment = f64::from(segment_seconds.max(1));
    (asked / segment).round().max(1.0) * segment
}

/// The frame rate as a fraction (pure): the usual NTSC and integer rates
/// when within 0.01 fps, else thousandths.
pub fn frame_rate(frames: u64, seconds: f64) -> (u32, u32) {
    if frames == 0 || seconds <= 0.0 {
        return (30, 1);
    }
    let fps = frames as f64 / seconds;
    for (num, den) in [(24000, 1001), (30000, 1001), (60000, 1001)] {
        if (fps - f64::from(num) / f64::from(den)).abs() < 0.01 {
            return (num, den);
        }
    }
    if (fps - fps.round()).abs() < 0.01 {
        return (fps.round().max(1.0) as u32, 1);
    }
    ((fps * 1000.0).round().max(1.0) as u32, 1000)
}

/// One encode spec per rung: the job's spec at the rung's size, with its
/// bitrate cap and keyframes every segment.
pub fn rung_specs(
    base: &EncodeSpec,
    rungs: &[Rung],
    ladder: &Ladder,
    rate: (u32, u32),
) -> Vec<EncodeSpec> {
    let fps = f64::from(rate.0) / f64::from(rate.1.max(1));
    let keyframe_frames = (fps * f64::from(ladder.segment_seconds)).round().max(1.0) as u32;
    rungs
        .iter()
        .map(|rung| EncodeSpec {
            width: rung.width,
            height: rung.height,
            rung: Some(RungEncode {
                max_kbps: rung.max_kbps,
                keyframe_seconds: ladder.segment_seconds,
                keyframe_frames,
            }),
            ..base.clone()
        })
        .collect()
}

/// The tasks of a ladder: every piece at every rung, piece by piece.
pub fn tasks(pieces: &[PlannedShard], rungs: usize) -> Vec<PlannedShard> {
    pieces
        .iter()
        .enumerate()
        .flat_map(|(piece, planned)| {
            (0..rungs).map(move |rung| PlannedShard {
                rung: Some(RungTask {
                    piece: piece as u32,
                    rung: rung as u32,
                }),
                ..planned.clone()
            })
        })
        .collect()
}

/// The package's renditions before any segment: each rung, then each
/// kept audio track.
pub fn package(ladder: &Ladder, rungs: &[Rung], tracks: &TracksPlan, rate: (u32, u32)) -> Package {
    let video = rungs.iter().map(|rung| Rendition {
        id: rung.name(),
        kind: RenditionKind::Video {
            width: rung.width,
            height: rung.height,
            frame_rate: rate,
        },
        codecs: String::new(),
        timescale: 0,
        nominal_bitrate: u64::from(rung.max_kbps) * 1000,
        init: None,
        segments: Vec::new(),
        shards_packaged: 0,
    });
    let audio = tracks.audio.iter().enumerate().map(|(n, planned)| {
        let track = &planned.track;
        // "und" is ffmpeg's word for none.
        let language = Some(track.language.clone()).filter(|l| !l.is_empty() && l != "und");
        Rendition {
            id: if n == 0 {
                "audio".into()
            } else {
                format!("audio-{}", n + 1)
            },
            kind: RenditionKind::Audio {
                name: audio_name(n, &track.title, language.as_deref().unwrap_or("")),
                language,
                channels: 2,
                sample_rate: 48_000,
            },
            codecs: String::new(),
            timescale: 0,
            nominal_bitrate: AUDIO_BITRATE,
            init: None,
            segments: Vec::new(),
            shards_packaged: 0,
        }
    });
    Package {
        packages: ladder.packages,
        segment_seconds: ladder.segment_seconds,
        renditions: video.chain(audio).collect(),
        finished: false,
        first_playable_ms: None,
        holders: Vec::new(),
    }
}

/// What a player's audio menu shows: the track's title, else its
/// language, else its number.
fn audio_name(n: usize, title: &str, language: &str) -> String {
    if !title.is_empty() {
        title.to_string()
    } else if !language.is_empty() {
        language.to_string()
    } else {
        format!("Audio {}", n + 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_are_whole_segments() {
        assert_eq!(shard_seconds(10.0, 4), 12.0);
        assert_eq!(shard_seconds(10.0, 6), 12.0);
        assert_eq!(shard_seconds(2.0, 4), 4.0);
        assert_eq!(shard_seconds(10.0, 10), 10.0);
    }

    #[test]
    fn frame_rates_snap_to_the_usual_fractions() {
        assert_eq!(frame_rate(300, 10.0), (30, 1));
        assert_eq!(frame_rate(2997, 100.0), (30000, 1001));
        assert_eq!(frame_rate(2400, 100.1), (24000, 1001));
        assert_eq!(frame_rate(125, 10.0), (12500, 1000));
        assert_eq!(frame_rate(0, 0.0), (30, 1));
    }

    #[test]
    fn tasks_go_piece_by_piece() {
        let piece = |frames| PlannedShard {
            frames,
            start_seconds: 0.0,
            duration_seconds: 1.0,
            rung: None,
        };
        let tasks = tasks(&[piece(10), piece(20)], 3);
        let order: Vec<(u32, u32, u64)> = tasks
            .iter()
            .map(|t| {
                let r = t.rung.expect("a rung task");
                (r.piece, r.rung, t.frames)
            })
            .collect();
        assert_eq!(
            order,
            vec![
                (0, 0, 10),
                (0, 1, 10),
                (0, 2, 10),
                (1, 0, 20),
                (1, 1, 20),
                (1, 2, 20)
            ]
        );
    }
}
