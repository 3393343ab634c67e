//! Account recovery (`/v1/account/recovery`, `/v1/recovery/start|complete`)
//! on every backend (PostgreSQL when `OPENK_TEST_POSTGRES_URL` is set). The
//! server never opens anything: every key here is random bytes of the sizes
//! a client sends.

#[macro_use]
mod common;

use axum::http::Method;
use common::{Server, b64, blob, kdf, random_bytes};
use serde_json::{Value, json};
use uuid::Uuid;

on_every_backend!(a_code_sets_new_credentials_once_and_ends_every_session);
on_every_backend!(rotations_keep_the_recovery_copy_in_step);

fn setup(auth: &[u8], version: u32) -> Value {
    json!({
        "public_key": b64(&random_bytes(32)),
        "signature": b64(&random_bytes(64)),
        "auth_key": b64(auth),
        "sealed_account_key": blob(81),
        "account_key_version": version,
    })
}

fn complete(email: &str, recovery_auth: &[u8], new_auth: &[u8]) -> Value {
    json!({
        "email": email,
        "recovery_auth_key": b64(recovery_auth),
        "kdf": kdf(),
        "salt": b64(&random_bytes(16)),
        "auth_key": b64(new_auth),
        "wrapped_account_key": blob(72),
        "mac": b64(&random_bytes(32)),
    })
}

async fn a_code_sets_new_credentials_once_and_ends_every_session(s: &Server) {
    let (ana, t) = s.account("rec-ana").await;
    let other = s.login(&ana, Uuid::now_v7()).await;
    s.get("/v1/account/recovery", Some(&t.access))
        .await
        .problem(404, "not_found");
    let auth = random_bytes(32);
    let body = setup(&auth, 1);
    // Of another key version: refused, nothing stored.
    s.call(
        Method::PUT,
        "/v1/account/recovery",
        Some(&t.access),
        Some(&setup(&auth, 2)),
    )
    .await
    .problem(409, "conflict");
    let mut short = body.clone();
    short["auth_key"] = json!(b64(&random_bytes(31)));
    s.call(
        Method::PUT,
        "/v1/account/recovery",
        Some(&t.access),
        Some(&short),
    )
    .await
    .problem(422, "validation_failed");
    s.call(
        Method::PUT,
        "/v1/account/recovery",
        Some(&t.access),
        Some(&body),
    )
    .await
    .expect(204);
    let got = s
        .get("/v1/account/recovery", Some(&t.access))
        .await
        .expect(200);
    assert_eq!(got["public_key"], body["public_key"]);
    assert_eq!(got["signature"], body["signature"]);
    assert_eq!(got["account_key_version"], 1);

    // A wrong code and an unknown email look the same.
    let wrong = json!({"email": ana.email, "auth_key": b64(&random_bytes(32))});
    s.post("/v1/recovery/start", None, &wrong)
        .await
        .problem(401, "bad_credentials");
    let unknown = json!({"email": "nobody-rec@example.org", "auth_key": b64(&auth)});
    s.post("/v1/recovery/start", None, &unknown)
        .await
        .problem(401, "bad_credentials");
    let start = json!({"email": ana.email, "auth_key": b64(&auth)});
    let started = s.post("/v1/recovery/start", None, &start).await.expect(200);
    assert_eq!(started["sealed_account_key"], body["sealed_account_key"]);
    assert_eq!(started["account_key_version"], 1);
    assert_eq!(started["account_id"], json!(ana.id));
    // Start changed nothing: both sessions go on.
    s.get("/v1/vaults", Some(&other.access)).await.expect(200);

    s.post(
        "/v1/recovery/complete",
        None,
        &complete(&ana.email, &random_bytes(32), &random_bytes(32)),
    )
    .await
    .problem(401, "bad_credentials");
    let new_auth = random_bytes(32);
    s.post(
        "/v1/recovery/complete",
        None,
        &complete(&ana.email, &auth, &new_auth),
    )
    .await
    .expect(204);
    // Every session ended, the old auth key fails, the new one signs in.
    for token in [&t.access, &other.access] {
        s.get("/v1/vaults", Some(token))
            .await
            .problem(401, "unauthorized");
    }
    let mut old = ana.login_body(Uuid::now_v7(), "Old");
    s.post("/v1/accounts/login", None, &old)
        .await
        .problem(401, "bad_credentials");
    old["auth_key"] = json!(b64(&new_auth));
    let fresh = s.post("/v1/accounts/login", None, &old).await.expect(200);
    let access = fresh["access_token"].as_str().expect("token").to_owned();
    // The code is used up.
    s.get("/v1/account/recovery", Some(&access))
        .await
        .problem(404, "not_found");
    s.post(
        "/v1/recovery/complete",
        None,
        &complete(&ana.email, &auth, &random_bytes(32)),
    )
    .await
    .problem(401, "bad_credentials");
    let audit = s.audit(&access).await;
    for kind in ["recovery_set_up", "recovery_failed", "recovery_used"] {
        assert!(audit.iter().any(|e| e["kind"] == kind), "{kind}: {audit:?}");
    }
}

fn rotation(version: u32, vault: Uuid, recovery: Option<Value>) -> Value {
    let mut body = json!({
        "account_key_version": version,
        "wrapped_account_key": blob(72),
        "wrapped_private_keys": blob(120),
        "vaults": [{"id": vault, "wrapped_key": blob(72)}],
        "mac": b64(&random_bytes(32)),
    });
    if let Some(r) = recovery {
        body["recovery_sealed_account_key"] = r;
    }
    body
}

async fn rotations_keep_the_recovery_copy_in_step(s: &Server) {
    let (_ana, t) = s.account("rec-rot").await;
    let v = s.create_vault(&t.access).await;
    // Without recovery, a rotation must not carry a recovery copy.
    s.post(
        "/v1/account/key",
        Some(&t.access),
        &rotation(2, v, Some(json!(blob(81)))),
    )
    .await
    .problem(409, "conflict");
    s.call(
        Method::PUT,
        "/v1/account/recovery",
        Some(&t.access),
        Some(&setup(&random_bytes(32), 1)),
    )
    .await
    .expect(204);
    // With recovery, it must.
    s.post("/v1/account/key", Some(&t.access), &rotation(2, v, None))
        .await
        .problem(409, "conflict");
    let sealed = json!(blob(81));
    s.post(
        "/v1/account/key",
        Some(&t.access),
        &rotation(2, v, Some(sealed.clone())),
    )
    .await
    .expect(204);
    let got = s
        .get("/v1/account/recovery", Some(&t.access))
        .await
        .expect(200);
    assert_eq!(got["account_key_version"], 2);
    // Removal.
    s.call(
        Method::DELETE,
        "/v1/account/recovery",
        Some(&t.access),
        None,
    )
    .await
    .expect(204);
    s.call(
        Method::DELETE,
        "/v1/account/recovery",
        Some(&t.access),
        None,
    )
    .await
    .problem(404, "not_found");
    s.post("/v1/account/key", Some(&t.access), &rotation(3, v, None))
        .await
        .expect(204);
}
