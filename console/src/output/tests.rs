//! Unit tests of the output module: JSON field presence and values, text tables.

use std::path::PathBuf;

use serde_json::json;
use vidshard_proto::v1::{JobInfo, JobParams, ListJobsReply, ListNodesReply, NodeEntry, ShardInfo};

use super::*;
use crate::transfer::Saved;

fn shard(index: u32, state: &str, worker: &str, progress: f32) -> ShardInfo {
    ShardInfo {
        index,
        state: state.into(),
        worker: worker.into(),
        progress,
        frames: 240,
        start_seconds: f64::from(index) * 10.0,
        duration_seconds: 10.0,
        attempts: 1,
        fps: 59.94,
        message: String::new(),
        ..Default::default()
    }
}

fn processing_job() -> JobInfo {
    JobInfo {
        id: "clip-1".into(),
        status: "processing".into(),
        message: "encoding shards".into(),
        params: Some(JobParams {
            target_width: 1280,
            target_height: -1,
            output_format: "webm".into(),
            preset: "veryfast".into(),
            crf: 30,
            original_filename: "clip.mov".into(),
            ..Default::default()
        }),
        source_bytes: 12_345_678,
        source_frames: 480,
        source_duration_seconds: 20.0,
        source_width: 1920,
        source_height: 1080,
        source_has_audio: true,
        shards: vec![
            shard(0, "done", "10.0.0.2:50052", 1.0),
            shard(1, "encoding", "10.0.0.3:50052", 0.42),
            shard(2, "queued", "", 0.0),
        ],
        progress: 0.42,
        eta_seconds: 80.0,
        queue_position: 2,
        slot_share: 2,
        slots_held: 1,
        wait_seconds: 3.4,
        priority: 10,
        ..Default::default()
    }
}

fn completed_job() -> JobInfo {
    JobInfo {
        status: "completed".into(),
        message: String::new(),
        finished: true,
        progress: 1.0,
        eta_seconds: 0.0,
        output_width: 1280,
        output_height: 720,
        output_frames: 480,
        output_bytes: 5_000_000,
        output_sha256: "ab".repeat(32),
        output_holders: vec!["node-a".into(), "node-b".into()],
        output_replicas_wanted: 2,
        shards: vec![shard(0, "done", "w1", 1.0)],
        queue_position: 0,
        slot_share: 0,
        slots_held: 0,
        ..processing_job()
    }
}

#[test]
fn status_json_has_every_field() {
    let v = job_json(&processing_job(), true);
    assert_eq!(v["id"], "clip-1");
    assert_eq!(v["status"], "processing");
    assert_eq!(v["message"], "encoding shards");
    assert_eq!(v["finished"], false);
    assert_eq!(v["progress"], json!(0.42));
    assert_eq!(v["eta_seconds"], json!(80.0));
    assert_eq!(
        v["queue"],
        json!({"position": 2, "slot_share": 2, "slots_held": 1, "priority": 10,
               "wait_seconds": 3.4})
    );
    assert_eq!(
        v["source"],
        json!({"width": 1920, "height": 1080, "frames": 480, "duration_seconds": 20.0,
               "has_audio": true, "bytes": 12_345_678})
    );
    assert!(v["output"].is_null());
    assert_eq!(v["params"]["target_height"], -1);
    assert_eq!(v["params"]["output_format"], "webm");
    assert_eq!(v["params"]["original_filename"], "clip.mov");
    assert_eq!(v["shards_done"], 1);
    assert_eq!(v["shards_total"], 3);
    let shards = v["shards"].as_array().expect("shards array");
    assert_eq!(shards.len(), 3);
    assert_eq!(
        shards[1],
        json!({"index": 1, "state": "encoding", "worker": "10.0.0.3:50052", "progress": 0.42,
               "frames": 240, "attempts": 1, "fps": 59.94, "start_seconds": 10.0,
               "duration_seconds": 10.0, "message": "", "worker_id": "", "running_on": [],
               "encode_seconds": 0.0, "transfer_seconds": 0.0, "quality": null,
               "rung": "", "piece": 0})
    );
    assert!(v["ladder"].is_null());
}

