//! The change-master-password popup (palette `passwd`).

use crossterm::event::{KeyCode, KeyEvent};
use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

use super::{Popup, PopupView};
use crate::engine::{SecretString, strength};
use crate::tui::app::App;
use crate::tui::input::{Edit, TextInput};
use crate::tui::widgets::{block, centered, clear_popup, password_line, spinner, strength_lines};
use crate::tui::worker::{Job, Notice, Request, To};

/// A new master password below zxcvbn's floor (engine::strength).
pub(crate) const TOO_WEAK: &str = "that password is too easy to guess; choose another \
    (five or more random words are strong), or `openk init --weak-password` / \
    `openk passwd --weak-password` to keep it";

/// The change-master-password popup (palette `passwd`).
#[derive(Debug, Default)]
pub struct PasswdState {
    /// The current password, the new one, and the new one again.
    pub fields: [TextInput; 3],
    pub on: usize,
    pub error: Option<String>,
    pub saving: bool,
}

impl PopupView for PasswdState {
    fn key(mut self, app: &mut App, k: KeyEvent) {
        if self.saving {
            if k.code == KeyCode::Esc {
                // The engine goes on; its answer lands in the status line.
                app.say("Still changing the master password; the status line will say how it went");
            } else {
                app.popups.push(Popup::Passwd(self));
            }
            return;
        }
        match k.code {
            KeyCode::Esc => {
                app.say("Cancelled: the master password is unchanged");
                return;
            }
            KeyCode::Tab | KeyCode::Down => self.on = (self.on + 1) % 3,
            KeyCode::BackTab | KeyCode::Up => self.on = (self.on + 2) % 3,
            KeyCode::Enter if self.on < 2 => {
                if self.fields[self.on].is_empty() {
                    self.error = Some(
                        if self.on == 0 {
                            "type the current master password"
                        } else {
                            "choose a new master password"
                        }
                        .into(),
                    );
                } else {
                    self.on += 1;
                }
            }
            KeyCode::Enter => {
                let [current, new, again] = &mut self.fields;
                if current.is_empty() {
                    self.error = Some("type the current master password".into());
                    self.on = 0;
                } else if new.is_empty() {
                    self.error = Some("choose a new master password".into());
                    self.on = 1;
                } else if strength_of(new.as_str()).2 {
                    self.error = Some(TOO_WEAK.into());
                    again.clear();
                    self.on = 1;
                } else if new.as_str() != again.as_str() {
                    self.error = Some("the two new passwords differ; type the second again".into());
                    again.clear();
                } else {
                    let request = Request::Job(change_password(
                        SecretString::from(current.as_str().to_owned()),
                        SecretString::from(new.as_str().to_owned()),
                    ));
                    self.error = None;
                    self.saving = true;
                    app.busy = Some("Changing the master password (deriving keys)");
                    app.send(Request::Submit(Box::new(request)));
                }
            }
            _ => {
                if self.fields[self.on].handle(k) == Edit::Changed {
                    self.error = None;
                }
            }
        }
        app.popups.push(Popup::Passwd(self));
    }

    fn draw(&self, f: &mut Frame, app: &App, area: Rect) -> Rect {
        let t = &app.theme;
        let p = self;
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

    fn hints(&self) -> &'static [(&'static str, &'static str)] {
        &[
            ("Enter", "next / change"),
            ("Tab", "field"),
            ("Esc", "cancel"),
        ]
    }
}

/// Checks the current master password, then changes it.
#[must_use]
pub fn change_password(current: SecretString, new: SecretString) -> Job {
    Job::new(To::APP, "passwd", move |v| {
        Box::pin(async move {
            v.check_password(current).await?;
            v.change_password(new, None).await?;
            Ok(Notice(
                "Master password changed. The old one no longer opens this vault; the Secret Key is unchanged"
                    .into(),
            ))
        })
    })
}

/// The strength meter of a new master password: bits (log2 of zxcvbn's
/// guesses), label, and whether it is below the floor (refused).
#[must_use]
pub fn strength_of(password: &str) -> (f64, &'static str, bool) {
    let s = strength::estimate(password, &[]);
    (s.bits, s.label, s.verdict == strength::Verdict::TooWeak)
}
