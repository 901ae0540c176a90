//! Issue 20, row 5: a worker that answers with a forged video. An
//! original-protocol worker registers, reports the best score (0), and
//! answers every `ProcessShard`/`RequestShard` with solid red H.264 of
//! the right frame count and size (which used to be accepted: only
//! frames, size and codec were checked, and the job completed red). The
//! master now compares sampled frames of each result with the source:
//! the red shard is rejected and run elsewhere, the job's output shows
//! the source, and the forger is given no other shard of the job.
//! The check itself is measured on real encodes: the lowest quality the
//! product allows passes, other pictures do not.

mod common;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::net::TcpListener;
use tonic::{Request, Response, Status};
use vidshard_node::media::quality::{self, Quality};
use vidshard_node::media::{EncodeSpec, EncodeTarget, Tools, encode_shard};
use vidshard_node::params::OutputFormat;
use vidshard_node::worker::fidelity::{self, FidelityError};
use vidshard_proto::replication::master_service_client::MasterServiceClient;
use vidshard_proto::replication::node_service_client::NodeServiceClient;
use vidshard_proto::replication::worker_service_server::{WorkerService, WorkerServiceServer};
use vidshard_proto::replication::{
    DistributeShardRequest, ProcessShardResponse, RegisterWorkerRequest,
    ReportResourceScoreRequest, RequestShardRequest, RequestShardResponse, ResourceScore,
};
use vidshard_proto::v1::WatchRequest;
use vidshard_proto::v1::cluster_client::ClusterClient;

use common::clips::{make_clip, report};
use common::node::NodeProc;
use common::{Params, nodes, retrieve, upload_file, wait_finished, wait_for};

/// Runs ffmpeg on `input` (or a lavfi source named in `args`) with the
/// space-separated `args`, writing `output`; panics with its stderr.
async fn ffmpeg(input: Option<&Path>, args: &str, output: &Path) {
    let mut cmd = tokio::process::Command::new("ffmpeg");
    cmd.args(["-nostdin", "-v", "error", "-y"]);
    if let Some(input) = input {
        cmd.arg("-i").arg(input);
    }
    let out = cmd
        .args(args.split_whitespace())
        .arg(output)
        .output()
        .await
        .expect("run ffmpeg");
    assert!(
        out.status.success(),
        "ffmpeg {args}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The video frames (packets) of `path`, as the master counts them.
async fn count_frames(path: &Path) -> u64 {
    let out = tokio::process::Command::new("ffprobe")
        .args(["-v", "error", "-select_streams", "v:0", "-count_packets"])
        .args(["-show_entries", "stream=nb_read_packets", "-of", "csv=p=0"])
        .arg(path)
        .output()
        .await
        .expect("run ffprobe");
    let text = String::from_utf8_lossy(&out.stdout);
    text.trim().parse().expect("a frame count")
}

/// Solid red H.264 of `frames` frames at `width`x`height` in `path`.
async fn red_video(path: &Path, frames: u64, width: i32, height: i32) {
    let args = format!(
        "-f lavfi -i color=red:size={width}x{height}:rate=30 -frames:v {frames} \
         -c:v libx264 -preset ultrafast -pix_fmt yuv420p -f mp4"
    );
    ffmpeg(None, &args, path).await;
}

/// An original-protocol worker that never encodes: every shard it is
/// given comes back as red frames, as many as the shard has.
#[derive(Clone, Default)]
struct Forger {
    work: PathBuf,
    /// Shard ids it was asked to encode, in order.
    asked: Arc<Mutex<Vec<String>>>,
    /// Shard id → the forged result once made.
    made: Arc<Mutex<HashMap<String, Vec<u8>>>>,
}

impl Forger {
    async fn forge(self, n: usize, shard: DistributeShardRequest) {
        let input = self.work.join(format!("in-{n}.mp4"));
        let output = self.work.join(format!("red-{n}.mp4"));
        tokio::fs::write(&input, &shard.shard_data)
            .await
            .expect("save");
        let frames = count_frames(&input).await;
        red_video(&output, frames, shard.target_width, shard.target_height).await;
        let bytes = tokio::fs::read(&output).await.expect("read");
        self.made
            .lock()
            .expect("made")
            .insert(shard.shard_id, bytes);
    }

    fn asked(&self) -> Vec<String> {
        self.asked.lock().expect("asked").clone()
    }
}

#[tonic::async_trait]
impl WorkerService for Forger {
    async fn process_shard(
        &self,
        request: Request<DistributeShardRequest>,
    ) -> Result<Response<ProcessShardResponse>, Status> {
        let shard = request.into_inner();
        let shard_id = shard.shard_id.clone();
        let n = {
            let mut asked = self.asked.lock().expect("asked");
            asked.push(shard_id.clone());
            asked.len()
        };
        tokio::spawn(self.clone().forge(n, shard));
        Ok(Response::new(ProcessShardResponse {
            shard_id,
            success: true,
            message: "accepted".into(),
        }))
    }

    async fn request_shard(
        &self,
        request: Request<RequestShardRequest>,
    ) -> Result<Response<RequestShardResponse>, Status> {
        let shard_id = request.into_inner().shard_id;
        let made = self.made.lock().expect("made").get(&shard_id).cloned();
        Ok(Response::new(RequestShardResponse {
            shard_id,
            success: made.is_some(),
            message: if made.is_some() { "ok" } else { "encoding" }.into(),
            shard_data: made.unwrap_or_default(),
        }))
    }
}

/// Serves the forger on a fresh port and keeps it registered with
/// `master` with the best score; answers its address.
async fn start_forger(forger: Forger, master: &str) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let address = listener.local_addr().expect("address").to_string();
    let service = WorkerServiceServer::new(forger).max_decoding_message_size(256 << 20);
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(service)
            .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener)),
    );
    let channel = common::cluster::lazy_channel(master);
    let me = address.clone();
    tokio::spawn(async move {
        loop {
            let _ = MasterServiceClient::new(channel.clone())
                .register_worker(RegisterWorkerRequest {
                    worker_address: me.clone(),
                })
                .await;
            let _ = NodeServiceClient::new(channel.clone())
                .report_resource_score(ReportResourceScoreRequest {
                    worker_address: me.clone(),
                    resource_score: Some(ResourceScore {
                        score: 0.0,
                        ..Default::default()
                    }),
                })
                .await;
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    });
    address
}

