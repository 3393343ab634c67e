//! The agent process, `openk __agent`, started by `openk unlock`.
//!
//! Start-up, in order: leave the terminal's session; read the password (and
//! an optional Secret Key) from standard input (a [`Secrets`] frame, read
//! unbuffered into wiped memory); run the KDF
//! and open the vault with the result, so a wrong password fails here and
//! `openk unlock` can say so (exit 3); lock its memory; bind the socket under
//! a temporary name, make it 0600 and rename it into place (so the socket
//! path only ever names a listening agent); write one [`Ready`] line to
//! standard output; point stdin and stdout at /dev/null.
//!
//! Then one task serves the socket: a `select!` over `accept`, the idle
//! deadline, SIGTERM/SIGINT/SIGHUP and a periodic check that the socket
//! path is still ours (someone removed it, or a second agent took the
//! name: this one is unreachable and quits). Connections are handled one at
//! a time with a timeout, so memory stays bounded. Every exit path drops the
//! key (which wipes it) and removes the socket if it is still ours.
//!
//! Logs go to the rolling file in the state dir, never a key or password.

use std::io::Write;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};
use tokio::signal::unix::{SignalKind, signal};
use tokio::time::Instant;
use zeroize::Zeroizing;

use super::protocol::{AgentInfo, MAX_LINE, Op, Ready, Request, Response, Secrets, VERSION};
use crate::cli::errors;
use crate::engine::Key;
use crate::engine::{self, ExposeSecret, Session};

/// How long one client may take to send its request.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(2);
/// How often the agent checks that its socket is still there and its own.
const SOCKET_CHECK: Duration = Duration::from_secs(2);

/// How the agent was started.
#[derive(Debug, Clone)]
pub struct Options {
    pub vault: PathBuf,
    /// Lock after this long without a `keys` request; `None` never.
    pub idle_timeout: Option<Duration>,
    pub verbosity: u8,
}

