//! Helpers shared by the server's integration tests: an in-process server
//! (`router(state).oneshot(..)`), fake but realistic accounts and records,
//! problem-document checks, per-test PostgreSQL databases and Redis
//! prefixes, and a real `openk-server` process spoken to over raw HTTP/1.1.
//!
//! Every byte a "client" sends here is random: the server must treat it as
//! opaque ciphertext and cannot tell the difference.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{HeaderMap, Method, Request, StatusCode, header};
use base64::Engine as _;
use http_body_util::BodyExt as _;
use openk_server::{AppState, Settings};
use rand::RngCore as _;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tower::ServiceExt as _;
use uuid::Uuid;

/// The address in-process requests come from unless a test says otherwise.
pub const CLIENT: &str = "203.0.113.10:50000";

// ------------------------------------------------------------------ bytes

#[must_use]
pub fn random_bytes(n: usize) -> Vec<u8> {
    let mut b = vec![0u8; n];
    rand::thread_rng().fill_bytes(&mut b);
    b
}

#[must_use]
pub fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

#[must_use]
pub fn unb64(v: &Value) -> Vec<u8> {
    base64::engine::general_purpose::STANDARD
        .decode(v.as_str().unwrap_or_else(|| panic!("not a string: {v}")))
        .unwrap_or_else(|e| panic!("not base64: {v}: {e}"))
}

/// A fake ciphertext blob: `version(1) || nonce(24) || ciphertext+tag`.
#[must_use]
pub fn blob(len: usize) -> String {
    let mut b = random_bytes(len.max(41));
    b[0] = 1;
    b64(&b)
}

/// The KDF parameters test accounts register with (the recommended floor).
#[must_use]
pub fn kdf() -> Value {
    json!({ "memory_kib": 19456, "iterations": 2, "parallelism": 1 })
}

// ------------------------------------------------------------------ responses

/// A response, fully read.
#[derive(Debug)]
pub struct Resp {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

impl Resp {
    #[must_use]
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    #[track_caller]
    #[must_use]
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {} {}", self.status, self.text()))
    }

    #[must_use]
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// Asserts the status and returns the JSON body (`Null` when empty).
    #[track_caller]
    pub fn expect(&self, status: u16) -> Value {
        assert_eq!(
            self.status.as_u16(),
            status,
            "unexpected status; body: {}",
            self.text()
        );
        if self.body.is_empty() {
            Value::Null
        } else {
            self.json()
        }
    }

    /// Asserts an RFC 9457 problem document with this status and `code`,
    /// carrying the request id of the `x-request-id` header; returns it.
    #[track_caller]
    pub fn problem(&self, status: u16, code: &str) -> Value {
        assert_eq!(
            self.status.as_u16(),
            status,
            "unexpected status; body: {}",
            self.text()
        );
        assert_eq!(
            self.header("content-type"),
            Some("application/problem+json"),
            "content type of a {status}; body: {}",
            self.text()
        );
        let p = self.json();
        assert_eq!(p["code"], code, "problem code: {p}");
        assert_eq!(p["status"], status, "problem status: {p}");
        assert!(p["title"].is_string(), "problem title: {p}");
        assert_eq!(
            p["type"],
            format!("https://openk.invalid/errors#{code}"),
            "problem type: {p}"
        );
        let id = self.header("x-request-id").expect("an x-request-id header");
        assert!(!id.is_empty());
        assert_eq!(
            p["request_id"], id,
            "the problem carries the request id: {p}"
        );
        if let Some(detail) = p["detail"].as_str() {
            for leak in [
                "sqlx",
                "SQLITE",
                "sqlite",
                "postgres",
                "panicked",
                "backtrace",
                "redis",
            ] {
                assert!(!detail.contains(leak), "a 4xx detail leaks internals: {p}");
            }
        }
        p
    }
}

// ------------------------------------------------------------------ accounts