/// Every frame of `encoded` against `source` scaled to the output size.
async fn every_frame(encoded: &Path, source: &Path, frames: u64, size: (u32, u32)) -> Quality {
    let all: Vec<u64> = (0..frames).collect();
    quality::compare(
        &Tools::default(),
        encoded,
        source,
        quality::Picture::scaled(size.0, size.1),
        &all,
    )
    .await
    .expect("compare")
}

#[tokio::test(flavor = "multi_thread")]
async fn a_forged_red_result_is_rejected_run_again_and_its_worker_loses_its_place() {
    let dir = tempfile::tempdir().expect("tempdir");
    let node = NodeProc::start(
        &dir.path().join("n1"),
        &["--slots", "1", "--shard-seconds", "2"],
    );
    let work = dir.path().join("forger");
    std::fs::create_dir_all(&work).expect("work dir");
    let forger = Forger {
        work,
        ..Default::default()
    };
    let address = start_forger(forger.clone(), &node.address).await;
    let channel = node.channel().await;
    wait_for("the forger listed alive", Duration::from_secs(30), || {
        let (channel, address) = (channel.clone(), address.clone());
        async move {
            let listing = nodes(channel).await;
            listing
                .nodes
                .iter()
                .any(|n| n.address == address && n.alive)
                .then_some(())
        }
    })
    .await;

    // Three 2 s shards: the master has one slot, the forger the best score.
    let clip = make_clip(&dir.path().join("clip.mp4"), 6, 320, 240, true);
    let source_frames = report(&clip).frames;
    let id = upload_file(
        channel.clone(),
        "clip.mp4",
        &clip,
        &Params::size(320, 240, "mp4"),
    )
    .await;
    let info = wait_finished(channel.clone(), &id, Duration::from_secs(180)).await;
    assert_eq!(info.status, "completed", "{}", info.message);

    // The forger was given one shard, and nothing it made was kept.
    let asked = forger.asked();
    assert_eq!(asked.len(), 1, "asked for {asked:?}");
    assert!(
        info.shards.iter().all(|s| s.worker != address),
        "{:?}",
        info.shards
    );
    // Every frame of the output shows the source (red scores 9 dB).
    let out = dir.path().join("out.mp4");
    retrieve(channel.clone(), &id, &out)
        .await
        .expect("retrieve");
    let q = every_frame(&out, &clip, source_frames, (320, 240)).await;
    assert_eq!(q.frames.len() as u64, source_frames);
    let worst = q.worst().expect("frames");
    assert!(
        worst.psnr > 30.0,
        "frame {} at {:.1} dB",
        worst.index,
        worst.psnr
    );

    // The rejection is an event the console shows, naming the forger.
    let mut watch = ClusterClient::new(channel)
        .watch_cluster(WatchRequest { interval_ms: 100 })
        .await
        .expect("watch")
        .into_inner();
    let snapshot = watch.message().await.expect("snapshot").expect("one");
    let rejected: Vec<_> = snapshot
        .events
        .iter()
        .filter(|e| e.message.contains("result rejected") && e.message.contains(&address))
        .collect();
    assert_eq!(rejected.len(), 1, "{:?}", snapshot.events);
    assert_eq!(rejected[0].level, "warn");
    assert!(
        rejected[0].message.contains("PSNR"),
        "{}",
        rejected[0].message
    );
}

