//! The share pane (key `4`): the vaults on this device, personal and
//! shared (members with role, fingerprint and how far this device trusts
//! their keys), the invitations waiting for an answer, and this account's
//! share links. Invite (with the invitee's fingerprint to compare), change
//! a role, accept or decline, verify a changed key, create, copy and revoke
//! links, create and rename vaults.
//!
//! What is on this device shows at once ([`local`]); the server's part
//! ([`load`]) and every change run as network jobs, so a server that never
//! answers holds nothing up and `Esc` stops waiting. Server strings (emails,
//! vault and item names) are data: drawn through `text::cell`.

use std::cell::Cell;

use crossterm::event::{MouseButton, MouseEvent, MouseEventKind};
use ratatui::Frame;
use ratatui::layout::{Position, Rect};
use uuid::Uuid;

use super::{Pane, Tab, step};
use crate::engine::activity::Activity;
use crate::engine::members::Role;
use crate::engine::remote::share::ShareInfo;
use crate::engine::shared_vaults::{Invitation, MemberView, VaultInfo};
use crate::tui::app::{App, Popup};
use crate::tui::keymap::Action;
use crate::tui::popups::share::{LinkForm, VaultNameState};
use crate::tui::sync_state::SyncState;
use crate::tui::worker::{Answer, Job, Request};

mod actions;
mod draw;
mod jobs;

pub use jobs::*;

/// What a list row stands for, kept across reloads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Key {
    Vault(Uuid),
    Invite(Uuid),
    Link(String),
}

/// A section of the list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Section {
    Vaults,
    Invitations,
    Links,
}

/// One row of the list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Row {
    Header(Section),
    /// A section with nothing to list (or not read): the draw says why.
    Empty(Section),
    Vault(usize),
    Invite(usize),
    Link(usize),
}

impl Row {
    fn selectable(&self) -> bool {
        matches!(self, Self::Vault(_) | Self::Invite(_) | Self::Link(_))
    }
}

/// Which side has the keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Focus {
    #[default]
    List,
    /// The members of the selected vault.
    Members,
}

/// The share pane's state.
#[derive(Debug, Default)]
pub struct SharePane {
    pub local: Option<Local>,
    pub remote: Option<Remote>,
    pub rows: Vec<Row>,
    pub sel: usize,
    pub member_sel: usize,
    pub focus: Focus,
    /// Waiting for the server's lists.
    pub loading: bool,
    /// A change waiting for the server ("Inviting", …).
    pub working: Option<&'static str>,
    /// `Esc` stopped the wait before the server answered.
    pub stopped: bool,
    /// A vault's activity log, shown in its details instead of the
    /// members (`H`), and the first line on screen.
    pub activity: Option<(Uuid, Result<Vec<Activity>, String>)>,
    pub activity_top: usize,
    /// Select this once the lists have it (a vault or link just made).
    pending: Option<Key>,
    /// The first list row on screen, and where the list was drawn.
    pub offset: Cell<usize>,
    pub list_area: Cell<Rect>,
}

impl Pane for SharePane {
    fn tab(&self) -> Tab {
        Tab::new(TO, "Share", Action::PaneShare)
    }

    fn act(&mut self, app: &mut App, a: Action) -> bool {
        if let Some(delta) = a.movement() {
            self.move_by(delta);
            return true;
        }
        let members = self.focus == Focus::Members;
        match a {
            Action::Right | Action::NextPane if !members => {
                if self.selected_members().is_some_and(|m| !m.is_empty())
                    || self.shown_activity().is_some()
                {
                    self.focus = Focus::Members;
                    self.member_sel = 0;
                } else if a == Action::NextPane {
                    return false;
                }
            }
            Action::Left | Action::PrevPane | Action::Back if members => self.focus = Focus::List,
            Action::Open => match self.selected() {
                Some(Key::Invite(_)) => self.ask_accept(app),
                Some(Key::Link(id)) => self.copy_url(app, id),
                Some(Key::Vault(_)) if !members => return self.act(app, Action::Right),
                _ => {}
            },
            Action::Accept => match self.selected() {
                Some(Key::Invite(_)) => self.ask_accept(app),
                _ => app.warn("a accepts an invitation: select one under Invitations"),
            },
            Action::Delete => self.delete(app),
            Action::CopyField => match self.selected() {
                Some(Key::Link(id)) => self.copy_url(app, id),
                _ => app.warn("y copies a share link's URL: select one under Share links"),
            },
            Action::New => app.popups.push(Popup::VaultName(VaultNameState::create())),
            Action::Edit => self.edit(app),
            Action::Invite => self.invite(app),
            Action::Verify => self.verify(app),
            Action::History => self.toggle_activity(app),
            Action::ShareLink => {
                let target = app.vault().share_target();
                open_link_form(app, target);
            }
            Action::Sync => {
                // The global sync runs too; the lists are read again.
                self.reload(app);
                return false;
            }
            _ => return false,
        }
        true
    }

