//! The TUI's state and its reactions: one [`App`] holds everything on
//! screen; keys become [`Action`]s through the keymap (text fields take
//! characters first); engine work goes out as [`Request`]s in `outbox` and
//! comes back as [`Reply`]s. Nothing here draws or blocks.

use std::any::Any;
use std::cell::Cell;
use std::collections::HashSet;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use crossterm::event::{
    Event, KeyCode, KeyEvent, KeyEventKind, KeyModifiers, MouseButton, MouseEvent, MouseEventKind,
};
use ratatui::layout::{Position, Rect};
use uuid::Uuid;
use zeroize::Zeroizing;

use super::clip::Clipboard;
use super::clock::Clock;
use super::input::{Edit, TextInput};
use super::keymap::{Action, Key, Keymap, Lookup};
use super::panes::devices::{self, DevicesPane};
use super::panes::search::{self, SearchPane};
use super::panes::vault::{self, Focus, VaultPane};
use super::panes::{self, Pane, Vacant};
use super::popups::history::{self, OldVersion};
use super::popups::passwd;
use super::theme::Theme;
use super::worker::{Answer, Notice, Reply, Request, SyncState, To};
use crate::engine::generator::{self, PassphraseSpec, PasswordSpec};
use crate::engine::model::{
    Entry, Field, FieldKind, Item, ItemKind, field_rank, label, standard_fields,
};
use crate::engine::strength;
use crate::engine::{
    ExposeSecret, ItemDraft, ItemPart, ItemPatch, SecretString, VersionSummary, check_draft,
};

/// How long a status message stays.
const MESSAGE_FOR: Duration = Duration::from_secs(5);
/// A sync without any answer for this long shows "server not answering".
pub const NOT_ANSWERING_AFTER: Duration = Duration::from_secs(8);
/// A new master password below zxcvbn's floor (engine::strength).
const TOO_WEAK: &str = "that password is too easy to guess; choose another \
    (five or more random words are strong), or `openk init --weak-password` / \
    `openk passwd --weak-password` to keep it";

/// Settings the app starts with.
#[derive(Debug, Clone)]
pub struct Settings {
    pub vault_dir: PathBuf,
    pub lock_after: Option<Duration>,
    pub clear_after: Option<Duration>,
    pub has_vault: bool,
}

/// The unlock screen.
#[derive(Debug, Default)]
pub struct UnlockState {
    pub input: TextInput,
    pub error: Option<String>,
    pub busy: bool,
}

/// The steps of the first-run flow.
#[derive(Debug)]
pub enum CreateStep {
    Password,
    Working,
    Kit {
        secret_key: Zeroizing<String>,
        kit: Result<PathBuf, String>,
    },
}

/// The first-run create-vault flow.
#[derive(Debug)]
pub struct CreateState {
    pub first: TextInput,
    pub second: TextInput,
    pub on_second: bool,
    pub error: Option<String>,
    pub step: CreateStep,
}

#[derive(Debug)]
pub enum Screen {
    Unlock(UnlockState),
    Create(CreateState),
    Main,
}

/// What a confirmation will do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Confirmable {
    Trash(Uuid, String),
    Revoke(Uuid, String),
    /// Destroy a trashed item and its history.
    Purge(Uuid, String),
}

/// One row of the add/edit form.
#[derive(Debug, Clone)]
pub struct Row {
    pub label: String,
    pub value: TextInput,
    pub kind: RowKind,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RowKind {
    Name,
    Field { kind: FieldKind, custom: bool },
    Tags,
    Folder,
    Favorite,
}

/// The add/edit form.
#[derive(Debug)]
pub struct Form {
    pub editing: Option<Uuid>,
    pub kind: ItemKind,
    /// Choosing the kind of a new item (index into `ItemKind::ALL`).
    pub picking: Option<usize>,
    pub rows: Vec<Row>,
    pub sel: usize,
    pub reveal: bool,
    /// Typing the label of a new custom field.
    pub new_label: Option<TextInput>,
    pub error: Option<String>,
    /// Sent to the engine; waiting for its answer (keys wait too).
    pub saving: bool,
    original: Option<Item>,
    /// The rows as the form opened, to tell whether anything changed.
    pristine: Vec<(String, String, RowKind)>,
}

/// The password generator popup.
#[derive(Debug)]
pub struct GenState {
    pub words: bool,
    pub length: usize,
    pub word_count: usize,
    pub symbols: bool,
    pub digits: bool,
    pub value: Zeroizing<String>,
    pub entropy: f64,
    pub error: Option<String>,
}

/// The history popup.
#[derive(Debug)]
pub struct HistoryState {
    pub id: Uuid,
    pub name: String,
    pub versions: Vec<VersionSummary>,
    pub sel: usize,
    /// The compared version and how it differs from the current one.
    pub compared: Option<Compared>,
    pub reveal: bool,
}

/// One field that differs between two versions.
#[derive(Debug)]
pub struct Difference {
    pub what: String,
    pub old: Option<Zeroizing<String>>,
    pub new: Option<Zeroizing<String>>,
    pub concealed: bool,
}

#[derive(Debug)]
pub struct Compared {
    pub version: u64,
    pub current: u64,
    pub differences: Vec<Difference>,
}

#[derive(Debug)]
pub enum Popup {
    Help,
    Palette {
        input: TextInput,
        sel: usize,
    },
    Confirm(Confirmable),
    Form(Box<Form>),
    Generator(Box<Form>, GenState),
    /// Asks before throwing away a changed form; No returns to it.
    Discard(Box<Form>),
    History(HistoryState),
    Rename {
        id: Uuid,
        input: TextInput,
    },
    Passwd(PasswdState),
}

/// The change-master-password popup (palette `passwd`).
#[derive(Debug, Default)]
pub struct PasswdState {
    /// The current password, the new one, and the new one again.
    pub fields: [TextInput; 3],
    pub on: usize,
    pub error: Option<String>,
    pub saving: bool,
}

/// The palette's own commands, beside every key binding's action.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Command {
    Purge,
    Passwd,
    Login,
    Logout,
    SyncVerify,
}

