use super::*;
use crate::streaming::fixtures::*;

/// 2026-12-04T16:00:00.000Z.
const SINCE: u64 = 1_796_400_000_000;

#[test]
fn running_mpd_is_dynamic_from_the_availability_start() {
    assert_eq!(
        mpd(&running(), SINCE + 12_345, SINCE),
        r#"<?xml version="1.0" encoding="UTF-8"?>
<MPD xmlns="urn:mpeg:dash:schema:mpd:2011" profiles="urn:mpeg:dash:profile:isoff-live:2011" minBufferTime="PT2S" type="dynamic" availabilityStartTime="2026-12-04T16:00:00.000Z" publishTime="2026-12-04T16:00:12.345Z" minimumUpdatePeriod="PT2S" timeShiftBufferDepth="PT73S" suggestedPresentationDelay="PT12S">
  <Period id="0" start="PT0S">
    <AdaptationSet id="0" contentType="video" mimeType="video/mp4" segmentAlignment="true" startWithSAP="1" maxWidth="1920" maxHeight="1080" frameRate="30">
      <Representation id="1080p" bandwidth="5000000" width="1920" height="1080" codecs="avc1.640028" frameRate="30">
        <SegmentTemplate timescale="15360" initialization="$RepresentationID$/init.mp4" media="$RepresentationID$/$Number$.m4s" startNumber="0">
          <SegmentTimeline>
            <S t="0" d="61440" r="2"/>
          </SegmentTimeline>
        </SegmentTemplate>
      </Representation>
      <Representation id="720p" bandwidth="3000000" width="1280" height="720" codecs="avc1.64001f" frameRate="30">
        <SegmentTemplate timescale="15360" initialization="$RepresentationID$/init.mp4" media="$RepresentationID$/$Number$.m4s" startNumber="0">
          <SegmentTimeline>
            <S t="0" d="61440" r="1"/>
          </SegmentTimeline>
        </SegmentTemplate>
      </Representation>
    </AdaptationSet>
    <AdaptationSet id="1" contentType="audio" mimeType="audio/mp4" lang="en" segmentAlignment="true" startWithSAP="1">
      <Representation id="audio" bandwidth="128000" codecs="mp4a.40.2" audioSamplingRate="48000">
        <AudioChannelConfiguration schemeIdUri="urn:mpeg:dash:23003:3:audio_channel_configuration:2011" value="2"/>
        <SegmentTemplate timescale="48000" initialization="$RepresentationID$/init.mp4" media="$RepresentationID$/$Number$.m4s" startNumber="0">
          <SegmentTimeline>
            <S t="0" d="192000"/>
            <S d="191488"/>
            <S d="192000"/>
          </SegmentTimeline>
        </SegmentTemplate>
      </Representation>
    </AdaptationSet>
  </Period>
  <UTCTiming schemeIdUri="urn:mpeg:dash:utc:direct:2014" value="2026-12-04T16:00:12.345Z"/>
</MPD>
"#
    );
}

#[test]
fn finished_mpd_is_static_as_long_as_its_longest_rendition() {
    let mut p = finished();
    // Audio a little longer than the video: 10.0106… s.
    p.renditions[2].segments[2].duration += 512;
    let xml = mpd(&p, SINCE + 3_600_000, SINCE);
    let head = r#"minBufferTime="PT2S" type="static" mediaPresentationDuration="PT10.011S">"#;
    assert!(xml.contains(&format!("{head}\n  <Period")), "{xml}");
    assert!(xml.ends_with("  </Period>\n</MPD>\n"), "{xml}");
    assert!(!xml.contains("UTCTiming"));
    assert!(xml.contains(
        "          <SegmentTimeline>\n            <S t=\"0\" d=\"61440\" r=\"1\"/>\n            <S d=\"30720\"/>\n          </SegmentTimeline>\n"
    ));
}

#[test]
fn without_audio_there_is_only_the_video_set() {
    let p = package(
        vec![video("360p", (640, 360), "avc1.64001e", &[(V4, 400_000)])],
        true,
    );
    assert_eq!(
        mpd(&p, SINCE, SINCE),
        r#"<?xml version="1.0" encoding="UTF-8"?>
<MPD xmlns="urn:mpeg:dash:schema:mpd:2011" profiles="urn:mpeg:dash:profile:isoff-live:2011" minBufferTime="PT2S" type="static" mediaPresentationDuration="PT4.000S">
  <Period id="0" start="PT0S">
    <AdaptationSet id="0" contentType="video" mimeType="video/mp4" segmentAlignment="true" startWithSAP="1" maxWidth="640" maxHeight="360" frameRate="30">
      <Representation id="360p" bandwidth="800000" width="640" height="360" codecs="avc1.64001e" frameRate="30">
        <SegmentTemplate timescale="15360" initialization="$RepresentationID$/init.mp4" media="$RepresentationID$/$Number$.m4s" startNumber="0">
          <SegmentTimeline>
            <S t="0" d="61440"/>
          </SegmentTimeline>
        </SegmentTemplate>
      </Representation>
    </AdaptationSet>
  </Period>
</MPD>
"#
    );
}

