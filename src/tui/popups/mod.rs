//! The popups that open over the main screen, one file each. Each owns
//! its state and implements [`PopupView`] (or, for the small ones whose
//! state is a variant's fields, the same functions): a key, drawing from
//! `&self`, its key hints, and the answers addressed to it. The open popups are a stack (`App::popups`): the one on
//! top has the keys and is taken off while it handles one, staying open
//! only if it puts itself (or the next one) back; the generator and the
//! discard question sit over the form, which stays under them.

use crossterm::event::KeyEvent;
use ratatui::Frame;
use ratatui::layout::Rect;
use uuid::Uuid;

use super::app::App;
use super::input::TextInput;
use super::worker::{Answer, To};

pub mod bulk;
pub mod confirm;
pub mod export;
pub mod form;
pub mod generator;
pub mod help;
pub mod history;
pub mod import;
pub mod palette;
pub mod passwd;
pub mod recovery;
pub mod rename;
pub mod share;
pub mod vault_pick;

pub use confirm::Confirmable;
pub use export::ExportState;
pub use form::{Form, Row, RowKind};
pub use generator::GenState;
pub use history::{Compared, Difference, HistoryState};
pub use import::ImportState;
pub use palette::{Command, PaletteItem, palette_matches};
pub use passwd::{PasswdState, strength_of};
pub use recovery::RecoveryState;
pub use vault_pick::VaultPick;

/// One popup.
pub trait PopupView {
    /// A key, with the popup taken out of `app.popup`: it stays open only
    /// if this puts it (or another popup) back.
    fn key(self, app: &mut App, k: KeyEvent);
    /// Draws it over `area`; returns the area it cleared.
    fn draw(&self, f: &mut Frame, app: &App, area: Rect) -> Rect;
    /// The status bar's key hints while it is open.
    fn hints(&self) -> &'static [(&'static str, &'static str)];
    /// The id its jobs' answers are addressed to, if it sends any.
    fn id(&self) -> Option<To> {
        None
    }
    /// An answer addressed to it (taken off the stack meanwhile, so it can
    /// be given the whole app).
    fn answer(&mut self, _app: &mut App, _answer: Answer) {}
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
    /// Over the form: fills its selected secret field.
    Generator(GenState),
    /// Over a changed form: asks before throwing it away; No returns to it.
    Discard,
    History(HistoryState),
    Rename {
        id: Uuid,
        input: TextInput,
    },
    Passwd(PasswdState),
    /// The share pane's: invite, role, vault name, new link, fingerprint.
    ShareInvite(share::InviteState),
    ShareRole(share::RoleState),
    VaultName(share::VaultNameState),
    ShareLink(share::LinkForm),
    Fingerprint(share::Check),
    /// The vault to move or copy the selected item into.
    VaultPick(VaultPick),
    /// Account recovery: status, set up, verify, split.
    Recovery(Box<RecoveryState>),
    /// `openk import` with a form, a progress gauge and the report.
    Import(Box<ImportState>),
    /// `openk export` with a form, a progress gauge and what was written.
    Export(Box<ExportState>),
    /// Tags or a folder for the vault pane's selected items.
    BulkText(bulk::BulkText),
}

impl Popup {
    /// A key for this popup (taken out of `app.popup`).
    pub(crate) fn key(self, app: &mut App, k: KeyEvent) {
        match self {
            Self::Help => help::Help.key(app, k),
            Self::Palette { input, sel } => palette::key(app, input, sel, k),
            Self::Confirm(c) => c.key(app, k),
            Self::Form(form) => form.key(app, k),
            Self::Generator(g) => generator::key(app, g, k),
            Self::Discard => confirm::discard_key(app, k),
            Self::History(h) => h.key(app, k),
            Self::Rename { id, input } => rename::key(app, id, input, k),
            Self::Passwd(p) => p.key(app, k),
            Self::ShareInvite(p) => p.key(app, k),
            Self::ShareRole(p) => p.key(app, k),
            Self::VaultName(p) => p.key(app, k),
            Self::ShareLink(p) => p.key(app, k),
            Self::Fingerprint(p) => p.key(app, k),
            Self::VaultPick(p) => p.key(app, k),
            Self::Recovery(p) => p.key(app, k),
            Self::Import(p) => p.key(app, k),
            Self::Export(p) => p.key(app, k),
            Self::BulkText(p) => p.key(app, k),
        }
    }

