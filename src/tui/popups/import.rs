//! The import popup (palette `import [FILE]`): the CLI's `openk import`
//! with a form (file, format, folder, the file's own password), a progress
//! gauge while the engine reads and writes, and the report at the end. A
//! failure (wrong password, a file that is not the format) keeps what was
//! typed and puts the cursor where the fix goes.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use crossterm::event::{KeyCode, KeyEvent};
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Gauge, Paragraph, Wrap};

use super::{Popup, PopupView};
use crate::engine::SecretString;
use crate::engine::imports::{ImportOptions, ImportReport};
use crate::import::{self, Format, ImportError, Source};
use crate::tui::app::App;
use crate::tui::input::{Edit, TextInput};
use crate::tui::widgets::{block, centered, clear_popup, password_line, spinner};
use crate::tui::worker::{Job, Request, To};

/// The popup's id, for its job's answer.
pub const TO: To = To("import");

const FILE: usize = 0;
const FORMAT: usize = 1;
const FOLDER: usize = 2;
const PASSWORD: usize = 3;
const LABELS: [&str; 4] = ["File", "Format (or auto)", "Into folder", "File password"];

/// Items done and in all, shared with the job while it runs.
#[derive(Debug, Default)]
pub struct Progress {
    pub done: AtomicU64,
    pub total: AtomicU64,
    /// 0 reading the file, 1 writing the items.
    pub phase: AtomicU64,
}

/// The import popup's state.
#[derive(Debug)]
pub struct ImportState {
    pub fields: [TextInput; 4],
    pub on: usize,
    pub error: Option<String>,
    /// Set while the job runs.
    pub running: Option<Arc<Progress>>,
    pub report: Option<ImportReport>,
}

/// The job's answer: the report, or what went wrong and which field it is about.
#[derive(Debug)]
pub struct Answered(pub Result<ImportReport, (usize, String)>);

impl ImportState {
    /// The form, with the file the palette named (if any).
    #[must_use]
    pub fn open(file: &str) -> Popup {
        let mut fields: [TextInput; 4] = Default::default();
        fields[FILE] = TextInput::with_text(file.trim());
        fields[FORMAT] = TextInput::with_text("auto");
        Popup::Import(Box::new(Self {
            fields,
            on: if file.trim().is_empty() { FILE } else { FORMAT },
            error: None,
            running: None,
            report: None,
        }))
    }

    fn submit(&mut self, app: &mut App) {
        let path = expand_home(self.fields[FILE].as_str().trim());
        if path.as_os_str().is_empty() {
            self.on = FILE;
            self.error = Some("type the path of the file (or a pass store's directory)".into());
            return;
        }
        let format = match self.fields[FORMAT].as_str().trim() {
            "" | "auto" => None,
            name => match Format::ALL
                .iter()
                .find(|f| f.as_str().eq_ignore_ascii_case(name))
            {
                Some(f) => Some(*f),
                None => {
                    self.on = FORMAT;
                    self.error = Some(format!(
                        "unknown format; one of: auto, {}",
                        Format::ALL.map(Format::as_str).join(", ")
                    ));
                    return;
                }
            },
        };
        let folder = Some(self.fields[FOLDER].as_str().trim().to_owned()).filter(|f| !f.is_empty());
        let password = (!self.fields[PASSWORD].is_empty())
            .then(|| SecretString::from(self.fields[PASSWORD].as_str().to_owned()));
        let progress = Arc::new(Progress::default());
        self.running = Some(Arc::clone(&progress));
        self.error = None;
        app.send(Request::Job(run(path, format, folder, password, progress)));
    }
}

/// `~/x` as the home directory's `x`.
pub(super) fn expand_home(path: &str) -> PathBuf {
    match (path.strip_prefix("~/"), std::env::var_os("HOME")) {
        (Some(rest), Some(home)) => PathBuf::from(home).join(rest),
        _ => PathBuf::from(path),
    }
}

