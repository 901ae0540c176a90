//! The config file (`--config node.toml`): the shipped example equals the
//! built-in defaults, the precedence flag > environment > file > default,
//! errors that name the key or the path, and the real binary started from
//! a file (and refusing a bad one).

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use clap::{CommandFactory, FromArgMatches, Parser};
use vidshard_node::config::file::known_keys;
use vidshard_node::config::{Config, FileConfig, LoadError, LogFormat, Role};

/// The variables clap reads for `Config`; cleared for the child processes
/// so the machine's environment cannot change what a test sees.
const ENV_VARS: [&str; 5] = [
    "VIDSHARD_HOST",
    "VIDSHARD_PORT",
    "VIDSHARD_DATA_DIR",
    "VIDSHARD_FFMPEG",
    "VIDSHARD_FFPROBE",
];

fn example_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/node.example.toml")
}

/// `Config::parse_from(["vidshard-node"])` without reading the environment:
/// the built-in defaults.
fn defaults() -> Config {
    let matches = Config::command()
        .mut_args(|a| a.env(None::<&'static str>))
        .get_matches_from(["vidshard-node"]);
    Config::from_arg_matches(&matches).expect("defaults")
}

fn write_file(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).expect("write config file");
    path
}

fn load(args: &[&str]) -> Result<Config, LoadError> {
    Config::load_from(std::iter::once("vidshard-node").chain(args.iter().copied()))
}

fn file_error(args: &[&str]) -> vidshard_node::config::FileError {
    match load(args) {
        Err(LoadError::File(e)) => e,
        other => panic!("expected a config file error, got {other:?}"),
    }
}

#[test]
fn the_example_file_is_exactly_the_defaults() {
    let text = std::fs::read_to_string(example_path()).expect("read the example");
    let parsed = FileConfig::parse(&text, "node.example.toml").expect("the example parses");
    let defaults = defaults();
    assert_eq!(
        defaults.port,
        Config::parse_from(["vidshard-node"]).port,
        "sanity: no VIDSHARD_PORT here"
    );
    // Every key but the optional `master`, `advertise`, `metrics_addr` and `http_addr` is set, to the default value.
    assert_eq!(parsed, FileConfig::from_config(&defaults));
    assert_eq!(defaults.master, None);
    assert_eq!(defaults.advertise, None);
    assert_eq!(defaults.metrics_addr, None);
    assert_eq!(defaults.http_addr, None);
    assert_eq!(defaults.token, None);
    let table: toml::Table = text.parse().expect("toml");
    for key in known_keys() {
        if [
            "master",
            "advertise",
            "metrics_addr",
            "http_addr",
            "token",
            "join_token",
            "join_token_file",
            "clients",
            "original_clients",
            "tls_cert",
            "tls_key",
            "tls_ca",
        ]
        .contains(&key.as_str())
        {
            assert!(
                text.lines().any(|l| l.starts_with(&format!("# {key} = "))),
                "the example shows `{key}` commented out"
            );
        } else {
            assert!(table.contains_key(&key), "the example lacks {key}");
            let commented = text
                .lines()
                .position(|l| l.starts_with(&format!("{key} =")))
                .is_some_and(|i| {
                    i > 0 && text.lines().nth(i - 1).is_some_and(|p| p.starts_with('#'))
                });
            assert!(
                commented || key == "ffprobe",
                "{key} has no comment above it"
            );
        }
    }
    // And loading it through --config changes nothing.
    let dir = tempfile::tempdir().expect("tempdir");
    let path = write_file(dir.path(), "node.toml", &text);
    let loaded = load(&["--config", path.to_str().expect("utf8")]).expect("load");
    assert_eq!(
        FileConfig::from_config(&loaded),
        FileConfig::from_config(&Config::parse_from(["vidshard-node"]))
    );
}

#[test]
fn a_flag_beats_the_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = write_file(
        dir.path(),
        "node.toml",
        "port = 7000\nrole = \"worker\"\nnodes = [\"f:1\"]\nshard_seconds = 3\n",
    );
    let c = load(&[
        "--config",
        path.to_str().expect("utf8"),
        "--port",
        "6000",
        "--nodes",
        "a:1,b:2",
        "--role",
        "master",
    ])
    .expect("load");
    assert_eq!(c.port, 6000);
    assert_eq!(c.nodes, ["a:1", "b:2"]);
    assert_eq!(
        c.role,
        Role::Master,
        "a flag equal to the default still wins"
    );
    assert_eq!(
        c.shard_seconds, 3.0,
        "keys without a flag come from the file"
    );
    assert_eq!(c.config.as_deref(), Some(path.as_path()));
}

