//! Configuration of a node: command-line flags, keeping the original
//! system's (`--host`, `--port`, `--role`, `--master`, `--nodes`,
//! `--backup-servers`) and adding ours, plus an optional config file
//! (`--config node.toml`, see [`file`]).
//!
//! Precedence, per setting: command-line flag > environment variable >
//! config file > built-in default. [`Config::load_from`] parses with clap,
//! then [`merge`] takes the file's value for every argument clap did not
//! get from the command line or the environment.

pub mod access;
pub mod file;

use std::collections::BTreeSet;
use std::ffi::OsString;
use std::path::PathBuf;

use clap::parser::ValueSource;
use clap::{ArgMatches, CommandFactory, FromArgMatches, Parser, ValueEnum};
use serde::{Deserialize, Serialize};

pub use access::{ClientAccess, OriginalClientAccess, OriginalPeers};
pub use file::{FileConfig, FileError};

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Master,
    Worker,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

/// vidshard-node: one daemon per machine; the master splits, schedules and
/// joins, every node encodes shards.
#[derive(Debug, Clone, Parser)]
#[command(name = "vidshard-node", version, about)]
pub struct Config {
    /// Address to listen on. Use 0.0.0.0 to serve other machines (then set
    /// up TLS and a token, or keep the network trusted).
    #[arg(long, default_value = "127.0.0.1", env = "VIDSHARD_HOST")]
    pub host: String,

    /// Port for every gRPC service (0 picks a free one and logs it).
    #[arg(long, default_value_t = 50051, env = "VIDSHARD_PORT")]
    pub port: u16,

    /// HOST:PORT other nodes and clients reach this node at. Default:
    /// --host:port, or this machine's hostname when --host is 0.0.0.0/::.
    #[arg(long)]
    pub advertise: Option<String>,

    /// Starting role; the master is the node clients upload to.
    #[arg(long, value_enum, default_value = "master")]
    pub role: Role,

    /// The master's HOST:PORT (for workers).
    #[arg(long)]
    pub master: Option<String>,

    /// Other nodes, space- or comma-separated HOST:PORT list.
    #[arg(long, num_args = 1.., value_delimiter = ',')]
    pub nodes: Vec<String>,

    /// Preferred backup holders, space- or comma-separated HOST:PORT list.
    #[arg(long = "backup-servers", num_args = 1.., value_delimiter = ',')]
    pub backup_servers: Vec<String>,

