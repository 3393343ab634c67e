//! The TUI's top: [`App`] holds the screen, the pane in front, the open
//! popup, the status bar and the global actions; the panes
//! ([`super::panes`]) and popups ([`super::popups`]) own the rest. Keys go
//! to the popup, then the pane in front, then through the keymap to
//! [`App::act`] (the pane first, then the global action); engine work goes
//! out as [`Request`]s in `outbox` and comes back as [`Reply`]s, a job's
//! answer to the pane or popup it names. Nothing here draws or blocks.

use std::any::Any;
use std::cell::Cell;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use crossterm::event::{
    Event, KeyCode, KeyEvent, KeyEventKind, KeyModifiers, MouseButton, MouseEvent, MouseEventKind,
};
use ratatui::layout::{Position, Rect};
use uuid::Uuid;

use super::clip::Clipboard;
use super::clock::Clock;
use super::input::TextInput;
use super::keymap::{Action, Key, Keymap, Lookup};
use super::panes::devices::DevicesPane;
use super::panes::search::{self, SearchPane};
use super::panes::vault::{self, Focus, VaultPane};
use super::panes::{self, Pane, Vacant};
pub use super::popups::{
    Command, Compared, Confirmable, Difference, Form, GenState, HistoryState, PaletteItem,
    PasswdState, Popup, Row, RowKind, palette_matches, strength_of,
};
pub use super::screens::{CreateState, CreateStep, Screen, UnlockState};
use super::theme::Theme;
use super::worker::{Answer, Notice, Reply, Request, SyncState, To};
use crate::engine::model::{Entry, Field};

/// How long a status message stays.
const MESSAGE_FOR: Duration = Duration::from_secs(5);
/// A sync without any answer for this long shows "server not answering".
pub const NOT_ANSWERING_AFTER: Duration = Duration::from_secs(8);

/// Settings the app starts with.
#[derive(Debug, Clone)]
pub struct Settings {
    pub vault_dir: PathBuf,
    pub lock_after: Option<Duration>,
    pub clear_after: Option<Duration>,
    pub has_vault: bool,
}

/// The search pane.
/// Where things were last drawn, for the mouse (and the tests).
#[derive(Debug, Default, Clone, Copy)]
pub struct Areas {
    pub sidebar: Rect,
    pub list: Rect,
    pub details: Rect,
    pub results: Rect,
    pub tabs: Rect,
    /// What the open popup cleared.
    pub popup: Rect,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    Info,
    Error,
}

/// Everything on screen.
pub struct App {
    pub settings: Settings,
    pub theme: Theme,
    pub keymap: Keymap,
    pub clock: Box<dyn Clock>,
    pub(crate) clipboard: Box<dyn Clipboard>,
    pub outbox: Vec<Request>,
    pub quit: bool,
    pub screen: Screen,
    /// The pane in front.
    pub pane: To,
    /// Every pane, in tab order ([`panes::registry`]).
    panes: Vec<Box<dyn Pane>>,
    /// The open popups, the one with the keys last.
    pub popups: Vec<Popup>,
    pub sync: SyncState,
    /// When the sync in flight last heard from the server (or started).
    pub sync_since: Option<Instant>,
    pub message: Option<(String, Level, Instant)>,
    pub clip_until: Option<Instant>,
    pub last_input: Instant,
    pub busy: Option<&'static str>,
    pub spinner: usize,
    /// Where the tabs and the popup were last drawn.
    pub(crate) tabs_area: Cell<Rect>,
    pub(crate) popup_area: Cell<Rect>,
    pending_key: Option<Key>,
}

impl std::fmt::Debug for App {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("App")
            .field("pane", &self.pane)
            .finish_non_exhaustive()
    }
}

fn now_secs(clock: &dyn Clock) -> u64 {
    u64::try_from(clock.unix_millis() / 1000).unwrap_or(0)
}

/// The current TOTP code of a field at the clock's time, and seconds left.
#[must_use]
pub fn totp_at(field: &Field, clock: &dyn Clock) -> Option<(String, u64)> {
    let t = field.totp_at(now_secs(clock)).ok()?;
    Some((t.code, t.seconds_left))
}

