//! The Raft log on disk: entries, the vote, the committed id and the last
//! purged id, kept in `<data_dir>/raft.redb`. Also owns opening that file
//! and the small helpers both Raft stores use to run redb off the async
//! runtime.

use std::fmt::Debug;
use std::io;
use std::ops::{Bound, RangeBounds};
use std::path::Path;
use std::sync::Arc;

use openraft::storage::{LogFlushed, RaftLogStorage};
use openraft::{LogState, OptionalSend, RaftLogReader, StorageIOError};
use redb::backends::FileBackend;
use redb::{
    Database, Key, ReadOnlyTable, ReadTransaction, ReadableDatabase, ReadableTable,
    TableDefinition, Value,
};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::headroom::{Headroom, KeptFile};
use super::types::{Entry, LogId, NodeId, StorageError, TypeConfig, Vote};

/// Log entries by index; the value is the JSON of the [`Entry`].
const LOGS: TableDefinition<u64, &[u8]> = TableDefinition::new("raft_log");
/// Single values (JSON) that must survive a restart with the log.
const META: TableDefinition<&str, &[u8]> = TableDefinition::new("raft_log_meta");
const VOTE: &str = "vote";
const COMMITTED: &str = "committed";
const LAST_PURGED: &str = "last_purged";

/// Why a redb operation failed; turned into openraft's [`StorageError`]
/// (which stops the Raft node) at the trait boundary.
#[derive(Debug, thiserror::Error)]
pub(crate) enum DbError {
    #[error("redb transaction: {0}")]
    Transaction(#[from] redb::TransactionError),
    #[error("redb table: {0}")]
    Table(#[from] redb::TableError),
    #[error("redb storage: {0}")]
    Storage(#[from] redb::StorageError),
    #[error("redb commit: {0}")]
    Commit(#[from] redb::CommitError),
    #[error("encoding: {0}")]
    Codec(#[from] serde_json::Error),
    #[error("blocking task: {0}")]
    Join(#[from] tokio::task::JoinError),
}

/// Opens (creating it and its directory if needed) the redb file both
/// Raft stores share, written through [`KeptFile`] so it keeps its
/// [`Headroom`] (answered too: writes top it up). redb allows one handle
/// per file per process, hence the `Arc`. Blocking: call it from
/// `spawn_blocking` in async code.
pub fn open_database(path: &Path) -> Result<(Arc<Database>, Arc<Headroom>), redb::DatabaseError> {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)?;
    }
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)?;
    let headroom = Arc::new(Headroom::sized_for(path));
    headroom.keep();
    let backend = KeptFile::new(FileBackend::new(file)?, headroom.clone());
    let db = Database::builder().create_with_backend(backend)?;
    Ok((Arc::new(db), headroom))
}

/// Error mappers for [`run_blocking`], naming what failed.
pub(crate) type Fail = fn(&DbError) -> StorageIOError<NodeId>;
const READ_LOGS: Fail = |e| StorageIOError::read_logs(e);
const WRITE_LOGS: Fail = |e| StorageIOError::write_logs(e);
const READ_VOTE: Fail = |e| StorageIOError::read_vote(e);
const WRITE_VOTE: Fail = |e| StorageIOError::write_vote(e);
const READ: Fail = |e| StorageIOError::read(e);
const WRITE: Fail = |e| StorageIOError::write(e);

/// Runs `work` on the blocking pool (redb does synchronous disk IO) and
/// maps a failure with `fail`, which names what was being done.
pub(crate) async fn run_blocking<T, F>(
    db: &Arc<Database>,
    work: F,
    fail: Fail,
) -> Result<T, StorageError>
where
    T: Send + 'static,
    F: FnOnce(&Database) -> Result<T, DbError> + Send + 'static,
{
    let db = Arc::clone(db);
    let result = match tokio::task::spawn_blocking(move || work(&db)).await {
        Ok(result) => result,
        Err(join) => Err(DbError::Join(join)),
    };
    result.map_err(|e| StorageError::from(fail(&e)))
}

/// [`run_blocking`] for a write: tops up the file's [`Headroom`] first,
/// so the write lands on blocks that are already the log's.
pub(crate) async fn run_write<T, F>(
    db: &Arc<Database>,
    headroom: &Arc<Headroom>,
    work: F,
    fail: Fail,
) -> Result<T, StorageError>
where
    T: Send + 'static,
    F: FnOnce(&Database) -> Result<T, DbError> + Send + 'static,
{
    let headroom = Arc::clone(headroom);
    run_blocking(
        db,
        move |db| {
            headroom.keep();
            work(db)
        },
        fail,
    )
    .await
}

/// Opens a table for reading; `None` if it was never written to.
fn existing<K: Key + 'static, V: Value + 'static>(
    txn: &ReadTransaction,
    table: TableDefinition<K, V>,
) -> Result<Option<ReadOnlyTable<K, V>>, DbError> {
    match txn.open_table(table) {
        Ok(table) => Ok(Some(table)),
        Err(redb::TableError::TableDoesNotExist(_)) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// Reads a JSON value from a `&str -> &[u8]` table.
pub(crate) fn read_json<T: DeserializeOwned>(
    txn: &ReadTransaction,
    table: TableDefinition<&str, &[u8]>,
    key: &str,
) -> Result<Option<T>, DbError> {
    let Some(table) = existing(txn, table)? else {
        return Ok(None);
    };
    match table.get(key)? {
        Some(bytes) => Ok(Some(serde_json::from_slice(bytes.value())?)),
        None => Ok(None),
    }
}

/// Writes `value` as JSON under `key` in one durable transaction.
fn write_meta<T: Serialize>(db: &Database, key: &str, value: &T) -> Result<(), DbError> {
    let bytes = serde_json::to_vec(value)?;
    let txn = db.begin_write()?;
    txn.open_table(META)?.insert(key, bytes.as_slice())?;
    txn.commit()?;
    Ok(())
}

fn read_meta<T: DeserializeOwned>(db: &Database, key: &str) -> Result<Option<T>, DbError> {
    read_json(&db.begin_read()?, META, key)
}

/// The entries with index in `[start, end)` (`end` `None`: no upper bound).
fn read_entries(db: &Database, start: u64, end: Option<u64>) -> Result<Vec<Entry>, DbError> {
    if end.is_some_and(|end| end <= start) {
        return Ok(Vec::new());
    }
    let txn = db.begin_read()?;
    let Some(table) = existing(&txn, LOGS)? else {
        return Ok(Vec::new());
    };
    let range = match end {
        Some(end) => table.range(start..end)?,
        None => table.range(start..)?,
    };
    let mut entries = Vec::new();
    for item in range {
        let (_, value) = item?;
        entries.push(serde_json::from_slice(value.value())?);
    }
    Ok(entries)
}

fn read_log_state(db: &Database) -> Result<LogState<TypeConfig>, DbError> {
    let txn = db.begin_read()?;
    let last_purged: Option<LogId> = read_json(&txn, META, LAST_PURGED)?;
    let last_entry: Option<Entry> = match existing(&txn, LOGS)? {
        Some(table) => match table.last()? {
            Some((_, value)) => Some(serde_json::from_slice(value.value())?),
            None => None,
        },
        None => None,
    };
    Ok(LogState {
        last_log_id: last_entry.map(|e| e.log_id).or(last_purged),
        last_purged_log_id: last_purged,
    })
}

fn write_entries(db: &Database, entries: Vec<Entry>) -> Result<(), DbError> {
    let txn = db.begin_write()?;
    {
        let mut table = txn.open_table(LOGS)?;
        for entry in &entries {
            let bytes = serde_json::to_vec(entry)?;
            table.insert(entry.log_id.index, bytes.as_slice())?;
        }
    }
    txn.commit()?;
    Ok(())
}

/// Removes `[index, ∞)`.
fn truncate_from(db: &Database, index: u64) -> Result<(), DbError> {
    let txn = db.begin_write()?;
    txn.open_table(LOGS)?.retain_in(index.., |_, _| false)?;
    txn.commit()?;
    Ok(())
}

/// Records `upto` as purged and removes `(-∞, upto.index]`, atomically.
fn purge_upto(db: &Database, upto: LogId) -> Result<(), DbError> {
    let bytes = serde_json::to_vec(&upto)?;
    let txn = db.begin_write()?;
    txn.open_table(META)?
        .insert(LAST_PURGED, bytes.as_slice())?;
    txn.open_table(LOGS)?
        .retain_in(..=upto.index, |_, _| false)?;
    txn.commit()?;
    Ok(())
}

/// `[start, end)` of a range of log indexes (`end` `None`: unbounded).
fn index_bounds<RB: RangeBounds<u64>>(range: &RB) -> (u64, Option<u64>) {
    let start = match range.start_bound() {
        Bound::Included(&i) => i,
        Bound::Excluded(&i) => i.saturating_add(1),
        Bound::Unbounded => 0,
    };
    let end = match range.end_bound() {
        Bound::Included(&i) => i.checked_add(1),
        Bound::Excluded(&i) => Some(i),
        Bound::Unbounded => None,
    };
    (start, end)
}

/// The Raft log over redb. Cheap to clone: clones share the database, so
/// the log reader handed to replication tasks is another `LogStore`.
/// Every write commits with redb's default `Durability::Immediate`, i.e.
/// is on disk when the call returns.
#[derive(Clone)]
pub struct LogStore {
    db: Arc<Database>,
    headroom: Arc<Headroom>,
}

impl LogStore {
    /// A log over `db` (as returned by [`open_database`]); its tables are
    /// created by the first write. Writes keep `headroom` topped up.
    pub fn new(db: Arc<Database>, headroom: Arc<Headroom>) -> Self {
        Self { db, headroom }
    }
}

impl RaftLogReader<TypeConfig> for LogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry>, StorageError> {
        let (start, end) = index_bounds(&range);
        run_blocking(&self.db, move |db| read_entries(db, start, end), READ_LOGS).await
    }
}

impl RaftLogStorage<TypeConfig> for LogStore {
    type LogReader = Self;

    async fn get_log_state(&mut self) -> Result<LogState<TypeConfig>, StorageError> {
        run_blocking(&self.db, read_log_state, READ_LOGS).await
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote) -> Result<(), StorageError> {
        let vote = *vote;
        run_write(
            &self.db,
            &self.headroom,
            move |db| write_meta(db, VOTE, &vote),
            WRITE_VOTE,
        )
        .await
    }

    async fn read_vote(&mut self) -> Result<Option<Vote>, StorageError> {
        run_blocking(&self.db, |db| read_meta(db, VOTE), READ_VOTE).await
    }

    /// Persisted so that a restarted node re-applies what was committed
    /// since the last snapshot (the state machine only persists snapshots).
    async fn save_committed(&mut self, committed: Option<LogId>) -> Result<(), StorageError> {
        run_write(
            &self.db,
            &self.headroom,
            move |db| write_meta(db, COMMITTED, &committed),
            WRITE,
        )
        .await
    }

    async fn read_committed(&mut self) -> Result<Option<LogId>, StorageError> {
        let stored: Option<Option<LogId>> =
            run_blocking(&self.db, |db| read_meta(db, COMMITTED), READ).await?;
        Ok(stored.flatten())
    }

    /// Commits the entries, then reports them flushed: the callback only
    /// fires once they are durable.
    async fn append<I>(
        &mut self,
        entries: I,
        callback: LogFlushed<TypeConfig>,
    ) -> Result<(), StorageError>
    where
        I: IntoIterator<Item = Entry> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let entries: Vec<Entry> = entries.into_iter().collect();
        let written = run_write(
            &self.db,
            &self.headroom,
            move |db| write_entries(db, entries),
            WRITE_LOGS,
        )
        .await;
        match written {
            Ok(()) => {
                callback.log_io_completed(Ok(()));
                Ok(())
            }
            Err(e) => {
                callback.log_io_completed(Err(io::Error::other(e.clone())));
                Err(e)
            }
        }
    }

    async fn truncate(&mut self, log_id: LogId) -> Result<(), StorageError> {
        run_write(
            &self.db,
            &self.headroom,
            move |db| truncate_from(db, log_id.index),
            WRITE_LOGS,
        )
        .await
    }

    async fn purge(&mut self, log_id: LogId) -> Result<(), StorageError> {
        run_write(
            &self.db,
            &self.headroom,
            move |db| purge_upto(db, log_id),
            WRITE_LOGS,
        )
        .await
    }
}
