//! The export popup (palette `export [FILE]`): the CLI's `openk export`
//! with a form (file, format, the archive's passphrase twice), a progress
//! gauge, and what was written. A plaintext format (json, csv) is written
//! only after `y` to a question that says every secret will be in the
//! clear. The archive's passphrase is derived with the vault's own
//! Argon2id parameters. A failure keeps what was typed.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use crossterm::event::{KeyCode, KeyEvent};
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Gauge, Paragraph, Wrap};

use super::import::expand_home;
use super::{Popup, PopupView};
use crate::engine::strength::{self, Verdict};
use crate::engine::{KdfParams, SecretString};
use crate::export::{self, ExportFormat, Written};
use crate::tui::app::App;
use crate::tui::input::{Edit, TextInput};
use crate::tui::widgets::{block, centered, clear_popup, password_line, spinner};
use crate::tui::worker::{Job, Request, To};

/// The popup's id, for its job's answer.
pub const TO: To = To("export");

const FILE: usize = 0;
const FORMAT: usize = 1;
const PASSPHRASE: usize = 2;
const REPEAT: usize = 3;
const LABELS: [&str; 4] = [
    "File",
    "Format (openk|json|csv)",
    "Archive passphrase",
    "Repeat passphrase",
];

/// Items written and in all, shared with the job while it runs.
#[derive(Debug, Default)]
pub struct Progress {
    pub done: AtomicU64,
    pub total: AtomicU64,
}

/// The export popup's state.
#[derive(Debug)]
pub struct ExportState {
    pub fields: [TextInput; 4],
    pub on: usize,
    pub error: Option<String>,
    /// A plaintext export waits for `y`.
    pub confirming: bool,
    pub running: Option<Arc<Progress>>,
    /// What was written, and where.
    pub written: Option<(Written, ExportFormat, String)>,
}

/// The job's answer.
#[derive(Debug)]
pub struct Answered(pub Result<(Written, ExportFormat, String), (usize, String)>);

impl ExportState {
    /// The form, with the file the palette named (if any).
    #[must_use]
    pub fn open(file: &str) -> Popup {
        let mut fields: [TextInput; 4] = Default::default();
        fields[FILE] = TextInput::with_text(file.trim());
        fields[FORMAT] = TextInput::with_text("openk");
        Popup::Export(Box::new(Self {
            fields,
            on: if file.trim().is_empty() {
                FILE
            } else {
                PASSPHRASE
            },
            error: None,
            confirming: false,
            running: None,
            written: None,
        }))
    }

    fn format(&self) -> Option<ExportFormat> {
        match self.fields[FORMAT]
            .as_str()
            .trim()
            .to_ascii_lowercase()
            .as_str()
        {
            "openk" | "" => Some(ExportFormat::Openk),
            "json" => Some(ExportFormat::Json),
            "csv" => Some(ExportFormat::Csv),
            _ => None,
        }
    }

    fn fail(&mut self, field: usize, why: impl Into<String>) {
        self.on = field;
        self.error = Some(why.into());
    }

    /// Checks the form; plaintext asks first, then the job runs.
    fn submit(&mut self, app: &mut App, confirmed: bool) {
        let path = expand_home(self.fields[FILE].as_str().trim());
        if path.as_os_str().is_empty() {
            return self.fail(FILE, "type the path of the file to write");
        }
        let Some(format) = self.format() else {
            return self.fail(FORMAT, "the format is openk, json or csv");
        };
        let passphrase = if format.is_plaintext() {
            if !confirmed {
                self.confirming = true;
                self.error = None;
                return;
            }
            None
        } else {
            let p = self.fields[PASSPHRASE].as_str();
            if strength::estimate(p, &[]).verdict == Verdict::TooWeak {
                return self.fail(
                    PASSPHRASE,
                    "that passphrase is too easy to guess; 5+ random words (openk gen --words 5) are strong",
                );
            }
            if self.fields[REPEAT].as_str() != p {
                return self.fail(REPEAT, "the two passphrases differ");
            }
            Some(SecretString::from(p.to_owned()))
        };
        let progress = Arc::new(Progress::default());
        self.running = Some(Arc::clone(&progress));
        self.error = None;
        self.confirming = false;
        app.send(Request::Job(run(path, format, passphrase, progress)));
    }
}

/// Writes every item of every vault to `path`.
fn run(
    path: PathBuf,
    format: ExportFormat,
    passphrase: Option<SecretString>,
    progress: Arc<Progress>,
) -> Job {
    Job::new(TO, "export", move |v| {
        Box::pin(async move {
            let total = v.export_count(None).await.unwrap_or(0);
            progress.total.store(total, Ordering::Relaxed);
            let tick = |done: u64| progress.done.store(done, Ordering::Relaxed);
            // The archive's key derivation is the vault's own.
            let kdf: KdfParams = v.kdf();
            let written = export::to_file(
                v,
                None,
                format,
                &path,
                false,
                passphrase.as_ref(),
                &kdf,
                &tick,
            )
            .await
            .map(|w| (w, format, path.display().to_string()))
            .map_err(|e| (FILE, crate::tui::sync_state::message(&e, None)));
            Ok(Answered(written))
        })
    })
}

