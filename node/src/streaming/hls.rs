//! HLS playlists (RFC 8216bis, Apple's HLS authoring specification) of a
//! ladder package: one master playlist naming every rung and audio
//! track, one media playlist per rendition.
//!
//! While the job runs, media playlists are `EVENT` playlists: segments
//! are only ever appended, so a player that joins late can still seek
//! back to the start, and one that polls sees the same prefix again. The
//! finished job's playlists are `VOD` with `#EXT-X-ENDLIST`, which tells
//! players to stop polling.

use super::{Package, Rendition, RenditionKind, decimal, picture};

/// The master playlist (`master.m3u8`): audio tracks as one `AUDIO`
/// group, then one variant stream per video rung, highest first.
///
/// Only renditions whose init segment exists are listed: until then a
/// rendition has no codec string, and our players refuse a variant
/// without `CODECS` (they cannot tell whether they can decode it). The
/// HTTP layer serves this playlist only once the package is playable, so
/// in practice every rendition is here.
///
/// A variant's `BANDWIDTH` is its video's peak segment bitrate plus the
/// highest audio peak, as RFC 8216bis asks for a variant whose audio
/// comes from a group: the player must afford the most demanding
/// combination it might pick. `AVERAGE-BANDWIDTH` adds averages the
/// same way.
pub fn master_playlist(p: &Package) -> String {
    let audio: Vec<&Rendition> = p.audio().filter(|r| r.init.is_some()).collect();
    let mut out = String::from("#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-INDEPENDENT-SEGMENTS\n");
    for (i, a) in audio.iter().enumerate() {
        let RenditionKind::Audio {
            language,
            name,
            channels,
            ..
        } = &a.kind
        else {
            continue;
        };
        out.push_str(&format!(
            "#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=\"audio\",NAME=\"{}\"",
            quoted(name)
        ));
        if let Some(lang) = language.as_deref().filter(|l| !l.is_empty()) {
            out.push_str(&format!(",LANGUAGE=\"{}\"", quoted(lang)));
        }
        out.push_str(&format!(
            ",DEFAULT={},AUTOSELECT=YES,CHANNELS=\"{channels}\",URI=\"{}/media.m3u8\"\n",
            if i == 0 { "YES" } else { "NO" },
            a.id
        ));
    }
    // A variant's CODECS lists every format it may play, so every
    // distinct codec of the group, in the order the tracks come.
    let mut audio_codecs: Vec<&str> = Vec::new();
    for a in &audio {
        if !audio_codecs.contains(&a.codecs.as_str()) {
            audio_codecs.push(&a.codecs);
        }
    }
    let audio_peak = audio.iter().map(|a| a.peak_bitrate()).max().unwrap_or(0);
    let audio_average = audio.iter().map(|a| a.average_bitrate()).max().unwrap_or(0);
    for v in p.video().filter(|r| r.init.is_some()) {
        let Some((width, height, frame_rate)) = picture(v) else {
            continue;
        };
        let codecs = std::iter::once(v.codecs.as_str())
            .chain(audio_codecs.iter().copied())
            .collect::<Vec<_>>()
            .join(",");
        out.push_str(&format!(
            "#EXT-X-STREAM-INF:BANDWIDTH={},AVERAGE-BANDWIDTH={},RESOLUTION={width}x{height},CODECS=\"{}\"",
            v.peak_bitrate().saturating_add(audio_peak),
            v.average_bitrate().saturating_add(audio_average),
            quoted(&codecs),
        ));
        if let Some(rate) = frame_rate_attr(frame_rate) {
            out.push_str(&format!(",FRAME-RATE={rate}"));
        }
        if !audio.is_empty() {
            out.push_str(",AUDIO=\"audio\"");
        }
        out.push_str(&format!("\n{}/media.m3u8\n", v.id));
    }
    out
}

/// The media playlist of one rendition (`{id}/media.m3u8`); its URIs are
/// relative to it: `init.mp4`, `0.m4s`, `1.m4s`, ….
///
/// `#EXT-X-TARGETDURATION` is the package's
/// [`Package::target_duration`], the same for every rendition and at
/// least the asked segment length, rather than this rendition's longest
/// segment so far: RFC 8216bis forbids changing it between reloads of a
/// playlist, and an `EVENT` playlist is reloaded while it grows, so it
/// must already cover segments not yet published.
///
/// `#EXTINF` has 6 decimals, exact from the ticks: players such as
/// hls.js place segments by summing `EXTINF`, and with 3 decimals the
/// sum would drift from the `tfdt` in the segments by up to half a
/// millisecond per segment (AAC segments are rarely whole milliseconds).
pub fn media_playlist(p: &Package, r: &Rendition) -> String {
    let mut out = format!(
        "#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-TARGETDURATION:{}\n#EXT-X-MEDIA-SEQUENCE:0\n#EXT-X-PLAYLIST-TYPE:{}\n#EXT-X-INDEPENDENT-SEGMENTS\n",
        p.target_duration(),
        if p.finished { "VOD" } else { "EVENT" },
    );
    if r.init.is_some() {
        out.push_str("#EXT-X-MAP:URI=\"init.mp4\"\n");
    }
    for (n, s) in r.segments.iter().enumerate() {
        out.push_str(&format!(
            "#EXTINF:{},\n{n}.m4s\n",
            decimal(s.duration, r.timescale, 6)
        ));
    }
    if p.finished {
        out.push_str("#EXT-X-ENDLIST\n");
    }
    out
}

/// `FRAME-RATE` with 3 decimals (29.970 for 30000/1001); none for a rate
/// that was never probed (a zero part).
fn frame_rate_attr((num, den): (u32, u32)) -> Option<String> {
    (num > 0 && den > 0).then(|| decimal(u64::from(num), den, 3))
}

/// A value fit for an HLS quoted-string, which has no escapes and may not
/// hold `"`, CR or LF: track names come from the uploaded file's
/// metadata, so a quote there becomes `'` and line breaks spaces rather
/// than breaking the playlist.
fn quoted(value: &str) -> String {
    value
        .chars()
        .map(|c| match c {
            '"' => '\'',
            '\r' | '\n' => ' ',
            c => c,
        })
        .collect()
}

#[cfg(test)]
#[path = "hls_tests.rs"]
mod tests;
