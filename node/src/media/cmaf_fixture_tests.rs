//! The moof rewrite and the codec strings on hand-built boxes: every
//! flag combination, growth of a 32-bit decode time, truncation.

use super::*;

fn bx(kind: &[u8; 4], payload: &[u8]) -> Vec<u8> {
    let mut out = ((payload.len() + 8) as u32).to_be_bytes().to_vec();
    out.extend_from_slice(kind);
    out.extend_from_slice(payload);
    out
}

fn full(kind: &[u8; 4], version: u8, flags: u32, body: &[u8]) -> Vec<u8> {
    let mut payload = ((u32::from(version) << 24) | flags).to_be_bytes().to_vec();
    payload.extend_from_slice(body);
    bx(kind, &payload)
}

const SYNC: u32 = 0x0200_0000;
const NON_SYNC: u32 = 0x0101_0000;

/// (duration, size, flags, composition offset) of 4 samples in decode
/// order I P B B: the first frame is shown one frame late.
const SAMPLES: [(u32, u32, u32, i32); 4] = [
    (1024, 10, NON_SYNC, 1024),
    (1024, 20, NON_SYNC, 3072),
    (1024, 30, NON_SYNC, 0),
    (1024, 40, NON_SYNC, 0),
];

/// The trex defaults: duration 512, size 50, flags 0 (sync). The tfhd
/// ones, when its flags carry them: duration 1000, size 100, non-sync.
const TREX: TrexDefaults = TrexDefaults {
    track_id: 1,
    sample_description_index: 1,
    sample_duration: 512,
    sample_size: 50,
    sample_flags: 0,
};

/// A one-traf moof: tfhd, tfdt (value 7) and one trun with the fields its
/// flags select; its data offset points just past the next mdat header.
fn moof(tfhd_flags: u32, tfdt_version: u8, (version, flags): (u8, u32)) -> Vec<u8> {
    let build = |data_offset: u32| {
        let mut tfhd = 1u32.to_be_bytes().to_vec();
        if tfhd_flags & 0x01 != 0 {
            tfhd.extend_from_slice(&0u64.to_be_bytes());
        }
        for (flag, value) in [(0x02, 1), (0x08, 1000), (0x10, 100), (0x20, NON_SYNC)] {
            if tfhd_flags & flag != 0 {
                tfhd.extend_from_slice(&value.to_be_bytes());
            }
        }
        let tfdt = match tfdt_version {
            0 => full(b"tfdt", 0, 0, &7u32.to_be_bytes()),
            _ => full(b"tfdt", 1, 0, &7u64.to_be_bytes()),
        };
        let mut body = (SAMPLES.len() as u32).to_be_bytes().to_vec();
        for (flag, value) in [(0x001, data_offset), (0x004, SYNC)] {
            if flags & flag != 0 {
                body.extend_from_slice(&value.to_be_bytes());
            }
        }
        for (d, s, f, c) in SAMPLES {
            for (flag, value) in [(0x100, d), (0x200, s), (0x400, f), (0x800, c as u32)] {
                if flags & flag != 0 {
                    body.extend_from_slice(&value.to_be_bytes());
                }
            }
        }
        let mut traf = full(b"tfhd", 0, tfhd_flags, &tfhd);
        traf.extend(tfdt);
        traf.extend(full(b"trun", version, flags, &body));
        let mut moof = full(b"mfhd", 0, 0, &9u32.to_be_bytes());
        moof.extend(bx(b"traf", &traf));
        bx(b"moof", &moof)
    };
    let len = build(0).len() as u32;
    build(len + 8)
}

