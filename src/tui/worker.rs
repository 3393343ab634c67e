//! The engine actor: one tokio task owns the [`Vault`] and serves the UI's
//! requests in order, answering through a channel, so that KDF, database
//! and network work never blocks a frame. Locking drops the vault (its keys
//! are wiped on drop). When the vault is logged in to a server, the worker
//! syncs after writes and when a server event says a vault moved.

use std::path::PathBuf;
use std::sync::Arc;

use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender};
use uuid::Uuid;
use zeroize::Zeroizing;

use crate::engine::model::{Entry, Item};
use crate::engine::remote::Device as DeviceResponse;
use crate::engine::search::Query;
use crate::engine::sync::SyncOptions;
use crate::engine::{
    self, Error, ExposeSecret, ItemDraft, ItemPatch, KdfParams, SecretString, Vault,
    VersionSummary, files,
};

/// Results a search returns: a few screenfuls.
const SEARCH_LIMIT: usize = 100;

/// What the UI asks for.
#[derive(Debug)]
pub enum Request {
    Unlock(SecretString),
    Create(SecretString),
    Lock,
    /// Close the vault and stop serving.
    Quit,
    Item(Uuid),
    Search {
        seq: u64,
        text: String,
    },
    Add(Box<ItemDraft>),
    Update(Uuid, Box<ItemPatch>),
    Trash(Uuid),
    Restore(Uuid),
    History(Uuid),
    Version(Uuid, u64),
    Sync,
    Devices,
    RenameDevice(Uuid, String),
    RevokeDevice(Uuid),
    /// Destroys a trashed item and its history.
    Purge(Uuid),
    /// Checks the current master password, then changes it.
    ChangePassword {
        current: SecretString,
        new: SecretString,
    },
    /// Logs this (registered) device in again.
    Relogin,
    /// Ends this device's server session.
    Logout,
    /// Syncs and compares the server's whole state with its manifest.
    SyncVerify,
    /// A popup's request (a form's save, a password change): success is
    /// answered first with [`Reply::Accepted`], failure with
    /// [`Reply::Rejected`] instead of [`Reply::Error`], so the popup closes
    /// only when the engine took it and otherwise keeps what was typed.
    Submit(Box<Request>),
    /// A server event arrived (sent by the events task).
    ServerEvent(crate::sync::client::ServerEvent),
}

/// Where the vault stands with its server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SyncState {
    /// Never registered with a server.
    LocalOnly,
    /// Registered but this device is logged out.
    LoggedOut,
    Synced,
    Pending(u64),
    Syncing,
    Offline(String),
    Error(String),
}

impl SyncState {
    #[must_use]
    pub fn label(&self) -> String {
        match self {
            Self::LocalOnly => "local only".into(),
            Self::LoggedOut => "logged out".into(),
            Self::Synced => "synced".into(),
            Self::Pending(n) => format!("pending {n}"),
            Self::Syncing => "syncing".into(),
            Self::Offline(_) => "offline".into(),
            Self::Error(_) => "sync error".into(),
        }
    }
}

/// What a successful write was, for the status line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verb {
    Added,
    Saved,
    Trashed,
    Restored,
}

/// The worker's answers.
#[derive(Debug)]
pub enum Reply {
    Unlocked {
        entries: Arc<Vec<Entry>>,
        sync: SyncState,
    },
    Created {
        entries: Arc<Vec<Entry>>,
        secret_key: Zeroizing<String>,
        kit: Result<PathBuf, String>,
    },
    UnlockFailed(String),
    Entries(Arc<Vec<Entry>>),
    Item(Box<Item>),
    Searched {
        seq: u64,
        hits: Vec<Uuid>,
        total: usize,
        error: Option<String>,
    },
    Written(Verb, Box<Item>),
    History(Uuid, Vec<VersionSummary>),
    Version(Box<Item>),
    Sync(SyncState),
    Devices(Result<Vec<DeviceResponse>, String>),
    DeviceChanged(String),
    /// A command finished: what it did, for the status line.
    Done(String),
    /// The engine took a [`Request::Submit`].
    Accepted,
    /// The engine refused a [`Request::Submit`]: why.
    Rejected(String),
    Error(String),
}

