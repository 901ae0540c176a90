//! Tests of the redb Raft stores: openraft's storage suite, restart
//! recovery (snapshot + committed log), and log truncation and purging
//! across a reopen.

use std::collections::{BTreeMap, BTreeSet};
use std::ops::Bound;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use openraft::error::{InstallSnapshotError, RPCError, RaftError, Unreachable};
use openraft::network::RPCOption;
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use openraft::storage::{RaftLogStorage, RaftLogStorageExt, RaftStateMachine};
use openraft::testing::{StoreBuilder, Suite};
use openraft::{
    CommittedLeaderId, Config, EntryPayload, Membership, RaftLogReader, RaftNetwork,
    RaftNetworkFactory, RaftSnapshotBuilder, StorageIOError,
};
use tempfile::TempDir;

use super::log_store::{LogStore, open_database};
use super::state_machine::StateMachine;
use super::types::{Entry, LogId, NodeId, NodeInfo, Raft, StorageError, TypeConfig, Vote};
use crate::jobs::{Command, CommandReply, SharedJobs};
use crate::params::RawParams;
use crate::store::BlobRef;

fn log_id(term: u64, index: u64) -> LogId {
    LogId::new(CommittedLeaderId::new(term, 1), index)
}

fn entry(term: u64, index: u64, payload: EntryPayload<TypeConfig>) -> Entry {
    let log_id = log_id(term, index);
    Entry { log_id, payload }
}

fn blank(term: u64, index: u64) -> Entry {
    entry(term, index, EntryPayload::Blank)
}

fn accept(name: &str) -> Command {
    let params = RawParams {
        target_width: 320,
        target_height: 180,
        ..Default::default()
    };
    Command::Accept {
        requested_id: name.to_string(),
        upload_key: String::new(),
        params: params.validate().expect("valid params"),
        source: BlobRef {
            sha256: "ab".repeat(32),
            size: 42,
        },
        source_holders: vec!["node-a".into()],
        at_ms: 1_000,
    }
}

/// Jobs compared through their JSON (records hold a non-comparable ETA).
fn json(jobs: &SharedJobs) -> serde_json::Value {
    serde_json::to_value(&*jobs.lock()).expect("jobs serialize")
}

async fn open(path: &Path, jobs: SharedJobs) -> (LogStore, StateMachine) {
    let (db, headroom) = open_database(path).expect("open raft.redb");
    let state = StateMachine::open(db.clone(), headroom.clone(), jobs)
        .await
        .expect("open state machine");
    (LogStore::new(db, headroom), state)
}

/// Fresh stores in a fresh temporary directory, for openraft's suite.
struct Builder;

impl StoreBuilder<TypeConfig, LogStore, StateMachine, TempDir> for Builder {
    async fn build(&self) -> Result<(TempDir, LogStore, StateMachine), StorageError> {
        let dir = tempfile::tempdir().map_err(|e| StorageIOError::write(&e))?;
        let path = dir.path().join("raft.redb");
        let (db, headroom) = open_database(&path).map_err(|e| StorageIOError::write(&e))?;
        let state = StateMachine::open(db.clone(), headroom.clone(), SharedJobs::default()).await?;
        Ok((dir, LogStore::new(db, headroom), state))
    }
}

/// The suite runs each case on its own runtime, so this is a plain test.
#[test]
fn openraft_storage_suite_passes() {
    Suite::test_all(Builder).expect("openraft storage suite");
}

#[tokio::test]
async fn jobs_vote_and_committed_survive_a_restart() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("raft.redb");
    let jobs = SharedJobs::default();
    let entries = vec![
        entry(
            1,
            1,
            EntryPayload::Membership(Membership::new(vec![BTreeSet::from([1])], None)),
        ),
        entry(1, 2, EntryPayload::Normal(accept("first.mp4"))),
        entry(1, 3, EntryPayload::Normal(accept("first.mp4"))),
        entry(2, 4, EntryPayload::Normal(accept("late.mp4"))),
    ];
    {
        let (mut log, mut state) = open(&path, jobs.clone()).await;
        log.save_vote(&Vote::new(2, 1)).await.expect("vote");
        log.blocking_append(entries.clone()).await.expect("append");
        let replies = state.apply(entries[..3].to_vec()).await.expect("apply");
        assert!(matches!(replies[0], CommandReply::Ignored { .. }));
        assert_eq!(
            replies[2],
            CommandReply::Applied {
                job: "first.mp4-2".into()
            }
        );
        let snapshot = state
            .get_snapshot_builder()
            .await
            .build_snapshot()
            .await
            .expect("snapshot");
        assert_eq!(snapshot.meta.last_log_id, Some(log_id(1, 3)));
        state
            .apply(entries[3..].to_vec())
            .await
            .expect("apply after snapshot");
        log.save_committed(Some(log_id(2, 4)))
            .await
            .expect("committed");
    }
    assert_eq!(jobs.lock().list().len(), 3);

    let reopened = SharedJobs::default();
    let (mut log, mut state) = open(&path, reopened.clone()).await;
    assert_eq!(log.read_vote().await.expect("vote"), Some(Vote::new(2, 1)));
    assert_eq!(
        log.read_committed().await.expect("committed"),
        Some(log_id(2, 4))
    );
    let (applied, members) = state.applied_state().await.expect("applied state");
    assert_eq!(applied, Some(log_id(1, 3)), "restored from the snapshot");
    assert_eq!(members.log_id(), &Some(log_id(1, 1)));
    assert_eq!(reopened.lock().list().len(), 2);
    let current = state.get_current_snapshot().await.expect("read snapshot");
    assert_eq!(
        current.map(|s| s.meta.last_log_id),
        Some(Some(log_id(1, 3)))
    );

    // What openraft does on start: re-apply (last applied, committed].
    let rest = log.try_get_log_entries(4..=4).await.expect("read log");
    state.apply(rest).await.expect("re-apply");
    assert_eq!(json(&reopened), json(&jobs));
}

