use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};

use super::*;

// ---- helpers: real files made by ffmpeg -------------------------------------

/// A fresh directory under the system temp dir, removed when dropped.
struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Self {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let pid = std::process::id();
        let dir = std::env::temp_dir().join(format!("vidshard-cmaf-{pid}-{n}-{name}"));
        // Command lines below are split on whitespace.
        assert!(!dir.display().to_string().contains(' '), "{dir:?}");
        std::fs::create_dir_all(&dir).expect("make scratch dir");
        Scratch(dir)
    }

    fn file(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Runs `ffmpeg ...` or `ffprobe ...` (split on whitespace), checks that
/// it succeeded and returns its stdout and stderr.
fn run(cmdline: &str) -> (String, String) {
    let mut words = cmdline.split_whitespace();
    let tool = words.next().expect("a tool");
    let mut cmd = Command::new(tool);
    if tool == "ffmpeg" {
        cmd.args(["-nostdin", "-y"]);
    }
    let out = cmd.args(["-v", "error"]).args(words).output();
    let out = out.expect("run tool");
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert!(out.status.success(), "{cmdline}: {stderr}");
    (stdout, stderr)
}

/// How the master remuxes an encoded video shard: a fragment per keyframe.
const VIDEO_FLAGS: &str = "+frag_keyframe+empty_moov+default_base_moof+negative_cts_offsets";
/// The same without negative composition offsets (ffmpeg then writes
/// trun version 0 and the first frame's offset is positive).
const PLAIN_FLAGS: &str = "+frag_keyframe+empty_moov+default_base_moof";

/// 6 s of 320x180 30 fps H.264 with B-frames and a keyframe every 2 s
/// (as a ladder rung encodes a shard), as nut.
fn h264_shard(dir: &Scratch) -> PathBuf {
    let nut = dir.file("shard.nut");
    run(&format!(
        "ffmpeg -f lavfi -i testsrc2=size=320x180:rate=30 -t 6 -c:v libx264 -bf 3 \
         -pix_fmt yuv420p -force_key_frames expr:gte(t,n_forced*2) -x264-params scenecut=0 \
         -g 1000 {}",
        nut.display()
    ));
    nut
}

fn remux(source: &Path, out: &Path, movflags: &str, extra: &str) {
    let (i, o) = (source.display(), out.display());
    run(&format!(
        "ffmpeg -i {i} -c copy -movflags {movflags} {extra} -f mp4 {o}"
    ));
}

fn rw(sequence: u32, decode_time: u64, composition_shift: i64) -> Rewrite {
    Rewrite {
        sequence,
        decode_time,
        composition_shift,
    }
}

fn size_at(bytes: &[u8], at: usize) -> u32 {
    u32::from_be_bytes(bytes[at..at + 4].try_into().expect("4 bytes"))
}

/// Writes every fragment as a segment continuing from `base`, and joins
/// init + segments into one file, as a player would fetch them. Returns
/// the smallest composition offset written.
async fn join_segments(source: &Path, scanned: &Fragmented, base: u64, joined: &Path) -> i64 {
    let mut all = scanned.init.clone();
    let (mut start, mut min_cto) = (base, 0);
    for (i, f) in scanned.fragments.iter().enumerate() {
        let rewrite = rw(100 + i as u32, start, f.first_composition_offset);
        let out = joined.with_extension(format!("seg{i}"));
        let written = write_segment(source, f, rewrite, &out).await;
        let written = written.expect("write segment");
        let bytes = std::fs::read(&out).expect("read segment");
        let moof_len = size_at(&bytes, 0) as usize;
        assert_eq!(written, bytes.len() as u64);
        assert_eq!(written, moof_len as u64 + f.mdat_size);
        let facts = parse_moof(&bytes[..moof_len], &TrexDefaults::default()).expect("reparse");
        assert_eq!((facts.sequence, facts.decode_time), (100 + i as u32, start));
        assert_eq!(facts.duration, f.duration);
        assert_eq!(facts.earliest_presentation, 0, "CMAF: earliest pts = tfdt");
        assert!(start <= u64::from(u32::MAX) || facts.tfdt_version == 1);
        all.extend_from_slice(&bytes);
        start += f.duration;
        min_cto = min_cto.min(facts.min_composition_offset);
    }
    std::fs::write(joined, all).expect("write joined");
    min_cto
}

/// Copies a fragmented MP4 whose tfdt boxes are version 1 with version-0
/// ones (4 bytes shorter: moof, traf and tfdt sizes and the data offsets
/// shrink with them). ffmpeg itself always writes version 1.
async fn copy_with_v0_tfdt(source: &Path, out: &Path) {
    let s = scan(source).await.expect("scan");
    let bytes = std::fs::read(source).expect("read");
    let mut copy = s.init.clone();
    for f in &s.fragments {
        let (at, end) = (f.offset as usize, (f.offset + f.moof_size) as usize);
        let mut moof = bytes[at..end].to_vec();
        let l = boxes::layout(&moof).expect("layout");
        assert_eq!(l.tfdt.version, 1);
        for trun in &l.truns {
            let o = trun.data_offset.expect("data offset") - 4;
            let field = trun.at + trun.header + 8;
            moof[field..field + 4].copy_from_slice(&o.to_be_bytes());
        }
        let value = u32::try_from(l.tfdt.value).expect("32-bit time");
        let value_at = l.tfdt.version_at + 4;
        moof.splice(value_at..value_at + 8, value.to_be_bytes());
        moof[l.tfdt.version_at] = 0;
        for box_at in [0, l.traf_at, l.tfdt.at] {
            let size = size_at(&moof, box_at) - 4;
            moof[box_at..box_at + 4].copy_from_slice(&size.to_be_bytes());
        }
        copy.extend_from_slice(&moof);
        copy.extend_from_slice(&bytes[end..end + f.mdat_size as usize]);
    }
    std::fs::write(out, copy).expect("write");
}

/// (pts, dts, key) of each packet of the first stream, as ffprobe reads them.
fn packets(file: &Path) -> Vec<(i64, i64, bool)> {
    let (csv, _) = run(&format!(
        "ffprobe -select_streams 0 -show_entries packet=pts,dts,flags -of csv=p=0 {}",
        file.display()
    ));
    let number = |s: &str| s.parse::<i64>().unwrap_or_else(|_| panic!("number: {s}"));
    csv.lines()
        .map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            (number(f[0]), number(f[1]), f[2].starts_with('K'))
        })
        .collect()
}

