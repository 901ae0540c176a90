//! Command-line surface of `vidshard`: global flags and subcommands (clap derive).
//!
//! Only parsing lives here; what each subcommand does is in `commands.rs`.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Default node address when neither `--node` nor `VIDSHARD_NODE` is given.
pub const DEFAULT_NODE: &str = "127.0.0.1:50051";

/// Operator console and scriptable client of a vidshard encoding cluster.
///
/// Without a subcommand, opens the live console (press ? in it for keys).
#[derive(Debug, Parser)]
#[command(name = "vidshard", version, about, propagate_version = true)]
pub struct Cli {
    /// Node to talk to (the master, or any node that forwards to it);
    /// several, comma-separated, are tried in turn.
    #[arg(
        long,
        global = true,
        visible_alias = "master",
        env = "VIDSHARD_NODE",
        default_value = DEFAULT_NODE,
        value_name = "HOST:PORT[,HOST:PORT…]"
    )]
    pub node: String,

    /// Print exactly one JSON document on stdout instead of text.
    #[arg(long, global = true)]
    pub json: bool,

    /// The cluster token, when the nodes were started with one.
    #[arg(long, global = true, env = "VIDSHARD_TOKEN", hide_env_values = true)]
    pub token: Option<String>,

    /// CA certificate (PEM) that signed the nodes' certificates, for
    /// clusters running TLS (addresses are then reached over https).
    #[arg(long, global = true, env = "VIDSHARD_TLS_CA", value_name = "PEM")]
    pub tls_ca: Option<PathBuf>,

    /// Client certificate (PEM), for clusters running mutual TLS.
    #[arg(long, global = true, env = "VIDSHARD_TLS_CERT", value_name = "PEM")]
    pub tls_cert: Option<PathBuf>,

    /// The private key of --tls-cert (PEM).
    #[arg(long, global = true, env = "VIDSHARD_TLS_KEY", value_name = "PEM")]
    pub tls_key: Option<PathBuf>,

    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Upload a video as a new job; optionally wait for it and fetch the result.
    Upload(UploadArgs),
    /// Show one job: progress, source, output and its shards.
    Status(StatusArgs),
    /// Download the output of a completed job, verifying its sha256.
    Retrieve(RetrieveArgs),
    /// List the jobs, newest first, with each one's place in the queue,
    /// slots held of its fair share, priority and wait.
    Jobs(JobsArgs),
    /// List the nodes of the cluster with their role and load
    /// (`nodes remove ID` takes one out of the cluster).
    Nodes(NodesArgs),
    /// Move the master (Raft leadership) to another voter: the one named
    /// with --to, or the best-scored live one.
    Elect(ElectArgs),
    /// Delete a job: its record and, on every node, its source, output and
    /// backups (a running job stops).
    Delete(DeleteArgs),
    /// Print a signed URL to watch a ladder job in a browser (HLS with
    /// hls.js; --dash for dash.js), served by the node over HTTP.
    Link(LinkArgs),
}

#[derive(Debug, Args)]
pub struct JobsArgs {
    /// Only jobs in this state: active (queued or running), completed,
    /// failed, or an exact status such as processing.
    #[arg(long, value_name = "STATE")]
    pub state: Option<String>,

    /// At most this many jobs (0: all that fit in one reply); the next
    /// page's token is printed.
    #[arg(long, value_name = "N", default_value_t = 50)]
    pub limit: u32,

    /// Continue a listing where the previous page ended.
    #[arg(long, value_name = "TOKEN")]
    pub page_token: Option<String>,
}

#[derive(Debug, Args)]
pub struct LinkArgs {
    /// The job id.
    pub id: String,
    /// How long the link stays valid, seconds (default 24 hours, at most
    /// 30 days).
    #[arg(long, value_name = "SECONDS")]
    pub ttl: Option<u64>,
    /// The dash.js player page instead of hls.js.
    #[arg(long)]
    pub dash: bool,
}

#[derive(Debug, Args)]
pub struct DeleteArgs {
    /// The job id.
    pub id: String,
}

#[derive(Debug, Args)]
pub struct NodesArgs {
    #[command(subcommand)]
    pub action: Option<NodesAction>,
}

#[derive(Debug, clap::Subcommand)]
pub enum NodesAction {
    /// Remove a node from the cluster: it no longer votes or gets work.
    /// Use it for a machine that is gone for good.
    Remove {
        /// The node's id, as `vidshard nodes` lists it.
        node_id: String,
    },
}

