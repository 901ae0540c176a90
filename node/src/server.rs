//! Starting a node and stopping it cleanly: bind, serve every service on
//! one port, and on SIGTERM/Ctrl-C stop taking requests, cancel running
//! work (ffmpeg children are killed with their tasks) and wait for the
//! tracked tasks to end.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_stream::wrappers::TcpListenerStream;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::cluster::SharedMembership;
use crate::cluster::peers::Peers;
use crate::cluster::raft::consensus::Consensus;
use crate::config::{Config, Role};
use crate::context::{NodeContext, load_node_id};
use crate::events::EventLog;
use crate::jobs::SharedJobs;
use crate::legacy::backups::{LegacyBackups, Limits};
use crate::media::Tools;
use crate::pipeline::Leadership;
use crate::scheduler::TaskBoard;
use crate::stats::Stats;
use crate::store::BlobStore;
use crate::worker::{LegacyShards, WorkerTasks};

/// How long running work gets to wind down after the stop signal.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// Runs the node until `stop` is cancelled (the first SIGTERM/Ctrl-C): a
/// leader first hands leadership to another voter, then everything stops.
pub async fn run(config: Config, events: EventLog, stop: CancellationToken) -> anyhow::Result<()> {
    let shutdown = CancellationToken::new();
    tokio::fs::create_dir_all(&config.data_dir)
        .await
        .with_context(|| format!("creating the data dir {}", config.data_dir.display()))?;
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
    let tls = crate::cluster::tls::NodeTls::load(&config.tls_flags())
        .await
        .context("setting up TLS")?;
    let listener = TcpListener::bind((config.host.as_str(), config.port))
        .await
        .with_context(|| format!("binding {}:{}", config.host, config.port))?;
    let local = listener.local_addr().context("reading the bound address")?;
    let address = config.advertised_address(local.port());
    if !local.ip().is_loopback() {
        match (tls.is_some(), config.token.is_some() || config.mtls) {
            (true, true) => {}
            (false, false) => {
                tracing::warn!(%address, "listening beyond loopback without TLS and without a cluster token: anyone who reaches this port can use and steer the cluster; set --tls-cert/--tls-key and --token, or keep this network trusted")
            }
            (false, true) => {
                tracing::warn!(%address, "listening beyond loopback without TLS: the cluster token and all video bytes cross the network in clear; set --tls-cert/--tls-key")
            }
            (true, false) => {
                tracing::warn!(%address, "listening beyond loopback without a cluster token: anyone who reaches this port can use the cluster; set --token (or --mtls)")
            }
        }
    }
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
    let peers = Peers::new(config.token.as_deref(), tls.as_ref().map(|t| t.client()));
    let consensus = Consensus::start(
        &config.data_dir,
        &node_id,
        jobs.clone(),
        peers.clone(),
        config.max_voters as usize,
    )
    .await
    .context("starting Raft")?;
    let ctx = Arc::new(NodeContext {
        config,
        node_id,
        address: address.clone(),
        store,
        tools,
        jobs,
        slots: Arc::new(Semaphore::new(slots_total as usize)),
        slots_total,
        stats,
        shutdown: shutdown.clone(),
        tasks: tasks.clone(),
        membership: SharedMembership::default(),
        board: TaskBoard::default(),
        worker_tasks: WorkerTasks::default(),
        legacy_shards: LegacyShards::default(),
        legacy_backups: Arc::new(legacy_backups),
        uploads: Arc::new(Semaphore::new(config_uploads)),
        events,
        peers,
        consensus,
        leadership: Leadership::default(),
        drain: Default::default(),
        fence: Default::default(),
        backups_wake: Default::default(),
        reported_losses: Default::default(),
        my_losses: Default::default(),
    });
    tracing::info!(node = %ctx.node_id, role = ?ctx.config.role, slots = slots_total, "vidshard-node listening on {address}");

    let dead_after = Duration::from_secs_f64(ctx.config.dead_after.max(0.5));
    tasks.spawn(crate::cluster::probe::run(ctx.clone()));
    tasks.spawn(ctx.membership.clone().run_sweeper(
        dead_after,
        Duration::from_millis(250),
        shutdown.clone(),
    ));
    tasks.spawn(step_down_then_stop(ctx.clone(), stop));
    tasks.spawn(crate::pipeline::run_leadership(ctx.clone()));
    tasks.spawn(crate::backups::repair::run(ctx.clone()));
    tasks.spawn(crate::backups::scrub::run(ctx.clone()));
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
    tasks.spawn(crate::cluster::join::run(ctx.clone()));

    if let Some(metrics_addr) = ctx.config.metrics_addr.clone().filter(|a| !a.is_empty()) {
        let bound = crate::metrics::install(&metrics_addr).await?;
        tracing::info!("metrics on http://{bound}/metrics");
        crate::metrics::update_gauges(&ctx);
        tasks.spawn(crate::metrics::run_gauges(ctx.clone()));
    }

    let routes = crate::service::routes(ctx.clone())
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
        .layer(tower::util::MapResponseLayer::new(
            crate::service::reply_limits::cap_grpc_message::<tonic::body::Body>,
        ))
        .initial_stream_window_size(crate::cluster::peers::WINDOW)
        .initial_connection_window_size(2 * crate::cluster::peers::WINDOW)
        .add_routes(routes)
        .serve_with_incoming_shutdown(
            TcpListenerStream::new(listener),
            shutdown.clone().cancelled_owned(),
        );
    serve.await.context("serving gRPC")?;

    tracing::info!("stopping: waiting for running work to end");
    ctx.slots.close();
    tasks.close();
    if tokio::time::timeout(SHUTDOWN_GRACE, tasks.wait())
        .await
        .is_err()
    {
        tracing::warn!("some tasks did not stop within {SHUTDOWN_GRACE:?}");
    }
    tracing::info!("stopped");
    Ok(())
}

