//! A ladder package played in a real browser: headless Chromium opens the
//! node's watch page with hls.js and then with dash.js (MSE, as a viewer's
//! browser plays it), and the test checks that playback starts and
//! advances, survives a seek, and switches to every rung at that rung's
//! size, with no fatal player or media error.
//!
//! ffmpeg's demuxers (ladder.rs) prove the package is frame-exact; this
//! proves browsers accept it: codec strings, init segments, timestamps
//! and manifests as MSE and the two players read them.
//!
//! Needs `chromium-headless-shell` (or `chromium`) on PATH; without one
//! the test fails and says to run scripts/test.sh, which installs it.

mod common;

use std::time::{Duration, Instant};

use common::browser::Browser;
use common::client::{json_of, vidshard};
use common::clips::make_clip;
use common::node::NodeProc;
use serde::Deserialize;

/// The rungs asked for and the width each must show (the 640x360 source's
/// aspect kept, rounded to even).
const RUNGS: [(u32, u32); 2] = [(360, 640), (240, 428)];

/// Generous for a 2-core CI machine that may be encoding meanwhile: each
/// is about three times what an idle machine needs.
const READY_TIMEOUT: Duration = Duration::from_secs(45);
const PLAY_TIMEOUT: Duration = Duration::from_secs(30);

/// How often the page is asked for its state.
const POLL: Duration = Duration::from_millis(200);

/// What the page shows: `window.vidshard`, the `<video>` element, the
/// rung buttons and the player's current level.
const STATE_JS: &str = r##"(() => {
  const s = window.vidshard;
  if (!s || !s.video) return null;
  const v = s.video;
  const p = s.player && typeof s.player === "object" ? s.player : null;
  let level = null;
  if (p && s.kind === "hls") level = p.currentLevel;
  if (p && s.kind === "dash" && s.ready) level = p.getQualityFor("video");
  return {
    url: document.URL, kind: s.kind, ready: s.ready, phase: s.phase,
    t: v.currentTime, w: v.videoWidth, h: v.videoHeight,
    paused: v.paused, ended: v.ended, ready_state: v.readyState,
    media_error: v.error ? "code " + v.error.code + ": " + v.error.message : null,
    errors: s.errors.map(e => ({ source: e.source, detail: e.detail, fatal: e.fatal })),
    status: document.getElementById("status").textContent,
    rungs: Array.from(document.querySelectorAll("#rungs button"))
      .map(b => ({ text: b.textContent, level: Number(b.getAttribute("data-level")) })),
    level: level,
  };
})()"##;

#[derive(Debug, Clone, Deserialize)]
struct PageError {
    source: String,
    detail: String,
    fatal: bool,
}

#[derive(Debug, Clone, Deserialize)]
struct Rung {
    text: String,
    level: i64,
}

#[derive(Debug, Clone, Deserialize)]
struct State {
    url: String,
    kind: String,
    ready: bool,
    phase: String,
    t: f64,
    w: u32,
    h: u32,
    paused: bool,
    ended: bool,
    ready_state: u32,
    media_error: Option<String>,
    errors: Vec<PageError>,
    status: String,
    rungs: Vec<Rung>,
    level: Option<i64>,
}

impl State {
    fn fatal(&self) -> Vec<&PageError> {
        self.errors.iter().filter(|e| e.fatal).collect()
    }

    fn brief(&self) -> String {
        format!(
            "t={:.2} {}x{} level={:?} phase={} paused={} ended={} readyState={} status={:?}",
            self.t,
            self.w,
            self.h,
            self.level,
            self.phase,
            self.paused,
            self.ended,
            self.ready_state,
            self.status
        )
    }
}

async fn state(browser: &mut Browser) -> Option<State> {
    let value = browser.eval(STATE_JS).await;
    if value.is_null() {
        return None;
    }
    Some(
        serde_json::from_value(value.clone()).unwrap_or_else(|e| panic!("page state {value}: {e}")),
    )
}

