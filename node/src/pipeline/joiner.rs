//! Stage 3a: the join, started right after the plan and fed one encoded
//! shard at a time in index order through named pipes (`media/feed.rs`).
//! It works through the leading shards while the last ones still encode,
//! so once the last shard is encoded only its own bytes and the
//! container's trailer are left to write: the join leaves the critical
//! path. The ffconcat list (durations included), the options and so the
//! output are the same as a join over finished files. Where named pipes
//! cannot be made (a filesystem without them) the join waits for every
//! shard and reads the files, as it always did.

use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::join::{Joiner, SideFiles, SideTask};
use super::split::Prepared;
use crate::cluster::Sys;
use crate::jobs::JobStop;
use crate::jobs::{JobStatus, ShardRecord, ShardState};
use crate::media;
use crate::params::{OutputFormat, VideoCodec};
use crate::store::BlobRef;

/// How often the feeder looks for the next finished shard before the
/// encode stage ends (then it is told at once).
const SHARD_POLL: Duration = Duration::from_millis(50);

/// The encoded result of a shard, once the shard is done (pure).
pub fn ready(shard: &ShardRecord) -> Option<&BlobRef> {
    if shard.state == ShardState::Done {
        shard.encoded.as_ref()
    } else {
        None
    }
}

fn concat_failed(message: String) -> JobStop {
    JobStop::failed(JobStatus::ConcatenationFailed, message)
}

/// Starts the join in the background. `encoded` is cancelled when the
/// encode stage has ended (every shard done): the feeder stops polling
/// and a shard still without a result is an error.
pub fn start(
    sys: &Sys,
    id: &str,
    prepared: &Prepared,
    side: SideTask,
    scratch: &Path,
    encoded: CancellationToken,
) -> Joiner {
    let (sys, id, scratch) = (sys.clone(), id.to_string(), scratch.to_path_buf());
    let (format, codec) = (prepared.params.format, prepared.params.codec());
    let (source, plan) = (prepared.source_path.clone(), prepared.tracks.clone());
    tokio::spawn(async move {
        let files = match side.await {
            Ok(Ok(files)) => files,
            Ok(Err(e)) => {
                return Err(concat_failed(format!(
                    "preparing the audio and subtitles failed: {e}"
                )));
            }
            Err(e) => return Err(concat_failed(format!("the audio task died: {e}"))),
        };
        let SideFiles { audio, subtitles } = &files;
        let side = media::SideInputs {
            audio: audio.as_deref(),
            subtitles: subtitles.as_deref(),
            source: &source,
            plan: &plan,
        };
        run(&sys, &id, &side, (format, codec), &scratch, &encoded).await
    })
}

async fn run(
    sys: &Sys,
    id: &str,
    side: &media::SideInputs<'_>,
    (format, codec): (OutputFormat, VideoCodec),
    scratch: &Path,
    encoded: &CancellationToken,
) -> Result<PathBuf, JobStop> {
    let durations: Vec<f64> = {
        let jobs = sys.jobs.lock();
        let job = jobs
            .get(id)
            .ok_or_else(|| concat_failed("job vanished".into()))?;
        job.shards.iter().map(|s| s.duration_seconds).collect()
    };
    let output = scratch.join(format!("output.{}", format.extension()));
    let joined = output.clone();
    let list_path = scratch.join("shards.ffconcat");
    let feed_dir = scratch.join("feed");
    let pipes: Vec<PathBuf> = (0..durations.len())
        .map(|i| feed_dir.join(format!("{i:05}.nut")))
        .collect();
    let piped = match tokio::fs::create_dir_all(&feed_dir).await {
        Ok(()) => media::make_pipes(&pipes).await,
        Err(e) => Err(e.into()),
    };
    let join = |list: Vec<PathBuf>| {
        let entries: Vec<(PathBuf, f64)> =
            list.into_iter().zip(durations.iter().copied()).collect();
        let (list_path, output) = (&list_path, &output);
        async move {
            tokio::fs::write(list_path, media::ffconcat_list(&entries))
                .await
                .map_err(|e| concat_failed(format!("writing the shard list: {e}")))?;
            media::join(&sys.tools, list_path, side, (format, codec), output)
                .await
                .map_err(|e| concat_failed(format!("join failed: {e}")))
        }
    };
    if let Err(e) = piped {
        tracing::info!(job = %id, error = %e, "no named pipes here: joining after the last encode");
        let mut files = Vec::with_capacity(durations.len());
        for index in 0..durations.len() {
            files.push(wait_encoded(sys, id, index, encoded).await?);
        }
        join(files).await?;
        return Ok(joined);
    }
    let feed = async {
        for (index, pipe) in pipes.iter().enumerate() {
            let file = wait_encoded(sys, id, index, encoded).await?;
            media::feed_pipe(pipe, &file)
                .await
                .map_err(|e| concat_failed(format!("feeding shard {index} to the join: {e}")))?;
        }
        Ok::<(), JobStop>(())
    };
    let joining = join(pipes.clone());
    tokio::pin!(feed, joining);
    tokio::select! {
        biased;
        fed = &mut feed => {
            fed?;
            joining.await?;
        }
        joined = &mut joining => {
            joined?;
            return Err(concat_failed("the join ended before every shard was fed to it".into()));
        }
    }
    Ok(joined)
}

/// Waits until shard `index` is done and answers where its encoded result
/// is stored.
pub(super) async fn wait_encoded(
    sys: &Sys,
    id: &str,
    index: usize,
    encoded: &CancellationToken,
) -> Result<PathBuf, JobStop> {
    loop {
        let found = {
            let jobs = sys.jobs.lock();
            let job = jobs
                .get(id)
                .ok_or_else(|| concat_failed("job vanished".into()))?;
            job.shards.get(index).and_then(ready).cloned()
        };
        if let Some(blob) = found {
            return sys
                .store
                .path(&blob.sha256)
                .map_err(|e| concat_failed(e.to_string()));
        }
        if encoded.is_cancelled() {
            return Err(JobStop::failed(
                JobStatus::ConcatenationPrerequisitesFailed,
                format!("shard {index} has no encoded result"),
            ));
        }
        tokio::select! {
            _ = encoded.cancelled() => {}
            _ = tokio::time::sleep(SHARD_POLL) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_done_shard_with_a_result_is_ready() {
        let blob = BlobRef {
            sha256: "ab".repeat(32),
            size: 1,
        };
        let mut shard = ShardRecord::planned(0, 10, 0.0, 1.0);
        assert!(ready(&shard).is_none());
        shard.encoded = Some(blob.clone());
        shard.state = ShardState::Verifying;
        assert!(ready(&shard).is_none());
        shard.state = ShardState::Done;
        assert_eq!(ready(&shard), Some(&blob));
    }
}
