use super::*;

#[test]
fn only_the_names_a_package_has_are_written() {
    for (path, kind) in [
        ("master.m3u8", Listed::Manifest),
        ("manifest.mpd", Listed::Manifest),
        ("360p/media.m3u8", Listed::Manifest),
        ("audio-2/init.mp4", Listed::Blob),
        ("360p/0.m4s", Listed::Blob),
        ("360p/1799.m4s", Listed::Blob),
    ] {
        assert_eq!(listed_kind(path), Some(kind), "{path}");
    }
    for bad in [
        "",
        "/etc/passwd",
        "../x",
        "360p/../../etc",
        "360p/../master.m3u8",
        "./master.m3u8",
        "360p/-1.m4s",
        "360p/01.m4s",
        "360p/1.m4s.bak",
        "360p/x/0.m4s",
        "360P/init.mp4",
        "360p/",
        "/master.m3u8",
        "media.m3u8",
        "360p/manifest.mpd",
        "..",
    ] {
        assert_eq!(listed_kind(bad), None, "{bad:?}");
    }
}

#[test]
fn a_directory_is_named_with_a_slash_or_exists() {
    let dir = tempfile::tempdir().expect("tempdir");
    assert!(is_directory_target(dir.path()));
    assert!(is_directory_target(Path::new("not-yet/")));
    assert!(!is_directory_target(&dir.path().join("out.mp4")));
    assert!(!is_directory_target(Path::new("not-yet")));
}

#[test]
fn a_plain_output_in_a_directory_is_named_after_its_job() {
    assert_eq!(
        output_name("job-5f1c", "mp4").expect("name"),
        "job-5f1c.mp4"
    );
    assert_eq!(output_name("clip.mp4", "mp4").expect("name"), "clip.mp4");
    assert_eq!(output_name("clip.MP4", "mp4").expect("name"), "clip.MP4");
    assert_eq!(
        output_name("clip.mp4", "webm").expect("name"),
        "clip.mp4.webm"
    );
    for bad in ["", ".hidden", "a/b", "..", "a\\b"] {
        assert!(output_name(bad, "mp4").is_err(), "{bad:?}");
    }
}

fn manifest(path: &str, text: &str) -> PackageFile {
    PackageFile {
        path: path.into(),
        sha256: hex::encode(Sha256::digest(text.as_bytes())),
        size: text.len() as u64,
        text: text.into(),
    }
}

#[tokio::test]
async fn manifests_are_checked_written_and_then_found_there() {
    let dir = tempfile::tempdir().expect("tempdir");
    let target = dir.path().join("master.m3u8");
    let file = manifest("master.m3u8", "#EXTM3U\n");
    assert!(!already_there(&target, &file).await);
    write_manifest(&file, &target).await.expect("written");
    assert_eq!(std::fs::read_to_string(&target).expect("read"), "#EXTM3U\n");
    assert!(already_there(&target, &file).await);

    // Same size, other bytes: not there; replaced on the next write.
    std::fs::write(&target, "#EXTM3X\n").expect("damage");
    assert!(!already_there(&target, &file).await);
    write_manifest(&file, &target).await.expect("rewritten");
    assert!(already_there(&target, &file).await);

    let mut lying = manifest("manifest.mpd", "<MPD/>");
    lying.text = "<MPD>".into();
    let refused = write_manifest(&lying, &dir.path().join("manifest.mpd"))
        .await
        .expect_err("text and sha256 differ");
    assert!(refused.to_string().contains("does not match"), "{refused}");
    let left: Vec<_> = std::fs::read_dir(dir.path())
        .expect("list")
        .map(|e| e.expect("entry").file_name())
        .collect();
    assert_eq!(
        left,
        vec![std::ffi::OsString::from("master.m3u8")],
        "no temp file left"
    );
}
