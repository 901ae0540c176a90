//! Saving a ladder job's whole package over gRPC (`vidshard retrieve ID
//! --output DIR/`, no HTTP): every file of the listing lands in DIR with
//! its sha256, the directory plays offline through both manifests with
//! every frame of every rung, a rerun keeps what is there, a damaged
//! segment is replaced, and the node refuses any path that is not a file
//! of a package.

mod common;

use std::path::Path;
use std::process::Command;

use common::client::vidshard;
use common::clips::{decoded, make_clip};
use common::node::NodeProc;
use serde_json::Value;
use sha2::{Digest, Sha256};
use tonic::Code;
use vidshard_proto::v1::jobs_client::JobsClient;
use vidshard_proto::v1::{GetPackageRequest, PackageListing, RetrieveRequest};

/// Frames of the 12 s, 30 fps clip.
const FRAMES: u64 = 360;

/// Runs the client with `--json` and parses its document.
fn json_of(node: &NodeProc, args: &[&str]) -> Value {
    let mut all = vec!["--json"];
    all.extend_from_slice(args);
    let run = vidshard(&node.address, &all);
    assert!(
        run.status.success(),
        "{args:?}: {}\n{}",
        String::from_utf8_lossy(&run.stderr),
        node.log_text()
    );
    serde_json::from_slice(&run.stdout).expect("one JSON document")
}

/// Video packets of stream `v:N` at `url`, as ffprobe counts them (the
/// top-level streams: an HLS master also lists them per program).
fn video_packets(url: &Path, n: usize) -> u64 {
    let out = Command::new("ffprobe")
        .args(["-v", "error", "-select_streams", &format!("v:{n}")])
        .args(["-count_packets", "-show_entries", "stream=nb_read_packets"])
        .args(["-of", "json"])
        .arg(url)
        .output()
        .expect("run ffprobe");
    assert!(
        out.status.success(),
        "ffprobe {}: {}",
        url.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    let root: Value = serde_json::from_slice(&out.stdout).expect("ffprobe json");
    let streams = root["streams"].as_array().cloned().unwrap_or_default();
    assert_eq!(streams.len(), 1, "{root}");
    streams[0]["nb_read_packets"]
        .as_str()
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("ffprobe said {root}"))
}

fn sha256_of(path: &Path) -> String {
    hex::encode(Sha256::digest(std::fs::read(path).expect("read")))
}

