//! The HTTP API, in process (`router(state).oneshot(..)`): the happy path,
//! authentication, isolation between accounts, rate limits, bad input and
//! push semantics.
//!
//! Memory always runs; the happy path and push semantics also run on a
//! temporary SQLite file and, when `OPENK_TEST_POSTGRES_URL` is set, on a
//! fresh PostgreSQL database per test (dropped afterwards). The two-node
//! tests run when `OPENK_TEST_REDIS_URL` is set, each under its own key
//! prefix that is removed at the end. A variable that is set but names an
//! unreachable service fails the test; an unset one prints "skipped".

mod common;

use std::collections::{BTreeMap, BTreeSet};

use axum::body::Body;
use axum::http::{Method, Request, header};
use common::{
    CLIENT, Server, TestAccount, Tokens, b64, batch, blob, change, client, is_uuid_v7, kdf,
    random_bytes, tombstone, unb64, vault_body,
};
use openk_server::Settings;
use openk_server::auth::{ACCESS_PREFIX, REFRESH_PREFIX, new_token, token_hash};
use openk_server::state::now_millis;
use openk_server::store::Session;
use serde_json::{Value, json};
use uuid::Uuid;

const REGISTER: &str = "/v1/accounts/register";
const LOGIN: &str = "/v1/accounts/login";
const PRELOGIN: &str = "/v1/accounts/prelogin";
const REFRESH: &str = "/v1/accounts/refresh";
const LOGOUT: &str = "/v1/accounts/logout";

fn kinds(audit: &[Value]) -> Vec<String> {
    audit
        .iter()
        .map(|e| e["kind"].as_str().expect("kind").to_owned())
        .collect()
}

fn revisions(page: &Value) -> Vec<i64> {
    page["records"]
        .as_array()
        .expect("records")
        .iter()
        .map(|r| r["revision"].as_i64().expect("revision"))
        .collect()
}

/// The routes router.rs registers, read from its source, so that a new
/// route without an OpenAPI entry fails this test.
fn routes_in_router_source() -> BTreeSet<String> {
    let src = include_str!("../src/router.rs");
    src.match_indices(".route(")
        .filter_map(|(at, m)| {
            let rest = src[at + m.len()..].trim_start().strip_prefix('"')?;
            Some(rest[..rest.find('"').expect("closing quote")].to_owned())
        })
        .collect()
}

// ---------------------------------------------------------------- 1. happy path

async fn happy_path(s: &Server, backend: &str) {
    // Prelogin for an unknown email: made up, stable, plausible.
    let nobody = json!({ "email": format!("nobody-{}@example.org", Uuid::now_v7().simple()) });
    let p1 = s.post(PRELOGIN, None, &nobody).await.expect(200);
    let p2 = s.post(PRELOGIN, None, &nobody).await.expect(200);
    assert_eq!(p1, p2, "the made-up answer is stable");
    assert!(is_uuid_v7(p1["account_id"].as_str().expect("id")), "{p1}");
    assert_eq!(unb64(&p1["salt"]).len(), 16);
    for k in ["memory_kib", "iterations", "parallelism"] {
        assert!(p1["kdf"][k].as_u64().is_some_and(|n| n > 0), "{p1}");
    }
    let other = s
        .post(
            PRELOGIN,
            None,
            &json!({ "email": "someone-else@example.org" }),
        )
        .await
        .expect(200);
    assert_ne!(other["account_id"], p1["account_id"]);
    assert_ne!(other["salt"], p1["salt"]);

    // Register, then prelogin gives back what was registered.
    let a = TestAccount::unique("Alice");
    let laptop = s.register(&a).await;
    let known = s
        .post(PRELOGIN, None, &json!({ "email": a.email.to_uppercase() }))
        .await
        .expect(200);
    assert_eq!(known["account_id"], a.id.to_string());
    assert_eq!(unb64(&known["salt"]), a.salt);
    assert_eq!(known["kdf"], kdf());
    s.post(REGISTER, None, &a.register_body())
        .await
        .problem(409, "conflict");

    // Log in as a second device; the account is what was registered.
    let phone_id = Uuid::now_v7();
    let phone = s.login(&a, phone_id).await;
    assert_ne!(phone.access, laptop.access);
    let acc = s.get("/v1/account", Some(&phone.access)).await.expect(200);
    assert_eq!(acc["account_id"], a.id.to_string());
    assert_eq!(acc["email"], a.email.to_lowercase());
    assert_eq!(acc["kdf"], kdf());
    assert_eq!(unb64(&acc["salt"]), a.salt);
    assert_eq!(unb64(&acc["wrapped_account_key"]), a.wrapped_account_key);
    assert_eq!(unb64(&acc["public_x25519"]), a.public_x25519);
    assert_eq!(unb64(&acc["public_ed25519"]), a.public_ed25519);
    assert_eq!(unb64(&acc["wrapped_private_keys"]), a.wrapped_private_keys);
    assert!(
        acc["created_at"].as_str().is_some_and(|t| t.len() >= 20),
        "{acc}"
    );
    assert!(
        acc.get("auth_key").is_none() && acc.get("auth_hash").is_none(),
        "{acc}"
    );

    // Refresh rotates both tokens; the new access token works.
    let r = s
        .post(REFRESH, None, &json!({ "refresh_token": phone.refresh }))
        .await
        .expect(200);
    let phone = {
        let t = Tokens::from_json(&r);
        assert_ne!(t.access, phone.access);
        assert_ne!(t.refresh, phone.refresh);
        assert_eq!((t.account_id, t.device_id), (a.id, phone_id));
        t
    };
    s.get("/v1/account", Some(&phone.access)).await.expect(200);

    // Devices: list, get, rename, revoke.
    let list = s.get("/v1/devices", Some(&phone.access)).await.expect(200);
    let by_id: BTreeMap<String, Value> = list
        .as_array()
        .expect("array")
        .iter()
        .map(|d| (d["id"].as_str().expect("id").to_owned(), d.clone()))
        .collect();
    assert_eq!(by_id.len(), 2, "{list}");
    assert_eq!(by_id[&a.device.to_string()]["name"], "Laptop");
    assert_eq!(by_id[&a.device.to_string()]["current"], false);
    assert_eq!(by_id[&phone_id.to_string()]["name"], "Phone");
    assert_eq!(by_id[&phone_id.to_string()]["current"], true);
    let one = s
        .get(&format!("/v1/devices/{}", a.device), Some(&laptop.access))
        .await
        .expect(200);
    assert_eq!(one["current"], true);
    let renamed = s
        .call(
            Method::PATCH,
            &format!("/v1/devices/{}", a.device),
            Some(&phone.access),
            Some(&json!({ "name": "  Work laptop  " })),
        )
        .await
        .expect(200);
    assert_eq!(renamed["name"], "Work laptop");
    assert_eq!(renamed["id"], a.device.to_string());
    let tablet_id = Uuid::now_v7();
    let tablet = s.login(&a, tablet_id).await;
    s.call(
        Method::DELETE,
        &format!("/v1/devices/{tablet_id}"),
        Some(&phone.access),
        None,
    )
    .await
    .expect(204);
    let list = s.get("/v1/devices", Some(&phone.access)).await.expect(200);
    let names: BTreeSet<&str> = list
        .as_array()
        .expect("array")
        .iter()
        .map(|d| d["name"].as_str().expect("name"))
        .collect();
    assert_eq!(names, BTreeSet::from(["Work laptop", "Phone"]));
    s.get("/v1/account", Some(&tablet.access))
        .await
        .problem(401, "unauthorized");

    // Vaults: create and list.
    let vault = Uuid::now_v7();
    let vb = vault_body(vault);
    let created = s
        .post("/v1/vaults", Some(&laptop.access), &vb)
        .await
        .expect(201);
    assert_eq!(created["revision"], 0);
    let vaults = s.get("/v1/vaults", Some(&phone.access)).await.expect(200);
    let vaults = vaults.as_array().expect("array");
    assert_eq!(vaults.len(), 1);
    assert_eq!(vaults[0]["id"], vault.to_string());
    assert_eq!(vaults[0]["wrapped_key"], vb["wrapped_key"]);
    assert_eq!(vaults[0]["meta"], vb["meta"]);

    // Push three items: revisions 1..3.
    let items: Vec<Uuid> = (0..3).map(|_| Uuid::now_v7()).collect();
    let changes: Vec<Value> = items.iter().map(|i| change(*i, 0, 1)).collect();
    let b = batch(Uuid::now_v7(), changes.clone());
    let pushed = s.push(&laptop.access, vault, &b).await.expect(200);
    assert_eq!(pushed["head"], 3);
    assert_eq!(pushed["conflicts"], json!([]));
    let applied: Vec<(String, i64)> = pushed["applied"]
        .as_array()
        .expect("applied")
        .iter()
        .map(|x| {
            (
                x["item_id"].as_str().expect("id").to_owned(),
                x["revision"].as_i64().expect("rev"),
            )
        })
        .collect();
    assert_eq!(
        applied,
        items
            .iter()
            .zip(1..)
            .map(|(i, r)| (i.to_string(), r))
            .collect::<Vec<_>>()
    );

    // Pull since 0, since 1, and in pages of two.
    let all = s.pull(&phone.access, vault, 0, None).await;
    assert_eq!(all["vault_id"], vault.to_string());
    assert_eq!(all["head"], 3);
    assert_eq!(revisions(&all), [1, 2, 3]);
    assert_eq!(all["has_more"], false);
    assert_eq!(all["next_since"], 3);
    assert_eq!(all["manifest"], b["manifest"]);
    for (record, sent) in all["records"]
        .as_array()
        .expect("records")
        .iter()
        .zip(&changes)
    {
        assert_eq!(record["item_id"], sent["item_id"]);
        assert_eq!(record["version"], 1);
        assert_eq!(record["deleted"], false);
        for blob in ["wrapped_key", "overview", "details"] {
            assert_eq!(record[blob], sent[blob], "{blob} comes back byte for byte");
        }
    }
    assert_eq!(
        revisions(&s.pull(&phone.access, vault, 1, None).await),
        [2, 3]
    );
    let page1 = s.pull(&phone.access, vault, 0, Some(2)).await;
    assert_eq!(revisions(&page1), [1, 2]);
    assert_eq!(page1["has_more"], true);
    assert_eq!(page1["next_since"], 2);
    let page2 = s.pull(&phone.access, vault, 2, Some(2)).await;
    assert_eq!(revisions(&page2), [3]);
    assert_eq!(page2["has_more"], false);
    assert_eq!(page2["next_since"], 3);
    let empty = s.pull(&phone.access, vault, 3, None).await;
    assert_eq!(revisions(&empty), Vec::<i64>::new());
    assert_eq!(
        (empty["head"].as_i64(), empty["next_since"].as_i64()),
        (Some(3), Some(3))
    );

    // Update the first item; its history holds the first version.
    let v2 = s
        .push_ok(&phone.access, vault, vec![change(items[0], 1, 2)])
        .await;
    assert_eq!(
        v2["applied"],
        json!([{ "item_id": items[0], "revision": 4 }])
    );
    let history = s
        .get(
            &format!("/v1/vaults/{vault}/items/{}/history", items[0]),
            Some(&phone.access),
        )
        .await
        .expect(200);
    let history = history.as_array().expect("history");
    assert_eq!(history.len(), 1, "{history:?}");
    assert_eq!(history[0]["version"], 1);
    assert_eq!(history[0]["revision"], 1);
    assert_eq!(history[0]["details"], changes[0]["details"]);
    let none = s
        .get(
            &format!("/v1/vaults/{vault}/items/{}/history", items[1]),
            Some(&phone.access),
        )
        .await
        .expect(200);
    assert_eq!(none, json!([]));

    // Logout ends the laptop's session.
    s.post(LOGOUT, Some(&laptop.access), &json!({}))
        .await
        .expect(204);
    s.get("/v1/vaults", Some(&laptop.access))
        .await
        .problem(401, "unauthorized");

    // The audit trail, with the client's address.
    let audit = s.audit(&phone.access).await;
    let k = kinds(&audit);
    for expected in [
        "register",
        "device_added",
        "login",
        "vault_created",
        "device_renamed",
        "device_revoked",
        "logout",
    ] {
        assert!(
            k.iter().any(|x| x == expected),
            "{expected} missing from {k:?}"
        );
    }
    assert_eq!(
        k.first().map(String::as_str),
        Some("logout"),
        "newest first: {k:?}"
    );
    assert_eq!(
        k.last().map(String::as_str),
        Some("register"),
        "oldest last: {k:?}"
    );
    assert_eq!(
        k.iter().filter(|x| *x == "device_added").count(),
        3,
        "{k:?}"
    );
    let ip = client(CLIENT).ip().to_string();
    for e in &audit {
        assert_eq!(e["address"], ip.as_str(), "{e}");
        assert!(e["at"].as_str().is_some_and(|t| t.ends_with('Z')), "{e}");
    }
    let vc = audit
        .iter()
        .find(|e| e["kind"] == "vault_created")
        .expect("vault_created");
    assert_eq!(vc["device_id"], a.device.to_string());
    assert_eq!(vc["detail"], vault.to_string());

    // Operations endpoints.
    assert_eq!(s.get("/healthz", None).await.expect(200)["status"], "ok");
    let ready = s.get("/readyz", None).await.expect(200);
    assert_eq!(ready["database"], json!({ "backend": backend, "ok": true }));
    assert_eq!(ready["cache"], json!({ "backend": "memory", "ok": true }));

    let m = s.get("/metrics", None).await;
    assert_eq!(m.status.as_u16(), 200, "{}", m.text());
    assert!(
        m.header("content-type")
            .is_some_and(|c| c.starts_with("text/plain"))
    );
    let metrics = m.text();
    for line in [
        r#"openk_http_requests_total{method="GET",route="/v1/vaults/{id}/changes",status="200"}"#,
        r#"openk_http_requests_total{method="POST",route="/v1/vaults/{id}/changes",status="200"}"#,
        r#"openk_http_requests_total{method="GET",route="/v1/vaults/{id}/items/{item}/history",status="200"}"#,
        r#"openk_http_requests_total{method="DELETE",route="/v1/devices/{id}",status="204"}"#,
        r#"openk_http_requests_total{method="GET",route="/v1/account",status="401"}"#,
        "openk_http_request_duration_seconds_bucket",
    ] {
        assert!(metrics.contains(line), "{line} missing from\n{metrics}");
    }
    for id in items
        .iter()
        .chain([&vault, &a.device, &phone_id, &tablet_id, &a.id])
    {
        assert!(
            !metrics.contains(&id.to_string()),
            "metrics carry a raw id {id}"
        );
    }

    openapi_lists_every_route(s).await;

    // Security headers on an ordinary answer.
    let r = s.get("/v1/vaults", Some(&phone.access)).await;
    assert_eq!(r.header("x-content-type-options"), Some("nosniff"));
    assert_eq!(r.header("cache-control"), Some("no-store"));
    assert!(r.header("x-request-id").is_some_and(|v| !v.is_empty()));
}

