//! Forced elections: the leader hands leadership to another voter.
//! openraft 0.9 has no transfer call, and voters refuse a candidate while
//! the leader's lease is valid, so the leader steps aside: the other
//! voters hold their own campaigns, the leader stops heartbeating, the
//! lease runs out, the target campaigns and wins with the votes of the
//! held voters. Quorum and log up-to-dateness still decide: a target
//! whose log is behind simply loses, and the old leader comes back.

use std::time::Duration;

use vidshard_proto::v1::SteerRequest;
use vidshard_proto::v1::raft_client::RaftClient;

use super::consensus::{Consensus, LEADER_LEASE, RaftMember};
use super::types::NodeId;
use crate::cluster::peers::Peers;

/// How long held voters stay quiet at most (they release by themselves
/// if the leader dies mid-transfer).
const HOLD: Duration = Duration::from_secs(8);
/// How long the target gets to win.
const WIN_WITHIN: Duration = Duration::from_secs(4);

/// Why leadership was not handed over, or a steering request refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TransferError {
    #[error("{0} is already the master")]
    AlreadyMaster(String),
    #[error("{0} is not a voter of this cluster (learners cannot lead)")]
    NotAVoter(String),
    #[error("no other voter to hand leadership to")]
    NoOtherVoter,
    /// A voter did not take a steering request.
    #[error("{address}: {reason}")]
    Peer { address: String, reason: String },
    #[error("leadership not moved: {0}")]
    NotCampaigned(Box<TransferError>),
    #[error(
        "leadership not moved: {target} did not win within {WIN_WITHIN:?} (its log may be behind); the master is {master}"
    )]
    NotWon { target: String, master: String },
    #[error("term {term} is older than this node's {own}")]
    StaleTerm { term: u64, own: u64 },
    #[error("campaigning failed: {0}")]
    Campaign(String),
    #[error("unknown steering action {0:?}")]
    UnknownAction(String),
    #[error(
        "this master was elected on request {:.1} s ago; forced elections are at least {} s apart: retry in {:.1} s",
        since.as_secs_f64(),
        FORCED_ELECTION_GAP.as_secs(),
        (FORCED_ELECTION_GAP.saturating_sub(*since)).as_secs_f64()
    )]
    TooSoon { since: Duration },
}

/// Forced elections follow each other at most this often (each pauses
/// the jobs for a moment, so a loop of them starved the cluster). An
/// election that was not forced (a lost master, the first one) does not
/// count, and stopping a node hands leadership over regardless.
pub const FORCED_ELECTION_GAP: Duration = Duration::from_secs(10);

/// Whether a forced election may start now (pure): this master won a
/// forced election `since` ago (`None`: it was not elected on request).
pub fn election_allowed(since: Option<Duration>) -> Result<(), TransferError> {
    match since {
        Some(since) if since < FORCED_ELECTION_GAP => Err(TransferError::TooSoon { since }),
        _ => Ok(()),
    }
}

/// Picks the voter to hand leadership to (pure): the named one, or the
/// live voter with the best (lowest) score other than the leader, among
/// those whose log is caught up (`caught_up`) when any is. A voter that
/// died takes no part in replication, so it is never caught up: right
/// after a change of leader, when no voter has reported a score yet, the
/// pick falls on one that answers, not on the first in the list (a forced
/// election then waited 4 s for a dead node to win: CI).
pub fn pick_target(
    members: &[RaftMember],
    leader: NodeId,
    wanted: Option<&str>,
    score_of: impl Fn(&str) -> Option<f32>,
    caught_up: impl Fn(&str) -> bool,
) -> Result<RaftMember, TransferError> {
    let voters: Vec<&RaftMember> = members
        .iter()
        .filter(|m| m.voter && m.id != leader)
        .collect();
    if let Some(name) = wanted.filter(|n| !n.is_empty()) {
        if members
            .iter()
            .any(|m| m.id == leader && m.info.name == name)
        {
            return Err(TransferError::AlreadyMaster(name.to_string()));
        }
        return voters
            .into_iter()
            .find(|m| m.info.name == name)
            .cloned()
            .ok_or_else(|| TransferError::NotAVoter(name.to_string()));
    }
    let able: Vec<&RaftMember> = voters
        .iter()
        .copied()
        .filter(|m| caught_up(&m.info.name))
        .collect();
    let pool = if able.is_empty() { voters } else { able };
    // Best score among voters heard from; right after a change of leader
    // none may have reported yet, then any other voter.
    pool.iter()
        .filter_map(|m| score_of(&m.info.name).map(|score| (score, *m)))
        .min_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, m)| m)
        .or_else(|| pool.first().copied())
        .cloned()
        .ok_or(TransferError::NoOtherVoter)
}

async fn steer(peers: &Peers, address: &str, action: &str, term: u64) -> Result<(), TransferError> {
    let refused = |reason: String| TransferError::Peer {
        address: address.to_string(),
        reason,
    };
    let channel = peers.channel(address).map_err(|e| refused(e.to_string()))?;
    let mut request = tonic::Request::new(SteerRequest {
        action: action.into(),
        term,
        hold_ms: HOLD.as_millis() as u32,
    });
    request.set_timeout(Duration::from_secs(2));
    let reply = RaftClient::new(channel)
        .steer(request)
        .await
        .map_err(|e| refused(e.message().to_string()))?
        .into_inner();
    if reply.ok {
        Ok(())
    } else {
        Err(refused(reply.message))
    }
}