#[test]
fn a_version_0_trun_becomes_version_1_with_signed_shifted_offsets() {
    let m = moof(0x20000, 1, (0, 0xb01));
    let before = parse_moof(&m, &TREX).expect("parse");
    assert_eq!(before.first_composition_offset, 1024);
    assert_eq!(before.earliest_presentation, 1024);
    let out = rewrite_moof(&m, rw(42, 90_000, 1024)).expect("rewrite");
    assert_eq!(out.len(), m.len(), "a version-1 tfdt does not grow");
    let l = boxes::layout(&out).expect("layout");
    assert_eq!(l.truns[0].version, 1);
    let entry = |i| l.truns[0].entry(&out, i).expect("entry");
    let ctos: Vec<_> = (0..4).map(|i| entry(i).cto.map(|c| c.0)).collect();
    assert_eq!(ctos, [Some(0), Some(2048), Some(-1024), Some(-1024)]);
    let a = parse_moof(&out, &TREX).expect("parse");
    assert_eq!((a.sequence, a.decode_time, a.duration), (42, 90_000, 4096));
    assert_eq!(
        (a.earliest_presentation, a.min_composition_offset),
        (0, -1024)
    );
    assert_eq!(a.data_start, before.data_start);
    // Only the touched fields changed: sequence, tfdt, version, offsets.
    let changed = (0..m.len()).filter(|&i| m[i] != out[i]).count();
    assert!(changed <= 4 + 8 + 1 + 4 * 4, "{changed}");
}

#[test]
fn a_version_0_tfdt_grows_when_the_decode_time_needs_64_bits() {
    let m = moof(0x20000, 0, (1, 0x301));
    let data_offset = size_at(&m, m.len() - 4 * 8 - 4);
    assert_eq!(data_offset as usize, m.len() + 8);
    // A time that fits keeps the box as it is.
    let kept = rewrite_moof(&m, rw(1, u32::MAX.into(), 0)).expect("rewrite");
    assert_eq!(kept.len(), m.len());
    assert_eq!(parse_moof(&kept, &TREX).expect("parse").tfdt_version, 0);

    let big = rw(2, 5_000_000_000, 0);
    let out = rewrite_moof(&m, big).expect("rewrite");
    assert_eq!(out.len(), m.len() + 4);
    assert_eq!(size_at(&out, 0) as usize, out.len(), "moof size");
    let l = boxes::layout(&out).expect("layout");
    let traf_size = size_at(&out, l.traf_at) as usize;
    assert_eq!(traf_size, out.len() - l.traf_at, "traf size");
    assert_eq!(size_at(&out, l.tfdt.at), 20, "tfdt size");
    assert_eq!((l.tfdt.version, l.tfdt.value), (1, 5_000_000_000));
    let moved = Some(data_offset as i32 + 4);
    assert_eq!(l.truns[0].data_offset, moved, "the mdat moved by 4");
    let f = parse_moof(&out, &TREX).expect("parse");
    assert_eq!((f.sequence, f.decode_time), (2, 5_000_000_000));
    assert_eq!(f.data_start, u64::from(data_offset) + 4);

    // The same with a 64-bit moof size.
    let mut large = [&[0, 0, 0, 1], &b"moof"[..]].concat();
    large.extend_from_slice(&(m.len() as u64 + 8).to_be_bytes());
    large.extend_from_slice(&m[8..]);
    let out = rewrite_moof(&large, big).expect("rewrite largesize");
    assert_eq!(out.len(), large.len() + 4);
    let size = u64::from_be_bytes(out[8..16].try_into().expect("8 bytes"));
    assert_eq!(size, out.len() as u64);
    let f = parse_moof(&out, &TREX).expect("parse");
    assert_eq!(f.decode_time, 5_000_000_000);
}

