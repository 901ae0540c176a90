//! TLS with real nodes and real certificates (a CA made here with rcgen):
//! three nodes running mutual TLS and a token form a Raft cluster, hand
//! shards to each other and finish a job whose output is right; the CLI
//! with the CA, a client certificate and the token uploads, follows and
//! downloads; plaintext callers, callers without a client certificate,
//! with one from another CA, or not trusting the nodes' CA are refused; a
//! node with half a TLS configuration refuses to start and says why.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair, KeyUsagePurpose};
use tonic::transport::{Certificate, ClientTlsConfig, Endpoint, Identity};
use vidshard_proto::replication::GetCurrentMasterRequest;
use vidshard_proto::replication::node_service_client::NodeServiceClient;

use common::clips::{make_clip, report};
use common::cluster::Cluster;
use common::node::node_binary;
use common::wait_for;

const TOKEN: &str = "tls-test-token";

/// PEM files of a CA, the nodes' certificate and a client certificate.
struct Pki {
    ca: PathBuf,
    node_cert: PathBuf,
    node_key: PathBuf,
    client_cert: PathBuf,
    client_key: PathBuf,
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).expect("write pem");
    path
}

/// A CA and two certificates it signs, written under `dir` with `prefix`.
fn make_pki(dir: &Path, prefix: &str) -> Pki {
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("ca params");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::CrlSign,
    ];
    let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().expect("ca key"))
        .expect("ca cert");
    let leaf = |names: Vec<String>| {
        let key = KeyPair::generate().expect("key");
        let cert = CertificateParams::new(names)
            .expect("params")
            .signed_by(&key, &ca)
            .expect("sign");
        (cert.pem(), key.serialize_pem())
    };
    let (node_cert, node_key) = leaf(vec!["127.0.0.1".into(), "localhost".into()]);
    let (client_cert, client_key) = leaf(vec!["operator".into()]);
    Pki {
        ca: write(dir, &format!("{prefix}-ca.pem"), &ca.pem()),
        node_cert: write(dir, &format!("{prefix}-node.pem"), &node_cert),
        node_key: write(dir, &format!("{prefix}-node.key"), &node_key),
        client_cert: write(dir, &format!("{prefix}-client.pem"), &client_cert),
        client_key: write(dir, &format!("{prefix}-client.key"), &client_key),
    }
}

fn path(p: &Path) -> &str {
    p.to_str().expect("utf8 path")
}

/// Runs the CLI against `node` with exactly `args` (no TLS or token from
/// the environment).
fn vidshard(node: &str, args: &[&str]) -> Output {
    Command::new(node_binary().with_file_name("vidshard"))
        .args(["--node", node])
        .args(args)
        .env_remove("VIDSHARD_TOKEN")
        .env_remove("VIDSHARD_TLS_CA")
        .env_remove("VIDSHARD_TLS_CERT")
        .env_remove("VIDSHARD_TLS_KEY")
        .output()
        .expect("run vidshard")
}

/// The flags of a trusted operator.
fn operator(pki: &Pki) -> Vec<String> {
    [
        "--token",
        TOKEN,
        "--tls-ca",
        path(&pki.ca),
        "--tls-cert",
        path(&pki.client_cert),
        "--tls-key",
        path(&pki.client_key),
    ]
    .map(String::from)
    .to_vec()
}

