//! `vidshard`: the operator console and scriptable client of a vidshard
//! cluster.
//!
//! This file owns the process edges: parsing arguments, running the chosen
//! command on a tokio runtime (or the live console, `tui/`, when no
//! subcommand is given), printing its report on stdout, and turning
//! failures into `vidshard: <reason>` on stderr with an exit code
//! (0 ok, 1 failure, 2 usage, 130 interrupted).

mod cli;
mod client;
mod commands;
mod format;
mod job;
mod output;
mod precheck;
mod progress;
mod tls;
mod transfer;
mod tui;

use std::io::Write;
use std::process::ExitCode;

use clap::{CommandFactory, Parser};
use serde_json::{Value, json};

use crate::cli::Cli;
use crate::client::{RpcError, code_name};
use crate::commands::{Ctx, Report, WithDocument};
use crate::progress::Mode;

/// Writes to stdout, ignoring a closed pipe (e.g. `vidshard jobs | head -1`).
pub fn print_stdout(text: &str) {
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(text.as_bytes());
    let _ = out.flush();
}

fn print_json(value: &Value) {
    let text = serde_json::to_string_pretty(value).unwrap_or_else(|_| value.to_string());
    print_stdout(&format!("{text}\n"));
}

/// The one-line reason for an error: its chain joined by `: `, with
/// repeated links dropped (hyper nests "tcp connect error" twice) and
/// newlines flattened.
pub fn reason(err: &anyhow::Error) -> String {
    let mut parts: Vec<String> = Vec::new();
    for link in err.chain() {
        let text = link.to_string().replace(['\n', '\r'], " ");
        if parts.last() != Some(&text) && !text.is_empty() {
            parts.push(text);
        }
    }
    parts.join(": ")
}

/// Reports a failure: one line on stderr and, with `--json`, a document on stdout.
fn report_error(err: &anyhow::Error, json: bool) {
    let line = reason(err);
    eprintln!("vidshard: {line}");
    if !json {
        return;
    }
    if let Some(with_doc) = err.downcast_ref::<WithDocument>() {
        print_json(&with_doc.document);
        return;
    }
    let code = err
        .chain()
        .find_map(|e| e.downcast_ref::<RpcError>())
        .map(|e| code_name(e.code).replace(' ', "_"));
    print_json(&json!({ "error": line, "code": code }));
}

fn print_report(report: &Report, json: bool) {
    if json {
        print_json(&report.json);
    } else if !report.text.is_empty() {
        print_stdout(&report.text);
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Err(err) = client::set_token(cli.token.as_deref()) {
        eprintln!("vidshard: {err}");
        return ExitCode::from(2);
    }
    let tls = tls::TlsArgs {
        ca: cli.tls_ca.clone(),
        cert: cli.tls_cert.clone(),
        key: cli.tls_key.clone(),
    };
    if let Err(err) = tls::init(&tls) {
        eprintln!("vidshard: {err:#}");
        return ExitCode::from(2);
    }
    let Some(command) = cli.command else {
        if cli.json {
            eprintln!(
                "vidshard: --json needs a subcommand\n\n{}",
                Cli::command().render_help()
            );
            return ExitCode::from(2);
        }
        // No subcommand: the live console.
        return match tui::run(cli.node) {
            Ok(()) => ExitCode::SUCCESS,
            Err(err) => {
                eprintln!("vidshard: {}", reason(&err));
                ExitCode::FAILURE
            }
        };
    };
    let ctx = Ctx {
        node: cli.node,
        json: cli.json,
        mode: Mode::detect(cli.json),
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("vidshard: cannot start the async runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    // Ctrl-C drops the running command, which removes any partial download.
    let result = runtime.block_on(async {
        tokio::select! {
            result = commands::run(&ctx, command) => Some(result),
            _ = tokio::signal::ctrl_c() => None,
        }
    });
    // Don't wait for a blocking hash still reading a large file.
    runtime.shutdown_background();
    match result {
        Some(Ok(report)) => {
            print_report(&report, ctx.json);
            ExitCode::SUCCESS
        }
        Some(Err(err)) => {
            report_error(&err, ctx.json);
            ExitCode::FAILURE
        }
        None => {
            let err = anyhow::anyhow!("interrupted");
            report_error(&err, ctx.json);
            ExitCode::from(130)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_are_one_line_without_repeated_links() {
        let io = std::io::Error::other("tcp connect error");
        let err = anyhow::Error::new(io)
            .context("tcp connect error")
            .context("cannot connect to node http://h:1");
        assert_eq!(
            reason(&err),
            "cannot connect to node http://h:1: tcp connect error"
        );
        let err = anyhow::anyhow!("first\nsecond");
        assert_eq!(reason(&err), "first second");
    }
}
