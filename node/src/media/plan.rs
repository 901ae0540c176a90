//! Shard planning: where to cut the video stream, as a pure function of
//! the probed packet list.
//!
//! A cut at decode index k is accepted only at a keyframe that closes its
//! GOP: every packet before k presents before it and every packet from k on
//! presents at or after it. Open-GOP cuts lose frames under stream copy.
//! Cuts are placed at the accepted keyframe nearest each "+target seconds"
//! from the previous cut, so shards come out even (not 16.6/8.3/… when the
//! GOP is 8.3 s), and the tail is merged rather than left as a sliver.
//!
//! The last shards of a job can be planned about half as long (see
//! [`tail_shards`]): when every slot has taken its last shard, the slots
//! then run dry within about half a shard of each other instead of a whole
//! one. Where keyframes are sparser than half a shard (an 8.3 s GOP with
//! 10 s shards) the tail cannot be cut finer and the plan is unchanged.

use serde::{Deserialize, Serialize};

use super::packets::Packet;

/// One shard of the plan: a run of packets in decode order.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Cut {
    /// Decode index of the shard's first packet.
    pub first_packet: usize,
    pub frames: u64,
    /// Presentation time of the shard's first frame, in seconds.
    pub start_seconds: f64,
    /// Exact time until the next shard starts (for the ffconcat list),
    /// computed from microsecond-rounded cut times so rounding never drifts.
    pub duration_seconds: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ShardPlan {
    pub shards: Vec<Cut>,
}

impl ShardPlan {
    /// Decode indices where a new segment starts (excluding 0), as the
    /// segment muxer's `-segment_frames` wants them.
    pub fn split_points(&self) -> Vec<usize> {
        self.shards.iter().skip(1).map(|c| c.first_packet).collect()
    }
}

fn round_us(seconds: f64) -> i64 {
    (seconds * 1e6).round() as i64
}

/// Decode indices that are safe cut points (closed-GOP keyframes).
pub fn closed_gop_keyframes(packets: &[Packet]) -> Vec<usize> {
    let Some(pts): Option<Vec<i64>> = packets.iter().map(|p| p.pts).collect() else {
        return Vec::new();
    };
    let mut suffix_min = vec![i64::MAX; pts.len() + 1];
    for i in (0..pts.len()).rev() {
        suffix_min[i] = suffix_min[i + 1].min(pts[i]);
    }
    let mut prefix_max = i64::MIN;
    let mut accepted = Vec::new();
    for (i, packet) in packets.iter().enumerate() {
        if i > 0 && packet.key && prefix_max < pts[i] && suffix_min[i] >= pts[i] {
            accepted.push(i);
        }
        prefix_max = prefix_max.max(pts[i]);
    }
    accepted
}

/// How many shards at the end of a job to plan half as long, for
/// `live_slots` encode slots in the cluster: two rounds of the slots, so
/// the last round every slot takes is short (pure).
pub fn tail_shards(live_slots: u32) -> usize {
    2 * live_slots as usize
}

/// Plans shards of about `target_seconds` each.
pub fn plan_shards(
    packets: &[Packet],
    time_base: (i64, i64),
    video_end_seconds: f64,
    target_seconds: f64,
) -> ShardPlan {
    plan_shards_with_tail(packets, time_base, video_end_seconds, target_seconds, 0)
}