impl App {
    #[must_use]
    pub fn new(
        settings: Settings,
        theme: Theme,
        keymap: Keymap,
        clock: Box<dyn Clock>,
        clipboard: Box<dyn Clipboard>,
    ) -> Self {
        let screen = if settings.has_vault {
            Screen::Unlock(UnlockState::default())
        } else {
            Screen::Create(CreateState {
                first: TextInput::new(),
                second: TextInput::new(),
                on_second: false,
                error: None,
                step: CreateStep::Password,
            })
        };
        let last_input = clock.now();
        Self {
            settings,
            theme,
            keymap,
            clock,
            clipboard,
            outbox: Vec::new(),
            quit: false,
            screen,
            pane: vault::TO,
            panes: panes::registry(),
            popups: Vec::new(),
            sync: SyncState::LocalOnly,
            sync_since: None,
            message: None,
            clip_until: None,
            last_input,
            busy: None,
            spinner: 0,
            tabs_area: Cell::new(Rect::default()),
            popup_area: Cell::new(Rect::default()),
            pending_key: None,
        }
    }

    pub(crate) fn say(&mut self, text: impl Into<String>) {
        self.message = Some((text.into(), Level::Info, self.clock.now()));
    }

    pub(crate) fn warn(&mut self, text: impl Into<String>) {
        self.message = Some((text.into(), Level::Error, self.clock.now()));
    }

    pub(crate) fn send(&mut self, r: Request) {
        self.outbox.push(r);
    }

    /// A failure for the status line: nothing is busy any more, and a copy
    /// waiting for its item is off.
    pub(crate) fn fail(&mut self, msg: String) {
        self.busy = None;
        self.with_vault(|v, _| v.forget_copy());
        self.warn(msg);
    }

    /// Stops waiting for the server: the network job in flight and those
    /// queued are dropped, and every pane stops showing them as under way.
    pub(crate) fn cancel_network(&mut self) {
        self.send(Request::Cancel);
        for p in &mut self.panes {
            p.cancelled();
        }
    }

    // ----------------------------------------------------------------- panes

    /// The pane with this id.
    #[must_use]
    pub fn pane_of(&self, id: To) -> Option<&dyn Pane> {
        self.panes.iter().find(|p| p.id() == id).map(AsRef::as_ref)
    }

    /// The pane of type `P`.
    #[must_use]
    pub fn pane_as<P: Pane>(&self) -> Option<&P> {
        self.panes
            .iter()
            .find_map(|p| (p.as_ref() as &dyn Any).downcast_ref::<P>())
    }

    /// The pane of type `P`, to change.
    pub fn pane_as_mut<P: Pane>(&mut self) -> Option<&mut P> {
        self.panes
            .iter_mut()
            .find_map(|p| (p.as_mut() as &mut dyn Any).downcast_mut::<P>())
    }

    /// The vault pane, which holds the list and the selected item.
    ///
    /// # Panics
    /// Only while the vault pane itself handles an event (it is out of the
    /// registry then, and has `self`).
    #[must_use]
    pub fn vault(&self) -> &VaultPane {
        self.pane_as::<VaultPane>()
            .expect("the vault pane is registered")
    }

    /// The vault pane, to change (see [`App::vault`]).
    pub fn vault_mut(&mut self) -> &mut VaultPane {
        self.pane_as_mut::<VaultPane>()
            .expect("the vault pane is registered")
    }

    /// The search pane.
    #[must_use]
    pub fn search(&self) -> &SearchPane {
        self.pane_as::<SearchPane>()
            .expect("the search pane is registered")
    }

    /// The devices pane.
    #[must_use]
    pub fn devices(&self) -> &DevicesPane {
        self.pane_as::<DevicesPane>()
            .expect("the devices pane is registered")
    }

    /// Runs `f` on the pane with this id, taken out of the registry for
    /// the time, so that it can be given the whole app.
    pub(crate) fn with_pane<R>(
        &mut self,
        id: To,
        f: impl FnOnce(&mut dyn Pane, &mut App) -> R,
    ) -> Option<R> {
        let i = self.panes.iter().position(|p| p.id() == id)?;
        let mut pane = std::mem::replace(&mut self.panes[i], Box::new(Vacant(id)));
        let out = f(pane.as_mut(), self);
        self.panes[i] = pane;
        Some(out)
    }

    /// Runs `f` on the vault pane (see [`App::with_pane`]).
    pub(crate) fn with_vault<R>(
        &mut self,
        f: impl FnOnce(&mut VaultPane, &mut App) -> R,
    ) -> Option<R> {
        self.with_pane(vault::TO, |p, app| {
            (p as &mut dyn Any)
                .downcast_mut::<VaultPane>()
                .map(|v| f(v, app))
        })
        .flatten()
    }

    /// The panes' ids, in tab order.
    #[must_use]
    pub fn pane_ids(&self) -> Vec<To> {
        self.panes.iter().map(|p| p.id()).collect()
    }