/// What a client knows about its account. All key material is random.
#[derive(Debug, Clone)]
pub struct TestAccount {
    pub id: Uuid,
    pub email: String,
    pub auth_key: Vec<u8>,
    pub salt: Vec<u8>,
    pub wrapped_account_key: Vec<u8>,
    pub public_x25519: Vec<u8>,
    pub public_ed25519: Vec<u8>,
    pub wrapped_private_keys: Vec<u8>,
    /// The first device.
    pub device: Uuid,
}

impl TestAccount {
    #[must_use]
    pub fn new(email: &str) -> Self {
        Self {
            id: Uuid::now_v7(),
            email: email.to_owned(),
            auth_key: random_bytes(32),
            salt: random_bytes(16),
            wrapped_account_key: random_bytes(60),
            public_x25519: random_bytes(32),
            public_ed25519: random_bytes(32),
            wrapped_private_keys: random_bytes(60),
            device: Uuid::now_v7(),
        }
    }

    /// A fresh account with a unique email.
    #[must_use]
    pub fn unique(name: &str) -> Self {
        Self::new(&format!("{name}-{}@example.org", Uuid::now_v7().simple()))
    }

    #[must_use]
    pub fn register_body(&self) -> Value {
        json!({
            "account_id": self.id,
            "email": self.email,
            "kdf": kdf(),
            "salt": b64(&self.salt),
            "auth_key": b64(&self.auth_key),
            "wrapped_account_key": b64(&self.wrapped_account_key),
            "public_x25519": b64(&self.public_x25519),
            "public_ed25519": b64(&self.public_ed25519),
            "wrapped_private_keys": b64(&self.wrapped_private_keys),
            "device": { "id": self.device, "name": "Laptop" },
        })
    }

    #[must_use]
    pub fn login_body(&self, device: Uuid, name: &str) -> Value {
        json!({
            "email": self.email,
            "auth_key": b64(&self.auth_key),
            "device": { "id": device, "name": name },
        })
    }
}

/// A device's tokens.
#[derive(Debug, Clone)]
pub struct Tokens {
    pub account_id: Uuid,
    pub device_id: Uuid,
    pub access: String,
    pub refresh: String,
}

impl Tokens {
    #[track_caller]
    #[must_use]
    pub fn from_json(v: &Value) -> Self {
        let uuid = |k: &str| {
            v[k].as_str()
                .and_then(|s| Uuid::parse_str(s).ok())
                .unwrap_or_else(|| panic!("{k}: {v}"))
        };
        let text = |k: &str| {
            v[k].as_str()
                .unwrap_or_else(|| panic!("{k}: {v}"))
                .to_owned()
        };
        let t = Self {
            account_id: uuid("account_id"),
            device_id: uuid("device_id"),
            access: text("access_token"),
            refresh: text("refresh_token"),
        };
        assert!(t.access.starts_with("okat_") && t.access.len() > 40, "{v}");
        assert!(
            t.refresh.starts_with("okrt_") && t.refresh.len() > 40,
            "{v}"
        );
        assert!(
            v["access_expires_in"].as_u64().is_some_and(|s| s > 0),
            "{v}"
        );
        assert!(
            v["refresh_expires_in"].as_u64().is_some_and(|s| s > 0),
            "{v}"
        );
        t
    }
}

// ------------------------------------------------------------------ records

/// A new or updated item carrying fresh random blobs.
#[must_use]
pub fn change(item: Uuid, base_revision: i64, version: u64) -> Value {
    json!({
        "item_id": item,
        "base_revision": base_revision,
        "version": version,
        "wrapped_key": blob(60),
        "overview": blob(120),
        "details": blob(300),
    })
}

/// A purge of an item.
#[must_use]
pub fn tombstone(item: Uuid, base_revision: i64, version: u64) -> Value {
    json!({ "item_id": item, "base_revision": base_revision, "version": version, "deleted": true })
}

