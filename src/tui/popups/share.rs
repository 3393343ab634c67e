//! The share pane's popups: inviting (email and role, then the invitee's
//! fingerprint to compare), a member's role, a new or renamed vault, a new
//! share link, and the fingerprint checks (invite, verify a changed key).
//! Those that wait for the server keep what was typed when it refuses, and
//! `Esc` stops waiting.

use crossterm::event::{KeyCode, KeyEvent};
use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Wrap};
use uuid::Uuid;

use super::{Confirmable, Popup, PopupView};
use crate::engine::contacts::{Contact, Trust};
use crate::engine::members::Role;
use crate::engine::remote::share::{MAX_VIEWS, ShareOptions, parse_expiry};
use crate::tui::app::App;
use crate::tui::input::{Edit, TextInput};
use crate::tui::panes::share::{self, InviteTo, Purpose, ROLES};
use crate::tui::widgets::{block, centered, clear_popup, keys_line, progress_line, prompt_line};
use crate::tui::worker::Request;

/// What each role may do, for the pickers.
fn role_help(r: Role) -> &'static str {
    match r {
        Role::Viewer => "reads the items",
        Role::Editor => "also adds and changes items",
        Role::Manager => "also invites, and changes roles",
    }
}

/// The role after `r` (`forward`) or before it.
fn cycle(r: Role, forward: bool) -> Role {
    let i = ROLES.iter().position(|x| *x == r).unwrap_or(0);
    let n = ROLES.len();
    ROLES[if forward {
        (i + 1) % n
    } else {
        (i + n - 1) % n
    }]
}

/// The field marker and label of a form-like popup's row.
fn label(app: &App, text: &str, on: bool) -> Span<'static> {
    Span::styled(
        format!("{} {text:<10} ", if on { "▸" } else { " " }),
        if on { app.theme.accent } else { app.theme.text },
    )
}

/// A text row of a form-like popup: the cursor only on the row in focus.
fn input_row(app: &App, text: &str, input: &TextInput, width: u16, on: bool) -> Line<'static> {
    if on {
        prompt_line(label(app, text, on), input, width, app)
    } else {
        Line::from(vec![
            label(app, text, on),
            Span::styled(
                crate::tui::widgets::truncate(input.as_str(), usize::from(width)),
                app.theme.text,
            ),
        ])
    }
}

/// The invite popup: whom, with which role; Enter looks their keys up.
#[derive(Debug)]
pub struct InviteState {
    pub vault: Uuid,
    pub name: String,
    /// A personal vault: the first invitation makes it shared.
    pub personal: bool,
    pub email: TextInput,
    pub role: Role,
    /// 0: the email, 1: the role.
    pub on: usize,
    /// Waiting for the lookup of their keys.
    pub looking: bool,
    pub error: Option<String>,
}

impl InviteState {
    #[must_use]
    pub fn new(vault: Uuid, name: String, personal: bool) -> Self {
        Self {
            vault,
            name,
            personal,
            email: TextInput::new(),
            role: Role::Editor,
            on: 0,
            looking: false,
            error: None,
        }
    }
}

impl PopupView for InviteState {
    fn key(mut self, app: &mut App, k: KeyEvent) {
        if self.looking {
            if k.code == KeyCode::Esc {
                app.cancel_network();
                self.looking = false;
                self.error = Some("stopped waiting for the server; Enter asks again".into());
            }
            return app.popups.push(Popup::ShareInvite(self));
        }
        match k.code {
            KeyCode::Esc => return app.say("Cancelled: nobody was invited"),
            KeyCode::Tab | KeyCode::BackTab | KeyCode::Up | KeyCode::Down => self.on = 1 - self.on,
            KeyCode::Left | KeyCode::Right | KeyCode::Char(' ' | 'h' | 'l' | 'j' | 'k')
                if self.on == 1 =>
            {
                self.role = cycle(
                    self.role,
                    !matches!(k.code, KeyCode::Left | KeyCode::Char('h' | 'k')),
                );
            }
            KeyCode::Enter if self.email.as_str().trim().is_empty() => {
                self.on = 0;
                self.error = Some("type the email of the account to invite".into());
            }
            KeyCode::Enter => {
                self.error = None;
                self.looking = true;
                let to = InviteTo {
                    vault: self.vault,
                    name: self.name.clone(),
                    role: self.role,
                };
                app.send(Request::Job(share::lookup(
                    self.email.as_str().trim().to_owned(),
                    Purpose::Invite(to),
                )));
            }
            _ if self.on == 0 && self.email.handle(k) == Edit::Changed => self.error = None,
            _ => {}
        }
        app.popups.push(Popup::ShareInvite(self));
    }

