//! `vidshard` without a subcommand: the live operator console (ratatui +
//! crossterm).
//!
//! This file is the run loop and the terminal's edges. One mpsc carries
//! every [`Event`] (keys from crossterm's `EventStream`, snapshots and link
//! changes from `net.rs`, progress and results from `exec.rs`, ticks);
//! [`App::handle`] turns each into actions; the screen is redrawn after a
//! change, at most [`FRAME`] apart. The terminal is restored on quit, on
//! error and on panic.

mod app;
mod backoff;
mod exec;
mod form;
mod header;
mod history;
mod jobs;
mod keys;
mod logview;
mod msg;
mod net;
mod popups;
mod state;
mod task_bar;
mod ui;
mod widgets;

#[cfg(test)]
mod action_tests;
#[cfg(test)]
mod app_tests;
#[cfg(test)]
mod fixtures;
#[cfg(test)]
mod scenarios;
#[cfg(test)]
mod snapshot_tests;

use std::io::{IsTerminal, Stdout};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, bail};
use crossterm::event::{Event as TermEvent, EventStream};
use crossterm::terminal::{EnterAlternateScreen, LeaveAlternateScreen};
use futures::StreamExt;
use jiff::tz::TimeZone;
use log::LevelFilter;
use ratatui::Terminal;
use ratatui::backend::CrosstermBackend;
use tokio::sync::mpsc;

use app::App;
use exec::Executor;
use msg::{Action, Event};
use state::Config;

/// Shortest time between two frames (10 fps).
pub const FRAME: Duration = Duration::from_millis(100);
/// Clock ticks: ages and countdowns move even when nothing arrives.
const TICK: Duration = Duration::from_millis(250);
/// Log targets of the real console (see `logview.rs`).
const SCOPE: &str = "vidshard";

/// Wall clock in unix milliseconds.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// Runs the console against `node` until the operator quits.
pub fn run(node: String) -> Result<()> {
    if !std::io::stdout().is_terminal() || !std::io::stdin().is_terminal() {
        bail!("the console needs a terminal; for scripts use a subcommand (see vidshard --help)");
    }
    // Anything logged goes to the log pane, never over the screen.
    let _ = tui_logger::init_logger(LevelFilter::Info);
    tui_logger::set_default_level(LevelFilter::Info);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    install_panic_hook();
    let result = {
        let mut screen = Screen::enter()?;
        runtime.block_on(event_loop(&mut screen.terminal, node))
    };
    // Dropping the tasks removes any partial download (its temp file guard).
    runtime.shutdown_timeout(Duration::from_millis(500));
    result
}

type Term = Terminal<CrosstermBackend<Stdout>>;

/// Raw mode and the alternate screen, undone when dropped.
struct Screen {
    terminal: Term,
}

impl Screen {
    fn enter() -> Result<Self> {
        crossterm::terminal::enable_raw_mode().context("cannot set up the terminal")?;
        let guard = || -> Result<Term> {
            crossterm::execute!(std::io::stdout(), EnterAlternateScreen)?;
            Ok(Terminal::new(CrosstermBackend::new(std::io::stdout()))?)
        };
        match guard() {
            Ok(terminal) => Ok(Screen { terminal }),
            Err(err) => {
                restore();
                Err(err.context("cannot set up the terminal"))
            }
        }
    }
}

impl Drop for Screen {
    fn drop(&mut self) {
        restore();
    }
}

/// Gives the terminal back: cooked mode, main screen, visible cursor.
fn restore() {
    let _ = crossterm::terminal::disable_raw_mode();
    let _ = crossterm::execute!(
        std::io::stdout(),
        LeaveAlternateScreen,
        crossterm::cursor::Show
    );
}

/// A panic on the UI thread restores the terminal before the message is
/// printed. A panic in a background task is logged instead: printing would
/// scribble over the screen, and its supervisor reports it as a failed
/// action (`exec.rs`) or restarts it (the watch task).
fn install_panic_hook() {
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        if std::thread::current().name() == Some("main") {
            restore();
            previous(info);
        } else {
            log::error!(target: "vidshard::console", "internal error: {info}");
        }
    }));
}

/// Keeps a watch task running; one that panicked is started again.
async fn supervise_watch(node: String, tx: mpsc::Sender<Event>) {
    loop {
        let task = tokio::spawn(net::watch(node.clone(), tx.clone()));
        match task.await {
            Err(err) if err.is_panic() && !tx.is_closed() => {
                tokio::time::sleep(Duration::from_secs(1)).await
            }
            _ => return,
        }
    }
}

async fn event_loop(terminal: &mut Term, node: String) -> Result<()> {
    let (tx, mut rx) = mpsc::channel::<Event>(256);
    let cfg = Config {
        node: node.clone(),
        tz: TimeZone::system(),
        log_scope: SCOPE.into(),
    };
    let mut app = App::new(cfg, now_ms());
    let exec = Executor::new(tx.clone());
    tokio::spawn(supervise_watch(node, tx));
    let mut terminal_events = EventStream::new();
    let mut ticks = tokio::time::interval(TICK);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    #[cfg(unix)]
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .context("cannot watch SIGTERM")?;
    let mut dirty = true;
    let mut last_draw: Option<Instant> = None;
    loop {
        let wait = last_draw.map_or(Duration::ZERO, |t| FRAME.saturating_sub(t.elapsed()));
        if dirty && wait.is_zero() {
            terminal
                .draw(|frame| ui::draw(frame, &app))
                .context("cannot draw")?;
            last_draw = Some(Instant::now());
            dirty = false;
        }
        #[cfg(unix)]
        let terminated = terminate.recv();
        #[cfg(not(unix))]
        let terminated = std::future::pending::<Option<()>>();
        let event = tokio::select! {
            term = terminal_events.next() => match term {
                Some(Ok(TermEvent::Key(key))) => Event::Key(key),
                Some(Ok(TermEvent::Resize(..))) => Event::Resize,
                Some(Ok(_)) => continue,
                Some(Err(err)) => return Err(err).context("cannot read the terminal"),
                None => return Ok(()),
            },
            Some(event) = rx.recv() => event,
            _ = ticks.tick() => Event::Tick { now_ms: now_ms() },
            _ = terminated => return Ok(()),
            _ = tokio::time::sleep(wait), if dirty => continue,
        };
        for action in app.handle(event) {
            match action {
                Action::Quit => return Ok(()),
                Action::Log(line) => logview::emit(SCOPE, &line),
                other => exec.perform(other),
            }
        }
        dirty = true;
    }
}
