//! The screens before the vault is open: unlock, and the first run's
//! create-vault flow (password twice, then the Emergency Kit).

use std::path::PathBuf;

use crossterm::event::{KeyCode, KeyEvent};
use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Clear, Paragraph, Wrap};
use zeroize::Zeroizing;

use super::app::App;
use super::input::{Edit, TextInput};
use super::popups::passwd::TOO_WEAK;
use super::popups::strength_of;
use super::widgets::{
    block, centered, keys_line, masked_spans, password_line, progress_line, strength_lines,
};
use super::worker::Request;
use crate::engine::SecretString;

/// The unlock screen.
#[derive(Debug, Default)]
pub struct UnlockState {
    pub input: TextInput,
    pub error: Option<String>,
    pub busy: bool,
}

/// The steps of the first-run flow.
#[derive(Debug)]
pub enum CreateStep {
    Password,
    Working,
    Kit {
        secret_key: Zeroizing<String>,
        kit: Result<PathBuf, String>,
    },
}

/// The first-run create-vault flow.
#[derive(Debug)]
pub struct CreateState {
    pub first: TextInput,
    pub second: TextInput,
    pub on_second: bool,
    pub error: Option<String>,
    pub step: CreateStep,
}

#[derive(Debug)]
pub enum Screen {
    Unlock(UnlockState),
    Create(CreateState),
    Main,
}

impl App {
    pub(crate) fn key_unlock(&mut self, k: KeyEvent) {
        let Screen::Unlock(s) = &mut self.screen else {
            return;
        };
        if k.code == KeyCode::Esc {
            self.quit = true;
            return;
        }
        if s.busy {
            return;
        }
        match k.code {
            KeyCode::Enter if !s.input.is_empty() => {
                let password = SecretString::from(s.input.take().as_str().to_owned());
                s.busy = true;
                s.error = None;
                self.busy = Some("Unlocking");
                self.send(Request::Unlock(password));
            }
            _ => {
                s.input.handle(k);
            }
        }
    }

    pub(crate) fn key_create(&mut self, k: KeyEvent) {
        let Screen::Create(s) = &mut self.screen else {
            return;
        };
        match &s.step {
            CreateStep::Working => {}
            CreateStep::Kit { .. } => {
                if k.code == KeyCode::Enter {
                    self.screen = Screen::Main;
                    self.last_input = self.clock.now();
                    self.say("Vault created. Press n to add your first item, ? for help");
                }
            }
            CreateStep::Password => match k.code {
                KeyCode::Esc => self.quit = true,
                KeyCode::Tab | KeyCode::BackTab | KeyCode::Up | KeyCode::Down => {
                    s.on_second = !s.on_second;
                }
                KeyCode::Enter => {
                    if s.first.is_empty() {
                        s.error = Some("choose a master password".into());
                    } else if strength_of(s.first.as_str()).2 {
                        s.error = Some(TOO_WEAK.into());
                        s.second.clear();
                        s.on_second = false;
                    } else if !s.on_second {
                        s.on_second = true;
                    } else if s.first.as_str() != s.second.as_str() {
                        s.error = Some("the two passwords differ; type the second again".into());
                        s.second.clear();
                    } else {
                        let password = SecretString::from(s.first.take().as_str().to_owned());
                        s.second.clear();
                        s.error = None;
                        s.step = CreateStep::Working;
                        self.busy = Some("Creating your vault");
                        self.send(Request::Create(password));
                    }
                }
                _ => {
                    let target = if s.on_second {
                        &mut s.second
                    } else {
                        &mut s.first
                    };
                    if target.handle(k) == Edit::Changed {
                        s.error = None;
                    }
                }
            },
        }
    }
}

pub(crate) fn draw_unlock(f: &mut Frame, app: &App, area: Rect) {
    let Screen::Unlock(s) = &app.screen else {
        return;
    };
    let t = &app.theme;
    let r = centered(area, 64, 12);
    f.render_widget(Clear, r);
    let working = s.busy.then_some("Unlocking (deriving keys)");
    let lines = vec![
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
        progress_line(app, working, s.error.as_deref()),
        app.message
            .as_ref()
            .map_or_else(Line::default, |(m, _, _)| {
                Line::from(Span::styled(m.clone(), t.dim))
            }),
        Line::default(),
        keys_line(app, &[("Enter", "unlock"), ("Esc", "quit")]),
    ];
    f.render_widget(Paragraph::new(lines).block(block(app, "Unlock", true)), r);
}

pub(crate) fn draw_create(f: &mut Frame, app: &App, area: Rect) {
    let Screen::Create(s) = &app.screen else {
        return;
    };
    let t = &app.theme;
    let r = centered(area, 76, 18);
    f.render_widget(Clear, r);
    let styled = |text: &str, style| Line::from(Span::styled(text.to_owned(), style));
    let mut lines = Vec::new();
    match &s.step {
        CreateStep::Password | CreateStep::Working => {
            let working = matches!(s.step, CreateStep::Working)
                .then_some("Creating your vault (deriving keys)");
            lines.extend([
                styled("Welcome to OpenK", t.title),
                styled(
                    "There is no vault yet. Choose a master password: it encrypts",
                    t.text,
                ),
                styled("everything, and nobody can recover it for you.", t.text),
                styled(
                    &format!("vault {}", app.settings.vault_dir.display()),
                    t.dim,
                ),
                Line::default(),
                password_line(app, "Master password", &s.first, !s.on_second),
                password_line(app, "Repeat it", &s.second, s.on_second),
                Line::default(),
            ]);
            lines.extend(strength_lines(app, s.first.as_str()));
            lines.extend([
                Line::default(),
                progress_line(app, working, s.error.as_deref()),
                Line::default(),
                keys_line(
                    app,
                    &[("Enter", "next"), ("Tab", "switch field"), ("Esc", "quit")],
                ),
            ]);
        }
        CreateStep::Kit { secret_key, kit } => {
            lines.extend([
                styled("Your vault is ready. Save your Emergency Kit now", t.title),
                Line::default(),
                styled(
                    "Opening this vault on another device, or after a disk failure,",
                    t.text,
                ),
                styled(
                    "needs BOTH your master password AND this Secret Key:",
                    t.text,
                ),
                Line::default(),
                Line::from(vec![
                    Span::styled("  Secret Key  ", t.text),
                    Span::styled(secret_key.as_str().to_owned(), t.matched),
                ]),
                Line::default(),
            ]);
            match kit {
                Ok(path) => lines.extend([
                    styled(
                        "The Emergency Kit (Secret Key + instructions) was written to",
                        t.text,
                    ),
                    styled(&format!("  {}  (mode 0600)", path.display()), t.accent),
                ]),
                Err(e) => lines.push(styled(
                    &format!("Could not write the Emergency Kit ({e}); `openk kit` shows it."),
                    t.danger,
                )),
            }
            lines.extend([
                styled(
                    "Print it or copy it somewhere offline, then delete the file.",
                    t.text,
                ),
                styled("`openk kit` shows it again after unlocking.", t.dim),
                Line::default(),
                keys_line(
                    app,
                    &[("Enter", "I have saved my Emergency Kit — open the vault")],
                ),
            ]);
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