/// Runs the agent process to its end and returns its exit code. Must be
/// called outside any tokio runtime (it builds its own single-threaded one,
/// which keeps the process small enough to lock in memory).
#[must_use]
pub fn main(opts: &Options) -> i32 {
    // Out of the terminal's session: closing it (SIGHUP) or Ctrl-C in it no
    // longer reaches the agent.
    if let Err(e) = rustix::process::setsid() {
        eprintln!("warning: setsid: {e}");
    }
    let _log = engine::files::state_dir().and_then(|d| {
        crate::logging::init_file(&d, opts.verbosity)
            .map_err(|e| eprintln!("warning: cannot log to {}: {e}", d.display()))
            .ok()
    });
    let secrets = match read_secrets() {
        Ok(s) => s,
        Err(message) => return fail(1, &message),
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .thread_keep_alive(Duration::from_millis(100))
        .build()
    {
        Ok(rt) => rt,
        Err(e) => return fail(1, &format!("cannot start the runtime: {e}")),
    };
    runtime.block_on(run(opts, secrets))
}

/// Reports a start-up failure to `openk unlock` and returns the exit code.
fn fail(code: i32, message: &str) -> i32 {
    tracing::warn!(code, "agent not started: {message}");
    answer_parent(&Ready {
        ok: false,
        already: false,
        agent: None,
        code,
        message: Some(message.to_owned()),
    });
    code
}

fn answer_parent(ready: &Ready) {
    let mut line = serde_json::to_vec(ready).unwrap_or_default();
    line.push(b'\n');
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(&line).and_then(|()| out.flush());
}

/// Reads the secrets with plain `read(2)` calls on fd 0 into one wiped
/// buffer: never through `std::io::stdin()`, whose buffer would keep a copy
/// of the password for the agent's whole life.
fn read_secrets() -> Result<Secrets, String> {
    let bytes = crate::secure_read::to_end(std::io::stdin(), MAX_LINE)
        .map_err(|e| format!("cannot read the password from openk unlock: {e}"))?;
    Secrets::decode(&bytes).ok_or_else(|| "openk unlock sent no password".to_owned())
}

/// After the ready line: nothing may keep the parent's pipes open.
fn detach_stdio() {
    match std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/null")
    {
        Ok(null) => {
            let _ = rustix::stdio::dup2_stdin(&null);
            let _ = rustix::stdio::dup2_stdout(&null);
            let _ = rustix::stdio::dup2_stderr(&null);
        }
        Err(e) => tracing::warn!(error = %e, "cannot open /dev/null"),
    }
}

/// Keeps the agent's pages (and so its key) out of swap where the OS lets
/// us: raise the soft `RLIMIT_MEMLOCK` to the hard one, then lock all
/// current and future pages. Without the privilege or a large enough limit
/// this fails; that is logged, not fatal (the key is then as safe as in any
/// other process of the user, and swap may be encrypted anyway).
fn lock_memory() {
    #[cfg(any(target_os = "linux", target_os = "freebsd"))]
    {
        use rustix::mm::{MlockAllFlags, mlockall};
        use rustix::process::{Resource, getrlimit, setrlimit};
        let limit = getrlimit(Resource::Memlock);
        let _ = setrlimit(
            Resource::Memlock,
            rustix::process::Rlimit {
                current: limit.maximum,
                maximum: limit.maximum,
            },
        );
        match mlockall(MlockAllFlags::CURRENT | MlockAllFlags::FUTURE) {
            Ok(()) => tracing::info!("agent memory locked"),
            Err(e) => tracing::warn!(
                error = %e,
                memlock_limit = ?limit.maximum,
                "cannot lock the agent's memory (RLIMIT_MEMLOCK too small, or no CAP_IPC_LOCK); its key could reach swap"
            ),
        }
    }
}

/// Unix milliseconds now.
fn now_millis() -> i64 {
    engine::model::now_millis()
}

struct Agent {
    info_vault: PathBuf,
    socket: PathBuf,
    /// (device, inode) of our socket, to notice it being removed or replaced.
    socket_id: (u64, u64),
    key: Key,
    idle: Option<Duration>,
    deadline: Option<Instant>,
}

impl Agent {
    fn info(&self) -> AgentInfo {
        AgentInfo {
            pid: std::process::id(),
            vault: self.info_vault.clone(),
            locks_at: self.deadline.map(|d| {
                let left = d.saturating_duration_since(Instant::now());
                now_millis() + i64::try_from(left.as_millis()).unwrap_or(i64::MAX / 2)
            }),
        }
    }

    fn touch(&mut self) {
        self.deadline = self.idle.map(|d| Instant::now() + d);
    }

    fn socket_is_ours(&self) -> bool {
        std::fs::symlink_metadata(&self.socket).is_ok_and(|m| (m.dev(), m.ino()) == self.socket_id)
    }

    /// Removes the socket file if it is still the one we bound.
    fn remove_socket(&self) {
        if self.socket_is_ours() {
            let _ = std::fs::remove_file(&self.socket);
        }
    }
}

async fn run(opts: &Options, secrets: Secrets) -> i32 {
    let (agent, listener) = match start(opts, secrets).await {
        Ok(Started::Serving(agent, listener)) => (agent, listener),
        Ok(Started::Already(info)) => {
            answer_parent(&Ready {
                ok: true,
                already: true,
                agent: Some(info),
                code: 0,
                message: None,
            });
            return 0;
        }
        Err((code, message)) => return fail(code, &message),
    };
    tracing::info!(
        pid = std::process::id(),
        socket = %agent.socket.display(),
        idle_timeout_secs = agent.idle.map(|d| d.as_secs()),
        "agent serving"
    );
    answer_parent(&Ready {
        ok: true,
        already: false,
        agent: Some(agent.info()),
        code: 0,
        message: None,
    });
    detach_stdio();
    serve(agent, listener).await;
    0
}

enum Started {
    Serving(Agent, UnixListener),
    Already(AgentInfo),
}

async fn start(opts: &Options, secrets: Secrets) -> Result<Started, (i32, String)> {
    let failed = |e: engine::Error| (errors::exit_code(&e), errors::message(&e));
    let io_failed = |what: &str, e: std::io::Error| (1, format!("{what}: {e}"));
    let vault = std::fs::canonicalize(&opts.vault)
        .map_err(|_| failed(engine::Error::NoVault(opts.vault.clone())))?;
    let password = secrets.password.clone();
    let fallback = secrets.secret_key.as_ref().map(ExposeSecret::expose_secret);
    let mut key = Session::derive_password_key(&vault, password.clone())
        .await
        .map_err(failed)?;
    // The same check every command will make with this key.
    match Session::unlock_with_password_key(&vault, &key, fallback).await {
        Ok(v) => v.close().await,
        Err(engine::Error::WrongPassword) => {
            // A full unlock says what it is (a registered vault: wrong, or
            // changed on another device, which `openk login --server` adopts).
            Session::unlock(&vault, password.clone(), fallback)
                .await
                .map_err(failed)?
                .close()
                .await;
            key = Session::derive_password_key(&vault, password)
                .await
                .map_err(failed)?;
        }
        Err(e) => return Err(failed(e)),
    }
    drop(secrets);
    let socket =
        super::socket_path(&vault).map_err(|e| io_failed("cannot name the agent socket", e))?;
    let dir = socket.parent().unwrap_or(Path::new("/")).to_path_buf();
    super::ensure_private_dir(&dir).map_err(|e| io_failed("cannot use the agent directory", e))?;
    if let Ok(Some(r)) = super::client::request_at(&socket, Op::Status).await
        && let Some(info) = r.agent
    {
        return Ok(Started::Already(info));
    }
    lock_memory();
    // Bind under a temporary name and rename: the socket path never names a
    // socket that is not yet listening, or not yet 0600.
    let tmp = dir.join(format!(".agent-{}.tmp", std::process::id()));
    let _ = std::fs::remove_file(&tmp);
    let listener =
        UnixListener::bind(&tmp).map_err(|e| io_failed("cannot create the agent socket", e))?;
    let placed = std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o600))
        .and_then(|()| std::fs::rename(&tmp, &socket))
        .and_then(|()| std::fs::symlink_metadata(&socket));
    let meta = match placed {
        Ok(m) => m,
        Err(e) => {
            let _ = std::fs::remove_file(&tmp);
            return Err(io_failed("cannot create the agent socket", e));
        }
    };
    let mut agent = Agent {
        info_vault: vault,
        socket,
        socket_id: (meta.dev(), meta.ino()),
        key,
        idle: opts.idle_timeout,
        deadline: None,
    };
    agent.touch();
    Ok(Started::Serving(agent, listener))
}

