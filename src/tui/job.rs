//! Engine work addressed to a pane or popup: a [`Job`] is a closure over
//! the [`Session`] tagged with the id ([`To`]) of whoever reads its
//! [`Answer`]. The worker runs jobs without knowing what they do, so a new
//! pane brings its own jobs and adds no variant to the worker's enums.

use std::any::Any;

use futures::future::BoxFuture;

use crate::engine::{Error, Session};

/// Who a job's answer is for: a pane's or popup's id (`"vault"`, …), or
/// [`To::APP`] for the app itself (a [`Notice`] for the status line).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct To(pub &'static str);

impl To {
    pub const APP: Self = Self("app");
}

/// A job's answer for the app itself: one line for the status bar (what
/// [`Reply::Done`](super::worker::Reply::Done) says).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notice(pub String);

/// What a job returns: any value its pane knows how to read.
pub struct Answer(Box<dyn Any + Send>);

impl Answer {
    #[must_use]
    pub fn new<T: Any + Send>(value: T) -> Self {
        Self(Box::new(value))
    }

    /// The value, if it is a `T`.
    ///
    /// # Errors
    /// The answer itself when it holds something else.
    pub fn take<T: Any>(self) -> Result<T, Self> {
        self.0.downcast::<T>().map(|b| *b).map_err(Self)
    }

    /// Whether the answer holds a `T`.
    #[must_use]
    pub fn is<T: Any>(&self) -> bool {
        self.0.is::<T>()
    }
}

impl std::fmt::Debug for Answer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Answer(..)")
    }
}

type Run = Box<
    dyn for<'a> FnOnce(&'a mut Session) -> BoxFuture<'a, Result<Answer, Error>> + Send + 'static,
>;
type Offline = Box<dyn FnOnce() -> Result<Answer, Error> + Send + 'static>;

/// Engine work for one pane or popup: a closure over the session, and how
/// the worker is to run it.
pub struct Job {
    pub to: To,
    /// What it does, for logs and for [`Job::latest_only`].
    pub what: &'static str,
    pub(super) run: Run,
    /// Read what other writers committed first (and list it).
    pub(super) fresh: bool,
    /// It writes: the new list follows the answer, then a sync.
    pub(super) writes: bool,
    /// Queued jobs with the same `what`: only the newest runs.
    pub(super) latest_only: bool,
    /// Runs on a second handle off the worker, one network job at a time
    /// (see the module doc); `offline` answers instead when this device
    /// is not logged in to a server.
    pub(super) network: bool,
    pub(super) offline: Option<Offline>,
}

impl std::fmt::Debug for Job {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Job")
            .field("to", &self.to)
            .field("what", &self.what)
            .finish_non_exhaustive()
    }
}

impl Job {
    /// Work on the worker's own handle of the vault.
    pub fn new<T, F>(to: To, what: &'static str, run: F) -> Self
    where
        T: Any + Send,
        F: for<'a> FnOnce(&'a mut Session) -> BoxFuture<'a, Result<T, Error>> + Send + 'static,
    {
        Self {
            to,
            what,
            run: Box::new(move |v| Box::pin(async move { run(v).await.map(Answer::new) })),
            fresh: false,
            writes: false,
            latest_only: false,
            network: false,
            offline: None,
        }
    }

    /// Network work: runs off the worker (it keeps serving meanwhile) and
    /// `Esc` cancels it. Without a server session it fails ("logged out")
    /// unless [`Job::offline`] says what to answer.
    pub fn network<T, F>(to: To, what: &'static str, run: F) -> Self
    where
        T: Any + Send,
        F: for<'a> FnOnce(&'a mut Session) -> BoxFuture<'a, Result<T, Error>> + Send + 'static,
    {
        Self {
            network: true,
            ..Self::new(to, what, run)
        }
    }

    /// The answer when this device is not logged in.
    #[must_use]
    pub fn offline<T: Any + Send>(mut self, answer: impl FnOnce() -> T + Send + 'static) -> Self {
        self.offline = Some(Box::new(move || Ok(Answer::new(answer()))));
        self
    }

    /// Looks for other writers' changes before running.
    #[must_use]
    pub fn fresh(mut self) -> Self {
        self.fresh = true;
        self
    }

    /// A write: the list and the sync follow.
    #[must_use]
    pub fn writes(mut self) -> Self {
        self.writes = true;
        self
    }

    /// Only the newest of those queued runs (typing fast queues searches).
    #[must_use]
    pub fn latest_only(mut self) -> Self {
        self.latest_only = true;
        self
    }
}
