//! The video packet table of an MP4/MOV read from its index (`moov`:
//! `stts`, `ctts`, `stss`, `elst`) instead of from every packet: ffprobe's
//! packet listing reads the whole file (≈0.4 s for 1.3 GiB), which is on
//! the critical path of every job, while the index is a few hundred KB.
//!
//! Only the plain case is read here: one video track, at most one edit
//! with rate 1 that cuts nothing at the start, no fragments, consistent
//! tables. Anything else answers `None` and the caller lists packets with
//! ffprobe. The result equals ffprobe's listing (pts shifted by the edit,
//! duration = `stts` delta, key = `stss`); `node/tests/probe_index.rs`
//! checks that on generated clips. Written by hand rather than with an MP4
//! crate so that every count read from the file is checked against the
//! bytes that hold it before anything is allocated (a hostile `moov`
//! cannot make us allocate more than its own size).

use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

use super::packets::{MAX_FRAMES, Packet};

/// Largest `moov` read (the index of 5 M frames fits well below this).
const MAX_MOOV: u64 = 128 << 20;
/// Top-level boxes looked at before giving up.
const MAX_TOP_BOXES: usize = 4096;

/// The video packets of the first video track, in its time base
/// (1/`timescale`).
#[derive(Debug, Clone, PartialEq)]
pub struct IndexTable {
    pub timescale: u32,
    pub packets: Vec<Packet>,
}

/// Reads the packet table on the blocking pool; `None` when the file is
/// not a plain MP4/MOV (then ffprobe lists the packets).
pub async fn read_index(path: &Path) -> Option<IndexTable> {
    let path = path.to_path_buf();
    tokio::task::spawn_blocking(move || {
        let moov = read_moov(&path)?;
        packet_table(&moov)
    })
    .await
    .ok()
    .flatten()
}

/// The `moov` box's payload, if the file's top-level boxes hold one.
fn read_moov(path: &Path) -> Option<Vec<u8>> {
    let mut file = std::fs::File::open(path).ok()?;
    let len = file.metadata().ok()?.len();
    let mut at = 0u64;
    for _ in 0..MAX_TOP_BOXES {
        if at + 8 > len {
            return None;
        }
        file.seek(SeekFrom::Start(at)).ok()?;
        let mut head = [0u8; 16];
        file.read_exact(&mut head[..8]).ok()?;
        let size32 = u32::from_be_bytes(head[..4].try_into().ok()?) as u64;
        let is_moov = &head[4..8] == b"moov";
        let (size, header) = match size32 {
            0 => (len - at, 8),
            1 => {
                file.read_exact(&mut head[8..16]).ok()?;
                (u64::from_be_bytes(head[8..16].try_into().ok()?), 16)
            }
            s => (s, 8),
        };
        if size < header || at.checked_add(size)? > len {
            return None;
        }
        if is_moov {
            let payload = size - header;
            if payload > MAX_MOOV {
                return None;
            }
            let mut moov = vec![0u8; payload as usize];
            file.read_exact(&mut moov).ok()?;
            return Some(moov);
        }
        at += size;
    }
    None
}

/// Child boxes of a payload: (type, payload) in order.
fn children(data: &[u8]) -> Option<Vec<(&[u8], &[u8])>> {
    let mut out = Vec::new();
    let mut at = 0usize;
    while at < data.len() {
        let head = data.get(at..at + 8)?;
        let size32 = u32::from_be_bytes(head[..4].try_into().ok()?) as usize;
        let kind = &head[4..8];
        let (size, header) = match size32 {
            0 => (data.len() - at, 8),
            1 => {
                let big = data.get(at + 8..at + 16)?;
                (
                    usize::try_from(u64::from_be_bytes(big.try_into().ok()?)).ok()?,
                    16,
                )
            }
            s => (s, 8),
        };
        if size < header {
            return None;
        }
        let payload = data.get(at + header..at.checked_add(size)?)?;
        out.push((kind, payload));
        at += size;
    }
    Some(out)
}

fn child<'a>(data: &'a [u8], kind: &[u8]) -> Option<&'a [u8]> {
    children(data)?
        .into_iter()
        .find(|(k, _)| *k == kind)
        .map(|(_, p)| p)
}

fn u32_at(data: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_be_bytes(data.get(at..at + 4)?.try_into().ok()?))
}

fn u64_at(data: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_be_bytes(data.get(at..at + 8)?.try_into().ok()?))
}

/// A full box's table: (version, entry count, entries), the count checked
/// against the bytes (`entry` bytes each, after `skip` bytes).
fn table(payload: &[u8], skip: usize, entry: usize) -> Option<(u8, usize, &[u8])> {
    let version = *payload.first()?;
    let count = u32_at(payload, 4 + skip)? as usize;
    let body = payload.get(8 + skip..)?;
    (count.checked_mul(entry)? <= body.len()).then_some((version, count, body))
}

/// The movie timescale (`mvhd`).
fn movie_timescale(moov: &[u8]) -> Option<u32> {
    let mvhd = child(moov, b"mvhd")?;
    match mvhd.first()? {
        0 => u32_at(mvhd, 12),
        1 => u32_at(mvhd, 20),
        _ => None,
    }
}

