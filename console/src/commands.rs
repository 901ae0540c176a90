//! The subcommands: each connects, calls the node, and returns a [`Report`]
//! holding both renderings; `main.rs` prints the one asked for.

use std::fmt;
use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use serde_json::Value;
use vidshard_proto::params::{OutputFormat, RawParams};
use vidshard_proto::v1::{
    DeleteJobRequest, GetPackageRequest, JobParams, LinkReply, LinkRequest, ListJobsRequest,
    ListNodesRequest, RemoveNodeRequest, TriggerElectionRequest, UploadHeader,
};

use crate::cli::{
    Command, DeleteArgs, ElectArgs, JobsArgs, LinkArgs, NodesAction, NodesArgs, RetrieveArgs,
    StatusArgs, UploadArgs,
};
use crate::client::{self, Lookup, Node, Reach, rpc};
use crate::job::{JobState, classify_status};
use crate::output;
use crate::precheck;
use crate::progress::{ByteBar, JobBar, Mode};
use crate::transfer::{self, Expected};

/// A command's result in both forms.
#[derive(Debug)]
pub struct Report {
    pub json: Value,
    /// Plain text for stdout (may be empty).
    pub text: String,
}

/// Global settings every command sees.
#[derive(Debug, Clone)]
pub struct Ctx {
    pub node: String,
    pub json: bool,
    pub mode: Mode,
}

/// A failure that still has a JSON document to print (e.g. the job id of an
/// upload whose job then failed).
#[derive(Debug)]
pub struct WithDocument {
    pub document: Value,
    pub reason: String,
}

impl fmt::Display for WithDocument {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.reason)
    }
}

impl std::error::Error for WithDocument {}

pub async fn run(ctx: &Ctx, command: Command) -> Result<Report> {
    match command {
        Command::Upload(args) => upload(ctx, args).await,
        Command::Status(args) => status(ctx, args).await,
        Command::Retrieve(args) => retrieve(ctx, args).await,
        Command::Jobs(args) => jobs(ctx, args).await,
        Command::Nodes(NodesArgs { action: None }) => nodes(ctx).await,
        Command::Nodes(NodesArgs {
            action: Some(NodesAction::Remove { node_id }),
        }) => remove_node(ctx, node_id).await,
        Command::Elect(args) => elect(ctx, args).await,
        Command::Delete(args) => delete(ctx, args).await,
        Command::Link(args) => link(ctx, args).await,
    }
}

/// `job "x" failed: <status>[: <message>]` or `job "x" is not completed yet: ...`.
pub fn not_completed_reason(id: &str, status: &str, message: &str) -> String {
    let what = match classify_status(status) {
        JobState::Failed => "failed",
        _ => "is not completed yet",
    };
    if message.is_empty() {
        format!("job {id:?} {what}: {status}")
    } else {
        format!("job {id:?} {what}: {status}: {message}")
    }
}

fn params(args: &UploadArgs, filename: String) -> JobParams {
    JobParams {
        target_width: args.width.unwrap_or(0),
        target_height: args.height.unwrap_or(0),
        upscale_width: args.upscale_width.unwrap_or(0),
        upscale_height: args.upscale_height.unwrap_or(0),
        output_format: args
            .format
            .map(|f| f.as_str().to_owned())
            .unwrap_or_default(),
        codec: args
            .codec
            .map(|c| c.as_str().to_owned())
            .unwrap_or_default(),
        pix_fmt: args
            .pix_fmt
            .map(|p| p.as_str().to_owned())
            .unwrap_or_default(),
        tonemap: args.tonemap,
        skip_quality: args.no_quality,
        audio: args.audio.map(|a| a.name().to_owned()).unwrap_or_default(),
        target_ssim: args.target_ssim.unwrap_or(0.0),
        target_psnr: args.target_psnr.unwrap_or(0.0),
        ladder: args.ladder.clone().unwrap_or_default(),
        package: args.package.clone().unwrap_or_default(),
        segment_seconds: args.segment_seconds,
        preset: args.preset.clone().unwrap_or_default(),
        crf: args.crf.unwrap_or(0),
        original_filename: filename,
        priority: args.priority,
    }
}

/// Fails early if the output could not be written, before a long upload.
pub fn check_output_target(path: &Path) -> Result<()> {
    if path.is_dir() {
        bail!("output path {} is a directory", path.display());
    }
    let temp = transfer::temp_path(path, std::process::id())?;
    if let Some(dir) = temp.parent().filter(|d| !d.is_dir()) {
        bail!("output directory {} does not exist", dir.display());
    }
    Ok(())
}

