//! Our `vidshard.v1.Jobs` service: upload with every option, per-shard
//! status, listing; a ladder package's files are served by `package.rs`.

use futures::StreamExt;
use tonic::{Request, Response, Status, Streaming};
use vidshard_proto::v1::jobs_server;
use vidshard_proto::v1::upload_request::Msg;
use vidshard_proto::v1::*;

use super::convert::job_info_for;
use super::forward;
use crate::pipeline::intake::{Outcome, UploadPiece, UploadStart, ingest};
use std::sync::Arc;

use crate::cluster::Sys;
use crate::ids;
use crate::jobs::listing::{self, PageToken, StateFilter};
use crate::params::RawParams;
use vidshard_proto::v1::jobs_client::JobsClient;

pub struct Jobs {
    sys: Sys,
    master: Arc<crate::pipeline::Master>,
    links: crate::cluster::link_urls::Links,
}

impl Jobs {
    pub fn new(
        master: Arc<crate::pipeline::Master>,
        links: crate::cluster::link_urls::Links,
    ) -> Self {
        Self {
            sys: master.sys.clone(),
            master,
            links,
        }
    }
}

fn upload_start(header: UploadHeader) -> UploadStart {
    UploadStart {
        requested_id: header.requested_id,
        params: RawParams::from(header.params.unwrap_or_default()),
        expected_size: header.expected_size,
        expected_sha256: header.expected_sha256,
        upload_key: header.upload_key,
    }
}

/// The longest `GetJob` long poll (`wait_ms`).
const MAX_JOB_WAIT_MS: u32 = 5_000;
/// How often a long poll looks at the job: the delay between a job's end
/// and its waiting client hearing of it.
const JOB_WAIT_TICK: std::time::Duration = std::time::Duration::from_millis(25);

