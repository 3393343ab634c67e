//! The recovery and emergency-access popup (palette `recovery`): whether
//! recovery is set up, the CLI's `openk recovery setup`, `verify` and
//! `split` (`recover` runs on a machine without a vault, so it stays a CLI
//! command), and `openk emergency grant` with the contact's fingerprint
//! shown before anything is sealed (the grants and pending requests are
//! in the devices pane). A new code and shares are shown here once,
//! because the user asked for them; a code typed in is masked.

use crossterm::event::{KeyCode, KeyEvent};
use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Wrap};
use zeroize::Zeroizing;

use super::{Popup, PopupView};
use crate::engine::SecretString;
use crate::engine::contacts::Contact;
use crate::engine::emergency::{EmergencyRole, human_secs, parse_wait};
use crate::engine::recovery::{RecoveryCode, RecoveryStatus};
use crate::tui::app::App;
use crate::tui::input::{Edit, TextInput};
use crate::tui::widgets::{block, centered, clear_popup, password_line, spinner};
use crate::tui::worker::{Job, Request, To};

/// The popup's id, for its jobs' answers.
pub const TO: To = To("recovery");

/// What the popup shows and asks.
#[derive(Debug, Default, PartialEq, Eq, Clone, Copy)]
pub enum Step {
    /// The status and the actions.
    #[default]
    Menu,
    /// Set up (or replace): the master password first.
    Setup,
    /// Check a code or shares (typed with spaces between shares).
    Verify,
    /// Split the code: the code, N and K.
    Split,
    /// Grant emergency access: email, wait, role; then the fingerprint.
    Grant,
}

/// The recovery popup's state.
#[derive(Debug, Default)]
pub struct RecoveryState {
    pub step: Step,
    /// `None` while asking the server; the error when it could not say.
    pub status: Option<Result<Option<RecoveryStatus>, String>>,
    /// Setup: the password. Verify: code or shares. Split: code, N, K.
    pub fields: [TextInput; 3],
    pub on: usize,
    pub working: Option<&'static str>,
    pub error: Option<String>,
    /// A new code or shares, shown until the popup closes.
    pub shown: Option<Shown>,
    pub notice: Option<String>,
    /// Grant: the contact looked up, whose fingerprint is to be compared
    /// (`y` grants to exactly these keys), with the role and wait.
    pub contact: Option<(Contact, EmergencyRole, u64)>,
}

/// Secrets the user asked to see.
#[derive(Debug)]
pub enum Shown {
    Code(Zeroizing<String>),
    Shares {
        threshold: u8,
        shares: Vec<Zeroizing<String>>,
    },
}

/// A recovery job's answer.
#[derive(Debug)]
pub enum Answered {
    Status(Result<Option<RecoveryStatus>, String>),
    Done(Result<Done, String>),
    /// The contact to grant to, looked up (and pinned) for the fingerprint.
    Contact(Result<(Contact, EmergencyRole, u64), String>),
}

#[derive(Debug)]
pub enum Done {
    SetUp(Zeroizing<String>),
    Verified,
    Split(u8, Vec<Zeroizing<String>>),
    Granted(String),
}

impl RecoveryState {
    /// The popup as it opens: asking the server for the status.
    #[must_use]
    pub fn open(app: &mut App) -> Popup {
        app.send(Request::Job(status()));
        Popup::Recovery(Box::default())
    }

    fn fields_here(&self) -> usize {
        match self.step {
            Step::Menu => 0,
            Step::Setup | Step::Verify => 1,
            Step::Split | Step::Grant => 3,
        }
    }

    fn go(&mut self, step: Step) {
        self.step = step;
        self.fields = Default::default();
        self.on = 0;
        self.error = None;
        self.notice = None;
        self.contact = None;
        if step == Step::Grant {
            self.fields[1] = TextInput::with_text("7d");
            self.fields[2] = TextInput::with_text("view");
        }
    }