async fn openapi_lists_every_route(s: &Server) {
    let expected: BTreeMap<&str, &[&str]> = BTreeMap::from([
        ("/v1/accounts/prelogin", &["post"][..]),
        ("/v1/accounts/register", &["post"][..]),
        ("/v1/accounts/login", &["post"][..]),
        ("/v1/accounts/refresh", &["post"][..]),
        ("/v1/accounts/logout", &["post"][..]),
        ("/v1/account", &["get"][..]),
        ("/v1/account/password", &["post"][..]),
        ("/v1/account/key", &["post"][..]),
        ("/v1/account/identity", &["put"][..]),
        ("/v1/identities/lookup", &["post"][..]),
        ("/v1/devices", &["get"][..]),
        ("/v1/devices/{id}", &["delete", "get", "patch"][..]),
        ("/v1/approvals", &["get", "post"][..]),
        ("/v1/approvals/{id}", &["get"][..]),
        ("/v1/approvals/{id}/claim", &["post"][..]),
        ("/v1/approvals/{id}/reveal", &["post"][..]),
        ("/v1/approvals/{id}/approve", &["post"][..]),
        ("/v1/approvals/{id}/deny", &["post"][..]),
        ("/v1/approvals/{id}/cancel", &["post"][..]),
        ("/v1/audit", &["get"][..]),
        ("/v1/account/history", &["get", "post"][..]),
        ("/v1/events", &["get"][..]),
        ("/v1/vaults", &["get", "post"][..]),
        ("/v1/vaults/{id}/changes", &["get", "post"][..]),
        ("/v1/vaults/{id}/items/{item}/history", &["get"][..]),
        ("/v1/vaults/{id}", &["patch"][..]),
        ("/v1/vaults/{id}/log", &["get", "post"][..]),
        ("/v1/vaults/{id}/members", &["get"][..]),
        ("/v1/vaults/{id}/key", &["get"][..]),
        ("/v1/vaults/{id}/rotate", &["post"][..]),
        ("/v1/vaults/{id}/membership", &["post"][..]),
        ("/v1/shared", &["get"][..]),
        ("/v1/shares", &["get", "post"][..]),
        ("/v1/shares/{id}", &["delete"][..]),
        ("/v1/shares/{id}/open", &["post"][..]),
        ("/v1/usage", &["get", "put"][..]),
        ("/v1/account/recovery", &["delete", "get", "put"][..]),
        ("/v1/recovery/start", &["post"][..]),
        ("/v1/recovery/complete", &["post"][..]),
        ("/v1/emergency", &["get", "post"][..]),
        ("/v1/emergency/{id}", &["delete"][..]),
        ("/v1/emergency/{id}/request", &["post"][..]),
        ("/v1/emergency/{id}/deny", &["post"][..]),
        ("/v1/emergency/{id}/release", &["get"][..]),
        ("/v1/emergency/{id}/takeover", &["post"][..]),
        ("/v1/emergency/{id}/vaults", &["get"][..]),
        ("/v1/emergency/{id}/vaults/{vault}/changes", &["get"][..]),
        ("/s/{id}", &["get"][..]),
        ("/assets/share/share.js", &["get"][..]),
        ("/assets/share/share.css", &["get"][..]),
        ("/healthz", &["get"][..]),
        ("/readyz", &["get"][..]),
        ("/metrics", &["get"][..]),
        ("/openapi.json", &["get"][..]),
    ]);
    assert_eq!(
        routes_in_router_source(),
        expected
            .keys()
            .map(|k| (*k).to_owned())
            .collect::<BTreeSet<_>>(),
        "router.rs and this test list different routes"
    );
    let r = s.get("/openapi.json", None).await;
    let doc: Value = serde_json::from_str(&r.text()).expect("/openapi.json is valid JSON");
    r.expect(200);
    assert!(
        doc["openapi"].as_str().is_some_and(|v| v.starts_with("3.")),
        "{}",
        doc["openapi"]
    );
    let paths = doc["paths"].as_object().expect("paths");
    for (path, methods) in &expected {
        let Some(item) = paths.get(*path) else {
            panic!(
                "{path} is missing from /openapi.json (has {:?})",
                paths.keys().collect::<Vec<_>>()
            )
        };
        let have: BTreeSet<&str> = item
            .as_object()
            .expect("path item")
            .keys()
            .map(String::as_str)
            .filter(|k| ["get", "post", "put", "patch", "delete"].contains(k))
            .collect();
        assert_eq!(
            have,
            methods.iter().copied().collect::<BTreeSet<_>>(),
            "methods of {path}"
        );
    }
    assert_eq!(
        paths.len(),
        expected.len(),
        "/openapi.json lists routes the router does not have"
    );
    assert!(
        doc["components"]["securitySchemes"]["bearer"].is_object(),
        "bearer scheme"
    );
    // Shared vaults' key rotation is described: its schemas, every kind of
    // membership change, the epoch on pushes, the `shared` flag.
    let schemas = &doc["components"]["schemas"];
    for name in ["Rotation", "SealedKeyFor", "Rewrapped", "VaultKeyResponse"] {
        assert!(schemas[name].is_object(), "schema {name} is missing");
    }
    let kinds: BTreeSet<&str> = schemas["MemberChange"]["oneOf"]
        .as_array()
        .expect("MemberChange is one of its kinds")
        .iter()
        .filter_map(|k| k["properties"]["kind"]["enum"][0].as_str())
        .collect();
    assert_eq!(
        kinds,
        BTreeSet::from(["create", "grant", "set_role", "remove", "leave", "rotate"])
    );
    assert!(schemas["PushRequest"]["properties"]["key_epoch"].is_object());
    assert!(schemas["VaultResponse"]["properties"]["shared"].is_object());
    let push_409 = &paths["/v1/vaults/{id}/changes"]["post"]["responses"]["409"]["description"];
    assert!(
        push_409.as_str().is_some_and(|d| d.contains("key_rotated")),
        "{push_409}"
    );
}

#[tokio::test]
async fn happy_path_memory() {
    happy_path(&Server::memory().await, "memory").await;
}

