//! The devices pane: this account's devices on the server; rename, revoke;
//! new devices waiting for approval (approve with the code, deny); and
//! (`H`) the account's signed security history, verified, with a
//! verified / tampered / not-checked banner.

use crossterm::event::{MouseEvent, MouseEventKind};
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Wrap};
use uuid::Uuid;

use super::{Pane, Tab, step};
use crate::engine::Session;
use crate::engine::approval::{Claim, Request as ApprovalRequest, Waiting};
use crate::engine::emergency::{Grants, human_secs};
use crate::engine::model::Entry;
use crate::engine::remote::Device as DeviceResponse;
use crate::engine::security::SecurityHistory;
use crate::tui::app::{App, Confirmable, Popup};
use crate::tui::input::TextInput;
use crate::tui::keymap::Action;
use crate::tui::sync_state::SyncState;
use crate::tui::widgets::{block, cells, spinner, truncate};
use crate::tui::worker::{Answer, Job, Request, To};

/// The devices pane's state.
#[derive(Debug, Default)]
pub struct DevicesPane {
    pub list: Option<DeviceList>,
    /// New devices waiting for approval (listed above the devices).
    pub requests: Vec<ApprovalRequest>,
    /// The selected row: the requests first, then the devices.
    pub sel: usize,
    pub loading: bool,
    /// The request this device took and whose code is being compared.
    pub claim: Option<Claim>,
    /// The security history view is shown instead of the device list.
    pub showing_history: bool,
    /// The security history as last read (none: not read yet).
    pub history: Option<HistoryRead>,
    /// The first history row shown (scrolling).
    pub history_top: usize,
    /// Emergency access grants given and held (`None` until read, or when
    /// the server could not say).
    pub emergency: Option<Grants>,
}

impl Pane for DevicesPane {
    fn tab(&self) -> Tab {
        Tab::new(TO, "Devices", Action::PaneDevices)
    }

    fn act(&mut self, app: &mut App, a: Action) -> bool {
        if a == Action::History {
            self.showing_history = !self.showing_history;
            if self.showing_history {
                // Read and checked afresh each time it is opened.
                self.history = None;
                self.history_top = 0;
                self.loading = true;
                app.send(Request::Job(security_history()));
            }
            return true;
        }
        if self.showing_history {
            if let Some(delta) = a.movement() {
                let n = self.history_len();
                self.history_top = step(self.history_top, n, delta);
                return true;
            }
            return matches!(a, Action::Edit | Action::Delete | Action::Accept);
        }
        if let Some(delta) = a.movement() {
            self.move_by(delta);
            return true;
        }
        if a == Action::Sync {
            // S syncs (the app's action) and reads the lists again here,
            // with the new devices waiting for approval.
            self.loading = true;
            app.send(Request::Job(devices()));
            return false;
        }
        if let Some(r) = self.selected_request() {
            let (id, name) = (r.id, crate::text::line(&r.device_name).into_owned());
            match a {
                Action::Open | Action::Accept => {
                    self.loading = true;
                    app.say(format!(
                        "Waiting for {name:?} to answer with its part of the code… (Esc stops)"
                    ));
                    app.send(Request::Job(claim(id)));
                }
                Action::Delete => {
                    app.popups
                        .push(Popup::Confirm(Confirmable::DenyDevice { id, name }));
                }
                Action::Left | Action::Right | Action::Edit => {}
                _ => return false,
            }
            return true;
        }
        match a {
            Action::Open | Action::Left | Action::Right | Action::Accept => {}
            Action::Edit => {
                if let Some(d) = self.selected() {
                    app.popups.push(Popup::Rename {
                        id: d.id,
                        // The server's string: shown and edited as data.
                        input: TextInput::with_text(&crate::text::line(&d.name)),
                    });
                }
            }
            Action::Delete => {
                if let Some(d) = self.selected() {
                    app.popups.push(Popup::Confirm(Confirmable::Revoke(
                        d.id,
                        crate::text::line(&d.name).into_owned(),
                    )));
                }
            }
            _ => return false,
        }
        true
    }

    fn mouse(&mut self, _app: &mut App, m: MouseEvent) {
        match m.kind {
            MouseEventKind::ScrollDown => self.move_by(3),
            MouseEventKind::ScrollUp => self.move_by(-3),
            _ => {}
        }
    }