    fn submit(&mut self, app: &mut App) {
        let text = |i: usize| self.fields[i].as_str().trim().to_owned();
        let job = match self.step {
            Step::Menu => return,
            Step::Setup => {
                if self.fields[0].is_empty() {
                    self.error = Some("type the master password".into());
                    return;
                }
                self.working = Some("Setting up recovery");
                setup(SecretString::from(self.fields[0].as_str().to_owned()))
            }
            Step::Verify => {
                if self.fields[0].is_empty() {
                    self.error =
                        Some("type the recovery code, or K shares with spaces between them".into());
                    return;
                }
                self.working = Some("Checking");
                verify(Zeroizing::new(text(0)))
            }
            Step::Split => {
                let (Ok(n), Ok(k)) = (text(1).parse::<u8>(), text(2).parse::<u8>()) else {
                    self.error = Some("shares and threshold are numbers from 2 to 255".into());
                    return;
                };
                if k < 2 || k > n {
                    self.error =
                        Some("the threshold is at least 2 and at most the number of shares".into());
                    return;
                }
                self.working = Some("Checking the code and splitting it");
                split(Zeroizing::new(text(0)), n, k)
            }
            Step::Grant => {
                if let Some((contact, role, wait)) = self.contact.take() {
                    self.working = Some("Granting emergency access");
                    grant(contact, role, wait)
                } else {
                    let Some(role) = EmergencyRole::parse(&text(2)) else {
                        self.error = Some("the role is view or takeover".into());
                        return;
                    };
                    let wait = match parse_wait(&text(1)) {
                        Ok(w) => w,
                        Err(e) => {
                            self.error = Some(crate::tui::sync_state::message(&e, None));
                            return;
                        }
                    };
                    if text(0).is_empty() {
                        self.error = Some("type the email of the account to grant to".into());
                        return;
                    }
                    self.working = Some("Looking up their keys");
                    look_up(text(0), role, wait)
                }
            }
        };
        self.error = None;
        app.send(Request::Job(job));
    }
}

impl PopupView for Box<RecoveryState> {
    fn key(mut self, app: &mut App, k: KeyEvent) {
        if self.working.is_some() {
            if k.code == KeyCode::Esc {
                app.say("Still working; the status line will say how it went");
            } else {
                app.popups.push(Popup::Recovery(self));
            }
            return;
        }
        match (self.step, k.code) {
            // A code or shares on screen go first, then the popup.
            (Step::Menu, KeyCode::Esc) if self.shown.is_some() => self.shown = None,
            (Step::Menu, KeyCode::Esc | KeyCode::Char('q')) => return,
            (Step::Menu, KeyCode::Char('s')) => self.go(Step::Setup),
            (Step::Menu, KeyCode::Char('v')) => self.go(Step::Verify),
            (Step::Menu, KeyCode::Char('x')) => self.go(Step::Split),
            (Step::Menu, KeyCode::Char('g')) => self.go(Step::Grant),
            // The fingerprint shown: y grants, n goes back to the fields.
            (Step::Grant, KeyCode::Char('y')) if self.contact.is_some() => self.submit(app),
            (Step::Grant, KeyCode::Char('n')) if self.contact.is_some() => {
                self.contact = None;
                app.say("Not granted");
            }
            (Step::Grant, _) if self.contact.is_some() => {}
            (Step::Menu, _) => {}
            (_, KeyCode::Esc) => {
                self.go(Step::Menu);
                self.shown = None;
            }
            (_, KeyCode::Tab | KeyCode::Down) => self.on = (self.on + 1) % self.fields_here(),
            (_, KeyCode::BackTab | KeyCode::Up) => {
                self.on = (self.on + self.fields_here() - 1) % self.fields_here();
            }
            (_, KeyCode::Enter) if self.on + 1 < self.fields_here() => self.on += 1,
            (_, KeyCode::Enter) => self.submit(app),
            _ => {
                let on = self.on;
                if self.fields[on].handle(k) == Edit::Changed {
                    self.error = None;
                }
            }
        }
        app.popups.push(Popup::Recovery(self));
    }

