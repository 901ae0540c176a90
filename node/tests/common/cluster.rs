//! Three real nodes forming one Raft cluster on ports chosen up front, so
//! each can be killed, stopped and restarted at the same address with the
//! same data dir; and the original-protocol questions every test asks
//! them (who is master, in which term).

use std::path::{Path, PathBuf};
use std::time::Duration;

use tonic::transport::{Channel, Endpoint};
use vidshard_proto::replication::node_service_client::NodeServiceClient;
use vidshard_proto::replication::{
    GetCurrentMasterRequest, GetCurrentMasterResponse, NodeStatsRequest, NodeStatsResponse,
};
use vidshard_proto::v1::cluster_client::ClusterClient;
use vidshard_proto::v1::{ListNodesRequest, WatchRequest};

use super::node::NodeProc;
use super::wait_for;

/// Nodes in every cluster of this file.
pub const NODES: usize = 3;
/// How long three fresh (or restarted) nodes may take to form a cluster.
pub const FORM_TIMEOUT: Duration = Duration::from_secs(60);
/// How long a node may take to exit after SIGTERM.
pub const STOP_TIMEOUT: Duration = Duration::from_secs(60);

/// Three nodes on ports chosen up front, so each can be restarted at the
/// same address with the same data dir. Node 1 initialises the cluster,
/// nodes 2 and 3 join it through node 1.
pub struct Cluster {
    pub root: PathBuf,
    pub ports: [u16; NODES],
    /// Index `i` is node `i + 1`; a node killed with -9 stays here (its
    /// log is still readable).
    pub nodes: Vec<NodeProc>,
    /// Logs of earlier runs (nodes stopped before a restart).
    earlier_logs: Vec<(String, String)>,
    /// Flags every node gets besides the defaults.
    extra: Vec<String>,
}

impl Cluster {
    /// Picks three distinct free ports and starts the three nodes.
    pub fn start(root: &Path) -> Self {
        Self::start_with(root, &[])
    }

    /// Like [`Cluster::start`], every node also getting `extra` flags.
    pub fn start_with(root: &Path, extra: &[&str]) -> Self {
        let mut ports = [0u16; NODES];
        for i in 0..NODES {
            ports[i] = loop {
                let port = super::free_port();
                if !ports[..i].contains(&port) {
                    break port;
                }
            };
        }
        let mut cluster = Self {
            root: root.to_path_buf(),
            ports,
            nodes: Vec::new(),
            earlier_logs: Vec::new(),
            extra: extra.iter().map(|s| s.to_string()).collect(),
        };
        cluster.start_nodes();
        cluster
    }

    pub fn address(&self, i: usize) -> String {
        format!("127.0.0.1:{}", self.ports[i])
    }

    /// The flags of node `i`, the same on every start.
    pub fn args(&self, i: usize) -> Vec<String> {
        let mut args = vec!["--port".to_string(), self.ports[i].to_string()];
        if i > 0 {
            args.extend([
                "--role".to_string(),
                "worker".to_string(),
                "--master".to_string(),
                self.address(0),
            ]);
        }
        args.extend(["--shard-seconds", "2", "--slots", "1"].map(String::from));
        args.extend(self.extra.iter().cloned());
        args
    }

    /// Starts (or starts again) all three nodes, node 1 first.
    pub fn start_nodes(&mut self) {
        assert!(self.nodes.is_empty(), "nodes still running");
        for i in 0..NODES {
            let args = self.args(i);
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            let node = NodeProc::start(&self.root.join(format!("n{}", i + 1)), &args);
            assert_eq!(node.address, self.address(i), "node {} address", i + 1);
            self.nodes.push(node);
        }
    }

    /// Starts node `i` again (same port, data dir and flags) after a kill.
    pub fn restart(&mut self, i: usize) {
        let old = self.nodes.remove(i);
        self.earlier_logs
            .push((old.address.clone(), old.log_text()));
        drop(old);
        let args = self.args(i);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let node = NodeProc::start(&self.root.join(format!("n{}", i + 1)), &args);
        self.nodes.insert(i, node);
    }

    /// SIGTERM node `i` and wait for its exit (blocking: call it from
    /// `spawn_blocking`); answers the exit status and its whole log.
    /// Until [`Cluster::start_again`], `nodes` holds one node fewer.
    pub fn terminate(&mut self, i: usize) -> (std::process::ExitStatus, String) {
        let node = self.nodes.remove(i);
        let address = node.address.clone();
        let (status, log) = node.terminate_with_log();
        self.earlier_logs.push((address, log.clone()));
        (status, log)
    }

    /// Starts node `i` again after [`Cluster::terminate`], with its usual
    /// flags plus `more` (later flags win where clap allows).
    pub fn start_again(&mut self, i: usize, more: &[&str]) {
        let mut args = self.args(i);
        args.extend(more.iter().map(|s| s.to_string()));
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let node = NodeProc::start(&self.root.join(format!("n{}", i + 1)), &args);
        self.nodes.insert(i, node);
    }

    /// The index of the node at `address`.
    pub fn index_of(&self, address: &str) -> Option<usize> {
        (0..NODES).find(|&i| self.address(i) == address)
    }

    /// `kill -9` node `i` (it gets no chance to hand anything over).
    pub fn kill(&self, i: usize) {
        let status = std::process::Command::new("kill")
            .args(["-9", &self.nodes[i].pid().to_string()])
            .status()
            .expect("kill -9");
        assert!(status.success(), "kill -9 node {}", i + 1);
    }

