//! Dialogs over the main screen: help (generated from the key table), the
//! upload form, the retrieve path prompt, y/n questions, and the details
//! of the selected row. Drawing only.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Clear, Paragraph, Wrap};
use vidshard_proto::v1::{JobInfo, NodeEntry, ShardInfo};

use super::app::App;
use super::form::{CODECS, FORMATS, Field, PathPrompt, UploadForm};
use super::jobs::worker_label;
use super::keys::{self, Scope};
use super::state::Pane;
use crate::format;
use crate::job::backup_status;

/// A `w`×`h` box centred in `area` (shrunk to fit).
fn centered(area: Rect, w: u16, h: u16) -> Rect {
    let (w, h) = (w.min(area.width), h.min(area.height));
    Rect::new(
        area.x + (area.width - w) / 2,
        area.y + (area.height - h) / 2,
        w,
        h,
    )
}

fn dialog(frame: &mut Frame, area: Rect, title: &str, lines: Vec<Line<'static>>) {
    let block = Block::bordered()
        .title(format!(" {title} "))
        .border_style(Style::new().fg(Color::Cyan).add_modifier(Modifier::BOLD));
    frame.render_widget(Clear, area);
    frame.render_widget(
        Paragraph::new(lines)
            .block(block)
            .wrap(Wrap { trim: false }),
        area,
    );
}

fn dim(text: impl Into<String>) -> Span<'static> {
    Span::styled(text.into(), Style::new().fg(Color::DarkGray))
}

fn key_style() -> Style {
    Style::new().fg(Color::Cyan).add_modifier(Modifier::BOLD)
}

pub fn help(frame: &mut Frame, area: Rect) {
    let row = |(k, h): (String, &str), w: usize| {
        vec![
            Span::styled(format!(" {k:<w$}"), key_style()),
            Span::raw(format!("{h:<25}")),
        ]
    };
    let mut lines: Vec<Line> = keys::help(Scope::Main)
        .into_iter()
        .map(|kh| Line::from(row(kh, 16)))
        .collect();
    lines.push(Line::styled(
        " In the upload form and path prompt:",
        Style::new().add_modifier(Modifier::BOLD),
    ));
    // Two bindings a line so the whole table fits an 80×24 terminal.
    let form = keys::help(Scope::Form);
    for pair in form.chunks(2) {
        lines.push(Line::from(
            pair.iter()
                .cloned()
                .flat_map(|kh| row(kh, 8))
                .collect::<Vec<_>>(),
        ));
    }
    let questions: Vec<String> = keys::help(Scope::Confirm)
        .into_iter()
        .map(|(k, h)| format!("{k} {h}"))
        .collect();
    lines.push(Line::from(vec![
        Span::styled(" In questions: ", key_style()),
        Span::raw(questions.join(" · ")),
    ]));
    let height = lines.len() as u16 + 2;
    dialog(
        frame,
        centered(area, 72, height),
        "Keys (Esc closes)",
        lines,
    );
}

/// The text of a field with a block cursor when it has the focus.
fn field(label: &str, value: &str, focused: bool) -> Line<'static> {
    let label_style = if focused { key_style() } else { Style::new() };
    let cursor = if focused { "█" } else { "" };
    Line::from(vec![
        Span::styled(format!(" {label:<8}"), label_style),
        Span::raw(format!("{value}{cursor}")),
    ])
}

fn matches_line(matches: &[String]) -> Option<Line<'static>> {
    (!matches.is_empty()).then(|| Line::from(dim(format!("          {}", matches.join("  ")))))
}

fn error_line(error: &Option<String>) -> Option<Line<'static>> {
    error
        .as_ref()
        .map(|e| Line::styled(format!(" {e}"), Style::new().fg(Color::Red)))
}

/// A row of choices with the chosen one reversed (← → when focused).
fn choices(label: &'static str, names: &[&str], chosen: usize, focused: bool) -> Line<'static> {
    let mut spans = vec![Span::styled(
        label,
        if focused { key_style() } else { Style::new() },
    )];
    for (i, name) in names.iter().enumerate() {
        spans.push(if i == chosen {
            Span::styled(
                format!("[{name}]"),
                Style::new().add_modifier(Modifier::REVERSED),
            )
        } else {
            Span::raw(format!(" {name} "))
        });
    }
    if focused {
        spans.push(dim("  ← →"));
    }
    Line::from(spans)
}

pub fn upload(frame: &mut Frame, area: Rect, form: &UploadForm, target: &str) {
    let mut lines = vec![field("File", &form.path, form.field == Field::Path)];
    lines.extend(matches_line(&form.matches));
    let mut width = field("Width", &form.width, form.field == Field::Width);
    width.spans.push(dim("   0 or -1 keeps the aspect ratio"));
    lines.push(width);
    lines.push(field("Height", &form.height, form.field == Field::Height));
    lines.push(choices(
        " Format ",
        &FORMATS,
        form.format,
        form.field == Field::Format,
    ));
    lines.push(choices(
        " Codec  ",
        &CODECS,
        form.codec,
        form.field == Field::Codec,
    ));
    lines.extend(error_line(&form.error));
    lines.push(Line::from(dim(format!(
        " hashed (sha256), then sent to {target} in the background"
    ))));
    dialog(
        frame,
        centered(area, 70, lines.len() as u16 + 2),
        "Upload a video",
        lines,
    );
}

pub fn retrieve(frame: &mut Frame, area: Rect, prompt: &PathPrompt) {
    let mut lines = vec![field("Save to", &prompt.path, true)];
    lines.extend(matches_line(&prompt.matches));
    lines.extend(error_line(&prompt.error));
    lines.push(Line::from(dim(
        " checked against the job's sha256, then renamed into place",
    )));
    let title = format!("Retrieve job {}", prompt.job_id);
    dialog(
        frame,
        centered(area, 70, lines.len() as u16 + 2),
        &title,
        lines,
    );
}

pub fn confirm(frame: &mut Frame, area: Rect, question: &str) {
    let lines = vec![
        Line::raw(format!(" {question}")),
        Line::raw(""),
        Line::from(vec![
            Span::styled(" y", key_style()),
            Span::raw(" yes   "),
            Span::styled("n", key_style()),
            Span::raw(" no"),
        ]),
    ];
    let height = 2 + 2 + (question.chars().count() as u16 / 56) + 1;
    dialog(frame, centered(area, 60, height), "Confirm", lines);
}

fn kv(key: &str, value: impl Into<String>) -> Line<'static> {
    Line::from(vec![
        Span::styled(format!(" {key:<10}"), key_style()),
        Span::raw(value.into()),
    ])
}