    /// The panes, in tab order.
    pub(crate) fn panes(&self) -> impl Iterator<Item = &dyn Pane> {
        self.panes.iter().map(AsRef::as_ref)
    }

    /// The open popup with the keys.
    #[must_use]
    pub fn popup(&self) -> Option<&Popup> {
        self.popups.last()
    }

    /// The topmost form among the open popups.
    #[must_use]
    pub fn form(&self) -> Option<&Form> {
        self.popups.iter().rev().find_map(|p| match p {
            Popup::Form(f) => Some(f.as_ref()),
            _ => None,
        })
    }

    /// Where things were last drawn.
    #[must_use]
    pub fn areas(&self) -> Areas {
        let v = self.vault();
        Areas {
            sidebar: v.areas.sidebar.get(),
            list: v.areas.list.get(),
            details: v.areas.details.get(),
            results: self.search().results.get(),
            tabs: self.tabs_area.get(),
            popup: self.popup_area.get(),
        }
    }

    /// The listed entry with this id.
    #[must_use]
    pub fn entry(&self, id: Uuid) -> Option<&Entry> {
        self.vault().entry(id)
    }

    /// The id of the item selected in the vault pane's list.
    #[must_use]
    pub fn selected_id(&self) -> Option<Uuid> {
        self.vault().selected_id()
    }

    /// Seconds until the idle lock, if it is on and the vault is open.
    #[must_use]
    pub fn lock_left(&self) -> Option<Duration> {
        let after = self.settings.lock_after?;
        matches!(self.screen, Screen::Main).then(|| {
            after.saturating_sub(self.clock.now().saturating_duration_since(self.last_input))
        })
    }

    /// Seconds until the clipboard is cleared.
    #[must_use]
    pub fn clip_left(&self) -> Option<Duration> {
        self.clip_until
            .map(|t| t.saturating_duration_since(self.clock.now()))
            .filter(|d| !d.is_zero())
    }

    /// Called a few times a second: auto-lock, expiring messages, spinner.
    pub fn tick(&mut self) {
        self.spinner = self.spinner.wrapping_add(1);
        if self.lock_left().is_some_and(|d| d.is_zero()) {
            // Locking forgets everything decrypted, an open form too: say so.
            let lost = self.popups.iter().any(Popup::has_changed_form);
            self.lock();
            self.say(if lost {
                "Locked after being idle; the unsaved form was discarded"
            } else {
                "Locked after being idle"
            });
        }
        if let Some((_, _, at)) = &self.message
            && self.clock.now().saturating_duration_since(*at) > MESSAGE_FOR
        {
            self.message = None;
        }
        if self.clip_left().is_none() {
            self.clip_until = None;
        }
    }

    /// Locks: forgets every decrypted thing and asks the worker to drop the vault.
    pub fn lock(&mut self) {
        self.send(Request::Lock);
        for p in &mut self.panes {
            p.reset();
        }
        self.popups.clear();
        self.pane = vault::TO;
        self.busy = None;
        self.sync_since = None;
        self.screen = Screen::Unlock(UnlockState::default());
    }

    /// Whether the sync in flight has heard nothing for a while.
    #[must_use]
    pub fn not_answering(&self) -> bool {
        matches!(self.sync, SyncState::Syncing)
            && self.sync_since.is_some_and(|t| {
                self.clock.now().saturating_duration_since(t) >= NOT_ANSWERING_AFTER
            })
    }

    /// The status bar's sync word: "syncing…" while a sync runs (until the
    /// server has been silent too long), never "synced" unless the last
    /// sync finished and nothing is pending.
    #[must_use]
    pub fn sync_label(&self) -> String {
        if self.not_answering() {
            "server not answering".into()
        } else {
            self.sync.label()
        }
    }

    /// Sets the sync state; a sync that moved restarts the silence clock.
    fn set_sync(&mut self, s: SyncState) {
        if matches!(s, SyncState::Syncing) {
            self.sync_since = Some(self.clock.now());
        } else {
            self.sync_since = None;
        }
        self.sync = s;
    }

    // ---------------------------------------------------------------- events

    /// A terminal event.
    pub fn handle_event(&mut self, ev: &Event) {
        match ev {
            Event::Key(k) if k.kind != KeyEventKind::Release => {
                self.last_input = self.clock.now();
                self.handle_key(*k);
            }
            Event::Mouse(m) => {
                self.last_input = self.clock.now();
                self.handle_mouse(*m);
            }
            _ => {}
        }
    }