/// Polls the page every [`POLL`] until `done` holds, and answers that
/// state. Fails at once on a fatal player or media error (waiting longer
/// cannot help), and after `timeout` with the last state and the page's
/// console.
async fn wait_page(
    browser: &mut Browser,
    what: &str,
    timeout: Duration,
    done: impl Fn(&State) -> bool,
) -> State {
    let deadline = Instant::now() + timeout;
    let mut last = None;
    loop {
        if let Some(now) = state(browser).await {
            let fatal = now.fatal();
            assert!(
                fatal.is_empty() && now.media_error.is_none(),
                "{what}: fatal error {fatal:?} / media error {:?} ({}); console: {:#?}",
                now.media_error,
                now.brief(),
                browser.console()
            );
            if done(&now) {
                return now;
            }
            last = Some(now);
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting until {what}; last state: {:?}; console: {:#?}",
            last.as_ref().map(State::brief),
            browser.console()
        );
        tokio::time::sleep(POLL).await;
    }
}

/// Sets the playhead (and asks the element to play, in case it ended).
async fn seek(browser: &mut Browser, to: f64) {
    browser
        .eval(&format!(
            "vidshard.video.currentTime = {to}; vidshard.video.play().then(() => true, () => false)"
        ))
        .await;
}

/// Plays `url` (a watch page for `kind`, "hls" or "dash") and checks
/// start, seek and every rung; answers what it saw, one line per step.
async fn play_page(browser: &mut Browser, kind: &str, url: &str) -> Vec<String> {
    let mut seen = Vec::new();
    let mut note = |line: String| {
        println!("{kind}: {line}");
        seen.push(line);
    };
    let opened = Instant::now();
    browser.navigate(url).await;
    let ready = wait_page(browser, "the page plays", READY_TIMEOUT, |s| {
        s.kind == kind && s.url == url && s.ready
    })
    .await;
    note(format!(
        "ready {:.1} s after navigating ({})",
        opened.elapsed().as_secs_f64(),
        ready.brief()
    ));
    assert!(
        ready.t < 3.0,
        "{kind}: playback did not start from the beginning: {}",
        ready.brief()
    );
    let rungs: Vec<(u32, u32, Rung)> = RUNGS
        .iter()
        .map(|&(height, width)| {
            let button = ready
                .rungs
                .iter()
                .find(|r| r.text.starts_with(&format!("{height}p")))
                .unwrap_or_else(|| panic!("{kind}: no {height}p button in {:?}", ready.rungs))
                .clone();
            (height, width, button)
        })
        .collect();
    note(format!(
        "buttons {:?}",
        ready.rungs.iter().map(|r| &r.text).collect::<Vec<_>>()
    ));

    // From the start: 5 s of media within the play timeout.
    let from = ready.t;
    let started = Instant::now();
    let played = wait_page(browser, "5 s played from the start", PLAY_TIMEOUT, |s| {
        s.t >= from + 5.0
    })
    .await;
    note(format!(
        "played {from:.2} -> {:.2} s in {:.1} s wall ({}x{})",
        played.t,
        started.elapsed().as_secs_f64(),
        played.w,
        played.h
    ));

    // A seek forward, then 5 s of media from there.
    seek(browser, 30.0).await;
    let started = Instant::now();
    let after = wait_page(
        browser,
        "5 s played after seeking to 30 s",
        PLAY_TIMEOUT,
        |s| s.t >= 35.0,
    )
    .await;
    note(format!(
        "seek to 30 s: reached {:.2} s in {:.1} s wall ({}x{})",
        after.t,
        started.elapsed().as_secs_f64(),
        after.w,
        after.h
    ));

    // Every rung, the one not showing first, so that both are a switch.
    let mut order = rungs;
    order.sort_by_key(|(_, width, _)| *width == after.w);
    for (height, width, button) in order {
        let mut before = state(browser).await.expect("the page's state");
        if before.t > 25.0 {
            seek(browser, 5.0).await;
            before = wait_page(browser, "the seek back to 5 s", PLAY_TIMEOUT, |s| {
                s.t >= 5.0 && s.t < 25.0
            })
            .await;
        }
        let clicked = browser
            .eval(&format!(
                "(() => {{ const b = document.querySelector('#rungs button[data-level=\"{}\"]'); \
                 b.click(); return b.getAttribute('aria-pressed'); }})()",
                button.level
            ))
            .await;
        assert_eq!(
            clicked, "true",
            "{kind}: the {height}p button did not press"
        );
        let started = Instant::now();
        let switched = wait_page(
            browser,
            &format!("{width}x{height} shows ({})", button.text),
            PLAY_TIMEOUT,
            |s| s.w == width,
        )
        .await;
        let switch_wall = started.elapsed().as_secs_f64();
        let from = switched.t;
        let going = wait_page(
            browser,
            &format!("{height}p keeps playing"),
            PLAY_TIMEOUT,
            |s| s.t >= from + 2.0,
        )
        .await;
        assert_eq!(
            (going.w, going.h),
            (width, height),
            "{kind}: the {height}p rung did not stay: {}",
            going.brief()
        );
        assert_eq!(
            going.level,
            Some(button.level),
            "{kind}: the player is not on the {height}p level: {}",
            going.brief()
        );
        note(format!(
            "forced {height}p (level {}) at t={:.2}: {}x{} after {switch_wall:.1} s wall \
             at t={from:.2}, then {from:.2} -> {:.2} s",
            button.level, before.t, going.w, going.h, going.t
        ));
    }

    let end = state(browser).await.expect("the page's state");
    assert!(
        end.fatal().is_empty(),
        "{kind}: fatal errors {:?}",
        end.fatal()
    );
    assert!(
        end.media_error.is_none(),
        "{kind}: video.error {:?}",
        end.media_error
    );
    note(format!(
        "no fatal error, video.error null; {} non-fatal: {:?}",
        end.errors.len(),
        end.errors
            .iter()
            .map(|e| format!("{}: {}", e.source, e.detail))
            .collect::<Vec<_>>()
    ));
    seen
}

#[tokio::test(flavor = "multi_thread")]
async fn a_ladder_plays_seeks_and_switches_rungs_in_chromium_with_hls_js_and_dash_js() {
    let test_started = Instant::now();
    // Before the node and the encode: no browser is a failure that should
    // say so at once, not after a minute of work.
    common::browser::chromium_binary();
    let dir = tempfile::tempdir().expect("temp dir");
    let node = NodeProc::start(
        &dir.path().join("node"),
        &[
            "--http-addr",
            "127.0.0.1:0",
            "--shard-seconds",
            "4",
            "--slots",
            "2",
        ],
    );
    let clip = make_clip(&dir.path().join("clip.mp4"), 40, 640, 360, true);
    let top = dir.path().join("top.mp4");
    let encode_started = Instant::now();
    let run = vidshard(
        &node.address,
        &[
            "upload",
            clip.to_str().expect("utf8"),
            "--ladder",
            "360,240",
            "--preset",
            "ultrafast",
            "--output",
            top.to_str().expect("utf8"),
        ],
    );
    assert!(
        run.status.success(),
        "upload: {}\nnode log:\n{}",
        String::from_utf8_lossy(&run.stderr),
        node.log_text()
    );
    let stdout = String::from_utf8_lossy(&run.stdout).into_owned();
    let id = stdout
        .lines()
        .next()
        .expect("the job id")
        .trim()
        .to_string();
    println!(
        "ladder job {id} done in {:.1} s",
        encode_started.elapsed().as_secs_f64()
    );
    let link = json_of(&node.address, &["link", &id]);
    let hls = link["watch_url"].as_str().expect("watch_url").to_string();
    let dash = link["dash_watch_url"]
        .as_str()
        .expect("dash_watch_url")
        .to_string();

    let mut browser = Browser::launch().await;
    let mut seen = play_page(&mut browser, "hls", &hls).await;
    seen.extend(play_page(&mut browser, "dash", &dash).await);
    println!(
        "browser test done in {:.1} s\nobserved:\n  {}\npage console:\n  {}",
        test_started.elapsed().as_secs_f64(),
        seen.join("\n  "),
        if browser.console().is_empty() {
            "(nothing)".to_string()
        } else {
            browser.console().join("\n  ")
        }
    );
}