    /// Stops all three nodes at once with SIGTERM; each must exit cleanly.
    pub async fn stop_all(&mut self) {
        let stopping: Vec<_> = self
            .nodes
            .drain(..)
            .map(|node| {
                let (address, log) = (node.address.clone(), node.log_text());
                self.earlier_logs.push((address.clone(), log));
                (
                    address,
                    tokio::task::spawn_blocking(move || node.terminate()),
                )
            })
            .collect();
        for (address, stop) in stopping {
            let status = tokio::time::timeout(STOP_TIMEOUT, stop)
                .await
                .unwrap_or_else(|_| {
                    panic!("{address} still running {STOP_TIMEOUT:?} after SIGTERM")
                })
                .expect("join the stopping thread");
            assert!(
                status.success(),
                "{address} exited with {status} after SIGTERM"
            );
        }
    }

    /// Waits until the cluster is formed: three voters, all up, three live
    /// nodes, and all three nodes name the same master in the same term.
    /// Answers that master's address.
    pub async fn formed(&self) -> String {
        let master = wait_for(
            "3 live nodes, 3 voters up and one master all nodes agree on",
            FORM_TIMEOUT,
            move || async move {
                let (master, _) = agreed_master(&self.addresses()).await?;
                // A worker names its --master while it knows no leader:
                // the named node must itself say it is the master.
                node_stats(&master).await?.is_master.then_some(())?;
                let channel = lazy_channel(&master);
                (alive_count(&channel).await? >= NODES).then_some(())?;
                (voters(&channel).await? == (NODES as u32, NODES as u32)).then_some(master)
            },
        )
        .await;
        assert!(
            self.index_of(&master).is_some(),
            "the master {master} is not one of the cluster's nodes"
        );
        master
    }

    pub fn addresses(&self) -> Vec<String> {
        (0..NODES).map(|i| self.address(i)).collect()
    }

    /// Prints the nodes' logs (earlier runs included): whole when
    /// `VIDSHARD_TEST_LOGS` is set, else the last `tail` lines that are
    /// not openraft's.
    pub fn print_logs(&self, tail: usize) {
        let current = self
            .nodes
            .iter()
            .map(|n| (format!("{} (current run)", n.address), n.log_text()));
        let earlier = self
            .earlier_logs
            .iter()
            .map(|(a, l)| (format!("{a} (earlier run)"), l.clone()));
        for (name, log) in earlier.chain(current) {
            // openraft's own lines (a dead peer's every retry) would fill
            // the tail; vidshard's say what happened.
            let lines: Vec<&str> = log
                .lines()
                .filter(|l| tail == usize::MAX || !l.contains(" openraft::"))
                .collect();
            let from = lines.len().saturating_sub(tail);
            eprintln!("===== log of {name} =====");
            for line in &lines[from..] {
                eprintln!("{line}");
            }
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        if std::env::var_os("VIDSHARD_TEST_LOGS").is_some() {
            self.print_logs(usize::MAX);
        } else if std::thread::panicking() {
            self.print_logs(60);
        }
    }
}

/// A channel that connects on first use; calls give up after 15 s (a
/// request waits up to 5 s for an election before being refused).
pub fn lazy_channel(address: &str) -> Channel {
    Endpoint::from_shared(format!("http://{address}"))
        .expect("endpoint")
        .connect_timeout(Duration::from_secs(2))
        .timeout(Duration::from_secs(15))
        .connect_lazy()
}

/// GetCurrentMaster (original protocol) of the node at `address`.
pub async fn current_master(address: &str) -> Option<GetCurrentMasterResponse> {
    NodeServiceClient::new(lazy_channel(address))
        .get_current_master(GetCurrentMasterRequest {})
        .await
        .ok()
        .map(|r| r.into_inner())
}

/// GetNodeStats (original protocol) of the node at `address`.
pub async fn node_stats(address: &str) -> Option<NodeStatsResponse> {
    NodeServiceClient::new(lazy_channel(address))
        .get_node_stats(NodeStatsRequest {})
        .await
        .ok()
        .map(|r| r.into_inner())
}

/// The master and term all of `addresses` name, if they agree on a known
/// master.
pub async fn agreed_master(addresses: &[String]) -> Option<(String, i32)> {
    let mut agreed: Option<(String, i32)> = None;
    for address in addresses {
        let reply = current_master(address).await?;
        if !reply.is_master_known || reply.master_address.is_empty() {
            return None;
        }
        let named = (reply.master_address, reply.term);
        match &agreed {
            Some(first) if *first != named => return None,
            _ => agreed = Some(named),
        }
    }
    agreed
}

/// How many nodes ListNodes shows alive (None while it cannot answer).
pub async fn alive_count(channel: &Channel) -> Option<usize> {
    let reply = ClusterClient::new(channel.clone())
        .list_nodes(ListNodesRequest {})
        .await
        .ok()?
        .into_inner();
    Some(reply.nodes.iter().filter(|n| n.alive).count())
}

/// (voters up, voters) from the first WatchCluster snapshot.
pub async fn voters(channel: &Channel) -> Option<(u32, u32)> {
    let mut stream = ClusterClient::new(channel.clone())
        .watch_cluster(WatchRequest { interval_ms: 100 })
        .await
        .ok()?
        .into_inner();
    let snapshot = stream.message().await.ok()??;
    Some((snapshot.voters_up, snapshot.voters_total))
}