    fn draw(&self, f: &mut Frame, app: &App, area: Rect) -> Rect {
        let t = &app.theme;
        let r = clear_popup(f, centered(area, 70, 10));
        let mut lines = vec![
            Line::from(Span::styled(
                if self.personal {
                    format!(
                        "Invite someone to {:?}: your personal vault becomes shared with them.",
                        crate::text::cell(&self.name)
                    )
                } else {
                    format!("Invite someone to {:?}.", crate::text::cell(&self.name))
                },
                t.text,
            )),
            Line::default(),
            input_row(
                app,
                "Email",
                &self.email,
                r.width.saturating_sub(17),
                self.on == 0,
            ),
            Line::from(vec![
                label(app, "Role", self.on == 1),
                Span::styled(format!("‹ {} ›", self.role.as_str()), t.title),
                Span::styled(format!("  {}", role_help(self.role)), t.dim),
            ]),
            Line::default(),
            progress_line(
                app,
                self.looking.then_some("Looking up their keys (Esc stops)"),
                self.error.as_deref(),
            ),
        ];
        lines.push(keys_line(
            app,
            &[
                ("Enter", "their fingerprint"),
                ("Tab", "field"),
                ("←/→", "role"),
                ("Esc", "cancel"),
            ],
        ));
        f.render_widget(
            Paragraph::new(lines)
                .wrap(Wrap { trim: false })
                .block(block(app, "Invite", true)),
            r,
        );
        r
    }

    fn hints(&self) -> &'static [(&'static str, &'static str)] {
        &[
            ("Enter", "look up"),
            ("Tab", "field"),
            ("←/→", "role"),
            ("Esc", "cancel"),
        ]
    }
}

/// The role picker for a member (Enter asks before changing it).
#[derive(Debug)]
pub struct RoleState {
    /// The vault, and the member's role now.
    pub to: InviteTo,
    pub email: String,
    pub role: Role,
}

impl RoleState {
    #[must_use]
    pub fn new(now: InviteTo, email: String) -> Self {
        Self {
            role: now.role,
            to: now,
            email,
        }
    }
}

impl PopupView for RoleState {
    fn key(mut self, app: &mut App, k: KeyEvent) {
        match k.code {
            KeyCode::Esc => return app.say("Cancelled: the role is unchanged"),
            KeyCode::Enter if self.role == self.to.role => {
                return app.say(format!("{} stays {}", self.email, self.role.as_str()));
            }
            KeyCode::Enter => {
                return app.popups.push(Popup::Confirm(Confirmable::SetRole {
                    vault: self.to.vault,
                    name: self.to.name,
                    email: self.email,
                    role: self.role,
                }));
            }
            KeyCode::Down | KeyCode::Right | KeyCode::Tab | KeyCode::Char('j' | 'l' | ' ') => {
                self.role = cycle(self.role, true);
            }
            KeyCode::Up | KeyCode::Left | KeyCode::BackTab | KeyCode::Char('k' | 'h') => {
                self.role = cycle(self.role, false);
            }
            _ => {}
        }
        app.popups.push(Popup::ShareRole(self));
    }

    fn draw(&self, f: &mut Frame, app: &App, area: Rect) -> Rect {
        let t = &app.theme;
        let r = clear_popup(f, centered(area, 60, 9));
        let mut lines = vec![
            Line::from(Span::styled(
                format!(
                    "The role of {} in {:?}:",
                    crate::text::cell(&self.email),
                    crate::text::cell(&self.to.name)
                ),
                t.text,
            )),
            Line::default(),
        ];
        for role in ROLES {
            let on = role == self.role;
            let now = if role == self.to.role { "  (now)" } else { "" };
            lines.push(Line::from(vec![
                Span::styled(
                    format!("{} {:<8}", if on { "▸" } else { " " }, role.as_str()),
                    if on { t.selected } else { t.text },
                ),
                Span::styled(format!(" {}{now}", role_help(role)), t.dim),
            ]));
        }
        lines.push(Line::default());
        lines.push(keys_line(
            app,
            &[("Enter", "choose"), ("↑/↓", "role"), ("Esc", "cancel")],
        ));
        f.render_widget(
            Paragraph::new(lines).block(block(app, "Change the role", true)),
            r,
        );
        r
    }

