//! Yes/no popups: confirming a trash, purge or revocation, an answer to an
//! invitation, a role change or a link's revocation, and asking before a
//! changed form is thrown away.

use crossterm::event::{KeyCode, KeyEvent};
use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::widgets::{Paragraph, Wrap};
use uuid::Uuid;

use super::form::Form;
use super::{Popup, PopupView};
use crate::engine::bulk::BulkOp;
use crate::engine::members::Role;
use crate::tui::app::App;
use crate::tui::panes::share::{self, InviteTo};
use crate::tui::panes::{devices, vault};
use crate::tui::widgets::{block, cells, centered, clear_popup, question_lines};
use crate::tui::worker::Request;

/// What a confirmation will do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Confirmable {
    Trash(Uuid, String),
    Revoke(Uuid, String),
    /// Destroy a trashed item and its history.
    Purge(Uuid, String),
    /// Join a shared vault (the share pane's invitation).
    Accept {
        vault: Uuid,
        name: String,
        owner: String,
        role: String,
    },
    Decline {
        vault: Uuid,
        name: String,
        owner: String,
    },
    /// Give a member of a shared vault another role.
    SetRole {
        vault: Uuid,
        name: String,
        email: String,
        role: Role,
    },
    /// Delete a share link on the server (`item`: when this device knows it).
    RevokeLink {
        id: String,
        item: Option<String>,
    },
    /// Take a member out of a shared vault (its key is rotated).
    RemoveMember {
        vault: Uuid,
        name: String,
        email: String,
    },
    /// Leave a vault another account shares with this one.
    Leave {
        vault: Uuid,
        name: String,
        owner: String,
    },
    /// Approve a new device whose code this device computed (the devices
    /// pane keeps the claim); "no" denies it.
    ApproveDevice {
        id: Uuid,
        name: String,
        platform: String,
        code: String,
    },
    /// Deny a new device's request.
    DenyDevice {
        id: Uuid,
        name: String,
    },
    /// One change to the vault pane's selected items (one engine bulk
    /// call, one transaction); `what` names it ("Add tag(s) x to").
    Bulk {
        ids: Vec<Uuid>,
        op: BulkOp,
        what: String,
    },
}

impl PopupView for Confirmable {
    fn key(self, app: &mut App, k: KeyEvent) {
        match k.code {
            KeyCode::Char('y' | 'Y') | KeyCode::Enter => match self {
                Confirmable::ApproveDevice { id, .. } => {
                    match app
                        .pane_as_mut::<devices::DevicesPane>()
                        .and_then(|p| p.take_claim(id))
                    {
                        Some(claim) => app.send(Request::Job(devices::approve(claim))),
                        None => {
                            app.fail("That request is no longer held here; take it again".into())
                        }
                    }
                }
                Confirmable::DenyDevice { id, .. } => app.send(Request::Job(devices::deny(id))),
                Confirmable::Trash(id, _) => app.send(Request::Job(vault::trash(id))),
                Confirmable::Bulk { ids, op, .. } => {
                    app.send(Request::Job(vault::bulk(ids, op)));
                }
                Confirmable::Revoke(id, _) => app.send(Request::Job(devices::revoke(id))),
                Confirmable::Purge(id, _) => {
                    app.busy = Some("Purging");
                    app.send(Request::Job(vault::purge(id)));
                }
                Confirmable::Accept { vault, .. } => share::start(
                    app,
                    "Accepting: checking the vault's membership log",
                    share::accept(vault),
                ),
                Confirmable::Decline { vault, name, .. } => {
                    share::start(app, "Declining", share::decline(vault, name));
                }
                Confirmable::SetRole {
                    vault,
                    name,
                    email,
                    role,
                } => share::start(
                    app,
                    "Changing the role",
                    share::set_role(InviteTo { vault, name, role }, email),
                ),
                Confirmable::RevokeLink { id, .. } => {
                    share::start(app, "Revoking the link", share::revoke(id));
                }
                Confirmable::RemoveMember { vault, name, email } => share::start(
                    app,
                    "Removing them: a new vault key, every item key re-wrapped",
                    share::remove_member(vault, name, email),
                ),
                Confirmable::Leave { vault, name, .. } => share::start(
                    app,
                    "Leaving: syncing your changes first",
                    share::leave(vault, name),
                ),
            },
            KeyCode::Char('n' | 'N') | KeyCode::Esc => {
                if let Confirmable::ApproveDevice { id, .. } = self {
                    // Codes that differ (or a person who is not sure): the
                    // request is denied and nothing is sent.
                    drop(
                        app.pane_as_mut::<devices::DevicesPane>()
                            .and_then(|p| p.take_claim(id)),
                    );
                    app.send(Request::Job(devices::deny(id)));
                } else {
                    app.say("Cancelled");
                }
            }
            _ => app.popups.push(Popup::Confirm(self)),
        }
    }

