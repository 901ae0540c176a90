//! ISO BMFF reading for [`super`] (the CMAF cutter): box headers with
//! 32/64-bit sizes, child lists, big-endian fields behind a bounds-checked
//! cursor, and the field layout of a `moof` (where each value the rewrite
//! touches lives). The sample entries behind the codec strings are in
//! `cmaf_codecs.rs`.
//!
//! Every read is checked against the bytes that hold it, so a truncated or
//! hostile box gives [`CmafError::Malformed`] rather than a panic, and no
//! count read from a box allocates more than the box itself holds.

use super::CmafError;

pub(super) fn malformed(message: impl Into<String>) -> CmafError {
    CmafError::Malformed(message.into())
}

pub(super) fn unsupported(message: impl Into<String>) -> CmafError {
    CmafError::Unsupported(message.into())
}

/// A four-character code for messages (non-printable bytes escaped).
pub(super) fn fourcc(kind: &[u8]) -> String {
    kind.escape_ascii().to_string()
}

/// One box inside an in-memory buffer.
#[derive(Debug, Clone, Copy)]
pub(super) struct BoxRef<'a> {
    pub kind: [u8; 4],
    /// Offset of the box's first byte in the buffer it was listed from.
    pub start: usize,
    /// 8, or 16 when the size is a 64-bit `largesize`.
    pub header: usize,
    /// The whole box, header included.
    pub bytes: &'a [u8],
}

impl<'a> BoxRef<'a> {
    pub fn payload(&self) -> &'a [u8] {
        self.bytes.get(self.header..).unwrap_or_default()
    }

    pub fn is(&self, kind: &[u8; 4]) -> bool {
        &self.kind == kind
    }
}

/// The boxes that fill `data` back to back. `size == 0` ("to the end of
/// the file") is refused here: only a final top-level `mdat` may use it,
/// and the file scanner handles that one.
pub(super) fn children<'a>(data: &'a [u8], parent: &str) -> Result<Vec<BoxRef<'a>>, CmafError> {
    let mut out = Vec::new();
    let mut at = 0usize;
    while at < data.len() {
        let mut r = Reader::new(data, parent);
        r.skip(at)?;
        let size32 = r.u32()?;
        let kind: [u8; 4] = r.array()?;
        let (size, header) = match size32 {
            0 => {
                let why = format!("'{}' in {parent} has size 0 (to the end)", fourcc(&kind));
                return Err(malformed(why));
            }
            1 => (r.u64()?, 16usize),
            s => (u64::from(s), 8usize),
        };
        let end = usize::try_from(size)
            .ok()
            .filter(|&s| s >= header)
            .and_then(|s| at.checked_add(s))
            .filter(|&end| end <= data.len())
            .ok_or_else(|| {
                let (name, left) = (fourcc(&kind), data.len() - at);
                malformed(format!(
                    "'{name}' in {parent} claims {size} bytes but {left} remain (truncated?)"
                ))
            })?;
        let bytes = data.get(at..end).unwrap_or_default();
        out.push(BoxRef {
            kind,
            start: at,
            header,
            bytes,
        });
        at = end;
    }
    Ok(out)
}

/// The first child of the given type.
pub(super) fn find<'a>(boxes: &[BoxRef<'a>], kind: &[u8; 4]) -> Option<BoxRef<'a>> {
    boxes.iter().find(|b| b.is(kind)).copied()
}

/// The child of the given type that the format requires.
pub(super) fn need<'a>(
    boxes: &[BoxRef<'a>],
    kind: &[u8; 4],
    parent: &str,
) -> Result<BoxRef<'a>, CmafError> {
    find(boxes, kind).ok_or_else(|| malformed(format!("{parent} has no {}", fourcc(kind))))
}

/// The moov payload and the payload of its only trak.
pub(super) fn moov_and_trak(data: &[u8]) -> Result<(&[u8], &[u8]), CmafError> {
    let top = children(data, "the moov bytes")?;
    let moov = need(&top, b"moov", "the moov bytes")?.payload();
    let traks: Vec<_> = children(moov, "moov")?
        .into_iter()
        .filter(|b| b.is(b"trak"))
        .collect();
    match traks.as_slice() {
        [one] => Ok((moov, one.payload())),
        many => Err(unsupported(format!(
            "{} tracks; CMAF wants one",
            many.len()
        ))),
    }
}

