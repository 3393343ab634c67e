//! Share links over the API (`/v1/shares`, `/s/{id}`): create, list,
//! revoke, open with view counting, expiry and used-up links gone from the
//! database, the limits, another account's links, the page's headers, the
//! rate limit and concurrent opens of a last view. Each story runs on a
//! temporary SQLite file and, when `OPENK_TEST_POSTGRES_URL` is set, on
//! PostgreSQL.

mod common;

use axum::http::Method;
use common::{Server, b64, random_bytes};
use serde_json::{Value, json};
use sqlx::Connection as _;

/// A fake share ciphertext: `version(1) || nonce(12) || ciphertext+tag`.
fn ciphertext(len: usize) -> Vec<u8> {
    let mut b = random_bytes(len.max(29));
    b[0] = 1;
    b
}

fn body(ct: &[u8], expires_in: u64, max_views: Option<u32>) -> Value {
    let mut v = json!({ "ciphertext": b64(ct), "expires_in": expires_in });
    if let Some(n) = max_views {
        v["max_views"] = json!(n);
    }
    v
}

async fn create(s: &Server, token: &str, ct: &[u8], max_views: Option<u32>) -> String {
    let v = s
        .post("/v1/shares", Some(token), &body(ct, 3600, max_views))
        .await
        .expect(201);
    assert_eq!(v["max_views"], json!(max_views), "{v}");
    assert_eq!(v["views_left"], json!(max_views), "{v}");
    v["id"].as_str().expect("id").to_owned()
}

async fn open(s: &Server, id: &str) -> common::Resp {
    s.call(Method::POST, &format!("/v1/shares/{id}/open"), None, None)
        .await
}

async fn list(s: &Server, token: &str) -> Vec<Value> {
    s.get("/v1/shares", Some(token))
        .await
        .expect(200)
        .as_array()
        .expect("array")
        .clone()
}

/// Rows of the link in the server's database (read with SQL, not the API).
async fn rows(s: &Server, id: &str) -> i64 {
    let url = &s.state.settings.database;
    let sql = "SELECT COUNT(*) FROM share_links WHERE id = $1";
    if url.starts_with("postgres") {
        let mut c = sqlx::PgConnection::connect(url).await.expect("pg");
        sqlx::query_scalar(sql)
            .bind(id)
            .fetch_one(&mut c)
            .await
            .expect("count")
    } else {
        let mut c = sqlx::SqliteConnection::connect(url).await.expect("sqlite");
        sqlx::query_scalar(sql)
            .bind(id)
            .fetch_one(&mut c)
            .await
            .expect("count")
    }
}

/// Moves the link's expiry to the past, as time would.
async fn expire(s: &Server, id: &str) {
    let url = &s.state.settings.database;
    let sql = "UPDATE share_links SET expires_at = $1 WHERE id = $2";
    let past = openk_server::state::now_millis() - 1;
    if url.starts_with("postgres") {
        let mut c = sqlx::PgConnection::connect(url).await.expect("pg");
        sqlx::query(sql)
            .bind(past)
            .bind(id)
            .execute(&mut c)
            .await
            .expect("update");
    } else {
        let mut c = sqlx::SqliteConnection::connect(url).await.expect("sqlite");
        sqlx::query(sql)
            .bind(past)
            .bind(id)
            .execute(&mut c)
            .await
            .expect("update");
    }
}

/// The one answer for a link that is not there, whatever the reason.
fn gone(r: &common::Resp) {
    let p = r.problem(404, "not_found");
    assert_eq!(p["detail"], "not found", "{p}");
}

