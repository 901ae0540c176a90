//! The original `replication.MasterService`: upload, status and retrieve
//! exactly as the original client expects them.

use std::pin::Pin;

use futures::{Stream, StreamExt};
use tonic::{Request, Response, Status, Streaming};
use vidshard_proto::replication::master_service_server::MasterService;
use vidshard_proto::replication::*;

use super::convert::status_message;
use super::forward;
use crate::pipeline::intake::{Outcome, UploadPiece, UploadStart, ingest};
use vidshard_proto::replication::master_service_client::MasterServiceClient;

use crate::cluster::Member;
use std::sync::Arc;

use crate::cluster::Sys;
use crate::ids;
use crate::params::RawParams;

pub struct Master {
    sys: Sys,
    master: Arc<crate::pipeline::Master>,
}

impl Master {
    pub fn new(master: Arc<crate::pipeline::Master>) -> Self {
        Self {
            sys: master.sys.clone(),
            master,
        }
    }
}

fn upload_start(first: &UploadVideoChunk) -> UploadStart {
    UploadStart {
        requested_id: first.video_id.clone(),
        params: RawParams {
            target_width: first.target_width,
            target_height: first.target_height,
            upscale_width: first.upscale_width,
            upscale_height: first.upscale_height,
            output_format: first.output_format.clone(),
            original_filename: first.original_filename.clone(),
            ..Default::default()
        },
        expected_size: 0,
        expected_sha256: String::new(),
        upload_key: String::new(),
    }
}

#[tonic::async_trait]
impl MasterService for Master {
    async fn register_worker(
        &self,
        request: Request<RegisterWorkerRequest>,
    ) -> Result<Response<RegisterWorkerResponse>, Status> {
        let address = request.into_inner().worker_address;
        let reply = |success: bool, message: String| {
            Ok(Response::new(RegisterWorkerResponse { success, message }))
        };
        if !self.sys.is_master() {
            let master = self.sys.master_address().unwrap_or_default();
            return reply(
                false,
                format!("this node is not the master; register with {master}"),
            );
        }
        let Some(node_id) = original_worker_id(&address) else {
            return reply(
                false,
                format!("bad worker address {address:?}: expected HOST:PORT"),
            );
        };
        match self
            .sys
            .membership
            .register_original(Member::original(node_id, address.clone()))
        {
            Ok(()) => reply(
                true,
                format!("registered {address} as an original-protocol worker"),
            ),
            Err(full) => reply(false, full.to_string()),
        }
    }

    async fn upload_video(
        &self,
        request: Request<Streaming<UploadVideoChunk>>,
    ) -> Result<Response<UploadVideoResponse>, Status> {
        if let Some(leader) = forward::leader_for(&self.sys, request.metadata()).await? {
            return forward::upload_original(self.sys.clone(), leader, request.into_inner()).await;
        }
        let mut stream = request.into_inner();
        let Some(first) = stream.next().await else {
            return Ok(Response::new(UploadVideoResponse {
                video_id: String::new(),
                success: false,
                message: "the upload is empty: no chunk arrived".into(),
            }));
        };
        let first = first?;
        let start = upload_start(&first);
        let requested = first.video_id.clone();
        let rest = stream.map(|chunk| chunk.map(|c| UploadPiece::Bytes(c.data_chunk)));
        let reply = match ingest(&self.master, start, first.data_chunk, rest).await? {
            Outcome::Accepted { id, size } => UploadVideoResponse {
                message: format!("received {size} bytes; job {id} queued"),
                video_id: id,
                success: true,
            },
            Outcome::Refused(message) => UploadVideoResponse {
                video_id: requested,
                success: false,
                message,
            },
        };
        Ok(Response::new(reply))
    }

    type RetrieveVideoStream =
        Pin<Box<dyn Stream<Item = Result<RetrieveVideoChunk, Status>> + Send>>;

    async fn retrieve_video(
        &self,
        request: Request<RetrieveVideoRequest>,
    ) -> Result<Response<Self::RetrieveVideoStream>, Status> {
        // Any node with the job completed in its table serves it (from its
        // copy or a holder's); otherwise the master answers.
        let here = crate::backups::serve::completed_here(&self.sys, &request.get_ref().video_id);
        let leader = if here {
            None
        } else {
            forward::leader_for(&self.sys, request.metadata()).await?
        };
        if let Some(leader) = leader {
            let mut client = MasterServiceClient::new(forward::channel(&self.sys, &leader)?)
                .max_decoding_message_size(super::MAX_MESSAGE);
            let stream = client
                .retrieve_video(forward::marked(request.into_inner()))
                .await?
                .into_inner();
            return Ok(Response::new(Box::pin(stream)));
        }
        let id = request.into_inner().video_id;
        let chunks = self.master.backups.output(&id).await?;
        let stream = chunks.map(move |chunk| {
            chunk
                .map(|data_chunk| RetrieveVideoChunk {
                    video_id: id.clone(),
                    data_chunk,
                })
                .map_err(Status::from)
        });
        Ok(Response::new(Box::pin(stream)))
    }

    async fn get_video_status(
        &self,
        request: Request<VideoStatusRequest>,
    ) -> Result<Response<VideoStatusResponse>, Status> {
        if let Some(leader) = forward::leader_for(&self.sys, request.metadata())
            .await
            .ok()
            .flatten()
        {
            let mut client = MasterServiceClient::new(forward::channel(&self.sys, &leader)?);
            match client
                .get_video_status(forward::marked(request.get_ref().clone()))
                .await
            {
                Err(status) if status.code() == tonic::Code::Unavailable => {}
                answered => return answered,
            }
        }
        let video_id = request.into_inner().video_id;
        let (status, message) = match ids::check_lookup(&video_id) {
            Err(reason) => ("not_found".to_string(), reason.to_string()),
            Ok(()) => match self.sys.jobs.lock().get(&video_id) {
                Some(job) => (job.status.as_str().to_string(), status_message(job)),
                None => (
                    "not_found".to_string(),
                    format!("no video {video_id:?} on this cluster"),
                ),
            },
        };
        Ok(Response::new(VideoStatusResponse {
            video_id,
            status,
            message,
        }))
    }

    async fn report_worker_shard_status(
        &self,
        request: Request<ReportWorkerShardStatusRequest>,
    ) -> Result<Response<ReportWorkerShardStatusResponse>, Status> {
        let report = request.into_inner();
        let task_id = report
            .shard_id
            .rsplit_once('.')
            .map_or(report.shard_id.as_str(), |(stem, _)| stem);
        let known = self
            .master
            .scheduler
            .board
            .record_report(task_id, &report.status);
        let message = if known {
            format!("shard {} is {}", report.shard_id, report.status)
        } else {
            format!(
                "shard {:?} of {:?} is not running here (late, cancelled or unknown)",
                report.shard_id, report.video_id
            )
        };
        Ok(Response::new(ReportWorkerShardStatusResponse {
            success: known,
            message,
        }))
    }
}

/// The member id of an original worker, from its "HOST:PORT" (pure).
pub fn original_worker_id(address: &str) -> Option<String> {
    let (host, port) = address.rsplit_once(':')?;
    let port: u16 = port.parse().ok().filter(|p| *p > 0)?;
    if host.is_empty()
        || host.len() > 253
        || !host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b".-[]:".contains(&b))
    {
        return None;
    }
    let safe: String = host
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '-'
            }
        })
        .collect();
    Some(format!("original-{safe}-{port}"))
}
