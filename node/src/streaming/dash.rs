//! The DASH MPD (ISO/IEC 23009-1, DASH-IF interoperability points) of a
//! ladder package: one Period; one AdaptationSet holding every video
//! rung, one AdaptationSet per audio track.
//!
//! Segments are addressed with `SegmentTemplate` + `SegmentTimeline`
//! rather than a fixed `@duration`: the last segment of every shard may
//! be shorter than the asked length, and a timeline states each
//! segment's exact start, so players never compute a wrong `$Number$`.

use super::{Package, Rendition, RenditionKind, Segment, decimal, picture};

/// The MPD (`manifest.mpd`) at `now_unix_ms`.
///
/// While the job runs the MPD is `dynamic`: players reload it every
/// `minimumUpdatePeriod` and find new segments in the timeline, with
/// media time 0 at `available_since_unix_ms` (`availabilityStartTime`).
/// `timeShiftBufferDepth` reaches back to media time 0 whichever is
/// ahead, the encoder or the wall clock, plus a minute, so a viewer can
/// seek to the start of the job. A `urn:mpeg:dash:utc:direct:2014`
/// `UTCTiming` carries `now` itself, so players sync their clock to the
/// node's without a request to a time server.
///
/// The finished job's MPD is `static`, as long as its longest rendition.
///
/// Only renditions with an init segment and at least one segment are
/// listed: a `SegmentTimeline` must hold an `S`, and without its init
/// segment a rendition has no codec string. The HTTP layer serves the MPD
/// only once the package is playable, so in practice all of them are.
pub fn mpd(p: &Package, now_unix_ms: u64, available_since_unix_ms: u64) -> String {
    let listed = |r: &&Rendition| r.init.is_some() && !r.segments.is_empty();
    let video: Vec<&Rendition> = p.video().filter(listed).collect();
    let audio: Vec<&Rendition> = p.audio().filter(listed).collect();
    let longest = video
        .iter()
        .chain(&audio)
        .max_by(|a, b| a.seconds().total_cmp(&b.seconds()));
    let mut out = String::from(concat!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n",
        "<MPD xmlns=\"urn:mpeg:dash:schema:mpd:2011\"",
        " profiles=\"urn:mpeg:dash:profile:isoff-live:2011\" minBufferTime=\"PT2S\"",
    ));
    if p.finished {
        let duration = longest.map_or_else(|| "0.000".into(), |r| decimal(r.end(), r.timescale, 3));
        out.push_str(&format!(
            " type=\"static\" mediaPresentationDuration=\"PT{duration}S\">\n"
        ));
    } else {
        let published = longest.map_or(0, |r| r.end().div_ceil(u64::from(r.timescale.max(1))));
        let elapsed = now_unix_ms
            .saturating_sub(available_since_unix_ms)
            .div_ceil(1000);
        out.push_str(&format!(
            " type=\"dynamic\" availabilityStartTime=\"{}\" publishTime=\"{}\" minimumUpdatePeriod=\"PT2S\" timeShiftBufferDepth=\"PT{}S\" suggestedPresentationDelay=\"PT{}S\">\n",
            iso8601(available_since_unix_ms),
            iso8601(now_unix_ms),
            published.max(elapsed) + 60,
            3 * u64::from(p.segment_seconds),
        ));
    }
    out.push_str("  <Period id=\"0\" start=\"PT0S\">\n");
    if !video.is_empty() {
        video_set(&mut out, &video);
    }
    for (i, a) in audio.iter().enumerate() {
        audio_set(&mut out, i + 1, a);
    }
    out.push_str("  </Period>\n");
    if !p.finished {
        out.push_str(&format!(
            "  <UTCTiming schemeIdUri=\"urn:mpeg:dash:utc:direct:2014\" value=\"{}\"/>\n",
            iso8601(now_unix_ms)
        ));
    }
    out.push_str("</MPD>\n");
    out
}

/// The video AdaptationSet (id 0). Its `frameRate` is the rungs' common
/// rate; when rungs differ it is `maxFrameRate`, the highest, which is
/// what a player checks against its decoder.
fn video_set(out: &mut String, video: &[&Rendition]) {
    let pictures: Vec<_> = video.iter().filter_map(|r| picture(r)).collect();
    let max_width = pictures.iter().map(|p| p.0).max().unwrap_or(0);
    let max_height = pictures.iter().map(|p| p.1).max().unwrap_or(0);
    let rates: Vec<(u32, u32)> = pictures.iter().map(|p| p.2).filter(|r| r.1 > 0).collect();
    let rate_attr = match rates.first() {
        Some(&first) if rates.iter().all(|&r| same_rate(r, first)) => {
            format!(" frameRate=\"{}\"", frame_rate(first))
        }
        Some(&first) => {
            let highest = rates.iter().copied().fold(first, |a, b| {
                if u64::from(b.0) * u64::from(a.1) > u64::from(a.0) * u64::from(b.1) {
                    b
                } else {
                    a
                }
            });
            format!(" maxFrameRate=\"{}\"", frame_rate(highest))
        }
        None => String::new(),
    };
    out.push_str(&format!(
        "    <AdaptationSet id=\"0\" contentType=\"video\" mimeType=\"video/mp4\" segmentAlignment=\"true\" startWithSAP=\"1\" maxWidth=\"{max_width}\" maxHeight=\"{max_height}\"{rate_attr}>\n"
    ));
    for r in video {
        let Some((width, height, rate)) = picture(r) else {
            continue;
        };
        let rate_attr = if rate.1 > 0 {
            format!(" frameRate=\"{}\"", frame_rate(rate))
        } else {
            String::new()
        };
        out.push_str(&format!(
            "      <Representation id=\"{}\" bandwidth=\"{}\" width=\"{width}\" height=\"{height}\" codecs=\"{}\"{rate_attr}>\n",
            attr(&r.id),
            r.peak_bitrate(),
            attr(&r.codecs),
        ));
        segment_template(out, r);
        out.push_str("      </Representation>\n");
    }
    out.push_str("    </AdaptationSet>\n");
}