/// The packet table of the first video track (pure over the `moov` bytes).
pub fn packet_table(moov: &[u8]) -> Option<IndexTable> {
    let boxes = children(moov)?;
    if boxes.iter().any(|(k, _)| *k == b"mvex") {
        return None; // fragmented: samples live in moof boxes too
    }
    let movie_scale = movie_timescale(moov)?;
    let trak = boxes
        .iter()
        .filter(|(k, _)| *k == b"trak")
        .map(|(_, p)| *p)
        .find(|trak| {
            child(trak, b"mdia")
                .and_then(|m| child(m, b"hdlr"))
                .and_then(|h| h.get(8..12))
                == Some(b"vide")
        })?;
    let mdia = child(trak, b"mdia")?;
    let mdhd = child(mdia, b"mdhd")?;
    let timescale = match mdhd.first()? {
        0 => u32_at(mdhd, 12)?,
        1 => u32_at(mdhd, 20)?,
        _ => return None,
    };
    if timescale == 0 || movie_scale == 0 {
        return None;
    }
    let stbl = child(child(mdia, b"minf")?, b"stbl")?;

    let (_, stts_count, stts) = table(child(stbl, b"stts")?, 0, 8)?;
    let mut durations: Vec<i64> = Vec::new();
    for e in 0..stts_count {
        let count = u32_at(stts, e * 8)? as usize;
        let delta = u32_at(stts, e * 8 + 4)? as i64;
        if durations.len() + count > MAX_FRAMES {
            return None;
        }
        durations.extend(std::iter::repeat_n(delta, count));
    }
    let samples = durations.len();
    let stsz = child(stbl, b"stsz")?;
    if samples == 0 || u32_at(stsz, 8)? as usize != samples {
        return None;
    }

    let mut offsets = vec![0i64; samples];
    if let Some(ctts) = child(stbl, b"ctts") {
        let (_, count, body) = table(ctts, 0, 8)?;
        let mut at = 0usize;
        for e in 0..count {
            let n = u32_at(body, e * 8)? as usize;
            // Signed in both versions, as ffmpeg reads it.
            let offset = u32_at(body, e * 8 + 4)? as i32 as i64;
            let end = at.checked_add(n)?;
            offsets.get_mut(at..end)?.fill(offset);
            at = end;
        }
        if at != samples {
            return None;
        }
    }

    let mut keys = vec![true; samples];
    if let Some(stss) = child(stbl, b"stss") {
        let (_, count, body) = table(stss, 0, 4)?;
        keys.fill(false);
        for e in 0..count {
            let number = u32_at(body, e * 4)? as usize;
            *keys.get_mut(number.checked_sub(1)?)? = true;
        }
    }

    let mut raw = Vec::with_capacity(samples);
    let mut dts = 0i64;
    for i in 0..samples {
        raw.push(dts + offsets[i]);
        dts += durations[i];
    }
    let media_end = dts;
    let first_pts = *raw.iter().min()?;

    // One edit with rate 1 that starts at or before the first frame: the
    // timestamps shift by its media time. Anything else: ffprobe decides.
    let shift = match child(trak, b"edts").and_then(|e| child(e, b"elst")) {
        None => 0,
        Some(elst) => {
            let version = *elst.first()?;
            let entry = if version == 1 { 20 } else { 12 };
            let (_, count, body) = table(elst, 0, entry)?;
            match count {
                0 => 0,
                1 => {
                    let (segment, media_time, rate) = if version == 1 {
                        (u64_at(body, 0)?, u64_at(body, 8)? as i64, u32_at(body, 16)?)
                    } else {
                        (
                            u32_at(body, 0)? as u64,
                            u32_at(body, 4)? as i32 as i64,
                            u32_at(body, 8)?,
                        )
                    };
                    if rate != 0x0001_0000 || media_time < 0 || media_time > first_pts {
                        return None;
                    }
                    // The edit must cover the media it starts at (ffmpeg
                    // drops what an edit leaves out).
                    let covered = segment as i128 * timescale as i128 / movie_scale as i128;
                    let needed = (media_end - media_time) as i128;
                    if segment != 0 && covered + (timescale as i128) < needed {
                        return None;
                    }
                    media_time
                }
                _ => return None,
            }
        }
    };
    let packets = (0..samples)
        .map(|i| Packet {
            pts: Some(raw[i] - shift),
            duration: Some(durations[i]),
            key: keys[i],
        })
        .collect();
    Some(IndexTable { timescale, packets })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn boxed(kind: &[u8], payload: &[u8]) -> Vec<u8> {
        let mut out = ((payload.len() + 8) as u32).to_be_bytes().to_vec();
        out.extend_from_slice(kind);
        out.extend_from_slice(payload);
        out
    }

    #[test]
    fn hostile_counts_are_refused_without_allocating() {
        // An stts claiming 4 billion entries in 8 bytes.
        let mut stts = vec![0u8; 4];
        stts.extend_from_slice(&u32::MAX.to_be_bytes());
        stts.extend_from_slice(&[0, 0, 0, 1, 0, 0, 2, 0]);
        assert!(table(&stts, 0, 8).is_none());
        // Boxes whose sizes run past their parent.
        let mut bad = boxed(b"trak", &[1, 2, 3]);
        bad[3] = 200;
        assert!(children(&bad).is_none());
        assert!(packet_table(&bad).is_none());
        assert!(packet_table(&[]).is_none());
    }
}
