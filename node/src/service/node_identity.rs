//! What a node says about itself when it joins or heartbeats, checked
//! before anything is recorded (pure): a plausible id and HOST:PORT, and
//! the address to reach it at when it listens on every interface.

use vidshard_proto::v1::HeartbeatRequest;

/// The address to reach a worker at: what it reports, unless it listens
/// on every interface (0.0.0.0 / [::]), which no one can dial; then the
/// IP its heartbeat came from, with its port (pure).
pub fn reachable_address(reported: &str, peer_ip: Option<std::net::IpAddr>) -> String {
    let Some((host, port)) = reported.rsplit_once(':') else {
        return reported.to_string();
    };
    let unspecified = matches!(host, "0.0.0.0" | "[::]" | "::" | "");
    match (unspecified, peer_ip) {
        (true, Some(std::net::IpAddr::V6(ip))) => format!("[{ip}]:{port}"),
        (true, Some(ip)) => format!("{ip}:{port}"),
        _ => reported.to_string(),
    }
}

/// A heartbeat whose fields could not name a real node.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BadHeartbeat {
    #[error("bad node id {0:?}")]
    NodeId(String),
    #[error("bad node address {0:?}: expected HOST:PORT")]
    Address(String),
    #[error("heartbeat claims too many slots or tasks")]
    TooMany,
}

/// Rejects heartbeats whose fields could not name a real node (pure).
pub fn check_heartbeat(beat: &HeartbeatRequest) -> Result<(), BadHeartbeat> {
    let id_ok = !beat.node_id.is_empty()
        && beat.node_id.len() <= 64
        && beat
            .node_id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if !id_ok {
        return Err(BadHeartbeat::NodeId(beat.node_id.clone()));
    }
    let address_ok = beat.address.len() <= 260
        && beat
            .address
            .rsplit_once(':')
            .is_some_and(|(h, p)| !h.is_empty() && p.parse::<u16>().is_ok_and(|p| p > 0));
    if !address_ok {
        return Err(BadHeartbeat::Address(beat.address.clone()));
    }
    if beat.slots_total > 1024 || beat.tasks.len() > 4096 {
        return Err(BadHeartbeat::TooMany);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn workers_listening_everywhere_are_reached_at_their_source_ip() {
        let ip = Some("10.1.2.3".parse().expect("ip"));
        assert_eq!(reachable_address("0.0.0.0:50051", ip), "10.1.2.3:50051");
        assert_eq!(
            reachable_address("192.168.0.9:50051", ip),
            "192.168.0.9:50051"
        );
        assert_eq!(
            reachable_address("[::]:7", Some("::1".parse().expect("ip"))),
            "[::1]:7"
        );
        assert_eq!(reachable_address("0.0.0.0:50051", None), "0.0.0.0:50051");
    }

    #[test]
    fn heartbeats_with_bad_identities_are_refused() {
        let ok = HeartbeatRequest {
            node_id: "node-1".into(),
            address: "h:1".into(),
            slots_total: 2,
            ..Default::default()
        };
        assert!(check_heartbeat(&ok).is_ok());
        for (id, address) in [
            ("../x", "h:1"),
            ("", "h:1"),
            ("n", "nohost"),
            ("n", "h:0"),
            ("n", ":5"),
        ] {
            let beat = HeartbeatRequest {
                node_id: id.into(),
                address: address.into(),
                ..Default::default()
            };
            assert!(check_heartbeat(&beat).is_err(), "{id} {address}");
        }
    }
}
