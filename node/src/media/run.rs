//! Running ffmpeg/ffprobe: kill on drop, the memory limit on every child
//! (see [`super::limit`]), keep the tail of stderr for error messages,
//! parse `-progress` output.

use std::os::unix::process::ExitStatusExt;
use std::path::PathBuf;
use std::process::Stdio;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};
use tokio::process::{Child, Command};

/// How many bytes of stderr we keep for an error message.
const STDERR_TAIL: usize = 2048;

/// What ffmpeg prints (strerror of ENOSPC) when a write fails on a full
/// disk, e.g. "av_interleaved_write_frame(): No space left on device".
const NO_SPACE: &str = "No space left on device";

#[derive(Debug, thiserror::Error)]
pub enum MediaError {
    #[error("could not start {program}: {source}")]
    Spawn {
        program: String,
        source: std::io::Error,
    },
    #[error("{program} failed ({status}): {stderr}")]
    Failed {
        program: String,
        status: String,
        stderr: String,
    },
    /// ffmpeg could not write its output because the disk is full. Said
    /// plainly instead of as an ffmpeg stderr dump: it is not the video's
    /// fault, and the remedy is to free space on this node.
    #[error(
        "{} (ENOSPC): {program} could not write its output",
        crate::store::DISK_FULL
    )]
    DiskFull { program: String },
    /// ffmpeg (or ffprobe) ran out of memory under the limit this node
    /// sets on it: said with the limit and the flag that sets it, since
    /// the remedy is a larger limit (or a smaller picture), not the input.
    #[error(
        "{program} ran out of memory under this node's limit of {} MiB per ffmpeg process (--encoder-memory-mb): {detail}",
        limit / (1 << 20)
    )]
    OutOfMemory {
        program: String,
        limit: u64,
        detail: String,
    },
    #[error("{0}")]
    Invalid(String),
    #[error("i/o error: {0}")]
    Io(#[from] std::io::Error),
}

/// Where the ffmpeg and ffprobe binaries are.
#[derive(Debug, Clone)]
pub struct Tools {
    pub ffmpeg: PathBuf,
    pub ffprobe: PathBuf,
}

impl Default for Tools {
    fn default() -> Self {
        Self {
            ffmpeg: "ffmpeg".into(),
            ffprobe: "ffprobe".into(),
        }
    }
}

/// Progress of one ffmpeg run, from `-progress pipe:1`.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Progress {
    pub frames: u64,
    pub fps: f32,
}

pub(crate) fn command(program: &std::path::Path) -> Command {
    let mut cmd = Command::new(program);
    if let Some((name, mark)) = super::orphans::encoder_mark() {
        cmd.env(name, mark);
    }
    cmd.kill_on_drop(true)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    cmd
}

/// Starts `cmd` and puts the memory limit on it (a child that already
/// exited has nothing left to limit).
fn spawn(cmd: &mut Command) -> Result<Child, MediaError> {
    let child = cmd.spawn().map_err(|source| MediaError::Spawn {
        program: program_name(cmd),
        source,
    })?;
    if let (Some(limit), Some(pid)) = (super::limit::memory_limit(), child.id())
        && let Err(e) = super::limit::apply(pid, limit)
        && e.raw_os_error() != Some(3)
    {
        tracing::warn!(program = %program_name(cmd), error = %e, "could not limit the memory of a child");
    }
    Ok(child)
}

fn program_name(cmd: &Command) -> String {
    cmd.as_std().get_program().to_string_lossy().into_owned()
}

/// Reads a stream to its end keeping only the last [`STDERR_TAIL`] bytes.
async fn read_tail(mut reader: impl tokio::io::AsyncRead + Unpin) -> String {
    let mut tail: Vec<u8> = Vec::new();
    let mut buf = [0u8; 4096];
    while let Ok(n) = reader.read(&mut buf).await {
        if n == 0 {
            break;
        }
        tail.extend_from_slice(&buf[..n]);
        if tail.len() > 2 * STDERR_TAIL {
            tail.drain(..tail.len() - STDERR_TAIL);
        }
    }
    let start = tail.len().saturating_sub(STDERR_TAIL);
    String::from_utf8_lossy(&tail[start..]).trim().to_string()
}

/// Runs an ffmpeg started with `-progress pipe:1`, reporting its
/// progress after each block.
pub(crate) async fn run_with_progress(
    cmd: Command,
    mut on_progress: impl FnMut(Progress),
) -> Result<(), MediaError> {
    let mut progress = Progress::default();
    run_lines(cmd, |line| {
        if parse_progress_line(line, &mut progress) {
            on_progress(progress);
        }
    })
    .await
}