    fn hints(&self) -> &'static [(&'static str, &'static str)] {
        &[("Enter", "choose"), ("↑/↓", "role"), ("Esc", "cancel")]
    }
}

/// A new vault's name, or a vault's new name.
#[derive(Debug)]
pub struct VaultNameState {
    /// `None`: a new vault.
    pub id: Option<Uuid>,
    pub input: TextInput,
    pub saving: bool,
    pub error: Option<String>,
}

impl VaultNameState {
    #[must_use]
    pub fn create() -> Self {
        Self {
            id: None,
            input: TextInput::new(),
            saving: false,
            error: None,
        }
    }

    #[must_use]
    pub fn rename(id: Uuid, name: &str) -> Self {
        Self {
            id: Some(id),
            input: TextInput::with_text(name),
            ..Self::create()
        }
    }
}

impl PopupView for VaultNameState {
    fn key(mut self, app: &mut App, k: KeyEvent) {
        if self.saving {
            if k.code == KeyCode::Esc {
                app.cancel_network();
                self.saving = false;
                self.error = Some("stopped waiting for the server; Enter tries again".into());
            }
            return app.popups.push(Popup::VaultName(self));
        }
        match k.code {
            KeyCode::Esc => return app.say("Cancelled"),
            KeyCode::Enter if self.input.as_str().trim().is_empty() => {
                self.error = Some("type a name".into());
            }
            KeyCode::Enter => {
                self.saving = true;
                self.error = None;
                let name = self.input.as_str().trim().to_owned();
                app.send(Request::Job(match self.id {
                    None => share::create_vault(name),
                    Some(id) => share::rename(id, name, share::needs_server(app).is_none()),
                }));
            }
            _ => {
                if self.input.handle(k) == Edit::Changed {
                    self.error = None;
                }
            }
        }
        app.popups.push(Popup::VaultName(self));
    }

    fn draw(&self, f: &mut Frame, app: &App, area: Rect) -> Rect {
        let r = clear_popup(f, centered(area, 56, 6));
        let lines = vec![
            prompt_line(
                Span::styled("Name: ", app.theme.dim),
                &self.input,
                r.width.saturating_sub(9),
                app,
            ),
            progress_line(app, self.saving.then_some("Saving"), self.error.as_deref()),
            keys_line(
                app,
                &[
                    (
                        "Enter",
                        if self.id.is_some() {
                            "rename"
                        } else {
                            "create"
                        },
                    ),
                    ("Esc", "cancel"),
                ],
            ),
        ];
        let title = if self.id.is_some() {
            "Rename the vault"
        } else {
            "New vault"
        };
        f.render_widget(Paragraph::new(lines).block(block(app, title, true)), r);
        r
    }

    fn hints(&self) -> &'static [(&'static str, &'static str)] {
        &[("Enter", "save"), ("Esc", "cancel")]
    }
}

/// A new share link to one item: expiry, views, fields.
#[derive(Debug)]
pub struct LinkForm {
    pub item: Uuid,
    pub name: String,
    /// The item's field labels, when the vault pane has it open.
    pub labels: Vec<String>,
    /// Expires, max views, fields.
    pub rows: [TextInput; 3],
    pub on: usize,
    pub saving: bool,
    pub error: Option<String>,
}

const LINK_ROWS: [(&str, &str); 3] = [
    ("Expires", "1h to 30d (m h d w)"),
    ("Max views", "empty: no limit; 1 to 1000"),
    ("Fields", "empty: all; or labels a, b"),
];

impl LinkForm {
    #[must_use]
    pub fn new(item: Uuid, name: String, labels: Vec<String>) -> Self {
        Self {
            item,
            name,
            labels,
            rows: [
                TextInput::with_text("7d"),
                TextInput::new(),
                TextInput::new(),
            ],
            on: 0,
            saving: false,
            error: None,
        }
    }

    /// The options as typed, or what is wrong (and the row at fault).
    fn options(&self) -> Result<ShareOptions, (usize, String)> {
        let expires = parse_expiry(self.rows[0].as_str()).map_err(|e| (0, e))?;
        let views = self.rows[1].as_str().trim();
        let max_views = if views.is_empty() {
            None
        } else {
            match views.parse::<u32>() {
                Ok(n) if (1..=MAX_VIEWS).contains(&n) => Some(n),
                _ => {
                    return Err((
                        1,
                        format!("max views: a number from 1 to {MAX_VIEWS}, or empty"),
                    ));
                }
            }
        };
        let fields: Vec<String> = self.rows[2]
            .as_str()
            .split(',')
            .map(|f| f.trim().to_owned())
            .filter(|f| !f.is_empty())
            .collect();
        Ok(ShareOptions {
            expires,
            max_views,
            fields: (!fields.is_empty()).then_some(fields),
        })
    }
}

