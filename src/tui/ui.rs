//! Drawing: renders the [`App`] into a frame, and nothing else (no engine
//! calls, no state changes besides scroll offsets and the areas the mouse
//! needs). Secret values are drawn only when revealed.

use ratatui::Frame;
use ratatui::layout::{Alignment, Constraint, Layout, Rect};
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, BorderType, Borders, Clear, Paragraph, Wrap};
use unicode_segmentation::UnicodeSegmentation as _;
use unicode_width::UnicodeWidthStr as _;

use super::app::{
    App, Confirmable, CreateStep, Filter, Focus, Level, Pane, Popup, RowKind, Screen, SideRow,
    Sort, palette_matches, strength_of, totp_at,
};
use super::input::{self, TextInput};
use super::keymap::Action;
use super::worker::SyncState;
use crate::engine::model::{Entry, FieldKind, ItemKind};
use crate::engine::search::{Query, SearchIndex};

/// The smallest terminal the layout is made for.
pub const MIN_WIDTH: u16 = 80;
pub const MIN_HEIGHT: u16 = 24;
/// Shown instead of a secret.
const MASK: &str = "••••••••";
const SPINNER: [&str; 8] = ["⠋", "⠙", "⠹", "⠸", "⠼", "⠴", "⠦", "⠧"];

/// Draws one frame.
pub fn draw(f: &mut Frame, app: &mut App) {
    let area = f.area();
    if area.width < MIN_WIDTH || area.height < MIN_HEIGHT {
        let text = vec![
            Line::from(Span::styled("Terminal too small", app.theme.title)),
            Line::from(format!(
                "need {MIN_WIDTH}×{MIN_HEIGHT}, have {}×{}",
                area.width, area.height
            )),
            Line::from(Span::styled(
                "enlarge the window, or q to quit",
                app.theme.dim,
            )),
        ];
        let h = 3.min(area.height);
        let y = area.y + area.height.saturating_sub(h) / 2;
        f.render_widget(
            Paragraph::new(text)
                .alignment(Alignment::Center)
                .wrap(Wrap { trim: true }),
            Rect::new(area.x, y, area.width, h),
        );
        return;
    }
    match &app.screen {
        Screen::Unlock(_) => draw_unlock(f, app, area),
        Screen::Create(_) => draw_create(f, app, area),
        Screen::Main => draw_main(f, app, area),
    }
    scrub(f.buffer_mut());
}

/// The last line of defence: ratatui drops C0 controls but keeps C1
/// controls and bidi overrides (zero-width, so they ride along in the
/// previous cell's symbol). Whatever a draw call missed is removed here, so
/// no string from a vault or a server can steer the terminal.
pub(super) fn scrub(buf: &mut ratatui::buffer::Buffer) {
    for cell in &mut buf.content {
        if cell.symbol().chars().any(crate::text::is_unsafe) {
            let clean: String = cell
                .symbol()
                .chars()
                .filter(|&c| !crate::text::is_unsafe(c))
                .collect();
            cell.set_symbol(if clean.is_empty() { " " } else { &clean });
        }
    }
}

fn centered(area: Rect, w: u16, h: u16) -> Rect {
    let w = w.min(area.width);
    let h = h.min(area.height);
    Rect::new(
        area.x + (area.width - w) / 2,
        area.y + (area.height - h) / 2,
        w,
        h,
    )
}

fn block<'a>(app: &App, title: &'a str, focused: bool) -> Block<'a> {
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

fn spinner(app: &App) -> &'static str {
    SPINNER[app.spinner % SPINNER.len()]
}

fn masked(len: usize) -> String {
    "•".repeat(len.min(32))
}

/// An input's text with its cursor, in `width` cells: the grapheme under
/// the cursor reversed, or a bar after the end.
fn input_spans(input: &TextInput, width: usize, style: Style, cursor: Style) -> Vec<Span<'static>> {
    let (before, under, after) = input::window(input.as_str(), input.cursor(), width);
    cursor_spans(before, under, after, style, cursor)
}

/// A secret input as a mask, with its cursor.
fn masked_spans(input: &TextInput, style: Style, cursor: Style) -> Vec<Span<'static>> {
    let n = input.chars().min(32);
    let at = input.chars_before_cursor().min(n) * '•'.len_utf8();
    let (before, under, after) = input::window(&masked(n), at, 34);
    cursor_spans(before, under, after, style, cursor)
}

