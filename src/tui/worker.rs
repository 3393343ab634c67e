//! The engine actor: one tokio task owns the [`Session`] and serves the UI's
//! requests in order, answering through a channel, so that KDF and
//! database work never blocks a frame. Locking drops the vault (its keys
//! are wiped on drop).
//!
//! Engine calls arrive as [`Job`]s: a closure over the [`Session`] and the
//! id of the pane or popup its answer is for ([`To`]). The worker runs it
//! and sends back [`Reply::To`] with whatever the closure returned, so a
//! new pane brings its own jobs and adds nothing here. The worker's own
//! requests (unlock, lock, sync, login, the refresh tick) stay variants.
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
use zeroize::Zeroizing;

use crate::engine::model::Entry;
use crate::engine::sync::{EventStream, SyncOptions, SyncReport};
use crate::engine::{self, Error, KdfParams, SecretString, Session};

mod first_run;

pub use super::job::{Answer, Job, Notice, To};
pub use super::sync_state::SyncState;
use super::sync_state::{failed, message, verify_summary};

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
    /// A pane's or popup's engine work.
    Job(Job),
    Sync,
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
    Events(Result<EventStream, Error>),
    Pane(To, Result<Answer, Error>),
}

/// Network work, one at a time, off the worker.
enum Net {
    Sync,
    /// `sync --verify` from the palette.
    Verify,
    Events,
    Pane(Job),
}

/// Which network work runs (the job itself moved into its task).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Sync,
    Verify,
    Events,
    Pane,
}

impl Net {
    fn kind(&self) -> Kind {
        match self {
            Self::Sync => Kind::Sync,
            Self::Verify => Kind::Verify,
            Self::Events => Kind::Events,
            Self::Pane(_) => Kind::Pane,
        }
    }

    /// Whether `self` waiting makes queueing `other` pointless.
    fn covers(&self, other: &Self) -> bool {
        match (self, other) {
            (Self::Pane(a), Self::Pane(b)) => b.latest_only && a.to == b.to && a.what == b.what,
            (a, b) => a.kind() == b.kind(),
        }
    }
}

struct Running {
    id: u64,
    kind: Kind,
    task: tokio::task::JoinHandle<()>,
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
    /// A job's answer, for the pane or popup it names.
    To(To, Answer),
    Sync(SyncState),
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
    queue: VecDeque<Net>,
    next_job: u64,
    /// How the last sync ended when it did not finish (failed or
    /// cancelled): the status stays that, never "synced", until a sync
    /// completes.
    failure: Option<SyncState>,
}

fn snapshot(entries: &[Entry]) -> Arc<Vec<Entry>> {
    Arc::new(entries.to_vec())
}

