//! The vault picker (vault pane, `m` move / `C` copy): the vaults this
//! account may write to, to move or copy the selected item into.

use crossterm::event::{KeyCode, KeyEvent};
use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;
use uuid::Uuid;

use super::bulk::{BulkAsk, BulkText};
use super::confirm::Confirmable;
use super::{Popup, PopupView};
use crate::engine::Session;
use crate::engine::bulk::BulkOp;
use crate::engine::shared_vaults::VaultInfo;
use crate::tui::app::App;
use crate::tui::panes::vault;
use crate::tui::widgets::{block, centered, clear_popup, pad_right, truncate};
use crate::tui::worker::{Job, Request};

/// Move the item (with its history) or copy its current version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transfer {
    Move,
    Copy,
}

impl Transfer {
    fn verb(self) -> &'static str {
        match self {
            Self::Move => "Move",
            Self::Copy => "Copy",
        }
    }
}

/// One vault the item can go to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Choice {
    /// `None`: a folder, asked for next (a bulk move only).
    pub id: Option<Uuid>,
    /// Data from a server for a shared vault: stripped when drawn.
    pub name: String,
    /// "personal", "shared by …, editor", "its own vault: a copy here".
    pub note: String,
}

/// The picker's state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VaultPick {
    pub item: Uuid,
    /// A move of the vault pane's selected items (`item` is the first):
    /// to a vault, or to a folder.
    pub many: Vec<Uuid>,
    pub item_name: String,
    pub from: String,
    pub mode: Transfer,
    pub choices: Vec<Choice>,
    pub sel: usize,
}

/// What the vault pane gets for `m` / `C`: the picker, or why there is
/// none (said in the status bar).
#[derive(Debug)]
pub enum Picked {
    Picker(VaultPick),
    Nothing(String),
}

/// The vaults the item `id` can be moved or copied to, as a picker.
#[must_use]
pub fn choices(id: Uuid, mode: Transfer) -> Job {
    Job::new(vault::TO, "vaults", move |v| {
        Box::pin(async move { picked(v, id, mode).await })
    })
    .fresh()
}

async fn picked(v: &mut Session, id: Uuid, mode: Transfer) -> crate::engine::Result<Picked> {
    let item = v.item(id).await?;
    let vaults = v.vault_list().await?;
    let own = item.r.vault_id;
    let from = v.vault_name(own).to_owned();
    if mode == Transfer::Move && vaults.iter().any(|x| x.id == own && !x.writable()) {
        return Ok(Picked::Nothing(format!(
            "You are a viewer of {from:?}: moving an item out of it needs the editor role; copying it works"
        )));
    }
    let choices: Vec<Choice> = vaults
        .iter()
        .filter(|x| x.writable() && (mode == Transfer::Copy || x.id != own))
        .map(|x| Choice {
            id: Some(x.id),
            name: x.name.clone(),
            note: note(x, x.id == own),
        })
        .collect();
    if choices.is_empty() {
        return Ok(Picked::Nothing(if vaults.len() < 2 {
            "There is no other vault; `openk vault create NAME` makes one".to_owned()
        } else {
            "No other vault you can write to".to_owned()
        }));
    }
    Ok(Picked::Picker(VaultPick {
        item: id,
        many: Vec::new(),
        item_name: item.overview.name,
        from,
        mode,
        choices,
        sel: 0,
    }))
}

/// Where the selected items `ids` can be moved: a folder, or a vault
/// this account may write to (a bulk move; items already there stay).
#[must_use]
pub fn choices_many(ids: Vec<Uuid>) -> Job {
    Job::new(vault::TO, "vaults", move |v| {
        Box::pin(async move {
            let vaults = v.vault_list().await?;
            let mut choices = vec![Choice {
                id: None,
                name: "A folder…".to_owned(),
                note: "in the items' own vaults".to_owned(),
            }];
            choices.extend(vaults.iter().filter(|x| x.writable()).map(|x| Choice {
                id: Some(x.id),
                name: x.name.clone(),
                note: note(x, false),
            }));
            let first = ids.first().copied().unwrap_or_default();
            Ok(Picked::Picker(VaultPick {
                item: first,
                item_name: format!("{} selected items", ids.len()),
                from: String::new(),
                many: ids,
                mode: Transfer::Move,
                choices,
                sel: 0,
            }))
        })
    })
    .fresh()
}

