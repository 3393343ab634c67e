//! The vault pane: the sidebar (folders, tags, trash), the item list and
//! the selected item's details. It owns the decrypted list (overviews) and
//! the selected item; the search pane and the popups read them from here.

use std::cell::Cell;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use crossterm::event::{MouseButton, MouseEvent, MouseEventKind};
use ratatui::Frame;
use ratatui::layout::{Position, Rect};
use rayon::slice::ParallelSliceMut as _;
use uuid::Uuid;

use super::{Pane, Tab, step};
use crate::engine::bulk::BulkOp;
use crate::engine::model::{Entry, Field, Item, ItemKind};
use crate::engine::{ItemPatch, VersionSummary};
use crate::tui::app::{App, Confirmable, Form, HistoryState, Popup};
use crate::tui::keymap::Action;
use crate::tui::popups::bulk::{BulkAsk, BulkText};
use crate::tui::popups::vault_pick::{self, Picked, Transfer};
use crate::tui::worker::{Answer, Request};

mod copy;
mod draw;
mod jobs;

use copy::CopyWhat;

pub use jobs::*;

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

/// Where the pane's columns were last drawn (for the mouse).
#[derive(Debug, Default)]
pub struct Areas {
    pub sidebar: Cell<Rect>,
    pub list: Cell<Rect>,
    pub details: Cell<Rect>,
}

/// The vault pane's state.
#[derive(Debug)]
pub struct VaultPane {
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
    /// The first listed row on screen (kept by drawing, read by the mouse).
    pub offset: Cell<usize>,
    pub detail: Option<Item>,
    /// The usage of the item in `detail`, once read.
    pub detail_use: Option<Used>,
    pub field_sel: usize,
    pub revealed: HashSet<usize>,
    pub focus: Focus,
    pub areas: Areas,
    pending_copy: Option<(Uuid, CopyWhat)>,
    pending_select: Option<Uuid>,
    /// A history popup being re-read after its item changed.
    history_refresh: Option<Uuid>,
    /// The items selected for a bulk action (`space`, `V`; `Esc` clears).
    pub marked: HashSet<Uuid>,
    /// Where a range selection (`V`) starts.
    anchor: Option<Uuid>,
}

impl Default for VaultPane {
    fn default() -> Self {
        Self {
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
            offset: Cell::new(0),
            detail: None,
            detail_use: None,
            field_sel: 0,
            revealed: HashSet::new(),
            focus: Focus::List,
            areas: Areas::default(),
            pending_copy: None,
            pending_select: None,
            history_refresh: None,
            marked: HashSet::new(),
            anchor: None,
        }
    }
}

impl Pane for VaultPane {
    fn tab(&self) -> Tab {
        Tab::new(TO, "Vault", Action::PaneVault)
    }

    fn act(&mut self, app: &mut App, a: Action) -> bool {
        if let Some(delta) = a.movement() {
            self.move_by(app, delta);
            return true;
        }
        match a {
            Action::Back if !self.marked.is_empty() => {
                self.clear_marks();
                app.say("Selection cleared");
            }
            Action::ToggleSelect => self.toggle_mark(app),
            Action::SelectRange => self.mark_range(app),
            Action::Back => {
                if self.focus == Focus::Details {
                    self.focus = Focus::List;
                } else if self.filter != Filter::All {
                    self.set_filter(app, Filter::All);
                    self.side_sel = 1;
                }
            }
            Action::NextPane if self.focus != Focus::Details => self.move_focus(true),
            Action::PrevPane if self.focus != Focus::Sidebar => self.move_focus(false),
            Action::Left => self.move_focus(false),
            Action::Right => self.move_focus(true),
            Action::Open => match self.focus {
                Focus::Sidebar => self.focus = Focus::List,
                Focus::List => {
                    if self.selected_id().is_some() {
                        self.focus = Focus::Details;
                    }
                }
                Focus::Details => self.copy(app, CopyWhat::Selected),
            },
            _ => return self.item_action(app, a),
        }
        true
    }

