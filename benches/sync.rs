//! Sync benchmark: first sync of a new device, a sync with nothing new, an
//! edit on one device becoming visible on another connected device, and
//! the bytes a one-item change costs, for vaults of 1k, 10k and 100k items,
//! measured through the engine API against a local server.
//!
//! ```text
//! cargo bench --bench sync                      # 1000 10000 100000
//! cargo bench --bench sync -- 100000            # other sizes (10k, 1m work too)
//! cargo bench --bench sync -- --in-process 1k   # server inside this process
//! ```
//!
//! The server is `openk_server::build_state` + `serve_listener` on a SQLite
//! file database in a temporary directory (as `openk serve` runs it). By
//! default it runs in a child process (this binary re-executed with
//! `--child-server`), so that its CPU time is measured apart from the
//! client's; `--in-process` runs it in this process on its own runtime (the
//! server's CPU then counts as the client's, and is not shown separately).
//!
//! Per size: device A is created (`Session::init`, `register`), adds N
//! generated logins with `add_many` and pushes them (the initial push).
//! Device B logs in (`engine::remote::login`) through a byte-counting TCP
//! proxy and runs its first sync. Then:
//! - B syncs again and again with nothing new (latency, bytes);
//! - A changes one item and pushes it; B's next sync is timed and its bytes
//!   counted (they should not grow with the vault);
//! - B holds `Session::events()` open in a task of its own and syncs when
//!   `Session::event_needs_sync` says so, while A edits one item at a time:
//!   the time from just before A's `update` until B's sync has the new value.
//!
//! The parent prints a table per size and the budgets (DESIGN §9) and writes
//! the figures to `<target>/bench-sync.json`.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::io::{BufRead as _, BufReader, Read as _};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use openk::engine::model::{Field, FieldKind, label};
use openk::engine::sync::{Progress, SyncOptions, SyncReport};
use openk::engine::{ItemDraft, ItemPatch, Session, remote};
use rand::SeedableRng;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use serde_json::{Value as Json, json};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::sync::{mpsc, oneshot};
use uuid::Uuid;

#[path = "common/logins.rs"]
mod logins;
use logins::{PASSWORD_ALPHABET, login_draft, random_string};
#[path = "common/harness.rs"]
mod harness;
use harness::{password, sizes, target_dir};
#[path = "common/stats.rs"]
mod stats;
use stats::{TINY_KDF, loadavg, ms, num, percentile, verdict};

/// Drafts per `add_many` call (as in benches/engine.rs).
const BATCH: usize = 5_000;
const EMAIL: &str = "bench@example.org";
/// Syncs with nothing new, after one unmeasured warm-up.
const NOCHANGE_RUNS: usize = 100;
/// One-item changes pulled by B with the bytes counted.
const CHANGE_RUNS: usize = 7;
/// Edits made on A and awaited on B.
const EDITS: usize = 30;
/// Longest wait for B to show an edit before the scenario is abandoned.
const EDIT_TIMEOUT: Duration = Duration::from_secs(30);

/// Budgets (DESIGN §9, at 100k items).
const BUDGET_FIRST_SYNC_MS: f64 = 15_000.0;
const BUDGET_NOCHANGE_MS: f64 = 20.0;
const BUDGET_EDIT_VISIBLE_MS: f64 = 500.0;
const BUDGET_SIZE: usize = 100_000;

/// Thread name of the proxy's runtime: its CPU time is kept apart.
const PROXY_THREAD: &str = "bench-proxy";
const LISTEN_PREFIX: &str = "LISTEN ";

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("--child-server") {
        let db = args.get(1).expect("child: database argument");
        child_server(db);
        return;
    }
    parent(&args);
}

/// Signed milliseconds from `a` to `b`.
fn ms_between(a: Instant, b: Instant) -> f64 {
    if b >= a { ms(b - a) } else { -ms(a - b) }
}

fn mb(bytes: u64) -> f64 {
    bytes as f64 / 1_048_576.0
}

/// A line of /proc/<pid>/status (`VmHWM`, `VmRSS`), in MiB (reported as MB).
fn proc_status_mb(pid: &str, key: &str) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix(':'))
        .and_then(|rest| rest.split_whitespace().next()?.parse::<f64>().ok())
        .map_or(f64::NAN, |kib| kib / 1024.0)
}

/// Resets this process's `VmHWM` to its current RSS (Linux ≥ 4.0).
fn reset_peak_rss() -> bool {
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
}

fn stats(samples: &[f64]) -> Json {
    let mut v = samples.to_vec();
    v.sort_by(f64::total_cmp);
    json!({
        "n": v.len(),
        "min": v.first().copied().unwrap_or(f64::NAN),
        "p50": percentile(&v, 50.0),
        "p90": percentile(&v, 90.0),
        "p99": percentile(&v, 99.0),
        "max": v.last().copied().unwrap_or(f64::NAN),
        "mean": v.iter().sum::<f64>() / v.len().max(1) as f64,
    })
}

fn median_u64(v: &[u64]) -> u64 {
    let mut v = v.to_vec();
    v.sort_unstable();
    v.get(v.len().saturating_sub(1) / 2).copied().unwrap_or(0)
}

// ---------------------------------------------------------------------------
// Generated logins (the same generator as benches/engine.rs)

fn set_password(value: &str) -> ItemPatch {
    ItemPatch {
        set_fields: vec![Field::new(label::PASSWORD, value, FieldKind::Secret)],
        ..ItemPatch::default()
    }
}

async fn password_of(v: &Session, id: Uuid) -> Option<String> {
    v.item(id)
        .await
        .ok()?
        .field(label::PASSWORD)
        .map(|f| f.value.expose().to_owned())
}