/// Reads, parses and imports; every failure names the field to fix.
fn run(
    path: PathBuf,
    format: Option<Format>,
    folder: Option<String>,
    password: Option<SecretString>,
    progress: Arc<Progress>,
) -> Job {
    Job::new(TO, "import", move |v| {
        Box::pin(async move {
            let report = async {
                let bytes = if path.is_dir() {
                    zeroize::Zeroizing::new(Vec::new())
                } else {
                    zeroize::Zeroizing::new(
                        std::fs::read(&path).map_err(|e| (FILE, format!("cannot read it: {e}")))?,
                    )
                };
                let format = match format {
                    Some(f) => f,
                    None => import::detect(&path, &bytes).map_err(|e| (FORMAT, e.to_string()))?,
                };
                if import::needs_password(format, &bytes) && password.is_none() {
                    return Err((
                        PASSWORD,
                        format!("this {format} file is encrypted: type its password"),
                    ));
                }
                let tick = |done: u64, total: u64| {
                    progress.total.store(total, Ordering::Relaxed);
                    progress.done.store(done, Ordering::Relaxed);
                };
                let source = Source {
                    path: &path,
                    bytes: &bytes,
                    password: password.as_ref(),
                    key_file: None,
                    progress: &tick,
                };
                let parsed = import::parse(format, &source).map_err(|e| {
                    let at = match e {
                        ImportError::WrongPassword { .. } | ImportError::NeedsPassword(_) => {
                            PASSWORD
                        }
                        ImportError::Unknown(..) | ImportError::Malformed { .. } => FORMAT,
                        ImportError::Io(_) => FILE,
                    };
                    (at, format!("{e}; nothing was imported"))
                })?;
                progress.phase.store(1, Ordering::Relaxed);
                let opts = ImportOptions {
                    folder,
                    dry_run: false,
                };
                let vault = v.default_vault().0;
                v.import(vault, format, parsed, &opts, &tick)
                    .await
                    .map_err(|e| (FILE, crate::tui::sync_state::message(&e, None)))
            }
            .await;
            Ok(Answered(report))
        })
    })
    .writes()
}

impl PopupView for Box<ImportState> {
    fn key(mut self, app: &mut App, k: KeyEvent) {
        if self.running.is_some() {
            if k.code == KeyCode::Esc {
                app.say("Still importing; the status line will say how it went");
            } else {
                app.popups.push(Popup::Import(self));
            }
            return;
        }
        if self.report.is_some() {
            // Any of Esc, Enter or q closes the report.
            if !matches!(k.code, KeyCode::Esc | KeyCode::Enter | KeyCode::Char('q')) {
                app.popups.push(Popup::Import(self));
            }
            return;
        }
        match k.code {
            KeyCode::Esc => return,
            KeyCode::Tab | KeyCode::Down => self.on = (self.on + 1) % LABELS.len(),
            KeyCode::BackTab | KeyCode::Up => self.on = (self.on + LABELS.len() - 1) % LABELS.len(),
            KeyCode::Enter => self.submit(app),
            _ => {
                let on = self.on;
                if self.fields[on].handle(k) == Edit::Changed {
                    self.error = None;
                }
            }
        }
        app.popups.push(Popup::Import(self));
    }

