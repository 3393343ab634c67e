//! The server cannot be turned against its users (issue 10): each test
//! first makes the attack, then checks it changes nothing.
//!
//! - a spoofed leftmost `X-Forwarded-For` entry does not buy a new
//!   rate-limit bucket;
//! - a client that trickles its headers, or holds connections open, is
//!   dropped (the real `openk-server` binary over raw TCP);
//! - emails follow one rule: NFC and NFD spellings are one account, a
//!   zero-width copy of an email is refused;
//! - registration can be invite-only or closed;
//! - a storage quota and a per-token request budget, nothing half-stored.

mod common;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{Method, Request, header};
use common::{Process, Server, TestAccount};
use openk_server::{Registration, Settings};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use uuid::Uuid;

const PRELOGIN: &str = "/v1/accounts/prelogin";
const REGISTER: &str = "/v1/accounts/register";

/// A prelogin from the proxy at `proxy` carrying this `X-Forwarded-For`.
async fn prelogin_via(server: &Server, proxy: &str, xff: &str) -> common::Resp {
    let mut req = Request::builder()
        .method(Method::POST)
        .uri(PRELOGIN)
        .header(header::CONTENT_TYPE, "application/json")
        .header("x-forwarded-for", xff)
        .body(Body::from(
            serde_json::to_vec(&json!({ "email": "someone@example.org" })).expect("json"),
        ))
        .expect("request");
    req.extensions_mut()
        .insert(axum::extract::ConnectInfo(common::client(proxy)));
    server.send(req).await
}

// ------------------------------------------------------------------ X-Forwarded-For

#[tokio::test]
async fn a_spoofed_leftmost_forwarded_for_entry_changes_nothing() {
    let server = Server::start(Settings {
        trust_proxy: true,
        auth_rate_limit: 2,
        ..Settings::for_tests()
    })
    .await;
    let proxy = "10.0.0.1:40000";
    // One real client (the proxy appended 198.51.100.7) claims a new
    // address on every request: all of them share its bucket.
    prelogin_via(&server, proxy, "1.1.1.1, 198.51.100.7")
        .await
        .expect(200);
    prelogin_via(&server, proxy, "2.2.2.2, 198.51.100.7")
        .await
        .expect(200);
    let r = prelogin_via(&server, proxy, "3.3.3.3, 198.51.100.7").await;
    r.problem(429, "rate_limited");
    assert!(r.header("retry-after").is_some());
    // Another client behind the same proxy has its own bucket.
    prelogin_via(&server, proxy, "1.1.1.1, 198.51.100.8")
        .await
        .expect(200);
}

#[tokio::test]
async fn two_trusted_hops_take_the_entry_the_outer_proxy_added() {
    let server = Server::start(Settings {
        trust_proxy: true,
        trusted_hops: 2,
        auth_rate_limit: 1,
        ..Settings::for_tests()
    })
    .await;
    let inner = "10.0.0.2:40000";
    prelogin_via(&server, inner, "6.6.6.6, 198.51.100.20, 10.0.0.1")
        .await
        .expect(200);
    prelogin_via(&server, inner, "7.7.7.7, 198.51.100.20, 10.0.0.1")
        .await
        .problem(429, "rate_limited");
    prelogin_via(&server, inner, "6.6.6.6, 198.51.100.21, 10.0.0.1")
        .await
        .expect(200);
}

// ------------------------------------------------------------------ slow clients

/// Reads until the server closes the connection (or `within` passes):
/// how long that took, or `None` if it stayed open.
async fn closed_within(
    mut read: tokio::net::tcp::OwnedReadHalf,
    within: Duration,
) -> Option<Duration> {
    let start = Instant::now();
    let mut buf = [0u8; 1024];
    loop {
        match tokio::time::timeout_at((start + within).into(), read.read(&mut buf)).await {
            Err(_) => return None,
            Ok(Ok(0) | Err(_)) => return Some(start.elapsed()),
            Ok(Ok(_)) => {}
        }
    }
}

async fn server_process(extra: &[&str]) -> (tempfile::TempDir, Process) {
    let dir = tempfile::tempdir().expect("tmp");
    let p = Process::start_with(
        &dir.path().join("s.db"),
        "warn",
        &dir.path().join("stderr"),
        extra,
    )
    .await;
    (dir, p)
}

