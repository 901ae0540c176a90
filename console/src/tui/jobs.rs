//! The jobs pane (a gauge per job: percent, ETA, its place in the queue
//! and slots held of its share, and a marked place for the backup status) and the shards pane of the selected job (a gauge per
//! shard coloured by state, with its worker). Drawing only.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span, Text};
use ratatui::widgets::{List, ListItem, ListState};
use vidshard_proto::v1::{JobInfo, ShardInfo};

use super::app::App;
use super::state::Pane;
use super::widgets::{bar, highlight, pane_block, placeholder};
use crate::format;
use crate::job::{JobState, classify_status};

pub fn jobs(frame: &mut Frame, area: Rect, app: &App) {
    let jobs = app.jobs();
    let running = jobs
        .iter()
        .filter(|j| classify_status(&j.status) == JobState::Working)
        .count();
    let omitted = app.snapshot().map_or(0, |s| s.jobs_omitted);
    let title = if omitted > 0 {
        format!(
            "Jobs ({}, {running} running; {omitted} more not shown)",
            jobs.len()
        )
    } else {
        format!("Jobs ({}, {running} running)", jobs.len())
    };
    let block = pane_block(app, Pane::Jobs, title);
    if app.view.is_none() {
        return placeholder(frame, area, block, String::new());
    }
    if jobs.is_empty() {
        // A node without quorum (e.g. a worker cut off from its master)
        // lists no jobs because it does not know them, not because there
        // are none.
        let text = match app.snapshot() {
            Some(s) if !s.has_quorum => {
                format!("jobs unknown: {} has no quorum", or_id(&s.node_id))
            }
            _ => "no jobs yet: press u to upload".into(),
        };
        return placeholder(frame, area, block, text);
    }
    let width = area.width.saturating_sub(2) as usize;
    let items: Vec<ListItem> = jobs
        .iter()
        .map(|j| ListItem::new(job_text(j, width)))
        .collect();
    let list = List::new(items)
        .block(block)
        .highlight_style(highlight(app, Pane::Jobs));
    let mut state = ListState::default().with_selected(app.selected_job_index());
    frame.render_stateful_widget(list, area, &mut state);
}

fn job_text(job: &JobInfo, width: usize) -> Text<'static> {
    let state = classify_status(&job.status);
    let status_style = match state {
        JobState::Completed => Style::new().fg(Color::Green),
        JobState::Failed => Style::new().fg(Color::Red),
        JobState::Working => Style::new().fg(Color::Cyan),
    };
    let mut first = vec![
        Span::styled(job.id.clone(), Style::new().add_modifier(Modifier::BOLD)),
        Span::raw(" "),
        Span::styled(job.status.clone(), status_style),
    ];
    match state {
        JobState::Working => {
            first.push(Span::raw(format!(" ETA {}", eta(job.eta_seconds))));
            if job.queue_position > 0 {
                // Where it stands between jobs: place, slots held of its share.
                first.push(Span::styled(
                    format!(
                        " #{} slots {}/{}",
                        job.queue_position, job.slots_held, job.slot_share
                    ),
                    Style::new().fg(Color::DarkGray),
                ));
            }
        }
        JobState::Completed => {
            first.push(Span::raw(format!(" {}", format::bytes(job.output_bytes))));
            let copies = job.output_holders.len().saturating_sub(1);
            let backup = format!("{copies}/{}", job.output_replicas_wanted);
            first.push(Span::styled(
                format!(" backups {backup}"),
                Style::new().fg(Color::DarkGray),
            ));
        }
        JobState::Failed if !job.message.is_empty() => {
            first.push(Span::styled(
                format!(" {}", job.message),
                Style::new().fg(Color::Red),
            ));
        }
        JobState::Failed => {}
    }
    let (done, rest) = bar(job.progress, width.saturating_sub(6));
    let second = Line::from(vec![
        Span::raw(" "),
        Span::styled(done, status_style),
        Span::styled(rest, Style::new().fg(Color::DarkGray)),
        Span::raw(format!("{:>5}", format::percent(job.progress))),
    ]);
    Text::from(vec![Line::from(first), second])
}

fn or_id(id: &str) -> &str {
    if id.is_empty() { "the node" } else { id }
}

/// ETA for a list: `?` when the node does not know.
fn eta(seconds: f64) -> String {
    if seconds.is_finite() && seconds >= 0.0 {
        format::eta(seconds)
    } else {
        "?".into()
    }
}