// ---------------------------------------------------------------------------
// CPU time
//
// The machine may be busy with other work, which inflates wall-clock
// latencies but not CPU time. Every measurement records, from
// /proc/<pid>/task/*/schedstat (nanoseconds): the CPU time of this process
// (the client devices: tokio, rayon, the SQLite workers) without the
// proxy's threads, the time those threads spent runnable but waiting for a
// CPU, the proxy's CPU time, and the server process's CPU time. Deltas are
// taken per thread, so a thread that exits meanwhile (an idle blocking-pool
// thread) is left out instead of making the sum go backwards.

#[derive(Debug, Clone, Default)]
struct Cpu {
    /// tid → (run ns, wait ns, is a proxy thread).
    client: HashMap<u32, (u64, u64, bool)>,
    /// tid → run ns.
    server: HashMap<u32, u64>,
}

fn schedstat(task: &Path) -> (u64, u64) {
    let s = std::fs::read_to_string(task.join("schedstat")).unwrap_or_default();
    let mut it = s.split_whitespace().map(|x| x.parse::<u64>().unwrap_or(0));
    (it.next().unwrap_or(0), it.next().unwrap_or(0))
}

fn tasks(pid: &str) -> Vec<(u32, PathBuf)> {
    std::fs::read_dir(format!("/proc/{pid}/task"))
        .map(|d| {
            d.flatten()
                .filter_map(|t| {
                    let tid = t.file_name().to_str()?.parse().ok()?;
                    Some((tid, t.path()))
                })
                .collect()
        })
        .unwrap_or_default()
}

/// The kernel brings a thread's runtime up to date at a context switch or a
/// tick; yielding first makes the calling thread's figure current. Other
/// threads are normally asleep (and so current) between measurements.
fn cpu_now(server_pid: Option<u32>) -> Cpu {
    std::thread::yield_now();
    let mut c = Cpu::default();
    for (tid, path) in tasks("self") {
        let (run, wait) = schedstat(&path);
        let comm = std::fs::read_to_string(path.join("comm")).unwrap_or_default();
        c.client
            .insert(tid, (run, wait, comm.starts_with(PROXY_THREAD)));
    }
    if let Some(pid) = server_pid {
        for (tid, path) in tasks(&pid.to_string()) {
            c.server.insert(tid, schedstat(&path).0);
        }
    }
    c
}

/// One measurement, in ms: wall, client CPU (without the proxy), client
/// run-queue wait, proxy CPU, server CPU (NaN when the server runs in this
/// process).
#[derive(Debug, Clone, Copy)]
struct Meas {
    wall: f64,
    client: f64,
    wait: f64,
    proxy: f64,
    server: f64,
}

impl Meas {
    /// Client and server CPU together (the server's when it is separate).
    fn cpu_total(&self) -> f64 {
        if self.server.is_nan() {
            self.client
        } else {
            self.client + self.server
        }
    }

    fn json(&self) -> Json {
        json!({
            "wall_ms": self.wall,
            "client_cpu_ms": self.client,
            "client_wait_ms": self.wait,
            "proxy_cpu_ms": self.proxy,
            "server_cpu_ms": self.server,
            "cpu_ms": self.cpu_total(),
        })
    }
}

fn cpu_delta(a: &Cpu, b: &Cpu, server_pid: Option<u32>, overhead: f64) -> (f64, f64, f64, f64) {
    let (mut client, mut wait, mut proxy, mut server) = (0u64, 0u64, 0u64, 0u64);
    for (tid, &(run, w, is_proxy)) in &b.client {
        let (run0, w0, _) = a.client.get(tid).copied().unwrap_or((0, 0, false));
        if is_proxy {
            proxy += run.saturating_sub(run0);
        } else {
            client += run.saturating_sub(run0);
            wait += w.saturating_sub(w0);
        }
    }
    for (tid, &run) in &b.server {
        server += run.saturating_sub(a.server.get(tid).copied().unwrap_or(0));
    }
    let ms = |ns: u64| ns as f64 / 1e6;
    (
        (ms(client) - overhead).max(0.0),
        ms(wait),
        ms(proxy),
        if server_pid.is_some() {
            ms(server)
        } else {
            f64::NAN
        },
    )
}

/// Reads the clocks at the start of a measurement.
#[derive(Clone, Copy)]
struct Clock {
    server_pid: Option<u32>,
    /// CPU time reading the counters costs (see [`Clock::calibrate`]).
    overhead: f64,
}

struct Probe {
    cpu: Cpu,
    t: Instant,
    clock: Clock,
}

impl Clock {
    fn calibrate(server_pid: Option<u32>) -> Self {
        let mut c = Self {
            server_pid,
            overhead: 0.0,
        };
        let mut v: Vec<f64> = (0..31).map(|_| c.start().stop().client).collect();
        v.sort_by(f64::total_cmp);
        c.overhead = percentile(&v, 50.0);
        c
    }

    fn start(&self) -> Probe {
        let cpu = cpu_now(self.server_pid);
        Probe {
            cpu,
            t: Instant::now(),
            clock: *self,
        }
    }
}

impl Probe {
    fn stop(&self) -> Meas {
        let wall = ms(self.t.elapsed());
        self.stop_at(wall)
    }

    /// With the wall time measured elsewhere (the CPU counters are read now).
    fn stop_at(&self, wall: f64) -> Meas {
        let c = cpu_now(self.clock.server_pid);
        let (client, wait, proxy, server) =
            cpu_delta(&self.cpu, &c, self.clock.server_pid, self.clock.overhead);
        Meas {
            wall,
            client,
            wait,
            proxy,
            server,
        }
    }
}

#[derive(Debug, Default)]
struct Series {
    wall: Vec<f64>,
    client: Vec<f64>,
    server: Vec<f64>,
    cpu: Vec<f64>,
}

impl Series {
    fn push(&mut self, m: Meas) {
        self.wall.push(m.wall);
        self.client.push(m.client);
        self.server.push(m.server);
        self.cpu.push(m.cpu_total());
    }

    fn json(&self) -> Json {
        json!({
            "wall_ms": stats(&self.wall),
            "client_cpu_ms": stats(&self.client),
            "server_cpu_ms": stats(&self.server),
            "cpu_ms": stats(&self.cpu),
        })
    }
}