    fn mouse(&mut self, app: &mut App, m: MouseEvent) {
        let at = Position::new(m.column, m.row);
        match m.kind {
            MouseEventKind::ScrollDown => self.move_by(app, 3),
            MouseEventKind::ScrollUp => self.move_by(app, -3),
            MouseEventKind::Down(MouseButton::Left) => {
                let row_in = |r: Rect| -> Option<usize> {
                    (r.contains(at) && at.y > r.y).then(|| usize::from(at.y - r.y - 1))
                };
                if let Some(row) = row_in(self.areas.list.get()) {
                    self.focus = Focus::List;
                    let i = self.offset.get() + row;
                    if i < self.shown.len() && i != self.sel {
                        self.sel = i;
                        self.selection_changed(app);
                    }
                } else if let Some(row) = row_in(self.areas.sidebar.get()) {
                    self.focus = Focus::Sidebar;
                    if let Some(SideRow::Filter(f, _)) = self.sidebar.get(row).cloned() {
                        self.side_sel = row;
                        self.set_filter(app, f);
                    }
                } else if self.areas.details.get().contains(at) {
                    self.focus = Focus::Details;
                }
            }
            _ => {}
        }
    }

    fn answer(&mut self, app: &mut App, answer: Answer) {
        let answer = match answer.take::<Box<Item>>() {
            Ok(item) => return self.on_item(app, item),
            Err(a) => a,
        };
        let answer = match answer.take::<Saved>() {
            Ok(saved) => return self.on_saved(app, saved),
            Err(a) => a,
        };
        let answer = match answer.take::<Used>() {
            Ok(used) => {
                if self.detail.as_ref().is_some_and(|d| d.r.id == used.0) {
                    self.detail_use = Some(used);
                }
                return;
            }
            Err(a) => a,
        };
        let answer = match answer.take::<Picked>() {
            Ok(Picked::Picker(p)) => return app.popups.push(Popup::VaultPick(p)),
            Ok(Picked::Nothing(why)) => return app.warn(why),
            Err(a) => a,
        };
        match answer.take::<Versions>() {
            Ok(Versions(id, versions)) => self.on_versions(app, id, versions),
            Err(a) => tracing::warn!(?a, "an answer the vault pane does not read"),
        }
    }

    fn reset(&mut self) {
        let sort = self.sort;
        *self = Self {
            sort,
            ..Self::default()
        };
    }

    fn draw(&self, f: &mut Frame, app: &App, area: Rect) {
        draw::draw(self, f, app, area);
    }

    fn hints(&self, app: &App) -> Vec<(String, &'static str)> {
        let k = |a: Action| app.keymap.first_key(a);
        let mut out = Vec::new();
        if !self.marked.is_empty() {
            out.push((k(Action::Tag), "tag"));
            out.push((k(Action::MoveToVault), "move"));
            out.push((k(Action::Delete), "trash"));
            out.push((k(Action::ToggleSelect), "select"));
            out.push((k(Action::Back), "clear"));
            return out;
        }
        if self.filter == Filter::Trash {
            out.push((k(Action::Restore), "restore"));
        }
        out.push((k(Action::CopyPassword), "copy pw"));
        out.push((k(Action::CopyUsername), "user"));
        out.push((k(Action::CopyTotp), "totp"));
        out.push((k(Action::Reveal), "reveal"));
        out.push((k(Action::New), "new"));
        out.push((k(Action::Edit), "edit"));
        if self.filter != Filter::Trash {
            out.push((k(Action::Delete), "delete"));
        }
        out
    }
}

