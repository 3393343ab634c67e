//! Load benchmark of the sync server over real HTTP/1.1 on loopback.
//!
//! ```text
//! cargo bench -p openk-server --bench load
//! cargo bench -p openk-server --bench load -- --duration 5 --connections 64
//! cargo bench -p openk-server --bench load -- --scenarios pull,healthz --backends sqlite
//! cargo bench -p openk-server --bench load -- --serve-for 60   # keep it up for an outside tool
//! ```
//!
//! For each backend (a temporary SQLite file; PostgreSQL when
//! `OPENK_TEST_POSTGRES_URL` is set, in a fresh `openk_bench_<random>`
//! database dropped afterwards) the server runs in-process on
//! `127.0.0.1:0` with rate limits off. The bench registers an account,
//! creates a vault, pushes the initial records, logs one device in per
//! connection, then drives N keep-alive connections for a fixed time per
//! scenario and reports requests/s and p50/p99 latency:
//!
//! - `pull-nochange`: `GET /v1/vaults/{id}/changes?since=<head>`;
//! - `push-new`: one new item per request (base revision 0, unique
//!   `client_change_id`);
//! - `push-spread`: the same, but each connection pushes to a vault of its
//!   own (pushes to one vault serialise on its row; this shows the rest);
//! - `push-update`: one existing item per request, with its right base
//!   revision (each connection owns its own items, so no conflicts);
//! - `login`: `POST /v1/accounts/login` (a new session each time);
//! - `healthz` (not by default): the HTTP + middleware floor.
//!
//! The load generator is a minimal HTTP/1.1 client on its own tokio
//! runtime (`bench-client` threads) beside the server's (`bench-server`
//! threads): both share the machine's cores, so the CPU split is reported.
//! When `wrk` is installed the no-change pull is also measured with it.
//! A breakdown of the no-change pull's server-side steps follows (SQLite).
//!
//! Options (or environment): `--duration SECS` (`OPENK_BENCH_DURATION`, 10),
//! `--warmup SECS` (`OPENK_BENCH_WARMUP`, 1), `--connections N`
//! (`OPENK_BENCH_CONNECTIONS`, 32), `--client-threads N` (2),
//! `--server-threads N` (CPUs), `--records N` (1000), `--scenarios LIST`,
//! `--backends LIST`, `--no-wrk`, `--no-breakdown`, `--log` (server logging
//! with its production default filter), `--serve-for SECS`, `--json PATH`
//! (default `<target>/bench-load.json`).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context as _, anyhow, bail};
use base64::Engine as _;
use openk_server::api::types::{ChangesPage, PushResponse, TokenResponse};
use openk_server::{AppState, Settings};
use serde_json::{Value, json};
use sqlx::{Connection as _, Executor as _};
use tokio::io::{AsyncBufReadExt as _, AsyncReadExt as _, AsyncWriteExt as _, BufReader};
use tokio::net::TcpStream;
use tokio::runtime::Runtime;
use uuid::Uuid;

/// The no-change pull must reach this on SQLite (requests/s).
const PULL_BUDGET_RPS: f64 = 2_000.0;
/// Records per batch of the initial push.
const SETUP_BATCH: usize = 250;
/// Blob sizes of every pushed record (bytes before base64).
const WRAPPED_KEY_LEN: usize = 72;
const OVERVIEW_LEN: usize = 256;
const DETAILS_LEN: usize = 1024;
const MANIFEST_LEN: usize = 256;
/// Linux clock ticks per second (`getconf CLK_TCK`), for /proc CPU times.
const CLOCK_TICKS: f64 = 100.0;

// ------------------------------------------------------------------ options

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scenario {
    Pull,
    PushNew,
    PushSpread,
    PushUpdate,
    Login,
    Healthz,
}

impl Scenario {
    const DEFAULT: [Self; 5] = [
        Self::Pull,
        Self::PushNew,
        Self::PushSpread,
        Self::PushUpdate,
        Self::Login,
    ];

    fn name(self) -> &'static str {
        match self {
            Self::Pull => "pull-nochange",
            Self::PushNew => "push-new",
            Self::PushSpread => "push-spread",
            Self::PushUpdate => "push-update",
            Self::Login => "login",
            Self::Healthz => "healthz",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        match s {
            "pull" | "pull-nochange" => Some(Self::Pull),
            "push" | "push-new" => Some(Self::PushNew),
            "spread" | "push-spread" => Some(Self::PushSpread),
            "update" | "push-update" => Some(Self::PushUpdate),
            "login" => Some(Self::Login),
            "healthz" => Some(Self::Healthz),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    fn name(self) -> &'static str {
        match self {
            Self::Sqlite => "sqlite",
            Self::Postgres => "postgres",
        }
    }
}

#[derive(Debug, Clone)]
struct Options {
    duration: Duration,
    warmup: Duration,
    connections: usize,
    client_threads: usize,
    server_threads: usize,
    records: usize,
    scenarios: Vec<Scenario>,
    backends: Vec<Backend>,
    wrk: bool,
    breakdown: bool,
    log: bool,
    serve_for: Option<Duration>,
    json: Option<PathBuf>,
}

fn env_num(name: &str) -> Option<f64> {
    std::env::var(name).ok().and_then(|v| v.trim().parse().ok())
}

fn secs(v: f64) -> anyhow::Result<Duration> {
    Duration::try_from_secs_f64(v).map_err(|_| anyhow!("not a duration in seconds: {v}"))
}

impl Options {
    fn parse() -> anyhow::Result<Self> {
        let cpus = std::thread::available_parallelism().map_or(2, usize::from);
        let mut o = Self {
            duration: secs(env_num("OPENK_BENCH_DURATION").unwrap_or(10.0))?,
            warmup: secs(env_num("OPENK_BENCH_WARMUP").unwrap_or(1.0))?,
            connections: env_num("OPENK_BENCH_CONNECTIONS").map_or(32, |n| n as usize),
            client_threads: 2,
            server_threads: cpus,
            records: 1000,
            scenarios: Scenario::DEFAULT.to_vec(),
            backends: vec![Backend::Sqlite, Backend::Postgres],
            wrk: true,
            breakdown: true,
            log: false,
            serve_for: None,
            json: None,
        };
        let mut args = std::env::args().skip(1);
        while let Some(arg) = args.next() {
            let (flag, inline) = match arg.split_once('=') {
                Some((f, v)) => (f.to_owned(), Some(v.to_owned())),
                None => (arg.clone(), None),
            };
            let mut value = || -> anyhow::Result<String> {
                inline
                    .clone()
                    .or_else(|| args.next())
                    .ok_or_else(|| anyhow!("{flag} needs a value"))
            };
            let number = |v: String| -> anyhow::Result<f64> {
                v.trim()
                    .parse::<f64>()
                    .map_err(|_| anyhow!("{arg}: not a number: {v}"))
            };
            match flag.as_str() {
                // `cargo bench` passes `--bench` to every bench binary.
                "--bench" => {}
                "--duration" => o.duration = secs(number(value()?)?)?,
                "--warmup" => o.warmup = secs(number(value()?)?)?,
                "--connections" => o.connections = number(value()?)? as usize,
                "--client-threads" => o.client_threads = number(value()?)? as usize,
                "--server-threads" => o.server_threads = number(value()?)? as usize,
                "--records" => o.records = number(value()?)? as usize,
                "--scenarios" => {
                    o.scenarios = value()?
                        .split(',')
                        .map(|s| {
                            Scenario::parse(s.trim())
                                .ok_or_else(|| anyhow!("unknown scenario {s:?}"))
                        })
                        .collect::<anyhow::Result<_>>()?;
                }
                "--backends" => {
                    o.backends = value()?
                        .split(',')
                        .map(|s| match s.trim() {
                            "sqlite" => Ok(Backend::Sqlite),
                            "postgres" | "pg" => Ok(Backend::Postgres),
                            other => Err(anyhow!("unknown backend {other:?}")),
                        })
                        .collect::<anyhow::Result<_>>()?;
                }
                "--no-wrk" => o.wrk = false,
                "--no-breakdown" => o.breakdown = false,
                "--log" => o.log = true,
                "--serve-for" => o.serve_for = Some(secs(number(value()?)?)?),
                "--json" => o.json = Some(PathBuf::from(value()?)),
                "--help" | "-h" => {
                    let doc = include_str!("load.rs")
                        .lines()
                        .take_while(|l| l.starts_with("//!"));
                    for line in doc {
                        println!("{}", line.trim_start_matches("//!").trim_start_matches(' '));
                    }
                    std::process::exit(0);
                }
                other if other.starts_with('-') => bail!("unknown option {other} (see --help)"),
                // A filter argument from `cargo bench -- NAME`: ignored.
                _ => {}
            }
        }
        if o.connections == 0 || o.client_threads == 0 || o.server_threads == 0 {
            bail!("connections and thread counts must be at least 1");
        }
        Ok(o)
    }
}

// ------------------------------------------------------------- HTTP client

/// A minimal keep-alive HTTP/1.1 client: one request at a time per
/// connection, `Content-Length` or chunked bodies. Cheap on purpose, so
/// that the load generator takes as little CPU from the server as possible.
struct Client {
    io: BufReader<TcpStream>,
    line: Vec<u8>,
}

struct Reply {
    status: u16,
    body: Vec<u8>,
}

impl Reply {
    fn ok(&self) -> bool {
        (200..300).contains(&self.status)
    }