#[must_use]
pub fn batch(client_change_id: Uuid, changes: Vec<Value>) -> Value {
    json!({ "client_change_id": client_change_id, "changes": changes, "manifest": blob(80) })
}

#[must_use]
pub fn vault_body(id: Uuid) -> Value {
    json!({ "id": id, "wrapped_key": blob(72), "meta": blob(64) })
}

// ------------------------------------------------------------------ in-process server

/// One in-process server node: its state and router. Guards (temporary
/// directories, PostgreSQL databases) live as long as it.
pub struct Server {
    pub state: AppState,
    app: axum::Router,
    pub from: SocketAddr,
    guards: Vec<Box<dyn std::any::Any + Send>>,
}

impl Server {
    /// A server on `settings` (its `database` and `redis` included).
    pub async fn start(settings: Settings) -> Self {
        let state = openk_server::build_state(settings)
            .await
            .expect("build the server state");
        Self::with_state(state)
    }

    /// A router on an existing state (e.g. one also served on a socket).
    #[must_use]
    pub fn with_state(state: AppState) -> Self {
        Self {
            app: openk_server::router(state.clone()),
            state,
            from: client(CLIENT),
            guards: Vec::new(),
        }
    }

    /// The in-memory store and cache.
    pub async fn memory() -> Self {
        Self::start(Settings {
            database: "memory".into(),
            ..Settings::for_tests()
        })
        .await
    }

