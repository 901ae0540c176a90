//! A headless Chromium driven over the Chrome DevTools Protocol, for
//! tests that play a node's watch page in a real browser (MSE, hls.js,
//! dash.js) instead of trusting ffmpeg's demuxers to read like one.
//!
//! Only what such a test needs: launch, `Page.navigate`,
//! `Runtime.evaluate` (by value), and the console lines the page logged,
//! for a failure message. The browser runs in its own process group with
//! a throwaway profile, and the whole group is killed on drop.

use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// The browsers tried, in order: the headless shell is smaller and made
/// for this; the full browser works with `--headless`.
const CANDIDATES: [&str; 2] = ["chromium-headless-shell", "chromium"];

/// How long one DevTools call may take before the test gives up (a
/// navigation on a busy CI machine included).
const CALL_TIMEOUT: Duration = Duration::from_secs(60);

/// The browser binary on `PATH`. Panics (the test fails, it is not
/// skipped) when there is none: a playback test that quietly does not run
/// would read as a pass.
pub fn chromium_binary() -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    CANDIDATES
        .iter()
        .flat_map(|name| std::env::split_paths(&path).map(move |dir| dir.join(name)))
        .find(|candidate| is_executable(candidate))
        .unwrap_or_else(|| {
            panic!(
                "no headless browser: neither {} is on PATH; run scripts/test.sh, \
                 which installs chromium-headless-shell (apt-get)",
                CANDIDATES.join(" nor ")
            )
        })
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    path.metadata()
        .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// A running headless browser with a DevTools connection to its page.
pub struct Browser {
    /// Declared before the profile: fields drop in order, so the browser
    /// is gone before its `--user-data-dir` is removed.
    process: Group,
    _profile: tempfile::TempDir,
    page: WebSocketStream<MaybeTlsStream<TcpStream>>,
    next_id: u64,
    /// The browser's stderr, for a failure message.
    stderr: Arc<Mutex<Vec<String>>>,
    /// What the page logged (console calls, uncaught exceptions).
    console: Vec<String>,
}