fn with<'a>(base: &'a [String], args: &[&'a str]) -> Vec<&'a str> {
    base.iter()
        .map(String::as_str)
        .chain(args.iter().copied())
        .collect()
}

fn json_of(out: &Output) -> Option<serde_json::Value> {
    serde_json::from_slice(&out.stdout).ok()
}

fn stderr_of(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn three_nodes_with_mutual_tls_work_and_refuse_strangers() {
    let dir = tempfile::tempdir().expect("tempdir");
    let pki = make_pki(dir.path(), "good");
    let rogue = make_pki(dir.path(), "rogue");
    let mut cluster = Cluster::start_with(
        dir.path(),
        &[
            "--tls-cert",
            path(&pki.node_cert),
            "--tls-key",
            path(&pki.node_key),
            "--tls-ca",
            path(&pki.ca),
            "--mtls",
            "--token",
            TOKEN,
        ],
    );
    let first = cluster.address(0);
    let op = operator(&pki);

    // Raft and joining run over TLS: three voters, all alive.
    let nodes = wait_for(
        "3 live voters seen through the CLI over mutual TLS",
        Duration::from_secs(60),
        || {
            let out = vidshard(&first, &with(&op, &["--json", "nodes"]));
            async move {
                let doc = json_of(&out)?;
                let list = doc["nodes"].as_array()?;
                let voters = list
                    .iter()
                    .filter(|n| n["alive"] == true && n["raft_role"] == "voter")
                    .count();
                (voters == 3
                    && doc["master_address"]
                        .as_str()
                        .is_some_and(|m| !m.is_empty()))
                .then_some(doc)
            }
        },
    )
    .await;
    let master = nodes["master_address"]
        .as_str()
        .expect("master")
        .to_string();
    assert!(cluster.index_of(&master).is_some(), "{master} is a node");

    // A job through a node that is not the master: forwarded over TLS,
    // shards handed to the other nodes over TLS, the output fetched back.
    let other = cluster
        .addresses()
        .into_iter()
        .find(|a| *a != master)
        .expect("a follower");
    let clip = make_clip(&dir.path().join("clip.mp4"), 6, 320, 240, true);
    let out_path = dir.path().join("out.mp4");
    let up = vidshard(
        &other,
        &with(
            &op,
            &[
                "--json",
                "upload",
                path(&clip),
                "--width",
                "160",
                "--height",
                "120",
                "--output",
                path(&out_path),
            ],
        ),
    );
    if !up.status.success() {
        cluster.print_logs(40);
    }
    assert!(up.status.success(), "upload over TLS: {}", stderr_of(&up));
    let doc = json_of(&up).expect("upload json");
    assert_eq!(doc["status"], "completed");
    let id = doc["id"].as_str().expect("id").to_string();
    let got = report(&out_path);
    assert_eq!((got.width, got.height, got.frames), (160, 120, 180));
    let status =
        json_of(&vidshard(&other, &with(&op, &["--json", "status", &id]))).expect("status json");
    let mut workers: Vec<&str> = status["shards"]
        .as_array()
        .expect("shards")
        .iter()
        .filter_map(|s| s["worker"].as_str())
        .collect();
    workers.sort();
    workers.dedup();
    assert!(
        workers.len() >= 2,
        "shards ran on several nodes over TLS: {workers:?}"
    );
    wait_for(
        "the output copied to a backup node over TLS",
        Duration::from_secs(30),
        || {
            let out = vidshard(&other, &with(&op, &["--json", "status", &id]));
            async move {
                let doc = json_of(&out)?;
                (!doc["output"]["holders"].as_array()?.is_empty()).then_some(())
            }
        },
    )
    .await;

    // Strangers are refused.
    let plain = Endpoint::from_shared(format!("http://{master}"))
        .expect("endpoint")
        .connect_timeout(Duration::from_secs(3))
        .connect()
        .await;
    if let Ok(channel) = plain {
        let answer = NodeServiceClient::new(channel)
            .get_current_master(GetCurrentMasterRequest {})
            .await;
        assert!(answer.is_err(), "a plaintext call was answered: {answer:?}");
    }
    let no_client_cert = vidshard(
        &master,
        &[
            "--token",
            TOKEN,
            "--tls-ca",
            path(&pki.ca),
            "--json",
            "jobs",
        ],
    );
    assert!(
        !no_client_cert.status.success(),
        "no client certificate accepted"
    );
    assert!(
        stderr_of(&no_client_cert).contains("--tls-cert"),
        "the hint names the missing certificate: {}",
        stderr_of(&no_client_cert)
    );
    let rogue_cert = vidshard(
        &master,
        &[
            "--token",
            TOKEN,
            "--tls-ca",
            path(&pki.ca),
            "--tls-cert",
            path(&rogue.client_cert),
            "--tls-key",
            path(&rogue.client_key),
            "jobs",
        ],
    );
    assert!(
        !rogue_cert.status.success(),
        "a certificate from another CA accepted"
    );
    let untrusting = vidshard(
        &master,
        &[
            "--token",
            TOKEN,
            "--tls-ca",
            path(&rogue.ca),
            "--tls-cert",
            path(&pki.client_cert),
            "--tls-key",
            path(&pki.client_key),
            "jobs",
        ],
    );
    for (what, out) in [
        ("no client certificate", &no_client_cert),
        ("client certificate from another CA", &rogue_cert),
        ("nodes' CA not trusted", &untrusting),
    ] {
        eprintln!("{what}: {}", stderr_of(out).trim());
    }
    assert!(!untrusting.status.success());
    assert!(
        stderr_of(&untrusting)
            .to_lowercase()
            .contains("certificate"),
        "the reason names the certificate: {}",
        stderr_of(&untrusting)
    );
    let no_token = vidshard(&master, &with(&op[2..], &["jobs"]));
    assert!(!no_token.status.success());
    assert!(
        stderr_of(&no_token).contains("token"),
        "{}",
        stderr_of(&no_token)
    );

    // A client built from the original protocol works when it brings the
    // CA, a certificate and the token.
    let tls = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(std::fs::read(&pki.ca).expect("ca")))
        .identity(Identity::from_pem(
            std::fs::read(&pki.client_cert).expect("cert"),
            std::fs::read(&pki.client_key).expect("key"),
        ));
    let channel = Endpoint::from_shared(format!("https://{other}"))
        .expect("endpoint")
        .tls_config(tls)
        .expect("tls")
        .connect()
        .await
        .expect("connect over mutual TLS");
    let mut request = tonic::Request::new(GetCurrentMasterRequest {});
    request.metadata_mut().insert(
        "authorization",
        format!("Bearer {TOKEN}").parse().expect("header"),
    );
    let named = NodeServiceClient::new(channel)
        .get_current_master(request)
        .await
        .expect("GetCurrentMaster over TLS")
        .into_inner();
    assert_eq!(named.master_address, master);
    cluster.stop_all().await;
}

/// Runs the node binary to its exit (it must exit by itself).
fn node_exit(dir: &Path, args: &[&str]) -> (bool, String) {
    let out = Command::new(node_binary())
        .args(["--host", "127.0.0.1", "--port", "0", "--data-dir"])
        .arg(dir.join("data"))
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run vidshard-node");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn half_a_tls_configuration_is_refused_at_start() {
    let dir = tempfile::tempdir().expect("tempdir");
    let pki = make_pki(dir.path(), "p");
    let (ok, log) = node_exit(dir.path(), &["--tls-cert", path(&pki.node_cert)]);
    assert!(!ok && log.contains("--tls-key"), "{log}");
    let (ok, log) = node_exit(
        dir.path(),
        &[
            "--tls-cert",
            path(&pki.node_cert),
            "--tls-key",
            path(&pki.node_key),
            "--mtls",
        ],
    );
    assert!(!ok && log.contains("--tls-ca"), "{log}");
    let (ok, log) = node_exit(
        dir.path(),
        &[
            "--tls-cert",
            path(&pki.node_key),
            "--tls-key",
            path(&pki.node_key),
        ],
    );
    assert!(
        !ok && log.contains("--tls-cert"),
        "a key given as the certificate: {log}"
    );
    let (ok, log) = node_exit(
        dir.path(),
        &[
            "--tls-cert",
            path(&pki.node_cert),
            "--tls-key",
            path(&dir.path().join("missing.key")),
        ],
    );
    assert!(!ok && log.contains("missing.key"), "{log}");
}

/// Starts a node on every interface with `args`; answers whether it
/// came up (logged that it listens) or how it exited.
fn start_everywhere(dir: &Path, args: &[&str]) -> Result<(), String> {
    use std::io::{BufRead, BufReader};
    let mut child = Command::new(node_binary())
        .args(["--host", "0.0.0.0", "--port", "0", "--data-dir"])
        .arg(dir.join("data-everywhere"))
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run vidshard-node");
    let stderr = child.stderr.take().expect("stderr");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut seen = String::new();
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            seen.push_str(&line);
            seen.push('\n');
            if line.contains("listening on") {
                let _ = tx.send(Ok(()));
                return;
            }
        }
        let _ = tx.send(Err(seen));
    });
    let outcome = rx
        .recv_timeout(std::time::Duration::from_secs(20))
        .unwrap_or_else(|_| Err("no answer within 20 s".into()));
    let _ = child.kill();
    let _ = child.wait();
    outcome
}

/// Issue 20, row 14: TLS on a public address with no token and no mTLS
/// used to start with a warning (a stranger then called `Raft/Steer`).
#[test]
fn tls_beyond_loopback_without_authentication_needs_insecure() {
    let dir = tempfile::tempdir().expect("tempdir");
    let pki = make_pki(dir.path(), "e");
    let tls = [
        "--tls-cert",
        path(&pki.node_cert),
        "--tls-key",
        path(&pki.node_key),
    ];
    let refused = start_everywhere(dir.path(), &tls).expect_err("started without authentication");
    assert!(
        refused.contains("without client authentication") && refused.contains("--insecure"),
        "{refused}"
    );
    let with_token = [&tls[..], &["--token", TOKEN]].concat();
    start_everywhere(dir.path(), &with_token).expect("TLS with a token starts");
    let insecure = [&tls[..], &["--insecure"]].concat();
    start_everywhere(dir.path(), &insecure).expect("--insecure starts");
}
