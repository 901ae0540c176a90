//! The config file (`--config /etc/vidshard/node.toml`): a flat TOML table
//! with one key per flag, named like the flag with `-` → `_` (`data_dir`,
//! `shard_seconds`, `backup_servers = ["a:1"]`, `role = "worker"`).
//!
//! Parsing is strict: an unknown key or a value of the wrong type is an
//! error that names the file and the key and says what to write instead.
//! [`FileConfig`] is the serde struct (`deny_unknown_fields`); the checks
//! before it only exist to turn serde's error into a helpful sentence.

use std::path::{Path, PathBuf};

use clap::CommandFactory;
use serde::{Deserialize, Serialize};

use super::{ClientAccess, Config, LogFormat, OriginalClientAccess, OriginalPeers, Role};

/// What a config file sets. `None` means the key is absent, so the
/// command line, the environment or the built-in default decides.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub advertise: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub role: Option<Role>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub master: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nodes: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub backup_servers: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data_dir: Option<PathBuf>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub slots: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shard_seconds: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_upload_bytes: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ffmpeg: Option<PathBuf>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ffprobe: Option<PathBuf>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dead_after: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_uploads: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_voters: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub backup_replicas: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub keep_sources: Option<f64>,
    pub keep_jobs: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scrub_every: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub upload_idle_seconds: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub log_format: Option<LogFormat>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metrics_addr: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub http_addr: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub join_token: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub join_token_file: Option<PathBuf>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub clients: Option<ClientAccess>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub original_clients: Option<OriginalClientAccess>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub original_peers: Option<OriginalPeers>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls_cert: Option<PathBuf>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls_key: Option<PathBuf>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls_ca: Option<PathBuf>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mtls: Option<bool>,
    pub insecure: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub drain_timeout: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub encoder_memory_mb: Option<u64>,
}

/// A config file that cannot be used: `{file}: {message}`, where the
/// message names the key (when one is at fault) and the fix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}: {message}")]
pub struct FileError {
    /// The path as given to `--config` (or the name passed to [`FileConfig::parse`]).
    pub file: String,
    /// The key at fault, when there is one.
    pub key: Option<String>,
    pub message: String,
}

impl FileError {
    fn new(file: &str, key: Option<&str>, message: String) -> Self {
        Self {
            file: file.to_string(),
            key: key.map(str::to_string),
            message,
        }
    }
}

/// Every key a config file may hold: the ids of [`Config`]'s arguments
/// (clap names them after the fields, so `data_dir`, `backup_servers`),
/// less `config` itself. Taken from clap so the two cannot drift.
pub fn known_keys() -> Vec<String> {
    Config::command()
        .get_arguments()
        .map(|a| a.get_id().as_str().to_string())
        .filter(|id| !matches!(id.as_str(), "config" | "help" | "version"))
        .collect()
}