/// Plans shards of about `target_seconds` each, except that a shard
/// starting within the last `tail` × `target_seconds` / 2 seconds aims at
/// half the target: about the last `tail` shards are half as long.
pub fn plan_shards_with_tail(
    packets: &[Packet],
    time_base: (i64, i64),
    video_end_seconds: f64,
    target_seconds: f64,
    tail: usize,
) -> ShardPlan {
    let tb = time_base.0 as f64 / time_base.1 as f64;
    let time_of = |i: usize| packets[i].pts.map(|p| p as f64 * tb).unwrap_or(0.0);
    let start = packets
        .iter()
        .filter_map(|p| p.pts)
        .min()
        .map(|p| p as f64 * tb)
        .unwrap_or(0.0);
    let candidates = closed_gop_keyframes(packets);

    let mut starts: Vec<(usize, f64)> = vec![(0, start)];
    let full = target_seconds.max(0.5);
    let half = (full / 2.0).max(0.5);
    let tail_span = tail as f64 * half;
    loop {
        let (_, last_time) = *starts.last().unwrap_or(&(0, start));
        let left = video_end_seconds - last_time;
        // The accepted keyframe nearest "+target" from the last cut, at
        // least a quarter target from the last cut and from the end.
        // Accepted keyframes come in increasing time (each is later than
        // every packet before it), so this is a binary search: a day of
        // video plans in milliseconds, not seconds of a runtime thread.
        let nearest = |target: f64| {
            let want = last_time + target;
            let lo = candidates.partition_point(|&i| time_of(i) <= last_time + target / 4.0);
            let hi = candidates.partition_point(|&i| time_of(i) < video_end_seconds - target / 4.0);
            if lo >= hi {
                return None;
            }
            let at = lo + candidates[lo..hi].partition_point(|&i| time_of(i) < want);
            let before = (at > lo).then(|| candidates[at - 1]);
            let after = (at < hi).then(|| candidates[at]);
            match (before, after) {
                (Some(b), Some(a)) => {
                    // Ties go to the earlier keyframe.
                    Some(if (time_of(a) - want).abs() < (want - time_of(b)).abs() {
                        a
                    } else {
                        b
                    })
                }
                (b, a) => b.or(a),
            }
        };
        // A full-length shard, or the rest as one shard when it is short.
        let full_cut = || (left >= 1.5 * full).then(|| nearest(full)).flatten();
        let best = if left <= tail_span {
            if left < 1.5 * half {
                break;
            }
            // A tail cut only where it really makes a short shard and no
            // sliver after it; else the shard is planned as in the head.
            nearest(half)
                .filter(|&i| {
                    time_of(i) - last_time <= 1.5 * half
                        && video_end_seconds - time_of(i) >= half / 2.0
                })
                .or_else(full_cut)
        } else {
            full_cut()
        };
        match best {
            Some(i) => starts.push((i, time_of(i))),
            None => break,
        }
    }

    let shards = starts
        .iter()
        .enumerate()
        .map(|(n, &(first, time))| {
            let (next_index, next_time) = starts
                .get(n + 1)
                .copied()
                .unwrap_or((packets.len(), video_end_seconds));
            Cut {
                first_packet: first,
                frames: (next_index - first) as u64,
                start_seconds: time,
                duration_seconds: (round_us(next_time) - round_us(time)) as f64 / 1e6,
            }
        })
        .collect();
    ShardPlan { shards }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// CFR packets at 30 fps (time base 1/30), keyframe every `gop` frames,
    /// with B-frame reordering inside each GOP when `bframes`.
    fn clip(frames: usize, gop: usize, bframes: bool) -> Vec<Packet> {
        (0..frames)
            .map(|i| {
                let in_gop = i % gop;
                // I P B B P B B ... in decode order: swap each pair after the I.
                let pts = if bframes && in_gop > 0 && in_gop + 1 < gop {
                    if in_gop % 2 == 1 { i + 1 } else { i - 1 }
                } else {
                    i
                };
                Packet {
                    pts: Some(pts as i64),
                    duration: Some(1),
                    key: in_gop == 0,
                }
            })
            .collect()
    }

    fn total_frames(plan: &ShardPlan) -> u64 {
        plan.shards.iter().map(|c| c.frames).sum()
    }

    #[test]
    fn eight_point_three_second_gops_give_even_shards() {
        // 60 s at 30 fps with a keyframe every 250 frames (8.33 s).
        let packets = clip(1800, 250, true);
        let plan = plan_shards(&packets, (1, 30), 60.0, 10.0);
        let lengths: Vec<f64> = plan.shards.iter().map(|c| c.duration_seconds).collect();
        assert_eq!(total_frames(&plan), 1800);
        assert!(
            lengths.iter().all(|&l| (8.0..=15.0).contains(&l)),
            "{lengths:?}"
        );
        let sum: f64 = lengths.iter().sum();
        assert!((sum - 60.0).abs() < 1e-6, "{sum}");
    }

    #[test]
    fn two_second_gops_cut_near_ten_seconds() {
        let packets = clip(750, 60, false);
        let plan = plan_shards(&packets, (1, 30), 25.0, 10.0);
        assert_eq!(plan.split_points(), vec![300, 600]);
        assert_eq!(plan.shards[2].frames, 150);
        assert_eq!(plan.shards[2].duration_seconds, 5.0);
        // A 24 s clip leaves a 14 s tail as one shard, not 10 + 4.
        let plan = plan_shards(&clip(720, 60, false), (1, 30), 24.0, 10.0);
        assert_eq!(plan.split_points(), vec![300]);
    }

    #[test]
    fn short_clip_is_one_shard() {
        let plan = plan_shards(&clip(90, 30, false), (1, 30), 3.0, 10.0);
        assert_eq!(plan.shards.len(), 1);
        assert_eq!(plan.shards[0].frames, 90);
    }

    #[test]
    fn open_gop_keyframes_are_never_cut() {
        // Frame 300 is a keyframe but a later packet presents before it.
        let mut packets = clip(600, 300, false);
        packets.swap(300, 301);
        packets[300].key = true;
        packets[301].key = false;
        assert!(!closed_gop_keyframes(&packets).contains(&300));
        let plan = plan_shards(&packets, (1, 30), 20.0, 10.0);
        assert_eq!(plan.shards.len(), 1);
    }

    #[test]
    fn missing_timestamps_mean_one_shard() {
        let mut packets = clip(900, 30, false);
        packets[5].pts = None;
        assert_eq!(plan_shards(&packets, (1, 30), 30.0, 10.0).shards.len(), 1);
    }

    fn lengths(plan: &ShardPlan) -> Vec<f64> {
        plan.shards.iter().map(|c| c.duration_seconds).collect()
    }

    #[test]
    fn the_tail_is_cut_finer_where_keyframes_allow() {
        // 600 s at 30 fps, a keyframe every 2 s, 16 slots: 32 tail shards.
        let packets = clip(18_000, 60, true);
        let plain = plan_shards(&packets, (1, 30), 600.0, 10.0);
        let plan = plan_shards_with_tail(&packets, (1, 30), 600.0, 10.0, tail_shards(16));
        assert_eq!(total_frames(&plan), 18_000);
        let sum: f64 = lengths(&plan).iter().sum();
        assert!((sum - 600.0).abs() < 1e-6, "{sum}");
        assert!(plan.shards.len() > plain.shards.len());
        // The last 160 s (32 × 5 s) are cut at the keyframes nearest 5 s.
        let lengths = lengths(&plan);
        let head = lengths.iter().take_while(|&&l| l >= 8.0).count();
        let (head, tail) = lengths.split_at(head);
        assert!(head.iter().all(|&l| (8.0..=12.0).contains(&l)), "{head:?}");
        assert!(tail.iter().all(|&l| (4.0..=7.5).contains(&l)), "{tail:?}");
        let tail_seconds: f64 = tail.iter().sum();
        assert!((150.0..=170.0).contains(&tail_seconds), "{tail:?}");
        // Every cut is still a closed-GOP keyframe.
        let safe = closed_gop_keyframes(&packets);
        assert!(plan.split_points().iter().all(|k| safe.contains(k)));
    }

    #[test]
    fn sparse_keyframes_leave_the_plan_as_it_was() {
        // 8.3 s GOPs cannot be cut into 5 s shards: one GOP per shard anyway.
        let packets = clip(18_000, 250, true);
        let plain = plan_shards(&packets, (1, 30), 600.0, 10.0);
        let tailed = plan_shards_with_tail(&packets, (1, 30), 600.0, 10.0, tail_shards(16));
        assert_eq!(plain, tailed);
        assert_eq!(plain.shards.len(), 72);
    }

    #[test]
    fn every_shape_keeps_every_frame_and_cuts_only_closed_gops() {
        for gop in [15, 30, 60, 90, 250] {
            for frames in [300, 1799, 5400] {
                for tail in [0, 2, 4, 16, 32] {
                    let packets = clip(frames, gop, true);
                    let end = frames as f64 / 30.0;
                    let plan = plan_shards_with_tail(&packets, (1, 30), end, 10.0, tail);
                    let case = format!("gop {gop}, {frames} frames, tail {tail}");
                    assert_eq!(total_frames(&plan), frames as u64, "{case}");
                    let sum: f64 = lengths(&plan).iter().sum();
                    assert!((sum - end).abs() < 1e-6, "{case}: {sum}");
                    let safe = closed_gop_keyframes(&packets);
                    assert!(plan.split_points().iter().all(|k| safe.contains(k)));
                    if plan.shards.len() > 1 {
                        assert!(
                            lengths(&plan).iter().all(|&l| l >= 1.25),
                            "{case}: {:?}",
                            lengths(&plan)
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn no_sliver_is_cut_off_the_end() {
        // 60 s with 8.3 s GOPs on 2 slots: 6 × 8.3 s + 10 s as without a
        // tail, not 7 × 8.3 s + 1.7 s.
        let packets = clip(1800, 250, true);
        let plain = plan_shards(&packets, (1, 30), 60.0, 10.0);
        let tailed = plan_shards_with_tail(&packets, (1, 30), 60.0, 10.0, tail_shards(2));
        assert_eq!(plain, tailed);
        assert_eq!(plain.shards.len(), 7);
    }

    #[test]
    fn a_short_clip_is_not_split_further_by_the_tail() {
        let packets = clip(750, 60, false);
        let plan = plan_shards_with_tail(&packets, (1, 30), 25.0, 10.0, tail_shards(2));
        assert_eq!(total_frames(&plan), 750);
        assert!(
            lengths(&plan).iter().all(|&l| (4.0..=15.0).contains(&l)),
            "{:?}",
            lengths(&plan)
        );
        assert_eq!(tail_shards(0), 0);
    }

    #[test]
    fn durations_use_rounded_microseconds() {
        // 29.97 fps in a 1/30000 time base: cut times are not whole µs.
        let packets: Vec<Packet> = (0..900)
            .map(|i| Packet {
                pts: Some(i * 1001),
                duration: Some(1001),
                key: i % 60 == 0,
            })
            .collect();
        let end = 900.0 * 1001.0 / 30000.0;
        let plan = plan_shards(&packets, (1, 30000), end, 10.0);
        let sum_us: i64 = plan
            .shards
            .iter()
            .map(|c| (c.duration_seconds * 1e6).round() as i64)
            .sum();
        assert_eq!(sum_us, round_us(end));
        assert_eq!(total_frames(&plan), 900);
    }
}
