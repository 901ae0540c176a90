//! The scheduler's decision at scale (issue 17): `decide` over 10,000
//! queued shards and 1,000 workers. Target: under 1 ms for one shard's
//! placement. Cases: one free slot in the cluster (every other copy
//! running: the decision a finished copy triggers), every worker free
//! (1,000 placements in one call), and nothing free (the tick's no-op).
//!
//!   cargo bench -p vidshard-node --bench decide

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use std::hint::black_box;

use vidshard_node::scheduler::{CopyView, Policy, ShardView, WorkerView, decide};

const WORKERS: usize = 1_000;
const SHARDS: usize = 10_000;

fn workers(free: impl Fn(usize) -> u32) -> Vec<WorkerView> {
    (0..WORKERS)
        .map(|i| WorkerView {
            id: format!("worker-{i:04}"),
            alive: true,
            free_slots: free(i),
            // Scores spread over the fleet, not in id order.
            score: ((i * 7919) % 1000) as f32 / 10.0,
            able: true,
            bundles: false,
        })
        .collect()
}

/// `SHARDS` shards; the first `running` of them have a copy on worker
/// i, half way through.
fn shards(running: usize) -> Vec<ShardView> {
    (0..SHARDS)
        .map(|i| ShardView {
            index: i as u32,
            frames: 300 - (i % 7) as u64,
            done: false,
            running: if i < running {
                vec![CopyView {
                    worker: format!("worker-{:04}", i % WORKERS),
                    elapsed_seconds: 5.0,
                    progress: 0.5,
                }]
            } else {
                Vec::new()
            },
            failed_on: Vec::new(),
            group: None,
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("decide");
    let cases = [
        // Every worker's slot busy but one: one placement.
        (
            "one_free_slot",
            shards(WORKERS - 1),
            workers(|i| u32::from(i == 0)),
        ),
        // An idle fleet: 1,000 placements in one call.
        ("all_free", shards(0), workers(|_| 1)),
        // Nothing free: the tick's decision places nothing.
        ("none_free", shards(WORKERS), workers(|_| 0)),
    ];
    for (name, shards, workers) in &cases {
        group.bench_with_input(BenchmarkId::from_parameter(name), name, |b, _| {
            b.iter(|| {
                decide(
                    black_box(shards),
                    black_box(workers),
                    Some(0.01),
                    Policy::default(),
                )
            })
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