#[derive(Debug, Args)]
pub struct ElectArgs {
    /// Node id to hand leadership to (default: the best-scored live voter).
    #[arg(long, value_name = "NODE_ID")]
    pub to: Option<String>,
}

/// Container of the encoded output.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Mp4,
    Mkv,
    Webm,
    Mov,
}

impl Format {
    /// The name the node expects in `JobParams.output_format`.
    pub fn as_str(self) -> &'static str {
        match self {
            Format::Mp4 => "mp4",
            Format::Mkv => "mkv",
            Format::Webm => "webm",
            Format::Mov => "mov",
        }
    }
}

/// Which audio tracks an upload keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum AudioArg {
    All,
    First,
    None,
}

impl AudioArg {
    pub fn name(self) -> &'static str {
        match self {
            Self::All => "all",
            Self::First => "first",
            Self::None => "none",
        }
    }
}

/// Video codec of the encoded output (docs/codecs.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Codec {
    /// H.264 with libx264 (mp4, mov, mkv).
    H264,
    /// HEVC with libx265, tagged hvc1 in mp4/mov (mp4, mov, mkv).
    Hevc,
    /// AV1 with SVT-AV1 (mp4, mov, mkv, webm).
    Av1,
    /// VP9 with libvpx (webm).
    Vp9,
}

impl Codec {
    /// The name the node expects in `JobParams.codec`.
    pub fn as_str(self) -> &'static str {
        match self {
            Codec::H264 => "h264",
            Codec::Hevc => "hevc",
            Codec::Av1 => "av1",
            Codec::Vp9 => "vp9",
        }
    }
}

/// Pixel format of the encoded output.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum PixFmt {
    /// 10-bit for hevc/av1 when the source has more than 8 bits.
    Auto,
    /// 8-bit 4:2:0.
    Yuv420p,
    /// 10-bit 4:2:0.
    Yuv420p10le,
}

impl PixFmt {
    /// The name the node expects in `JobParams.pix_fmt`.
    pub fn as_str(self) -> &'static str {
        match self {
            PixFmt::Auto => "auto",
            PixFmt::Yuv420p => "yuv420p",
            PixFmt::Yuv420p10le => "yuv420p10le",
        }
    }
}

#[derive(Debug, Args)]
pub struct UploadArgs {
    /// Video file to upload.
    pub file: PathBuf,

    /// Width of the output box (of the picture as displayed); left out,
    /// 0 or -1 keeps the aspect ratio. Neither side: the source size.
    #[arg(long, allow_negative_numbers = true, value_name = "W")]
    pub width: Option<i32>,

    /// Height of the output box; left out, 0 or -1 keeps the aspect ratio.
    #[arg(long, allow_negative_numbers = true, value_name = "H")]
    pub height: Option<i32>,

    /// Output container (the node's default is mp4).
    #[arg(long, value_enum)]
    pub format: Option<Format>,

    /// Video codec (default: h264, or vp9 for webm).
    #[arg(long, value_enum)]
    pub codec: Option<Codec>,

    /// Pixel format (default: auto).
    #[arg(long, value_enum)]
    pub pix_fmt: Option<PixFmt>,

    /// Tone-map an HDR source to SDR (BT.709); without it an HDR source
    /// to an 8-bit output is refused.
    #[arg(long)]
    pub tonemap: bool,

    /// Make no quality report (PSNR/SSIM of every frame against the
    /// source, measured on the workers; it costs about a third of an
    /// x264 veryfast encode's CPU).
    #[arg(long)]
    pub no_quality: bool,

    /// Audio tracks to keep (default: all, with their languages and
    /// titles). Subtitles, chapters and metadata are kept where the
    /// container can carry them.
    #[arg(long, value_enum, value_name = "WHICH")]
    pub audio: Option<AudioArg>,

    /// Target quality: every shard gets the highest CRF whose encode
    /// averages at least this SSIM against the source (0.5..0.9999; up to
    /// 4 encodes of each shard are tried). --crf sets the first try.
    #[arg(long, value_name = "SSIM")]
    pub target_ssim: Option<f64>,

    /// Like --target-ssim, with mean PSNR in dB (20..70).
    #[arg(long, value_name = "DB")]
    pub target_psnr: Option<f64>,

    /// An adaptive-bitrate package (HLS/DASH, watchable while it
    /// encodes) instead of one file: `auto` (the rungs at or below the
    /// source height) or heights like 1080,720,480.
    #[arg(long, value_name = "RUNGS")]
    pub ladder: Option<String>,

