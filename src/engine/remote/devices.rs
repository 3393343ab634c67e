//! The server side of `openk status`, the account's devices and its audit log.

use std::future::Future;

use openk_server::api::types::{AuditEvent, DeviceResponse};
use serde::Serialize;
use uuid::Uuid;

use super::super::Session;
use super::super::error::{Error, Result};
use super::super::model::now_millis;
use super::*;
use crate::sync::{Client, SyncError};

/// One of the account's devices, as the server lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Device {
    pub id: Uuid,
    pub name: String,
    /// RFC 3339.
    pub created_at: String,
    /// RFC 3339.
    pub last_seen_at: String,
    /// The device making this request.
    pub current: bool,
    /// What it runs on (`linux x86_64`), as it said at its last login.
    pub platform: Option<String>,
    /// The device that approved it (`openk device approve`), if any.
    pub approved_by: Option<Uuid>,
}

impl From<DeviceResponse> for Device {
    fn from(d: DeviceResponse) -> Self {
        Self {
            id: d.id,
            name: d.name,
            created_at: d.created_at,
            last_seen_at: d.last_seen_at,
            current: d.current,
            platform: d.platform,
            approved_by: d.approved_by,
        }
    }
}

/// One of the account's security events (the server's audit log), as the
/// server reported it: its strings are data, to be stripped of terminal
/// controls before they are shown.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Event {
    /// The server's number for it, increasing.
    pub id: i64,
    /// When, in RFC 3339.
    pub at: String,
    /// What happened: `register`, `login`, `login_failed`,
    /// `refresh_reuse`, `logout`, `device_added`, `device_renamed`,
    /// `device_revoked`, `password_changed`, `vault_created`,
    /// `identity_published`, `approval_requested`, `device_approved` or
    /// `approval_denied`.
    pub kind: String,
    /// The device it concerns, when one does.
    pub device_id: Option<Uuid>,
    /// Where the request came from, when the server recorded it.
    pub address: Option<String>,
    /// A detail that is not secret (a device's name).
    pub detail: Option<String>,
}

impl From<AuditEvent> for Event {
    fn from(e: AuditEvent) -> Self {
        Self {
            id: e.id,
            at: e.at,
            kind: e.kind,
            device_id: e.device_id,
            address: e.address,
            detail: e.detail,
        }
    }
}

impl Session {
    /// The server side of `openk status`: a future that asks the server for
    /// at most `within` in all (`None`: not registered). It borrows nothing,
    /// so it can run while the local part is read. It never fails: what
    /// could not be confirmed is said in the answer (`confirmed`, `state`,
    /// `problem`). It never renews the session either (a refresh cut off by
    /// the short deadline could cost the session: refresh tokens work once);
    /// an expired access token is reported as such and the next sync renews
    /// it.
    #[must_use]
    pub fn remote_status(
        &self,
        within: std::time::Duration,
    ) -> Option<impl Future<Output = RemoteStatus> + Send + 'static> {
        let record = self.remote.clone()?;
        let mut status = RemoteStatus {
            server: record.server.clone(),
            email: record.email.clone(),
            device_name: record.device_name.clone(),
            session: "logged out".into(),
            reachable: false,
            confirmed: false,
            state: "answering".into(),
            problem: None,
            emergency_requests: Vec::new(),
        };
        let client = Client::new(&record.server)
            .map_err(Error::from)
            .map(|c| c.with_deadline(Some(crate::sync::client::Deadline::after(within))));
        let tokens = self.tokens();
        let mine = HeaderKdf {
            account_id: self.header.account_id,
            salt: self.header.salt.clone(),
            kdf: self.header.kdf,
        };
        Some(async move {
            ask_status(client, tokens, &mine, &mut status).await;
            status
        })
    }

    /// The account's devices.
    pub async fn devices(&mut self) -> Result<Vec<Device>> {
        let devices = self.authed(|c| async move { c.devices().await }).await?;
        Ok(devices.into_iter().map(Device::from).collect())
    }

    /// Renames a device.
    pub async fn rename_device(&mut self, id: Uuid, name: &str) -> Result<Device> {
        let name = check_device_name(name)?;
        let name = name.as_str();
        let renamed = self
            .authed(|c| {
                let name = name.to_owned();
                async move { c.rename_device(id, &name).await }
            })
            .await?;
        if id == self.header.device_id {
            let mut record = self.remote_or_err()?.clone();
            // The name the user typed, never the server's echo of it.
            record.device_name = name.to_owned();
            self.save_remote(record).await?;
        }
        Ok(renamed.into())
    }

    /// Revokes a device: its tokens stop working at once.
    pub async fn revoke_device(&mut self, id: Uuid) -> Result<()> {
        let name = self
            .devices()
            .await
            .ok()
            .and_then(|all| all.into_iter().find(|d| d.id == id))
            .map(|d| crate::text::line(&d.name).into_owned())
            .unwrap_or_default();
        self.authed(|c| async move { c.revoke_device(id).await })
            .await?;
        let id_text = id.to_string();
        self.record_security(
            crate::engine::security::SecurityKind::DeviceRevoked,
            crate::engine::security::detail([("device", name.as_str()), ("device_id", &id_text)]),
        )
        .await;
        if id == self.header.device_id {
            self.save_tokens(None).await?;
        }
        Ok(())
    }

    /// The account's security events, newest first.
    pub async fn audit(&mut self, limit: u32) -> Result<Vec<Event>> {
        let events = self.authed(|c| async move { c.audit(limit).await }).await?;
        Ok(events.into_iter().map(Event::from).collect())
    }
}

