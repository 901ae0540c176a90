//! Unit tests of `App::handle` for keys, the link and the data: event in,
//! state and actions out. The actions (elect, upload, …) are in
//! `action_tests.rs`.

use crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyEventState, KeyModifiers};
use log::Level;

use super::app::App;
use super::fixtures::{self, A, B, T0, char, feed, key, net};
use super::msg::{Action, Event, NetEvent};
use super::scenarios;
use super::state::{Conn, Freshness, Modal, Pane};

pub fn logs(actions: &[Action]) -> Vec<String> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Log(line) => Some(line.text.clone()),
            _ => None,
        })
        .collect()
}

pub fn status(app: &App) -> (Level, String) {
    let s = app.status.as_ref().expect("a status message");
    (s.level, s.text.clone())
}

#[test]
fn only_key_presses_count() {
    let (mut app, _) = scenarios::healthy("t");
    for kind in [KeyEventKind::Release, KeyEventKind::Repeat] {
        let ev = KeyEvent {
            code: KeyCode::Char('q'),
            modifiers: KeyModifiers::NONE,
            kind,
            state: KeyEventState::NONE,
        };
        assert!(app.handle(Event::Key(ev)).is_empty());
    }
    assert_eq!(app.handle(char('q')), vec![Action::Quit]);
}

#[test]
fn ctrl_c_quits_even_in_a_form_where_q_is_text() {
    let (mut app, _) = scenarios::healthy("t");
    app.handle(char('u'));
    assert!(app.handle(char('q')).is_empty());
    let Some(Modal::Upload(form)) = &app.modal else {
        panic!("form open")
    };
    assert_eq!(form.path, "q");
    let ctrl_c = KeyEvent {
        code: KeyCode::Char('c'),
        modifiers: KeyModifiers::CONTROL,
        kind: KeyEventKind::Press,
        state: KeyEventState::NONE,
    };
    assert_eq!(app.handle(Event::Key(ctrl_c)), vec![Action::Quit]);
}

#[test]
fn freshness_follows_the_link() {
    let (mut app, _) = scenarios::healthy("t");
    assert_eq!(app.freshness(), Freshness::Live { age_ms: 400 });
    app.handle(Event::Tick {
        now_ms: T0 + 9_500 + 3_500,
    });
    assert_eq!(app.freshness(), Freshness::Late { age_ms: 3_500 });
    let (app, actions) = scenarios::disconnected("t");
    assert_eq!(
        app.freshness(),
        Freshness::Stale {
            since_ms: T0 + 9_500
        }
    );
    assert!(matches!(&app.conn, Conn::Retrying { attempt: 3, next, .. } if next == fixtures::C));
    // The same error is logged once, not on every retry.
    let lost: Vec<String> = logs(&actions)
        .into_iter()
        .filter(|l| l.contains("lost"))
        .collect();
    assert_eq!(lost.len(), 1, "{lost:?}");
}

#[test]
fn reconnecting_stays_stale_until_a_snapshot_arrives() {
    let (mut app, _) = scenarios::disconnected("t");
    let at = T0 + 20_000;
    let out = app.handle(net(at, NetEvent::Connected { target: B.into() }));
    assert_eq!(
        logs(&out),
        vec!["12:00:20 console: connected to 127.0.0.1:50052"]
    );
    assert!(app.is_stale());
    assert_eq!(
        app.action_target(),
        A,
        "actions go to the master, not the worker we watch"
    );
    app.handle(net(
        at + 100,
        NetEvent::Snapshot(Box::new(fixtures::healthy_snapshot(1))),
    ));
    assert_eq!(app.freshness(), Freshness::Live { age_ms: 0 });
}

#[test]
fn cluster_events_are_logged_once_with_their_own_time() {
    let (_, actions) = scenarios::healthy("t");
    let lines = logs(&actions);
    let warn = "11:59:40 warn shard clip-7/7 failed on node-c: ffmpeg exited with 1; retrying";
    assert_eq!(lines.iter().filter(|l| *l == warn).count(), 1, "{lines:?}");
    assert_eq!(
        lines.first().map(String::as_str),
        Some("11:59:59 console: connected to 127.0.0.1:50051")
    );
}

