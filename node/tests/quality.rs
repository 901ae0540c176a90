//! The quality report: every shard measured against its source by the
//! worker that encoded it, a lower CRF scoring higher, and a seam whose
//! frames are starved of bits flagged on the job, in `vidshard status`.

mod common;

use std::time::Duration;

use common::client::{encode_with_cli, vidshard};
use common::clips::make_clip;
use common::cluster::Cluster;
use common::node::NodeProc;
use common::{Params, job, upload_file, wait_finished};
use vidshard_proto::v1::{JobInfo, JobQuality, QualityStats};

const JOB_TIMEOUT: Duration = Duration::from_secs(180);

fn psnr(q: &JobQuality) -> QualityStats {
    q.psnr.expect("psnr figures")
}

/// Every shard measured where it was encoded, over all its frames.
fn assert_every_shard_measured(info: &JobInfo) -> JobQuality {
    let report = info.quality.clone().expect("a quality report");
    let shards = info.shards.len() as u32;
    assert_eq!((report.measured_shards, report.shards), (shards, shards));
    assert_eq!(report.seams.len() as u32, shards - 1, "one seam per cut");
    for shard in &info.shards {
        let q = shard.quality.as_ref().expect("shard measured");
        let all = q.psnr.expect("psnr");
        assert_eq!(
            all.frames, shard.frames,
            "shard {}: every frame",
            shard.index
        );
        assert_eq!(q.measured_on, shard.worker_id, "measured where encoded");
        assert!(q.ssim.expect("ssim").mean > 0.5, "{q:?}");
    }
    report
}

