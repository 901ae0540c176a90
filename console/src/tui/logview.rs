//! The log pane: lines go into tui-logger and its widget shows them.
//!
//! The app composes every line itself, time included, from its own clock
//! or the cluster event's time (so a replayed event shows when it happened,
//! not when the console heard of it, and fixtures render identically every
//! run). Lines are sent straight to tui-logger's buffer with a target per
//! console ("<scope>::cluster", "<scope>::console"), and the pane shows only
//! those targets: tests can use their own scope and never see each other.

use jiff::tz::TimeZone;
use log::{Level, LevelFilter};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::Line;
use tui_logger::{ExtLogRecord, LogFormatter, TuiWidgetState};

/// Where a line comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// An event of the cluster, from a snapshot.
    Cluster,
    /// Something the console itself did or saw.
    Console,
}

/// One line for the log pane, fully composed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogLine {
    pub level: Level,
    pub source: Source,
    pub text: String,
}

/// `HH:MM:SS` of a unix time in milliseconds, in `tz`.
pub fn clock(unix_ms: u64, tz: &TimeZone) -> String {
    i64::try_from(unix_ms)
        .ok()
        .and_then(|ms| jiff::Timestamp::from_millisecond(ms).ok())
        .map(|t| t.to_zoned(tz.clone()).strftime("%H:%M:%S").to_string())
        .unwrap_or_else(|| "--:--:--".to_owned())
}

/// The level of a cluster event's level word (unknown words are info).
pub fn level_of(word: &str) -> Level {
    match word.to_ascii_lowercase().as_str() {
        "error" => Level::Error,
        "warn" | "warning" => Level::Warn,
        "debug" => Level::Debug,
        _ => Level::Info,
    }
}

/// Composes a line: `12:00:03 warn node-c missed heartbeats` for the
/// cluster, `12:00:05 console: connected to …` for the console.
pub fn line(level: Level, source: Source, unix_ms: u64, tz: &TimeZone, message: &str) -> LogLine {
    let time = clock(unix_ms, tz);
    let tag = match (source, level) {
        (Source::Console, _) => "console: ",
        (Source::Cluster, Level::Error) => "error ",
        (Source::Cluster, Level::Warn) => "warn ",
        (Source::Cluster, _) => "",
    };
    let message = message.replace(['\n', '\r'], " ");
    LogLine {
        level,
        source,
        text: format!("{time} {tag}{message}"),
    }
}

fn target(scope: &str, source: Source) -> String {
    match source {
        Source::Cluster => format!("{scope}::cluster"),
        Source::Console => format!("{scope}::console"),
    }
}

/// Puts a line into tui-logger's buffer (works with or without the global
/// logger installed).
pub fn emit(scope: &str, line: &LogLine) {
    let target = target(scope, line.source);
    tui_logger::Drain::new().log(
        &log::Record::builder()
            .level(line.level)
            .target(&target)
            .args(format_args!("{}", line.text))
            .build(),
    );
}

/// Widget state showing only this scope's lines.
pub fn widget_state(scope: &str) -> TuiWidgetState {
    TuiWidgetState::new()
        .set_default_display_level(LevelFilter::Off)
        .set_level_for_target(&target(scope, Source::Cluster), LevelFilter::Debug)
        .set_level_for_target(&target(scope, Source::Console), LevelFilter::Debug)
}

/// Shows the composed text, coloured by level, wrapped with an indent.
pub struct Formatter;

/// Width of the `HH:MM:SS ` prefix, the indent of wrapped lines.
const INDENT: usize = 9;

impl LogFormatter for Formatter {
    fn min_width(&self) -> u16 {
        (INDENT + 10) as u16
    }

    fn format(&self, width: usize, evt: &ExtLogRecord) -> Vec<Line<'_>> {
        let style = match evt.level {
            Level::Error => Style::default().fg(Color::Red),
            Level::Warn => Style::default().fg(Color::Yellow),
            Level::Info => Style::default(),
            Level::Debug | Level::Trace => Style::default().add_modifier(Modifier::DIM),
        };
        wrap(evt.msg(), width.max(INDENT + 1), INDENT)
            .into_iter()
            .map(|text| Line::styled(text, style))
            .collect()
    }
}

/// Splits `text` into lines of at most `width` characters, continuation
/// lines indented by `indent`.
pub fn wrap(text: &str, width: usize, indent: usize) -> Vec<String> {
    let chars: Vec<char> = text.chars().collect();
    let mut lines = Vec::new();
    let mut at = 0;
    while at < chars.len() || lines.is_empty() {
        let pad = if lines.is_empty() { 0 } else { indent };
        let take = (width - pad).min(chars.len() - at);
        let mut piece = " ".repeat(pad);
        piece.extend(&chars[at..at + take]);
        lines.push(piece);
        at += take;
        if take == 0 {
            break;
        }
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_carry_their_own_time_and_tag() {
        let utc = TimeZone::UTC;
        let t = 1_767_614_403_000; // 2026-01-05 12:00:03 UTC
        let warn = line(Level::Warn, Source::Cluster, t, &utc, "node-c\nlate");
        assert_eq!(warn.text, "12:00:03 warn node-c late");
        let own = line(Level::Info, Source::Console, t, &utc, "connected");
        assert_eq!(own.text, "12:00:03 console: connected");
        assert_eq!(clock(u64::MAX, &utc), "--:--:--");
        assert_eq!(level_of("WARNING"), Level::Warn);
        assert_eq!(level_of("whatever"), Level::Info);
    }

    #[test]
    fn long_lines_wrap_under_the_time() {
        assert_eq!(
            wrap("12:00:00 abcdefghij", 12, 9),
            vec!["12:00:00 abc", "         def", "         ghi", "         j"]
        );
        assert_eq!(wrap("", 12, 9), vec![""]);
    }
}
