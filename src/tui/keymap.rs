//! Key bindings as data: the defaults in `assets/keymap.toml` (embedded),
//! overridden per action by the user's keymap file. The help overlay, the
//! command palette and the status-bar hints all read this table.

use std::collections::HashMap;

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

const DEFAULTS: &str = include_str!("../../assets/keymap.toml");

/// Everything a key can ask for outside a text field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    Quit,
    Help,
    Palette,
    Search,
    Back,
    NextPane,
    PrevPane,
    PaneVault,
    PaneSearch,
    PaneDevices,
    PaneShare,
    Up,
    Down,
    Left,
    Right,
    Top,
    Bottom,
    PageUp,
    PageDown,
    Open,
    CopyPassword,
    CopyUsername,
    CopyTotp,
    CopyField,
    Reveal,
    Edit,
    New,
    Delete,
    Restore,
    History,
    Favorite,
    MoveToVault,
    CopyToVault,
    Sort,
    Sync,
    Lock,
    Invite,
    Accept,
    Verify,
    ShareLink,
    ToggleSelect,
    SelectRange,
    Tag,
}

impl Action {
    /// How far a movement action moves a list's selection (`None` for the
    /// other actions): one row, a page of ten, or to either end.
    #[must_use]
    pub fn movement(self) -> Option<i64> {
        let end = i64::from(u32::MAX);
        match self {
            Self::Up => Some(-1),
            Self::Down => Some(1),
            Self::PageUp => Some(-10),
            Self::PageDown => Some(10),
            Self::Top => Some(-end),
            Self::Bottom => Some(end),
            _ => None,
        }
    }

    pub const ALL: [Self; 43] = [
        Self::Quit,
        Self::Help,
        Self::Palette,
        Self::Search,
        Self::Back,
        Self::NextPane,
        Self::PrevPane,
        Self::PaneVault,
        Self::PaneSearch,
        Self::PaneDevices,
        Self::PaneShare,
        Self::Up,
        Self::Down,
        Self::Left,
        Self::Right,
        Self::Top,
        Self::Bottom,
        Self::PageUp,
        Self::PageDown,
        Self::Open,
        Self::CopyPassword,
        Self::CopyUsername,
        Self::CopyTotp,
        Self::CopyField,
        Self::Reveal,
        Self::Edit,
        Self::New,
        Self::Delete,
        Self::Restore,
        Self::History,
        Self::Favorite,
        Self::MoveToVault,
        Self::CopyToVault,
        Self::Sort,
        Self::Sync,
        Self::Lock,
        Self::Invite,
        Self::Accept,
        Self::Verify,
        Self::ShareLink,
        Self::ToggleSelect,
        Self::SelectRange,
        Self::Tag,
    ];