    fn text(&self) -> String {
        format!(
            "{} {}",
            self.status,
            String::from_utf8_lossy(&self.body[..self.body.len().min(300)])
        )
    }
}

fn bad(msg: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg.into())
}

impl Client {
    async fn connect(addr: SocketAddr) -> io::Result<Self> {
        let stream = TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        Ok(Self {
            io: BufReader::with_capacity(16 * 1024, stream),
            line: Vec::with_capacity(256),
        })
    }

    async fn send(&mut self, request: &[u8]) -> io::Result<Reply> {
        self.io.get_mut().write_all(request).await?;
        self.read_reply().await
    }

    async fn read_line(&mut self) -> io::Result<()> {
        self.line.clear();
        if self.io.read_until(b'\n', &mut self.line).await? == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "connection closed",
            ));
        }
        Ok(())
    }

    async fn read_reply(&mut self) -> io::Result<Reply> {
        self.read_line().await?;
        let status = self
            .line
            .split(|b| *b == b' ')
            .nth(1)
            .and_then(|s| std::str::from_utf8(s).ok())
            .and_then(|s| s.parse::<u16>().ok())
            .ok_or_else(|| {
                bad(format!(
                    "bad status line {:?}",
                    String::from_utf8_lossy(&self.line)
                ))
            })?;
        let mut length = None;
        let mut chunked = false;
        loop {
            self.read_line().await?;
            let line = self.line.trim_ascii();
            if line.is_empty() {
                break;
            }
            let Some(colon) = line.iter().position(|b| *b == b':') else {
                continue;
            };
            let (name, value) = (&line[..colon], line[colon + 1..].trim_ascii());
            if name.eq_ignore_ascii_case(b"content-length") {
                length = std::str::from_utf8(value)
                    .ok()
                    .and_then(|v| v.parse::<usize>().ok());
            } else if name.eq_ignore_ascii_case(b"transfer-encoding") {
                chunked = value.eq_ignore_ascii_case(b"chunked");
            }
        }
        let mut body = Vec::new();
        if chunked {
            loop {
                self.read_line().await?;
                let size_text = self.line.trim_ascii();
                let size_text = size_text.split(|b| *b == b';').next().unwrap_or_default();
                let size = std::str::from_utf8(size_text)
                    .ok()
                    .and_then(|s| usize::from_str_radix(s, 16).ok())
                    .ok_or_else(|| bad("bad chunk size"))?;
                if size == 0 {
                    // Trailers, up to the empty line.
                    loop {
                        self.read_line().await?;
                        if self.line.trim_ascii().is_empty() {
                            break;
                        }
                    }
                    break;
                }
                let start = body.len();
                body.resize(start + size, 0);
                self.io.read_exact(&mut body[start..]).await?;
                self.read_line().await?;
            }
        } else if let Some(n) = length {
            body.resize(n, 0);
            self.io.read_exact(&mut body).await?;
        }
        Ok(Reply { status, body })
    }
}

fn http_get(addr: SocketAddr, path: &str, token: &str) -> Vec<u8> {
    format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\n\r\n")
        .into_bytes()
}