    /// Where blobs, shards and outputs live.
    #[arg(
        long,
        default_value = "./vidshard-data",
        env = "VIDSHARD_DATA_DIR",
        global = true
    )]
    pub data_dir: PathBuf,

    /// Shards encoded at once on this node (0 = one per core).
    #[arg(long, default_value_t = 0)]
    pub slots: u32,

    /// Target shard length in seconds (cuts land on keyframes near it).
    #[arg(long, default_value_t = 10.0)]
    pub shard_seconds: f64,

    /// Largest upload accepted, in bytes.
    #[arg(long, default_value_t = 64 << 30)]
    pub max_upload_bytes: u64,

    /// ffmpeg binary.
    #[arg(long, default_value = "ffmpeg", env = "VIDSHARD_FFMPEG")]
    pub ffmpeg: PathBuf,

    /// ffprobe binary.
    #[arg(long, default_value = "ffprobe", env = "VIDSHARD_FFPROBE")]
    pub ffprobe: PathBuf,

    /// Seconds without a heartbeat after which the master marks a worker dead.
    #[arg(long, default_value_t = 5.0)]
    pub dead_after: f64,

    /// Uploads received at once; more are refused with RESOURCE_EXHAUSTED.
    #[arg(long, default_value_t = 16)]
    pub max_uploads: u32,

    /// Raft voters the cluster grows to (kept odd); further nodes join as
    /// learners and still work.
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..=99))]
    pub max_voters: u32,

    /// Copies of every finished output kept besides the master's (capped
    /// by the number of other live nodes); `--backup-servers` are
    /// preferred holders.
    #[arg(long, default_value_t = 2)]
    pub backup_replicas: u32,

    /// Hours an uploaded source is kept after its job ended (0: deleted at
    /// once); a failed job's record is forgotten then too; encoded shards
    /// are deleted when their job ends.
    #[arg(long, default_value_t = 24.0)]
    pub keep_sources: f64,

    /// Days a completed job's record is kept after it ended; then it is
    /// deleted like `vidshard delete` does, output and all, on every node
    /// (0: kept for ever). Keeps the job table bounded on a busy fleet.
    #[arg(long, default_value_t = 0.0)]
    pub keep_jobs: f64,

    /// Seconds between scrubs: each node re-hashes the blobs it holds
    /// (one at a time, at most 64 MB/s) and reports damaged ones.
    #[arg(long, default_value_t = 600.0)]
    pub scrub_every: f64,

    /// Seconds an upload may go without a chunk before it is dropped.
    #[arg(long, default_value_t = 60.0)]
    pub upload_idle_seconds: f64,

    /// Log line format: text for terminals, json for log collectors.
    #[arg(long, value_enum, default_value = "text")]
    pub log_format: LogFormat,

    /// HOST:PORT to serve Prometheus metrics on (GET /metrics over plain
    /// HTTP). Off when unset.
    #[arg(long)]
    pub metrics_addr: Option<String>,

    /// HOST:PORT to serve ladder jobs over HTTP on: HLS and DASH
    /// manifests, segments and a player page, under signed links
    /// (`vidshard link ID`); port 0 picks a free one (logged, and written
    /// to <data-dir>/http.addr). Off when unset.
    #[arg(long)]
    pub http_addr: Option<String>,

    /// The operator token (admin RPCs: delete, elect, remove; and client
    /// RPCs under `--clients token`), sent as `authorization: Bearer …`.
    /// Default: derived from the join token (`vidshard-node token
    /// --operator` prints it). Setting it also makes `--clients` and
    /// `--original-clients` default to `token`.
    #[arg(long, env = "VIDSHARD_TOKEN", hide_env_values = true, global = true)]
    pub token: Option<String>,

    /// The cluster's join token: nodes prove themselves to each other
    /// with it (Raft, shard transfer, heartbeats, backups). The first node
    /// makes one in its data dir; other nodes need it to join
    /// (`vidshard-node token --data-dir DIR` on a member prints it).
    #[arg(
        long,
        env = "VIDSHARD_JOIN_TOKEN",
        hide_env_values = true,
        global = true
    )]
    pub join_token: Option<String>,

    /// A file whose first line is the join token (for secret stores and
    /// systemd credentials); --join-token wins over it.
    #[arg(
        long,
        value_name = "FILE",
        env = "VIDSHARD_JOIN_TOKEN_FILE",
        global = true
    )]
    pub join_token_file: Option<PathBuf>,

    /// Who may upload, watch, list and retrieve (vidshard.v1): open (anyone,
    /// like the original client) or token (the operator token). Default:
    /// token when --token is set, else open.
    #[arg(long, value_enum)]
    pub clients: Option<ClientAccess>,

    /// The original client's RPCs (upload, status, retrieve): open, token,
    /// or off. Default: token when --token is set, else open.
    #[arg(long, value_enum)]
    pub original_clients: Option<OriginalClientAccess>,

    /// Original workers and masters (they carry no token): any, off, or a
    /// comma-separated list of the hosts allowed. They only get shards
    /// whose results are checked, never vote and never hold our backups.
    #[arg(long, default_value = "any")]
    pub original_peers: OriginalPeers,

    /// This node's TLS certificate (PEM, may include the chain): with
    /// --tls-key, every service is served over TLS only and other nodes
    /// are reached over TLS. It must name the host other nodes and
    /// clients use (--advertise).
    #[arg(long, value_name = "PEM", env = "VIDSHARD_TLS_CERT")]
    pub tls_cert: Option<PathBuf>,

    /// The private key of --tls-cert (PEM).
    #[arg(long, value_name = "PEM", env = "VIDSHARD_TLS_KEY")]
    pub tls_key: Option<PathBuf>,

    /// CA certificate(s) (PEM) trusted for other nodes' certificates
    /// (default: the public web roots); with --mtls also the CA callers'
    /// certificates must be signed by.
    #[arg(long, value_name = "PEM", env = "VIDSHARD_TLS_CA")]
    pub tls_ca: Option<PathBuf>,

    /// Mutual TLS: refuse callers without a certificate signed by
    /// --tls-ca (nodes present their own --tls-cert to each other).
    #[arg(long)]
    pub mtls: bool,

    /// Start even when serving TLS beyond loopback with no authentication
    /// (no --token, no --mtls): anyone who reaches the port could then
    /// steer the cluster over an encrypted channel.
    #[arg(long)]
    pub insecure: bool,

    /// Seconds a stopping node lets its running encodes finish and hand
    /// their results over; encodes still running then are stopped and
    /// handed back to the master at once.
    #[arg(long, default_value_t = 30.0)]
    pub drain_timeout: f64,

    /// Most memory (address space, MiB) one ffmpeg/ffprobe may map; an
    /// encode that needs more fails naming this limit. 0 = three quarters
    /// of the machine's memory shared among the slots, at least 4096.
    #[arg(long, default_value_t = 0)]
    pub encoder_memory_mb: u64,

    /// Config file (TOML): one key per flag, named with `_` for `-`
    /// (data_dir = "/var/lib/vidshard"). Flags and VIDSHARD_* environment
    /// variables override it; it overrides the built-in defaults.
    #[arg(long, value_name = "FILE", global = true)]
    pub config: Option<PathBuf>,

    #[command(subcommand)]
    pub command: Option<NodeCommand>,
}