    /// Manifests of a ladder: hls, dash or hls,dash (default: both).
    #[arg(long, value_name = "WHICH", requires = "ladder")]
    pub package: Option<String>,

    /// Segment length of a ladder, seconds (default 4).
    #[arg(long, value_name = "S", requires = "ladder")]
    pub segment_seconds: Option<u32>,

    /// Explicit output width that may exceed the source.
    #[arg(long, allow_negative_numbers = true, value_name = "N")]
    pub upscale_width: Option<i32>,

    /// Explicit output height that may exceed the source.
    #[arg(long, allow_negative_numbers = true, value_name = "N")]
    pub upscale_height: Option<i32>,

    /// Encoder speed preset (x264 names, e.g. veryfast, medium; mapped
    /// for SVT-AV1 and VP9).
    #[arg(long, value_name = "P")]
    pub preset: Option<String>,

    /// Constant rate factor (0 = the codec's default: h264 23, hevc 28,
    /// av1 35, vp9 32).
    #[arg(long, allow_negative_numbers = true, value_name = "N")]
    pub crf: Option<i32>,

    /// Weight of the job's share of the encoding slots when jobs compete
    /// (1..100, default 10): a job of 20 gets twice the slots of one of
    /// 10, and starts before older jobs that wait for a turn.
    #[arg(long, value_name = "N")]
    pub priority: Option<u32>,

    /// Wanted job id (the node adds a suffix if it is taken).
    #[arg(long, value_name = "ID")]
    pub id: Option<String>,

    /// Wait for the job and save its output here.
    #[arg(long, short = 'o', value_name = "PATH")]
    pub output: Option<PathBuf>,

    /// Seconds to wait for the job when --output is given.
    #[arg(long, default_value_t = 3600, value_name = "SECS")]
    pub timeout: u64,
}

#[derive(Debug, Args)]
pub struct StatusArgs {
    /// Job id.
    pub id: String,
}

#[derive(Debug, Args)]
pub struct RetrieveArgs {
    /// Job id.
    pub id: String,

    /// Where to save the output (written atomically). A directory (a
    /// path ending in `/`, or one that exists): a ladder job's whole
    /// HLS/DASH package, verified file by file, playable offline (a rerun
    /// fetches only what is missing); a plain job's output as DIR/ID.EXT.
    #[arg(long, short = 'o', value_name = "PATH")]
    pub output: PathBuf,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn negative_sizes_and_master_alias_parse() {
        let cli = Cli::try_parse_from([
            "vidshard",
            "--master",
            "10.0.0.1:6000",
            "upload",
            "in.mp4",
            "--width",
            "-1",
            "--height",
            "720",
            "--format",
            "webm",
        ])
        .expect("valid command line");
        assert_eq!(cli.node, "10.0.0.1:6000");
        let Some(Command::Upload(args)) = cli.command else {
            panic!("expected upload");
        };
        assert_eq!(args.width, Some(-1));
        assert_eq!(args.height, Some(720));
        assert_eq!(args.format, Some(Format::Webm));
        assert_eq!(args.timeout, 3600);
        assert_eq!(args.output, None);
    }

    #[test]
    fn json_is_global_and_retrieve_needs_output() {
        let cli = Cli::try_parse_from(["vidshard", "jobs", "--json"]).expect("valid");
        assert!(cli.json);
        assert!(matches!(
            cli.command,
            Some(Command::Jobs(JobsArgs {
                limit: 50,
                state: None,
                ..
            }))
        ));
        let cli = Cli::try_parse_from(["vidshard", "jobs", "--state", "failed", "--limit", "5"])
            .expect("parse");
        assert!(matches!(
            cli.command,
            Some(Command::Jobs(JobsArgs { limit: 5, state: Some(ref s), .. })) if s == "failed"
        ));
        let cli = Cli::try_parse_from(["vidshard", "elect", "--to", "node-b"]).expect("parse");
        assert!(
            matches!(cli.command, Some(Command::Elect(ElectArgs { to: Some(ref t) })) if t == "node-b")
        );
        let cli = Cli::try_parse_from(["vidshard", "nodes", "remove", "node-c"]).expect("parse");
        assert!(matches!(
            cli.command,
            Some(Command::Nodes(NodesArgs {
                action: Some(NodesAction::Remove { .. })
            }))
        ));
        assert!(Cli::try_parse_from(["vidshard", "retrieve", "abc"]).is_err());
    }
}