#[tokio::test]
async fn happy_path_sqlite() {
    happy_path(&Server::sqlite().await, "sqlite").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn happy_path_postgres() {
    if let Some(s) = Server::postgres().await {
        happy_path(&s, "postgres").await;
    }
}

// ---------------------------------------------------------------- 2. auth

#[tokio::test]
async fn protected_routes_need_a_live_token() {
    let s = Server::memory().await;
    let (a, t) = s.account("auth").await;
    let vault = s.create_vault(&t.access).await;
    let item = Uuid::now_v7();
    let protected: Vec<(Method, String, Option<Value>)> = vec![
        (Method::GET, "/v1/account".into(), None),
        (Method::POST, "/v1/account/password".into(), Some(json!({}))),
        (
            Method::PUT,
            "/v1/account/identity".into(),
            Some(json!({ "key_version": 1, "signature": b64(&[1; 64]) })),
        ),
        (
            Method::POST,
            "/v1/identities/lookup".into(),
            Some(json!({ "email": a.email })),
        ),
        (Method::POST, LOGOUT.into(), None),
        (Method::GET, "/v1/devices".into(), None),
        (Method::GET, format!("/v1/devices/{}", a.device), None),
        (
            Method::PATCH,
            format!("/v1/devices/{}", a.device),
            Some(json!({ "name": "x" })),
        ),
        (Method::DELETE, format!("/v1/devices/{}", a.device), None),
        (Method::GET, "/v1/audit".into(), None),
        (Method::GET, "/v1/vaults".into(), None),
        (
            Method::POST,
            "/v1/vaults".into(),
            Some(vault_body(Uuid::now_v7())),
        ),
        (Method::GET, format!("/v1/vaults/{vault}/changes"), None),
        (
            Method::POST,
            format!("/v1/vaults/{vault}/changes"),
            Some(batch(Uuid::now_v7(), vec![change(item, 0, 1)])),
        ),
        (
            Method::GET,
            format!("/v1/vaults/{vault}/items/{item}/history"),
            None,
        ),
    ];
    let long = format!("{ACCESS_PREFIX}{}", "A".repeat(10_000));
    let garbage: [Option<&str>; 6] = [
        None,
        Some("garbage"),
        Some("okat_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"),
        Some(&t.refresh),
        Some(&long),
        Some(""),
    ];
    for (method, path, body) in &protected {
        for token in garbage {
            s.call(method.clone(), path, token, body.as_ref())
                .await
                .problem(401, "unauthorized");
        }
    }
    // Not a bearer scheme, or not ASCII.
    for value in [
        format!("Basic {}", t.access),
        format!("bearer{}", t.access),
        t.access.clone(),
    ] {
        let req = Request::get("/v1/account")
            .header(header::AUTHORIZATION, value)
            .body(Body::empty())
            .expect("req");
        s.send(req).await.problem(401, "unauthorized");
    }
    let req = Request::get("/v1/account")
        .header(
            header::AUTHORIZATION,
            axum::http::HeaderValue::from_bytes(b"Bearer okat_\xff\xfe").expect("header"),
        )
        .body(Body::empty())
        .expect("req");
    s.send(req).await.problem(401, "unauthorized");

    // Nothing was changed by any of that.
    assert_eq!(s.head(&t.access, vault).await, 0);
    let vaults = s.get("/v1/vaults", Some(&t.access)).await.expect(200);
    assert_eq!(vaults.as_array().map(Vec::len), Some(1));
    assert_eq!(
        s.get("/v1/devices", Some(&t.access)).await.expect(200)[0]["name"],
        "Laptop"
    );
}

#[tokio::test]
async fn logout_and_revocation_take_effect_at_once() {
    let s = Server::memory().await;
    let (a, laptop) = s.account("revoke").await;
    let phone_id = Uuid::now_v7();
    let phone = s.login(&a, phone_id).await;

    // Both tokens are now cached by the auth extractor.
    s.get("/v1/account", Some(&laptop.access)).await.expect(200);
    s.get("/v1/account", Some(&phone.access)).await.expect(200);

    s.post(LOGOUT, Some(&laptop.access), &json!({}))
        .await
        .expect(204);
    s.get("/v1/account", Some(&laptop.access))
        .await
        .problem(401, "unauthorized");
    s.post(LOGOUT, Some(&laptop.access), &json!({}))
        .await
        .problem(401, "unauthorized");
    s.post(REFRESH, None, &json!({ "refresh_token": laptop.refresh }))
        .await
        .problem(401, "unauthorized");
    s.get("/v1/account", Some(&phone.access)).await.expect(200);

    // Revoke the phone from a new laptop session: the cached phone token dies now.
    let laptop = s.login(&a, a.device).await;
    s.call(
        Method::DELETE,
        &format!("/v1/devices/{phone_id}"),
        Some(&laptop.access),
        None,
    )
    .await
    .expect(204);
    s.get("/v1/account", Some(&phone.access))
        .await
        .problem(401, "unauthorized");
    s.post(REFRESH, None, &json!({ "refresh_token": phone.refresh }))
        .await
        .problem(401, "unauthorized");
    // A revoked device cannot come back by logging in under the same id.
    s.post(LOGIN, None, &a.login_body(phone_id, "Phone"))
        .await
        .problem(409, "conflict");
    s.call(
        Method::DELETE,
        &format!("/v1/devices/{phone_id}"),
        Some(&laptop.access),
        None,
    )
    .await
    .problem(404, "not_found");
    let k = kinds(&s.audit(&laptop.access).await);
    assert!(
        k.contains(&"device_revoked".to_owned()) && k.contains(&"logout".to_owned()),
        "{k:?}"
    );
}

#[tokio::test]
async fn a_reused_refresh_token_ends_the_device_session() {
    let s = Server::memory().await;
    let (a, laptop) = s.account("reuse").await;
    let phone_id = Uuid::now_v7();
    let first = s.login(&a, phone_id).await;
    let second = Tokens::from_json(
        &s.post(REFRESH, None, &json!({ "refresh_token": first.refresh }))
            .await
            .expect(200),
    );
    s.get("/v1/account", Some(&second.access)).await.expect(200); // cached now

    // The old refresh token again: refused, and the device's session ends.
    s.post(REFRESH, None, &json!({ "refresh_token": first.refresh }))
        .await
        .problem(401, "unauthorized");
    s.get("/v1/account", Some(&second.access))
        .await
        .problem(401, "unauthorized");
    s.post(REFRESH, None, &json!({ "refresh_token": second.refresh }))
        .await
        .problem(401, "unauthorized");

    // Other devices are not affected; the audit says what happened.
    let audit = s.audit(&laptop.access).await;
    let reuse = audit
        .iter()
        .find(|e| e["kind"] == "refresh_reuse")
        .expect("refresh_reuse in the audit");
    assert_eq!(reuse["device_id"], phone_id.to_string());
    assert_eq!(reuse["address"], client(CLIENT).ip().to_string());

    // Made-up refresh tokens are simply refused.
    for bogus in [
        new_token(REFRESH_PREFIX),
        "okrt_".into(),
        "x".repeat(64),
        laptop.access.clone(),
        String::new(),
    ] {
        s.post(REFRESH, None, &json!({ "refresh_token": bogus }))
            .await
            .problem(401, "unauthorized");
    }
    s.get("/v1/account", Some(&laptop.access)).await.expect(200);
}

/// A refresh replaces the session's access token: the old one dies at once,
/// also when the auth extractor had it cached.
#[tokio::test]
async fn a_rotated_access_token_dies_like_an_uncached_one() {
    let s = Server::memory().await;
    let (_a, uncached) = s.account("uncached").await;
    s.post(REFRESH, None, &json!({ "refresh_token": uncached.refresh }))
        .await
        .expect(200);
    s.get("/v1/account", Some(&uncached.access))
        .await
        .problem(401, "unauthorized");

    let (_b, cached) = s.account("cached").await;
    s.get("/v1/account", Some(&cached.access)).await.expect(200);
    s.post(REFRESH, None, &json!({ "refresh_token": cached.refresh }))
        .await
        .expect(200);
    s.get("/v1/account", Some(&cached.access))
        .await
        .problem(401, "unauthorized");
}

#[tokio::test]
async fn password_change_needs_a_fresh_login_and_ends_other_sessions() {
    password_change(&Server::memory().await).await;
}

#[tokio::test]
async fn password_change_sqlite() {
    password_change(&Server::sqlite().await).await;
}

#[tokio::test]
async fn password_change_postgres() {
    if let Some(s) = Server::postgres().await {
        password_change(&s).await;
    }
}

/// A password change needs a fresh login, ends the other sessions, and
/// stores the client's MAC, which `GET /v1/account` returns as given (and
/// leaves out while the password never changed).
async fn password_change(s: &Server) {
    let (a, registered) = s.account("pw").await;
    let acc = s
        .get("/v1/account", Some(&registered.access))
        .await
        .expect(200);
    assert!(
        acc.get("password_mac").is_none(),
        "no MAC before the first change: {acc}"
    );

    // A session whose login was 10 minutes ago, made through the store
    // (which names the account by the server's own id for it).
    let stale = new_token(ACCESS_PREFIX);
    let now = now_millis();
    let internal = s.internal_id(&a).await;
    assert_ne!(internal, a.id, "the server keys the account by its own id");
    s.state
        .store
        .create_session(&Session {
            id: Uuid::now_v7(),
            account_id: internal,
            device_id: a.device,
            access_hash: token_hash(&stale),
            access_expires_at: now + 10 * 60 * 1000,
            refresh_hash: token_hash(&new_token(REFRESH_PREFIX)),
            refresh_expires_at: now + 24 * 3600 * 1000,
            authenticated_at: now - 10 * 60 * 1000,
        })
        .await
        .expect("create a stale session");
    s.get("/v1/account", Some(&stale)).await.expect(200);

    let new_key = random_bytes(32);
    let new_salt = random_bytes(16);
    let new_wrapped = random_bytes(60);
    let new_mac = random_bytes(32);
    let new_kdf = json!({ "memory_kib": 65536, "iterations": 3, "parallelism": 2 });
    let body = json!({
        "kdf": new_kdf, "salt": b64(&new_salt), "auth_key": b64(&new_key),
        "wrapped_account_key": b64(&new_wrapped), "mac": b64(&new_mac),
    });
    s.post("/v1/account/password", Some(&stale), &body)
        .await
        .problem(401, "login_required");
    // Nothing changed.
    let pre = s
        .post(PRELOGIN, None, &json!({ "email": a.email }))
        .await
        .expect(200);
    assert_eq!(unb64(&pre["salt"]), a.salt);

    let phone = s.login(&a, Uuid::now_v7()).await;
    s.get("/v1/account", Some(&phone.access)).await.expect(200); // cached
    let fresh = s.login(&a, a.device).await;

    // Bad input with a fresh login is a 422 and changes nothing.
    let mut bad = body.clone();
    bad["auth_key"] = json!(b64(&random_bytes(31)));
    s.post("/v1/account/password", Some(&fresh.access), &bad)
        .await
        .problem(422, "validation_failed");
    bad = body.clone();
    bad["kdf"]["iterations"] = json!(0);
    s.post("/v1/account/password", Some(&fresh.access), &bad)
        .await
        .problem(422, "validation_failed");
    // The MAC is required and is 32 bytes.
    for mac in [None, Some(random_bytes(31)), Some(Vec::new())] {
        bad = body.clone();
        match mac {
            None => {
                bad.as_object_mut().expect("object").remove("mac");
            }
            Some(m) => bad["mac"] = json!(b64(&m)),
        }
        let resp = s
            .post("/v1/account/password", Some(&fresh.access), &bad)
            .await;
        assert_eq!(resp.status.as_u16(), 422, "{}", resp.text());
    }

    s.post("/v1/account/password", Some(&fresh.access), &body)
        .await
        .expect(204);

    // The old auth key no longer logs in; the new one does.
    s.post(LOGIN, None, &a.login_body(a.device, "Laptop"))
        .await
        .problem(401, "bad_credentials");
    let mut changed = a.clone();
    changed.auth_key = new_key;
    // Other sessions ended (the cached phone token included); this one lives.
    for dead in [&registered.access, &stale, &phone.access] {
        s.get("/v1/account", Some(dead))
            .await
            .problem(401, "unauthorized");
    }
    s.post(REFRESH, None, &json!({ "refresh_token": phone.refresh }))
        .await
        .problem(401, "unauthorized");
    let acc = s.get("/v1/account", Some(&fresh.access)).await.expect(200);
    assert_eq!(acc["kdf"], new_kdf);
    assert_eq!(unb64(&acc["salt"]), new_salt);
    assert_eq!(unb64(&acc["wrapped_account_key"]), new_wrapped);
    assert_eq!(unb64(&acc["password_mac"]), new_mac);
    let pre = s
        .post(PRELOGIN, None, &json!({ "email": a.email }))
        .await
        .expect(200);
    assert_eq!(unb64(&pre["salt"]), new_salt);
    assert_eq!(pre["kdf"], new_kdf);
    let again = s.login(&changed, Uuid::now_v7()).await;
    let k = kinds(&s.audit(&again.access).await);
    assert!(
        k.contains(&"password_changed".to_owned()) && k.contains(&"login_failed".to_owned()),
        "{k:?}"
    );
}

// ---------------------------------------------------------------- 3. isolation

/// The keys of an answer and the type of each value: what a client could
/// tell two answers apart by, other than the values themselves.
fn shape(v: &Value) -> Vec<(String, &'static str)> {
    let kind = |v: &Value| match v {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    };
    v.as_object()
        .map(|o| o.iter().map(|(k, v)| (k.clone(), kind(v))).collect())
        .unwrap_or_default()
}

#[tokio::test]
async fn another_accounts_ids_answer_exactly_like_unused_random_ids() {
    let s = Server::memory().await;
    let (alice, ta) = s.account("alice").await;
    let va = s.create_vault(&ta.access).await;
    let item = Uuid::now_v7();
    s.push_ok(&ta.access, va, vec![change(item, 0, 1)]).await;

    // Registering under Alice's account id (a new email) is a registration
    // like any other: 201, the same answer as under a random id.
    let mut squatter = TestAccount::unique("squatter");
    squatter.id = alice.id;
    let taken = s
        .post(REGISTER, None, &squatter.register_body())
        .await
        .expect(201);
    let random = s
        .post(
            REGISTER,
            None,
            &TestAccount::unique("random").register_body(),
        )
        .await
        .expect(201);
    assert_eq!(shape(&taken), shape(&random));
    assert_eq!(taken["account_id"], alice.id.to_string());
    let tq = Tokens::from_json(&taken);

    // Logging in to the squatter's account with Alice's device id: a new
    // device of that account (200 and `device_added`), as a random id is;
    // Alice's device is not touched.
    let login = s
        .post(LOGIN, None, &squatter.login_body(alice.device, "Evil"))
        .await
        .expect(200);
    let fresh = s
        .post(LOGIN, None, &squatter.login_body(Uuid::now_v7(), "Fresh"))
        .await
        .expect(200);
    assert_eq!(shape(&login), shape(&fresh));
    let names: Vec<String> = s
        .get("/v1/devices", Some(&ta.access))
        .await
        .expect(200)
        .as_array()
        .expect("devices")
        .iter()
        .map(|d| d["name"].as_str().expect("name").to_owned())
        .collect();
    assert_eq!(
        names,
        vec!["Laptop".to_owned()],
        "Alice's devices unchanged"
    );
    let k = kinds(&s.audit(&tq.access).await);
    assert_eq!(
        k.iter().filter(|k| *k == "device_added").count(),
        3,
        "the squatter's account got two new devices: {k:?}"
    );

    // A vault under Alice's vault id: created (201, the same answer as a
    // random id gets) and independent of hers.
    let made = s
        .post("/v1/vaults", Some(&tq.access), &vault_body(va))
        .await
        .expect(201);
    let other = s
        .post("/v1/vaults", Some(&tq.access), &vault_body(Uuid::now_v7()))
        .await
        .expect(201);
    assert_eq!(shape(&made), shape(&other));
    let theirs = s
        .get(&format!("/v1/vaults/{va}/changes"), Some(&tq.access))
        .await
        .expect(200);
    assert_eq!(theirs["head"], 0);
    assert_eq!(theirs["records"], json!([]));
    s.push_ok(&tq.access, va, vec![change(Uuid::now_v7(), 0, 1)])
        .await;
    let hers = s
        .get(&format!("/v1/vaults/{va}/changes"), Some(&ta.access))
        .await
        .expect(200);
    assert_eq!(hers["head"], 1);
    assert_eq!(hers["records"][0]["item_id"], item.to_string());
    // Alice's token refreshes to her own account id.
    let renewed = s
        .post(REFRESH, None, &json!({ "refresh_token": ta.refresh }))
        .await
        .expect(200);
    assert_eq!(renewed["account_id"], alice.id.to_string());
}

#[tokio::test]
async fn accounts_cannot_see_or_touch_each_other() {
    let s = Server::memory().await;
    let (alice, ta) = s.account("alice").await;
    let (_bob, tb) = s.account("bob").await;
    let va = s.create_vault(&ta.access).await;
    let item = Uuid::now_v7();
    let original = change(item, 0, 1);
    s.push_ok(&ta.access, va, vec![original.clone()]).await;

    // Bob and Alice's vault: not found, whatever he tries.
    s.get(&format!("/v1/vaults/{va}/changes"), Some(&tb.access))
        .await
        .problem(404, "not_found");
    s.get(
        &format!("/v1/vaults/{va}/changes?since=0&limit=1000"),
        Some(&tb.access),
    )
    .await
    .problem(404, "not_found");
    s.push(
        &tb.access,
        va,
        &batch(Uuid::now_v7(), vec![change(item, 1, 2)]),
    )
    .await
    .problem(404, "not_found");
    s.push(
        &tb.access,
        va,
        &batch(Uuid::now_v7(), vec![change(Uuid::now_v7(), 0, 1)]),
    )
    .await
    .problem(404, "not_found");
    s.get(
        &format!("/v1/vaults/{va}/items/{item}/history"),
        Some(&tb.access),
    )
    .await
    .problem(404, "not_found");
    assert_eq!(
        s.get("/v1/vaults", Some(&tb.access)).await.expect(200),
        json!([])
    );

    // Bob and Alice's device.
    let dev = format!("/v1/devices/{}", alice.device);
    s.get(&dev, Some(&tb.access))
        .await
        .problem(404, "not_found");
    s.call(
        Method::PATCH,
        &dev,
        Some(&tb.access),
        Some(&json!({ "name": "pwned" })),
    )
    .await
    .problem(404, "not_found");
    s.call(Method::DELETE, &dev, Some(&tb.access), None)
        .await
        .problem(404, "not_found");

    // Random ids are as unknown as foreign ones.
    let random = Uuid::now_v7();
    s.get(&format!("/v1/vaults/{random}/changes"), Some(&ta.access))
        .await
        .problem(404, "not_found");
    s.push(
        &ta.access,
        random,
        &batch(Uuid::now_v7(), vec![change(item, 0, 1)]),
    )
    .await
    .problem(404, "not_found");
    s.get(
        &format!("/v1/vaults/{random}/items/{item}/history"),
        Some(&ta.access),
    )
    .await
    .problem(404, "not_found");
    for method in [Method::GET, Method::DELETE] {
        s.call(
            method,
            &format!("/v1/devices/{random}"),
            Some(&ta.access),
            None,
        )
        .await
        .problem(404, "not_found");
    }
    s.call(
        Method::PATCH,
        &format!("/v1/devices/{random}"),
        Some(&ta.access),
        Some(&json!({ "name": "x" })),
    )
    .await
    .problem(404, "not_found");

    // Malformed ids in the path: 404 problems, never 400 or 500.
    let long = "a".repeat(10 * 1024);
    for bad in [
        "not-a-uuid",
        long.as_str(),
        "%00",
        "..",
        "00000000-0000-0000-0000-00000000000g",
        "%F0%9F%94%91",
    ] {
        s.get(&format!("/v1/vaults/{bad}/changes"), Some(&ta.access))
            .await
            .problem(404, "not_found");
        s.post(
            &format!("/v1/vaults/{bad}/changes"),
            Some(&ta.access),
            &batch(Uuid::now_v7(), vec![]),
        )
        .await
        .problem(404, "not_found");
        s.get(
            &format!("/v1/vaults/{va}/items/{bad}/history"),
            Some(&ta.access),
        )
        .await
        .problem(404, "not_found");
        s.get(&format!("/v1/devices/{bad}"), Some(&ta.access))
            .await
            .problem(404, "not_found");
        s.call(
            Method::DELETE,
            &format!("/v1/devices/{bad}"),
            Some(&ta.access),
            None,
        )
        .await
        .problem(404, "not_found");
    }

    // Alice's data is untouched.
    let page = s.pull(&ta.access, va, 0, None).await;
    assert_eq!(page["head"], 1);
    assert_eq!(page["records"][0]["details"], original["details"]);
    let devices = s.get("/v1/devices", Some(&ta.access)).await.expect(200);
    assert_eq!(devices[0]["name"], "Laptop");
    let k = kinds(&s.audit(&tb.access).await);
    assert!(!k.iter().any(|x| x.starts_with("device_r")), "{k:?}");
}

// ---------------------------------------------------------------- 4. rate limits

fn retry_after(r: &common::Resp) -> u64 {
    let secs: u64 = r
        .header("retry-after")
        .and_then(|v| v.parse().ok())
        .expect("a numeric Retry-After");
    assert!(secs > 0, "Retry-After {secs}");
    secs
}

fn wrong_key(a: &TestAccount) -> Value {
    let mut b = a.login_body(a.device, "Laptop");
    b["auth_key"] = json!(b64(&random_bytes(32)));
    b
}

#[tokio::test]
async fn failed_logins_are_limited_per_account_and_per_address() {
    let s = Server::start(Settings {
        auth_rate_limit: 1000,
        ..Settings::for_tests()
    })
    .await;
    let here = client("198.51.100.7:40000");
    let elsewhere = client("192.0.2.99:40000");
    let mut accounts = Vec::new();
    for name in ["a", "b", "c", "d", "e"] {
        accounts.push(s.account(name).await.0);
    }
    let [a, b, c, d, e] = &accounts[..] else {
        unreachable!()
    };
    let login = |from, body: Value| {
        let s = &s;
        async move {
            s.call_from(from, Method::POST, LOGIN, None, Some(&body))
                .await
        }
    };
    let right = |x: &TestAccount| x.login_body(x.device, "Laptop");

    // Five failures on one account: the sixth attempt from an unknown device
    // is refused, even with the right key, until the back-off has passed.
    for _ in 0..5 {
        login(here, wrong_key(a))
            .await
            .problem(401, "bad_credentials");
    }
    let r = login(here, right(a)).await;
    r.problem(429, "rate_limited");
    assert!(retry_after(&r) <= 15 * 60);
    // The account is locked from any address.
    login(elsewhere, right(a))
        .await
        .problem(429, "rate_limited");

    // Another account from the same address still works…
    login(here, right(b)).await.expect(200);
    // …until the address has made 4 × 5 = 20 attempts from unknown devices
    // (the refused and the successful ones above count too: 7 so far).
    for x in [b, c] {
        for _ in 0..5 {
            login(here, wrong_key(x))
                .await
                .problem(401, "bad_credentials");
        }
    }
    for _ in 0..2 {
        login(here, wrong_key(d))
            .await
            .problem(401, "bad_credentials");
    }
    login(here, right(e)).await.expect(200); // the 20th
    let r = login(here, right(e)).await;
    r.problem(429, "rate_limited");
    retry_after(&r);
    // Unknown emails are refused by the address limit too, without a hint.
    login(
        here,
        TestAccount::unique("ghost").login_body(Uuid::now_v7(), "x"),
    )
    .await
    .problem(429, "rate_limited");
    // The same account from another address is fine.
    let t = Tokens::from_json(&login(elsewhere, right(e)).await.expect(200));
    let k = kinds(&s.audit(&t.access).await);
    assert!(
        !k.contains(&"login_failed".to_owned()),
        "e never failed: {k:?}"
    );
}

#[tokio::test]
async fn account_routes_have_a_request_budget() {
    let s = Server::start(Settings {
        auth_rate_limit: 10,
        ..Settings::for_tests()
    })
    .await;
    let (a, t) = s.account("budget").await; // 1
    s.login(&a, Uuid::now_v7()).await; // 2
    for _ in 0..8 {
        s.post(PRELOGIN, None, &json!({ "email": a.email }))
            .await
            .expect(200);
    }
    let r = s.post(PRELOGIN, None, &json!({ "email": a.email })).await;
    r.problem(429, "rate_limited");
    assert!(retry_after(&r) <= 60);
    s.post(LOGIN, None, &a.login_body(a.device, "Laptop"))
        .await
        .problem(429, "rate_limited");
    s.post(REFRESH, None, &json!({ "refresh_token": t.refresh }))
        .await
        .problem(429, "rate_limited");
    s.post(REGISTER, None, &TestAccount::unique("late").register_body())
        .await
        .problem(429, "rate_limited");
    // Other addresses have their own budget; data routes have none.
    let other = client("192.0.2.1:1");
    s.call_from(
        other,
        Method::POST,
        PRELOGIN,
        None,
        Some(&json!({ "email": a.email })),
    )
    .await
    .expect(200);
    s.get("/v1/vaults", Some(&t.access)).await.expect(200);
    // The refused refresh did not burn the refresh token.
    s.call_from(
        other,
        Method::POST,
        REFRESH,
        None,
        Some(&json!({ "refresh_token": t.refresh })),
    )
    .await
    .expect(200);
}

#[cfg(feature = "redis")]
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_nodes_share_limits_and_revocations() {
    use futures::FutureExt as _;
    use openk_server::cache::RedisCache;

    let Some(url) = common::redis_url() else {
        return;
    };
    let prefix = common::unique_prefix();
    let cleaner = RedisCache::connect(&url, &prefix)
        .await
        .unwrap_or_else(|e| panic!("OPENK_TEST_REDIS_URL is set but Redis is unreachable: {e}"));
    let dir = tempfile::tempdir().expect("tempdir");
    let settings = Settings {
        database: format!("sqlite://{}", dir.path().join("shared.db").display()),
        redis: Some(url),
        cache_prefix: prefix.clone(),
        ..Settings::for_tests()
    };
    let outcome = std::panic::AssertUnwindSafe(async {
        let one = Server::start(settings.clone()).await;
        let two = Server::start(settings).await;
        for node in [&one, &two] {
            let ready = node.get("/readyz", None).await.expect(200);
            assert_eq!(ready["database"]["backend"], "sqlite");
            assert_eq!(ready["cache"], json!({ "backend": "redis", "ok": true }));
        }

        // Failures on node one and node two add up to the limit.
        let (a, _) = one.account("shared").await;
        for _ in 0..3 {
            one.post(LOGIN, None, &wrong_key(&a))
                .await
                .problem(401, "bad_credentials");
        }
        for _ in 0..2 {
            two.post(LOGIN, None, &wrong_key(&a))
                .await
                .problem(401, "bad_credentials");
        }
        for node in [&one, &two] {
            let r = node
                .post(LOGIN, None, &a.login_body(a.device, "Laptop"))
                .await;
            r.problem(429, "rate_limited");
            retry_after(&r);
        }

        // A logout on node one kills the token on node two at once.
        let (b, _) = two.account("nodes").await;
        let t = one.login(&b, Uuid::now_v7()).await;
        two.get("/v1/account", Some(&t.access)).await.expect(200);
        one.get("/v1/account", Some(&t.access)).await.expect(200);
        one.post(LOGOUT, Some(&t.access), &json!({}))
            .await
            .expect(204);
        two.get("/v1/account", Some(&t.access))
            .await
            .problem(401, "unauthorized");

        // A revocation on node two kills the device's token on node one.
        let laptop = two.login(&b, b.device).await;
        let phone_id = Uuid::now_v7();
        let phone = one.login(&b, phone_id).await;
        one.get("/v1/vaults", Some(&phone.access)).await.expect(200);
        two.get("/v1/vaults", Some(&phone.access)).await.expect(200);
        two.call(
            Method::DELETE,
            &format!("/v1/devices/{phone_id}"),
            Some(&laptop.access),
            None,
        )
        .await
        .expect(204);
        one.get("/v1/vaults", Some(&phone.access))
            .await
            .problem(401, "unauthorized");

        // Data written through one node is read through the other.
        let vault = one.create_vault(&laptop.access).await;
        one.push_ok(&laptop.access, vault, vec![change(Uuid::now_v7(), 0, 1)])
            .await;
        assert_eq!(two.head(&laptop.access, vault).await, 1);
    })
    .catch_unwind()
    .await;
    let removed = cleaner.remove_prefix().await;
    let left = cleaner.remove_prefix().await;
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic);
    }
    assert!(
        removed.expect("remove the test keys") > 0,
        "the nodes left no keys under {prefix}"
    );
    assert_eq!(left.expect("rescan"), 0, "keys left under {prefix}");
}