async fn upload(ctx: &Ctx, args: UploadArgs) -> Result<Report> {
    let file = &args.file;
    let meta = tokio::fs::metadata(file)
        .await
        .with_context(|| format!("cannot read {}", file.display()))?;
    if !meta.is_file() {
        bail!("{} is not a regular file", file.display());
    }
    let filename = file
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .with_context(|| format!("{} has no file name", file.display()))?;
    if let Some(output) = &args.output {
        check_output_target(output)?;
    }
    // The node's own rules, checked before a byte is read or sent.
    let job_params = params(&args, filename);
    let checked = match RawParams::from(job_params.clone()).validate() {
        Ok(checked) => checked,
        Err(bad) => bail!("{bad}"),
    };
    // What can be told of the file itself (HDR to 8 bits), when this
    // machine has ffprobe; the node checks it again either way.
    precheck::source(file, &checked).await?;
    let mut reach = Reach::to_leader(&ctx.node).await?;

    // Hashed while it is sent: the sha256 goes in the upload's trailer.
    let header = UploadHeader {
        params: Some(job_params),
        requested_id: args.id.clone().unwrap_or_default(),
        expected_size: meta.len(),
        expected_sha256: String::new(),
        upload_key: transfer::new_upload_key(),
    };
    let bar = ByteBar::new(ctx.mode, "upload", meta.len());
    let reply = transfer::upload(&mut reach, file, header, bar).await?;
    if !reply.success {
        let reason = if reply.message.is_empty() {
            &reply.status
        } else {
            &reply.message
        };
        bail!("upload of {} rejected: {reason}", file.display());
    }
    if !ctx.json {
        crate::print_stdout(&format!("{}\n", reply.id));
    }
    if checked.ladder.is_some() {
        // Watchable from the first segments on: say where, at once.
        match request_link(&mut reach, &reply.id, None).await {
            Ok(link) if !ctx.json => crate::print_stdout(&format!("watch: {}\n", link.watch_url)),
            Ok(_) => {}
            Err(err) => eprintln!("no watch link: {}", crate::reason(&err)),
        }
    }
    let Some(target) = args.output else {
        return Ok(Report {
            json: output::upload_json(&reply.id, &reply.status, &reply.message, None),
            text: String::new(),
        });
    };

    let failure = |status: &str, message: &str, reason: String| {
        let mut document = output::upload_json(&reply.id, status, message, None);
        document["error"] = Value::String(reason.clone());
        anyhow::Error::new(WithDocument { document, reason })
    };
    let bar = JobBar::new(ctx.mode);
    let timeout = Duration::from_secs(args.timeout);
    let waited = client::wait_for_job(&mut reach, &reply.id, timeout, |job| bar.update(job)).await;
    let job = match waited {
        Ok(job) => job,
        Err(err) => return Err(failure(&reply.status, &reply.message, crate::reason(&err))),
    };
    bar.finish();
    if classify_status(&job.status) != JobState::Completed {
        let reason = not_completed_reason(&job.id, &job.status, &job.message);
        return Err(failure(&job.status, &job.message, reason));
    }
    let expected = Expected {
        sha256: Some(job.output_sha256.clone()),
        bytes: Some(job.output_bytes),
    };
    let bar = ByteBar::new(ctx.mode, "download", job.output_bytes);
    let saved = transfer::retrieve(&mut reach, &job.id, &target, &expected, bar).await?;
    Ok(Report {
        json: output::upload_json(&job.id, &job.status, &job.message, Some(&saved)),
        text: output::saved_text(&saved),
    })
}

async fn status(ctx: &Ctx, args: StatusArgs) -> Result<Report> {
    let mut reach = Reach::to_leader(&ctx.node).await?;
    Ok(match client::lookup_job(&mut reach, &args.id).await? {
        Lookup::Job(job) => Report {
            json: output::job_json(&job, true),
            text: output::job_text(&job),
        },
        Lookup::Legacy {
            id,
            status,
            message,
        } => Report {
            json: output::legacy_status_json(&id, &status, &message),
            text: output::legacy_status_text(&id, &status, &message),
        },
    })
}

