//! A real `vidshard-node` process for a test: port 0, its own data dir,
//! killed when dropped.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use tonic::transport::{Channel, Endpoint};

pub struct NodeProc {
    child: Child,
    pub address: String,
    pub data_dir: PathBuf,
    log: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

pub fn node_binary() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_vidshard-node"))
}

/// The join token every test node gets (through `VIDSHARD_JOIN_TOKEN`, so
/// a `--join-token` flag in a test wins), as an operator would give it to
/// each node of a cluster.
pub const JOIN_TOKEN: &str = "join-test-cluster-0123456789abcdef";

/// The operator token belonging to [`JOIN_TOKEN`], as `vidshard-node token
/// --operator` prints it.
pub fn operator_token() -> String {
    static TOKEN: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    TOKEN
        .get_or_init(|| {
            let empty = tempfile::tempdir().expect("tempdir");
            let out = Command::new(node_binary())
                .args(["token", "--operator", "--join-token", JOIN_TOKEN])
                .arg("--data-dir")
                .arg(empty.path())
                .output()
                .expect("run vidshard-node token");
            assert!(out.status.success(), "{out:?}");
            String::from_utf8(out.stdout)
                .expect("utf-8")
                .trim()
                .to_string()
        })
        .clone()
}

/// `request` carrying `token` as a bearer token.
pub fn with_token<T>(token: &str, mut request: tonic::Request<T>) -> tonic::Request<T> {
    request.metadata_mut().insert(
        "authorization",
        format!("Bearer {token}").parse().expect("ascii token"),
    );
    request
}

/// `message` as a request from a member of the test cluster.
pub fn as_peer<T>(message: T) -> tonic::Request<T> {
    with_token(JOIN_TOKEN, tonic::Request::new(message))
}

/// `message` as a request from the test cluster's operator.
pub fn as_operator<T>(message: T) -> tonic::Request<T> {
    with_token(&operator_token(), tonic::Request::new(message))
}

impl NodeProc {
    /// Starts a node with `--port 0` and waits until it logs its address.
    pub fn start(data_dir: &Path, extra: &[&str]) -> Self {
        Self::start_in(Path::new("."), data_dir, extra)
    }

    /// Like [`NodeProc::start`] with the working directory `cwd` (so a
    /// relative `data_dir` is resolved against it, as under systemd).
    pub fn start_in(cwd: &Path, data_dir: &Path, extra: &[&str]) -> Self {
        Self::spawn(cwd, data_dir, extra, Some(JOIN_TOKEN), &[])
    }

    /// Like [`NodeProc::start`] with `env` set for the node.
    pub fn start_with_env(data_dir: &Path, extra: &[&str], env: &[(&str, &str)]) -> Self {
        Self::spawn(Path::new("."), data_dir, extra, Some(JOIN_TOKEN), env)
    }

    /// Like [`NodeProc::start`] without the test cluster's join token: a
    /// founder makes its own, a joiner has none (unless `extra` gives one).
    pub fn start_plain(data_dir: &Path, extra: &[&str]) -> Self {
        Self::spawn(Path::new("."), data_dir, extra, None, &[])
    }

    fn spawn(
        cwd: &Path,
        data_dir: &Path,
        extra: &[&str],
        join_token: Option<&str>,
        env: &[(&str, &str)],
    ) -> Self {
        let mut command = Command::new(node_binary());
        command.env_remove("VIDSHARD_JOIN_TOKEN");
        command.envs(env.iter().copied());
        if let Some(token) = join_token {
            command.env("VIDSHARD_JOIN_TOKEN", token);
        }
        let mut child = command
            .current_dir(cwd)
            .args(["--host", "127.0.0.1"])
            .args(if extra.contains(&"--port") {
                &[][..]
            } else {
                &["--port", "0"][..]
            })
            .arg("--data-dir")
            .arg(data_dir)
            .args(extra)
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start vidshard-node");
        let stderr = child.stderr.take().expect("stderr");
        let log = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let (tx, rx) = mpsc::channel();
        let sink = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(addr) = line.split("listening on ").nth(1) {
                    let _ = tx.send(
                        addr.split_whitespace()
                            .next()
                            .unwrap_or_default()
                            .to_string(),
                    );
                }
                sink.lock().expect("log").push(line);
            }
        });
        let address = rx
            .recv_timeout(Duration::from_secs(30))
            .unwrap_or_else(|_| {
                let _ = child.kill();
                panic!("node did not start: {:?}", log.lock().expect("log"))
            });
        Self {
            child,
            address,
            data_dir: cwd.join(data_dir),
            log,
        }
    }

    pub async fn channel(&self) -> Channel {
        Endpoint::from_shared(format!("http://{}", self.address))
            .expect("endpoint")
            .connect_timeout(Duration::from_secs(5))
            .connect()
            .await
            .expect("connect to node")
    }

    pub fn log_text(&self) -> String {
        self.log.lock().expect("log").join("\n")
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Whether the process is still running.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Sends SIGTERM, waits for the exit status, and answers it with the
    /// whole log (read until the node's last line, "stopped", arrived).
    pub fn terminate_with_log(self) -> (std::process::ExitStatus, String) {
        let log = self.log.clone();
        let status = self.terminate();
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        loop {
            let text = log.lock().expect("log").join("\n");
            if text.contains(" stopped") || std::time::Instant::now() > deadline {
                return (status, text);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Sends SIGTERM without waiting.
    pub fn signal_term(&self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
    }

    /// The exit status, once the process has exited.
    pub fn exit_status(&mut self) -> Option<std::process::ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    /// Sends SIGTERM and waits for the exit status.
    pub fn terminate(mut self) -> std::process::ExitStatus {
        let pid = self.child.id().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        self.child.wait().expect("wait node")
    }
}

impl Drop for NodeProc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
