//! The help popup: every binding, from the keymap.

use crossterm::event::{KeyCode, KeyEvent};
use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

use super::{Popup, PopupView};
use crate::tui::app::App;
use crate::tui::input;
use crate::tui::keymap::Action;
use crate::tui::widgets::{block, centered, clear_popup, pad_left, pad_right};

/// The help popup (it has no state).
#[derive(Debug, Clone, Copy)]
pub struct Help;

impl PopupView for Help {
    fn key(self, app: &mut App, k: KeyEvent) {
        if !matches!(
            k.code,
            KeyCode::Esc | KeyCode::Char('?' | 'q') | KeyCode::Enter
        ) {
            app.popups.push(Popup::Help);
        }
    }

    fn draw(&self, f: &mut Frame, app: &App, area: Rect) -> Rect {
        draw_help(f, app, area)
    }

    fn hints(&self) -> &'static [(&'static str, &'static str)] {
        &[("Enter", "choose"), ("Esc", "close")]
    }
}

/// Pairs of actions drawn in one cell, with what the two do (so that every
/// binding fits an 80×24 terminal).
pub(crate) const PAIRS: &[(Action, Action, &str)] = &[
    (Action::Up, Action::Down, "move up / down"),
    (Action::Left, Action::Right, "column left / right"),
    (
        Action::ToggleSelect,
        Action::SelectRange,
        "select one / a range",
    ),
];

fn draw_help(f: &mut Frame, app: &App, area: Rect) -> Rect {
    let t = &app.theme;
    let r = clear_popup(f, centered(area, 78, 25));
    let col_w = usize::from(r.width.saturating_sub(4)) / 2;
    // The panes' keys share one cell ("1 2 3 4  vault/search/devices/…"),
    // so that every binding fits an 80×24 terminal.
    let panes: Vec<&Action> = Action::ALL
        .iter()
        .filter(|a| a.describe().ends_with(" pane"))
        .collect();
    let pane_keys = panes
        .iter()
        .map(|a| app.keymap.keys_of(**a))
        .collect::<Vec<_>>()
        .join(" ");
    let pane_names = panes
        .iter()
        .map(|a| a.describe().trim_end_matches(" pane"))
        .collect::<Vec<_>>()
        .join("/");
    let mut cells: Vec<(String, String)> = Vec::new();
    for a in Action::ALL {
        if let Some((first, second, what)) = PAIRS.iter().find(|p| p.0 == a || p.1 == a) {
            if *first == a {
                cells.push((
                    format!(
                        "{} {}",
                        app.keymap.keys_of(*first),
                        app.keymap.keys_of(*second)
                    ),
                    (*what).to_owned(),
                ));
            }
        } else if a.describe().ends_with(" pane") {
            if panes.first().is_some_and(|p| **p == a) {
                cells.push((pane_keys.clone(), pane_names.clone()));
            }
        } else {
            cells.push((app.keymap.keys_of(a), a.describe().to_owned()));
        }
    }
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
                format!("{} ", pad_right(&cell.1, col_w.saturating_sub(11))),
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