impl VaultPane {
    /// The actions on the selected item, which work from any pane (the
    /// app hands them here when the pane in front leaves them).
    pub(crate) fn item_action(&mut self, app: &mut App, a: Action) -> bool {
        if self.bulk_action(app, a) {
            return true;
        }
        match a {
            Action::CopyPassword => self.copy(app, CopyWhat::Password),
            Action::CopyUsername => self.copy(app, CopyWhat::Username),
            Action::CopyTotp => self.copy(app, CopyWhat::Totp),
            Action::CopyField => self.copy(app, CopyWhat::Selected),
            Action::Reveal => {
                if let Some(item) = &self.detail
                    && !self.revealed.remove(&self.field_sel)
                {
                    // Showing a secret is a use of the item.
                    let secret = item
                        .details
                        .fields
                        .get(self.field_sel)
                        .is_some_and(Field::is_concealed);
                    self.revealed.insert(self.field_sel);
                    // Shown from the version on disk now.
                    if let Some(id) = self.selected_id() {
                        app.send(Request::Job(read_item(id)));
                        if secret {
                            app.send(Request::Job(record_use(id)));
                        }
                    }
                }
            }
            Action::Edit => {
                if let Some(item) = &self.detail {
                    if item.overview.kind == ItemKind::Key {
                        app.warn("A named key changes through `openk key rotate`; rename it with `openk edit NAME --name NEW`");
                    } else if item.overview.trashed_at.is_some() {
                        app.warn("Restore the item (R) before editing it");
                    } else {
                        app.popups.push(Popup::Form(Box::new(Form::edit(item))));
                    }
                }
            }
            Action::Delete => {
                if let Some(e) = self.selected_id().and_then(|id| self.entry(id)) {
                    if e.overview.trashed_at.is_some() {
                        app.warn("Already in the trash; R restores it");
                    } else {
                        app.popups.push(Popup::Confirm(Confirmable::Trash(
                            e.r.id,
                            e.overview.name.clone(),
                        )));
                    }
                }
            }
            Action::Restore => {
                if let Some(e) = self.selected_id().and_then(|id| self.entry(id)) {
                    if e.overview.trashed_at.is_some() {
                        let id = e.r.id;
                        app.send(Request::Job(restore(id)));
                    } else {
                        app.warn("Not in the trash");
                    }
                }
            }
            Action::History => {
                if let Some(id) = self.selected_id() {
                    app.send(Request::Job(history(id)));
                }
            }
            Action::MoveToVault | Action::CopyToVault => {
                if let Some(id) = self.selected_id() {
                    let mode = if a == Action::MoveToVault {
                        Transfer::Move
                    } else {
                        Transfer::Copy
                    };
                    app.send(Request::Job(vault_pick::choices(id, mode)));
                }
            }
            Action::Favorite => {
                if let Some(e) = self.selected_id().and_then(|id| self.entry(id)) {
                    let patch = ItemPatch {
                        favorite: Some(!e.overview.favorite),
                        ..ItemPatch::default()
                    };
                    let (id, base) = (e.r.id, e.r.version);
                    app.send(Request::Job(update(id, Some(base), patch)));
                }
            }
            Action::ShareLink => super::share::open_link_form(app, self.share_target()),
            Action::Sort => {
                self.sort = match self.sort {
                    Sort::Name => Sort::Changed,
                    Sort::Changed => Sort::Name,
                };
                let keep = self.selected_id();
                self.refilter(app, keep);
                app.say(match self.sort {
                    Sort::Name => "Sorted by name",
                    Sort::Changed => "Sorted by last change",
                });
            }
            _ => return false,
        }
        true
    }

    /// The actions on the selected items (`space`, `V`) when there are
    /// any: tags, move (a folder or a vault) and trash, each one engine
    /// bulk call after a confirmation naming the count. `T` without a
    /// selection tags the item under the cursor.
    fn bulk_action(&mut self, app: &mut App, a: Action) -> bool {
        let ids = self.marked_ids();
        match a {
            Action::Tag => {
                let ids = if ids.is_empty() {
                    self.selected_id().into_iter().collect()
                } else {
                    ids
                };
                if !ids.is_empty() {
                    app.popups
                        .push(Popup::BulkText(BulkText::new(ids, BulkAsk::Tags)));
                }
            }
            _ if ids.is_empty() => return false,
            Action::Delete => {
                let live: Vec<Uuid> = ids
                    .into_iter()
                    .filter(|id| {
                        self.entry(*id)
                            .is_some_and(|e| e.overview.trashed_at.is_none())
                    })
                    .collect();
                if live.is_empty() {
                    app.warn("The selected items are in the trash already");
                } else {
                    app.popups.push(Popup::Confirm(Confirmable::Bulk {
                        ids: live,
                        op: BulkOp::Trash,
                        what: "Move to the trash".to_owned(),
                    }));
                }
            }
            Action::MoveToVault => app.send(Request::Job(vault_pick::choices_many(ids))),
            _ => return false,
        }
        true
    }

    /// The selected items, in the order the list shows them.
    #[must_use]
    pub fn marked_ids(&self) -> Vec<Uuid> {
        if self.marked.is_empty() {
            return Vec::new();
        }
        let mut ids: Vec<Uuid> = self
            .shown
            .iter()
            .map(|&i| self.entries[i as usize].r.id)
            .filter(|id| self.marked.contains(id))
            .collect();
        // Selected items another filter hides still count.
        let listed: HashSet<Uuid> = ids.iter().copied().collect();
        ids.extend(self.marked.iter().filter(|id| !listed.contains(id)));
        ids
    }

    fn clear_marks(&mut self) {
        self.marked.clear();
        self.anchor = None;
    }

    /// `space`: selects or unselects the row under the cursor, which
    /// becomes the anchor of a range, then moves down a row.
    fn toggle_mark(&mut self, app: &mut App) {
        let Some(id) = self.selected_id() else { return };
        if !self.marked.remove(&id) {
            self.marked.insert(id);
        }
        self.anchor = Some(id);
        self.focus = Focus::List;
        self.move_by(app, 1);
    }

