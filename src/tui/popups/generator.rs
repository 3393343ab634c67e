//! The password generator, over the form's secret field.

use crossterm::event::{KeyCode, KeyEvent};
use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;
use zeroize::Zeroizing;

use super::Popup;
use crate::engine::ExposeSecret;
use crate::engine::generator::{self, PassphraseSpec, PasswordSpec};
use crate::tui::app::App;
use crate::tui::widgets::{block, centered, clear_popup};

/// The password generator popup.
#[derive(Debug)]
pub struct GenState {
    pub words: bool,
    pub length: usize,
    pub word_count: usize,
    pub symbols: bool,
    pub digits: bool,
    pub value: Zeroizing<String>,
    pub entropy: f64,
    pub error: Option<String>,
}

impl GenState {
    pub(super) fn new() -> Self {
        let mut g = Self {
            words: false,
            length: PasswordSpec::default().length,
            word_count: PassphraseSpec::default().words,
            symbols: true,
            digits: true,
            value: Zeroizing::default(),
            entropy: 0.0,
            error: None,
        };
        g.generate();
        g
    }

    fn generate(&mut self) {
        let made = if self.words {
            generator::passphrase(&PassphraseSpec {
                words: self.word_count,
                include_number: self.digits,
                ..PassphraseSpec::default()
            })
        } else {
            generator::password(&PasswordSpec {
                length: self.length,
                symbols: self.symbols,
                digits: self.digits,
                ..PasswordSpec::default()
            })
        };
        match made {
            Ok(g) => {
                self.value = Zeroizing::new(g.value.expose_secret().to_owned());
                self.entropy = g.entropy_bits;
                self.error = None;
            }
            Err(e) => self.error = Some(e.to_string()),
        }
    }
}

/// A key in the generator.
pub(super) fn key(app: &mut App, mut g: GenState, k: KeyEvent) {
    match k.code {
        // Back to the form under it.
        KeyCode::Esc => return,
        KeyCode::Enter => {
            if let Some(Popup::Form(form)) = app.popups.last_mut() {
                let row = &mut form.rows[form.sel];
                row.value.set(g.value.as_str());
                form.error = None;
            }
            return;
        }
        KeyCode::Tab | KeyCode::Char('w') => g.words = !g.words,
        KeyCode::Left | KeyCode::Char('-' | 'h') => {
            if g.words {
                g.word_count = g.word_count.saturating_sub(1).max(3);
            } else {
                g.length = g.length.saturating_sub(1).max(8);
            }
        }
        KeyCode::Right | KeyCode::Char('+' | 'l') => {
            if g.words {
                g.word_count = (g.word_count + 1).min(12);
            } else {
                g.length = (g.length + 1).min(128);
            }
        }
        KeyCode::Char('s') => g.symbols = !g.symbols,
        KeyCode::Char('d') => g.digits = !g.digits,
        _ => {}
    }
    g.generate();
    app.popups.push(Popup::Generator(g));
}

/// Draws the generator (over the form, drawn before it).
pub(super) fn draw(f: &mut Frame, app: &App, area: Rect, g: &GenState) -> Rect {
    let t = &app.theme;
    let r = clear_popup(f, centered(area, 60, 10));
    let mode = if g.words {
        format!("passphrase · {} words", g.word_count)
    } else {
        format!("password · {} characters", g.length)
    };
    let on = |b: bool| if b { "on" } else { "off" };
    let lines = vec![
        Line::from(Span::styled(g.value.as_str().to_owned(), t.matched)),
        Line::default(),
        Line::from(vec![
            Span::styled("Kind     ", t.dim),
            Span::styled(mode, t.text),
        ]),
        Line::from(vec![
            Span::styled("Options  ", t.dim),
            Span::styled(
                if g.words {
                    format!("d number {}", on(g.digits))
                } else {
                    format!("s symbols {} · d digits {}", on(g.symbols), on(g.digits))
                },
                t.text,
            ),
        ]),
        Line::from(vec![
            Span::styled("Entropy  ", t.dim),
            Span::styled(format!("{:.0} bits", g.entropy), t.ok),
        ]),
        Line::from(Span::styled(g.error.clone().unwrap_or_default(), t.danger)),
        Line::from(Span::styled(
            if g.words {
                "←→ words · Tab password · Space new · Enter use · Esc"
            } else {
                "←→ length · Tab words · Space new · Enter use · Esc"
            },
            t.dim,
        )),
    ];
    f.render_widget(Paragraph::new(lines).block(block(app, "Generate", true)), r);
    r
}

/// The generator's hints, by mode.
pub(super) fn hints(g: &GenState) -> &'static [(&'static str, &'static str)] {
    if g.words {
        &[
            ("←→", "words"),
            ("Tab", "password"),
            ("Enter", "use"),
            ("Esc", "back"),
        ]
    } else {
        &[
            ("←→", "length"),
            ("Tab", "words"),
            ("Enter", "use"),
            ("Esc", "back"),
        ]
    }
}