fn spec(size: (u32, u32), format: OutputFormat, preset: &str, crf: u32) -> EncodeSpec {
    EncodeSpec {
        width: size.0,
        height: size.1,
        format,
        codec: format.default_codec(),
        pix_fmt: Default::default(),
        preset: preset.into(),
        crf,
        threads: 0,
        orientation: Default::default(),
        colour: Default::default(),
        tonemap: false,
        quality_target: None,
        rung: None,
    }
}

async fn check(encoded: &Path, source: &Path, frames: u64) -> Result<Quality, FidelityError> {
    let spec = spec((320, 180), OutputFormat::Mp4, "veryfast", 23);
    fidelity::check_against_source(&Tools::default(), encoded, source, frames, &spec).await
}

#[tokio::test(flavor = "multi_thread")]
async fn the_lowest_quality_allowed_passes_and_other_pictures_do_not() {
    let dir = tempfile::tempdir().expect("tempdir");
    let source = make_clip(&dir.path().join("src.mp4"), 4, 640, 360, false);
    let frames = report(&source).frames;
    let tools = Tools::default();
    let honest = [
        ((320, 180), OutputFormat::Mp4, "ultrafast", 51),
        ((640, 360), OutputFormat::Mp4, "veryslow", 51),
        ((1280, 720), OutputFormat::Mp4, "ultrafast", 51),
        ((320, 180), OutputFormat::Webm, "ultrafast", 63),
    ];
    for (i, (size, format, preset, crf)) in honest.into_iter().enumerate() {
        let out = dir.path().join(format!("honest-{i}.nut"));
        let spec = spec(size, format, preset, crf);
        encode_shard(&tools, &spec, &source, &out, EncodeTarget::SHARD, |_| {})
            .await
            .expect("encode");
        let q = fidelity::check_against_source(&tools, &out, &source, frames, &spec)
            .await
            .unwrap_or_else(|e| panic!("{size:?} {preset} crf {crf}: {e}"));
        assert_eq!(q.frames.len(), fidelity::SAMPLED_FRAMES);
    }
    // Right frame count and size, wrong pictures.
    let n = frames;
    let forged = [
        (
            "black",
            None,
            format!("-f lavfi -i color=black:size=320x180 -frames:v {n}"),
        ),
        (
            "red",
            None,
            format!("-f lavfi -i color=red:size=320x180 -frames:v {n}"),
        ),
        (
            "bars",
            None,
            format!("-f lavfi -i smptehdbars=size=320x180 -frames:v {n}"),
        ),
        (
            "mirrored",
            Some(&source),
            "-vf scale=320:180,hflip -an".to_string(),
        ),
    ];
    for (name, input, args) in forged {
        let out = dir.path().join(format!("{name}.mp4"));
        ffmpeg(
            input.map(PathBuf::as_path),
            &format!("{args} -pix_fmt yuv420p"),
            &out,
        )
        .await;
        let err = check(&out, &source, frames).await.expect_err(name);
        assert!(
            matches!(err, FidelityError::NotTheSource(_)),
            "{name}: {err}"
        );
    }
}