    /// `V`: selects every row from the anchor to the cursor (the first
    /// `V` sets the anchor here).
    fn mark_range(&mut self, app: &mut App) {
        let Some(here) = self.selected_id() else {
            return;
        };
        let from = self.anchor.and_then(|a| self.position_of(a));
        match from {
            Some(from) => {
                let (lo, hi) = (from.min(self.sel), from.max(self.sel));
                for &i in &self.shown[lo..=hi] {
                    self.marked.insert(self.entries[i as usize].r.id);
                }
            }
            None => {
                self.anchor = Some(here);
                self.marked.insert(here);
            }
        }
        app.say(format!("{} selected", self.marked.len()));
    }

    /// The item a share link would hold: the selected one (not in the
    /// trash), its name, and its field labels when its details are read
    /// (never the values).
    pub(crate) fn share_target(&self) -> Option<(Uuid, String, Vec<String>)> {
        let e = self
            .selected_id()
            .and_then(|id| self.entry(id))
            .filter(|e| e.overview.trashed_at.is_none())?;
        let labels = self
            .detail
            .as_ref()
            .filter(|d| d.r.id == e.r.id)
            .map(|d| d.details.fields.iter().map(|f| f.label.clone()).collect())
            .unwrap_or_default();
        Some((e.r.id, e.overview.name.clone(), labels))
    }

    /// Shows the item with this id (a search hit): in the trash filter
    /// when it is trashed, else in all items.
    pub(crate) fn jump_to(&mut self, app: &mut App, id: Uuid) {
        let trashed = self
            .entry(id)
            .is_some_and(|e| e.overview.trashed_at.is_some());
        self.set_filter(app, if trashed { Filter::Trash } else { Filter::All });
        if let Some(pos) = self.position_of(id) {
            self.sel = pos;
        }
        self.focus = Focus::List;
        self.selection_changed(app);
    }

    /// After any reply: selects an item just added once the list has it.
    pub(crate) fn select_pending(&mut self, app: &mut App) {
        let Some(id) = self.pending_select.take() else {
            return;
        };
        self.set_filter(app, Filter::All);
        if let Some(pos) = self.position_of(id) {
            self.sel = pos;
            self.focus = Focus::List;
            self.selection_changed(app);
        } else {
            // The entries with the new item are on their way.
            self.pending_select = Some(id);
        }
    }

    /// Where the item with this id stands in the shown list.
    fn position_of(&self, id: Uuid) -> Option<usize> {
        self.shown
            .iter()
            .position(|&i| self.entries[i as usize].r.id == id)
    }

    /// A failed request: a copy waiting for its item is off.
    pub(crate) fn forget_copy(&mut self) {
        self.pending_copy = None;
    }

