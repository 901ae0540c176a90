//! Test scenarios: the fixture states of the snapshot tests, each reached
//! by feeding events through [`App::handle`] as the real console would.

use crossterm::event::KeyCode;

use super::app::App;
use super::fixtures::{A, B, C, T0, app, char, event, feed, healthy_snapshot, key, net, shard};
use super::msg::{Action, Event, NetEvent};

/// Connected to node-a with 20 snapshots of history; 0.4 s since the last.
pub fn healthy(scope: &str) -> (App, Vec<Action>) {
    let mut app = app(scope);
    let mut actions = feed(
        &mut app,
        [
            net(
                T0 - 900,
                NetEvent::Connecting {
                    target: A.into(),
                    attempt: 0,
                },
            ),
            net(T0 - 800, NetEvent::Connected { target: A.into() }),
        ],
    );
    for i in 0..20 {
        let snap = Box::new(healthy_snapshot(i));
        actions.extend(app.handle(net(T0 + i * 500, NetEvent::Snapshot(snap))));
    }
    actions.extend(app.handle(Event::Tick {
        now_ms: T0 + 19 * 500 + 400,
    }));
    (app, actions)
}

/// Leadership moved from node-a to node-b (term 4) two seconds ago.
pub fn leader_changed(scope: &str) -> (App, Vec<Action>) {
    let (mut app, mut actions) = healthy(scope);
    let base = T0 + 10_000;
    for i in 0..4 {
        let mut snap = healthy_snapshot(20 + i);
        snap.master_address = B.into();
        snap.term = 4;
        snap.nodes[0].role = "worker".into();
        snap.nodes[1].role = "master".into();
        for n in &mut snap.nodes {
            n.term = 4;
        }
        snap.events.push(event(
            base - 100,
            "warn",
            "election: node-b won term 4 (node-a stepped down)",
        ));
        actions.extend(app.handle(net(base + i * 500, NetEvent::Snapshot(Box::new(snap)))));
    }
    actions.extend(app.handle(Event::Tick {
        now_ms: base + 1_800,
    }));
    (app, actions)
}

/// node-c stopped answering: dead for 12 s, its shard back in the queue.
pub fn node_dead(scope: &str) -> (App, Vec<Action>) {
    let (mut app, mut actions) = healthy(scope);
    let base = T0 + 10_000;
    let mut snap = healthy_snapshot(20);
    let c = &mut snap.nodes[2];
    (c.alive, c.last_seen_ms, c.slots_busy) = (false, 12_000, 0);
    c.current_shards.clear();
    snap.jobs[0].shards[7] = shard(7, "queued", 0.0, "", 2);
    snap.voters_up = 2;
    snap.events.push(event(
        base - 2_000,
        "warn",
        "node-c missed heartbeats for 10 s: marked dead, clip-7/7 requeued",
    ));
    actions.extend(app.handle(net(base, NetEvent::Snapshot(Box::new(snap)))));
    actions.extend(app.handle(Event::Tick { now_ms: base + 300 }));
    (app, actions)
}

/// node-a went away 3 s ago; third retry, to node-b, in 1.2 s.
pub fn disconnected(scope: &str) -> (App, Vec<Action>) {
    let (mut app, mut actions) = healthy(scope);
    let lost = T0 + 11_000;
    let error = "unavailable: tcp connect error: Connection refused (os error 111)";
    let lost_event = |at: u64, next: &str, attempt: u32, retry_in_ms: u64| {
        net(
            at,
            NetEvent::Lost {
                target: A.into(),
                error: error.into(),
                next: next.into(),
                attempt,
                retry_in_ms,
            },
        )
    };
    actions.extend(feed(
        &mut app,
        [
            lost_event(lost, A, 1, 500),
            net(
                lost + 500,
                NetEvent::Connecting {
                    target: A.into(),
                    attempt: 1,
                },
            ),
            lost_event(lost + 600, B, 2, 1_000),
            net(
                lost + 1_600,
                NetEvent::Connecting {
                    target: B.into(),
                    attempt: 2,
                },
            ),
            lost_event(lost + 2_000, C, 3, 2_000),
            Event::Tick {
                now_ms: lost + 2_800,
            },
        ],
    ));
    (app, actions)
}

pub fn help_open(scope: &str) -> (App, Vec<Action>) {
    let (mut app, mut actions) = healthy(scope);
    actions.extend(app.handle(char('?')));
    (app, actions)
}

/// The upload form after typing `videos/cl` and Tab (two candidates).
pub fn upload_open(scope: &str) -> (App, Vec<Action>) {
    use super::form::Entry;
    let (mut app, mut actions) = healthy(scope);
    actions.extend(app.handle(char('u')));
    actions.extend(feed(&mut app, "videos/cl".chars().map(char)));
    actions.extend(app.handle(key(KeyCode::Tab)));
    let entries = ["clip-a.mp4", "clip-b.mov", "notes.txt"]
        .iter()
        .map(|n| Entry {
            name: (*n).into(),
            is_dir: false,
        })
        .collect();
    let listing = Event::Listing {
        input: "videos/cl".into(),
        result: Ok(entries),
    };
    actions.extend(app.handle(listing));
    (app, actions)
}

/// An upload and a download under way, and the answer to `e` shown.
pub fn actions_running(scope: &str) -> (App, Vec<Action>) {
    use super::msg::{Outcome, TaskUpdate};
    let (mut app, mut actions) = healthy(scope);
    actions.extend(feed(&mut app, [char('e'), char('y')]));
    let reply = Outcome::Election {
        accepted: false,
        message:
            "not moved: this cluster has a fixed master (127.0.0.1:50051) until Raft elections land"
                .into(),
        new_master: A.into(),
        term: 3,
    };
    actions.extend(app.handle(Event::Task {
        id: 1,
        update: TaskUpdate::Finished(Ok(reply)),
    }));
    actions.extend(app.handle(char('u')));
    actions.extend(feed(&mut app, "clip-b.mov".chars().map(char)));
    actions.extend(app.handle(key(KeyCode::Enter)));
    let progress = TaskUpdate::Progress {
        phase: "uploading",
        done: 12 << 20,
        total: 53 << 19,
    };
    actions.extend(app.handle(Event::Task {
        id: 2,
        update: progress,
    }));
    actions.extend(feed(&mut app, [char('j'), char('r'), key(KeyCode::Enter)]));
    let progress = TaskUpdate::Progress {
        phase: "downloading",
        done: 10 << 20,
        total: 48 << 20,
    };
    actions.extend(app.handle(Event::Task {
        id: 3,
        update: progress,
    }));
    (app, actions)
}

/// Enter on the running job: its details over the screen.
pub fn details_open(scope: &str) -> (App, Vec<Action>) {
    let (mut app, mut actions) = healthy(scope);
    actions.extend(app.handle(key(KeyCode::Enter)));
    (app, actions)
}
