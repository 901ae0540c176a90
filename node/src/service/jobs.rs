//! Our `vidshard.v1` services: `Jobs` (upload with every option, per-shard
//! status, listing) and `Cluster` (who is in the cluster).

use futures::StreamExt;
use tonic::{Request, Response, Status, Streaming};
use vidshard_proto::v1::cluster_server;
use vidshard_proto::v1::jobs_server;
use vidshard_proto::v1::upload_request::Msg;
use vidshard_proto::v1::*;

use std::time::Instant;

use super::convert::job_info;
use super::node::FIXED_TERM;
use super::upload::{Outcome, UploadStart, ingest};
use crate::cluster::membership::Load;
use crate::cluster::{Member, Protocol};
use crate::context::Ctx;
use crate::ids;
use crate::media::Progress;
use crate::params::RawParams;
use crate::scheduler::driver::apply_progress;

pub struct Jobs {
    ctx: Ctx,
}

impl Jobs {
    pub fn new(ctx: Ctx) -> Self {
        Self { ctx }
    }
}

fn upload_start(header: UploadHeader) -> UploadStart {
    let p = header.params.unwrap_or_default();
    UploadStart {
        requested_id: header.requested_id,
        params: RawParams {
            target_width: p.target_width,
            target_height: p.target_height,
            upscale_width: p.upscale_width,
            upscale_height: p.upscale_height,
            output_format: p.output_format,
            preset: p.preset,
            crf: p.crf,
            original_filename: p.original_filename,
        },
        expected_size: header.expected_size,
        expected_sha256: header.expected_sha256,
    }
}

#[tonic::async_trait]
impl jobs_server::Jobs for Jobs {
    async fn upload(
        &self,
        request: Request<Streaming<UploadRequest>>,
    ) -> Result<Response<UploadReply>, Status> {
        let mut stream = request.into_inner();
        let header = match stream.next().await {
            Some(Ok(UploadRequest {
                msg: Some(Msg::Header(header)),
            })) => header,
            Some(Err(e)) => return Err(e),
            _ => {
                return Err(Status::invalid_argument(
                    "the first upload message must be a header",
                ));
            }
        };
        let rest = stream.map(|message| match message?.msg {
            Some(Msg::Chunk(bytes)) => Ok(bytes),
            _ => Err(Status::invalid_argument(
                "only data chunks may follow the upload header",
            )),
        });
        let reply = match ingest(&self.ctx, upload_start(header), Vec::new(), rest).await? {
            Outcome::Accepted { id, size } => UploadReply {
                id: id.clone(),
                success: true,
                status: "queued".into(),
                message: format!("received {size} bytes; job {id} queued"),
            },
            Outcome::Refused(message) => UploadReply {
                id: String::new(),
                success: false,
                status: "rejected".into(),
                message,
            },
        };
        Ok(Response::new(reply))
    }

    async fn get_job(&self, request: Request<GetJobRequest>) -> Result<Response<JobInfo>, Status> {
        let id = request.into_inner().id;
        ids::check_lookup(&id).map_err(Status::invalid_argument)?;
        let jobs = self.ctx.jobs.lock();
        let job = jobs
            .get(&id)
            .ok_or_else(|| Status::not_found(format!("no job {id:?}")))?;
        Ok(Response::new(job_info(job)))
    }

    async fn list_jobs(
        &self,
        _: Request<ListJobsRequest>,
    ) -> Result<Response<ListJobsReply>, Status> {
        let jobs = self.ctx.jobs.lock();
        Ok(Response::new(ListJobsReply {
            jobs: jobs.list().into_iter().map(job_info).collect(),
        }))
    }
}

pub struct Cluster {
    ctx: Ctx,
}

impl Cluster {
    pub fn new(ctx: Ctx) -> Self {
        Self { ctx }
    }
}

/// One row of `ListNodes` from a member of the table.
fn member_entry(ctx: &Ctx, m: &Member, now: Instant) -> NodeEntry {
    NodeEntry {
        node_id: m.node_id.clone(),
        address: m.address.clone(),
        role: "worker".into(),
        term: FIXED_TERM as u64,
        alive: m.alive,
        score: m.load.score,
        slots_busy: m.slots_busy.max(ctx.board.assigned(&m.node_id)),
        slots_total: m.slots_total,
        last_seen_ms: now.saturating_duration_since(m.last_seen).as_millis() as u64,
        current_shards: ctx.board.shards_on(&m.node_id),
        score_parts: Some(ScoreReport {
            score: m.load.score,
            load_per_core: m.load.load_per_core,
            iowait_percent: m.load.iowait_percent,
            net_mb_per_s: m.load.net_mb_per_s,
            disk_mb_per_s: m.load.disk_mb_per_s,
            memory_percent: m.load.memory_percent,
        }),
        protocol: m.protocol.as_str().into(),
    }
}