/// Idle deadline as a future (never, without one).
async fn until(deadline: Option<Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}

async fn serve(mut agent: Agent, listener: UnixListener) {
    let (Ok(mut term), Ok(mut int), Ok(mut hup)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
        signal(SignalKind::hangup()),
    ) else {
        tracing::warn!("cannot install signal handlers; locking");
        agent.remove_socket();
        return;
    };
    let mut check = tokio::time::interval(SOCKET_CHECK);
    // Key-protocol connections (`super::keys`) run as tasks of their own;
    // they end with the agent (dropping the set aborts them).
    let mut key_conns = tokio::task::JoinSet::new();
    let (touched, mut touches) = tokio::sync::mpsc::unbounded_channel::<()>();
    let why = loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    if handle(&mut agent, stream, &mut key_conns, &touched).await {
                        break "locked by request";
                    }
                }
                Err(e) => tracing::warn!(error = %e, "accept failed"),
            },
            Some(()) = touches.recv() => agent.touch(),
            Some(_) = key_conns.join_next(), if !key_conns.is_empty() => {}
            () = until(agent.deadline) => break "idle timeout",
            _ = check.tick() => if !agent.socket_is_ours() {
                break "its socket was removed or replaced";
            },
            _ = term.recv() => break "SIGTERM",
            _ = int.recv() => break "SIGINT",
            _ = hup.recv() => break "SIGHUP",
        }
    };
    agent.remove_socket();
    drop(listener);
    key_conns.abort_all();
    while key_conns.join_next().await.is_some() {}
    tracing::info!(why, "agent locked: keys wiped");
    // Dropping `agent` wipes the key.
}

