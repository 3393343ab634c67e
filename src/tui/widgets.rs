//! Drawing helpers every pane and popup uses: bordered blocks, popups'
//! areas, text cut to terminal cells, inputs with their cursor, list rows.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, BorderType, Borders, Clear};
use unicode_segmentation::UnicodeSegmentation as _;
use unicode_width::UnicodeWidthStr as _;

use super::app::App;
use super::input::{self, TextInput};
use super::panes::vault::Filter;
use super::popups::strength_of;
use crate::engine::model::{Entry, ItemKind};
pub(crate) use crate::util::time::ago;

/// Shown instead of a secret.
pub(crate) const MASK: &str = "••••••••";
const SPINNER: [&str; 8] = ["⠋", "⠙", "⠹", "⠸", "⠼", "⠴", "⠦", "⠧"];

pub(crate) fn centered(area: Rect, w: u16, h: u16) -> Rect {
    let w = w.min(area.width);
    let h = h.min(area.height);
    Rect::new(
        area.x + (area.width - w) / 2,
        area.y + (area.height - h) / 2,
        w,
        h,
    )
}

pub(crate) fn block<'a>(app: &App, title: &'a str, focused: bool) -> Block<'a> {
    Block::default()
        .borders(Borders::ALL)
        .border_type(BorderType::Rounded)
        .border_style(if focused {
            app.theme.border_focus
        } else {
            app.theme.border
        })
        .title(Span::styled(format!(" {title} "), app.theme.title))
}

pub(crate) fn spinner(app: &App) -> &'static str {
    SPINNER[app.spinner % SPINNER.len()]
}

pub(crate) fn masked(len: usize) -> String {
    "•".repeat(len.min(32))
}

/// An input's text with its cursor, in `width` cells: the grapheme under
/// the cursor reversed, or a bar after the end.
pub(crate) fn input_spans(
    input: &TextInput,
    width: usize,
    style: Style,
    cursor: Style,
) -> Vec<Span<'static>> {
    let (before, under, after) = input::window(input.as_str(), input.cursor(), width);
    cursor_spans(before, under, after, style, cursor)
}

/// A secret input as a mask, with its cursor.
pub(crate) fn masked_spans(input: &TextInput, style: Style, cursor: Style) -> Vec<Span<'static>> {
    let n = input.chars().min(32);
    let at = input.chars_before_cursor().min(n) * '•'.len_utf8();
    let (before, under, after) = input::window(&masked(n), at, 34);
    cursor_spans(before, under, after, style, cursor)
}

pub(crate) fn cursor_spans(
    before: String,
    under: String,
    after: String,
    style: Style,
    cursor: Style,
) -> Vec<Span<'static>> {
    let mut out = vec![Span::styled(before, style)];
    if under.is_empty() {
        out.push(Span::styled("▏", cursor));
    } else {
        out.push(Span::styled(under, style.add_modifier(Modifier::REVERSED)));
    }
    if !after.is_empty() {
        out.push(Span::styled(after, style));
    }
    out
}

/// Clears exactly `r` for a popup. A wide character that the popup's left
/// edge cuts in half cannot be shown half: it becomes a space (else the
/// terminal draws it over the popup's border, and the diff skips the
/// border's cell).
pub(crate) fn clear_popup(f: &mut Frame, r: Rect) -> Rect {
    let buf = f.buffer_mut();
    if r.x > buf.area.x {
        for y in r.top()..r.bottom() {
            if buf[(r.x - 1, y)].symbol().width() > 1 {
                buf[(r.x - 1, y)].set_symbol(" ");
            }
        }
    }
    f.render_widget(Clear, r);
    r
}

pub(crate) fn filter_label(f: &Filter) -> String {
    match f {
        Filter::All => "All items".into(),
        Filter::Favorites => "Favorites".into(),
        Filter::Conflicts => "Conflicts".into(),
        Filter::Trash => "Trash".into(),
        Filter::Folder(n) => n.clone(),
        Filter::Tag(n) => format!("#{n}"),
    }
}

pub(crate) fn kind_marker(k: ItemKind) -> &'static str {
    match k {
        ItemKind::Login => "login",
        ItemKind::Note => "note",
        ItemKind::Card => "card",
        ItemKind::Identity => "ident",
        ItemKind::ApiKey => "api",
        ItemKind::SshKey => "ssh",
        ItemKind::Custom => "other",
        ItemKind::Key => "key",
    }
}

/// Terminal cells `s` takes (emoji, ZWJ sequences and CJK take two).
pub(crate) fn cells(s: &str) -> usize {
    s.width()
}

/// `s` cut to at most `w` cells (whole graphemes), with `…` when cut.
/// Every string a pane shows passes here, so it goes through
/// [`crate::text::cell`] first (controls, bidi overrides, line breaks).
pub(crate) fn truncate(s: &str, w: usize) -> String {
    let clean = crate::text::cell(s);
    let s = clean.as_ref();
    if cells(s) <= w {
        return s.to_owned();
    }
    let mut out = String::new();
    let mut used = 0;
    for g in s.graphemes(true) {
        if used + g.width() + 1 > w {
            break;
        }
        used += g.width();
        out.push_str(g);
    }
    if w > 0 {
        out.push('…');
    }
    out
}

/// `s` in exactly `w` cells, left-aligned.
pub(crate) fn pad_right(s: &str, w: usize) -> String {
    let s = truncate(s, w);
    let pad = w.saturating_sub(cells(&s));
    format!("{s}{}", " ".repeat(pad))
}

