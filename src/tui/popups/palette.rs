//! The command palette: every action and the palette's own commands,
//! matched fuzzily.

use crossterm::event::{KeyCode, KeyEvent};
use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

use super::{Confirmable, PasswdState, Popup};
use crate::tui::app::App;
use crate::tui::input::{Edit, TextInput};
use crate::tui::keymap::Action;
use crate::tui::sync_state::SyncState;
use crate::tui::widgets::{block, centered, clear_popup, pad_left, pad_right, prompt_line};
use crate::tui::worker::Request;

/// The palette's own commands, beside every key binding's action.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Command {
    Purge,
    Passwd,
    Login,
    Logout,
    SyncVerify,
    Recovery,
    Import,
    Export,
}

impl Command {
    pub const ALL: [Self; 8] = [
        Self::Purge,
        Self::Passwd,
        Self::Login,
        Self::Logout,
        Self::SyncVerify,
        Self::Recovery,
        Self::Import,
        Self::Export,
    ];

    /// The name typed in the palette (as the CLI command).
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::Purge => "purge",
            Self::Passwd => "passwd",
            Self::Login => "login",
            Self::Logout => "logout",
            Self::SyncVerify => "sync --verify",
            Self::Recovery => "recovery",
            Self::Import => "import",
            Self::Export => "export",
        }
    }

    #[must_use]
    pub fn describe(self) -> &'static str {
        match self {
            Self::Purge => "purge the trashed item for good",
            Self::Passwd => "change the master password",
            Self::Login => "log this device in again",
            Self::Logout => "log this device out of the server",
            Self::SyncVerify => "sync and verify the server's copy",
            Self::Recovery => {
                "recovery and emergency access: set up, check or split a recovery code; grant access"
            }
            Self::Import => {
                "import KeePass(XC), Bitwarden, 1Password, LastPass, Chrome, Firefox, pass or OpenK files (import FILE)"
            }
            Self::Export => {
                "export every item: an encrypted OpenK archive, or json / csv (export FILE)"
            }
        }
    }
}

/// One palette row: a key binding's action or a command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PaletteItem {
    Action(Action),
    Command(Command),
}

impl PaletteItem {
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::Action(a) => a.name(),
            Self::Command(c) => c.name(),
        }
    }

    #[must_use]
    pub fn describe(self) -> &'static str {
        match self {
            Self::Action(a) => a.describe(),
            Self::Command(c) => c.describe(),
        }
    }
}

/// Actions and commands whose name or description matches the palette
/// input (fuzzy: the characters in order), best (shortest match span)
/// first.
#[must_use]
pub fn palette_matches(input: &str) -> Vec<PaletteItem> {
    let needle: Vec<char> = input
        .to_lowercase()
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect();
    let items = Action::ALL
        .iter()
        .map(|a| PaletteItem::Action(*a))
        .chain(Command::ALL.iter().map(|c| PaletteItem::Command(*c)));
    let mut scored: Vec<(usize, usize, PaletteItem)> = items
        .enumerate()
        .filter_map(|(i, a)| {
            let hay: Vec<char> = format!("{} {}", a.name().replace('_', " "), a.describe())
                .to_lowercase()
                .chars()
                .collect();
            let mut pos = 0;
            let mut first = None;
            for c in &needle {
                let found = hay[pos..].iter().position(|h| h == c)?;
                first.get_or_insert(pos + found);
                pos += found + 1;
            }
            Some((pos - first.unwrap_or(0), i, a))
        })
        .collect();
    scored.sort_unstable_by_key(|(span, i, _)| (*span, *i));
    scored.into_iter().map(|(_, _, a)| a).collect()
}

/// A key in the palette.
pub(super) fn key(app: &mut App, mut input: TextInput, mut sel: usize, k: KeyEvent) {
    match k.code {
        KeyCode::Esc => {}
        // `import FILE`: the command with its argument.
        KeyCode::Enter if with_argument(input.as_str(), "import").is_some() => {
            let file = with_argument(input.as_str(), "import").unwrap_or_default();
            let popup = super::ImportState::open(file);
            app.popups.push(popup);
        }
        KeyCode::Enter if with_argument(input.as_str(), "export").is_some() => {
            let file = with_argument(input.as_str(), "export").unwrap_or_default();
            let popup = super::ExportState::open(file);
            app.popups.push(popup);
        }
        KeyCode::Enter => match palette_matches(input.as_str()).get(sel) {
            Some(PaletteItem::Action(a)) => app.act(*a),
            Some(PaletteItem::Command(c)) => command(app, *c),
            None => {}
        },
        KeyCode::Up => {
            sel = sel.saturating_sub(1);
            app.popups.push(Popup::Palette { input, sel });
        }
        KeyCode::Down => {
            sel = (sel + 1).min(palette_matches(input.as_str()).len().saturating_sub(1));
            app.popups.push(Popup::Palette { input, sel });
        }
        _ => {
            if input.handle(k) == Edit::Changed {
                sel = 0;
            }
            app.popups.push(Popup::Palette { input, sel });
        }
    }
}

