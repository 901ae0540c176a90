//! The `vidshard` client binary against a real node: upload with progress
//! and wait, status/jobs/nodes in JSON, retrieve, and one-line errors.

mod common;

use std::path::Path;
use std::process::Output;

use common::client::vidshard;
use common::clips::{make_clip, report};
use common::node::NodeProc;
use serde_json::Value;

fn json_of(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not one JSON document ({e}): {}\nstderr: {}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

fn sha256_of(path: &Path) -> String {
    use sha2::{Digest, Sha256};
    hex::encode(Sha256::digest(std::fs::read(path).expect("read")))
}

#[test]
fn upload_wait_status_jobs_nodes_and_retrieve() {
    let dir = tempfile::tempdir().expect("tempdir");
    let clip = make_clip(&dir.path().join("clip.mp4"), 12, 640, 360, true);
    let node = NodeProc::start(&dir.path().join("node"), &[]);
    let out_path = dir.path().join("out.mkv");
    let clip_arg = clip.to_str().expect("utf8");
    let out_arg = out_path.to_str().expect("utf8");

    let up = vidshard(
        &node.address,
        &[
            "--json", "upload", clip_arg, "--width", "320", "--height", "-1", "--format", "mkv",
            "--crf", "28", "--output", out_arg,
        ],
    );
    assert!(
        up.status.success(),
        "upload failed: {}",
        String::from_utf8_lossy(&up.stderr)
    );
    let doc = json_of(&up);
    assert_eq!(doc["status"], "completed");
    let id = doc["id"].as_str().expect("id").to_string();
    assert_eq!(
        doc["output_sha256"].as_str(),
        Some(sha256_of(&out_path).as_str())
    );
    let got = report(&out_path);
    assert_eq!((got.width, got.height, got.frames), (320, 180, 360));
    assert_eq!(got.video_codec, "h264");

    let status = vidshard(&node.address, &["--json", "status", &id]);
    assert!(status.status.success());
    let doc = json_of(&status);
    assert_eq!(doc["id"], id.as_str());
    assert_eq!(doc["status"], "completed");
    assert_eq!(doc["params"]["crf"], 28);
    let shards = doc["shards"].as_array().expect("shards");
    assert!(!shards.is_empty());
    for shard in shards {
        assert_eq!(shard["state"], "done");
        assert!(shard["worker"].as_str().is_some_and(|w| !w.is_empty()));
        assert_eq!(shard["progress"].as_f64(), Some(1.0));
    }
    let frames: u64 = shards
        .iter()
        .map(|s| s["frames"].as_u64().unwrap_or(0))
        .sum();
    assert_eq!(frames, 360);

    let jobs = json_of(&vidshard(&node.address, &["--json", "jobs"]));
    assert!(
        jobs["jobs"]
            .as_array()
            .expect("jobs")
            .iter()
            .any(|j| j["id"] == id.as_str())
    );

    let nodes = json_of(&vidshard(&node.address, &["--json", "nodes"]));
    let list = nodes["nodes"].as_array().expect("nodes");
    assert_eq!(list.len(), 1);
    assert_eq!(list[0]["address"], node.address.as_str());
    assert_eq!(list[0]["role"], "master");
    assert_eq!(list[0]["alive"], true);
    assert_eq!(nodes["master_address"], node.address.as_str());

    let again = dir.path().join("again.mkv");
    let retrieved = vidshard(
        &node.address,
        &["retrieve", &id, "--output", again.to_str().expect("utf8")],
    );
    assert!(
        retrieved.status.success(),
        "{}",
        String::from_utf8_lossy(&retrieved.stderr)
    );
    assert_eq!(
        sha256_of(&again),
        sha256_of(&out_path),
        "bytes identical after a round trip"
    );

    let plain = vidshard(&node.address, &["status", &id]);
    let text = String::from_utf8_lossy(&plain.stdout);
    assert!(text.contains("completed") && text.contains(&id), "{text}");
}

#[test]
fn failures_exit_nonzero_with_one_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    let node = NodeProc::start(&dir.path().join("node"), &[]);

    let unknown = vidshard(&node.address, &["status", "no-such-job"]);
    assert!(!unknown.status.success());
    let err = String::from_utf8_lossy(&unknown.stderr);
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(
        err.starts_with("vidshard: ") && err.contains("not found"),
        "{err}"
    );

    let text = dir.path().join("notes.txt");
    std::fs::write(&text, "not a video\n".repeat(50)).expect("write");
    let out = dir.path().join("never.mp4");
    let failed = vidshard(
        &node.address,
        &[
            "upload",
            text.to_str().expect("utf8"),
            "--width",
            "320",
            "--height",
            "180",
            "--output",
            out.to_str().expect("utf8"),
        ],
    );
    assert!(!failed.status.success());
    let err = String::from_utf8_lossy(&failed.stderr);
    assert!(err.contains("failed_segmentation"), "{err}");
    assert!(!out.exists());

    let refused = vidshard(
        &node.address,
        &[
            "upload",
            text.to_str().expect("utf8"),
            "--width",
            "-5",
            "--height",
            "180",
        ],
    );
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("negative"));

    // Options are checked before any connection: a node that is not
    // there is never tried, the reason is the option.
    for (options, reason) in [
        (&["--crf", "99"][..], "crf 99 is out of range"),
        (&["--preset", "warp"], "unknown preset"),
        (&["--width", "9000"], "larger than the 8192"),
        (
            &["--codec", "vp9", "--format", "mp4"],
            "vp9 cannot go in mp4",
        ),
        (
            &["--codec", "hevc", "--format", "webm"],
            "hevc cannot go in webm",
        ),
        (&["--codec", "hevc", "--crf", "60"], "1..=51 for hevc"),
        (&["--codec", "mpeg2"], "invalid value 'mpeg2' for '--codec"),
        (
            &[
                "--codec",
                "h264",
                "--pix-fmt",
                "yuv420p10le",
                "--format",
                "webm",
            ],
            "h264 cannot go in webm",
        ),
        (
            &["--pix-fmt", "rgb24"],
            "invalid value 'rgb24' for '--pix-fmt",
        ),
        (&["--target-ssim", "1.2"], "target SSIM 1.2 is out of range"),
        (&["--target-psnr", "5"], "target PSNR 5 dB is out of range"),
        (
            &["--target-ssim", "0.98", "--target-psnr", "40"],
            "not both",
        ),
        (
            &["--target-ssim", "0.98", "--no-quality"],
            "cannot go with --no-quality",
        ),
        (&["--ladder", "720,hd"], "unknown rung \"hd\""),
        (
            &["--ladder", "9000,720"],
            "rung 9000 is higher than the 8192",
        ),
        (
            &["--ladder", "auto", "--segment-seconds", "0"],
            "segment length 0 s is out of range",
        ),
        (
            &["--ladder", "auto", "--format", "webm"],
            "--format webm does not apply",
        ),
        (
            &["--ladder", "auto", "--width", "640"],
            "a ladder's sizes are its rungs",
        ),
        (
            &["--ladder", "auto", "--package", "smooth"],
            "unknown package",
        ),
        (
            &["--segment-seconds", "4"],
            "required arguments were not provided",
        ),
    ] {
        let mut args = vec!["upload", text.to_str().expect("utf8")];
        args.extend_from_slice(options);
        let early = vidshard("127.0.0.1:1", &args);
        assert!(!early.status.success());
        let err = String::from_utf8_lossy(&early.stderr);
        assert!(
            err.contains(reason) && !err.contains("127.0.0.1:1"),
            "{options:?}: {err}"
        );
    }

    let dead = vidshard("127.0.0.1:1", &["jobs"]);
    assert!(!dead.status.success());
    let err = String::from_utf8_lossy(&dead.stderr);
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(err.contains("127.0.0.1:1"), "{err}");

    // Several addresses: the first that answers serves the command, and
    // when none does each is named.
    let second = vidshard(&format!("127.0.0.1:1,{}", node.address), &["jobs"]);
    assert!(
        second.status.success(),
        "{}",
        String::from_utf8_lossy(&second.stderr)
    );
    let none = vidshard("127.0.0.1:1,127.0.0.1:2", &["jobs"]);
    assert!(!none.status.success());
    let err = String::from_utf8_lossy(&none.stderr);
    assert!(
        err.contains("none of the 2 nodes given answered")
            && err.contains("127.0.0.1:1")
            && err.contains("127.0.0.1:2"),
        "{err}"
    );
}
