//! Drawing: renders the [`App`] into a frame, and nothing else (no engine
//! calls, no state changes besides scroll offsets and the areas the mouse
//! needs). Secret values are drawn only when revealed.

use ratatui::Frame;
use ratatui::layout::{Alignment, Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Wrap};

use super::app::{App, Level, Screen};
use super::keymap::Action;
use super::screens;
use super::widgets::{cells, spinner};
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
        Screen::Unlock(_) => screens::draw_unlock(f, app, area),
        Screen::Create(_) => screens::draw_create(f, app, area),
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
    // Bottom to top: a popup over the form (generator, discard) leaves
    // the form in sight.
    let mut cleared: Option<Rect> = None;
    for p in &app.popups {
        let r = p.draw(f, app, body);
        cleared = Some(cleared.map_or(r, |c| c.union(r)));
    }
    app.popup_area.set(cleared.unwrap_or_default());
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
    if let Some(p) = app.popups.last() {
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
    if let Screen::Main = app.screen {
        let n = app.vault().marked.len();
        if n > 0 {
            right.push(format!("{n} selected"));
        }
    }
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