    /// One key press.
    pub fn handle_key(&mut self, k: KeyEvent) {
        if k.code == KeyCode::Char('c') && k.modifiers.contains(KeyModifiers::CONTROL) {
            // A changed form asks first; anything else quits at once.
            let on_form = matches!(
                self.popups.last(),
                Some(Popup::Form(_) | Popup::Generator(_))
            );
            let form = self.popups.iter().rev().find_map(|p| match p {
                Popup::Form(f) => Some(f),
                _ => None,
            });
            if on_form
                && matches!(self.screen, Screen::Main)
                && form.is_some_and(|f| f.changed() && !f.saving)
            {
                if matches!(self.popups.last(), Some(Popup::Generator(_))) {
                    self.popups.pop();
                }
                self.popups.push(Popup::Discard);
            } else {
                self.quit = true;
            }
            return;
        }
        match &mut self.screen {
            Screen::Unlock(_) => return self.key_unlock(k),
            Screen::Create(_) => return self.key_create(k),
            Screen::Main => {}
        }
        if let Some(p) = self.popups.pop() {
            // The popup on top has the keys (the others wait under it).
            p.key(self, k);
            return;
        }
        let front_busy = self.pane_of(self.pane).is_some_and(|p| p.busy());
        if k.code == KeyCode::Esc && (matches!(self.sync, SyncState::Syncing) || front_busy) {
            // Stop waiting for the server; the work here is not touched.
            self.cancel_network();
            self.say(if matches!(self.sync, SyncState::Syncing) {
                "Sync cancelled; S syncs again"
            } else {
                "Stopped waiting for the server"
            });
            return;
        }
        if self
            .with_pane(self.pane, |p, app| p.key(app, k))
            .unwrap_or(false)
        {
            return;
        }
        let key = Key::from_event(&k);
        let action = match self.keymap.lookup(self.pending_key.take(), key) {
            Lookup::Action(a) => a,
            Lookup::Pending => {
                self.pending_key = Some(key);
                return;
            }
            Lookup::None => return,
        };
        self.act(action);
    }

    // --------------------------------------------------------------- actions

    /// Runs an action (from a key or the palette): the pane in front
    /// first, then the global actions; the actions on the selected item
    /// work from any pane.
    pub fn act(&mut self, a: Action) {
        if self
            .with_pane(self.pane, |p, app| p.act(app, a))
            .unwrap_or(false)
        {
            return;
        }
        match a {
            Action::Quit => self.quit = true,
            Action::Help => self.popups.push(Popup::Help),
            Action::Palette => {
                self.popups.push(Popup::Palette {
                    input: TextInput::new(),
                    sel: 0,
                });
            }
            Action::Search => {
                self.pane = search::TO;
                self.with_pane(search::TO, |p, app| p.shown(app));
            }
            Action::Back => self.pane = vault::TO,
            Action::NextPane | Action::PrevPane => {
                let forward = a == Action::NextPane;
                let ids = self.pane_ids();
                let i = ids.iter().position(|p| *p == self.pane).unwrap_or(0);
                let n = ids.len();
                let next = if forward {
                    (i + 1) % n
                } else {
                    (i + n - 1) % n
                };
                self.switch_pane(ids[next]);
                if self.pane == vault::TO {
                    self.vault_mut().focus = if forward {
                        Focus::Sidebar
                    } else {
                        Focus::Details
                    };
                }
            }
            Action::New => self.popups.push(Popup::Form(Box::new(Form::pick()))),
            Action::Sync => match &self.sync {
                SyncState::LocalOnly => self.warn("This vault is local only: nothing to sync"),
                SyncState::LoggedOut => {
                    self.warn("Logged out: login in the : palette (or `openk login`) syncs again");
                }
                _ => self.send(Request::Sync),
            },
            Action::Lock => {
                self.lock();
                self.say("Locked");
            }
            other => {
                let pane = self.panes().find(|p| p.action() == other).map(|p| p.id());
                if let Some(id) = pane {
                    self.switch_pane(id);
                } else {
                    self.with_vault(|v, app| v.item_action(app, other));
                }
            }
        }
    }

    fn switch_pane(&mut self, p: To) {
        self.pane = p;
        self.with_pane(p, |pane, app| pane.shown(app));
    }

