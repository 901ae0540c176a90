//! The job state machine: every command, and replaying a log.

use super::commands::{Command, CommandReply, PlannedShard, apply};
use super::model::{JobStatus, ShardState, SourceSummary, StageTimes};
use super::table::JobTable;
use crate::params::{JobParams, RawParams};
use crate::store::BlobRef;

fn params() -> JobParams {
    RawParams {
        target_width: 320,
        target_height: 180,
        ..Default::default()
    }
    .validate()
    .expect("valid")
}

fn blob(n: u8) -> BlobRef {
    BlobRef {
        sha256: format!("{n:02x}").repeat(32),
        size: u64::from(n) + 1,
    }
}

fn accept(id: &str, at_ms: u64) -> Command {
    Command::Accept {
        requested_id: id.into(),
        upload_key: String::new(),
        params: params(),
        source: blob(1),
        source_holders: vec!["node-a".into(), "node-b".into()],
        at_ms,
    }
}

fn plan(job: &str, frames: &[u64]) -> Command {
    let mut start = 0.0;
    let shards = frames
        .iter()
        .map(|f| {
            let shard = PlannedShard {
                frames: *f,
                start_seconds: start,
                duration_seconds: *f as f64 / 30.0,
                rung: None,
            };
            start += shard.duration_seconds;
            shard
        })
        .collect();
    Command::Plan {
        job: job.into(),
        summary: SourceSummary {
            width: 640,
            height: 360,
            frames: frames.iter().sum(),
            duration_seconds: start,
            has_audio: true,
        },
        output_size: (320, 180),
        shards,
        message: "planned".into(),
        at_ms: 2,
        package: None,
    }
}

fn done(job: &str, shard: u32, worker: &str) -> Command {
    Command::ShardDone {
        job: job.into(),
        shard,
        encoded: blob(10 + shard as u8),
        worker_id: worker.into(),
        worker: format!("{worker}:1"),
        holders: vec![worker.into(), "node-a".into()],
        encode_seconds: 1.0,
        transfer_seconds: 0.1,
        at_ms: 5,
        quality: None,
    }
}

/// A whole job's life as the leader proposes it.
fn life() -> Vec<Command> {
    vec![
        accept("clip.mp4", 1),
        Command::Status {
            job: "clip.mp4".into(),
            status: JobStatus::Segmenting,
            message: "probing".into(),
            at_ms: 2,
        },
        plan("clip.mp4", &[300, 300, 120]),
        Command::ShardAssigned {
            job: "clip.mp4".into(),
            shard: 0,
            worker_id: "node-b".into(),
            worker: "b:1".into(),
            at_ms: 3,
        },
        Command::ShardFailed {
            job: "clip.mp4".into(),
            shard: 0,
            worker_id: "node-b".into(),
            message: "ffmpeg died".into(),
            at_ms: 4,
        },
        done("clip.mp4", 0, "node-c"),
        done("clip.mp4", 1, "node-b"),
        done("clip.mp4", 2, "node-b"),
        Command::Complete {
            job: "clip.mp4".into(),
            output: blob(99),
            frames: 720,
            holders: vec!["node-a".into()],
            timings: StageTimes::default(),
            message: "done".into(),
            at_ms: 9,
        },
        Command::OutputHolders {
            job: "clip.mp4".into(),
            holders: vec!["node-a".into(), "node-c".into()],
            at_ms: 10,
        },
    ]
}

#[test]
fn accept_creates_a_queued_job_with_its_source_holders() {
    let mut table = JobTable::default();
    let reply = apply(&mut table, &accept("clip.mp4", 1));
    assert_eq!(
        reply,
        CommandReply::Applied {
            job: "clip.mp4".into()
        }
    );
    let job = table.get("clip.mp4").expect("job");
    assert_eq!(job.status, JobStatus::Queued);
    assert_eq!(job.source_holders, vec!["node-a", "node-b"]);
    assert_eq!(job.created_unix_ms, 1);
    let again = apply(&mut table, &accept("clip.mp4", 2));
    assert_eq!(
        again,
        CommandReply::Applied {
            job: "clip.mp4-2".into()
        }
    );
}

#[test]
fn a_whole_life_ends_completed_with_every_shard_recorded() {
    let mut table = JobTable::default();
    for command in life() {
        assert!(
            matches!(apply(&mut table, &command), CommandReply::Applied { .. }),
            "{command:?}"
        );
    }
    let job = table.get("clip.mp4").expect("job");
    assert_eq!(job.status, JobStatus::Completed);
    assert_eq!(job.output, Some(blob(99)));
    assert_eq!(job.output_frames, 720);
    assert_eq!(job.output_holders, vec!["node-a", "node-c"]);
    assert_eq!(job.shards.len(), 3);
    assert!(job.shards.iter().all(|s| s.state == ShardState::Done));
    assert_eq!(job.shards[0].worker_id, "node-c");
    assert_eq!(job.shards[0].attempts, 1);
    assert_eq!(job.shards[1].holders, vec!["node-b", "node-a"]);
    assert_eq!(job.updated_unix_ms, 10);
}

