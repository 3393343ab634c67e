//! The TUI's state and its reactions: one [`App`] holds everything on
//! screen; keys become [`Action`]s through the keymap (text fields take
//! characters first); engine work goes out as [`Request`]s in `outbox` and
//! comes back as [`Reply`]s. Nothing here draws or blocks.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossterm::event::{
    Event, KeyCode, KeyEvent, KeyEventKind, KeyModifiers, MouseButton, MouseEvent, MouseEventKind,
};
use ratatui::layout::{Position, Rect};
use rayon::slice::ParallelSliceMut as _;
use uuid::Uuid;
use zeroize::Zeroizing;

use super::clip::Clipboard;
use super::clock::Clock;
use super::input::{Edit, TextInput};
use super::keymap::{Action, Key, Keymap, Lookup};
use super::panes::devices::{self, Changed, DeviceList};
use super::panes::search::{self, Searched};
use super::panes::vault::{self, Saved, Verb, Versions};
use super::popups::history::{self, OldVersion};
use super::popups::passwd;
use super::theme::Theme;
use super::worker::{Answer, Notice, Reply, Request, SyncState, To};
use crate::engine::generator::{self, PassphraseSpec, PasswordSpec};
use crate::engine::model::{
    Entry, Field, FieldKind, Item, ItemKind, field_rank, label, standard_fields,
};
use crate::engine::remote::Device as DeviceResponse;
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

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pane {
    Vault,
    Search,
    Devices,
}

impl Pane {
    pub const ALL: [Self; 3] = [Self::Vault, Self::Search, Self::Devices];

    #[must_use]
    pub fn title(self) -> &'static str {
        match self {
            Self::Vault => "Vault",
            Self::Search => "Search",
            Self::Devices => "Devices",
        }
    }
}

/// Which column of the vault pane has the keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Focus {
    Sidebar,
    List,
    Details,
}

/// What the item list shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Filter {
    All,
    Favorites,
    Conflicts,
    Trash,
    Folder(String),
    Tag(String),
}