/// The md5 of every decoded frame, in output order (timestamps left out).
fn frame_hashes(file: &Path) -> Vec<String> {
    let (out, _) = run(&format!("ffmpeg -i {} -f framemd5 -", file.display()));
    let hash = |l: &str| l.rsplit(',').next().unwrap_or_default().trim().to_string();
    out.lines()
        .filter(|l| !l.starts_with('#'))
        .map(hash)
        .collect()
}

/// Decodes the whole file: ffmpeg must succeed without a word on stderr.
fn decodes_cleanly(file: &Path) {
    let (_, errors) = run(&format!("ffmpeg -i {} -f null -", file.display()));
    assert_eq!(errors, "", "{file:?}");
}

const VIDEO: TrackKind = TrackKind::Video {
    width: 320,
    height: 180,
};

// ---- real files -------------------------------------------------------------

/// What scanning the remuxed 6 s H.264 shard must find.
fn check_h264(s: &Fragmented, mp4: &Path, name: &str) {
    assert!(s.track.codecs.starts_with("avc1.64"), "{}", s.track.codecs);
    assert_eq!(s.track.kind, VIDEO);
    let ts = u64::from(s.track.timescale);
    assert_eq!(s.fragments.len(), 3, "{name}: {:?}", s.fragments);
    let mut next = 0;
    for f in &s.fragments {
        assert!(f.starts_with_sync && f.samples == 60, "{name}: {f:?}");
        assert_eq!(f.decode_time, next, "{name}: fragments follow on");
        next += f.duration;
    }
    assert_eq!(next, 6 * ts, "{name}: 6 s in all");
    // B-frames delay the first frame; with negative_cts_offsets ffmpeg
    // 5.1 has already subtracted that delay (the offset is then 0).
    let first = s.fragments[0].first_composition_offset;
    let delayed = first > 0 || (name == "negative" && first == 0);
    assert!(delayed, "{name}: first composition offset {first}");
    let bytes = std::fs::read(mp4).expect("read");
    assert!(bytes.starts_with(&s.init), "{name}: ftyp + moov as is");
    assert_eq!(codecs_of(&s.init).expect("codecs"), s.track);
}

