//! Cutting fragmented MP4 into CMAF segments, for ladder packaging.
//!
//! A ladder job encodes every shard of every rung separately, and the
//! master remuxes each encoded shard into a fragmented MP4 (one fragment
//! per forced keyframe interval; audio once for the whole file). Players
//! want one continuous timeline per rendition instead: a single init
//! segment (`ftyp`+`moov`) and media segments (`moof`+`mdat`) whose decode
//! times follow on from each other across shards. This module owns that
//! byte-level step:
//!
//! - [`scan`] finds the init bytes, the track's RFC 6381 codec string
//!   ([`codecs_of`]) and every fragment, without reading media data into
//!   memory;
//! - [`write_segment`] copies one fragment out with its `moof` rewritten by
//!   [`rewrite_moof`]: the sequence number and decode time the caller
//!   computed, and the composition offsets shifted so that the first
//!   frame's presentation time equals its decode time (CMAF wants the
//!   earliest presentation time of a segment to be its `tfdt`).
//!
//! It is done by hand rather than by another ffmpeg pass because ffmpeg
//! cannot be told the decode time of each fragment, and the rewrite only
//! touches a few fields. Reading is strict: truncated or inconsistent
//! boxes are errors, never panics, and nothing read from the file can make
//! us allocate more than the 16 MiB allowed for a box held in memory.
//! Box-level parsing lives in `cmaf_boxes.rs`.

use std::io::SeekFrom;
use std::path::Path;

use tokio::io::{AsyncReadExt, AsyncSeekExt, AsyncWriteExt};

#[path = "cmaf_boxes.rs"]
mod boxes;
#[path = "cmaf_codecs.rs"]
mod codecs;
#[path = "cmaf_moof.rs"]
mod moof;

pub use moof::{parse_moof, rewrite_moof};

use boxes::{Reader, children, find, fourcc, malformed, moov_and_trak, need, unsupported};

/// Largest box read into memory (`ftyp`, `moov`, `moof`).
const MAX_BOX: u64 = 16 << 20;
/// Media data is copied through a buffer of this size.
const COPY_CHUNK: u64 = 1 << 20;
/// Top-level boxes skipped without a look: indexes that stop being true
/// once the file is cut (`sidx`, `mfra`), padding, and metadata.
const IGNORED: [&[u8; 4]; 9] = [
    b"sidx", b"ssix", b"mfra", b"free", b"skip", b"styp", b"udta", b"prft", b"uuid",
];

#[derive(Debug, thiserror::Error)]
pub enum CmafError {
    #[error("reading or writing fragmented MP4: {0}")]
    Io(#[from] std::io::Error),
    /// The bytes contradict themselves or the format (truncation, sizes
    /// that overrun their parent, a moof without its mdat).
    #[error("malformed fragmented MP4: {0}")]
    Malformed(String),
    /// Valid ISO BMFF that a CMAF track cannot be cut from here (several
    /// tracks, no `mvex`, an unknown codec, absolute data offsets).
    #[error("unsupported fragmented MP4: {0}")]
    Unsupported(String),
}

/// Picture size (from the visual sample entry) or audio layout (from the
/// audio sample entry), as manifests announce them.
#[derive(Debug, Clone, PartialEq)]
pub enum TrackKind {
    Video { width: u32, height: u32 },
    Audio { channels: u32, sample_rate: u32 },
}

/// What manifests need to know about the one track of a file.
#[derive(Debug, Clone, PartialEq)]
pub struct TrackInfo {
    /// Ticks per second of every time in the track (`mdhd`).
    pub timescale: u32,
    /// RFC 6381 codec string (`avc1.64000d`, `mp4a.40.2`).
    pub codecs: String,
    pub kind: TrackKind,
}

/// One fragment (`moof` + `mdat`) as found in the file.
#[derive(Debug, Clone, PartialEq)]
pub struct FragmentInfo {
    /// File offset of the moof box.
    pub offset: u64,
    /// The whole moof box.
    pub moof_size: u64,
    /// The whole mdat box (header included): the fragment is
    /// `[offset, offset + moof_size + mdat_size)`.
    pub mdat_size: u64,
    /// `tfdt` as found.
    pub decode_time: u64,
    /// Sum of the sample durations.
    pub duration: u64,
    pub samples: u32,
    /// The first sample is a sync sample (a segment must start with one).
    pub starts_with_sync: bool,
    /// Composition offset of the first sample (0 when the trun has none):
    /// the usual `Rewrite::composition_shift`.
    pub first_composition_offset: i64,
}

/// A fragmented MP4 cut into its CMAF pieces.
#[derive(Debug, Clone, PartialEq)]
pub struct Fragmented {
    /// `ftyp` then `moov`, exactly as in the file: the init segment.
    pub init: Vec<u8>,
    pub track: TrackInfo,
    pub fragments: Vec<FragmentInfo>,
}

/// What [`rewrite_moof`] writes into a fragment.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rewrite {
    /// `mfhd.sequence_number`.
    pub sequence: u32,
    /// `tfdt.baseMediaDecodeTime`.
    pub decode_time: u64,
    /// Subtracted from every sample's composition offset.
    pub composition_shift: i64,
}