impl PopupView for LinkForm {
    fn key(mut self, app: &mut App, k: KeyEvent) {
        if self.saving {
            if k.code == KeyCode::Esc {
                app.cancel_network();
                self.saving = false;
                self.error = Some(
                    "stopped waiting for the server; the link may have been made (the list \
                     shows it)"
                        .into(),
                );
            }
            return app.popups.push(Popup::ShareLink(self));
        }
        match k.code {
            KeyCode::Esc => return app.say("Cancelled: no link was made"),
            KeyCode::Tab | KeyCode::Down => self.on = (self.on + 1) % 3,
            KeyCode::BackTab | KeyCode::Up => self.on = (self.on + 2) % 3,
            KeyCode::Enter => match self.options() {
                Err((row, e)) => {
                    self.on = row;
                    self.error = Some(e);
                }
                Ok(options) => {
                    self.saving = true;
                    self.error = None;
                    app.send(Request::Job(share::make_link(self.item, options)));
                }
            },
            _ => {
                if self.rows[self.on].handle(k) == Edit::Changed {
                    self.error = None;
                }
            }
        }
        app.popups.push(Popup::ShareLink(self));
    }

    fn draw(&self, f: &mut Frame, app: &App, area: Rect) -> Rect {
        let t = &app.theme;
        let r = clear_popup(f, centered(area, 72, 13));
        let mut lines = vec![
            Line::from(Span::styled(
                format!("A link to {:?}", crate::text::cell(&self.name)),
                t.title,
            )),
            Line::default(),
        ];
        for (i, (name, help)) in LINK_ROWS.iter().enumerate() {
            let mut line = input_row(app, name, &self.rows[i], 20, self.on == i);
            let used: usize = line.spans.iter().map(|s| s.width()).sum();
            line.spans.push(Span::styled(
                format!("{}{help}", " ".repeat(38_usize.saturating_sub(used))),
                t.dim,
            ));
            lines.push(line);
        }
        lines.push(Line::from(Span::styled(
            if self.labels.is_empty() {
                String::new()
            } else {
                format!(
                    "  its fields: {}",
                    crate::text::cell(&self.labels.join(", "))
                )
            },
            t.dim,
        )));
        lines.push(Line::default());
        lines.push(Line::from(Span::styled(
            "Anyone with the link reads what it holds; its key is only in the link.",
            t.text,
        )));
        lines.push(progress_line(
            app,
            self.saving.then_some("Making the link (Esc stops waiting)"),
            self.error.as_deref(),
        ));
        lines.push(keys_line(
            app,
            &[
                ("Enter", "make and copy"),
                ("Tab", "field"),
                ("Esc", "cancel"),
            ],
        ));
        f.render_widget(
            Paragraph::new(lines)
                .wrap(Wrap { trim: false })
                .block(block(app, "New share link", true)),
            r,
        );
        r
    }

    fn hints(&self) -> &'static [(&'static str, &'static str)] {
        &[
            ("Enter", "make and copy"),
            ("Tab", "field"),
            ("Esc", "cancel"),
        ]
    }
}

/// A fingerprint to compare before sharing: the invitee's (then invite),
/// or an account's new key (then pin it as verified).
#[derive(Debug)]
pub enum Check {
    Invite {
        to: InviteTo,
        contact: Box<Contact>,
    },
    /// `then`: the invitation that waits for it.
    Verify {
        contact: Box<Contact>,
        then: Option<InviteTo>,
    },
}

impl Check {
    fn contact(&self) -> &Contact {
        match self {
            Self::Invite { contact, .. } | Self::Verify { contact, .. } => contact,
        }
    }
}

impl PopupView for Check {
    fn key(self, app: &mut App, k: KeyEvent) {
        match (k.code, self) {
            (KeyCode::Char('y' | 'Y'), Self::Invite { to, contact }) => {
                share::start(app, "Inviting", share::invite(to, *contact));
            }
            (KeyCode::Char('y' | 'Y'), Self::Verify { contact, then }) => {
                share::start(app, "Verifying their key", share::verify(*contact, then));
            }
            (KeyCode::Char('n' | 'N') | KeyCode::Esc, Self::Invite { .. }) => {
                app.say("Nothing was shared");
            }
            (KeyCode::Char('n' | 'N') | KeyCode::Esc, Self::Verify { contact, .. }) => {
                app.say(format!(
                    "Not verified: nothing is shared with {} until you confirm their fingerprint",
                    crate::text::line(&contact.email)
                ));
            }
            (_, this) => app.popups.push(Popup::Fingerprint(this)),
        }
    }

