//! Operations endpoints of a real node: gRPC health (MasterService serving
//! only on the master), server reflection (what grpcurl uses) and the
//! Prometheus `/metrics` page on `--metrics-addr`.

mod common;

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tonic::transport::Channel;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use tonic_reflection::pb::v1::ServerReflectionRequest;
use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;

use common::node::NodeProc;

async fn status(channel: Channel, service: &str) -> ServingStatus {
    let reply = HealthClient::new(channel)
        .check(HealthCheckRequest {
            service: service.into(),
        })
        .await
        .unwrap_or_else(|e| panic!("health check of {service:?}: {e}"))
        .into_inner();
    ServingStatus::try_from(reply.status).expect("known status")
}

#[tokio::test(flavor = "multi_thread")]
async fn health_reports_the_role() {
    let dir = tempfile::tempdir().expect("tempdir");
    let master = NodeProc::start(&dir.path().join("master"), &["--slots", "1"]);
    let worker = NodeProc::start(
        &dir.path().join("worker"),
        &[
            "--role",
            "worker",
            "--master",
            &master.address,
            "--slots",
            "1",
        ],
    );
    let (m, w) = (master.channel().await, worker.channel().await);

    assert_eq!(status(m.clone(), "").await, ServingStatus::Serving);
    assert_eq!(
        status(m.clone(), "replication.MasterService").await,
        ServingStatus::Serving
    );
    assert_eq!(
        status(m.clone(), "vidshard.v1.Jobs").await,
        ServingStatus::Serving
    );
    assert_eq!(status(w.clone(), "").await, ServingStatus::Serving);
    assert_eq!(
        status(w.clone(), "replication.MasterService").await,
        ServingStatus::NotServing
    );
    assert_eq!(
        status(w.clone(), "replication.WorkerService").await,
        ServingStatus::Serving
    );
    let unknown = HealthClient::new(w)
        .check(HealthCheckRequest {
            service: "no.such.Service".into(),
        })
        .await
        .expect_err("unknown service");
    assert_eq!(unknown.code(), tonic::Code::NotFound);
}

#[tokio::test(flavor = "multi_thread")]
async fn reflection_lists_our_services() {
    let dir = tempfile::tempdir().expect("tempdir");
    let node = NodeProc::start(dir.path(), &["--slots", "1"]);
    let request = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut replies = ServerReflectionClient::new(node.channel().await)
        .server_reflection_info(tokio_stream::iter([request]))
        .await
        .expect("reflection rpc")
        .into_inner();
    let reply = replies
        .message()
        .await
        .expect("reflection reply")
        .expect("one reply");
    let Some(MessageResponse::ListServicesResponse(list)) = reply.message_response else {
        panic!("unexpected reflection reply: {reply:?}");
    };
    let names: Vec<String> = list.service.into_iter().map(|s| s.name).collect();
    for wanted in [
        "replication.MasterService",
        "vidshard.v1.Jobs",
        "grpc.health.v1.Health",
    ] {
        assert!(names.iter().any(|n| n == wanted), "{wanted} in {names:?}");
    }
}

/// `GET /metrics` over plain HTTP/1.0; the whole response.
async fn get_metrics(address: &str) -> std::io::Result<String> {
    let mut stream = tokio::net::TcpStream::connect(address).await?;
    stream
        .write_all(b"GET /metrics HTTP/1.0\r\nHost: localhost\r\n\r\n")
        .await?;
    let mut body = String::new();
    stream.read_to_string(&mut body).await?;
    Ok(body)
}

#[tokio::test(flavor = "multi_thread")]
async fn metrics_are_served_when_asked_for() {
    let dir = tempfile::tempdir().expect("tempdir");
    let metrics_addr = format!("127.0.0.1:{}", common::free_port());
    let node = NodeProc::start(
        &dir.path().join("n"),
        &["--slots", "1", "--metrics-addr", &metrics_addr],
    );
    let page = common::wait_for("the metrics page", Duration::from_secs(10), || async {
        get_metrics(&metrics_addr)
            .await
            .ok()
            .filter(|p| p.contains("vidshard_nodes_alive"))
    })
    .await;
    assert!(page.starts_with("HTTP/1."), "{page}");
    assert!(page.contains("vidshard_jobs{state=\"queued\"} 0"), "{page}");
    assert!(page.contains("vidshard_nodes_alive 1"), "{page}");
    assert!(page.contains("vidshard_term 1"), "{page}");
    assert!(page.contains("vidshard_shards_encoded_total 0"), "{page}");
    assert!(
        page.contains("# TYPE vidshard_upload_bytes_total counter"),
        "{page}"
    );
    for series in [
        "vidshard_elections_total 0",
        "vidshard_encode_fps{scope=\"node\"} 0",
        "vidshard_encode_fps{scope=\"cluster\"} 0",
        "vidshard_backup_copies_missing 0",
    ] {
        assert!(page.contains(series), "{series} in {page}");
    }

    // After a real job the counters and the job gauge move.
    let clip = common::clips::make_clip(&dir.path().join("c.mp4"), 4, 320, 240, true);
    let size = std::fs::metadata(&clip).expect("clip").len();
    let channel = node.channel().await;
    let id = common::upload_file(
        channel.clone(),
        "c.mp4",
        &clip,
        &common::Params::size(160, 120, "mp4"),
    )
    .await;
    let info = common::wait_finished(channel, &id, Duration::from_secs(120)).await;
    assert_eq!(info.status, "completed", "{}", info.message);
    let shards = info.shards.len();
    let page = common::wait_for(
        "the metrics to count the job",
        Duration::from_secs(10),
        || async {
            get_metrics(&metrics_addr)
                .await
                .ok()
                .filter(|p| p.contains("vidshard_jobs{state=\"completed\"} 1"))
        },
    )
    .await;
    assert!(
        page.contains(&format!("vidshard_shards_encoded_total {shards}")),
        "{page}"
    );
    assert!(
        page.contains(&format!("vidshard_upload_bytes_total {size}")),
        "{page}"
    );
    // A download is counted as bytes out.
    let output = dir.path().join("out.mp4");
    common::retrieve(node.channel().await, &id, &output)
        .await
        .expect("retrieve");
    let out_size = std::fs::metadata(&output).expect("output").len();
    common::wait_for("the download counted", Duration::from_secs(10), || async {
        let page = get_metrics(&metrics_addr).await.ok()?;
        let sent: u64 = page
            .lines()
            .find_map(|l| l.strip_prefix("vidshard_blob_bytes_sent_total "))?
            .trim()
            .parse()
            .ok()?;
        (sent >= out_size).then_some(())
    })
    .await;
}
