use super::*;

fn worker(id: &str, free: u32, score: f32) -> WorkerView {
    WorkerView {
        id: id.into(),
        alive: true,
        free_slots: free,
        score,
        able: true,
        bundles: false,
    }
}

fn shard(index: u32, frames: u64) -> ShardView {
    ShardView {
        index,
        frames,
        done: false,
        running: vec![],
        failed_on: vec![],
        group: None,
    }
}

fn running(mut s: ShardView, worker: &str, elapsed: f64, progress: f32) -> ShardView {
    s.running.push(CopyView {
        worker: worker.into(),
        elapsed_seconds: elapsed,
        progress,
    });
    s
}

fn starts(decisions: &[Decision]) -> Vec<(u32, &str, bool)> {
    decisions
        .iter()
        .filter_map(|d| match d {
            Decision::Start {
                shard,
                worker,
                duplicate,
            } => Some((*shard, worker.as_str(), *duplicate)),
            _ => None,
        })
        .collect()
}

#[test]
fn longest_shards_go_to_the_best_scored_workers_within_slots() {
    let shards = [shard(0, 250), shard(1, 500), shard(2, 57), shard(3, 500)];
    let workers = [worker("busy", 1, 80.0), worker("idle", 2, 10.0)];
    let d = decide(&shards, &workers, None, Policy::default());
    assert_eq!(
        starts(&d),
        vec![(1, "idle", false), (3, "idle", false), (0, "busy", false)]
    );
}

#[test]
fn no_free_slot_means_waiting() {
    let d = decide(
        &[shard(0, 100)],
        &[worker("a", 0, 1.0)],
        None,
        Policy::default(),
    );
    assert!(d.is_empty());
}

#[test]
fn a_failed_shard_is_retried_elsewhere_then_fails_the_job() {
    let mut s = shard(0, 100);
    s.failed_on = vec!["a".into()];
    let workers = [worker("a", 2, 1.0), worker("b", 2, 50.0)];
    assert_eq!(
        starts(&decide(&[s.clone()], &workers, None, Policy::default())),
        vec![(0, "b", false)]
    );
    // The failing worker is free but the other one is busy: wait for it.
    let b_busy = [worker("a", 2, 1.0), worker("b", 0, 50.0)];
    assert!(starts(&decide(&[s.clone()], &b_busy, None, Policy::default())).is_empty());
    // Only the failing worker left: it still gets a retry.
    assert_eq!(
        starts(&decide(
            &[s.clone()],
            &workers[..1],
            None,
            Policy::default()
        )),
        vec![(0, "a", false)]
    );
    s.failed_on = vec!["a".into(), "b".into(), "a".into()];
    assert_eq!(
        decide(&[s], &workers, None, Policy::default()),
        vec![Decision::FailJob { shard: 0 }]
    );
}

#[test]
fn shards_of_a_dead_worker_are_reassigned_at_once() {
    let shards = [
        running(shard(0, 300), "dead", 4.0, 0.5),
        running(shard(1, 300), "b", 4.0, 0.5),
    ];
    let mut dead = worker("dead", 0, 1.0);
    dead.alive = false;
    let workers = [dead, worker("b", 1, 20.0)];
    let d = decide(&shards, &workers, None, Policy::default());
    assert!(d.contains(&Decision::Cancel {
        shard: 0,
        worker: "dead".into()
    }));
    assert_eq!(starts(&d), vec![(0, "b", false)]);
}

#[test]
fn straggler_is_duplicated_on_an_idle_worker_near_the_end() {
    let mut done = shard(0, 300);
    done.done = true;
    // 300 frames at 0.01 s/frame is 3 s fresh; this copy needs 9 s more.
    let slow = running(shard(1, 300), "slow", 9.0, 0.5);
    let workers = [worker("slow", 0, 90.0), worker("idle", 2, 5.0)];
    let d = decide(
        &[done.clone(), slow.clone()],
        &workers,
        Some(0.01),
        Policy::default(),
    );
    assert_eq!(starts(&d), vec![(1, "idle", true)]);
    // Not while other shards still wait for a slot.
    let d = decide(
        &[slow.clone(), shard(2, 300)],
        &[worker("slow", 0, 90.0), worker("idle", 1, 5.0)],
        Some(0.01),
        Policy::default(),
    );
    assert_eq!(starts(&d), vec![(2, "idle", false)]);
    // Not when the copy is nearly done.
    let nearly = running(shard(1, 300), "slow", 9.0, 0.95);
    assert!(starts(&decide(&[nearly], &workers, Some(0.01), Policy::default())).is_empty());
    // Never a second duplicate.
    let twice = running(slow, "idle", 1.0, 0.1);
    assert!(
        starts(&decide(
            &[twice],
            &[
                worker("slow", 0, 90.0),
                worker("idle", 1, 5.0),
                worker("c", 1, 5.0)
            ],
            Some(0.01),
            Policy::default()
        ))
        .is_empty()
    );
}