/// How long a stopping leader tries to hand leadership over.
const HAND_OVER_LIMIT: Duration = Duration::from_secs(6);

/// On the stop request: the node stops taking shards, a leader with
/// another voter hands leadership over (clients see a new master in ~2 s
/// instead of an election after a timeout), the shards this node encodes
/// for a master finish or are handed back (`--drain-timeout`), then the
/// node's shutdown begins.
async fn step_down_then_stop(ctx: crate::context::Ctx, stop: CancellationToken) {
    tokio::select! {
        _ = stop.cancelled() => {}
        _ = ctx.shutdown.cancelled() => return,
    }
    ctx.drain.begin();
    hand_over_leadership(&ctx).await;
    drain_shards(&ctx).await;
    ctx.shutdown.cancel();
}

/// How often the drain looks whether it is done.
const DRAIN_POLL: Duration = Duration::from_millis(100);
/// How long handed-back shards get to tell their master.
const HAND_BACK_LIMIT: Duration = Duration::from_secs(3);

/// Waits until the shards this node runs for a master are done and
/// fetched, or `--drain-timeout` passes; then hands back what still runs.
async fn drain_shards(ctx: &crate::context::Ctx) {
    let limit = Duration::from_secs_f64(ctx.config.drain_timeout.clamp(0.0, 86_400.0));
    let deadline = tokio::time::Instant::now() + limit;
    let is_drained = || {
        crate::worker::drain::drained(
            ctx.worker_tasks.running(),
            &ctx.drain.unfetched(),
            std::time::Instant::now(),
        )
    };
    if !is_drained() {
        tracing::info!(
            running = ctx.worker_tasks.running(),
            unfetched = ctx.drain.unfetched().len(),
            "draining: letting running shards finish for up to {limit:?}"
        );
    }
    while !is_drained() && tokio::time::Instant::now() < deadline {
        tokio::select! {
            _ = tokio::time::sleep(DRAIN_POLL) => {}
            _ = ctx.shutdown.cancelled() => return,
        }
    }
    let running = ctx.worker_tasks.running();
    if running == 0 {
        if !limit.is_zero() {
            tracing::info!("drained: every shard this node ran is finished and handed over");
        }
        return;
    }
    tracing::warn!(
        running,
        "drain timeout: handing the running shards back to their master"
    );
    ctx.drain.hand_back();
    let until = tokio::time::Instant::now() + HAND_BACK_LIMIT;
    while ctx.worker_tasks.running() > 0 && tokio::time::Instant::now() < until {
        tokio::time::sleep(DRAIN_POLL).await;
    }
}

/// A leader with another live voter hands leadership over (best effort).
async fn hand_over_leadership(ctx: &crate::context::Ctx) {
    if ctx.is_master() {
        let score_of = |name: &str| {
            ctx.membership
                .lock()
                .get(name)
                .filter(|m| m.alive)
                .map(|m| m.load.score)
        };
        let members = ctx.consensus.members();
        if let Ok(target) =
            crate::cluster::raft::transfer::pick_target(&members, ctx.consensus.id, None, score_of)
        {
            let handing =
                crate::cluster::raft::transfer::hand_over(&ctx.consensus, &ctx.peers, &target);
            match tokio::time::timeout(HAND_OVER_LIMIT, handing).await {
                Ok(Ok(term)) => {
                    tracing::info!(to = %target.info.name, term, "handed leadership over before stopping")
                }
                Ok(Err(why)) => {
                    tracing::warn!(reason = %why, "could not hand leadership over; stopping anyway")
                }
                Err(_) => tracing::warn!("handing leadership over took too long; stopping anyway"),
            }
        }
    }
}
