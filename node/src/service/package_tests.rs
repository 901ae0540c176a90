use super::*;
use crate::jobs::JobStatus;
use crate::jobs::package::Packages;
use crate::params::{Ladder, LadderChoice};
use crate::streaming::fixtures;
use tonic::Code;

/// Job `clip.mp4`, a ladder publishing `packages` when `ladder`, with
/// `package` recorded.
fn job(package: Option<Package>, ladder: bool, packages: Packages) -> JobRecord {
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
    job.params.ladder = ladder.then_some(Ladder {
        rungs: LadderChoice::Auto,
        packages,
        segment_seconds: 4,
    });
    job.package = package.map(|mut p| {
        p.packages = packages;
        p
    });
    job
}

fn paths(listing: &PackageListing) -> Vec<&str> {
    listing.files.iter().map(|f| f.path.as_str()).collect()
}

#[test]
fn only_the_names_the_packager_writes_parse() {
    assert_eq!(
        parse_path("360p/init.mp4"),
        Ok(PackagePath::Init("360p".into()))
    );
    assert_eq!(
        parse_path("audio-2/0.m4s"),
        Ok(PackagePath::Segment("audio-2".into(), 0))
    );
    assert_eq!(
        parse_path("1080p/123456789.m4s"),
        Ok(PackagePath::Segment("1080p".into(), 123_456_789))
    );
    for bad in [
        "",
        "/",
        "init.mp4",
        "../x",
        "360p/../../etc",
        "360p/../init.mp4",
        "../360p/init.mp4",
        "/360p/init.mp4",
        "360p//init.mp4",
        "360p/init.mp4/",
        "360p/x/0.m4s",
        "360p/-1.m4s",
        "360p/+1.m4s",
        "360p/01.m4s",
        "360p/1.m4s.bak",
        "360p/1.M4S",
        "360p/.m4s",
        "360p/1234567890.m4s",
        "360p/1 .m4s",
        "360p/media.m3u8",
        "master.m3u8",
        "manifest.mpd",
        "360P/init.mp4",
        "360p%2F/init.mp4",
        "360_p/init.mp4",
        "..",
        ".",
        "360p/0.m4s\0",
        &format!("{}/init.mp4", "a".repeat(33)),
    ] {
        let why = parse_path(bad).expect_err(bad);
        assert!(why.contains("is not a file of a package"), "{bad:?}: {why}");
    }
}

#[test]
fn a_finished_package_lists_every_manifest_then_every_blob() {
    let j = job(Some(fixtures::finished()), true, Packages::default());
    let listed = listing(&j, 5_000).expect("listing");
    assert!(listed.finished);
    let mut want: Vec<String> = [
        "master.m3u8",
        "manifest.mpd",
        "1080p/media.m3u8",
        "720p/media.m3u8",
        "audio/media.m3u8",
    ]
    .map(String::from)
    .to_vec();
    for r in ["1080p", "720p", "audio"] {
        for name in ["init.mp4", "0.m4s", "1.m4s", "2.m4s"] {
            want.push(format!("{r}/{name}"));
        }
    }
    assert_eq!(paths(&listed), want);
    let package = j.package.as_ref().expect("package");
    for f in &listed.files {
        if f.path.ends_with(".m3u8") || f.path.ends_with(".mpd") {
            assert_eq!(f.size, f.text.len() as u64, "{}", f.path);
            assert_eq!(f.sha256, hex::encode(Sha256::digest(&f.text)), "{}", f.path);
        } else {
            assert!(f.text.is_empty(), "{}", f.path);
            let blob = match parse_path(&f.path).expect("a blob path") {
                PackagePath::Init(r) => package.rendition(&r).and_then(|r| r.init.clone()),
                PackagePath::Segment(r, n) => package
                    .rendition(&r)
                    .and_then(|r| r.segments.get(n))
                    .map(|s| s.blob.clone()),
            }
            .expect("recorded");
            assert_eq!(
                (f.sha256.as_str(), f.size),
                (blob.sha256.as_str(), blob.size)
            );
        }
    }
    // The manifests are the ones HTTP serves, and final.
    assert_eq!(listed.files[0].text, hls::master_playlist(package));
    assert_eq!(listed.files[1].text, dash::mpd(package, 5_000, 1_000));
    assert!(listed.files[1].text.contains("type=\"static\""));
    let audio = package.rendition("audio").expect("audio");
    assert_eq!(listed.files[4].text, hls::media_playlist(package, audio));
    assert!(listed.files[4].text.ends_with("#EXT-X-ENDLIST\n"));
    // A finished package's manifests do not depend on the clock: a rerun
    // finds the same sha256.
    assert_eq!(listing(&j, 99_000_000).expect("again"), listed);
}