#[test]
fn the_file_beats_the_defaults() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = write_file(
        dir.path(),
        "node.toml",
        r#"
        role = "worker"
        master = "10.0.0.1:50051"
        backup_servers = ["x:1", "y:2"]
        data_dir = "/srv/vidshard"
        slots = 3
        shard_seconds = 6.5
        max_upload_bytes = 1048576
        dead_after = 2
        log_format = "json"
        "#,
    );
    let c = load(&["--config", path.to_str().expect("utf8")]).expect("load");
    assert_eq!(c.role, Role::Worker);
    assert_eq!(c.master.as_deref(), Some("10.0.0.1:50051"));
    assert_eq!(c.master_address().as_deref(), Some("10.0.0.1:50051"));
    assert_eq!(c.backup_servers, ["x:1", "y:2"]);
    assert_eq!(c.data_dir, PathBuf::from("/srv/vidshard"));
    assert_eq!(c.slots, 3);
    assert_eq!(c.shard_seconds, 6.5);
    assert_eq!(c.max_upload_bytes, 1 << 20);
    assert_eq!(c.dead_after, 2.0);
    assert_eq!(c.log_format, LogFormat::Json);
    assert_eq!(
        c.port,
        defaults().port,
        "what the file lacks keeps its default"
    );
}

#[test]
fn an_unknown_key_is_named_with_the_likely_one() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = write_file(dir.path(), "node.toml", "port = 1\nshard_secs = 5\n");
    let e = file_error(&["--config", path.to_str().expect("utf8")]);
    assert_eq!(e.key.as_deref(), Some("shard_secs"));
    assert_eq!(
        e.to_string(),
        format!(
            "{}: unknown key \"shard_secs\" (did you mean \"shard_seconds\"?)",
            path.display()
        )
    );
}

#[test]
fn a_wrong_type_is_named_with_what_it_must_be() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = write_file(dir.path(), "node.toml", "port = \"abc\"\n");
    let e = file_error(&["--config", path.to_str().expect("utf8")]);
    assert_eq!(e.key.as_deref(), Some("port"));
    assert_eq!(
        e.to_string(),
        format!(
            "{}: \"port\" must be an integer 0..=65535, got \"abc\"",
            path.display()
        )
    );
    let path = write_file(dir.path(), "nodes.toml", "nodes = \"a:1,b:2\"\n");
    let e = file_error(&["--config", path.to_str().expect("utf8")]);
    assert_eq!(e.key.as_deref(), Some("nodes"));
    assert!(
        e.message.contains("an array of \"HOST:PORT\" strings"),
        "{e}"
    );
}

#[test]
fn a_missing_file_is_named() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("absent.toml");
    let e = file_error(&["--config", path.to_str().expect("utf8")]);
    let text = e.to_string();
    assert!(
        text.starts_with(&format!("{}: cannot read the config file", path.display())),
        "{text}"
    );
}

/// A node process and its stderr lines; killed when dropped.
struct Running {
    child: Child,
    log: Arc<Mutex<Vec<String>>>,
    address: String,
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn node_command(cwd: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_vidshard-node"));
    cmd.current_dir(cwd)
        .args(args)
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    for var in ENV_VARS {
        cmd.env_remove(var);
    }
    cmd
}

/// Starts the node and waits for its "listening on ADDRESS" line.
fn start(mut cmd: Command) -> Running {
    let mut child = cmd.spawn().expect("start vidshard-node");
    let stderr = child.stderr.take().expect("stderr");
    let log = Arc::new(Mutex::new(Vec::new()));
    let sink = log.clone();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if let Some(rest) = line.split("listening on ").nth(1) {
                let address: String = rest
                    .chars()
                    .take_while(|c| !c.is_whitespace() && *c != '"')
                    .collect();
                let _ = tx.send(address);
            }
            sink.lock().expect("log").push(line);
        }
    });
    match rx.recv_timeout(Duration::from_secs(30)) {
        Ok(address) => Running {
            child,
            log,
            address,
        },
        Err(_) => {
            let _ = child.kill();
            let status = child.wait().ok();
            panic!(
                "node did not start ({status:?}): {:?}",
                log.lock().expect("log")
            )
        }
    }
}

