//! Progress reporting on stderr: indicatif bars when stderr is a terminal and
//! `--json` is off, otherwise plain lines (one per 10 %) so logs and scripts
//! stay readable. stdout is never touched here.
//!
//! The subcommands' progress only: the console draws its own
//! (`tui/task_bar.rs`). Sits above the client: [`ByteBar`] implements
//! `transfer::Progress`, and [`JobBar::update`] is what a command hands
//! `client::wait_for_job`.

use std::io::IsTerminal;
use std::sync::{Arc, Mutex};

use indicatif::{ProgressBar, ProgressStyle};
use vidshard_proto::v1::JobInfo;

use crate::format;
use crate::job::shard_counts;
use crate::transfer::Progress;

/// How progress is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Bars,
    Lines,
}

impl Mode {
    /// Bars only for a human at a terminal; JSON mode always gets lines.
    pub fn detect(json: bool) -> Mode {
        if !json && std::io::stderr().is_terminal() {
            Mode::Bars
        } else {
            Mode::Lines
        }
    }
}

/// The tenth of the way reached by `fraction` (0..=10), if it is past `last`.
pub fn next_decile(last: u32, fraction: f32) -> Option<u32> {
    let decile = format::whole_percent(fraction) / 10;
    (decile > last).then_some(decile)
}

fn style(template: &str) -> ProgressStyle {
    ProgressStyle::with_template(template)
        .map(|s| s.progress_chars("=> "))
        .unwrap_or_else(|_| ProgressStyle::default_bar())
}

struct LineState {
    position: u64,
    decile: u32,
    done: bool,
}

enum ByteInner {
    Bar(ProgressBar),
    Lines {
        label: String,
        total: u64,
        state: Mutex<LineState>,
    },
}

/// Progress over a known (or unknown, 0) number of bytes. Cheap to clone and
/// usable from blocking threads.
#[derive(Clone)]
pub struct ByteBar(Arc<ByteInner>);

impl ByteBar {
    pub fn new(mode: Mode, label: &str, total: u64) -> Self {
        let inner = match mode {
            Mode::Bars => {
                let bar = if total > 0 {
                    ProgressBar::new(total).with_style(style(
                        "{prefix:>13} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} ETA {eta}",
                    ))
                } else {
                    ProgressBar::new_spinner()
                        .with_style(style("{prefix:>13} {spinner} {bytes} {bytes_per_sec}"))
                };
                ByteInner::Bar(bar.with_prefix(label.to_owned()))
            }
            Mode::Lines => ByteInner::Lines {
                label: label.to_owned(),
                total,
                state: Mutex::new(LineState {
                    position: 0,
                    decile: 0,
                    done: false,
                }),
            },
        };
        ByteBar(Arc::new(inner))
    }
}

impl Progress for ByteBar {
    fn inc(&self, n: u64) {
        match &*self.0 {
            ByteInner::Bar(bar) => bar.inc(n),
            ByteInner::Lines {
                label,
                total,
                state,
            } => {
                let Ok(mut state) = state.lock() else { return };
                state.position += n;
                if *total == 0 {
                    return;
                }
                let fraction = (state.position as f64 / *total as f64) as f32;
                if let Some(decile) = next_decile(state.decile, fraction) {
                    state.decile = decile;
                    state.done = decile >= 10;
                    eprintln!(
                        "{label}: {}% ({} / {})",
                        decile * 10,
                        format::bytes(state.position),
                        format::bytes(*total)
                    );
                }
            }
        }
    }

    /// Marks the transfer complete (prints a final line if none said 100 %).
    fn finish(&self) {
        match &*self.0 {
            ByteInner::Bar(bar) => bar.finish(),
            ByteInner::Lines { label, state, .. } => {
                let Ok(mut state) = state.lock() else { return };
                if !state.done {
                    state.done = true;
                    eprintln!("{label}: done ({})", format::bytes(state.position));
                }
            }
        }
    }

    fn restart(&self) {
        match &*self.0 {
            ByteInner::Bar(bar) => bar.set_position(0),
            ByteInner::Lines { label, state, .. } => {
                let Ok(mut state) = state.lock() else { return };
                *state = LineState {
                    position: 0,
                    decile: 0,
                    done: false,
                };
                eprintln!("{label}: the node was lost; starting over on another");
            }
        }
    }

    /// Stops the bar after a failure, leaving it visible.
    fn abandon(&self) {
        if let ByteInner::Bar(bar) = &*self.0 {
            bar.abandon();
        }
    }
}

struct JobLines {
    status: String,
    decile: u32,
}

enum JobInner {
    Bar(ProgressBar),
    Lines(Mutex<JobLines>),
}

/// Progress of a job being processed: overall percent, shards, ETA.
pub struct JobBar(JobInner);

/// `"shards 3/8, ETA 1m20s"` for a job.
pub fn job_summary(job: &JobInfo) -> String {
    let (done, total) = shard_counts(job);
    format!(
        "shards {done}/{total}, ETA {}",
        format::eta(job.eta_seconds)
    )
}

impl JobBar {
    pub fn new(mode: Mode) -> Self {
        match mode {
            Mode::Bars => {
                let bar = ProgressBar::new(1000)
                    .with_style(style("{prefix:>13} [{bar:30}] {percent:>3}% {msg}"));
                JobBar(JobInner::Bar(bar))
            }
            Mode::Lines => JobBar(JobInner::Lines(Mutex::new(JobLines {
                status: String::new(),
                decile: 0,
            }))),
        }
    }

    pub fn update(&self, job: &JobInfo) {
        let fraction = if job.progress.is_nan() {
            0.0
        } else {
            job.progress.clamp(0.0, 1.0)
        };
        match &self.0 {
            JobInner::Bar(bar) => {
                bar.set_prefix(job.status.clone());
                bar.set_position((f64::from(fraction) * 1000.0) as u64);
                bar.set_message(job_summary(job));
            }
            JobInner::Lines(lines) => {
                let Ok(mut lines) = lines.lock() else { return };
                if lines.status != job.status {
                    lines.status = job.status.clone();
                    eprintln!("job {}: {}", job.id, job.status);
                }
                if let Some(decile) = next_decile(lines.decile, fraction) {
                    lines.decile = decile;
                    eprintln!("processing: {}% ({})", decile * 10, job_summary(job));
                }
            }
        }
    }

    pub fn finish(&self) {
        if let JobInner::Bar(bar) = &self.0 {
            bar.finish();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deciles_fire_once_per_tenth() {
        assert_eq!(next_decile(0, 0.05), None);
        assert_eq!(next_decile(0, 0.10), Some(1));
        assert_eq!(next_decile(1, 0.19), None);
        assert_eq!(next_decile(1, 0.35), Some(3));
        assert_eq!(next_decile(9, 1.0), Some(10));
        assert_eq!(next_decile(10, 1.0), None);
    }

    #[test]
    fn job_summary_counts_done_shards() {
        let job = JobInfo {
            eta_seconds: 80.0,
            shards: vec![
                vidshard_proto::v1::ShardInfo {
                    state: "done".into(),
                    ..Default::default()
                },
                vidshard_proto::v1::ShardInfo {
                    state: "encoding".into(),
                    ..Default::default()
                },
            ],
            ..Default::default()
        };
        assert_eq!(job_summary(&job), "shards 1/2, ETA 1m20s");
    }
}