    fn shown(&mut self, app: &mut App) {
        self.loading = true;
        app.send(Request::Job(devices()));
        app.send(Request::Job(emergency()));
    }

    fn cancelled(&mut self) {
        self.loading = false;
    }

    fn busy(&self) -> bool {
        self.loading
    }

    fn answer(&mut self, app: &mut App, answer: Answer) {
        let answer = match answer.take::<HistoryRead>() {
            Ok(h) => {
                self.loading = false;
                self.history = Some(h);
                return;
            }
            Err(a) => a,
        };
        let answer = match answer.take::<Claimed>() {
            Ok(Claimed(Ok(claim))) => {
                self.loading = false;
                app.say("Compare the code with the one the new device shows");
                app.popups.push(Popup::Confirm(Confirmable::ApproveDevice {
                    id: claim.request.id,
                    name: crate::text::line(&claim.request.device_name).into_owned(),
                    platform: crate::text::line(&claim.request.platform).into_owned(),
                    code: claim.code().to_string(),
                }));
                self.claim = Some(claim);
                return;
            }
            Ok(Claimed(Err(msg))) => {
                app.fail(msg);
                self.loading = true;
                app.send(Request::Job(devices()));
                return;
            }
            Err(a) => a,
        };
        let listing = match answer.take::<Changed>() {
            Ok(Changed { done, list }) => {
                match done {
                    Ok(msg) => app.say(msg),
                    Err(msg) => app.fail(msg),
                }
                list
            }
            Err(a) => match a.take::<Listing>() {
                Ok(list) => list,
                Err(a) => match a.take::<EmergencyAnswer>() {
                    Ok(EmergencyAnswer(grants)) => {
                        self.emergency = grants;
                        return;
                    }
                    Err(a) => {
                        return tracing::warn!(?a, "an answer the devices pane does not read");
                    }
                },
            },
        };
        self.loading = false;
        self.list = Some(listing.devices);
        self.requests = listing.requests;
        let n = self.count();
        self.sel = self.sel.min(n.saturating_sub(1));
    }

    fn reset(&mut self) {
        *self = Self::default();
    }

    fn draw(&self, f: &mut Frame, app: &App, area: Rect) {
        draw_devices(self, f, app, area);
    }

    fn hints(&self, app: &App) -> Vec<(String, &'static str)> {
        let k = |a: Action| app.keymap.first_key(a);
        if self.showing_history {
            return vec![(k(Action::History), "devices"), (k(Action::Sync), "sync")];
        }
        if self.selected_request().is_some() {
            return vec![
                (k(Action::Accept), "approve (compare the code)"),
                (k(Action::Delete), "deny"),
            ];
        }
        vec![
            (k(Action::Edit), "rename"),
            (k(Action::Delete), "revoke"),
            (k(Action::Sync), "sync"),
            (k(Action::History), "history"),
        ]
    }
}

impl DevicesPane {
    fn history_len(&self) -> usize {
        self.history
            .as_ref()
            .and_then(|h| h.as_ref().ok())
            .map_or(0, |h| h.entries.len())
    }

    fn count(&self) -> usize {
        self.requests.len()
            + self
                .list
                .as_ref()
                .and_then(|l| l.as_ref().ok())
                .map_or(0, Vec::len)
    }

    /// The selected request, when a request row is selected.
    #[must_use]
    pub fn selected_request(&self) -> Option<&ApprovalRequest> {
        self.requests.get(self.sel)
    }

    /// Takes the claim of request `id` (for its approval, or to drop it).
    pub fn take_claim(&mut self, id: Uuid) -> Option<Claim> {
        if self.claim.as_ref().is_some_and(|c| c.request.id == id) {
            self.claim.take()
        } else {
            None
        }
    }

    fn move_by(&mut self, delta: i64) {
        self.sel = step(self.sel, self.count(), delta);
    }

    fn selected(&self) -> Option<&DeviceResponse> {
        let i = self.sel.checked_sub(self.requests.len())?;
        self.list
            .as_ref()
            .and_then(|l| l.as_ref().ok())
            .and_then(|l| l.get(i))
    }
}