    fn mouse(&mut self, _app: &mut App, m: MouseEvent) {
        match m.kind {
            MouseEventKind::ScrollDown => self.move_by(3),
            MouseEventKind::ScrollUp => self.move_by(-3),
            MouseEventKind::Down(MouseButton::Left) => {
                let r = self.list_area.get();
                let at = Position::new(m.column, m.row);
                if r.contains(at) && at.y > r.y {
                    let i = self.offset.get() + usize::from(at.y - r.y - 1);
                    if self.rows.get(i).is_some_and(Row::selectable) {
                        self.sel = i;
                        self.focus = Focus::List;
                    }
                }
            }
            _ => {}
        }
    }

    fn shown(&mut self, app: &mut App) {
        self.reload(app);
    }

    fn busy(&self) -> bool {
        self.loading || self.working.is_some()
    }

    fn cancelled(&mut self) {
        if self.busy() {
            self.stopped = true;
        }
        self.loading = false;
        self.working = None;
    }

    fn answer(&mut self, app: &mut App, answer: Answer) {
        let u = match answer.take::<Update>() {
            Ok(u) => u,
            Err(a) => return tracing::warn!(?a, "an answer the share pane does not read"),
        };
        let keep = self.selected();
        if let Some(mut l) = u.local {
            // What lists show comes from a server or a file: data.
            for v in &mut l.vaults {
                v.name = crate::text::line(&v.name).into_owned();
            }
            self.local = Some(l);
        }
        if let Some(r) = u.remote {
            self.remote = Some(r);
            self.loading = false;
            self.stopped = false;
        }
        if let Some(d) = u.done {
            self.working = None;
            self.on_done(app, d);
        }
        self.rebuild(keep);
    }

    fn reset(&mut self) {
        *self = Self::default();
    }

    fn draw(&self, f: &mut Frame, app: &App, area: Rect) {
        draw::draw(self, f, app, area);
    }

    fn hints(&self, app: &App) -> Vec<(String, &'static str)> {
        let k = |a: Action| app.keymap.first_key(a);
        match (self.focus, self.selected()) {
            (Focus::Members, _) if self.shown_activity().is_some() => vec![
                (k(Action::History), "members"),
                (k(Action::Down), "scroll"),
                (k(Action::Back), "back"),
            ],
            (Focus::Members, _) => vec![
                (k(Action::Edit), "role"),
                (k(Action::Verify), "verify"),
                (k(Action::Delete), "remove"),
                (k(Action::Invite), "invite"),
                (k(Action::Back), "back"),
            ],
            (_, Some(Key::Vault(_))) => {
                let mut out = vec![(k(Action::Invite), "invite")];
                if self.shown_activity().is_some() {
                    out.push((k(Action::NextPane), "activity"));
                } else if self.selected_members().is_some_and(|m| !m.is_empty()) {
                    out.push((k(Action::NextPane), "members"));
                }
                if self
                    .selected_vault()
                    .is_some_and(|v| v.shared.is_some() && Self::manages(v))
                {
                    out.push((k(Action::History), "activity"));
                }
                out.push((k(Action::Edit), "rename"));
                if self
                    .selected_vault()
                    .is_some_and(|v| v.shared.as_ref().is_some_and(|s| !s.mine))
                {
                    out.push((k(Action::Delete), "leave"));
                }
                out.extend([
                    (k(Action::New), "new vault"),
                    (k(Action::ShareLink), "link item"),
                ]);
                out
            }
            (_, Some(Key::Invite(_))) => vec![
                (k(Action::Accept), "accept"),
                (k(Action::Delete), "decline"),
            ],
            (_, Some(Key::Link(_))) => vec![
                (k(Action::CopyField), "copy URL"),
                (k(Action::Delete), "revoke"),
                (k(Action::ShareLink), "new link"),
            ],
            (_, None) => vec![(k(Action::New), "new vault")],
        }
    }
}

