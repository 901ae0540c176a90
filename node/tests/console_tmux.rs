//! The real `vidshard` console in tmux against a real 3-node cluster:
//! it shows the master, the term and every node, asks before an election
//! and, confirmed, shows the new master and term; `q` leaves a clean
//! terminal.

mod common;

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use common::node::{NodeProc, node_binary};

fn client_binary() -> PathBuf {
    let path = node_binary().with_file_name("vidshard");
    assert!(
        path.exists(),
        "{} is missing: run `cargo build --workspace` first",
        path.display()
    );
    path
}

struct Tmux {
    session: String,
}

impl Tmux {
    fn start(command: &str) -> Self {
        assert!(
            Command::new("tmux")
                .arg("-V")
                .output()
                .is_ok_and(|o| o.status.success()),
            "tmux is needed for this test (scripts/test.sh installs it)"
        );
        let session = format!("vidshard-test-{}", std::process::id());
        let status = Command::new("tmux")
            .args([
                "new-session",
                "-d",
                "-s",
                &session,
                "-x",
                "120",
                "-y",
                "40",
                command,
            ])
            .status()
            .expect("tmux new-session");
        assert!(status.success());
        Self { session }
    }

    fn screen(&self) -> String {
        let out = Command::new("tmux")
            .args(["capture-pane", "-p", "-t", &self.session])
            .output()
            .expect("capture-pane");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn keys(&self, keys: &str) {
        Command::new("tmux")
            .args(["send-keys", "-t", &self.session, keys])
            .status()
            .expect("send-keys");
    }

    /// Waits until the screen satisfies `check`, or panics with the screen.
    fn wait_screen(&self, what: &str, timeout: Duration, check: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            let screen = self.screen();
            if check(&screen) {
                return screen;
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}; screen:\n{screen}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = Command::new("tmux")
            .args(["kill-session", "-t", &self.session])
            .status();
    }
}

#[test]
fn console_shows_the_cluster_asks_before_an_election_and_quits_cleanly() {
    let dir = tempfile::tempdir().expect("tempdir");
    let master = NodeProc::start(&dir.path().join("m"), &[]);
    let workers: Vec<NodeProc> = (0..2)
        .map(|i| {
            NodeProc::start(
                &dir.path().join(format!("w{i}")),
                &["--role", "worker", "--master", &master.address],
            )
        })
        .collect();
    let exit_file = dir.path().join("exit");
    let command = format!(
        "{} --token {} --node {}; echo \"EXIT=$?\" > {}; sleep 60",
        client_binary().display(),
        common::node::operator_token(),
        workers[0].address,
        exit_file.display()
    );
    let tmux = Tmux::start(&command);

    let port_of = |address: &str| address.rsplit(':').next().unwrap_or_default().to_string();
    let screen = tmux.wait_screen(
        "master, term and all three nodes",
        Duration::from_secs(30),
        |s| {
            s.contains("master node-")
                && s.contains(&master.address)
                && s.contains("term 1")
                && workers.iter().all(|w| s.contains(&port_of(&w.address)))
                && s.contains("3 nodes, 0 dead")
        },
    );
    assert!(screen.contains("worker"), "{screen}");

    tmux.keys("e");
    tmux.wait_screen(
        "the election question naming the master",
        Duration::from_secs(10),
        |s| s.contains("Force an election?") && s.contains(&master.address) && s.contains("y yes"),
    );
    tmux.keys("y");
    let moved = tmux.wait_screen(
        "the election accepted and another node shown as master in term 2",
        Duration::from_secs(10),
        |s| {
            let header = s.lines().next().unwrap_or_default();
            s.contains("election accepted")
                && header.contains("term 2")
                && workers
                    .iter()
                    .any(|w| header.contains(&format!("{} term 2", w.address)))
        },
    );
    assert!(moved.contains("leader changed"), "{moved}");

    tmux.keys("q");
    let deadline = Instant::now() + Duration::from_secs(10);
    let exit = loop {
        if let Ok(text) = std::fs::read_to_string(&exit_file) {
            break text;
        }
        assert!(
            Instant::now() < deadline,
            "console did not exit; screen:\n{}",
            tmux.screen()
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(exit.trim(), "EXIT=0");
    let after = tmux.screen();
    eprintln!("after quit:\n{after}");
    assert!(
        !after.contains("┌") && !after.contains("quorum"),
        "the console left its screen behind:\n{after}"
    );
}