/// The state the worker owns.
pub struct Worker {
    dir: PathBuf,
    kdf: KdfParams,
    auto_sync: bool,
    /// Where the Emergency Kit goes (default: the home directory).
    kit_dir: Option<PathBuf>,
    vault: Option<Vault>,
    /// Requests it sends itself (server events).
    me: Option<UnboundedSender<Request>>,
    events: Option<tokio::task::JoinHandle<()>>,
}

fn snapshot(entries: &[Entry]) -> Arc<Vec<Entry>> {
    Arc::new(entries.to_vec())
}

fn message(e: &Error) -> String {
    match e {
        Error::WrongPassword => "wrong password — try again".into(),
        Error::PasswordChanged => {
            "the master password was changed on another device; lock and unlock with the new password"
                .into()
        }
        other => other.to_string(),
    }
}

impl Worker {
    #[must_use]
    pub fn new(dir: PathBuf, kdf: KdfParams, auto_sync: bool) -> Self {
        Self {
            dir,
            kdf,
            auto_sync,
            kit_dir: None,
            vault: None,
            me: None,
            events: None,
        }
    }

    /// Writes the Emergency Kit into `dir` instead of the home directory.
    #[must_use]
    pub fn with_kit_dir(mut self, dir: PathBuf) -> Self {
        self.kit_dir = Some(dir);
        self
    }

    /// Gives the worker a way to queue requests to itself (syncs after
    /// writes, server events); without it, it never syncs on its own.
    pub fn connect(&mut self, me: UnboundedSender<Request>) {
        self.me = Some(me);
    }

    /// Serves requests until the channel closes.
    pub async fn run(
        mut self,
        mut rx: UnboundedReceiver<Request>,
        tx: UnboundedSender<Reply>,
        me: UnboundedSender<Request>,
    ) {
        self.connect(me);
        while let Some(req) = rx.recv().await {
            // Typing fast queues searches: only the newest matters.
            let req = match req {
                Request::Search { .. } => {
                    let mut newest = req;
                    while let Ok(next) = rx.try_recv() {
                        if matches!(next, Request::Search { .. }) {
                            newest = next;
                        } else {
                            for r in self.handle(newest).await {
                                let _ = tx.send(r);
                            }
                            newest = next;
                        }
                    }
                    newest
                }
                other => other,
            };
            if matches!(req, Request::Quit) {
                break;
            }
            for reply in self.handle(req).await {
                if tx.send(reply).is_err() {
                    return;
                }
            }
        }
        self.lock().await;
    }

    async fn lock(&mut self) {
        if let Some(h) = self.events.take() {
            h.abort();
        }
        if let Some(v) = self.vault.take() {
            v.close().await;
        }
    }

    async fn entries(&mut self) -> Result<Arc<Vec<Entry>>, Error> {
        match self.vault.as_mut() {
            Some(v) => Ok(snapshot(v.entries().await?.0)),
            None => Err(Error::Locked("the vault is locked".into())),
        }
    }

    async fn sync_state(&mut self) -> SyncState {
        let Some(v) = self.vault.as_mut() else {
            return SyncState::LocalOnly;
        };
        if v.remote().is_none() {
            return SyncState::LocalOnly;
        }
        if !v.is_logged_in() {
            return SyncState::LoggedOut;
        }
        match v.local_sync_status().await {
            Ok(s) if s.pending > 0 => SyncState::Pending(s.pending),
            Ok(_) => SyncState::Synced,
            Err(e) => SyncState::Error(e.to_string()),
        }
    }