// ---------------------------------------------------------------------------
// The server: a child process (default) or a runtime of this process

/// Child: serves `db` on a random port, prints the address, and stops when
/// its stdin closes.
fn child_server(db: &str) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    rt.block_on(async {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("local addr");
        let state = openk_server::build_state(server_settings(db))
            .await
            .expect("server state");
        let (stop, stopped) = oneshot::channel::<()>();
        std::thread::spawn(move || {
            let mut sink = Vec::new();
            let _ = std::io::stdin().read_to_end(&mut sink);
            let _ = stop.send(());
        });
        println!("{LISTEN_PREFIX}{addr}");
        openk_server::serve_listener(state, listener, async {
            let _ = stopped.await;
        })
        .await
        .expect("serve");
    });
}

fn server_settings(db: &str) -> openk_server::Settings {
    let mut settings = openk_server::Settings::for_tests();
    settings.database = db.to_owned();
    settings.auth_rate_limit = 1_000_000;
    settings.login_failure_limit = 1_000_000;
    // A benchmark is one session making many requests.
    settings.data_rate_limit = 0;
    settings
}

enum Server {
    Child {
        child: Child,
        stdin: Option<ChildStdin>,
    },
    InProcess {
        runtime: Option<tokio::runtime::Runtime>,
        stop: Option<oneshot::Sender<()>>,
    },
}

impl Server {
    fn start(exe: &Path, db: &str, in_process: bool) -> (Self, SocketAddr) {
        if in_process {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .thread_name("bench-server")
                .enable_all()
                .build()
                .expect("server runtime");
            let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
            let addr = listener.local_addr().expect("local addr");
            let state = runtime
                .block_on(openk_server::build_state(server_settings(db)))
                .expect("server state");
            let (stop, stopped) = oneshot::channel::<()>();
            runtime.spawn(async move {
                let _ = openk_server::serve_listener(state, listener, async {
                    let _ = stopped.await;
                })
                .await;
            });
            let s = Self::InProcess {
                runtime: Some(runtime),
                stop: Some(stop),
            };
            return (s, addr);
        }
        let mut child = Command::new(exe)
            .arg("--child-server")
            .arg(db)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start the server child process");
        let stdin = child.stdin.take();
        let stdout = child.stdout.take().expect("child stdout");
        let mut line = String::new();
        BufReader::new(stdout)
            .read_line(&mut line)
            .expect("read the server's address");
        let addr: SocketAddr = line
            .trim()
            .strip_prefix(LISTEN_PREFIX)
            .and_then(|a| a.parse().ok())
            .unwrap_or_else(|| panic!("the server child printed {line:?}"));
        (Self::Child { child, stdin }, addr)
    }

    fn pid(&self) -> Option<u32> {
        match self {
            Self::Child { child, .. } => Some(child.id()),
            Self::InProcess { .. } => None,
        }
    }

    fn vmhwm_mb(&self) -> f64 {
        self.pid()
            .map_or(f64::NAN, |p| proc_status_mb(&p.to_string(), "VmHWM"))
    }

