//! Registering with an original master, as the original worker does:
//! `MasterService/RegisterWorker` with this node's address at start and
//! every 5 s until it succeeds; again when the master has not called this
//! node for a while (an original master prunes workers that fail its
//! checks and only takes them back through `RegisterWorker`), and at once
//! when a new master announces itself. Idle on a node of a vidshard
//! cluster.

use std::time::Duration;

use vidshard_proto::replication::RegisterWorkerRequest;
use vidshard_proto::replication::master_service_client::MasterServiceClient;

use crate::cluster::Sys;

/// Between two tries while the master does not take this node.
pub const RETRY_EVERY: Duration = Duration::from_secs(5);
/// Registered, but not called by the master for this long: register again.
pub const SILENCE: Duration = Duration::from_secs(30);

/// What the loop does next (pure).
#[derive(Debug, PartialEq, Eq)]
pub enum Next {
    Register,
    Wait(Duration),
}

/// Registers when not registered yet, or when the master has been
/// silent for [`SILENCE`]; otherwise waits.
pub fn next(registered: bool, silent_for: Duration) -> Next {
    if !registered || silent_for >= SILENCE {
        Next::Register
    } else {
        Next::Wait(RETRY_EVERY.min(SILENCE - silent_for))
    }
}

async fn register(sys: &Sys, master: &str) -> Result<(), String> {
    let channel = sys.peers.channel(master).map_err(|e| e.to_string())?;
    let mut request = tonic::Request::new(RegisterWorkerRequest {
        worker_address: sys.address.clone(),
    });
    request.set_timeout(RETRY_EVERY);
    let reply = MasterServiceClient::new(channel)
        .register_worker(request)
        .await
        .map_err(|status| status.message().to_string())?
        .into_inner();
    if reply.success {
        Ok(())
    } else {
        Err(reply.message)
    }
}

/// Runs until shutdown.
pub async fn run(sys: Sys) {
    let mut registered: Option<String> = None;
    let mut failures = 0u32;
    loop {
        let wait = match sys.original_master.address() {
            None => RETRY_EVERY,
            Some(master) => {
                let fresh = registered.as_deref() == Some(master.as_str());
                match next(fresh, sys.original_master.silent_for()) {
                    Next::Wait(wait) => wait,
                    Next::Register => {
                        match register(&sys, &master).await {
                            Ok(()) => {
                                if !fresh || failures > 0 {
                                    tracing::info!(%master, "registered with the original master");
                                }
                                sys.original_master.heard();
                                registered = Some(master);
                                failures = 0;
                            }
                            Err(reason) => {
                                failures += 1;
                                if failures == 1 || failures.is_multiple_of(12) {
                                    tracing::warn!(%master, %reason, "the original master did not register this node; retrying every 5 s");
                                }
                                registered = None;
                            }
                        }
                        RETRY_EVERY
                    }
                }
            }
        };
        tokio::select! {
            _ = sys.shutdown.cancelled() => return,
            _ = tokio::time::sleep(wait) => {}
            _ = sys.original_master.changed() => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registers_until_taken_and_again_after_silence() {
        assert_eq!(next(false, Duration::ZERO), Next::Register);
        assert_eq!(next(true, Duration::ZERO), Next::Wait(RETRY_EVERY));
        assert_eq!(
            next(true, SILENCE - Duration::from_secs(2)),
            Next::Wait(Duration::from_secs(2))
        );
        assert_eq!(next(true, SILENCE), Next::Register);
    }
}