async fn story(s: &Server) {
    let (_, alice) = s.account("alice").await;
    let (_, bob) = s.account("bob").await;
    let ct = ciphertext(300);

    // Create, list, open with counting.
    let id = create(s, &alice.access, &ct, Some(3)).await;
    assert_eq!(id.len(), 22, "{id}");
    let listed = list(s, &alice.access).await;
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0]["id"], id);
    assert_eq!(listed[0]["views_left"], 3);
    assert!(
        listed[0].get("ciphertext").is_none(),
        "a list never carries ciphertext"
    );
    for left in [2, 1] {
        let v = open(s, &id).await.expect(200);
        assert_eq!(common::unb64(&v["ciphertext"]), ct);
        assert_eq!(list(s, &alice.access).await[0]["views_left"], left);
    }
    assert!(
        list(s, &bob.access).await.is_empty(),
        "bob sees none of alice's"
    );
    // The last view: served once, then the row is gone.
    open(s, &id).await.expect(200);
    assert_eq!(rows(s, &id).await, 0, "a used-up link is deleted");
    gone(&open(s, &id).await);
    assert!(list(s, &alice.access).await.is_empty());

    // Expired: 404 and the row is deleted by the access.
    let id = create(s, &alice.access, &ct, None).await;
    open(s, &id).await.expect(200);
    expire(s, &id).await;
    assert_eq!(rows(s, &id).await, 1);
    assert!(
        list(s, &alice.access).await.is_empty(),
        "expired links are not listed"
    );
    gone(&open(s, &id).await);
    assert_eq!(
        rows(s, &id).await,
        0,
        "an expired link is deleted when asked for"
    );

    // The periodic sweep deletes expired links nobody asks for.
    let swept = create(s, &alice.access, &ct, None).await;
    let kept = create(s, &alice.access, &ct, Some(5)).await;
    expire(s, &swept).await;
    let n = s
        .state
        .store
        .sweep_shares(openk_server::state::now_millis())
        .await
        .expect("sweep");
    assert!(n >= 1, "{n}");
    assert_eq!(rows(s, &swept).await, 0);
    assert_eq!(rows(s, &kept).await, 1);

    // Revoke: only the owner; then it is gone like any other.
    gone(
        &s.call(
            Method::DELETE,
            &format!("/v1/shares/{kept}"),
            Some(&bob.access),
            None,
        )
        .await,
    );
    assert_eq!(rows(s, &kept).await, 1, "another account cannot revoke");
    s.call(
        Method::DELETE,
        &format!("/v1/shares/{kept}"),
        Some(&alice.access),
        None,
    )
    .await
    .expect(204);
    assert_eq!(rows(s, &kept).await, 0);
    gone(&open(s, &kept).await);
    gone(
        &s.call(
            Method::DELETE,
            &format!("/v1/shares/{kept}"),
            Some(&alice.access),
            None,
        )
        .await,
    );

    // Unknown and malformed ids answer the same.
    gone(&open(s, "AAAAAAAAAAAAAAAAAAAAAA").await);
    gone(&open(s, "not-an-id").await);
}

async fn auth_and_limits(s: &Server) {
    let (_, alice) = s.account("alice").await;
    let ct = ciphertext(100);
    // Authentication required for everything but opening.
    s.post("/v1/shares", None, &body(&ct, 3600, None))
        .await
        .problem(401, "unauthorized");
    s.get("/v1/shares", None).await.problem(401, "unauthorized");
    s.call(
        Method::DELETE,
        "/v1/shares/AAAAAAAAAAAAAAAAAAAAAA",
        None,
        None,
    )
    .await
    .problem(401, "unauthorized");
    // Limits, checked by the server.
    for (b, what) in [
        (body(&ct, 30 * 86400 + 1, None), "over 30 days"),
        (body(&ct, 59, None), "under a minute"),
        (
            body(&ciphertext(32 * 1024 + 1), 3600, None),
            "a huge payload",
        ),
        (body(&[1u8; 28], 3600, None), "too short to be an envelope"),
        (body(&ct, 3600, Some(0)), "no views"),
        (body(&ct, 3600, Some(1001)), "too many views"),
    ] {
        s.post("/v1/shares", Some(&alice.access), &b)
            .await
            .problem(400, "bad_request");
        let _ = what;
    }
    assert!(
        list(s, &alice.access).await.is_empty(),
        "nothing was stored"
    );
    // 30 days exactly and 32 KiB exactly are fine.
    s.post(
        "/v1/shares",
        Some(&alice.access),
        &body(&ciphertext(32 * 1024), 30 * 86400, Some(1000)),
    )
    .await
    .expect(201);
    // Unknown fields are refused (a typo in a client is an error).
    let mut typo = body(&ct, 3600, None);
    typo["max_view"] = json!(1);
    s.post("/v1/shares", Some(&alice.access), &typo)
        .await
        .problem(422, "validation_failed");
}

