//! Logins cannot be turned against the account's owner: a stranger who knows
//! the email slows down unknown devices only (exponential back-off with
//! `Retry-After`), a device that proves its device key keeps logging in, the
//! limit holds under concurrency (memory and, with `OPENK_TEST_REDIS_URL`,
//! Redis), and unknown emails answer like real ones, in shape and timing.

mod common;

use std::time::{Duration, Instant};

use axum::http::Method;
use common::{Server, TestAccount, b64, client, random_bytes};
use openk_server::Settings;
use serde_json::{Value, json};
use uuid::Uuid;

const LOGIN: &str = "/v1/accounts/login";
const PRELOGIN: &str = "/v1/accounts/prelogin";

fn settings() -> Settings {
    Settings {
        auth_rate_limit: 0,
        ..Settings::for_tests()
    }
}

fn with_proof(mut body: Value, proof: &[u8]) -> Value {
    body["device_proof"] = json!(b64(proof));
    body
}

fn wrong(mut body: Value) -> Value {
    body["auth_key"] = json!(b64(&random_bytes(32)));
    body
}

fn retry_after(r: &common::Resp) -> u64 {
    r.header("retry-after")
        .and_then(|v| v.parse().ok())
        .expect("a numeric Retry-After")
}

/// Registers with a device key and returns it.
async fn register_with_key(s: &Server, a: &TestAccount) -> Vec<u8> {
    let key = random_bytes(32);
    s.post(
        "/v1/accounts/register",
        None,
        &with_proof(a.register_body(), &key),
    )
    .await
    .expect(201);
    key
}

#[tokio::test]
async fn strangers_wrong_passwords_do_not_lock_out_a_known_device() {
    let s = Server::start(settings()).await;
    let a = TestAccount::unique("owner");
    let key = register_with_key(&s, &a).await;
    let attacker = client("203.0.113.66:1");
    // Ten wrong logins from unknown devices (the attacker knows only the email).
    let mut refused = 0;
    for _ in 0..10 {
        let r = s
            .call_from(
                attacker,
                Method::POST,
                LOGIN,
                None,
                Some(&wrong(a.login_body(Uuid::now_v7(), "evil"))),
            )
            .await;
        if r.status == 429 {
            refused += 1;
        }
    }
    assert!(refused >= 4, "unknown devices are throttled ({refused})");
    // An unknown device with the right password is throttled too, with a wait…
    let r = s
        .post(LOGIN, None, &a.login_body(Uuid::now_v7(), "new"))
        .await;
    r.problem(429, "rate_limited");
    assert!(retry_after(&r) >= 1);
    // …the owner's device id without its key is an unknown device…
    s.post(LOGIN, None, &a.login_body(a.device, "Laptop"))
        .await
        .problem(429, "rate_limited");
    s.post(
        LOGIN,
        None,
        &with_proof(a.login_body(a.device, "Laptop"), &random_bytes(32)),
    )
    .await
    .problem(429, "rate_limited");
    // …but with its device key the owner logs in.
    s.post(
        LOGIN,
        None,
        &with_proof(a.login_body(a.device, "Laptop"), &key),
    )
    .await
    .expect(200);
}

#[tokio::test]
async fn wrong_passwords_from_a_known_device_count_in_its_own_bucket() {
    let s = Server::start(settings()).await;
    let a = TestAccount::unique("clumsy");
    let key = register_with_key(&s, &a).await;
    let known = || with_proof(a.login_body(a.device, "Laptop"), &key);
    for _ in 0..5 {
        s.post(LOGIN, None, &wrong(known()))
            .await
            .problem(401, "bad_credentials");
    }
    let r = s.post(LOGIN, None, &known()).await;
    r.problem(429, "rate_limited");
    assert_eq!(retry_after(&r), 1, "the first wait is a second");
    // The account's bucket for other devices is untouched.
    s.login(&a, Uuid::now_v7()).await;
}

