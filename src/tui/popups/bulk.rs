//! The vault pane's bulk popups: tags to add or remove, or a folder, for
//! the selected items (`T`, and `m` → "A folder…"). Enter asks for
//! confirmation naming the count; the change is one engine bulk call.

use crossterm::event::{KeyCode, KeyEvent};
use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;
use uuid::Uuid;

use super::Popup;
use super::confirm::Confirmable;
use crate::engine::bulk::BulkOp;
use crate::tui::app::App;
use crate::tui::input::TextInput;
use crate::tui::widgets::{block, centered, clear_popup, prompt_line, truncate};

/// What the popup asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BulkAsk {
    /// Tags: `a b` adds, `-a -b` removes.
    Tags,
    /// A folder ("" for none).
    Folder,
}

/// The popup's state.
#[derive(Debug)]
pub struct BulkText {
    pub ids: Vec<Uuid>,
    pub ask: BulkAsk,
    pub input: TextInput,
}

impl BulkText {
    #[must_use]
    pub fn new(ids: Vec<Uuid>, ask: BulkAsk) -> Self {
        Self {
            ids,
            ask,
            input: TextInput::new(),
        }
    }

    pub(super) fn key(mut self, app: &mut App, k: KeyEvent) {
        match k.code {
            KeyCode::Esc => app.say("Cancelled"),
            KeyCode::Enter => match self.op() {
                Ok((op, what)) => app.popups.push(Popup::Confirm(Confirmable::Bulk {
                    ids: self.ids,
                    op,
                    what,
                })),
                Err(why) => {
                    app.warn(why);
                    app.popups.push(Popup::BulkText(self));
                }
            },
            _ => {
                self.input.handle(k);
                app.popups.push(Popup::BulkText(self));
            }
        }
    }

    /// The operation typed, and how the confirmation names it.
    fn op(&self) -> Result<(BulkOp, String), String> {
        let text = self.input.as_str().trim();
        match self.ask {
            BulkAsk::Folder => Ok(if text.is_empty() {
                (BulkOp::Folder(None), "Take out of their folder".to_owned())
            } else {
                (
                    BulkOp::Folder(Some(text.to_owned())),
                    format!("Move to folder {:?}", crate::text::line(text)),
                )
            }),
            BulkAsk::Tags => {
                let words: Vec<&str> = text.split_whitespace().collect();
                if words.is_empty() {
                    return Err("Type tags to add (a b) or to remove (-a -b)".into());
                }
                let removing = words.iter().filter(|w| w.starts_with('-')).count();
                let strip = |w: &&str| w.trim_start_matches(['-', '+']).to_owned();
                let tags: Vec<String> = words.iter().map(strip).filter(|t| !t.is_empty()).collect();
                let shown = tags
                    .iter()
                    .map(|t| crate::text::line(t).into_owned())
                    .collect::<Vec<_>>()
                    .join(", ");
                if removing == words.len() {
                    Ok((
                        BulkOp::RemoveTags(tags),
                        format!("Remove tag(s) {shown} from"),
                    ))
                } else if removing == 0 {
                    Ok((BulkOp::AddTags(tags), format!("Add tag(s) {shown} to")))
                } else {
                    Err("Add tags or remove them (-tag), not both at once".into())
                }
            }
        }
    }

    pub(super) fn draw(&self, f: &mut Frame, app: &App, area: Rect) -> Rect {
        let t = &app.theme;
        let r = clear_popup(f, centered(area, 56, 6));
        let (title, label, help) = match self.ask {
            BulkAsk::Tags => ("Tags", "Tags: ", "a b adds · -a -b removes"),
            BulkAsk::Folder => ("Folder", "Folder: ", "empty: no folder"),
        };
        let inner = usize::from(r.width.saturating_sub(2));
        let lines = vec![
            Line::from(Span::styled(
                truncate(
                    &format!("{} selected item(s); {help}", self.ids.len()),
                    inner,
                ),
                t.dim,
            )),
            prompt_line(
                Span::styled(label, t.dim),
                &self.input,
                r.width
                    .saturating_sub(2 + u16::try_from(label.len()).unwrap_or(0)),
                app,
            ),
            Line::from(Span::styled("Enter continue · Esc cancel", t.dim)),
        ];
        f.render_widget(Paragraph::new(lines).block(block(app, title, true)), r);
        r
    }

    pub(super) const HINTS: &'static [(&'static str, &'static str)] =
        &[("Enter", "continue"), ("Esc", "cancel")];
}

#[cfg(test)]
mod tests {
    use super::*;

    fn typed(ask: BulkAsk, text: &str) -> Result<(BulkOp, String), String> {
        let mut p = BulkText::new(vec![Uuid::nil()], ask);
        p.input = TextInput::with_text(text);
        p.op()
    }

    #[test]
    fn tags_add_or_remove_and_folders() {
        assert_eq!(
            typed(BulkAsk::Tags, "a +b").map(|x| x.0),
            Ok(BulkOp::AddTags(vec!["a".into(), "b".into()]))
        );
        assert_eq!(
            typed(BulkAsk::Tags, "-a -b").map(|x| x.0),
            Ok(BulkOp::RemoveTags(vec!["a".into(), "b".into()]))
        );
        assert!(typed(BulkAsk::Tags, "a -b").is_err());
        assert!(typed(BulkAsk::Tags, "  ").is_err());
        assert_eq!(
            typed(BulkAsk::Folder, "").map(|x| x.0),
            Ok(BulkOp::Folder(None))
        );
        assert_eq!(
            typed(BulkAsk::Folder, " Dev ").map(|x| x.0),
            Ok(BulkOp::Folder(Some("Dev".into())))
        );
    }
}
