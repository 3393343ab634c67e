//! The search pane: a query box over the whole vault and its hits.

use std::cell::Cell;

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers, MouseButton, MouseEvent, MouseEventKind};
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Position, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;
use uuid::Uuid;

use super::{Pane, Tab, step, vault};
use crate::engine::Error;
use crate::engine::search::{Query, SearchIndex};
use crate::tui::app::App;
use crate::tui::input::{Edit, TextInput};
use crate::tui::keymap::Action;
use crate::tui::widgets::{block, entry_line, input_spans, truncate};
use crate::tui::worker::{Answer, Job, Request, To};

/// The search pane's state.
#[derive(Debug, Default)]
pub struct SearchPane {
    pub input: TextInput,
    pub hits: Vec<Uuid>,
    pub total: usize,
    pub sel: usize,
    pub seq: u64,
    pub shown_seq: u64,
    pub error: Option<String>,
    /// Where the results were last drawn (for the mouse).
    pub results: Cell<Rect>,
}

impl Pane for SearchPane {
    fn tab(&self) -> Tab {
        Tab::new(TO, "Search", Action::PaneSearch)
    }

    /// The search input takes characters and the editing keys.
    fn key(&mut self, app: &mut App, k: KeyEvent) -> bool {
        let ctrl = k.modifiers.contains(KeyModifiers::CONTROL);
        match k.code {
            KeyCode::Char('n' | 'j') if ctrl => self.move_by(1),
            KeyCode::Char('p') if ctrl => self.move_by(-1),
            KeyCode::Enter => self.jump_to_hit(app),
            _ => match self.input.handle(k) {
                Edit::Changed => self.run_search(app),
                Edit::Moved => {}
                Edit::Ignored => return false,
            },
        }
        true
    }

    fn act(&mut self, app: &mut App, a: Action) -> bool {
        if let Some(delta) = a.movement() {
            self.move_by(delta);
            return true;
        }
        match a {
            Action::Open => self.jump_to_hit(app),
            Action::Left | Action::Right => {}
            _ => return false,
        }
        true
    }

    fn mouse(&mut self, _app: &mut App, m: MouseEvent) {
        let at = Position::new(m.column, m.row);
        match m.kind {
            MouseEventKind::ScrollDown => self.move_by(3),
            MouseEventKind::ScrollUp => self.move_by(-3),
            MouseEventKind::Down(MouseButton::Left) => {
                let r = self.results.get();
                if r.contains(at) && at.y > r.y {
                    let row = usize::from(at.y - r.y - 1);
                    if row < self.hits.len() {
                        self.sel = row;
                    }
                }
            }
            _ => {}
        }
    }

    fn shown(&mut self, app: &mut App) {
        if self.hits.is_empty() {
            self.run_search(app);
        }
    }

    fn answer(&mut self, _app: &mut App, answer: Answer) {
        match answer.take::<Searched>() {
            Ok(s) => {
                if s.seq >= self.shown_seq {
                    self.shown_seq = s.seq;
                    self.hits = s.hits;
                    self.total = s.total;
                    self.error = s.error;
                    self.sel = self.sel.min(self.hits.len().saturating_sub(1));
                }
            }
            Err(a) => tracing::warn!(?a, "an answer the search pane does not read"),
        }
    }

    fn reset(&mut self) {
        *self = Self::default();
    }

    fn draw(&self, f: &mut Frame, app: &App, area: Rect) {
        draw_search(self, f, app, area);
    }

    fn hints(&self, _app: &App) -> Vec<(String, &'static str)> {
        vec![("Enter".into(), "open"), ("Esc".into(), "back")]
    }
}

impl SearchPane {
    fn move_by(&mut self, delta: i64) {
        self.sel = step(self.sel, self.hits.len(), delta);
    }

    fn run_search(&mut self, app: &mut App) {
        self.seq += 1;
        self.sel = 0;
        let seq = self.seq;
        let text = self.input.as_str().to_owned();
        app.send(Request::Job(search(seq, text)));
    }

    fn jump_to_hit(&mut self, app: &mut App) {
        let Some(&id) = self.hits.get(self.sel) else {
            return;
        };
        app.with_vault(|v, app| v.jump_to(app, id));
        app.pane = vault::TO;
    }
}

/// The search pane's id.
pub const TO: To = To("search");

/// Results a search returns: a few screenfuls.
const SEARCH_LIMIT: usize = 100;

/// A search's answer.
#[derive(Debug)]
pub struct Searched {
    pub seq: u64,
    pub hits: Vec<Uuid>,
    pub total: usize,
    pub error: Option<String>,
}

/// Searches (after what other writers saved); queued searches collapse to
/// the newest.
#[must_use]
pub fn search(seq: u64, text: String) -> Job {
    Job::new(TO, "search", move |v| {
        Box::pin(async move {
            match Query::parse(&text) {
                Ok(q) => {
                    let found = match v.search(&q, SEARCH_LIMIT).await {
                        Ok(found) => found,
                        // A `vault:` that names no vault (or several) is
                        // said like a bad `kind:`.
                        Err(e @ (Error::NoSuchVault { .. } | Error::AmbiguousVault { .. })) => {
                            return Ok(Searched {
                                seq,
                                hits: Vec::new(),
                                total: 0,
                                error: Some(e.to_string().replace('\n', " ")),
                            });
                        }
                        Err(e) => return Err(e),
                    };
                    let (entries, _) = v.entries().await?;
                    let hits = found
                        .hits
                        .iter()
                        .filter_map(|h| entries.get(h.index).map(|e| e.r.id))
                        .collect();
                    Ok(Searched {
                        seq,
                        hits,
                        total: found.total,
                        error: None,
                    })
                }
                Err(e) => Ok(Searched {
                    seq,
                    hits: Vec::new(),
                    total: 0,
                    error: Some(e),
                }),
            }
        })
    })
    .fresh()
    .latest_only()
}

fn draw_search(p: &SearchPane, f: &mut Frame, app: &App, area: Rect) {
    let t = &app.theme;
    let [input, results] =
        Layout::vertical([Constraint::Length(3), Constraint::Min(1)]).areas(area);
    let mut prompt = vec![Span::styled("/ ", t.accent)];
    prompt.extend(input_spans(
        &p.input,
        usize::from(input.width.saturating_sub(4)),
        t.text,
        t.accent,
    ));
    let prompt = Line::from(prompt);
    let count = if let Some(e) = &p.error {
        e.clone()
    } else {
        format!("{} of {} matches", p.hits.len(), p.total)
    };
    f.render_widget(
        Paragraph::new(prompt).block(
            block(
                app,
                "Search · kind: tag: folder: vault: is:fav is:trash",
                true,
            )
            .title_bottom(Span::styled(format!(" {count} "), t.dim)),
        ),
        input,
    );
    p.results.set(results);
    let query_text = Query::parse(p.input.as_str())
        .map(|q| q.text)
        .unwrap_or_default();
    let height = usize::from(results.height.saturating_sub(2));
    let width = usize::from(results.width.saturating_sub(2));
    let offset = p.sel.saturating_sub(height.saturating_sub(1));
    let mut lines: Vec<Line> = Vec::new();
    for (pos, id) in p.hits.iter().enumerate().skip(offset).take(height) {
        let Some(e) = app.vault().entry(*id) else {
            continue;
        };
        let matches = if query_text.is_empty() {
            Vec::new()
        } else {
            SearchIndex::name_matches(&e.overview.name, &query_text)
        };
        let name_w = width * 55 / 100;
        let mut line = entry_line(app, e, name_w, pos == p.sel, true, &matches);
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
            if p.input.is_empty() {
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