impl Browser {
    /// Starts the browser on `about:blank` and connects to that page.
    pub async fn launch() -> Self {
        let binary = chromium_binary();
        let profile = tempfile::tempdir().expect("a profile dir");
        let mut command = Command::new(&binary);
        if binary.file_name().is_some_and(|n| n == "chromium") {
            command.arg("--headless");
        }
        let child = command
            .args([
                "--remote-debugging-port=0",
                "--no-sandbox",
                "--autoplay-policy=no-user-gesture-required",
                "--mute-audio",
                "--no-first-run",
                "--no-default-browser-check",
                "--disable-gpu",
                "--disable-extensions",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                // A backgrounded or occluded headless tab would otherwise
                // get its timers and media throttled.
                "--disable-background-timer-throttling",
                "--disable-renderer-backgrounding",
                "--disable-backgrounding-occluded-windows",
            ])
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .arg("about:blank")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .process_group(0)
            .spawn()
            .unwrap_or_else(|e| panic!("start {}: {e}", binary.display()));
        let mut process = Group(child);
        let stderr = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = mpsc::channel();
        {
            let pipe = process.0.stderr.take().expect("the browser's stderr");
            let sink = stderr.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                    if let Some(url) = line.strip_prefix("DevTools listening on ") {
                        let _ = tx.send(url.trim().to_string());
                    }
                    sink.lock().expect("stderr lines").push(line);
                }
            });
        }
        let browser_ws = match rx.recv_timeout(Duration::from_secs(60)) {
            Ok(url) => url,
            Err(_) => {
                drop(process);
                panic!(
                    "{} did not print its DevTools address: {:?}",
                    binary.display(),
                    stderr.lock().expect("stderr lines")
                );
            }
        };
        // ws://127.0.0.1:PORT/devtools/browser/ID → 127.0.0.1:PORT
        let host = browser_ws
            .strip_prefix("ws://")
            .and_then(|rest| rest.split('/').next())
            .expect("a ws:// DevTools URL")
            .to_string();
        let page_ws = page_target(&host).await;
        let (page, _) = tokio_tungstenite::connect_async(page_ws.as_str())
            .await
            .unwrap_or_else(|e| panic!("connect to the page's DevTools at {page_ws}: {e}"));
        let mut browser = Self {
            process,
            _profile: profile,
            page,
            next_id: 0,
            stderr,
            console: Vec::new(),
        };
        // Console messages and exceptions arrive as events from here on.
        browser.call("Runtime.enable", json!({})).await;
        browser.call("Page.enable", json!({})).await;
        browser
    }

    /// Sends one DevTools command and answers its `result`; panics on an
    /// error answer or after [`CALL_TIMEOUT`]. Events read meanwhile are
    /// kept when they are console output.
    pub async fn call(&mut self, method: &str, params: Value) -> Value {
        self.next_id += 1;
        let id = self.next_id;
        let request = json!({ "id": id, "method": method, "params": params });
        self.page
            .send(Message::text(request.to_string()))
            .await
            .unwrap_or_else(|e| panic!("send {method}: {e}"));
        let answer = tokio::time::timeout(CALL_TIMEOUT, async {
            loop {
                let message = match self.page.next().await {
                    Some(Ok(message)) => message,
                    Some(Err(e)) => panic!("DevTools connection broke during {method}: {e}"),
                    None => panic!("DevTools connection closed during {method}"),
                };
                let Message::Text(text) = message else {
                    continue;
                };
                let value: Value = serde_json::from_str(text.as_str())
                    .unwrap_or_else(|e| panic!("DevTools sent no JSON ({e}): {text}"));
                if value["id"].as_u64() == Some(id) {
                    return value;
                }
                self.note_event(&value);
            }
        })
        .await
        .unwrap_or_else(|_| {
            panic!(
                "{method} not answered within {CALL_TIMEOUT:?}; browser stderr: {:?}",
                self.stderr_tail(20)
            )
        });
        if let Some(error) = answer.get("error") {
            panic!("{method} failed: {error}");
        }
        answer["result"].clone()
    }

    fn note_event(&mut self, event: &Value) {
        let params = &event["params"];
        match event["method"].as_str() {
            Some("Runtime.consoleAPICalled") => {
                let args: Vec<String> = params["args"]
                    .as_array()
                    .map(Vec::as_slice)
                    .unwrap_or_default()
                    .iter()
                    .map(|a| match a.get("value") {
                        Some(Value::String(s)) => s.clone(),
                        Some(v) => v.to_string(),
                        None => a["description"].as_str().unwrap_or("?").to_string(),
                    })
                    .collect();
                self.console.push(format!(
                    "console.{}: {}",
                    params["type"].as_str().unwrap_or("log"),
                    args.join(" ")
                ));
            }
            Some("Runtime.exceptionThrown") => {
                let details = &params["exceptionDetails"];
                let text = details["exception"]["description"]
                    .as_str()
                    .or(details["text"].as_str())
                    .unwrap_or("?");
                self.console.push(format!("exception: {text}"));
            }
            _ => {}
        }
    }

    /// Loads `url` in the page; panics when the navigation fails at once
    /// (the document may still be loading when this returns).
    pub async fn navigate(&mut self, url: &str) {
        let result = self.call("Page.navigate", json!({ "url": url })).await;
        if let Some(error) = result.get("errorText").and_then(Value::as_str) {
            panic!("navigating to {url} failed: {error}");
        }
    }

    /// Evaluates `expression` in the page and answers its value (JSON);
    /// panics when it throws.
    pub async fn eval(&mut self, expression: &str) -> Value {
        let result = self
            .call(
                "Runtime.evaluate",
                json!({ "expression": expression, "returnByValue": true, "awaitPromise": true }),
            )
            .await;
        if let Some(details) = result.get("exceptionDetails") {
            panic!(
                "`{expression}` threw: {}",
                details["exception"]["description"]
                    .as_str()
                    .unwrap_or(&details.to_string())
            );
        }
        result["result"]
            .get("value")
            .cloned()
            .unwrap_or(Value::Null)
    }

    /// The page's console output so far (console calls and exceptions).
    pub fn console(&self) -> &[String] {
        &self.console
    }

    /// The last `n` lines the browser wrote to stderr.
    pub fn stderr_tail(&self, n: usize) -> Vec<String> {
        let lines = self.stderr.lock().expect("stderr lines");
        lines[lines.len().saturating_sub(n)..].to_vec()
    }
}