    fn draw(&self, f: &mut Frame, app: &App, area: Rect) -> Rect {
        let t = &app.theme;
        let c = self.contact();
        let email = crate::text::cell(&c.email).into_owned();
        let changed = matches!(
            (self, &c.trust),
            (Self::Verify { .. }, Trust::Changed { .. })
        );
        let r = clear_popup(f, centered(area, 72, if changed { 16 } else { 12 }));
        let fp = |s: &str| Line::from(Span::styled(format!("    {s}"), t.title));
        let mut lines = Vec::new();
        let (title, yes) = match (self, &c.trust) {
            (Self::Invite { to, .. }, trust) => {
                lines.push(Line::from(Span::styled(
                    format!(
                        "Invite {email} to {:?} as {}? Their fingerprint:",
                        crate::text::cell(&to.name),
                        to.role.as_str()
                    ),
                    t.text,
                )));
                lines.push(fp(&c.fingerprint));
                lines.push(Line::from(Span::styled(
                    match trust {
                        Trust::New => "First seen now: pinned on this device.",
                        Trust::Verified => "✓ Verified before on this device.",
                        _ => "Pinned on this device before (not yet verified).",
                    },
                    if *trust == Trust::Verified {
                        t.ok
                    } else {
                        t.dim
                    },
                )));
                ("Compare the fingerprint", "it matches: invite")
            }
            (Self::Verify { .. }, Trust::Changed { pinned }) => {
                lines.push(Line::from(Span::styled(
                    format!("⚠ The key of {email} CHANGED since this device pinned it."),
                    t.danger,
                )));
                lines.push(Line::from(Span::styled("  pinned here:", t.dim)));
                lines.push(fp(pinned));
                lines.push(Line::from(Span::styled("  the server shows now:", t.dim)));
                lines.push(fp(&c.fingerprint));
                lines.push(Line::from(Span::styled(
                    "Someone may be substituting keys. Nothing is shared with them until you \
                     confirm the new one.",
                    t.warn,
                )));
                ("Key CHANGED", "it matches: trust the new key")
            }
            (Self::Verify { .. }, _) => {
                lines.push(Line::from(Span::styled(
                    format!("Verify the key of {email}? Their fingerprint:"),
                    t.text,
                )));
                lines.push(fp(&c.fingerprint));
                ("Verify the fingerprint", "it matches: verified")
            }
        };
        lines.push(Line::default());
        lines.push(Line::from(Span::styled(
            format!(
                "Ask {email} to read theirs to you (their `openk status`, or their share pane), \
                 in person or on a call. Only if every digit matches:"
            ),
            t.text,
        )));
        lines.push(Line::default());
        lines.push(Line::from(vec![
            Span::styled("y", t.danger),
            Span::styled(format!(" {yes}   "), t.dim),
            Span::styled("n/Esc", t.accent),
            Span::styled(" no", t.dim),
        ]));
        f.render_widget(
            Paragraph::new(lines)
                .wrap(Wrap { trim: false })
                .block(block(app, title, true)),
            r,
        );
        r
    }

    fn hints(&self) -> &'static [(&'static str, &'static str)] {
        &[("y", "it matches"), ("n", "no")]
    }
}

/// A share job failed while a popup waits for it: the popup shows why and
/// keeps what was typed. Whether one was waiting.
pub(crate) fn fail_top(app: &mut App, msg: &str) -> bool {
    let error = Some(msg.to_owned());
    match app.popups.last_mut() {
        Some(Popup::ShareInvite(s)) if s.looking => {
            s.looking = false;
            s.on = 0;
            s.error = error;
        }
        Some(Popup::ShareLink(s)) if s.saving => {
            s.saving = false;
            s.error = error;
        }
        Some(Popup::VaultName(s)) if s.saving => {
            s.saving = false;
            s.error = error;
        }
        _ => return false,
    }
    true
}

/// Whether the invite popup on top waits for a lookup.
pub(crate) fn waiting_lookup(app: &App) -> bool {
    matches!(app.popups.last(), Some(Popup::ShareInvite(s)) if s.looking)
}