    fn draw(&self, f: &mut Frame, app: &App, area: Rect) -> Rect {
        let t = &app.theme;
        let r = clear_popup(f, centered(area, 84, 20));
        let mut lines = Vec::new();
        match &self.status {
            None => lines.push(Line::from(Span::styled(
                format!("{} Asking the server…", spinner(app)),
                t.dim,
            ))),
            Some(Err(e)) => lines.push(Line::from(Span::styled(
                crate::text::line(e).into_owned(),
                t.danger,
            ))),
            Some(Ok(None)) => lines.push(Line::from(Span::styled(
                "Recovery is not set up: a recovery code would let you set a new master password \
                 and Secret Key if you lose them.",
                t.warn,
            ))),
            Some(Ok(Some(s))) => lines.push(Line::from(Span::styled(
                format!(
                    "Recovery is set up (since {}); its code opens account key version {}.",
                    crate::text::cell(
                        &s.created_at
                            .get(..16)
                            .unwrap_or(&s.created_at)
                            .replace('T', " ")
                    ),
                    s.account_key_version
                ),
                t.ok,
            ))),
        }
        lines.push(Line::default());
        match &self.shown {
            Some(Shown::Code(code)) => {
                lines.push(Line::from(Span::styled(
                    "Your recovery code (shown once):",
                    t.title,
                )));
                lines.push(Line::from(Span::styled(
                    format!("  {}", code.as_str()),
                    t.accent,
                )));
                lines.push(Line::from(Span::styled(
                    "Write it down or print it now and keep it offline, apart from the Emergency \
                     Kit. With it anyone can take over this account; an earlier code no longer works.",
                    t.text,
                )));
            }
            Some(Shown::Shares { threshold, shares }) => {
                lines.push(Line::from(Span::styled(
                    format!(
                        "{} shares, any {threshold} of which make the code (fewer tell nothing):",
                        shares.len()
                    ),
                    t.title,
                )));
                for (i, s) in shares.iter().enumerate() {
                    lines.push(Line::from(Span::styled(
                        format!("  {:>2}. {}", i + 1, s.as_str()),
                        t.accent,
                    )));
                }
            }
            None => {}
        }
        match self.step {
            Step::Menu => {
                if self.shown.is_none() {
                    lines.push(Line::from(Span::styled(
                        "s  set up (or replace) the recovery code",
                        t.text,
                    )));
                    lines.push(Line::from(Span::styled(
                        "v  check a code or shares (changes nothing)",
                        t.text,
                    )));
                    lines.push(Line::from(Span::styled(
                        "x  split the code into shares for trusted people",
                        t.text,
                    )));
                    lines.push(Line::from(Span::styled(
                        "g  grant emergency access to a trusted account (after a wait you can cut short)",
                        t.text,
                    )));
                    lines.push(Line::from(Span::styled(
                        "To recover on a new machine: openk recovery recover --server URL --email E",
                        t.dim,
                    )));
                }
            }
            Step::Setup => {
                lines.push(Line::from(Span::styled(
                    "A new code replaces any earlier one (and its shares).",
                    t.text,
                )));
                lines.push(password_line(app, "Master password", &self.fields[0], true));
            }
            Step::Verify => {
                lines.push(Line::from(Span::styled(
                    "The code (OKR-…), or K shares (OKS-…) with spaces between them:",
                    t.text,
                )));
                lines.push(password_line(app, "Code or shares", &self.fields[0], true));
            }
            Step::Grant => match &self.contact {
                Some((c, role, wait)) => {
                    lines.push(Line::from(Span::styled(
                        format!(
                            "Grant {} {} access after a wait of {}?",
                            crate::text::cell(&c.email),
                            role.as_str(),
                            human_secs(*wait)
                        ),
                        t.title,
                    )));
                    lines.push(Line::from(vec![
                        Span::styled("Their fingerprint: ", t.text),
                        Span::styled(crate::text::cell(&c.fingerprint).into_owned(), t.accent),
                    ]));
                    lines.push(Line::from(Span::styled(
                        "Compare it with the one `openk status` shows on their side (read aloud, \
                         in person). y grants to exactly these keys, n goes back.",
                        t.text,
                    )));
                }
                None => {
                    lines.push(Line::from(Span::styled(
                        "They may ask for access; you are told and can deny it during the wait.",
                        t.text,
                    )));
                    for (i, label) in [
                        (0, "Their email"),
                        (1, "Wait (e.g. 7d)"),
                        (2, "Role (view|takeover)"),
                    ] {
                        lines.push(Line::from(vec![
                            Span::styled(
                                format!("{} {label:<21}", if self.on == i { "▸" } else { " " }),
                                if self.on == i { t.accent } else { t.text },
                            ),
                            Span::styled(self.fields[i].as_str().to_owned(), t.accent),
                        ]));
                    }
                }
            },
            Step::Split => {
                lines.push(password_line(
                    app,
                    "Recovery code",
                    &self.fields[0],
                    self.on == 0,
                ));
                for (i, label) in [(1, "Shares (N)"), (2, "Threshold (K)")] {
                    lines.push(Line::from(vec![
                        Span::styled(
                            format!("{} {label:<17}", if self.on == i { "▸" } else { " " }),
                            if self.on == i { t.accent } else { t.text },
                        ),
                        Span::styled(self.fields[i].as_str().to_owned(), t.accent),
                    ]));
                }
            }
        }
        lines.push(Line::default());
        lines.push(match (self.working, &self.error, &self.notice) {
            (Some(w), _, _) => Line::from(Span::styled(format!("{} {w}…", spinner(app)), t.accent)),
            (None, Some(e), _) => {
                Line::from(Span::styled(crate::text::line(e).into_owned(), t.danger))
            }
            (None, None, Some(n)) => Line::from(Span::styled(n.clone(), t.ok)),
            _ => Line::default(),
        });
        let hint = if self.step == Step::Menu {
            " s set up · v verify · x split · g grant emergency access · Esc close "
        } else {
            " Enter next / go · Tab field · Esc back "
        };
        f.render_widget(
            Paragraph::new(lines).wrap(Wrap { trim: false }).block(
                block(app, "Account recovery", true).title_bottom(Span::styled(hint, t.dim)),
            ),
            r,
        );
        r
    }