#[test]
fn a_new_master_is_logged_and_pointed_out() {
    let (app, actions) = scenarios::leader_changed("t");
    let lines = logs(&actions);
    assert!(
        lines.contains(
            &"12:00:10 console: master changed: 127.0.0.1:50051 → 127.0.0.1:50052 (term 3 → 4)"
                .to_owned()
        ),
        "{lines:?}"
    );
    assert_eq!(app.master_change, Some((A.to_owned(), T0 + 10_000)));
}

#[test]
fn pause_holds_snapshots_and_resume_shows_the_latest() {
    let (mut app, _) = scenarios::healthy("t");
    app.handle(char('p'));
    assert!(app.paused_since.is_some());
    let mut later = fixtures::healthy_snapshot(99);
    later.term = 9;
    app.handle(net(
        T0 + 20_000,
        NetEvent::Snapshot(Box::new(fixtures::healthy_snapshot(98))),
    ));
    app.handle(net(T0 + 20_500, NetEvent::Snapshot(Box::new(later))));
    assert_eq!(
        app.snapshot().map(|s| s.term),
        Some(3),
        "the view is frozen"
    );
    assert_eq!(app.held_count, 2);
    let out = app.handle(char('p'));
    assert_eq!(app.snapshot().map(|s| s.term), Some(9));
    assert!(
        logs(&out)
            .iter()
            .any(|l| l.ends_with("resumed (2 updates were held)"))
    );
    assert!(app.held.is_none() && app.paused_since.is_none());
}

#[test]
fn panes_and_rows_move_with_tab_and_hjkl() {
    let (mut app, _) = scenarios::healthy("t");
    assert_eq!(app.focus, Pane::Jobs);
    app.handle(key(KeyCode::Tab));
    assert_eq!(app.focus, Pane::Shards);
    feed(&mut app, [char('j'), char('j'), key(KeyCode::Down)]);
    assert_eq!(app.shard_sel, 3);
    feed(&mut app, [char('h'), char('j')]);
    assert_eq!(
        (app.focus, app.job_sel.as_deref(), app.shard_sel),
        (Pane::Jobs, Some("intro"), 0)
    );
    feed(&mut app, [char('j'), char('j'), char('j')]);
    assert_eq!(
        app.job_sel.as_deref(),
        Some("bad-upload"),
        "stops at the last row"
    );
    feed(&mut app, [key(KeyCode::BackTab), key(KeyCode::Up)]);
    assert_eq!((app.focus, app.node_sel), (Pane::Nodes, 0));
    app.handle(key(KeyCode::Enter));
    assert!(app.details);
    app.handle(key(KeyCode::Esc));
    assert!(!app.details);
    feed(&mut app, [char('?'), char('j')]);
    assert_eq!(app.node_sel, 0, "keys go to the help while it is open");
    app.handle(key(KeyCode::Esc));
    assert!(app.modal.is_none());
}

#[test]
fn each_failure_is_logged_once_while_retrying() {
    let (mut app, _) = scenarios::healthy("t");
    let lost = |at: u64, target: &str| {
        let net_event = NetEvent::Lost {
            target: target.into(),
            error: format!("cannot connect to {target}"),
            next: A.into(),
            attempt: 1,
            retry_in_ms: 500,
        };
        net(at, net_event)
    };
    let t = T0 + 20_000;
    let out = feed(
        &mut app,
        [lost(t, A), lost(t + 1, B), lost(t + 2, A), lost(t + 3, B)],
    );
    assert_eq!(logs(&out).len(), 2, "{:?}", logs(&out));
    app.handle(net(t + 4, NetEvent::Connected { target: A.into() }));
    assert_eq!(
        logs(&app.handle(lost(t + 5, A))).len(),
        1,
        "a new outage is logged again"
    );
}
