//! The cluster's two keys: the **join token** (the peer secret nodes prove
//! themselves with) and the **operator token** (admin RPCs: delete, elect,
//! remove). The first node of a cluster makes the join token and keeps it
//! in `<data-dir>/cluster-secret` (mode 0600); every other node is given it
//! (`--join-token`, `VIDSHARD_JOIN_TOKEN`, `join_token_file`) and keeps it
//! too, so `vidshard-node token --data-dir DIR` prints it on any member.
//!
//! The operator token is derived from the join token by a one-way hash
//! (unless `--token` sets one): every member can print it without it ever
//! travelling, and holding it does not give the join token, so an operator
//! can steer jobs and elections but cannot speak Raft or pose as a node.

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

/// Where the join token lives in a data dir.
pub const SECRET_FILE: &str = "cluster-secret";

/// Longest token accepted (it travels in every peer call's header).
const MAX_TOKEN: usize = 512;

/// Why the keys could not be read, made or kept.
#[derive(Debug, thiserror::Error)]
pub enum CredentialError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "{what} must be 16 to {MAX_TOKEN} printable ASCII characters without spaces (it travels in a header)"
    )]
    Malformed { what: String },
}

/// The keys this node checks callers against and proves itself with.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    /// The join token; `None` on a node told to join without one (it can
    /// still work for an original master, but no vidshard member takes it).
    pub peer: Option<String>,
    /// The operator token; `None` only when `peer` is `None` and no
    /// `--token` was given.
    pub operator: Option<String>,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("peer", &self.peer.as_ref().map(|_| "…"))
            .field("operator", &self.operator.as_ref().map(|_| "…"))
            .finish()
    }
}

/// The operator token belonging to join token `peer` (pure, one-way).
pub fn operator_token(peer: &str) -> String {
    let digest = Sha256::new()
        .chain_update(b"vidshard operator token v1\0")
        .chain_update(peer.as_bytes())
        .finalize();
    format!("op-{}", hex::encode(&digest[..24]))
}

/// A fresh join token: 256 random bits (two v4 UUIDs come from the OS
/// random source).
pub fn new_join_token() -> String {
    format!(
        "join-{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    )
}

/// Checks that `token` can travel in a header and is not trivially short.
pub fn check_token(token: &str, what: &str) -> Result<(), CredentialError> {
    let fine =
        (16..=MAX_TOKEN).contains(&token.len()) && token.bytes().all(|b| b.is_ascii_graphic());
    if fine {
        Ok(())
    } else {
        Err(CredentialError::Malformed {
            what: what.to_string(),
        })
    }
}

/// What to do about the join token at start (pure): the one given wins
/// (and is kept), else the one kept, else a new one if this node founds
/// the cluster, else none.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretPlan {
    Use(String),
    Keep(String),
    Create,
    Missing,
}

pub fn plan_secret(given: Option<&str>, kept: Option<&str>, founding: bool) -> SecretPlan {
    match (given, kept) {
        (Some(given), Some(kept)) if given == kept => SecretPlan::Use(given.to_string()),
        (Some(given), _) => SecretPlan::Keep(given.to_string()),
        (None, Some(kept)) => SecretPlan::Use(kept.to_string()),
        (None, None) if founding => SecretPlan::Create,
        (None, None) => SecretPlan::Missing,
    }
}

/// The join token kept in `data_dir`, if any.
pub async fn read_secret(data_dir: &Path) -> Result<Option<String>, CredentialError> {
    let path = data_dir.join(SECRET_FILE);
    match tokio::fs::read_to_string(&path).await {
        Ok(text) => Ok(Some(text.trim().to_string()).filter(|t| !t.is_empty())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(CredentialError::Io { path, source }),
    }
}

/// Keeps `secret` in `data_dir` (owner-only, replaced atomically).
pub async fn write_secret(data_dir: &Path, secret: &str) -> Result<(), CredentialError> {
    use tokio::io::AsyncWriteExt as _;
    let path = data_dir.join(SECRET_FILE);
    let temp = data_dir.join(format!("{SECRET_FILE}.tmp"));
    let io = |source| CredentialError::Io {
        path: path.clone(),
        source,
    };
    let _ = tokio::fs::remove_file(&temp).await;
    let mut file = tokio::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&temp)
        .await
        .map_err(io)?;
    file.write_all(format!("{secret}\n").as_bytes())
        .await
        .map_err(io)?;
    file.sync_all().await.map_err(io)?;
    tokio::fs::rename(&temp, &path).await.map_err(io)
}

