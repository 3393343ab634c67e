//! Device approval over the API (`/v1/approvals`): a request to an unknown
//! email is answered like any other and never listed; each step (claim,
//! reveal, approve, deny, cancel, use at login) happens once, by the one
//! who may take it, and only while the request is open; the new device
//! alone sees the sealed box; the device list names the approver. Each
//! story runs on a temporary SQLite file, in memory and, when
//! `OPENK_TEST_POSTGRES_URL` is set, on PostgreSQL.

mod common;

use common::{Server, TestAccount, Tokens, b64, random_bytes, unb64};
use serde_json::{Value, json};
use uuid::Uuid;

fn request_body(email: &str, name: &str) -> Value {
    json!({
        "email": email,
        "device_name": name,
        "platform": "linux x86_64",
        "pub_n": b64(&random_bytes(32)),
        "commit": b64(&random_bytes(32)),
    })
}

/// A new request: (id, poll token).
async fn request(s: &Server, email: &str, name: &str) -> (String, String) {
    let v = s
        .post("/v1/approvals", None, &request_body(email, name))
        .await
        .expect(201);
    let id = v["id"].as_str().expect("id").to_owned();
    let token = v["poll_token"].as_str().expect("token").to_owned();
    assert!(token.starts_with("okap_") && token.len() > 40, "{v}");
    assert!(v["expires_in"].as_u64().is_some_and(|s| s > 500), "{v}");
    (id, token)
}

async fn claim(s: &Server, t: &Tokens, id: &str) -> common::Resp {
    s.post(
        &format!("/v1/approvals/{id}/claim"),
        Some(&t.access),
        &json!({ "pub_a": b64(&[5; 32]), "nonce_a": b64(&[6; 32]) }),
    )
    .await
}