/// Why sharing cannot reach a server now, if it cannot.
pub(crate) fn needs_server(app: &App) -> Option<&'static str> {
    match app.sync {
        SyncState::LocalOnly => Some(
            "Sharing needs a sync server: this vault is local only; `openk register --server URL \
             --email ADDRESS` connects one",
        ),
        SyncState::LoggedOut => Some("Logged out: log in (press :, then login) to share"),
        _ => None,
    }
}

/// Sends a change and shows it as under way in the share pane (Esc stops
/// waiting for it).
pub(crate) fn start(app: &mut App, what: &'static str, job: Job) {
    if let Some(p) = app.pane_as_mut::<SharePane>() {
        p.working = Some(what);
        p.stopped = false;
    }
    app.send(Request::Job(job));
}

/// Opens the create-link popup for an item (the vault pane's selected
/// one: [`crate::tui::panes::vault::VaultPane::share_target`]).
pub(crate) fn open_link_form(app: &mut App, item: Option<(Uuid, String, Vec<String>)>) {
    if let Some(why) = needs_server(app) {
        return app.warn(why);
    }
    match item {
        Some((id, name, labels)) => app
            .popups
            .push(Popup::ShareLink(LinkForm::new(id, name, labels))),
        None => app.warn(
            "Select the item to share in the vault pane (1) first, then p makes a link to it",
        ),
    }
}

impl SharePane {
    fn reload(&mut self, app: &mut App) {
        app.send(Request::Job(local()));
        if needs_server(app).is_none() {
            self.loading = true;
            self.stopped = false;
            app.send(Request::Job(load()));
        }
    }

    /// The vault with this id.
    #[must_use]
    pub fn vault(&self, id: Uuid) -> Option<&VaultInfo> {
        self.local.as_ref()?.vaults.iter().find(|v| v.id == id)
    }

    /// The activity log shown for the selected vault, if it is read.
    #[must_use]
    pub fn shown_activity(&self) -> Option<&[Activity]> {
        match (&self.activity, self.selected()) {
            (Some((id, Ok(lines))), Some(Key::Vault(sel))) if *id == sel => Some(lines),
            _ => None,
        }
    }

    /// The vault selected in the list, if a vault is.
    fn selected_vault(&self) -> Option<&VaultInfo> {
        match self.selected()? {
            Key::Vault(id) => self.vault(id),
            _ => None,
        }
    }

    /// The invitations, when the server gave them.
    #[must_use]
    pub fn invitations(&self) -> &[Invitation] {
        self.remote
            .as_ref()
            .and_then(|r| r.invitations.as_ref().ok())
            .map_or(&[], Vec::as_slice)
    }

    /// The share links, when the server gave them.
    #[must_use]
    pub fn links(&self) -> &[ShareInfo] {
        self.remote
            .as_ref()
            .and_then(|r| r.links.as_ref().ok())
            .map_or(&[], Vec::as_slice)
    }

    /// The members of a vault, or why they could not be read (`None`: not
    /// read, or not shared).
    #[must_use]
    pub fn members_of(&self, id: Uuid) -> Option<&Result<Vec<MemberView>, String>> {
        self.remote.as_ref()?.members.get(&id)
    }

    fn selected_members(&self) -> Option<&[MemberView]> {
        match self.selected()? {
            Key::Vault(id) => self.members_of(id)?.as_ref().ok().map(Vec::as_slice),
            _ => None,
        }
    }

    /// The member selected in the details (members focus only).
    #[must_use]
    pub fn selected_member(&self) -> Option<&MemberView> {
        if self.focus != Focus::Members || self.shown_activity().is_some() {
            return None;
        }
        self.selected_members()?.get(self.member_sel)
    }