#[tokio::test]
async fn a_new_device_key_is_stored_on_the_first_login_with_it() {
    let s = Server::start(settings()).await;
    let (a, _) = s.account("legacy").await; // registered without a device key
    let key = random_bytes(32);
    s.post(
        LOGIN,
        None,
        &with_proof(a.login_body(a.device, "Laptop"), &key),
    )
    .await
    .expect(200);
    for _ in 0..6 {
        s.post(LOGIN, None, &wrong(a.login_body(Uuid::now_v7(), "x")))
            .await;
    }
    s.post(
        LOGIN,
        None,
        &with_proof(a.login_body(a.device, "Laptop"), &key),
    )
    .await
    .expect(200);
    // A malformed proof is refused as such.
    s.post(
        LOGIN,
        None,
        &with_proof(a.login_body(a.device, "Laptop"), &[1; 5]),
    )
    .await
    .problem(422, "validation_failed");
}

#[tokio::test]
async fn unknown_devices_back_off_exponentially_and_success_resets() {
    let s = Server::start(Settings {
        login_backoff: Duration::from_millis(300),
        login_failure_limit: 2,
        ..settings()
    })
    .await;
    let (a, _) = s.account("backoff").await;
    let dev = Uuid::now_v7();
    let try_wrong = || {
        let body = wrong(a.login_body(dev, "x"));
        let s = &s;
        async move { s.post(LOGIN, None, &body).await }
    };
    try_wrong().await.problem(401, "bad_credentials");
    let t = Instant::now();
    try_wrong().await.problem(401, "bad_credentials"); // 2nd: the next waits 300 ms
    try_wrong().await.problem(429, "rate_limited");
    tokio::time::sleep(Duration::from_millis(320).saturating_sub(t.elapsed())).await;
    let t = Instant::now();
    try_wrong().await.problem(401, "bad_credentials"); // 3rd: the next waits 600 ms
    tokio::time::sleep(Duration::from_millis(400).saturating_sub(t.elapsed())).await;
    try_wrong().await.problem(429, "rate_limited");
    tokio::time::sleep(Duration::from_millis(620).saturating_sub(t.elapsed())).await;
    s.login(&a, dev).await;
    // Reset: two free attempts again.
    try_wrong().await.problem(401, "bad_credentials");
    try_wrong().await.problem(401, "bad_credentials");
    try_wrong().await.problem(429, "rate_limited");
}

/// 40 concurrent wrong logins: at most the limit reach the password check.
async fn concurrent_attempts_never_exceed_the_limit(s: Server) {
    let (a, _) = s.account("race").await;
    // All in flight at once: they interleave at every await (store, cache).
    let attempts = (0..40u16).map(|i| {
        let body = wrong(a.login_body(Uuid::now_v7(), "x"));
        let s = &s;
        async move {
            s.call_from(
                client(&format!("198.51.100.{}:1", i % 200 + 1)),
                Method::POST,
                LOGIN,
                None,
                Some(&body),
            )
            .await
            .status
            .as_u16()
        }
    });
    let statuses = futures::future::join_all(attempts).await;
    let mut evaluated = 0;
    for status in statuses {
        match status {
            401 => evaluated += 1,
            429 => {}
            other => panic!("status {other}"),
        }
    }
    assert!(evaluated <= 5, "{evaluated} of 40 were evaluated (limit 5)");
    assert!(evaluated >= 1);
}

fn racy() -> Settings {
    Settings {
        // A long first wait: a slow machine must not let a sixth one through.
        login_backoff: Duration::from_secs(600),
        ..settings()
    }
}

#[tokio::test]
async fn concurrent_wrong_logins_never_exceed_the_limit_in_memory() {
    concurrent_attempts_never_exceed_the_limit(Server::start(racy()).await).await;
}

