use super::*;

/// Every `rpc` of our .proto files as `/package.Service/Method`.
fn every_rpc() -> Vec<String> {
    let mut paths = Vec::new();
    for text in [
        include_str!("../../../proto/proto/replication.proto"),
        include_str!("../../../proto/proto/vidshard.proto"),
    ] {
        let mut package = "";
        let mut service = "";
        for line in text.lines().map(str::trim) {
            if let Some(rest) = line.strip_prefix("package ") {
                package = rest.trim_end_matches(';').trim();
            } else if let Some(rest) = line.strip_prefix("service ") {
                service = rest.trim_end_matches('{').trim();
            } else if let Some(rest) = line.strip_prefix("rpc ") {
                let method = rest.split('(').next().unwrap_or("").trim();
                paths.push(format!("/{package}.{service}/{method}"));
            }
        }
    }
    paths
}

#[test]
fn every_rpc_says_what_it_needs() {
    let paths = every_rpc();
    assert!(paths.len() >= 34, "{paths:?}");
    for path in &paths {
        assert!(need(path).is_some(), "{path} is not classified");
    }
    assert_eq!(need("/vidshard.v1.Raft/AppendEntries"), Some(Need::Peer));
    assert_eq!(need("/vidshard.v1.Jobs/DeleteJob"), Some(Need::Operator));
    assert_eq!(need("/vidshard.v1.Jobs/Upload"), Some(Need::Client));
    assert_eq!(
        need("/replication.MasterService/UploadVideo"),
        Some(Need::OriginalClient)
    );
    assert_eq!(
        need("/replication.NodeService/RequestBackupData"),
        Some(Need::OriginalPeer)
    );
    assert_eq!(need("/vidshard.v1.Raft/Nope"), None);
    assert_eq!(need("garbage"), None);
}

fn credentials() -> Credentials {
    Credentials {
        peer: Some("join-secret-0123456789".into()),
        operator: Some("op-0123456789abcdef".into()),
    }
}

fn policy() -> Policy {
    Policy {
        clients: ClientAccess::Open,
        original_clients: OriginalClientAccess::Open,
        original_peers: PeerAddresses::Any,
    }
}

#[test]
fn callers_are_told_apart_by_their_token() {
    let c = credentials();
    assert_eq!(
        caller(Some(b"Bearer join-secret-0123456789"), &c),
        Caller::Peer
    );
    assert_eq!(
        caller(Some(b"Bearer op-0123456789abcdef"), &c),
        Caller::Operator
    );
    assert_eq!(
        caller(Some(b"Bearer guess"), &c),
        Caller::Anonymous { sent_token: true }
    );
    assert_eq!(caller(None, &c), Caller::Anonymous { sent_token: false });
    let joiner = Credentials {
        peer: None,
        operator: None,
    };
    assert_eq!(
        caller(Some(b"Bearer "), &joiner),
        Caller::Anonymous { sent_token: true }
    );
}

#[test]
fn by_default_peers_and_operators_are_checked_and_clients_open() {
    let anyone = Caller::Anonymous { sent_token: false };
    let p = policy();
    for need in [
        Need::Open,
        Need::Client,
        Need::OriginalClient,
        Need::OriginalPeer,
    ] {
        assert_eq!(decide(need, anyone, None, &p), Ok(()), "{need:?}");
    }
    assert!(matches!(
        decide(Need::Peer, anyone, None, &p),
        Err(Refusal::NotAMember(""))
    ));
    assert!(matches!(
        decide(Need::Operator, anyone, None, &p),
        Err(Refusal::NotAnOperator(""))
    ));
    // The operator token is not the join token.
    assert!(decide(Need::Peer, Caller::Operator, None, &p).is_err());
    assert_eq!(decide(Need::Operator, Caller::Operator, None, &p), Ok(()));
    assert_eq!(decide(Need::Peer, Caller::Peer, None, &p), Ok(()));
    assert_eq!(
        decide(Need::Peer, Caller::Anonymous { sent_token: true }, None, &p),
        Err(Refusal::NotAMember(WRONG))
    );
}

#[test]
fn closed_policies_refuse_strangers_but_not_members() {
    let anyone = Caller::Anonymous { sent_token: false };
    let here: IpAddr = "10.0.0.7".parse().expect("ip");
    let there: IpAddr = "10.0.0.8".parse().expect("ip");
    let p = Policy {
        clients: ClientAccess::Token,
        original_clients: OriginalClientAccess::Off,
        original_peers: PeerAddresses::Only(vec![here]),
    };
    assert!(decide(Need::Client, anyone, None, &p).is_err());
    assert_eq!(decide(Need::Client, Caller::Operator, None, &p), Ok(()));
    assert_eq!(
        decide(Need::OriginalClient, Caller::Operator, None, &p),
        Err(Refusal::OriginalClientsOff)
    );
    assert_eq!(decide(Need::OriginalClient, Caller::Peer, None, &p), Ok(()));
    assert_eq!(decide(Need::OriginalPeer, anyone, Some(here), &p), Ok(()));
    let mapped: IpAddr = "::ffff:10.0.0.7".parse().expect("ip");
    assert_eq!(
        decide(Need::OriginalPeer, anyone, Some(canonical(mapped)), &p),
        Ok(())
    );
    assert_eq!(
        decide(Need::OriginalPeer, anyone, Some(there), &p),
        Err(Refusal::OriginalPeerNotListed("10.0.0.8".into()))
    );
    let off = Policy {
        original_peers: PeerAddresses::Off,
        ..p
    };
    assert_eq!(
        decide(Need::OriginalPeer, anyone, Some(here), &off),
        Err(Refusal::OriginalPeersOff)
    );
    assert_eq!(
        Refusal::OriginalPeersOff.status().code(),
        tonic::Code::PermissionDenied
    );
    assert_eq!(
        Refusal::NotAMember("").status().code(),
        tonic::Code::Unauthenticated
    );
}
