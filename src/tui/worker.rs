//! The engine actor: one tokio task owns the [`Session`] and serves the UI's
//! requests in order, answering through a channel, so that KDF and
//! database work never blocks a frame. Locking drops the vault (its keys
//! are wiped on drop).
//!
//! The worker itself never waits on the network. Network work (syncs, the
//! device list, renames and revocations, opening the server's event
//! stream) runs one job at a time in its own task on a second handle of
//! the unlocked vault ([`Session::handle`]: same keys, its own database
//! connection), the way another `openk` process would; the worker keeps
//! serving copy, reveal, edit and search meanwhile, and `Cancel` aborts the
//! job (a sync only changes the vault in transactions after it has checked
//! what it received, and a push whose answer never came is re-sent with
//! the same id, so stopping one at any await loses nothing). Whatever any
//! writer committed, that job, a CLI in another terminal, is picked up on
//! the next `Refresh` tick ([`Session::catch_up`]). When the vault is logged
//! in to a server, the worker syncs after unlocking, after writes and when
//! a server event says a vault moved.

use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender};
use uuid::Uuid;
use zeroize::Zeroizing;

use crate::engine::model::{Entry, Item};
use crate::engine::remote::Device as DeviceResponse;
use crate::engine::search::Query;
use crate::engine::sync::EventStream;
use crate::engine::sync::{SyncOptions, SyncReport};
use crate::engine::{
    self, Error, ExposeSecret, ItemDraft, ItemPatch, KdfParams, SecretString, Session,
    VersionSummary, files,
};

/// Results a search returns: a few screenfuls.
const SEARCH_LIMIT: usize = 100;
/// How often the worker looks for changes other writers made.
pub const REFRESH_EVERY: Duration = Duration::from_millis(500);

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
    /// A patch made on a version of the item (`None`: on the current one);
    /// saved on a newer version, it is merged (see [`Session::update_from`]).
    Update(Uuid, Option<u64>, Box<ItemPatch>),
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
    ServerEvent(crate::engine::sync::ServerEvent),
    /// Stop the network job in flight and those waiting (Esc while syncing).
    Cancel,
    /// Look for changes other writers committed (the worker's own tick).
    Refresh,
    /// A network job moved on (sent by the job's task).
    Progress(u64),
    /// A network job finished (sent by the job's task).
    Done(Box<Finished>),
}

/// A network job's outcome, for the worker.
pub struct Finished {
    id: u64,
    outcome: Outcome,
}

impl std::fmt::Debug for Finished {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Finished")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

enum Outcome {
    Synced(Result<SyncReport, Error>),
    Verified(Result<SyncReport, Error>),
    Devices(Result<Vec<DeviceResponse>, String>),
    Renamed(
        Result<DeviceResponse, Error>,
        Result<Vec<DeviceResponse>, String>,
    ),
    Revoked(Result<(), Error>, Result<Vec<DeviceResponse>, String>),
    Events(Result<EventStream, Error>),
}

/// Network work, one at a time, off the worker.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Job {
    Sync,
    /// `sync --verify` from the palette.
    Verify,
    Devices,
    Rename(Uuid, String),
    Revoke(Uuid),
    Events,
}

