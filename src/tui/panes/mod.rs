//! The main screen's panes, one file each, and the registry that lists
//! them in tab order.
//!
//! A pane owns its state and implements [`Pane`]: it is offered the keys
//! (after the open popup, before the global actions), the keymap's actions,
//! the mouse, and the worker's answers addressed to its id; it draws itself
//! from `&self` and names its key hints. What drawing must remember (list
//! offsets, the areas the mouse needs) lives in `Cell`s the pane owns.

use std::any::Any;

use crossterm::event::{KeyEvent, MouseEvent};
use ratatui::Frame;
use ratatui::layout::Rect;

use super::app::App;
use super::keymap::Action;
use super::worker::{Answer, To};

pub mod devices;
pub mod search;
pub mod share;
pub mod vault;

/// The panes, in tab order: adding a pane is one line here.
#[must_use]
pub fn registry() -> Vec<Box<dyn Pane>> {
    vec![
        Box::new(vault::VaultPane::default()),
        Box::new(search::SearchPane::default()),
        Box::new(devices::DevicesPane::default()),
        Box::new(share::SharePane::default()),
    ]
}

/// `cur` moved by `delta` within `0..len` (0 when empty).
#[must_use]
pub fn step(cur: usize, len: usize, delta: i64) -> usize {
    if len == 0 {
        return 0;
    }
    let next = i64::try_from(cur).unwrap_or(0).saturating_add(delta);
    usize::try_from(next.clamp(0, i64::try_from(len - 1).unwrap_or(0))).unwrap_or(0)
}

/// What names a pane's tab.
#[derive(Clone, Copy, Debug)]
pub struct Tab {
    /// The tab it is, and the address of the worker's answers.
    pub id: To,
    /// The tab's title.
    pub title: &'static str,
    /// The action that brings it to the front (`1`, `2`, …).
    pub action: Action,
}

impl Tab {
    #[must_use]
    pub const fn new(id: To, title: &'static str, action: Action) -> Self {
        Self { id, title, action }
    }
}

/// One pane of the main screen.
pub trait Pane: Any {
    /// Its tab: id, title and the action that brings it to the front.
    fn tab(&self) -> Tab;
    /// Its id: the tab it is, and the address of the worker's answers.
    fn id(&self) -> To {
        self.tab().id
    }
    /// The tab's title.
    fn title(&self) -> &'static str {
        self.tab().title
    }
    /// The action that brings it to the front (`1`, `2`, …).
    fn action(&self) -> Action {
        self.tab().action
    }
    /// A key before the keymap sees it (a text field of the pane's own);
    /// whether the pane used it.
    fn key(&mut self, _app: &mut App, _k: KeyEvent) -> bool {
        false
    }
    /// An action (a key through the keymap, or the palette); whether the
    /// pane took it. Those it leaves go to the app's global actions.
    fn act(&mut self, app: &mut App, a: Action) -> bool;
    /// A mouse event while it is in front.
    fn mouse(&mut self, _app: &mut App, _m: MouseEvent) {}
    /// It came to the front.
    fn shown(&mut self, _app: &mut App) {}
    /// Whether it waits for the server (`Esc` stops waiting).
    fn busy(&self) -> bool {
        false
    }
    /// The network work was cancelled (`Esc`).
    fn cancelled(&mut self) {}
    /// A worker answer addressed to its id.
    fn answer(&mut self, app: &mut App, answer: Answer);
    /// Forget everything decrypted (the vault was locked).
    fn reset(&mut self);
    /// Draws it into `area`; nothing here changes what it shows.
    fn draw(&self, f: &mut Frame, app: &App, area: Rect);
    /// The status bar's key hints while it is in front.
    fn hints(&self, app: &App) -> Vec<(String, &'static str)>;
}

/// Stands in for a pane while that pane handles an event (it is then taken
/// out of the registry, so that it can be given the whole [`App`]).
pub(crate) struct Vacant(pub To);

impl Pane for Vacant {
    fn tab(&self) -> Tab {
        Tab::new(self.0, "", Action::Back)
    }
    fn act(&mut self, _app: &mut App, _a: Action) -> bool {
        false
    }
    fn answer(&mut self, _app: &mut App, _answer: Answer) {}
    fn reset(&mut self) {}
    fn draw(&self, _f: &mut Frame, _app: &App, _area: Rect) {}
    fn hints(&self, _app: &App) -> Vec<(String, &'static str)> {
        Vec::new()
    }
}