    fn hints(&self) -> &'static [(&'static str, &'static str)] {
        if self.step == Step::Menu {
            &[
                ("s", "set up"),
                ("v", "verify"),
                ("x", "split"),
                ("g", "grant"),
                ("Esc", "close"),
            ]
        } else {
            &[("Enter", "next / go"), ("Tab", "field"), ("Esc", "back")]
        }
    }

    fn id(&self) -> Option<To> {
        Some(TO)
    }

    fn answer(&mut self, app: &mut App, answer: crate::tui::worker::Answer) {
        let Ok(answered) = answer.take::<Answered>() else {
            return;
        };
        self.working = None;
        match answered {
            Answered::Status(s) => self.status = Some(s),
            Answered::Contact(Ok(c)) => self.contact = Some(c),
            Answered::Contact(Err(e)) | Answered::Done(Err(e)) => self.error = Some(e),
            Answered::Done(Ok(done)) => {
                match done {
                    Done::SetUp(code) => {
                        self.shown = Some(Shown::Code(code));
                        app.send(Request::Job(status()));
                        self.status = None;
                    }
                    Done::Verified => {
                        self.notice = Some(
                            "The recovery code is good: it recovers this account. Nothing was changed."
                                .into(),
                        );
                    }
                    Done::Split(threshold, shares) => {
                        self.shown = Some(Shown::Shares { threshold, shares });
                    }
                    Done::Granted(msg) => self.notice = Some(msg),
                }
                let notice = self.notice.take();
                self.go(Step::Menu);
                self.notice = notice;
            }
        }
    }
}