/// Runs a command to completion, streaming each stdout line to `on_line`.
/// Fails with the stderr tail when the exit status is not success.
pub(crate) async fn run_lines(
    mut cmd: Command,
    mut on_line: impl FnMut(&str),
) -> Result<(), MediaError> {
    let program = program_name(&cmd);
    let mut child = spawn(&mut cmd)?;
    let stderr = child.stderr.take().map(|s| tokio::spawn(read_tail(s)));
    if let Some(stdout) = child.stdout.take() {
        let mut lines = BufReader::new(stdout).lines();
        while let Some(line) = lines.next_line().await? {
            on_line(&line);
        }
    }
    let status = child.wait().await?;
    let stderr = match stderr {
        Some(task) => task.await.unwrap_or_default(),
        None => String::new(),
    };
    // Checked before the exit status: ffmpeg can exit 0 after a write
    // failed for want of space (the trailer of a NUT file, say), leaving
    // a truncated output that only a later check would find unreadable,
    // blamed on the shard instead of the disk (the chaos soak).
    if stderr.contains(NO_SPACE) {
        tracing::warn!(%program, %status, %stderr, "the disk is full");
        Err(MediaError::DiskFull { program })
    } else if status.success() {
        Ok(())
    } else if let Some(limit) = super::limit::memory_limit()
        && super::limit::ran_out_of_memory(&stderr, status.signal())
    {
        tracing::warn!(%program, %status, %stderr, limit, "a child ran out of memory under its limit");
        Err(MediaError::OutOfMemory {
            program,
            limit,
            detail: first_lines(&stderr, &status.to_string()),
        })
    } else {
        Err(MediaError::Failed {
            program,
            status: status.to_string(),
            stderr,
        })
    }
}

/// The first line of `stderr` and how the process ended, short enough for
/// a job's reason (ffmpeg repeats a failed allocation on every frame).
fn first_lines(stderr: &str, status: &str) -> String {
    let first: String = stderr
        .lines()
        .next()
        .unwrap_or("")
        .chars()
        .take(200)
        .collect();
    if first.is_empty() {
        status.to_string()
    } else {
        format!("{first} ({status})")
    }
}

/// Runs a command and returns its whole stdout (only for small outputs
/// such as ffprobe's stream description).
pub(crate) async fn run_output(cmd: Command, limit: usize) -> Result<String, MediaError> {
    let mut out = String::new();
    let mut too_long = false;
    run_lines(cmd, |line| {
        if out.len() + line.len() < limit {
            out.push_str(line);
            out.push('\n');
        } else {
            too_long = true;
        }
    })
    .await?;
    if too_long {
        return Err(MediaError::Invalid(format!(
            "tool output longer than {limit} bytes"
        )));
    }
    Ok(out)
}

/// Folds one `-progress` line into `progress`; true when a block ended.
pub(crate) fn parse_progress_line(line: &str, progress: &mut Progress) -> bool {
    match line.split_once('=') {
        Some(("frame", v)) => {
            progress.frames = v.trim().parse().unwrap_or(progress.frames);
            false
        }
        Some(("fps", v)) => {
            progress.fps = v.trim().parse().unwrap_or(progress.fps);
            false
        }
        Some(("progress", _)) => true,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn progress_lines_fold_into_frames_and_fps() {
        let mut p = Progress::default();
        assert!(!parse_progress_line("frame=42", &mut p));
        assert!(!parse_progress_line("fps=12.5", &mut p));
        assert!(!parse_progress_line("bitrate=N/A", &mut p));
        assert!(parse_progress_line("progress=continue", &mut p));
        assert_eq!(
            p,
            Progress {
                frames: 42,
                fps: 12.5
            }
        );
        parse_progress_line("fps=N/A", &mut p);
        assert_eq!(p.fps, 12.5);
    }

    #[tokio::test]
    async fn failure_keeps_the_stderr_tail() {
        let mut cmd = command(std::path::Path::new("sh"));
        cmd.args(["-c", "echo out; echo 'something broke' >&2; exit 3"]);
        let mut lines = Vec::new();
        let err = run_lines(cmd, |l| lines.push(l.to_string()))
            .await
            .expect_err("must fail");
        assert_eq!(lines, ["out"]);
        let text = err.to_string();
        assert!(text.contains("something broke"), "{text}");
        assert!(text.contains("exit status: 3"), "{text}");
    }

    #[tokio::test]
    async fn a_full_disk_is_named_not_dumped() {
        let mut cmd = command(std::path::Path::new("sh"));
        cmd.args([
            "-c",
            "echo 'av_interleaved_write_frame(): No space left on device' >&2; exit 1",
        ]);
        let err = run_lines(cmd, |_| {}).await.expect_err("must fail");
        assert!(matches!(err, MediaError::DiskFull { .. }), "{err:?}");
        let text = err.to_string();
        assert!(
            crate::store::names_full_disk(&text) && text.contains("sh"),
            "{text}"
        );
        assert!(!text.contains("av_interleaved"), "{text}");

        let mut cmd = command(std::path::Path::new("sh"));
        cmd.args([
            "-c",
            "echo 'Error writing trailer: No space left on device' >&2; exit 0",
        ]);
        let err = run_lines(cmd, |_| {})
            .await
            .expect_err("a write that failed for space fails the run, whatever the exit status");
        assert!(matches!(err, MediaError::DiskFull { .. }), "{err:?}");
    }

    #[tokio::test]
    async fn missing_program_is_a_spawn_error() {
        let cmd = command(std::path::Path::new("/nonexistent/ffmpeg"));
        let err = run_lines(cmd, |_| {}).await.expect_err("must fail");
        assert!(matches!(err, MediaError::Spawn { .. }));
    }
}