fn note(v: &VaultInfo, own: bool) -> String {
    if own {
        return "its own vault: a copy named … (copy)".to_owned();
    }
    match &v.shared {
        None => "not shared".to_owned(),
        Some(s) if s.mine => "shared by you".to_owned(),
        Some(s) => format!("shared by {}, {}", s.owner_email, s.role.as_str()),
    }
}

impl PopupView for VaultPick {
    fn key(mut self, app: &mut App, k: KeyEvent) {
        match k.code {
            KeyCode::Esc | KeyCode::Char('q') => app.say("Cancelled"),
            KeyCode::Up | KeyCode::Char('k') => {
                self.sel = self.sel.saturating_sub(1);
                app.popups.push(Popup::VaultPick(self));
            }
            KeyCode::Down | KeyCode::Char('j') => {
                self.sel = (self.sel + 1).min(self.choices.len().saturating_sub(1));
                app.popups.push(Popup::VaultPick(self));
            }
            KeyCode::Enter => match self.choices.get(self.sel) {
                Some(Choice { id: None, .. }) => app
                    .popups
                    .push(Popup::BulkText(BulkText::new(self.many, BulkAsk::Folder))),
                Some(Choice {
                    id: Some(to), name, ..
                }) if !self.many.is_empty() => {
                    app.popups.push(Popup::Confirm(Confirmable::Bulk {
                        ids: self.many,
                        op: BulkOp::MoveVault(*to),
                        what: format!("Move to vault {:?}", crate::text::line(name)),
                    }));
                }
                Some(Choice { id: Some(to), .. }) => {
                    let job = match self.mode {
                        Transfer::Move => vault::move_to(self.item, *to),
                        Transfer::Copy => vault::copy_to(self.item, *to),
                    };
                    app.send(Request::Job(job));
                }
                None => {}
            },
            _ => app.popups.push(Popup::VaultPick(self)),
        }
    }

    fn draw(&self, f: &mut Frame, app: &App, area: Rect) -> Rect {
        let t = &app.theme;
        let inner = usize::from(60.min(area.width).saturating_sub(2));
        let mut lines = vec![
            Line::from(Span::styled(
                truncate(
                    &if self.many.is_empty() {
                        format!(
                            " {} {} from {} to:",
                            self.mode.verb(),
                            crate::text::line(&self.item_name),
                            crate::text::line(&self.from)
                        )
                    } else {
                        format!(" {} {} to:", self.mode.verb(), self.item_name)
                    },
                    inner,
                ),
                t.title,
            )),
            Line::default(),
        ];
        let name_w = inner.min(60) / 2;
        for (i, c) in self.choices.iter().enumerate() {
            let style = if i == self.sel { t.selected } else { t.text };
            lines.push(Line::from(vec![
                Span::styled(
                    format!(
                        " {} ",
                        pad_right(&truncate(&crate::text::line(&c.name), name_w), name_w)
                    ),
                    style,
                ),
                Span::styled(
                    truncate(
                        &crate::text::line(&c.note),
                        inner.saturating_sub(name_w + 2),
                    ),
                    t.dim,
                ),
            ]));
        }
        if self.mode == Transfer::Move {
            lines.push(Line::default());
            lines.push(Line::from(Span::styled(
                truncate(" Its history moves with it; it leaves this vault.", inner),
                t.dim,
            )));
        }
        let height = u16::try_from(lines.len() + 2).unwrap_or(u16::MAX);
        let r = clear_popup(f, centered(area, 60, height));
        let title = if self.many.is_empty() {
            format!("{} to vault", self.mode.verb())
        } else {
            "Move to a folder or vault".to_owned()
        };
        f.render_widget(
            Paragraph::new(lines).block(block(app, &title, true).title_bottom(Span::styled(
                format!(
                    " ↑↓ choose · Enter {} · Esc cancel ",
                    self.mode.verb().to_lowercase()
                ),
                t.dim,
            ))),
            r,
        );
        r
    }

    fn hints(&self) -> &'static [(&'static str, &'static str)] {
        match self.mode {
            Transfer::Move => &[("Enter", "move"), ("Esc", "cancel")],
            Transfer::Copy => &[("Enter", "copy"), ("Esc", "cancel")],
        }
    }
}
