//! Feeding encoded shards to a join that is already running.
//!
//! The join's ffconcat list names one named pipe per shard. The concat
//! demuxer opens each pipe when it reaches it and waits there until that
//! shard is written into it, so the join works through the leading shards
//! while the last ones still encode, and ends moments after the last one
//! arrives instead of starting then. The list, the options and so the
//! output bytes are the same as a join over finished files (checked by
//! `node/tests/encode.rs` and the bench's frame counts).

use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio::net::unix::pipe;

use super::run::{MediaError, command, run_lines};

/// `ENXIO`: a write-only, non-blocking open of a pipe nobody reads yet.
const NO_READER: i32 = 6;

/// How often to look again for the join's reader on a pipe (only while
/// the join is still busy with the shards before it).
const READER_POLL: Duration = Duration::from_millis(2);

/// Paths per `mkfifo` call (well under the argument size limit).
const PIPES_PER_CALL: usize = 256;

/// Creates the named pipes `paths` (mode 600). std has no mkfifo, so this
/// runs coreutils' `mkfifo`, a few hundred paths per call.
pub async fn make_pipes(paths: &[PathBuf]) -> Result<(), MediaError> {
    for batch in paths.chunks(PIPES_PER_CALL) {
        let mut cmd = command(Path::new("mkfifo"));
        cmd.args(["-m", "600"]).args(batch);
        run_lines(cmd, |_| {}).await?;
    }
    Ok(())
}

/// Opens `pipe` for writing once the join has opened it for reading.
/// Never blocks a thread: a non-blocking open fails with `ENXIO` until
/// the reader is there. The caller stops waiting by dropping the future
/// (the join ended or failed).
async fn open_writer(path: &Path) -> std::io::Result<pipe::Sender> {
    loop {
        match pipe::OpenOptions::new().open_sender(path) {
            Err(e) if e.raw_os_error() == Some(NO_READER) => tokio::time::sleep(READER_POLL).await,
            other => return other,
        }
    }
}

/// Writes the whole of `file` into `pipe` and closes it (the join sees
/// the end of that shard and moves on to the next pipe).
pub async fn feed_pipe(pipe: &Path, file: &Path) -> Result<(), MediaError> {
    let mut source = tokio::fs::File::open(file).await?;
    let mut sender = open_writer(pipe).await?;
    tokio::io::copy(&mut source, &mut sender).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncReadExt;

    #[tokio::test]
    async fn a_pipe_waits_for_its_reader_and_carries_the_whole_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (pipe, file) = (dir.path().join("0.nut"), dir.path().join("shard"));
        let bytes: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
        tokio::fs::write(&file, &bytes).await.expect("write");
        make_pipes(std::slice::from_ref(&pipe))
            .await
            .expect("mkfifo");
        let feeding = tokio::spawn({
            let pipe = pipe.clone();
            async move { feed_pipe(&pipe, &file).await }
        });
        // The writer is still waiting: nobody reads yet.
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(!feeding.is_finished());
        let mut reader = tokio::fs::File::open(&pipe).await.expect("open");
        let mut got = Vec::new();
        reader.read_to_end(&mut got).await.expect("read");
        feeding.await.expect("task").expect("fed");
        assert_eq!(got, bytes);
    }
}