/// One audio track's AdaptationSet: tracks are alternatives a viewer
/// picks by language, not bitrates to switch between, so each is its own
/// set (DASH-IF IOP) and players offer them in their audio menu.
fn audio_set(out: &mut String, id: usize, a: &Rendition) {
    let RenditionKind::Audio {
        language,
        channels,
        sample_rate,
        ..
    } = &a.kind
    else {
        return;
    };
    let lang = match language.as_deref().filter(|l| !l.is_empty()) {
        Some(l) => format!(" lang=\"{}\"", attr(l)),
        None => String::new(),
    };
    out.push_str(&format!(
        "    <AdaptationSet id=\"{id}\" contentType=\"audio\" mimeType=\"audio/mp4\"{lang} segmentAlignment=\"true\" startWithSAP=\"1\">\n"
    ));
    out.push_str(&format!(
        "      <Representation id=\"{}\" bandwidth=\"{}\" codecs=\"{}\" audioSamplingRate=\"{sample_rate}\">\n",
        attr(&a.id),
        a.peak_bitrate(),
        attr(&a.codecs),
    ));
    out.push_str(&format!(
        "        <AudioChannelConfiguration schemeIdUri=\"urn:mpeg:dash:23003:3:audio_channel_configuration:2011\" value=\"{channels}\"/>\n"
    ));
    segment_template(out, a);
    out.push_str("      </Representation>\n    </AdaptationSet>\n");
}

/// The SegmentTemplate of one Representation, its timeline inside.
fn segment_template(out: &mut String, r: &Rendition) {
    out.push_str(&format!(
        "        <SegmentTemplate timescale=\"{}\" initialization=\"$RepresentationID$/init.mp4\" media=\"$RepresentationID$/$Number$.m4s\" startNumber=\"0\">\n          <SegmentTimeline>\n",
        r.timescale
    ));
    for run in runs(&r.segments) {
        out.push_str("            <S");
        if let Some(t) = run.t {
            out.push_str(&format!(" t=\"{t}\""));
        }
        out.push_str(&format!(" d=\"{}\"", run.d));
        if run.r > 0 {
            out.push_str(&format!(" r=\"{}\"", run.r));
        }
        out.push_str("/>\n");
    }
    out.push_str("          </SegmentTimeline>\n        </SegmentTemplate>\n");
}

/// One `<S>` of a SegmentTimeline: `r + 1` segments of duration `d`, the
/// first at `t` when it is not where the previous run ended.
#[derive(Debug, PartialEq, Eq)]
struct Run {
    t: Option<u64>,
    d: u64,
    r: u64,
}

/// Segments as timeline runs: back-to-back segments of one duration
/// collapse into one `S` (a 2-hour job at 4 s is a handful of lines, not
/// 1800). The first `S` always states `t`; so does any whose segment
/// does not start where the previous ended, a gap the packager should
/// never leave but that must still place every later segment correctly.
fn runs(segments: &[Segment]) -> Vec<Run> {
    let mut runs: Vec<Run> = Vec::new();
    let mut end: Option<u64> = None;
    for s in segments {
        let follows = end == Some(s.start);
        match runs.last_mut() {
            Some(last) if follows && last.d == s.duration => last.r += 1,
            _ => runs.push(Run {
                t: (!follows).then_some(s.start),
                d: s.duration,
                r: 0,
            }),
        }
        end = Some(s.start + s.duration);
    }
    runs
}

/// A frame rate as DASH writes it: `30`, or the reduced fraction
/// `30000/1001` (a decimal would not be exact).
fn frame_rate((num, den): (u32, u32)) -> String {
    let (mut a, mut b) = (num, den);
    while b != 0 {
        (a, b) = (b, a % b);
    }
    let g = a.max(1);
    match (num / g, den / g) {
        (n, 1) => n.to_string(),
        (n, d) => format!("{n}/{d}"),
    }
}

/// Whether two fractions are the same rate (30/1 and 60/2 are).
fn same_rate(a: (u32, u32), b: (u32, u32)) -> bool {
    u64::from(a.0) * u64::from(b.1) == u64::from(b.0) * u64::from(a.1)
}

/// An XML attribute value: ids and codec strings are ours, but a
/// language comes from the uploaded file, and a stray `"` or `&` must
/// not break the document.
fn attr(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            c => out.push(c),
        }
    }
    out
}

/// Unix milliseconds as an ISO 8601 UTC date-time with milliseconds
/// (`2026-12-04T10:00:00.000Z`), by Howard Hinnant's civil-from-days
/// algorithm: days are counted in 400-year eras of 146097 days starting
/// on March 1st, so the leap day falls at the end of each year of the
/// era and needs no special case.
fn iso8601(unix_ms: u64) -> String {
    let (days, ms_of_day) = (unix_ms / 86_400_000, unix_ms % 86_400_000);
    let z = days + 719_468; // days since 0000-03-01
    let era = z / 146_097;
    let doe = z % 146_097; // day of era, 0..=146096
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365; // 0..=399
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100); // from March 1st
    let mp = (5 * doy + 2) / 153; // month from March, 0..=11
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = era * 400 + yoe + u64::from(month <= 2);
    let secs = ms_of_day / 1000;
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        secs / 3600,
        secs / 60 % 60,
        secs % 60,
        ms_of_day % 1000
    )
}

#[cfg(test)]
#[path = "dash_tests.rs"]
mod tests;
