//! Keys with real nodes (issue 20, item 1): with no flag at all the first
//! node makes a join token and an operator token; a node without the join
//! token never gets in, one with it does; peer RPCs refuse strangers and
//! operators alike, admin RPCs need the operator token, client RPCs stay
//! open (the original client uploads, polls and retrieves with no flag);
//! `--token`, `--clients`, `--original-clients` and `--original-peers`
//! close the rest; gRPC health stays open for load balancers.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use tonic::Code;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_client::HealthClient;
use vidshard_proto::replication::master_service_client::MasterServiceClient;
use vidshard_proto::replication::node_service_client::NodeServiceClient;
use vidshard_proto::replication::{
    GetCurrentMasterRequest, RegisterWorkerRequest, RequestBackupDataRequest,
};
use vidshard_proto::v1::cluster_client::ClusterClient;
use vidshard_proto::v1::jobs_client::JobsClient;
use vidshard_proto::v1::raft_client::RaftClient;
use vidshard_proto::v1::worker_client::WorkerClient;
use vidshard_proto::v1::{
    DeleteJobRequest, FetchBlobRequest, HeartbeatRequest, JoinClusterRequest, ListJobsRequest,
    RaftMessage, RemoveNodeRequest, SteerRequest, TriggerElectionRequest,
};

use common::clips::make_clip;
use common::node::{NodeProc, node_binary, with_token};
use common::{encode_completed, retrieve, wait_for};

const TOKEN: &str = "s3cret-token";

fn vidshard(node: &str, args: &[&str]) -> Output {
    let path: PathBuf = node_binary().with_file_name("vidshard");
    Command::new(path)
        .args(["--node", node])
        .args(args)
        .env_remove("VIDSHARD_TOKEN")
        .output()
        .expect("run vidshard")
}

/// `vidshard-node token [--operator] --data-dir DIR`, as an operator runs it.
fn printed_token(data_dir: &Path, operator: bool) -> String {
    let out = Command::new(node_binary())
        .arg("token")
        .args(operator.then_some("--operator"))
        .arg("--data-dir")
        .arg(data_dir)
        .env_remove("VIDSHARD_JOIN_TOKEN")
        .env_remove("VIDSHARD_TOKEN")
        .output()
        .expect("run vidshard-node token");
    assert!(out.status.success(), "{out:?}");
    String::from_utf8(out.stdout)
        .expect("utf-8")
        .trim()
        .to_string()
}

fn alive_nodes(out: &Output) -> Option<usize> {
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).ok()?;
    Some(
        doc["nodes"]
            .as_array()?
            .iter()
            .filter(|n| n["alive"] == true)
            .count(),
    )
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// The code and message of a refused call.
fn refused<T: std::fmt::Debug>(result: Result<T, tonic::Status>) -> (Code, String) {
    let status = result.expect_err("refused");
    (status.code(), status.message().to_string())
}