// ---------------------------------------------------------------- 5. bad input

#[tokio::test]
async fn malformed_account_requests_are_problems_and_store_nothing() {
    let s = Server::memory().await;
    let a = TestAccount::unique("bad");
    let good = a.register_body();
    let json_ct = Some("application/json");
    let bytes = |v: &Value| serde_json::to_vec(v).expect("json");

    // Syntax, emptiness, content type.
    let broken: [&[u8]; 5] = [
        b"{\"email\": ",
        b"{not json}",
        b"\xff\xfe",
        b"{\"email\":\"a@b\",",
        b"{\"email\" \"x\"}",
    ];
    for body in broken {
        s.post_raw(REGISTER, None, json_ct, body.to_vec())
            .await
            .problem(400, "bad_request");
    }
    s.post_raw(REGISTER, None, json_ct, Vec::new())
        .await
        .problem(400, "bad_request");
    s.post_raw(REGISTER, None, None, bytes(&good))
        .await
        .problem(415, "unsupported_media_type");
    s.post_raw(REGISTER, None, Some("text/plain"), bytes(&good))
        .await
        .problem(415, "unsupported_media_type");
    s.post_raw(
        LOGIN,
        None,
        Some("application/x-www-form-urlencoded"),
        b"email=a".to_vec(),
    )
    .await
    .problem(415, "unsupported_media_type");

    // Wrong types, unknown and missing fields, bad base64, wrong sizes.
    let mut cases: Vec<(&str, Value)> = Vec::new();
    let mut with = |what: &'static str, f: &dyn Fn(&mut Value)| {
        let mut b = good.clone();
        f(&mut b);
        cases.push((what, b));
    };
    with("email as a number", &|b| b["email"] = json!(5));
    with("kdf as a string", &|b| b["kdf"] = json!("argon2id"));
    with("negative kdf memory", &|b| {
        b["kdf"]["memory_kib"] = json!(-1)
    });
    with("account id not a uuid", &|b| {
        b["account_id"] = json!("1234")
    });
    with("device as a list", &|b| b["device"] = json!(["x"]));
    with("salt as bytes array", &|b| b["salt"] = json!([1, 2, 3]));
    with("unknown top-level field", &|b| b["admin"] = json!(true));
    with("unknown nested field", &|b| b["kdf"]["salt"] = json!("x"));
    with("unknown device field", &|b| {
        b["device"]["owner"] = json!("x")
    });
    with("missing field", &|b| {
        b.as_object_mut().expect("object").remove("auth_key");
    });
    with("null field", &|b| b["wrapped_account_key"] = Value::Null);
    with("invalid base64", &|b| b["auth_key"] = json!("not base64!"));
    with("url-safe base64", &|b| {
        b["salt"] = json!("-_-_-_-_-_-_-_-_-_-_-w==")
    });
    with("auth key of 31 bytes", &|b| {
        b["auth_key"] = json!(b64(&random_bytes(31)))
    });
    with("auth key of 33 bytes", &|b| {
        b["auth_key"] = json!(b64(&random_bytes(33)))
    });
    with("empty auth key", &|b| b["auth_key"] = json!(""));
    with("short salt", &|b| b["salt"] = json!(b64(&random_bytes(8))));
    with("short public key", &|b| {
        b["public_x25519"] = json!(b64(&random_bytes(31)))
    });
    with("short wrapped key", &|b| {
        b["wrapped_account_key"] = json!(b64(&random_bytes(40)))
    });
    with("kdf without iterations", &|b| {
        b["kdf"]["iterations"] = json!(0)
    });
    with("kdf with 17 lanes", &|b| {
        b["kdf"]["parallelism"] = json!(17)
    });
    with("kdf with 5 GiB", &|b| {
        b["kdf"]["memory_kib"] = json!(5 * 1024 * 1024)
    });
    with("device name with a bell", &|b| {
        b["device"]["name"] = json!("Lap\u{7}top")
    });
    with("device name with a newline", &|b| {
        b["device"]["name"] = json!("Lap\ntop")
    });
    with("device name with an escape", &|b| {
        b["device"]["name"] = json!("\u{1b}[31mred")
    });
    with("blank device name", &|b| b["device"]["name"] = json!("   "));
    with("device name of 101 characters", &|b| {
        b["device"]["name"] = json!("é".repeat(101))
    });
    with("email without @", &|b| {
        b["email"] = json!("alice.example.org")
    });
    with("email with two @", &|b| b["email"] = json!("a@b@c"));
    with("email of 300 characters", &|b| {
        b["email"] = json!(format!("{}@example.org", "a".repeat(300)))
    });
    with("a list instead of an object", &|b| *b = json!([b.clone()]));
    for (what, body) in &cases {
        let r = s.post(REGISTER, None, body).await;
        let p = r.problem(422, "validation_failed");
        assert!(
            p["detail"].as_str().is_some_and(|d| !d.is_empty()),
            "{what}: {p}"
        );
    }
    let noise = s.post(REGISTER, None, &json!("just a string")).await;
    noise.problem(422, "validation_failed");

    // Login and prelogin refuse the same shapes.
    let mut short = a.login_body(a.device, "Laptop");
    short["auth_key"] = json!(b64(&random_bytes(16)));
    s.post(LOGIN, None, &short)
        .await
        .problem(422, "validation_failed");
    let mut ctl = a.login_body(a.device, "Laptop");
    ctl["device"]["name"] = json!("bad\u{0}name");
    s.post(LOGIN, None, &ctl)
        .await
        .problem(422, "validation_failed");
    s.post(PRELOGIN, None, &json!({ "email": "x@y", "kdf": 1 }))
        .await
        .problem(422, "validation_failed");
    s.post(PRELOGIN, None, &json!({ "email": null }))
        .await
        .problem(422, "validation_failed");
    s.post(REFRESH, None, &json!({ "refresh_token": 7 }))
        .await
        .problem(422, "validation_failed");

    // Nothing was stored; the server still serves, and the same data registers fine.
    assert!(s.state.store.account(a.id).await.expect("store").is_none());
    assert!(
        s.state
            .store
            .account_by_email(&a.email.to_lowercase())
            .await
            .expect("store")
            .is_none()
    );
    let t = s.register(&a).await;

    // A rename with control characters is refused and changes nothing.
    let dev = format!("/v1/devices/{}", a.device);
    for name in ["tab\there", "\u{7f}", "", "x\u{85}y", &"n".repeat(101)] {
        s.call(
            Method::PATCH,
            &dev,
            Some(&t.access),
            Some(&json!({ "name": name })),
        )
        .await
        .problem(422, "validation_failed");
    }
    s.call(
        Method::PATCH,
        &dev,
        Some(&t.access),
        Some(&json!({ "name": "ok", "extra": 1 })),
    )
    .await
    .problem(422, "validation_failed");
    assert_eq!(
        s.get(&dev, Some(&t.access)).await.expect(200)["name"],
        "Laptop"
    );
}