fn http_post(addr: SocketAddr, path: &str, token: Option<&str>, body: &str) -> Vec<u8> {
    let auth = token
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    format!(
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\n{auth}Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// One request that must succeed, its body decoded as `T`.
async fn call<T: serde::de::DeserializeOwned>(
    client: &mut Client,
    request: &[u8],
) -> anyhow::Result<T> {
    let reply = client.send(request).await?;
    if !reply.ok() {
        bail!("{}", reply.text());
    }
    serde_json::from_slice(&reply.body)
        .with_context(|| format!("unexpected answer {}", reply.text()))
}

// ------------------------------------------------------------------ set-up

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

fn random_bytes(n: usize) -> Vec<u8> {
    (0..n).map(|_| rand::random::<u8>()).collect()
}

/// Base64 blobs every pushed record carries.
struct Blobs {
    wrapped_key: String,
    overview: String,
    details: String,
    manifest: String,
}

impl Blobs {
    fn new() -> Self {
        Self {
            wrapped_key: b64(&random_bytes(WRAPPED_KEY_LEN)),
            overview: b64(&random_bytes(OVERVIEW_LEN)),
            details: b64(&random_bytes(DETAILS_LEN)),
            manifest: b64(&random_bytes(MANIFEST_LEN)),
        }
    }

    fn change(&self, item: Uuid, base_revision: i64, version: u64) -> String {
        format!(
            r#"{{"item_id":"{item}","base_revision":{base_revision},"version":{version},"wrapped_key":"{}","overview":"{}","details":"{}"}}"#,
            self.wrapped_key, self.overview, self.details
        )
    }

    fn push(&self, changes: &[String]) -> String {
        format!(
            r#"{{"client_change_id":"{}","changes":[{}],"manifest":"{}"}}"#,
            Uuid::now_v7(),
            changes.join(","),
            self.manifest
        )
    }
}

/// An existing item: id, version, revision.
#[derive(Debug, Clone, Copy)]
struct Item {
    id: Uuid,
    version: u64,
    revision: i64,
}

/// What the scenarios need, made once per backend.
struct Ctx {
    addr: SocketAddr,
    email: String,
    auth_key: String,
    vault: Uuid,
    /// One device and access token per connection.
    devices: Vec<(Uuid, String)>,
    /// One more vault per connection (`push-spread`).
    spread_vaults: Vec<Uuid>,
    items: Vec<Item>,
    blobs: Blobs,
}

impl Ctx {
    fn changes_path(&self) -> String {
        format!("/v1/vaults/{}/changes", self.vault)
    }

    fn login_body(&self, device: Uuid) -> String {
        json!({
            "email": self.email,
            "auth_key": self.auth_key,
            "device": { "id": device, "name": "bench device" },
        })
        .to_string()
    }

    /// The vault's head revision now.
    async fn head(&self) -> anyhow::Result<i64> {
        let mut client = Client::connect(self.addr).await?;
        let path = format!("{}?since=0&limit=1", self.changes_path());
        let page: ChangesPage =
            call(&mut client, &http_get(self.addr, &path, &self.devices[0].1)).await?;
        Ok(page.head)
    }
}

async fn setup(addr: SocketAddr, opts: &Options) -> anyhow::Result<Ctx> {
    let mut client = Client::connect(addr).await?;
    let email = format!("bench-{}@example.org", Uuid::now_v7().simple());
    let auth_key = b64(&random_bytes(32));
    let first_device = Uuid::now_v7();
    let register = json!({
        "account_id": Uuid::now_v7(),
        "email": email,
        "kdf": { "memory_kib": 65_536, "iterations": 3, "parallelism": 4 },
        "salt": b64(&random_bytes(16)),
        "auth_key": auth_key,
        "wrapped_account_key": b64(&random_bytes(72)),
        "public_x25519": b64(&random_bytes(32)),
        "public_ed25519": b64(&random_bytes(32)),
        "wrapped_private_keys": b64(&random_bytes(120)),
        "device": { "id": first_device, "name": "bench device 0" },
    });
    let tokens: TokenResponse = call(
        &mut client,
        &http_post(addr, "/v1/accounts/register", None, &register.to_string()),
    )
    .await
    .context("register")?;
    let vault = Uuid::now_v7();
    let create = json!({ "id": vault, "wrapped_key": b64(&random_bytes(72)), "meta": b64(&random_bytes(64)) });
    let _: Value = call(
        &mut client,
        &http_post(
            addr,
            "/v1/vaults",
            Some(&tokens.access_token),
            &create.to_string(),
        ),
    )
    .await
    .context("create the vault")?;

    let blobs = Blobs::new();
    let mut items = Vec::with_capacity(opts.records);
    let ids: Vec<Uuid> = (0..opts.records).map(|_| Uuid::now_v7()).collect();
    for batch in ids.chunks(SETUP_BATCH) {
        let changes: Vec<String> = batch.iter().map(|id| blobs.change(*id, 0, 1)).collect();
        let request = http_post(
            addr,
            &format!("/v1/vaults/{vault}/changes"),
            Some(&tokens.access_token),
            &blobs.push(&changes),
        );
        let out: PushResponse = call(&mut client, &request).await.context("initial push")?;
        if out.applied.len() != batch.len() {
            bail!(
                "initial push applied {} of {} changes",
                out.applied.len(),
                batch.len()
            );
        }
        items.extend(out.applied.iter().map(|a| Item {
            id: a.item_id,
            version: 1,
            revision: a.revision,
        }));
    }

    let mut ctx = Ctx {
        addr,
        email,
        auth_key,
        vault,
        devices: Vec::new(),
        spread_vaults: Vec::new(),
        items,
        blobs,
    };
    ctx.devices.push((first_device, tokens.access_token));
    while ctx.devices.len() < opts.connections {
        let device = Uuid::now_v7();
        let t: TokenResponse = call(
            &mut client,
            &http_post(addr, "/v1/accounts/login", None, &ctx.login_body(device)),
        )
        .await
        .context("log a device in")?;
        ctx.devices.push((device, t.access_token));
    }
    for _ in 0..opts.connections {
        let id = Uuid::now_v7();
        let create = json!({ "id": id, "wrapped_key": b64(&random_bytes(72)), "meta": b64(&random_bytes(64)) });
        let token = ctx.devices[0].1.clone();
        let _: Value = call(
            &mut client,
            &http_post(addr, "/v1/vaults", Some(&token), &create.to_string()),
        )
        .await
        .context("create a vault")?;
        ctx.spread_vaults.push(id);
    }
    Ok(ctx)
}

// ------------------------------------------------------------------- load

/// CPU time so far: this process's threads split into the load generator
/// and everything else (the server, its database workers, its blocking
/// pool), and the whole machine (which includes PostgreSQL and `wrk`).
#[derive(Debug, Clone, Copy)]
struct Cpu {
    client_s: f64,
    server_s: f64,
    /// Waited-for children (`wrk`).
    children_s: f64,
    machine_busy_s: f64,
    machine_total_s: f64,
}

impl Cpu {
    fn now() -> Self {
        let (mut client, mut server) = (0u64, 0u64);
        let pid = std::process::id();
        if let Ok(dir) = std::fs::read_dir("/proc/self/task") {
            for entry in dir.flatten() {
                let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
                    continue;
                };
                let (Some(open), Some(close)) = (stat.find('('), stat.rfind(')')) else {
                    continue;
                };
                let comm = &stat[open + 1..close];
                // Fields after the command: state is the 1st, utime the 12th, stime the 13th.
                let fields: Vec<u64> = stat[close + 1..]
                    .split_whitespace()
                    .map(|v| v.parse::<u64>().unwrap_or(0))
                    .collect();
                let ticks =
                    fields.get(11).copied().unwrap_or(0) + fields.get(12).copied().unwrap_or(0);
                let is_main = entry
                    .file_name()
                    .to_str()
                    .and_then(|t| t.parse::<u32>().ok())
                    == Some(pid);
                if comm.starts_with("bench-client") || is_main {
                    client += ticks;
                } else {
                    server += ticks;
                }
            }
        }
        // cutime and cstime: the 14th and 15th fields after the command.
        let children = std::fs::read_to_string("/proc/self/stat")
            .ok()
            .and_then(|stat| {
                let rest = &stat[stat.rfind(')')? + 1..];
                let v: Vec<u64> = rest
                    .split_whitespace()
                    .map(|x| x.parse().unwrap_or(0))
                    .collect();
                Some(v.get(13).copied().unwrap_or(0) + v.get(14).copied().unwrap_or(0))
            })
            .unwrap_or(0);
        // First line of /proc/stat: user nice system idle iowait irq softirq steal …
        let (mut busy, mut total) = (0u64, 0u64);
        if let Some(line) = std::fs::read_to_string("/proc/stat")
            .ok()
            .and_then(|t| t.lines().next().map(str::to_owned))
        {
            let v: Vec<u64> = line
                .split_whitespace()
                .skip(1)
                .take(8)
                .map(|x| x.parse().unwrap_or(0))
                .collect();
            total = v.iter().sum();
            busy = total - v.get(3).copied().unwrap_or(0) - v.get(4).copied().unwrap_or(0);
        }
        Self {
            client_s: client as f64 / CLOCK_TICKS,
            server_s: server as f64 / CLOCK_TICKS,
            children_s: children as f64 / CLOCK_TICKS,
            machine_busy_s: busy as f64 / CLOCK_TICKS,
            machine_total_s: total as f64 / CLOCK_TICKS,
        }
    }

    /// (server, client, machine) as shares of the whole machine, in %.
    /// The client is the load generator's threads plus waited-for children.
    fn shares(self, end: Self) -> (f64, f64, f64) {
        let total = end.machine_total_s - self.machine_total_s;
        let pct = |a: f64, b: f64| {
            if total > 0.0 {
                100.0 * (b - a) / total
            } else {
                f64::NAN
            }
        };
        (
            pct(self.server_s, end.server_s),
            pct(
                self.client_s + self.children_s,
                end.client_s + end.children_s,
            ),
            pct(self.machine_busy_s, end.machine_busy_s),
        )
    }
}

#[derive(Debug, Clone)]
struct Row {
    backend: &'static str,
    scenario: String,
    tool: &'static str,
    requests: u64,
    seconds: f64,
    rps: f64,
    p50_ms: f64,
    p99_ms: f64,
    errors: u64,
    /// Shares of the machine (all cores = 100 %) during the measured
    /// window: the server threads, the load generator's, the whole machine.
    server_cpu: f64,
    client_cpu: f64,
    machine_cpu: f64,
    /// Failed requests during the warm-up (not in `errors`).
    warmup_errors: u64,
    first_error: Option<String>,
}

impl Row {
    fn json(&self) -> Value {
        json!({
            "backend": self.backend,
            "scenario": self.scenario,
            "tool": self.tool,
            "requests": self.requests,
            "seconds": self.seconds,
            "rps": round(self.rps, 1),
            "p50_ms": round(self.p50_ms, 3),
            "p99_ms": round(self.p99_ms, 3),
            "errors": self.errors,
            "server_cpu_pct": round(self.server_cpu, 1),
            "client_cpu_pct": round(self.client_cpu, 1),
            "machine_cpu_pct": round(self.machine_cpu, 1),
            "warmup_errors": self.warmup_errors,
            "first_error": self.first_error,
        })
    }
}

fn round(v: f64, digits: i32) -> f64 {
    if v.is_finite() {
        let f = 10f64.powi(digits);
        (v * f).round() / f
    } else {
        v
    }
}

#[derive(Default)]
struct TaskResult {
    latencies_us: Vec<u32>,
    errors: u64,
    warmup_errors: u64,
    first_error: Option<String>,
}

/// The per-connection state of a scenario.
struct Worker {
    scenario: Scenario,
    ctx: Arc<Ctx>,
    token: String,
    /// This connection's own vault (`push-spread`).
    own_vault: Uuid,
    items: Vec<Item>,
    next: usize,
    pull_request: Vec<u8>,
    login_request: Vec<u8>,
}

impl Worker {
    fn request(&mut self) -> Vec<u8> {
        let ctx = &self.ctx;
        match self.scenario {
            Scenario::Pull => self.pull_request.clone(),
            Scenario::Healthz => {
                format!("GET /healthz HTTP/1.1\r\nHost: {}\r\n\r\n", ctx.addr).into_bytes()
            }
            Scenario::Login => self.login_request.clone(),
            Scenario::PushNew => {
                let body = ctx.blobs.push(&[ctx.blobs.change(Uuid::now_v7(), 0, 1)]);
                http_post(ctx.addr, &ctx.changes_path(), Some(&self.token), &body)
            }
            Scenario::PushSpread => {
                let body = ctx.blobs.push(&[ctx.blobs.change(Uuid::now_v7(), 0, 1)]);
                let path = format!("/v1/vaults/{}/changes", self.own_vault);
                http_post(ctx.addr, &path, Some(&self.token), &body)
            }
            Scenario::PushUpdate => {
                let item = self.items[self.next % self.items.len()];
                let body =
                    ctx.blobs
                        .push(&[ctx.blobs.change(item.id, item.revision, item.version + 1)]);
                http_post(ctx.addr, &ctx.changes_path(), Some(&self.token), &body)
            }
        }
    }

    /// Checks a 2xx answer; `Err` says what was wrong with it.
    fn check(&mut self, reply: &Reply) -> Result<(), String> {
        match self.scenario {
            Scenario::Pull => {
                if reply.body.windows(12).any(|w| w == b"\"records\":[]") {
                    Ok(())
                } else {
                    Err(format!(
                        "a no-change pull returned records: {}",
                        reply.text()
                    ))
                }
            }
            Scenario::Healthz | Scenario::Login => Ok(()),
            Scenario::PushNew | Scenario::PushSpread | Scenario::PushUpdate => {
                let out: PushResponse = serde_json::from_slice(&reply.body)
                    .map_err(|e| format!("{e}: {}", reply.text()))?;
                if out.applied.len() != 1 {
                    return Err(format!("push not applied: {}", reply.text()));
                }
                if self.scenario == Scenario::PushUpdate {
                    let i = self.next % self.items.len();
                    self.items[i].version += 1;
                    self.items[i].revision = out.applied[0].revision;
                    self.next += 1;
                }
                Ok(())
            }
        }
    }
}

async fn drive(mut worker: Worker, measure_from: Instant, deadline: Instant) -> TaskResult {
    let mut out = TaskResult::default();
    if worker.scenario == Scenario::PushUpdate && worker.items.is_empty() {
        return out;
    }
    let addr = worker.ctx.addr;
    let mut client = match Client::connect(addr).await {
        Ok(c) => c,
        Err(e) => {
            out.errors += 1;
            out.first_error = Some(format!("connect: {e}"));
            return out;
        }
    };
    while Instant::now() < deadline {
        let request = worker.request();
        let started = Instant::now();
        let result = client.send(&request).await;
        let elapsed = started.elapsed();
        let measured = started >= measure_from;
        let failure = match result {
            Ok(reply) if reply.ok() => worker.check(&reply).err(),
            Ok(reply) => Some(reply.text()),
            Err(e) => {
                // Reconnect (a closed keep-alive connection, a reset…).
                match Client::connect(addr).await {
                    Ok(c) => client = c,
                    Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
                }
                Some(format!("I/O: {e}"))
            }
        };
        match failure {
            None if measured => out
                .latencies_us
                .push(u32::try_from(elapsed.as_micros()).unwrap_or(u32::MAX)),
            None => {}
            Some(e) => {
                if measured {
                    out.errors += 1;
                } else {
                    out.warmup_errors += 1;
                }
                out.first_error.get_or_insert(e);
            }
        }
    }
    out
}

fn percentile_ms(sorted_us: &[u32], p: f64) -> f64 {
    if sorted_us.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * sorted_us.len() as f64).ceil() as usize;
    f64::from(sorted_us[rank.clamp(1, sorted_us.len()) - 1]) / 1000.0
}

