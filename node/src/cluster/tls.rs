//! TLS for every service of a node (rustls, via tonic): what `--tls-cert`,
//! `--tls-key`, `--tls-ca` and `--mtls` mean, checked and loaded once at
//! start.
//!
//! - `--tls-cert` + `--tls-key`: the node serves TLS only, and reaches the
//!   other nodes over TLS (a cluster is all-TLS or all-plaintext). The
//!   certificate must name the host part of the node's advertised address
//!   (an IP SAN for `10.0.0.1:50051`, a DNS SAN for `node1:50051`),
//!   because that is what other nodes and clients check it against.
//! - `--tls-ca`: the CA that signed the nodes' certificates, trusted when
//!   connecting to other nodes. Without it the public web roots are used.
//! - `--mtls`: mutual TLS: callers must present a certificate signed by
//!   `--tls-ca` (nodes present their own `--tls-cert`; the CLI takes
//!   `--tls-cert/--tls-key` too). The cluster token still applies.

use std::path::{Path, PathBuf};

use tonic::transport::{Certificate, ClientTlsConfig, Endpoint, Identity, ServerTlsConfig};

/// A TLS setting that cannot work, named with the flag to fix.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("{0}")]
    Incomplete(&'static str),
    #[error("reading {flag} {path}: {source}")]
    Read {
        flag: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{flag} {path} holds no PEM {what} (expected a \"-----BEGIN {what}\" block)")]
    NotPem {
        flag: &'static str,
        path: PathBuf,
        what: &'static str,
    },
    #[error("the TLS files do not work together: {0}")]
    Rejected(String),
}

/// The TLS flags of a node, as given.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TlsFlags {
    pub cert: Option<PathBuf>,
    pub key: Option<PathBuf>,
    pub ca: Option<PathBuf>,
    pub mtls: bool,
}

impl TlsFlags {
    /// The TLS flags of a node's configuration.
    pub fn of(config: &crate::config::Config) -> Self {
        Self {
            cert: config.tls_cert.clone(),
            key: config.tls_key.clone(),
            ca: config.tls_ca.clone(),
            mtls: config.mtls,
        }
    }
}

/// Whether the flags make sense together, before any file is read (pure).
/// `Ok(false)`: TLS is off.
pub fn check_flags(flags: &TlsFlags) -> Result<bool, TlsError> {
    match (&flags.cert, &flags.key) {
        (None, None) => {
            if flags.ca.is_some() || flags.mtls {
                return Err(TlsError::Incomplete(
                    "--tls-ca and --mtls need --tls-cert and --tls-key (this node's certificate)",
                ));
            }
            Ok(false)
        }
        (Some(_), None) => Err(TlsError::Incomplete(
            "--tls-cert needs --tls-key (the certificate's private key)",
        )),
        (None, Some(_)) => Err(TlsError::Incomplete(
            "--tls-key needs --tls-cert (the certificate it belongs to)",
        )),
        (Some(_), Some(_)) => {
            if flags.mtls && flags.ca.is_none() {
                return Err(TlsError::Incomplete(
                    "--mtls needs --tls-ca (the CA that signed the callers' certificates)",
                ));
            }
            Ok(true)
        }
    }
}

/// The loaded certificate material of a node with TLS on.
#[derive(Debug, Clone)]
pub struct NodeTls {
    identity: Identity,
    ca: Option<Certificate>,
    mtls: bool,
}

impl NodeTls {
    /// Reads and checks the files named by `flags`; `None` when TLS is off.
    /// Every mistake is reported here, at start, not at the first call.
    pub async fn load(flags: &TlsFlags) -> Result<Option<Self>, TlsError> {
        if !check_flags(flags)? {
            return Ok(None);
        }
        let (Some(cert_path), Some(key_path)) = (&flags.cert, &flags.key) else {
            return Ok(None);
        };
        let cert = read_pem("--tls-cert", cert_path, "CERTIFICATE").await?;
        let key = read_pem("--tls-key", key_path, "").await?;
        let ca = match &flags.ca {
            Some(path) => Some(Certificate::from_pem(
                read_pem("--tls-ca", path, "CERTIFICATE").await?,
            )),
            None => None,
        };
        let tls = Self {
            identity: Identity::from_pem(cert, key),
            ca,
            mtls: flags.mtls,
        };
        // Building both sides parses every file: a bad key or CA fails now.
        tonic::transport::Server::builder()
            .tls_config(tls.server())
            .map_err(|e| TlsError::Rejected(format!("{e:?}")))?;
        Endpoint::from_static("https://localhost")
            .tls_config(tls.client())
            .map_err(|e| TlsError::Rejected(format!("{e:?}")))?;
        Ok(Some(tls))
    }