struct Running {
    id: u64,
    job: Job,
    task: tokio::task::JoinHandle<()>,
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
    /// The server took too long to answer (it accepted the connection, or
    /// the connection attempt timed out).
    NotAnswering(String),
    /// The server could not be reached at all (refused, no route, DNS).
    Offline(String),
    /// The user stopped the sync; `u64` changes are still to push.
    Cancelled(u64),
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
            Self::Syncing => "syncing…".into(),
            Self::NotAnswering(_) => "server not answering".into(),
            Self::Offline(_) => "offline".into(),
            Self::Cancelled(0) => "sync cancelled".into(),
            Self::Cancelled(n) => format!("sync cancelled · pending {n}"),
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
    /// An edit made on an older version, merged with the newer one.
    Merged {
        item: Box<Item>,
        /// The version it was merged with (now in history).
        other: u64,
        /// Parts both changed: this edit's values were kept.
        conflicts: Vec<String>,
    },
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
    vault: Option<Session>,
    /// Requests it sends itself (server events, finished jobs).
    me: Option<UnboundedSender<Request>>,
    events: Option<tokio::task::JoinHandle<()>>,
    /// The network job in flight, and those waiting for it.
    running: Option<Running>,
    queue: VecDeque<Job>,
    next_job: u64,
    /// How the last sync ended when it did not finish (failed or
    /// cancelled): the status stays that, never "synced", until a sync
    /// completes.
    failure: Option<SyncState>,
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

/// The state a failed sync leaves: a server that does not answer is told
/// apart from one that cannot be reached at all.
fn failed(e: &Error) -> SyncState {
    match e {
        Error::NotAnswering(m) => SyncState::NotAnswering(m.clone()),
        Error::Unreachable(m)
            if [
                "timed out",
                "timeout",
                "deadline",
                "did not answer",
                "not answering",
            ]
            .iter()
            .any(|w| m.to_lowercase().contains(w)) =>
        {
            SyncState::NotAnswering(m.clone())
        }
        Error::Unreachable(m) => SyncState::Offline(m.clone()),
        other => SyncState::Error(message(other)),
    }
}

/// Runs one network job on its own handle of the vault.
async fn run_job(v: &mut Session, job: Job, progress: &(dyn Fn() + Send + Sync)) -> Outcome {
    let list = async |v: &mut Session| {
        if v.is_logged_in() {
            v.devices().await.map_err(|e| e.to_string())
        } else {
            Ok(Vec::new())
        }
    };
    match job {
        Job::Sync => {
            let report = |_: engine::sync::Progress| progress();
            Outcome::Synced(
                v.sync(&SyncOptions {
                    verify: false,
                    progress: Some(&report),
                    ..SyncOptions::default()
                })
                .await,
            )
        }
        Job::Verify => Outcome::Verified(
            v.sync(&SyncOptions {
                verify: true,
                ..SyncOptions::default()
            })
            .await,
        ),
        Job::Devices => Outcome::Devices(list(v).await),
        Job::Rename(id, name) => {
            let done = v.rename_device(id, &name).await;
            Outcome::Renamed(done, list(v).await)
        }
        Job::Revoke(id) => {
            let done = v.revoke_device(id).await;
            Outcome::Revoked(done, list(v).await)
        }
        Job::Events => Outcome::Events(if v.is_logged_in() {
            v.events().await
        } else {
            Err(Error::Session("logged out".into()))
        }),
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
            running: None,
            queue: VecDeque::new(),
            next_job: 0,
            failure: None,
        }
    }

    /// Writes the Emergency Kit into `dir` instead of the home directory.
    #[must_use]
    pub fn with_kit_dir(mut self, dir: PathBuf) -> Self {
        self.kit_dir = Some(dir);
        self
    }

    /// Gives the worker a way to queue requests to itself (finished network
    /// jobs, server events); without it, it does no network work at all.
    pub fn connect(&mut self, me: UnboundedSender<Request>) {
        self.me = Some(me);
    }

    /// Whether a network job is running or waiting.
    #[must_use]
    pub fn is_busy(&self) -> bool {
        self.running.is_some() || !self.queue.is_empty()
    }

    /// Whether a sync is running or waiting.
    fn is_syncing(&self) -> bool {
        let syncs = |j: &Job| matches!(j, Job::Sync | Job::Verify);
        self.running.as_ref().is_some_and(|r| syncs(&r.job)) || self.queue.iter().any(syncs)
    }