/// Runs one network job on its own handle of the vault.
async fn run_net(v: &mut Session, job: Net, progress: &(dyn Fn() + Send + Sync)) -> Outcome {
    match job {
        Net::Sync => {
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
        Net::Verify => Outcome::Verified(
            v.sync(&SyncOptions {
                verify: true,
                ..SyncOptions::default()
            })
            .await,
        ),
        Net::Events => Outcome::Events(if v.is_logged_in() {
            v.events().await
        } else {
            Err(Error::Session("logged out".into()))
        }),
        Net::Pane(job) => Outcome::Pane(job.to, (job.run)(v).await),
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
        let syncs = |k: Kind| matches!(k, Kind::Sync | Kind::Verify);
        self.running.as_ref().is_some_and(|r| syncs(r.kind))
            || self.queue.iter().any(|j| syncs(j.kind()))
    }

    /// The vault's server, for error messages.
    fn server(&self) -> Option<&str> {
        self.vault
            .as_ref()
            .and_then(Session::remote)
            .map(|r| r.server.as_str())
    }

    fn message(&self, e: &Error) -> String {
        message(e, self.server())
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
        let latest = |r: &Request| match r {
            Request::Job(j) if j.latest_only => Some((j.to, j.what)),
            _ => None,
        };
        loop {
            let req = tokio::select! {
                req = rx.recv() => match req {
                    Some(r) => r,
                    None => break,
                },
                _ = tick.tick() => Request::Refresh,
            };
            // Typing fast queues searches: only the newest matters.
            let req = match latest(&req) {
                Some(key) => {
                    let mut newest = req;
                    while let Ok(next) = rx.try_recv() {
                        if latest(&next) == Some(key) {
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
                None => req,
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
            Err(e) => SyncState::Error(message(&e, v.remote().map(|r| r.server.as_str()))),
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
                Err(e) => Some(Reply::Error(message(
                    &e,
                    v.remote().map(|r| r.server.as_str()),
                ))),
            },
            Err(e) => {
                tracing::warn!(error = %e, "cannot look for changes");
                None
            }
        }
    }

    /// Queues a network job (one already waiting is not queued twice) and
    /// starts it when nothing else runs.
    async fn queue_job(&mut self, job: Net) -> Vec<Reply> {
        if self.me.is_none() || self.vault.as_ref().is_none_or(|v| !v.is_logged_in()) {
            return Vec::new();
        }
        if !self.queue.iter().any(|q| q.covers(&job)) {
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
                return vec![Reply::Sync(SyncState::Error(self.message(&e)))];
            }
        };
        self.next_job += 1;
        let id = self.next_job;
        let kind = job.kind();
        let started = vec![Reply::Sync(
            if matches!(kind, Kind::Sync | Kind::Verify) || self.is_syncing() {
                SyncState::Syncing
            } else {
                self.local_state().await
            },
        )];
        let task = tokio::spawn(async move {
            let tell = me.clone();
            let progress = move || {
                let _ = tell.send(Request::Progress(id));
            };
            let outcome = run_net(&mut handle, job, &progress).await;
            handle.close().await;
            let _ = me.send(Request::Done(Box::new(Finished { id, outcome })));
        });
        self.running = Some(Running { id, kind, task });
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
                            && !self.queue.iter().any(|q| q.kind() == Kind::Events)
                        {
                            self.queue.push_back(Net::Events);
                        }
                        None
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "background sync failed");
                        Some(failed(&e, self.server()))
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
                    Err(e) => out.push(Reply::Error(self.message(&e))),
                }
                out.push(Reply::Sync(self.sync_state().await));
            }
            Outcome::Pane(to, answer) => {
                match answer {
                    Ok(a) => out.push(Reply::To(to, a)),
                    Err(e) => out.push(Reply::Error(self.message(&e))),
                }
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
            Err(e) if submitted => vec![Reply::Rejected(self.message(&e))],
            Err(e) => vec![Reply::Error(self.message(&e))],
        }
    }

    /// Runs a pane's job: here, or queued as network work.
    async fn job(&mut self, mut job: Job) -> Result<Vec<Reply>, Error> {
        if job.network {
            self.vault()?;
            if self.logged_in() && self.me.is_some() {
                return Ok(self.queue_job(Net::Pane(job)).await);
            }
            let answer = match job.offline.take() {
                Some(offline) => offline()?,
                None if !self.logged_in() => {
                    return Err(Error::Session(
                        "logged out of the server; run `openk login`".into(),
                    ));
                }
                None => return Ok(Vec::new()),
            };
            return Ok(vec![
                Reply::To(job.to, answer),
                Reply::Sync(self.sync_state().await),
            ]);
        }
        let mut out: Vec<Reply> = if job.fresh {
            // Current as of now: what another writer saved is read (and
            // listed) before the job runs.
            self.catch_up().await.into_iter().collect()
        } else {
            Vec::new()
        };
        let answer = (job.run)(self.vault()?).await?;
        let reply = Reply::To(job.to, answer);
        if job.writes {
            out.extend(self.after_write(reply).await?);
        } else {
            out.push(reply);
        }
        Ok(out)
    }

    async fn serve(&mut self, req: Request) -> Result<Vec<Reply>, Error> {
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
                        let started = self.queue_job(Net::Sync).await;
                        let sync = self.sync_state().await;
                        let mut out = vec![Reply::Unlocked { entries, sync }];
                        out.extend(started);
                        out
                    }
                    Err(e) => vec![Reply::UnlockFailed(self.message(&e))],
                }
            }
            Request::Create(password) => self.create(password).await?,
            Request::Lock | Request::Quit => {
                self.lock().await;
                Vec::new()
            }
            Request::Job(job) => self.job(job).await?,
            Request::Sync => {
                self.vault()?;
                if self.logged_in() && self.me.is_some() {
                    let mut out = self.queue_job(Net::Sync).await;
                    if out.is_empty() {
                        out.push(Reply::Sync(SyncState::Syncing));
                    }
                    out
                } else {
                    vec![Reply::Sync(self.local_state().await)]
                }
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
                out.extend(self.queue_job(Net::Sync).await);
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
                let mut out = self.queue_job(Net::Verify).await;
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
                    self.queue_job(Net::Sync).await
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
                    .is_some_and(|r| r.id == id && r.kind == Kind::Sync)
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
        // The engine decides whether a write is followed by a sync; the TUI
        // runs that sync in the background, after the replies above are on
        // screen, not before.
        let due = self
            .vault
            .as_ref()
            .is_some_and(|v| v.syncs_after_write(self.auto_sync));
        if due && self.me.is_some() {
            out.extend(self.queue_job(Net::Sync).await);
        } else {
            out.push(Reply::Sync(self.sync_state().await));
        }
        Ok(out)
    }
}

/// Whether the vault directory holds a vault (unlock) or not (create).
#[must_use]
pub fn has_vault(dir: &std::path::Path) -> bool {
    engine::has_vault_file(dir)
}