#[tokio::test]
async fn oversized_bodies_are_refused() {
    let s = Server::memory().await;
    let a = TestAccount::unique("big");
    let mut huge = a.register_body();
    huge["device"]["name"] = json!("x".repeat(65 * 1024));
    s.post(REGISTER, None, &huge)
        .await
        .problem(413, "payload_too_large");
    s.post_raw(
        LOGIN,
        None,
        Some("application/json"),
        vec![b' '; 64 * 1024 + 1],
    )
    .await
    .problem(413, "payload_too_large");
    assert!(s.state.store.account(a.id).await.expect("store").is_none());

    let t = s.register(&a).await;
    let vault = s.create_vault(&t.access).await;
    let mut c = change(Uuid::now_v7(), 0, 1);
    c["details"] = json!("A".repeat(32 * 1024 * 1024 + 4));
    s.push(&t.access, vault, &batch(Uuid::now_v7(), vec![c]))
        .await
        .problem(413, "payload_too_large");
    // Under the body limit but over the per-blob limit (1 MiB): 422.
    let mut c = change(Uuid::now_v7(), 0, 1);
    c["details"] = json!(b64(&vec![7u8; 1024 * 1024 + 1]));
    s.push(
        &t.access,
        vault,
        &batch(Uuid::now_v7(), vec![change(Uuid::now_v7(), 0, 1), c]),
    )
    .await
    .problem(422, "validation_failed");
    // A vault create is a data route but its meta is bounded.
    let mut vb = vault_body(Uuid::now_v7());
    vb["meta"] = json!(b64(&vec![1u8; 64 * 1024 + 1]));
    s.post("/v1/vaults", Some(&t.access), &vb)
        .await
        .problem(422, "validation_failed");

    let page = s.pull(&t.access, vault, 0, None).await;
    assert_eq!(
        (
            page["head"].as_i64(),
            page["records"].as_array().map(Vec::len)
        ),
        (Some(0), Some(0))
    );
    s.push_ok(&t.access, vault, vec![change(Uuid::now_v7(), 0, 1)])
        .await;
}

