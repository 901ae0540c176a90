//! Whole-screen snapshots (ratatui `TestBackend` + insta) of the fixture
//! states at 80×24 (the smallest supported comfortable size) and 120×40.
//!
//! Each test logs into its own tui-logger scope, so the log pane shows
//! exactly that fixture's lines even with tests running in parallel.

use ratatui::Terminal;
use ratatui::backend::TestBackend;
use ratatui::style::Modifier;

use super::app::App;
use super::fixtures::emit_logs;
use super::msg::Action;
use super::scenarios;
use super::ui;

fn render(app: &App, width: u16, height: u16) -> Terminal<TestBackend> {
    let mut terminal = Terminal::new(TestBackend::new(width, height)).expect("test terminal");
    terminal.draw(|frame| ui::draw(frame, app)).expect("draw");
    terminal
}

type Fixture = fn(&str) -> (App, Vec<Action>);

/// Renders `fixture` at both sizes and compares with the stored snapshots.
fn check(name: &str, fixture: Fixture) {
    for (width, height) in [(80, 24), (120, 40)] {
        let scope = format!("{name}_{width}x{height}");
        let (app, actions) = fixture(&scope);
        emit_logs(&app, &actions);
        let terminal = render(&app, width, height);
        insta::assert_snapshot!(scope, terminal.backend());
    }
}

#[test]
fn healthy_cluster_with_a_running_job() {
    check("healthy", scenarios::healthy);
}

#[test]
fn leader_changed() {
    check("leader_changed", scenarios::leader_changed);
}

#[test]
fn node_dead() {
    check("node_dead", scenarios::node_dead);
}

#[test]
fn disconnected_shows_the_stale_banner() {
    check("disconnected", scenarios::disconnected);
}

#[test]
fn help_popup_open() {
    check("help", scenarios::help_open);
}

#[test]
fn upload_form_open() {
    check("upload_form", scenarios::upload_open);
}

#[test]
fn actions_run_in_the_background_with_progress() {
    check("actions_running", scenarios::actions_running);
}

#[test]
fn details_of_the_selected_job() {
    check("details", scenarios::details_open);
}

#[test]
fn stale_data_is_dimmed_and_live_data_is_not() {
    let (app, _) = scenarios::disconnected("dim_stale");
    let terminal = render(&app, 80, 24);
    // A cell inside the nodes table (row 4 is its first data row).
    let cell = &terminal.backend().buffer()[(3, 4)];
    assert!(
        cell.modifier.contains(Modifier::DIM),
        "stale data must be dimmed"
    );
    let (app, _) = scenarios::healthy("dim_live");
    let terminal = render(&app, 80, 24);
    let cell = &terminal.backend().buffer()[(3, 4)];
    assert!(
        !cell.modifier.contains(Modifier::DIM),
        "live data must not be dimmed"
    );
}

#[test]
fn tiny_terminals_get_a_message_not_a_panic() {
    let (app, _) = scenarios::healthy("tiny");
    for (w, h) in [(1, 1), (40, 10), (59, 30), (200, 15)] {
        let terminal = render(&app, w, h);
        let first: String = (0..w.min(8))
            .map(|x| terminal.backend().buffer()[(x, 0)].symbol().to_owned())
            .collect();
        assert!(
            "terminal too small".starts_with(first.trim_end()),
            "{w}x{h}: {first:?}"
        );
    }
}