    /// Syncs now; the replies carry the new state and, when the sync
    /// changed anything here, the new entries.
    async fn sync(&mut self) -> Vec<Reply> {
        let Some(v) = self.vault.as_mut() else {
            return Vec::new();
        };
        if !v.is_logged_in() {
            return vec![Reply::Sync(self.sync_state().await)];
        }
        let result = v.sync(&SyncOptions::default()).await;
        let mut out = Vec::new();
        match result {
            Ok(report) => {
                if report.changed_locally()
                    && let Ok(entries) = self.entries().await
                {
                    out.push(Reply::Entries(entries));
                }
                out.push(Reply::Sync(self.sync_state().await));
            }
            Err(Error::Unreachable(m) | Error::NotAnswering(m)) => {
                out.push(Reply::Sync(SyncState::Offline(m)));
            }
            Err(e) => {
                tracing::warn!(error = %e, "background sync failed");
                out.push(Reply::Sync(SyncState::Error(message(&e))));
            }
        }
        out
    }

    async fn start_events(&mut self) {
        let (Some(v), Some(me)) = (self.vault.as_mut(), self.me.clone()) else {
            return;
        };
        if !v.is_logged_in() {
            return;
        }
        match v.events().await {
            Ok(mut stream) => {
                self.events = Some(tokio::spawn(async move {
                    while let Some(Ok(ev)) = stream.next().await {
                        if me.send(Request::ServerEvent(ev)).is_err() {
                            break;
                        }
                    }
                }));
            }
            Err(e) => tracing::info!(error = %e, "no server events"),
        }
    }

    /// Serves one request.
    pub async fn handle(&mut self, req: Request) -> Vec<Reply> {
        let (req, submitted) = match req {
            Request::Submit(inner) => (*inner, true),
            other => (other, false),
        };
        match self.serve(req).await {
            Ok(mut replies) if submitted => {
                replies.insert(0, Reply::Accepted);
                replies
            }
            Ok(replies) => replies,
            Err(e) if submitted => vec![Reply::Rejected(message(&e))],
            Err(e) => vec![Reply::Error(message(&e))],
        }
    }

