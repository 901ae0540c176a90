use super::*;
use crate::streaming::decimal;
use crate::streaming::fixtures::*;

#[test]
fn running_master_lists_every_rung_with_the_audio_group() {
    assert_eq!(
        master_playlist(&running()),
        "#EXTM3U
#EXT-X-VERSION:7
#EXT-X-INDEPENDENT-SEGMENTS
#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=\"audio\",NAME=\"English\",LANGUAGE=\"en\",DEFAULT=YES,AUTOSELECT=YES,CHANNELS=\"2\",URI=\"audio/media.m3u8\"
#EXT-X-STREAM-INF:BANDWIDTH=5128000,AVERAGE-BANDWIDTH=4124110,RESOLUTION=1920x1080,CODECS=\"avc1.640028,mp4a.40.2\",FRAME-RATE=30.000,AUDIO=\"audio\"
1080p/media.m3u8
#EXT-X-STREAM-INF:BANDWIDTH=3128000,AVERAGE-BANDWIDTH=2624110,RESOLUTION=1280x720,CODECS=\"avc1.64001f,mp4a.40.2\",FRAME-RATE=30.000,AUDIO=\"audio\"
720p/media.m3u8
"
    );
}

#[test]
fn running_media_playlists_are_events_without_endlist() {
    let p = running();
    let rung = p.rendition("720p").expect("720p");
    assert_eq!(
        media_playlist(&p, rung),
        "#EXTM3U
#EXT-X-VERSION:7
#EXT-X-TARGETDURATION:4
#EXT-X-MEDIA-SEQUENCE:0
#EXT-X-PLAYLIST-TYPE:EVENT
#EXT-X-INDEPENDENT-SEGMENTS
#EXT-X-MAP:URI=\"init.mp4\"
#EXTINF:4.000000,
0.m4s
#EXTINF:4.000000,
1.m4s
"
    );
    let audio = p.rendition("audio").expect("audio");
    let playlist = media_playlist(&p, audio);
    assert!(
        playlist.ends_with(
            "#EXTINF:4.000000,\n0.m4s\n#EXTINF:3.989333,\n1.m4s\n#EXTINF:4.000000,\n2.m4s\n"
        ),
        "{playlist}"
    );
}

#[test]
fn finished_playlists_are_vod_with_endlist() {
    let p = finished();
    let rung = p.rendition("1080p").expect("1080p");
    assert_eq!(
        media_playlist(&p, rung),
        "#EXTM3U
#EXT-X-VERSION:7
#EXT-X-TARGETDURATION:4
#EXT-X-MEDIA-SEQUENCE:0
#EXT-X-PLAYLIST-TYPE:VOD
#EXT-X-INDEPENDENT-SEGMENTS
#EXT-X-MAP:URI=\"init.mp4\"
#EXTINF:4.000000,
0.m4s
#EXTINF:4.000000,
1.m4s
#EXTINF:2.000000,
2.m4s
#EXT-X-ENDLIST
"
    );
    let master = master_playlist(&p);
    assert!(
        master.contains("BANDWIDTH=2628000,AVERAGE-BANDWIDTH=2128000,RESOLUTION=1280x720,"),
        "{master}"
    );
}

#[test]
fn without_audio_variants_name_no_group() {
    let p = package(
        vec![video(
            "360p",
            (640, 360),
            "avc1.64001e",
            &[(V4, 400_000), (V4, 300_000)],
        )],
        false,
    );
    assert_eq!(
        master_playlist(&p),
        "#EXTM3U
#EXT-X-VERSION:7
#EXT-X-INDEPENDENT-SEGMENTS
#EXT-X-STREAM-INF:BANDWIDTH=800000,AVERAGE-BANDWIDTH=700000,RESOLUTION=640x360,CODECS=\"avc1.64001e\",FRAME-RATE=30.000
360p/media.m3u8
"
    );
}

#[test]
fn ntsc_frame_rates_have_three_decimals() {
    let mut p = running();
    p.renditions.truncate(1);
    for (rate, shown) in [
        ((30_000, 1001), "FRAME-RATE=29.970"),
        ((24_000, 1001), "FRAME-RATE=23.976"),
        ((60_000, 1001), "FRAME-RATE=59.940"),
        ((25, 1), "FRAME-RATE=25.000"),
    ] {
        p.renditions[0].kind = RenditionKind::Video {
            width: 1920,
            height: 1080,
            frame_rate: rate,
        };
        let master = master_playlist(&p);
        assert!(master.contains(&format!("{shown}\n")), "{master}");
    }
    // A rate never probed is left out rather than shown as 0.
    assert_eq!(frame_rate_attr((0, 0)), None);
    assert_eq!(frame_rate_attr((30, 0)), None);
}

