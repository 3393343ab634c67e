//! The history popup: an item's versions, each compared with the current
//! one field by field.

use std::collections::HashSet;

use crossterm::event::{KeyCode, KeyEvent};
use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;
use uuid::Uuid;
use zeroize::Zeroizing;

use super::{Popup, PopupView};
use crate::engine::VersionSummary;
use crate::engine::model::{Field, Item};
use crate::tui::app::App;
use crate::tui::panes::vault;
use crate::tui::widgets::{MASK, ago, block, centered, clear_popup, pad_right, truncate};
use crate::tui::worker::{Answer, Job, Request, To};

/// The history popup's id.
pub const TO: To = To("history");

/// An old version, to compare with the current one.
#[derive(Debug)]
pub struct OldVersion(pub Box<Item>);

/// Reads one old version of an item.
#[must_use]
pub fn version(id: Uuid, version: u64) -> Job {
    Job::new(TO, "version", move |v| {
        Box::pin(async move { Ok(OldVersion(Box::new(v.item_version(id, version).await?))) })
    })
}

/// The history popup.
#[derive(Debug)]
pub struct HistoryState {
    pub id: Uuid,
    pub name: String,
    pub versions: Vec<VersionSummary>,
    pub sel: usize,
    /// The compared version and how it differs from the current one.
    pub compared: Option<Compared>,
    pub reveal: bool,
}

/// One field that differs between two versions.
#[derive(Debug)]
pub struct Difference {
    pub what: String,
    pub old: Option<Zeroizing<String>>,
    pub new: Option<Zeroizing<String>>,
    pub concealed: bool,
}

#[derive(Debug)]
pub struct Compared {
    pub version: u64,
    pub current: u64,
    pub differences: Vec<Difference>,
}

impl PopupView for HistoryState {
    fn key(mut self, app: &mut App, k: KeyEvent) {
        match k.code {
            KeyCode::Esc | KeyCode::Char('q') => return,
            KeyCode::Up | KeyCode::Char('k') => {
                self.sel = self.sel.saturating_sub(1);
                self.compared = None;
            }
            KeyCode::Down | KeyCode::Char('j') => {
                self.sel = (self.sel + 1).min(self.versions.len().saturating_sub(1));
                self.compared = None;
            }
            KeyCode::Char('r') => self.reveal = !self.reveal,
            KeyCode::Enter => {
                if let Some(v) = self.versions.get(self.sel)
                    && v.damaged.is_none()
                {
                    app.send(Request::Job(version(self.id, v.version)));
                    if app
                        .vault()
                        .detail
                        .as_ref()
                        .is_none_or(|d| d.r.id != self.id)
                    {
                        app.send(Request::Job(vault::read_item(self.id)));
                    }
                }
            }
            _ => {}
        }
        app.popups.push(Popup::History(self));
    }

    fn draw(&self, f: &mut Frame, app: &App, area: Rect) -> Rect {
        draw_history(f, app, area, self)
    }

    fn hints(&self) -> &'static [(&'static str, &'static str)] {
        &[("Enter", "compare"), ("r", "reveal"), ("Esc", "close")]
    }

    fn id(&self) -> Option<To> {
        Some(TO)
    }

    /// An old version to compare with the current one.
    fn answer(&mut self, app: &mut App, answer: Answer) {
        let Ok(OldVersion(old)) = answer.take::<OldVersion>() else {
            return;
        };
        if self.id == old.r.id
            && let Some(cur) = app.vault().detail.as_ref().filter(|d| d.r.id == old.r.id)
        {
            self.compared = Some(Compared {
                version: old.r.version,
                current: cur.r.version,
                differences: differences(&old, cur),
            });
        }
    }
}

/// The fields (and name, tags, folder, favourite) that differ between two
/// versions of an item.
fn differences(old: &Item, new: &Item) -> Vec<Difference> {
    let mut out = Vec::new();
    let text = |s: &str| Some(Zeroizing::new(s.to_owned()));
    let (o, n) = (&old.overview, &new.overview);
    if o.name != n.name {
        out.push(Difference {
            what: "name".into(),
            old: text(&o.name),
            new: text(&n.name),
            concealed: false,
        });
    }
    let mut labels: Vec<&str> = old
        .details
        .fields
        .iter()
        .chain(&new.details.fields)
        .map(|f| f.label.as_str())
        .collect();
    labels.dedup();
    let mut seen = HashSet::new();
    for l in labels {
        if !seen.insert(l.to_lowercase()) {
            continue;
        }
        let a: Vec<&Field> = old.fields_named(l).collect();
        let b: Vec<&Field> = new.fields_named(l).collect();
        let same = a.len() == b.len()
            && a.iter()
                .zip(&b)
                .all(|(x, y)| x.value == y.value && x.kind == y.kind);
        if !same {
            let join = |fs: &[&Field]| {
                (!fs.is_empty()).then(|| {
                    Zeroizing::new(
                        fs.iter()
                            .map(|f| f.value.expose())
                            .collect::<Vec<_>>()
                            .join(", "),
                    )
                })
            };
            out.push(Difference {
                what: l.to_owned(),
                old: join(&a),
                new: join(&b),
                concealed: a.iter().chain(&b).any(|f| f.is_concealed()),
            });
        }
    }
    if o.tags != n.tags {
        out.push(Difference {
            what: "tags".into(),
            old: text(&o.tags.join(", ")),
            new: text(&n.tags.join(", ")),
            concealed: false,
        });
    }
    if o.folder != n.folder {
        out.push(Difference {
            what: "folder".into(),
            old: o.folder.as_deref().and_then(text),
            new: n.folder.as_deref().and_then(text),
            concealed: false,
        });
    }
    if o.favorite != n.favorite {
        out.push(Difference {
            what: "favorite".into(),
            old: text(if o.favorite { "yes" } else { "no" }),
            new: text(if n.favorite { "yes" } else { "no" }),
            concealed: false,
        });
    }
    if o.trashed_at.is_some() != n.trashed_at.is_some() {
        out.push(Difference {
            what: "trash".into(),
            old: text(if o.trashed_at.is_some() {
                "in trash"
            } else {
                "live"
            }),
            new: text(if n.trashed_at.is_some() {
                "in trash"
            } else {
                "live"
            }),
            concealed: false,
        });
    }
    out
}

fn draw_history(f: &mut Frame, app: &App, area: Rect, h: &HistoryState) -> Rect {
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
