//! Our node as the worker of an original master (issue 19, item 3): a
//! master that speaks only `replication` (a stand-in written here with
//! the original behaviour: it takes a worker only through
//! `RegisterWorker`) gets `RegisterWorker` with the node's address at
//! start and every 5 s until it says yes; a master announced with
//! `AnnounceMaster` gets it at once; a master silent for 30 s (it pruned
//! the node) gets it again.

mod common;

use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::net::TcpListener;
use tokio_stream::wrappers::TcpListenerStream;
use tonic::{Request, Response, Status, Streaming};
use vidshard_proto::replication::master_service_server::{MasterService, MasterServiceServer};
use vidshard_proto::replication::node_service_client::NodeServiceClient;
use vidshard_proto::replication::*;

use common::node::NodeProc;
use common::wait_for;

/// `RegisterWorker` calls seen: (when, worker address, answered yes).
type Calls = Arc<Mutex<Vec<(Instant, String, bool)>>>;

/// An original master: refuses the first `refusals` registrations (as
/// one that is still starting would), then takes every worker.
struct OriginalMaster {
    calls: Calls,
    refusals: usize,
}

#[tonic::async_trait]
impl MasterService for OriginalMaster {
    async fn register_worker(
        &self,
        request: Request<RegisterWorkerRequest>,
    ) -> Result<Response<RegisterWorkerResponse>, Status> {
        let mut calls = self.calls.lock().expect("calls");
        let success = calls.len() >= self.refusals;
        calls.push((Instant::now(), request.into_inner().worker_address, success));
        Ok(Response::new(RegisterWorkerResponse {
            success,
            message: if success { "registered" } else { "not yet" }.into(),
        }))
    }

    async fn upload_video(
        &self,
        _: Request<Streaming<UploadVideoChunk>>,
    ) -> Result<Response<UploadVideoResponse>, Status> {
        Err(Status::unimplemented("Method not found!"))
    }

    type RetrieveVideoStream =
        Pin<Box<dyn futures::Stream<Item = Result<RetrieveVideoChunk, Status>> + Send>>;

    async fn retrieve_video(
        &self,
        _: Request<RetrieveVideoRequest>,
    ) -> Result<Response<Self::RetrieveVideoStream>, Status> {
        Err(Status::unimplemented("Method not found!"))
    }

    async fn get_video_status(
        &self,
        _: Request<VideoStatusRequest>,
    ) -> Result<Response<VideoStatusResponse>, Status> {
        Err(Status::unimplemented("Method not found!"))
    }

    async fn report_worker_shard_status(
        &self,
        _: Request<ReportWorkerShardStatusRequest>,
    ) -> Result<Response<ReportWorkerShardStatusResponse>, Status> {
        Ok(Response::new(ReportWorkerShardStatusResponse {
            success: true,
            message: "recorded".into(),
        }))
    }
}

/// Serves an original master on a free port; answers its address.
async fn original_master(refusals: usize) -> (String, Calls) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let address = listener.local_addr().expect("address").to_string();
    let calls = Calls::default();
    let service = MasterServiceServer::new(OriginalMaster {
        calls: calls.clone(),
        refusals,
    });
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(service)
            .serve_with_incoming(TcpListenerStream::new(listener)),
    );
    (address, calls)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_worker_registers_with_an_original_master_until_taken_and_follows_announcements() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (first, first_calls) = original_master(2).await;
    let node = NodeProc::start_plain(
        &dir.path().join("n"),
        &["--role", "worker", "--master", &first],
    );
    // Refused twice, then taken: three calls about 5 s apart, then quiet.
    let calls = wait_for("three registrations", Duration::from_secs(30), || {
        let calls = first_calls.clone();
        async move {
            let calls = calls.lock().expect("calls").clone();
            (calls.len() >= 3).then_some(calls)
        }
    })
    .await;
    for (_, address, _) in &calls {
        assert_eq!(*address, node.address, "it registers its own address");
    }
    assert_eq!(
        calls.iter().map(|c| c.2).collect::<Vec<_>>()[..3],
        [false, false, true]
    );
    for pair in calls.windows(2).take(2) {
        let gap = pair[1].0 - pair[0].0;
        assert!(
            gap >= Duration::from_secs(4) && gap <= Duration::from_secs(8),
            "retried every 5 s: {gap:?}"
        );
    }
    assert!(
        node.log_text()
            .contains("registered with the original master"),
        "it says so"
    );

    // A new master announces itself: registered with it at once.
    let (second, second_calls) = original_master(0).await;
    let announced = Instant::now();
    let reply = NodeServiceClient::new(node.channel().await)
        .announce_master(MasterAnnouncement {
            master_address: second.clone(),
            node_id_of_master: "original-2".into(),
            term: 2,
        })
        .await
        .expect("announce")
        .into_inner();
    assert_eq!(reply.status, "accepted");
    wait_for(
        "a registration with the new master",
        Duration::from_secs(3),
        || {
            let calls = second_calls.clone();
            async move { (!calls.lock().expect("calls").is_empty()).then_some(()) }
        },
    )
    .await;
    assert!(announced.elapsed() < Duration::from_secs(3));
    assert_eq!(second_calls.lock().expect("calls")[0].1, node.address);

    // This master never calls the node (it pruned it after a failed health
    // check, say): after 30 s of silence the node registers again, which
    // is the only way back into an original master's list.
    let first_registration = second_calls.lock().expect("calls")[0].0;
    let again = wait_for(
        "a registration again after the master's silence",
        Duration::from_secs(45),
        || {
            let calls = second_calls.clone();
            async move { calls.lock().expect("calls").get(1).map(|c| c.0) }
        },
    )
    .await;
    let silence = again - first_registration;
    assert!(
        silence >= Duration::from_secs(29) && silence <= Duration::from_secs(40),
        "registered again after about 30 s of silence, not {silence:?}"
    );
}