fn message(v: &crate::engine::Session, e: &crate::engine::Error) -> String {
    crate::tui::sync_state::message(e, v.remote().map(|r| r.server.as_str()))
}

/// Reads the account's recovery status.
#[must_use]
pub fn status() -> Job {
    Job::network(TO, "recovery status", |v| {
        Box::pin(async move {
            let s = v.recovery_status().await;
            Ok(Answered::Status(s.map_err(|e| message(v, &e))))
        })
    })
    .offline(|| {
        Answered::Status(Err(
            "Recovery needs this vault signed in to a server (openk register / openk login)".into(),
        ))
    })
    .latest_only()
}

/// Checks the master password, then sets up a new code.
#[must_use]
pub fn setup(password: SecretString) -> Job {
    Job::network(TO, "recovery setup", move |v| {
        Box::pin(async move {
            let done = async {
                v.check_password(password).await?;
                v.setup_recovery().await
            }
            .await;
            Ok(Answered::Done(
                done.map(|code| Done::SetUp(code.display()))
                    .map_err(|e| message(v, &e)),
            ))
        })
    })
}

/// The code that `text` is: a code, or shares separated by white space.
fn code_of(text: &str) -> Result<RecoveryCode, crate::engine::Error> {
    let parts: Vec<&str> = text.split_whitespace().collect();
    let upper = text.trim_start().to_ascii_uppercase();
    let code = if upper.starts_with("OKS") {
        RecoveryCode::combine(&parts)
    } else {
        RecoveryCode::parse(text)
    };
    code.map_err(crate::engine::Error::from)
}

/// Checks a code or shares against the account.
#[must_use]
pub fn verify(text: Zeroizing<String>) -> Job {
    Job::network(TO, "recovery verify", move |v| {
        Box::pin(async move {
            let done = async {
                let code = code_of(&text)?;
                v.verify_recovery_code(&code).await
            }
            .await;
            Ok(Answered::Done(
                done.map(|_| Done::Verified).map_err(|e| message(v, &e)),
            ))
        })
    })
}

/// Checks the code against the account, then splits it.
#[must_use]
pub fn split(text: Zeroizing<String>, shares: u8, threshold: u8) -> Job {
    Job::network(TO, "recovery split", move |v| {
        Box::pin(async move {
            let done = async {
                let code = RecoveryCode::parse(&text)?;
                v.verify_recovery_code(&code).await?;
                Ok::<_, crate::engine::Error>(code.split(shares, threshold)?)
            }
            .await;
            Ok(Answered::Done(
                done.map(|s| Done::Split(threshold, s))
                    .map_err(|e| message(v, &e)),
            ))
        })
    })
}

/// Looks the contact up (and pins its keys on first sight) for the
/// fingerprint to compare before granting.
#[must_use]
pub fn look_up(email: String, role: EmergencyRole, wait: u64) -> Job {
    Job::network(TO, "emergency contact", move |v| {
        Box::pin(async move {
            let c = async {
                let c = v.contact(&email).await?;
                c.check_shareable()?;
                Ok::<_, crate::engine::Error>(c)
            }
            .await;
            Ok(Answered::Contact(
                c.map(|c| (c, role, wait)).map_err(|e| message(v, &e)),
            ))
        })
    })
}

/// Grants emergency access to exactly the keys whose fingerprint was shown.
#[must_use]
pub fn grant(contact: Contact, role: EmergencyRole, wait: u64) -> Job {
    Job::network(TO, "emergency grant", move |v| {
        Box::pin(async move {
            let done = v.emergency_grant_contact(&contact, role, wait).await;
            Ok(Answered::Done(
                done.map(|_| {
                    Done::Granted(format!(
                        "Granted {} {} access after a wait of {}; the devices pane lists it",
                        crate::text::cell(&contact.email),
                        role.as_str(),
                        human_secs(wait)
                    ))
                })
                .map_err(|e| message(v, &e)),
            ))
        })
    })
}
