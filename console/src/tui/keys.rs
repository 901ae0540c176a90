//! The key table: the one place that says which key does what.
//!
//! `App::handle` looks keys up here, and both the footer and the `?` help
//! popup are generated from the same [`BINDINGS`], so what the screen
//! promises cannot drift from what the keys do.

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

/// What a key asks for. Which commands apply depends on the [`Scope`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Command {
    Upload,
    Retrieve,
    Elect,
    Delete,
    /// A signed watch URL of the selected ladder job, in the log.
    Watch,
    Details,
    Pause,
    NextPane,
    PrevPane,
    Down,
    Up,
    /// Closes details; in the log pane, follows the newest lines again.
    Back,
    Help,
    Quit,
    /// Forms and prompts.
    Complete,
    NextField,
    PrevField,
    FormatPrev,
    FormatNext,
    Submit,
    Cancel,
    /// Confirmation prompts.
    Yes,
    No,
}

/// Where keys are read: the main screen or one of the modal dialogs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    Main,
    /// The upload form and the retrieve path prompt (letters are text there).
    Form,
    Confirm,
    Help,
}

/// One physical key, as matched and as shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Key {
    Char(char),
    Ctrl(char),
    Tab,
    BackTab,
    Enter,
    Esc,
    Up,
    Down,
    Left,
    Right,
}

impl Key {
    /// Whether a key press is this key. Shift is ignored for characters so
    /// `?` matches whether or not the terminal reports the shift.
    pub fn matches(self, ev: &KeyEvent) -> bool {
        let ctrl = ev.modifiers.contains(KeyModifiers::CONTROL);
        match (self, ev.code) {
            (Key::Char(c), KeyCode::Char(got)) => !ctrl && c == got,
            (Key::Ctrl(c), KeyCode::Char(got)) => ctrl && c.eq_ignore_ascii_case(&got),
            (Key::Tab, KeyCode::Tab) => !ev.modifiers.contains(KeyModifiers::SHIFT),
            (Key::BackTab, KeyCode::BackTab) => true,
            (Key::BackTab, KeyCode::Tab) => ev.modifiers.contains(KeyModifiers::SHIFT),
            (Key::Enter, KeyCode::Enter) => true,
            (Key::Esc, KeyCode::Esc) => true,
            (Key::Up, KeyCode::Up) => true,
            (Key::Down, KeyCode::Down) => true,
            (Key::Left, KeyCode::Left) => true,
            (Key::Right, KeyCode::Right) => true,
            _ => false,
        }
    }

    /// How the key is written in the footer and the help.
    pub fn label(self) -> String {
        match self {
            Key::Char(c) => c.to_string(),
            Key::Ctrl(c) => format!("Ctrl-{}", c.to_ascii_uppercase()),
            Key::Tab => "Tab".into(),
            Key::BackTab => "S-Tab".into(),
            Key::Enter => "Enter".into(),
            Key::Esc => "Esc".into(),
            Key::Up => "↑".into(),
            Key::Down => "↓".into(),
            Key::Left => "←".into(),
            Key::Right => "→".into(),
        }
    }
}

/// One row of the key table.
#[derive(Debug, Clone, Copy)]
pub struct Binding {
    pub scope: Scope,
    pub command: Command,
    pub keys: &'static [Key],
    /// Short label for the footer; `None` keeps the binding to the help.
    pub footer: Option<&'static str>,
    /// Sentence for the help popup.
    pub help: &'static str,
}

const fn bind(
    scope: Scope,
    command: Command,
    keys: &'static [Key],
    footer: Option<&'static str>,
    help: &'static str,
) -> Binding {
    Binding {
        scope,
        command,
        keys,
        footer,
        help,
    }
}

use Command as C;
use Key as K;
use Scope as S;