/// The argument after `command ` in the palette's input, if it starts so
/// (a leading `:` allowed).
fn with_argument<'a>(input: &'a str, command: &str) -> Option<&'a str> {
    let input = input.trim_start().trim_start_matches(':');
    let rest = input.get(command.len()..)?;
    (input.get(..command.len())?.eq_ignore_ascii_case(command) && rest.starts_with(' '))
        .then(|| rest.trim())
        .filter(|r| !r.is_empty())
}

/// Runs one of the palette's own commands.
pub(super) fn command(app: &mut App, c: Command) {
    let remote = match &app.sync {
        SyncState::LocalOnly => Err(
            "This vault is local only: `openk register --server URL --email ADDRESS` connects a server",
        ),
        _ => Ok(()),
    };
    match c {
        Command::Purge => {
            let Some(e) = app.selected_id().and_then(|id| app.entry(id)) else {
                return app.warn("Select the trashed item to purge first");
            };
            if e.overview.trashed_at.is_none() {
                return app.warn(format!(
                    "Only an item in the trash can be purged: {} moves {:?} there first",
                    app.keymap.first_key(Action::Delete),
                    e.overview.name
                ));
            }
            app.popups.push(Popup::Confirm(Confirmable::Purge(
                e.r.id,
                e.overview.name.clone(),
            )));
        }
        Command::Passwd => app.popups.push(Popup::Passwd(PasswdState::default())),
        Command::Import => app.popups.push(super::ImportState::open("")),
        Command::Export => app.popups.push(super::ExportState::open("")),
        Command::Recovery => match remote {
            Err(m) => app.warn(m),
            Ok(()) => {
                let popup = super::RecoveryState::open(app);
                app.popups.push(popup);
            }
        },
        Command::Login => match remote {
            Err(m) => app.warn(m),
            Ok(()) => {
                app.busy = Some("Logging in");
                app.send(Request::Relogin);
            }
        },
        Command::Logout => match (remote, &app.sync) {
            (Err(m), _) => app.warn(m),
            (_, SyncState::LoggedOut) => {
                app.warn("Already logged out; the palette's login signs in again");
            }
            _ => {
                app.busy = Some("Logging out");
                app.send(Request::Logout);
            }
        },
        Command::SyncVerify => match (remote, &app.sync) {
            (Err(m), _) => app.warn(m),
            (_, SyncState::LoggedOut) => {
                app.warn("Logged out: the palette's login signs in again, then sync --verify");
            }
            _ => {
                app.busy = Some("Syncing and verifying the server's copy");
                app.send(Request::SyncVerify);
            }
        },
    }
}

pub(super) fn draw(f: &mut Frame, app: &App, area: Rect, input: &TextInput, sel: usize) -> Rect {
    let t = &app.theme;
    let r = clear_popup(f, centered(area, 60, 14));
    let prompt = prompt_line(
        Span::styled(": ", t.accent),
        input,
        r.width.saturating_sub(5),
        app,
    );
    let mut lines = vec![prompt, Line::default()];
    let height = usize::from(r.height.saturating_sub(4));
    let offset = sel.saturating_sub(height.saturating_sub(1));
    for (i, a) in palette_matches(input.as_str())
        .into_iter()
        .enumerate()
        .skip(offset)
        .take(height)
    {
        let style = if i == sel { t.selected } else { t.text };
        let keys = match a {
            PaletteItem::Action(a) => app.keymap.keys_of(a),
            PaletteItem::Command(c) => format!(":{}", c.name()),
        };
        lines.push(Line::from(vec![
            Span::styled(format!(" {}", pad_right(a.describe(), 40)), style),
            Span::styled(
                format!("{} ", pad_left(&keys, 14)),
                if i == sel { style } else { t.dim },
            ),
        ]));
    }
    f.render_widget(Paragraph::new(lines).block(block(app, "Commands", true)), r);
    r
}
