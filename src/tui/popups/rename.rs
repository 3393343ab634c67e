//! The rename-device popup (devices pane, `e`).

use crossterm::event::{KeyCode, KeyEvent};
use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;
use uuid::Uuid;

use super::Popup;
use crate::tui::app::App;
use crate::tui::input::TextInput;
use crate::tui::panes::devices;
use crate::tui::widgets::{block, centered, clear_popup, prompt_line};
use crate::tui::worker::Request;

/// A key in the rename popup.
pub(super) fn key(app: &mut App, id: Uuid, mut input: TextInput, k: KeyEvent) {
    match k.code {
        KeyCode::Esc => app.say("Cancelled"),
        KeyCode::Enter if !input.as_str().trim().is_empty() => {
            app.send(Request::Job(devices::rename(
                id,
                input.as_str().trim().to_owned(),
            )));
        }
        _ => {
            input.handle(k);
            app.popups.push(Popup::Rename { id, input });
        }
    }
}

/// Draws the rename popup.
pub(super) fn draw(f: &mut Frame, app: &App, area: Rect, input: &TextInput) -> Rect {
    let t = &app.theme;
    let r = clear_popup(f, centered(area, 50, 5));
    let lines = vec![
        prompt_line(
            Span::styled("Name: ", t.dim),
            input,
            r.width.saturating_sub(9),
            app,
        ),
        Line::from(Span::styled("Enter rename · Esc cancel", t.dim)),
    ];
    f.render_widget(
        Paragraph::new(lines).block(block(app, "Rename device", true)),
        r,
    );
    r
}
