//! Small pure formatting helpers shared by `output/`, `progress.rs` and the
//! console: sizes, percentages, durations, rounding for JSON, and aligned
//! tables. A leaf.

/// `1536` → `"1.5 KiB"`; exact bytes below 1 KiB.
pub fn bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["KiB", "MiB", "GiB", "TiB", "PiB"];
    if n < 1024 {
        return format!("{n} B");
    }
    let mut value = n as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

/// A 0..1 fraction as a whole percent, rounded down so 99.9 % never shows 100 %.
pub fn percent(fraction: f32) -> String {
    format!("{}%", whole_percent(fraction))
}

/// A 0..1 fraction as a whole percent in 0..=100, rounded down.
pub fn whole_percent(fraction: f32) -> u32 {
    if fraction.is_nan() {
        return 0;
    }
    // Clamped to 0..=100 first, so the cast cannot truncate.
    (f64::from(fraction.clamp(0.0, 1.0)) * 100.0 + 1e-4).floor() as u32
}

/// Seconds as `"1h02m"`, `"3m05s"` or `"42s"`; `"unknown"` when negative.
pub fn eta(seconds: f64) -> String {
    if !seconds.is_finite() || seconds < 0.0 {
        return "unknown".to_owned();
    }
    let total = seconds.round() as u64;
    let (h, m, s) = (total / 3600, total / 60 % 60, total % 60);
    if h > 0 {
        format!("{h}h{m:02}m")
    } else if m > 0 {
        format!("{m}m{s:02}s")
    } else {
        format!("{s}s")
    }
}

/// Rounds to `digits` decimals, so `f32` values don't print as 0.41999998.
pub fn round(value: f64, digits: i32) -> f64 {
    let scale = 10f64.powi(digits);
    (value * scale).round() / scale
}

/// Column alignment for [`table`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Align {
    Left,
    Right,
}

/// Renders rows under a header, columns separated by two spaces, with no
/// trailing whitespace. Every line ends with `\n`.
pub fn table(header: &[(&str, Align)], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|(h, _)| h.chars().count()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate().take(widths.len()) {
            widths[i] = widths[i].max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let titles: Vec<String> = header.iter().map(|(h, _)| (*h).to_owned()).collect();
    for row in std::iter::once(&titles).chain(rows) {
        let mut line = String::new();
        for (i, (_, align)) in header.iter().enumerate() {
            let cell = row.get(i).map(String::as_str).unwrap_or("");
            let pad = widths[i].saturating_sub(cell.chars().count());
            if i > 0 {
                line.push_str("  ");
            }
            match align {
                Align::Left => {
                    line.push_str(cell);
                    line.push_str(&" ".repeat(pad));
                }
                Align::Right => {
                    line.push_str(&" ".repeat(pad));
                    line.push_str(cell);
                }
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_are_human() {
        assert_eq!(bytes(0), "0 B");
        assert_eq!(bytes(1023), "1023 B");
        assert_eq!(bytes(1536), "1.5 KiB");
        assert_eq!(bytes(5 * 1024 * 1024), "5.0 MiB");
        assert_eq!(bytes(3 * 1024 * 1024 * 1024), "3.0 GiB");
    }

    #[test]
    fn percents_round_down_and_clamp() {
        assert_eq!(percent(0.0), "0%");
        assert_eq!(percent(0.42), "42%");
        assert_eq!(percent(0.999), "99%");
        assert_eq!(percent(1.0), "100%");
        assert_eq!(percent(1.7), "100%");
        assert_eq!(percent(-0.2), "0%");
        assert_eq!(percent(f32::NAN), "0%");
    }

    #[test]
    fn etas_are_compact() {
        assert_eq!(eta(-1.0), "unknown");
        assert_eq!(eta(42.4), "42s");
        assert_eq!(eta(185.0), "3m05s");
        assert_eq!(eta(3720.0), "1h02m");
    }

    #[test]
    fn tables_align_columns() {
        let rows = vec![
            vec!["0".to_owned(), "done".to_owned()],
            vec!["10".to_owned(), "encoding".to_owned()],
        ];
        let text = table(&[("index", Align::Right), ("state", Align::Left)], &rows);
        assert_eq!(text, "index  state\n    0  done\n   10  encoding\n");
    }
}

/// Where an unfinished job stands in the scheduling between jobs (pure):
/// its place in the order jobs are served, the slots it holds of its fair
/// share, its priority when not the default and how long it waited for
/// its first slot. `None` for an ended job (position 0).
pub fn standing(
    position: u32,
    held: u32,
    share: u32,
    priority: u32,
    waited: f64,
) -> Option<String> {
    if position == 0 {
        return None;
    }
    let mut text = format!("#{position} in the queue");
    if share == 0 && held == 0 {
        text.push_str(", no slot yet");
    } else {
        text.push_str(&format!(", {held} of its share of {share} slots"));
    }
    if priority != 10 {
        text.push_str(&format!(", priority {priority}"));
    }
    text.push_str(&format!(", waited {}", eta(waited)));
    Some(text)
}

/// A finished output's backup state in a few words (pure): copies held
/// besides the master's against those wanted, who holds them, and who is
/// receiving one now; `None` while there is no output.
pub fn backups(
    output_sha256: &str,
    holders: &[String],
    pending: &[String],
    wanted: u32,
) -> Option<String> {
    if output_sha256.is_empty() {
        return None;
    }
    // The master's own copy is the first holder.
    let copies = holders.len().saturating_sub(1);
    let mut text = if wanted == 0 && copies == 0 {
        "no copies besides the master's (no other live node)".to_string()
    } else {
        format!("{copies}/{wanted} copies besides the master's")
    };
    if !holders.is_empty() {
        text.push_str(&format!(": {}", holders.join(", ")));
    }
    if !pending.is_empty() {
        text.push_str(&format!("; sending to {}", pending.join(", ")));
    }
    Some(text)
}

#[cfg(test)]
mod standing_tests {
    use super::standing;

    #[test]
    fn standing_reads_plainly() {
        assert_eq!(standing(0, 0, 0, 10, 3.0), None);
        assert_eq!(
            standing(2, 1, 3, 10, 4.2).as_deref(),
            Some("#2 in the queue, 1 of its share of 3 slots, waited 4s")
        );
        assert_eq!(
            standing(5, 0, 0, 20, 75.0).as_deref(),
            Some("#5 in the queue, no slot yet, priority 20, waited 1m15s")
        );
    }
}

#[cfg(test)]
mod backup_tests {
    use super::backups;

    #[test]
    fn backup_state_reads_plainly() {
        let ids = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(backups("", &[], &[], 2), None);
        assert_eq!(
            backups("ab", &ids(&["m", "b"]), &ids(&["c"]), 2).as_deref(),
            Some("1/2 copies besides the master's: m, b; sending to c")
        );
        assert_eq!(
            backups("ab", &ids(&["m"]), &[], 0).as_deref(),
            Some("no copies besides the master's (no other live node): m")
        );
    }
}