#[test]
fn equal_back_to_back_segments_collapse_into_runs() {
    const V2: u64 = V4 / 2;
    let parts = [V4, V4, V2, V4, V4, V2].map(|d| (d, 1000));
    let run = |t, d, r| Run { t, d, r };
    assert_eq!(
        runs(&segments(&parts)),
        vec![
            run(Some(0), V4, 1),
            run(None, V2, 0),
            run(None, V4, 1),
            run(None, V2, 0)
        ]
    );
    let p = package(vec![video("1080p", (1920, 1080), "avc1.6", &parts)], false);
    let xml = mpd(&p, SINCE, SINCE);
    assert!(
        xml.contains(concat!(
            "            <S t=\"0\" d=\"61440\" r=\"1\"/>\n",
            "            <S d=\"30720\"/>\n",
            "            <S d=\"61440\" r=\"1\"/>\n",
            "            <S d=\"30720\"/>\n",
            "          </SegmentTimeline>",
        )),
        "{xml}"
    );
}

#[test]
fn a_gap_restates_the_start() {
    let mut s = segments(&[(V4, 1), (V4, 1), (V4, 1), (V4, 1)]);
    for later in &mut s[2..] {
        later.start += 512;
    }
    let run = |t, r| Run { t, d: V4, r };
    assert_eq!(runs(&s), vec![run(Some(0), 1), run(Some(2 * V4 + 512), 1)]);
    assert_eq!(runs(&[]), vec![]);
}