    /// Serves requests until the channel closes, and looks for changes
    /// other writers made every [`REFRESH_EVERY`].
    pub async fn run(
        mut self,
        mut rx: UnboundedReceiver<Request>,
        tx: UnboundedSender<Reply>,
        me: UnboundedSender<Request>,
    ) {
        self.connect(me);
        let mut tick = tokio::time::interval(REFRESH_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        loop {
            let req = tokio::select! {
                req = rx.recv() => match req {
                    Some(r) => r,
                    None => break,
                },
                _ = tick.tick() => Request::Refresh,
            };
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
                    self.lock().await;
                    return;
                }
            }
        }
        self.lock().await;
    }

    /// Stops the network job and the event stream.
    fn stop_network(&mut self) {
        self.queue.clear();
        if let Some(r) = self.running.take() {
            r.task.abort();
        }
        if let Some(h) = self.events.take() {
            h.abort();
        }
    }

    async fn lock(&mut self) {
        self.stop_network();
        self.failure = None;
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

    /// Where the vault stands: syncing while a sync runs or waits, else
    /// what the local state says.
    async fn sync_state(&mut self) -> SyncState {
        if self.is_syncing() {
            return SyncState::Syncing;
        }
        let local = self.local_state().await;
        match (&self.failure, local) {
            (_, s @ (SyncState::LocalOnly | SyncState::LoggedOut)) => s,
            (Some(SyncState::Cancelled(_)), SyncState::Pending(n)) => SyncState::Cancelled(n),
            (Some(SyncState::Cancelled(_)), _) => SyncState::Cancelled(0),
            (Some(f), _) => f.clone(),
            (None, s) => s,
        }
    }

    async fn local_state(&mut self) -> SyncState {
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

    /// Picks up what other writers committed; the new entries when
    /// anything changed.
    async fn catch_up(&mut self) -> Option<Reply> {
        let v = self.vault.as_mut()?;
        match v.catch_up().await {
            Ok(None) => None,
            Ok(Some(_)) => match v.entries().await {
                Ok((entries, _)) => Some(Reply::Entries(snapshot(entries))),
                Err(e) => Some(Reply::Error(message(&e))),
            },
            Err(e) => {
                tracing::warn!(error = %e, "cannot look for changes");
                None
            }
        }
    }

    /// Queues a network job (a sync already waiting is not queued twice)
    /// and starts it when nothing else runs.
    async fn queue_job(&mut self, job: Job) -> Vec<Reply> {
        if self.me.is_none() || self.vault.as_ref().is_none_or(|v| !v.is_logged_in()) {
            return Vec::new();
        }
        if !self.queue.contains(&job) {
            self.queue.push_back(job);
        }
        self.start_next().await
    }

    /// Starts the next waiting job on a second handle of the vault.
    async fn start_next(&mut self) -> Vec<Reply> {
        if self.running.is_some() {
            return Vec::new();
        }
        let (Some(v), Some(me)) = (self.vault.as_ref(), self.me.clone()) else {
            self.queue.clear();
            return Vec::new();
        };
        let Some(job) = self.queue.pop_front() else {
            return Vec::new();
        };
        let mut handle = match v.handle().await {
            Ok(h) => h,
            Err(e) => {
                self.queue.clear();
                return vec![Reply::Sync(SyncState::Error(e.to_string()))];
            }
        };
        self.next_job += 1;
        let id = self.next_job;
        let started = vec![Reply::Sync(
            if matches!(job, Job::Sync | Job::Verify) || self.is_syncing() {
                SyncState::Syncing
            } else {
                self.local_state().await
            },
        )];
        let task_job = job.clone();
        let task = tokio::spawn(async move {
            let tell = me.clone();
            let progress = move || {
                let _ = tell.send(Request::Progress(id));
            };
            let outcome = run_job(&mut handle, task_job, &progress).await;
            handle.close().await;
            let _ = me.send(Request::Done(Box::new(Finished { id, outcome })));
        });
        self.running = Some(Running { id, job, task });
        started
    }

    /// A job finished: its replies, then the next job.
    async fn finished(&mut self, done: Finished) -> Vec<Reply> {
        if self.running.as_ref().is_none_or(|r| r.id != done.id) {
            // Cancelled meanwhile.
            return Vec::new();
        }
        self.running = None;
        let mut out: Vec<Reply> = self.catch_up().await.into_iter().collect();
        match done.outcome {
            Outcome::Synced(result) => {
                let state = match result {
                    Ok(_) => {
                        self.failure = None;
                        if self
                            .events
                            .as_ref()
                            .is_none_or(tokio::task::JoinHandle::is_finished)
                            && !self.queue.contains(&Job::Events)
                        {
                            self.queue.push_back(Job::Events);
                        }
                        None
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "background sync failed");
                        Some(failed(&e))
                    }
                };
                let state = match state {
                    _ if self.is_syncing() => SyncState::Syncing,
                    Some(SyncState::Error(_)) if !self.logged_in() => SyncState::LoggedOut,
                    Some(s) => {
                        self.failure = Some(s.clone());
                        s
                    }
                    None => self.local_state().await,
                };
                out.push(Reply::Sync(state));
            }
            Outcome::Verified(result) => {
                match result {
                    Ok(report) => {
                        self.failure = None;
                        out.push(verify_summary(&report));
                    }
                    Err(e) => out.push(Reply::Error(message(&e))),
                }
                out.push(Reply::Sync(self.sync_state().await));
            }
            Outcome::Devices(list) => {
                out.push(Reply::Devices(list));
                out.push(Reply::Sync(self.sync_state().await));
            }
            Outcome::Renamed(done, list) => {
                match done {
                    Ok(d) => out.push(Reply::DeviceChanged(format!(
                        "Device renamed to {:?}",
                        d.name
                    ))),
                    Err(e) => out.push(Reply::Error(message(&e))),
                }
                out.push(Reply::Devices(list));
            }
            Outcome::Revoked(done, list) => {
                match done {
                    Ok(()) => out.push(Reply::DeviceChanged("Device revoked".into())),
                    Err(e) => out.push(Reply::Error(message(&e))),
                }
                out.push(Reply::Devices(list));
                out.push(Reply::Sync(self.sync_state().await));
            }
            Outcome::Events(Ok(mut stream)) => {
                if let Some(me) = self.me.clone() {
                    self.events = Some(tokio::spawn(async move {
                        while let Some(Ok(ev)) = stream.next().await {
                            if me.send(Request::ServerEvent(ev)).is_err() {
                                break;
                            }
                        }
                    }));
                }
            }
            Outcome::Events(Err(e)) => tracing::info!(error = %e, "no server events"),
        }
        out.extend(self.start_next().await);
        out
    }

    fn logged_in(&self) -> bool {
        self.vault.as_ref().is_some_and(Session::is_logged_in)
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
                match Session::unlock(&self.dir, password, fallback.as_deref().map(String::as_str))
                    .await
                {
                    Ok(mut v) => {
                        // Whatever is on disk now is what the list shows.
                        let _ = v.catch_up().await;
                        self.vault = Some(v);
                        let entries = self.entries().await?;
                        // The vault goes on screen now; the sync runs in
                        // the background (never "synced" before it ends).
                        let started = self.queue_job(Job::Sync).await;
                        let sync = self.sync_state().await;
                        let mut out = vec![Reply::Unlocked { entries, sync }];
                        out.extend(started);
                        out
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
                let vault = match Session::init(&self.dir, password, self.kdf).await {
                    Ok(v) => v,
                    Err(e) => return Ok(vec![Reply::UnlockFailed(message(&e))]),
                };
                let kit_text = vault.emergency_kit();
                let secret_key = vault.secret_key_display();
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
                let _ = self.vault()?.catch_up().await;
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
                // Current as of now: what another writer saved is read
                // (and listed) before the item is.
                let mut out: Vec<Reply> = self.catch_up().await.into_iter().collect();
                let v = self.vault()?;
                out.push(Reply::Item(Box::new(v.item(id).await?)));
                out
            }
            Request::Search { seq, text } => {
                let mut out: Vec<Reply> = self.catch_up().await.into_iter().collect();
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
                        out.push(Reply::Searched {
                            seq,
                            hits,
                            total: found.total,
                            error: None,
                        });
                    }
                    Err(e) => out.push(Reply::Searched {
                        seq,
                        hits: Vec::new(),
                        total: 0,
                        error: Some(e),
                    }),
                }
                out
            }
            Request::Add(draft) => {
                let item = self.vault()?.add(*draft).await?;
                self.after_write(written(Verb::Added, item)).await?
            }
            Request::Update(id, base, patch) => {
                let saved = self.vault()?.update_from(id, base, &patch).await?;
                let reply = match saved.merged_with {
                    Some(other) => Reply::Merged {
                        item: Box::new(saved.item),
                        other,
                        conflicts: saved.conflicts,
                    },
                    None => written(Verb::Saved, saved.item),
                };
                self.after_write(reply).await?
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
                self.vault()?;
                if self.logged_in() && self.me.is_some() {
                    let mut out = self.queue_job(Job::Sync).await;
                    if out.is_empty() {
                        out.push(Reply::Sync(SyncState::Syncing));
                    }
                    out
                } else {
                    vec![Reply::Sync(self.local_state().await)]
                }
            }
            Request::Devices => {
                self.vault()?;
                if self.logged_in() && self.me.is_some() {
                    self.queue_job(Job::Devices).await
                } else {
                    vec![
                        Reply::Devices(Ok(Vec::new())),
                        Reply::Sync(self.sync_state().await),
                    ]
                }
            }
            Request::RenameDevice(id, name) => {
                self.vault()?;
                if !self.logged_in() {
                    return Err(Error::Session(
                        "logged out of the server; run `openk login`".into(),
                    ));
                }
                self.queue_job(Job::Rename(id, name)).await
            }
            Request::RevokeDevice(id) => {
                self.vault()?;
                if !self.logged_in() {
                    return Err(Error::Session(
                        "logged out of the server; run `openk login`".into(),
                    ));
                }
                self.queue_job(Job::Revoke(id)).await
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
                let mut out = vec![Reply::Done(format!("Logged in to {server} again"))];
                // The sync (then the event stream) runs in the background.
                out.extend(self.queue_job(Job::Sync).await);
                out.push(Reply::Sync(self.sync_state().await));
                out
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
                if !self.vault()?.is_logged_in() {
                    return Err(Error::Session(
                        "this device is logged out: log in first (palette: login)".into(),
                    ));
                }
                // Off the worker like every network wait (Esc cancels it).
                let mut out = self.queue_job(Job::Verify).await;
                out.insert(0, Reply::Done("Verifying the server item by item…".into()));
                out
            }
            Request::Submit(inner) => {
                // Handled by `handle`; nested submits are served as is.
                Box::pin(self.serve(*inner)).await?
            }
            Request::ServerEvent(ev) => {
                let v = self.vault()?;
                if v.event_needs_sync(&ev).await {
                    self.queue_job(Job::Sync).await
                } else {
                    Vec::new()
                }
            }
            Request::Cancel => {
                if self.running.is_none() && self.queue.is_empty() {
                    return Ok(Vec::new());
                }
                let was_syncing = self.is_syncing();
                let events = self.events.take();
                self.stop_network();
                self.events = events;
                let pending = match self.local_state().await {
                    SyncState::Pending(n) => n,
                    _ => 0,
                };
                let mut out: Vec<Reply> = self.catch_up().await.into_iter().collect();
                if was_syncing && self.logged_in() {
                    self.failure = Some(SyncState::Cancelled(pending));
                }
                out.push(Reply::Sync(self.sync_state().await));
                out
            }
            Request::Refresh => {
                if self.vault.is_none() {
                    return Ok(Vec::new());
                }
                match self.catch_up().await {
                    Some(entries) => vec![entries, Reply::Sync(self.sync_state().await)],
                    None => Vec::new(),
                }
            }
            Request::Progress(id) => {
                if self
                    .running
                    .as_ref()
                    .is_some_and(|r| r.id == id && r.job == Job::Sync)
                {
                    vec![Reply::Sync(SyncState::Syncing)]
                } else {
                    Vec::new()
                }
            }
            Request::Done(done) => self.finished(*done).await,
        };
        Ok(replies)
    }

    fn vault(&mut self) -> Result<&mut Session, Error> {
        self.vault
            .as_mut()
            .ok_or_else(|| Error::Locked("the vault is locked".into()))
    }

    async fn after_write(&mut self, done: Reply) -> Result<Vec<Reply>, Error> {
        let entries = self.entries().await?;
        let mut out = vec![done, Reply::Entries(entries)];
        if self.auto_sync && self.logged_in() && self.me.is_some() {
            // After the replies above are on screen, not before.
            out.extend(self.queue_job(Job::Sync).await);
        } else {
            out.push(Reply::Sync(self.sync_state().await));
        }
        Ok(out)
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
