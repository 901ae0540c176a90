use super::*;

const G: &str = "1700000000.abcd";

fn package(path: &str) -> Option<(String, String, Item)> {
    match parse(path, None)? {
        Route::Package { grant, job, item } => Some((grant, job, item)),
        Route::Asset(_) => None,
    }
}

fn item(path: &str) -> Option<Item> {
    package(path).map(|(_, _, item)| item)
}

fn file(path: &str) -> Option<File> {
    match item(path)? {
        Item::File(file) => Some(file),
        Item::Watch(_) => None,
    }
}

#[test]
fn every_route_we_serve_parses() {
    assert_eq!(
        parse("/assets/hls.min.js", None),
        Some(Route::Asset(Asset::Hls))
    );
    assert_eq!(
        parse("/assets/dash.all.min.js", None),
        Some(Route::Asset(Asset::Dash))
    );
    assert_eq!(
        package(&format!("/s/{G}/watch/clip.mp4")),
        Some((G.into(), "clip.mp4".into(), Item::Watch(None)))
    );
    assert_eq!(
        file(&format!("/s/{G}/v/clip.mp4/master.m3u8")),
        Some(File::Master)
    );
    assert_eq!(
        file(&format!("/s/{G}/v/clip.mp4/manifest.mpd")),
        Some(File::Mpd)
    );
    assert_eq!(
        file(&format!("/s/{G}/v/clip.mp4/720p/media.m3u8")),
        Some(File::Media("720p".into()))
    );
    assert_eq!(
        file(&format!("/s/{G}/v/clip.mp4/audio-2/init.mp4")),
        Some(File::Init("audio-2".into()))
    );
    assert_eq!(
        file(&format!("/s/{G}/v/clip.mp4/720p/0.m4s")),
        Some(File::Segment("720p".into(), 0))
    );
    assert_eq!(
        file(&format!("/s/{G}/v/job-1a2b/1080p/123456789.m4s")),
        Some(File::Segment("1080p".into(), 123_456_789))
    );
}

#[test]
fn the_player_comes_from_the_query() {
    let watch = |q| match parse(&format!("/s/{G}/watch/clip"), q) {
        Some(Route::Package { item, .. }) => Some(item),
        _ => None,
    };
    assert_eq!(
        watch(Some("player=dash")),
        Some(Item::Watch(Some(Player::Dash)))
    );
    assert_eq!(
        watch(Some("player=hls")),
        Some(Item::Watch(Some(Player::Hls)))
    );
    assert_eq!(
        watch(Some("x=1&player=dash&y")),
        Some(Item::Watch(Some(Player::Dash)))
    );
    assert_eq!(watch(Some("")), Some(Item::Watch(None)));
    assert_eq!(watch(Some("other=1")), Some(Item::Watch(None)));
    assert_eq!(watch(Some("player=flash")), None);
    assert_eq!(watch(Some("player=")), None);
    // The query means nothing to the package files.
    assert!(parse(&format!("/s/{G}/v/clip/master.m3u8"), Some("player=flash")).is_some());
}

#[test]
fn unsafe_or_foreign_job_ids_are_no_page() {
    for id in [
        "..",
        ".",
        ".hidden",
        "-dash",
        "a..b",
        "a%2Fb",
        "%2e%2e",
        "a b",
        "a\0b",
        "é",
        "",
        &"x".repeat(65),
    ] {
        assert_eq!(item(&format!("/s/{G}/v/{id}/master.m3u8")), None, "{id:?}");
        assert_eq!(item(&format!("/s/{G}/watch/{id}")), None, "{id:?}");
    }
    assert!(is_job_id("clip.mp4") && is_job_id("My_Video-2") && is_job_id("job-1a2b3c"));
}

#[test]
fn bad_rendition_names_are_no_page() {
    for r in [
        "..",
        "720P",
        "720_p",
        "a.b",
        "%37",
        "",
        "a b",
        &"a".repeat(33),
    ] {
        assert_eq!(item(&format!("/s/{G}/v/clip/{r}/init.mp4")), None, "{r:?}");
    }
    assert!(is_rendition("audio-2") && is_rendition(&"a".repeat(32)));
}

#[test]
fn segment_numbers_are_plain_decimals() {
    for n in [
        "-1",
        "+1",
        "01",
        "00",
        "1e3",
        "0x1",
        " 1",
        "1 ",
        "",
        "1.5",
        "١",
        "1234567890",
    ] {
        assert_eq!(item(&format!("/s/{G}/v/clip/720p/{n}.m4s")), None, "{n:?}");
    }
    for file in ["1.mp4", "1.m4s.m4s", "1.M4S", "media.m3u8x", "init.m4s"] {
        assert_eq!(
            item(&format!("/s/{G}/v/clip/720p/{file}")),
            None,
            "{file:?}"
        );
    }
}

#[test]
fn other_shapes_are_no_page() {
    for path in [
        "",
        "/",
        "assets/hls.min.js",
        "/assets/hls.min.js/",
        "/assets/",
        "/assets/../assets/hls.min.js",
        "/assets/hls.js",
        "/s/",
        "/s//watch/clip",
        &format!("/s/{G}"),
        &format!("/s/{G}/"),
        &format!("/s/{G}/watch/clip/"),
        &format!("/s/{G}/watch/"),
        &format!("/s/{G}/v/clip"),
        &format!("/s/{G}/v/clip/"),
        &format!("/s/{G}/v/clip//init.mp4"),
        &format!("/s/{G}/v/clip/720p/../master.m3u8"),
        &format!("/s/{G}/v/clip/720p/x/0.m4s"),
        &format!("/s/{G}/v/clip/other.m3u8"),
        &format!("/s/{G}/x/clip/master.m3u8"),
        &format!("//s/{G}/v/clip/master.m3u8"),
    ] {
        assert_eq!(parse(path, None), None, "{path:?}");
    }
}