    fn stop(mut self) {
        match &mut self {
            Self::Child { child, stdin } => {
                drop(stdin.take());
                let deadline = Instant::now() + Duration::from_secs(40);
                loop {
                    match child.try_wait() {
                        Ok(Some(_)) | Err(_) => break,
                        Ok(None) if Instant::now() > deadline => {
                            let _ = child.kill();
                            let _ = child.wait();
                            break;
                        }
                        Ok(None) => std::thread::sleep(Duration::from_millis(20)),
                    }
                }
            }
            Self::InProcess { runtime, stop } => {
                if let Some(s) = stop.take() {
                    let _ = s.send(());
                }
                if let Some(rt) = runtime.take() {
                    rt.shutdown_timeout(Duration::from_secs(5));
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------
// A byte-counting TCP proxy between device B and the server

#[derive(Debug, Default)]
struct Counters {
    /// Client to server.
    up: AtomicU64,
    /// Server to client.
    down: AtomicU64,
    /// HTTP/1.1 request lines seen going up.
    requests: AtomicU64,
    connections: AtomicU64,
}

#[derive(Debug, Clone, Copy, Default)]
struct Bytes {
    up: u64,
    down: u64,
    requests: u64,
    connections: u64,
}

impl Bytes {
    fn total(&self) -> u64 {
        self.up + self.down
    }

    fn json(&self) -> Json {
        json!({
            "up": self.up,
            "down": self.down,
            "total": self.total(),
            "requests": self.requests,
            "new_connections": self.connections,
        })
    }
}

impl Counters {
    fn take(&self) -> Bytes {
        Bytes {
            up: self.up.swap(0, Ordering::SeqCst),
            down: self.down.swap(0, Ordering::SeqCst),
            requests: self.requests.swap(0, Ordering::SeqCst),
            connections: self.connections.swap(0, Ordering::SeqCst),
        }
    }
}

struct Proxy {
    url: String,
    counters: Arc<Counters>,
    stop: Option<oneshot::Sender<()>>,
}

impl Proxy {
    async fn start(rt: &tokio::runtime::Handle, upstream: SocketAddr) -> Self {
        let listener = rt
            .spawn(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .await
            .expect("proxy task")
            .expect("proxy bind");
        let url = format!("http://{}", listener.local_addr().expect("proxy addr"));
        let counters = Arc::new(Counters::default());
        let (stop, mut stopped) = oneshot::channel::<()>();
        let c = Arc::clone(&counters);
        rt.spawn(async move {
            loop {
                tokio::select! {
                    _ = &mut stopped => break,
                    accepted = listener.accept() => {
                        let Ok((down, _)) = accepted else { continue };
                        c.connections.fetch_add(1, Ordering::SeqCst);
                        let c = Arc::clone(&c);
                        tokio::spawn(async move {
                            let Ok(up) = tokio::net::TcpStream::connect(upstream).await else {
                                return;
                            };
                            let _ = down.set_nodelay(true);
                            let _ = up.set_nodelay(true);
                            let (dr, dw) = down.into_split();
                            let (ur, uw) = up.into_split();
                            let a = tokio::spawn(pump(dr, uw, Arc::clone(&c), true));
                            pump(ur, dw, c, false).await;
                            let _ = a.await;
                        });
                    }
                }
            }
        });
        Self {
            url,
            counters,
            stop: Some(stop),
        }
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
    }
}

/// Copies one direction of a connection, counting bytes (and, going up,
/// HTTP/1.1 request lines).
async fn pump(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    c: Arc<Counters>,
    up: bool,
) {
    const MARK: &[u8] = b" HTTP/1.1\r\n";
    let mut buf = vec![0u8; 64 * 1024];
    let mut tail: Vec<u8> = Vec::new();
    loop {
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        if up {
            c.up.fetch_add(n as u64, Ordering::SeqCst);
            tail.extend_from_slice(&buf[..n]);
            let found = tail.windows(MARK.len()).filter(|w| *w == MARK).count();
            c.requests.fetch_add(found as u64, Ordering::SeqCst);
            let keep = tail.len().min(MARK.len() - 1);
            tail.drain(..tail.len() - keep);
        } else {
            c.down.fetch_add(n as u64, Ordering::SeqCst);
        }
        if to.write_all(&buf[..n]).await.is_err() {
            break;
        }
    }
    let _ = to.shutdown().await;
}

// ---------------------------------------------------------------------------
// One size

/// Sync progress callbacks with the time and CPU counters at each.
type Marks = Arc<Mutex<Vec<(Instant, Cpu, Progress)>>>;

async fn sync_marked(v: &mut Session, clock: Clock, marks: &Marks) -> SyncReport {
    let m = Arc::clone(marks);
    let progress = move |p: Progress| {
        let cpu = cpu_now(clock.server_pid);
        if let Ok(mut v) = m.lock() {
            v.push((Instant::now(), cpu, p));
        }
    };
    let opts = SyncOptions {
        progress: Some(&progress),
        ..SyncOptions::default()
    };
    v.sync(&opts).await.expect("sync")
}

fn pulled(r: &SyncReport) -> u64 {
    r.vaults.iter().map(|v| v.pulled).sum()
}

fn pushed(r: &SyncReport) -> u64 {
    r.vaults.iter().map(|v| v.pushed).sum()
}

/// Splits a sync at the last `Pulling` report: (pull phase, the rest).
fn split_at_pull(probe: &Probe, marks: &Marks, total: Meas) -> Json {
    let marks = marks.lock().map(|m| m.clone()).unwrap_or_default();
    let Some((t, cpu, _)) = marks
        .iter()
        .rev()
        .find(|(_, _, p)| matches!(p, Progress::Pulling { .. }))
    else {
        return Json::Null;
    };
    let clock = probe.clock;
    let (client, wait, proxy, server) = cpu_delta(&probe.cpu, cpu, clock.server_pid, 0.0);
    let pull = Meas {
        wall: ms_between(probe.t, *t),
        client,
        wait,
        proxy,
        server,
    };
    let rest = Meas {
        wall: total.wall - pull.wall,
        client: total.client - pull.client,
        wait: total.wait - pull.wait,
        proxy: total.proxy - pull.proxy,
        server: total.server - pull.server,
    };
    let pages = marks
        .iter()
        .filter(|(_, _, p)| matches!(p, Progress::Pulling { .. }))
        .count();
    // Each push batch: from the previous report to its own.
    let mut prev = *t;
    let mut batch_ms = Vec::new();
    for (at, _, p) in &marks {
        if matches!(p, Progress::Pushing { .. }) {
            batch_ms.push(ms_between(prev, *at));
            prev = *at;
        }
    }
    let tenth = batch_ms.len().div_ceil(10);
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len().max(1) as f64;
    json!({
        "pull_pages": pages,
        "push_batches": batch_ms.len(),
        "push_batch_wall_ms": batch_ms,
        "push_batch_first_tenth_mean_ms": mean(&batch_ms[..tenth]),
        "push_batch_last_tenth_mean_ms": mean(&batch_ms[batch_ms.len() - tenth..]),
        "until_last_page": pull.json(),
        "after_last_page": rest.json(),
    })
}

/// What B's watching task reports.
enum Seen {
    /// The stream is open and its first event handled.
    Ready,
    /// A sync done on an event: when the event arrived, when the sync
    /// started and returned, and the watched item's password after it.
    Synced {
        event: Instant,
        start: Instant,
        done: Instant,
        value: Option<String>,
    },
    Failed(String),
}

/// B's side of scenario 3: waits on the event stream and syncs when told.
async fn watch(
    mut b: Session,
    target: Arc<Mutex<Option<Uuid>>>,
    tx: mpsc::UnboundedSender<Seen>,
    mut stop: oneshot::Receiver<()>,
) -> (Session, u64) {
    let mut reconnects = 0u64;
    let mut ready = false;
    'connect: loop {
        let mut stream = match b.events().await {
            Ok(s) => s,
            Err(e) => {
                let _ = tx.send(Seen::Failed(format!("events: {e}")));
                return (b, reconnects);
            }
        };
        loop {
            let ev = tokio::select! {
                _ = &mut stop => return (b, reconnects),
                ev = stream.next() => ev,
            };
            let ev = match ev {
                Some(Ok(ev)) => ev,
                Some(Err(_)) | None => {
                    reconnects += 1;
                    continue 'connect;
                }
            };
            let event = Instant::now();
            if b.event_needs_sync(&ev).await {
                let start = Instant::now();
                match b.sync(&SyncOptions::default()).await {
                    Ok(_) => {
                        let done = Instant::now();
                        let id = target.lock().ok().and_then(|t| *t);
                        let value = match id {
                            Some(id) => password_of(&b, id).await,
                            None => None,
                        };
                        let _ = tx.send(Seen::Synced {
                            event,
                            start,
                            done,
                            value,
                        });
                    }
                    Err(e) => {
                        let _ = tx.send(Seen::Failed(format!("sync on event: {e}")));
                    }
                }
            }
            if !ready {
                ready = true;
                let _ = tx.send(Seen::Ready);
            }
        }
    }
}

struct Ctx<'a> {
    exe: &'a Path,
    in_process: bool,
    proxy_rt: &'a tokio::runtime::Handle,
}

fn run_size(ctx: &Ctx<'_>, rt: &tokio::runtime::Runtime, n: usize) -> Json {
    let tmp = tempfile::Builder::new()
        .prefix("openk-bench-sync-")
        .tempdir()
        .expect("temp dir");
    let db = format!("sqlite://{}", tmp.path().join("server.db").display());
    let (server, addr) = Server::start(ctx.exe, &db, ctx.in_process);
    let clock = Clock::calibrate(server.pid());
    let mut out = rt.block_on(scenarios(ctx, tmp.path(), addr, clock, n));
    out["server"] = json!({
        "process": if ctx.in_process { "in-process" } else { "child" },
        "vmhwm_mb": server.vmhwm_mb(),
    });
    server.stop();
    let db_bytes: u64 = ["server.db", "server.db-wal"]
        .iter()
        .filter_map(|f| std::fs::metadata(tmp.path().join(f)).ok())
        .map(|m| m.len())
        .sum();
    out["server"]["db_mb"] = json!(mb(db_bytes));
    out["probe_overhead_cpu_ms"] = json!(clock.overhead);
    out["loadavg_end"] = json!(loadavg());
    out
}

#[allow(clippy::too_many_lines)]
async fn scenarios(ctx: &Ctx<'_>, dir: &Path, addr: SocketAddr, clock: Clock, n: usize) -> Json {
    let url = format!("http://{addr}");
    let loadavg_start = loadavg();
    let mut rng = StdRng::seed_from_u64(0x5EC5_0C40 ^ n as u64);

    // Device A: create, register, add N items.
    let a_dir = dir.join("a");
    let mut a = Session::init(&a_dir, password(), TINY_KDF)
        .await
        .expect("Vault::init");
    a.register(&url, EMAIL, "bench A").await.expect("register");
    let secret_key = std::fs::read_to_string(a_dir.join(openk::engine::files::SECRET_KEY_FILE))
        .expect("read the Secret Key file")
        .trim()
        .to_owned();
    let p = clock.start();
    let mut ids: Vec<Uuid> = Vec::with_capacity(n);
    while ids.len() < n {
        let k = BATCH.min(n - ids.len());
        let drafts: Vec<ItemDraft> = (0..k).map(|_| login_draft(&mut rng)).collect();
        let items = a.add_many(drafts).await.expect("Vault::add_many");
        ids.extend(items.iter().map(|i| i.r.id));
    }
    let populate = p.stop();
    eprintln!("  [{n}] A added {n} items in {:.0} ms", populate.wall);

    // A pushes everything (the initial push).
    let marks: Marks = Arc::default();
    let p = clock.start();
    let r = sync_marked(&mut a, clock, &marks).await;
    let push = p.stop();
    let push_split = split_at_pull(&p, &marks, push);
    assert_eq!(pushed(&r) as usize, n, "A pushed every item");
    eprintln!("  [{n}] initial push: {:.0} ms", push.wall);

    // Device B logs in through the proxy and runs its first sync.
    let proxy = Proxy::start(ctx.proxy_rt, addr).await;
    let p = clock.start();
    let mut b = remote::login(
        &dir.join("b"),
        &proxy.url,
        EMAIL,
        password(),
        &secret_key,
        true,
        "bench B",
    )
    .await
    .expect("login");
    let login = p.stop();
    let login_bytes = proxy.counters.take();
    let rss_before = proc_status_mb("self", "VmRSS");
    let peak_reset = reset_peak_rss();
    let marks: Marks = Arc::default();
    let p = clock.start();
    let r = sync_marked(&mut b, clock, &marks).await;
    let first = p.stop();
    let first_bytes = proxy.counters.take();
    let first_split = split_at_pull(&p, &marks, first);
    let peak = proc_status_mb("self", "VmHWM");
    assert_eq!(pulled(&r) as usize, n, "B pulled every item");
    let listed = b.entries().await.expect("entries").0.len();
    assert_eq!(listed, n, "B lists every item");
    eprintln!("  [{n}] first sync: {:.0} ms", first.wall);

    // Syncs with nothing new.
    let _ = b.sync(&SyncOptions::default()).await.expect("warm-up sync");
    proxy.counters.take();
    let mut nochange = Series::default();
    let mut nochange_bytes = Vec::new();
    for _ in 0..NOCHANGE_RUNS {
        let p = clock.start();
        let r = b.sync(&SyncOptions::default()).await.expect("sync");
        nochange.push(p.stop());
        nochange_bytes.push(proxy.counters.take());
        assert_eq!(pulled(&r), 0, "nothing new");
    }
    eprintln!(
        "  [{n}] no-change sync: p50 {:.2} ms",
        percentile(&sorted(&nochange.wall), 50.0)
    );

    // One item changed on A: what B's next sync costs.
    let picks: Vec<Uuid> = ids
        .choose_multiple(&mut rng, EDITS + CHANGE_RUNS)
        .copied()
        .collect();
    let mut change = Series::default();
    let mut change_bytes = Vec::new();
    for (i, id) in picks.iter().take(CHANGE_RUNS).enumerate() {
        let value = format!(
            "change-{i}-{}",
            random_string(&mut rng, PASSWORD_ALPHABET, 12)
        );
        a.update(*id, &set_password(&value)).await.expect("update");
        let r = a.sync(&SyncOptions::default()).await.expect("A sync");
        assert_eq!(pushed(&r), 1, "A pushed the change");
        proxy.counters.take();
        let p = clock.start();
        let r = b.sync(&SyncOptions::default()).await.expect("B sync");
        change.push(p.stop());
        change_bytes.push(proxy.counters.take());
        assert_eq!(pulled(&r), 1, "B pulled the change");
        assert_eq!(password_of(&b, *id).await.as_deref(), Some(value.as_str()));
    }

    // Edits on A seen by B through the event stream.
    let edit = edits(&mut a, b, &picks[CHANGE_RUNS..], clock, &mut rng).await;
    let (b, edit_json) = edit;
    eprintln!("  [{n}] edit visible: done");

    a.close().await;
    b.close().await;
    drop(proxy);

    let bytes_json = |v: &[Bytes]| {
        json!({
            "up": median_u64(&v.iter().map(|b| b.up).collect::<Vec<_>>()),
            "down": median_u64(&v.iter().map(|b| b.down).collect::<Vec<_>>()),
            "total": median_u64(&v.iter().map(Bytes::total).collect::<Vec<_>>()),
            "total_min": v.iter().map(Bytes::total).min().unwrap_or(0),
            "total_max": v.iter().map(Bytes::total).max().unwrap_or(0),
            "requests": median_u64(&v.iter().map(|b| b.requests).collect::<Vec<_>>()),
            "new_connections": v.iter().map(|b| b.connections).sum::<u64>(),
        })
    };
    json!({
        "size": n,
        "loadavg_start": loadavg_start,
        "populate": {
            "meas": populate.json(),
            "items_per_s": n as f64 / populate.wall * 1000.0,
        },
        "initial_push": {
            "meas": push.json(),
            "items_per_s": n as f64 / push.wall * 1000.0,
            "phases": push_split,
        },
        "login_b": { "meas": login.json(), "bytes": login_bytes.json() },
        "first_sync": {
            "meas": first.json(),
            "items_per_s": n as f64 / first.wall * 1000.0,
            "items_per_cpu_s": n as f64 / first.cpu_total() * 1000.0,
            "pulled": pulled(&r),
            "bytes": first_bytes.json(),
            "phases": first_split,
            "rss_before_mb": rss_before,
            "peak_rss_mb": if peak_reset { peak } else { f64::NAN },
        },
        "no_change": {
            "runs": NOCHANGE_RUNS,
            "series": nochange.json(),
            "bytes": bytes_json(&nochange_bytes),
        },
        "one_change": {
            "runs": CHANGE_RUNS,
            "series": change.json(),
            "bytes": bytes_json(&change_bytes),
        },
        "edit_visible": edit_json,
    })
}

fn sorted(v: &[f64]) -> Vec<f64> {
    let mut v = v.to_vec();
    v.sort_by(f64::total_cmp);
    v
}

/// Scenario 3: B waits on its event stream in a task of its own; A edits
/// one item at a time and pushes it. Returns B and the figures.
async fn edits(
    a: &mut Session,
    b: Session,
    picks: &[Uuid],
    clock: Clock,
    rng: &mut StdRng,
) -> (Session, Json) {
    let target = Arc::new(Mutex::new(None::<Uuid>));
    let (tx, mut rx) = mpsc::unbounded_channel();
    let (stop, stopped) = oneshot::channel();
    let task = tokio::spawn(watch(b, Arc::clone(&target), tx, stopped));
    let mut failure = None;
    match tokio::time::timeout(EDIT_TIMEOUT, rx.recv()).await {
        Ok(Some(Seen::Ready)) => {}
        Ok(Some(Seen::Failed(e))) => failure = Some(e),
        Ok(Some(Seen::Synced { .. })) => {}
        Ok(None) => failure = Some("the watching task ended".into()),
        Err(_) => failure = Some("no event within the timeout".into()),
    }
    let mut total = Series::default();
    let (mut update, mut push, mut notify, mut b_sync, mut b_wait) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let mut extra_syncs = 0u64;
    if failure.is_none() {
        'edits: for (i, id) in picks.iter().enumerate() {
            tokio::time::sleep(Duration::from_millis(50)).await;
            while rx.try_recv().is_ok() {}
            if let Ok(mut t) = target.lock() {
                *t = Some(*id);
            }
            let value = format!("edit-{i}-{}", random_string(rng, PASSWORD_ALPHABET, 12));
            let p = clock.start();
            a.update(*id, &set_password(&value)).await.expect("update");
            let updated = Instant::now();
            let r = a.sync(&SyncOptions::default()).await.expect("A sync");
            let pushed_at = Instant::now();
            assert_eq!(pushed(&r), 1, "A pushed the edit");
            loop {
                match tokio::time::timeout(EDIT_TIMEOUT, rx.recv()).await {
                    Ok(Some(Seen::Synced {
                        event,
                        start,
                        done,
                        value: seen,
                    })) => {
                        if seen.as_deref() != Some(value.as_str()) {
                            extra_syncs += 1;
                            continue;
                        }
                        total.push(p.stop_at(ms_between(p.t, done)));
                        update.push(ms_between(p.t, updated));
                        push.push(ms_between(updated, pushed_at));
                        notify.push(ms_between(pushed_at, event));
                        b_wait.push(ms_between(event, start));
                        b_sync.push(ms_between(start, done));
                        break;
                    }
                    Ok(Some(Seen::Ready)) => {}
                    Ok(Some(Seen::Failed(e))) => {
                        failure = Some(e);
                        break 'edits;
                    }
                    Ok(None) => {
                        failure = Some("the watching task ended".into());
                        break 'edits;
                    }
                    Err(_) => {
                        failure = Some(format!("edit {i} not seen on B within the timeout"));
                        break 'edits;
                    }
                }
            }
        }
    }
    let _ = stop.send(());
    let (b, reconnects) = task.await.expect("watching task");
    let json = json!({
        "edits": total.wall.len(),
        "failure": failure,
        "series": total.json(),
        "breakdown_ms": {
            "a_update": stats(&update),
            "a_sync_push": stats(&push),
            "push_returned_to_event_on_b": stats(&notify),
            "event_to_b_sync_start": stats(&b_wait),
            "b_sync": stats(&b_sync),
        },
        "extra_syncs_on_b": extra_syncs,
        "stream_reconnects": reconnects,
    });
    (b, json)
}

// ---------------------------------------------------------------------------
// Parent: run every size, report

fn parent(args: &[String]) {
    let in_process = args.iter().any(|a| a == "--in-process");
    let sizes = sizes(args);
    let exe = std::env::current_exe().expect("current_exe");
    let cpus = std::thread::available_parallelism().map_or(0, usize::from);
    eprintln!(
        "OpenK sync benchmark: sizes {sizes:?}, {cpus} CPUs, server {}",
        if in_process {
            "in-process"
        } else {
            "in a child process"
        }
    );
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let proxy_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name(PROXY_THREAD)
        .enable_all()
        .build()
        .expect("proxy runtime");
    let ctx = Ctx {
        exe: &exe,
        in_process,
        proxy_rt: proxy_rt.handle(),
    };
    let mut rows = Vec::new();
    for &n in &sizes {
        eprintln!("[{n}]");
        rows.push(run_size(&ctx, &rt, n));
    }
    proxy_rt.shutdown_background();

    // Budgets, per size (set for 100k; smaller sizes show the trend).
    // Judged on wall time; client + server CPU is shown beside it, since a
    // busy machine inflates wall time but not CPU time.
    let mut budgets = Vec::new();
    for r in &rows {
        let n = r["size"].as_u64().unwrap_or(0);
        let checks = [
            (
                "first sync < 15 s",
                num(r, "/first_sync/meas/wall_ms"),
                num(r, "/first_sync/meas/cpu_ms"),
                BUDGET_FIRST_SYNC_MS,
            ),
            (
                "no-change sync p50 < 20 ms",
                num(r, "/no_change/series/wall_ms/p50"),
                num(r, "/no_change/series/cpu_ms/p50"),
                BUDGET_NOCHANGE_MS,
            ),
            (
                "no-change sync p99 < 20 ms",
                num(r, "/no_change/series/wall_ms/p99"),
                num(r, "/no_change/series/cpu_ms/p99"),
                BUDGET_NOCHANGE_MS,
            ),
            (
                "edit visible p50 < 500 ms",
                num(r, "/edit_visible/series/wall_ms/p50"),
                num(r, "/edit_visible/series/cpu_ms/p50"),
                BUDGET_EDIT_VISIBLE_MS,
            ),
        ];
        for (what, value, cpu, limit) in checks {
            budgets.push(json!({
                "size": n,
                "budget": what,
                "value_ms": value,
                "cpu_ms": cpu,
                "limit_ms": limit,
                "pass": value < limit,
                "pass_by_cpu": cpu < limit,
                "binding": n as usize >= BUDGET_SIZE,
            }));
        }
    }

    let report = render(&rows, &budgets, cpus, in_process);
    println!("{report}");

    let json = json!({
        "benchmark": "openk sync",
        "cpus": cpus,
        "server": if in_process { "in-process" } else { "child process" },
        "vault_kdf": format!(
            "Argon2id m={} KiB, t={}, p={}",
            TINY_KDF.memory_kib, TINY_KDF.iterations, TINY_KDF.parallelism
        ),
        "batch_size": BATCH,
        "sizes": rows,
        "budgets": budgets,
    });
    let path = target_dir(&exe).join("bench-sync.json");
    match std::fs::write(
        &path,
        serde_json::to_string_pretty(&json).expect("serialise report"),
    ) {
        Ok(()) => println!("JSON written to {}", path.display()),
        Err(e) => eprintln!("cannot write {}: {e}", path.display()),
    }
}

fn kb(bytes: f64) -> String {
    if bytes >= 1_048_576.0 {
        format!("{:.1} MB", bytes / 1_048_576.0)
    } else {
        format!("{:.1} KB", bytes / 1024.0)
    }
}

#[allow(clippy::too_many_lines)]
fn render(rows: &[Json], budgets: &[Json], cpus: usize, in_process: bool) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "\nOpenK sync benchmark ({cpus} CPUs; server {} on SQLite; vault KDF Argon2id m={} KiB; \
         add batches of {BATCH})",
        if in_process {
            "in this process"
        } else {
            "in a child process"
        },
        TINY_KDF.memory_kib,
    );
    let _ = writeln!(
        s,
        "CPU: client = this process without the proxy (devices A and B); server = the server \
         process{}.",
        if in_process {
            " (not separable in-process: counted as client)"
        } else {
            ""
        }
    );
    for r in rows {
        let n = r["size"].as_u64().unwrap_or(0);
        let _ = writeln!(
            s,
            "\n{n} items   (load average {} .. {})",
            r["loadavg_start"].as_str().unwrap_or("?"),
            r["loadavg_end"].as_str().unwrap_or("?"),
        );
        let _ = writeln!(
            s,
            "  {:<34} {:>15} {:>15} {:>15}   notes",
            "", "wall ms", "CPU client", "CPU server"
        );
        let _ = writeln!(s, "  {}", "-".repeat(110));
        let line = |s: &mut String, what: &str, base: &str, note: String| {
            let _ = writeln!(
                s,
                "  {:<34} {:>15.1} {:>15.1} {:>15.1}   {note}",
                what,
                num(r, &format!("{base}/wall_ms")),
                num(r, &format!("{base}/client_cpu_ms")),
                num(r, &format!("{base}/server_cpu_ms")),
            );
        };
        let pct = |s: &mut String, what: &str, base: &str, a: &str, b: &str, note: String| {
            let f = |k: &str| {
                format!(
                    "{:.2}/{:.2}",
                    num(r, &format!("{base}/{k}/{a}")),
                    num(r, &format!("{base}/{k}/{b}"))
                )
            };
            let _ = writeln!(
                s,
                "  {:<34} {:>15} {:>15} {:>15}   {note}",
                what,
                f("wall_ms"),
                f("client_cpu_ms"),
                f("server_cpu_ms"),
            );
        };
        line(
            &mut s,
            "A: add_many (local only)",
            "/populate/meas",
            format!("{:.0} items/s", num(r, "/populate/items_per_s")),
        );
        line(
            &mut s,
            "A: initial push (sync)",
            "/initial_push/meas",
            format!(
                "{:.0} items/s; {} batches, first/last tenth {:.0}/{:.0} ms each",
                num(r, "/initial_push/items_per_s"),
                num(r, "/initial_push/phases/push_batches"),
                num(r, "/initial_push/phases/push_batch_first_tenth_mean_ms"),
                num(r, "/initial_push/phases/push_batch_last_tenth_mean_ms"),
            ),
        );
        line(&mut s, "B: login", "/login_b/meas", String::new());
        line(
            &mut s,
            "B: first sync",
            "/first_sync/meas",
            format!(
                "{:.0} items/s; {} down, {} up, {} requests; RSS {:.0} -> peak {:.0} MB",
                num(r, "/first_sync/items_per_s"),
                kb(num(r, "/first_sync/bytes/down")),
                kb(num(r, "/first_sync/bytes/up")),
                num(r, "/first_sync/bytes/requests"),
                num(r, "/first_sync/rss_before_mb"),
                num(r, "/first_sync/peak_rss_mb"),
            ),
        );
        line(
            &mut s,
            "    until the last page arrived",
            "/first_sync/phases/until_last_page",
            format!("{} pages", num(r, "/first_sync/phases/pull_pages")),
        );
        line(
            &mut s,
            "    after it (check, merge, write)",
            "/first_sync/phases/after_last_page",
            String::new(),
        );
        pct(
            &mut s,
            &format!(
                "B: no-change sync p50/p99 (n={})",
                num(r, "/no_change/runs")
            ),
            "/no_change/series",
            "p50",
            "p99",
            format!(
                "{} B up + {} B down, {} requests",
                num(r, "/no_change/bytes/up"),
                num(r, "/no_change/bytes/down"),
                num(r, "/no_change/bytes/requests"),
            ),
        );
        pct(
            &mut s,
            &format!(
                "B: one-change sync p50/max (n={})",
                num(r, "/one_change/runs")
            ),
            "/one_change/series",
            "p50",
            "max",
            format!(
                "{} B up + {} B down, {} requests",
                num(r, "/one_change/bytes/up"),
                num(r, "/one_change/bytes/down"),
                num(r, "/one_change/bytes/requests"),
            ),
        );
        match r["edit_visible"]["failure"].as_str() {
            Some(f) if r["edit_visible"]["edits"].as_u64().unwrap_or(0) == 0 => {
                let _ = writeln!(s, "  edit visible on B: not measured ({f})");
            }
            other => {
                pct(
                    &mut s,
                    &format!(
                        "edit visible on B p50/p90 (n={})",
                        num(r, "/edit_visible/edits")
                    ),
                    "/edit_visible/series",
                    "p50",
                    "p90",
                    "CPU: A and B together".into(),
                );
                let b = |k: &str| {
                    format!(
                        "{:.1}",
                        num(r, &format!("/edit_visible/breakdown_ms/{k}/p50"))
                    )
                };
                let _ = writeln!(
                    s,
                    "    p50 parts (ms): A update {} + A sync {} + push returned -> event on B {} \
                     + event -> B sync starts {} + B sync {}",
                    b("a_update"),
                    b("a_sync_push"),
                    b("push_returned_to_event_on_b"),
                    b("event_to_b_sync_start"),
                    b("b_sync"),
                );
                if let Some(f) = other {
                    let _ = writeln!(s, "    stopped early: {f}");
                }
            }
        }
        let _ = writeln!(
            s,
            "  server: peak RSS {:.0} MB, database {:.1} MB",
            num(r, "/server/vmhwm_mb"),
            num(r, "/server/db_mb"),
        );
    }

    let _ = writeln!(
        s,
        "\nBytes through the proxy per sync of B (HTTP/1.1 on loopback: headers and JSON bodies, \
         no TLS, no compression)"
    );
    let _ = writeln!(
        s,
        "  {:>8} {:>16} {:>16} {:>14} {:>14}",
        "size", "no change", "one change", "vs smallest", "first sync"
    );
    let base = rows
        .first()
        .map_or(f64::NAN, |r| num(r, "/one_change/bytes/total"));
    for r in rows {
        let one = num(r, "/one_change/bytes/total");
        let _ = writeln!(
            s,
            "  {:>8} {:>14} B {:>14} B {:>13.2}x {:>14}",
            r["size"].as_u64().unwrap_or(0),
            num(r, "/no_change/bytes/total"),
            one,
            one / base,
            kb(num(r, "/first_sync/bytes/total")),
        );
    }

    let _ = writeln!(
        s,
        "\nBudgets (DESIGN §9, set for {BUDGET_SIZE} items; smaller sizes shown for the trend). \
         Verdict on wall time; CPU (client + server) beside it."
    );
    for b in budgets {
        let binding = b["binding"].as_bool().unwrap_or(false);
        let _ = writeln!(
            s,
            "  {:>7}  {:<27} {:>10.2} ms {}   CPU {:>10.2} ms {}{}",
            b["size"].as_u64().unwrap_or(0),
            b["budget"].as_str().unwrap_or(""),
            b["value_ms"].as_f64().unwrap_or(f64::NAN),
            verdict(b["pass"].as_bool().unwrap_or(false)),
            b["cpu_ms"].as_f64().unwrap_or(f64::NAN),
            verdict(b["pass_by_cpu"].as_bool().unwrap_or(false)),
            if binding { "" } else { "   (trend)" },
        );
    }
    s
}