#[tokio::test]
async fn a_client_that_trickles_its_headers_is_dropped() {
    let (_dir, p) = server_process(&["--header-timeout", "1"]).await;
    let stream = tokio::net::TcpStream::connect(p.addr)
        .await
        .expect("connect");
    let (read, mut write) = stream.into_split();
    // One byte a second, never finishing the head.
    let trickle = tokio::spawn(async move {
        for b in b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: "
            .iter()
            .cycle()
        {
            if write.write_all(&[*b]).await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    });
    let took = closed_within(read, Duration::from_secs(8))
        .await
        .expect("the server closes a connection whose headers trickle in");
    trickle.abort();
    assert!(took < Duration::from_secs(4), "closed after {took:?}");

    // Past the first bytes (hyper's own header timeout from there on).
    let stream = tokio::net::TcpStream::connect(p.addr)
        .await
        .expect("connect");
    let (read, mut write) = stream.into_split();
    write
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-A: 1\r\n")
        .await
        .expect("first bytes");
    let trickle = tokio::spawn(async move {
        loop {
            if write.write_all(b"a").await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    });
    let took = closed_within(read, Duration::from_secs(8))
        .await
        .expect("the server closes a head that never ends");
    trickle.abort();
    assert!(took < Duration::from_secs(4), "closed after {took:?}");

    // A client that connects and says nothing is dropped as well.
    let silent = tokio::net::TcpStream::connect(p.addr)
        .await
        .expect("connect");
    let (read, _write) = silent.into_split();
    let took = closed_within(read, Duration::from_secs(8))
        .await
        .expect("a silent connection is closed");
    assert!(took < Duration::from_secs(4), "closed after {took:?}");

    // Everyone else is served.
    let (status, _) = common::http(p.addr, "GET", "/healthz", None, None)
        .await
        .expect("healthz");
    assert_eq!(status, 200);
}

#[tokio::test]
async fn connections_over_the_limit_are_closed_and_slots_come_back() {
    let (_dir, p) = server_process(&["--max-connections", "2", "--header-timeout", "10"]).await;
    // Two connections the server holds. The start-up probe's connection may
    // still hold a slot for a moment (then one of these is closed): try again.
    let mut held = None;
    for _ in 0..20 {
        let a = tokio::net::TcpStream::connect(p.addr).await.expect("a");
        let b = tokio::net::TcpStream::connect(p.addr).await.expect("b");
        tokio::time::sleep(Duration::from_millis(200)).await;
        let (ar, aw) = a.into_split();
        let (br, bw) = b.into_split();
        let (a_open, b_open) = tokio::join!(
            closed_within(ar, Duration::from_millis(100)),
            closed_within(br, Duration::from_millis(100))
        );
        if a_open.is_none() && b_open.is_none() {
            held = Some((aw, bw));
            break;
        }
    }
    let (a, b) = held.expect("the server holds two connections");
    let third = tokio::net::TcpStream::connect(p.addr).await.expect("c");
    let (read, _write) = third.into_split();
    let took = closed_within(read, Duration::from_secs(8))
        .await
        .expect("a connection over the limit is closed at once");
    assert!(took < Duration::from_secs(5), "closed after {took:?}");
    drop((a, b));
    tokio::time::sleep(Duration::from_millis(200)).await;
    let (status, _) = common::http(p.addr, "GET", "/healthz", None, None)
        .await
        .expect("healthz once the slots are free");
    assert_eq!(status, 200);
}

/// Sends a prelogin head announcing 100 body bytes and `{`, then calls
/// `rest` with the write half; returns what the server answered within
/// 10 s and how long the answer took.
async fn slow_body(
    addr: SocketAddr,
    rest: impl FnOnce(tokio::net::tcp::OwnedWriteHalf) -> tokio::task::JoinHandle<()>,
) -> (String, Duration) {
    let stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let (mut read, mut write) = stream.into_split();
    write
        .write_all(
            b"POST /v1/accounts/prelogin HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
              Content-Length: 100\r\nConnection: close\r\n\r\n{",
        )
        .await
        .expect("head");
    let writer = rest(write);
    let start = Instant::now();
    let mut raw = Vec::new();
    let mut buf = [0u8; 4096];
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    // Until the status line is in (or the connection ends).
    while !raw.windows(2).any(|w| w == b"\r\n") {
        match tokio::time::timeout_at(deadline, read.read(&mut buf)).await {
            Ok(Ok(n)) if n > 0 => raw.extend_from_slice(&buf[..n]),
            _ => break,
        }
    }
    writer.abort();
    (String::from_utf8_lossy(&raw).into_owned(), start.elapsed())
}

#[tokio::test]
async fn a_body_that_stalls_is_cut_off() {
    let (_dir, p) = server_process(&["--body-timeout", "1"]).await;
    // The rest of the body never comes.
    let (answer, took) = slow_body(p.addr, |write| {
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs(30)).await;
            drop(write);
        })
    })
    .await;
    assert!(
        took < Duration::from_secs(5),
        "waited {took:?} for a stalled body"
    );
    assert!(
        answer.is_empty() || answer.starts_with("HTTP/1.1 4"),
        "a stalled body is refused or cut: {answer}"
    );
}