#[tokio::test]
async fn an_invalid_change_spoils_the_whole_batch() {
    let s = Server::memory().await;
    let (_a, t) = s.account("batch").await;
    let vault = s.create_vault(&t.access).await;
    let good = || change(Uuid::now_v7(), 0, 1);
    let spoiled = |f: &dyn Fn(&mut Value)| {
        let mut bad = good();
        f(&mut bad);
        vec![good(), good(), bad, good()]
    };
    let cases: Vec<(&str, Vec<Value>)> = vec![
        (
            "a blob shorter than a sealed envelope",
            spoiled(&|c| c["overview"] = json!(b64(&random_bytes(40)))),
        ),
        (
            "a wrapped key over 512 bytes",
            spoiled(&|c| c["wrapped_key"] = json!(b64(&random_bytes(513)))),
        ),
        (
            "a missing blob",
            spoiled(&|c| {
                c.as_object_mut().expect("object").remove("details");
            }),
        ),
        ("version 0", spoiled(&|c| c["version"] = json!(0))),
        (
            "a negative base revision",
            spoiled(&|c| c["base_revision"] = json!(-1)),
        ),
        (
            "a version beyond i64",
            spoiled(&|c| c["version"] = json!(u64::MAX)),
        ),
        (
            "a deletion carrying data",
            spoiled(&|c| {
                c["deleted"] = json!(true);
            }),
        ),
        ("a deletion carrying one blob", {
            let mut d = tombstone(Uuid::now_v7(), 0, 1);
            d["details"] = json!(blob(60));
            vec![good(), d]
        }),
        ("the same item twice", {
            let dup = Uuid::now_v7();
            vec![good(), change(dup, 0, 1), change(dup, 0, 2)]
        }),
        ("too many changes", (0..1001).map(|_| good()).collect()),
    ];
    let mut ids = Vec::new();
    for (what, changes) in cases {
        let id = Uuid::now_v7();
        let r = s.push(&t.access, vault, &batch(id, changes)).await;
        assert_eq!(r.status.as_u16(), 422, "{what}: {}", r.text());
        r.problem(422, "validation_failed");
        ids.push(id);
    }
    // Type errors inside one change, and an empty manifest.
    for (what, f) in [
        (
            "invalid base64",
            &(|c: &mut Value| c["details"] = json!("!!!!")) as &dyn Fn(&mut Value),
        ),
        ("deleted as a string", &|c: &mut Value| {
            c["deleted"] = json!("yes")
        }),
        ("an unknown field", &|c: &mut Value| {
            c["plaintext"] = json!("hunter2")
        }),
        ("an item id that is no uuid", &|c: &mut Value| {
            c["item_id"] = json!(42)
        }),
    ] {
        let r = s
            .push(&t.access, vault, &batch(Uuid::now_v7(), spoiled(f)))
            .await;
        assert_eq!(r.status.as_u16(), 422, "{what}: {}", r.text());
        r.problem(422, "validation_failed");
    }
    let mut b = batch(Uuid::now_v7(), vec![good()]);
    b["manifest"] = json!("");
    s.push(&t.access, vault, &b)
        .await
        .problem(422, "validation_failed");
    s.push(&t.access, vault, &json!({ "changes": [good()] }))
        .await
        .problem(422, "validation_failed");
    s.post(
        &format!("/v1/vaults/{vault}/changes?since=0"),
        Some(&t.access),
        &json!([]),
    )
    .await
    .problem(422, "validation_failed");
    s.get(
        &format!("/v1/vaults/{vault}/changes?since=-1"),
        Some(&t.access),
    )
    .await
    .problem(400, "bad_request");
    s.get(
        &format!("/v1/vaults/{vault}/changes?since=abc"),
        Some(&t.access),
    )
    .await
    .problem(400, "bad_request");
    s.get(
        &format!("/v1/vaults/{vault}/changes?bogus=1"),
        Some(&t.access),
    )
    .await
    .problem(400, "bad_request");

    // Nothing from any of those batches was stored…
    let page = s.pull(&t.access, vault, 0, None).await;
    assert_eq!(page["head"], 0);
    assert_eq!(page["records"], json!([]));
    assert_eq!(page["manifest"], Value::Null);
    // …and their ids were not used up: a valid batch under one of them applies.
    let v = s
        .push(&t.access, vault, &batch(ids[0], vec![good(), good()]))
        .await
        .expect(200);
    assert_eq!(v["head"], 2);
    // Exactly 1000 changes is fine.
    let v = s
        .push_ok(&t.access, vault, (0..1000).map(|_| good()).collect())
        .await;
    assert_eq!(v["head"], 1002);
}