    #[allow(clippy::too_many_lines)]
    async fn serve(&mut self, req: Request) -> Result<Vec<Reply>, Error> {
        let written = |verb, item: Item| Reply::Written(verb, Box::new(item));
        let replies = match req {
            Request::Unlock(password) => {
                self.lock().await;
                let fallback = std::env::var("OPENK_SECRET_KEY").ok().map(Zeroizing::new);
                match Vault::unlock(&self.dir, password, fallback.as_deref().map(String::as_str))
                    .await
                {
                    Ok(v) => {
                        self.vault = Some(v);
                        let entries = self.entries().await?;
                        let sync = self.sync_state().await;
                        if self.vault.as_ref().is_some_and(Vault::is_logged_in) {
                            self.start_events().await;
                            self.sync_later();
                        }
                        vec![Reply::Unlocked { entries, sync }]
                    }
                    Err(e) => vec![Reply::UnlockFailed(message(&e))],
                }
            }
            Request::Create(password) => {
                if password.expose_secret().is_empty() {
                    return Ok(vec![Reply::UnlockFailed(
                        "the master password cannot be empty".into(),
                    )]);
                }
                let vault = match Vault::init(&self.dir, password, self.kdf).await {
                    Ok(v) => v,
                    Err(e) => return Ok(vec![Reply::UnlockFailed(message(&e))]),
                };
                let kit_text = vault.emergency_kit();
                let secret_key = kit_text
                    .lines()
                    .find_map(|l| l.strip_prefix("Secret Key:"))
                    .map(|s| Zeroizing::new(s.trim().to_owned()))
                    .unwrap_or_default();
                let kit_path = files::default_kit_path(vault.account_id()).map(|p| {
                    match (&self.kit_dir, p.file_name()) {
                        (Some(dir), Some(name)) => dir.join(name),
                        _ => p,
                    }
                });
                let kit = match kit_path {
                    Some(path) => files::write_private_file(&path, kit_text.as_bytes(), true)
                        .map(|()| path)
                        .map_err(|e| e.to_string()),
                    None => Err("cannot find the home directory".into()),
                };
                self.vault = Some(vault);
                let entries = self.entries().await?;
                vec![Reply::Created {
                    entries,
                    secret_key,
                    kit,
                }]
            }
            Request::Lock | Request::Quit => {
                self.lock().await;
                Vec::new()
            }
            Request::Item(id) => {
                let v = self.vault()?;
                vec![Reply::Item(Box::new(v.item(id).await?))]
            }
            Request::Search { seq, text } => {
                let v = self.vault()?;
                match Query::parse(&text) {
                    Ok(q) => {
                        let found = v.search(&q, SEARCH_LIMIT).await?;
                        let (entries, _) = v.entries().await?;
                        let hits = found
                            .hits
                            .iter()
                            .filter_map(|h| entries.get(h.index).map(|e| e.r.id))
                            .collect();
                        vec![Reply::Searched {
                            seq,
                            hits,
                            total: found.total,
                            error: None,
                        }]
                    }
                    Err(e) => vec![Reply::Searched {
                        seq,
                        hits: Vec::new(),
                        total: 0,
                        error: Some(e),
                    }],
                }
            }
            Request::Add(draft) => {
                let item = self.vault()?.add(*draft).await?;
                self.after_write(written(Verb::Added, item)).await?
            }
            Request::Update(id, patch) => {
                let item = self.vault()?.update(id, &patch).await?;
                self.after_write(written(Verb::Saved, item)).await?
            }
            Request::Trash(id) => {
                let item = self.vault()?.trash(id).await?;
                self.after_write(written(Verb::Trashed, item)).await?
            }
            Request::Restore(id) => {
                let item = self.vault()?.restore(id).await?;
                self.after_write(written(Verb::Restored, item)).await?
            }
            Request::History(id) => {
                let versions = self.vault()?.history(id).await?;
                vec![Reply::History(id, versions)]
            }
            Request::Version(id, version) => {
                let item = self.vault()?.item_version(id, version).await?;
                vec![Reply::Version(Box::new(item))]
            }
            Request::Sync => {
                let mut out = vec![Reply::Sync(SyncState::Syncing)];
                out.extend(self.sync().await);
                out
            }
            Request::Devices => {
                let v = self.vault()?;
                let list = if v.is_logged_in() {
                    v.devices().await.map_err(|e| e.to_string())
                } else {
                    Ok(Vec::new())
                };
                vec![Reply::Devices(list), Reply::Sync(self.sync_state().await)]
            }
            Request::RenameDevice(id, name) => {
                let d = self.vault()?.rename_device(id, &name).await?;
                let list = self.vault()?.devices().await.map_err(|e| e.to_string());
                vec![
                    Reply::DeviceChanged(format!("Device renamed to {:?}", d.name)),
                    Reply::Devices(list),
                ]
            }
            Request::RevokeDevice(id) => {
                self.vault()?.revoke_device(id).await?;
                let v = self.vault()?;
                let list = if v.is_logged_in() {
                    v.devices().await.map_err(|e| e.to_string())
                } else {
                    Ok(Vec::new())
                };
                vec![
                    Reply::DeviceChanged("Device revoked".into()),
                    Reply::Devices(list),
                    Reply::Sync(self.sync_state().await),
                ]
            }
            Request::Purge(id) => {
                let v = self.vault()?;
                // A damaged item can be purged too: name it by its id then.
                let name = v
                    .item(id)
                    .await
                    .map_or_else(|_| id.to_string(), |i| i.overview.name);
                v.purge(id).await?;
                self.after_write(Reply::Done(format!(
                    "Purged {name:?}: the item and its history are gone"
                )))
                .await?
            }
            Request::ChangePassword { current, new } => {
                let v = self.vault()?;
                v.check_password(current).await?;
                v.change_password(new, None).await?;
                vec![Reply::Done(
                    "Master password changed. The old one no longer opens this vault; the Secret Key is unchanged"
                        .into(),
                )]
            }
            Request::Relogin => {
                let v = self.vault()?;
                v.relogin().await?;
                let server = v.remote().map(|r| r.server.clone()).unwrap_or_default();
                if let Some(h) = self.events.take() {
                    h.abort();
                }
                self.start_events().await;
                self.sync_later();
                vec![
                    Reply::Done(format!("Logged in to {server} again")),
                    Reply::Sync(self.sync_state().await),
                ]
            }
            Request::Logout => {
                if let Some(h) = self.events.take() {
                    h.abort();
                }
                let told = self.vault()?.logout().await?;
                vec![
                    Reply::Done(
                        if told {
                            "Logged out: this device no longer syncs; the palette's login signs in again"
                        } else {
                            "Logged out here, but the server could not be told; the palette's login signs in again"
                        }
                        .into(),
                    ),
                    Reply::Sync(self.sync_state().await),
                ]
            }
            Request::SyncVerify => {
                let v = self.vault()?;
                if !v.is_logged_in() {
                    return Err(Error::Session(
                        "this device is logged out: log in first (palette: login)".into(),
                    ));
                }
                let report = v
                    .sync(&SyncOptions {
                        verify: true,
                        ..SyncOptions::default()
                    })
                    .await?;
                let mut out = vec![verify_summary(&report)];
                if report.changed_locally() {
                    out.push(Reply::Entries(self.entries().await?));
                }
                out.push(Reply::Sync(self.sync_state().await));
                out
            }
            Request::Submit(inner) => {
                // Handled by `handle`; nested submits are served as is.
                Box::pin(self.serve(*inner)).await?
            }
            Request::ServerEvent(ev) => {
                let v = self.vault()?;
                if v.event_needs_sync(&ev).await {
                    let mut out = vec![Reply::Sync(SyncState::Syncing)];
                    out.extend(self.sync().await);
                    out
                } else {
                    Vec::new()
                }
            }
        };
        Ok(replies)
    }

