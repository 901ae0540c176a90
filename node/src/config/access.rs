//! Who may call what, as configured: the policies for our clients
//! (`--clients`), the original system's clients (`--original-clients`)
//! and its workers and masters (`--original-peers`). Plain data; the
//! gate that applies them is `service::access`.

use std::str::FromStr;

use clap::ValueEnum;
use serde::{Deserialize, Serialize};

/// Client RPCs (upload, status, retrieve, list, watch) of `vidshard.v1`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ClientAccess {
    /// Anyone who reaches the port, like the original client.
    Open,
    /// Only callers with the operator token (`--token`) or the join token.
    Token,
}

/// The original client's RPCs (`replication.MasterService` upload,
/// status, retrieve, and the "who is master" questions).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum OriginalClientAccess {
    Open,
    Token,
    /// Refused to everyone but members of this cluster.
    Off,
}

/// Original workers and masters (RegisterWorker, ReportResourceScore,
/// ProcessShard, ReplicateVideo, …): they can carry no token, so they are
/// told apart by address only.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(try_from = "String", into = "String")]
pub enum OriginalPeers {
    Any,
    Off,
    /// Only these hosts (names are resolved when the node starts).
    Hosts(Vec<String>),
}

impl FromStr for OriginalPeers {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text.trim() {
            "any" => Ok(Self::Any),
            "off" => Ok(Self::Off),
            "" => Err("give any, off, or a comma-separated list of hosts".into()),
            list => {
                let hosts: Vec<String> = list
                    .split(',')
                    .map(|h| h.trim().to_string())
                    .filter(|h| !h.is_empty())
                    .collect();
                match hosts.iter().find(|h| h.contains(['/', ' ', '@'])) {
                    Some(bad) => Err(format!(
                        "\"{bad}\" is not a host name or address (give any, off, or HOST,HOST)"
                    )),
                    None => Ok(Self::Hosts(hosts)),
                }
            }
        }
    }
}

impl TryFrom<String> for OriginalPeers {
    type Error = String;
    fn try_from(text: String) -> Result<Self, Self::Error> {
        text.parse()
    }
}

impl From<OriginalPeers> for String {
    fn from(peers: OriginalPeers) -> Self {
        peers.to_string()
    }
}

impl std::fmt::Display for OriginalPeers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Any => f.write_str("any"),
            Self::Off => f.write_str("off"),
            Self::Hosts(hosts) => f.write_str(&hosts.join(",")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn original_peers_parse_and_print_back() {
        for text in ["any", "off", "10.0.0.7,old-master.lan"] {
            let peers: OriginalPeers = text.parse().expect(text);
            assert_eq!(peers.to_string(), text);
        }
        assert_eq!(
            " a , b ".parse::<OriginalPeers>(),
            Ok(OriginalPeers::Hosts(vec!["a".into(), "b".into()]))
        );
        assert!("".parse::<OriginalPeers>().is_err());
        assert!("10.0.0.0/8".parse::<OriginalPeers>().is_err());
    }
}
