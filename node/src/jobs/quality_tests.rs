use super::*;

fn shard(values: &[f64]) -> ShardQuality {
    let ssim: Vec<f64> = values.iter().map(|p| 1.0 - 10f64.powf(-p / 10.0)).collect();
    ShardQuality::from_frames(values, &ssim, "n1")
}

#[test]
fn stats_are_nearest_rank_percentiles() {
    let values: Vec<f64> = (1..=100).map(f64::from).collect();
    let s = Stats::of(&values);
    assert_eq!((s.frames, s.min, s.p1, s.p5), (100, 1.0, 1.0, 5.0));
    assert!((s.mean - 50.5).abs() < 1e-9);
    assert_eq!(Stats::of(&[]), Stats::default());
    assert_eq!(Stats::of(&[f64::NAN, 3.0]).frames, 1);
}

#[test]
fn a_shard_splits_into_edges_and_interior() {
    let mut values = vec![40.0; 100];
    values[0] = 30.0;
    values[99] = f64::INFINITY;
    let q = shard(&values);
    assert_eq!(q.psnr.frames, 100);
    assert_eq!(q.psnr.min, 30.0);
    assert_eq!(q.psnr.p1, 30.0);
    assert_eq!(q.head_psnr.len(), SEAM_FRAMES);
    assert_eq!(
        q.tail_psnr.last(),
        Some(&PSNR_CAP_DB),
        "identical frame capped"
    );
    assert_eq!(q.interior_psnr.frames, 100 - 2 * SEAM_FRAMES as u64);
    assert_eq!(q.interior_psnr.min, 40.0, "edges are not interior");
    assert!(q.is_plausible(100));
    assert!(
        !q.is_plausible(99),
        "more frames measured than the shard has"
    );
}

#[test]
fn a_short_shard_is_all_edges() {
    let q = shard(&[40.0; 5]);
    assert_eq!((q.head_psnr.len(), q.tail_psnr.len()), (5, 5));
    assert_eq!(q.interior_psnr.frames, 0);
}

#[test]
fn implausible_figures_are_refused() {
    let mut q = shard(&[40.0; 50]);
    q.ssim.mean = 1.5;
    assert!(!q.is_plausible(50));
    let mut q = shard(&[40.0; 50]);
    q.head_psnr = vec![40.0; SEAM_FRAMES + 1];
    assert!(!q.is_plausible(50));
    let mut q = shard(&[40.0; 50]);
    q.psnr.min = f64::NAN;
    assert!(!q.is_plausible(50));
}

#[test]
fn even_shards_flag_no_seam() {
    let a = shard(&[40.0; 250]);
    let b = shard(&[41.0; 250]);
    let report = job_report(&[Some(&a), Some(&b), Some(&a)]).expect("test data");
    assert_eq!(report.seams.len(), 2);
    assert!(report.flagged_seams().is_empty(), "{report:?}");
    assert_eq!(report.psnr.frames, 750);
    assert!((report.psnr.mean - (40.0 * 500.0 + 41.0 * 250.0) / 750.0).abs() < 1e-9);
    assert_eq!(report.seams[0].psnr.frames, 2 * SEAM_FRAMES as u64);
}

#[test]
fn a_starved_shard_start_flags_the_seam_before_it() {
    let good = shard(&[40.0; 250]);
    let mut starved = vec![40.0; 250];
    for v in &mut starved[..SEAM_FRAMES] {
        *v = 38.5;
    }
    let bad = shard(&starved);
    let report = job_report(&[Some(&good), Some(&bad), Some(&good)]).expect("test data");
    assert_eq!(report.flagged_seams(), vec![0]);
    let why = report.seams[0].flag.as_deref().expect("test data");
    assert!(why.contains("start of shard 1"), "{why}");
    // A drop of less than the margin is not flagged.
    for v in &mut starved[..SEAM_FRAMES] {
        *v = 39.2;
    }
    let mild = shard(&starved);
    assert!(
        job_report(&[Some(&good), Some(&mild)])
            .expect("test data")
            .flagged_seams()
            .is_empty()
    );
}

#[test]
fn a_worse_shard_end_flags_the_seam_after_it() {
    let good = shard(&[40.0; 250]);
    let mut tail_bad = vec![40.0; 250];
    for v in &mut tail_bad[250 - SEAM_FRAMES..] {
        *v = 30.0;
    }
    let report = job_report(&[Some(&shard(&tail_bad)), Some(&good)]).expect("test data");
    assert_eq!(report.flagged_seams(), vec![0]);
    assert!(
        report.seams[0]
            .flag
            .as_ref()
            .expect("test data")
            .contains("end of shard 0")
    );
}

#[test]
fn unmeasured_shards_leave_gaps_not_errors() {
    let a = shard(&[40.0; 250]);
    assert_eq!(job_report(&[None, None]), None);
    let report = job_report(&[Some(&a), None, Some(&a)]).expect("test data");
    assert_eq!((report.measured_shards, report.shards), (2, 3));
    assert!(report.seams.is_empty(), "no seam has both sides measured");
}

#[test]
fn a_short_neighbour_has_nothing_to_compare_with() {
    let short = shard(&[20.0; 10]);
    let good = shard(&[40.0; 250]);
    let report = job_report(&[Some(&good), Some(&short)]).expect("test data");
    assert!(report.flagged_seams().is_empty(), "{report:?}");
}
