//! The RFC 6381 codec strings of [`super`] (the CMAF cutter): the sample
//! entry under a `vide` or `soun` handler and its configuration record
//! (`avcC`, `hvcC`, `av1C`, `vpcC`, `esds`), every read bounds-checked.

use super::boxes::{BoxRef, Reader, children, fourcc, malformed, need, unsupported};
use super::{CmafError, TrackKind};

/// The picture size or audio layout, and the RFC 6381 codec string, of a
/// sample entry under a `vide` or `soun` handler.
pub(super) fn sample_entry(
    handler: &[u8; 4],
    entry: &BoxRef,
) -> Result<(TrackKind, String), CmafError> {
    let code = fourcc(&entry.kind);
    let body = entry.payload();
    let mut r = Reader::new(body, "sample entry");
    let (kind, boxes_at) = match handler {
        b"vide" => {
            // reserved, data_reference_index, pre_defined and reserved.
            r.skip(24)?;
            let (width, height) = (r.u16()?.into(), r.u16()?.into());
            (TrackKind::Video { width, height }, 78)
        }
        b"soun" => {
            r.skip(8)?;
            let version = r.u16()?;
            r.skip(6)?;
            let channels = r.u16()?.into();
            r.skip(6)?; // samplesize, pre_defined, reserved
            let sample_rate = r.u32()? >> 16;
            // QuickTime sound descriptions 1 and 2 carry 16 / 36 more bytes.
            let extra = [0, 16, 36].get(usize::from(version)).copied();
            let kind = TrackKind::Audio {
                channels,
                sample_rate,
            };
            (kind, 28 + extra.unwrap_or(0))
        }
        other => {
            let other = fourcc(other);
            let why = format!("track handler '{other}' is neither video nor audio");
            return Err(unsupported(why));
        }
    };
    let inner = children(body.get(boxes_at..).unwrap_or_default(), &code)?;
    let config = |kind: &[u8; 4]| need(&inner, kind, &code).map(|b| b.payload());
    let codecs = match &entry.kind {
        b"avc1" | b"avc3" => avc(&code, config(b"avcC")?)?,
        b"hvc1" | b"hev1" => hevc(&code, config(b"hvcC")?)?,
        b"av01" => av1(config(b"av1C")?)?,
        b"vp09" => vp9(config(b"vpcC")?)?,
        b"mp4a" => mp4a(config(b"esds")?)?,
        b"Opus" => "opus".to_string(),
        _ => {
            let why = format!("no RFC 6381 codec string for sample entry '{code}'");
            return Err(unsupported(why));
        }
    };
    Ok((kind, codecs))
}

/// `avcC`: profile, constraint flags and level bytes, as hex.
pub(super) fn avc(fourcc: &str, avcc: &[u8]) -> Result<String, CmafError> {
    let mut r = Reader::new(avcc, "avcC");
    let [_, profile, constraints, level] = r.array::<4>()?;
    Ok(format!(
        "{fourcc}.{profile:02x}{constraints:02x}{level:02x}"
    ))
}

/// `hvcC`, written as ISO/IEC 14496-15 Annex E spells it.
pub(super) fn hevc(fourcc: &str, hvcc: &[u8]) -> Result<String, CmafError> {
    let mut r = Reader::new(hvcc, "hvcC");
    r.u8()?; // configurationVersion
    let b = r.u8()?;
    let space = ["", "A", "B", "C"][usize::from(b >> 6)];
    let tier = if b & 0x20 != 0 { 'H' } else { 'L' };
    let profile = b & 0x1f;
    let compat = r.u32()?.reverse_bits();
    let constraints: [u8; 6] = r.array()?;
    let level = r.u8()?;
    // Trailing zero constraint bytes are left out.
    let kept = constraints
        .iter()
        .rposition(|&c| c != 0)
        .map_or(0, |i| i + 1);
    let bytes: String = constraints[..kept]
        .iter()
        .map(|c| format!(".{c:02X}"))
        .collect();
    Ok(format!(
        "{fourcc}.{space}{profile}.{compat:X}.{tier}{level}{bytes}"
    ))
}

/// `av1C`: profile, level, tier and bit depth (the optional fields left
/// out, as the AV1 ISOBMFF binding allows).
pub(super) fn av1(av1c: &[u8]) -> Result<String, CmafError> {
    let mut r = Reader::new(av1c, "av1C");
    let [_, a, b] = r.array::<3>()?;
    let profile = a >> 5;
    let level = a & 0x1f;
    let tier = if b & 0x80 != 0 { 'H' } else { 'M' };
    let depth = match (b & 0x40 != 0, b & 0x20 != 0) {
        (true, true) if profile == 2 => 12,
        (true, _) => 10,
        _ => 8,
    };
    Ok(format!("av01.{profile}.{level:02}{tier}.{depth:02}"))
}

/// `vpcC` (a FullBox): profile, level and bit depth.
pub(super) fn vp9(vpcc: &[u8]) -> Result<String, CmafError> {
    let mut r = Reader::new(vpcc, "vpcC");
    r.full()?;
    let [profile, level, depth] = r.array::<3>()?;
    Ok(format!("vp09.{profile:02}.{level:02}.{:02}", depth >> 4))
}

/// `esds`: `mp4a.40.{audio object type}` for MPEG-4 audio, else
/// `mp4a.{objectTypeIndication}`.
pub(super) fn mp4a(esds: &[u8]) -> Result<String, CmafError> {
    let mut r = Reader::new(esds, "esds");
    r.full()?;
    let es = descriptor(&mut r, 0x03)?;
    let mut r = Reader::new(es, "ES_Descriptor");
    r.u16()?; // ES_ID
    let flags = r.u8()?;
    if flags & 0x80 != 0 {
        r.u16()?; // dependsOn_ES_ID
    }
    if flags & 0x40 != 0 {
        let len = r.u8()?;
        r.skip(usize::from(len))?; // URL
    }
    if flags & 0x20 != 0 {
        r.u16()?; // OCR_ES_ID
    }
    let config = descriptor(&mut r, 0x04)?;
    let mut r = Reader::new(config, "DecoderConfigDescriptor");
    let oti = r.u8()?;
    if oti != 0x40 {
        return Ok(format!("mp4a.{oti:02x}"));
    }
    r.skip(12)?; // streamType, bufferSizeDB, maxBitrate, avgBitrate
    let asc = descriptor(&mut r, 0x05)?;
    let mut r = Reader::new(asc, "AudioSpecificConfig");
    let [a, b] = r.array::<2>()?;
    let mut aot = a >> 3;
    if aot == 31 {
        aot = 32 + (((a & 0x07) << 3) | (b >> 5));
    }
    Ok(format!("mp4a.40.{aot}"))
}

/// The body of the next descriptor, which must carry `tag` (its size is
/// 7 bits a byte, high bit = more follows, at most 4 bytes).
fn descriptor<'a>(r: &mut Reader<'a>, tag: u8) -> Result<&'a [u8], CmafError> {
    let found = r.u8()?;
    if found != tag {
        return Err(malformed(format!(
            "esds: expected descriptor tag 0x{tag:02x}, found 0x{found:02x}"
        )));
    }
    let mut size = 0usize;
    for _ in 0..4 {
        let b = r.u8()?;
        size = (size << 7) | usize::from(b & 0x7f);
        if b & 0x80 == 0 {
            return r.take(size);
        }
    }
    Err(malformed("esds: descriptor size longer than 4 bytes"))
}
