use super::*;
use crate::jobs::JobStatus;
use crate::params::{Ladder, LadderChoice};
use crate::streaming::fixtures;

/// A ladder job publishing `packages`, with `package` recorded.
fn job(package: Option<Package>, packages: Packages) -> JobRecord {
    let mut table = crate::jobs::JobTable::default();
    let params = crate::params::RawParams::default()
        .validate()
        .expect("params");
    let source = BlobRef {
        sha256: "11".repeat(32),
        size: 1,
    };
    let id = table.accept("clip.mp4", params, source, vec![], 1_000);
    let mut job = table.get(&id).expect("job").clone();
    job.params.ladder = Some(Ladder {
        rungs: LadderChoice::Auto,
        packages,
        segment_seconds: 4,
    });
    job.package = package.map(|mut p| {
        p.packages = packages;
        p.holders = vec!["node-a".into()];
        p
    });
    job
}

fn both() -> Packages {
    Packages::default()
}

fn get(job: &JobRecord, file: File) -> Answer {
    resolve(Some(job), "clip.mp4", &Item::File(file), 5_000)
}

fn not_found(answer: Answer) -> String {
    match answer {
        Answer::NotFound(why) => why,
        other => panic!("expected a 404, got {other:?}"),
    }
}

#[test]
fn a_running_package_serves_its_manifests_and_blobs() {
    let running = fixtures::running();
    let j = job(Some(running.clone()), both());
    match get(&j, File::Master) {
        Answer::Text {
            body,
            kind,
            finished,
        } => {
            assert_eq!(body, hls::master_playlist(j.package.as_ref().expect("p")));
            assert_eq!((kind, finished), (Kind::Playlist, false));
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        get(&j, File::Mpd),
        Answer::Text {
            kind: Kind::Mpd,
            ..
        }
    ));
    assert!(matches!(
        get(&j, File::Media("720p".into())),
        Answer::Text {
            kind: Kind::Playlist,
            ..
        }
    ));
    let init = get(&j, File::Init("audio".into()));
    let audio_init = running.rendition("audio").and_then(|r| r.init.clone());
    assert_eq!(
        init,
        Answer::Blob {
            blob: audio_init.expect("init"),
            kind: Kind::Init { video: false },
            holders: vec!["node-a".into()],
        }
    );
    assert!(matches!(
        get(&j, File::Init("1080p".into())),
        Answer::Blob {
            kind: Kind::Init { video: true },
            ..
        }
    ));
    let last = &running.rendition("720p").expect("720p").segments[1];
    assert!(matches!(
        get(&j, File::Segment("720p".into(), 1)),
        Answer::Blob { blob, kind: Kind::Segment, .. } if blob == last.blob
    ));
}

#[test]
fn what_is_not_there_is_a_404_saying_why() {
    let j = job(Some(fixtures::running()), both());
    let why = not_found(get(&j, File::Segment("720p".into(), 2)));
    assert_eq!(why, "segment 2 of 720p is not published yet (2 so far)");
    let why = not_found(get(&j, File::Init("480p".into())));
    assert_eq!(why, "clip.mp4 has no rendition 480p");
    assert!(not_found(get(&j, File::Media("480p".into()))).contains("no rendition 480p"));
    let why = not_found(resolve(None, "gone", &Item::File(File::Master), 0));
    assert_eq!(why, "no such video: gone");
    let mut plain = job(None, both());
    plain.params.ladder = None;
    assert!(not_found(get(&plain, File::Master)).contains("not a ladder job"));
    assert!(
        not_found(resolve(Some(&plain), "clip.mp4", &Item::Watch(None), 0))
            .contains("not a ladder job")
    );
}

#[test]
fn manifests_wait_until_every_rendition_can_start() {
    let unplanned = job(None, both());
    let why = not_found(get(&unplanned, File::Master));
    assert!(why.starts_with(NOT_YET), "{why}");
    assert!(why.contains("not planned yet"), "{why}");
    let mut partial = fixtures::running();
    partial.renditions[1].segments.clear();
    let j = job(Some(partial), both());
    for file in [File::Master, File::Mpd, File::Media("1080p".into())] {
        let why = not_found(get(&j, file));
        assert_eq!(
            why,
            "not playable yet: 2 of 3 renditions have their first segment (job queued)"
        );
    }
    // Published blobs are served anyway.
    assert!(matches!(
        get(&j, File::Segment("1080p".into(), 0)),
        Answer::Blob { .. }
    ));
    // A job that ended unplayable says so without the prefix the page polls on.
    let mut failed = job(None, both());
    failed.status = JobStatus::FailedSegmentation;
    failed.message = "no video stream".into();
    let why = not_found(get(&failed, File::Mpd));
    assert!(
        !why.starts_with(NOT_YET) && why.contains("no video stream"),
        "{why}"
    );
}

#[test]
fn a_manifest_kind_not_published_is_a_404() {
    let hls_only = Packages {
        hls: true,
        dash: false,
    };
    let j = job(Some(fixtures::running()), hls_only);
    assert!(not_found(get(&j, File::Mpd)).contains("no DASH manifest"));
    assert!(matches!(get(&j, File::Master), Answer::Text { .. }));
    let dash_only = Packages {
        hls: false,
        dash: true,
    };
    let j = job(Some(fixtures::running()), dash_only);
    assert!(not_found(get(&j, File::Master)).contains("no HLS"));
    assert!(not_found(get(&j, File::Media("720p".into()))).contains("no HLS"));
    assert!(matches!(
        get(&j, File::Init("720p".into())),
        Answer::Blob { .. }
    ));
}

#[test]
fn finished_manifests_say_so() {
    let j = job(Some(fixtures::finished()), both());
    assert!(matches!(
        get(&j, File::Mpd),
        Answer::Text { finished: true, .. }
    ));
}

#[test]
fn the_page_picks_a_published_player() {
    let page = |packages, asked| {
        let j = job(None, packages);
        match resolve(Some(&j), "clip.mp4", &Item::Watch(asked), 0) {
            Answer::Text {
                body,
                kind: Kind::Page,
                ..
            } => body,
            other => panic!("{other:?}"),
        }
    };
    let default = page(both(), None);
    assert!(default.contains("hls.min.js") && default.contains("\"other\":\"dash\""));
    let dash_only = Packages {
        hls: false,
        dash: true,
    };
    let body = page(dash_only, None);
    assert!(body.contains("dash.all.min.js") && body.contains("\"other\":null"));
    let body = page(both(), Some(Player::Dash));
    assert!(body.contains("dash.all.min.js") && body.contains("\"other\":\"hls\""));
}
