//! The real `openk-server` binary under faults: SIGKILL in the middle of
//! pushes (no batch is ever half applied, answered batches survive, retries
//! are idempotent), SIGTERM (a prompt, clean exit), and what ends up on disk
//! and in the logs (never an auth key or a token).
//!
//! The tests speak raw HTTP/1.1 to the process (the server crate has no HTTP
//! client dependency).

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use base64::Engine as _;
use common::{Process, TestAccount, Tokens, b64, batch, change, http, random_bytes, vault_body};
use rand::Rng as _;
use serde_json::{Value, json};
use uuid::Uuid;

/// One request that must be answered: `(status, JSON body or Null)`.
async fn call(
    p: &Process,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<&Value>,
) -> (u16, Value) {
    let (status, bytes) = http(p.addr, method, path, token, body)
        .await
        .unwrap_or_else(|e| panic!("{method} {path}: no answer: {e}"));
    let v = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes).unwrap_or_else(|e| {
            panic!(
                "{method} {path}: not JSON ({e}): {}",
                String::from_utf8_lossy(&bytes)
            )
        })
    };
    (status, v)
}

#[track_caller]
fn expect(out: (u16, Value), status: u16) -> Value {
    assert_eq!(out.0, status, "{}", out.1);
    out.1
}

/// Every record of the vault, following the pages; and the head.
async fn pull_all(p: &Process, token: &str, vault: Uuid) -> (i64, Vec<Value>) {
    let mut since = 0;
    let mut records = Vec::new();
    loop {
        let page = expect(
            call(
                p,
                "GET",
                &format!("/v1/vaults/{vault}/changes?since={since}&limit=1000"),
                Some(token),
                None,
            )
            .await,
            200,
        );
        records.extend(page["records"].as_array().expect("records").iter().cloned());
        since = page["next_since"].as_i64().expect("next_since");
        if page["has_more"] != true {
            return (page["head"].as_i64().expect("head"), records);
        }
    }
}

/// A batch of 20 new items and what became of it.
struct Sent {
    body: Value,
    items: Vec<Uuid>,
    /// The answer, when one arrived before the kill.
    answer: Option<Value>,
}

fn applied_revisions(answer: &Value) -> BTreeMap<String, i64> {
    answer["applied"]
        .as_array()
        .expect("applied")
        .iter()
        .map(|a| {
            (
                a["item_id"].as_str().expect("id").to_owned(),
                a["revision"].as_i64().expect("revision"),
            )
        })
        .collect()
}

