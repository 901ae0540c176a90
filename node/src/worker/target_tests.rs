use super::*;

const SSIM_98: QualityTarget = QualityTarget::Ssim(9800);

/// A shard whose SSIM in dB falls `slope` per CRF from `at_zero`.
fn shard(at_zero: f64, slope: f64) -> impl Fn(u32) -> f64 {
    move |crf| 1.0 - 10f64.powf(-(at_zero + slope * f64::from(crf)) / 10.0)
}

/// Runs the search on `score` and answers the probes and the kept CRF.
fn search(target: QualityTarget, score: impl Fn(u32) -> f64, first: u32) -> (Vec<Probe>, u32) {
    let mut probes = Vec::new();
    loop {
        match next_step(target, &probes, first, 51) {
            Step::Try(crf) => {
                assert!(probes.len() < MAX_PROBES, "too many probes: {probes:?}");
                assert!((1..=51).contains(&crf));
                probes.push(Probe {
                    crf,
                    score: score(crf),
                })
            }
            Step::Keep(crf) => return (probes, crf),
        }
    }
}

#[test]
fn a_linear_shard_is_met_at_the_highest_crf_that_meets_it() {
    // 17 dB (SSIM 0.98) is reached at CRF 30.
    let score = shard(29.0, -0.4);
    let (probes, kept) = search(SSIM_98, &score, 23);
    assert_eq!(kept, 30, "{probes:?}");
    assert!(score(kept) >= 0.98 && score(kept + 1) < 0.98);
    assert!(probes.len() <= 3, "{probes:?}");
}

#[test]
fn a_curved_shard_is_bracketed_within_four_probes() {
    let score = |crf: u32| {
        let c = f64::from(crf);
        1.0 - 10f64.powf(-(30.0 - 0.1 * c - 0.012 * c * c) / 10.0)
    };
    let (probes, kept) = search(SSIM_98, score, 23);
    assert!(probes.len() <= MAX_PROBES);
    assert!(score(kept) >= 0.98, "kept {kept}: {probes:?}");
    assert!(probes.iter().any(|p| p.crf == kept));
}

#[test]
fn easy_shards_go_to_the_top_and_hard_ones_to_the_bottom() {
    let (_, easy) = search(SSIM_98, shard(60.0, -0.3), 23);
    assert_eq!(easy, 51);
    let (probes, hard) = search(SSIM_98, shard(10.0, -0.3), 23);
    assert_eq!(hard, 1, "unreachable: the best there is, {probes:?}");
}

#[test]
fn psnr_targets_work_in_decibels() {
    let target = QualityTarget::Psnr(4000);
    let (probes, kept) = search(target, |crf| 52.0 - 0.5 * f64::from(crf), 23);
    assert_eq!(kept, 24, "{probes:?}");
}

#[test]
fn keep_prefers_the_highest_crf_that_met_the_target() {
    let probes = [
        Probe {
            crf: 23,
            score: 0.985,
        },
        Probe {
            crf: 30,
            score: 0.979,
        },
        Probe {
            crf: 27,
            score: 0.981,
        },
    ];
    assert_eq!(keep(SSIM_98, &probes), 27);
    assert_eq!(keep(SSIM_98, &probes[1..2]), 30, "none met: the best");
}