fn ladder_job() -> JobInfo {
    use vidshard_proto::v1::RenditionInfo;
    let rung = |id: &str, width, height, done| RenditionInfo {
        id: id.into(),
        kind: "video".into(),
        width,
        height,
        codecs: "avc1.64001f".into(),
        segments: done * 3,
        seconds: f64::from(done) * 12.0,
        peak_bitrate: 2_400_000,
        average_bitrate: 1_999_600,
        pieces_done: done,
        pieces: 5,
        language: String::new(),
        quality: None,
    };
    let mut params = processing_job().params.expect("params");
    params.ladder = "720,360".into();
    params.package = "hls,dash".into();
    params.segment_seconds = Some(4);
    JobInfo {
        renditions: vec![
            rung("720p", 1280, 720, 2),
            rung("360p", 640, 360, 3),
            RenditionInfo {
                id: "audio".into(),
                kind: "audio".into(),
                codecs: "mp4a.40.2".into(),
                segments: 15,
                seconds: 60.0,
                average_bitrate: 160_000,
                peak_bitrate: 161_000,
                pieces_done: 1,
                pieces: 1,
                language: "eng".into(),
                ..Default::default()
            },
        ],
        first_playable_unix_ms: 1_700_000_012_300,
        first_playable_seconds: 12.3,
        packages: "hls,dash".into(),
        params: Some(params),
        ..processing_job()
    }
}

#[test]
fn a_ladder_shows_each_rendition_and_when_it_became_playable() {
    let job = ladder_job();
    let text = job_text(&job);
    assert!(
        text.contains("ladder:    720p/360p (hls,dash, 4 s segments), 1 audio track(s)"),
        "{text}"
    );
    assert!(
        text.contains("playable:  12.3 s after the upload was accepted"),
        "{text}"
    );
    let row = text
        .lines()
        .find(|l| l.starts_with("720p "))
        .expect("a 720p row");
    let cells: Vec<&str> = row.split_whitespace().collect();
    assert_eq!(
        cells,
        [
            "720p",
            "1280x720",
            "avc1.64001f",
            "2/5",
            "6",
            "24.0",
            "2000",
            "2400",
            "-"
        ]
    );
    assert!(text.contains("audio (eng)"), "{text}");
    let v = job_json(&job, true);
    assert_eq!(v["ladder"]["packages"], "hls,dash");
    assert_eq!(v["ladder"]["first_playable_seconds"], json!(12.3));
    assert_eq!(v["ladder"]["renditions"][1]["pieces_done"], 3);
    assert_eq!(v["params"]["segment_seconds"], 4);
}

#[test]
fn completed_job_json_has_output_and_unknown_eta_is_null() {
    let mut job = completed_job();
    job.eta_seconds = -1.0;
    let v = job_json(&job, true);
    assert_eq!(
        v["output"],
        json!({"width": 1280, "height": 720, "frames": 480, "bytes": 5_000_000,
               "sha256": "ab".repeat(32), "holders": ["node-a", "node-b"], "pending": [],
               "replicas_wanted": 2})
    );
    assert!(v["eta_seconds"].is_null());
    assert_eq!(v["finished"], true);
}

#[test]
fn jobs_json_omits_shards() {
    let reply = ListJobsReply {
        jobs: vec![processing_job(), completed_job()],
        omitted: 0,
        matching: 2,
        next_page_token: String::new(),
    };
    let v = jobs_json(&reply);
    let jobs = v["jobs"].as_array().expect("jobs array");
    assert_eq!(jobs.len(), 2);
    assert!(jobs[0].get("shards").is_none());
    assert_eq!(jobs[0]["shards_total"], 3);
    assert_eq!(jobs[1]["status"], "completed");
    assert_eq!(jobs[1]["output"]["width"], 1280);
}

#[test]
fn status_text_lists_fields_and_shard_rows() {
    let text = job_text(&processing_job());
    assert!(text.contains("id:        clip-1\n"), "{text}");
    assert!(text.contains("status:    processing\n"), "{text}");
    assert!(
        text.contains("progress:  42% (shards 1/3 done)\n"),
        "{text}"
    );
    assert!(text.contains("eta:       1m20s\n"), "{text}");
    assert!(
        text.contains("queue:     #2 in the queue, 1 of its share of 2 slots, waited 3s\n"),
        "{text}"
    );
    assert!(
        text.contains("source:    1920x1080, 480 frames, 20.0 s, audio yes, 11.8 MiB\n"),
        "{text}"
    );
    assert!(!text.contains("output:"), "{text}");
    assert!(
        text.contains("shard  state     worker          progress  frames  attempts  psnr dB\n"),
        "{text}"
    );
    assert!(
        text.contains("    0  done      10.0.0.2:50052      100%     240         1        -\n"),
        "{text}"
    );
    assert!(
        text.contains("    1  encoding  10.0.0.3:50052       42%     240         1        -\n"),
        "{text}"
    );
    assert!(
        text.contains("    2  queued    -                     0%     240         1        -\n"),
        "{text}"
    );
}