    /// A temporary SQLite file.
    pub async fn sqlite() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let url = format!("sqlite://{}", dir.path().join("s.db").display());
        Self::start(Settings {
            database: url,
            ..Settings::for_tests()
        })
        .await
        .guard(dir)
    }

    /// A fresh PostgreSQL database, or `None` (after saying so) when
    /// `OPENK_TEST_POSTGRES_URL` is not set; set but unreachable panics.
    pub async fn postgres() -> Option<Self> {
        let db = PgDatabase::create("openk_api").await?;
        let server = Self::start(Settings {
            database: db.url(),
            ..Settings::for_tests()
        })
        .await;
        Some(server.guard(db))
    }

    /// Keeps `guard` alive as long as the server.
    #[must_use]
    pub fn guard(mut self, guard: impl std::any::Any + Send) -> Self {
        self.guards.push(Box::new(guard));
        self
    }

    /// Sends a request as is (adding the client address when missing).
    pub async fn send(&self, mut req: Request<Body>) -> Resp {
        if req.extensions().get::<ConnectInfo<SocketAddr>>().is_none() {
            req.extensions_mut().insert(ConnectInfo(self.from));
        }
        let res = self
            .app
            .clone()
            .oneshot(req)
            .await
            .expect("the router is infallible");
        let (parts, body) = res.into_parts();
        let body = body
            .collect()
            .await
            .expect("read the body")
            .to_bytes()
            .to_vec();
        Resp {
            status: parts.status,
            headers: parts.headers,
            body,
        }
    }

    /// Sends a request and returns the response with its body unread
    /// (for streams that do not end by themselves).
    pub async fn open(&self, mut req: Request<Body>) -> axum::response::Response {
        if req.extensions().get::<ConnectInfo<SocketAddr>>().is_none() {
            req.extensions_mut().insert(ConnectInfo(self.from));
        }
        self.app
            .clone()
            .oneshot(req)
            .await
            .expect("the router is infallible")
    }

    /// A JSON request from `from`.
    pub async fn call_from(
        &self,
        from: SocketAddr,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<&Value>,
    ) -> Resp {
        let mut b = Request::builder().method(method).uri(path);
        if let Some(t) = token {
            b = b.header(header::AUTHORIZATION, format!("Bearer {t}"));
        }
        let req = match body {
            Some(v) => b
                .header(header::CONTENT_TYPE, "application/json")
                .body(Body::from(serde_json::to_vec(v).expect("json")))
                .expect("request"),
            None => b.body(Body::empty()).expect("request"),
        };
        let mut req = req;
        req.extensions_mut().insert(ConnectInfo(from));
        self.send(req).await
    }

    pub async fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<&Value>,
    ) -> Resp {
        self.call_from(self.from, method, path, token, body).await
    }

    pub async fn get(&self, path: &str, token: Option<&str>) -> Resp {
        self.call(Method::GET, path, token, None).await
    }

    pub async fn post(&self, path: &str, token: Option<&str>, body: &Value) -> Resp {
        self.call(Method::POST, path, token, Some(body)).await
    }

    /// A raw body with an optional content type.
    pub async fn post_raw(
        &self,
        path: &str,
        token: Option<&str>,
        content_type: Option<&str>,
        body: Vec<u8>,
    ) -> Resp {
        let mut b = Request::builder().method(Method::POST).uri(path);
        if let Some(t) = token {
            b = b.header(header::AUTHORIZATION, format!("Bearer {t}"));
        }
        if let Some(ct) = content_type {
            b = b.header(header::CONTENT_TYPE, ct);
        }
        self.send(b.body(Body::from(body)).expect("request")).await
    }

    pub async fn register(&self, account: &TestAccount) -> Tokens {
        let v = self
            .post("/v1/accounts/register", None, &account.register_body())
            .await
            .expect(201);
        let t = Tokens::from_json(&v);
        assert_eq!(t.account_id, account.id);
        assert_eq!(t.device_id, account.device);
        t
    }

    pub async fn login(&self, account: &TestAccount, device: Uuid) -> Tokens {
        let v = self
            .post(
                "/v1/accounts/login",
                None,
                &account.login_body(device, "Phone"),
            )
            .await
            .expect(200);
        let t = Tokens::from_json(&v);
        assert_eq!(t.account_id, account.id);
        assert_eq!(t.device_id, device);
        t
    }

    /// Registers a fresh account; returns it with its first device's tokens.
    pub async fn account(&self, name: &str) -> (TestAccount, Tokens) {
        let a = TestAccount::unique(name);
        let t = self.register(&a).await;
        (a, t)
    }

    /// The server's own id for the account (what the store and the event
    /// bus name), which is not the client's `account.id`.
    pub async fn internal_id(&self, account: &TestAccount) -> Uuid {
        self.state
            .store
            .account_by_email(&openk_server::email::normalize(&account.email).expect("email"))
            .await
            .expect("lookup")
            .expect("the account exists")
            .id
    }

    pub async fn create_vault(&self, token: &str) -> Uuid {
        let id = Uuid::now_v7();
        let v = self
            .post("/v1/vaults", Some(token), &vault_body(id))
            .await
            .expect(201);
        assert_eq!(v["id"], id.to_string());
        assert_eq!(v["revision"], 0);
        id
    }

    pub async fn push(&self, token: &str, vault: Uuid, body: &Value) -> Resp {
        self.post(&format!("/v1/vaults/{vault}/changes"), Some(token), body)
            .await
    }

    /// Pushes and expects every change applied; returns the response.
    pub async fn push_ok(&self, token: &str, vault: Uuid, changes: Vec<Value>) -> Value {
        let v = self
            .push(token, vault, &batch(Uuid::now_v7(), changes))
            .await
            .expect(200);
        assert_eq!(v["conflicts"], json!([]), "{v}");
        v
    }

    pub async fn pull(&self, token: &str, vault: Uuid, since: i64, limit: Option<u32>) -> Value {
        let path = match limit {
            Some(l) => format!("/v1/vaults/{vault}/changes?since={since}&limit={l}"),
            None => format!("/v1/vaults/{vault}/changes?since={since}"),
        };
        self.get(&path, Some(token)).await.expect(200)
    }

    /// The vault's head revision.
    pub async fn head(&self, token: &str, vault: Uuid) -> i64 {
        self.pull(token, vault, 0, Some(1)).await["head"]
            .as_i64()
            .expect("head")
    }

    /// The account's audit kinds, newest first.
    pub async fn audit(&self, token: &str) -> Vec<Value> {
        self.get("/v1/audit?limit=1000", Some(token))
            .await
            .expect(200)
            .as_array()
            .expect("array")
            .clone()
    }
}