fn cursor_spans(
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
fn clear_popup(f: &mut Frame, r: Rect) -> Rect {
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
// ------------------------------------------------------------------ unlock

fn draw_unlock(f: &mut Frame, app: &App, area: Rect) {
    let Screen::Unlock(s) = &app.screen else {
        return;
    };
    let t = &app.theme;
    let r = centered(area, 64, 12);
    f.render_widget(Clear, r);
    let mut lines = vec![
        Line::from(Span::styled("OpenK is locked", t.title)),
        Line::from(Span::styled(
            format!("vault {}", app.settings.vault_dir.display()),
            t.dim,
        )),
        Line::default(),
        Line::from(
            [Span::styled("Master password: ", t.text)]
                .into_iter()
                .chain(masked_spans(&s.input, t.accent, t.accent))
                .collect::<Vec<_>>(),
        ),
        Line::default(),
    ];
    if s.busy {
        lines.push(Line::from(Span::styled(
            format!("{} Unlocking (deriving keys)…", spinner(app)),
            t.accent,
        )));
    } else if let Some(e) = &s.error {
        lines.push(Line::from(Span::styled(
            crate::text::line(e).into_owned(),
            t.danger,
        )));
    } else {
        lines.push(Line::default());
    }
    if let Some((m, _, _)) = &app.message {
        lines.push(Line::from(Span::styled(m.clone(), t.dim)));
    } else {
        lines.push(Line::default());
    }
    lines.push(Line::default());
    lines.push(Line::from(vec![
        Span::styled("Enter", t.accent),
        Span::styled(" unlock   ", t.dim),
        Span::styled("Esc", t.accent),
        Span::styled(" quit", t.dim),
    ]));
    f.render_widget(Paragraph::new(lines).block(block(app, "Unlock", true)), r);
}

/// One masked password field of a form-like screen (create, passwd).
fn password_line(app: &App, label: &str, value: &TextInput, on: bool) -> Line<'static> {
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
fn strength_lines(app: &App, password: &str) -> [Line<'static>; 2] {
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

fn draw_create(f: &mut Frame, app: &App, area: Rect) {
    let Screen::Create(s) = &app.screen else {
        return;
    };
    let t = &app.theme;
    let r = centered(area, 76, 18);
    f.render_widget(Clear, r);
    let mut lines = Vec::new();
    match &s.step {
        CreateStep::Password | CreateStep::Working => {
            lines.push(Line::from(Span::styled("Welcome to OpenK", t.title)));
            lines.push(Line::from(Span::styled(
                "There is no vault yet. Choose a master password: it encrypts",
                t.text,
            )));
            lines.push(Line::from(Span::styled(
                "everything, and nobody can recover it for you.",
                t.text,
            )));
            lines.push(Line::from(Span::styled(
                format!("vault {}", app.settings.vault_dir.display()),
                t.dim,
            )));
            lines.push(Line::default());
            lines.push(password_line(
                app,
                "Master password",
                &s.first,
                !s.on_second,
            ));
            lines.push(password_line(app, "Repeat it", &s.second, s.on_second));
            lines.push(Line::default());
            lines.extend(strength_lines(app, s.first.as_str()));
            lines.push(Line::default());
            if matches!(s.step, CreateStep::Working) {
                lines.push(Line::from(Span::styled(
                    format!("{} Creating your vault (deriving keys)…", spinner(app)),
                    t.accent,
                )));
            } else if let Some(e) = &s.error {
                lines.push(Line::from(Span::styled(
                    crate::text::line(e).into_owned(),
                    t.danger,
                )));
            } else {
                lines.push(Line::default());
            }
            lines.push(Line::default());
            lines.push(Line::from(vec![
                Span::styled("Enter", t.accent),
                Span::styled(" next   ", t.dim),
                Span::styled("Tab", t.accent),
                Span::styled(" switch field   ", t.dim),
                Span::styled("Esc", t.accent),
                Span::styled(" quit", t.dim),
            ]));
        }
        CreateStep::Kit { secret_key, kit } => {
            lines.push(Line::from(Span::styled(
                "Your vault is ready. Save your Emergency Kit now",
                t.title,
            )));
            lines.push(Line::default());
            lines.push(Line::from(Span::styled(
                "Opening this vault on another device, or after a disk failure,",
                t.text,
            )));
            lines.push(Line::from(Span::styled(
                "needs BOTH your master password AND this Secret Key:",
                t.text,
            )));
            lines.push(Line::default());
            lines.push(Line::from(vec![
                Span::styled("  Secret Key  ", t.text),
                Span::styled(secret_key.as_str().to_owned(), t.matched),
            ]));
            lines.push(Line::default());
            match kit {
                Ok(path) => {
                    lines.push(Line::from(Span::styled(
                        "The Emergency Kit (Secret Key + instructions) was written to",
                        t.text,
                    )));
                    lines.push(Line::from(Span::styled(
                        format!("  {}  (mode 0600)", path.display()),
                        t.accent,
                    )));
                }
                Err(e) => lines.push(Line::from(Span::styled(
                    format!("Could not write the Emergency Kit ({e}); `openk kit` shows it."),
                    t.danger,
                ))),
            }
            lines.push(Line::from(Span::styled(
                "Print it or copy it somewhere offline, then delete the file.",
                t.text,
            )));
            lines.push(Line::from(Span::styled(
                "`openk kit` shows it again after unlocking.",
                t.dim,
            )));
            lines.push(Line::default());
            lines.push(Line::from(vec![
                Span::styled("Enter", t.accent),
                Span::styled(" I have saved my Emergency Kit — open the vault", t.dim),
            ]));
        }
    }
    let title = if matches!(s.step, CreateStep::Kit { .. }) {
        "Emergency Kit"
    } else {
        "Create your vault"
    };
    f.render_widget(
        Paragraph::new(lines)
            .block(block(app, title, true))
            .wrap(Wrap { trim: false }),
        r,
    );
}

// -------------------------------------------------------------------- main

fn draw_main(f: &mut Frame, app: &mut App, area: Rect) {
    let [tabs, body, message, bar] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Min(1),
        Constraint::Length(1),
        Constraint::Length(1),
    ])
    .areas(area);
    app.areas.tabs = tabs;
    draw_tabs(f, app, tabs);
    match app.pane {
        Pane::Vault => draw_vault(f, app, body),
        Pane::Search => draw_search(f, app, body),
        Pane::Devices => draw_devices(f, app, body),
    }
    draw_message(f, app, message);
    draw_bar(f, app, bar);
    app.areas.popup = draw_popup(f, app, body);
}

fn draw_tabs(f: &mut Frame, app: &App, area: Rect) {
    let t = &app.theme;
    let mut spans = vec![Span::styled(" OpenK  ", t.title)];
    for (i, p) in Pane::ALL.iter().enumerate() {
        let text = format!(" {} {} ", i + 1, p.title());
        spans.push(Span::styled(
            text,
            if *p == app.pane { t.selected } else { t.dim },
        ));
        spans.push(Span::raw(" "));
    }
    f.render_widget(Paragraph::new(Line::from(spans)), area);
}

fn filter_label(f: &Filter) -> String {
    match f {
        Filter::All => "All items".into(),
        Filter::Favorites => "Favorites".into(),
        Filter::Conflicts => "Conflicts".into(),
        Filter::Trash => "Trash".into(),
        Filter::Folder(n) => n.clone(),
        Filter::Tag(n) => format!("#{n}"),
    }
}

fn kind_marker(k: ItemKind) -> &'static str {
    match k {
        ItemKind::Login => "login",
        ItemKind::Note => "note",
        ItemKind::Card => "card",
        ItemKind::Identity => "ident",
        ItemKind::ApiKey => "api",
        ItemKind::SshKey => "ssh",
        ItemKind::Custom => "other",
    }
}

