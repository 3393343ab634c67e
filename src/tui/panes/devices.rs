//! The devices pane: this account's devices on the server; rename, revoke.

use uuid::Uuid;

use crate::engine::Session;
use crate::engine::remote::Device as DeviceResponse;
use crate::tui::worker::{Job, To};

/// The devices pane's id.
pub const TO: To = To("devices");

/// The device list, or why the server could not give it.
pub type DeviceList = Result<Vec<DeviceResponse>, String>;

/// A rename's or revocation's answer: what it did (or why not), and the
/// list after it.
#[derive(Debug)]
pub struct Changed {
    pub done: Result<String, String>,
    pub list: DeviceList,
}

async fn list(v: &mut Session) -> DeviceList {
    if v.is_logged_in() {
        v.devices().await.map_err(|e| e.to_string())
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