/// Pushes batches of 20 new items until the server goes away.
async fn push_until_killed(
    addr: std::net::SocketAddr,
    token: String,
    path: String,
) -> Result<Vec<Sent>, String> {
    let mut out = Vec::new();
    loop {
        let items: Vec<Uuid> = (0..20).map(|_| Uuid::now_v7()).collect();
        let body = batch(
            Uuid::now_v7(),
            items.iter().map(|i| change(*i, 0, 1)).collect(),
        );
        match http(addr, "POST", &path, Some(&token), Some(&body)).await {
            Ok((200, bytes)) => {
                let answer: Value =
                    serde_json::from_slice(&bytes).map_err(|e| format!("push answer: {e}"))?;
                out.push(Sent {
                    body,
                    items,
                    answer: Some(answer),
                });
            }
            Ok((status, bytes)) => {
                return Err(format!(
                    "push answered {status}: {}",
                    String::from_utf8_lossy(&bytes)
                ));
            }
            Err(_) => {
                // Killed: maybe applied, maybe not.
                out.push(Sent {
                    body,
                    items,
                    answer: None,
                });
                return Ok(out);
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigkill_during_pushes_loses_no_answered_batch_and_splits_none() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("s.db");
    let log = dir.path().join("stderr.log");
    let mut server = Process::start(&db, "warn", &log).await;

    let (_a, token, vault) = account_with_vault(&server, "crash").await;
    let changes_path = format!("/v1/vaults/{vault}/changes");

    let mut sent: Vec<Sent> = Vec::new();
    let mut rng = rand::thread_rng();
    // Five rounds; in each, three clients push concurrently (so that a kill
    // is likely to land inside a transaction) until the server is killed.
    for _round in 0..5 {
        let pushers: Vec<_> = (0..3)
            .map(|_| {
                tokio::spawn(push_until_killed(
                    server.addr,
                    token.clone(),
                    changes_path.clone(),
                ))
            })
            .collect();
        tokio::time::sleep(Duration::from_millis(rng.gen_range(40..200))).await;
        server.kill();
        for pusher in pushers {
            sent.extend(
                pusher
                    .await
                    .expect("the pusher task")
                    .unwrap_or_else(|e| panic!("{e}")),
            );
        }
        server = Process::start(&db, "warn", &log).await;
    }
    let answered = sent.iter().filter(|s| s.answer.is_some()).count();
    assert!(
        answered >= 4,
        "too few pushes got through to test anything ({answered})"
    );

    // After the restarts: answered batches are whole, no batch is partial.
    let (head, records) = pull_all(&server, &token, vault).await;
    let present: BTreeMap<String, i64> = records
        .iter()
        .map(|r| {
            (
                r["item_id"].as_str().expect("id").to_owned(),
                r["revision"].as_i64().expect("revision"),
            )
        })
        .collect();
    assert_eq!(present.len(), records.len(), "an item pulled twice");
    assert_eq!(
        head,
        i64::try_from(records.len()).expect("count"),
        "one revision per new item"
    );
    let mut whole = 0;
    let mut lost_in_flight = 0;
    for s in &sent {
        let n = s
            .items
            .iter()
            .filter(|i| present.contains_key(&i.to_string()))
            .count();
        assert!(
            n == 0 || n == 20,
            "a batch is partially stored: {n} of 20 items"
        );
        if let Some(answer) = &s.answer {
            assert_eq!(n, 20, "an answered batch was lost");
            for (item, rev) in applied_revisions(answer) {
                assert_eq!(
                    present.get(&item),
                    Some(&rev),
                    "answered revision of {item}"
                );
            }
        }
        if n == 20 {
            whole += 1;
        } else {
            lost_in_flight += 1;
        }
    }
    assert_eq!(present.len(), whole * 20, "records that belong to no batch");

    // Re-sending every stored batch changes nothing and answers as the first time.
    for s in sent
        .iter()
        .filter(|s| s.items.iter().all(|i| present.contains_key(&i.to_string())))
    {
        let again = expect(
            call(&server, "POST", &changes_path, Some(&token), Some(&s.body)).await,
            200,
        );
        match &s.answer {
            Some(first) => assert_eq!(&again, first, "a retried batch answers differently"),
            None => {
                let revs = applied_revisions(&again);
                assert_eq!(revs.len(), 20);
                for (item, rev) in revs {
                    assert_eq!(present.get(&item), Some(&rev));
                }
            }
        }
    }
    let (head_after, records_after) = pull_all(&server, &token, vault).await;
    assert_eq!(
        (head_after, records_after.len()),
        (head, records.len()),
        "a retry changed the vault"
    );

    // Batches lost in flight apply now, once; then every retry is a no-op.
    let mut answers = Vec::new();
    for s in &sent {
        answers.push(expect(
            call(&server, "POST", &changes_path, Some(&token), Some(&s.body)).await,
            200,
        ));
    }
    let (head, records) = pull_all(&server, &token, vault).await;
    assert_eq!(records.len(), sent.len() * 20);
    assert_eq!(head, i64::try_from(records.len()).expect("count"));
    for (s, first) in sent.iter().zip(&answers) {
        let again = expect(
            call(&server, "POST", &changes_path, Some(&token), Some(&s.body)).await,
            200,
        );
        assert_eq!(&again, first);
    }
    assert_eq!(pull_all(&server, &token, vault).await.0, head);
    println!(
        "{} batches: {answered} answered, {} applied without an answer, {lost_in_flight} lost in flight",
        sent.len(),
        whole - answered
    );

    server.terminate();
    assert!(server.wait_exit(Duration::from_secs(10)).await.success());
}

#[tokio::test]
async fn sigterm_when_idle_exits_cleanly_and_promptly() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = dir.path().join("stderr.log");
    let mut server = Process::start(&dir.path().join("s.db"), "info", &log).await;
    expect(call(&server, "GET", "/readyz", None, None).await, 200);
    let started = Instant::now();
    server.terminate();
    let status = server.wait_exit(Duration::from_secs(5)).await;
    assert!(status.success(), "exit status {status}");
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "took {:?}",
        started.elapsed()
    );
    let text = std::fs::read_to_string(&log).expect("stderr");
    assert!(text.contains("shutting down"), "{text}");
    assert!(
        http(server.addr, "GET", "/healthz", None, None)
            .await
            .is_err(),
        "still answering after exit"
    );
}

/// Every way a secret could be written down.
fn forms(secret: &[u8]) -> Vec<Vec<u8>> {
    use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
    vec![
        secret.to_vec(),
        hex::encode(secret).into_bytes(),
        hex::encode_upper(secret).into_bytes(),
        STANDARD.encode(secret).into_bytes(),
        STANDARD_NO_PAD.encode(secret).into_bytes(),
        URL_SAFE.encode(secret).into_bytes(),
        URL_SAFE_NO_PAD.encode(secret).into_bytes(),
    ]
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && haystack.windows(needle.len()).any(|w| w == needle)
}

fn read_all(paths: &[&Path]) -> Vec<u8> {
    paths
        .iter()
        .filter_map(|p| std::fs::read(p).ok())
        .flatten()
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_never_reach_the_database_or_the_logs() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("s.db");
    let log = dir.path().join("stderr.log");
    let mut server = Process::start(&db, "trace", &log).await;

    // What only the client holds: a plaintext, sealed into the blobs with a
    // key the server never sees (a one-time pad is enough for the test).
    let marker = format!("MARKER-{}-the-plaintext-secret", Uuid::now_v7().simple());
    let pad = random_bytes(marker.len());
    let sealed: Vec<u8> = std::iter::once(1u8)
        .chain(random_bytes(24))
        .chain(marker.bytes().zip(&pad).map(|(m, k)| m ^ k))
        .chain(random_bytes(16))
        .collect();

    let a = TestAccount::unique("secret");
    let mut secrets: Vec<(String, Vec<u8>)> = vec![("auth key".into(), a.auth_key.clone())];
    let mut tokens: Vec<String> = Vec::new();

    expect(
        call(
            &server,
            "POST",
            "/v1/accounts/prelogin",
            None,
            Some(&json!({ "email": a.email })),
        )
        .await,
        200,
    );
    let reg = Tokens::from_json(&expect(
        call(
            &server,
            "POST",
            "/v1/accounts/register",
            None,
            Some(&a.register_body()),
        )
        .await,
        201,
    ));
    let login = Tokens::from_json(&expect(
        call(
            &server,
            "POST",
            "/v1/accounts/login",
            None,
            Some(&a.login_body(Uuid::now_v7(), "Phone")),
        )
        .await,
        200,
    ));
    let wrong = random_bytes(32);
    secrets.push(("wrong auth key".into(), wrong.clone()));
    let mut bad = a.login_body(a.device, "Laptop");
    bad["auth_key"] = json!(b64(&wrong));
    expect(
        call(&server, "POST", "/v1/accounts/login", None, Some(&bad)).await,
        401,
    );
    let refreshed = Tokens::from_json(&expect(
        call(
            &server,
            "POST",
            "/v1/accounts/refresh",
            None,
            Some(&json!({ "refresh_token": login.refresh })),
        )
        .await,
        200,
    ));
    let vault = Uuid::now_v7();
    expect(
        call(
            &server,
            "POST",
            "/v1/vaults",
            Some(&refreshed.access),
            Some(&vault_body(vault)),
        )
        .await,
        201,
    );
    let mut c = change(Uuid::now_v7(), 0, 1);
    c["details"] = json!(b64(&sealed));
    expect(
        call(
            &server,
            "POST",
            &format!("/v1/vaults/{vault}/changes"),
            Some(&refreshed.access),
            Some(&batch(Uuid::now_v7(), vec![c])),
        )
        .await,
        200,
    );
    let pulled = expect(
        call(
            &server,
            "GET",
            &format!("/v1/vaults/{vault}/changes?since=0"),
            Some(&refreshed.access),
            None,
        )
        .await,
        200,
    );
    assert_eq!(pulled["records"][0]["details"], b64(&sealed));
    // A password change brings a second auth key.
    let fresh = Tokens::from_json(&expect(
        call(
            &server,
            "POST",
            "/v1/accounts/login",
            None,
            Some(&a.login_body(a.device, "Laptop")),
        )
        .await,
        200,
    ));
    let new_key = random_bytes(32);
    secrets.push(("new auth key".into(), new_key.clone()));
    let change_pw = json!({
        "kdf": common::kdf(), "salt": b64(&random_bytes(16)), "auth_key": b64(&new_key), "wrapped_account_key": b64(&random_bytes(60)),
        "mac": b64(&random_bytes(32)),
    });
    expect(
        call(
            &server,
            "POST",
            "/v1/account/password",
            Some(&fresh.access),
            Some(&change_pw),
        )
        .await,
        204,
    );
    // A reused refresh token (logged as an incident) and a logout.
    expect(
        call(
            &server,
            "POST",
            "/v1/accounts/refresh",
            None,
            Some(&json!({ "refresh_token": login.refresh })),
        )
        .await,
        401,
    );
    expect(
        call(
            &server,
            "POST",
            "/v1/accounts/logout",
            Some(&fresh.access),
            None,
        )
        .await,
        204,
    );
    for t in [&reg, &login, &refreshed, &fresh] {
        tokens.push(t.access.clone());
        tokens.push(t.refresh.clone());
    }

    server.terminate();
    assert!(server.wait_exit(Duration::from_secs(10)).await.success());

    let wal = dir.path().join("s.db-wal");
    let shm = dir.path().join("s.db-shm");
    let stored = read_all(&[&db, &wal, &shm]);
    let logs = std::fs::read(&log).expect("the server's stderr");
    // The scans look at the right things.
    assert!(
        contains(&stored, a.email.as_bytes()),
        "the database file holds the account"
    );
    assert!(
        contains(&stored, &sealed),
        "the database file holds the ciphertext"
    );
    let text = String::from_utf8_lossy(&logs);
    // (The server logs nothing at TRACE today; DEBUG carries every SQL statement.)
    for expected in [
        "/v1/accounts/login",
        "/v1/account/password",
        "DEBUG",
        "sqlx::query",
        "INSERT INTO sessions",
    ] {
        assert!(
            text.contains(expected),
            "{expected} is not in the captured logs:\n{text}"
        );
    }

    for (what, secret) in &secrets {
        for form in forms(secret) {
            assert!(
                !contains(&stored, &form),
                "the {what} is in the database ({})",
                String::from_utf8_lossy(&form)
            );
            assert!(
                !contains(&logs, &form),
                "the {what} is in the logs ({})",
                String::from_utf8_lossy(&form)
            );
        }
    }
    for token in &tokens {
        let body = &token[5..];
        for needle in [token.as_bytes(), body.as_bytes()] {
            assert!(!contains(&stored, needle), "a token is in the database");
            assert!(!contains(&logs, needle), "a token is in the logs");
        }
        if let Ok(raw) = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(body) {
            assert!(
                !contains(&stored, &raw),
                "a token's bytes are in the database"
            );
        }
    }
    for needle in [marker.as_bytes(), &marker.as_bytes()[..16]] {
        assert!(
            !contains(&stored, needle) && !contains(&logs, needle),
            "the plaintext marker leaked"
        );
    }
    // The ciphertext itself is data, not logs.
    assert!(
        !contains(&logs, b64(&sealed).as_bytes()),
        "a blob is in the logs"
    );
}

/// Registers an account, logs in and creates a vault: (account, access token, vault id).
async fn account_with_vault(server: &Process, name: &str) -> (TestAccount, String, Uuid) {
    let a = TestAccount::unique(name);
    expect(
        call(
            server,
            "POST",
            "/v1/accounts/register",
            None,
            Some(&a.register_body()),
        )
        .await,
        201,
    );
    let login = expect(
        call(
            server,
            "POST",
            "/v1/accounts/login",
            None,
            Some(&a.login_body(a.device, "Laptop")),
        )
        .await,
        200,
    );
    let token = Tokens::from_json(&login).access;
    let vault = Uuid::now_v7();
    expect(
        call(
            server,
            "POST",
            "/v1/vaults",
            Some(&token),
            Some(&vault_body(vault)),
        )
        .await,
        201,
    );
    (a, token, vault)
}

/// Runs `openk-server ARGS` to completion: (success, stderr).
fn admin(args: &[&str]) -> (bool, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_openk-server"))
        .args(args)
        .env_remove("OPENK_SERVER_DATABASE")
        .output()
        .expect("run openk-server");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `backup` snapshots a running server's SQLite database; `restore` puts the
/// snapshot back (refusing to overwrite without --force, refusing garbage),
/// and a server on the restored database serves the same data.
#[tokio::test]
async fn backup_while_running_and_restore() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("s.db");
    let log = dir.path().join("stderr.log");
    let mut server = Process::start(&db, "warn", &log).await;
    let (a, token, vault) = account_with_vault(&server, "backup").await;
    let items: Vec<Value> = (0..5).map(|_| change(Uuid::now_v7(), 0, 1)).collect();
    let path = format!("/v1/vaults/{vault}/changes");
    expect(
        call(
            &server,
            "POST",
            &path,
            Some(&token),
            Some(&batch(Uuid::now_v7(), items)),
        )
        .await,
        200,
    );
    let before = pull_all(&server, &token, vault).await;

    let snap = dir.path().join("snap.db");
    let url = format!("sqlite://{}", db.display());
    let (ok, err) = admin(&[
        "backup",
        "--database",
        &url,
        "--out",
        &snap.display().to_string(),
    ]);
    assert!(ok, "backup failed: {err}");
    let (ok, err) = admin(&[
        "backup",
        "--database",
        &url,
        "--out",
        &snap.display().to_string(),
    ]);
    assert!(!ok && err.contains("already exists"), "{err}");
    server.kill();

    let restored = dir.path().join("restored.db");
    let target = format!("sqlite://{}", restored.display());
    let (ok, err) = admin(&[
        "restore",
        &snap.display().to_string(),
        "--database",
        &target,
    ]);
    assert!(ok, "restore failed: {err}");
    let (ok, err) = admin(&[
        "restore",
        &snap.display().to_string(),
        "--database",
        &target,
    ]);
    assert!(!ok && err.contains("--force"), "{err}");
    let garbage = dir.path().join("garbage.db");
    std::fs::write(&garbage, b"not a database at all").expect("write");
    let (ok, err) = admin(&[
        "restore",
        &garbage.display().to_string(),
        "--database",
        &target,
        "--force",
    ]);
    assert!(!ok && err.contains("not"), "{err}");

    let mut again = Process::start(&restored, "warn", &dir.path().join("stderr2.log")).await;
    let login = expect(
        call(
            &again,
            "POST",
            "/v1/accounts/login",
            None,
            Some(&a.login_body(a.device, "Laptop")),
        )
        .await,
        200,
    );
    let token = Tokens::from_json(&login).access;
    assert_eq!(pull_all(&again, &token, vault).await, before);
    again.kill();
}