/// Terminal cells `s` takes (emoji, ZWJ sequences and CJK take two).
fn cells(s: &str) -> usize {
    s.width()
}

/// `s` cut to at most `w` cells (whole graphemes), with `…` when cut.
/// Every string a pane shows passes here, so it goes through
/// [`crate::text::cell`] first (controls, bidi overrides, line breaks).
fn truncate(s: &str, w: usize) -> String {
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
fn pad_right(s: &str, w: usize) -> String {
    let s = truncate(s, w);
    let pad = w.saturating_sub(cells(&s));
    format!("{s}{}", " ".repeat(pad))
}

/// `s` in exactly `w` cells, right-aligned.
fn pad_left(s: &str, w: usize) -> String {
    let s = truncate(s, w);
    let pad = w.saturating_sub(cells(&s));
    format!("{}{s}", " ".repeat(pad))
}

/// "just now", "5 min ago", "3 h ago", "2 d ago", else the date.
fn ago(now_ms: i64, then_ms: i64) -> String {
    let s = (now_ms - then_ms).max(0) / 1000;
    match s {
        0..60 => "just now".into(),
        60..3600 => format!("{} min ago", s / 60),
        3600..86_400 => format!("{} h ago", s / 3600),
        86_400..2_592_000 => format!("{} d ago", s / 86_400),
        _ => time::OffsetDateTime::from_unix_timestamp(then_ms / 1000)
            .ok()
            .and_then(|t| {
                t.format(time::macros::format_description!("[year]-[month]-[day]"))
                    .ok()
            })
            .unwrap_or_default(),
    }
}

fn draw_vault(f: &mut Frame, app: &mut App, area: Rect) {
    let side_w = if area.width >= 110 { 24 } else { 18 };
    let list_w = (area.width - side_w) * 45 / 100;
    let [side, list, details] = Layout::horizontal([
        Constraint::Length(side_w),
        Constraint::Length(list_w),
        Constraint::Min(20),
    ])
    .areas(area);
    app.areas.sidebar = side;
    app.areas.list = list;
    app.areas.details = details;
    draw_sidebar(f, app, side);
    draw_list(f, app, list);
    draw_details(f, app, details);
}

fn draw_sidebar(f: &mut Frame, app: &App, area: Rect) {
    let t = &app.theme;
    let inner_w = usize::from(area.width.saturating_sub(2));
    let lines: Vec<Line> = app
        .sidebar
        .iter()
        .enumerate()
        .map(|(i, row)| match row {
            SideRow::Header(h) => Line::from(Span::styled(h.to_string(), t.dim)),
            SideRow::Filter(fl, n) => {
                let name = truncate(&filter_label(fl), inner_w.saturating_sub(6));
                let count = n.to_string();
                let pad = inner_w.saturating_sub(cells(&name) + count.len() + 1);
                let style = if i == app.side_sel {
                    if app.focus == Focus::Sidebar {
                        t.selected
                    } else {
                        t.accent.add_modifier(Modifier::BOLD)
                    }
                } else if *fl == Filter::Conflicts && *n > 0 {
                    t.warn
                } else {
                    t.text
                };
                Line::from(Span::styled(
                    format!(" {name}{}{count}", " ".repeat(pad)),
                    style,
                ))
            }
        })
        .collect();
    f.render_widget(
        Paragraph::new(lines).block(block(app, "Filters", app.focus == Focus::Sidebar)),
        area,
    );
}

fn entry_line(
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

fn draw_list(f: &mut Frame, app: &mut App, area: Rect) {
    let height = usize::from(area.height.saturating_sub(2));
    if app.sel < app.offset {
        app.offset = app.sel;
    } else if height > 0 && app.sel >= app.offset + height {
        app.offset = app.sel + 1 - height;
    }
    let width = usize::from(area.width.saturating_sub(2));
    let focused = app.focus == Focus::List;
    let mut lines: Vec<Line> = app
        .shown
        .iter()
        .enumerate()
        .skip(app.offset)
        .take(height)
        .map(|(pos, &i)| {
            entry_line(
                app,
                &app.entries[i as usize],
                width,
                pos == app.sel,
                focused,
                &[],
            )
        })
        .collect();
    if lines.is_empty() {
        let text = match app.filter {
            Filter::Trash => "The trash is empty",
            Filter::All if app.entries.is_empty() => "No items yet: n adds one",
            _ => "Nothing here",
        };
        lines.push(Line::from(Span::styled(text, app.theme.dim)));
    }
    let sort = match app.sort {
        Sort::Name => "name",
        Sort::Changed => "changed",
    };
    let title = format!(
        "{} · {} · by {sort}",
        filter_label(&app.filter),
        app.shown.len()
    );
    f.render_widget(
        Paragraph::new(lines).block(block(app, &title, focused)),
        area,
    );
}

fn draw_details(f: &mut Frame, app: &App, area: Rect) {
    let t = &app.theme;
    let focused = app.focus == Focus::Details;
    let Some(item) = app
        .detail
        .as_ref()
        .filter(|d| Some(d.r.id) == app.selected_id())
    else {
        let text = if app.selected_id().is_some() {
            format!("{} Opening…", spinner(app))
        } else {
            String::new()
        };
        f.render_widget(
            Paragraph::new(Span::styled(text, t.dim)).block(block(app, "Details", focused)),
            area,
        );
        return;
    };
    let o = &item.overview;
    let width = usize::from(area.width.saturating_sub(2));
    let label_w = item
        .details
        .fields
        .iter()
        .map(|f| cells(&f.label))
        .max()
        .unwrap_or(6)
        .clamp(6, 12);
    let mut lines = vec![Line::from(vec![
        Span::styled(truncate(&o.name, width.saturating_sub(10)), t.title),
        Span::styled(format!("  {}", o.kind), t.dim),
    ])];
    if o.trashed_at.is_some() {
        lines.push(Line::from(Span::styled(
            "In the trash · R restores",
            t.warn,
        )));
    }
    if let Some(c) = &o.conflict {
        lines.push(Line::from(Span::styled(
            format!(
                "! conflict: {} (H shows v{})",
                c.fields.join(", "),
                c.other_version
            ),
            t.danger,
        )));
        // What the merge did, in its words, wrapped to the pane.
        let mut line = String::new();
        for word in c.note.split_whitespace() {
            if !line.is_empty() && cells(&line) + 1 + cells(word) > width.saturating_sub(2) {
                lines.push(Line::from(Span::styled(format!("  {line}"), t.warn)));
                line.clear();
            }
            if !line.is_empty() {
                line.push(' ');
            }
            line.push_str(&truncate(word, width.saturating_sub(2)));
        }
        if !line.is_empty() {
            lines.push(Line::from(Span::styled(format!("  {line}"), t.warn)));
        }
    }
    lines.push(Line::default());
    let value_w = width.saturating_sub(label_w + 3);
    for (i, field) in item.details.fields.iter().enumerate() {
        let sel = i == app.field_sel;
        let revealed = app.revealed.contains(&i);
        let marker = if sel { "▸" } else { " " };
        let label_style = if sel && focused {
            t.selected
        } else if sel {
            t.accent
        } else {
            t.dim
        };
        let mut spans = vec![
            Span::styled(marker, t.accent),
            Span::styled(pad_left(&field.label, label_w), label_style),
            Span::raw("  "),
        ];
        if field.kind == FieldKind::Totp {
            match totp_at(field, app.clock.as_ref()) {
                Some((code, left)) => {
                    let shown = if revealed {
                        let (a, b) = code.split_at(code.len() / 2);
                        format!("{a} {b}")
                    } else {
                        "••• •••".into()
                    };
                    spans.push(Span::styled(shown, t.accent));
                    spans.push(Span::styled(
                        format!("  ⏱ {left:>2}s"),
                        if left <= 5 { t.warn } else { t.dim },
                    ));
                }
                None => spans.push(Span::styled("invalid TOTP secret", t.danger)),
            }
        } else if field.is_concealed() && !revealed {
            spans.push(Span::styled(MASK, t.text));
        } else {
            let value = field.value.expose();
            let mut rows = value.lines();
            spans.push(Span::styled(
                truncate(rows.next().unwrap_or(""), value_w),
                if field.kind == FieldKind::Url {
                    t.accent
                } else {
                    t.text
                },
            ));
            lines.push(Line::from(spans));
            for more in rows.take(4) {
                lines.push(Line::from(vec![
                    Span::raw(" ".repeat(label_w + 3)),
                    Span::styled(truncate(more, value_w), t.text),
                ]));
            }
            continue;
        }
        lines.push(Line::from(spans));
    }
    lines.push(Line::default());
    let meta = |k: &str, v: String| {
        Line::from(vec![
            Span::styled(format!(" {k:>label_w$}  "), t.dim),
            Span::styled(v, t.text),
        ])
    };
    if !o.tags.is_empty() {
        lines.push(meta(
            "tags",
            o.tags
                .iter()
                .map(|t| format!("#{t}"))
                .collect::<Vec<_>>()
                .join(" "),
        ));
    }
    if let Some(folder) = &o.folder {
        lines.push(meta("folder", folder.clone()));
    }
    let now = app.clock.unix_millis();
    lines.push(meta(
        "changed",
        format!("{} · v{}", ago(now, o.updated_at), item.r.version),
    ));
    let hint = if focused {
        "r reveal · y copy field · e edit · H history"
    } else {
        "c pw · u user · t TOTP · → fields"
    };
    let block =
        block(app, "Details", focused).title_bottom(Span::styled(format!(" {hint} "), t.dim));
    f.render_widget(Paragraph::new(lines).block(block), area);
}

fn draw_search(f: &mut Frame, app: &mut App, area: Rect) {
    let t = &app.theme;
    let [input, results] =
        Layout::vertical([Constraint::Length(3), Constraint::Min(1)]).areas(area);
    let mut prompt = vec![Span::styled("/ ", t.accent)];
    prompt.extend(input_spans(
        &app.search.input,
        usize::from(input.width.saturating_sub(4)),
        t.text,
        t.accent,
    ));
    let prompt = Line::from(prompt);
    let count = if let Some(e) = &app.search.error {
        e.clone()
    } else {
        format!("{} of {} matches", app.search.hits.len(), app.search.total)
    };
    f.render_widget(
        Paragraph::new(prompt).block(
            block(app, "Search · kind: tag: folder: is:fav is:trash", true)
                .title_bottom(Span::styled(format!(" {count} "), t.dim)),
        ),
        input,
    );
    app.areas.results = results;
    let query_text = Query::parse(app.search.input.as_str())
        .map(|q| q.text)
        .unwrap_or_default();
    let height = usize::from(results.height.saturating_sub(2));
    let width = usize::from(results.width.saturating_sub(2));
    let offset = app.search.sel.saturating_sub(height.saturating_sub(1));
    let mut lines: Vec<Line> = Vec::new();
    for (pos, id) in app.search.hits.iter().enumerate().skip(offset).take(height) {
        let Some(e) = app.entry(*id) else {
            continue;
        };
        let matches = if query_text.is_empty() {
            Vec::new()
        } else {
            SearchIndex::name_matches(&e.overview.name, &query_text)
        };
        let name_w = width * 55 / 100;
        let mut line = entry_line(app, e, name_w, pos == app.search.sel, true, &matches);
        let sub = e
            .overview
            .subtitle
            .clone()
            .or_else(|| e.overview.urls.first().cloned())
            .unwrap_or_default();
        line.spans.push(Span::styled(
            format!("  {}", truncate(&sub, width.saturating_sub(name_w + 2))),
            t.dim,
        ));
        lines.push(line);
    }
    if lines.is_empty() {
        lines.push(Line::from(Span::styled(
            if app.search.input.is_empty() {
                "Type to search names, usernames, URLs, tags and folders"
            } else {
                "No matches"
            },
            t.dim,
        )));
    }
    f.render_widget(
        Paragraph::new(lines).block(block(app, "Results", false).title_bottom(Span::styled(
            " ↑↓ choose · Enter open in vault · Esc back ",
            t.dim,
        ))),
        results,
    );
}

fn draw_devices(f: &mut Frame, app: &mut App, area: Rect) {
    let t = &app.theme;
    let [top, list] = Layout::vertical([Constraint::Length(8), Constraint::Min(1)]).areas(area);
    app.areas.devices = list;
    let conflicts: Vec<&Entry> = app
        .entries
        .iter()
        .filter(|e| e.overview.conflict.is_some() && e.overview.trashed_at.is_none())
        .collect();
    let (state, explain) = match &app.sync {
        SyncState::LocalOnly => (
            "Local only".to_owned(),
            "This vault is not registered with a sync server; everything stays on this machine. `openk register --server URL --email ADDRESS` starts syncing.".to_owned(),
        ),
        SyncState::LoggedOut => (
            "Logged out".to_owned(),
            "This device is registered but logged out, so nothing syncs. `openk login` (or login in the : palette) signs in again; changes wait here until then.".to_owned(),
        ),
        SyncState::Synced => ("Synced".to_owned(), "Every change on this device is on the server.".to_owned()),
        SyncState::Pending(n) => (
            format!("{n} change(s) pending"),
            "Not on the server yet: they go with the next sync (S syncs now).".to_owned(),
        ),
        SyncState::Syncing if app.not_answering() => (
            format!("{} Server not answering", spinner(app)),
            "The server accepted the connection but has not answered yet. Everything here keeps working; Esc stops waiting.".to_owned(),
        ),
        SyncState::Syncing => (format!("{} Syncing", spinner(app)), "Talking to the server… (Esc stops)".to_owned()),
        SyncState::NotAnswering(m) => (
            "Server not answering".to_owned(),
            format!("The server did not answer in time ({m}). Changes stay here and go with the next sync (S tries again)."),
        ),
        SyncState::Cancelled(n) => (
            "Sync cancelled".to_owned(),
            format!("{n} change(s) still to push; S syncs again."),
        ),
        SyncState::Offline(m) => (
            "Offline".to_owned(),
            format!(
                "The server cannot be reached ({}). Changes stay here and sync when it is back.",
                crate::text::line(m)
            ),
        ),
        SyncState::Error(m) => ("Sync error".to_owned(), crate::text::line(m).into_owned()),
    };
    let mut lines = vec![
        Line::from(vec![
            Span::styled("Sync  ", t.dim),
            Span::styled(state, t.title),
        ]),
        Line::from(Span::styled(explain, t.text)),
        Line::default(),
    ];
    if conflicts.is_empty() {
        lines.push(Line::from(Span::styled("No conflicts.", t.dim)));
    } else {
        lines.push(Line::from(Span::styled(
            format!(
                "Conflicts ({}): {}  — sidebar › Conflicts lists them",
                conflicts.len(),
                conflicts
                    .iter()
                    .take(5)
                    .map(|e| e.overview.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            t.warn,
        )));
    }
    f.render_widget(
        Paragraph::new(lines)
            .wrap(Wrap { trim: true })
            .block(block(app, "This vault", false)),
        top,
    );
    let mut rows: Vec<Line> = Vec::new();
    match &app.devices.list {
        _ if matches!(app.sync, SyncState::LocalOnly | SyncState::LoggedOut) => {
            rows.push(Line::from(Span::styled(
                "Devices are listed when this vault is signed in to a server.",
                t.dim,
            )));
        }
        None => rows.push(Line::from(Span::styled(
            format!("{} Asking the server…", spinner(app)),
            t.dim,
        ))),
        Some(Err(e)) => rows.push(Line::from(Span::styled(
            format!(
                "Cannot list the devices: {}",
                crate::text::line(&e.to_string())
            ),
            t.danger,
        ))),
        Some(Ok(devices)) => {
            let room = usize::from(list.width.saturating_sub(2));
            for (i, d) in devices.iter().enumerate() {
                let style = if i == app.devices.sel {
                    t.selected
                } else {
                    t.text
                };
                // The server's string: data, never terminal control.
                let name = format!(
                    "{}{}",
                    crate::text::cell(&d.name),
                    if d.current { "  (this device)" } else { "" }
                );
                let seen = format!(
                    "last seen {}",
                    crate::text::cell(
                        &d.last_seen_at
                            .get(..16)
                            .unwrap_or(&d.last_seen_at)
                            .replace('T', " ")
                    )
                );
                let name = truncate(&name, room.saturating_sub(seen.len() + 2));
                let pad = room.saturating_sub(cells(&name) + seen.len() + 1);
                rows.push(Line::from(Span::styled(
                    format!(" {name}{}{seen}", " ".repeat(pad)),
                    style,
                )));
            }
        }
    }
    f.render_widget(
        Paragraph::new(rows).block(
            block(app, "Devices", true)
                .title_bottom(Span::styled(" e rename · d revoke · S sync now ", t.dim)),
        ),
        list,
    );
}

fn draw_message(f: &mut Frame, app: &App, area: Rect) {
    let t = &app.theme;
    let line = match &app.message {
        Some((m, Level::Error, _)) => {
            Line::from(Span::styled(format!(" {}", crate::text::cell(m)), t.danger))
        }
        Some((m, Level::Info, _)) => {
            Line::from(Span::styled(format!(" {}", crate::text::cell(m)), t.accent))
        }
        None => match app.busy {
            Some(b) => Line::from(Span::styled(format!(" {} {b}…", spinner(app)), t.accent)),
            None => Line::from(Span::styled(
                " ? help · : commands · / search · q quit",
                t.dim,
            )),
        },
    };
    f.render_widget(Paragraph::new(line), area);
}

fn hints(app: &App) -> Vec<(String, &'static str)> {
    let k = |a: Action| app.keymap.first_key(a);
    let mut out = Vec::new();
    if let Some(p) = &app.popup {
        let fixed: &[(&str, &str)] = match p {
            Popup::Form(_) => &[
                ("C-s", "save"),
                ("C-g", "generate"),
                ("C-n", "add field"),
                ("C-x", "remove"),
                ("Esc", "cancel"),
            ],
            Popup::Generator(_, g) if g.words => &[
                ("←→", "words"),
                ("Tab", "password"),
                ("Enter", "use"),
                ("Esc", "back"),
            ],
            Popup::Generator(..) => &[
                ("←→", "length"),
                ("Tab", "words"),
                ("Enter", "use"),
                ("Esc", "back"),
            ],
            Popup::History(_) => &[("Enter", "compare"), ("r", "reveal"), ("Esc", "close")],
            Popup::Confirm(_) => &[("y", "yes"), ("n", "no")],
            Popup::Discard(_) => &[("y", "discard"), ("n", "keep editing")],
            Popup::Passwd(_) => &[
                ("Enter", "next / change"),
                ("Tab", "field"),
                ("Esc", "cancel"),
            ],
            _ => &[("Enter", "choose"), ("Esc", "close")],
        };
        return fixed.iter().map(|(a, b)| ((*a).to_owned(), *b)).collect();
    }
    match app.pane {
        Pane::Vault => {
            if app.filter == Filter::Trash {
                out.push((k(Action::Restore), "restore"));
            }
            out.push((k(Action::CopyPassword), "copy pw"));
            out.push((k(Action::CopyUsername), "user"));
            out.push((k(Action::CopyTotp), "totp"));
            out.push((k(Action::Reveal), "reveal"));
            out.push((k(Action::New), "new"));
            out.push((k(Action::Edit), "edit"));
            if app.filter != Filter::Trash {
                out.push((k(Action::Delete), "delete"));
            }
        }
        Pane::Search => {
            out.push(("Enter".into(), "open"));
            out.push(("Esc".into(), "back"));
        }
        Pane::Devices => {
            out.push((k(Action::Edit), "rename"));
            out.push((k(Action::Delete), "revoke"));
            out.push((k(Action::Sync), "sync"));
        }
    }
    out.push((k(Action::Help), "help"));
    out
}

fn draw_bar(f: &mut Frame, app: &App, area: Rect) {
    let t = &app.theme;
    let mut right = Vec::new();
    if matches!(app.sync, SyncState::Syncing) {
        right.push(format!("{} {}", spinner(app), app.sync_label()));
    } else {
        right.push(app.sync_label());
    }
    if let Some(d) = app.clip_left() {
        right.push(format!("clip {}s", d.as_secs()));
    }
    if let Some(d) = app.lock_left() {
        let s = d.as_secs();
        right.push(format!("lock {}:{:02}", s / 60, s % 60));
    }
    let right = format!(" {} ", right.join(" │ "));
    let mut spans = vec![Span::styled(" ", t.bar)];
    let mut used = 1;
    let room = usize::from(area.width).saturating_sub(cells(&right) + 1);
    for (key, what) in hints(app) {
        let w = cells(&key) + cells(what) + 3;
        if used + w > room {
            break;
        }
        spans.push(Span::styled(key, t.bar_key));
        spans.push(Span::styled(format!(" {what}  "), t.bar));
        used += w;
    }
    spans.push(Span::styled(
        " ".repeat(room.saturating_sub(used) + 1),
        t.bar,
    ));
    spans.push(Span::styled(right, t.bar_key));
    f.render_widget(Paragraph::new(Line::from(spans)), area);
}

// ------------------------------------------------------------------ popups

/// Draws the open popup; returns the area it cleared (and nothing outside).
fn draw_popup(f: &mut Frame, app: &App, area: Rect) -> Rect {
    let Some(p) = &app.popup else {
        return Rect::default();
    };
    let t = &app.theme;
    match p {
        Popup::Help => draw_help(f, app, area),
        Popup::Palette { input, sel } => draw_palette(f, app, area, input, *sel),
        Popup::Confirm(c) => {
            let (title, text) = match c {
                Confirmable::Trash(_, name) => (
                    "Move to trash?",
                    format!(
                        "Move {name:?} to the trash? It stays there until purged; R restores it."
                    ),
                ),
                Confirmable::Revoke(_, name) => (
                    "Revoke device?",
                    format!("Revoke {name:?}? It is signed out at once and can no longer sync."),
                ),
                Confirmable::Purge(_, name) => (
                    "Purge for good?",
                    format!(
                        "Destroy {name:?} and all its history? This cannot be undone, here or on your other devices."
                    ),
                ),
            };
            let r = clear_popup(f, centered(area, 56, 7));
            let lines = vec![
                Line::from(Span::styled(text, t.text)),
                Line::default(),
                Line::from(vec![
                    Span::styled("y", t.danger),
                    Span::styled(" yes   ", t.dim),
                    Span::styled("n/Esc", t.accent),
                    Span::styled(" no", t.dim),
                ]),
            ];
            f.render_widget(
                Paragraph::new(lines)
                    .wrap(Wrap { trim: true })
                    .block(block(app, title, true)),
                r,
            );
            r
        }
        Popup::Discard(form) => {
            // Over the form, which stays in sight: what would be lost.
            let under = draw_form(f, app, area, form);
            let r = clear_popup(f, centered(area, 56, 7));
            let what = if form.editing.is_some() {
                "your changes to this item"
            } else {
                "this new item"
            };
            let lines = vec![
                Line::from(Span::styled(
                    format!("Throw away {what}? Everything typed in the form is lost."),
                    t.text,
                )),
                Line::default(),
                Line::from(vec![
                    Span::styled("y", t.danger),
                    Span::styled(" discard   ", t.dim),
                    Span::styled("n/Esc/Enter", t.accent),
                    Span::styled(" keep editing", t.dim),
                ]),
            ];
            f.render_widget(
                Paragraph::new(lines)
                    .wrap(Wrap { trim: true })
                    .block(block(app, "Discard?", true)),
                r,
            );
            under.union(r)
        }
        Popup::Rename { input, .. } => {
            let r = clear_popup(f, centered(area, 50, 5));
            let mut name = vec![Span::styled("Name: ", t.dim)];
            name.extend(input_spans(
                input,
                usize::from(r.width.saturating_sub(9)),
                t.text,
                t.accent,
            ));
            let lines = vec![
                Line::from(name),
                Line::from(Span::styled("Enter rename · Esc cancel", t.dim)),
            ];
            f.render_widget(
                Paragraph::new(lines).block(block(app, "Rename device", true)),
                r,
            );
            r
        }
        Popup::Form(form) => draw_form(f, app, area, form),
        Popup::Generator(form, g) => {
            let under = draw_form(f, app, area, form);
            let r = clear_popup(f, centered(area, 60, 10));
            let mode = if g.words {
                format!("passphrase · {} words", g.word_count)
            } else {
                format!("password · {} characters", g.length)
            };
            let on = |b: bool| if b { "on" } else { "off" };
            let lines = vec![
                Line::from(Span::styled(g.value.as_str().to_owned(), t.matched)),
                Line::default(),
                Line::from(vec![
                    Span::styled("Kind     ", t.dim),
                    Span::styled(mode, t.text),
                ]),
                Line::from(vec![
                    Span::styled("Options  ", t.dim),
                    Span::styled(
                        if g.words {
                            format!("d number {}", on(g.digits))
                        } else {
                            format!("s symbols {} · d digits {}", on(g.symbols), on(g.digits))
                        },
                        t.text,
                    ),
                ]),
                Line::from(vec![
                    Span::styled("Entropy  ", t.dim),
                    Span::styled(format!("{:.0} bits", g.entropy), t.ok),
                ]),
                Line::from(Span::styled(g.error.clone().unwrap_or_default(), t.danger)),
                Line::from(Span::styled(
                    if g.words {
                        "←→ words · Tab password · Space new · Enter use · Esc"
                    } else {
                        "←→ length · Tab words · Space new · Enter use · Esc"
                    },
                    t.dim,
                )),
            ];
            f.render_widget(Paragraph::new(lines).block(block(app, "Generate", true)), r);
            under.union(r)
        }
        Popup::History(h) => draw_history(f, app, area, h),
        Popup::Passwd(p) => {
            let r = clear_popup(f, centered(area, 76, 11));
            let mut lines = vec![
                Line::from(Span::styled(
                    "Only the master password changes; the Secret Key stays the same.",
                    t.text,
                )),
                Line::default(),
            ];
            for (i, label) in ["Current password", "New password", "Repeat the new"]
                .iter()
                .enumerate()
            {
                lines.push(password_line(app, label, &p.fields[i], p.on == i));
            }
            lines.push(Line::default());
            lines.extend(strength_lines(app, p.fields[1].as_str()));
            lines.push(match (&p.error, p.saving) {
                (_, true) => Line::from(Span::styled(
                    format!(
                        "{} Changing the master password (deriving keys)…",
                        spinner(app)
                    ),
                    t.accent,
                )),
                (Some(e), _) => Line::from(Span::styled(e.clone(), t.danger)),
                (None, _) => Line::default(),
            });
            f.render_widget(
                Paragraph::new(lines).block(
                    block(app, "Change the master password", true).title_bottom(Span::styled(
                        " Enter next / change · Tab switch field · Esc cancel ",
                        t.dim,
                    )),
                ),
                r,
            );
            r
        }
    }
}

fn draw_help(f: &mut Frame, app: &App, area: Rect) -> Rect {
    let t = &app.theme;
    let r = clear_popup(f, centered(area, 78, 25));
    let col_w = usize::from(r.width.saturating_sub(4)) / 2;
    let cells: Vec<(String, &str)> = Action::ALL
        .iter()
        .map(|a| (app.keymap.keys_of(*a), a.describe()))
        .collect();
    let half = cells.len().div_ceil(2);
    let mut lines = Vec::new();
    for i in 0..half {
        let mut spans = Vec::new();
        for cell in [cells.get(i), cells.get(i + half)].into_iter().flatten() {
            spans.push(Span::styled(
                format!("{} ", pad_left(&cell.0, 10)),
                t.accent,
            ));
            spans.push(Span::styled(
                format!("{} ", pad_right(cell.1, col_w.saturating_sub(11))),
                t.text,
            ));
        }
        lines.push(Line::from(spans));
    }
    let extra = [
        "Form: C-s save · Enter next, newline in notes · C-g generate · C-n/C-x field",
        input::KEYS_HELP,
        ": also runs purge, passwd, login, logout, sync --verify",
        "Mouse: click selects, wheel scrolls · keymap: docs/cli.md",
    ];
    let room = usize::from(r.height.saturating_sub(2)).saturating_sub(lines.len());
    for text in extra.into_iter().take(room) {
        lines.push(Line::from(Span::styled(text, t.dim)));
    }
    f.render_widget(
        Paragraph::new(lines)
            .block(block(app, "Keys", true).title_bottom(Span::styled(" Esc closes ", t.dim))),
        r,
    );
    r
}

fn draw_palette(f: &mut Frame, app: &App, area: Rect, input: &TextInput, sel: usize) -> Rect {
    let t = &app.theme;
    let r = clear_popup(f, centered(area, 60, 14));
    let mut prompt = vec![Span::styled(": ", t.accent)];
    prompt.extend(input_spans(
        input,
        usize::from(r.width.saturating_sub(5)),
        t.text,
        t.accent,
    ));
    let mut lines = vec![Line::from(prompt), Line::default()];
    let height = usize::from(r.height.saturating_sub(4));
    let offset = sel.saturating_sub(height.saturating_sub(1));
    for (i, a) in palette_matches(input.as_str())
        .into_iter()
        .enumerate()
        .skip(offset)
        .take(height)
    {
        let style = if i == sel { t.selected } else { t.text };
        let keys = match a {
            super::app::PaletteItem::Action(a) => app.keymap.keys_of(a),
            super::app::PaletteItem::Command(c) => format!(":{}", c.name()),
        };
        lines.push(Line::from(vec![
            Span::styled(format!(" {}", pad_right(a.describe(), 40)), style),
            Span::styled(
                format!("{} ", pad_left(&keys, 14)),
                if i == sel { style } else { t.dim },
            ),
        ]));
    }
    f.render_widget(Paragraph::new(lines).block(block(app, "Commands", true)), r);
    r
}

/// One form row's lines: the label, then the value (with the cursor on
/// the selected row; a multi-line value on several lines there).
fn form_row_lines(
    app: &App,
    form: &super::app::Form,
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

fn draw_form(f: &mut Frame, app: &App, area: Rect, form: &super::app::Form) -> Rect {
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

fn draw_history(f: &mut Frame, app: &App, area: Rect, h: &super::app::HistoryState) -> Rect {
    let t = &app.theme;
    let inner = usize::from(76.min(area.width).saturating_sub(2));
    let now = app.clock.unix_millis();
    let mut lines = Vec::new();
    for (i, v) in h.versions.iter().enumerate() {
        let style = if i == h.sel { t.selected } else { t.text };
        let what = v
            .damaged
            .as_ref()
            .map_or_else(|| v.changes.join(", "), |d| format!("DAMAGED: {d}"));
        lines.push(Line::from(Span::styled(
            truncate(
                &format!(
                    " v{:<3}{} {:<12} {what}",
                    v.version,
                    if v.current { "*" } else { " " },
                    if v.updated_at > 0 {
                        ago(now, v.updated_at)
                    } else {
                        String::new()
                    },
                ),
                inner,
            ),
            style,
        )));
    }
    lines.push(Line::default());
    match &h.compared {
        None => lines.push(Line::from(Span::styled(
            "Enter compares the selected version with the current one",
            t.dim,
        ))),
        Some(c) if c.differences.is_empty() => lines.push(Line::from(Span::styled(
            format!("v{} and v{} have the same contents", c.version, c.current),
            t.dim,
        ))),
        Some(c) => {
            lines.push(Line::from(Span::styled(
                format!("v{} → v{} differ in:", c.version, c.current),
                t.title,
            )));
            for d in &c.differences {
                let show = |v: &Option<zeroize::Zeroizing<String>>| match v {
                    None => "(none)".to_owned(),
                    Some(_) if d.concealed && !h.reveal => MASK.to_owned(),
                    Some(s) => truncate(s, 24),
                };
                let mut spans = vec![Span::styled(
                    format!("  {}", pad_right(&d.what, 14)),
                    t.accent,
                )];
                if h.reveal || !d.concealed {
                    spans.push(Span::styled(
                        format!("{} → {}", show(&d.old), show(&d.new)),
                        t.text,
                    ));
                } else {
                    spans.push(Span::styled("changed (r reveals)", t.dim));
                }
                lines.push(Line::from(spans));
            }
        }
    }
    let title = format!("History of {}", h.name);
    // As tall as its lines: the panes around it stay as they are.
    let height = u16::try_from(lines.len() + 2).unwrap_or(u16::MAX);
    let r = clear_popup(f, centered(area, 76, height));
    f.render_widget(
        Paragraph::new(lines).block(block(app, &title, true).title_bottom(Span::styled(
            " ↑↓ version · Enter compare · r reveal · Esc close ",
            t.dim,
        ))),
        r,
    );
    r
}