#[test]
fn completed_status_text_shows_output() {
    let text = job_text(&completed_job());
    assert!(
        text.contains(&format!(
            "output:    1280x720, 480 frames, 5000000 bytes, sha256 {}\n",
            "ab".repeat(32)
        )),
        "{text}"
    );
    assert!(!text.contains("eta:"), "{text}");
    assert!(!text.contains("queue:"), "{text}");
}

#[test]
fn jobs_text_has_one_row_per_job() {
    let reply = ListJobsReply {
        jobs: vec![processing_job(), completed_job()],
        omitted: 0,
        matching: 2,
        next_page_token: String::new(),
    };
    let text = jobs_text(&reply);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 3, "{text}");
    assert_eq!(
        lines[0],
        "id      status      progress  shards  queue  slots  prio  waited  output    filename"
    );
    assert_eq!(
        lines[1],
        "clip-1  processing       42%     1/3     #2    1/2    10      3s  -         clip.mov"
    );
    assert_eq!(
        lines[2],
        "clip-1  completed       100%     1/1      -      -    10      3s  1280x720  clip.mov"
    );
    assert_eq!(jobs_text(&ListJobsReply::default()), "no jobs\n");
}

fn nodes_reply() -> ListNodesReply {
    ListNodesReply {
        master_address: "10.0.0.1:50051".into(),
        term: 4,
        fault_tolerance: "3 voters: survives the loss of 1".into(),
        nodes: vec![
            NodeEntry {
                node_id: "node-a".into(),
                address: "10.0.0.1:50051".into(),
                role: "master".into(),
                raft_role: "voter".into(),
                term: 4,
                alive: true,
                score: 0.25,
                slots_busy: 1,
                slots_total: 2,
                ..Default::default()
            },
            NodeEntry {
                node_id: "node-b".into(),
                address: "10.0.0.2:50051".into(),
                role: "worker".into(),
                term: 4,
                alive: false,
                raft_role: "learner".into(),
                score: 1.5,
                slots_busy: 0,
                slots_total: 4,
                ..Default::default()
            },
        ],
    }
}

#[test]
fn nodes_json_and_text() {
    let v = nodes_json(&nodes_reply());
    assert_eq!(v["master_address"], "10.0.0.1:50051");
    assert_eq!(v["term"], 4);
    assert_eq!(
        v["nodes"][1],
        json!({"id": "node-b", "address": "10.0.0.2:50051", "role": "worker", "term": 4,
               "alive": false, "score": 1.5, "slots_busy": 0, "slots_total": 4, "raft_role": "learner"})
    );
    assert_eq!(v["fault_tolerance"], "3 voters: survives the loss of 1");
    let text = nodes_text(&nodes_reply());
    assert!(
        text.starts_with(
            "master: 10.0.0.1:50051  term: 4\nraft:   3 voters: survives the loss of 1\n\n"
        ),
        "{text}"
    );
    assert!(
        text.contains("node-a  10.0.0.1:50051  master  voter       4  yes     0.25    1/2\n"),
        "{text}"
    );
    assert!(
        text.contains("node-b  10.0.0.2:50051  worker  learner     4  no      1.50    0/4\n"),
        "{text}"
    );
}

#[test]
fn upload_and_retrieve_json() {
    let v = upload_json("clip-1", "queued", "accepted", None);
    assert_eq!(
        v,
        json!({"id": "clip-1", "status": "queued", "message": "accepted", "output": null,
               "output_sha256": null, "output_bytes": null})
    );
    let saved = Saved {
        path: PathBuf::from("out/clip.webm"),
        bytes: 42,
        sha256: "cd".repeat(32),
    };
    let v = upload_json("clip-1", "completed", "", Some(&saved));
    assert_eq!(v["output"], "out/clip.webm");
    assert_eq!(v["output_bytes"], 42);
    assert_eq!(v["output_sha256"], "cd".repeat(32));
    assert_eq!(
        retrieve_json("clip-1", &saved),
        json!({"id": "clip-1", "output": "out/clip.webm", "bytes": 42, "sha256": "cd".repeat(32)})
    );
}