#[tokio::test]
async fn a_body_that_trickles_in_gets_the_request_timeout() {
    let dir = tempfile::tempdir().expect("tmp");
    let config = dir.path().join("server.toml");
    std::fs::write(&config, "request_timeout_secs = 2\n").expect("config");
    let config = config.display().to_string();
    let (_dir, p) = server_process(&["--config", &config, "--body-timeout", "5"]).await;
    // A byte every 300 ms: never stalls long enough for the body timeout.
    let (answer, took) = slow_body(p.addr, |mut write| {
        tokio::spawn(async move {
            for _ in 0..90 {
                if write.write_all(b" ").await.is_err() {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(300)).await;
            }
        })
    })
    .await;
    assert!(
        took < Duration::from_secs(6),
        "waited {took:?} for a trickling body"
    );
    assert!(
        answer.starts_with("HTTP/1.1 408"),
        "a trickling body gets 408: {answer}"
    );
}

// ------------------------------------------------------------------ emails

#[tokio::test]
async fn nfc_and_nfd_spellings_are_one_account() {
    let server = Server::memory().await;
    let mut first = TestAccount::new("jos\u{e9}@example.org");
    server.register(&first).await;
    // The same address typed with a combining accent (NFD) and in capitals.
    let mut copy = TestAccount::new("JOSE\u{301}@Example.org");
    server
        .post(REGISTER, None, &copy.register_body())
        .await
        .problem(409, "conflict");
    // Prelogin and login with the NFD spelling find the account.
    let pre = server
        .post(PRELOGIN, None, &json!({ "email": copy.email }))
        .await
        .expect(200);
    assert_eq!(pre["account_id"], first.id.to_string());
    copy.auth_key = first.auth_key.clone();
    copy.id = first.id;
    server.login(&copy, Uuid::now_v7()).await;
    // The server stores the one normal form.
    first.email = "jos\u{e9}@example.org".into();
    let t = server.login(&first, Uuid::now_v7()).await;
    let account = server.get("/v1/account", Some(&t.access)).await.expect(200);
    assert_eq!(account["email"], "jos\u{e9}@example.org");
}

#[tokio::test]
async fn a_zero_width_copy_of_an_email_is_refused() {
    let server = Server::memory().await;
    let (real, _) = server.account("victim").await;
    let (local, domain) = real.email.split_once('@').expect("email");
    for invisible in ['\u{200b}', '\u{200d}', '\u{2060}', '\u{202e}', '\u{200e}'] {
        let copy = TestAccount::new(&format!("{local}{invisible}@{domain}"));
        let p = server
            .post(REGISTER, None, &copy.register_body())
            .await
            .problem(422, "validation_failed");
        let detail = p["detail"].as_str().unwrap_or_default();
        assert!(
            detail.contains(&format!("U+{:04X}", u32::from(invisible))),
            "the detail names the character: {p}"
        );
        server
            .post(PRELOGIN, None, &json!({ "email": copy.email }))
            .await
            .problem(422, "validation_failed");
    }
}

#[tokio::test]
async fn accounts_from_before_the_rule_keep_working() {
    use sqlx::{Connection as _, Executor as _};
    let dir = tempfile::tempdir().expect("tmp");
    let path = dir.path().join("s.db");
    let settings = Settings {
        database: format!("sqlite://{}", path.display()),
        ..Settings::for_tests()
    };
    let mut old = TestAccount::new("strasse@example.org");
    {
        let server = Server::start(settings.clone()).await;
        server.register(&old).await;
    }
    // What the server stored before the rule: only lower-cased (ß kept).
    let mut conn = sqlx::SqliteConnection::connect(&format!("sqlite://{}", path.display()))
        .await
        .expect("open");
    conn.execute(
        format!(
            "UPDATE accounts SET email = 'stra\u{df}e@example.org' WHERE id = '{}'; \
             DELETE FROM server_meta WHERE key = 'email_rule_v1';",
            old.id
        )
        .as_str(),
    )
    .await
    .expect("the old spelling");
    conn.close().await.expect("close");
    let server = Server::start(settings).await;
    // Typed as before, or in any spelling the rule makes one: found.
    for typed in ["stra\u{df}e@example.org", "STRASSE@example.org"] {
        old.email = typed.into();
        let pre = server
            .post(PRELOGIN, None, &json!({ "email": typed }))
            .await
            .expect(200);
        assert_eq!(pre["account_id"], old.id.to_string(), "{typed}");
        server.login(&old, Uuid::now_v7()).await;
    }
}