/// The DevTools websocket URL of the browser's page, from `GET /json` on
/// `host` (polled: the page target can appear a moment after the browser
/// said it listens).
async fn page_target(host: &str) -> String {
    for _ in 0..150 {
        let targets = get_json(host, "/json").await;
        let page = targets.as_array().and_then(|all| {
            all.iter()
                .find(|t| t["type"] == "page")
                .and_then(|t| t["webSocketDebuggerUrl"].as_str())
        });
        if let Some(ws) = page {
            return ws.to_string();
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    panic!("http://{host}/json listed no page target within 30 s");
}

/// `GET path` on the DevTools HTTP server, read by its `Content-Length`:
/// that server keeps the connection open whatever the request says, so
/// reading to the end (`common::http`) would wait for a timeout.
async fn get_json(host: &str, path: &str) -> Value {
    let fetch = async {
        let mut stream = TcpStream::connect(host)
            .await
            .unwrap_or_else(|e| panic!("connect to DevTools at {host}: {e}"));
        let request = format!("GET {path} HTTP/1.1\r\nHost: {host}\r\n\r\n");
        stream
            .write_all(request.as_bytes())
            .await
            .expect("send GET");
        let mut raw = Vec::new();
        let mut buf = [0u8; 8192];
        loop {
            if let Some(end) = raw.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&raw[..end]).to_ascii_lowercase();
                assert!(
                    head.starts_with("http/1.1 200"),
                    "GET http://{host}{path}: {head}"
                );
                let length: usize = head
                    .lines()
                    .find_map(|l| l.strip_prefix("content-length:"))
                    .and_then(|v| v.trim().parse().ok())
                    .unwrap_or_else(|| panic!("GET http://{host}{path}: no length in {head}"));
                if raw.len() >= end + 4 + length {
                    return raw[end + 4..end + 4 + length].to_vec();
                }
            }
            let n = stream.read(&mut buf).await.expect("read /json");
            assert!(n > 0, "DevTools closed the connection before its answer");
            raw.extend_from_slice(&buf[..n]);
        }
    };
    let body = tokio::time::timeout(CALL_TIMEOUT, fetch)
        .await
        .unwrap_or_else(|_| panic!("GET http://{host}{path}: no answer in {CALL_TIMEOUT:?}"));
    serde_json::from_slice(&body).unwrap_or_else(|e| {
        panic!(
            "http://{host}{path} is not JSON ({e}): {}",
            String::from_utf8_lossy(&body)
        )
    })
}

/// The browser's process, killed with its whole process group when
/// dropped, also when a launch fails half-way. The browser leads the group
/// (`process_group(0)`): Debian's `chromium-headless-shell` is a shell
/// wrapper that does not `exec`, so killing the child alone would leave
/// the browser, its zygotes and renderers running.
struct Group(Child);

impl Drop for Group {
    fn drop(&mut self) {
        let group = i32::try_from(self.0.id())
            .ok()
            .and_then(rustix::process::Pid::from_raw);
        if let Some(group) = group {
            let _ = rustix::process::kill_process_group(group, rustix::process::Signal::KILL);
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
        // The renderers and zygotes are not our children: wait (briefly)
        // until they are gone, so the profile can be removed after them.
        if let Some(group) = group {
            for _ in 0..100 {
                if rustix::process::test_kill_process_group(group).is_err() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    }
}