async fn story(s: &Server) {
    let (alice, a1) = s.account("alice").await;
    let a2 = s.login(&alice, Uuid::now_v7()).await;
    let (_bob, b1) = s.account("bob").await;

    // The answer for an unknown email has the same shape; it is never listed.
    let (ghost, ghost_token) = request(s, "nobody-here@example.org", "ghost").await;
    let (id, token) = request(s, &alice.email, "new phone").await;
    let listed = s.get("/v1/approvals", Some(&a1.access)).await.expect(200);
    let listed = listed.as_array().expect("list");
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(listed[0]["id"], id);
    assert_eq!(listed[0]["device_name"], "new phone");
    assert_eq!(listed[0]["platform"], "linux x86_64");
    assert_eq!(listed[0]["state"], "pending");
    let bobs = s.get("/v1/approvals", Some(&b1.access)).await.expect(200);
    assert_eq!(bobs.as_array().map(Vec::len), Some(0));
    s.get(&format!("/v1/approvals/{id}"), Some(&b1.access))
        .await
        .problem(404, "not_found");
    s.get(&format!("/v1/approvals/{id}"), Some(&ghost_token))
        .await
        .problem(404, "not_found");
    let g = s
        .get(&format!("/v1/approvals/{ghost}"), Some(&ghost_token))
        .await
        .expect(200);
    assert_eq!(g["state"], "pending");
    s.get(&format!("/v1/approvals/{id}"), None)
        .await
        .problem(401, "unauthorized");

    // Reveal before a claim, approve before a reveal: refused.
    let reveal = json!({ "nonce_n": b64(&[7; 32]) });
    s.post(&format!("/v1/approvals/{id}/reveal"), Some(&token), &reveal)
        .await
        .problem(409, "conflict");
    // Bob cannot claim Alice's request; Alice's first device can, once.
    claim(s, &b1, &id).await.problem(404, "not_found");
    let claimed = claim(s, &a1, &id).await.expect(200);
    assert_eq!(claimed["state"], "claimed");
    assert_eq!(claimed["claimed_by"], a1.device_id.to_string());
    claim(s, &a2, &id).await.problem(409, "conflict");

    // The new device sees the approver's key and nonce, and reveals once;
    // only its own token may.
    let seen = s
        .get(&format!("/v1/approvals/{id}"), Some(&token))
        .await
        .expect(200);
    assert_eq!(unb64(&seen["pub_a"]), vec![5; 32]);
    assert_eq!(unb64(&seen["nonce_a"]), vec![6; 32]);
    assert!(seen["claimed_by"].is_null(), "{seen}");
    s.post(
        &format!("/v1/approvals/{id}/reveal"),
        Some(&a1.access),
        &reveal,
    )
    .await
    .problem(404, "not_found");
    s.post(&format!("/v1/approvals/{id}/reveal"), Some(&token), &reveal)
        .await
        .expect(204);
    s.post(&format!("/v1/approvals/{id}/reveal"), Some(&token), &reveal)
        .await
        .problem(409, "conflict");
    let at_a = s
        .get(&format!("/v1/approvals/{id}"), Some(&a1.access))
        .await
        .expect(200);
    assert_eq!(unb64(&at_a["nonce_n"]), vec![7; 32]);

    // Only the device that claimed it approves it; the box goes to the new
    // device only.
    let sealed = json!({ "sealed": b64(&random_bytes(120)) });
    s.post(
        &format!("/v1/approvals/{id}/approve"),
        Some(&a2.access),
        &sealed,
    )
    .await
    .problem(409, "conflict");
    s.post(
        &format!("/v1/approvals/{id}/approve"),
        Some(&a1.access),
        &json!({ "sealed": b64(&[1; 8]) }),
    )
    .await
    .problem(422, "validation_failed");
    s.post(
        &format!("/v1/approvals/{id}/approve"),
        Some(&a1.access),
        &sealed,
    )
    .await
    .expect(204);
    let done = s
        .get(&format!("/v1/approvals/{id}"), Some(&token))
        .await
        .expect(200);
    assert_eq!(done["state"], "approved");
    assert_eq!(done["sealed"], sealed["sealed"]);
    let at_a = s
        .get(&format!("/v1/approvals/{id}"), Some(&a1.access))
        .await
        .expect(200);
    assert!(at_a["sealed"].is_null(), "{at_a}");
    assert!(
        s.get("/v1/approvals", Some(&a1.access))
            .await
            .expect(200)
            .as_array()
            .is_some_and(Vec::is_empty)
    );

    // The new device logs in naming the approval: the list says who
    // approved it and on what it runs. The approval works once, and only
    // for its account.
    let phone = Uuid::now_v7();
    let mut login = alice.login_body(phone, "new phone");
    login["approval"] = json!(id);
    login["device"]["platform"] = json!("linux x86_64");
    let mut bob_login = TestAccount::login_body(&_bob, Uuid::now_v7(), "x");
    bob_login["approval"] = json!(id);
    s.post("/v1/accounts/login", None, &bob_login)
        .await
        .problem(409, "conflict");
    let t = Tokens::from_json(&s.post("/v1/accounts/login", None, &login).await.expect(200));
    let devices = s.get("/v1/devices", Some(&t.access)).await.expect(200);
    let devices = devices.as_array().expect("devices");
    let mine = devices
        .iter()
        .find(|d| d["id"] == phone.to_string())
        .expect("the new device");
    assert_eq!(mine["approved_by"], a1.device_id.to_string());
    assert_eq!(mine["platform"], "linux x86_64");
    let first = devices
        .iter()
        .find(|d| d["id"] == a1.device_id.to_string())
        .expect("first");
    assert!(first["approved_by"].is_null());
    let one = s
        .get(&format!("/v1/devices/{phone}"), Some(&a1.access))
        .await
        .expect(200);
    assert_eq!(one["approved_by"], a1.device_id.to_string());
    login["device"]["id"] = json!(Uuid::now_v7());
    s.post("/v1/accounts/login", None, &login)
        .await
        .problem(409, "conflict");
    let used = s
        .get(&format!("/v1/approvals/{id}"), Some(&token))
        .await
        .expect(200);
    assert_eq!(used["state"], "used");
    let audit = s.get("/v1/audit", Some(&a1.access)).await.expect(200);
    let kinds: Vec<&str> = audit
        .as_array()
        .expect("audit")
        .iter()
        .filter_map(|e| e["kind"].as_str())
        .collect();
    assert!(kinds.contains(&"device_approved"), "{kinds:?}");

    // Denied: the new device sees it; nothing can follow.
    let (id, token) = request(s, &alice.email, "tablet").await;
    claim(s, &a1, &id).await.expect(200);
    s.post(
        &format!("/v1/approvals/{id}/deny"),
        Some(&b1.access),
        &json!({}),
    )
    .await
    .problem(404, "not_found");
    s.post(
        &format!("/v1/approvals/{id}/deny"),
        Some(&a2.access),
        &json!({}),
    )
    .await
    .expect(204);
    let denied = s
        .get(&format!("/v1/approvals/{id}"), Some(&token))
        .await
        .expect(200);
    assert_eq!(denied["state"], "denied");
    s.post(&format!("/v1/approvals/{id}/reveal"), Some(&token), &reveal)
        .await
        .problem(409, "conflict");
    s.post(
        &format!("/v1/approvals/{id}/deny"),
        Some(&a1.access),
        &json!({}),
    )
    .await
    .problem(409, "conflict");

    // Cancelled by the new device (its token only).
    let (id, token) = request(s, &alice.email, "watch").await;
    s.post(
        &format!("/v1/approvals/{id}/cancel"),
        Some(&a1.access),
        &json!({}),
    )
    .await
    .problem(404, "not_found");
    s.post(
        &format!("/v1/approvals/{id}/cancel"),
        Some(&token),
        &json!({}),
    )
    .await
    .expect(204);
    claim(s, &a1, &id).await.problem(409, "conflict");

    // Malformed requests.
    let mut bad = request_body(&alice.email, "x");
    bad["pub_n"] = json!(b64(&[1; 31]));
    s.post("/v1/approvals", None, &bad)
        .await
        .problem(422, "validation_failed");
    let mut bad = request_body(&alice.email, "x");
    bad["device_name"] = json!("evil\u{1b}[2J");
    s.post("/v1/approvals", None, &bad)
        .await
        .problem(422, "validation_failed");
}