#[test]
fn every_flag_combination_is_read_and_rewritten() {
    const TRUN_FLAGS: [u32; 6] = [0x001, 0x004, 0x100, 0x200, 0x400, 0x800];
    for tfhd_flags in [0x20000, 0x20038, 0x2003a, 0x00001, 0x00029, 0x10000] {
        for bits in 0..64usize {
            let picked = (0..6).filter(|b| bits & (1 << b) != 0);
            let trun_flags: u32 = picked.map(|b| TRUN_FLAGS[b]).sum();
            let m = moof(tfhd_flags, 0, (0, trun_flags));
            let what = format!("tfhd {tfhd_flags:#x} trun {trun_flags:#x}");
            let f = parse_moof(&m, &TREX).unwrap_or_else(|e| panic!("{what}: {e}"));
            let trun = |flag: u32| trun_flags & flag != 0;
            let tfhd = |flag: u32| tfhd_flags & flag != 0;
            // Per sample, else tfhd default, else trex default.
            let pick = |t: bool, h: bool, each: u64, default: u64, trex: u64| match (t, h) {
                (true, _) => each,
                (false, true) => 4 * default,
                (false, false) => 4 * trex,
            };
            let duration = pick(trun(0x100), tfhd(0x08), 4096, 1000, 512);
            let size = pick(trun(0x200), tfhd(0x10), 100, 100, 50);
            let sync = trun(0x004) || !(trun(0x400) || tfhd(0x20));
            let cto = if trun(0x800) { 1024 } else { 0 };
            let facts = (f.samples, f.duration, f.starts_with_sync);
            assert_eq!(facts, (4, duration, sync), "{what}");
            assert_eq!(f.first_composition_offset, cto, "{what}");
            assert_eq!(f.data_end - f.data_start, size, "{what}");
            assert_eq!(f.base_data_offset.is_some(), tfhd(0x01), "{what}");

            let out = rewrite_moof(&m, rw(5, 1 << 40, cto));
            let out = out.unwrap_or_else(|e| panic!("{what}: {e}"));
            let g = parse_moof(&out, &TREX).unwrap_or_else(|e| panic!("{what}: {e}"));
            let moved = if trun(0x001) && !tfhd(0x01) { 4 } else { 0 };
            assert_eq!((g.decode_time, g.sequence), (1 << 40, 5), "{what}");
            assert_eq!(g.data_start, f.data_start + moved, "{what}");
            let facts = (g.samples, g.duration, g.starts_with_sync);
            assert_eq!(facts, (4, duration, sync), "{what}");
            let shifted = |x: i64| x - cto;
            let e = (g.earliest_presentation, g.min_composition_offset);
            let want = (f.earliest_presentation, f.min_composition_offset);
            assert_eq!(e, (shifted(want.0), shifted(want.1)), "{what}");
            assert_eq!(g.first_composition_offset, 0, "{what}");
        }
    }
}

#[test]
fn truncated_or_inconsistent_moofs_are_malformed_not_panics() {
    let m = moof(0x20038, 0, (0, 0xf05));
    let rewrite = rw(1, 1 << 33, 1024);
    rewrite_moof(&m, rewrite).expect("the whole moof is fine");
    let malformed = |r: Result<(), CmafError>| matches!(r, Err(CmafError::Malformed(_)));
    for cut in 0..m.len() {
        let mut t = m[..cut].to_vec();
        if cut >= 8 {
            t[..4].copy_from_slice(&(cut as u32).to_be_bytes()); // claims what is left
        }
        assert!(malformed(parse_moof(&t, &TREX).map(|_| ())), "cut at {cut}");
        let rewritten = rewrite_moof(&t, rewrite).map(|_| ());
        assert!(malformed(rewritten), "cut at {cut}");
    }
    // A trun claiming a billion samples in a few bytes.
    let mut hostile = m.clone();
    let count_at = boxes::layout(&m).expect("layout").truns[0].at + 12;
    hostile[count_at..count_at + 4].copy_from_slice(&1_000_000_000u32.to_be_bytes());
    match parse_moof(&hostile, &TREX) {
        Err(CmafError::Malformed(msg)) => assert!(msg.contains("1000000000 samples"), "{msg}"),
        other => panic!("{other:?}"),
    }
    // Four billion samples without per-sample fields: refused, at once.
    let empty = moof(0x20000, 1, (0, 0x001));
    let mut endless = empty.clone();
    let count_at = boxes::layout(&empty).expect("layout").truns[0].at + 12;
    endless[count_at..count_at + 4].copy_from_slice(&u32::MAX.to_be_bytes());
    let endless = parse_moof(&endless, &TREX);
    assert!(matches!(endless, Err(CmafError::Unsupported(_))));
    // Another track's fragment.
    let mut other = TREX;
    other.track_id = 2;
    assert!(malformed(parse_moof(&m, &other).map(|_| ())));
    // A shift with nothing to shift.
    let plain = moof(0x20000, 1, (0, 0x301));
    assert!(malformed(rewrite_moof(&plain, rw(1, 0, 10)).map(|_| ())));
    rewrite_moof(&plain, rw(1, 0, 0)).expect("no shift and no offsets: fine");
    // An offset that no longer fits 32 signed bits.
    let unsupported = rewrite_moof(&m, rw(1, 0, i64::from(i32::MIN)));
    assert!(matches!(unsupported, Err(CmafError::Unsupported(_))));
}