/// Runs the node to its exit (it must exit within 20 s): status and stderr.
fn run_to_exit(mut cmd: Command) -> (std::process::ExitStatus, String) {
    let mut child = cmd.spawn().expect("start vidshard-node");
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("vidshard-node kept running on a bad config file");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().expect("stderr"), &mut stderr)
        .expect("read stderr");
    (status, stderr)
}

#[test]
fn the_binary_starts_from_a_config_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let path = write_file(
        dir.path(),
        "node.toml",
        &format!(
            "host = \"127.0.0.1\"\nport = 0\ndata_dir = \"{}\"\nslots = 1\n",
            data.display()
        ),
    );
    let node = start(node_command(
        dir.path(),
        &["--config", path.to_str().expect("utf8")],
    ));
    assert!(node.address.starts_with("127.0.0.1:"), "{}", node.address);
    assert_ne!(node.address, "127.0.0.1:0", "port 0 picks a free port");
    assert!(
        data.join("node-id").exists(),
        "the data dir comes from the file"
    );
    let log = node.log.lock().expect("log").join("\n");
    assert!(log.contains("read the config file"), "{log}");
}

#[test]
fn the_binary_prefers_flags_and_environment_to_the_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (file_dir, env_dir, flag_dir) = (
        dir.path().join("file-data"),
        dir.path().join("env-data"),
        dir.path().join("flag-data"),
    );
    let path = write_file(
        dir.path(),
        "node.toml",
        &format!(
            "port = 0\ndata_dir = \"{}\"\nlog_format = \"json\"\n",
            file_dir.display()
        ),
    );
    let config = path.to_str().expect("utf8");

    let mut cmd = node_command(dir.path(), &["--config", config]);
    cmd.env("VIDSHARD_DATA_DIR", &env_dir);
    let node = start(cmd);
    assert!(env_dir.join("node-id").exists(), "environment beats file");
    assert!(!file_dir.exists());
    let first = node.log.lock().expect("log")[0].clone();
    assert!(
        first.starts_with('{'),
        "file beats default: JSON logs: {first}"
    );
    drop(node);

    let flag = flag_dir.to_str().expect("utf8");
    let mut cmd = node_command(
        dir.path(),
        &[
            "--config",
            config,
            "--data-dir",
            flag,
            "--log-format",
            "text",
        ],
    );
    cmd.env("VIDSHARD_DATA_DIR", &env_dir);
    let node = start(cmd);
    assert!(flag_dir.join("node-id").exists(), "flag beats environment");
    assert!(!file_dir.exists());
    let first = node.log.lock().expect("log")[0].clone();
    assert!(
        !first.starts_with('{'),
        "flag beats file: text logs: {first}"
    );
}

#[test]
fn the_binary_refuses_a_bad_file_naming_the_key() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let path = write_file(
        dir.path(),
        "node.toml",
        &format!(
            "port = 0\ndata_dir = \"{}\"\nshard_secs = 5\n",
            data.display()
        ),
    );
    let (status, stderr) = run_to_exit(node_command(
        dir.path(),
        &["--config", path.to_str().expect("utf8")],
    ));
    assert!(!status.success(), "exit status {status}: {stderr}");
    assert!(stderr.contains("\"shard_secs\""), "{stderr}");
    assert!(
        stderr.contains("did you mean \"shard_seconds\""),
        "{stderr}"
    );
    assert!(stderr.contains(&path.display().to_string()), "{stderr}");
    assert!(!data.exists(), "nothing was started");

    let path = write_file(dir.path(), "port.toml", "port = \"abc\"\n");
    let (status, stderr) = run_to_exit(node_command(
        dir.path(),
        &["--config", path.to_str().expect("utf8")],
    ));
    assert!(!status.success(), "exit status {status}: {stderr}");
    assert!(stderr.contains("\"port\" must be an integer"), "{stderr}");

    let missing = dir.path().join("missing.toml");
    let (status, stderr) = run_to_exit(node_command(
        dir.path(),
        &["--config", missing.to_str().expect("utf8")],
    ));
    assert!(!status.success(), "exit status {status}: {stderr}");
    assert!(stderr.contains(&missing.display().to_string()), "{stderr}");
}
