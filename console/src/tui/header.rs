//! The header (who we talk to, the master and term, quorum, how fresh the
//! data is) and the banners for what is not normal (reconnecting, a new
//! leader, paused). Data that is not live says so in words, not only in
//! colour.

use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};

use vidshard_proto::v1::ClusterSnapshot;

use super::app::{App, MASTER_NOTE_MS};
use super::state::{Conn, Freshness, or_none};

fn sep() -> Span<'static> {
    Span::styled(" │ ", Style::new().fg(Color::DarkGray))
}

/// Two lines: the link and the master; then health, freshness, counts.
/// The first line drops addresses (keeping node ids) when it is too wide.
pub fn header(app: &App, width: usize) -> Vec<Line<'static>> {
    let Some(snap) = app.snapshot() else {
        let target = match &app.conn {
            Conn::Live { target, .. } | Conn::Connecting { target, .. } => target.clone(),
            Conn::Retrying { next, .. } => next.clone(),
        };
        let first = vec![title(), Span::raw(format!("connecting to {target}…"))];
        let second = " waiting for the first snapshot";
        return vec![
            Line::from(first),
            Line::styled(second, Style::new().fg(Color::DarkGray)),
        ];
    };
    let first = [2, 1, 0]
        .into_iter()
        .map(|detail| link_line(app, snap, detail))
        .find(|line| line.width() <= width)
        .unwrap_or_else(|| link_line(app, snap, 0));
    let quorum = format!("{}/{} voters up", snap.voters_up, snap.voters_total);
    let mut second = vec![Span::raw(" ")];
    if snap.has_quorum {
        second.push(Span::styled(
            format!("quorum ✓ {quorum}"),
            Style::new().fg(Color::Green),
        ));
    } else {
        let alarm = Style::new().fg(Color::Red).add_modifier(Modifier::BOLD);
        second.push(Span::styled(format!("NO QUORUM {quorum}"), alarm));
    }
    second.push(sep());
    second.push(freshness(app));
    let dead = snap.nodes.iter().filter(|n| !n.alive).count();
    second.push(sep());
    second.push(Span::raw(format!(
        "{} nodes, {dead} dead",
        snap.nodes.len()
    )));
    vec![first, Line::from(second)]
}

fn title() -> Span<'static> {
    Span::styled(" vidshard ", Style::new().fg(Color::Black).bg(Color::Cyan))
}

/// `via <id> <address> │ master <id> <address> term N`; `detail` 1 drops
/// the address of the node we talk to, 0 the master's too (when ids are
/// known, so nothing becomes ambiguous).
fn link_line(app: &App, snap: &ClusterSnapshot, detail: u8) -> Line<'static> {
    let named = |id: Option<&str>, address: &str, keep: bool| match id.filter(|i| !i.is_empty()) {
        Some(id) if keep => format!("{id} {}", or_unknown(address)),
        Some(id) => id.to_owned(),
        None => or_unknown(address).to_owned(),
    };
    // Only a live link is "via"; otherwise say where the data came from.
    let via = if matches!(app.conn, Conn::Live { .. }) {
        "via"
    } else {
        "was via"
    };
    let mut spans = vec![title(), Span::raw(" ")];
    spans.push(Span::raw(format!(
        "{via} {}",
        named(Some(&snap.node_id), &snap.node_address, detail >= 2)
    )));
    spans.push(sep());
    if snap.election_in_progress {
        spans.push(Span::styled(
            "ELECTION IN PROGRESS (no master)",
            Style::new().fg(Color::Yellow),
        ));
    } else if snap.master_address.is_empty() {
        spans.push(Span::styled("no master known", Style::new().fg(Color::Red)));
    } else {
        let recent = app
            .master_change
            .as_ref()
            .is_some_and(|(_, at)| app.now_ms.saturating_sub(*at) < MASTER_NOTE_MS);
        let style = if recent {
            Style::new().fg(Color::Yellow)
        } else {
            Style::new()
        };
        let master = named(
            app.node_name(&snap.master_address),
            &snap.master_address,
            detail >= 1,
        );
        spans.push(Span::raw("master "));
        spans.push(Span::styled(master, style.add_modifier(Modifier::BOLD)));
    }
    spans.push(Span::raw(format!(" term {}", snap.term)));
    Line::from(spans)
}

fn or_unknown(text: &str) -> &str {
    if text.is_empty() { "?" } else { text }
}

/// Seconds with one decimal: `0.4s`.
fn secs(ms: u64) -> String {
    format!("{:.1}s", ms as f64 / 1000.0)
}

fn freshness(app: &App) -> Span<'static> {
    if let Some(since) = app.paused_since {
        let text = format!("PAUSED at {}", app.clock(since));
        return Span::styled(text, Style::new().fg(Color::Black).bg(Color::Yellow));
    }
    match app.freshness() {
        Freshness::NoData => Span::raw("no data yet"),
        Freshness::Live { age_ms } => Span::raw(format!("updated {} ago", secs(age_ms))),
        Freshness::Late { age_ms } => Span::styled(
            format!("no update for {}", secs(age_ms)),
            Style::new().fg(Color::Yellow),
        ),
        Freshness::Stale { since_ms } => Span::styled(
            format!("STALE since {}", app.clock(since_ms)),
            Style::new().fg(Color::Red).add_modifier(Modifier::BOLD),
        ),
    }
}

/// Lines across the screen for what is not normal: reconnecting, a new
/// leader, paused. Each fits on one line; the full error is in the log.
pub fn banners(app: &App) -> Vec<Line<'static>> {
    let alarm = Style::new()
        .fg(Color::White)
        .bg(Color::Red)
        .add_modifier(Modifier::BOLD);
    let notice = Style::new().fg(Color::Black).bg(Color::Yellow);
    let mut out = Vec::new();
    match &app.conn {
        Conn::Retrying {
            next,
            attempt,
            retry_at_ms,
            error,
        } => {
            let wait = secs(retry_at_ms.saturating_sub(app.now_ms));
            let text =
                format!(" reconnecting to {next} (attempt {attempt}, next in {wait}) · {error}");
            out.push(Line::styled(text, alarm));
        }
        Conn::Connecting { target, attempt } if *attempt > 0 => {
            let text = format!(" reconnecting to {target} (attempt {attempt}, connecting…)");
            out.push(Line::styled(text, alarm));
        }
        Conn::Live { target, .. } if app.is_stale() => {
            out.push(Line::styled(
                format!(" connected to {target}, waiting for a snapshot"),
                alarm,
            ));
        }
        _ => {}
    }
    if let (Some((old, at)), Some(snap)) = (&app.master_change, app.snapshot())
        && app.now_ms.saturating_sub(*at) < MASTER_NOTE_MS
    {
        let name = |address: &str| app.node_name(address).unwrap_or(address).to_owned();
        let text = format!(
            " leader changed at {}: {} → {} (term {})",
            app.clock(*at),
            name(or_none(old)),
            name(&snap.master_address),
            snap.term
        );
        out.push(Line::styled(text, notice));
    }
    if let Some(since) = app.paused_since {
        let shown = app
            .view
            .as_ref()
            .map(|v| app.clock(v.received_ms))
            .unwrap_or_else(|| "-".into());
        let text = format!(
            " PAUSED since {}: showing data as of {shown}, {} updates held · p resumes",
            app.clock(since),
            app.held_count
        );
        out.push(Line::styled(text, notice));
    }
    out
}