fn run_scenario(
    rt: &Runtime,
    ctx: &Arc<Ctx>,
    backend: Backend,
    scenario: Scenario,
    opts: &Options,
) -> anyhow::Result<Row> {
    let pull_path = if scenario == Scenario::Pull {
        format!("{}?since={}", ctx.changes_path(), rt.block_on(ctx.head())?)
    } else {
        String::new()
    };
    let n = opts.connections;
    let workers: Vec<Worker> = (0..n)
        .map(|i| {
            let (device, token) = ctx.devices[i % ctx.devices.len()].clone();
            Worker {
                scenario,
                ctx: Arc::clone(ctx),
                pull_request: http_get(ctx.addr, &pull_path, &token),
                login_request: http_post(
                    ctx.addr,
                    "/v1/accounts/login",
                    None,
                    &ctx.login_body(device),
                ),
                token,
                own_vault: ctx.spread_vaults[i % ctx.spread_vaults.len()],
                items: ctx.items.iter().skip(i).step_by(n).copied().collect(),
                next: 0,
            }
        })
        .collect();
    let start = Instant::now();
    let measure_from = start + opts.warmup;
    let deadline = measure_from + opts.duration;
    let results = rt.block_on(async {
        let tasks: Vec<_> = workers
            .into_iter()
            .map(|w| tokio::spawn(drive(w, measure_from, deadline)))
            .collect();
        // CPU times at the start and end of the measured window.
        tokio::time::sleep_until(measure_from.into()).await;
        let cpu_start = Cpu::now();
        tokio::time::sleep_until(deadline.into()).await;
        let cpu_end = Cpu::now();
        let mut results = Vec::with_capacity(tasks.len());
        for t in tasks {
            results.push(t.await?);
        }
        anyhow::Ok((results, cpu_start, cpu_end))
    });
    let (results, cpu_start, cpu_end) = results?;
    let mut latencies: Vec<u32> = Vec::new();
    let mut errors = 0;
    let mut warmup_errors = 0;
    let mut first_error = None;
    for r in results {
        latencies.extend(r.latencies_us);
        errors += r.errors;
        warmup_errors += r.warmup_errors;
        if first_error.is_none() {
            first_error = r.first_error;
        }
    }
    latencies.sort_unstable();
    let seconds = opts.duration.as_secs_f64();
    let (server_cpu, client_cpu, machine_cpu) = cpu_start.shares(cpu_end);
    Ok(Row {
        backend: backend.name(),
        scenario: scenario.name().to_owned(),
        tool: "bench",
        requests: latencies.len() as u64,
        seconds,
        rps: latencies.len() as f64 / seconds,
        p50_ms: percentile_ms(&latencies, 50.0),
        p99_ms: percentile_ms(&latencies, 99.0),
        errors,
        warmup_errors,
        server_cpu,
        client_cpu,
        machine_cpu,
        first_error,
    })
}