    fn vault(&mut self) -> Result<&mut Vault, Error> {
        self.vault
            .as_mut()
            .ok_or_else(|| Error::Locked("the vault is locked".into()))
    }

    async fn after_write(&mut self, done: Reply) -> Result<Vec<Reply>, Error> {
        let entries = self.entries().await?;
        let mut out = vec![done, Reply::Entries(entries)];
        if self.auto_sync && self.vault.as_ref().is_some_and(Vault::is_logged_in) {
            // After the replies above are on screen, not before.
            self.sync_later();
        } else {
            out.push(Reply::Sync(self.sync_state().await));
        }
        Ok(out)
    }

    fn sync_later(&self) {
        if let Some(me) = &self.me {
            let _ = me.send(Request::Sync);
        }
    }
}

/// One line for the status bar about a `sync --verify`: a success
/// ([`Reply::Done`]) or, when anything differs, a warning ([`Reply::Error`]).
fn verify_summary(report: &engine::sync::SyncReport) -> Reply {
    let verified: Vec<_> = report
        .vaults
        .iter()
        .filter_map(|v| v.verify.as_ref())
        .collect();
    if verified.is_empty() {
        return Reply::Done("Synced; the server sent nothing to verify".into());
    }
    let items: u64 = verified.iter().map(|r| r.server_items).sum();
    if verified.iter().all(|r| r.matches) {
        return Reply::Done(format!(
            "Verified: the server's {items} item(s) match its manifest and this device"
        ));
    }
    let count = |f: fn(&engine::sync::VerifyReport) -> usize| -> usize {
        verified.iter().map(|r| f(r)).sum()
    };
    let mut parts = Vec::new();
    if verified.iter().any(|r| !r.server_matches_manifest) {
        parts.push("the server's records do NOT match its manifest".to_owned());
    }
    for (n, what) in [
        (
            count(|r| r.missing_on_server.len()),
            "missing on the server",
        ),
        (count(|r| r.differing.len()), "different on the server"),
        (
            count(|r| r.unknown_here.len()),
            "on the server but unknown here",
        ),
    ] {
        if n > 0 {
            parts.push(format!("{n} item(s) {what}"));
        }
    }
    let repushed: u64 = verified.iter().map(|r| r.repushed).sum();
    if repushed > 0 {
        parts.push(format!("pushed {repushed} again"));
    }
    Reply::Error(format!(
        "Verify MISMATCH: {}; `openk sync --verify` lists the items",
        parts.join(", ")
    ))
}

/// Whether the vault directory holds a vault (unlock) or not (create).
#[must_use]
pub fn has_vault(dir: &std::path::Path) -> bool {
    engine::has_vault_file(dir)
}