    /// The name used in keymap files.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::Quit => "quit",
            Self::Help => "help",
            Self::Palette => "palette",
            Self::Search => "search",
            Self::Back => "back",
            Self::NextPane => "next_pane",
            Self::PrevPane => "prev_pane",
            Self::PaneVault => "pane_vault",
            Self::PaneSearch => "pane_search",
            Self::PaneDevices => "pane_devices",
            Self::PaneShare => "pane_share",
            Self::Up => "up",
            Self::Down => "down",
            Self::Left => "left",
            Self::Right => "right",
            Self::Top => "top",
            Self::Bottom => "bottom",
            Self::PageUp => "page_up",
            Self::PageDown => "page_down",
            Self::Open => "open",
            Self::CopyPassword => "copy_password",
            Self::CopyUsername => "copy_username",
            Self::CopyTotp => "copy_totp",
            Self::CopyField => "copy_field",
            Self::Reveal => "reveal",
            Self::Edit => "edit",
            Self::New => "new",
            Self::Delete => "delete",
            Self::Restore => "restore",
            Self::History => "history",
            Self::Favorite => "favorite",
            Self::MoveToVault => "move_to_vault",
            Self::CopyToVault => "copy_to_vault",
            Self::Sort => "sort",
            Self::Sync => "sync",
            Self::Lock => "lock",
            Self::Invite => "invite",
            Self::Accept => "accept",
            Self::Verify => "verify",
            Self::ShareLink => "share_link",
            Self::ToggleSelect => "toggle_select",
            Self::SelectRange => "select_range",
            Self::Tag => "tag",
        }
    }

    /// What it does, for the help overlay and the palette.
    #[must_use]
    pub fn describe(self) -> &'static str {
        match self {
            Self::Quit => "quit (terminal restored)",
            Self::Help => "this help",
            Self::Palette => "command palette",
            Self::Search => "search (kind: tag: …)",
            Self::Back => "back / close",
            Self::NextPane => "next pane or column",
            Self::PrevPane => "previous pane or column",
            Self::PaneVault => "vault pane",
            Self::PaneSearch => "search pane",
            Self::PaneDevices => "devices pane",
            Self::PaneShare => "share pane",
            Self::Up => "move up",
            Self::Down => "move down",
            Self::Left => "column to the left",
            Self::Right => "column to the right",
            Self::Top => "go to the top",
            Self::Bottom => "go to the bottom",
            Self::PageUp => "page up",
            Self::PageDown => "page down",
            Self::Open => "open / choose",
            Self::CopyPassword => "copy the password",
            Self::CopyUsername => "copy the username",
            Self::CopyTotp => "copy the TOTP code",
            Self::CopyField => "copy the selected field",
            Self::Reveal => "reveal / hide a field",
            Self::Edit => "edit item · rename · role",
            Self::New => "new item / vault (share)",
            Self::Delete => "trash · revoke · remove",
            Self::Restore => "restore from trash",
            Self::History => "item history · activity",
            Self::Favorite => "toggle favourite",
            Self::MoveToVault => "move item to a vault",
            Self::CopyToVault => "copy item to a vault",
            Self::Sort => "sort: name / last change",
            Self::Sync => "sync now",
            Self::Lock => "lock now",
            Self::Invite => "invite to the vault",
            Self::Accept => "accept an invitation",
            Self::Verify => "verify a fingerprint",
            Self::ShareLink => "share link to the item",
            Self::ToggleSelect => "select / unselect the item (many)",
            Self::SelectRange => "select from the anchor to here",
            Self::Tag => "tag the selected items",
        }
    }

    #[must_use]
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|a| a.name() == name)
    }
}

/// One key press as bindings see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Key {
    pub code: KeyCode,
    pub mods: KeyModifiers,
}

impl Key {
    /// Normalises a terminal event: shift is folded into the character.
    #[must_use]
    pub fn from_event(ev: &KeyEvent) -> Self {
        let mut mods = ev.modifiers & (KeyModifiers::CONTROL | KeyModifiers::ALT);
        let code = match ev.code {
            KeyCode::Char(c) => KeyCode::Char(if mods.contains(KeyModifiers::CONTROL) {
                c.to_ascii_lowercase()
            } else {
                c
            }),
            KeyCode::BackTab => KeyCode::BackTab,
            other => {
                if ev.modifiers.contains(KeyModifiers::SHIFT) {
                    mods |= KeyModifiers::SHIFT;
                }
                other
            }
        };
        Self { code, mods }
    }

