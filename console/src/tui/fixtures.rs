//! Test fixtures: cluster states built by feeding fixed snapshots through
//! [`App::handle`], with fixed timestamps (12:00:00 UTC on 2026-01-05) so
//! renders are identical on every run.

use crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyEventState, KeyModifiers};
use jiff::tz::TimeZone;
use vidshard_proto::v1::{ClusterEvent, ClusterSnapshot, JobInfo, JobParams, NodeEntry, ShardInfo};

use super::app::App;
use super::logview;
use super::msg::{Action, Event, NetEvent};
use super::state::Config;

/// 2026-01-05 12:00:00 UTC.
pub const T0: u64 = 1_767_614_400_000;
pub const A: &str = "127.0.0.1:50051";
pub const B: &str = "127.0.0.1:50052";
pub const C: &str = "127.0.0.1:50053";

/// A fresh console whose log lines go to `scope`.
pub fn app(scope: &str) -> App {
    let cfg = Config {
        node: A.into(),
        tz: TimeZone::UTC,
        log_scope: scope.into(),
    };
    App::new(cfg, T0 - 1_000)
}

pub fn key(code: KeyCode) -> Event {
    Event::Key(KeyEvent {
        code,
        modifiers: KeyModifiers::NONE,
        kind: KeyEventKind::Press,
        state: KeyEventState::NONE,
    })
}

pub fn char(c: char) -> Event {
    key(KeyCode::Char(c))
}

pub fn net(at_ms: u64, net: NetEvent) -> Event {
    Event::Net { at_ms, net }
}

fn node(id: &str, address: &str, role: &str, score: f32, busy: u32, shards: &[&str]) -> NodeEntry {
    NodeEntry {
        node_id: id.into(),
        address: address.into(),
        role: role.into(),
        term: 3,
        alive: true,
        score,
        slots_busy: busy,
        slots_total: 2,
        last_seen_ms: 400,
        current_shards: shards.iter().map(|s| (*s).to_owned()).collect(),
        protocol: "vidshard".into(),
        ..Default::default()
    }
}

pub fn shard(index: u32, state: &str, progress: f32, worker: &str, attempts: u32) -> ShardInfo {
    ShardInfo {
        index,
        state: state.into(),
        worker_id: worker.into(),
        progress,
        attempts,
        fps: if state == "encoding" { 48.0 } else { 0.0 },
        running_on: if state == "encoding" {
            vec![worker.into()]
        } else {
            Vec::new()
        },
        ..Default::default()
    }
}

pub fn event(at: u64, level: &str, message: &str) -> ClusterEvent {
    ClusterEvent {
        unix_ms: at,
        level: level.into(),
        message: message.into(),
    }
}

/// Three healthy nodes, a job being encoded, one done, one failed.
/// A report of `shards` measured shards whose seam after shard 2 is
/// flagged.
fn measured(shards: u32) -> vidshard_proto::v1::JobQuality {
    use vidshard_proto::v1::{JobQuality, QualityStats, SeamQuality};
    let stats = |mean, min| QualityStats {
        frames: 250,
        mean,
        p5: min + 1.0,
        p1: min + 0.5,
        min,
    };
    JobQuality {
        measured_shards: shards,
        shards: 9,
        psnr: Some(stats(41.5, 36.2)),
        ssim: Some(stats(0.9871, 0.9612)),
        seams: (0..shards - 1)
            .map(|k| SeamQuality {
                after_shard: k,
                psnr: Some(stats(41.0, 37.0)),
                ssim: Some(stats(0.985, 0.97)),
                flagged: k == 2,
                reason: if k == 2 {
                    "the start of shard 3 averages 36.90 dB PSNR, more than 1 dB under the 39.10 dB p5 of its interior".into()
                } else {
                    String::new()
                },
            })
            .collect(),
        flagged_seams: vec![2],
    }
}

pub fn healthy_snapshot(i: u64) -> ClusterSnapshot {
    let wobble = (i % 5) as f32 * 4.0;
    let running = JobInfo {
        id: "clip-7".into(),
        status: "processing".into(),
        progress: 0.55,
        eta_seconds: 80.0,
        params: Some(JobParams {
            output_format: "mp4".into(),
            ..Default::default()
        }),
        shards: vec![
            shard(0, "done", 1.0, "node-a", 1),
            shard(1, "done", 1.0, "node-b", 1),
            shard(2, "done", 1.0, "node-c", 2),
            shard(3, "done", 1.0, "node-b", 1),
            shard(4, "encoding", 0.4, "node-a", 1),
            shard(5, "encoding", 0.7, "node-b", 1),
            shard(6, "verifying", 1.0, "node-b", 1),
            shard(7, "encoding", 0.2, "node-c", 2),
            shard(8, "queued", 0.0, "", 0),
        ],
        quality: Some(measured(4)),
        ..Default::default()
    };
    let done = JobInfo {
        id: "intro".into(),
        status: "completed".into(),
        progress: 1.0,
        finished: true,
        output_bytes: 48 * 1024 * 1024,
        output_sha256: "ab".repeat(32),
        output_holders: vec!["node-a".into(), "node-b".into()],
        output_replicas_wanted: 2,
        params: Some(JobParams {
            output_format: "webm".into(),
            ..Default::default()
        }),
        ..Default::default()
    };
    let failed = JobInfo {
        id: "bad-upload".into(),
        status: "failed_segmentation".into(),
        message: "no video stream".into(),
        finished: true,
        ..Default::default()
    };
    ClusterSnapshot {
        node_address: A.into(),
        node_id: "node-a".into(),
        master_address: A.into(),
        term: 3,
        nodes: vec![
            node("node-a", A, "master", 20.0 + wobble, 1, &["clip-7/4"]),
            node(
                "node-b",
                B,
                "worker",
                58.0 + wobble,
                2,
                &["clip-7/5", "clip-7/6"],
            ),
            node("node-c", C, "worker", 33.0 - wobble, 1, &["clip-7/7"]),
        ],
        jobs: vec![running, done, failed],
        events: vec![
            event(T0 - 90_000, "info", "node-b joined (2 slots)"),
            event(T0 - 89_000, "info", "node-c joined (2 slots)"),
            event(T0 - 60_000, "info", "job clip-7 accepted: 9 shards"),
            event(
                T0 - 20_000,
                "warn",
                "shard clip-7/7 failed on node-c: ffmpeg exited with 1; retrying",
            ),
        ],
        sent_unix_ms: T0 + i * 500,
        voters_up: 3,
        voters_total: 3,
        has_quorum: true,
        election_in_progress: false,
        jobs_omitted: 0,
    }
}

/// Feeds `events`, collecting the log lines the app asked for.
pub fn feed(app: &mut App, events: impl IntoIterator<Item = Event>) -> Vec<Action> {
    events.into_iter().flat_map(|e| app.handle(e)).collect()
}

/// Sends the log actions to tui-logger under the app's scope.
pub fn emit_logs(app: &App, actions: &[Action]) {
    for action in actions {
        if let Action::Log(line) = action {
            logview::emit(&app.cfg.log_scope, line);
        }
    }
    tui_logger::move_events();
}