    fn draw(&self, f: &mut Frame, app: &App, area: Rect) -> Rect {
        let t = &app.theme;
        let r = clear_popup(f, centered(area, 84, 18));
        let mut lines = Vec::new();
        if let Some(report) = &self.report {
            lines.extend(report_lines(app, report));
        } else {
            lines.push(Line::from(Span::styled(
                "KeePass(XC), Bitwarden, 1Password, LastPass, Chrome, Firefox, pass or an OpenK archive:",
                t.text,
            )));
            lines.push(Line::default());
            for (i, label) in LABELS.iter().enumerate() {
                if i == PASSWORD {
                    lines.push(password_line(app, label, &self.fields[i], self.on == i));
                    continue;
                }
                lines.push(Line::from(vec![
                    Span::styled(
                        format!("{} {label:<18}", if self.on == i { "▸" } else { " " }),
                        if self.on == i { t.accent } else { t.text },
                    ),
                    Span::styled(self.fields[i].as_str().to_owned(), t.accent),
                ]));
            }
            lines.push(Line::from(Span::styled(
                "The file password is for KDBX files, OpenK archives and protected Bitwarden exports.",
                t.dim,
            )));
            lines.push(Line::default());
            if let Some(e) = &self.error {
                lines.push(Line::from(Span::styled(
                    crate::text::line(e).into_owned(),
                    t.danger,
                )));
            }
        }
        let hint = if self.report.is_some() {
            " Esc close "
        } else {
            " Enter import · Tab field · Esc cancel "
        };
        let outer = block(app, "Import", true).title_bottom(Span::styled(hint, t.dim));
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
            let what = if p.phase.load(Ordering::Relaxed) == 0 {
                "Reading"
            } else {
                "Importing"
            };
            let ratio = if total == 0 {
                0.0
            } else {
                (done as f64 / total as f64).clamp(0.0, 1.0)
            };
            f.render_widget(
                Gauge::default()
                    .gauge_style(t.accent)
                    .ratio(ratio)
                    .label(format!("{} {what} {done}/{total}", spinner(app))),
                gauge_area,
            );
        }
        r
    }

    fn hints(&self) -> &'static [(&'static str, &'static str)] {
        if self.report.is_some() {
            &[("Esc", "close")]
        } else {
            &[("Enter", "import"), ("Tab", "field"), ("Esc", "cancel")]
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
            Ok(report) => {
                app.say(format!(
                    "Imported {} item(s) from {}",
                    report.imported.len(),
                    report.format
                ));
                self.report = Some(report);
            }
            Err((field, why)) => {
                self.on = field;
                self.error = Some(why);
            }
        }
    }
}

/// The report in lines (names from the file, cleaned for the terminal).
fn report_lines(app: &App, r: &ImportReport) -> Vec<Line<'static>> {
    let t = &app.theme;
    let mut lines = vec![Line::from(Span::styled(
        format!(
            "Imported {} item(s) ({}) into {}.",
            r.imported.len(),
            r.format,
            crate::text::cell(&r.vault)
        ),
        t.ok,
    ))];
    let renamed = r
        .imported
        .iter()
        .filter(|i| i.renamed_from.is_some())
        .count();
    if renamed > 0 {
        lines.push(Line::from(Span::styled(
            format!("{renamed} got a number: the vault already had the name."),
            t.text,
        )));
    }
    let mut section = |title: String, rows: Vec<String>| {
        if rows.is_empty() {
            return;
        }
        lines.push(Line::from(Span::styled(title, t.title)));
        for row in rows.iter().take(4) {
            lines.push(Line::from(Span::styled(format!("  {row}"), t.text)));
        }
        if rows.len() > 4 {
            lines.push(Line::from(Span::styled(
                format!(
                    "  … and {} more (openk import --dry-run --json lists them)",
                    rows.len() - 4
                ),
                t.dim,
            )));
        }
    };
    section(
        format!("Skipped {} duplicate(s):", r.duplicates.len()),
        r.duplicates
            .iter()
            .map(|d| format!("{}: {}", crate::text::cell(&d.name), d.why))
            .collect(),
    );
    section(
        format!("Imported without some parts ({}):", r.unmapped.len()),
        r.unmapped
            .iter()
            .map(|u| {
                format!(
                    "{}: {}",
                    crate::text::cell(&u.name),
                    crate::text::cell(&u.what.join("; "))
                )
            })
            .collect(),
    );
    section(
        format!("Not imported, could not be read ({}):", r.problems.len()),
        r.problems
            .iter()
            .map(|p| {
                format!(
                    "{}: {}",
                    crate::text::cell(&p.at),
                    crate::text::cell(&p.why)
                )
            })
            .collect(),
    );
    for n in &r.notes {
        lines.push(Line::from(Span::styled(
            format!("Note: {}", crate::text::cell(n)),
            t.warn,
        )));
    }
    lines
}
