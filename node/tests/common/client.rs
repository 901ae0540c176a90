//! The `vidshard` client binary, run as a user runs it.

use std::path::PathBuf;
use std::process::{Command, Output};

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