    fn draw(&self, f: &mut Frame, app: &App, area: Rect) -> Rect {
        let c = self;
        let (title, text) = match c {
            Confirmable::Accept {
                name, owner, role, ..
            } => (
                "Accept the invitation?",
                format!(
                    "Join {name:?}, shared by {owner}, as {role}? Its signed membership log is \
                     checked against {owner}'s keys first."
                ),
            ),
            Confirmable::Decline { name, owner, .. } => (
                "Decline the invitation?",
                format!(
                    "Decline the invitation to {name:?} from {owner}? They can invite you again."
                ),
            ),
            Confirmable::SetRole {
                name, email, role, ..
            } => (
                "Change the role?",
                format!(
                    "Make {email} {} of {name:?}? A {} {}.",
                    role.as_str(),
                    role.as_str(),
                    match role {
                        Role::Viewer => "only reads the items",
                        Role::Editor => "also adds and changes items",
                        Role::Manager => "also invites members and changes roles",
                    }
                ),
            ),
            Confirmable::RemoveMember { name, email, .. } => (
                "Remove the member?",
                format!(
                    "Remove {email} from {name:?}? The vault gets a new key, sealed to the others \
                     only: {email} keeps what they already had, and can read nothing written after."
                ),
            ),
            Confirmable::Leave { name, owner, .. } => (
                "Leave the vault?",
                format!(
                    "Leave {name:?}, shared by {owner}? Your changes are synced first, then its \
                     items leave this device; {owner} must invite you again to come back."
                ),
            ),
            Confirmable::RevokeLink { id, item } => (
                "Revoke the link?",
                format!(
                    "Revoke the share link {id}{}? It stops working at once, for everyone who has it.",
                    item.as_ref()
                        .map_or_else(String::new, |i| format!(" to {i:?}"))
                ),
            ),
            Confirmable::ApproveDevice {
                name,
                platform,
                code,
                ..
            } => (
                "Approve this device?",
                format!(
                    "Code  {code}   Device {name:?} ({platform}). Approve only if the new device \
                     shows this same code: it then gets your Secret Key and signs in with your \
                     master password. No denies it."
                ),
            ),
            Confirmable::DenyDevice { name, .. } => (
                "Deny this device?",
                format!("Deny {name:?}? Nothing is sent to it; it can ask again."),
            ),
            Confirmable::Bulk { ids, op, what } => (
                "Change the selected items?",
                format!(
                    "{what} {} selected item(s)?{}",
                    ids.len(),
                    match op {
                        BulkOp::Trash => " They stay in the trash until purged; R restores them.",
                        BulkOp::MoveVault(_) => " Their history moves with them.",
                        _ => " Each gets a new version; the old one stays in its history.",
                    }
                ),
            ),
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
        // Room for the text as it wraps (54 cells a line), the blank line
        // and the answers.
        let h = u16::try_from(cells(&text).div_ceil(50) + 4)
            .unwrap_or(7)
            .clamp(7, 12);
        let r = clear_popup(f, centered(area, 56, h));
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