#[test]
fn only_the_manifests_the_job_publishes_are_listed() {
    let hls_only = Packages {
        hls: true,
        dash: false,
    };
    let j = job(Some(fixtures::finished()), true, hls_only);
    let listed = listing(&j, 5_000).expect("listing");
    assert!(paths(&listed).contains(&"master.m3u8"));
    assert!(!paths(&listed).iter().any(|p| p.ends_with(".mpd")));

    let dash_only = Packages {
        hls: false,
        dash: true,
    };
    let j = job(Some(fixtures::finished()), true, dash_only);
    let listed = listing(&j, 5_000).expect("listing");
    assert_eq!(paths(&listed)[0], "manifest.mpd");
    assert!(!paths(&listed).iter().any(|p| p.ends_with(".m3u8")));
    assert_eq!(listed.files.len(), 1 + 3 * 4);
}

#[test]
fn a_running_package_is_listed_as_unfinished() {
    let j = job(Some(fixtures::running()), true, Packages::default());
    let listed = listing(&j, 5_000).expect("listing");
    assert!(!listed.finished);
    assert!(paths(&listed).contains(&"1080p/2.m4s"));
    assert!(!paths(&listed).contains(&"720p/2.m4s"));
    assert!(listed.files[1].text.contains("type=\"dynamic\""));
}

#[test]
fn plain_and_unplayable_jobs_are_refused_with_the_reason() {
    let plain = job(None, false, Packages::default());
    let refused = listing(&plain, 5_000).expect_err("plain");
    assert_eq!(refused.code(), Code::FailedPrecondition);
    assert!(
        refused.message().contains("not a ladder job"),
        "{refused:?}"
    );

    let planned = job(None, true, Packages::default());
    let refused = listing(&planned, 5_000).expect_err("unplanned");
    assert_eq!(refused.code(), Code::FailedPrecondition);
    assert!(
        refused.message().contains("not playable yet"),
        "{refused:?}"
    );

    let mut empty = fixtures::running();
    empty.renditions[1].segments.clear();
    let mut running = job(Some(empty), true, Packages::default());
    let refused = listing(&running, 5_000).expect_err("one rendition without segments");
    assert!(
        refused.message().contains("not playable yet"),
        "{refused:?}"
    );
    running.status = JobStatus::ProcessingFailed;
    let refused = listing(&running, 5_000).expect_err("failed");
    assert!(refused.message().contains("the job ended"), "{refused:?}");
}

#[test]
fn a_path_finds_its_blob_or_says_what_is_missing() {
    let mut j = job(Some(fixtures::running()), true, Packages::default());
    if let Some(p) = j.package.as_mut() {
        p.holders = vec!["node-a".into()];
    }
    let (blob, holders) = find(&j, &PackagePath::Segment("720p".into(), 1)).expect("found");
    assert_eq!(blob.size, 1_000_000);
    assert_eq!(holders, vec!["node-a".to_string()]);
    let (blob, _) = find(&j, &PackagePath::Init("audio".into())).expect("init");
    assert_eq!(blob.size, 600);
    let missing = find(&j, &PackagePath::Segment("720p".into(), 2)).expect_err("not yet");
    assert_eq!(missing.code(), Code::NotFound);
    let missing = find(&j, &PackagePath::Init("480p".into())).expect_err("no rung");
    assert_eq!(missing.code(), Code::NotFound);
    let plain = job(None, false, Packages::default());
    let refused = find(&plain, &PackagePath::Init("480p".into())).expect_err("plain");
    assert_eq!(refused.code(), Code::FailedPrecondition);
}
