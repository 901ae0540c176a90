//! The panes of the main screen, drawn from `&App` only: the nodes table
//! (with a score sparkline kept client-side) and the log pane (tui-logger),
//! plus what all panes share (frames, highlight, text gauges). The jobs and
//! shards panes are in `jobs.rs`.
//!
//! Gauges are text (`━━━━────`) so they read the same in colour, in
//! monochrome, and in the text snapshots of the tests.

use ratatui::Frame;
use ratatui::layout::{Constraint, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Paragraph, Row, Table, TableState};
use tui_logger::TuiLoggerWidget;
use vidshard_proto::v1::NodeEntry;

use super::app::App;
use super::history::sparkline;
use super::logview::Formatter;
use super::state::{Freshness, Pane};
use crate::format;

/// A pane's frame: focused panes stand out; stale data says so in the title.
pub fn pane_block<'a>(app: &App, pane: Pane, title: String) -> Block<'a> {
    let focused = app.focus == pane && app.modal.is_none();
    let stale = pane != Pane::Log && matches!(app.freshness(), Freshness::Stale { .. });
    let mut title = format!(" {title} ");
    if stale {
        title.push_str("(stale) ");
    }
    let style = if focused {
        Style::new().fg(Color::Cyan).add_modifier(Modifier::BOLD)
    } else {
        Style::new().fg(Color::DarkGray)
    };
    Block::bordered().title(title).border_style(style)
}

/// Row highlight: reversed in the focused pane, bold elsewhere.
pub fn highlight(app: &App, pane: Pane) -> Style {
    if app.focus == pane && app.modal.is_none() {
        Style::new().add_modifier(Modifier::REVERSED)
    } else {
        Style::new().add_modifier(Modifier::BOLD)
    }
}

/// A text gauge of `width` cells: filled part, then the rest.
pub fn bar(fraction: f32, width: usize) -> (String, String) {
    let fraction = if fraction.is_nan() {
        0.0
    } else {
        fraction.clamp(0.0, 1.0)
    };
    let filled = ((f64::from(fraction) * width as f64).floor() as usize).min(width);
    ("━".repeat(filled), "─".repeat(width - filled))
}

pub fn placeholder(frame: &mut Frame, area: Rect, block: Block<'_>, text: String) {
    let style = Style::new().fg(Color::DarkGray);
    frame.render_widget(Paragraph::new(Line::styled(text, style)).block(block), area);
}

fn waiting_text(app: &App) -> String {
    format!("waiting for the first snapshot from {}…", app.cfg.node)
}

fn clamp(n: usize, lo: usize, hi: usize) -> u16 {
    n.clamp(lo, hi) as u16
}

pub fn nodes(frame: &mut Frame, area: Rect, app: &App) {
    let nodes = app.nodes();
    let dead = nodes.iter().filter(|n| !n.alive).count();
    let title = match dead {
        0 => format!("Nodes ({})", nodes.len()),
        d => format!("Nodes ({}, {d} dead)", nodes.len()),
    };
    let block = pane_block(app, Pane::Nodes, title);
    if app.view.is_none() {
        return placeholder(frame, area, block, waiting_text(app));
    }
    let spark = if area.width >= 110 { 24 } else { 10 };
    let id_w = clamp(
        nodes
            .iter()
            .map(|n| n.node_id.chars().count())
            .max()
            .unwrap_or(0),
        4,
        16,
    );
    let addr_w = clamp(
        nodes
            .iter()
            .map(|n| n.address.chars().count())
            .max()
            .unwrap_or(0),
        7,
        22,
    );
    let widths = [
        Constraint::Length(id_w),
        Constraint::Length(addr_w),
        Constraint::Length(6),
        Constraint::Length(8),
        Constraint::Length(5),
        Constraint::Length(spark as u16),
        Constraint::Length(5),
        Constraint::Fill(1),
    ];
    let header = [
        "NODE", "ADDRESS", "ROLE", "ALIVE", "SCORE", "HISTORY", "SLOTS", "SHARDS",
    ];
    let rows = nodes.iter().map(|n| node_row(app, n, spark));
    let table = Table::new(rows, widths)
        .header(Row::new(header).style(Style::new().add_modifier(Modifier::BOLD)))
        .block(block)
        .row_highlight_style(highlight(app, Pane::Nodes));
    let selected = (!nodes.is_empty()).then(|| app.node_sel.min(nodes.len() - 1));
    frame.render_stateful_widget(
        table,
        area,
        &mut TableState::default().with_selected(selected),
    );
}

fn score_style(score: f32) -> Style {
    match score {
        s if s < 40.0 => Style::new().fg(Color::Green),
        s if s < 70.0 => Style::new().fg(Color::Yellow),
        _ => Style::new().fg(Color::Red),
    }
}

fn node_row<'a>(app: &App, n: &'a NodeEntry, spark: usize) -> Row<'a> {
    let role_style = match n.role.as_str() {
        "master" => Style::new().fg(Color::Yellow).add_modifier(Modifier::BOLD),
        _ => Style::new(),
    };
    let alive = if n.alive {
        Span::styled("up", Style::new().fg(Color::Green))
    } else {
        let seen = format::eta(n.last_seen_ms as f64 / 1000.0);
        Span::styled(
            format!("DEAD {seen}"),
            Style::new().fg(Color::Red).add_modifier(Modifier::BOLD),
        )
    };
    let history = app
        .history
        .get(&n.node_id)
        .map(|h| sparkline(h, spark))
        .unwrap_or_default();
    // A dead node's load is unknown now: its past stays in the history.
    let (score, slots) = if n.alive {
        (
            format!("{:.1}", n.score),
            format!("{}/{}", n.slots_busy, n.slots_total),
        )
    } else {
        ("-".into(), "-".into())
    };
    Row::new(vec![
        Line::from(n.node_id.as_str()),
        Line::from(n.address.as_str()),
        Line::styled(n.role.as_str(), role_style),
        Line::from(alive),
        Line::styled(score, score_style(n.score)),
        Line::styled(history, score_style(n.score)),
        Line::from(slots),
        Line::from(n.current_shards.join(", ")),
    ])
}

pub fn log(frame: &mut Frame, area: Rect, app: &App) {
    let widget = TuiLoggerWidget::default()
        .block(pane_block(app, Pane::Log, "Log".into()))
        .formatter(Box::new(Formatter))
        .state(&app.log_state);
    frame.render_widget(widget, area);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bars_fill_by_fraction() {
        assert_eq!(bar(0.5, 4), ("━━".into(), "──".into()));
        assert_eq!(bar(1.5, 3), ("━━━".into(), String::new()));
        assert_eq!(bar(f32::NAN, 2), (String::new(), "──".into()));
    }
}
