//! The Raft state machine: applies committed job commands to the node's
//! shared [`JobTable`], and owns its snapshots (the whole table as JSON,
//! kept in `raft.redb`). Only snapshots are persisted: on restart the
//! latest one is loaded and openraft re-applies the log after it up to the
//! persisted committed id.

use std::io::Cursor;
use std::sync::Arc;

use openraft::storage::RaftStateMachine;
use openraft::{EntryPayload, OptionalSend, RaftSnapshotBuilder, StorageIOError};
use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};
use serde::{Deserialize, Serialize};

use super::headroom::Headroom;
use super::log_store::{DbError, read_json, run_blocking, run_write};
use super::types::{
    Entry, LogId, Snapshot, SnapshotMeta, StorageError, StoredMembership, TypeConfig,
};
use crate::jobs::{CommandReply, JobTable, SharedJobs, now_unix_ms};

/// The current snapshot: its meta and its data, both JSON.
const SNAPSHOT: TableDefinition<&str, &[u8]> = TableDefinition::new("raft_snapshot");
const META: &str = "meta";
const DATA: &str = "data";

/// What a snapshot's data holds: the whole state machine.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct SnapshotBody {
    last_applied: Option<LogId>,
    last_membership: StoredMembership,
    jobs: JobTable,
}

/// A snapshot as stored: its meta and the bytes of its [`SnapshotBody`].
type StoredSnapshot = (SnapshotMeta, Vec<u8>);

fn load_snapshot(db: &Database) -> Result<Option<StoredSnapshot>, DbError> {
    let txn = db.begin_read()?;
    let meta: Option<SnapshotMeta> = read_json(&txn, SNAPSHOT, META)?;
    let Some(meta) = meta else {
        return Ok(None);
    };
    let table = txn.open_table(SNAPSHOT)?;
    let data = table.get(DATA)?.map(|d| d.value().to_vec());
    Ok(data.map(|data| (meta, data)))
}

/// Stores `snapshot` as the current one, unless a newer one is already
/// stored (a slow build must not replace a snapshot installed meanwhile).
fn store_snapshot(db: &Database, snapshot: StoredSnapshot) -> Result<(), DbError> {
    let (meta, data) = snapshot;
    let txn = db.begin_write()?;
    {
        let mut table = txn.open_table(SNAPSHOT)?;
        let stored: Option<SnapshotMeta> = match table.get(META)? {
            Some(bytes) => Some(serde_json::from_slice(bytes.value())?),
            None => None,
        };
        if stored.is_some_and(|s| s.last_log_id > meta.last_log_id) {
            return Ok(());
        }
        let meta = serde_json::to_vec(&meta)?;
        table.insert(META, meta.as_slice())?;
        table.insert(DATA, data.as_slice())?;
    }
    txn.commit()?;
    Ok(())
}

async fn persist(
    db: &Arc<Database>,
    headroom: &Arc<Headroom>,
    meta: SnapshotMeta,
    data: Vec<u8>,
) -> Result<(), StorageError> {
    run_write(
        db,
        headroom,
        move |db| store_snapshot(db, (meta, data)),
        |e| StorageIOError::write_snapshot(None, e),
    )
    .await
}

fn unreadable(meta: &SnapshotMeta, e: &serde_json::Error) -> StorageError {
    StorageIOError::read_snapshot(Some(meta.signature()), e).into()
}

/// The replicated job state, applied into the table the rest of the node
/// reads.
pub struct StateMachine {
    db: Arc<Database>,
    headroom: Arc<Headroom>,
    jobs: SharedJobs,
    last_applied: Option<LogId>,
    last_membership: StoredMembership,
}

impl StateMachine {
    /// Loads the latest stored snapshot into `jobs` (the same table the
    /// services read). Without a snapshot the table starts empty: the
    /// state machine is exactly "snapshot + log applied after it", so a
    /// replayed log must not land on top of anything else.
    /// Snapshots are written into `headroom` (see [`Headroom`]).
    pub async fn open(
        db: Arc<Database>,
        headroom: Arc<Headroom>,
        jobs: SharedJobs,
    ) -> Result<Self, StorageError> {
        let stored = run_blocking(&db, load_snapshot, |e| {
            StorageIOError::read_snapshot(None, e)
        })
        .await?;
        let (last_applied, last_membership, table) = match stored {
            Some((meta, data)) => {
                let body: SnapshotBody =
                    serde_json::from_slice(&data).map_err(|e| unreadable(&meta, &e))?;
                (meta.last_log_id, meta.last_membership, body.jobs)
            }
            None => (None, StoredMembership::default(), JobTable::default()),
        };
        *jobs.lock() = table;
        Ok(Self {
            db,
            headroom,
            jobs,
            last_applied,
            last_membership,
        })
    }