    /// Parses `"ctrl-c"`, `"G"`, `"enter"`, `"f1"`.
    ///
    /// # Errors
    /// A message naming the key that does not parse.
    pub fn parse(spec: &str) -> Result<Self, String> {
        let mut mods = KeyModifiers::NONE;
        let mut rest = spec;
        loop {
            if let Some(r) = rest.strip_prefix("ctrl-") {
                mods |= KeyModifiers::CONTROL;
                rest = r;
            } else if let Some(r) = rest.strip_prefix("alt-") {
                mods |= KeyModifiers::ALT;
                rest = r;
            } else if let Some(r) = rest.strip_prefix("shift-") {
                mods |= KeyModifiers::SHIFT;
                rest = r;
            } else {
                break;
            }
        }
        let code = match rest {
            "enter" => KeyCode::Enter,
            "esc" => KeyCode::Esc,
            "tab" => KeyCode::Tab,
            "backtab" => KeyCode::BackTab,
            "space" => KeyCode::Char(' '),
            "backspace" => KeyCode::Backspace,
            "delete" => KeyCode::Delete,
            "up" => KeyCode::Up,
            "down" => KeyCode::Down,
            "left" => KeyCode::Left,
            "right" => KeyCode::Right,
            "pageup" => KeyCode::PageUp,
            "pagedown" => KeyCode::PageDown,
            "home" => KeyCode::Home,
            "end" => KeyCode::End,
            f if f.len() > 1 && f.starts_with('f') && f[1..].parse::<u8>().is_ok() => {
                KeyCode::F(f[1..].parse().unwrap_or(1))
            }
            c if c.chars().count() == 1 => {
                let ch = c.chars().next().unwrap_or(' ');
                if mods.contains(KeyModifiers::SHIFT) && ch.is_ascii_alphabetic() {
                    mods -= KeyModifiers::SHIFT;
                    KeyCode::Char(ch.to_ascii_uppercase())
                } else {
                    KeyCode::Char(ch)
                }
            }
            _ => return Err(format!("unknown key {spec:?}")),
        };
        if code == KeyCode::BackTab {
            mods -= KeyModifiers::SHIFT;
        }
        Ok(Self { code, mods })
    }

    /// How the help overlay shows it.
    #[must_use]
    pub fn label(&self) -> String {
        let name = match self.code {
            KeyCode::Enter => "Enter".into(),
            KeyCode::Esc => "Esc".into(),
            KeyCode::Tab => "Tab".into(),
            KeyCode::BackTab => "S-Tab".into(),
            KeyCode::Char(' ') => "Space".into(),
            KeyCode::Backspace => "Bksp".into(),
            KeyCode::Delete => "Del".into(),
            KeyCode::Up => "↑".into(),
            KeyCode::Down => "↓".into(),
            KeyCode::Left => "←".into(),
            KeyCode::Right => "→".into(),
            KeyCode::PageUp => "PgUp".into(),
            KeyCode::PageDown => "PgDn".into(),
            KeyCode::Home => "Home".into(),
            KeyCode::End => "End".into(),
            KeyCode::F(n) => format!("F{n}"),
            KeyCode::Char(c) => c.to_string(),
            _ => "?".into(),
        };
        let mut out = String::new();
        if self.mods.contains(KeyModifiers::CONTROL) {
            out.push_str("C-");
        }
        if self.mods.contains(KeyModifiers::ALT) {
            out.push_str("M-");
        }
        if self.mods.contains(KeyModifiers::SHIFT) {
            out.push_str("S-");
        }
        out.push_str(&name);
        out
    }
}

/// A binding: one key or a two-key chord.
pub type Chord = Vec<Key>;

/// The table: every action's chords.
#[derive(Debug, Clone)]
pub struct Keymap {
    bindings: Vec<(Action, Vec<Chord>)>,
}

/// What a key press did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lookup {
    Action(Action),
    /// The first key of a chord: wait for the next.
    Pending,
    None,
}

fn parse_table(text: &str) -> Result<Vec<(Action, Vec<Chord>)>, String> {
    let table: HashMap<String, Vec<String>> =
        toml::from_str(text).map_err(|e| e.message().to_owned())?;
    let mut out = Vec::new();
    for (name, keys) in table {
        let action = Action::from_name(&name).ok_or_else(|| format!("unknown action {name:?}"))?;
        let chords = keys
            .iter()
            .map(|k| {
                k.split_whitespace()
                    .map(Key::parse)
                    .collect::<Result<Chord, _>>()
            })
            .collect::<Result<Vec<_>, _>>()?;
        if chords.iter().any(|c| c.is_empty() || c.len() > 2) {
            return Err(format!("{name}: a binding is one key or two"));
        }
        out.push((action, chords));
    }
    Ok(out)
}