/// The devices pane's id.
pub const TO: To = To("devices");

/// The device list, or why the server could not give it.
pub type DeviceList = Result<Vec<DeviceResponse>, String>;

/// The security history as the engine checked it, or why it could not.
pub type HistoryRead = Result<SecurityHistory, String>;

/// Reads and verifies the security history (off the worker).
#[must_use]
pub fn security_history() -> Job {
    Job::network(TO, "security history", |v| {
        Box::pin(async move {
            let read: HistoryRead = v
                .security_history()
                .await
                .map_err(|e| crate::tui::sync_state::message(&e, server(v)));
            Ok(read)
        })
    })
    .offline(|| {
        HistoryRead::Err(
            "the security history is checked with the server: sign this vault in to one".into(),
        )
    })
    .latest_only()
}

/// The emergency access grants, or `None` when the server could not say
/// (the pane then shows nothing of them).
#[derive(Debug)]
pub struct EmergencyAnswer(pub Option<Grants>);

/// Reads the emergency access grants (off the worker; none when logged out).
#[must_use]
pub fn emergency() -> Job {
    Job::network(TO, "emergency", |v| {
        Box::pin(async move {
            Ok(EmergencyAnswer(if v.is_logged_in() {
                v.emergency_grants().await.ok()
            } else {
                None
            }))
        })
    })
    .offline(|| EmergencyAnswer(None))
    .latest_only()
}

/// The lines the pane shows about emergency access: a warning for each
/// request pending against this account, then the grants.
#[must_use]
pub fn emergency_lines(grants: &Grants) -> Vec<(String, bool)> {
    let mut out: Vec<(String, bool)> = grants
        .pending()
        .iter()
        .map(|g| {
            (
                format!(
                    "⚠ {} asked for emergency access to this account: it opens in {} unless you deny it (`openk emergency deny {}`)",
                    crate::text::cell(&g.contact_email),
                    human_secs(g.seconds_left.unwrap_or(0)),
                    crate::text::cell(&g.contact_email)
                ),
                true,
            )
        })
        .collect();
    for g in &grants.given {
        out.push((
            format!(
                "Emergency access to {} ({}, wait {}): {}",
                crate::text::cell(&g.contact_email),
                crate::text::cell(&g.role),
                human_secs(g.wait_secs),
                crate::text::cell(&g.state)
            ),
            false,
        ));
    }
    for g in &grants.held {
        out.push((
            format!(
                "Emergency access from {} ({}, wait {}): {}",
                crate::text::cell(&g.owner_email),
                crate::text::cell(&g.role),
                human_secs(g.wait_secs),
                crate::text::cell(&g.state)
            ),
            false,
        ));
    }
    out
}

/// The devices and the new devices waiting for approval.
#[derive(Debug)]
pub struct Listing {
    pub devices: DeviceList,
    pub requests: Vec<ApprovalRequest>,
}

/// A rename's, revocation's, approval's or denial's answer: what it did
/// (or why not), and the list after it.
#[derive(Debug)]
pub struct Changed {
    pub done: Result<String, String>,
    pub list: Listing,
}

/// A claimed request with its code, or why it could not be claimed.
#[derive(Debug)]
pub struct Claimed(pub Result<Claim, String>);

async fn list(v: &mut Session) -> Listing {
    if !v.is_logged_in() {
        return Listing {
            devices: Ok(Vec::new()),
            requests: Vec::new(),
        };
    }
    let devices = v
        .devices()
        .await
        .map_err(|e| crate::tui::sync_state::message(&e, server(v)));
    // The requests are a bonus: a server without them lists none.
    let requests = v.approval_requests().await.unwrap_or_default();
    Listing { devices, requests }
}

/// Reads the device list (off the worker; empty when logged out).
#[must_use]
pub fn devices() -> Job {
    Job::network(TO, "devices", |v| {
        Box::pin(async move { Ok(list(v).await) })
    })
    .offline(|| Listing {
        devices: Ok(Vec::new()),
        requests: Vec::new(),
    })
    .latest_only()
}

/// How long the pane waits for the new device to answer a claim.
const CLAIM_WAIT: Waiting = Waiting {
    timeout: std::time::Duration::from_secs(60),
    poll: std::time::Duration::from_millis(500),
};