    fn handle_mouse(&mut self, m: MouseEvent) {
        let at = Position::new(m.column, m.row);
        match m.kind {
            MouseEventKind::ScrollDown | MouseEventKind::ScrollUp => {
                self.with_pane(self.pane, |p, app| p.mouse(app, m));
            }
            MouseEventKind::Down(MouseButton::Left) => {
                if !self.popups.is_empty() || !matches!(self.screen, Screen::Main) {
                    return;
                }
                let tabs = self.tabs_area.get();
                if tabs.contains(at) {
                    let x = usize::from(at.x.saturating_sub(tabs.x));
                    // Tabs are drawn as " N Title " after the 8-column logo.
                    let mut start = 8;
                    let tabs: Vec<(To, usize)> =
                        self.panes().map(|p| (p.id(), p.title().len())).collect();
                    for (id, len) in tabs {
                        let w = len + 4;
                        if x >= start && x < start + w {
                            self.switch_pane(id);
                        }
                        start += w;
                    }
                    return;
                }
                self.with_pane(self.pane, |p, app| p.mouse(app, m));
            }
            _ => {}
        }
    }

    // --------------------------------------------------------------- replies

    /// An answer from the worker.
    #[allow(clippy::too_many_lines)]
    pub fn on_reply(&mut self, r: Reply) {
        match r {
            Reply::Unlocked { entries, sync } => {
                self.busy = None;
                self.screen = Screen::Main;
                self.last_input = self.clock.now();
                self.set_sync(sync);
                self.with_vault(|v, app| v.set_entries(app, entries));
                self.say("Unlocked. ? shows every key");
            }
            Reply::Created {
                entries,
                secret_key,
                kit,
            } => {
                self.busy = None;
                self.with_vault(|v, app| v.set_entries(app, entries));
                self.set_sync(SyncState::LocalOnly);
                if let Screen::Create(s) = &mut self.screen {
                    s.step = CreateStep::Kit { secret_key, kit };
                }
            }
            Reply::UnlockFailed(msg) => {
                self.busy = None;
                match &mut self.screen {
                    Screen::Unlock(s) => {
                        s.busy = false;
                        s.error = Some(msg);
                    }
                    Screen::Create(s) => {
                        s.step = CreateStep::Password;
                        s.on_second = false;
                        s.error = Some(msg);
                    }
                    Screen::Main => {}
                }
            }
            _ if !matches!(self.screen, Screen::Main) => {
                // A late answer for a vault that was locked since: drop it.
            }
            Reply::Entries(entries) => {
                self.with_vault(|v, app| {
                    v.set_entries(app, entries);
                    v.reread_stale_views(app);
                });
            }
            Reply::To(to, answer) => self.on_answer(to, answer),
            Reply::Sync(s) => self.set_sync(s),
            Reply::Done(msg) => {
                self.busy = None;
                self.say(msg);
            }
            Reply::Accepted => {
                if matches!(
                    self.popups.last(),
                    Some(Popup::Form(f)) if f.saving
                ) || matches!(self.popups.last(), Some(Popup::Passwd(p)) if p.saving)
                {
                    self.popups.pop();
                }
            }
            Reply::Rejected(msg) => {
                self.busy = None;
                match self.popups.last_mut() {
                    Some(Popup::Form(f)) if f.saving => {
                        f.saving = false;
                        if let Some(row) = f.row_for_message(&msg) {
                            f.sel = row;
                        }
                        f.error = Some(msg);
                    }
                    Some(Popup::Passwd(p)) if p.saving => {
                        p.saving = false;
                        if msg.contains("wrong password") {
                            p.fields[0].clear();
                            p.on = 0;
                            p.error =
                                Some("the current master password is wrong; type it again".into());
                        } else {
                            p.error = Some(msg);
                        }
                    }
                    _ => self.warn(msg),
                }
            }
            Reply::Error(msg) => self.fail(msg),
        }
        self.with_vault(|v, app| v.select_pending(app));
    }

    /// A job's answer: for the open popup, a pane, or the app itself.
    fn on_answer(&mut self, to: To, answer: Answer) {
        if self.popups.last().and_then(Popup::id) == Some(to)
            && let Some(mut popup) = self.popups.pop()
        {
            popup.answer(self, answer);
            self.popups.push(popup);
            return;
        }
        if to == To::APP {
            match answer.take::<Notice>() {
                Ok(Notice(msg)) => {
                    self.busy = None;
                    self.say(msg);
                }
                Err(a) => tracing::warn!(?a, "an answer the app does not read"),
            }
            return;
        }
        if self.with_pane(to, |p, app| p.answer(app, answer)).is_none() {
            tracing::warn!(to = to.0, "an answer for no pane");
        }
    }
}