#[cfg(feature = "redis")]
#[tokio::test]
async fn concurrent_wrong_logins_never_exceed_the_limit_in_redis() {
    use openk_server::cache::RedisCache;
    let Some(url) = std::env::var("OPENK_TEST_REDIS_URL")
        .ok()
        .filter(|u| !u.trim().is_empty())
    else {
        println!("skipped: OPENK_TEST_REDIS_URL not set");
        return;
    };
    let prefix = format!("openk-test-{}:", Uuid::now_v7());
    let cleaner = RedisCache::connect(&url, &prefix)
        .await
        .unwrap_or_else(|e| panic!("OPENK_TEST_REDIS_URL is set but Redis is unreachable: {e}"));
    let s = Server::start(Settings {
        redis: Some(url),
        cache_prefix: prefix.clone(),
        ..racy()
    })
    .await;
    let outcome = futures::FutureExt::catch_unwind(std::panic::AssertUnwindSafe(
        concurrent_attempts_never_exceed_the_limit(s),
    ))
    .await;
    let removed = cleaner.remove_prefix().await.expect("remove test keys");
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic);
    }
    assert!(removed > 0, "the test used its prefix");
}

fn shape(v: &Value) -> Vec<String> {
    let mut keys: Vec<String> = v
        .as_object()
        .map(|o| o.keys().cloned().collect())
        .unwrap_or_default();
    keys.sort();
    keys
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

/// Same status and body shape, and medians of interleaved samples within a margin.
#[tokio::test]
async fn unknown_emails_answer_like_real_ones() {
    let s = Server::sqlite().await;
    let s = Server::start(Settings {
        database: s.state.settings.database.clone(),
        // No limit answers early: every sample goes the whole way.
        login_failure_limit: 1_000_000,
        ..settings()
    })
    .await
    .guard(s);
    let (real, _) = s.account("real").await;
    let ghost = TestAccount::unique("ghost");
    // Shapes.
    let r = s
        .post(LOGIN, None, &wrong(real.login_body(real.device, "x")))
        .await;
    let g = s
        .post(LOGIN, None, &ghost.login_body(ghost.device, "x"))
        .await;
    assert_eq!(r.status, g.status);
    assert_eq!(shape(&r.json()), shape(&g.json()));
    assert_eq!(r.json()["code"], g.json()["code"]);
    assert_eq!(r.json()["detail"], g.json()["detail"]);
    let r = s
        .post(PRELOGIN, None, &json!({ "email": real.email }))
        .await;
    let g = s
        .post(PRELOGIN, None, &json!({ "email": ghost.email }))
        .await;
    assert_eq!((r.status, shape(&r.json())), (g.status, shape(&g.json())));

    // Timing: many samples, interleaved.
    let mut times = [Vec::new(), Vec::new(), Vec::new(), Vec::new()];
    for i in 0..300u32 {
        for (slot, who) in [(0, &real), (1, &ghost)] {
            let from = client(&format!("10.{}.{}.{}:1", slot, i / 250, i % 250 + 1));
            let body = wrong(who.login_body(Uuid::now_v7(), "x"));
            let t = Instant::now();
            let resp = s
                .call_from(from, Method::POST, LOGIN, None, Some(&body))
                .await;
            times[slot].push(t.elapsed());
            assert_eq!(resp.status, 401);
            let t = Instant::now();
            s.call_from(
                from,
                Method::POST,
                PRELOGIN,
                None,
                Some(&json!({ "email": who.email })),
            )
            .await
            .expect(200);
            times[slot + 2].push(t.elapsed());
        }
    }
    for (what, real_t, ghost_t) in [("login", 0, 1), ("prelogin", 2, 3)] {
        let a = median(times[real_t].clone());
        let b = median(times[ghost_t].clone());
        let (lo, hi) = if a < b { (a, b) } else { (b, a) };
        // 25 % of the slower median plus 50 µs of scheduling noise.
        let margin = hi / 4 + Duration::from_micros(50);
        assert!(
            hi - lo <= margin,
            "{what}: real median {a:?}, unknown median {b:?} (margin {margin:?})"
        );
    }
}