/// The join token given in the configuration: the flag/environment value,
/// else the first line of `join_token_file`.
pub async fn given_secret(
    flag: Option<&str>,
    file: Option<&Path>,
) -> Result<Option<String>, CredentialError> {
    if let Some(token) = flag.map(str::trim).filter(|t| !t.is_empty()) {
        return Ok(Some(token.to_string()));
    }
    let Some(path) = file else { return Ok(None) };
    let text = tokio::fs::read_to_string(path)
        .await
        .map_err(|source| CredentialError::Io {
            path: path.to_path_buf(),
            source,
        })?;
    Ok(text
        .lines()
        .next()
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(str::to_string))
}

/// This node's keys: resolves the join token by [`plan_secret`] (writing
/// it to the data dir when new or changed) and the operator token (the
/// configured `--token`, else derived).
pub async fn load(
    data_dir: &Path,
    given: Option<String>,
    operator: Option<&str>,
    founding: bool,
) -> Result<Credentials, CredentialError> {
    if let Some(given) = &given {
        check_token(given, "the join token")?;
    }
    let kept = read_secret(data_dir).await?;
    let peer = match plan_secret(given.as_deref(), kept.as_deref(), founding) {
        SecretPlan::Use(secret) => Some(secret),
        SecretPlan::Keep(secret) => {
            write_secret(data_dir, &secret).await?;
            Some(secret)
        }
        SecretPlan::Create => {
            let secret = new_join_token();
            write_secret(data_dir, &secret).await?;
            tracing::info!(
                file = %data_dir.join(SECRET_FILE).display(),
                "made this cluster's join token; other nodes need it to join (`vidshard-node token --data-dir DIR` prints it)"
            );
            Some(secret)
        }
        SecretPlan::Missing => None,
    };
    let operator = match operator.map(str::trim).filter(|t| !t.is_empty()) {
        Some(token) => Some(token.to_string()),
        None => peer.as_deref().map(operator_token),
    };
    Ok(Credentials { peer, operator })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_given_token_wins_and_only_a_founder_makes_one() {
        assert_eq!(
            plan_secret(Some("a"), Some("a"), false),
            SecretPlan::Use("a".into())
        );
        assert_eq!(
            plan_secret(Some("b"), Some("a"), true),
            SecretPlan::Keep("b".into())
        );
        assert_eq!(
            plan_secret(Some("b"), None, false),
            SecretPlan::Keep("b".into())
        );
        assert_eq!(
            plan_secret(None, Some("a"), false),
            SecretPlan::Use("a".into())
        );
        assert_eq!(plan_secret(None, None, true), SecretPlan::Create);
        assert_eq!(plan_secret(None, None, false), SecretPlan::Missing);
    }

    #[test]
    fn the_operator_token_is_derived_one_way_and_differs() {
        let peer = new_join_token();
        assert_ne!(peer, new_join_token());
        assert!(check_token(&peer, "t").is_ok());
        let operator = operator_token(&peer);
        assert_eq!(operator, operator_token(&peer));
        assert_ne!(operator, peer);
        assert!(!operator.contains(&peer[5..]));
        assert_ne!(operator, operator_token(&new_join_token()));
        assert!(check_token(&operator, "t").is_ok());
        assert!(check_token("short", "t").is_err());
        assert!(check_token("has a space in it, long enough", "t").is_err());
    }

    #[tokio::test]
    async fn a_founder_keeps_its_token_owner_only_and_reads_it_back() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().expect("tempdir");
        let made = load(dir.path(), None, None, true).await.expect("load");
        let peer = made.peer.clone().expect("a founder makes a token");
        let mode = std::fs::metadata(dir.path().join(SECRET_FILE))
            .expect("kept")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        let again = load(dir.path(), None, None, false).await.expect("load");
        assert_eq!(again, made);
        assert_eq!(
            again.operator.as_deref(),
            Some(operator_token(&peer).as_str())
        );
        let joiner = tempfile::tempdir().expect("tempdir");
        let missing = load(joiner.path(), None, None, false).await.expect("load");
        assert_eq!(missing.peer, None);
        assert!(
            load(joiner.path(), Some("x".into()), None, false)
                .await
                .is_err()
        );
        let chosen = load(joiner.path(), None, Some("my-operator-token-1"), false)
            .await
            .expect("load");
        assert_eq!(chosen.operator.as_deref(), Some("my-operator-token-1"));
    }
}