#[tokio::test(flavor = "multi_thread")]
async fn a_lower_crf_scores_higher_and_no_seam_of_an_honest_encode_is_flagged() {
    let dir = tempfile::tempdir().expect("temp dir");
    let clip = make_clip(&dir.path().join("clip.mp4"), 8, 320, 180, true);
    let cluster = Cluster::start(&dir.path().join("cluster"));
    let master = cluster.formed().await;
    let mut reports = Vec::new();
    for crf in ["18", "35"] {
        let out = dir.path().join(format!("crf{crf}.mp4"));
        let id = format!("crf{crf}");
        let options = ["--crf", crf, "--id", &id, "--height", "90"];
        encode_with_cli(&cluster, &master, &clip, &out, &options);
        let channel = common::cluster::lazy_channel(&master);
        let info = job(channel, &id).await.expect("get job");
        let report = assert_every_shard_measured(&info);
        assert!(
            report.flagged_seams.is_empty(),
            "crf {crf}: {:?}",
            report.seams
        );
        let workers: std::collections::HashSet<_> =
            info.shards.iter().map(|s| s.worker_id.clone()).collect();
        eprintln!("crf {crf}: {:?}, measured on {workers:?}", psnr(&report));
        reports.push(report);
    }
    let (fine, coarse) = (psnr(&reports[0]), psnr(&reports[1]));
    assert!(
        fine.mean > coarse.mean + 3.0,
        "crf 18 gave {} dB, crf 35 {} dB",
        fine.mean,
        coarse.mean
    );
    assert!(reports[0].ssim.expect("test data").mean > reports[1].ssim.expect("test data").mean);

    // A job that asks for no report has none.
    let out = dir.path().join("none.mp4");
    let options = ["--no-quality", "--id", "none", "--height", "90"];
    encode_with_cli(&cluster, &master, &clip, &out, &options);
    let info = job(common::cluster::lazy_channel(&master), "none")
        .await
        .expect("test data");
    assert!(info.quality.is_none(), "{:?}", info.quality);
    assert!(info.shards.iter().all(|s| s.quality.is_none()));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_seam_starved_of_bits_is_flagged_on_the_job() {
    let dir = tempfile::tempdir().expect("temp dir");
    let clip = make_clip(&dir.path().join("clip.mp4"), 8, 320, 180, true);
    // An ffmpeg that encodes the first 12 frames of every x264 shard at
    // the worst quantizer: the start of each shard, the frames right
    // after a seam, is starved, as a broken rate control would.
    let starving = dir.path().join("starving-ffmpeg");
    std::fs::write(
        &starving,
        "#!/bin/bash\nargs=()\nfor a in \"$@\"; do\n  args+=(\"$a\")\n  \
         if [ \"$a\" = libx264 ]; then args+=(-x264-params zones=0,11,q=51); fi\n\
         done\nexec ffmpeg \"${args[@]}\"\n",
    )
    .expect("write the wrapper");
    std::fs::set_permissions(
        &starving,
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .expect("make it executable");
    let node = NodeProc::start(
        &dir.path().join("node"),
        &[
            "--shard-seconds",
            "2",
            "--slots",
            "2",
            "--ffmpeg",
            starving.to_str().expect("utf8"),
        ],
    );
    let channel = node.channel().await;
    let id = upload_file(
        channel.clone(),
        "starved",
        &clip,
        &Params::size(320, 180, "mp4"),
    )
    .await;
    let info = wait_finished(channel, &id, JOB_TIMEOUT).await;
    assert_eq!(info.status, "completed", "{}", info.message);
    let report = assert_every_shard_measured(&info);
    let seams: Vec<u32> = (0..report.seams.len() as u32).collect();
    assert_eq!(
        report.flagged_seams, seams,
        "every seam: {:?}",
        report.seams
    );
    let first = &info.shards[1].quality.as_ref().expect("test data");
    let interior = first.interior_psnr.expect("test data");
    let head = first.head_psnr.iter().sum::<f64>() / first.head_psnr.len() as f64;
    assert!(
        head < interior.p5 - 1.0,
        "head {head} dB, interior {interior:?}"
    );

    // The flag reaches the user: `status` in text and JSON.
    let text = vidshard(&node.address, &["status", &id]);
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(text.contains("FLAGGED"), "{text}");
    assert!(
        text.contains("seam after shard 0: the start of shard 1"),
        "{text}"
    );
    let json = vidshard(&node.address, &["--json", "status", &id]);
    let json: serde_json::Value = serde_json::from_slice(&json.stdout).expect("status --json");
    assert_eq!(json["quality"]["flagged_seams"], serde_json::json!(seams));
    assert_eq!(json["quality"]["seams"][0]["flagged"], true);
    assert_eq!(
        json["shards"][1]["quality"]["psnr"]["frames"],
        info.shards[1].frames
    );
}

/// 8 s at 30 fps, keyframes every 2 s: 4 s of flat grey (easy to encode)
/// then 4 s of testsrc2 under moving noise (hard), with audio.
fn easy_then_hard(path: &std::path::Path) -> std::path::PathBuf {
    let graph = "color=c=0x808080:s=320x180:r=30:d=4[easy];\
                 testsrc2=s=320x180:r=30:d=4,noise=alls=25:allf=t[hard];\
                 [easy][hard]concat=n=2:v=1:a=0[v]";
    let status = std::process::Command::new("ffmpeg")
        .args(["-nostdin", "-v", "error", "-y", "-filter_complex", graph])
        .args(["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000"])
        .args(["-map", "[v]", "-map", "0:a", "-t", "8"])
        .args(["-c:v", "libx264", "-preset", "ultrafast", "-crf", "8"])
        .args(["-g", "60", "-keyint_min", "60", "-sc_threshold", "0"])
        .args(["-pix_fmt", "yuv420p", "-c:a", "aac"])
        .arg(path)
        .status()
        .expect("run ffmpeg");
    assert!(status.success());
    path.to_path_buf()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_target_ssim_gives_each_shard_the_highest_crf_that_meets_it() {
    let dir = tempfile::tempdir().expect("temp dir");
    let clip = easy_then_hard(&dir.path().join("clip.mp4"));
    let source_frames = common::clips::report(&clip).frames;
    let cluster = Cluster::start(&dir.path().join("cluster"));
    let master = cluster.formed().await;
    let out = dir.path().join("out.mp4");
    let options = ["--target-ssim", "0.95", "--id", "target"];
    encode_with_cli(&cluster, &master, &clip, &out, &options);
    assert_eq!(common::clips::report(&out).frames, source_frames);
    let info = job(common::cluster::lazy_channel(&master), "target")
        .await
        .expect("get job");
    assert_every_shard_measured(&info);
    let mut crfs = Vec::new();
    for shard in &info.shards {
        let q = shard.quality.as_ref().expect("test data");
        let ssim = q.ssim.expect("test data").mean;
        assert!(
            ssim >= 0.95,
            "shard {} missed the target: {q:?}",
            shard.index
        );
        assert!(
            (1..=4).contains(&q.probes.len()),
            "shard {}: {:?}",
            shard.index,
            q.probes
        );
        let kept = q
            .probes
            .iter()
            .find(|p| p.crf == q.crf)
            .expect("kept a probe");
        assert!(
            (kept.score - ssim).abs() < 1e-9,
            "the kept probe is the result"
        );
        // No higher CRF tried met the target: the fewest bits of those tried.
        assert!(
            q.probes.iter().all(|p| p.crf <= q.crf || p.score < 0.95),
            "shard {}: {:?}",
            shard.index,
            q.probes
        );
        crfs.push((shard.start_seconds, q.crf));
    }
    eprintln!("CRF per shard (start s, crf): {crfs:?}");
    let easy = crfs.iter().filter(|(s, _)| *s < 3.9).map(|(_, c)| *c);
    let hard = crfs.iter().filter(|(s, _)| *s >= 3.9).map(|(_, c)| *c);
    let (easiest_hard, hardest_easy) = (
        hard.max().expect("test data"),
        easy.min().expect("test data"),
    );
    assert!(
        hardest_easy >= easiest_hard + 10,
        "easy shards should get far higher CRFs: {crfs:?}"
    );
    let text = vidshard(&master, &["status", "target"]);
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(
        text.contains("target:    SSIM 0.95: met by 4 of 4 shards; CRF "),
        "{text}"
    );
}