/// Fills in what the server says about this device's session.
async fn ask_status(
    client: Result<Client>,
    tokens: Result<Tokens>,
    mine: &HeaderKdf,
    status: &mut RemoteStatus,
) {
    let client = match client {
        Ok(c) => c,
        Err(e) => return status.failed(e),
    };
    let tokens = match tokens {
        Ok(t) => t,
        // Logged out (known here): whether the server answers, and whether
        // a password change on another device is the reason.
        Err(e) if e.is_session_over() => {
            status.confirmed = true;
            match client.prelogin(&status.email).await {
                Ok(pre) => {
                    status.reachable = true;
                    if mine.changed_by(&pre) {
                        status.problem = Some(std::sync::Arc::new(Error::PasswordChanged));
                    }
                }
                Err(e) => status.failed(e.into()),
            }
            return;
        }
        Err(e) => {
            status.session = "unreadable".into();
            return status.failed(e);
        }
    };
    if tokens.access_expires_at <= now_millis() + 5_000 {
        // Not renewed here; the prelogin shows whether the server answers
        // and whether a password change elsewhere ended the session.
        status.session = "expired".into();
        match client.prelogin(&status.email).await {
            Ok(pre) if mine.changed_by(&pre) => {
                status.reachable = true;
                status.session = "logged out".into();
                status.confirmed = true;
                status.problem = Some(std::sync::Arc::new(Error::PasswordChanged));
            }
            Ok(_) => status.reachable = true,
            Err(e) => status.failed(e.into()),
        }
        return;
    }
    status.session = "active".into();
    match client
        .clone()
        .with_token(Some(tokens.access.to_string()))
        .account()
        .await
    {
        Ok(_) => {
            status.reachable = true;
            status.confirmed = true;
            // Requests against this account the owner should know of (a
            // failure here leaves the list empty: the status stands).
            if let Ok(grants) = client
                .clone()
                .with_token(Some(tokens.access.to_string()))
                .grants()
                .await
            {
                status.emergency_requests = grants
                    .given
                    .iter()
                    .filter(|g| g.state == "requested")
                    .map(crate::engine::emergency::GrantInfo::of)
                    .collect();
            }
        }
        Err(SyncError::Unauthorized) => {
            status.reachable = true;
            if matches!(client.prelogin(&status.email).await, Ok(pre) if mine.changed_by(&pre)) {
                status.session = "logged out".into();
                status.confirmed = true;
                status.problem = Some(std::sync::Arc::new(Error::PasswordChanged));
            } else {
                status.session = "rejected".into();
                status.problem = Some(std::sync::Arc::new(Error::TokenRejected));
            }
        }
        Err(e) => status.failed(e.into()),
    }
}