/// How a shard is drawn: retried (attempts > 1) shows over the state
/// until the shard is done or failed.
pub fn shard_look(shard: &ShardInfo) -> Color {
    match shard.state.as_str() {
        "failed" => Color::Red,
        "done" => Color::Green,
        _ if shard.attempts > 1 => Color::Yellow,
        "encoding" => Color::Cyan,
        "verifying" => Color::Magenta,
        _ => Color::DarkGray,
    }
}

/// The worker of a shard; `+n` when a straggler runs on several.
pub fn worker_label(shard: &ShardInfo) -> String {
    let main = [&shard.worker_id, &shard.worker]
        .into_iter()
        .find(|w| !w.is_empty())
        .cloned()
        .unwrap_or_else(|| "-".into());
    match shard.running_on.len() {
        0 | 1 => main,
        n => format!("{main} +{}", n - 1),
    }
}

pub fn shards(frame: &mut Frame, area: Rect, app: &App) {
    let Some(job) = app.selected_job() else {
        let block = pane_block(app, Pane::Shards, "Shards".into());
        return placeholder(frame, area, block, String::new());
    };
    let done = job.shards.iter().filter(|s| s.state == "done").count();
    let title = format!("Shards of {} ({done}/{} done)", job.id, job.shards.len());
    let block = pane_block(app, Pane::Shards, title);
    if job.shards.is_empty() {
        let text = if job.finished {
            "no shards listed"
        } else {
            "no shards yet"
        };
        return placeholder(frame, area, block, text.into());
    }
    let width = area.width.saturating_sub(2) as usize;
    let worker_w = job
        .shards
        .iter()
        .map(|s| worker_label(s).chars().count())
        .max()
        .unwrap_or(1)
        .min(14);
    let label = |s: &ShardInfo| match s.attempts {
        0 | 1 => s.state.clone(),
        n => format!("{}×{n}", s.state),
    };
    let state_w = job
        .shards
        .iter()
        .map(|s| label(s).chars().count())
        .max()
        .unwrap_or(4);
    let idx_w = job
        .shards
        .iter()
        .map(|s| s.index.to_string().len())
        .max()
        .unwrap_or(1)
        + 1;
    let fps = width >= 60;
    let fixed = idx_w + state_w + 5 + worker_w + 4 + if fps { 8 } else { 0 };
    let bar_w = width.saturating_sub(fixed).max(3);
    let items: Vec<ListItem> = job
        .shards
        .iter()
        .map(|s| {
            let color = shard_look(s);
            let (filled, rest) = bar(s.progress, bar_w);
            let mut spans = vec![
                Span::raw(format!("{:<idx_w$} ", format!("#{}", s.index))),
                Span::styled(format!("{:<state_w$} ", label(s)), Style::new().fg(color)),
                Span::styled(filled, Style::new().fg(color)),
                Span::styled(rest, Style::new().fg(Color::DarkGray)),
                Span::raw(format!("{:>5} ", format::percent(s.progress))),
            ];
            if fps {
                let rate = if s.state == "encoding" {
                    format!("{:.0} fps", s.fps)
                } else {
                    String::new()
                };
                spans.push(Span::raw(format!("{rate:>7} ")));
            }
            spans.push(Span::raw(worker_label(s)));
            ListItem::new(Line::from(spans))
        })
        .collect();
    let list = List::new(items)
        .block(block)
        .highlight_style(highlight(app, Pane::Shards));
    let selected = app.shard_sel.min(job.shards.len() - 1);
    frame.render_stateful_widget(
        list,
        area,
        &mut ListState::default().with_selected(Some(selected)),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_are_coloured_by_state_and_retries() {
        let shard = |state: &str, attempts: u32| ShardInfo {
            state: state.into(),
            attempts,
            ..Default::default()
        };
        assert_eq!(shard_look(&shard("encoding", 1)), Color::Cyan);
        assert_eq!(shard_look(&shard("encoding", 2)), Color::Yellow);
        assert_eq!(shard_look(&shard("done", 3)), Color::Green);
        assert_eq!(shard_look(&shard("failed", 3)), Color::Red);
        assert_eq!(shard_look(&shard("queued", 0)), Color::DarkGray);
        let mut dup = shard("encoding", 1);
        dup.worker_id = "node-b".into();
        dup.running_on = vec!["b:1".into(), "c:1".into()];
        assert_eq!(worker_label(&dup), "node-b +1");
        assert_eq!(worker_label(&shard("queued", 0)), "-");
    }
}