/// What a completed job's output must match, and its size (0 = unknown);
/// fails when the job has no output yet. Shared with the console.
pub async fn expected_output(reach: &mut Reach, id: &str) -> Result<(Expected, u64)> {
    Ok(match client::lookup_job(reach, id).await? {
        Lookup::Job(job) => {
            if classify_status(&job.status) != JobState::Completed {
                bail!(not_completed_reason(&job.id, &job.status, &job.message));
            }
            let expected = Expected {
                sha256: Some(job.output_sha256.clone()),
                bytes: Some(job.output_bytes),
            };
            (expected, job.output_bytes)
        }
        Lookup::Legacy {
            id,
            status,
            message,
        } => {
            if classify_status(&status) != JobState::Completed {
                bail!(not_completed_reason(&id, &status, &message));
            }
            // An original master publishes no checksum: nothing to verify against.
            (Expected::default(), 0)
        }
    })
}

async fn retrieve(ctx: &Ctx, args: RetrieveArgs) -> Result<Report> {
    if transfer::is_directory_target(&args.output) {
        return retrieve_into(ctx, &args.id, &args.output).await;
    }
    check_output_target(&args.output)?;
    let mut reach = Reach::to_leader(&ctx.node).await?;
    let (expected, total) = expected_output(&mut reach, &args.id).await?;
    let bar = ByteBar::new(ctx.mode, "download", total);
    let saved = transfer::retrieve(&mut reach, &args.id, &args.output, &expected, bar).await?;
    Ok(Report {
        json: output::retrieve_json(&args.id, &saved),
        text: output::saved_text(&saved),
    })
}

/// `retrieve ID --output DIR/`: a ladder job's whole package, verified
/// file by file (a rerun keeps what is already there), or a plain job's
/// output as `DIR/{ID}.{ext}`. Only a completed package is saved: while
/// a job encodes its manifests are not final (`vidshard link` watches it).
async fn retrieve_into(ctx: &Ctx, id: &str, dir: &Path) -> Result<Report> {
    let mut reach = Reach::to_leader(&ctx.node).await?;
    let Lookup::Job(job) = client::lookup_job(&mut reach, id).await? else {
        bail!("job {id:?} is on an original master: give --output a file path");
    };
    let ladder =
        !job.packages.is_empty() || job.params.as_ref().is_some_and(|p| !p.ladder.is_empty());
    let encoding = || {
        anyhow::anyhow!(
            "job {:?} is still encoding ({}); watch it with `vidshard link {}` and save it once it completes",
            job.id,
            job.status,
            job.id
        )
    };
    match classify_status(&job.status) {
        JobState::Completed => {}
        JobState::Working if ladder => return Err(encoding()),
        _ => bail!(not_completed_reason(&job.id, &job.status, &job.message)),
    }
    if !ladder {
        let format = job.params.as_ref().map_or("", |p| p.output_format.as_str());
        let extension = OutputFormat::parse(format).map_or("mp4", |f| f.extension());
        let target = dir.join(transfer::output_name(&job.id, extension)?);
        tokio::fs::create_dir_all(dir)
            .await
            .with_context(|| format!("cannot create {}", dir.display()))?;
        let expected = Expected {
            sha256: Some(job.output_sha256.clone()),
            bytes: Some(job.output_bytes),
        };
        let bar = ByteBar::new(ctx.mode, "download", job.output_bytes);
        let saved = transfer::retrieve(&mut reach, &job.id, &target, &expected, bar).await?;
        return Ok(Report {
            json: output::retrieve_json(&job.id, &saved),
            text: output::saved_text(&saved),
        });
    }
    let listing = reach
        .call(|node| {
            let request = GetPackageRequest { id: job.id.clone() };
            async move { node.jobs().get_package(request).await }
        })
        .await?
        .into_inner();
    if !listing.finished {
        return Err(encoding());
    }
    let total = listing.files.iter().map(|f| f.size).sum();
    let bar = ByteBar::new(ctx.mode, "package", total);
    let saved = transfer::save_package(&mut reach, &job.id, dir, &listing, bar).await?;
    Ok(Report {
        json: output::package_json(&job.id, &saved),
        text: output::package_text(&saved),
    })
}

async fn jobs(ctx: &Ctx, args: JobsArgs) -> Result<Report> {
    let mut reach = Reach::to_leader(&ctx.node).await?;
    let request = ListJobsRequest {
        state: args.state.unwrap_or_default(),
        limit: args.limit,
        page_token: args.page_token.unwrap_or_default(),
    };
    let reply = reach
        .call(|node| {
            let request = request.clone();
            async move { node.jobs().list_jobs(request).await }
        })
        .await?
        .into_inner();
    Ok(Report {
        json: output::jobs_json(&reply),
        text: output::jobs_text(&reply),
    })
}