impl Default for Keymap {
    fn default() -> Self {
        let mut bindings = parse_table(DEFAULTS).unwrap_or_default();
        bindings.sort_by_key(|(a, _)| Action::ALL.iter().position(|x| x == a));
        Self { bindings }
    }
}

impl Keymap {
    /// The defaults with a user file's actions replacing theirs.
    ///
    /// # Errors
    /// A message for an unknown action or key.
    pub fn with_overrides(text: &str) -> Result<Self, String> {
        let mut map = Self::default();
        for (action, chords) in parse_table(text)? {
            if let Some(slot) = map.bindings.iter_mut().find(|(a, _)| *a == action) {
                slot.1 = chords;
            } else {
                map.bindings.push((action, chords));
            }
        }
        Ok(map)
    }

    /// Resolves `key`, given the key before it (for chords).
    #[must_use]
    pub fn lookup(&self, prev: Option<Key>, key: Key) -> Lookup {
        if let Some(p) = prev {
            for (a, chords) in &self.bindings {
                if chords
                    .iter()
                    .any(|c| c.len() == 2 && c[0] == p && c[1] == key)
                {
                    return Lookup::Action(*a);
                }
            }
        }
        for (a, chords) in &self.bindings {
            if chords.iter().any(|c| c.len() == 1 && c[0] == key) {
                return Lookup::Action(*a);
            }
        }
        if self
            .bindings
            .iter()
            .any(|(_, chords)| chords.iter().any(|c| c.len() == 2 && c[0] == key))
        {
            return Lookup::Pending;
        }
        Lookup::None
    }

    /// The keys of an action as the user sees them, e.g. `"k/↑"`.
    #[must_use]
    pub fn keys_of(&self, action: Action) -> String {
        self.bindings
            .iter()
            .find(|(a, _)| *a == action)
            .map(|(_, chords)| {
                chords
                    .iter()
                    .map(|c| c.iter().map(Key::label).collect::<Vec<_>>().join(""))
                    .collect::<Vec<_>>()
                    .join("/")
            })
            .unwrap_or_default()
    }

    /// The first key of an action (for short hints).
    #[must_use]
    pub fn first_key(&self, action: Action) -> String {
        self.keys_of(action)
            .split('/')
            .next()
            .unwrap_or_default()
            .to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(c: char) -> Key {
        Key {
            code: KeyCode::Char(c),
            mods: KeyModifiers::NONE,
        }
    }

    #[test]
    fn defaults_cover_every_action() {
        let map = Keymap::default();
        for a in Action::ALL {
            assert!(!map.keys_of(a).is_empty(), "{} has no key", a.name());
        }
        assert_eq!(map.lookup(None, key('q')), Lookup::Action(Action::Quit));
        assert_eq!(map.lookup(None, key('g')), Lookup::Pending);
        assert_eq!(
            map.lookup(Some(key('g')), key('g')),
            Lookup::Action(Action::Top)
        );
    }

    #[test]
    fn overrides_replace_an_actions_keys() {
        let map = Keymap::with_overrides("quit = [\"x\", \"ctrl-q\"]\n").expect("parses");
        assert_eq!(map.lookup(None, key('q')), Lookup::None);
        assert_eq!(map.lookup(None, key('x')), Lookup::Action(Action::Quit));
        let ctrl_q = Key::from_event(&KeyEvent::new(KeyCode::Char('q'), KeyModifiers::CONTROL));
        assert_eq!(map.lookup(None, ctrl_q), Lookup::Action(Action::Quit));
        assert!(Keymap::with_overrides("fly = [\"x\"]").is_err());
        assert!(Keymap::with_overrides("quit = [\"nokey\"]").is_err());
    }
}