#[tokio::test]
async fn log_survives_reopen_and_truncate_and_purge_hold() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("raft.redb");
    {
        let (mut log, _state) = open(&path, SharedJobs::default()).await;
        let entries: Vec<Entry> = (1..=6).map(|i| blank(1, i)).collect();
        log.blocking_append(entries).await.expect("append");
        log.purge(log_id(1, 2)).await.expect("purge");
        log.truncate(log_id(1, 5)).await.expect("truncate");
    }
    let (mut log, _state) = open(&path, SharedJobs::default()).await;
    let state = log.get_log_state().await.expect("log state");
    assert_eq!(state.last_purged_log_id, Some(log_id(1, 2)));
    assert_eq!(state.last_log_id, Some(log_id(1, 4)));
    let indexes: Vec<u64> = log
        .try_get_log_entries(..)
        .await
        .expect("read")
        .iter()
        .map(|e| e.log_id.index)
        .collect();
    assert_eq!(indexes, vec![3, 4]);
    assert!(
        log.try_get_log_entries((Bound::Included(6), Bound::Excluded(3)))
            .await
            .expect("inverted range")
            .is_empty()
    );

    log.purge(log_id(1, 4)).await.expect("purge all");
    let state = log.get_log_state().await.expect("log state");
    assert_eq!(
        state.last_log_id,
        Some(log_id(1, 4)),
        "all purged: last is the purged id"
    );
    log.blocking_append([blank(2, 5)])
        .await
        .expect("append after purge");
    assert_eq!(
        log.get_log_state().await.expect("state").last_log_id,
        Some(log_id(2, 5))
    );
}

/// A network to nowhere: a one-node cluster never sends an RPC.
struct NoPeers;

fn unreachable<E: std::error::Error>() -> RPCError<NodeId, NodeInfo, E> {
    RPCError::Unreachable(Unreachable::new(&std::io::Error::other(
        "no peers in this test",
    )))
}

impl RaftNetworkFactory<TypeConfig> for NoPeers {
    type Network = NoPeers;
    async fn new_client(&mut self, _target: NodeId, _node: &NodeInfo) -> NoPeers {
        NoPeers
    }
}

impl RaftNetwork<TypeConfig> for NoPeers {
    async fn append_entries(
        &mut self,
        _rpc: AppendEntriesRequest<TypeConfig>,
        _option: RPCOption,
    ) -> Result<AppendEntriesResponse<NodeId>, RPCError<NodeId, NodeInfo, RaftError<NodeId>>> {
        Err(unreachable())
    }
    async fn install_snapshot(
        &mut self,
        _rpc: InstallSnapshotRequest<TypeConfig>,
        _option: RPCOption,
    ) -> Result<
        InstallSnapshotResponse<NodeId>,
        RPCError<NodeId, NodeInfo, RaftError<NodeId, InstallSnapshotError>>,
    > {
        Err(unreachable())
    }
    async fn vote(
        &mut self,
        _rpc: VoteRequest<NodeId>,
        _option: RPCOption,
    ) -> Result<VoteResponse<NodeId>, RPCError<NodeId, NodeInfo, RaftError<NodeId>>> {
        Err(unreachable())
    }
}

async fn start_raft(path: &Path, jobs: SharedJobs) -> Raft {
    let (log, state) = open(path, jobs).await;
    let config = Config {
        heartbeat_interval: 50,
        election_timeout_min: 150,
        election_timeout_max: 300,
        ..Default::default()
    };
    let config = Arc::new(config.validate().expect("valid config"));
    Raft::new(1, config, NoPeers, log, state)
        .await
        .expect("start raft")
}

async fn write(raft: &Raft, name: &str) -> CommandReply {
    raft.client_write(accept(name))
        .await
        .expect("client write")
        .data
}

/// End to end through openraft: what a one-node cluster committed is
/// back in the job table after a restart (the snapshot plus the log after
/// it; which of openraft's paths re-applies the log is timing-dependent
/// here, the committed-id path is pinned by the test above and the suite).
#[tokio::test]
async fn a_restarted_raft_rebuilds_the_job_table() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("raft.redb");
    let jobs = SharedJobs::default();
    let raft = start_raft(&path, jobs.clone()).await;
    let info = NodeInfo {
        address: "127.0.0.1:1".into(),
        name: "node-a".into(),
    };
    raft.initialize(BTreeMap::from([(1, info)]))
        .await
        .expect("initialize");
    assert_eq!(
        write(&raft, "one.mp4").await,
        CommandReply::Applied {
            job: "one.mp4".into()
        }
    );
    write(&raft, "two.mp4").await;
    raft.trigger().snapshot().await.expect("trigger snapshot");
    let applied = raft.metrics().borrow().last_applied.expect("applied");
    let wait = raft.wait(Some(Duration::from_secs(5)));
    wait.snapshot(applied, "snapshot built")
        .await
        .expect("snapshot built");
    write(&raft, "three.mp4").await;
    raft.shutdown().await.expect("shutdown");
    drop(raft);
    assert_eq!(jobs.lock().list().len(), 3);

    let reopened = SharedJobs::default();
    let raft = start_raft(&path, reopened.clone()).await;
    let wait = raft.wait(Some(Duration::from_secs(5)));
    let last = raft.metrics().borrow().last_log_index;
    wait.applied_index_at_least(last, "log re-applied")
        .await
        .expect("re-applied");
    assert_eq!(json(&reopened), json(&jobs));
    raft.shutdown().await.expect("shutdown");
}