// ------------------------------------------------------------------ registration

fn with_invite(account: &TestAccount, code: Option<&str>) -> Value {
    let mut body = account.register_body();
    if let Some(c) = code {
        body["invite"] = json!(c);
    }
    body
}

#[tokio::test]
async fn closed_registration_refuses_every_new_account() {
    let server = Server::start(Settings {
        registration: Registration::Closed,
        ..Settings::for_tests()
    })
    .await;
    let a = TestAccount::unique("closed");
    let p = server
        .post(REGISTER, None, &with_invite(&a, Some("oki_anything")))
        .await
        .problem(403, "registration_closed");
    assert!(p["detail"].as_str().is_some_and(|d| d.contains("operator")));
    // Nothing was created: the email is still unknown (made-up prelogin).
    let pre = server
        .post(PRELOGIN, None, &json!({ "email": a.email }))
        .await
        .expect(200);
    assert_ne!(pre["account_id"], a.id.to_string());
}

/// `openk-server invite` on the process's database: the codes it printed.
fn invite_codes(db: &std::path::Path, count: u32) -> Vec<String> {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_openk-server"))
        .env_remove("OPENK_SERVER_CONFIG")
        .env_remove("OPENK_SERVER_REGISTRATION")
        .arg("--database")
        .arg(format!("sqlite://{}", db.display()))
        .arg("invite")
        .arg("--count")
        .arg(count.to_string())
        .output()
        .expect("run openk-server invite");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let codes: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_owned)
        .collect();
    assert_eq!(codes.len(), count as usize, "{codes:?}");
    codes
}

#[tokio::test]
async fn invite_only_registration_takes_each_code_once() {
    let (dir, p) = server_process(&["--registration", "invite-only"]).await;
    let db = dir.path().join("s.db");
    let codes = invite_codes(&db, 2);
    assert!(codes.iter().all(|c| c.starts_with("oki_") && c.len() > 40));
    assert_ne!(codes[0], codes[1]);
    let register = |body: Value| async move {
        let (status, bytes) = common::http(p.addr, "POST", REGISTER, None, Some(&body))
            .await
            .expect("answer");
        let v: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        (status, v["code"].as_str().unwrap_or_default().to_owned())
    };
    // No code, an unknown code.
    let a = TestAccount::unique("invited");
    assert_eq!(
        register(with_invite(&a, None)).await,
        (403, "invite_required".into())
    );
    assert_eq!(
        register(with_invite(&a, Some("oki_made-up"))).await,
        (403, "invite_invalid".into())
    );
    // A good code registers once; a second account cannot reuse it.
    assert_eq!(register(with_invite(&a, Some(&codes[0]))).await.0, 201);
    let b = TestAccount::unique("second");
    assert_eq!(
        register(with_invite(&b, Some(&codes[0]))).await,
        (403, "invite_invalid".into())
    );
    // A registration that fails (email taken) does not use up its code.
    let mut taken = TestAccount::unique("taken");
    taken.email = a.email.clone();
    assert_eq!(register(with_invite(&taken, Some(&codes[1]))).await.0, 409);
    assert_eq!(register(with_invite(&b, Some(&codes[1]))).await.0, 201);
    // The database keeps only hashes of the codes.
    let raw = std::fs::read(&db).expect("db");
    for code in &codes {
        assert!(!raw.windows(code.len()).any(|w| w == code.as_bytes()));
    }
}

// ------------------------------------------------------------------ quota

/// One 100 KiB change (overview and details of 50 KiB each).
fn big_change(item: Uuid, base: i64, version: u64) -> Value {
    json!({
        "item_id": item,
        "base_revision": base,
        "version": version,
        "wrapped_key": common::blob(60),
        "overview": common::blob(50 * 1024),
        "details": common::blob(50 * 1024),
    })
}