#[test]
fn renditions_without_init_are_left_out_of_the_master() {
    let mut p = running();
    p.renditions[1].init = None;
    p.renditions[1].codecs.clear();
    let master = master_playlist(&p);
    assert!(!master.contains("720p"), "{master}");
    assert!(master.contains("1080p/media.m3u8"), "{master}");
    // Its media playlist has no map to point at.
    assert!(!media_playlist(&p, &p.renditions[1]).contains("EXT-X-MAP"));
    // Without a ready audio track there is no group to name.
    p.renditions[2].init = None;
    let master = master_playlist(&p);
    assert!(!master.contains("AUDIO"), "{master}");
    assert!(master.contains("CODECS=\"avc1.640028\","), "{master}");
}

#[test]
fn audio_tracks_form_one_group_with_one_default() {
    let mut p = running();
    let mut second = audio(
        "audio-2",
        None,
        "Director's \"cut\"\r\n",
        &[(192_000, 96_000)],
    );
    second.codecs = "ac-3".into();
    p.renditions.push(second);
    let master = master_playlist(&p);
    assert!(
        master.contains(
            "NAME=\"Director's 'cut'  \",DEFAULT=NO,AUTOSELECT=YES,CHANNELS=\"2\",URI=\"audio-2/media.m3u8\"\n"
        ),
        "{master}"
    );
    assert_eq!(master.matches("DEFAULT=YES").count(), 1, "{master}");
    // The variant may play either track: both codecs, the higher peak.
    assert!(
        master.contains("BANDWIDTH=5192000,")
            && master.contains("CODECS=\"avc1.640028,mp4a.40.2,ac-3\""),
        "{master}"
    );
}

#[test]
fn seconds_are_exact_decimals() {
    assert_eq!(decimal(192_512, 48_000, 6), "4.010667");
    assert_eq!(decimal(1, 3, 6), "0.333333");
    assert_eq!(decimal(2, 3, 6), "0.666667");
    assert_eq!(decimal(30_000, 1001, 3), "29.970");
    assert_eq!(decimal(u64::MAX, 1, 3), format!("{}.000", u64::MAX));
    assert_eq!(decimal(7, 2, 0), "4");
    assert_eq!(decimal(5, 0, 3), "0.000");
}

/// The `(EXTINF seconds, URI)` pairs and the target duration of a media
/// playlist.
fn parse(playlist: &str) -> (u64, Vec<(f64, String)>) {
    let mut target = None;
    let mut entries = Vec::new();
    let mut lines = playlist.lines();
    while let Some(line) = lines.next() {
        if let Some(t) = line.strip_prefix("#EXT-X-TARGETDURATION:") {
            target = Some(t.parse().expect("integer target duration"));
        } else if let Some(secs) = line.strip_prefix("#EXTINF:") {
            let secs = secs.strip_suffix(',').expect("EXTINF ends with a comma");
            let uri = lines.next().expect("a URI follows EXTINF");
            entries.push((secs.parse().expect("decimal EXTINF"), uri.to_string()));
        }
    }
    (target.expect("EXT-X-TARGETDURATION"), entries)
}

#[test]
fn media_playlists_add_up_and_stay_within_the_target() {
    for seed in 0..300 {
        let p = random_package(seed, false);
        for r in &p.renditions {
            let playlist = media_playlist(&p, r);
            let (target, entries) = parse(&playlist);
            assert_eq!(target, u64::from(p.target_duration()));
            assert_eq!(entries.len(), r.segments.len(), "seed {seed}");
            let sum: f64 = entries.iter().map(|e| e.0).sum();
            // Each value is off by at most half a microsecond.
            let slack = 5e-7 * entries.len() as f64 + 1e-9;
            assert!((sum - r.seconds()).abs() <= slack, "seed {seed}: {sum}");
            for (n, (secs, uri)) in entries.iter().enumerate() {
                assert!(secs.round() as u64 <= target, "seed {seed}: {secs}");
                assert_eq!(uri, &format!("{n}.m4s"));
            }
            assert_eq!(playlist.ends_with("#EXT-X-ENDLIST\n"), p.finished);
        }
    }
}
