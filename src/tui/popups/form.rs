//! The add/edit form: one row per field, checked by the engine's own
//! validation before it is sent; it closes only when the engine took it.

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;
use unicode_segmentation::UnicodeSegmentation as _;
use unicode_width::UnicodeWidthStr as _;
use uuid::Uuid;

use super::generator::GenState;
use super::{Popup, PopupView};
use crate::engine::model::{Field, FieldKind, Item, ItemKind, field_rank, label, standard_fields};
use crate::engine::{ItemDraft, ItemPart, ItemPatch, check_draft};
use crate::tui::app::App;
use crate::tui::input::{self, Edit, TextInput};
use crate::tui::panes::vault;
use crate::tui::widgets::{
    block, cells, centered, clear_popup, cursor_spans, input_spans, masked, masked_spans, pad_left,
    spinner, truncate,
};
use crate::tui::worker::Request;

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

/// A key in the form.
pub(super) fn key(app: &mut App, mut form: Box<Form>, k: KeyEvent) {
    let ctrl = k.modifiers.contains(KeyModifiers::CONTROL);
    if form.saving {
        // The engine has it: wait for its answer (a few milliseconds).
        app.popups.push(Popup::Form(form));
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
        app.popups.push(Popup::Form(form));
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
        app.popups.push(Popup::Form(form));
        return;
    }
    let n = form.rows.len();
    match k.code {
        KeyCode::Esc => {
            if form.changed() {
                app.popups.push(Popup::Form(form));
                app.popups.push(Popup::Discard);
            } else {
                app.say("Closed; nothing was changed");
            }
            return;
        }
        KeyCode::Char('s') if ctrl => match form.build() {
            Ok(built) => {
                let request = match built {
                    Built::Draft(d) => Request::Job(vault::add(*d)),
                    Built::Patch(id, base, p) => Request::Job(vault::update(id, Some(base), *p)),
                    Built::Nothing => {
                        app.say("Nothing changed");
                        return;
                    }
                };
                form.saving = true;
                form.error = None;
                app.send(Request::Submit(Box::new(request)));
            }
            Err((row, e)) => {
                form.sel = row;
                form.error = Some(e);
            }
        },
        KeyCode::Char('g') if ctrl => {
            if form.rows[form.sel].is_secret() {
                let g = GenState::new();
                app.popups.push(Popup::Form(form));
                app.popups.push(Popup::Generator(g));
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
    app.popups.push(Popup::Form(form));
}

pub(super) fn draw(f: &mut Frame, app: &App, area: Rect, form: &Form) -> Rect {
    let t = &app.theme;
    if let Some(sel) = form.picking {
        let mut lines = vec![
            Line::from(Span::styled("What kind of item?", t.title)),
            Line::default(),
        ];
        for (i, k) in ItemKind::ALL.iter().enumerate() {
            lines.push(Line::from(Span::styled(
                format!(" {:<10}", k.as_str()),
                if i == sel { t.selected } else { t.text },
            )));
        }
        lines.push(Line::default());
        lines.push(Line::from(Span::styled(
            "↑↓ choose · Enter next · Esc cancel",
            t.dim,
        )));
        // Only the picker's own area: the list behind it stays on screen.
        let pr = clear_popup(f, centered(area, 40, 13));
        f.render_widget(
            Paragraph::new(lines).block(block(app, "New item", true)),
            pr,
        );
        return pr;
    }
    let r = clear_popup(f, centered(area, 72, area.height));
    let label_w = form
        .rows
        .iter()
        .map(|r| cells(&r.label))
        .max()
        .unwrap_or(8)
        .clamp(8, 16);
    let value_w = usize::from(r.width.saturating_sub(6)).saturating_sub(label_w);
    let height = usize::from(r.height.saturating_sub(5));
    let per_row: Vec<Vec<Line>> = (0..form.rows.len())
        .map(|i| form_row_lines(app, form, i, label_w, value_w))
        .collect();
    // The first row shown: as late as needed for the selected one to fit.
    let mut first = 0;
    while first < form.sel
        && per_row[first..=form.sel]
            .iter()
            .map(Vec::len)
            .sum::<usize>()
            > height
    {
        first += 1;
    }
    let mut lines: Vec<Line> = per_row
        .into_iter()
        .skip(first)
        .flatten()
        .take(height)
        .collect();
    if let Some(label) = &form.new_label {
        let mut spans = vec![Span::styled(" new field label: ", t.accent)];
        spans.extend(input_spans(label, value_w, t.text, t.accent));
        lines.push(Line::from(spans));
    }
    lines.push(Line::default());
    if form.saving {
        lines.push(Line::from(Span::styled(
            format!("{} Saving…", spinner(app)),
            t.accent,
        )));
    } else if let Some(e) = &form.error {
        lines.push(Line::from(Span::styled(
            crate::text::line(e).into_owned(),
            t.danger,
        )));
    }
    let on_notes = form.rows.get(form.sel).is_some_and(|r| r.value.multiline);
    lines.push(Line::from(Span::styled(
        if on_notes {
            "C-s save  Enter newline  Tab next field  C-n/C-x add/remove field"
        } else {
            "C-s save  C-g generate  C-n/C-x add/remove field  C-t secret  C-r show"
        },
        t.dim,
    )));
    let title = if form.editing.is_some() {
        format!("Edit {}", form.kind)
    } else {
        format!("New {}", form.kind)
    };
    f.render_widget(
        Paragraph::new(lines)
            .block(block(app, &title, true))
            .style(Style::new()),
        r,
    );
    r
}

/// The form's hints.
pub(super) const HINTS: &[(&str, &str)] = &[
    ("C-s", "save"),
    ("C-g", "generate"),
    ("C-n", "add field"),
    ("C-x", "remove"),
    ("Esc", "cancel"),
];

/// One form row's lines: the label, then the value (with the cursor on
/// the selected row; a multi-line value on several lines there).
fn form_row_lines(
    app: &App,
    form: &Form,
    i: usize,
    label_w: usize,
    value_w: usize,
) -> Vec<Line<'static>> {
    let t = &app.theme;
    let row = &form.rows[i];
    let sel = i == form.sel;
    let concealed = matches!(row.kind, RowKind::Field { kind, .. }
        if (kind == FieldKind::Secret || kind == FieldKind::Totp) && !form.reveal);
    let custom = matches!(row.kind, RowKind::Field { custom: true, .. });
    let head = vec![
        Span::styled(if sel { "▸" } else { " " }, t.accent),
        Span::styled(
            format!(
                "{}{}",
                pad_left(&row.label, label_w),
                if custom { "*" } else { " " }
            ),
            if sel {
                t.accent.add_modifier(Modifier::BOLD)
            } else {
                t.dim
            },
        ),
        Span::raw(" "),
    ];
    let text = if sel {
        t.text.add_modifier(Modifier::UNDERLINED)
    } else {
        t.text
    };
    if !sel || row.kind == RowKind::Favorite {
        let shown = if concealed {
            masked(row.value.chars())
        } else {
            row.value.as_str().replace('\n', "⏎")
        };
        // The end of a long value, where typing goes on.
        let mut tail: Vec<&str> = Vec::new();
        let mut used = 0;
        for g in shown.graphemes(true).rev() {
            if used + g.width() > value_w.saturating_sub(1) {
                break;
            }
            used += g.width();
            tail.push(g);
        }
        tail.reverse();
        let mut spans = head;
        spans.push(Span::styled(tail.concat(), text));
        return vec![Line::from(spans)];
    }
    if concealed {
        let mut spans = head;
        spans.extend(masked_spans(&row.value, text, t.accent));
        return vec![Line::from(spans)];
    }
    if !row.value.multiline {
        let mut spans = head;
        spans.extend(input_spans(&row.value, value_w, text, t.accent));
        return vec![Line::from(spans)];
    }
    // A multi-line value: up to five of its lines, around the cursor's.
    let value = row.value.as_str();
    let cursor = row.value.cursor();
    let mut starts = vec![0];
    starts.extend(value.match_indices('\n').map(|(i, _)| i + 1));
    let on = starts.iter().rposition(|&s| s <= cursor).unwrap_or(0);
    let first = on.saturating_sub(4);
    let indent = " ".repeat(label_w + 3);
    let mut out = Vec::new();
    for (n, &start) in starts.iter().enumerate().skip(first).take(5) {
        let end = starts.get(n + 1).map_or(value.len(), |e| e - 1);
        let line = &value[start..end];
        let mut spans = if n == first {
            head.clone()
        } else {
            vec![Span::raw(indent.clone())]
        };
        if n == on {
            let (b, u, a) = input::window(line, cursor - start, value_w);
            spans.extend(cursor_spans(b, u, a, text, t.accent));
        } else {
            spans.push(Span::styled(truncate(line, value_w), text));
        }
        out.push(Line::from(spans));
    }
    out
}

impl PopupView for Box<Form> {
    fn key(self, app: &mut App, k: KeyEvent) {
        key(app, self, k);
    }

    fn draw(&self, f: &mut Frame, app: &App, area: Rect) -> Rect {
        draw(f, app, area, self)
    }

    fn hints(&self) -> &'static [(&'static str, &'static str)] {
        HINTS
    }
}