/// The defaults a `moov/mvex/trex` box gives its track's fragments: what
/// `tfhd` and `trun` fall back on for the fields they leave out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TrexDefaults {
    /// The track the defaults are for; 0 accepts any `tfhd.track_ID`.
    pub track_id: u32,
    pub sample_description_index: u32,
    pub sample_duration: u32,
    pub sample_size: u32,
    pub sample_flags: u32,
}

/// What a moof says about its fragment: what [`scan`] reports per
/// fragment, plus what it checks (where the sample bytes are) and what a
/// caller may check after a rewrite (offsets, the earliest presentation).
#[derive(Debug, Clone, PartialEq)]
pub struct MoofFacts {
    pub sequence: u32,
    pub track_id: u32,
    pub decode_time: u64,
    /// 0 (32-bit decode time) or 1 (64-bit).
    pub tfdt_version: u8,
    pub duration: u64,
    pub samples: u32,
    pub starts_with_sync: bool,
    pub first_composition_offset: i64,
    /// Smallest composition offset (0 without any). ffmpeg's demuxer adds
    /// its negation to every pts when it is negative (`dts_shift`).
    pub min_composition_offset: i64,
    /// Earliest presentation time minus decode time. Equals
    /// `first_composition_offset` unless a later sample is shown before the
    /// first one (open GOP); it is the shift that puts the earliest
    /// presentation exactly on `tfdt`.
    pub earliest_presentation: i64,
    /// The sample bytes, `[data_start, data_end)` counted from the moof's
    /// first byte (or from `base_data_offset` when one is given); equal
    /// when there are no samples.
    pub data_start: u64,
    pub data_end: u64,
    /// An explicit `tfhd.base_data_offset`: an absolute file offset, so
    /// the fragment cannot be moved into a segment of its own.
    pub base_data_offset: Option<u64>,
}