/// Takes a waiting request and computes its code (nothing is sent yet).
#[must_use]
pub fn claim(id: Uuid) -> Job {
    Job::network(TO, "claim", move |v| {
        Box::pin(async move {
            let claimed = v.claim_approval(id, CLAIM_WAIT).await;
            Ok(Claimed(claimed.map_err(|e| {
                crate::tui::sync_state::message(&e, server(v))
            })))
        })
    })
}

/// Sends the Secret Key to the claimed device (the person confirmed the
/// code), then reads the list again.
#[must_use]
pub fn approve(claim: Claim) -> Job {
    Job::network(TO, "approve", move |v| {
        Box::pin(async move {
            let name = crate::text::line(&claim.request.device_name).into_owned();
            let done = v
                .approve(claim)
                .await
                .map(|()| format!("Approved {name:?}: it signs in with its master password"));
            Ok(Changed {
                done: done.map_err(|e| crate::tui::sync_state::message(&e, server(v))),
                list: list(v).await,
            })
        })
    })
}

/// Denies a request (nothing is sent to it), then reads the list again.
#[must_use]
pub fn deny(id: Uuid) -> Job {
    Job::network(TO, "deny", move |v| {
        Box::pin(async move {
            let done = v
                .deny_approval(id)
                .await
                .map(|()| "Denied: nothing was sent to that device".to_owned());
            Ok(Changed {
                done: done.map_err(|e| crate::tui::sync_state::message(&e, server(v))),
                list: list(v).await,
            })
        })
    })
}

/// Renames a device, then reads the list again.
#[must_use]
pub fn rename(id: Uuid, name: String) -> Job {
    Job::network(TO, "rename", move |v| {
        Box::pin(async move {
            let done = match v.rename_device(id, &name).await {
                Ok(d) => Ok(format!("Device renamed to {:?}", d.name)),
                Err(e) => Err(e),
            };
            Ok(Changed {
                done: done.map_err(|e| crate::tui::sync_state::message(&e, server(v))),
                list: list(v).await,
            })
        })
    })
}

/// Revokes a device, then reads the list again.
#[must_use]
pub fn revoke(id: Uuid) -> Job {
    Job::network(TO, "revoke", move |v| {
        Box::pin(async move {
            let done = v
                .revoke_device(id)
                .await
                .map(|()| "Device revoked".to_owned());
            Ok(Changed {
                done: done.map_err(|e| crate::tui::sync_state::message(&e, server(v))),
                list: list(v).await,
            })
        })
    })
}

fn server(v: &Session) -> Option<&str> {
    v.remote().map(|r| r.server.as_str())
}

