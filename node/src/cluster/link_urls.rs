//! Where this node's HTTP server is reached and the links it hands out
//! (pure): the base URL from the bound address and `--advertise`, and
//! [`Links`], the handle the gRPC `Link` call uses to sign a job's URLs.

use std::net::SocketAddr;

use super::links::{dash_path, grant, hls_path, watch_path};
use crate::config::Config;

/// `http://HOST:PORT` of this node's HTTP server, `None` when it serves
/// none. `bound` is the listener's address (its port is the real one
/// when `--http-addr` asked for port 0). The host is the one in
/// `--advertise` when set (how clients reach this machine), else the
/// bound IP, else, for a wildcard bind, the host the node announces for
/// gRPC (`--host`, or the machine's name for 0.0.0.0).
pub fn http_base_url(config: &Config, bound: Option<SocketAddr>) -> Option<String> {
    let bound = bound?;
    let advertised = config.advertise.as_deref().filter(|a| !a.is_empty());
    let host = match advertised {
        Some(address) => host_of(address).to_string(),
        None if bound.ip().is_unspecified() => host_of(&config.advertised_address(0)).to_string(),
        None => match bound {
            SocketAddr::V4(v4) => v4.ip().to_string(),
            SocketAddr::V6(v6) => format!("[{}]", v6.ip()),
        },
    };
    Some(format!("http://{host}:{}", bound.port()))
}

/// `HOST` of `HOST:PORT` (`[v6]` kept in brackets); the whole text when
/// it has no port.
fn host_of(address: &str) -> &str {
    match address.rsplit_once(':') {
        Some((host, port))
            if !port.is_empty()
                && port.bytes().all(|b| b.is_ascii_digit())
                && (!host.contains(':') || host.starts_with('[')) =>
        {
            host
        }
        _ => address,
    }
}

/// The URLs of one job under one grant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkUrls {
    /// The player page (hls.js when the job publishes HLS).
    pub watch: String,
    /// The player page with dash.js.
    pub dash_watch: String,
    /// The HLS master playlist.
    pub hls: String,
    /// The DASH MPD.
    pub dash: String,
    pub expires_unix: u64,
}

/// What signing links needs: the key (from the join token) and this
/// node's HTTP base URL. Built once the HTTP listener is bound; cheap to
/// clone into a service.
#[derive(Clone, Default)]
pub struct Links {
    key: Option<[u8; 32]>,
    base_url: Option<String>,
}

impl std::fmt::Debug for Links {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Links")
            .field("key", &self.key.map(|_| "…"))
            .field("base_url", &self.base_url)
            .finish()
    }
}

impl Links {
    pub fn new(key: Option<[u8; 32]>, base_url: Option<String>) -> Self {
        Self { key, base_url }
    }

    /// `http://HOST:PORT`, when this node serves HTTP.
    pub fn base_url(&self) -> Option<&str> {
        self.base_url.as_deref()
    }

    /// Whether links can be made here: HTTP on and a join token known.
    pub fn enabled(&self) -> bool {
        self.key.is_some() && self.base_url.is_some()
    }

    /// The job's URLs until `expires_unix`; `None` when this node serves
    /// no HTTP or has no join token to sign with. `job` must be an id the
    /// job table handed out (they need no escaping in a path).
    pub fn urls(&self, job: &str, expires_unix: u64) -> Option<LinkUrls> {
        let (key, base) = (self.key.as_ref()?, self.base_url.as_deref()?);
        let g = grant(key, job, expires_unix);
        Some(LinkUrls {
            watch: format!("{base}{}", watch_path(&g, job)),
            dash_watch: format!("{base}{}?player=dash", watch_path(&g, job)),
            hls: format!("{base}{}", hls_path(&g, job)),
            dash: format!("{base}{}", dash_path(&g, job)),
            expires_unix,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser as _;

    fn config(args: &[&str]) -> Config {
        Config::parse_from(std::iter::once("vidshard-node").chain(args.iter().copied()))
    }

    fn addr(text: &str) -> Option<SocketAddr> {
        Some(text.parse().expect("socket address"))
    }

    #[test]
    fn the_base_url_names_the_bound_port() {
        let c = config(&[]);
        assert_eq!(http_base_url(&c, None), None);
        assert_eq!(
            http_base_url(&c, addr("127.0.0.1:41234")).as_deref(),
            Some("http://127.0.0.1:41234")
        );
        assert_eq!(
            http_base_url(&c, addr("[::1]:8080")).as_deref(),
            Some("http://[::1]:8080")
        );
    }

    #[test]
    fn advertise_names_the_host() {
        let c = config(&["--advertise", "n1.example:50051"]);
        assert_eq!(
            http_base_url(&c, addr("0.0.0.0:8080")).as_deref(),
            Some("http://n1.example:8080")
        );
        let c = config(&["--advertise", "[2001:db8::1]:50051"]);
        assert_eq!(
            http_base_url(&c, addr("[::]:8080")).as_deref(),
            Some("http://[2001:db8::1]:8080")
        );
    }

    #[test]
    fn a_wildcard_bind_uses_the_grpc_host() {
        let c = config(&["--host", "10.0.0.5"]);
        assert_eq!(
            http_base_url(&c, addr("0.0.0.0:8080")).as_deref(),
            Some("http://10.0.0.5:8080")
        );
        let c = config(&["--host", "0.0.0.0"]);
        let url = http_base_url(&c, addr("0.0.0.0:8080")).expect("url");
        assert!(!url.contains("0.0.0.0") && url.ends_with(":8080"), "{url}");
    }

    #[test]
    fn hosts_of_addresses() {
        assert_eq!(host_of("a:1"), "a");
        assert_eq!(host_of("[::1]:1"), "[::1]");
        assert_eq!(host_of("::1"), "::1");
        assert_eq!(host_of("name"), "name");
    }

    #[test]
    fn links_need_a_key_and_a_server() {
        let key = Some([3; 32]);
        let base = Some("http://h:1".to_string());
        assert_eq!(Links::new(None, base.clone()).urls("j", 9), None);
        assert_eq!(Links::new(key, None).urls("j", 9), None);
        assert!(!Links::default().enabled());
        let urls = Links::new(key, base).urls("clip.mp4", 9).expect("urls");
        let g = grant(&[3; 32], "clip.mp4", 9);
        assert_eq!(urls.watch, format!("http://h:1/s/{g}/watch/clip.mp4"));
        assert_eq!(urls.dash_watch, format!("{}?player=dash", urls.watch));
        assert_eq!(urls.hls, format!("http://h:1/s/{g}/v/clip.mp4/master.m3u8"));
        assert_eq!(
            urls.dash,
            format!("http://h:1/s/{g}/v/clip.mp4/manifest.mpd")
        );
        assert_eq!(urls.expires_unix, 9);
        assert!(!format!("{:?}", Links::new(key, None)).contains('3'));
    }
}