/// Reads box headers front to back (seeking over mdat payloads; never
/// reads an mdat into memory). `ftyp`, `moov` and every `moof` are read
/// whole (at most 16 MiB each); `sidx`, `mfra`, `free`, `styp`, `udta` and
/// the like are skipped. The file must hold exactly one track, and every
/// moof must be followed by the mdat that holds its samples.
pub async fn scan(path: &Path) -> Result<Fragmented, CmafError> {
    let mut file = tokio::fs::File::open(path).await?;
    let len = file.metadata().await?.len();
    let mut ftyp: Option<Vec<u8>> = None;
    let mut moov: Option<(Vec<u8>, TrackInfo, TrexDefaults)> = None;
    let mut pending: Option<(u64, u64, MoofFacts)> = None;
    let mut fragments = Vec::new();
    let mut at = 0u64;
    while at < len {
        let head = top_header(&mut file, at, len).await?;
        let name = fourcc(&head.kind);
        if pending.is_some() && &head.kind != b"mdat" {
            let why = format!("box '{name}' at offset {at} sits between a moof and its mdat");
            return Err(malformed(why));
        }
        match &head.kind {
            b"ftyp" if ftyp.is_some() => return Err(malformed("more than one ftyp box")),
            b"ftyp" => ftyp = Some(read_whole(&mut file, at, &head).await?),
            b"moov" if moov.is_some() => return Err(malformed("more than one moov box")),
            b"moov" => {
                let bytes = read_whole(&mut file, at, &head).await?;
                let track = codecs_of(&bytes)?;
                let trex = trex_of(&bytes)?;
                moov = Some((bytes, track, trex));
            }
            b"moof" => {
                let Some((_, _, trex)) = &moov else {
                    return Err(malformed(format!("moof at offset {at} precedes the moov")));
                };
                let bytes = read_whole(&mut file, at, &head).await?;
                let facts = parse_moof(&bytes, trex)
                    .map_err(|e| context(e, &format!("moof at offset {at}")))?;
                pending = Some((at, head.size, facts));
            }
            b"mdat" => {
                let Some((offset, moof_size, facts)) = pending.take() else {
                    let why = format!("mdat at offset {at} follows no moof (not fragmented?)");
                    return Err(unsupported(why));
                };
                if facts.base_data_offset.is_some() {
                    return Err(unsupported(format!(
                        "moof at offset {offset}: an absolute tfhd base_data_offset breaks once \
                         the fragment is cut out (remux with -movflags +default_base_moof)"
                    )));
                }
                // The samples must lie in this mdat, or the segment cut out
                // of the file would not hold them.
                let payload = moof_size + head.header..moof_size + head.size;
                let (start, end) = (facts.data_start, facts.data_end);
                if start < end && (start < payload.start || end > payload.end) {
                    return Err(malformed(format!(
                        "moof at offset {offset} points at sample bytes [{start}, {end}) \
                         outside its mdat payload {payload:?}"
                    )));
                }
                fragments.push(FragmentInfo {
                    offset,
                    moof_size,
                    mdat_size: head.size,
                    decode_time: facts.decode_time,
                    duration: facts.duration,
                    samples: facts.samples,
                    starts_with_sync: facts.starts_with_sync,
                    first_composition_offset: facts.first_composition_offset,
                });
            }
            kind if IGNORED.contains(&kind) => {}
            _ => {
                return Err(unsupported(format!(
                    "top-level box '{name}' at offset {at}"
                )));
            }
        }
        at += head.size;
    }
    if let Some((offset, _, _)) = pending {
        return Err(malformed(format!(
            "the moof at offset {offset} has no mdat"
        )));
    }
    let mut init = ftyp.ok_or_else(|| malformed("no ftyp box"))?;
    let (moov, track, _) = moov.ok_or_else(|| malformed("no moov box"))?;
    init.extend_from_slice(&moov);
    Ok(Fragmented {
        init,
        track,
        fragments,
    })
}

fn context(e: CmafError, what: &str) -> CmafError {
    match e {
        CmafError::Malformed(m) => CmafError::Malformed(format!("{what}: {m}")),
        CmafError::Unsupported(m) => CmafError::Unsupported(format!("{what}: {m}")),
        io => io,
    }
}

/// A top-level box header.
struct TopHeader {
    kind: [u8; 4],
    header: u64,
    /// Whole box; a size-0 final mdat is given its real size here.
    size: u64,
    /// The size field was 0 ("to the end of the file").
    to_end: bool,
}

