use std::path::{Path, PathBuf};

use super::*;
use crate::media::{EncodeSpec, EncodeTarget, encode_shard};
use crate::params::OutputFormat;

#[test]
fn samples_cover_every_stretch_and_change_with_the_seed() {
    let picks = sample_frames(300, 10, 7);
    assert_eq!(picks.len(), 10);
    for (i, n) in picks.iter().enumerate() {
        let i = i as u64;
        assert!((i * 30..(i + 1) * 30).contains(n), "{picks:?}");
    }
    assert_eq!(picks, sample_frames(300, 10, 7), "pure");
    let others: Vec<Vec<u64>> = (0..20).map(|s| sample_frames(300, 10, s)).collect();
    assert!(others.iter().any(|o| *o != picks), "the seed matters");
    // Short videos: every frame once; odd lengths stay in range.
    assert_eq!(sample_frames(4, 10, 1), vec![0, 1, 2, 3]);
    assert!(sample_frames(0, 10, 1).is_empty());
    let odd = sample_frames(11, 10, u64::MAX);
    assert!(
        odd.windows(2).all(|w| w[0] < w[1]) && odd[9] < 11,
        "{odd:?}"
    );
}

#[test]
fn stats_lines_of_both_filters_are_read() {
    let psnr = "n:2 mse_avg:4.06 mse_y:3.24 mse_u:5.42 mse_v:5.98 psnr_avg:42.05 psnr_y:43.03 psnr_u:40.79 psnr_v:40.36 ";
    assert_eq!(
        parse_stats_line(psnr),
        Some(StatsLine::Psnr {
            pair: 2,
            avg: 42.05,
            y: 43.03
        })
    );
    let ssim = "n:2 Y:0.991955 U:0.992581 V:0.993865 All:0.992378 (21.179042)";
    assert_eq!(
        parse_stats_line(ssim),
        Some(StatsLine::Ssim {
            pair: 2,
            all: 0.992378
        })
    );
    let same = "n:1 mse_avg:0.00 mse_y:0.00 mse_u:0.00 mse_v:0.00 psnr_avg:inf psnr_y:inf";
    assert!(matches!(
        parse_stats_line(same),
        Some(StatsLine::Psnr { avg, .. }) if avg.is_infinite()
    ));
    assert_eq!(parse_stats_line("frame=3 fps=0.0"), None);
}

#[test]
fn scores_pair_up_by_position_and_incomplete_pairs_are_dropped() {
    let lines = [
        StatsLine::Psnr {
            pair: 1,
            avg: 30.0,
            y: 31.0,
        },
        StatsLine::Ssim { pair: 1, all: 0.9 },
        StatsLine::Psnr {
            pair: 2,
            avg: 9.0,
            y: 11.0,
        },
    ];
    let q = collect(&[17, 80, 150], &lines);
    assert_eq!(q.frames.len(), 1);
    assert_eq!(q.frames[0].index, 17);
    assert_eq!(q.worst().map(|f| f.psnr), Some(30.0));
    assert_eq!(q.mean_ssim(), Some(0.9));
}

#[test]
fn runs_of_frames_select_as_ranges() {
    assert_eq!(select_expr(&[3]), "eq(n\\,3)");
    assert_eq!(
        select_expr(&[0, 1, 2, 7, 9, 10]),
        "between(n\\,0\\,2)+eq(n\\,7)+between(n\\,9\\,10)"
    );
    let every: Vec<u64> = (0..100_000).collect();
    assert_eq!(select_expr(&every), "between(n\\,0\\,99999)");
}

#[test]
fn the_source_is_scaled_like_the_encoder_scales_it() {
    let args = compare_args(Picture::scaled(640, 360), &[3, 90]).join(" ");
    assert!(
        args.contains("[1:v]select='eq(n\\,3)+eq(n\\,90)',setpts=N/(25*TB),scale=640:360"),
        "{args}"
    );
    assert!(args.contains("-frames:v 2"), "{args}");
    let turned = Picture {
        orientation: crate::media::Orientation::Cclock,
        ..Picture::scaled(360, 640)
    };
    let args = compare_args(turned, &[3]).join(" ");
    assert!(args.contains("transpose=cclock,scale=360:640"), "{args}");
}

/// A `seconds` long testsrc2 clip (video only, nut) of `size` in `pix_fmt`.
async fn clip(dir: &Path, name: &str, size: &str, pix_fmt: &str) -> PathBuf {
    let path = dir.join(name);
    let status = tokio::process::Command::new("ffmpeg")
        .args(["-nostdin", "-v", "error", "-y", "-f", "lavfi", "-i"])
        .arg(format!("testsrc2=size={size}:rate=30"))
        .args(["-frames:v", "45", "-c:v", "libx264", "-preset", "ultrafast"])
        .args(["-pix_fmt", pix_fmt, "-f", "nut"])
        .arg(&path)
        .status()
        .await
        .expect("run ffmpeg");
    assert!(status.success(), "making {name}");
    path
}

async fn encode(source: &Path, out: &Path, width: u32, height: u32, crf: u32) {
    let spec = EncodeSpec {
        width,
        height,
        format: OutputFormat::Mp4,
        codec: crate::params::VideoCodec::H264,
        pix_fmt: crate::params::PixFmt::Yuv420p,
        preset: "ultrafast".into(),
        crf,
        threads: 1,
        orientation: Default::default(),
        colour: Default::default(),
        tonemap: false,
        quality_target: None,
        rung: None,
    };
    encode_shard(
        &Tools::default(),
        &spec,
        source,
        out,
        EncodeTarget::SHARD,
        |_| {},
    )
    .await
    .expect("encode");
}

#[tokio::test]
async fn honest_encodes_score_high_and_another_picture_scores_low() {
    let dir = tempfile::tempdir().expect("tempdir");
    let tools = Tools::default();
    let samples = sample_frames(45, 6, 42);
    // Odd-sized 4:4:4 source, upscaled: the reference is scaled and
    // converted as the encoder did, so the worst frame is still close.
    let odd = clip(dir.path(), "odd.nut", "161x91", "yuv444p").await;
    let up = dir.path().join("up.nut");
    encode(&odd, &up, 320, 180, 51).await;
    let q = compare(&tools, &up, &odd, Picture::scaled(320, 180), &samples)
        .await
        .expect("compare");
    assert_eq!(q.frames.len(), samples.len(), "{q:?}");
    let worst = q.worst().expect("a frame");
    assert!(worst.psnr > 22.0, "crf 51 upscale: {q:?}");
    // A red picture of the right size is nowhere near.
    let red = dir.path().join("red.nut");
    let status = tokio::process::Command::new("ffmpeg")
        .args(["-nostdin", "-v", "error", "-y", "-f", "lavfi"])
        .args(["-i", "color=red:size=320x180:rate=30", "-frames:v", "45"])
        .args(["-c:v", "libx264", "-pix_fmt", "yuv420p", "-f", "nut"])
        .arg(&red)
        .status()
        .await
        .expect("run ffmpeg");
    assert!(status.success());
    let q = compare(&tools, &red, &odd, Picture::scaled(320, 180), &samples)
        .await
        .expect("compare");
    assert!(q.worst().expect("a frame").psnr < 12.0, "red: {q:?}");
    // Frames past the end cannot be compared: they are missing.
    let q = compare(&tools, &up, &odd, Picture::scaled(320, 180), &[10, 44, 60])
        .await
        .expect("compare");
    let compared: Vec<u64> = q.frames.iter().map(|f| f.index).collect();
    assert_eq!(compared, vec![10, 44]);
}