/// Serves one connection; true when the agent must lock. A connection of
/// the key protocol goes on in a task of `key_conns`.
async fn handle(
    agent: &mut Agent,
    stream: UnixStream,
    key_conns: &mut tokio::task::JoinSet<()>,
    touched: &tokio::sync::mpsc::UnboundedSender<()>,
) -> bool {
    match stream.peer_cred() {
        Ok(cred) => {
            if let Err(e) = super::check_peer_uid(cred.uid(), super::own_uid()) {
                tracing::warn!(pid = ?cred.pid(), "{e}");
                return false;
            }
        }
        Err(e) => {
            tracing::warn!(error = %e, "cannot check a peer's uid; refused");
            return false;
        }
    }
    let mut reader = BufReader::new(stream);
    let mut line = Vec::with_capacity(64);
    let read = tokio::time::timeout(
        REQUEST_TIMEOUT,
        (&mut reader)
            .take(super::keys::MAX_KEY_LINE as u64)
            .read_until(b'\n', &mut line),
    )
    .await;
    if !matches!(read, Ok(Ok(n)) if n > 0) {
        tracing::debug!("a client sent no request");
        return false;
    }
    if super::keys::is_key_request(&line) {
        if key_conns.len() >= super::keys::MAX_CONNECTIONS {
            let mut stream = reader.into_inner();
            let _ = stream
                .write_all(
                    b"{\"v\":1,\"ok\":false,\"code\":\"busy\",\"error\":\"too many key connections; try again\"}\n",
                )
                .await;
            return false;
        }
        let ctx = super::keys::Context {
            vault: agent.info_vault.clone(),
            password_key: agent.key.duplicate(),
            touched: touched.clone(),
        };
        key_conns.spawn(super::keys::serve(ctx, reader, line));
        return false;
    }
    let (response, lock) = answer(agent, &line);
    let mut out = Zeroizing::new(serde_json::to_vec(&response).unwrap_or_default());
    out.push(b'\n');
    drop(response);
    let mut stream = reader.into_inner();
    let _ = tokio::time::timeout(REQUEST_TIMEOUT, async {
        stream.write_all(&out).await?;
        stream.shutdown().await
    })
    .await;
    lock
}

/// The answer to one request line, and whether to lock afterwards.
fn answer(agent: &mut Agent, line: &[u8]) -> (Response, bool) {
    let request: Request = match serde_json::from_slice(line) {
        Ok(r) => r,
        Err(_) => {
            // Lock must work across versions, even if the shape changed.
            if let Ok(v) = serde_json::from_slice::<serde_json::Value>(line)
                && v.get("op").and_then(|o| o.as_str()) == Some("lock")
            {
                return lock_response(agent);
            }
            return (Response::error("unknown request"), false);
        }
    };
    if request.op == Op::Lock {
        return lock_response(agent);
    }
    if request.v != VERSION {
        return (
            Response::error(format!("this agent speaks protocol version {VERSION}")),
            false,
        );
    }
    match request.op {
        Op::Status => (Response::ok(agent.info()), false),
        Op::Keys => {
            agent.touch();
            tracing::debug!("handed out the key");
            let mut r = Response::ok(agent.info());
            r.password_key = Some(super::client::encode_key(&agent.key));
            (r, false)
        }
        Op::Lock => lock_response(agent),
    }
}

fn lock_response(agent: &mut Agent) -> (Response, bool) {
    // The socket goes first, so a command run right after `openk lock`
    // finds no agent.
    agent.remove_socket();
    let mut r = Response::ok(agent.info());
    r.locked = true;
    (r, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn agent(dir: &Path) -> Agent {
        let socket = dir.join("s.sock");
        std::fs::write(&socket, b"").expect("placeholder");
        let meta = std::fs::metadata(&socket).expect("stat");
        Agent {
            info_vault: dir.to_path_buf(),
            socket,
            socket_id: (meta.dev(), meta.ino()),
            key: Key::random(),
            idle: Some(Duration::from_secs(60)),
            deadline: None,
        }
    }

    #[tokio::test]
    async fn status_does_not_count_as_use_but_keys_do() {
        let tmp = tempfile::tempdir().expect("tmp");
        let mut a = agent(tmp.path());
        let (r, lock) = answer(&mut a, br#"{"v":1,"op":"status"}"#);
        assert!(r.ok && !lock && r.password_key.is_none());
        assert!(a.deadline.is_none(), "status leaves the timer alone");
        let (r, lock) = answer(&mut a, br#"{"v":1,"op":"keys"}"#);
        assert!(r.ok && !lock && r.password_key.is_some());
        assert!(a.deadline.is_some(), "keys re-arm the timer");
        assert!(r.agent.and_then(|i| i.locks_at).is_some());
    }

    #[tokio::test]
    async fn other_versions_get_no_key_but_can_lock() {
        let tmp = tempfile::tempdir().expect("tmp");
        let mut a = agent(tmp.path());
        let (r, lock) = answer(&mut a, br#"{"v":2,"op":"keys"}"#);
        assert!(!r.ok && !lock && r.password_key.is_none());
        assert!(r.error.expect("error").contains("version 1"));
        let (r, lock) = answer(&mut a, br#"{"v":9,"op":"lock","extra":true}"#);
        assert!(r.locked && lock);
        assert!(!a.socket.exists(), "lock removes the socket");
        let (r, lock) = answer(&mut a, b"garbage");
        assert!(!r.ok && !lock);
    }
}
