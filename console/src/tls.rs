//! TLS for the client and the console: `--tls-ca` (the CA that signed the
//! nodes' certificates) and, for clusters running mutual TLS,
//! `--tls-cert/--tls-key`. Loaded once at start; every connection then
//! uses `https://` (also when the address is written `https://HOST:PORT`,
//! trusting the public web roots when no `--tls-ca` is given).

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use anyhow::{Context, Result, bail};
use tonic::transport::{Certificate, ClientTlsConfig, Identity};

/// The TLS flags as given.
#[derive(Debug, Clone, Default)]
pub struct TlsArgs {
    pub ca: Option<PathBuf>,
    pub cert: Option<PathBuf>,
    pub key: Option<PathBuf>,
}

static TLS: OnceLock<Option<ClientTlsConfig>> = OnceLock::new();
static HAS_IDENTITY: OnceLock<bool> = OnceLock::new();

/// Reads the files once, at start; an error names the flag and the file.
pub fn init(args: &TlsArgs) -> Result<()> {
    let config = build(args)?;
    let _ = TLS.set(config);
    let _ = HAS_IDENTITY.set(args.cert.is_some());
    Ok(())
}

/// TLS is on but no client certificate was given: a transport error may
/// then be a node running mutual TLS refusing us.
pub fn lacks_client_certificate() -> bool {
    enabled() && HAS_IDENTITY.get() != Some(&true)
}

/// Whether the flags turned TLS on (addresses then default to https).
pub fn enabled() -> bool {
    matches!(TLS.get(), Some(Some(_)))
}

/// The TLS settings for an `https://` connection.
pub fn client_config() -> ClientTlsConfig {
    match TLS.get() {
        Some(Some(config)) => config.clone(),
        _ => ClientTlsConfig::new().with_webpki_roots(),
    }
}

fn build(args: &TlsArgs) -> Result<Option<ClientTlsConfig>> {
    let identity = match (&args.cert, &args.key) {
        (None, None) => None,
        (Some(cert), Some(key)) => Some(Identity::from_pem(
            read_pem("--tls-cert", cert, "CERTIFICATE")?,
            read_pem("--tls-key", key, "")?,
        )),
        (Some(_), None) => bail!("--tls-cert needs --tls-key (the certificate's private key)"),
        (None, Some(_)) => bail!("--tls-key needs --tls-cert (the certificate it belongs to)"),
    };
    if args.ca.is_none() && identity.is_none() {
        return Ok(None);
    }
    let mut config = ClientTlsConfig::new();
    config = match &args.ca {
        Some(ca) => config.ca_certificate(Certificate::from_pem(read_pem(
            "--tls-ca",
            ca,
            "CERTIFICATE",
        )?)),
        None => config.with_webpki_roots(),
    };
    if let Some(identity) = identity {
        config = config.identity(identity);
    }
    // Parse everything now, so a bad file fails here with its name.
    tonic::transport::Endpoint::from_static("https://localhost")
        .tls_config(config.clone())
        .map_err(|e| anyhow::anyhow!("the TLS files cannot be used: {e:?}"))?;
    Ok(Some(config))
}

/// The file's bytes if it holds a PEM block of kind `what` ("" = any).
fn read_pem(flag: &str, path: &Path, what: &str) -> Result<Vec<u8>> {
    let bytes =
        std::fs::read(path).with_context(|| format!("reading {flag} {}", path.display()))?;
    if !String::from_utf8_lossy(&bytes).contains(&format!("-----BEGIN {what}")) {
        bail!(
            "{flag} {} is not a PEM {} file",
            path.display(),
            if what.is_empty() {
                "key"
            } else {
                "certificate"
            }
        );
    }
    Ok(bytes)
}