/// Every key of the console, in the order the help lists them.
#[rustfmt::skip]
pub const BINDINGS: &[Binding] = &[
    bind(S::Main, C::Upload, &[K::Char('u')], Some("upload"), "upload a video (path, size, format)"),
    bind(S::Main, C::Retrieve, &[K::Char('r')], Some("retrieve"), "download the selected job's output"),
    bind(S::Main, C::Elect, &[K::Char('e')], Some("elect"), "force an election (asks first)"),
    bind(S::Main, C::Delete, &[K::Char('d')], Some("delete"), "delete the selected job (asks first)"),
    bind(S::Main, C::Watch, &[K::Char('w')], Some("watch"), "log a signed watch URL of the selected ladder job"),
    bind(S::Main, C::Pause, &[K::Char('p')], Some("pause"), "freeze / resume live updates"),
    bind(S::Main, C::Details, &[K::Enter], Some("details"), "toggle details of the selected row"),
    bind(S::Main, C::NextPane, &[K::Tab, K::Char('l'), K::Right], None, "next pane"),
    bind(S::Main, C::PrevPane, &[K::BackTab, K::Char('h'), K::Left], None, "previous pane"),
    bind(S::Main, C::Down, &[K::Char('j'), K::Down], None, "next row (log: page down)"),
    bind(S::Main, C::Up, &[K::Char('k'), K::Up], None, "previous row (log: page up)"),
    bind(S::Main, C::Back, &[K::Esc], None, "close details; log: follow newest"),
    bind(S::Main, C::Help, &[K::Char('?')], Some("help"), "show / hide this help"),
    bind(S::Main, C::Quit, &[K::Char('q'), K::Ctrl('c')], Some("quit"), "quit (Ctrl-C works everywhere)"),
    bind(S::Form, C::Complete, &[K::Tab], Some("complete"), "complete path/next field"),
    bind(S::Form, C::NextField, &[K::Down], Some("field"), "next field"),
    bind(S::Form, C::PrevField, &[K::Up, K::BackTab], None, "previous field"),
    bind(S::Form, C::FormatPrev, &[K::Left], None, "previous format"),
    bind(S::Form, C::FormatNext, &[K::Right], Some("format"), "next format"),
    bind(S::Form, C::Submit, &[K::Enter], Some("start"), "start"),
    bind(S::Form, C::Cancel, &[K::Esc], Some("cancel"), "cancel"),
    bind(S::Confirm, C::Yes, &[K::Char('y'), K::Char('Y')], Some("yes"), "yes"),
    bind(S::Confirm, C::No, &[K::Char('n'), K::Char('N'), K::Esc], Some("no"), "no"),
    bind(S::Help, C::Cancel, &[K::Esc, K::Char('?'), K::Char('q')], Some("close"), "close"),
];

/// The command a key press means in `scope`, if any. Ctrl-C always quits.
pub fn command_for(scope: Scope, ev: &KeyEvent) -> Option<Command> {
    if Key::Ctrl('c').matches(ev) {
        return Some(Command::Quit);
    }
    BINDINGS
        .iter()
        .filter(|b| b.scope == scope)
        .find(|b| b.keys.iter().any(|k| k.matches(ev)))
        .map(|b| b.command)
}

/// The keys of a binding joined for display: `"Tab/l/→"`.
pub fn keys_label(binding: &Binding) -> String {
    let labels: Vec<String> = binding.keys.iter().map(|k| k.label()).collect();
    labels.join("/")
}

/// Footer entries of a scope: (first key, short label).
pub fn footer(scope: Scope) -> Vec<(String, &'static str)> {
    BINDINGS
        .iter()
        .filter(|b| b.scope == scope)
        .filter_map(|b| Some((b.keys.first()?.label(), b.footer?)))
        .collect()
}

/// Help rows of a scope: (all keys, sentence).
pub fn help(scope: Scope) -> Vec<(String, &'static str)> {
    BINDINGS
        .iter()
        .filter(|b| b.scope == scope)
        .map(|b| (keys_label(b), b.help))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crossterm::event::{KeyEventKind, KeyEventState};

    fn key(code: KeyCode, modifiers: KeyModifiers) -> KeyEvent {
        KeyEvent {
            code,
            modifiers,
            kind: KeyEventKind::Press,
            state: KeyEventState::NONE,
        }
    }

    #[test]
    fn keys_map_to_commands_per_scope() {
        let q = key(KeyCode::Char('q'), KeyModifiers::NONE);
        assert_eq!(command_for(Scope::Main, &q), Some(Command::Quit));
        assert_eq!(command_for(Scope::Form, &q), None, "q is text in forms");
        let ctrl_c = key(KeyCode::Char('c'), KeyModifiers::CONTROL);
        for scope in [Scope::Main, Scope::Form, Scope::Confirm, Scope::Help] {
            assert_eq!(command_for(scope, &ctrl_c), Some(Command::Quit));
        }
        let help = key(KeyCode::Char('?'), KeyModifiers::SHIFT);
        assert_eq!(command_for(Scope::Main, &help), Some(Command::Help));
        let back = key(KeyCode::Tab, KeyModifiers::SHIFT);
        assert_eq!(command_for(Scope::Main, &back), Some(Command::PrevPane));
        let l = key(KeyCode::Char('l'), KeyModifiers::NONE);
        assert_eq!(command_for(Scope::Main, &l), Some(Command::NextPane));
    }

    #[test]
    fn no_key_is_bound_twice_in_a_scope() {
        for a in BINDINGS {
            for b in BINDINGS {
                if std::ptr::eq(a, b) || a.scope != b.scope {
                    continue;
                }
                for k in a.keys {
                    assert!(!b.keys.contains(k), "{k:?} bound twice in {:?}", a.scope);
                }
            }
        }
    }

    #[test]
    fn footer_and_help_come_from_the_table() {
        let footer = footer(Scope::Main);
        assert_eq!(footer.first(), Some(&("u".to_owned(), "upload")));
        assert!(footer.contains(&("?".to_owned(), "help")));
        let help = help(Scope::Main);
        assert!(help.contains(&("q/Ctrl-C".to_owned(), "quit (Ctrl-C works everywhere)")));
        assert_eq!(
            help.len(),
            BINDINGS.iter().filter(|b| b.scope == Scope::Main).count()
        );
    }
}
