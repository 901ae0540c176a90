use super::*;

fn track(index: u32, kind: TrackKind, codec: &str, language: &str) -> Track {
    Track {
        index,
        kind,
        codec: codec.into(),
        language: language.into(),
        title: String::new(),
        duration_seconds: Some(6.0),
    }
}

fn source() -> Vec<Track> {
    vec![
        track(1, TrackKind::Audio, "aac", "eng"),
        track(2, TrackKind::Audio, "ac3", "fra"),
        track(3, TrackKind::Subtitle, "subrip", "eng"),
        track(4, TrackKind::Subtitle, "hdmv_pgs_subtitle", "deu"),
    ]
}

#[test]
fn ffprobe_streams_become_tracks_with_languages_and_titles() {
    let json: serde_json::Value = serde_json::from_str(
        r#"[{"index":0,"codec_type":"video","codec_name":"h264"},
            {"index":1,"codec_type":"audio","codec_name":"aac","tags":{"language":"eng","title":"English"}},
            {"index":2,"codec_type":"subtitle","codec_name":"subrip"},
            {"index":3,"codec_type":"data","codec_name":"bin_data"}]"#,
    )
    .expect("test data");
    let tracks = tracks_of(json.as_array().expect("test data"), |_| Some(2.0));
    assert_eq!(tracks.len(), 2);
    assert_eq!((tracks[0].index, tracks[0].kind), (1, TrackKind::Audio));
    assert_eq!(
        (&tracks[0].language[..], &tracks[0].title[..]),
        ("eng", "English")
    );
    assert_eq!((tracks[1].index, tracks[1].kind), (2, TrackKind::Subtitle));
}

#[test]
fn every_audio_track_is_kept_copied_when_it_fits() {
    let plan = plan(&source(), OutputFormat::Mp4, AudioChoice::All);
    let audio: Vec<(u32, bool, &str)> = plan
        .audio
        .iter()
        .map(|p| (p.track.index, p.copy, p.codec.as_str()))
        .collect();
    assert_eq!(audio, vec![(1, true, "copy"), (2, false, "aac")]);
    let webm = super::plan(&source(), OutputFormat::Webm, AudioChoice::All);
    assert!(webm.audio.iter().all(|p| p.codec == "libopus"));
}

#[test]
fn first_and_none_keep_fewer_audio_tracks() {
    assert_eq!(
        plan(&source(), OutputFormat::Mkv, AudioChoice::First)
            .audio
            .len(),
        1
    );
    assert!(
        plan(&source(), OutputFormat::Mkv, AudioChoice::None)
            .audio
            .is_empty()
    );
}

#[test]
fn subtitles_go_where_the_container_can_carry_them() {
    let mkv = plan(&source(), OutputFormat::Mkv, AudioChoice::All);
    assert_eq!(mkv.subtitles.len(), 2, "mkv carries text and pictures");
    assert!(mkv.dropped.is_empty());
    let mp4 = plan(&source(), OutputFormat::Mp4, AudioChoice::All);
    assert_eq!(mp4.subtitles.len(), 1);
    assert_eq!(mp4.subtitles[0].codec, "mov_text");
    assert_eq!(mp4.dropped.len(), 1);
    assert!(
        mp4.dropped[0].contains("hdmv_pgs_subtitle, deu"),
        "{:?}",
        mp4.dropped
    );
    assert!(mp4.dropped[0].contains("--format mkv"));
    let webm = plan(&source(), OutputFormat::Webm, AudioChoice::All);
    assert_eq!(webm.subtitles[0].codec, "webvtt");
}

#[test]
fn the_audio_file_is_cut_to_the_longest_track() {
    let mut tracks = source();
    tracks[1].duration_seconds = Some(7.5);
    let plan = plan(&tracks, OutputFormat::Mp4, AudioChoice::All);
    assert_eq!(plan.audio_seconds(), Some(7.5));
    assert_eq!(TracksPlan::audio_extension(OutputFormat::Webm), "mka");
}