    /// Applies one entry's payload: job commands change the table, blank
    /// and membership entries only answer `Ignored`.
    fn apply_one(&mut self, entry: Entry) -> CommandReply {
        self.last_applied = Some(entry.log_id);
        let reason = match entry.payload {
            EntryPayload::Normal(command) => {
                return crate::jobs::apply(&mut self.jobs.lock(), &command);
            }
            EntryPayload::Blank => "blank entry",
            EntryPayload::Membership(membership) => {
                self.last_membership = StoredMembership::new(Some(entry.log_id), membership);
                "membership change"
            }
        };
        CommandReply::Ignored {
            reason: reason.to_string(),
        }
    }
}

impl RaftStateMachine<TypeConfig> for StateMachine {
    type SnapshotBuilder = SnapshotBuilder;

    async fn applied_state(&mut self) -> Result<(Option<LogId>, StoredMembership), StorageError> {
        Ok((self.last_applied, self.last_membership.clone()))
    }

    async fn apply<I>(&mut self, entries: I) -> Result<Vec<CommandReply>, StorageError>
    where
        I: IntoIterator<Item = Entry> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        Ok(entries.into_iter().map(|e| self.apply_one(e)).collect())
    }

    /// Copies the state now: openraft builds the snapshot in another task
    /// while this machine goes on applying.
    async fn get_snapshot_builder(&mut self) -> SnapshotBuilder {
        let jobs = self.jobs.lock().clone();
        SnapshotBuilder {
            db: Arc::clone(&self.db),
            headroom: Arc::clone(&self.headroom),
            body: SnapshotBody {
                last_applied: self.last_applied,
                last_membership: self.last_membership.clone(),
                jobs,
            },
        }
    }

    async fn begin_receiving_snapshot(&mut self) -> Result<Box<Cursor<Vec<u8>>>, StorageError> {
        Ok(Box::new(Cursor::new(Vec::new())))
    }

    /// Persists the leader's snapshot, then replaces the table with it.
    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta,
        snapshot: Box<Cursor<Vec<u8>>>,
    ) -> Result<(), StorageError> {
        let data = snapshot.into_inner();
        let body: SnapshotBody = serde_json::from_slice(&data).map_err(|e| unreadable(meta, &e))?;
        persist(&self.db, &self.headroom, meta.clone(), data).await?;
        *self.jobs.lock() = body.jobs;
        self.last_applied = meta.last_log_id;
        self.last_membership = meta.last_membership.clone();
        Ok(())
    }

    async fn get_current_snapshot(&mut self) -> Result<Option<Snapshot>, StorageError> {
        let stored = run_blocking(&self.db, load_snapshot, |e| {
            StorageIOError::read_snapshot(None, e)
        })
        .await?;
        Ok(stored.map(|(meta, data)| Snapshot {
            meta,
            snapshot: Box::new(Cursor::new(data)),
        }))
    }
}

/// A copy of the state machine taken by `get_snapshot_builder`, turned
/// into a stored snapshot.
pub struct SnapshotBuilder {
    db: Arc<Database>,
    headroom: Arc<Headroom>,
    body: SnapshotBody,
}

impl RaftSnapshotBuilder<TypeConfig> for SnapshotBuilder {
    async fn build_snapshot(&mut self) -> Result<Snapshot, StorageError> {
        let data =
            serde_json::to_vec(&self.body).map_err(|e| StorageIOError::write_snapshot(None, &e))?;
        let last = self.body.last_applied;
        let snapshot_id = match last {
            Some(id) => format!("{}-{}-{}", id.leader_id.term, id.index, now_unix_ms()),
            None => format!("empty-{}", now_unix_ms()),
        };
        let meta = SnapshotMeta {
            last_log_id: last,
            last_membership: self.body.last_membership.clone(),
            snapshot_id,
        };
        persist(&self.db, &self.headroom, meta.clone(), data.clone()).await?;
        Ok(Snapshot {
            meta,
            snapshot: Box::new(Cursor::new(data)),
        })
    }
}