#[test]
fn legacy_status_marks_final_states() {
    let v = legacy_status_json("v1", "processing_failed", "boom");
    assert_eq!(
        v,
        json!({"id": "v1", "status": "processing_failed", "message": "boom", "finished": true})
    );
    assert_eq!(legacy_status_json("v1", "queued", "")["finished"], false);
    assert_eq!(
        legacy_status_text("v1", "queued", ""),
        "id:        v1\nstatus:    queued\n"
    );
}

#[test]
fn listings_say_how_many_jobs_they_left_out() {
    // An older node: no pages.
    let reply = ListJobsReply {
        jobs: vec![processing_job()],
        omitted: 6399,
        ..Default::default()
    };
    let text = jobs_text(&reply);
    assert!(text.contains("6399 more jobs not listed"), "{text}");
    assert_eq!(jobs_json(&reply)["omitted"], 6399);
    let none = ListJobsReply {
        jobs: vec![processing_job()],
        matching: 1,
        ..Default::default()
    };
    assert!(jobs_json(&none).get("omitted").is_none());
    assert!(jobs_json(&none).get("next_page_token").is_none());
    // A page with more after it names the next one.
    let paged = ListJobsReply {
        jobs: vec![processing_job()],
        omitted: 40,
        matching: 91,
        next_page_token: "1700000000000.clip-1".into(),
    };
    let text = jobs_text(&paged);
    assert!(
        text.contains("… 40 more: vidshard jobs --page-token 1700000000000.clip-1\n"),
        "{text}"
    );
    let v = jobs_json(&paged);
    assert_eq!(v["next_page_token"], "1700000000000.clip-1");
    assert_eq!(v["matching"], 91);
}

fn stats(mean: f64, min: f64) -> vidshard_proto::v1::QualityStats {
    vidshard_proto::v1::QualityStats {
        frames: 240,
        mean,
        p5: min + 0.5,
        p1: min + 0.2,
        min,
    }
}

fn measured_job() -> JobInfo {
    use vidshard_proto::v1::{JobQuality, SeamQuality, ShardQuality};
    let mut job = completed_job();
    job.shards[0].quality = Some(ShardQuality {
        psnr: Some(stats(41.234_567, 38.0)),
        ssim: Some(stats(0.987_654_3, 0.97)),
        head_psnr: vec![40.123_456],
        measured_on: "node-b".into(),
        ..Default::default()
    });
    job.quality = Some(JobQuality {
        measured_shards: 2,
        shards: 2,
        psnr: Some(stats(41.2, 38.0)),
        ssim: Some(stats(0.9876, 0.97)),
        seams: vec![SeamQuality {
            after_shard: 0,
            psnr: Some(stats(36.0, 35.0)),
            ssim: Some(stats(0.95, 0.94)),
            flagged: true,
            reason: "the start of shard 1 averages 36.00 dB PSNR".into(),
        }],
        flagged_seams: vec![0],
    });
    job
}

#[test]
fn the_quality_report_shows_in_json() {
    let v = job_json(&measured_job(), true);
    assert_eq!(v["quality"]["flagged_seams"], json!([0]));
    assert_eq!(v["quality"]["psnr"]["mean"], json!(41.2));
    assert_eq!(v["quality"]["seams"][0]["flagged"], true);
    let shard = &v["shards"][0]["quality"];
    assert_eq!(shard["psnr"]["mean"], json!(41.235));
    assert_eq!(shard["ssim"]["mean"], json!(0.98765));
    assert_eq!(shard["head_psnr"], json!([40.123]));
    assert_eq!(shard["measured_on"], "node-b");
    assert!(job_json(&completed_job(), true)["quality"].is_null());
}

#[test]
fn the_quality_report_shows_in_text() {
    let text = job_text(&measured_job());
    assert!(
        text.contains("quality:   PSNR 41.20 dB, min 38.00; SSIM 0.9876, min 0.9700; 2/2 shards\n"),
        "{text}"
    );
    assert!(
        text.contains("seams:     1 measured, 1 FLAGGED\n"),
        "{text}"
    );
    assert!(
        text.contains(
            "flagged:   seam after shard 0: the start of shard 1 averages 36.00 dB PSNR\n"
        ),
        "{text}"
    );
    assert!(text.contains("  41.23\n"), "{text}");
}