#[must_use]
pub fn client(addr: &str) -> SocketAddr {
    addr.parse().expect("socket address")
}

/// `true` for a UUID of version 7 with the RFC 9562 variant.
#[must_use]
pub fn is_uuid_v7(text: &str) -> bool {
    Uuid::parse_str(text)
        .is_ok_and(|u| u.get_version_num() == 7 && u.get_variant() == uuid::Variant::RFC4122)
}

// ------------------------------------------------------------------ PostgreSQL

mod pg;
pub use pg::PgDatabase;

// ------------------------------------------------------------------ Redis

/// `OPENK_TEST_REDIS_URL`, or `None` after printing "skipped".
#[must_use]
pub fn redis_url() -> Option<String> {
    let url = std::env::var("OPENK_TEST_REDIS_URL")
        .ok()
        .filter(|u| !u.trim().is_empty());
    if url.is_none() {
        println!("skipped: OPENK_TEST_REDIS_URL not set");
    }
    url
}

/// A cache prefix no other test uses.
#[must_use]
pub fn unique_prefix() -> String {
    format!("openk-test-{}:", Uuid::now_v7())
}

// ------------------------------------------------------------------ a real server process

/// Speaks one HTTP/1.1 request (`Connection: close`) and reads the whole
/// answer: `Ok((status, body))`, or an I/O error when the server went away
/// before answering in full.
pub async fn http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<&Value>,
) -> std::io::Result<(u16, Vec<u8>)> {
    let fut = async {
        let mut stream = tokio::net::TcpStream::connect(addr).await?;
        let payload = body
            .map(|v| serde_json::to_vec(v).expect("json"))
            .unwrap_or_default();
        let mut head = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
        if let Some(t) = token {
            head.push_str(&format!("Authorization: Bearer {t}\r\n"));
        }
        if body.is_some() {
            head.push_str("Content-Type: application/json\r\n");
        }
        head.push_str(&format!("Content-Length: {}\r\n\r\n", payload.len()));
        stream.write_all(head.as_bytes()).await?;
        stream.write_all(&payload).await?;
        let mut raw = Vec::new();
        stream.read_to_end(&mut raw).await?;
        parse_response(&raw)
    };
    tokio::time::timeout(Duration::from_secs(20), fut)
        .await
        .unwrap_or_else(|_| {
            Err(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                "no answer in 20 s",
            ))
        })
}

fn parse_response(raw: &[u8]) -> std::io::Result<(u16, Vec<u8>)> {
    let broken =
        |what: &str| std::io::Error::new(std::io::ErrorKind::UnexpectedEof, what.to_owned());
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| broken("no header end"))?;
    let head = std::str::from_utf8(&raw[..split]).map_err(|_| broken("header not UTF-8"))?;
    let mut lines = head.split("\r\n");
    let status: u16 = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| broken("no status"))?;
    let mut length = None;
    let mut chunked = false;
    for line in lines {
        let Some((k, v)) = line.split_once(':') else {
            continue;
        };
        let (k, v) = (k.trim().to_ascii_lowercase(), v.trim());
        if k == "content-length" {
            length = v.parse::<usize>().ok();
        } else if k == "transfer-encoding" && v.eq_ignore_ascii_case("chunked") {
            chunked = true;
        }
    }
    let rest = &raw[split + 4..];
    if chunked {
        let mut out = Vec::new();
        let mut at = 0;
        loop {
            let end = rest[at..]
                .windows(2)
                .position(|w| w == b"\r\n")
                .ok_or_else(|| broken("chunk size"))?
                + at;
            let size_text =
                std::str::from_utf8(&rest[at..end]).map_err(|_| broken("chunk size"))?;
            let size = usize::from_str_radix(size_text.split(';').next().unwrap_or("").trim(), 16)
                .map_err(|_| broken("chunk size"))?;
            at = end + 2;
            if size == 0 {
                return Ok((status, out));
            }
            let chunk = rest
                .get(at..at + size)
                .ok_or_else(|| broken("short chunk"))?;
            out.extend_from_slice(chunk);
            at += size + 2;
        }
    }
    match length {
        Some(n) if rest.len() >= n => Ok((status, rest[..n].to_vec())),
        Some(_) => Err(broken("short body")),
        None => Ok((status, rest.to_vec())),
    }
}

