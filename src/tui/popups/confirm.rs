//! Yes/no popups: confirming a trash, purge or revocation, and asking
//! before a changed form is thrown away.

use crossterm::event::{KeyCode, KeyEvent};
use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::widgets::{Paragraph, Wrap};
use uuid::Uuid;

use super::form::Form;
use super::{Popup, PopupView};
use crate::tui::app::App;
use crate::tui::panes::{devices, vault};
use crate::tui::widgets::{block, centered, clear_popup, question_lines};
use crate::tui::worker::Request;

/// What a confirmation will do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Confirmable {
    Trash(Uuid, String),
    Revoke(Uuid, String),
    /// Destroy a trashed item and its history.
    Purge(Uuid, String),
}

impl PopupView for Confirmable {
    fn key(self, app: &mut App, k: KeyEvent) {
        match k.code {
            KeyCode::Char('y' | 'Y') | KeyCode::Enter => match self {
                Confirmable::Trash(id, _) => app.send(Request::Job(vault::trash(id))),
                Confirmable::Revoke(id, _) => app.send(Request::Job(devices::revoke(id))),
                Confirmable::Purge(id, _) => {
                    app.busy = Some("Purging");
                    app.send(Request::Job(vault::purge(id)));
                }
            },
            KeyCode::Char('n' | 'N') | KeyCode::Esc => app.say("Cancelled"),
            _ => app.popups.push(Popup::Confirm(self)),
        }
    }

    fn draw(&self, f: &mut Frame, app: &App, area: Rect) -> Rect {
        let c = self;
        let (title, text) = match c {
            Confirmable::Trash(_, name) => (
                "Move to trash?",
                format!("Move {name:?} to the trash? It stays there until purged; R restores it."),
            ),
            Confirmable::Revoke(_, name) => (
                "Revoke device?",
                format!("Revoke {name:?}? It is signed out at once and can no longer sync."),
            ),
            Confirmable::Purge(_, name) => (
                "Purge for good?",
                format!(
                    "Destroy {name:?} and all its history? This cannot be undone, here or on your other devices."
                ),
            ),
        };
        let r = clear_popup(f, centered(area, 56, 7));
        let lines = question_lines(app, text, "yes", "n/Esc", "no");
        f.render_widget(
            Paragraph::new(lines)
                .wrap(Wrap { trim: true })
                .block(block(app, title, true)),
            r,
        );
        r
    }

    fn hints(&self) -> &'static [(&'static str, &'static str)] {
        &[("y", "yes"), ("n", "no")]
    }
}

/// A key in the discard question over a changed form.
pub(super) fn discard_key(app: &mut App, k: KeyEvent) {
    match k.code {
        KeyCode::Char('y' | 'Y') => {
            // The form under it goes too.
            app.popups.pop();
            app.say("Discarded the changes");
        }
        KeyCode::Char('n' | 'N') | KeyCode::Esc | KeyCode::Enter => {
            // Back to the form under it.
        }
        _ => app.popups.push(Popup::Discard),
    }
}

/// Draws the discard question over `form` (drawn before it, so it stays
/// in sight).
pub(super) fn draw_discard(f: &mut Frame, app: &App, area: Rect, form: Option<&Form>) -> Rect {
    // Over the form, which stays in sight: what would be lost.
    let r = clear_popup(f, centered(area, 56, 7));
    let what = if form.is_some_and(|f| f.editing.is_some()) {
        "your changes to this item"
    } else {
        "this new item"
    };
    let lines = question_lines(
        app,
        format!("Throw away {what}? Everything typed in the form is lost."),
        "discard",
        "n/Esc/Enter",
        "keep editing",
    );
    f.render_widget(
        Paragraph::new(lines)
            .wrap(Wrap { trim: true })
            .block(block(app, "Discard?", true)),
        r,
    );
    r
}

/// The discard question's hints.
pub(super) const DISCARD_HINTS: &[(&str, &str)] = &[("y", "discard"), ("n", "keep editing")];