async fn top_header(file: &mut tokio::fs::File, at: u64, len: u64) -> Result<TopHeader, CmafError> {
    let left = len - at;
    if left < 8 {
        return Err(malformed(format!(
            "{left} stray bytes at offset {at} at the end of the file (truncated box header)"
        )));
    }
    file.seek(SeekFrom::Start(at)).await?;
    let mut head = [0u8; 16];
    let short = if left >= 16 { 16 } else { 8 };
    file.read_exact(&mut head[..short]).await?;
    let mut r = Reader::new(&head, "box header");
    let size32 = r.u32()?;
    let kind: [u8; 4] = r.array()?;
    let name = fourcc(&kind);
    let (size, header, to_end) = match size32 {
        0 if &kind == b"mdat" => (left, 8, true),
        0 => {
            return Err(malformed(format!(
                "'{name}' at offset {at} has size 0 (not an mdat)"
            )));
        }
        1 if short < 16 => return Err(malformed(format!("'{name}' at offset {at} is truncated"))),
        1 => (r.u64()?, 16, false),
        s => (u64::from(s), 8, false),
    };
    if size < header {
        return Err(malformed(format!(
            "'{name}' at offset {at} claims {size} bytes"
        )));
    }
    if size > left {
        return Err(malformed(format!(
            "box '{name}' at offset {at} claims {size} bytes but only {left} remain: the file is truncated"
        )));
    }
    Ok(TopHeader {
        kind,
        header,
        size,
        to_end,
    })
}

async fn read_whole(
    file: &mut tokio::fs::File,
    at: u64,
    head: &TopHeader,
) -> Result<Vec<u8>, CmafError> {
    if head.size > MAX_BOX {
        return Err(malformed(format!(
            "'{}' at offset {at} is {} bytes; boxes read into memory are limited to {MAX_BOX}",
            fourcc(&head.kind),
            head.size
        )));
    }
    let mut bytes = vec![0u8; head.size as usize];
    file.seek(SeekFrom::Start(at)).await?;
    file.read_exact(&mut bytes).await?;
    Ok(bytes)
}

/// The `trex` defaults of the one track in `moov` (whole box, or any run
/// of top-level boxes holding it).
fn trex_of(moov: &[u8]) -> Result<TrexDefaults, CmafError> {
    let (payload, trak) = moov_and_trak(moov)?;
    let tkhd = need(&children(trak, "trak")?, b"tkhd", "trak")?;
    let mut r = Reader::new(tkhd.payload(), "tkhd");
    let (version, _) = r.full()?;
    r.skip(if version == 1 { 16 } else { 8 })?;
    let track_id = r.u32()?;
    let mvex = find(&children(payload, "moov")?, b"mvex")
        .ok_or_else(|| unsupported("moov has no mvex: not a fragmented MP4"))?;
    let trexes = children(mvex.payload(), "mvex")?;
    for trex in trexes.iter().filter(|b| b.is(b"trex")) {
        let mut r = Reader::new(trex.payload(), "trex");
        r.full()?;
        let d = TrexDefaults {
            track_id: r.u32()?,
            sample_description_index: r.u32()?,
            sample_duration: r.u32()?,
            sample_size: r.u32()?,
            sample_flags: r.u32()?,
        };
        if d.track_id == track_id {
            return Ok(d);
        }
    }
    Err(malformed(format!("mvex has no trex for track {track_id}")))
}