pub fn details(frame: &mut Frame, area: Rect, app: &App) {
    let (title, lines) = match app.focus {
        Pane::Nodes => match app.selected_node() {
            Some(n) => (format!("Node {}", n.node_id), node_lines(n)),
            None => ("Node".into(), vec![Line::raw(" no node selected")]),
        },
        Pane::Shards => match app
            .selected_job()
            .and_then(|j| j.shards.get(app.shard_sel).map(|s| (j, s)))
        {
            Some((job, s)) => (format!("Shard {} of {}", s.index, job.id), shard_lines(s)),
            None => ("Shard".into(), vec![Line::raw(" no shard selected")]),
        },
        Pane::Jobs | Pane::Log => match app.selected_job() {
            Some(job) => (format!("Job {}", job.id), job_lines(job)),
            None => ("Job".into(), vec![Line::raw(" no job selected")]),
        },
    };
    let mut lines = lines;
    if app.is_stale() {
        lines.insert(
            0,
            Line::styled(" (stale: as last seen)", Style::new().fg(Color::Red)),
        );
    }
    const WIDTH: u16 = 76;
    // Long lines wrap inside the borders: count the rows they take.
    let inner = usize::from(WIDTH - 2);
    let rows: usize = lines.iter().map(|l| l.width().max(1).div_ceil(inner)).sum();
    let height = (rows as u16 + 2).min(area.height.saturating_sub(4));
    let title = format!("{title} (Enter closes)");
    dialog(frame, centered(area, WIDTH, height), &title, lines);
}

fn node_lines(n: &NodeEntry) -> Vec<Line<'static>> {
    let mut lines = vec![
        kv("address", n.address.clone()),
        kv(
            "role",
            format!("{} (term {}), protocol {}", n.role, n.term, n.protocol),
        ),
        kv(
            "alive",
            format!(
                "{} (last heard {} ago)",
                if n.alive { "yes" } else { "NO" },
                format::eta(n.last_seen_ms as f64 / 1000.0)
            ),
        ),
        kv("slots", format!("{}/{} busy", n.slots_busy, n.slots_total)),
        kv(
            "shards",
            if n.current_shards.is_empty() {
                "-".into()
            } else {
                n.current_shards.join(", ")
            },
        ),
        kv("score", format!("{:.1} (lower is better)", n.score)),
    ];
    if let Some(p) = &n.score_parts {
        lines.push(kv(
            "parts",
            format!(
                "load/core {:.2}, iowait {:.1}%, net {:.1} MB/s, disk {:.1} MB/s, mem {:.0}%",
                p.load_per_core,
                p.iowait_percent,
                p.net_mb_per_s,
                p.disk_mb_per_s,
                p.memory_percent
            ),
        ));
    }
    lines
}

/// The `status` command's text block (minus its shard table) and backup.
fn job_lines(job: &JobInfo) -> Vec<Line<'static>> {
    let text = crate::output::job_text(job);
    let mut lines: Vec<Line> = text
        .lines()
        .take_while(|l| !l.is_empty())
        .map(|l| Line::raw(format!(" {l}")))
        .collect();
    let backup = backup_status(job).unwrap_or_else(|| "none yet (no output)".into());
    lines.push(Line::from(vec![Span::raw(" backup:    "), dim(backup)]));
    for rendition in crate::output::rendition_lines(job) {
        lines.push(kv("rung", rendition));
    }
    lines
}

fn shard_lines(s: &ShardInfo) -> Vec<Line<'static>> {
    let mut lines = vec![
        kv("state", format!("{} (attempt {})", s.state, s.attempts)),
        kv(
            "worker",
            format!(
                "{} ({})",
                worker_label(s),
                if s.worker.is_empty() { "-" } else { &s.worker }
            ),
        ),
        kv(
            "progress",
            format!(
                "{}, {} frames, {:.1} fps",
                format::percent(s.progress),
                s.frames,
                s.fps
            ),
        ),
        kv(
            "span",
            format!(
                "{:.1}s + {:.1}s of the source",
                s.start_seconds, s.duration_seconds
            ),
        ),
        kv(
            "times",
            format!(
                "encode {:.1}s, transfer {:.1}s",
                s.encode_seconds, s.transfer_seconds
            ),
        ),
    ];
    if !s.rung.is_empty() {
        lines.push(kv("rung", format!("{} of piece {}", s.rung, s.piece)));
    }
    if s.running_on.len() > 1 {
        lines.push(kv("copies", s.running_on.join(", ")));
    }
    for (key, value) in crate::output::shard_quality_lines(s.quality.as_ref()) {
        lines.push(kv(key, value));
    }
    if !s.message.is_empty() {
        lines.push(kv("message", s.message.clone()));
    }
    lines
}