/// What a key's value must look like, for error messages.
pub fn expected(key: &str) -> &'static str {
    match key {
        "host" => "a string (an address to listen on), e.g. \"0.0.0.0\"",
        "port" => "an integer 0..=65535",
        "role" => "\"master\" or \"worker\"",
        "master" | "advertise" => "a \"HOST:PORT\" string, e.g. \"10.0.0.1:50051\"",
        "metrics_addr" => "a \"HOST:PORT\" string, e.g. \"127.0.0.1:9090\"",
        "http_addr" => "a \"HOST:PORT\" string, e.g. \"0.0.0.0:8080\"",
        "token" | "join_token" => "a string",
        "join_token_file" => "a path string, e.g. \"/etc/vidshard/join-token\"",
        "clients" => "\"open\" or \"token\"",
        "original_clients" => "\"open\", \"token\" or \"off\"",
        "original_peers" => "\"any\", \"off\" or a \"HOST,HOST\" string",
        "nodes" | "backup_servers" => {
            "an array of \"HOST:PORT\" strings, e.g. [\"10.0.0.2:50051\"]"
        }
        "data_dir" | "ffmpeg" | "ffprobe" => "a path string, e.g. \"/var/lib/vidshard\"",
        "tls_cert" | "tls_key" | "tls_ca" => {
            "a path string to a PEM file, e.g. \"/etc/vidshard/node.pem\""
        }
        "mtls" | "insecure" => "true or false",
        "drain_timeout" => "a number of seconds, e.g. 30.0",
        "encoder_memory_mb" => "a number of MiB (0 = a share of the machine), e.g. 8192",
        "slots" => "an integer 0..=4294967295 (0 = one per core)",
        "shard_seconds" | "dead_after" | "upload_idle_seconds" => "a number of seconds, e.g. 10.0",
        "max_uploads" => "an integer 0..=4294967295, e.g. 16",
        "max_voters" => "an integer 1..=99, e.g. 5",
        "backup_replicas" => "an integer 0..=4294967295, e.g. 2",
        "keep_sources" => "a number of hours, e.g. 24.0",
        "keep_jobs" => "a number of days, e.g. 30.0 (0: for ever)",
        "scrub_every" => "a number of seconds, e.g. 600.0",
        "max_upload_bytes" => "a non-negative integer (bytes), e.g. 68719476736",
        "log_format" => "\"text\" or \"json\"",
        _ => "a value of the flag's type",
    }
}

/// The closest known key to a mistyped one (`data-dir` → `data_dir`,
/// `shard_secs` → `shard_seconds`), if any is close enough.
pub fn suggest(key: &str, known: &[String]) -> Option<String> {
    let wanted = key.trim().replace('-', "_").to_lowercase();
    if known.contains(&wanted) {
        return Some(wanted);
    }
    known
        .iter()
        .map(|k| (strsim::jaro_winkler(&wanted, k), k))
        .filter(|(score, _)| *score >= 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, k)| k.clone())
}

/// The message for a key the file may not hold.
fn unknown_key(key: &str, value: &toml::Value, known: &[String]) -> String {
    if key == "config" {
        return "\"config\" cannot be set in the config file: pass --config FILE on the command line"
            .to_string();
    }
    let list = known.join(", ");
    if value.is_table() {
        return format!(
            "unknown section [{key}]: every key goes at the top level, without a [section] (known keys: {list})"
        );
    }
    match suggest(key, known) {
        Some(better) => format!("unknown key \"{key}\" (did you mean \"{better}\"?)"),
        None => format!("unknown key \"{key}\" (known keys: {list})"),
    }
}

/// Line and column (both from 1) of a byte offset in `text`.
fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let col = before.rsplit('\n').next().unwrap_or("").chars().count() + 1;
    (line, col)
}

