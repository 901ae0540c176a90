//! Domain errors as gRPC statuses, decided here once per family: which
//! code a client sees for each failure, and the words with it.

use tonic::Status;

use crate::backups::serve::ServeError;
use crate::cluster::blob_stream::SendError;
use crate::pipeline::DeleteError;
use crate::pipeline::intake::IngestError;
use crate::store::StoreError;
use crate::worker::copy::handed_back_status;
use crate::worker::run_shard::RunShardError;

impl From<IngestError> for Status {
    fn from(error: IngestError) -> Self {
        match error {
            IngestError::Busy { .. } => Status::resource_exhausted(error.to_string()),
            IngestError::Idle { .. } => Status::deadline_exceeded(error.to_string()),
            // A full disk: the client can only wait for space (the temp
            // file is gone already, so the node has its space back).
            IngestError::Storing {
                ref error,
                received,
            } if error.is_disk_full() => Status::resource_exhausted(format!(
                "{error}: the upload does not fit (dropped after {received} bytes); \
                 free disk space on the node and upload again"
            )),
            IngestError::Storing { .. } | IngestError::Ignored(_) => {
                Status::internal(error.to_string())
            }
            IngestError::NoBackup(_) | IngestError::NotRecorded(_) => {
                Status::unavailable(error.to_string())
            }
            IngestError::Broken(status) => status,
        }
    }
}

impl From<RunShardError> for Status {
    fn from(error: RunShardError) -> Self {
        match error {
            // UNAVAILABLE with the hand-back mark: the master places the
            // shard elsewhere at once, spending no attempt.
            RunShardError::HandedBack(why) => handed_back_status(why),
            RunShardError::Broken(status) => status,
            RunShardError::Store(e) => Status::internal(e.to_string()),
            RunShardError::Refused(_) | RunShardError::Stale(_) => {
                Status::failed_precondition(error.to_string())
            }
        }
    }
}

/// A store failure while serving a request (a bad name from the network
/// is the caller's fault; the rest are the node's).
pub fn store_status(error: StoreError) -> Status {
    match error {
        StoreError::BadName(_) => Status::invalid_argument(error.to_string()),
        StoreError::Missing(_) => Status::not_found(error.to_string()),
        _ => Status::internal(error.to_string()),
    }
}

impl From<DeleteError> for Status {
    fn from(error: DeleteError) -> Self {
        match error {
            DeleteError::BadId(_) => Status::invalid_argument(error.to_string()),
            DeleteError::Unknown(_) => Status::not_found(error.to_string()),
            DeleteError::NotRecorded(_) => Status::unavailable(error.to_string()),
        }
    }
}

impl From<SendError> for Status {
    fn from(error: SendError) -> Self {
        match error {
            SendError::Unreadable(_) => Status::unavailable(error.to_string()),
            SendError::Read(_) => Status::internal(error.to_string()),
            SendError::Shrank { .. } => Status::data_loss(error.to_string()),
        }
    }
}

impl From<ServeError> for Status {
    fn from(error: ServeError) -> Self {
        match error {
            ServeError::BadId(_) => Status::invalid_argument(error.to_string()),
            ServeError::Unknown(_) => Status::not_found(error.to_string()),
            ServeError::NotReady { .. } => Status::failed_precondition(error.to_string()),
            ServeError::NoCopy { .. } => Status::unavailable(error.to_string()),
            ServeError::Store(e) => store_status(e),
            ServeError::Local(e) => e.into(),
            ServeError::Remote(status) => status,
            // The client retries: another copy will be used.
            ServeError::Damaged { .. } => Status::data_loss(error.to_string()),
        }
    }
}
