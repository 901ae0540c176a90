//! The screen layout, drawn from `&App` only: header (who we talk to, the
//! master and term, quorum, data age), the banners (reconnecting, paused),
//! the panes (`widgets.rs`), running actions and the last message, the
//! footer generated from the key table, and dialogs on top (`popups.rs`).
//!
//! Honesty rules: data that is not live says so in words (not only in
//! colour), and what the console does not know is shown as unknown.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

use super::app::App;
use super::state::Modal;
use super::{header, jobs, keys, popups, widgets};
use crate::format;

/// Smallest screen the layout is drawn for.
pub const MIN: (u16, u16) = (60, 16);

pub fn draw(frame: &mut Frame, app: &App) {
    let area = frame.area();
    if area.width < MIN.0 || area.height < MIN.1 {
        let text = format!(
            "terminal too small: {}×{}, need {}×{}",
            area.width, area.height, MIN.0, MIN.1
        );
        frame.render_widget(Paragraph::new(text), area);
        return;
    }
    let banners = header::banners(app);
    let status = status_lines(app, area.width as usize);
    let tall = area.height >= 36;
    let nodes_h = (app.nodes().len().max(1) as u16 + 3).min(if tall { 14 } else { 7 });
    let [
        header_a,
        banner_a,
        nodes_a,
        middle_a,
        log_a,
        status_a,
        footer_a,
    ] = Layout::vertical([
        Constraint::Length(2),
        Constraint::Length(banners.len() as u16),
        Constraint::Length(nodes_h),
        Constraint::Min(6),
        Constraint::Length(if tall { 10 } else { 5 }),
        Constraint::Length(status.len() as u16),
        Constraint::Length(1),
    ])
    .areas(area);
    let [jobs_a, shards_a] = Layout::horizontal([Constraint::Percentage(50); 2]).areas(middle_a);

    frame.render_widget(
        Paragraph::new(header::header(app, area.width as usize)),
        header_a,
    );
    frame.render_widget(Paragraph::new(banners), banner_a);
    widgets::nodes(frame, nodes_a, app);
    jobs::jobs(frame, jobs_a, app);
    jobs::shards(frame, shards_a, app);
    widgets::log(frame, log_a, app);
    frame.render_widget(Paragraph::new(status), status_a);
    frame.render_widget(Paragraph::new(footer(app, area.width as usize)), footer_a);
    if app.is_stale() {
        // Everything the cluster told us is greyed out; words say why.
        let dim = Style::new().fg(Color::DarkGray).add_modifier(Modifier::DIM);
        for pane in [nodes_a, middle_a] {
            frame.buffer_mut().set_style(pane, dim);
        }
    }
    if app.details {
        popups::details(frame, area, app);
    }
    match &app.modal {
        None => {}
        Some(Modal::Help) => popups::help(frame, area),
        Some(Modal::Upload(form)) => popups::upload(frame, area, form, &app.action_target()),
        Some(Modal::Retrieve(prompt)) => popups::retrieve(frame, area, prompt),
        Some(Modal::Confirm { question, .. }) => popups::confirm(frame, area, question),
    }
}

/// Running actions (at most two shown) and the last message.
fn status_lines(app: &App, width: usize) -> Vec<Line<'static>> {
    let mut out: Vec<Line> = app
        .tasks
        .iter()
        .take(2)
        .map(|t| {
            let amount = if t.total > 0 {
                let fraction = t.done as f64 / t.total as f64;
                let (done, rest) = widgets::bar(fraction as f32, 12);
                format!(
                    "{done}{rest} {} {}/{}",
                    format::percent(fraction as f32),
                    format::bytes(t.done),
                    format::bytes(t.total)
                )
            } else if t.done > 0 {
                format::bytes(t.done)
            } else {
                "…".into()
            };
            Line::styled(
                format!(" ⟳ {} · {} {amount}", t.label, t.phase),
                Style::new().fg(Color::Cyan),
            )
        })
        .collect();
    if let Some(status) = &app.status {
        let style = match status.level {
            log::Level::Error => Style::new().fg(Color::Red),
            log::Level::Warn => Style::new().fg(Color::Yellow),
            _ => Style::new().fg(Color::Green),
        };
        let text: String = format!(" {}", status.text).chars().take(width).collect();
        out.push(Line::styled(text, style));
    }
    out
}

/// The footer: the current scope's keys from the key table. When they do
/// not all fit, the last ones go first, but never help and quit.
fn footer(app: &App, width: usize) -> Line<'static> {
    let key_style = Style::new().fg(Color::Black).bg(Color::Gray);
    let mut items = keys::footer(app.scope());
    let len = |items: &[(String, &str)]| -> usize {
        items
            .iter()
            .map(|(k, l)| k.chars().count() + l.chars().count() + 3)
            .sum()
    };
    while len(&items) > width {
        let Some(drop) = items
            .iter()
            .rposition(|(_, label)| !matches!(*label, "help" | "quit"))
        else {
            break;
        };
        items.remove(drop);
    }
    let mut spans = Vec::new();
    for (key, label) in items {
        spans.push(Span::raw(" "));
        spans.push(Span::styled(key, key_style));
        spans.push(Span::raw(format!(" {label} ")));
    }
    Line::from(spans)
}
