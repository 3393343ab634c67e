//! The devices pane: this account's devices on the server; rename, revoke.

use crossterm::event::{MouseEvent, MouseEventKind};
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Wrap};
use uuid::Uuid;

use super::{Pane, Tab, step};
use crate::engine::Session;
use crate::engine::emergency::{Grants, human_secs};
use crate::engine::model::Entry;
use crate::engine::remote::Device as DeviceResponse;
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
    pub sel: usize,
    pub loading: bool,
    /// Emergency access grants given and held (`None` until read, or when
    /// the server could not say).
    pub emergency: Option<Grants>,
}

impl Pane for DevicesPane {
    fn tab(&self) -> Tab {
        Tab::new(TO, "Devices", Action::PaneDevices)
    }

    fn act(&mut self, app: &mut App, a: Action) -> bool {
        if let Some(delta) = a.movement() {
            self.move_by(delta);
            return true;
        }
        match a {
            Action::Open | Action::Left | Action::Right => {}
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
        let list = match answer.take::<Changed>() {
            Ok(Changed { done, list }) => {
                match done {
                    Ok(msg) => app.say(msg),
                    Err(msg) => app.fail(msg),
                }
                list
            }
            Err(a) => match a.take::<DeviceList>() {
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
        self.list = Some(list);
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
        vec![
            (k(Action::Edit), "rename"),
            (k(Action::Delete), "revoke"),
            (k(Action::Sync), "sync"),
        ]
    }
}

impl DevicesPane {
    fn count(&self) -> usize {
        self.list
            .as_ref()
            .and_then(|l| l.as_ref().ok())
            .map_or(0, Vec::len)
    }

    fn move_by(&mut self, delta: i64) {
        self.sel = step(self.sel, self.count(), delta);
    }

    fn selected(&self) -> Option<&DeviceResponse> {
        self.list
            .as_ref()
            .and_then(|l| l.as_ref().ok())
            .and_then(|l| l.get(self.sel))
    }
}

/// The devices pane's id.
pub const TO: To = To("devices");

/// The device list, or why the server could not give it.
pub type DeviceList = Result<Vec<DeviceResponse>, String>;

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

/// A rename's or revocation's answer: what it did (or why not), and the
/// list after it.
#[derive(Debug)]
pub struct Changed {
    pub done: Result<String, String>,
    pub list: DeviceList,
}

async fn list(v: &mut Session) -> DeviceList {
    if v.is_logged_in() {
        v.devices()
            .await
            .map_err(|e| crate::tui::sync_state::message(&e, server(v)))
    } else {
        Ok(Vec::new())
    }
}

/// Reads the device list (off the worker; empty when logged out).
#[must_use]
pub fn devices() -> Job {
    Job::network(TO, "devices", |v| {
        Box::pin(async move { Ok(list(v).await) })
    })
    .offline(|| DeviceList::Ok(Vec::new()))
    .latest_only()
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
            for (i, d) in devices.iter().enumerate() {
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
            }
        }
    }
    f.render_widget(
        Paragraph::new(rows).block(
            block(app, "Devices", true)
                .title_bottom(Span::styled(" e rename · d revoke · S sync now ", t.dim)),
        ),
        list,
    );
}