#[tokio::test]
async fn hostile_emails_are_stored_verbatim_or_refused() {
    let s = Server::memory().await;
    let emails = [
        "'; DROP TABLE accounts; --",
        "robert');DROP-TABLE-accounts;--@example.org",
        "x@y'OR'1'='1",
        "\"quoted\"@example.org",
        "ünïcødé@exämple.org",
        "用户@例子.广告",
        "𝓪𝓵𝓲𝓬𝓮@example.org",
        "ZOË@Example.ORG",
        "a%00b@example.org",
        "null\u{0}byte@example.org",
        "rtl\u{202e}gro.elpmaxe@x",
        "%s%s%n@example.org",
        "${jndi:ldap://x}@example.org",
        "<script>alert(1)</script>@example.org",
        "@",
        " ",
    ];
    let mut stored = 0;
    for email in emails {
        let a = TestAccount::new(email);
        let r = s.post(REGISTER, None, &a.register_body()).await;
        match r.status.as_u16() {
            201 => {
                stored += 1;
                let t = Tokens::from_json(&r.json());
                let acc = s.get("/v1/account", Some(&t.access)).await.expect(200);
                assert_eq!(
                    acc["email"],
                    email.trim().to_lowercase(),
                    "stored verbatim (lower-cased)"
                );
                let pre = s
                    .post(PRELOGIN, None, &json!({ "email": email }))
                    .await
                    .expect(200);
                assert_eq!(pre["account_id"], a.id.to_string(), "{email}");
                s.login(&a, Uuid::now_v7()).await;
            }
            422 => {
                r.problem(422, "validation_failed");
                let pre = s.post(PRELOGIN, None, &json!({ "email": email })).await;
                assert_ne!(pre.status.as_u16() / 100, 5, "{email}: {}", pre.text());
                let login = s.post(LOGIN, None, &a.login_body(a.device, "x")).await;
                assert!(
                    matches!(login.status.as_u16(), 401 | 422),
                    "{email}: {}",
                    login.text()
                );
            }
            other => panic!("{email:?}: {other} {}", r.text()),
        }
    }
    assert!(
        stored >= 5,
        "most of these are plausible addresses: {stored} stored"
    );
    // The accounts table is alive and well.
    let (_a, t) = s.account("after").await;
    s.get("/v1/account", Some(&t.access)).await.expect(200);
}

#[tokio::test]
async fn unknown_routes_and_wrong_methods_are_problems() {
    let s = Server::memory().await;
    let (_a, t) = s.account("routes").await;
    for path in [
        "/",
        "/v1",
        "/v1/nope",
        "/v2/vaults",
        "/v1/vaults/x/y/z",
        "/metrics/extra",
        "/v1/accounts/login/",
    ] {
        s.get(path, Some(&t.access)).await.problem(404, "not_found");
    }
    for (method, path) in [
        (Method::DELETE, "/v1/vaults"),
        (Method::PUT, LOGIN),
        (Method::GET, LOGIN),
        (Method::GET, REGISTER),
        (Method::POST, "/healthz"),
        (Method::PUT, "/v1/devices"),
        (Method::POST, "/v1/audit"),
        (Method::DELETE, "/v1/account"),
    ] {
        s.call(method, path, Some(&t.access), Some(&json!({})))
            .await
            .problem(405, "method_not_allowed");
    }
    s.get("/v1/vaults", Some(&t.access)).await.expect(200);
}

// ---------------------------------------------------------------- 6. push semantics

async fn push_semantics(s: &Server) {
    let (_a, t) = s.account("push").await;
    let tok = t.access.as_str();
    let vault = s.create_vault(tok).await;
    let (x, y) = (Uuid::now_v7(), Uuid::now_v7());
    s.push_ok(tok, vault, vec![change(x, 0, 1)]).await;
    let x2 = change(x, 1, 2);
    s.push_ok(tok, vault, vec![x2.clone()]).await;
    assert_eq!(s.head(tok, vault).await, 2);

    // A stale base revision: 200 with the server's copy, nothing applied.
    let stale = batch(Uuid::now_v7(), vec![change(y, 0, 1), change(x, 1, 2)]);
    let r = s.push(tok, vault, &stale).await.expect(200);
    assert_eq!(r["head"], 2);
    assert_eq!(r["applied"], json!([]));
    let conflicts = r["conflicts"].as_array().expect("conflicts");
    assert_eq!(conflicts.len(), 1, "{r}");
    assert_eq!(conflicts[0]["item_id"], x.to_string());
    let current = &conflicts[0]["current"];
    assert_eq!(
        (current["version"].as_u64(), current["revision"].as_i64()),
        (Some(2), Some(2))
    );
    assert_eq!(current["deleted"], false);
    for blob in ["wrapped_key", "overview", "details"] {
        assert_eq!(current[blob], x2[blob]);
    }
    assert_eq!(s.head(tok, vault).await, 2);
    assert_eq!(
        s.pull(tok, vault, 2, None).await["records"],
        json!([]),
        "y was not applied"
    );
    // A conflicted batch is not remembered: sent again it conflicts again.
    assert_eq!(s.push(tok, vault, &stale).await.expect(200), r);
    // A new item whose base is not 0 conflicts with "absent".
    let ghost = Uuid::now_v7();
    let r = s
        .push(
            tok,
            vault,
            &batch(Uuid::now_v7(), vec![change(ghost, 5, 1)]),
        )
        .await
        .expect(200);
    assert_eq!(r["conflicts"][0]["current"]["revision"], 0, "{r}");

    // A retried batch: the identical answer, nothing applied twice.
    let id = Uuid::now_v7();
    let retried = batch(id, vec![change(y, 0, 1), change(x, 2, 3)]);
    let first = s.push(tok, vault, &retried).await.expect(200);
    assert_eq!(
        first["applied"],
        json!([{ "item_id": y, "revision": 3 }, { "item_id": x, "revision": 4 }])
    );
    assert_eq!(first["head"], 4);
    for _ in 0..2 {
        assert_eq!(s.push(tok, vault, &retried).await.expect(200), first);
    }
    // The same id with other content (a client bug) still answers the first time's result.
    assert_eq!(
        s.push(tok, vault, &batch(id, vec![change(Uuid::now_v7(), 0, 1)]))
            .await
            .expect(200),
        first
    );
    assert_eq!(s.head(tok, vault).await, 4);
    assert_eq!(
        s.pull(tok, vault, 0, None).await["records"]
            .as_array()
            .map(Vec::len),
        Some(2)
    );
    // The manifest of the retried batch is the stored one.
    assert_eq!(
        s.pull(tok, vault, 0, None).await["manifest"],
        retried["manifest"]
    );

    // A tombstone: pulled as deleted with empty blobs; a purge destroys the history too.
    let h = s
        .get(&format!("/v1/vaults/{vault}/items/{x}/history"), Some(tok))
        .await
        .expect(200);
    assert_eq!(
        h.as_array().map(Vec::len),
        Some(2),
        "x has had three versions: {h}"
    );
    let r = s.push_ok(tok, vault, vec![tombstone(y, 3, 2)]).await;
    assert_eq!(r["applied"], json!([{ "item_id": y, "revision": 5 }]));
    let page = s.pull(tok, vault, 4, None).await;
    assert_eq!(page["records"].as_array().map(Vec::len), Some(1));
    let rec = &page["records"][0];
    assert_eq!(rec["item_id"], y.to_string());
    assert_eq!(
        (
            rec["deleted"].as_bool(),
            rec["version"].as_u64(),
            rec["revision"].as_i64()
        ),
        (Some(true), Some(2), Some(5))
    );
    for blob in ["wrapped_key", "overview", "details"] {
        assert_eq!(rec[blob], "", "{blob} of a tombstone");
    }
    let h = s
        .get(&format!("/v1/vaults/{vault}/items/{y}/history"), Some(tok))
        .await
        .expect(200);
    assert_eq!(h, json!([]), "a purge leaves no copy behind");
    // A stale edit of the purged item sees the tombstone.
    let r = s
        .push(tok, vault, &batch(Uuid::now_v7(), vec![change(y, 3, 3)]))
        .await
        .expect(200);
    assert_eq!(r["conflicts"][0]["current"]["deleted"], true, "{r}");
    assert_eq!(s.head(tok, vault).await, 5);

    // expected_head: applied only on that head; else 409 head_moved naming it.
    let on_head = |expected: Value| {
        let mut body = batch(Uuid::now_v7(), vec![change(Uuid::now_v7(), 0, 1)]);
        body["expected_head"] = expected;
        body
    };
    for behind_or_ahead in [0, 4, 6] {
        let p = s
            .push(tok, vault, &on_head(json!(behind_or_ahead)))
            .await
            .problem(409, "head_moved");
        assert_eq!(p["head"], 5, "{p}");
        assert_eq!(
            p["detail"], "the vault moved on to revision 5; pull and push again",
            "{p}"
        );
    }
    assert_eq!(s.head(tok, vault).await, 5, "nothing applied");
    let guarded = on_head(json!(5));
    let r = s.push(tok, vault, &guarded).await.expect(200);
    assert_eq!(
        (r["head"].as_i64(), r["conflicts"].clone()),
        (Some(6), json!([]))
    );
    assert_eq!(
        s.pull(tok, vault, 0, None).await["manifest"],
        guarded["manifest"],
        "the manifest made for head 6 is stored"
    );
    // A retry of an applied batch gets its answer, though the head is no longer 5.
    assert_eq!(s.push(tok, vault, &guarded).await.expect(200), r);
    // No precondition (absent or null) pushes on any head.
    s.push(tok, vault, &on_head(Value::Null)).await.expect(200);
    assert_eq!(s.head(tok, vault).await, 7);
    for bad in [json!(-1), json!("7"), json!(1.5)] {
        s.push(tok, vault, &on_head(bad))
            .await
            .problem(422, "validation_failed");
    }
    assert_eq!(s.head(tok, vault).await, 7);
}

#[tokio::test]
async fn push_semantics_memory() {
    push_semantics(&Server::memory().await).await;
}

