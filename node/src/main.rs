//! vidshard-node binary: read flags, environment and `--config` file, set
//! up logging, run until SIGTERM or Ctrl-C (a second signal exits at once).

use tokio_util::sync::CancellationToken;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::prelude::*;
use vidshard_node::cluster::credentials;
use vidshard_node::config::{Config, LoadError, LogFormat, NodeCommand};
use vidshard_node::events::EventLog;

/// Logs to stderr (text or JSON) and keeps recent events for consoles.
fn init_logging(format: LogFormat, events: &EventLog) {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info,openraft=warn"));
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let fmt = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(ansi);
    let registry = tracing_subscriber::registry().with(events.layer());
    match format {
        LogFormat::Text => registry.with(fmt.with_filter(filter)).init(),
        LogFormat::Json => registry.with(fmt.json().with_filter(filter)).init(),
    }
}

/// Puts every ffmpeg/ffprobe this node starts under the memory limit of
/// `--encoder-memory-mb` (see `media::limit`).
async fn limit_encoders(config: &Config) {
    use vidshard_node::media::limit;
    let machine = tokio::task::spawn_blocking(limit::machine_memory)
        .await
        .unwrap_or(0);
    let bytes = limit::limit_for(config.encoder_memory_mb, machine, config.effective_slots());
    limit::set_memory_limit(Some(bytes));
    tracing::info!(
        "each ffmpeg/ffprobe may map at most {} MiB (--encoder-memory-mb {})",
        bytes >> 20,
        config.encoder_memory_mb
    );
}

async fn wait_for_signals(shutdown: CancellationToken) {
    let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(error = %e, "cannot listen for SIGTERM");
            return;
        }
    };
    for round in 0..2 {
        tokio::select! {
            _ = term.recv() => {}
            _ = tokio::signal::ctrl_c() => {}
        }
        if round == 0 {
            tracing::info!("stop signal received; shutting down (signal again to exit at once)");
            shutdown.cancel();
        } else {
            tracing::warn!("second stop signal: exiting now");
            std::process::exit(130);
        }
    }
}

/// `vidshard-node token [--operator]`: prints the join token kept in the
/// data dir (or given), or the operator token (`--token`, else derived).
async fn print_token(config: &Config, operator: bool) -> std::process::ExitCode {
    let given = credentials::given_secret(
        config.join_token.as_deref(),
        config.join_token_file.as_deref(),
    )
    .await;
    let kept = credentials::read_secret(&config.data_dir).await;
    let secret = match (given, kept) {
        (Err(e), _) | (_, Err(e)) => {
            eprintln!("vidshard-node: {e}");
            return std::process::ExitCode::FAILURE;
        }
        (Ok(given), Ok(kept)) => kept.or(given),
    };
    let printed = match (operator, config.token.clone(), secret) {
        (true, Some(token), _) => token,
        (true, None, Some(secret)) => credentials::operator_token(&secret),
        (false, _, Some(secret)) => secret,
        (_, _, None) => {
            eprintln!(
                "vidshard-node: {} holds no join token ({}): run this on a member of the cluster with its --data-dir (a node makes its token when it founds a cluster)",
                config.data_dir.display(),
                credentials::SECRET_FILE
            );
            return std::process::ExitCode::FAILURE;
        }
    };
    println!("{printed}");
    std::process::ExitCode::SUCCESS
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let config = match Config::load() {
        Ok(config) => config,
        Err(LoadError::Cli(e)) => e.exit(),
        Err(e) => {
            eprintln!("vidshard-node: {e}");
            return std::process::ExitCode::from(2);
        }
    };
    match &config.command {
        Some(NodeCommand::Token { operator }) => return print_token(&config, *operator).await,
        Some(NodeCommand::Reap) => {
            let data_dir = config.data_dir.clone();
            let _ = tokio::task::spawn_blocking(move || {
                vidshard_node::media::orphans::reap_when_parent_dies(data_dir)
            })
            .await;
            return std::process::ExitCode::SUCCESS;
        }
        None => {}
    }
    let events = EventLog::default();
    init_logging(config.log_format, &events);
    if let Some(path) = &config.config {
        tracing::info!(file = %path.display(), "read the config file");
    }
    limit_encoders(&config).await;
    let shutdown = CancellationToken::new();
    tokio::spawn(wait_for_signals(shutdown.clone()));
    match vidshard_node::server::run(config, events, shutdown).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e:#}");
            eprintln!("vidshard-node: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