/// `s` in exactly `w` cells, right-aligned.
pub(crate) fn pad_left(s: &str, w: usize) -> String {
    let s = truncate(s, w);
    let pad = w.saturating_sub(cells(&s));
    format!("{}{s}", " ".repeat(pad))
}

pub(crate) fn entry_line(
    app: &App,
    e: &Entry,
    width: usize,
    selected: bool,
    focused: bool,
    matches: &[u32],
) -> Line<'static> {
    let t = &app.theme;
    let o = &e.overview;
    let base = if selected {
        if focused {
            t.selected
        } else {
            t.accent.add_modifier(Modifier::BOLD | Modifier::REVERSED)
        }
    } else {
        t.text
    };
    let mark = if o.conflict.is_some() {
        "!"
    } else if o.favorite {
        "★"
    } else {
        " "
    };
    let kind = kind_marker(o.kind);
    let name_w = width.saturating_sub(kind.len() + 3);
    let name = truncate(&o.name, name_w);
    let mut spans = vec![Span::styled(
        mark.to_owned(),
        if o.conflict.is_some() && !selected {
            t.danger
        } else {
            base
        },
    )];
    spans.push(Span::styled(" ", base));
    // One span per grapheme (a ZWJ sequence stays whole), highlighted when
    // any of its characters matched.
    let mut at = 0_usize;
    for g in name.graphemes(true) {
        let n = g.chars().count();
        let hit = (at..at + n).any(|i| matches.contains(&u32::try_from(i).unwrap_or(u32::MAX)));
        at += n;
        spans.push(Span::styled(
            g.to_owned(),
            if hit { base.patch(t.matched) } else { base },
        ));
    }
    let used = 2 + cells(&name);
    let pad = width.saturating_sub(used + kind.len());
    spans.push(Span::styled(" ".repeat(pad), base));
    spans.push(Span::styled(
        kind.to_owned(),
        if selected { base } else { t.dim },
    ));
    Line::from(spans)
}

/// One line of key hints: each key (accented) then what it does (dim).
pub(crate) fn keys_line(app: &App, keys: &[(&str, &str)]) -> Line<'static> {
    let t = &app.theme;
    let mut spans = Vec::new();
    for (i, (key, what)) in keys.iter().enumerate() {
        let gap = if i + 1 < keys.len() { "   " } else { "" };
        spans.push(Span::styled((*key).to_owned(), t.accent));
        spans.push(Span::styled(format!(" {what}{gap}"), t.dim));
    }
    Line::from(spans)
}

/// A yes/no question's lines: the text, then `y` (in the danger colour)
/// with what it does and the keys that answer no.
pub(crate) fn question_lines(
    app: &App,
    text: String,
    yes: &str,
    no_keys: &str,
    no: &str,
) -> Vec<Line<'static>> {
    let t = &app.theme;
    vec![
        Line::from(Span::styled(text, t.text)),
        Line::default(),
        Line::from(vec![
            Span::styled("y", t.danger),
            Span::styled(format!(" {yes}   "), t.dim),
            Span::styled(no_keys.to_owned(), t.accent),
            Span::styled(format!(" {no}"), t.dim),
        ]),
    ]
}

/// A text field after its label: what a prompt line shows.
pub(crate) fn prompt_line(
    label: Span<'static>,
    input: &TextInput,
    width: u16,
    app: &App,
) -> Line<'static> {
    let mut spans = vec![label];
    spans.extend(input_spans(
        input,
        usize::from(width),
        app.theme.text,
        app.theme.accent,
    ));
    Line::from(spans)
}

/// The line under a form-like screen's fields: the work under way (with
/// the spinner), else the last error, else blank.
pub(crate) fn progress_line(
    app: &App,
    working: Option<&str>,
    error: Option<&str>,
) -> Line<'static> {
    let t = &app.theme;
    match (working, error) {
        (Some(w), _) => Line::from(Span::styled(format!("{} {w}…", spinner(app)), t.accent)),
        (None, Some(e)) => Line::from(Span::styled(crate::text::line(e).into_owned(), t.danger)),
        (None, None) => Line::default(),
    }
}

/// One masked password field of a form-like screen (create, passwd).
pub(crate) fn password_line(app: &App, label: &str, value: &TextInput, on: bool) -> Line<'static> {
    let t = &app.theme;
    let mut spans = vec![Span::styled(
        format!("{} {label:<17}", if on { "▸" } else { " " }),
        if on { t.accent } else { t.text },
    )];
    if on {
        spans.extend(masked_spans(value, t.accent, t.accent));
    } else {
        spans.push(Span::styled(masked(value.chars()), t.accent));
    }
    Line::from(spans)
}

/// The strength meter of a new master password.
pub(crate) fn strength_lines(app: &App, password: &str) -> [Line<'static>; 2] {
    let t = &app.theme;
    let (bits, label, weak) = strength_of(password);
    let filled = ((bits / 128.0) * 20.0).clamp(0.0, 20.0) as usize;
    let style = if weak { t.danger } else { t.ok };
    [
        Line::from(vec![
            Span::styled("  Strength         ", t.text),
            Span::styled("█".repeat(filled), style),
            Span::styled("░".repeat(20 - filled), t.dim),
            Span::styled(format!(" {label} (~{bits:.0} bits)"), style),
        ]),
        Line::from(Span::styled(
            if password.is_empty() {
                "  Tip: five or more random words are strong and easy to remember."
            } else if weak {
                "  Too easy to guess. Five or more random words are much stronger."
            } else {
                "  Good. Write it down somewhere safe until you know it by heart."
            },
            t.dim,
        )),
    ]
}
