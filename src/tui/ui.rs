//! Drawing: renders the [`App`] into a frame, and nothing else (no engine
//! calls, no state changes besides scroll offsets and the areas the mouse
//! needs). Secret values are drawn only when revealed.

use ratatui::Frame;
use ratatui::layout::{Alignment, Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Clear, Paragraph, Wrap};

use super::app::{App, CreateStep, Level, Screen};
use super::keymap::Action;
use super::widgets::{
    block, cells, centered, masked_spans, password_line, spinner, strength_lines,
};
use super::worker::SyncState;

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
    app.popup_area.set(
        app.popup
            .as_ref()
            .map_or(Rect::default(), |p| p.draw(f, app, body)),
    );
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
        return p
            .hints()
            .iter()
            .map(|(a, b)| ((*a).to_owned(), *b))
            .collect();
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