fn draw_devices(p: &DevicesPane, f: &mut Frame, app: &App, area: Rect) {
    let t = &app.theme;
    let emergency = p
        .emergency
        .as_ref()
        .map(emergency_lines)
        .unwrap_or_default();
    // Up to 4 lines of emergency access above the devices (a warning may
    // wrap onto a second line).
    let extra: u16 = emergency
        .iter()
        .take(4)
        .map(|(_, warn)| if *warn { 2 } else { 1 })
        .sum();
    let [top, list] =
        Layout::vertical([Constraint::Length(8 + extra), Constraint::Min(1)]).areas(area);
    let conflicts: Vec<&Entry> = app
        .vault()
        .entries
        .iter()
        .filter(|e| e.overview.conflict.is_some() && e.overview.trashed_at.is_none())
        .collect();
    let (state, explain) = match &app.sync {
        SyncState::LocalOnly => (
            "Local only".to_owned(),
            "This vault is not registered with a sync server; everything stays on this machine. `openk register --server URL --email ADDRESS` starts syncing.".to_owned(),
        ),
        SyncState::LoggedOut => (
            "Logged out".to_owned(),
            "This device is registered but logged out, so nothing syncs. `openk login` (or login in the : palette) signs in again; changes wait here until then.".to_owned(),
        ),
        SyncState::Synced => ("Synced".to_owned(), "Every change on this device is on the server.".to_owned()),
        SyncState::Pending(n) => (
            format!("{n} change(s) pending"),
            "Not on the server yet: they go with the next sync (S syncs now).".to_owned(),
        ),
        SyncState::Syncing if app.not_answering() => (
            format!("{} Server not answering", spinner(app)),
            "The server accepted the connection but has not answered yet. Everything here keeps working; Esc stops waiting.".to_owned(),
        ),
        SyncState::Syncing => (format!("{} Syncing", spinner(app)), "Talking to the server… (Esc stops)".to_owned()),
        SyncState::NotAnswering(m) => (
            "Server not answering".to_owned(),
            format!("The server did not answer in time ({m}). Changes stay here and go with the next sync (S tries again)."),
        ),
        SyncState::Cancelled(n) => (
            "Sync cancelled".to_owned(),
            format!("{n} change(s) still to push; S syncs again."),
        ),
        SyncState::Offline(m) => (
            "Offline".to_owned(),
            format!(
                "The server cannot be reached ({}). Changes stay here and sync when it is back.",
                crate::text::line(m)
            ),
        ),
        SyncState::Error(m) => ("Sync error".to_owned(), crate::text::line(m).into_owned()),
    };
    let mut lines = vec![
        Line::from(vec![
            Span::styled("Sync  ", t.dim),
            Span::styled(state, t.title),
        ]),
        Line::from(Span::styled(explain, t.text)),
        Line::default(),
    ];
    if conflicts.is_empty() {
        lines.push(Line::from(Span::styled("No conflicts.", t.dim)));
    } else {
        lines.push(Line::from(Span::styled(
            format!(
                "Conflicts ({}): {}  — sidebar › Conflicts lists them",
                conflicts.len(),
                conflicts
                    .iter()
                    .take(5)
                    .map(|e| e.overview.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            t.warn,
        )));
    }
    for (text, warn) in emergency.iter().take(4) {
        lines.push(Line::from(Span::styled(
            text.clone(),
            if *warn { t.warn } else { t.dim },
        )));
    }
    f.render_widget(
        Paragraph::new(lines)
            .wrap(Wrap { trim: true })
            .block(block(app, "This vault", false)),
        top,
    );
    if p.showing_history {
        return draw_history(p, f, app, list);
    }
    let mut rows: Vec<Line> = Vec::new();
    match &p.list {
        _ if matches!(app.sync, SyncState::LocalOnly | SyncState::LoggedOut) => {
            rows.push(Line::from(Span::styled(
                "Devices are listed when this vault is signed in to a server.",
                t.dim,
            )));
        }
        None => rows.push(Line::from(Span::styled(
            format!("{} Asking the server…", spinner(app)),
            t.dim,
        ))),
        Some(Err(e)) => rows.push(Line::from(Span::styled(
            format!(
                "Cannot list the devices: {}",
                crate::text::line(&e.to_string())
            ),
            t.danger,
        ))),
        Some(Ok(devices)) => {
            let room = usize::from(list.width.saturating_sub(2));
            for (i, r) in p.requests.iter().enumerate() {
                let style = if i == p.sel { t.selected } else { t.warn };
                // The new device's words, relayed by the server: data.
                let line = format!(
                    " New device waiting: {:?} ({})  a approve · d deny",
                    crate::text::cell(&r.device_name),
                    crate::text::cell(&r.platform)
                );
                rows.push(Line::from(Span::styled(truncate(&line, room), style)));
            }
            for (i, d) in devices.iter().enumerate() {
                let i = i + p.requests.len();
                let style = if i == p.sel { t.selected } else { t.text };
                // The server's string: data, never terminal control.
                let name = format!(
                    "{}{}",
                    crate::text::cell(&d.name),
                    if d.current { "  (this device)" } else { "" }
                );
                let seen = format!(
                    "last seen {}",
                    crate::text::cell(
                        &d.last_seen_at
                            .get(..16)
                            .unwrap_or(&d.last_seen_at)
                            .replace('T', " ")
                    )
                );
                let name = truncate(&name, room.saturating_sub(seen.len() + 2));
                let pad = room.saturating_sub(cells(&name) + seen.len() + 1);
                rows.push(Line::from(Span::styled(
                    format!(" {name}{}{seen}", " ".repeat(pad)),
                    style,
                )));
                // Where it runs, when it came, and who let it in.
                let mut about = vec![
                    crate::text::cell(d.platform.as_deref().unwrap_or("platform unknown"))
                        .into_owned(),
                    format!(
                        "added {}",
                        crate::text::cell(d.created_at.get(..10).unwrap_or(&d.created_at))
                    ),
                ];
                if let Some(by) = d.approved_by {
                    about.push(format!(
                        "approved by {}",
                        devices.iter().find(|x| x.id == by).map_or_else(
                            || by.to_string()[..8].to_owned(),
                            |x| crate::text::cell(&x.name).into_owned()
                        )
                    ));
                }
                let about = truncate(&format!("   {}", about.join(" · ")), room);
                rows.push(Line::from(Span::styled(
                    about,
                    if i == p.sel { t.selected } else { t.dim },
                )));
            }
        }
    }
    f.render_widget(
        Paragraph::new(rows).block(block(app, "Devices", true).title_bottom(Span::styled(
            " e rename · d revoke · H security history · S sync now · :recovery ",
            t.dim,
        ))),
        list,
    );
}

/// The security history view: a banner (verified, tampered, not checked),
/// then one line an entry, oldest first. Every string is data from the
/// server or signed by a device: shown without terminal controls.
fn draw_history(p: &DevicesPane, f: &mut Frame, app: &App, area: Rect) {
    let t = &app.theme;
    let mut rows: Vec<Line> = Vec::new();
    match &p.history {
        None => rows.push(Line::from(Span::styled(
            format!("{} Reading and checking the history…", spinner(app)),
            t.dim,
        ))),
        Some(Err(e)) => rows.push(Line::from(Span::styled(
            format!("Cannot read the security history: {}", crate::text::line(e)),
            t.danger,
        ))),
        Some(Ok(h)) => {
            let signed = h.entries.iter().filter(|e| !e.pending).count();
            let (banner, style) = match (&h.tampering, h.verified) {
                (Some(tamper), _) => (
                    format!(
                        "✗ TAMPERED at entry {}: {}",
                        tamper.seq,
                        crate::text::line(&tamper.what)
                    ),
                    t.danger,
                ),
                (None, true) => (
                    format!("✓ Verified: {signed} entries signed by this account's devices"),
                    t.title,
                ),
                (None, false) => (
                    format!(
                        "Not checked with the server ({}); what this device knows:",
                        crate::text::line(h.problem.as_deref().unwrap_or("unknown"))
                    ),
                    t.warn,
                ),
            };
            rows.push(Line::from(Span::styled(banner, style)));
            if h.entries.is_empty() {
                let none = if h.tampering.is_some() {
                    "No entries before it."
                } else {
                    "No entries yet."
                };
                rows.push(Line::from(Span::styled(none, t.dim)));
            }
            let room = usize::from(area.width.saturating_sub(2));
            for e in h.entries.iter().skip(p.history_top) {
                let seq = if e.pending {
                    "  -".to_owned()
                } else {
                    format!("{:>3}", e.seq)
                };
                let detail: Vec<String> = e
                    .detail
                    .iter()
                    .map(|(k, v)| format!("{}={}", crate::text::cell(k), crate::text::cell(v)))
                    .collect();
                let mut line = format!(
                    " {seq}  {}  {:<20} {:<12} {}",
                    when(e.at),
                    crate::text::cell(e.kind.as_str()),
                    crate::text::cell(&e.device),
                    detail.join(" ")
                );
                if e.pending {
                    line.push_str("  (not sent yet)");
                }
                rows.push(Line::from(Span::styled(truncate(&line, room), t.text)));
            }
        }
    }
    f.render_widget(
        Paragraph::new(rows).block(
            block(app, "Security history", true)
                .title_bottom(Span::styled(" H devices · j/k scroll · S sync now ", t.dim)),
        ),
        area,
    );
}

/// `2026-12-07 22:04` (UTC) from Unix seconds.
fn when(secs: i64) -> String {
    let fmt = time::macros::format_description!("[year]-[month]-[day] [hour]:[minute]");
    time::OffsetDateTime::from_unix_timestamp(secs)
        .ok()
        .and_then(|t| t.format(&fmt).ok())
        .unwrap_or_else(|| "????-??-?? ??:??".to_owned())
}