async fn nodes(ctx: &Ctx) -> Result<Report> {
    let mut reach = Reach::to_node(&ctx.node).await?;
    let reply = reach
        .call(|node| async move { node.cluster().list_nodes(ListNodesRequest {}).await })
        .await?
        .into_inner();
    Ok(Report {
        json: output::nodes_json(&reply),
        text: output::nodes_text(&reply),
    })
}

async fn remove_node(ctx: &Ctx, node_id: String) -> Result<Report> {
    let node = Node::connect_first(&ctx.node, false).await?;
    let reply = node
        .cluster()
        .remove_node(RemoveNodeRequest {
            node_id: node_id.clone(),
        })
        .await
        .map_err(rpc)?
        .into_inner();
    if !reply.removed {
        bail!("{node_id} not removed: {}", reply.message);
    }
    Ok(Report {
        json: serde_json::json!({ "removed": node_id, "message": reply.message }),
        text: format!("{}\n", reply.message),
    })
}

/// Asks the node for a signed watch link of job `id`.
async fn request_link(reach: &mut Reach, id: &str, ttl: Option<u64>) -> Result<LinkReply> {
    let reply = reach
        .call(|node| {
            let request = LinkRequest {
                id: id.to_string(),
                ttl_seconds: ttl.unwrap_or(0),
            };
            async move { node.jobs().link(request).await }
        })
        .await?;
    Ok(reply.into_inner())
}

async fn link(ctx: &Ctx, args: LinkArgs) -> Result<Report> {
    let mut reach = Reach::to_node(&ctx.node).await?;
    let link = request_link(&mut reach, &args.id, args.ttl).await?;
    let watch = if args.dash {
        &link.dash_watch_url
    } else {
        &link.watch_url
    };
    Ok(Report {
        json: serde_json::json!({
            "id": args.id,
            "watch_url": link.watch_url,
            "dash_watch_url": link.dash_watch_url,
            "hls_url": link.hls_url,
            "dash_url": link.dash_url,
            "expires_unix": link.expires_unix,
        }),
        text: format!("{watch}\n"),
    })
}

async fn delete(ctx: &Ctx, args: DeleteArgs) -> Result<Report> {
    let mut reach = Reach::to_leader(&ctx.node).await?;
    // Through any node while the master changes. An attempt whose answer
    // was lost may have deleted the job: "no such job" on a retry then
    // means it is gone, which is what was asked.
    let attempts = std::sync::atomic::AtomicU32::new(0);
    let answer = reach
        .call(|node| {
            attempts.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let id = args.id.clone();
            async move { node.jobs().delete_job(DeleteJobRequest { id }).await }
        })
        .await;
    let retried = attempts.load(std::sync::atomic::Ordering::Relaxed) > 1;
    let reply = match answer {
        Ok(reply) => reply.into_inner(),
        Err(err) if retried && crate::reason(&err).contains("not found") => {
            vidshard_proto::v1::DeleteJobReply {
                deleted: true,
                message: format!(
                    "job {} deleted (the first attempt's answer was lost with its node; the job is gone)",
                    args.id
                ),
            }
        }
        Err(err) => return Err(err),
    };
    if !reply.deleted {
        bail!("{} not deleted: {}", args.id, reply.message);
    }
    Ok(Report {
        json: serde_json::json!({ "deleted": args.id, "message": reply.message }),
        text: format!("{}\n", reply.message),
    })
}

async fn elect(ctx: &Ctx, args: ElectArgs) -> Result<Report> {
    let node = Node::connect_first(&ctx.node, false).await?;
    let reply = node
        .cluster()
        .trigger_election(TriggerElectionRequest {
            to_node_id: args.to.unwrap_or_default(),
        })
        .await
        .map_err(rpc)?
        .into_inner();
    if !reply.accepted {
        bail!("{}", reply.message);
    }
    Ok(Report {
        json: serde_json::json!({
            "master_address": reply.new_master_address,
            "term": reply.term,
            "message": reply.message,
        }),
        text: format!(
            "{}\nmaster: {}  term: {}\n",
            reply.message, reply.new_master_address, reply.term
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn not_completed_reasons_name_status_and_message() {
        assert_eq!(
            not_completed_reason("abc", "processing_failed", "shard 2 failed"),
            "job \"abc\" failed: processing_failed: shard 2 failed"
        );
        assert_eq!(
            not_completed_reason("abc", "processing", ""),
            "job \"abc\" is not completed yet: processing"
        );
    }
}