/// A bounds-checked big-endian cursor; `what` names the structure in
/// error messages.
pub(super) struct Reader<'a> {
    data: &'a [u8],
    at: usize,
    what: &'a str,
}

impl<'a> Reader<'a> {
    pub fn new(data: &'a [u8], what: &'a str) -> Self {
        Reader { data, at: 0, what }
    }

    pub fn pos(&self) -> usize {
        self.at
    }

    pub fn remaining(&self) -> usize {
        self.data.len().saturating_sub(self.at)
    }

    pub fn take(&mut self, n: usize) -> Result<&'a [u8], CmafError> {
        let end = self.at.checked_add(n).filter(|&e| e <= self.data.len());
        let Some(end) = end else {
            return Err(malformed(format!(
                "{} is truncated: needs {n} bytes at offset {} but has {}",
                self.what,
                self.at,
                self.remaining()
            )));
        };
        let out = self.data.get(self.at..end).unwrap_or_default();
        self.at = end;
        Ok(out)
    }

    pub fn skip(&mut self, n: usize) -> Result<(), CmafError> {
        self.take(n).map(|_| ())
    }

    pub fn array<const N: usize>(&mut self) -> Result<[u8; N], CmafError> {
        let bytes = self.take(N)?;
        let mut out = [0u8; N];
        out.copy_from_slice(bytes);
        Ok(out)
    }

    pub fn u8(&mut self) -> Result<u8, CmafError> {
        Ok(self.array::<1>()?[0])
    }

    pub fn u16(&mut self) -> Result<u16, CmafError> {
        Ok(u16::from_be_bytes(self.array()?))
    }

    pub fn u32(&mut self) -> Result<u32, CmafError> {
        Ok(u32::from_be_bytes(self.array()?))
    }

    pub fn u64(&mut self) -> Result<u64, CmafError> {
        Ok(u64::from_be_bytes(self.array()?))
    }

    /// A FullBox header: (version, 24-bit flags).
    pub fn full(&mut self) -> Result<(u8, u32), CmafError> {
        let v = self.u32()?;
        Ok(((v >> 24) as u8, v & 0x00ff_ffff))
    }
}

/// Overwrites `bytes.len()` bytes at `at`.
pub(super) fn put(buf: &mut [u8], at: usize, bytes: &[u8]) -> Result<(), CmafError> {
    let slot = at
        .checked_add(bytes.len())
        .and_then(|end| buf.get_mut(at..end))
        .ok_or_else(|| malformed(format!("no room for {} bytes at offset {at}", bytes.len())))?;
    slot.copy_from_slice(bytes);
    Ok(())
}

/// Grows the size field of the box starting at `at` by `grow` bytes.
pub(super) fn grow_box(
    buf: &mut [u8],
    at: usize,
    header: usize,
    grow: u64,
) -> Result<(), CmafError> {
    let too_big = || unsupported("a box would outgrow its size field");
    if header == 16 {
        let size = Reader::new(buf.get(at + 8..).unwrap_or_default(), "box").u64()?;
        let size = size.checked_add(grow).ok_or_else(too_big)?;
        put(buf, at + 8, &size.to_be_bytes())
    } else {
        let size = Reader::new(buf.get(at..).unwrap_or_default(), "box").u32()?;
        let size = u32::try_from(u64::from(size) + grow).map_err(|_| too_big())?;
        put(buf, at, &size.to_be_bytes())
    }
}

// ---- moof layout ----------------------------------------------------------

/// `tfhd` flags.
pub(super) const TFHD_BASE_DATA_OFFSET: u32 = 0x01;
pub(super) const TFHD_DESCRIPTION_INDEX: u32 = 0x02;
pub(super) const TFHD_DEFAULT_DURATION: u32 = 0x08;
pub(super) const TFHD_DEFAULT_SIZE: u32 = 0x10;
pub(super) const TFHD_DEFAULT_FLAGS: u32 = 0x20;
pub(super) const TFHD_DURATION_IS_EMPTY: u32 = 0x01_0000;
/// `trun` flags.
pub(super) const TRUN_DATA_OFFSET: u32 = 0x001;
pub(super) const TRUN_FIRST_FLAGS: u32 = 0x004;
pub(super) const TRUN_DURATION: u32 = 0x100;
pub(super) const TRUN_SIZE: u32 = 0x200;
pub(super) const TRUN_FLAGS: u32 = 0x400;
pub(super) const TRUN_CTO: u32 = 0x800;