#[test]
fn replaying_the_same_log_gives_the_same_table() {
    let replay = || {
        let mut table = JobTable::default();
        for command in life() {
            apply(&mut table, &command);
        }
        serde_json::to_string(&table).expect("json")
    };
    assert_eq!(replay(), replay());
    // And through a snapshot: serialise half-way, restore, go on.
    let mut first = JobTable::default();
    let log = life();
    for command in &log[..5] {
        apply(&mut first, command);
    }
    let snapshot = serde_json::to_string(&first).expect("json");
    let mut restored: JobTable = serde_json::from_str(&snapshot).expect("restore");
    for command in &log[5..] {
        apply(&mut restored, command);
    }
    assert_eq!(serde_json::to_string(&restored).expect("json"), replay());
}

#[test]
fn a_failed_copy_requeues_the_shard_and_names_the_worker() {
    let mut table = JobTable::default();
    for command in &life()[..5] {
        apply(&mut table, command);
    }
    let shard = &table.get("clip.mp4").expect("job").shards[0];
    assert_eq!(shard.state, ShardState::Queued);
    assert!(shard.message.contains("node-b") && shard.message.contains("ffmpeg died"));
    assert_eq!(shard.attempts, 1);
}

#[test]
fn a_replanned_resume_keeps_encoded_shards_and_requeues_the_rest() {
    let mut table = JobTable::default();
    for command in &life()[..6] {
        apply(&mut table, command);
    }
    apply(&mut table, &plan("clip.mp4", &[300, 300, 120]));
    let job = table.get("clip.mp4").expect("job");
    assert_eq!(job.shards[0].state, ShardState::Done, "encoded shard kept");
    assert_eq!(job.shards[1].state, ShardState::Splitting);
    // A different plan (other cut points) starts the shards afresh.
    apply(&mut table, &plan("clip.mp4", &[360, 360]));
    let job = table.get("clip.mp4").expect("job");
    assert_eq!(job.shards.len(), 2);
    assert!(job.shards.iter().all(|s| s.state == ShardState::Splitting));
}

#[test]
fn a_lost_shard_is_encoded_again() {
    let mut table = JobTable::default();
    for command in &life()[..6] {
        apply(&mut table, command);
    }
    apply(
        &mut table,
        &Command::ShardLost {
            job: "clip.mp4".into(),
            shard: 0,
            at_ms: 7,
        },
    );
    let shard = &table.get("clip.mp4").expect("job").shards[0];
    assert_eq!(shard.state, ShardState::Queued);
    assert!(shard.encoded.is_none() && shard.holders.is_empty());
}

#[test]
fn an_ended_job_cannot_be_reopened_or_overwritten() {
    let mut table = JobTable::default();
    for command in life() {
        apply(&mut table, &command);
    }
    for late in [
        Command::Status {
            job: "clip.mp4".into(),
            status: JobStatus::ProcessingFailed,
            message: "stale master".into(),
            at_ms: 20,
        },
        done("clip.mp4", 0, "node-z"),
        plan("clip.mp4", &[10]),
    ] {
        assert!(matches!(
            apply(&mut table, &late),
            CommandReply::Ignored { .. }
        ));
    }
    let job = table.get("clip.mp4").expect("job");
    assert_eq!(job.status, JobStatus::Completed);
    assert_eq!(job.shards[0].worker_id, "node-c");
}

#[test]
fn unknown_jobs_and_shards_are_ignored() {
    let mut table = JobTable::default();
    assert!(matches!(
        apply(&mut table, &done("nope", 0, "n")),
        CommandReply::Ignored { .. }
    ));
    apply(&mut table, &accept("x", 1));
    apply(&mut table, &plan("x", &[30]));
    assert!(matches!(
        apply(&mut table, &done("x", 7, "n")),
        CommandReply::Ignored { .. }
    ));
}

#[test]
fn a_lost_copy_is_dropped_from_every_holder_list_naming_it() {
    let mut table = JobTable::default();
    for command in life() {
        apply(&mut table, &command);
    }
    let lost = Command::BlobLost {
        sha256: blob(99).sha256,
        node: "node-c".into(),
        at_ms: 30,
    };
    assert!(matches!(
        apply(&mut table, &lost),
        CommandReply::Applied { .. }
    ));
    let job = table.get("clip.mp4").expect("job");
    assert_eq!(job.output_holders, vec!["node-a"]);
    // The source's holders are untouched (another blob).
    assert_eq!(job.source_holders, vec!["node-a", "node-b"]);
}

#[test]
fn a_deleted_job_is_gone_and_its_blobs_are_remembered_as_garbage() {
    let mut table = JobTable::default();
    for command in life() {
        apply(&mut table, &command);
    }
    let delete = Command::Delete {
        job: "clip.mp4".into(),
        at_ms: 40,
    };
    assert!(matches!(
        apply(&mut table, &delete),
        CommandReply::Applied { .. }
    ));
    assert!(table.get("clip.mp4").is_none());
    let garbage: Vec<&str> = table.tombstones().collect();
    for kept in [blob(1).sha256, blob(99).sha256, blob(10).sha256] {
        assert!(garbage.contains(&kept.as_str()), "{kept} not remembered");
    }
    assert!(matches!(
        apply(&mut table, &delete),
        CommandReply::Ignored { .. }
    ));
}