async fn quota_story(server: Server) {
    let (_, t) = server.account("quota").await;
    let vault = server.create_vault(&t.access).await;
    let first = Uuid::now_v7();
    server
        .push_ok(&t.access, vault, vec![big_change(first, 0, 1)])
        .await;
    let before = server.pull(&t.access, vault, 0, None).await;
    // Three more items would need ~400 KiB of the 300 KiB: refused whole.
    let batch = common::batch(
        Uuid::now_v7(),
        (0..3).map(|_| big_change(Uuid::now_v7(), 0, 1)).collect(),
    );
    let p = server
        .push(&t.access, vault, &batch)
        .await
        .problem(507, "quota_exceeded");
    assert!(
        p["detail"]
            .as_str()
            .is_some_and(|d| d.contains("nothing was stored")),
        "{p}"
    );
    // Nothing half-stored: the head, the records and the manifest are as before.
    let after = server.pull(&t.access, vault, 0, None).await;
    assert_eq!(after, before);
    // The same batch id can be sent again later (it was not logged).
    assert_eq!(
        server.push(&t.access, vault, &batch).await.status.as_u16(),
        507
    );
    // Updating an item also keeps its old version (history): it counts.
    server
        .push_ok(&t.access, vault, vec![big_change(first, 1, 2)])
        .await;
    server
        .push(
            &t.access,
            vault,
            &common::batch(Uuid::now_v7(), vec![big_change(first, 2, 3)]),
        )
        .await
        .problem(507, "quota_exceeded");
    // Deleting is always possible and frees the space.
    server
        .push_ok(&t.access, vault, vec![common::tombstone(first, 2, 3)])
        .await;
    server
        .push_ok(&t.access, vault, vec![big_change(Uuid::now_v7(), 0, 1)])
        .await;
    // Another account has its own quota.
    let (_, other) = server.account("other").await;
    let v2 = server.create_vault(&other.access).await;
    server
        .push_ok(&other.access, v2, vec![big_change(Uuid::now_v7(), 0, 1)])
        .await;
}

fn quota_settings(database: String) -> Settings {
    Settings {
        database,
        storage_quota_bytes: 300 * 1024,
        ..Settings::for_tests()
    }
}

#[tokio::test]
async fn a_push_over_the_quota_is_refused_whole_memory() {
    quota_story(Server::start(quota_settings("memory".into())).await).await;
}

#[tokio::test]
async fn a_push_over_the_quota_is_refused_whole_sqlite() {
    let dir = tempfile::tempdir().expect("tmp");
    let url = format!("sqlite://{}", dir.path().join("q.db").display());
    quota_story(Server::start(quota_settings(url)).await.guard(dir)).await;
}

#[tokio::test]
async fn a_push_over_the_quota_is_refused_whole_postgres() {
    let Some(db) = common::PgDatabase::create("openk_quota").await else {
        return;
    };
    quota_story(Server::start(quota_settings(db.url())).await.guard(db)).await;
}

// ------------------------------------------------------------------ request budget

async fn budget_story(server: Server) {
    let (_, t) = server.account("budget").await;
    let vault = server.create_vault(&t.access).await; // 1
    for _ in 0..3 {
        server.pull(&t.access, vault, 0, None).await; // 2..4
    }
    let r = server
        .get(
            &format!("/v1/vaults/{vault}/changes?since=0"),
            Some(&t.access),
        )
        .await;
    r.problem(429, "request_budget");
    let retry: u64 = r
        .header("retry-after")
        .and_then(|v| v.parse().ok())
        .expect("Retry-After");
    assert!((1..=60).contains(&retry), "{retry}");
    // A refreshed access token is the same session: still spent.
    let refreshed = server
        .post(
            "/v1/accounts/refresh",
            None,
            &json!({ "refresh_token": t.refresh }),
        )
        .await
        .expect(200);
    let access = refreshed["access_token"].as_str().expect("token");
    server
        .get("/v1/vaults", Some(access))
        .await
        .problem(429, "request_budget");
    // Another session (device) has its own budget; account routes are not counted.
    server.get("/v1/account", Some(access)).await.expect(200);
    let (_, other) = server.account("budget-other").await;
    server
        .get("/v1/vaults", Some(&other.access))
        .await
        .expect(200);
}

fn budget_settings() -> Settings {
    Settings {
        data_rate_limit: 4,
        ..Settings::for_tests()
    }
}

#[tokio::test]
async fn the_request_budget_per_token_memory() {
    budget_story(Server::start(budget_settings()).await).await;
}

#[cfg(feature = "redis")]
#[tokio::test]
async fn the_request_budget_per_token_redis() {
    use futures::FutureExt as _;
    let Some(url) = common::redis_url() else {
        return;
    };
    let prefix = common::unique_prefix();
    let cleaner = openk_server::cache::RedisCache::connect(&url, &prefix)
        .await
        .unwrap_or_else(|e| panic!("OPENK_TEST_REDIS_URL is set but Redis is unreachable: {e}"));
    let settings = Settings {
        redis: Some(url),
        cache_prefix: prefix,
        ..budget_settings()
    };
    let outcome = std::panic::AssertUnwindSafe(async {
        budget_story(Server::start(settings).await).await;
    })
    .catch_unwind()
    .await;
    let _ = cleaner.remove_prefix().await;
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic);
    }
}