/// Most samples one trun may hold (5.8 minutes of 48 kHz PCM).
const MAX_TRUN_SAMPLES: u32 = 1 << 24;

/// Where each field of a single-`traf` moof lives (offsets from the
/// moof's first byte) and what it holds.
#[derive(Debug)]
pub(super) struct Layout {
    pub moof_header: usize,
    pub sequence_at: usize,
    pub sequence: u32,
    pub traf_at: usize,
    pub traf_header: usize,
    pub tfhd: Tfhd,
    pub tfdt: Tfdt,
    pub truns: Vec<Trun>,
    /// `saio` offsets count from the moof too: a growing tfdt would
    /// invalidate them.
    pub has_saio: bool,
}

#[derive(Debug)]
pub(super) struct Tfhd {
    pub flags: u32,
    pub track_id: u32,
    pub base_data_offset: Option<u64>,
    pub default_duration: Option<u32>,
    pub default_size: Option<u32>,
    pub default_flags: Option<u32>,
}

#[derive(Debug)]
pub(super) struct Tfdt {
    pub at: usize,
    pub header: usize,
    /// Offset of the version byte; the value follows the flags.
    pub version_at: usize,
    pub version: u8,
    pub value: u64,
}

#[derive(Debug)]
pub(super) struct Trun {
    pub at: usize,
    pub header: usize,
    pub version: u8,
    pub flags: u32,
    pub count: u32,
    pub data_offset: Option<i32>,
    pub first_flags: Option<u32>,
    /// Offset of the first per-sample entry, and bytes per entry.
    pub entries_at: usize,
    pub stride: usize,
}

/// One `trun` entry; `None` where the trun leaves the field to defaults.
#[derive(Debug)]
pub(super) struct Entry {
    pub duration: Option<u32>,
    pub size: Option<u32>,
    pub flags: Option<u32>,
    /// The offset, read as unsigned (version 0) or signed (version 1),
    /// and where it lives.
    pub cto: Option<(i64, usize)>,
}

impl Trun {
    pub fn entry(&self, moof: &[u8], i: u32) -> Result<Entry, CmafError> {
        let at = self.entries_at + i as usize * self.stride;
        let mut r = Reader::new(moof, "trun entry");
        r.skip(at)?;
        let mut field = |flag: u32| -> Result<Option<(u32, usize)>, CmafError> {
            if self.flags & flag == 0 {
                return Ok(None);
            }
            let pos = r.pos();
            Ok(Some((r.u32()?, pos)))
        };
        let duration = field(TRUN_DURATION)?.map(|f| f.0);
        let size = field(TRUN_SIZE)?.map(|f| f.0);
        let flags = field(TRUN_FLAGS)?.map(|f| f.0);
        let cto = field(TRUN_CTO)?.map(|(raw, pos)| {
            let value = if self.version == 0 {
                i64::from(raw)
            } else {
                i64::from(raw as i32)
            };
            (value, pos)
        });
        Ok(Entry {
            duration,
            size,
            flags,
            cto,
        })
    }
}