impl FileConfig {
    /// Reads and parses the config file at `path`; errors name the path.
    pub fn read(path: &Path) -> Result<Self, FileError> {
        let file = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| {
            FileError::new(
                &file,
                None,
                format!("cannot read the config file: {e} (check the path given to --config)"),
            )
        })?;
        Self::parse(&text, &file)
    }

    /// Parses config file `text`; `file` names it in error messages.
    pub fn parse(text: &str, file: &str) -> Result<Self, FileError> {
        let table: toml::Table = text.parse().map_err(|e: toml::de::Error| {
            let at = e
                .span()
                .map(|s| {
                    let (line, col) = line_col(text, s.start);
                    format!(" at line {line}, column {col}")
                })
                .unwrap_or_default();
            FileError::new(
                file,
                None,
                format!("not valid TOML{at}: {}", e.message().trim()),
            )
        })?;
        let known = known_keys();
        for (key, value) in &table {
            if !known.contains(key) {
                return Err(FileError::new(
                    file,
                    Some(key),
                    unknown_key(key, value, &known),
                ));
            }
            // All fields are optional, so a table holding only this key
            // deserializes exactly when this key's value has the right type.
            let alone = toml::Table::from_iter([(key.clone(), value.clone())]);
            if alone.try_into::<FileConfig>().is_err() {
                return Err(FileError::new(
                    file,
                    Some(key),
                    format!("\"{key}\" must be {}, got {value}", expected(key)),
                ));
            }
        }
        table
            .try_into::<FileConfig>()
            .map_err(|e| FileError::new(file, None, e.message().trim().to_string()))
    }

    /// The file that sets every key to `config`'s value (`master`,
    /// `advertise`, `metrics_addr` and `http_addr` only when set). Lists every field, so a new flag cannot be forgotten here.
    pub fn from_config(config: &Config) -> Self {
        let Config {
            host,
            port,
            advertise,
            role,
            master,
            nodes,
            backup_servers,
            data_dir,
            slots,
            shard_seconds,
            max_upload_bytes,
            ffmpeg,
            ffprobe,
            dead_after,
            max_uploads,
            max_voters,
            backup_replicas,
            keep_sources,
            keep_jobs,
            scrub_every,
            upload_idle_seconds,
            log_format,
            metrics_addr,
            http_addr,
            token,
            join_token,
            join_token_file,
            clients,
            original_clients,
            original_peers,
            tls_cert,
            tls_key,
            tls_ca,
            mtls,
            insecure,
            drain_timeout,
            encoder_memory_mb,
            config: _,
            command: _,
        } = config.clone();
        Self {
            host: Some(host),
            port: Some(port),
            role: Some(role),
            advertise,
            master,
            nodes: Some(nodes),
            backup_servers: Some(backup_servers),
            data_dir: Some(data_dir),
            slots: Some(slots),
            shard_seconds: Some(shard_seconds),
            max_upload_bytes: Some(max_upload_bytes),
            ffmpeg: Some(ffmpeg),
            ffprobe: Some(ffprobe),
            dead_after: Some(dead_after),
            max_uploads: Some(max_uploads),
            max_voters: Some(max_voters),
            backup_replicas: Some(backup_replicas),
            keep_sources: Some(keep_sources),
            keep_jobs: Some(keep_jobs),
            scrub_every: Some(scrub_every),
            upload_idle_seconds: Some(upload_idle_seconds),
            log_format: Some(log_format),
            metrics_addr,
            http_addr,
            token,
            join_token,
            join_token_file,
            clients,
            original_clients,
            original_peers: Some(original_peers),
            tls_cert,
            tls_key,
            tls_ca,
            mtls: Some(mtls),
            insecure: Some(insecure),
            drain_timeout: Some(drain_timeout),
            encoder_memory_mb: Some(encoder_memory_mb),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    fn err(text: &str) -> FileError {
        FileConfig::parse(text, "node.toml").expect_err("should be rejected")
    }

    #[test]
    fn every_flag_is_a_key_and_every_key_a_field() {
        let keys = known_keys();
        assert!(keys.contains(&"data_dir".to_string()), "{keys:?}");
        assert!(keys.contains(&"backup_servers".to_string()), "{keys:?}");
        let mut all = Config::parse_from(["vidshard-node"]);
        all.master = Some("m:1".into());
        all.advertise = Some("a:1".into());
        all.metrics_addr = Some("127.0.0.1:9090".into());
        all.http_addr = Some("127.0.0.1:8080".into());
        all.token = Some("t".into());
        all.join_token = Some("j".into());
        all.join_token_file = Some("j.txt".into());
        all.clients = Some(ClientAccess::Token);
        all.original_clients = Some(OriginalClientAccess::Off);
        all.tls_cert = Some("c.pem".into());
        all.tls_key = Some("k.pem".into());
        all.tls_ca = Some("ca.pem".into());
        let table = toml::Table::try_from(FileConfig::from_config(&all)).expect("serialize");
        let mut fields: Vec<String> = table.keys().cloned().collect();
        let mut wanted = keys.clone();
        fields.sort();
        wanted.sort();
        assert_eq!(fields, wanted);
        for key in &keys {
            assert_ne!(expected(key), expected("no such key"), "describe {key}");
        }
    }

    #[test]
    fn a_full_file_parses() {
        let f = FileConfig::parse(
            r#"
            host = "0.0.0.0"
            port = 6000
            role = "worker"
            master = "m:50051"
            nodes = ["a:1", "b:2"]
            backup_servers = []
            data_dir = "/var/lib/vidshard"
            slots = 4
            shard_seconds = 6
            max_upload_bytes = 1024
            ffmpeg = "/opt/ffmpeg"
            ffprobe = "/opt/ffprobe"
            dead_after = 2.5
            log_format = "json"
            "#,
            "node.toml",
        )
        .expect("parse");
        assert_eq!(f.port, Some(6000));
        assert_eq!(f.role, Some(Role::Worker));
        assert_eq!(f.nodes, Some(vec!["a:1".to_string(), "b:2".to_string()]));
        assert_eq!(f.backup_servers, Some(vec![]));
        assert_eq!(f.shard_seconds, Some(6.0), "an integer is a number too");
        assert_eq!(f.log_format, Some(LogFormat::Json));
    }

    #[test]
    fn an_empty_file_sets_nothing() {
        assert_eq!(
            FileConfig::parse("# nothing\n", "node.toml"),
            Ok(FileConfig::default())
        );
    }

    #[test]
    fn unknown_keys_name_the_key_and_the_likely_one() {
        let e = err("shard_secs = 5\n");
        assert_eq!(e.key.as_deref(), Some("shard_secs"));
        assert_eq!(
            e.to_string(),
            "node.toml: unknown key \"shard_secs\" (did you mean \"shard_seconds\"?)"
        );
        let e = err("data-dir = \"/x\"\n");
        assert!(e.message.contains("did you mean \"data_dir\""), "{e}");
        let e = err("colour = \"blue\"\n");
        assert!(e.message.contains("unknown key \"colour\""), "{e}");
        assert!(e.message.contains("known keys: host, port"), "{e}");
        let e = err("[node]\nport = 1\n");
        assert!(e.message.contains("unknown section [node]"), "{e}");
        let e = err("config = \"/etc/x.toml\"\n");
        assert!(e.message.contains("on the command line"), "{e}");
    }

    #[test]
    fn wrong_types_name_the_key_what_it_must_be_and_what_it_got() {
        let e = err("port = \"abc\"\n");
        assert_eq!(e.key.as_deref(), Some("port"));
        assert_eq!(
            e.to_string(),
            "node.toml: \"port\" must be an integer 0..=65535, got \"abc\""
        );
        assert!(err("port = 70000").message.contains("got 70000"));
        assert!(err("port = -1").message.contains("\"port\" must be"));
        let e = err("role = \"boss\"");
        assert_eq!(
            e.message,
            "\"role\" must be \"master\" or \"worker\", got \"boss\""
        );
        let e = err("nodes = \"a:1,b:2\"");
        assert!(e.message.starts_with("\"nodes\" must be an array"), "{e}");
        let e = err("shard_seconds = \"ten\"");
        assert!(e.message.contains("a number of seconds"), "{e}");
        let e = err("log_format = \"xml\"");
        assert!(e.message.contains("\"text\" or \"json\""), "{e}");
    }

    #[test]
    fn toml_syntax_errors_say_where() {
        let e = err("port = 1\nhost = \n");
        assert!(e.message.starts_with("not valid TOML at line 2"), "{e}");
        assert_eq!(e.key, None);
    }

    #[test]
    fn a_missing_file_names_the_path() {
        let e =
            FileConfig::read(Path::new("/nonexistent/vidshard/node.toml")).expect_err("missing");
        assert!(
            e.to_string()
                .starts_with("/nonexistent/vidshard/node.toml: cannot read the config file"),
            "{e}"
        );
    }
}
