//! Drawing: renders the [`App`] into a frame, and nothing else (no engine
//! calls, no state changes besides scroll offsets and the areas the mouse
//! needs). Secret values are drawn only when revealed.

use ratatui::Frame;
use ratatui::layout::{Alignment, Constraint, Layout, Rect};
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Clear, Paragraph, Wrap};
use unicode_segmentation::UnicodeSegmentation as _;
use unicode_width::UnicodeWidthStr as _;

use super::app::{
    App, Confirmable, CreateStep, Level, Popup, RowKind, Screen, palette_matches, strength_of,
};
use super::input::{self, TextInput};
use super::keymap::Action;
use super::widgets::{
    MASK, ago, block, cells, centered, clear_popup, cursor_spans, input_spans, masked,
    masked_spans, pad_left, pad_right, spinner, truncate,
};
use super::worker::SyncState;
use crate::engine::model::{FieldKind, ItemKind};

/// The smallest terminal the layout is made for.
pub const MIN_WIDTH: u16 = 80;
pub const MIN_HEIGHT: u16 = 24;

/// Draws one frame.
pub fn draw(f: &mut Frame, app: &App) {
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

fn draw_main(f: &mut Frame, app: &App, area: Rect) {
    let [tabs, body, message, bar] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Min(1),
        Constraint::Length(1),
        Constraint::Length(1),
    ])
    .areas(area);
    app.tabs_area.set(tabs);
    draw_tabs(f, app, tabs);
    if let Some(p) = app.pane_of(app.pane) {
        p.draw(f, app, body);
    }
    draw_message(f, app, message);
    draw_bar(f, app, bar);
    app.popup_area.set(draw_popup(f, app, body));
}

fn draw_tabs(f: &mut Frame, app: &App, area: Rect) {
    let t = &app.theme;
    let mut spans = vec![Span::styled(" OpenK  ", t.title)];
    for (i, p) in app.panes().enumerate() {
        let text = format!(" {} {} ", i + 1, p.title());
        spans.push(Span::styled(
            text,
            if p.id() == app.pane {
                t.selected
            } else {
                t.dim
            },
        ));
        spans.push(Span::raw(" "));
    }
    f.render_widget(Paragraph::new(Line::from(spans)), area);
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
    if let Some(p) = app.pane_of(app.pane) {
        out.extend(p.hints(app));
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