#[tokio::test(flavor = "multi_thread")]
async fn with_no_flags_members_need_the_join_token_and_admins_the_operator_token() {
    let dir = tempfile::tempdir().expect("tempdir");
    let founder = NodeProc::start_plain(&dir.path().join("a"), &[]);
    let join_token = printed_token(&founder.data_dir, false);
    let operator = printed_token(&founder.data_dir, true);
    assert!(join_token.len() >= 32, "{join_token}");
    assert_ne!(join_token, operator);
    // No token: never admitted. The token printed on the founder: admitted.
    let stranger = NodeProc::start_plain(
        &dir.path().join("b"),
        &["--role", "worker", "--master", &founder.address],
    );
    let member = NodeProc::start_plain(
        &dir.path().join("c"),
        &[
            "--role",
            "worker",
            "--master",
            &founder.address,
            "--join-token",
            &join_token,
        ],
    );
    wait_for("the member to join", Duration::from_secs(30), || {
        let out = vidshard(&founder.address, &["--json", "nodes"]);
        async move { (alive_nodes(&out)? == 2).then_some(()) }
    })
    .await;
    assert_eq!(printed_token(&member.data_dir, false), join_token);
    assert_eq!(printed_token(&member.data_dir, true), operator);
    let listing = vidshard(&founder.address, &["--json", "nodes"]);
    let listing = String::from_utf8_lossy(&listing.stdout);
    assert!(listing.contains(&member.address), "{listing}");
    assert!(!listing.contains(&stranger.address), "{listing}");
    assert!(
        stranger.log_text().contains("no join token"),
        "the stranger says why"
    );

    // Peer RPCs: refused to strangers and to the operator alike.
    let channel = founder.channel().await;
    for token in [None, Some(operator.as_str())] {
        let sign = |message| match token {
            Some(t) => with_token(t, tonic::Request::new(message)),
            None => tonic::Request::new(message),
        };
        let mut raft = RaftClient::new(channel.clone());
        let (code, why) = refused(raft.append_entries(sign(RaftMessage::default())).await);
        assert_eq!(code, Code::Unauthenticated, "{why}");
        assert!(why.contains("join token"), "{why}");
        let steer = SteerRequest {
            action: "campaign".into(),
            ..Default::default()
        };
        let steer = match token {
            Some(t) => with_token(t, tonic::Request::new(steer)),
            None => tonic::Request::new(steer),
        };
        assert_eq!(refused(raft.steer(steer).await).0, Code::Unauthenticated);
        let fetch = FetchBlobRequest {
            sha256: "0".repeat(64),
            release: true,
        };
        let fetch = match token {
            Some(t) => with_token(t, tonic::Request::new(fetch)),
            None => tonic::Request::new(fetch),
        };
        let mut worker = WorkerClient::new(channel.clone());
        assert_eq!(
            refused(worker.fetch_blob(fetch).await).0,
            Code::Unauthenticated
        );
        let mut cluster = ClusterClient::new(channel.clone());
        let join = JoinClusterRequest {
            node_id: "node-intruder".into(),
            address: "127.0.0.1:1".into(),
        };
        let join = match token {
            Some(t) => with_token(t, tonic::Request::new(join)),
            None => tonic::Request::new(join),
        };
        assert_eq!(
            refused(cluster.join_cluster(join).await).0,
            Code::Unauthenticated
        );
        let beat = HeartbeatRequest {
            node_id: "node-intruder".into(),
            address: "127.0.0.1:1".into(),
            ..Default::default()
        };
        let beat = match token {
            Some(t) => with_token(t, tonic::Request::new(beat)),
            None => tonic::Request::new(beat),
        };
        assert_eq!(
            refused(cluster.heartbeat(beat).await).0,
            Code::Unauthenticated
        );
    }

    // Client RPCs are open: the original client's upload, poll, retrieve.
    let clip = make_clip(&dir.path().join("clip.mp4"), 2, 160, 120, true);
    let id = encode_completed(channel.clone(), "clip.mp4", &clip, 96, 72).await;
    let (_, size) = retrieve(channel.clone(), &id, &dir.path().join("out.mp4"))
        .await
        .expect("retrieve with no token");
    assert!(size > 1000);
    JobsClient::new(channel.clone())
        .list_jobs(ListJobsRequest::default())
        .await
        .expect("list with no token");

    // Admin RPCs need the operator token.
    let mut cluster = ClusterClient::new(channel.clone());
    let mut jobs = JobsClient::new(channel.clone());
    let (code, why) = refused(jobs.delete_job(DeleteJobRequest { id: id.clone() }).await);
    assert_eq!(code, Code::Unauthenticated);
    assert!(why.contains("operator token"), "{why}");
    let (code, _) = refused(
        cluster
            .trigger_election(TriggerElectionRequest::default())
            .await,
    );
    assert_eq!(code, Code::Unauthenticated);
    let remove = RemoveNodeRequest {
        node_id: "node-nobody".into(),
    };
    assert_eq!(
        refused(cluster.remove_node(remove).await).0,
        Code::Unauthenticated
    );
    let out = vidshard(&founder.address, &["delete", &id]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("operator token"), "{}", stderr(&out));
    let out = vidshard(&founder.address, &["--token", "wrong-token", "delete", &id]);
    assert!(
        stderr(&out).contains("not one of this cluster's"),
        "{}",
        stderr(&out)
    );
    let out = vidshard(&founder.address, &["--token", &operator, "delete", &id]);
    assert!(out.status.success(), "{}", stderr(&out));
    let gone = retrieve(channel.clone(), &id, &dir.path().join("again.mp4")).await;
    assert_eq!(gone.map(|_| ()).map_err(|s| s.code()), Err(Code::NotFound));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_token_closes_client_rpcs_and_a_wrong_join_token_stays_out() {
    let dir = tempfile::tempdir().expect("tempdir");
    let master = NodeProc::start(&dir.path().join("m"), &["--token", TOKEN]);
    let _worker = NodeProc::start(
        &dir.path().join("w"),
        &[
            "--token",
            TOKEN,
            "--role",
            "worker",
            "--master",
            &master.address,
        ],
    );
    let outsider = NodeProc::start(
        &dir.path().join("o"),
        &[
            "--join-token",
            "join-another-cluster-0123456789",
            "--role",
            "worker",
            "--master",
            &master.address,
        ],
    );
    wait_for("the worker to join", Duration::from_secs(30), || {
        let out = vidshard(&master.address, &["--json", "--token", TOKEN, "nodes"]);
        async move { (alive_nodes(&out)? == 2).then_some(()) }
    })
    .await;
    // With --token, clients need it too, with the reason.
    let out = vidshard(&master.address, &["nodes"]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("operator token"), "{}", stderr(&out));
    let out = vidshard(&master.address, &["--token", "wrong", "nodes"]);
    assert!(stderr(&out).contains("not one of this cluster's"));
    let status = NodeServiceClient::new(master.channel().await)
        .get_current_master(GetCurrentMasterRequest {})
        .await
        .expect_err("the original client's calls need the token too");
    assert_eq!(status.code(), Code::Unauthenticated);
    let health = HealthClient::new(master.channel().await)
        .check(HealthCheckRequest {
            service: String::new(),
        })
        .await
        .expect("health without a token");
    assert_eq!(health.into_inner().status, 1, "SERVING");
    let out = vidshard(&master.address, &["--json", "--token", TOKEN, "nodes"]);
    assert_eq!(
        alive_nodes(&out),
        Some(2),
        "only the two with the join token"
    );
    assert!(!String::from_utf8_lossy(&out.stdout).contains(&outsider.address));
}

#[tokio::test(flavor = "multi_thread")]
async fn original_clients_and_peers_can_be_narrowed_or_turned_off() {
    let dir = tempfile::tempdir().expect("tempdir");
    let closed = NodeProc::start(
        &dir.path().join("closed"),
        &[
            "--clients",
            "token",
            "--original-clients",
            "off",
            "--original-peers",
            "10.255.255.254",
        ],
    );
    let channel = closed.channel().await;
    let (code, _) = refused(
        JobsClient::new(channel.clone())
            .list_jobs(ListJobsRequest::default())
            .await,
    );
    assert_eq!(code, Code::Unauthenticated);
    JobsClient::new(channel.clone())
        .list_jobs(common::node::as_operator(ListJobsRequest::default()))
        .await
        .expect("the operator lists");
    let (code, why) = refused(
        NodeServiceClient::new(channel.clone())
            .get_current_master(common::node::as_operator(GetCurrentMasterRequest {}))
            .await,
    );
    assert_eq!(code, Code::PermissionDenied);
    assert!(why.contains("--original-clients off"), "{why}");
    let register = RegisterWorkerRequest {
        worker_address: "127.0.0.1:1".into(),
    };
    let (code, why) = refused(
        MasterServiceClient::new(channel.clone())
            .register_worker(register.clone())
            .await,
    );
    assert_eq!(code, Code::PermissionDenied);
    assert!(why.contains("127.0.0.1 is not among"), "{why}");
    let (code, _) = refused(
        NodeServiceClient::new(channel.clone())
            .request_backup_data(RequestBackupDataRequest::default())
            .await,
    );
    assert_eq!(code, Code::PermissionDenied);

    let listed = NodeProc::start(
        &dir.path().join("listed"),
        &["--original-peers", "localhost,10.255.255.254"],
    );
    let reply = MasterServiceClient::new(listed.channel().await)
        .register_worker(register.clone())
        .await
        .expect("a listed original worker registers")
        .into_inner();
    assert!(reply.success, "{}", reply.message);
    let off = NodeProc::start(&dir.path().join("off"), &["--original-peers", "off"]);
    let (code, why) = refused(
        MasterServiceClient::new(off.channel().await)
            .register_worker(register)
            .await,
    );
    assert_eq!(code, Code::PermissionDenied);
    assert!(why.contains("--original-peers off"), "{why}");
}
