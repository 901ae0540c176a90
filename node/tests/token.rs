//! The cluster token with real nodes: nodes started with `--token` join
//! and work with each other, every RPC without the token (or with a wrong
//! one) is refused UNAUTHENTICATED with the reason, the CLI passes
//! `--token`, a node with another token cannot join, and gRPC health
//! stays open for load balancers.

mod common;

use std::path::PathBuf;
use std::process::{Command, Output};
use std::time::Duration;

use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_client::HealthClient;
use vidshard_proto::replication::GetCurrentMasterRequest;
use vidshard_proto::replication::node_service_client::NodeServiceClient;

use common::node::{NodeProc, node_binary};
use common::wait_for;

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

#[tokio::test(flavor = "multi_thread")]
async fn a_token_guards_every_rpc_but_health() {
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
            "--token",
            "another",
            "--role",
            "worker",
            "--master",
            &master.address,
        ],
    );
    // Nodes with the token join and heartbeat each other.
    wait_for(
        "the worker to join with the token",
        Duration::from_secs(30),
        || {
            let out = vidshard(&master.address, &["--json", "--token", TOKEN, "nodes"]);
            async move { (alive_nodes(&out)? == 2).then_some(()) }
        },
    )
    .await;
    // Without the token: refused, with the reason.
    let out = vidshard(&master.address, &["nodes"]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("needs a token"), "{stderr}");
    let out = vidshard(&master.address, &["--token", "wrong", "nodes"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("wrong cluster token"));
    let status = NodeServiceClient::new(master.channel().await)
        .get_current_master(GetCurrentMasterRequest {})
        .await
        .expect_err("the original protocol needs the token too");
    assert_eq!(status.code(), tonic::Code::Unauthenticated);
    // Health answers anyone.
    let health = HealthClient::new(master.channel().await)
        .check(HealthCheckRequest {
            service: String::new(),
        })
        .await
        .expect("health without a token");
    assert_eq!(health.into_inner().status, 1, "SERVING");
    // The node with another token never got in.
    let out = vidshard(&master.address, &["--json", "--token", TOKEN, "nodes"]);
    assert_eq!(alive_nodes(&out), Some(2), "only the two with the token");
    assert!(
        !String::from_utf8_lossy(&out.stdout).contains(&outsider.address),
        "the outsider is not listed"
    );
}
