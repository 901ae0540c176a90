//! Command-line configuration of a node, keeping the original system's
//! flags (`--host`, `--port`, `--role`, `--master`, `--nodes`,
//! `--backup-servers`) and adding ours.

use std::path::PathBuf;

use clap::{Parser, ValueEnum};

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Role {
    Master,
    Worker,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
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
    #[arg(long, default_value = "./vidshard-data", env = "VIDSHARD_DATA_DIR")]
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

    /// Log line format: text for terminals, json for log collectors.
    #[arg(long, value_enum, default_value = "text")]
    pub log_format: LogFormat,
}

impl Config {
    /// Where a worker finds its master: `--master`, else the first of `--nodes`.
    pub fn master_address(&self) -> Option<String> {
        self.master
            .clone()
            .or_else(|| self.nodes.first().cloned())
            .filter(|a| !a.is_empty())
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
    fn defaults_are_a_local_master() {
        let c = Config::parse_from(["vidshard-node"]);
        assert_eq!(c.role, Role::Master);
        assert_eq!(c.port, 50051);
        assert_eq!(c.data_dir, PathBuf::from("./vidshard-data"));
        assert!(c.effective_slots() >= 1);
    }
}