/// Hands leadership to `target`; answers once it leads (or why not).
pub async fn hand_over(
    consensus: &Consensus,
    peers: &Peers,
    target: &RaftMember,
) -> Result<u64, TransferError> {
    let term = consensus.term();
    let others: Vec<RaftMember> = consensus
        .members()
        .into_iter()
        .filter(|m| m.voter && m.id != consensus.id && m.id != target.id)
        .collect();
    for other in &others {
        if let Err(e) = steer(peers, &other.info.address, "hold", term).await {
            tracing::warn!(node = %other.info.name, error = %e, "could not hold a voter for the transfer");
        }
    }
    // Job commands wait from here: the target must hold the whole log to
    // win the vote, and a leader that kept appending stayed ahead of it.
    let paused = consensus.pause_writes(Duration::from_secs(2)).await;
    let runtime = consensus.raft.runtime_config();
    runtime.heartbeat(false);
    runtime.elect(false);
    tokio::time::sleep(LEADER_LEASE + Duration::from_millis(200)).await;
    if !consensus
        .wait_replicated(target.id, Duration::from_secs(1))
        .await
    {
        tracing::warn!(target = %target.info.name, "the target does not hold the whole log yet; it campaigns anyway");
    }
    let campaigned = steer(peers, &target.info.address, "campaign", term).await;
    let won = match campaigned {
        Ok(()) => consensus
            .wait_for_leader_other_than(consensus.id, WIN_WITHIN)
            .await
            .filter(|(id, _)| *id == target.id),
        Err(ref e) => {
            tracing::warn!(error = %e, "the target could not campaign");
            None
        }
    };
    runtime.heartbeat(true);
    runtime.elect(true);
    drop(paused);
    for other in &others {
        let _ = steer(peers, &other.info.address, "release", term).await;
    }
    match (won, campaigned) {
        (Some(_), _) => Ok(consensus.term()),
        (None, Err(e)) => Err(TransferError::NotCampaigned(Box::new(e))),
        (None, Ok(())) => Err(TransferError::NotWon {
            target: target.info.name.clone(),
            master: consensus
                .leader()
                .map_or_else(|| "being elected".into(), |(_, n)| n.name),
        }),
    }
}

/// The voter side of a transfer: obey the leader of `term` or newer.
pub async fn obey(
    consensus: &Consensus,
    action: &str,
    term: u64,
    hold_ms: u32,
) -> Result<(), TransferError> {
    if term < consensus.term() {
        return Err(TransferError::StaleTerm {
            term,
            own: consensus.term(),
        });
    }
    let runtime = consensus.raft.runtime_config();
    match action {
        "hold" => {
            runtime.elect(false);
            let raft = consensus.raft.clone();
            let hold = Duration::from_millis(u64::from(hold_ms)).min(HOLD);
            tokio::spawn(async move {
                tokio::time::sleep(hold).await;
                raft.runtime_config().elect(true);
            });
            Ok(())
        }
        "release" => {
            runtime.elect(true);
            Ok(())
        }
        "campaign" => {
            consensus.campaigning_on_request();
            runtime.elect(true);
            consensus
                .raft
                .trigger()
                .elect()
                .await
                .map_err(|e| TransferError::Campaign(e.to_string()))
        }
        other => Err(TransferError::UnknownAction(other.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::raft::NodeInfo;

    fn member(id: NodeId, name: &str, voter: bool) -> RaftMember {
        RaftMember {
            id,
            info: NodeInfo {
                address: format!("h:{id}"),
                name: name.into(),
            },
            voter,
        }
    }

    #[test]
    fn the_named_voter_or_the_best_scored_one_is_picked() {
        let members = [
            member(1, "a", true),
            member(2, "b", true),
            member(3, "c", true),
            member(4, "d", false),
        ];
        let score = |name: &str| match name {
            "b" => Some(30.0),
            "c" => Some(10.0),
            "d" => Some(1.0),
            _ => None,
        };
        let all = |_: &str| true;
        assert_eq!(
            pick_target(&members, 1, Some("b"), score, all).map(|m| m.id),
            Ok(2)
        );
        assert_eq!(
            pick_target(&members, 1, None, score, all).map(|m| m.id),
            Ok(3)
        );
        assert!(
            pick_target(&members, 1, Some("d"), score, all).is_err(),
            "learners cannot lead"
        );
        assert!(
            pick_target(&members, 1, Some("a"), score, all).is_err(),
            "already the master"
        );
        assert!(pick_target(&members, 1, Some("zz"), score, all).is_err());
        assert!(pick_target(&members[..1], 1, None, score, all).is_err());
        // No scores yet (a new leader): still another voter.
        assert_eq!(
            pick_target(&members, 1, None, |_| None, all).map(|m| m.id),
            Ok(2)
        );
        // ... one that answers replication, not a dead one first in line.
        let only_c = |name: &str| name == "c";
        assert_eq!(
            pick_target(&members, 1, None, |_| None, only_c).map(|m| m.id),
            Ok(3)
        );
        assert_eq!(
            pick_target(&members, 1, None, score, |name: &str| name == "b").map(|m| m.id),
            Ok(2),
            "a caught-up voter before a better-scored one that is behind"
        );
        assert_eq!(
            pick_target(&members, 1, None, |_| None, |_| false).map(|m| m.id),
            Ok(2),
            "none caught up: still another voter"
        );
    }

    #[test]
    fn forced_elections_are_spaced() {
        assert!(election_allowed(None).is_ok());
        assert!(election_allowed(Some(FORCED_ELECTION_GAP)).is_ok());
        let early = election_allowed(Some(Duration::from_millis(2500))).unwrap_err();
        assert!(early.to_string().contains("retry in 7.5 s"), "{early}");
    }
}