/// Writes fragment `f` of `path` to `out` (created or truncated) as one
/// media segment: the rewritten moof, then the mdat copied through a 1 MiB
/// buffer so that memory stays bounded whatever the fragment's size.
/// Returns the bytes written. `f` must come from [`scan`] of the same file
/// (its boxes are checked again); on error `out` may hold part of a
/// segment, so write to a temporary name and rename.
pub async fn write_segment(
    path: &Path,
    f: &FragmentInfo,
    rewrite: Rewrite,
    out: &Path,
) -> Result<u64, CmafError> {
    let mut file = tokio::fs::File::open(path).await?;
    let len = file.metadata().await?.len();
    let end = f
        .offset
        .checked_add(f.moof_size)
        .and_then(|e| e.checked_add(f.mdat_size));
    if end.is_none_or(|end| end > len) {
        return Err(malformed(format!(
            "fragment at offset {} runs past the end of {} ({len} bytes)",
            f.offset,
            path.display()
        )));
    }
    let moof_head = top_header(&mut file, f.offset, len).await?;
    if &moof_head.kind != b"moof" || moof_head.size != f.moof_size {
        return Err(malformed(format!(
            "no moof of {} bytes at {}",
            f.moof_size, f.offset
        )));
    }
    let moof = read_whole(&mut file, f.offset, &moof_head).await?;
    let moof = rewrite_moof(&moof, rewrite)?;

    let mdat_at = f.offset + f.moof_size;
    let mdat = top_header(&mut file, mdat_at, len).await?;
    if &mdat.kind != b"mdat" || mdat.size != f.mdat_size {
        return Err(malformed(format!(
            "no mdat of {} bytes at {mdat_at}",
            f.mdat_size
        )));
    }
    let mut sink = tokio::fs::File::create(out).await?;
    sink.write_all(&moof).await?;
    let mut copied = 0u64;
    if mdat.to_end {
        // "To the end of the file" stops being true once segments follow
        // each other: give the box its real size (same header length).
        let size = u32::try_from(f.mdat_size)
            .map_err(|_| unsupported("a size-0 mdat over 4 GiB (no 32-bit size)"))?;
        sink.write_all(&size.to_be_bytes()).await?;
        sink.write_all(b"mdat").await?;
        copied = 8;
    }
    file.seek(SeekFrom::Start(mdat_at + copied)).await?;
    let mut buf = vec![0u8; COPY_CHUNK.min(f.mdat_size) as usize];
    while copied < f.mdat_size {
        let n = (f.mdat_size - copied).min(COPY_CHUNK) as usize;
        let chunk = buf.get_mut(..n).unwrap_or_default();
        file.read_exact(chunk).await?;
        sink.write_all(chunk).await?;
        copied += n as u64;
    }
    sink.flush().await?;
    Ok(moof.len() as u64 + copied)
}

/// The track's timescale, RFC 6381 codec string and picture size or audio
/// layout, from its sample entry. `moov` is the whole moov box, or any run
/// of whole top-level boxes holding it (such as [`Fragmented::init`]).
pub fn codecs_of(moov: &[u8]) -> Result<TrackInfo, CmafError> {
    let (_, trak) = moov_and_trak(moov)?;
    let mdia = need(&children(trak, "trak")?, b"mdia", "trak")?;
    let kids = children(mdia.payload(), "mdia")?;
    let mut r = Reader::new(need(&kids, b"mdhd", "mdia")?.payload(), "mdhd");
    let (version, _) = r.full()?;
    r.skip(if version == 1 { 16 } else { 8 })?;
    let timescale = r.u32()?;
    let mut r = Reader::new(need(&kids, b"hdlr", "mdia")?.payload(), "hdlr");
    r.skip(8)?;
    let handler: [u8; 4] = r.array()?;
    let minf = need(&kids, b"minf", "mdia")?;
    let stbl = need(&children(minf.payload(), "minf")?, b"stbl", "minf")?;
    let stsd = need(&children(stbl.payload(), "stbl")?, b"stsd", "stbl")?;
    let mut r = Reader::new(stsd.payload(), "stsd");
    r.full()?;
    let count = r.u32()?;
    if count != 1 {
        return Err(unsupported(format!(
            "{count} sample entries; CMAF wants one"
        )));
    }
    let entries = children(stsd.payload().get(8..).unwrap_or_default(), "stsd")?;
    let entry = entries
        .first()
        .ok_or_else(|| malformed("stsd holds no sample entry"))?;
    let (kind, codecs) = codecs::sample_entry(&handler, entry)?;
    Ok(TrackInfo {
        timescale,
        codecs,
        kind,
    })
}

#[cfg(test)]
#[path = "cmaf_tests.rs"]
mod tests;