#[tokio::test]
async fn an_h264_shard_is_cut_into_segments_that_continue_the_timeline() {
    let dir = Scratch::new("h264");
    let nut = h264_shard(&dir);
    let source = frame_hashes(&nut);
    assert_eq!(source.len(), 180);
    let negative = dir.file("negative.mp4");
    remux(&nut, &negative, VIDEO_FLAGS, "");
    let plain = dir.file("plain.mp4");
    remux(&nut, &plain, PLAIN_FLAGS, "");
    let v0 = dir.file("tfdt-v0.mp4");
    copy_with_v0_tfdt(&plain, &v0).await;
    let same = packets(&v0) == packets(&plain);
    assert!(same, "the tfdt-v0 copy has the same timeline");

    // Beyond 32 bits: a version-0 tfdt has to grow.
    let base = 5_000_000_000u64;
    for (name, mp4) in [("negative", negative), ("plain", plain), ("tfdt-v0", v0)] {
        let s = scan(&mp4).await.expect("scan");
        check_h264(&s, &mp4, name);
        let joined = dir.file(&format!("{name}-joined.mp4"));
        let min_cto = join_segments(&mp4, &s, base, &joined).await;
        let ts = i64::from(s.track.timescale);
        let again = scan(&joined).await.expect("scan joined");
        assert_eq!(again.init, s.init);
        let step = 2 * ts as u64;
        let frags = &again.fragments;
        let starts = frags
            .iter()
            .map(|f| (f.decode_time, f.first_composition_offset));
        let want = [(base, 0), (base + step, 0), (base + 2 * step, 0)];
        assert!(starts.eq(want), "{name}: {frags:?}");

        // ffmpeg's demuxer adds -(smallest composition offset) to every
        // pts when offsets are negative (its dts_shift); dts is as written.
        let shift = -min_cto.min(0);
        let got = packets(&joined);
        assert_eq!(got.len(), 180, "{name}");
        let base = base as i64;
        assert_eq!(got[0].1, base, "{name}: first dts is the base");
        let keys: Vec<(i64, i64)> = got.iter().filter(|p| p.2).map(|p| (p.0, p.1)).collect();
        let key = |k: i64| (base + k * 2 * ts + shift, base + k * 2 * ts);
        let want: Vec<(i64, i64)> = (0..3).map(key).collect();
        assert_eq!(keys, want, "{name}: keyframes at base, +2 s, +4 s");
        let mut pts: Vec<i64> = got.iter().map(|p| p.0).collect();
        pts.sort_unstable();
        let lattice: Vec<i64> = (0..180).map(|i| base + shift + i * ts / 30).collect();
        assert!(pts == lattice, "{name}: a frame each 1/30 s, none twice");

        decodes_cleanly(&joined);
        let same = frame_hashes(&joined) == source;
        assert!(same, "{name}: the same pictures in the same order");
    }
}

#[tokio::test]
async fn aac_audio_is_cut_and_joined() {
    let dir = Scratch::new("aac");
    let nut = dir.file("audio.nut");
    let sine = "-f lavfi -i sine=frequency=440:sample_rate=48000 -t 6 -ac 2";
    run(&format!("ffmpeg {sine} -c:a aac {}", nut.display()));
    let mp4 = dir.file("audio.mp4");
    let flags = "+empty_moov+default_base_moof+negative_cts_offsets";
    remux(&nut, &mp4, flags, "-frag_duration 2000000");
    let s = scan(&mp4).await.expect("scan");
    assert_eq!(s.track.codecs, "mp4a.40.2");
    let stereo = TrackKind::Audio {
        channels: 2,
        sample_rate: 48000,
    };
    assert_eq!((&s.track.kind, s.track.timescale), (&stereo, 48000));
    assert!(s.fragments.len() >= 3, "{:?}", s.fragments);
    assert!(s.fragments.iter().all(|f| f.starts_with_sync));
    let total: u64 = s.fragments.iter().map(|f| f.duration).sum();
    let samples: u32 = s.fragments.iter().map(|f| f.samples).sum();
    assert_eq!(total, u64::from(samples) * 1024, "1024 per AAC frame");
    assert!((288_000..288_000 + 2048).contains(&total), "6 s: {total}");

    let joined = dir.file("joined.mp4");
    join_segments(&mp4, &s, 48000 * 3600, &joined).await;
    let got = packets(&joined);
    assert_eq!(got.len(), samples as usize);
    assert_eq!(got[0].1, 48000 * 3600);
    decodes_cleanly(&joined);
}