#[tonic::async_trait]
impl jobs_server::Jobs for Jobs {
    async fn upload(
        &self,
        request: Request<Streaming<UploadRequest>>,
    ) -> Result<Response<UploadReply>, Status> {
        if let Some(leader) = forward::leader_for(&self.sys, request.metadata()).await? {
            return forward::upload_v1(self.sys.clone(), leader, request.into_inner()).await;
        }
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
        // Bad options end the call before a byte is read: INVALID_ARGUMENT
        // with the reason (the original UploadVideo keeps answering
        // success=false, as its clients expect).
        if let Err(bad) = RawParams::from(header.params.clone().unwrap_or_default()).validate() {
            return Err(Status::invalid_argument(bad.to_string()));
        }
        let rest = stream.map(|message| match message?.msg {
            Some(Msg::Chunk(bytes)) => Ok(UploadPiece::Bytes(bytes)),
            Some(Msg::Trailer(trailer)) => Ok(UploadPiece::Trailer {
                sha256: trailer.sha256,
                size: trailer.size,
            }),
            _ => Err(Status::invalid_argument(
                "only data chunks and a trailer may follow the upload header",
            )),
        });
        let reply = match ingest(&self.master, upload_start(header), Vec::new(), rest).await? {
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
        // The leader has live progress; every node has the durable state,
        // which answers when the leader cannot.
        if let Some(leader) = forward::leader_for(&self.sys, request.metadata())
            .await
            .ok()
            .flatten()
        {
            let mut client = JobsClient::new(forward::channel(&self.sys, &leader)?);
            match client
                .get_job(forward::marked(request.get_ref().clone()))
                .await
            {
                Err(status) if status.code() == tonic::Code::Unavailable => {}
                answered => return answered,
            }
        }
        let GetJobRequest { id, wait_ms } = request.into_inner();
        ids::check_lookup(&id).map_err(|e| Status::invalid_argument(e.to_string()))?;
        let deadline = std::time::Instant::now()
            + std::time::Duration::from_millis(wait_ms.min(MAX_JOB_WAIT_MS).into());
        loop {
            {
                let jobs = self.sys.jobs.lock();
                let job = jobs
                    .get(&id)
                    .ok_or_else(|| Status::not_found(format!("no job {id:?}")))?;
                if job.status.is_final() || std::time::Instant::now() >= deadline {
                    let standing = self.master.scheduler.standings(&jobs).of(&id);
                    return Ok(Response::new(job_info_for(&self.sys, standing, job)));
                }
            }
            tokio::time::sleep(JOB_WAIT_TICK).await;
        }
    }

    async fn list_jobs(
        &self,
        request: Request<ListJobsRequest>,
    ) -> Result<Response<ListJobsReply>, Status> {
        if let Some(leader) = forward::leader_for(&self.sys, request.metadata())
            .await
            .ok()
            .flatten()
        {
            let mut client = JobsClient::new(forward::channel(&self.sys, &leader)?);
            match client
                .list_jobs(forward::marked(request.get_ref().clone()))
                .await
            {
                Err(status) if status.code() == tonic::Code::Unavailable => {}
                answered => return answered,
            }
        }
        let ListJobsRequest {
            state,
            limit,
            page_token,
        } = request.into_inner();
        let filter = StateFilter::parse(&state).map_err(Status::invalid_argument)?;
        let token = PageToken::parse(&page_token).map_err(Status::invalid_argument)?;
        let table = self.sys.jobs.lock();
        let standings = self.master.scheduler.standings(&table);
        let page = listing::page(&table, filter, limit as usize, token.as_ref());
        let (jobs, next_page_token) = super::convert::page_within(&self.sys, &standings, &page);
        // Matching jobs after this reply: the later pages, and those of
        // this page cut to stay within the message limit.
        let omitted = (page.after + page.jobs.len() - jobs.len()) as u32;
        Ok(Response::new(ListJobsReply {
            omitted,
            matching: page.matching as u32,
            next_page_token,
            jobs,
        }))
    }

    async fn delete_job(
        &self,
        request: Request<DeleteJobRequest>,
    ) -> Result<Response<DeleteJobReply>, Status> {
        let ctx = &self.sys;
        if let Some(leader) = forward::leader_for(ctx, request.metadata()).await? {
            let mut client = JobsClient::new(forward::channel(ctx, &leader)?);
            return client
                .delete_job(forward::marked(request.into_inner()))
                .await;
        }
        let id = request.into_inner().id;
        self.master.delete(&id).await?;
        Ok(Response::new(DeleteJobReply {
            deleted: true,
            message: format!("job {id} deleted; its blobs are removed from every node"),
        }))
    }

    type RetrieveStream =
        std::pin::Pin<Box<dyn futures::Stream<Item = Result<RetrieveChunk, Status>> + Send>>;

    async fn retrieve(
        &self,
        request: Request<RetrieveRequest>,
    ) -> Result<Response<Self::RetrieveStream>, Status> {
        // A file of a ladder job's package: any node serves it from its
        // table (service/package.rs), never forwarded.
        if !request.get_ref().path.is_empty() {
            let RetrieveRequest { id, offset, path } = request.into_inner();
            let backups = &self.master.backups;
            let stream =
                super::package::retrieve_file(&self.sys, backups, &id, &path, offset).await?;
            return Ok(Response::new(stream));
        }
        // Like the original RetrieveVideo: a node with the job completed in
        // its table serves it (its copy or a holder's); else the master.
        let here = crate::backups::serve::completed_here(&self.sys, &request.get_ref().id);
        let leader = if here {
            None
        } else {
            forward::leader_for(&self.sys, request.metadata()).await?
        };
        if let Some(leader) = leader {
            let stream = JobsClient::new(forward::channel(&self.sys, &leader)?)
                .max_decoding_message_size(super::MAX_MESSAGE)
                .retrieve(forward::marked(request.into_inner()))
                .await?
                .into_inner();
            return Ok(Response::new(Box::pin(stream)));
        }
        let RetrieveRequest { id, offset, .. } = request.into_inner();
        let chunks = self.master.backups.output(&id).await?;
        let stream = crate::backups::serve::from_offset(chunks, offset).map(|chunk| {
            chunk
                .map(|data| RetrieveChunk { data })
                .map_err(Status::from)
        });
        Ok(Response::new(Box::pin(stream)))
    }

    async fn link(&self, request: Request<LinkRequest>) -> Result<Response<LinkReply>, Status> {
        super::links::link(&self.sys, &self.links, request.into_inner()).map(Response::new)
    }

    async fn get_package(
        &self,
        request: Request<GetPackageRequest>,
    ) -> Result<Response<PackageListing>, Status> {
        super::package::get_package(&self.sys, &request.into_inner().id).map(Response::new)
    }
}