impl PopupView for Box<ExportState> {
    fn key(mut self, app: &mut App, k: KeyEvent) {
        if self.running.is_some() {
            if k.code == KeyCode::Esc {
                app.say("Still exporting; the status line will say how it went");
            } else {
                app.popups.push(Popup::Export(self));
            }
            return;
        }
        if self.written.is_some() {
            if !matches!(k.code, KeyCode::Esc | KeyCode::Enter | KeyCode::Char('q')) {
                app.popups.push(Popup::Export(self));
            }
            return;
        }
        if self.confirming {
            match k.code {
                KeyCode::Char('y' | 'Y') => self.submit(app, true),
                _ => {
                    self.confirming = false;
                    app.say("Nothing was written");
                }
            }
            app.popups.push(Popup::Export(self));
            return;
        }
        match k.code {
            KeyCode::Esc => return,
            KeyCode::Tab | KeyCode::Down => self.on = (self.on + 1) % LABELS.len(),
            KeyCode::BackTab | KeyCode::Up => self.on = (self.on + LABELS.len() - 1) % LABELS.len(),
            KeyCode::Enter => self.submit(app, false),
            _ => {
                let on = self.on;
                if self.fields[on].handle(k) == Edit::Changed {
                    self.error = None;
                }
            }
        }
        app.popups.push(Popup::Export(self));
    }

    fn draw(&self, f: &mut Frame, app: &App, area: Rect) -> Rect {
        let t = &app.theme;
        let r = clear_popup(f, centered(area, 84, 16));
        let mut lines = Vec::new();
        if let Some((w, format, path)) = &self.written {
            lines.push(Line::from(Span::styled(
                format!(
                    "Exported {} item(s) ({} versions) as {} to {}.",
                    w.items,
                    w.versions,
                    format.as_str(),
                    crate::text::cell(path)
                ),
                t.ok,
            )));
            if format.is_plaintext() {
                lines.push(Line::from(Span::styled(
                    "Every secret in it is in the clear: delete it when you are done.",
                    t.warn,
                )));
            } else {
                lines.push(Line::from(Span::styled(
                    "`openk import FILE` (or the palette's import) reads it back with its passphrase.",
                    t.text,
                )));
            }
            if w.attachments_left_out > 0 {
                lines.push(Line::from(Span::styled(
                    format!(
                        "{} attachment(s) left out: CSV has no place for files.",
                        w.attachments_left_out
                    ),
                    t.warn,
                )));
            }
            for d in &w.damaged {
                lines.push(Line::from(Span::styled(
                    format!(
                        "Left out {}: {}",
                        crate::text::cell(&d.id),
                        crate::text::cell(&d.why)
                    ),
                    t.danger,
                )));
            }
        } else {
            lines.push(Line::from(Span::styled(
                "An encrypted OpenK archive (every version; its own passphrase), or plaintext json / csv:",
                t.text,
            )));
            lines.push(Line::default());
            for (i, label) in LABELS.iter().enumerate() {
                if i == PASSPHRASE || i == REPEAT {
                    lines.push(password_line(app, label, &self.fields[i], self.on == i));
                    continue;
                }
                lines.push(Line::from(vec![
                    Span::styled(
                        format!("{} {label:<24}", if self.on == i { "▸" } else { " " }),
                        if self.on == i { t.accent } else { t.text },
                    ),
                    Span::styled(self.fields[i].as_str().to_owned(), t.accent),
                ]));
            }
            lines.push(Line::default());
            if self.confirming {
                lines.push(Line::from(Span::styled(
                    "Write every password and note IN THE CLEAR to that file? y writes, any other key goes back",
                    t.danger,
                )));
            } else if let Some(e) = &self.error {
                lines.push(Line::from(Span::styled(
                    crate::text::line(e).into_owned(),
                    t.danger,
                )));
            }
        }
        let hint = if self.written.is_some() {
            " Esc close "
        } else {
            " Enter export · Tab field · Esc cancel "
        };
        let outer = block(app, "Export", true).title_bottom(Span::styled(hint, t.dim));
        let inner = outer.inner(r);
        f.render_widget(outer, r);
        let [text_area, gauge_area] =
            Layout::vertical([Constraint::Min(1), Constraint::Length(1)]).areas(inner);
        f.render_widget(Paragraph::new(lines).wrap(Wrap { trim: false }), text_area);
        if let Some(p) = &self.running {
            let (done, total) = (
                p.done.load(Ordering::Relaxed),
                p.total.load(Ordering::Relaxed),
            );
            let ratio = if total == 0 {
                0.0
            } else {
                (done as f64 / total as f64).clamp(0.0, 1.0)
            };
            f.render_widget(
                Gauge::default()
                    .gauge_style(t.accent)
                    .ratio(ratio)
                    .label(format!("{} Exporting {done}/{total}", spinner(app))),
                gauge_area,
            );
        }
        r
    }

    fn hints(&self) -> &'static [(&'static str, &'static str)] {
        if self.written.is_some() {
            &[("Esc", "close")]
        } else if self.confirming {
            &[("y", "write in the clear"), ("n", "back")]
        } else {
            &[("Enter", "export"), ("Tab", "field"), ("Esc", "cancel")]
        }
    }

    fn id(&self) -> Option<To> {
        Some(TO)
    }

    fn answer(&mut self, app: &mut App, answer: crate::tui::worker::Answer) {
        let Ok(Answered(result)) = answer.take::<Answered>() else {
            return;
        };
        self.running = None;
        match result {
            Ok(written) => {
                app.say(format!("Exported {} item(s)", written.0.items));
                self.written = Some(written);
            }
            Err((field, why)) => self.fail(field, why),
        }
    }
}