#[tokio::test]
async fn hevc_av1_and_vp9_get_codec_strings_of_the_right_shape() {
    let dir = Scratch::new("codecs");
    let x265 = "libx265 -x265-params log-level=error -tag:v hvc1";
    let cases = [
        ("hevc", x265, "hvc1.1.6.L"),
        ("av1", "libsvtav1", "av01.0."),
        ("vp9", "libvpx-vp9 -b:v 200k", "vp09.00."),
    ];
    for (name, codec, prefix) in cases {
        let mp4 = dir.file(&format!("{name}.mp4"));
        run(&format!(
            "ffmpeg -f lavfi -i testsrc2=size=320x180:rate=30 -t 1 -pix_fmt yuv420p -c:v {codec} \
             -movflags {VIDEO_FLAGS} -f mp4 {}",
            mp4.display()
        ));
        let s = scan(&mp4).await.unwrap_or_else(|e| panic!("{name}: {e}"));
        let c = &s.track.codecs;
        assert!(c.starts_with(prefix), "{name}: {c}");
        let parts: Vec<&str> = c.split('.').collect();
        match name {
            "av1" => assert!(parts.len() == 4 && parts[2].ends_with('M') && parts[3] == "08"),
            "vp9" => assert!(parts.len() == 4 && parts[3] == "08", "{c}"),
            _ => assert!(parts.len() >= 4, "{c}"),
        }
        assert_eq!(s.track.kind, VIDEO, "{name}");
        assert!(s.fragments.iter().all(|f| f.starts_with_sync), "{name}");
    }
}

#[tokio::test]
async fn broken_and_foreign_files_are_refused_with_reasons() {
    let dir = Scratch::new("refuse");
    let nut = h264_shard(&dir);
    let mp4 = dir.file("frag.mp4");
    remux(&nut, &mp4, VIDEO_FLAGS, "");
    let s = scan(&mp4).await.expect("scan");
    let bytes = std::fs::read(&mp4).expect("read");

    // Cut in the middle of the second mdat.
    let f = &s.fragments[1];
    let cut = dir.file("cut.mp4");
    let half = f.offset + f.moof_size + f.mdat_size / 2;
    std::fs::write(&cut, &bytes[..half as usize]).expect("write");
    match scan(&cut).await {
        Err(CmafError::Malformed(m)) => assert!(m.contains("truncated"), "{m}"),
        other => panic!("{other:?}"),
    }

    // A final mdat with size 0 ("to the end of the file") is accepted, and
    // its segment is given the real size.
    let last = s.fragments.last().expect("fragments");
    let mdat_at = (last.offset + last.moof_size) as usize;
    let mut open = bytes[..mdat_at + last.mdat_size as usize].to_vec(); // no mfra
    open[mdat_at..mdat_at + 4].copy_from_slice(&[0; 4]);
    let open_path = dir.file("open.mp4");
    std::fs::write(&open_path, &open).expect("write");
    let reopened = scan(&open_path).await.expect("scan size-0 mdat");
    assert_eq!(reopened.fragments, s.fragments);
    let seg = dir.file("last.m4s");
    let written = write_segment(&open_path, last, rw(1, 0, 0), &seg).await;
    written.expect("segment");
    let seg = std::fs::read(&seg).expect("read");
    let at = last.moof_size as usize;
    assert_eq!(&seg[at..at + 8], &bytes[mdat_at..mdat_at + 8]);

    // Not fragmented.
    let plain = dir.file("plain.mp4");
    let (i, o) = (nut.display(), plain.display());
    run(&format!("ffmpeg -i {i} -c copy {o}"));
    assert!(matches!(scan(&plain).await, Err(CmafError::Unsupported(_))));

    // Two tracks.
    let both = dir.file("both.mp4");
    let (i, o) = (nut.display(), both.display());
    let sine = "-f lavfi -i sine=sample_rate=48000 -t 6";
    run(&format!(
        "ffmpeg -i {i} {sine} -c:v copy -c:a aac -movflags {VIDEO_FLAGS} {o}"
    ));
    match scan(&both).await {
        Err(CmafError::Unsupported(m)) => assert!(m.contains("2 tracks"), "{m}"),
        other => panic!("{other:?}"),
    }
    let missing = scan(&dir.file("none.mp4")).await;
    assert!(matches!(missing, Err(CmafError::Io(_))));
}

// ---- hand-built moofs -------------------------------------------------------

#[path = "cmaf_fixture_tests.rs"]
mod fixtures;