/// Ten opens at once of a link with one view left: exactly one gets it.
async fn last_view_once(s: &Server) {
    let (_, alice) = s.account("alice").await;
    let id = create(s, &alice.access, &ciphertext(64), Some(1)).await;
    let opens = (0..10).map(|_| open(s, &id));
    let answers = futures::future::join_all(opens).await;
    let served = answers.iter().filter(|r| r.status.as_u16() == 200).count();
    assert_eq!(
        served,
        1,
        "{:?}",
        answers.iter().map(|r| r.status).collect::<Vec<_>>()
    );
    assert!(
        answers
            .iter()
            .all(|r| matches!(r.status.as_u16(), 200 | 404))
    );
    assert_eq!(rows(s, &id).await, 0);
}

#[tokio::test]
async fn share_links_on_sqlite() {
    let s = Server::sqlite().await;
    story(&s).await;
    auth_and_limits(&s).await;
    last_view_once(&s).await;
}

#[tokio::test]
async fn share_links_on_postgres() {
    let Some(s) = Server::postgres().await else {
        return;
    };
    story(&s).await;
    auth_and_limits(&s).await;
    last_view_once(&s).await;
}

#[tokio::test]
async fn share_links_on_memory() {
    let s = Server::memory().await;
    let (_, alice) = s.account("alice").await;
    let id = create(&s, &alice.access, &ciphertext(40), Some(1)).await;
    open(&s, &id).await.expect(200);
    gone(&open(&s, &id).await);
}

// The page: served for any id, strict headers, its script and style from
// this server only, and fetching it uses no view.
#[tokio::test]
async fn share_page_headers_and_no_view_on_get() {
    let s = Server::memory().await;
    let (_, alice) = s.account("alice").await;
    let id = create(&s, &alice.access, &ciphertext(40), Some(1)).await;
    for _ in 0..3 {
        let page = s.get(&format!("/s/{id}"), None).await;
        assert_eq!(page.status.as_u16(), 200);
        assert_eq!(
            page.header("content-type"),
            Some("text/html; charset=utf-8")
        );
        let csp = page.header("content-security-policy").expect("csp");
        for part in [
            "default-src 'none'",
            "script-src 'self'",
            "connect-src 'self'",
            "frame-ancestors 'none'",
        ] {
            assert!(csp.contains(part), "{csp}");
        }
        assert!(!csp.contains("unsafe-inline"), "{csp}");
        assert_eq!(page.header("referrer-policy"), Some("no-referrer"));
        assert_eq!(page.header("cache-control"), Some("no-store"));
        assert!(page.text().contains("/assets/share/share.js"));
    }
    for (path, ty) in [
        ("/assets/share/share.js", "text/javascript; charset=utf-8"),
        ("/assets/share/share.css", "text/css; charset=utf-8"),
    ] {
        let r = s.get(path, None).await;
        assert_eq!(r.status.as_u16(), 200, "{path}");
        assert_eq!(r.header("content-type"), Some(ty));
        assert!(r.header("content-security-policy").is_some());
    }
    // GET of the open route is not allowed: only a POST counts a view.
    s.get(&format!("/v1/shares/{id}/open"), None)
        .await
        .problem(405, "method_not_allowed");
    // Page loads used nothing: the one view is still there.
    open(&s, &id).await.expect(200);
    // Every other response keeps the API's own policy.
    let csp = s.get("/healthz", None).await;
    assert_eq!(
        csp.header("content-security-policy"),
        Some("default-src 'none'; frame-ancestors 'none'")
    );
}

// Opening is rate-limited per address with the account routes' limit.
#[tokio::test]
async fn opening_is_rate_limited_per_address() {
    rate_limited(&Server::memory().await).await;
}

// With Redis, every node counts the same opens.
#[tokio::test]
async fn opening_is_rate_limited_across_nodes_with_redis() {
    let Some(url) = common::redis_url() else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let settings = openk_server::Settings {
        database: format!("sqlite://{}", dir.path().join("s.db").display()),
        redis: Some(url),
        cache_prefix: common::unique_prefix(),
        ..openk_server::Settings::for_tests()
    };
    let a = Server::start(settings.clone()).await;
    let b = Server::start(settings).await;
    let (_, alice) = a.account("alice").await;
    let id = create(&a, &alice.access, &ciphertext(40), Some(1)).await;
    // Node b serves a link node a stored, once.
    b.call(Method::POST, &format!("/v1/shares/{id}/open"), None, None)
        .await
        .expect(200);
    gone(&open(&a, &id).await);
    let limit = a.state.settings.auth_rate_limit;
    for n in 3..=limit {
        let node = if n % 2 == 0 { &a } else { &b };
        gone(&open(node, "AAAAAAAAAAAAAAAAAAAAAA").await);
    }
    open(&b, "AAAAAAAAAAAAAAAAAAAAAA")
        .await
        .problem(429, "rate_limited");
}

