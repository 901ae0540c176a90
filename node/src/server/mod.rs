//! Starting a node and stopping it cleanly: bind, serve every service on
//! one port, and on SIGTERM/Ctrl-C stop taking requests, cancel running
//! work (ffmpeg children are killed with their tasks) and wait for the
//! tracked tasks to end.

mod gauges;
mod stop;

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use tokio::net::TcpListener;
use tokio_stream::wrappers::TcpListenerStream;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::backups::Backups;
use crate::cluster::peers::Peers;
use crate::cluster::raft::consensus::Consensus;
use crate::cluster::{SharedMembership, System, load_node_id};
use crate::config::{Config, Role};
use crate::events::EventLog;
use crate::jobs::SharedJobs;
use crate::legacy::Legacy;
use crate::legacy::backups::{LegacyBackups, Limits};
use crate::media::Tools;
use crate::pipeline::Master;
use crate::scheduler::Scheduler;
use crate::stats::Stats;
use crate::store::BlobStore;
use crate::worker::Worker;

/// How long running work gets to wind down after the stop signal.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);
/// How long open client connections get to close once the node stops.
const CONNECTION_GRACE: Duration = Duration::from_secs(5);

/// Runs the node until `stop` is cancelled (the first SIGTERM/Ctrl-C): a
/// leader first hands leadership to another voter, then everything stops.
pub async fn run(config: Config, events: EventLog, stop: CancellationToken) -> anyhow::Result<()> {
    let shutdown = CancellationToken::new();
    tokio::fs::create_dir_all(&config.data_dir)
        .await
        .with_context(|| format!("creating the data dir {}", config.data_dir.display()))?;
    // Encoders an earlier run of this node left (it was killed before its
    // watcher could act, or had none) go first; then a watcher process
    // kills this run's encoders the moment this process is gone.
    let data_dir = config.data_dir.clone();
    crate::media::orphans::mark_encoders(&config.data_dir);
    let reaped =
        tokio::task::spawn_blocking(move || crate::media::orphans::kill_encoders_of(&data_dir))
            .await
            .unwrap_or(0);
    if reaped > 0 {
        tracing::warn!(
            count = reaped,
            "killed encoders an earlier run of this node left running"
        );
    }
    let watcher = crate::media::orphans::start_watcher(&config.data_dir)
        .context("starting the encoder watcher (vidshard-node reap)")?;
    // Its stdin pipe must stay open until this process is gone: closed
    // when `run` returns, it would kill encoders whose tasks still run
    // (they would then record a failure, e.g. a join "killed by SIGKILL").
    std::mem::forget(watcher);
    let store = BlobStore::open(&config.data_dir)
        .await
        .with_context(|| format!("opening the blob store in {}", config.data_dir.display()))?;
    let legacy_backups = LegacyBackups::open(&config.data_dir, Limits::DEFAULT)
        .await
        .with_context(|| {
            format!(
                "opening the legacy backups in {}",
                config.data_dir.display()
            )
        })?;
    let node_id = load_node_id(&config.data_dir)
        .await
        .context("reading the node id")?;
    // Before binding: once the port is open, `vidshard-node token` works.
    let credentials = crate::cluster::credentials::load(
        &config.data_dir,
        crate::cluster::credentials::given_secret(
            config.join_token.as_deref(),
            config.join_token_file.as_deref(),
        )
        .await
        .context("reading the join token")?,
        config.token.as_deref(),
        config.founds_cluster(),
    )
    .await
    .context("setting up the cluster's tokens")?;
    if credentials.peer.is_none() {
        tracing::warn!(
            "no join token (--join-token): this node can work for an original master, but no vidshard member will take it; `vidshard-node token --data-dir DIR` on a member prints the token"
        );
    }
    let tls = crate::cluster::tls::NodeTls::load(&crate::cluster::tls::TlsFlags::of(&config))
        .await
        .context("setting up TLS")?;
    let listener = TcpListener::bind((config.host.as_str(), config.port))
        .await
        .with_context(|| format!("binding {}:{}", config.host, config.port))?;
    let local = listener.local_addr().context("reading the bound address")?;
    // Bound with the gRPC port, so a taken HTTP port stops the start.
    let http_listener = match config.http_addr.as_deref().filter(|a| !a.is_empty()) {
        Some(address) => Some(crate::http::bind(address).await?),
        None => {
            // An earlier run's address (it was killed) would mislead.
            let _ = tokio::fs::remove_file(config.data_dir.join(crate::http::ADDR_FILE)).await;
            None
        }
    };
    let http_bound = match &http_listener {
        Some(l) => Some(l.local_addr().context("reading the bound HTTP address")?),
        None => None,
    };
    let link_key = credentials.peer.as_deref().map(crate::http::link_key);
    // What the gRPC `Link` call signs watch URLs with.
    let links = crate::http::Links::new(link_key, crate::http::http_base_url(&config, http_bound));
    let address = config.advertised_address(local.port());
    if !local.ip().is_loopback() {
        match (tls.is_some(), config.token.is_some() || config.mtls) {
            (true, true) => {}
            (false, _) => {
                tracing::warn!(%address, "listening beyond loopback without TLS: tokens and video bytes cross the network in clear; set --tls-cert/--tls-key, or keep this network trusted")
            }
            (true, false) if config.insecure => {
                tracing::warn!(%address, "listening beyond loopback with open client RPCs (--insecure): anyone who reaches this port can upload and read videos; set --token (or --mtls)")
            }
            (true, false) => anyhow::bail!(
                "serving TLS on {address} without client authentication: anyone who reaches the port could upload and read videos over an encrypted channel; set --token (or --mtls with --tls-ca), or pass --insecure to run so anyway"
            ),
        }
    }
    let gate = std::sync::Arc::new(crate::service::access::Gate::new(
        credentials.clone(),
        crate::service::access::Policy {
            clients: config.client_access(),
            original_clients: config.original_client_access(),
            original_peers: crate::service::access::resolve_original_peers(&config.original_peers)
                .await
                .context("resolving --original-peers")?,
        },
    ));
    let slots_total = config.effective_slots();
    let config_uploads = config.max_uploads as usize;
    let tools = Tools {
        ffmpeg: config.ffmpeg.clone(),
        ffprobe: config.ffprobe.clone(),
    };
    let tasks = TaskTracker::new();
    let stats = Stats::default();
    tasks.spawn(stats.clone().run(
        config.data_dir.clone(),
        Duration::from_secs(2),
        shutdown.clone(),
    ));
    let jobs = SharedJobs::default();
    if let Some(token) = config.token.as_deref() {
        let header: Result<tonic::metadata::MetadataValue<tonic::metadata::Ascii>, _> =
            format!("Bearer {token}").parse();
        anyhow::ensure!(
            !token.is_empty() && header.is_ok(),
            "--token must be non-empty printable ASCII (it travels in a header)"
        );
    }
    let peers = Peers::new(
        credentials.peer.as_deref(),
        tls.as_ref().map(|t| t.client()),
    );
    let consensus = Consensus::start(
        &config.data_dir,
        &node_id,
        jobs.clone(),
        peers.clone(),
        config.max_voters as usize,
    )
    .await
    .context("starting Raft")?;
    let ctx = Arc::new(System {
        config,
        node_id,
        address: address.clone(),
        store: store.clone(),
        tools,
        jobs,
        stats,
        shutdown: shutdown.clone(),
        tasks: tasks.clone(),
        membership: SharedMembership::default(),
        events,
        peers,
        consensus,
        original_master: Default::default(),
    });
    let abilities = match crate::media::abilities::detect(&ctx.tools).await {
        Ok(found) => found,
        Err(e) => {
            tracing::warn!("cannot list this node's ffmpeg encoders ({e}): it is given no shards");
            crate::media::Abilities::new([crate::media::abilities::ORIENTATION])
        }
    };
    tracing::info!(abilities = ?abilities.names(), "what this node's ffmpeg can encode");
    // The subsystems, each holding only the handles it uses.
    let worker = Arc::new(Worker::new(ctx.clone(), slots_total, abilities));
    let backups = Arc::new(Backups::new(ctx.clone()));
    let scheduler = Arc::new(Scheduler::new(worker.clone()));
    let master = Arc::new(Master::new(scheduler, backups.clone(), config_uploads));
    let legacy = Arc::new(Legacy::new(worker.clone(), legacy_backups));
    tracing::info!(node = %ctx.node_id, role = ?ctx.config.role, slots = slots_total, "vidshard-node listening on {address}");
    if let Some(listener) = http_listener {
        tracing::info!(base = ?links.base_url(), "watch links (vidshard link ID) point here");
        tasks.spawn(crate::http::serve(ctx.clone(), link_key, listener));
    }

    let dead_after = Duration::from_secs_f64(ctx.config.dead_after.max(0.5));
    tasks.spawn(crate::legacy::peers::run(ctx.clone()));
    tasks.spawn(crate::legacy::register::run(ctx.clone()));
    tasks.spawn(ctx.membership.clone().run_sweeper(
        dead_after,
        Duration::from_millis(250),
        shutdown.clone(),
    ));
    tasks.spawn(stop::step_down_then_stop(
        worker.clone(),
        master.clone(),
        stop,
    ));
    let raft_stopped = Arc::new(std::sync::OnceLock::<String>::new());
    tasks.spawn({
        let (raft, shutdown, why) = (ctx.consensus.raft.clone(), shutdown.clone(), raft_stopped.clone());
        async move {
            if let Some(reason) = crate::cluster::raft::fatal::stopped(raft, shutdown.clone()).await {
                tracing::error!(%reason, "Raft stopped; the node stops too, so that its service manager starts it again");
                let _ = why.set(reason);
                shutdown.cancel();
            }
        }
    });
    tasks.spawn(crate::pipeline::run_leadership(master.clone()));
    tasks.spawn(ctx.consensus.clone().run_promotions(shutdown.clone()));
    tasks.spawn(crate::backups::repair::run(backups.clone()));
    tasks.spawn(crate::backups::scrub::run(backups.clone()));
    tasks.spawn(crate::backups::gc::run(ctx.clone()));
    if ctx.config.role == Role::Master || ctx.config.master_address().is_none() {
        if ctx.consensus.bootstrap(&ctx.address).await? {
            tracing::info!("initialised a new cluster with this node as its first voter");
            // A fresh one-node cluster elects itself at once; clients
            // connecting right after start find a master.
            ctx.consensus.wait_for_leader(Duration::from_secs(10)).await;
        }
    } else {
        let seeds = ctx.config.seed_addresses(&ctx.address);
        tracing::info!(?seeds, "joining the cluster");
        tasks.spawn(crate::cluster::raft::joining::run(ctx.clone(), seeds));
    }
    tasks.spawn(crate::worker::heartbeat::run(worker.clone(), backups));

    if let Some(metrics_addr) = ctx.config.metrics_addr.clone().filter(|a| !a.is_empty()) {
        let bound = crate::metrics::install(&metrics_addr).await?;
        tracing::info!("metrics on http://{bound}/metrics");
        crate::metrics::set_gauges(&gauges::sample(&worker, &master));
        tasks.spawn(gauges::run(worker.clone(), master.clone()));
    }

    let handles = crate::service::Handles {
        worker: worker.clone(),
        master,
        legacy,
        links,
    };
    let data_root = ctx.store.root().to_string_lossy().into_owned();
    let routes = crate::service::routes(handles)
        .await
        .context("building the reflection service")?;
    let mut server = tonic::transport::Server::builder();
    if let Some(tls) = &tls {
        server = server
            .tls_config(tls.server())
            .context("setting up TLS on the server")?;
        tracing::info!(mutual = ctx.config.mtls, "serving TLS only");
    }
    let serve = server
        .layer(crate::service::access::AccessLayer(gate))
        .layer(tower::util::MapResponseLayer::new(
            move |response: tonic::codegen::http::Response<tonic::body::Body>| {
                let response =
                    crate::service::reply_limits::redact_grpc_message(&data_root, response);
                crate::service::reply_limits::cap_grpc_message(response)
            },
        ))
        .initial_stream_window_size(crate::cluster::peers::WINDOW)
        .initial_connection_window_size(2 * crate::cluster::peers::WINDOW)
        .add_routes(routes)
        .serve_with_incoming_shutdown(
            TcpListenerStream::new(listener),
            shutdown.clone().cancelled_owned(),
        );
    // Once stopping, open connections get CONNECTION_GRACE to close; a
    // client that never answers the server's GOAWAY must not keep the
    // node from exiting.
    let connections_closed = async {
        shutdown.cancelled().await;
        tokio::time::sleep(CONNECTION_GRACE).await;
    };
    tokio::select! {
        served = serve => served.context("serving gRPC")?,
        _ = connections_closed => tracing::warn!(
            "clients still connected {CONNECTION_GRACE:?} after the stop: closing their connections"
        ),
    }

    tracing::info!("stopping: waiting for running work to end");
    worker.close_slots();
    tasks.close();
    if tokio::time::timeout(SHUTDOWN_GRACE, tasks.wait())
        .await
        .is_err()
    {
        tracing::warn!("some tasks did not stop within {SHUTDOWN_GRACE:?}");
    }
    // Whatever an interrupted transfer or job left in tmp/ (its owner is
    // gone now) goes, as a start would remove it.
    store.clear_tmp().await;
    tracing::info!("stopped");
    match raft_stopped.get() {
        Some(reason) => anyhow::bail!("Raft stopped ({reason}): restart the node"),
        None => Ok(()),
    }
}