#[test]
fn first_result_wins_and_the_other_copy_is_cancelled() {
    let mut s = running(running(shard(0, 300), "a", 5.0, 0.9), "b", 2.0, 0.3);
    s.done = true;
    let d = decide(
        &[s],
        &[worker("a", 0, 1.0), worker("b", 0, 1.0)],
        None,
        Policy::default(),
    );
    assert_eq!(
        d,
        vec![
            Decision::Cancel {
                shard: 0,
                worker: "a".into()
            },
            Decision::Cancel {
                shard: 0,
                worker: "b".into()
            }
        ]
    );
}

#[test]
fn a_worker_unable_to_encode_the_shards_gets_none_and_blocks_no_retry() {
    let unable = WorkerView {
        able: false,
        ..worker("original", 4, 1.0)
    };
    let workers = [unable, worker("able", 1, 90.0)];
    let d = decide(
        &[shard(0, 100), shard(1, 100)],
        &workers,
        None,
        Policy::default(),
    );
    assert_eq!(starts(&d), vec![(0, "able", false)]);
    // The shard failed once on the only able worker: it runs there again
    // rather than waiting for one that cannot run it.
    let mut failed = shard(0, 100);
    failed.failed_on.push("able".into());
    let d = decide(&[failed], &workers, None, Policy::default());
    assert_eq!(starts(&d), vec![(0, "able", false)]);
}

fn rung(index: u32, piece: u32) -> ShardView {
    ShardView {
        group: Some(piece),
        ..shard(index, 240)
    }
}

fn bundler(id: &str, free: u32) -> WorkerView {
    WorkerView {
        bundles: true,
        ..worker(id, free, 10.0)
    }
}

fn rides(decisions: &[Decision]) -> Vec<(u32, &str, u32)> {
    decisions
        .iter()
        .filter_map(|d| match d {
            Decision::Ride {
                shard,
                worker,
                with,
            } => Some((*shard, worker.as_str(), *with)),
            _ => None,
        })
        .collect()
}

#[test]
fn a_lone_bundling_worker_takes_a_whole_piece_per_slot() {
    // Two pieces of three rungs, one worker with two slots.
    let shards: Vec<ShardView> = (0..6).map(|i| rung(i, i / 3)).collect();
    let d = decide(&shards, &[bundler("solo", 2)], None, Policy::default());
    assert_eq!(starts(&d), vec![(0, "solo", false), (3, "solo", false)]);
    assert_eq!(
        rides(&d),
        vec![
            (1, "solo", 0),
            (2, "solo", 0),
            (4, "solo", 3),
            (5, "solo", 3)
        ]
    );
}

#[test]
fn rungs_spread_while_other_workers_are_free_and_bundle_once_none_is() {
    let shards: Vec<ShardView> = (0..6).map(|i| rung(i, i / 3)).collect();
    let workers = [bundler("a", 1), bundler("b", 1), bundler("c", 1)];
    let d = decide(&shards, &workers, None, Policy::default());
    assert_eq!(
        starts(&d),
        vec![(0, "a", false), (1, "b", false), (2, "c", false)],
        "the first piece's rungs at once on three machines"
    );
    assert!(rides(&d).is_empty());
    // Later only "a" has a slot: it takes the next piece whole.
    let running = |s: ShardView, w: &str| running(s, w, 1.0, 0.5);
    let shards = vec![
        running(rung(1, 0), "b"),
        running(rung(2, 0), "c"),
        rung(3, 1),
        rung(4, 1),
        rung(5, 1),
    ];
    let workers = [bundler("a", 1), bundler("b", 0), bundler("c", 0)];
    let d = decide(&shards, &workers, None, Policy::default());
    assert_eq!(starts(&d), vec![(3, "a", false)]);
    assert_eq!(rides(&d), vec![(4, "a", 3), (5, "a", 3)]);
}

#[test]
fn no_bundle_for_plain_shards_workers_that_cannot_or_a_rung_that_failed_there() {
    let plain = [shard(0, 240), shard(1, 240)];
    let d = decide(&plain, &[bundler("solo", 1)], None, Policy::default());
    assert!(rides(&d).is_empty(), "plain shards never ride");
    let shards: Vec<ShardView> = (0..3).map(|i| rung(i, 0)).collect();
    let d = decide(
        &shards,
        &[worker("remote", 1, 1.0)],
        None,
        Policy::default(),
    );
    assert!(rides(&d).is_empty(), "the worker cannot run bundles");
    let mut failed = rung(2, 0);
    failed.failed_on.push("solo".into());
    let shards = [rung(0, 0), rung(1, 0), failed];
    let d = decide(&shards, &[bundler("solo", 1)], None, Policy::default());
    assert_eq!(
        rides(&d),
        vec![(1, "solo", 0)],
        "a rung that failed in a bundle here runs alone"
    );
}