/// One sidebar row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SideRow {
    Header(&'static str),
    Filter(Filter, usize),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sort {
    Name,
    Changed,
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
#[derive(Debug, Default)]
pub struct SearchState {
    pub input: TextInput,
    pub hits: Vec<Uuid>,
    pub total: usize,
    pub sel: usize,
    pub seq: u64,
    pub shown_seq: u64,
    pub error: Option<String>,
}

#[derive(Debug, Default)]
pub struct DevicesState {
    pub list: Option<Result<Vec<DeviceResponse>, String>>,
    pub sel: usize,
    pub loading: bool,
}

/// Where panes were drawn, for the mouse.
#[derive(Debug, Default, Clone, Copy)]
pub struct Areas {
    pub sidebar: Rect,
    pub list: Rect,
    pub details: Rect,
    pub results: Rect,
    pub devices: Rect,
    pub tabs: Rect,
    /// The open popup's area (what it cleared), for tests.
    pub popup: Rect,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CopyWhat {
    Password,
    Username,
    Totp,
    Selected,
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
    clipboard: Box<dyn Clipboard>,
    pub outbox: Vec<Request>,
    pub quit: bool,
    pub screen: Screen,
    pub pane: Pane,
    pub focus: Focus,
    pub popup: Option<Popup>,
    pub entries: Arc<Vec<Entry>>,
    by_id: HashMap<Uuid, usize>,
    order_name: Vec<u32>,
    order_changed: Vec<u32>,
    pub sidebar: Vec<SideRow>,
    pub side_sel: usize,
    pub filter: Filter,
    pub sort: Sort,
    pub shown: Vec<u32>,
    pub sel: usize,
    pub offset: usize,
    pub detail: Option<Item>,
    pub field_sel: usize,
    pub revealed: HashSet<usize>,
    pub search: SearchState,
    pub devices: DevicesState,
    pub sync: SyncState,
    /// When the sync in flight last heard from the server (or started).
    pub sync_since: Option<Instant>,
    pub message: Option<(String, Level, Instant)>,
    pub clip_until: Option<Instant>,
    pub last_input: Instant,
    pub busy: Option<&'static str>,
    pub spinner: usize,
    pub areas: Areas,
    pending_key: Option<Key>,
    pending_copy: Option<(Uuid, CopyWhat)>,
    pending_select: Option<Uuid>,
    /// A history popup being re-read after its item changed.
    history_refresh: Option<Uuid>,
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
            pane: Pane::Vault,
            focus: Focus::List,
            popup: None,
            entries: Arc::new(Vec::new()),
            by_id: HashMap::new(),
            order_name: Vec::new(),
            order_changed: Vec::new(),
            sidebar: Vec::new(),
            side_sel: 1,
            filter: Filter::All,
            sort: Sort::Name,
            shown: Vec::new(),
            sel: 0,
            offset: 0,
            detail: None,
            field_sel: 0,
            revealed: HashSet::new(),
            search: SearchState::default(),
            devices: DevicesState::default(),
            sync: SyncState::LocalOnly,
            sync_since: None,
            message: None,
            clip_until: None,
            last_input,
            busy: None,
            spinner: 0,
            areas: Areas::default(),
            pending_key: None,
            pending_copy: None,
            pending_select: None,
            history_refresh: None,
        }
    }

    fn say(&mut self, text: impl Into<String>) {
        self.message = Some((text.into(), Level::Info, self.clock.now()));
    }

    fn warn(&mut self, text: impl Into<String>) {
        self.message = Some((text.into(), Level::Error, self.clock.now()));
    }

    fn send(&mut self, r: Request) {
        self.outbox.push(r);
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
        self.entries = Arc::new(Vec::new());
        self.by_id.clear();
        self.order_name.clear();
        self.order_changed.clear();
        self.sidebar.clear();
        self.shown.clear();
        self.detail = None;
        self.revealed.clear();
        self.search = SearchState::default();
        self.devices = DevicesState::default();
        self.popup = None;
        self.pending_copy = None;
        self.sel = 0;
        self.offset = 0;
        self.filter = Filter::All;
        self.side_sel = 1;
        self.pane = Pane::Vault;
        self.focus = Focus::List;
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
        if k.code == KeyCode::Esc
            && (matches!(self.sync, SyncState::Syncing)
                || (self.pane == Pane::Devices && self.devices.loading))
        {
            // Stop waiting for the server; the work here is not touched.
            self.send(Request::Cancel);
            self.devices.loading = false;
            self.say(if matches!(self.sync, SyncState::Syncing) {
                "Sync cancelled; S syncs again"
            } else {
                "Stopped waiting for the server"
            });
            return;
        }
        if self.pane == Pane::Search && self.key_search_input(k) {
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

    /// The search input takes characters and the editing keys; returns
    /// whether the key was used.
    fn key_search_input(&mut self, k: KeyEvent) -> bool {
        let ctrl = k.modifiers.contains(KeyModifiers::CONTROL);
        match k.code {
            KeyCode::Char('n' | 'j') if ctrl => self.act(Action::Down),
            KeyCode::Char('p') if ctrl => self.act(Action::Up),
            KeyCode::Enter => self.jump_to_hit(),
            _ => match self.search.input.handle(k) {
                Edit::Changed => self.run_search(),
                Edit::Moved => {}
                Edit::Ignored => return false,
            },
        }
        true
    }

    fn run_search(&mut self) {
        self.search.seq += 1;
        self.search.sel = 0;
        let seq = self.search.seq;
        let text = self.search.input.as_str().to_owned();
        self.send(Request::Job(search::search(seq, text)));
    }

    fn jump_to_hit(&mut self) {
        let Some(&id) = self.search.hits.get(self.search.sel) else {
            return;
        };
        let trashed = self
            .entry(id)
            .is_some_and(|e| e.overview.trashed_at.is_some());
        self.set_filter(if trashed { Filter::Trash } else { Filter::All });
        if let Some(pos) = self
            .shown
            .iter()
            .position(|&i| self.entries[i as usize].r.id == id)
        {
            self.sel = pos;
        }
        self.pane = Pane::Vault;
        self.focus = Focus::List;
        self.selection_changed();
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

    /// Runs an action (from a key or the palette).
    #[allow(clippy::too_many_lines)]
    pub fn act(&mut self, a: Action) {
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
                self.pane = Pane::Search;
                if self.search.hits.is_empty() {
                    self.run_search();
                }
            }
            Action::Back => match self.pane {
                Pane::Search | Pane::Devices => self.pane = Pane::Vault,
                Pane::Vault => {
                    if self.focus == Focus::Details {
                        self.focus = Focus::List;
                    } else if self.filter != Filter::All {
                        self.set_filter(Filter::All);
                        self.side_sel = 1;
                    }
                }
            },
            Action::NextPane | Action::PrevPane => {
                let forward = a == Action::NextPane;
                if self.pane == Pane::Vault
                    && ((forward && self.focus != Focus::Details)
                        || (!forward && self.focus != Focus::Sidebar))
                {
                    self.move_focus(forward);
                } else {
                    let i = Pane::ALL.iter().position(|p| *p == self.pane).unwrap_or(0);
                    let n = Pane::ALL.len();
                    let next = if forward {
                        (i + 1) % n
                    } else {
                        (i + n - 1) % n
                    };
                    self.switch_pane(Pane::ALL[next]);
                    if self.pane == Pane::Vault {
                        self.focus = if forward {
                            Focus::Sidebar
                        } else {
                            Focus::Details
                        };
                    }
                }
            }
            Action::PaneVault => self.switch_pane(Pane::Vault),
            Action::PaneSearch => self.switch_pane(Pane::Search),
            Action::PaneDevices => self.switch_pane(Pane::Devices),
            Action::Left => {
                if self.pane == Pane::Vault {
                    self.move_focus(false);
                }
            }
            Action::Right => {
                if self.pane == Pane::Vault {
                    self.move_focus(true);
                }
            }
            Action::Up => self.move_by(-1),
            Action::Down => self.move_by(1),
            Action::PageUp => self.move_by(-10),
            Action::PageDown => self.move_by(10),
            Action::Top => self.move_by(-(i64::from(u32::MAX))),
            Action::Bottom => self.move_by(i64::from(u32::MAX)),
            Action::Open => match (self.pane, self.focus) {
                (Pane::Search, _) => self.jump_to_hit(),
                (Pane::Vault, Focus::Sidebar) => self.focus = Focus::List,
                (Pane::Vault, Focus::List) => {
                    if self.selected_id().is_some() {
                        self.focus = Focus::Details;
                    }
                }
                (Pane::Vault, Focus::Details) => self.copy(CopyWhat::Selected),
                (Pane::Devices, _) => {}
            },
            Action::CopyPassword => self.copy(CopyWhat::Password),
            Action::CopyUsername => self.copy(CopyWhat::Username),
            Action::CopyTotp => self.copy(CopyWhat::Totp),
            Action::CopyField => self.copy(CopyWhat::Selected),
            Action::Reveal => {
                if self.detail.is_some() && !self.revealed.remove(&self.field_sel) {
                    self.revealed.insert(self.field_sel);
                    // Shown from the version on disk now.
                    if let Some(id) = self.selected_id() {
                        self.send(Request::Job(vault::read_item(id)));
                    }
                }
            }
            Action::Edit => match self.pane {
                Pane::Devices => {
                    if let Some(d) = self.selected_device() {
                        self.popup = Some(Popup::Rename {
                            id: d.id,
                            // The server's string: shown and edited as data.
                            input: TextInput::with_text(&crate::text::line(&d.name)),
                        });
                    }
                }
                _ => {
                    if let Some(item) = &self.detail {
                        if item.overview.trashed_at.is_some() {
                            self.warn("Restore the item (R) before editing it");
                        } else {
                            self.popup = Some(Popup::Form(Box::new(Form::edit(item))));
                        }
                    }
                }
            },
            Action::New => self.popup = Some(Popup::Form(Box::new(Form::pick()))),
            Action::Delete => match self.pane {
                Pane::Devices => {
                    if let Some(d) = self.selected_device() {
                        self.popup = Some(Popup::Confirm(Confirmable::Revoke(
                            d.id,
                            crate::text::line(&d.name).into_owned(),
                        )));
                    }
                }
                _ => {
                    if let Some(e) = self.selected_id().and_then(|id| self.entry(id)) {
                        if e.overview.trashed_at.is_some() {
                            self.warn("Already in the trash; R restores it");
                        } else {
                            self.popup = Some(Popup::Confirm(Confirmable::Trash(
                                e.r.id,
                                e.overview.name.clone(),
                            )));
                        }
                    }
                }
            },
            Action::Restore => {
                if let Some(e) = self.selected_id().and_then(|id| self.entry(id)) {
                    if e.overview.trashed_at.is_some() {
                        let id = e.r.id;
                        self.send(Request::Job(vault::restore(id)));
                    } else {
                        self.warn("Not in the trash");
                    }
                }
            }
            Action::History => {
                if let Some(id) = self.selected_id() {
                    self.send(Request::Job(vault::history(id)));
                }
            }
            Action::Favorite => {
                if let Some(e) = self.selected_id().and_then(|id| self.entry(id)) {
                    let patch = ItemPatch {
                        favorite: Some(!e.overview.favorite),
                        ..ItemPatch::default()
                    };
                    let (id, base) = (e.r.id, e.r.version);
                    self.send(Request::Job(vault::update(id, Some(base), patch)));
                }
            }
            Action::Sort => {
                self.sort = match self.sort {
                    Sort::Name => Sort::Changed,
                    Sort::Changed => Sort::Name,
                };
                let keep = self.selected_id();
                self.refilter(keep);
                self.say(match self.sort {
                    Sort::Name => "Sorted by name",
                    Sort::Changed => "Sorted by last change",
                });
            }
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
        }
    }

    fn switch_pane(&mut self, p: Pane) {
        self.pane = p;
        match p {
            Pane::Devices => {
                self.devices.loading = true;
                self.send(Request::Job(devices::devices()));
            }
            Pane::Search => {
                if self.search.hits.is_empty() {
                    self.run_search();
                }
            }
            Pane::Vault => {}
        }
    }

    fn move_focus(&mut self, right: bool) {
        self.focus = match (self.focus, right) {
            (Focus::Sidebar, true) => Focus::List,
            (Focus::List, true) | (Focus::Details, true) => Focus::Details,
            (Focus::Details, false) => Focus::List,
            (_, false) => Focus::Sidebar,
        };
    }

    fn move_by(&mut self, delta: i64) {
        let step = |cur: usize, len: usize| -> usize {
            if len == 0 {
                return 0;
            }
            let next = i64::try_from(cur).unwrap_or(0).saturating_add(delta);
            usize::try_from(next.clamp(0, i64::try_from(len - 1).unwrap_or(0))).unwrap_or(0)
        };
        match self.pane {
            Pane::Search => self.search.sel = step(self.search.sel, self.search.hits.len()),
            Pane::Devices => {
                let n = self
                    .devices
                    .list
                    .as_ref()
                    .and_then(|l| l.as_ref().ok())
                    .map_or(0, Vec::len);
                self.devices.sel = step(self.devices.sel, n);
            }
            Pane::Vault => match self.focus {
                Focus::Sidebar => {
                    let mut i = step(self.side_sel, self.sidebar.len());
                    // Skip headers in the direction of travel.
                    while matches!(self.sidebar.get(i), Some(SideRow::Header(_))) {
                        let next = if delta < 0 {
                            i.checked_sub(1)
                        } else {
                            Some(i + 1)
                        };
                        match next.filter(|n| *n < self.sidebar.len()) {
                            Some(n) => i = n,
                            None => {
                                i = self.side_sel;
                                break;
                            }
                        }
                    }
                    self.side_sel = i;
                    if let Some(SideRow::Filter(f, _)) = self.sidebar.get(i).cloned() {
                        self.set_filter(f);
                    }
                }
                Focus::List => {
                    let before = self.sel;
                    self.sel = step(self.sel, self.shown.len());
                    if before != self.sel {
                        self.selection_changed();
                    }
                }
                Focus::Details => {
                    let n = self.detail.as_ref().map_or(0, |i| i.details.fields.len());
                    self.field_sel = step(self.field_sel, n);
                }
            },
        }
    }

    fn handle_mouse(&mut self, m: MouseEvent) {
        let at = Position::new(m.column, m.row);
        match m.kind {
            MouseEventKind::ScrollDown => self.move_by(3),
            MouseEventKind::ScrollUp => self.move_by(-3),
            MouseEventKind::Down(MouseButton::Left) => {
                if self.popup.is_some() || !matches!(self.screen, Screen::Main) {
                    return;
                }
                let row_in = |r: Rect| -> Option<usize> {
                    (r.contains(at) && at.y > r.y).then(|| usize::from(at.y - r.y - 1))
                };
                if self.areas.tabs.contains(at) {
                    let x = usize::from(at.x.saturating_sub(self.areas.tabs.x));
                    // Tabs are drawn as " N Title " after the 8-column logo.
                    let mut start = 8;
                    for p in Pane::ALL {
                        let w = p.title().len() + 4;
                        if x >= start && x < start + w {
                            self.switch_pane(p);
                        }
                        start += w;
                    }
                    return;
                }
                match self.pane {
                    Pane::Vault => {
                        if let Some(row) = row_in(self.areas.list) {
                            self.focus = Focus::List;
                            let i = self.offset + row;
                            if i < self.shown.len() && i != self.sel {
                                self.sel = i;
                                self.selection_changed();
                            }
                        } else if let Some(row) = row_in(self.areas.sidebar) {
                            self.focus = Focus::Sidebar;
                            if let Some(SideRow::Filter(f, _)) = self.sidebar.get(row).cloned() {
                                self.side_sel = row;
                                self.set_filter(f);
                            }
                        } else if self.areas.details.contains(at) {
                            self.focus = Focus::Details;
                        }
                    }
                    Pane::Search => {
                        if let Some(row) = row_in(self.areas.results)
                            && row < self.search.hits.len()
                        {
                            self.search.sel = row;
                        }
                    }
                    Pane::Devices => {}
                }
            }
            _ => {}
        }
    }

    // ------------------------------------------------------------- the list

    /// The listed entry with this id.
    #[must_use]
    pub fn entry(&self, id: Uuid) -> Option<&Entry> {
        self.by_id.get(&id).and_then(|&i| self.entries.get(i))
    }

    /// The id of the item selected in the list.
    #[must_use]
    pub fn selected_id(&self) -> Option<Uuid> {
        self.shown
            .get(self.sel)
            .and_then(|&i| self.entries.get(i as usize))
            .map(|e| e.r.id)
    }

    fn selected_device(&self) -> Option<&DeviceResponse> {
        self.devices
            .list
            .as_ref()
            .and_then(|l| l.as_ref().ok())
            .and_then(|l| l.get(self.devices.sel))
    }

    fn selection_changed(&mut self) {
        match self.selected_id() {
            Some(id) => {
                if self.detail.as_ref().is_none_or(|d| d.r.id != id) {
                    self.revealed.clear();
                    self.field_sel = 0;
                    self.detail = None;
                    self.send(Request::Job(vault::read_item(id)));
                }
            }
            None => {
                self.revealed.clear();
                self.detail = None;
            }
        }
    }

    fn set_entries(&mut self, entries: Arc<Vec<Entry>>) {
        let keep = self.selected_id();
        self.by_id = entries
            .iter()
            .enumerate()
            .map(|(i, e)| (e.r.id, i))
            .collect();
        let mut by_name: Vec<(bool, String, u32)> = entries
            .iter()
            .enumerate()
            .map(|(i, e)| {
                (
                    !e.overview.favorite,
                    e.overview.name.to_lowercase(),
                    u32::try_from(i).unwrap_or(u32::MAX),
                )
            })
            .collect();
        by_name.par_sort_unstable();
        self.order_name = by_name.into_iter().map(|(_, _, i)| i).collect();
        let mut by_time: Vec<(bool, std::cmp::Reverse<i64>, u32)> = entries
            .iter()
            .enumerate()
            .map(|(i, e)| {
                (
                    !e.overview.favorite,
                    std::cmp::Reverse(e.overview.updated_at),
                    u32::try_from(i).unwrap_or(u32::MAX),
                )
            })
            .collect();
        by_time.par_sort_unstable();
        self.order_changed = by_time.into_iter().map(|(_, _, i)| i).collect();
        let mut folders: BTreeMap<String, usize> = BTreeMap::new();
        let mut tags: BTreeMap<String, usize> = BTreeMap::new();
        let (mut all, mut favs, mut conflicts, mut trash) = (0, 0, 0, 0);
        for e in entries.iter() {
            let o = &e.overview;
            if o.trashed_at.is_some() {
                trash += 1;
                continue;
            }
            all += 1;
            favs += usize::from(o.favorite);
            conflicts += usize::from(o.conflict.is_some());
            if let Some(f) = &o.folder {
                *folders.entry(f.clone()).or_default() += 1;
            }
            for t in &o.tags {
                *tags.entry(t.clone()).or_default() += 1;
            }
        }
        let mut side = vec![
            SideRow::Header("Vault"),
            SideRow::Filter(Filter::All, all),
            SideRow::Filter(Filter::Favorites, favs),
            SideRow::Filter(Filter::Conflicts, conflicts),
            SideRow::Filter(Filter::Trash, trash),
        ];
        if !folders.is_empty() {
            side.push(SideRow::Header("Folders"));
            side.extend(
                folders
                    .into_iter()
                    .map(|(f, n)| SideRow::Filter(Filter::Folder(f), n)),
            );
        }
        if !tags.is_empty() {
            side.push(SideRow::Header("Tags"));
            side.extend(
                tags.into_iter()
                    .map(|(t, n)| SideRow::Filter(Filter::Tag(t), n)),
            );
        }
        self.entries = entries;
        self.side_sel = side
            .iter()
            .position(|r| matches!(r, SideRow::Filter(f, _) if *f == self.filter))
            .unwrap_or_else(|| {
                self.filter = Filter::All;
                1
            });
        self.sidebar = side;
        self.refilter(keep);
    }

    fn set_filter(&mut self, f: Filter) {
        if self.filter != f {
            self.filter = f;
            self.sel = 0;
            self.offset = 0;
            self.refilter(None);
        }
        if let Some(i) = self
            .sidebar
            .iter()
            .position(|r| matches!(r, SideRow::Filter(x, _) if *x == self.filter))
        {
            self.side_sel = i;
        }
    }

    fn refilter(&mut self, keep: Option<Uuid>) {
        let order = match self.sort {
            Sort::Name => &self.order_name,
            Sort::Changed => &self.order_changed,
        };
        let f = &self.filter;
        self.shown = order
            .iter()
            .copied()
            .filter(|&i| {
                let o = &self.entries[i as usize].overview;
                let trashed = o.trashed_at.is_some();
                match f {
                    Filter::All => !trashed,
                    Filter::Trash => trashed,
                    Filter::Favorites => !trashed && o.favorite,
                    Filter::Conflicts => !trashed && o.conflict.is_some(),
                    Filter::Folder(name) => !trashed && o.folder.as_deref() == Some(name),
                    Filter::Tag(t) => !trashed && o.tags.iter().any(|x| x == t),
                }
            })
            .collect();
        if let Some(id) = keep
            && let Some(pos) = self
                .shown
                .iter()
                .position(|&i| self.entries[i as usize].r.id == id)
        {
            self.sel = pos;
        }
        self.sel = self.sel.min(self.shown.len().saturating_sub(1));
        self.selection_changed();
    }

    /// After the list changed: re-reads the details and the history popup
    /// of an item another writer (a sync, a CLI) moved to a new version.
    fn reread_stale_views(&mut self) {
        if let Some(d) = &self.detail {
            let id = d.r.id;
            if self.entry(id).is_some_and(|e| e.r.version != d.r.version) {
                self.send(Request::Job(vault::read_item(id)));
            }
        }
        if let Some(Popup::History(h)) = &self.popup {
            let id = h.id;
            let shown = h.versions.last().map(|v| v.version);
            if self.entry(id).is_some_and(|e| Some(e.r.version) != shown) {
                self.history_refresh = Some(id);
                self.send(Request::Job(vault::history(id)));
            }
        }
    }

    // ------------------------------------------------------------- copying

    /// Copies from the version on disk now, never from what the screen
    /// showed a moment ago: the worker reads the item (and whatever another
    /// writer saved) and the copy happens when it arrives.
    fn copy(&mut self, what: CopyWhat) {
        let Some(id) = self.selected_id() else {
            return;
        };
        self.pending_copy = Some((id, what));
        self.send(Request::Job(vault::read_item(id)));
    }

    fn copy_now(&mut self, what: CopyWhat) {
        let Some(id) = self.selected_id() else {
            return;
        };
        let Some(item) = self.detail.as_ref().filter(|d| d.r.id == id) else {
            return;
        };
        let fields = &item.details.fields;
        let field = match what {
            CopyWhat::Password => item.field(item.overview.kind.primary_field()).or_else(|| {
                fields
                    .iter()
                    .find(|f| f.is_concealed() && f.kind != FieldKind::Totp)
            }),
            CopyWhat::Username => item
                .field(label::USERNAME)
                .or_else(|| item.field(label::EMAIL)),
            CopyWhat::Totp => fields.iter().find(|f| f.kind == FieldKind::Totp),
            CopyWhat::Selected => fields.get(self.field_sel),
        };
        let name = item.overview.name.clone();
        let Some(field) = field else {
            let what = match what {
                CopyWhat::Password => "password",
                CopyWhat::Username => "username",
                CopyWhat::Totp => "TOTP secret",
                CopyWhat::Selected => "field",
            };
            return self.warn(format!("{name} has no {what}"));
        };
        let label = field.label.clone();
        let value = if field.kind == FieldKind::Totp {
            match totp_at(field, self.clock.as_ref()) {
                Some((code, _)) => Zeroizing::new(code),
                None => return self.warn("The stored TOTP secret is invalid"),
            }
        } else {
            Zeroizing::new(field.value.expose().to_owned())
        };
        let clear = self.settings.clear_after;
        match self.clipboard.copy(&value, clear) {
            Ok(via) => {
                let shown = if label == label::TOTP {
                    "TOTP code"
                } else {
                    label.as_str()
                };
                match clear {
                    Some(d) => {
                        self.clip_until = Some(self.clock.now() + d);
                        self.say(format!(
                            "Copied the {shown} of {name} to the {via}; cleared in {} s",
                            d.as_secs()
                        ));
                    }
                    None => self.say(format!("Copied the {shown} of {name} to the {via}")),
                }
            }
            Err(e) => self.warn(e),
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
                self.set_entries(entries);
                self.say("Unlocked. ? shows every key");
            }
            Reply::Created {
                entries,
                secret_key,
                kit,
            } => {
                self.busy = None;
                self.set_entries(entries);
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
                self.set_entries(entries);
                self.reread_stale_views();
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
            Reply::Error(msg) => {
                self.busy = None;
                self.pending_copy = None;
                self.warn(msg);
            }
        }
        if let Some(id) = self.pending_select.take() {
            self.set_filter(Filter::All);
            if let Some(pos) = self
                .shown
                .iter()
                .position(|&i| self.entries[i as usize].r.id == id)
            {
                self.sel = pos;
                self.focus = Focus::List;
                self.selection_changed();
            } else {
                // The entries with the new item are on their way.
                self.pending_select = Some(id);
            }
        }
    }

    /// A job's answer, for the pane or popup it names.
    #[allow(clippy::too_many_lines)]
    fn on_answer(&mut self, to: To, answer: Answer) {
        /// What the answer holds.
        enum Got {
            Item(Box<Item>),
            Searched(Searched),
            Saved(Saved),
            Versions(Versions),
            Old(OldVersion),
            Devices(DeviceList),
            Changed(Changed),
            Notice(Notice),
        }
        let got = answer
            .take::<Box<Item>>()
            .map(Got::Item)
            .or_else(|a| a.take::<Searched>().map(Got::Searched))
            .or_else(|a| a.take::<Saved>().map(Got::Saved))
            .or_else(|a| a.take::<Versions>().map(Got::Versions))
            .or_else(|a| a.take::<OldVersion>().map(Got::Old))
            .or_else(|a| a.take::<DeviceList>().map(Got::Devices))
            .or_else(|a| a.take::<Changed>().map(Got::Changed))
            .or_else(|a| a.take::<Notice>().map(Got::Notice));
        match got {
            Ok(Got::Item(item)) => {
                let (id, version) = (item.r.id, item.r.version);
                if self.selected_id() == Some(id) {
                    let keep = self.detail.as_ref().is_some_and(|d| d.r.id == item.r.id);
                    if keep {
                        // The same item, maybe a newer version: what was
                        // revealed stays revealed, showing the new values.
                        self.field_sel = self
                            .field_sel
                            .min(item.details.fields.len().saturating_sub(1));
                    } else {
                        self.revealed.clear();
                        self.field_sel = default_field(&item);
                    }
                    self.detail = Some(*item);
                    if let Some(Popup::History(h)) = &self.popup
                        && h.id == id
                        && h.versions.last().is_none_or(|v| v.version != version)
                    {
                        self.history_refresh = Some(id);
                        self.send(Request::Job(vault::history(id)));
                    }
                    if let Some((id, what)) = self.pending_copy.take()
                        && Some(id) == self.selected_id()
                    {
                        self.copy_now(what);
                    }
                }
            }
            Ok(Got::Searched(Searched {
                seq,
                hits,
                total,
                error,
            })) => {
                if seq >= self.search.shown_seq {
                    self.search.shown_seq = seq;
                    self.search.hits = hits;
                    self.search.total = total;
                    self.search.error = error;
                    self.search.sel = self
                        .search
                        .sel
                        .min(self.search.hits.len().saturating_sub(1));
                }
            }
            Ok(Got::Saved(Saved::Written(verb, item))) => {
                let name = item.overview.name.clone();
                let id = item.r.id;
                self.say(match verb {
                    Verb::Added => format!("Added {name}"),
                    Verb::Saved => format!("Saved {name}"),
                    Verb::Trashed => format!("Moved {name} to the trash; R in Trash restores it"),
                    Verb::Restored => format!("Restored {name}"),
                });
                if verb == Verb::Added {
                    self.field_sel = default_field(&item);
                    self.revealed.clear();
                }
                if self.detail.as_ref().is_some_and(|d| d.r.id == id) || verb == Verb::Added {
                    self.detail = Some(*item);
                }
                if verb == Verb::Added {
                    self.pending_select = Some(id);
                }
            }
            Ok(Got::Versions(Versions(id, versions))) => {
                let mut reveal = false;
                if self.history_refresh.take() == Some(id) {
                    // A re-read after a change: only for the popup still open.
                    match &self.popup {
                        Some(Popup::History(h)) if h.id == id => reveal = h.reveal,
                        _ => return,
                    }
                }
                let name = self
                    .entry(id)
                    .map(|e| e.overview.name.clone())
                    .unwrap_or_default();
                let sel = versions.len().saturating_sub(1);
                self.popup = Some(Popup::History(HistoryState {
                    id,
                    name,
                    versions,
                    sel,
                    compared: None,
                    reveal,
                }));
            }
            Ok(Got::Saved(Saved::Merged {
                item,
                other,
                conflicts,
            })) => {
                let name = item.overview.name.clone();
                if conflicts.is_empty() {
                    self.say(format!(
                        "Saved {name}, merged with version {other} saved elsewhere meanwhile"
                    ));
                } else {
                    let key = self.keymap.first_key(Action::History);
                    self.warn(format!(
                        "Saved {name}; {} also changed elsewhere meanwhile: kept yours, the other is version {other} ({key}: history)",
                        conflicts.join(", ")
                    ));
                }
                if self.detail.as_ref().is_some_and(|d| d.r.id == item.r.id) {
                    self.detail = Some(*item);
                }
            }
            Ok(Got::Old(OldVersion(old))) => {
                if let Some(Popup::History(h)) = &mut self.popup
                    && h.id == old.r.id
                    && let Some(cur) = self.detail.as_ref().filter(|d| d.r.id == old.r.id)
                {
                    h.compared = Some(Compared {
                        version: old.r.version,
                        current: cur.r.version,
                        differences: differences(&old, cur),
                    });
                }
            }
            Ok(Got::Devices(list)) => {
                self.devices.loading = false;
                self.devices.list = Some(list);
                let n = self
                    .devices
                    .list
                    .as_ref()
                    .and_then(|l| l.as_ref().ok())
                    .map_or(0, Vec::len);
                self.devices.sel = self.devices.sel.min(n.saturating_sub(1));
            }
            Ok(Got::Changed(Changed { done, list })) => {
                match done {
                    Ok(msg) => self.say(msg),
                    Err(msg) => {
                        self.busy = None;
                        self.pending_copy = None;
                        self.warn(msg);
                    }
                }
                self.on_answer(devices::TO, Answer::new(list));
            }
            Ok(Got::Notice(Notice(msg))) => {
                self.busy = None;
                self.say(msg);
            }
            Err(a) => tracing::warn!(to = to.0, ?a, "an answer nobody reads"),
        }
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
                    if self.detail.as_ref().is_none_or(|d| d.r.id != h.id) {
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
fn default_field(item: &Item) -> usize {
    let fields = &item.details.fields;
    let primary = item.overview.kind.primary_field();
    fields
        .iter()
        .position(|f| f.label.eq_ignore_ascii_case(primary))
        .or_else(|| fields.iter().position(Field::is_concealed))
        .unwrap_or(0)
}

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