/// Reads the layout of a whole moof box (header included).
pub(super) fn layout(moof: &[u8]) -> Result<Layout, CmafError> {
    let top = children(moof, "the moof bytes")?;
    let [moof_box] = top.as_slice() else {
        return Err(malformed(format!(
            "expected exactly one moof box, found {} boxes",
            top.len()
        )));
    };
    if !moof_box.is(b"moof") {
        return Err(malformed(format!(
            "expected a moof box, found '{}'",
            fourcc(&moof_box.kind)
        )));
    }
    let base = moof_box.header;
    let kids = children(moof_box.payload(), "moof")?;
    let mfhd = need(&kids, b"mfhd", "moof")?;
    let mut r = Reader::new(mfhd.payload(), "mfhd");
    r.full()?;
    let sequence = r.u32()?;
    let sequence_at = base + mfhd.start + mfhd.header + 4;

    let trafs: Vec<_> = kids.iter().filter(|b| b.is(b"traf")).collect();
    let traf = match trafs.as_slice() {
        [] => return Err(malformed("moof has no traf")),
        [one] => **one,
        many => {
            return Err(unsupported(format!(
                "moof has {} traf boxes; a CMAF fragment carries exactly one track",
                many.len()
            )));
        }
    };
    let traf_at = base + traf.start;
    let inner = traf_at + traf.header;
    let boxes = children(traf.payload(), "traf")?;
    let tfhd = read_tfhd(need(&boxes, b"tfhd", "traf")?.payload())?;
    let tfdt_box = find(&boxes, b"tfdt")
        .ok_or_else(|| unsupported("traf has no tfdt (CMAF needs each fragment's decode time)"))?;
    let mut r = Reader::new(tfdt_box.payload(), "tfdt");
    let (version, _) = r.full()?;
    let value = match version {
        0 => u64::from(r.u32()?),
        1 => r.u64()?,
        v => return Err(unsupported(format!("tfdt version {v}"))),
    };
    let at = inner + tfdt_box.start;
    let header = tfdt_box.header;
    let version_at = at + header;
    let tfdt = Tfdt {
        at,
        header,
        version_at,
        version,
        value,
    };
    let truns = boxes
        .iter()
        .filter(|b| b.is(b"trun"))
        .map(|b| read_trun(b, inner + b.start))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Layout {
        moof_header: base,
        sequence_at,
        sequence,
        traf_at,
        traf_header: traf.header,
        tfhd,
        tfdt,
        truns,
        has_saio: find(&boxes, b"saio").is_some(),
    })
}

fn read_tfhd(payload: &[u8]) -> Result<Tfhd, CmafError> {
    let mut r = Reader::new(payload, "tfhd");
    let (_, flags) = r.full()?;
    let track_id = r.u32()?;
    let base_data_offset = (flags & TFHD_BASE_DATA_OFFSET != 0)
        .then(|| r.u64())
        .transpose()?;
    if flags & TFHD_DESCRIPTION_INDEX != 0 {
        r.u32()?;
    }
    let mut opt = |flag: u32| (flags & flag != 0).then(|| r.u32()).transpose();
    Ok(Tfhd {
        flags,
        track_id,
        base_data_offset,
        default_duration: opt(TFHD_DEFAULT_DURATION)?,
        default_size: opt(TFHD_DEFAULT_SIZE)?,
        default_flags: opt(TFHD_DEFAULT_FLAGS)?,
    })
}

fn read_trun(b: &BoxRef, at: usize) -> Result<Trun, CmafError> {
    let mut r = Reader::new(b.payload(), "trun");
    let (version, flags) = r.full()?;
    if version > 1 {
        return Err(unsupported(format!("trun version {version}")));
    }
    let count = r.u32()?;
    let data_offset = (flags & TRUN_DATA_OFFSET != 0)
        .then(|| r.u32().map(|v| v as i32))
        .transpose()?;
    let first_flags = (flags & TRUN_FIRST_FLAGS != 0)
        .then(|| r.u32())
        .transpose()?;
    let stride = [TRUN_DURATION, TRUN_SIZE, TRUN_FLAGS, TRUN_CTO]
        .iter()
        .filter(|&&f| flags & f != 0)
        .count()
        * 4;
    let needed = (count as usize).checked_mul(stride);
    if needed.is_none_or(|n| n > r.remaining()) {
        return Err(malformed(format!(
            "trun claims {count} samples of {stride} bytes but holds {} bytes",
            r.remaining()
        )));
    }
    if count > MAX_TRUN_SAMPLES {
        // Without per-sample fields nothing above bounds the count.
        return Err(unsupported(format!("trun of {count} samples")));
    }
    Ok(Trun {
        at,
        header: b.header,
        version,
        flags,
        count,
        data_offset,
        first_flags,
        entries_at: at + b.header + r.pos(),
        stride,
    })
}