#[test]
fn a_moof_with_two_trafs_is_unsupported() {
    let m = moof(0x20000, 1, (0, 0x301));
    let traf = boxes::layout(&m).expect("layout").traf_at;
    let two = bx(b"moof", &[&m[8..], &m[traf..]].concat());
    let parsed = parse_moof(&two, &TREX);
    assert!(matches!(parsed, Err(CmafError::Unsupported(_))));
    let rewritten = rewrite_moof(&two, rw(1, 0, 0));
    assert!(matches!(rewritten, Err(CmafError::Unsupported(_))));
}

#[test]
fn codec_strings_follow_their_specifications() {
    // HEVC: profile space 1, high tier, Main 10 compatible, all-zero
    // constraints dropped; and the 14496-15 example hvc1.1.6.L93.B0.
    let hvcc = [1, 0x62, 0x20, 0, 0, 0, 0, 0, 0, 0, 0, 0, 120];
    assert_eq!(codecs::hevc("hev1", &hvcc).expect("hevc"), "hev1.A2.4.H120");
    let hvcc = [1, 0x01, 0x60, 0, 0, 0, 0xb0, 0, 0, 0, 0, 0, 93];
    assert_eq!(
        codecs::hevc("hvc1", &hvcc).expect("hevc"),
        "hvc1.1.6.L93.B0"
    );
    // AV1: profile 2, level 13, high tier, 12 bit; and main 8 bit.
    let strings = [
        (codecs::av1(&[0x81, 0x4d, 0xe0]), "av01.2.13H.12"),
        (codecs::av1(&[0x81, 0x04, 0x0c]), "av01.0.04M.08"),
        (codecs::vp9(&[1, 0, 0, 0, 2, 31, 0xa2]), "vp09.02.31.10"),
        (codecs::avc("avc3", &[1, 0x4d, 0x40, 0x1f]), "avc3.4d401f"),
    ];
    for (got, want) in strings {
        assert_eq!(got.expect(want), want);
    }
    // esds with a URL and multi-byte sizes, and an escaped audio object
    // type: 31, then 6 bits 001010 -> 32 + 10 = 42 (USAC).
    let asc = [0xf9, 0x40];
    let mut dcd = vec![0x40, 0x15, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x05, 2];
    dcd.extend_from_slice(&asc);
    let head = [0x04, 0x80, 0x80, dcd.len() as u8];
    let es = [&[0, 1, 0x40, 3][..], b"url", &head, &dcd].concat();
    let mut esds = vec![0, 0, 0, 0, 0x03, es.len() as u8];
    esds.extend_from_slice(&es);
    assert_eq!(codecs::mp4a(&esds).expect("esds"), "mp4a.40.42");
    let mp3 = [0, 0, 0, 0, 0x03, 6, 0, 1, 0, 0x04, 1, 0x6b];
    assert_eq!(codecs::mp4a(&mp3).expect("mp3"), "mp4a.6b");
    let short = codecs::mp4a(&[0, 0, 0, 0, 0x03, 9]);
    assert!(matches!(short, Err(CmafError::Malformed(_))));
}