/// A request past its time takes no step and says `expired`.
async fn expiry(s: &Server) {
    let (alice, a1) = s.account("erin").await;
    let (id, token) = request(s, &alice.email, "late").await;
    let uuid = Uuid::parse_str(&id).expect("id");
    let mut stored = s
        .state
        .store
        .approval(uuid)
        .await
        .expect("get")
        .expect("row");
    // Stand-in for ten minutes passing: a copy of the request, made expired.
    stored.id = Uuid::now_v7();
    stored.expires_at = stored.created_at - 1;
    s.state
        .store
        .create_approval(&stored, stored.created_at)
        .await
        .expect("insert");
    let late = stored.id;
    let seen = s
        .get(&format!("/v1/approvals/{late}"), Some(&token))
        .await
        .expect(200);
    assert_eq!(seen["state"], "expired");
    assert_eq!(seen["expires_in"], 0);
    claim(s, &a1, &late.to_string())
        .await
        .problem(409, "conflict");
    let listed = s.get("/v1/approvals", Some(&a1.access)).await.expect(200);
    assert!(
        listed
            .as_array()
            .expect("list")
            .iter()
            .all(|r| r["id"] != late.to_string()),
        "{listed}"
    );
}

#[tokio::test]
async fn approvals_on_sqlite() {
    let s = Server::sqlite().await;
    story(&s).await;
    expiry(&s).await;
}

#[tokio::test]
async fn approvals_in_memory() {
    let s = Server::memory().await;
    story(&s).await;
    expiry(&s).await;
}

#[tokio::test]
async fn approvals_on_postgres() {
    let Some(s) = Server::postgres().await else {
        return;
    };
    story(&s).await;
    expiry(&s).await;
}

/// Requests are rate limited like logins of unknown devices: per account
/// (the email) and per address, known or unknown emails alike.
#[tokio::test]
async fn approval_requests_are_rate_limited_like_logins() {
    let s = Server::memory().await;
    let (alice, _) = s.account("frank").await;
    for _ in 0..5 {
        request(&s, &alice.email, "x").await;
    }
    s.post("/v1/approvals", None, &request_body(&alice.email, "x"))
        .await
        .problem(429, "rate_limited");
    for _ in 0..5 {
        request(&s, "unknown-frank@example.org", "x").await;
    }
    s.post(
        "/v1/approvals",
        None,
        &request_body("unknown-frank@example.org", "x"),
    )
    .await
    .problem(429, "rate_limited");
}