/// Every listed file is in `dir` with its size and sha256.
fn assert_saved(dir: &Path, listing: &PackageListing) {
    for f in &listing.files {
        let path = dir.join(&f.path);
        let meta = std::fs::metadata(&path).unwrap_or_else(|e| panic!("{}: {e}", f.path));
        assert_eq!(meta.len(), f.size, "{}", f.path);
        assert_eq!(sha256_of(&path), f.sha256, "{}", f.path);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_ladder_package_is_saved_whole_verified_and_plays_offline() {
    let dir = tempfile::tempdir().expect("tempdir");
    let node = NodeProc::start(&dir.path().join("node"), &[]);
    let clip = make_clip(&dir.path().join("clip.mp4"), 12, 640, 360, true);
    let top = dir.path().join("top.mp4");
    let uploaded = json_of(
        &node,
        &[
            "upload",
            clip.to_str().expect("utf8"),
            "--ladder",
            "360,240",
            "--preset",
            "ultrafast",
            "--output",
            top.to_str().expect("utf8"),
        ],
    );
    let id = uploaded["id"].as_str().expect("id").to_string();
    let mut jobs = JobsClient::new(node.channel().await);
    let listing = jobs
        .get_package(GetPackageRequest { id: id.clone() })
        .await
        .expect("GetPackage")
        .into_inner();
    assert!(listing.finished);
    // A lone node encodes each piece's two rungs in one ffmpeg (one
    // decode, one slot): the second rung rides with the first.
    let log = node.log_text();
    let riders = log
        .lines()
        .filter(|l| l.contains("shard assigned") && l.contains("bundled=true"))
        .count();
    let alone = log
        .lines()
        .filter(|l| l.contains("shard assigned") && l.contains("bundled=false"))
        .count();
    assert!(
        riders >= 1 && riders == alone,
        "every piece bundled: {riders} riders, {alone} leaders\n{log}"
    );

    let pkg = dir.path().join("pkg");
    let target = format!("{}/", pkg.display());
    let saved = json_of(&node, &["retrieve", &id, "--output", &target]);
    let files = listing.files.len() as u64;
    let bytes: u64 = listing.files.iter().map(|f| f.size).sum();
    assert_eq!(saved["id"], id.as_str());
    assert_eq!(saved["files"], files);
    assert_eq!(saved["bytes"], bytes);
    assert_eq!(saved["already"], 0);
    assert_saved(&pkg, &listing);
    for name in ["master.m3u8", "manifest.mpd"] {
        assert!(pkg.join(name).is_file(), "{name}");
    }
    for r in ["360p", "240p", "audio"] {
        for name in ["media.m3u8", "init.mp4", "0.m4s"] {
            assert!(pkg.join(r).join(name).is_file(), "{r}/{name}");
        }
    }
    let left: Vec<String> = walk(&pkg)
        .into_iter()
        .filter(|p| p.contains(".partial-"))
        .collect();
    assert!(left.is_empty(), "temp files left: {left:?}");

    // Offline, through both manifests: every frame of both rungs.
    for manifest in ["master.m3u8", "manifest.mpd"] {
        let url = pkg.join(manifest);
        for rung in 0..2 {
            assert_eq!(video_packets(&url, rung), FRAMES, "{manifest} v:{rung}");
            let (frames, errors) = decoded(&url, &format!("0:v:{rung}"));
            assert_eq!(frames, FRAMES, "{manifest} v:{rung} decoded");
            assert!(errors.is_empty(), "{manifest} v:{rung}: {errors}");
        }
    }

    // Again: everything is already there.
    let again = vidshard(&node.address, &["retrieve", &id, "--output", &target]);
    assert!(
        again.status.success(),
        "{}",
        String::from_utf8_lossy(&again.stderr)
    );
    let text = String::from_utf8_lossy(&again.stdout);
    assert!(
        text.contains(&format!("saved {files} files"))
            && text.contains(&format!("({files} already there)")),
        "{text}"
    );

    // A damaged segment (same size, other bytes) is fetched again.
    let victim = pkg.join("360p").join("1.m4s");
    let mut damaged = std::fs::read(&victim).expect("read segment");
    let middle = damaged.len() / 2;
    damaged[middle] ^= 0xff;
    std::fs::write(&victim, &damaged).expect("damage");
    let repaired = json_of(&node, &["retrieve", &id, "--output", &target]);
    assert_eq!(repaired["already"], files - 1);
    assert_saved(&pkg, &listing);

    // Paths that are no file of a package, and unknown jobs.
    for bad in [
        "../x",
        "360p/../../etc",
        "360p/-1.m4s",
        "360p/1.m4s.bak",
        "/etc/passwd",
        "360p/media.m3u8",
    ] {
        let refused = jobs
            .retrieve(RetrieveRequest {
                id: id.clone(),
                offset: 0,
                path: bad.into(),
            })
            .await
            .err()
            .unwrap_or_else(|| panic!("{bad:?} was served"));
        assert_eq!(
            refused.code(),
            Code::InvalidArgument,
            "{bad:?}: {refused:?}"
        );
    }
    let unknown = jobs
        .get_package(GetPackageRequest {
            id: "no-such-job".into(),
        })
        .await
        .expect_err("unknown job");
    assert_eq!(unknown.code(), Code::NotFound, "{unknown:?}");
    let unknown = jobs
        .retrieve(RetrieveRequest {
            id: "no-such-job".into(),
            offset: 0,
            path: "360p/init.mp4".into(),
        })
        .await
        .expect_err("unknown job");
    assert_eq!(unknown.code(), Code::NotFound, "{unknown:?}");
    let missing = jobs
        .retrieve(RetrieveRequest {
            id: id.clone(),
            offset: 0,
            path: "1080p/init.mp4".into(),
        })
        .await
        .expect_err("no such rung");
    assert_eq!(missing.code(), Code::NotFound, "{missing:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_plain_job_saved_into_a_directory_is_named_after_its_id() {
    let dir = tempfile::tempdir().expect("tempdir");
    let node = NodeProc::start(&dir.path().join("node"), &[]);
    let clip = make_clip(&dir.path().join("clip.mp4"), 3, 320, 240, false);
    let file = dir.path().join("plain.mp4");
    let uploaded = json_of(
        &node,
        &[
            "upload",
            clip.to_str().expect("utf8"),
            "--preset",
            "ultrafast",
            "--output",
            file.to_str().expect("utf8"),
        ],
    );
    let id = uploaded["id"].as_str().expect("id");
    let mut jobs = JobsClient::new(node.channel().await);
    let refused = jobs
        .get_package(GetPackageRequest { id: id.into() })
        .await
        .expect_err("a plain job has no package");
    assert_eq!(refused.code(), Code::FailedPrecondition, "{refused:?}");
    assert!(
        refused.message().contains("not a ladder job"),
        "{refused:?}"
    );

    let out = dir.path().join("out");
    let saved = json_of(
        &node,
        &["retrieve", id, "--output", &format!("{}/", out.display())],
    );
    let path = out.join(format!("{id}.mp4"));
    assert_eq!(saved["output"], path.display().to_string());
    assert_eq!(sha256_of(&path), sha256_of(&file));
}

/// Every file under `dir`, as paths relative to it.
fn walk(dir: &Path) -> Vec<String> {
    let mut found = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for entry in std::fs::read_dir(&d).expect("read dir") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                todo.push(path);
            } else {
                let relative = path.strip_prefix(dir).expect("under dir");
                found.push(relative.display().to_string());
            }
        }
    }
    found
}