impl Command {
    pub const ALL: [Self; 5] = [
        Self::Purge,
        Self::Passwd,
        Self::Login,
        Self::Logout,
        Self::SyncVerify,
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
    pub popup: Option<Popup>,
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
            popup: None,
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
            let lost = matches!(
                &self.popup,
                Some(Popup::Form(f) | Popup::Generator(f, _) | Popup::Discard(f)) if f.changed()
            );
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
        self.popup = None;
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
            match self.popup.take() {
                Some(Popup::Form(form) | Popup::Generator(form, _))
                    if matches!(self.screen, Screen::Main) && form.changed() && !form.saving =>
                {
                    self.popup = Some(Popup::Discard(form));
                }
                other => {
                    self.popup = other;
                    self.quit = true;
                }
            }
            return;
        }
        match &mut self.screen {
            Screen::Unlock(_) => return self.key_unlock(k),
            Screen::Create(_) => return self.key_create(k),
            Screen::Main => {}
        }
        if self.popup.is_some() {
            return self.key_popup(k);
        }
        let front_busy = self.pane_of(self.pane).is_some_and(|p| p.busy());
        if k.code == KeyCode::Esc && (matches!(self.sync, SyncState::Syncing) || front_busy) {
            // Stop waiting for the server; the work here is not touched.
            self.send(Request::Cancel);
            for p in &mut self.panes {
                p.cancelled();
            }
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

    fn key_unlock(&mut self, k: KeyEvent) {
        let Screen::Unlock(s) = &mut self.screen else {
            return;
        };
        if k.code == KeyCode::Esc {
            self.quit = true;
            return;
        }
        if s.busy {
            return;
        }
        match k.code {
            KeyCode::Enter if !s.input.is_empty() => {
                let password = SecretString::from(s.input.take().as_str().to_owned());
                s.busy = true;
                s.error = None;
                self.busy = Some("Unlocking");
                self.send(Request::Unlock(password));
            }
            _ => {
                s.input.handle(k);
            }
        }
    }

    fn key_create(&mut self, k: KeyEvent) {
        let Screen::Create(s) = &mut self.screen else {
            return;
        };
        match &s.step {
            CreateStep::Working => {}
            CreateStep::Kit { .. } => {
                if k.code == KeyCode::Enter {
                    self.screen = Screen::Main;
                    self.last_input = self.clock.now();
                    self.say("Vault created. Press n to add your first item, ? for help");
                }
            }
            CreateStep::Password => match k.code {
                KeyCode::Esc => self.quit = true,
                KeyCode::Tab | KeyCode::BackTab | KeyCode::Up | KeyCode::Down => {
                    s.on_second = !s.on_second;
                }
                KeyCode::Enter => {
                    if s.first.is_empty() {
                        s.error = Some("choose a master password".into());
                    } else if strength_of(s.first.as_str()).2 {
                        s.error = Some(TOO_WEAK.into());
                        s.second.clear();
                        s.on_second = false;
                    } else if !s.on_second {
                        s.on_second = true;
                    } else if s.first.as_str() != s.second.as_str() {
                        s.error = Some("the two passwords differ; type the second again".into());
                        s.second.clear();
                    } else {
                        let password = SecretString::from(s.first.take().as_str().to_owned());
                        s.second.clear();
                        s.error = None;
                        s.step = CreateStep::Working;
                        self.busy = Some("Creating your vault");
                        self.send(Request::Create(password));
                    }
                }
                _ => {
                    let target = if s.on_second {
                        &mut s.second
                    } else {
                        &mut s.first
                    };
                    if target.handle(k) == Edit::Changed {
                        s.error = None;
                    }
                }
            },
        }
    }

    fn key_popup(&mut self, k: KeyEvent) {
        let Some(popup) = self.popup.take() else {
            return;
        };
        match popup {
            Popup::Help => {
                if !matches!(
                    k.code,
                    KeyCode::Esc | KeyCode::Char('?' | 'q') | KeyCode::Enter
                ) {
                    self.popup = Some(Popup::Help);
                }
            }
            Popup::Palette { mut input, mut sel } => match k.code {
                KeyCode::Esc => {}
                KeyCode::Enter => match palette_matches(input.as_str()).get(sel) {
                    Some(PaletteItem::Action(a)) => self.act(*a),
                    Some(PaletteItem::Command(c)) => self.command(*c),
                    None => {}
                },
                KeyCode::Up => {
                    sel = sel.saturating_sub(1);
                    self.popup = Some(Popup::Palette { input, sel });
                }
                KeyCode::Down => {
                    sel = (sel + 1).min(palette_matches(input.as_str()).len().saturating_sub(1));
                    self.popup = Some(Popup::Palette { input, sel });
                }
                _ => {
                    if input.handle(k) == Edit::Changed {
                        sel = 0;
                    }
                    self.popup = Some(Popup::Palette { input, sel });
                }
            },
            Popup::Confirm(what) => match k.code {
                KeyCode::Char('y' | 'Y') | KeyCode::Enter => match what {
                    Confirmable::Trash(id, _) => self.send(Request::Job(vault::trash(id))),
                    Confirmable::Revoke(id, _) => self.send(Request::Job(devices::revoke(id))),
                    Confirmable::Purge(id, _) => {
                        self.busy = Some("Purging");
                        self.send(Request::Job(vault::purge(id)));
                    }
                },
                KeyCode::Char('n' | 'N') | KeyCode::Esc => self.say("Cancelled"),
                _ => self.popup = Some(Popup::Confirm(what)),
            },
            Popup::Discard(form) => match k.code {
                KeyCode::Char('y' | 'Y') => self.say("Discarded the changes"),
                KeyCode::Char('n' | 'N') | KeyCode::Esc | KeyCode::Enter => {
                    self.popup = Some(Popup::Form(form));
                }
                _ => self.popup = Some(Popup::Discard(form)),
            },
            Popup::Rename { id, mut input } => match k.code {
                KeyCode::Esc => self.say("Cancelled"),
                KeyCode::Enter if !input.as_str().trim().is_empty() => {
                    self.send(Request::Job(devices::rename(
                        id,
                        input.as_str().trim().to_owned(),
                    )));
                }
                _ => {
                    input.handle(k);
                    self.popup = Some(Popup::Rename { id, input });
                }
            },
            Popup::Form(form) => self.key_form(form, k),
            Popup::Generator(form, g) => self.key_generator(form, g, k),
            Popup::History(h) => self.key_history(h, k),
            Popup::Passwd(p) => self.key_passwd(p, k),
        }
    }

    fn key_passwd(&mut self, mut p: PasswdState, k: KeyEvent) {
        if p.saving {
            if k.code == KeyCode::Esc {
                // The engine goes on; its answer lands in the status line.
                self.say(
                    "Still changing the master password; the status line will say how it went",
                );
            } else {
                self.popup = Some(Popup::Passwd(p));
            }
            return;
        }
        match k.code {
            KeyCode::Esc => {
                self.say("Cancelled: the master password is unchanged");
                return;
            }
            KeyCode::Tab | KeyCode::Down => p.on = (p.on + 1) % 3,
            KeyCode::BackTab | KeyCode::Up => p.on = (p.on + 2) % 3,
            KeyCode::Enter if p.on < 2 => {
                if p.fields[p.on].is_empty() {
                    p.error = Some(
                        if p.on == 0 {
                            "type the current master password"
                        } else {
                            "choose a new master password"
                        }
                        .into(),
                    );
                } else {
                    p.on += 1;
                }
            }
            KeyCode::Enter => {
                let [current, new, again] = &mut p.fields;
                if current.is_empty() {
                    p.error = Some("type the current master password".into());
                    p.on = 0;
                } else if new.is_empty() {
                    p.error = Some("choose a new master password".into());
                    p.on = 1;
                } else if strength_of(new.as_str()).2 {
                    p.error = Some(TOO_WEAK.into());
                    again.clear();
                    p.on = 1;
                } else if new.as_str() != again.as_str() {
                    p.error = Some("the two new passwords differ; type the second again".into());
                    again.clear();
                } else {
                    let request = Request::Job(passwd::change_password(
                        SecretString::from(current.as_str().to_owned()),
                        SecretString::from(new.as_str().to_owned()),
                    ));
                    p.error = None;
                    p.saving = true;
                    self.busy = Some("Changing the master password (deriving keys)");
                    self.send(Request::Submit(Box::new(request)));
                }
            }
            _ => {
                if p.fields[p.on].handle(k) == Edit::Changed {
                    p.error = None;
                }
            }
        }
        self.popup = Some(Popup::Passwd(p));
    }

    /// Runs one of the palette's own commands.
    fn command(&mut self, c: Command) {
        let remote = match &self.sync {
            SyncState::LocalOnly => Err(
                "This vault is local only: `openk register --server URL --email ADDRESS` connects a server",
            ),
            _ => Ok(()),
        };
        match c {
            Command::Purge => {
                let Some(e) = self.selected_id().and_then(|id| self.entry(id)) else {
                    return self.warn("Select the trashed item to purge first");
                };
                if e.overview.trashed_at.is_none() {
                    return self.warn(format!(
                        "Only an item in the trash can be purged: {} moves {:?} there first",
                        self.keymap.first_key(Action::Delete),
                        e.overview.name
                    ));
                }
                self.popup = Some(Popup::Confirm(Confirmable::Purge(
                    e.r.id,
                    e.overview.name.clone(),
                )));
            }
            Command::Passwd => self.popup = Some(Popup::Passwd(PasswdState::default())),
            Command::Login => match remote {
                Err(m) => self.warn(m),
                Ok(()) => {
                    self.busy = Some("Logging in");
                    self.send(Request::Relogin);
                }
            },
            Command::Logout => match (remote, &self.sync) {
                (Err(m), _) => self.warn(m),
                (_, SyncState::LoggedOut) => {
                    self.warn("Already logged out; the palette's login signs in again");
                }
                _ => {
                    self.busy = Some("Logging out");
                    self.send(Request::Logout);
                }
            },
            Command::SyncVerify => match (remote, &self.sync) {
                (Err(m), _) => self.warn(m),
                (_, SyncState::LoggedOut) => {
                    self.warn("Logged out: the palette's login signs in again, then sync --verify");
                }
                _ => {
                    self.busy = Some("Syncing and verifying the server's copy");
                    self.send(Request::SyncVerify);
                }
            },
        }
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
            Action::Help => self.popup = Some(Popup::Help),
            Action::Palette => {
                self.popup = Some(Popup::Palette {
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
            Action::New => self.popup = Some(Popup::Form(Box::new(Form::pick()))),
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
                if self.popup.is_some() || !matches!(self.screen, Screen::Main) {
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
            Reply::Accepted => match self.popup.take() {
                Some(Popup::Form(f)) if f.saving => {}
                Some(Popup::Passwd(p)) if p.saving => {}
                other => self.popup = other,
            },
            Reply::Rejected(msg) => {
                self.busy = None;
                match &mut self.popup {
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
        if to == history::TO {
            return self.on_version(answer);
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

    /// An old version for the history popup to compare.
    fn on_version(&mut self, answer: Answer) {
        let Ok(OldVersion(old)) = answer.take::<OldVersion>() else {
            return;
        };
        let mut popup = self.popup.take();
        if let Some(Popup::History(h)) = &mut popup
            && h.id == old.r.id
            && let Some(cur) = self.vault().detail.as_ref().filter(|d| d.r.id == old.r.id)
        {
            h.compared = Some(Compared {
                version: old.r.version,
                current: cur.r.version,
                differences: differences(&old, cur),
            });
        }
        self.popup = popup;
    }

    // ------------------------------------------------------------------ form

    fn key_form(&mut self, mut form: Box<Form>, k: KeyEvent) {
        let ctrl = k.modifiers.contains(KeyModifiers::CONTROL);
        if form.saving {
            // The engine has it: wait for its answer (a few milliseconds).
            self.popup = Some(Popup::Form(form));
            return;
        }
        if let Some(i) = form.picking {
            match k.code {
                KeyCode::Esc => return,
                KeyCode::Up | KeyCode::Char('k') => form.picking = Some(i.saturating_sub(1)),
                KeyCode::Down | KeyCode::Char('j') => {
                    form.picking = Some((i + 1).min(ItemKind::ALL.len() - 1));
                }
                KeyCode::Enter => *form = Form::new(ItemKind::ALL[i]),
                _ => {}
            }
            self.popup = Some(Popup::Form(form));
            return;
        }
        if let Some(mut label) = form.new_label.take() {
            match k.code {
                KeyCode::Esc => {}
                KeyCode::Enter if !label.as_str().trim().is_empty() => {
                    let at = form
                        .rows
                        .iter()
                        .position(|r| r.kind == RowKind::Tags)
                        .unwrap_or(form.rows.len());
                    form.rows.insert(
                        at,
                        Row::field(label.as_str().trim(), "", FieldKind::Text, true),
                    );
                    form.sel = at;
                }
                _ => {
                    label.handle(k);
                    form.new_label = Some(label);
                }
            }
            self.popup = Some(Popup::Form(form));
            return;
        }
        let n = form.rows.len();
        match k.code {
            KeyCode::Esc => {
                if form.changed() {
                    self.popup = Some(Popup::Discard(form));
                } else {
                    self.say("Closed; nothing was changed");
                }
                return;
            }
            KeyCode::Char('s') if ctrl => match form.build() {
                Ok(built) => {
                    let request = match built {
                        Built::Draft(d) => Request::Job(vault::add(*d)),
                        Built::Patch(id, base, p) => {
                            Request::Job(vault::update(id, Some(base), *p))
                        }
                        Built::Nothing => {
                            self.say("Nothing changed");
                            return;
                        }
                    };
                    form.saving = true;
                    form.error = None;
                    self.send(Request::Submit(Box::new(request)));
                }
                Err((row, e)) => {
                    form.sel = row;
                    form.error = Some(e);
                }
            },
            KeyCode::Char('g') if ctrl => {
                if form.rows[form.sel].is_secret() {
                    let g = GenState::new();
                    self.popup = Some(Popup::Generator(form, g));
                    return;
                }
                form.error = Some("the generator fills secret fields: select one first".into());
            }
            KeyCode::Char('n') if ctrl => form.new_label = Some(TextInput::new()),
            KeyCode::Char('x') if ctrl => {
                if matches!(form.rows[form.sel].kind, RowKind::Field { .. }) {
                    form.rows.remove(form.sel);
                    form.sel = form.sel.min(form.rows.len() - 1);
                } else {
                    form.error = Some("only fields can be removed".into());
                }
            }
            KeyCode::Char('t') if ctrl => {
                if let RowKind::Field { kind, custom: true } = &mut form.rows[form.sel].kind {
                    *kind = if *kind == FieldKind::Secret {
                        FieldKind::Text
                    } else {
                        FieldKind::Secret
                    };
                }
            }
            KeyCode::Char('r') if ctrl => form.reveal = !form.reveal,
            KeyCode::BackTab => form.sel = (form.sel + n - 1) % n,
            KeyCode::Tab => form.sel = (form.sel + 1) % n,
            KeyCode::Char(' ') if form.rows[form.sel].kind == RowKind::Favorite => {
                let v = &mut form.rows[form.sel].value;
                let on = v.as_str() == "yes";
                v.set(if on { "no" } else { "yes" });
            }
            _ if form.rows[form.sel].kind == RowKind::Favorite => match k.code {
                KeyCode::Up => form.sel = (form.sel + n - 1) % n,
                KeyCode::Down | KeyCode::Enter => form.sel = (form.sel + 1) % n,
                _ => {}
            },
            _ => match form.rows[form.sel].value.handle(k) {
                Edit::Changed => form.error = None,
                Edit::Moved => {}
                // Enter on a one-line field, and Up/Down past a field's
                // first or last line, go to the next or previous field.
                Edit::Ignored => match k.code {
                    KeyCode::Up => form.sel = (form.sel + n - 1) % n,
                    KeyCode::Down | KeyCode::Enter => form.sel = (form.sel + 1) % n,
                    _ => {}
                },
            },
        }
        self.popup = Some(Popup::Form(form));
    }

    fn key_generator(&mut self, mut form: Box<Form>, mut g: GenState, k: KeyEvent) {
        match k.code {
            KeyCode::Esc => {
                self.popup = Some(Popup::Form(form));
                return;
            }
            KeyCode::Enter => {
                let row = &mut form.rows[form.sel];
                row.value.set(g.value.as_str());
                form.error = None;
                self.popup = Some(Popup::Form(form));
                return;
            }
            KeyCode::Tab | KeyCode::Char('w') => g.words = !g.words,
            KeyCode::Left | KeyCode::Char('-' | 'h') => {
                if g.words {
                    g.word_count = g.word_count.saturating_sub(1).max(3);
                } else {
                    g.length = g.length.saturating_sub(1).max(8);
                }
            }
            KeyCode::Right | KeyCode::Char('+' | 'l') => {
                if g.words {
                    g.word_count = (g.word_count + 1).min(12);
                } else {
                    g.length = (g.length + 1).min(128);
                }
            }
            KeyCode::Char('s') => g.symbols = !g.symbols,
            KeyCode::Char('d') => g.digits = !g.digits,
            _ => {}
        }
        g.generate();
        self.popup = Some(Popup::Generator(form, g));
    }

    fn key_history(&mut self, mut h: HistoryState, k: KeyEvent) {
        match k.code {
            KeyCode::Esc | KeyCode::Char('q') => return,
            KeyCode::Up | KeyCode::Char('k') => {
                h.sel = h.sel.saturating_sub(1);
                h.compared = None;
            }
            KeyCode::Down | KeyCode::Char('j') => {
                h.sel = (h.sel + 1).min(h.versions.len().saturating_sub(1));
                h.compared = None;
            }
            KeyCode::Char('r') => h.reveal = !h.reveal,
            KeyCode::Enter => {
                if let Some(v) = h.versions.get(h.sel)
                    && v.damaged.is_none()
                {
                    self.send(Request::Job(history::version(h.id, v.version)));
                    if self.vault().detail.as_ref().is_none_or(|d| d.r.id != h.id) {
                        self.send(Request::Job(vault::read_item(h.id)));
                    }
                }
            }
            _ => {}
        }
        self.popup = Some(Popup::History(h));
    }
}

/// The field `r` reveals first: the kind's main secret, else the first
/// concealed field, else the first.

/// The fields (and name, tags, folder, favourite) that differ between two
/// versions of an item.
fn differences(old: &Item, new: &Item) -> Vec<Difference> {
    let mut out = Vec::new();
    let text = |s: &str| Some(Zeroizing::new(s.to_owned()));
    let (o, n) = (&old.overview, &new.overview);
    if o.name != n.name {
        out.push(Difference {
            what: "name".into(),
            old: text(&o.name),
            new: text(&n.name),
            concealed: false,
        });
    }
    let mut labels: Vec<&str> = old
        .details
        .fields
        .iter()
        .chain(&new.details.fields)
        .map(|f| f.label.as_str())
        .collect();
    labels.dedup();
    let mut seen = HashSet::new();
    for l in labels {
        if !seen.insert(l.to_lowercase()) {
            continue;
        }
        let a: Vec<&Field> = old.fields_named(l).collect();
        let b: Vec<&Field> = new.fields_named(l).collect();
        let same = a.len() == b.len()
            && a.iter()
                .zip(&b)
                .all(|(x, y)| x.value == y.value && x.kind == y.kind);
        if !same {
            let join = |fs: &[&Field]| {
                (!fs.is_empty()).then(|| {
                    Zeroizing::new(
                        fs.iter()
                            .map(|f| f.value.expose())
                            .collect::<Vec<_>>()
                            .join(", "),
                    )
                })
            };
            out.push(Difference {
                what: l.to_owned(),
                old: join(&a),
                new: join(&b),
                concealed: a.iter().chain(&b).any(|f| f.is_concealed()),
            });
        }
    }
    if o.tags != n.tags {
        out.push(Difference {
            what: "tags".into(),
            old: text(&o.tags.join(", ")),
            new: text(&n.tags.join(", ")),
            concealed: false,
        });
    }
    if o.folder != n.folder {
        out.push(Difference {
            what: "folder".into(),
            old: o.folder.as_deref().and_then(text),
            new: n.folder.as_deref().and_then(text),
            concealed: false,
        });
    }
    if o.favorite != n.favorite {
        out.push(Difference {
            what: "favorite".into(),
            old: text(if o.favorite { "yes" } else { "no" }),
            new: text(if n.favorite { "yes" } else { "no" }),
            concealed: false,
        });
    }
    if o.trashed_at.is_some() != n.trashed_at.is_some() {
        out.push(Difference {
            what: "trash".into(),
            old: text(if o.trashed_at.is_some() {
                "in trash"
            } else {
                "live"
            }),
            new: text(if n.trashed_at.is_some() {
                "in trash"
            } else {
                "live"
            }),
            concealed: false,
        });
    }
    out
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

enum Built {
    Draft(Box<ItemDraft>),
    /// A patch made on version `u64` of the item.
    Patch(Uuid, u64, Box<ItemPatch>),
    Nothing,
}

impl Row {
    fn is_secret(&self) -> bool {
        matches!(
            self.kind,
            RowKind::Field {
                kind: FieldKind::Secret,
                ..
            }
        )
    }

    fn field(label: &str, value: &str, kind: FieldKind, custom: bool) -> Self {
        Self {
            label: label.to_owned(),
            value: if kind == FieldKind::Multiline {
                TextInput::multiline(value)
            } else {
                TextInput::with_text(value)
            },
            kind: RowKind::Field { kind, custom },
        }
    }

    fn plain(label: &str, value: &str, kind: RowKind) -> Self {
        Self {
            label: label.to_owned(),
            value: TextInput::with_text(value),
            kind,
        }
    }
}

fn is_standard(kind: ItemKind, l: &str) -> bool {
    standard_fields(kind).iter().any(|(s, _)| *s == l)
}

impl Form {
    /// The first step of a new item: choose its kind.
    #[must_use]
    pub fn pick() -> Self {
        Self {
            editing: None,
            kind: ItemKind::Login,
            picking: Some(0),
            rows: Vec::new(),
            sel: 0,
            reveal: false,
            new_label: None,
            error: None,
            saving: false,
            original: None,
            pristine: Vec::new(),
        }
    }

    /// An empty form for a new item of `kind`.
    #[must_use]
    pub fn new(kind: ItemKind) -> Self {
        let mut rows = vec![Row::plain("name", "", RowKind::Name)];
        rows.extend(
            standard_fields(kind)
                .iter()
                .map(|(l, k)| Row::field(l, "", *k, false)),
        );
        rows.extend(Self::trailer("", "", false));
        let mut form = Self {
            kind,
            picking: None,
            rows,
            ..Self::pick()
        };
        form.pristine = form.snapshot();
        form
    }

    fn trailer(tags: &str, folder: &str, fav: bool) -> [Row; 3] {
        [
            Row::plain("tags", tags, RowKind::Tags),
            Row::plain("folder", folder, RowKind::Folder),
            Row::plain(
                "favorite",
                if fav { "yes" } else { "no" },
                RowKind::Favorite,
            ),
        ]
    }

    /// A form holding an existing item.
    #[must_use]
    pub fn edit(item: &Item) -> Self {
        let kind = item.overview.kind;
        let mut rows = vec![Row::plain("name", &item.overview.name, RowKind::Name)];
        for f in &item.details.fields {
            rows.push(Row::field(
                &f.label,
                f.value.expose(),
                f.kind,
                !is_standard(kind, &f.label),
            ));
        }
        for (l, k) in standard_fields(kind) {
            if item.field(l).is_none() {
                rows.push(Row::field(l, "", *k, false));
            }
        }
        let o = &item.overview;
        rows.extend(Self::trailer(
            &o.tags.join(", "),
            o.folder.as_deref().unwrap_or(""),
            o.favorite,
        ));
        let mut form = Self::new(kind);
        form.editing = Some(item.r.id);
        form.rows = rows;
        form.original = Some(item.clone());
        form.pristine = form.snapshot();
        form
    }

    fn snapshot(&self) -> Vec<(String, String, RowKind)> {
        self.rows
            .iter()
            .map(|r| (r.label.clone(), r.value.as_str().to_owned(), r.kind))
            .collect()
    }

    /// Whether anything was typed, added or removed since the form opened.
    #[must_use]
    pub fn changed(&self) -> bool {
        self.picking.is_none()
            && (self.rows.len() != self.pristine.len()
                || self
                    .rows
                    .iter()
                    .zip(&self.pristine)
                    .any(|(r, (l, v, k))| r.label != *l || r.value.as_str() != v || r.kind != *k))
    }

    fn row_of(&self, kind: RowKind) -> usize {
        self.rows.iter().position(|r| r.kind == kind).unwrap_or(0)
    }

    fn value_of(&self, kind: RowKind) -> &str {
        self.rows
            .iter()
            .find(|r| r.kind == kind)
            .map_or("", |r| r.value.as_str())
    }

    /// The row a validation message from the engine is about, when it names
    /// one (a quoted field label, the tags, the folder, the name, TOTP).
    #[must_use]
    pub fn row_for_message(&self, msg: &str) -> Option<usize> {
        if msg.starts_with("an item named ") {
            // The name is taken (the quoted name may hold any word).
            return Some(self.row_of(RowKind::Name));
        }
        let lower = msg.to_lowercase();
        if let Some(i) = self.rows.iter().position(|r| {
            matches!(r.kind, RowKind::Field { .. })
                && lower.contains(&format!("{:?}", r.label.to_lowercase()))
        }) {
            return Some(i);
        }
        if lower.contains("totp") {
            return self.rows.iter().position(|r| {
                matches!(
                    r.kind,
                    RowKind::Field {
                        kind: FieldKind::Totp,
                        ..
                    }
                )
            });
        }
        [
            ("tag", RowKind::Tags),
            ("folder", RowKind::Folder),
            ("name", RowKind::Name),
        ]
        .into_iter()
        .find(|(word, _)| lower.contains(word))
        .map(|(_, kind)| self.row_of(kind))
    }

    fn fields(&self) -> Vec<Field> {
        let mut fields: Vec<Field> = self
            .rows
            .iter()
            .filter_map(|r| match r.kind {
                RowKind::Field { kind, .. } if !r.value.as_str().trim().is_empty() => {
                    Some(Field::new(&r.label, r.value.as_str(), kind))
                }
                _ => None,
            })
            .collect();
        fields.sort_by_key(|f| field_rank(&f.label));
        fields
    }

    /// What to send to the engine, after checking the form as the engine
    /// would; `Err` has the row that is wrong and why.
    fn build(&self) -> Result<Built, (usize, String)> {
        let name = self.value_of(RowKind::Name).trim().to_owned();
        if name.is_empty() {
            return Err((self.row_of(RowKind::Name), "the item needs a name".into()));
        }
        let tags: Vec<String> = self
            .value_of(RowKind::Tags)
            .split(',')
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .map(str::to_owned)
            .collect();
        let folder =
            Some(self.value_of(RowKind::Folder).trim().to_owned()).filter(|f| !f.is_empty());
        let favorite = self.value_of(RowKind::Favorite) == "yes";
        let fields = self.fields();
        let draft = ItemDraft {
            kind: self.kind,
            name,
            fields,
            tags,
            folder,
            favorite,
        };
        if let Err((part, msg)) = check_draft(&draft) {
            let row = match part {
                ItemPart::Name => self.row_of(RowKind::Name),
                ItemPart::Tags => self.row_of(RowKind::Tags),
                ItemPart::Folder => self.row_of(RowKind::Folder),
                ItemPart::Field(label) => self
                    .rows
                    .iter()
                    .position(|r| {
                        matches!(r.kind, RowKind::Field { .. })
                            && r.label.trim().eq_ignore_ascii_case(label.trim())
                    })
                    .unwrap_or(self.sel),
            };
            return Err((row, msg));
        }
        let Some(original) = &self.original else {
            return Ok(Built::Draft(Box::new(draft)));
        };
        let ItemDraft {
            name,
            fields,
            tags,
            folder,
            favorite,
            ..
        } = draft;
        let o = &original.overview;
        let mut patch = ItemPatch::default();
        if name != o.name {
            patch.name = Some(name);
        }
        if tags != o.tags {
            patch.tags = Some(tags);
        }
        if folder != o.folder {
            patch.folder = Some(folder);
        }
        if favorite != o.favorite {
            patch.favorite = Some(favorite);
        }
        let urls: Vec<String> = fields
            .iter()
            .filter(|f| f.label == label::URL)
            .map(|f| f.value.expose().to_owned())
            .collect();
        if urls != o.urls {
            patch.urls = Some(urls);
        }
        for f in fields.iter().filter(|f| f.label != label::URL) {
            if original
                .field(&f.label)
                .is_none_or(|old| old.value != f.value || old.kind != f.kind)
            {
                patch.set_fields.push(f.clone());
            }
        }
        for f in &original.details.fields {
            if f.label != label::URL
                && !fields
                    .iter()
                    .any(|n| n.label.eq_ignore_ascii_case(&f.label))
                && !patch.remove_fields.contains(&f.label)
            {
                patch.remove_fields.push(f.label.clone());
            }
        }
        let changed = patch.name.is_some()
            || patch.tags.is_some()
            || patch.folder.is_some()
            || patch.favorite.is_some()
            || patch.urls.is_some()
            || !patch.set_fields.is_empty()
            || !patch.remove_fields.is_empty()
            || o.conflict.is_some();
        patch.resolve = o.conflict.is_some();
        Ok(if changed {
            Built::Patch(original.r.id, original.r.version, Box::new(patch))
        } else {
            Built::Nothing
        })
    }
}

impl GenState {
    fn new() -> Self {
        let mut g = Self {
            words: false,
            length: PasswordSpec::default().length,
            word_count: PassphraseSpec::default().words,
            symbols: true,
            digits: true,
            value: Zeroizing::default(),
            entropy: 0.0,
            error: None,
        };
        g.generate();
        g
    }

    fn generate(&mut self) {
        let made = if self.words {
            generator::passphrase(&PassphraseSpec {
                words: self.word_count,
                include_number: self.digits,
                ..PassphraseSpec::default()
            })
        } else {
            generator::password(&PasswordSpec {
                length: self.length,
                symbols: self.symbols,
                digits: self.digits,
                ..PasswordSpec::default()
            })
        };
        match made {
            Ok(g) => {
                self.value = Zeroizing::new(g.value.expose_secret().to_owned());
                self.entropy = g.entropy_bits;
                self.error = None;
            }
            Err(e) => self.error = Some(e.to_string()),
        }
    }
}

/// The strength meter of a new master password: bits (log2 of zxcvbn's
/// guesses), label, and whether it is below the floor (refused).
#[must_use]
pub fn strength_of(password: &str) -> (f64, &'static str, bool) {
    let s = strength::estimate(password, &[]);
    (s.bits, s.label, s.verdict == strength::Verdict::TooWeak)
}