    /// Draws it; returns the area it cleared (and nothing outside).
    pub(crate) fn draw(&self, f: &mut Frame, app: &App, area: Rect) -> Rect {
        match self {
            Self::Help => help::Help.draw(f, app, area),
            Self::Palette { input, sel } => palette::draw(f, app, area, input, *sel),
            Self::Confirm(c) => c.draw(f, app, area),
            Self::Form(form) => form.draw(f, app, area),
            Self::Generator(g) => generator::draw(f, app, area, g),
            Self::Discard => confirm::draw_discard(f, app, area, app.form()),
            Self::History(h) => h.draw(f, app, area),
            Self::Rename { input, .. } => rename::draw(f, app, area, input),
            Self::Passwd(p) => p.draw(f, app, area),
            Self::ShareInvite(p) => p.draw(f, app, area),
            Self::ShareRole(p) => p.draw(f, app, area),
            Self::VaultName(p) => p.draw(f, app, area),
            Self::ShareLink(p) => p.draw(f, app, area),
            Self::Fingerprint(p) => p.draw(f, app, area),
            Self::VaultPick(p) => p.draw(f, app, area),
            Self::Recovery(p) => p.draw(f, app, area),
            Self::Import(p) => p.draw(f, app, area),
            Self::Export(p) => p.draw(f, app, area),
            Self::BulkText(p) => p.draw(f, app, area),
        }
    }

    /// Its key hints.
    pub(crate) fn hints(&self) -> &'static [(&'static str, &'static str)] {
        match self {
            Self::Help | Self::Palette { .. } | Self::Rename { .. } => help::Help.hints(),
            Self::Confirm(c) => c.hints(),
            Self::Form(form) => form.hints(),
            Self::Generator(g) => generator::hints(g),
            Self::Discard => confirm::DISCARD_HINTS,
            Self::History(h) => h.hints(),
            Self::Passwd(p) => p.hints(),
            Self::ShareInvite(p) => p.hints(),
            Self::ShareRole(p) => p.hints(),
            Self::VaultName(p) => p.hints(),
            Self::ShareLink(p) => p.hints(),
            Self::Fingerprint(p) => p.hints(),
            Self::VaultPick(p) => p.hints(),
            Self::Recovery(p) => p.hints(),
            Self::Import(p) => p.hints(),
            Self::Export(p) => p.hints(),
            Self::BulkText(_) => bulk::BulkText::HINTS,
        }
    }

    /// The id its jobs' answers are addressed to.
    pub(crate) fn id(&self) -> Option<To> {
        match self {
            Self::Confirm(c) => c.id(),
            Self::Form(form) => form.id(),
            Self::History(h) => h.id(),
            Self::Passwd(p) => p.id(),
            Self::Recovery(p) => p.id(),
            Self::Import(p) => p.id(),
            Self::Export(p) => p.id(),
            _ => None,
        }
    }

    /// An answer addressed to it.
    pub(crate) fn answer(&mut self, app: &mut App, answer: Answer) {
        match self {
            Self::Confirm(c) => c.answer(app, answer),
            Self::Form(form) => form.answer(app, answer),
            Self::History(h) => h.answer(app, answer),
            Self::Passwd(p) => p.answer(app, answer),
            Self::Recovery(p) => p.answer(app, answer),
            Self::Import(p) => p.answer(app, answer),
            Self::Export(p) => p.answer(app, answer),
            _ => {}
        }
    }

    /// Whether it holds a form with unsaved changes.
    #[must_use]
    pub fn has_changed_form(&self) -> bool {
        matches!(self, Self::Form(f) if f.changed())
    }
}