#[tokio::test]
async fn push_semantics_sqlite() {
    push_semantics(&Server::sqlite().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn push_semantics_postgres() {
    if let Some(s) = Server::postgres().await {
        push_semantics(&s).await;
    }
}

/// An account's identity is published with its keys: the self-signature
/// sent at registration (or later, once per key version), found by email
/// by any logged-in account; malformed ones are refused.
#[tokio::test]
async fn identities_are_published_with_the_keys_and_found_by_email() {
    let s = Server::memory().await;
    let mut bob = TestAccount::unique("bob");
    bob.email = bob.email.replace("bob", "Bob");
    let signature = random_bytes(64);
    let mut body = bob.register_body();
    body["identity_signature"] = json!(b64(&signature));
    let bad = {
        let mut b = body.clone();
        b["identity_signature"] = json!(b64(&[1; 63]));
        b
    };
    s.post("/v1/accounts/register", None, &bad)
        .await
        .problem(422, "validation_failed");
    s.post("/v1/accounts/register", None, &body)
        .await
        .expect(201);
    let (carol, t) = s.account("carol").await;
    let lookup = |email: String| json!({ "email": email });
    let found = s
        .post(
            "/v1/identities/lookup",
            Some(&t.access),
            &lookup(bob.email.to_uppercase()),
        )
        .await
        .expect(200);
    assert_eq!(found["account_id"], json!(bob.id));
    assert_eq!(found["email"], json!(bob.email.to_lowercase()));
    assert_eq!(found["key_version"], json!(1));
    assert_eq!(unb64(&found["public_x25519"]), bob.public_x25519);
    assert_eq!(unb64(&found["public_ed25519"]), bob.public_ed25519);
    assert_eq!(unb64(&found["signature"]), signature);
    s.post(
        "/v1/identities/lookup",
        Some(&t.access),
        &lookup("nobody@example.org".into()),
    )
    .await
    .expect(404);
    // Carol registered without one: absent until she publishes it.
    let carol_found = s
        .post(
            "/v1/identities/lookup",
            Some(&t.access),
            &lookup(carol.email.clone()),
        )
        .await
        .expect(200);
    assert!(carol_found.get("signature").is_none(), "{carol_found}");
    let put = |v: u32, sig: &[u8]| json!({ "key_version": v, "signature": b64(sig) });
    let sig = random_bytes(64);
    let call = |body: Value| {
        let token = t.access.clone();
        let s = &s;
        async move {
            s.call(
                Method::PUT,
                "/v1/account/identity",
                Some(&token),
                Some(&body),
            )
            .await
        }
    };
    call(put(1, &[2; 10]))
        .await
        .problem(422, "validation_failed");
    call(put(0, &sig)).await.problem(422, "validation_failed");
    call(put(1, &sig)).await.expect(204);
    // The same again is fine; another one for the same version is not.
    call(put(1, &sig)).await.expect(204);
    call(put(1, &random_bytes(64)))
        .await
        .problem(409, "conflict");
    let mine = s.get("/v1/account", Some(&t.access)).await.expect(200);
    assert_eq!(unb64(&mine["identity_signature"]), sig);
    assert_eq!(mine["key_version"], json!(1));
    let audit = s.get("/v1/audit", Some(&t.access)).await.expect(200);
    assert!(
        audit
            .as_array()
            .expect("events")
            .iter()
            .any(|e| e["kind"] == "identity_published"),
        "{audit}"
    );
}

async fn shared_vault_roles_are_enforced(s: &Server) {
    let (_ana, ana_t) = s.account("ana").await;
    let (ben, ben_t) = s.account("ben").await;
    let (cy, cy_t) = s.account("cy").await;
    let vault = s.create_vault(&ana_t.access).await;
    let item = Uuid::now_v7();
    s.push_ok(&ana_t.access, vault, vec![change(item, 0, 1)])
        .await;
    let log_path = format!("/v1/vaults/{vault}/log");
    let entry =
        |seq: u64| json!({ "seq": seq, "entry": blob(200), "signature": b64(&[seq as u8; 64]) });
    let sealed = blob(81);
    let create = json!({ "entry": entry(0), "change": { "kind": "create", "sealed_key": sealed, "key_epoch": 1 } });
    let grant = |seq: u64, email: &str, role: &str| {
        json!({ "entry": entry(seq), "change": {
            "kind": "grant", "email": email, "role": role, "sealed_key": sealed, "key_epoch": 1 } })
    };
    // Only the owner makes its vault shared; entries come in order.
    s.post(&log_path, Some(&ben_t.access), &create)
        .await
        .expect(404);
    s.post(
        &log_path,
        Some(&ana_t.access),
        &grant(1, &ben.email, "viewer"),
    )
    .await
    .problem(409, "conflict");
    s.post(&log_path, Some(&ana_t.access), &create)
        .await
        .expect(204);
    s.post(&log_path, Some(&ana_t.access), &create)
        .await
        .problem(409, "conflict");
    s.post(
        &log_path,
        Some(&ana_t.access),
        &grant(1, &ben.email, "owner"),
    )
    .await
    .problem(422, "validation_failed");
    s.post(
        &log_path,
        Some(&ana_t.access),
        &grant(1, "nobody@example.org", "viewer"),
    )
    .await
    .expect(404);
    s.post(
        &log_path,
        Some(&ana_t.access),
        &grant(1, &ben.email, "viewer"),
    )
    .await
    .expect(204);
    // An invitation: listed, its log readable, nothing else until accepted.
    let shared = s.get("/v1/shared", Some(&ben_t.access)).await.expect(200);
    assert_eq!(shared[0]["id"], json!(vault));
    assert_eq!(shared[0]["status"], "invited");
    assert_eq!(shared[0]["role"], "viewer");
    assert_eq!(unb64(&shared[0]["sealed_key"]).len(), 81);
    let log = s.get(&log_path, Some(&ben_t.access)).await.expect(200);
    assert_eq!(log.as_array().map(Vec::len), Some(2));
    assert_eq!(log[1]["seq"], 1);
    let pull = format!("/v1/vaults/{vault}/changes?since=0");
    s.get(&pull, Some(&ben_t.access))
        .await
        .problem(403, "forbidden");
    // Strangers see nothing at all.
    s.get(&pull, Some(&cy_t.access)).await.expect(404);
    s.get(&log_path, Some(&cy_t.access)).await.expect(404);
    s.post(
        &format!("/v1/vaults/{vault}/membership"),
        Some(&ben_t.access),
        &json!({ "accept": true }),
    )
    .await
    .expect(204);
    let page = s.get(&pull, Some(&ben_t.access)).await.expect(200);
    assert_eq!(page["records"].as_array().map(Vec::len), Some(1));
    // A viewer's write: 403 and nothing stored.
    s.push(
        &ben_t.access,
        vault,
        &batch(Uuid::now_v7(), vec![change(item, 1, 2)]),
    )
    .await
    .problem(403, "forbidden");
    let after = s.get(&pull, Some(&ana_t.access)).await.expect(200);
    assert_eq!(after["head"], 1, "nothing stored: {after}");
    // ... and a viewer does not change members.
    s.post(
        &log_path,
        Some(&ben_t.access),
        &grant(2, &cy.email, "manager"),
    )
    .await
    .problem(403, "forbidden");
    // Promoted to editor, Ben writes.
    let promote = json!({ "entry": entry(2), "change": { "kind": "set_role", "email": ben.email, "role": "editor" } });
    s.post(&log_path, Some(&ana_t.access), &promote)
        .await
        .expect(204);
    s.push_ok(&ben_t.access, vault, vec![change(item, 1, 2)])
        .await;
    let members = s
        .get(&format!("/v1/vaults/{vault}/members"), Some(&ana_t.access))
        .await
        .expect(200);
    let roles: Vec<(String, String)> = members
        .as_array()
        .expect("members")
        .iter()
        .map(|m| {
            (
                m["role"].as_str().unwrap_or("").to_owned(),
                m["status"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect();
    assert!(
        roles.contains(&("manager".into(), "active".into())),
        "{members}"
    );
    assert!(
        roles.contains(&("editor".into(), "active".into())),
        "{members}"
    );
    // An invitee whose own vault has the id is not given this one.
    s.post("/v1/vaults", Some(&cy_t.access), &vault_body(vault))
        .await
        .expect(201);
    s.post(
        &log_path,
        Some(&ana_t.access),
        &grant(3, &cy.email, "viewer"),
    )
    .await
    .problem(409, "conflict");
    let (dee, dee_t) = s.account("dee").await;
    // Declining removes the invitation.
    s.post(
        &log_path,
        Some(&ana_t.access),
        &grant(3, &dee.email, "viewer"),
    )
    .await
    .expect(204);
    s.post(
        &format!("/v1/vaults/{vault}/membership"),
        Some(&dee_t.access),
        &json!({ "accept": false }),
    )
    .await
    .expect(204);
    let dee_shared = s.get("/v1/shared", Some(&dee_t.access)).await.expect(200);
    assert_eq!(dee_shared, json!([]));
}

#[tokio::test]
async fn shared_vault_roles_are_enforced_memory() {
    shared_vault_roles_are_enforced(&Server::memory().await).await;
}

#[tokio::test]
async fn shared_vault_roles_are_enforced_postgres() {
    if let Some(s) = Server::postgres().await {
        shared_vault_roles_are_enforced(&s).await;
    }
}

/// A version's author signature is kept with it: returned by pulls, kept in
/// history, and bounded in size.
#[tokio::test]
async fn author_signatures_travel_with_their_versions() {
    let s = Server::memory().await;
    let (_a, t) = s.account("author").await;
    let vault = s.create_vault(&t.access).await;
    let item = Uuid::now_v7();
    let mut first = change(item, 0, 1);
    first["authorship"] = json!(b64(b"signed by ana"));
    s.push_ok(&t.access, vault, vec![first]).await;
    let page = s
        .get(
            &format!("/v1/vaults/{vault}/changes?since=0"),
            Some(&t.access),
        )
        .await
        .expect(200);
    assert_eq!(unb64(&page["records"][0]["authorship"]), b"signed by ana");
    s.push_ok(&t.access, vault, vec![change(item, 1, 2)]).await;
    let history = s
        .get(
            &format!("/v1/vaults/{vault}/items/{item}/history"),
            Some(&t.access),
        )
        .await
        .expect(200);
    assert_eq!(unb64(&history[0]["authorship"]), b"signed by ana");
    let page = s
        .get(
            &format!("/v1/vaults/{vault}/changes?since=1"),
            Some(&t.access),
        )
        .await
        .expect(200);
    assert!(page["records"][0].get("authorship").is_none(), "{page}");
    let mut huge = change(item, 2, 3);
    huge["authorship"] = json!(b64(&[0; 2000]));
    s.push(&t.access, vault, &batch(Uuid::now_v7(), vec![huge]))
        .await
        .problem(422, "validation_failed");
}