#[test]
fn frame_rates_are_exact_fractions() {
    assert_eq!(frame_rate((30, 1)), "30");
    assert_eq!(frame_rate((60, 2)), "30");
    assert_eq!(frame_rate((30_000, 1001)), "30000/1001");
    assert_eq!(frame_rate((48_000, 2002)), "24000/1001");
    let mut p = running();
    let set = |r: &mut Rendition, rate| {
        if let RenditionKind::Video { frame_rate, .. } = &mut r.kind {
            *frame_rate = rate;
        }
    };
    set(&mut p.renditions[0], (60_000, 1001));
    set(&mut p.renditions[1], (30_000, 1001));
    let xml = mpd(&p, SINCE, SINCE);
    assert!(
        xml.contains(r#"="1080" maxFrameRate="60000/1001">"#),
        "{xml}"
    );
    assert!(
        xml.contains(r#"="avc1.64001f" frameRate="30000/1001">"#),
        "{xml}"
    );
    set(&mut p.renditions[0], (30_000, 1001));
    let xml = mpd(&p, SINCE, SINCE);
    assert!(xml.contains(r#"="1080" frameRate="30000/1001">"#), "{xml}");
}

#[test]
fn dates_are_iso8601_utc() {
    assert_eq!(iso8601(0), "1970-01-01T00:00:00.000Z");
    assert_eq!(iso8601(1_796_400_000_000), "2026-12-04T16:00:00.000Z");
    assert_eq!(iso8601(1_796_378_400_000), "2026-12-04T10:00:00.000Z");
    assert_eq!(iso8601(1_709_164_800_000), "2024-02-29T00:00:00.000Z");
    assert_eq!(iso8601(1_709_251_199_999), "2024-02-29T23:59:59.999Z");
    assert_eq!(iso8601(951_868_799_000), "2000-02-29T23:59:59.000Z");
    // 2100 is not a leap year: February 28th is followed by March 1st.
    assert_eq!(iso8601(4_107_542_399_000), "2100-02-28T23:59:59.000Z");
    assert_eq!(iso8601(4_107_542_400_000), "2100-03-01T00:00:00.000Z");
    assert_eq!(iso8601(253_402_300_799_999), "9999-12-31T23:59:59.999Z");
}

#[test]
fn time_shift_window_reaches_back_to_the_start() {
    // The clock an hour past the start, the encoder 12 s in.
    let xml = mpd(&running(), SINCE + 3_600_000, SINCE);
    assert!(xml.contains(r#"timeShiftBufferDepth="PT3660S""#), "{xml}");
    // A clock behind the start (skewed node) does not underflow.
    let xml = mpd(&running(), SINCE - 5_000, SINCE);
    assert!(xml.contains(r#"timeShiftBufferDepth="PT72S""#), "{xml}");
}

#[test]
fn attribute_values_are_escaped() {
    assert_eq!(attr(r#"a&b<c>d"e"#), "a&amp;b&lt;c&gt;d&quot;e");
    let mut p = running();
    if let RenditionKind::Audio { language, .. } = &mut p.renditions[2].kind {
        *language = Some(r#"en"&<x>"#.into());
    }
    let xml = mpd(&p, SINCE, SINCE);
    assert!(xml.contains(r#" lang="en&quot;&amp;&lt;x&gt;" "#), "{xml}");
    well_formed(&xml).expect("well-formed");
}

/// Checks what an MPD needs of XML well-formedness without an XML crate:
/// the declaration, one root element, every tag closed in order, quoted
/// attribute values without a raw `<` or a bare `&`, no repeated
/// attribute, and no text outside tags (an MPD of ours has none).
fn well_formed(xml: &str) -> Result<(), String> {
    let mut rest = xml
        .strip_prefix("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n")
        .ok_or("no XML declaration")?;
    let (mut open, mut roots) = (Vec::new(), 0);
    while let Some(lt) = rest.find('<') {
        if !rest[..lt].trim().is_empty() {
            return Err(format!("text outside a tag: {:?}", &rest[..lt]));
        }
        let mut quoted = false;
        let gt = rest[lt..]
            .char_indices()
            .find(|&(_, c)| {
                quoted ^= c == '"';
                c == '>' && !quoted
            })
            .map(|(i, _)| lt + i)
            .ok_or("unclosed tag")?;
        let tag = &rest[lt + 1..gt];
        rest = &rest[gt + 1..];
        if let Some(name) = tag.strip_prefix('/') {
            match open.pop() {
                Some(top) if top == name => continue,
                top => return Err(format!("</{name}> closes {top:?}")),
            }
        }
        let (body, closes) = tag.strip_suffix('/').map_or((tag, false), |b| (b, true));
        let (name, mut attrs) = body.split_once(char::is_whitespace).unwrap_or((body, ""));
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric()) {
            return Err(format!("bad tag name {name:?}"));
        }
        let mut seen = Vec::new();
        while !attrs.trim().is_empty() {
            let attr = attrs.trim_start().split_once("=\"");
            let (key, after) = attr.ok_or(format!("bad attribute in <{name}>"))?;
            let (value, after) = after.split_once('"').ok_or("unterminated value")?;
            let bare_amp = value.match_indices('&').any(|(i, _)| {
                !["&amp;", "&lt;", "&gt;", "&quot;", "&apos;"]
                    .iter()
                    .any(|e| value[i..].starts_with(e))
            });
            if value.contains('<') || bare_amp || seen.contains(&key) {
                return Err(format!("bad attribute {key}={value:?}"));
            }
            seen.push(key);
            attrs = after;
        }
        if open.is_empty() {
            roots += 1;
        }
        if !closes {
            open.push(name);
        }
    }
    match (rest.trim().is_empty(), open.is_empty(), roots) {
        (true, true, 1) => Ok(()),
        _ => Err(format!("{roots} roots, {open:?} left open")),
    }
}

#[test]
fn the_checker_catches_broken_xml() {
    let decl = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n";
    let bad = "<a><b></a></b>|<a x='1&2'/>|<a x='1' x='2'/>|<a/><b/>|<a>|<a>t</a>";
    for bad in bad.split('|').map(|b| b.replace('\'', "\"")) {
        assert!(well_formed(&format!("{decl}{bad}")).is_err(), "{bad}");
    }
    well_formed(&format!("{decl}<a x=\"&amp;\"><b/></a>\n")).expect("good");
}

#[test]
fn every_mpd_is_well_formed_and_its_timelines_replay_the_segments() {
    for seed in 0..300 {
        let p = random_package(seed, seed % 2 == 0);
        let xml = mpd(&p, SINCE + seed * 1000, SINCE);
        well_formed(&xml).unwrap_or_else(|e| panic!("seed {seed}: {e}\n{xml}"));
        // Expand every timeline back into (start, duration) pairs.
        let mut timelines = xml.split("<SegmentTimeline>").skip(1);
        for r in &p.renditions {
            let timeline = timelines.next().expect("a timeline per rendition");
            let timeline = &timeline[..timeline.find("</SegmentTimeline>").expect("closed")];
            let mut replayed = Vec::new();
            let mut at = 0;
            for s in timeline.split("<S ").skip(1) {
                let field = |k: &str| {
                    s.split_once(&format!("{k}=\"")).map(|(_, v)| {
                        v[..v.find('"').expect("quoted")]
                            .parse::<u64>()
                            .expect("integer")
                    })
                };
                at = field("t").unwrap_or(at);
                let d = field("d").expect("d");
                for _ in 0..=field("r").unwrap_or(0) {
                    replayed.push((at, d));
                    at += d;
                }
            }
            let recorded: Vec<_> = r.segments.iter().map(|s| (s.start, s.duration)).collect();
            assert_eq!(replayed, recorded, "seed {seed}: {}", r.id);
        }
        assert!(timelines.next().is_none());
        assert_eq!(xml.contains(r#"type="static""#), p.finished);
    }
}
