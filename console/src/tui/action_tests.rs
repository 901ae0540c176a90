//! Unit tests of `App::handle` for the actions: elect, delete, retrieve,
//! upload (event in, state and actions out; nothing is executed).

use crossterm::event::KeyCode;
use log::Level;

use super::app_tests::{logs, status};
use super::fixtures::{A, char, feed, key};
use super::form::Entry;
use super::msg::{Action, Event, Outcome, TaskUpdate};
use super::scenarios;
use super::state::Modal;

#[test]
fn election_asks_naming_the_master_and_shows_the_reply() {
    let (mut app, _) = scenarios::healthy("t");
    app.handle(char('e'));
    let Some(Modal::Confirm { question, .. }) = &app.modal else {
        panic!("asks first")
    };
    assert_eq!(
        question,
        "Force an election? The current master is node-a (127.0.0.1:50051), term 3."
    );
    assert_eq!(
        logs(&app.handle(char('n'))),
        vec!["12:00:09 console: cancelled"]
    );
    assert!(app.modal.is_none());
    app.handle(char('e'));
    let out = app.handle(char('y'));
    let Some(Action::Elect {
        id,
        node,
        to_node_id,
    }) = out.last().cloned()
    else {
        panic!("{out:?}")
    };
    assert_eq!((node.as_str(), to_node_id.as_str()), (A, ""));
    assert_eq!(app.tasks.len(), 1);
    let reply = Outcome::Election {
        accepted: false,
        message: "not moved: this cluster has a fixed master".into(),
        new_master: A.into(),
        term: 3,
    };
    app.handle(Event::Task {
        id,
        update: TaskUpdate::Finished(Ok(reply)),
    });
    assert!(app.tasks.is_empty());
    assert_eq!(
        status(&app),
        (
            Level::Warn,
            "election not accepted: not moved: this cluster has a fixed master".into()
        )
    );
}

#[test]
fn delete_confirms_then_asks_the_node() {
    let (mut app, _) = scenarios::healthy("t");
    app.handle(char('d'));
    assert!(
        matches!(&app.modal, Some(Modal::Confirm { question, .. }) if question == "Delete job clip-7 and its output?")
    );
    let out = app.handle(char('y'));
    assert!(
        out.iter()
            .any(|a| matches!(a, Action::Delete { job_id, .. } if job_id == "clip-7")),
        "the delete RPC is asked for: {out:?}"
    );
    let (level, text) = Outcome::Deleted {
        job_id: "clip-7".into(),
        message: "job clip-7 deleted".into(),
    }
    .describe();
    assert_eq!(level, Level::Info);
    assert!(text.contains("deleted job clip-7"), "{text}");
}

#[test]
fn retrieve_needs_a_completed_job_and_a_path() {
    let (mut app, _) = scenarios::healthy("t");
    app.handle(char('r'));
    assert!(app.modal.is_none());
    assert_eq!(status(&app).1, "job clip-7 has no output yet (processing)");
    app.handle(char('j'));
    app.handle(char('r'));
    let Some(Modal::Retrieve(prompt)) = &app.modal else {
        panic!("prompt open")
    };
    assert_eq!(
        prompt.path, "intro.webm",
        "named after the job and its format"
    );
    app.handle(key(KeyCode::Backspace));
    let out = app.handle(key(KeyCode::Enter));
    assert_eq!(
        out,
        vec![Action::Retrieve {
            id: 1,
            node: A.into(),
            job_id: "intro".into(),
            path: "intro.web".into()
        }]
    );
    app.handle(Event::Task {
        id: 1,
        update: TaskUpdate::Finished(Err("sha256 mismatch".into())),
    });
    assert_eq!(
        status(&app),
        (
            Level::Error,
            "retrieve intro → intro.web failed: sha256 mismatch".into()
        )
    );
}

#[test]
fn upload_form_completes_paths_and_starts_in_the_background() {
    let (mut app, actions) = scenarios::upload_open("t");
    assert!(actions.contains(&Action::ListDir {
        input: "videos/cl".into()
    }));
    let Some(Modal::Upload(form)) = &app.modal else {
        panic!("form open")
    };
    assert_eq!(form.path, "videos/clip-");
    assert_eq!(form.matches, vec!["clip-a.mp4", "clip-b.mov"]);
    // A listing for text the user has since changed is ignored.
    app.handle(char('b'));
    let stale = Event::Listing {
        input: "videos/clip-".into(),
        result: Ok(vec![Entry {
            name: "clip-a.mp4".into(),
            is_dir: false,
        }]),
    };
    app.handle(stale);
    let Some(Modal::Upload(form)) = &app.modal else {
        panic!("form open")
    };
    assert_eq!(form.path, "videos/clip-b");
    let out = feed(
        &mut app,
        [
            key(KeyCode::Down),
            key(KeyCode::Down),
            key(KeyCode::Down),
            key(KeyCode::Right),
            key(KeyCode::Enter),
        ],
    );
    let [Action::Upload { id, node, spec }] = out.as_slice() else {
        panic!("{out:?}")
    };
    assert_eq!(
        (
            node.as_str(),
            spec.path.as_str(),
            spec.width,
            spec.height,
            spec.format
        ),
        (A, "videos/clip-b", 1280, -1, "mkv")
    );
    assert!(
        app.modal.is_none(),
        "the form closes; the upload runs in the background"
    );
    let progress = TaskUpdate::Progress {
        phase: "uploading",
        done: 5,
        total: 10,
    };
    app.handle(Event::Task {
        id: *id,
        update: progress,
    });
    assert_eq!((app.tasks[0].phase, app.tasks[0].done), ("uploading", 5));
    let done = Outcome::Uploaded {
        job_id: "clip-b".into(),
        status: "queued".into(),
    };
    app.handle(Event::Task {
        id: *id,
        update: TaskUpdate::Finished(Ok(done)),
    });
    assert_eq!(
        status(&app),
        (Level::Info, "uploaded: job clip-b (queued)".into())
    );
}

#[test]
fn watch_asks_for_a_link_only_for_a_ladder_job() {
    let (mut app, _) = scenarios::healthy("t");
    app.handle(char('w'));
    assert_eq!(
        status(&app),
        (
            Level::Warn,
            "job clip-7 is not a ladder: nothing to watch (r retrieves it)".into()
        )
    );
    let mut snapshot = super::fixtures::healthy_snapshot(1);
    if let Some(params) = snapshot.jobs[0].params.as_mut() {
        params.ladder = "720,360".into();
    }
    app.handle(super::fixtures::net(
        super::fixtures::T0 + 500,
        super::msg::NetEvent::Snapshot(Box::new(snapshot)),
    ));
    let out = app.handle(char('w'));
    let Some(Action::Link { id, node, job_id }) = out.last().cloned() else {
        panic!("{out:?}")
    };
    assert_eq!((node.as_str(), job_id.as_str()), (A, "clip-7"));
    app.handle(Event::Task {
        id,
        update: TaskUpdate::Finished(Ok(Outcome::Linked {
            job_id: "clip-7".into(),
            watch_url: "http://10.0.0.1:8080/s/1.ab/watch/clip-7".into(),
            expires_unix: 1,
        })),
    });
    assert_eq!(
        status(&app).1,
        "watch clip-7 (until unix 1): http://10.0.0.1:8080/s/1.ab/watch/clip-7"
    );
}