    /// What the selected row stands for.
    #[must_use]
    pub fn selected(&self) -> Option<Key> {
        match self.rows.get(self.sel)? {
            Row::Vault(i) => Some(Key::Vault(self.local.as_ref()?.vaults.get(*i)?.id)),
            Row::Invite(i) => Some(Key::Invite(self.invitations().get(*i)?.vault_id)),
            Row::Link(i) => Some(Key::Link(self.links().get(*i)?.id.clone())),
            _ => None,
        }
    }

    /// The list's rows from what is known, keeping the selection on the
    /// same thing (or on the one just made).
    fn rebuild(&mut self, keep: Option<Key>) {
        let mut rows = vec![Row::Header(Section::Vaults)];
        let vaults = self.local.as_ref().map_or(0, |l| l.vaults.len());
        rows.extend((0..vaults).map(Row::Vault));
        if vaults == 0 {
            rows.push(Row::Empty(Section::Vaults));
        }
        for (section, n) in [
            (Section::Invitations, self.invitations().len()),
            (Section::Links, self.links().len()),
        ] {
            rows.push(Row::Header(section));
            if n == 0 {
                rows.push(Row::Empty(section));
            }
            rows.extend((0..n).map(|i| match section {
                Section::Invitations => Row::Invite(i),
                _ => Row::Link(i),
            }));
        }
        self.rows = rows;
        let want = self.pending.clone().or(keep);
        let found = want.as_ref().and_then(|k| self.position_of(k));
        if found.is_some() {
            self.pending = None;
        }
        self.sel = found.unwrap_or(self.sel);
        if !self.rows.get(self.sel).is_some_and(Row::selectable) {
            self.sel = self.nearest(self.sel);
        }
        let n = self.selected_members().map_or(0, <[MemberView]>::len);
        if n == 0 {
            self.focus = Focus::List;
        }
        self.member_sel = self.member_sel.min(n.saturating_sub(1));
    }

    fn position_of(&self, k: &Key) -> Option<usize> {
        (0..self.rows.len()).find(|&i| {
            let row = self.rows[i].clone();
            match (row, k) {
                (Row::Vault(j), Key::Vault(id)) => {
                    self.local
                        .as_ref()
                        .and_then(|l| l.vaults.get(j))
                        .map(|v| v.id)
                        == Some(*id)
                }
                (Row::Invite(j), Key::Invite(id)) => {
                    self.invitations().get(j).map(|x| x.vault_id) == Some(*id)
                }
                (Row::Link(j), Key::Link(id)) => self.links().get(j).is_some_and(|x| &x.id == id),
                _ => false,
            }
        })
    }

    /// The selectable row nearest to `i` (down first).
    fn nearest(&self, i: usize) -> usize {
        let below = (i..self.rows.len()).find(|&j| self.rows[j].selectable());
        let above = (0..i.min(self.rows.len()))
            .rev()
            .find(|&j| self.rows[j].selectable());
        below.or(above).unwrap_or(0)
    }

    fn move_by(&mut self, delta: i64) {
        if let Some(n) = self.shown_activity().map(<[Activity]>::len)
            && self.focus == Focus::Members
        {
            self.activity_top = step(self.activity_top, n, delta);
            return;
        }
        if self.focus == Focus::Members {
            let n = self.selected_members().map_or(0, <[MemberView]>::len);
            self.member_sel = step(self.member_sel, n, delta);
            return;
        }
        let before = self.sel;
        let mut i = step(self.sel, self.rows.len(), delta);
        // Skip headers and empty sections in the direction of travel.
        while !self.rows.get(i).is_some_and(Row::selectable) {
            let next = if delta < 0 {
                i.checked_sub(1)
            } else {
                Some(i + 1)
            };
            match next.filter(|n| *n < self.rows.len()) {
                Some(n) => i = n,
                None => {
                    i = if delta.abs() > 1 {
                        self.nearest(i)
                    } else {
                        before
                    };
                    break;
                }
            }
        }
        self.sel = i;
        if self.sel != before {
            self.member_sel = 0;
        }
    }
}

/// The roles in the order the role picker cycles.
pub const ROLES: [Role; 3] = [Role::Viewer, Role::Editor, Role::Manager];
