//! The `vidshard` client binary, run as a user runs it.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use super::cluster::Cluster;
use super::node::node_binary;

/// The client binary, built beside the node by `cargo build --workspace`.
pub fn client_binary() -> PathBuf {
    let path = node_binary().with_file_name("vidshard");
    assert!(
        path.exists(),
        "{} is missing: run `cargo build --workspace` first",
        path.display()
    );
    path
}

/// Runs `vidshard --node NODE ARGS…` to its end.
pub fn vidshard(node: &str, args: &[&str]) -> Output {
    Command::new(client_binary())
        .arg("--node")
        .arg(node)
        .args(args)
        .output()
        .expect("run vidshard")
}

/// Uploads `clip` with `options` and saves the output as `out`.
pub fn encode_with_cli(cluster: &Cluster, master: &str, clip: &Path, out: &Path, options: &[&str]) {
    let mut args = vec!["upload", clip.to_str().expect("utf8")];
    args.extend_from_slice(options);
    args.extend(["--output", out.to_str().expect("utf8")]);
    let run = vidshard(master, &args);
    if !run.status.success() {
        cluster.print_logs(40);
    }
    assert!(
        run.status.success(),
        "{options:?}: {}",
        String::from_utf8_lossy(&run.stderr)
    );
}

/// Runs `vidshard --node NODE --json ARGS…`, which must succeed, and
/// parses its one JSON document.
pub fn json_of(node: &str, args: &[&str]) -> serde_json::Value {
    let mut all = vec!["--json"];
    all.extend_from_slice(args);
    let run = vidshard(node, &all);
    assert!(
        run.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&run.stderr)
    );
    serde_json::from_slice(&run.stdout).expect("one JSON document")
}

/// Uploads `clip` to `node` as a ladder (`vidshard upload CLIP OPTIONS…`,
/// e.g. `--ladder 360,240`) and answers the job id and the whole text
/// the client printed (its id line, then `watch: URL`).
pub fn upload_ladder(node: &str, clip: &Path, options: &[&str]) -> (String, String) {
    let mut args = vec!["upload", clip.to_str().expect("utf8")];
    args.extend_from_slice(options);
    let run = vidshard(node, &args);
    assert!(
        run.status.success(),
        "{options:?}: {}",
        String::from_utf8_lossy(&run.stderr)
    );
    let stdout = String::from_utf8_lossy(&run.stdout).into_owned();
    let id = stdout.lines().next().expect("the job id").to_string();
    (id, stdout)
}