/// A `127.0.0.1` port that was free a moment ago.
#[must_use]
pub fn free_port() -> SocketAddr {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind port 0");
    l.local_addr().expect("local address")
}

/// A running `openk-server` binary on an SQLite file; its stderr goes to a file.
pub struct Process {
    pub child: std::process::Child,
    pub addr: SocketAddr,
    pub stderr: PathBuf,
}

impl Process {
    /// Starts the binary on `db` with `OPENK_LOG=log` and waits until `/healthz` answers.
    pub async fn start(db: &Path, log: &str, stderr: &Path) -> Self {
        Self::start_with(db, log, stderr, &[]).await
    }

    /// [`Process::start`] with extra command-line arguments.
    pub async fn start_with(db: &Path, log: &str, stderr: &Path, extra: &[&str]) -> Self {
        let addr = free_port();
        let err = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(stderr)
            .expect("stderr file");
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_openk-server"));
        for (k, _) in std::env::vars() {
            if k.starts_with("OPENK_SERVER_") || k == "RUST_LOG" {
                cmd.env_remove(k);
            }
        }
        let child = cmd
            .arg("--database")
            .arg(format!("sqlite://{}", db.display()))
            .arg("--listen")
            .arg(addr.to_string())
            .args(extra)
            .env("OPENK_LOG", log)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::from(err))
            .spawn()
            .expect("start openk-server");
        let mut p = Self {
            child,
            addr,
            stderr: stderr.to_path_buf(),
        };
        p.wait_ready().await;
        p
    }

    async fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok((200, _)) = http(self.addr, "GET", "/healthz", None, None).await {
                return;
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!(
                    "openk-server exited ({status}) before it was ready:\n{}",
                    std::fs::read_to_string(&self.stderr).unwrap_or_default()
                );
            }
            assert!(
                Instant::now() < deadline,
                "openk-server was not ready in 20 s"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// SIGKILL, and reap.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM (through `kill(1)`: this crate forbids `unsafe`).
    pub fn terminate(&self) {
        let ok = std::process::Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status()
            .expect("run kill")
            .success();
        assert!(ok, "kill -TERM failed");
    }

    /// Waits for the exit (at most `within`).
    pub async fn wait_exit(&mut self, within: Duration) -> std::process::ExitStatus {
        let deadline = Instant::now() + within;
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                return status;
            }
            if Instant::now() > deadline {
                self.kill();
                panic!("openk-server did not exit within {within:?}");
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            self.kill();
        }
    }
}

/// Runs `story(&Server)` as three tests in a module named after it: on
/// the in-memory store, on SQLite, and on PostgreSQL when
/// `OPENK_TEST_POSTGRES_URL` is set. Test files use it after
/// `#[macro_use] mod common;`.
#[allow(unused_macros)]
macro_rules! on_every_backend {
    ($story:ident) => {
        mod $story {
            #[tokio::test]
            async fn memory() {
                super::$story(&common::Server::memory().await).await;
            }

            #[tokio::test]
            async fn sqlite() {
                super::$story(&common::Server::sqlite().await).await;
            }

            #[tokio::test]
            async fn postgres() {
                if let Some(s) = common::Server::postgres().await {
                    super::$story(&s).await;
                }
            }
            use super::common;
        }
    };
}