async fn rate_limited(s: &Server) {
    let limit = s.state.settings.auth_rate_limit;
    let mut last = None;
    for _ in 0..=limit {
        last = Some(open(s, "AAAAAAAAAAAAAAAAAAAAAA").await);
    }
    let r = last.expect("answers");
    r.problem(429, "rate_limited");
    assert!(r.header("retry-after").is_some());
    // Another address is not slowed down.
    let other = s
        .call_from(
            common::client("198.51.100.7:4000"),
            Method::POST,
            "/v1/shares/AAAAAAAAAAAAAAAAAAAAAA/open",
            None,
            None,
        )
        .await;
    gone(&other);
}

/// The store itself: the per-account limit counts live links only, lists
/// are newest first and per account, a delete needs the owner.
async fn store_level(s: &Server) {
    use openk_server::store::{Share, StoreError};
    let (a, _) = s.account("alice").await;
    let (b, _) = s.account("bob").await;
    let (alice, bob) = (s.internal_id(&a).await, s.internal_id(&b).await);
    let now = openk_server::state::now_millis();
    let share = |id: &str, account, created_at| Share {
        id: id.to_owned(),
        account_id: account,
        ciphertext: ciphertext(40),
        created_at,
        expires_at: created_at + 3_600_000,
        max_views: None,
        views: 0,
    };
    let store = &s.state.store;
    store
        .create_share(&share("AAAAAAAAAAAAAAAAAAAAA1", alice, now), 2)
        .await
        .expect("first");
    store
        .create_share(&share("AAAAAAAAAAAAAAAAAAAAA2", alice, now + 1), 2)
        .await
        .expect("second");
    let third = store
        .create_share(&share("AAAAAAAAAAAAAAAAAAAAA3", alice, now + 2), 2)
        .await;
    assert!(matches!(third, Err(StoreError::Invalid(_))), "{third:?}");
    // Bob's limit is his own; an id that exists is a conflict.
    store
        .create_share(&share("AAAAAAAAAAAAAAAAAAAAB1", bob, now), 2)
        .await
        .expect("bob's");
    let dup = store
        .create_share(&share("AAAAAAAAAAAAAAAAAAAAB1", bob, now), 2)
        .await;
    assert!(matches!(dup, Err(StoreError::Conflict)), "{dup:?}");
    let ids: Vec<String> = store
        .shares(alice, now)
        .await
        .expect("list")
        .into_iter()
        .map(|s| s.id)
        .collect();
    assert_eq!(ids, ["AAAAAAAAAAAAAAAAAAAAA2", "AAAAAAAAAAAAAAAAAAAAA1"]);
    // Once one has expired, it no longer counts against the limit.
    assert!(
        store
            .shares(alice, now + 3_600_001)
            .await
            .expect("list")
            .is_empty()
    );
    store
        .create_share(&share("AAAAAAAAAAAAAAAAAAAAA4", alice, now + 3_600_001), 2)
        .await
        .expect("the expired ones do not count");
    assert!(
        !store
            .delete_share(bob, "AAAAAAAAAAAAAAAAAAAAA4")
            .await
            .expect("delete")
    );
    assert!(
        store
            .delete_share(alice, "AAAAAAAAAAAAAAAAAAAAA4")
            .await
            .expect("delete")
    );
    // Opening counts views in the row.
    assert!(
        store
            .open_share("AAAAAAAAAAAAAAAAAAAAB1", now)
            .await
            .expect("open")
            .is_some()
    );
    let listed = store.shares(bob, now).await.expect("list");
    assert_eq!(listed[0].views, 1);
    assert_eq!(listed[0].views_left(), None);
}

#[tokio::test]
async fn share_store_on_sqlite() {
    store_level(&Server::sqlite().await).await;
}

#[tokio::test]
async fn share_store_on_postgres() {
    let Some(s) = Server::postgres().await else {
        return;
    };
    store_level(&s).await;
}