    fn move_by(&mut self, app: &mut App, delta: i64) {
        match self.focus {
            Focus::Sidebar => {
                let mut i = step(self.side_sel, self.sidebar.len(), delta);
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
                    self.set_filter(app, f);
                }
            }
            Focus::List => {
                let before = self.sel;
                self.sel = step(self.sel, self.shown.len(), delta);
                if before != self.sel {
                    self.selection_changed(app);
                }
            }
            Focus::Details => {
                let n = self.detail.as_ref().map_or(0, |i| i.details.fields.len());
                self.field_sel = step(self.field_sel, n, delta);
            }
        }
    }

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

    pub(crate) fn selection_changed(&mut self, app: &mut App) {
        match self.selected_id() {
            Some(id) => {
                if self.detail.as_ref().is_none_or(|d| d.r.id != id) {
                    self.revealed.clear();
                    self.field_sel = 0;
                    self.detail = None;
                    self.detail_use = None;
                    app.send(Request::Job(read_item(id)));
                }
            }
            None => {
                self.revealed.clear();
                self.detail = None;
                self.detail_use = None;
            }
        }
    }

    pub(crate) fn set_entries(&mut self, app: &mut App, entries: Arc<Vec<Entry>>) {
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
        let by_id = &self.by_id;
        self.marked.retain(|id| by_id.contains_key(id));
        if self.anchor.is_some_and(|a| !by_id.contains_key(&a)) {
            self.anchor = None;
        }
        self.side_sel = side
            .iter()
            .position(|r| matches!(r, SideRow::Filter(f, _) if *f == self.filter))
            .unwrap_or_else(|| {
                self.filter = Filter::All;
                1
            });
        self.sidebar = side;
        self.refilter(app, keep);
    }

    pub(crate) fn set_filter(&mut self, app: &mut App, f: Filter) {
        if self.filter != f {
            self.filter = f;
            self.sel = 0;
            self.offset.set(0);
            self.refilter(app, None);
        }
        if let Some(i) = self
            .sidebar
            .iter()
            .position(|r| matches!(r, SideRow::Filter(x, _) if *x == self.filter))
        {
            self.side_sel = i;
        }
    }

    fn refilter(&mut self, app: &mut App, keep: Option<Uuid>) {
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
        self.selection_changed(app);
    }

    /// After the list changed: re-reads the details and the history popup
    /// of an item another writer (a sync, a CLI) moved to a new version.
    pub(crate) fn reread_stale_views(&mut self, app: &mut App) {
        if let Some(d) = &self.detail {
            let id = d.r.id;
            if self.entry(id).is_some_and(|e| e.r.version != d.r.version) {
                app.send(Request::Job(read_item(id)));
            }
        }
        if let Some(Popup::History(h)) = app.popups.last() {
            let id = h.id;
            let shown = h.versions.last().map(|v| v.version);
            if self.entry(id).is_some_and(|e| Some(e.r.version) != shown) {
                self.history_refresh = Some(id);
                app.send(Request::Job(history(id)));
            }
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

    fn on_item(&mut self, app: &mut App, item: Box<Item>) {
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
            // Other devices' uses may have come with a sync meanwhile.
            app.send(Request::Job(usage_of(id)));
            if let Some(Popup::History(h)) = app.popups.last()
                && h.id == id
                && h.versions.last().is_none_or(|v| v.version != version)
            {
                self.history_refresh = Some(id);
                app.send(Request::Job(history(id)));
            }
            if let Some((id, what)) = self.pending_copy.take()
                && Some(id) == self.selected_id()
            {
                self.copy_now(app, what);
            }
        }
    }

    fn on_saved(&mut self, app: &mut App, saved: Saved) {
        match saved {
            Saved::Written(verb, item) => {
                let name = item.overview.name.clone();
                let id = item.r.id;
                app.say(match verb {
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
            Saved::Transferred(item, said) => {
                app.say(said);
                self.field_sel = default_field(&item);
                self.revealed.clear();
                // Selected once the list has it (a trashed one is listed
                // under Trash, where it already was).
                if item.overview.trashed_at.is_none() {
                    self.pending_select = Some(item.r.id);
                }
                self.detail = Some(*item);
            }
            Saved::Bulk(said) => {
                self.clear_marks();
                app.say(said);
            }
            Saved::Merged {
                item,
                other,
                conflicts,
            } => {
                let name = item.overview.name.clone();
                if conflicts.is_empty() {
                    app.say(format!(
                        "Saved {name}, merged with version {other} saved elsewhere meanwhile"
                    ));
                } else {
                    let key = app.keymap.first_key(Action::History);
                    app.warn(format!(
                        "Saved {name}; {} also changed elsewhere meanwhile: kept yours, the other is version {other} ({key}: history)",
                        conflicts.join(", ")
                    ));
                }
                if self.detail.as_ref().is_some_and(|d| d.r.id == item.r.id) {
                    self.detail = Some(*item);
                }
            }
        }
    }

    fn on_versions(&mut self, app: &mut App, id: Uuid, versions: Vec<VersionSummary>) {
        let mut reveal = false;
        if self.history_refresh.take() == Some(id) {
            // A re-read after a change: only for the popup still open.
            match app.popups.last() {
                Some(Popup::History(h)) if h.id == id => reveal = h.reveal,
                _ => return,
            }
        }
        let name = self
            .entry(id)
            .map(|e| e.overview.name.clone())
            .unwrap_or_default();
        let sel = versions.len().saturating_sub(1);
        // It replaces the history popup on top (a re-read, or a second
        // answer for the same item).
        if matches!(app.popups.last(), Some(Popup::History(_))) {
            app.popups.pop();
        }
        app.popups.push(Popup::History(HistoryState {
            id,
            name,
            versions,
            sel,
            compared: None,
            reveal,
        }));
    }
}

/// The field selected first: the kind's primary one, else the first secret.
pub(crate) fn default_field(item: &Item) -> usize {
    let fields = &item.details.fields;
    let primary = item.overview.kind.primary_field();
    fields
        .iter()
        .position(|f| f.label.eq_ignore_ascii_case(primary))
        .or_else(|| fields.iter().position(Field::is_concealed))
        .unwrap_or(0)
}