/// What `vidshard-node` does instead of running a node.
#[derive(Debug, Clone, clap::Subcommand)]
pub enum NodeCommand {
    /// Print this cluster's join token (give it to new nodes with
    /// --join-token), or with --operator the operator token (give it to
    /// the vidshard CLI and console with --token / VIDSHARD_TOKEN).
    Token {
        /// Print the operator token instead of the join token.
        #[arg(long)]
        operator: bool,
    },
    /// (Internal) started by a node: waits until the node is gone, then
    /// kills the encoders it left running.
    #[command(hide = true)]
    Reap,
}

/// Why the configuration could not be built.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// Bad flags, or `--help`/`--version`: let clap print it and exit
    /// (`clap::Error::exit`).
    #[error(transparent)]
    Cli(#[from] clap::Error),
    /// The config file is missing, unreadable or invalid.
    #[error(transparent)]
    File(#[from] FileError),
}

/// The arguments whose value came from the command line or the
/// environment (which beat the config file), by clap id (= file key).
pub fn explicit_args(matches: &ArgMatches) -> BTreeSet<String> {
    matches
        .ids()
        .filter(|id| {
            matches!(
                matches.value_source(id.as_str()),
                Some(ValueSource::CommandLine | ValueSource::EnvVariable)
            )
        })
        .map(|id| id.as_str().to_string())
        .collect()
}

/// `cli` with every setting the file has and `explicit` lacks taken from
/// `file`: flag > environment > file > default, as `cli` already holds the
/// flag, environment or default value of each setting.
pub fn merge(cli: Config, explicit: &BTreeSet<String>, file: FileConfig) -> Config {
    let mut config = cli;
    // Destructured whole, so a new key cannot be left out of the merge.
    let FileConfig {
        host,
        port,
        advertise,
        role,
        master,
        nodes,
        backup_servers,
        data_dir,
        slots,
        shard_seconds,
        max_upload_bytes,
        ffmpeg,
        ffprobe,
        dead_after,
        max_uploads,
        max_voters,
        backup_replicas,
        keep_sources,
        keep_jobs,
        scrub_every,
        upload_idle_seconds,
        log_format,
        metrics_addr,
        http_addr,
        token,
        join_token,
        join_token_file,
        clients,
        original_clients,
        original_peers,
        tls_cert,
        tls_key,
        tls_ca,
        mtls,
        insecure,
        drain_timeout,
        encoder_memory_mb,
    } = file;
    macro_rules! fill {
        ($($key:ident),* $(,)?) => {$(
            if let Some(value) = $key {
                if !explicit.contains(stringify!($key)) {
                    config.$key = value;
                }
            }
        )*};
    }
    fill!(
        host,
        port,
        role,
        nodes,
        backup_servers,
        data_dir,
        slots,
        shard_seconds,
        max_upload_bytes,
        ffmpeg,
        ffprobe,
        dead_after,
        max_uploads,
        max_voters,
        backup_replicas,
        keep_sources,
        keep_jobs,
        scrub_every,
        upload_idle_seconds,
        log_format,
        mtls,
        insecure,
        drain_timeout,
        original_peers,
        encoder_memory_mb,
    );
    if master.is_some() && !explicit.contains("master") {
        config.master = master;
    }
    if advertise.is_some() && !explicit.contains("advertise") {
        config.advertise = advertise;
    }
    if token.is_some() && !explicit.contains("token") && config.token.is_none() {
        config.token = token;
    }
    if join_token.is_some() && !explicit.contains("join_token") {
        config.join_token = join_token;
    }
    if join_token_file.is_some() && !explicit.contains("join_token_file") {
        config.join_token_file = join_token_file;
    }
    if clients.is_some() && !explicit.contains("clients") {
        config.clients = clients;
    }
    if original_clients.is_some() && !explicit.contains("original_clients") {
        config.original_clients = original_clients;
    }
    if metrics_addr.is_some() && !explicit.contains("metrics_addr") {
        config.metrics_addr = metrics_addr;
    }
    if http_addr.is_some() && !explicit.contains("http_addr") {
        config.http_addr = http_addr;
    }
    if tls_cert.is_some() && !explicit.contains("tls_cert") {
        config.tls_cert = tls_cert;
    }
    if tls_key.is_some() && !explicit.contains("tls_key") {
        config.tls_key = tls_key;
    }
    if tls_ca.is_some() && !explicit.contains("tls_ca") {
        config.tls_ca = tls_ca;
    }
    config
}

impl Config {
    /// The configuration of this process: its arguments, environment and
    /// `--config` file.
    pub fn load() -> Result<Config, LoadError> {
        Self::load_from(std::env::args_os())
    }

    /// Like [`Config::load`] with these arguments (the first is the
    /// program name); reads the environment and the `--config` file.
    pub fn load_from<I, T>(args: I) -> Result<Config, LoadError>
    where
        I: IntoIterator<Item = T>,
        T: Into<OsString> + Clone,
    {
        let mut command = Config::command();
        let matches = command.try_get_matches_from_mut(args)?;
        let cli = Config::from_arg_matches(&matches).map_err(|e| e.format(&mut command))?;
        let Some(path) = cli.config.clone() else {
            return Ok(cli);
        };
        let file = FileConfig::read(&path)?;
        Ok(merge(cli, &explicit_args(&matches), file))
    }

    /// The address this node announces for `port` (the bound port): see
    /// `--advertise`.
    pub fn advertised_address(&self, port: u16) -> String {
        if let Some(address) = self.advertise.clone().filter(|a| !a.is_empty()) {
            return address;
        }
        let host = match self.host.as_str() {
            "0.0.0.0" | "::" | "[::]" | "" => {
                sysinfo::System::host_name().unwrap_or_else(|| "localhost".into())
            }
            h if h.contains(':') && !h.starts_with('[') => format!("[{h}]"),
            h => h.to_string(),
        };
        format!("{host}:{port}")
    }

    /// Where a worker finds its master: `--master`, else the first of `--nodes`.
    pub fn master_address(&self) -> Option<String> {
        self.master
            .clone()
            .or_else(|| self.nodes.first().cloned())
            .filter(|a| !a.is_empty())
    }

    /// Where to ask to join the cluster: `--master` and `--nodes`, minus
    /// this node's own address.
    pub fn seed_addresses(&self, own_address: &str) -> Vec<String> {
        let mut seeds: Vec<String> = Vec::new();
        for address in self.master.iter().chain(self.nodes.iter()) {
            if !address.is_empty() && address != own_address && !seeds.contains(address) {
                seeds.push(address.clone());
            }
        }
        seeds
    }

    /// Who may call client RPCs: `--clients`, else token when `--token`
    /// is set, else open.
    pub fn client_access(&self) -> ClientAccess {
        self.clients.unwrap_or(match self.token {
            Some(_) => ClientAccess::Token,
            None => ClientAccess::Open,
        })
    }

    /// Who may call the original client's RPCs (like [`Config::client_access`]).
    pub fn original_client_access(&self) -> OriginalClientAccess {
        self.original_clients.unwrap_or(match self.token {
            Some(_) => OriginalClientAccess::Token,
            None => OriginalClientAccess::Open,
        })
    }

    /// True when this node founds a cluster rather than joining one.
    pub fn founds_cluster(&self) -> bool {
        self.role == Role::Master || self.master_address().is_none()
    }

    /// Parallel encodes: `--slots`, or one per core.
    pub fn effective_slots(&self) -> u32 {
        if self.slots > 0 {
            return self.slots;
        }
        std::thread::available_parallelism()
            .map(|n| n.get() as u32)
            .unwrap_or(1)
    }

    /// Threads each encoder may use so that all slots together fill the cores.
    pub fn encoder_threads(&self) -> u32 {
        let cores = std::thread::available_parallelism()
            .map(|n| n.get() as u32)
            .unwrap_or(1);
        (cores / self.effective_slots()).max(1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn original_flags_parse_space_or_comma_separated() {
        let c = Config::parse_from([
            "vidshard-node",
            "--host",
            "0.0.0.0",
            "--port",
            "6000",
            "--role",
            "worker",
            "--master",
            "m:50051",
            "--nodes",
            "a:1",
            "b:2,c:3",
            "--backup-servers",
            "x:1,y:2",
        ]);
        assert_eq!(c.role, Role::Worker);
        assert_eq!(c.port, 6000);
        assert_eq!(c.master.as_deref(), Some("m:50051"));
        assert_eq!(c.nodes, ["a:1", "b:2", "c:3"]);
        assert_eq!(c.backup_servers, ["x:1", "y:2"]);
    }

    #[test]
    fn advertised_address_is_reachable() {
        let c = Config::parse_from(["vidshard-node", "--host", "10.0.0.5"]);
        assert_eq!(c.advertised_address(6000), "10.0.0.5:6000");
        let c = Config::parse_from(["vidshard-node", "--host", "0.0.0.0"]);
        assert!(!c.advertised_address(6000).starts_with("0.0.0.0"));
        assert!(c.advertised_address(6000).ends_with(":6000"));
        let c = Config::parse_from(["vidshard-node", "--host", "::1"]);
        assert_eq!(c.advertised_address(7), "[::1]:7");
        let c = Config::parse_from([
            "vidshard-node",
            "--host",
            "0.0.0.0",
            "--advertise",
            "n1.example:50051",
        ]);
        assert_eq!(c.advertised_address(6000), "n1.example:50051");
    }

    #[test]
    fn defaults_are_a_local_master() {
        let c = Config::parse_from(["vidshard-node"]);
        assert_eq!(c.role, Role::Master);
        assert_eq!(c.port, 50051);
        assert_eq!(c.data_dir, PathBuf::from("./vidshard-data"));
        assert!(c.effective_slots() >= 1);
        assert_eq!(c.config, None);
    }

    fn set(keys: &[&str]) -> BTreeSet<String> {
        keys.iter().map(|k| k.to_string()).collect()
    }

    fn file(text: &str) -> FileConfig {
        FileConfig::parse(text, "node.toml").expect("parse")
    }

    #[test]
    fn the_file_beats_defaults() {
        let cli = Config::parse_from(["vidshard-node"]);
        let c = merge(
            cli,
            &set(&[]),
            file(
                "port = 7000\nrole = \"worker\"\nmaster = \"m:1\"\nnodes = [\"a:1\"]\nshard_seconds = 4\nlog_format = \"json\"",
            ),
        );
        assert_eq!(c.port, 7000);
        assert_eq!(c.role, Role::Worker);
        assert_eq!(c.master.as_deref(), Some("m:1"));
        assert_eq!(c.nodes, ["a:1"]);
        assert_eq!(c.shard_seconds, 4.0);
        assert_eq!(c.log_format, LogFormat::Json);
        assert_eq!(
            c.host, "127.0.0.1",
            "keys the file lacks keep their default"
        );
    }

    #[test]
    fn flags_and_environment_beat_the_file() {
        let cli = Config::parse_from([
            "vidshard-node",
            "--port",
            "6000",
            "--master",
            "cli:1",
            "--nodes",
            "x:1",
        ]);
        let explicit = set(&["port", "master", "nodes", "host"]);
        let c = merge(
            cli,
            &explicit,
            file("port = 7000\nmaster = \"file:1\"\nnodes = []\nhost = \"0.0.0.0\"\nslots = 3"),
        );
        assert_eq!(c.port, 6000);
        assert_eq!(c.master.as_deref(), Some("cli:1"));
        assert_eq!(c.nodes, ["x:1"]);
        assert_eq!(c.host, "127.0.0.1", "host came from the environment");
        assert_eq!(c.slots, 3);
    }

    #[test]
    fn explicit_args_are_the_flags_given() {
        let matches = Config::command()
            .try_get_matches_from([
                "vidshard-node",
                "--port",
                "1",
                "--nodes",
                "a:1",
                "--role",
                "master",
            ])
            .expect("parse");
        let explicit = explicit_args(&matches);
        assert!(explicit.contains("port"));
        assert!(explicit.contains("nodes"));
        assert!(
            explicit.contains("role"),
            "given even though equal to the default"
        );
        assert!(!explicit.contains("shard_seconds"));
        assert!(!explicit.contains("master"));
    }

    #[test]
    fn load_without_config_is_plain_parsing() {
        let c = Config::load_from(["vidshard-node", "--slots", "2"]).expect("load");
        assert_eq!(c.slots, 2);
        assert!(matches!(
            Config::load_from(["vidshard-node", "--port", "x"]),
            Err(LoadError::Cli(_))
        ));
    }
}