#[tonic::async_trait]
impl cluster_server::Cluster for Cluster {
    async fn list_nodes(
        &self,
        _: Request<ListNodesRequest>,
    ) -> Result<Response<ListNodesReply>, Status> {
        let ctx = &self.ctx;
        let report = ctx.score_report();
        let me = NodeEntry {
            node_id: ctx.node_id.clone(),
            address: ctx.address.clone(),
            role: if ctx.is_master() { "master" } else { "worker" }.into(),
            term: FIXED_TERM as u64,
            alive: true,
            score: report.score,
            slots_busy: ctx.slots_busy(),
            slots_total: ctx.slots_total,
            last_seen_ms: 0,
            current_shards: ctx.board.shards_on(&ctx.node_id),
            score_parts: Some(report),
            protocol: "vidshard".into(),
        };
        let now = Instant::now();
        let mut nodes = vec![me];
        nodes.extend(
            ctx.membership
                .lock()
                .members()
                .filter(|m| m.node_id != ctx.node_id)
                .map(|m| member_entry(ctx, m, now)),
        );
        Ok(Response::new(ListNodesReply {
            nodes,
            master_address: ctx.master_address().unwrap_or_default(),
            term: FIXED_TERM as u64,
        }))
    }

    async fn heartbeat(
        &self,
        request: Request<HeartbeatRequest>,
    ) -> Result<Response<HeartbeatReply>, Status> {
        let ctx = &self.ctx;
        let beat = request.into_inner();
        let master_address = ctx.master_address().unwrap_or_default();
        if !ctx.is_master() {
            return Ok(Response::new(HeartbeatReply {
                accepted: false,
                master_address: master_address.clone(),
                term: FIXED_TERM as u64,
                message: format!("this node is not the master; the master is {master_address:?}"),
            }));
        }
        if let Err(reason) = check_heartbeat(&beat) {
            return Err(Status::invalid_argument(reason));
        }
        let score = beat.score.unwrap_or_default();
        ctx.membership.heard_from(Member {
            node_id: beat.node_id.clone(),
            address: beat.address.clone(),
            protocol: Protocol::Vidshard,
            last_seen: Instant::now(),
            alive: true,
            slots_total: beat.slots_total,
            slots_busy: beat.slots_busy,
            load: Load {
                score: score.score,
                load_per_core: score.load_per_core,
                iowait_percent: score.iowait_percent,
                net_mb_per_s: score.net_mb_per_s,
                disk_mb_per_s: score.disk_mb_per_s,
                memory_percent: score.memory_percent,
            },
        });
        for task in &beat.tasks {
            let progress = Progress {
                frames: task.frames_done,
                fps: task.fps,
            };
            if let Some(entry) = ctx.board.report(&task.task_id, progress) {
                apply_progress(ctx, &entry);
            }
        }
        Ok(Response::new(HeartbeatReply {
            accepted: true,
            master_address,
            term: FIXED_TERM as u64,
            message: String::new(),
        }))
    }
}

/// Rejects heartbeats whose fields could not name a real node (pure).
pub fn check_heartbeat(beat: &HeartbeatRequest) -> Result<(), String> {
    let id_ok = !beat.node_id.is_empty()
        && beat.node_id.len() <= 64
        && beat
            .node_id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if !id_ok {
        return Err(format!("bad node id {:?}", beat.node_id));
    }
    let address_ok = beat.address.len() <= 260
        && beat
            .address
            .rsplit_once(':')
            .is_some_and(|(h, p)| !h.is_empty() && p.parse::<u16>().is_ok_and(|p| p > 0));
    if !address_ok {
        return Err(format!(
            "bad node address {:?}: expected HOST:PORT",
            beat.address
        ));
    }
    if beat.slots_total > 1024 || beat.tasks.len() > 4096 {
        return Err("heartbeat claims too many slots or tasks".into());
    }
    Ok(())
}
