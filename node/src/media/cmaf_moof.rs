//! Reading and rewriting one `moof` (pure, for [`super`], the CMAF
//! cutter): the facts of a fragment (decode time, duration, samples,
//! whether it starts with a sync sample) and the copy that continues a
//! rendition's timeline (decode time, sequence number, composition
//! offsets shifted so the first picture shows at the decode time).

use super::boxes::{self, put};
use super::{CmafError, MoofFacts, Rewrite, TrexDefaults, malformed, unsupported};

/// A `sample_flags` word marks a sync sample: `sample_depends_on == 2`
/// (depends on no other) or not `sample_is_non_sync_sample`.
fn is_sync(flags: u32) -> bool {
    (flags >> 24) & 3 == 2 || flags & 0x0001_0000 == 0
}

/// The facts of a moof (whole box bytes, header included), with `defaults`
/// from the file's `trex` for what `tfhd` and `trun` leave out. Pure, so
/// that [`scan`] and checks of rewritten segments share one reading.
pub fn parse_moof(moof: &[u8], defaults: &TrexDefaults) -> Result<MoofFacts, CmafError> {
    let l = boxes::layout(moof)?;
    let t = &l.tfhd;
    if defaults.track_id != 0 && t.track_id != defaults.track_id {
        return Err(malformed(format!(
            "tfhd is for track {} but the file's track is {}",
            t.track_id, defaults.track_id
        )));
    }
    let default_duration = t.default_duration.unwrap_or(defaults.sample_duration);
    let default_size = t.default_size.unwrap_or(defaults.sample_size);
    let default_flags = t.default_flags.unwrap_or(defaults.sample_flags);
    let overflow = || malformed("moof sample counts or durations overflow");

    let (mut samples, mut dts, mut cursor) = (0u32, 0u64, 0u64);
    let (mut first, mut earliest, mut min_cto) = (None, None::<i128>, None::<i64>);
    let mut data: Option<(u64, u64)> = None;
    for trun in &l.truns {
        let start = match trun.data_offset {
            None => cursor,
            Some(o) => u64::try_from(o)
                .map_err(|_| malformed(format!("trun data_offset {o} points before the moof")))?,
        };
        let mut bytes = 0u64;
        for i in 0..trun.count {
            let e = trun.entry(moof, i)?;
            let flags = if i == 0 {
                trun.first_flags.or(e.flags)
            } else {
                e.flags
            };
            let cto = e.cto.map_or(0, |c| c.0);
            first.get_or_insert((is_sync(flags.unwrap_or(default_flags)), cto));
            let shown = i128::from(dts) + i128::from(cto);
            earliest = Some(earliest.map_or(shown, |x| x.min(shown)));
            min_cto = Some(min_cto.map_or(cto, |x| x.min(cto)));
            dts = dts
                .checked_add(u64::from(e.duration.unwrap_or(default_duration)))
                .ok_or_else(overflow)?;
            bytes += u64::from(e.size.unwrap_or(default_size));
        }
        samples = samples.checked_add(trun.count).ok_or_else(overflow)?;
        cursor = start + bytes;
        if bytes > 0 {
            data = Some(data.map_or((start, cursor), |(s, e)| (s.min(start), e.max(cursor))));
        }
    }
    if samples == 0 && t.flags & boxes::TFHD_DURATION_IS_EMPTY != 0 {
        dts = u64::from(default_duration);
    }
    let (starts_with_sync, first_composition_offset) = first.unwrap_or((false, 0));
    let (data_start, data_end) = data.unwrap_or((0, 0));
    Ok(MoofFacts {
        sequence: l.sequence,
        track_id: t.track_id,
        decode_time: l.tfdt.value,
        tfdt_version: l.tfdt.version,
        duration: dts,
        samples,
        starts_with_sync,
        first_composition_offset,
        min_composition_offset: min_cto.unwrap_or(0),
        earliest_presentation: earliest
            .map_or(Ok(0), i64::try_from)
            .map_err(|_| overflow())?,
        data_start,
        data_end,
        base_data_offset: t.base_data_offset,
    })
}

/// A rewritten copy of a moof box (whole box in, whole box out): the
/// sequence number and decode time set, every composition offset lowered
/// by `composition_shift` (the trun becomes version 1, whose offsets are
/// signed, since some may now be negative).
///
/// A version-0 `tfdt` that cannot hold the decode time becomes version 1:
/// it grows by 4 bytes, so the sizes of `tfdt`, `traf` and `moof` grow and
/// every `trun.data_offset` (counted from the moof's first byte) gains 4.
/// An explicit `tfhd.base_data_offset` is an absolute file offset and is
/// left as it is ([`scan`] refuses such files: they cannot be cut).
pub fn rewrite_moof(moof: &[u8], rewrite: Rewrite) -> Result<Vec<u8>, CmafError> {
    let l = boxes::layout(moof)?;
    let shift = rewrite.composition_shift;
    let mut out = moof.to_vec();
    put(&mut out, l.sequence_at, &rewrite.sequence.to_be_bytes())?;
    for trun in &l.truns {
        if trun.flags & boxes::TRUN_CTO == 0 {
            if shift != 0 && trun.count > 0 {
                let why = format!("composition shift {shift} for a trun without offsets");
                return Err(malformed(why));
            }
            continue;
        }
        for i in 0..trun.count {
            if let Some((cto, at)) = trun.entry(moof, i)?.cto {
                let shifted = cto
                    .checked_sub(shift)
                    .and_then(|v| i32::try_from(v).ok())
                    .ok_or_else(|| unsupported(format!("offset {cto} - {shift} overflows i32")))?;
                put(&mut out, at, &shifted.to_be_bytes())?;
            }
        }
        put(&mut out, trun.at + trun.header, &[1])?;
    }

    let value_at = l.tfdt.version_at + 4;
    if l.tfdt.version == 1 {
        put(&mut out, value_at, &rewrite.decode_time.to_be_bytes())?;
        return Ok(out);
    }
    if let Ok(short) = u32::try_from(rewrite.decode_time) {
        put(&mut out, value_at, &short.to_be_bytes())?;
        return Ok(out);
    }
    if l.has_saio {
        return Err(unsupported("a growing tfdt would move what saio points at"));
    }
    if l.tfhd.base_data_offset.is_none() {
        for trun in &l.truns {
            if let Some(o) = trun.data_offset {
                let moved = o
                    .checked_add(4)
                    .ok_or_else(|| malformed(format!("trun data_offset {o} overflows")))?;
                put(&mut out, trun.at + trun.header + 8, &moved.to_be_bytes())?;
            }
        }
    }
    let (head, tail) = out.split_at(value_at.min(out.len()));
    let tail = tail
        .get(4..)
        .ok_or_else(|| malformed("tfdt is truncated"))?;
    let mut grown = Vec::with_capacity(out.len() + 4);
    grown.extend_from_slice(head);
    grown.extend_from_slice(&rewrite.decode_time.to_be_bytes());
    grown.extend_from_slice(tail);
    put(&mut grown, l.tfdt.version_at, &[1])?;
    boxes::grow_box(&mut grown, 0, l.moof_header, 4)?;
    boxes::grow_box(&mut grown, l.traf_at, l.traf_header, 4)?;
    boxes::grow_box(&mut grown, l.tfdt.at, l.tfdt.header, 4)?;
    Ok(grown)
}