    /// The server side: this node's certificate, and the callers' CA when
    /// mutual TLS is on.
    pub fn server(&self) -> ServerTlsConfig {
        let config = ServerTlsConfig::new().identity(self.identity.clone());
        match (&self.ca, self.mtls) {
            (Some(ca), true) => config.client_ca_root(ca.clone()),
            _ => config,
        }
    }

    /// The client side for calls to other nodes: trust `--tls-ca` (or the
    /// web roots) and present this node's certificate (mutual TLS).
    pub fn client(&self) -> ClientTlsConfig {
        let config = ClientTlsConfig::new().identity(self.identity.clone());
        match &self.ca {
            Some(ca) => config.ca_certificate(ca.clone()),
            None => config.with_webpki_roots(),
        }
    }
}

/// The file's bytes, if it has a PEM block of kind `what` ("" = any).
async fn read_pem(
    flag: &'static str,
    path: &Path,
    what: &'static str,
) -> Result<Vec<u8>, TlsError> {
    let bytes = tokio::fs::read(path)
        .await
        .map_err(|source| TlsError::Read {
            flag,
            path: path.to_path_buf(),
            source,
        })?;
    let marker = format!("-----BEGIN {what}");
    let text = String::from_utf8_lossy(&bytes);
    if !text.contains(&marker) {
        return Err(TlsError::NotPem {
            flag,
            path: path.to_path_buf(),
            what: if what.is_empty() { "PRIVATE KEY" } else { what },
        });
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flags(cert: bool, key: bool, ca: bool, mtls: bool) -> TlsFlags {
        TlsFlags {
            cert: cert.then(|| "c.pem".into()),
            key: key.then(|| "k.pem".into()),
            ca: ca.then(|| "ca.pem".into()),
            mtls,
        }
    }

    #[test]
    fn flags_are_checked_together() {
        assert!(!check_flags(&flags(false, false, false, false)).expect("off"));
        assert!(check_flags(&flags(true, true, false, false)).expect("on"));
        assert!(check_flags(&flags(true, true, true, true)).expect("mtls"));
        for (bad, names) in [
            (flags(true, false, false, false), "--tls-key"),
            (flags(false, true, false, false), "--tls-cert"),
            (flags(false, false, true, false), "--tls-cert"),
            (flags(false, false, false, true), "--tls-cert"),
            (flags(true, true, false, true), "--tls-ca"),
        ] {
            let why = check_flags(&bad).expect_err("refused").to_string();
            assert!(why.contains(names), "{bad:?}: {why}");
        }
    }

    #[tokio::test]
    async fn files_that_are_not_pem_are_named() {
        let dir = tempfile::tempdir().expect("tempdir");
        let cert = dir.path().join("cert.pem");
        let key = dir.path().join("key.pem");
        std::fs::write(&cert, "not a certificate").expect("write");
        std::fs::write(&key, "-----BEGIN PRIVATE KEY-----\n").expect("write");
        let why = NodeTls::load(&TlsFlags {
            cert: Some(cert.clone()),
            key: Some(key),
            ca: None,
            mtls: false,
        })
        .await
        .expect_err("refused")
        .to_string();
        assert!(
            why.contains("--tls-cert") && why.contains("cert.pem"),
            "{why}"
        );
        let why = NodeTls::load(&TlsFlags {
            cert: Some(cert),
            key: Some(dir.path().join("missing.pem")),
            ca: None,
            mtls: false,
        })
        .await
        .expect_err("refused")
        .to_string();
        assert!(why.contains("--tls-cert"), "cert is read first: {why}");
    }
}