// --------------------------------------------------------------------- wrk

fn wrk_installed() -> bool {
    Command::new("wrk").arg("--version").output().is_ok()
}

fn wrk_command(url: &str, token: &str, connections: usize, seconds: u64) -> Vec<String> {
    vec![
        "wrk".into(),
        "-t2".into(),
        format!("-c{connections}"),
        format!("-d{seconds}s"),
        "--latency".into(),
        "-H".into(),
        format!("Authorization: Bearer {token}"),
        url.into(),
    ]
}

fn shell_quote(args: &[String]) -> String {
    args.iter()
        .map(|a| {
            if a.chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_./:?=".contains(c))
            {
                a.clone()
            } else {
                format!("'{a}'")
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// `1.23ms`, `456.78us`, `1.02s` in milliseconds.
fn wrk_ms(text: &str) -> Option<f64> {
    let t = text.trim();
    let (number, factor) = if let Some(n) = t.strip_suffix("us") {
        (n, 0.001)
    } else if let Some(n) = t.strip_suffix("ms") {
        (n, 1.0)
    } else if let Some(n) = t.strip_suffix('s') {
        (n, 1000.0)
    } else {
        return None;
    };
    number.parse::<f64>().ok().map(|n| n * factor)
}

fn run_wrk(ctx: &Ctx, backend: Backend, head: i64, opts: &Options) -> anyhow::Result<Row> {
    let seconds = opts.duration.as_secs().max(1);
    let url = format!("http://{}{}?since={head}", ctx.addr, ctx.changes_path());
    let args = wrk_command(&url, &ctx.devices[0].1, opts.connections, seconds);
    let cpu_start = Cpu::now();
    let output = Command::new(&args[0])
        .args(&args[1..])
        .output()
        .context("run wrk")?;
    let cpu_end = Cpu::now();
    let text = String::from_utf8_lossy(&output.stdout).into_owned();
    if !output.status.success() {
        bail!(
            "wrk failed: {text}{}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let mut row = Row {
        backend: backend.name(),
        scenario: "pull-nochange".into(),
        tool: "wrk",
        requests: 0,
        seconds: seconds as f64,
        rps: f64::NAN,
        p50_ms: f64::NAN,
        p99_ms: f64::NAN,
        errors: 0,
        warmup_errors: 0,
        server_cpu: f64::NAN,
        client_cpu: f64::NAN,
        machine_cpu: f64::NAN,
        first_error: None,
    };
    for line in text.lines() {
        let words: Vec<&str> = line.split_whitespace().collect();
        match words.as_slice() {
            ["50%", v] => row.p50_ms = wrk_ms(v).unwrap_or(f64::NAN),
            ["99%", v] => row.p99_ms = wrk_ms(v).unwrap_or(f64::NAN),
            ["Requests/sec:", v] => row.rps = v.parse().unwrap_or(f64::NAN),
            [n, "requests", "in", ..] => row.requests = n.parse().unwrap_or(0),
            ["Non-2xx", "or", "3xx", "responses:", n] => {
                row.errors += n.parse::<u64>().unwrap_or(0)
            }
            ["Socket", "errors:", rest @ ..] => {
                row.errors += rest
                    .iter()
                    .filter_map(|w| w.trim_end_matches(',').parse::<u64>().ok())
                    .sum::<u64>();
            }
            _ => {}
        }
    }
    // The client share is wrk's (a waited-for child) plus this process's idle generator.
    (row.server_cpu, row.client_cpu, row.machine_cpu) = cpu_start.shares(cpu_end);
    if row.errors > 0 {
        row.first_error = Some("wrk counted non-2xx answers or socket errors".into());
    }
    Ok(row)
}

// --------------------------------------------------------------- breakdown

#[derive(Debug, Clone)]
struct Step {
    backend: &'static str,
    name: String,
    ops: u64,
    /// Wall time per operation (1 task) or per completed op (N tasks), µs.
    us_per_op: f64,
    ops_per_sec: f64,
}

impl Step {
    fn new(backend: Backend, name: impl Into<String>, ops: u64, elapsed: Duration) -> Self {
        let secs = elapsed.as_secs_f64();
        Self {
            backend: backend.name(),
            name: name.into(),
            ops,
            us_per_op: secs * 1e6 / ops as f64,
            ops_per_sec: ops as f64 / secs,
        }
    }

    fn json(&self) -> Value {
        json!({
            "backend": self.backend,
            "step": self.name,
            "ops": self.ops,
            "us_per_op": round(self.us_per_op, 2),
            "ops_per_sec": round(self.ops_per_sec, 0),
        })
    }
}

/// Runs `op` `per_task` times in each of `tasks` tasks; wall time.
async fn concurrently<F, Fut>(tasks: usize, per_task: u64, op: F) -> anyhow::Result<Duration>
where
    F: Fn() -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = anyhow::Result<()>> + Send,
{
    let op = Arc::new(op);
    let started = Instant::now();
    let handles: Vec<_> = (0..tasks)
        .map(|_| {
            let op = Arc::clone(&op);
            tokio::spawn(async move {
                for _ in 0..per_task {
                    op().await?;
                }
                anyhow::Ok(())
            })
        })
        .collect();
    for h in handles {
        h.await??;
    }
    Ok(started.elapsed())
}

const HEAD_SQL: &str = "SELECT revision, manifest FROM vaults WHERE id = $1 AND account_id = $2";
const RECORDS_SQL: &str = "SELECT item_id, version, revision, deleted, wrapped_key, overview, details \
     FROM records WHERE vault_id = $1 AND revision > $2 AND revision <= $3 ORDER BY revision LIMIT $4";

/// What the store's pull does, on a pool of our own, and cheaper variants:
/// the same transaction without the ping `test_before_acquire` sends on
/// every acquire, and a single statement (no transaction), which is all a
/// no-change pull needs once the head shows there is nothing new.
macro_rules! pull_variants {
    ($steps:ident, $backend:expr, $pool_options:expr, $connect:expr, $begin:expr,
     $tasks:expr, $per_task:expr, $vault:expr, $account:expr, $since:expr) => {{
        use sqlx::Row as _;
        for (test, label) in [
            (true, "ping on acquire, as the server"),
            (false, "no ping on acquire"),
        ] {
            let pool = $pool_options
                .test_before_acquire(test)
                .connect_with($connect.clone())
                .await?;
            let (p, vault, account, since) =
                (pool.clone(), $vault.clone(), $account.clone(), $since);
            let elapsed = concurrently($tasks, $per_task, move || {
                let (pool, vault, account) = (p.clone(), vault.clone(), account.clone());
                async move {
                    let mut tx = pool.begin_with($begin).await?;
                    let row = sqlx::query(HEAD_SQL)
                        .bind(&vault)
                        .bind(&account)
                        .fetch_one(&mut *tx)
                        .await?;
                    let head: i64 = row.try_get("revision")?;
                    let records = sqlx::query(RECORDS_SQL)
                        .bind(&vault)
                        .bind(since)
                        .bind(head)
                        .bind(500i64)
                        .fetch_all(&mut *tx)
                        .await?;
                    std::hint::black_box(records);
                    tx.commit().await?;
                    Ok(())
                }
            })
            .await?;
            $steps.push(Step::new(
                $backend,
                format!("sqlx: BEGIN + 2 SELECT + COMMIT, {label}, N tasks"),
                $per_task * $tasks as u64,
                elapsed,
            ));
            if !test {
                let (p, vault, account) = (pool.clone(), $vault.clone(), $account.clone());
                let elapsed = concurrently($tasks, $per_task, move || {
                    let (pool, vault, account) = (p.clone(), vault.clone(), account.clone());
                    async move {
                        let row = sqlx::query(HEAD_SQL)
                            .bind(&vault)
                            .bind(&account)
                            .fetch_one(&pool)
                            .await?;
                        std::hint::black_box(row.try_get::<i64, _>("revision")?);
                        Ok(())
                    }
                })
                .await?;
                $steps.push(Step::new(
                    $backend,
                    "sqlx: 1 SELECT of the head (no tx), no ping on acquire, N tasks",
                    $per_task * $tasks as u64,
                    elapsed,
                ));
            }
            pool.close().await;
        }
    }};
}

/// SQLite's write path: short write transactions (`BEGIN IMMEDIATE`, one
/// UPDATE, COMMIT) from many tasks over 8 connections, as the store runs
/// them (waiters spin in SQLite's busy handler, which sleeps 1…100 ms), and
/// queued in-process behind an async mutex instead.
async fn write_lock_variants(
    steps: &mut Vec<Step>,
    connect: sqlx::sqlite::SqliteConnectOptions,
    tasks: usize,
    vault: &str,
) -> anyhow::Result<()> {
    let pool = sqlx::sqlite::SqlitePoolOptions::new()
        .max_connections(8)
        .connect_with(connect)
        .await?;
    let per_task = (4_000 / tasks as u64).max(1);
    for (queued, label) in [
        (false, "as the store (busy handler)"),
        (true, "queued behind a tokio Mutex"),
    ] {
        let lock = Arc::new(tokio::sync::Mutex::new(()));
        let (pool, vault) = (pool.clone(), vault.to_owned());
        let slowest = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let max = Arc::clone(&slowest);
        let elapsed = concurrently(tasks, per_task, move || {
            let (pool, vault, lock, max) = (
                pool.clone(),
                vault.clone(),
                Arc::clone(&lock),
                Arc::clone(&max),
            );
            async move {
                let started = Instant::now();
                let _turn = if queued {
                    Some(lock.lock_owned().await)
                } else {
                    None
                };
                let mut tx = pool.begin_with("BEGIN IMMEDIATE").await?;
                sqlx::query("UPDATE vaults SET revision = revision WHERE id = $1")
                    .bind(&vault)
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
                let us = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
                max.fetch_max(us, std::sync::atomic::Ordering::Relaxed);
                Ok(())
            }
        })
        .await?;
        let slowest_ms = slowest.load(std::sync::atomic::Ordering::Relaxed) as f64 / 1000.0;
        steps.push(Step::new(
            Backend::Sqlite,
            format!("sqlx: write tx, {label}, N tasks (slowest {slowest_ms:.1} ms)"),
            per_task * tasks as u64,
            elapsed,
        ));
    }
    pool.close().await;
    Ok(())
}

/// Server-side steps of a no-change pull, timed in-process (no HTTP):
/// the auth cache hit, the store (and cheaper ways to ask the database the
/// same), JSON encoding, the middleware stack. Backend-independent steps
/// run for SQLite only.
async fn breakdown(
    state: AppState,
    ctx: &Ctx,
    head: i64,
    connections: usize,
    backend: Backend,
    url: &str,
) -> anyhow::Result<Vec<Step>> {
    use axum::body::Body;
    use axum::http::{Request, header};
    use http_body_util::BodyExt as _;
    use tower::ServiceExt as _;

    let mut steps = Vec::new();
    let token = ctx.devices[0].1.clone();
    let vault = ctx.vault;
    let account_id = state
        .cache
        .get_session(&openk_server::auth::token_hash(&token))
        .await?
        .ok_or_else(|| anyhow!("the bench token is not cached"))?
        .account_id;
    let tasks = connections.max(1);
    let per_task = (20_000 / tasks as u64).max(1);

    if backend == Backend::Sqlite {
        let n = 200_000u64;
        let t = Instant::now();
        for _ in 0..n {
            let hash = openk_server::auth::token_hash(std::hint::black_box(&token));
            std::hint::black_box(state.cache.get_session(&hash).await?);
        }
        steps.push(Step::new(
            backend,
            "auth: token_hash + cache.get_session (hit)",
            n,
            t.elapsed(),
        ));

        let pulled = state.store.pull(account_id, vault, head, 500).await?;
        let page = ChangesPage {
            vault_id: vault,
            head: pulled.head,
            records: pulled.records,
            has_more: false,
            next_since: head,
            manifest: pulled.manifest.map(openk_server::api::types::B64),
        };
        let t = Instant::now();
        for _ in 0..n {
            std::hint::black_box(serde_json::to_vec(std::hint::black_box(&page))?);
        }
        steps.push(Step::new(
            backend,
            format!("serde_json ChangesPage (0 records, {MANIFEST_LEN} B manifest)"),
            n,
            t.elapsed(),
        ));
    }

    let n = 5_000u64;
    let t = Instant::now();
    for _ in 0..n {
        state.store.ping().await?;
    }
    steps.push(Step::new(
        backend,
        "store.ping (SELECT 1), 1 task",
        n,
        t.elapsed(),
    ));

    let t = Instant::now();
    for _ in 0..n {
        std::hint::black_box(state.store.pull(account_id, vault, head, 500).await?);
    }
    steps.push(Step::new(
        backend,
        "store.pull since=head, 1 task",
        n,
        t.elapsed(),
    ));

    let store = Arc::clone(&state.store);
    let elapsed = concurrently(tasks, per_task, move || {
        let store = Arc::clone(&store);
        async move {
            std::hint::black_box(store.pull(account_id, vault, head, 500).await?);
            Ok(())
        }
    })
    .await?;
    steps.push(Step::new(
        backend,
        "store.pull since=head, N tasks",
        per_task * tasks as u64,
        elapsed,
    ));

    let (vault_text, account_text) = (vault.to_string(), account_id.to_string());
    match backend {
        Backend::Sqlite => {
            let path = url.strip_prefix("sqlite://").unwrap_or(url);
            let connect = sqlx::sqlite::SqliteConnectOptions::new()
                .filename(path)
                .journal_mode(sqlx::sqlite::SqliteJournalMode::Wal)
                .synchronous(sqlx::sqlite::SqliteSynchronous::Normal)
                .busy_timeout(Duration::from_secs(10))
                .foreign_keys(true);
            pull_variants!(
                steps,
                backend,
                sqlx::sqlite::SqlitePoolOptions::new().max_connections(8),
                connect,
                "BEGIN",
                tasks,
                per_task,
                vault_text,
                account_text,
                head
            );
            write_lock_variants(&mut steps, connect, tasks, &vault_text).await?;
        }
        Backend::Postgres => {
            let connect: sqlx::postgres::PgConnectOptions = url.parse()?;
            pull_variants!(
                steps,
                backend,
                sqlx::postgres::PgPoolOptions::new().max_connections(16),
                connect,
                "BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY",
                tasks,
                per_task,
                vault_text,
                account_text,
                head
            );
        }
    }

    let app = openk_server::router(state.clone());
    let get = |uri: String, token: Option<String>| {
        let mut b = Request::builder().uri(uri);
        if let Some(t) = token {
            b = b.header(header::AUTHORIZATION, format!("Bearer {t}"));
        }
        b.body(Body::empty()).map_err(anyhow::Error::from)
    };
    if backend == Backend::Sqlite {
        let n = 50_000u64;
        let t = Instant::now();
        for _ in 0..n {
            let reply = app.clone().oneshot(get("/healthz".into(), None)?).await?;
            std::hint::black_box(reply.into_body().collect().await?.to_bytes());
        }
        steps.push(Step::new(
            backend,
            "router.oneshot GET /healthz (middleware floor)",
            n,
            t.elapsed(),
        ));

        let bare: axum::Router = axum::Router::new().route(
            "/healthz",
            axum::routing::get(|| async { axum::Json(json!({ "status": "ok" })) }),
        );
        let t = Instant::now();
        for _ in 0..n {
            let reply = bare.clone().oneshot(get("/healthz".into(), None)?).await?;
            std::hint::black_box(reply.into_body().collect().await?.to_bytes());
        }
        steps.push(Step::new(
            backend,
            "bare axum Router GET /healthz (no middleware)",
            n,
            t.elapsed(),
        ));
    }

    let uri = format!("/v1/vaults/{vault}/changes?since={head}");
    let n = 5_000u64;
    let t = Instant::now();
    for _ in 0..n {
        let reply = app
            .clone()
            .oneshot(get(uri.clone(), Some(token.clone()))?)
            .await?;
        if !reply.status().is_success() {
            bail!("in-process pull answered {}", reply.status());
        }
        std::hint::black_box(reply.into_body().collect().await?.to_bytes());
    }
    steps.push(Step::new(
        backend,
        "router.oneshot no-change pull, 1 task",
        n,
        t.elapsed(),
    ));

    let elapsed = concurrently(tasks, per_task, move || {
        let app = app.clone();
        let request = get(uri.clone(), Some(token.clone()));
        async move {
            let reply = app.oneshot(request?).await?;
            std::hint::black_box(reply.into_body().collect().await?.to_bytes());
            Ok(())
        }
    })
    .await?;
    steps.push(Step::new(
        backend,
        "router.oneshot no-change pull, N tasks",
        per_task * tasks as u64,
        elapsed,
    ));
    Ok(steps)
}

// ------------------------------------------------------------------ server

struct Server {
    addr: SocketAddr,
    state: AppState,
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
}

fn start_server(rt: &Runtime, url: &str) -> anyhow::Result<Server> {
    let settings = Settings {
        database: url.to_owned(),
        auth_rate_limit: 0,
        // Not u64::MAX: the address limit is this times 4.
        login_failure_limit: 1 << 40,
        // A load test is a few sessions making many requests.
        data_rate_limit: 0,
        ..Settings::for_tests()
    };
    let state = rt.block_on(openk_server::build_state(settings))?;
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = rt.spawn(openk_server::serve_listener(
        state.clone(),
        listener,
        async move {
            let _ = stopped.await;
        },
    ));
    Ok(Server {
        addr,
        state,
        stop,
        task,
    })
}

fn stop_server(rt: &Runtime, server: Server) -> anyhow::Result<()> {
    let Server {
        state, stop, task, ..
    } = server;
    let _ = stop.send(());
    match rt.block_on(async { tokio::time::timeout(Duration::from_secs(40), task).await }) {
        Ok(joined) => joined??,
        Err(_) => eprintln!("the server did not stop within 40 s"),
    }
    drop(state);
    Ok(())
}

/// `url` with its database name replaced by `database`.
fn with_database(url: &str, database: &str) -> String {
    let (base, query) = url
        .split_once('?')
        .map_or((url, None), |(b, q)| (b, Some(q)));
    let authority = base.find("://").map_or(0, |i| i + 3);
    let path = base[authority..]
        .find('/')
        .map_or(base.len(), |i| authority + i);
    let mut out = format!("{}/{database}", &base[..path]);
    if let Some(q) = query {
        out.push('?');
        out.push_str(q);
    }
    out
}

async fn pg_admin(admin_url: &str, sql: &str) -> anyhow::Result<()> {
    let mut conn = sqlx::PgConnection::connect(admin_url)
        .await
        .context("connect to OPENK_TEST_POSTGRES_URL")?;
    conn.execute(sql).await?;
    conn.close().await?;
    Ok(())
}

// -------------------------------------------------------------------- main

fn print_table(rows: &[Row]) {
    println!();
    println!(
        "{:<9} {:<14} {:<5} {:>9} {:>10} {:>8} {:>8} {:>7} {:>8} {:>8} {:>8}",
        "backend",
        "scenario",
        "tool",
        "requests",
        "rps",
        "p50 ms",
        "p99 ms",
        "errors",
        "srv cpu",
        "cli cpu",
        "all cpu"
    );
    println!("{}", "-".repeat(105));
    let pct = |v: f64| {
        if v.is_finite() {
            format!("{v:.0}%")
        } else {
            "-".into()
        }
    };
    for r in rows {
        println!(
            "{:<9} {:<14} {:<5} {:>9} {:>10.1} {:>8.3} {:>8.3} {:>7} {:>8} {:>8} {:>8}",
            r.backend,
            r.scenario,
            r.tool,
            r.requests,
            r.rps,
            r.p50_ms,
            r.p99_ms,
            r.errors,
            pct(r.server_cpu),
            pct(r.client_cpu),
            pct(r.machine_cpu),
        );
    }
    println!(
        "cpu: shares of the whole machine; srv = server threads of this process (not PostgreSQL's \
         processes), cli = load generator (bench threads, or wrk), all = machine busy \
         (also kernel network softirq time and any other process)"
    );
    for r in rows.iter().filter(|r| r.first_error.is_some()) {
        println!(
            "  first error ({} {} {}; {} measured, {} in warm-up): {}",
            r.backend,
            r.scenario,
            r.tool,
            r.errors,
            r.warmup_errors,
            r.first_error.as_deref().unwrap_or("")
        );
    }
}

fn target_dir() -> PathBuf {
    // <target>/release/deps/load-<hash>
    std::env::current_exe()
        .ok()
        .and_then(|exe| Some(exe.parent()?.parent()?.parent()?.to_path_buf()))
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"))
}

struct Outcome {
    rows: Vec<Row>,
    steps: Vec<Step>,
}

/// One backend from set-up to stop; the caller removes the database.
fn bench_backend(
    server_rt: &Runtime,
    client_rt: &Runtime,
    backend: Backend,
    url: &str,
    opts: &Options,
    wrk: bool,
) -> anyhow::Result<Outcome> {
    let server = start_server(server_rt, url)?;
    let addr = server.addr;
    eprintln!(
        "[{}] server on http://{addr}; setting up {} records, {} devices",
        backend.name(),
        opts.records,
        opts.connections
    );
    let mut out = Outcome {
        rows: Vec::new(),
        steps: Vec::new(),
    };
    let result = (|| -> anyhow::Result<()> {
        let ctx = Arc::new(client_rt.block_on(setup(addr, opts))?);
        if let Some(serve_for) = opts.serve_for {
            let head = client_rt.block_on(ctx.head())?;
            let url = format!("http://{addr}{}?since={head}", ctx.changes_path());
            let args = wrk_command(
                &url,
                &ctx.devices[0].1,
                opts.connections,
                opts.duration.as_secs().max(1),
            );
            println!(
                "[{}] serving for {} s; try:\n  {}",
                backend.name(),
                serve_for.as_secs(),
                shell_quote(&args)
            );
            std::thread::sleep(serve_for);
        }
        for &scenario in &opts.scenarios {
            eprintln!(
                "[{}] {} for {:?} (+{:?} warm-up), {} connections",
                backend.name(),
                scenario.name(),
                opts.duration,
                opts.warmup,
                opts.connections
            );
            let row = run_scenario(client_rt, &ctx, backend, scenario, opts)?;
            eprintln!(
                "  {:.0} req/s, p50 {:.2} ms, p99 {:.2} ms, {} errors",
                row.rps, row.p50_ms, row.p99_ms, row.errors
            );
            out.rows.push(row);
            if scenario == Scenario::Pull && wrk {
                let head = client_rt.block_on(ctx.head())?;
                eprintln!(
                    "[{}] pull-nochange with wrk -t2 -c{} -d{}s",
                    backend.name(),
                    opts.connections,
                    opts.duration.as_secs().max(1)
                );
                match run_wrk(&ctx, backend, head, opts) {
                    Ok(row) => {
                        eprintln!(
                            "  {:.0} req/s, p50 {:.2} ms, p99 {:.2} ms, {} errors",
                            row.rps, row.p50_ms, row.p99_ms, row.errors
                        );
                        out.rows.push(row);
                    }
                    Err(e) => eprintln!("  wrk: {e:#}"),
                }
            }
        }
        if opts.breakdown {
            eprintln!(
                "[{}] breakdown of the no-change pull (in-process)",
                backend.name()
            );
            let head = client_rt.block_on(ctx.head())?;
            out.steps = server_rt.block_on(breakdown(
                server.state.clone(),
                &ctx,
                head,
                opts.connections,
                backend,
                url,
            ))?;
        }
        Ok(())
    })();
    stop_server(server_rt, server)?;
    result.map(|()| out)
}

fn main() -> anyhow::Result<()> {
    let opts = Options::parse()?;
    if opts.log {
        openk_server::init_logging(openk_server::LogFormat::Text);
    }
    let cpus = std::thread::available_parallelism().map_or(0, usize::from);
    let wrk = opts.wrk && wrk_installed();
    // Other work on the machine skews every figure: say how busy it was.
    let loadavg = std::fs::read_to_string("/proc/loadavg")
        .map(|t| t.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default();
    eprintln!("load average at start: {loadavg}");
    eprintln!(
        "OpenK server load benchmark: {cpus} CPUs, {} connections, {:?} per scenario, server {} + client {} threads, wrk {}",
        opts.connections,
        opts.duration,
        opts.server_threads,
        opts.client_threads,
        if wrk {
            "found"
        } else if opts.wrk {
            "not installed (apt-get install -y wrk)"
        } else {
            "off"
        }
    );
    let server_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(opts.server_threads)
        .thread_name("bench-server")
        .enable_all()
        .build()?;
    let client_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(opts.client_threads)
        .thread_name("bench-client")
        .enable_all()
        .build()?;

    let mut rows = Vec::new();
    let mut steps = Vec::new();
    let mut skipped = BTreeMap::new();
    for &backend in &opts.backends {
        let outcome = match backend {
            Backend::Sqlite => {
                let dir = tempfile::tempdir()?;
                let url = format!("sqlite://{}", dir.path().join("bench.db").display());
                bench_backend(&server_rt, &client_rt, backend, &url, &opts, wrk)
            }
            Backend::Postgres => {
                let Ok(admin) = std::env::var("OPENK_TEST_POSTGRES_URL") else {
                    eprintln!("[postgres] skipped: OPENK_TEST_POSTGRES_URL is not set");
                    skipped.insert("postgres", "OPENK_TEST_POSTGRES_URL not set");
                    continue;
                };
                let name = format!("openk_bench_{:016x}", rand::random::<u64>());
                server_rt.block_on(pg_admin(&admin, &format!("CREATE DATABASE \"{name}\"")))?;
                let outcome = bench_backend(
                    &server_rt,
                    &client_rt,
                    backend,
                    &with_database(&admin, &name),
                    &opts,
                    wrk,
                );
                if let Err(e) = server_rt.block_on(pg_admin(
                    &admin,
                    &format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"),
                )) {
                    eprintln!("[postgres] could not drop {name}: {e:#}");
                }
                outcome
            }
        };
        let outcome = outcome.with_context(|| format!("{} benchmark", backend.name()))?;
        rows.extend(outcome.rows);
        steps.extend(outcome.steps);
    }

    print_table(&rows);
    if !steps.is_empty() {
        println!();
        println!(
            "breakdown of the no-change pull, in-process, no HTTP (\"N tasks\" = {} concurrent tasks)",
            opts.connections
        );
        println!(
            "{:<9} {:<76} {:>7} {:>9} {:>9}",
            "backend", "step", "ops", "µs/op", "ops/s"
        );
        println!("{}", "-".repeat(114));
        for s in &steps {
            println!(
                "{:<9} {:<76} {:>7} {:>9.2} {:>9.0}",
                s.backend, s.name, s.ops, s.us_per_op, s.ops_per_sec
            );
        }
    }

    let budget_row = rows
        .iter()
        .find(|r| r.backend == "sqlite" && r.scenario == "pull-nochange" && r.tool == "bench");
    let budget = budget_row.map(|r| {
        let pass = r.rps >= PULL_BUDGET_RPS && r.errors == 0;
        json!({ "backend": "sqlite", "scenario": "pull-nochange", "min_rps": PULL_BUDGET_RPS, "rps": round(r.rps, 1), "pass": pass })
    });
    println!();
    match &budget {
        Some(b) => println!(
            "budget: no-change pull on SQLite ≥ {PULL_BUDGET_RPS:.0} req/s: {} ({} req/s)",
            if b["pass"].as_bool() == Some(true) {
                "PASS"
            } else {
                "FAIL"
            },
            b["rps"]
        ),
        None => println!("budget: not measured (run the pull scenario on sqlite)"),
    }
    let mut caveat = String::new();
    let _ = write!(
        caveat,
        "the load generator ({} threads) shares the machine's {cpus} CPUs with the server; 'cli cpu' is its share, so the server alone would do more",
        opts.client_threads
    );
    println!("caveat: {caveat}");

    let report = json!({
        "machine": { "cpus": cpus, "loadavg_at_start": loadavg },
        "settings": {
            "duration_s": opts.duration.as_secs_f64(),
            "warmup_s": opts.warmup.as_secs_f64(),
            "connections": opts.connections,
            "client_threads": opts.client_threads,
            "server_threads": opts.server_threads,
            "records": opts.records,
            "server_logging": opts.log,
        },
        "results": rows.iter().map(Row::json).collect::<Vec<_>>(),
        "breakdown": steps.iter().map(Step::json).collect::<Vec<_>>(),
        "budget": budget,
        "skipped": skipped,
        "caveat": caveat,
    });
    let path = opts
        .json
        .clone()
        .unwrap_or_else(|| target_dir().join("bench-load.json"));
    std::fs::write(&path, serde_json::to_string_pretty(&report)? + "\n")
        .with_context(|| format!("write {}", path.display()))?;
    println!("wrote {}", path.display());
    Ok(())
}
