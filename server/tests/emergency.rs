//! Emergency access (`/v1/emergency…`) on every backend (PostgreSQL when
//! `OPENK_TEST_POSTGRES_URL` is set): the state machine (request, deny
//! within the wait, release only after it, revoke), who may do what, and
//! the rotation that re-seals to every grant. The test server's minimum
//! wait is 1 s (`Settings::for_tests`), so a release is tested by waiting.

#[macro_use]
mod common;

use axum::http::Method;
use common::{Server, TestAccount, Tokens, b64, blob, random_bytes};
use serde_json::{Value, json};
use uuid::Uuid;

on_every_backend!(a_denied_request_releases_nothing_and_a_waited_one_does);
on_every_backend!(only_the_owner_and_the_contact_act_and_revoke_deletes);
on_every_backend!(rotations_reseal_to_exactly_the_grants);

fn grant(contact: &TestAccount, wait: u64, sealed: &str) -> Value {
    json!({
        "id": Uuid::now_v7(),
        "contact_email": contact.email,
        "role": "view",
        "wait_secs": wait,
        "sealed": sealed,
        "signature": b64(&random_bytes(64)),
        "contact_x25519": b64(&contact.public_x25519),
        "contact_ed25519": b64(&contact.public_ed25519),
    })
}

async fn create(s: &Server, t: &Tokens, body: &Value) -> Value {
    s.post("/v1/emergency", Some(&t.access), body)
        .await
        .expect(201)
}

async fn a_denied_request_releases_nothing_and_a_waited_one_does(s: &Server) {
    let (owner, ot) = s.account("em-owner").await;
    let (contact, ct) = s.account("em-contact").await;
    let sealed = blob(120);
    let body = grant(&contact, 2, &sealed);
    let id = body["id"].as_str().expect("id").to_owned();
    let g = create(s, &ot, &body).await;
    assert_eq!(g["state"], "granted");
    assert_eq!(g["owner_email"], json!(owner.email));
    assert_eq!(g["owner_id"], json!(owner.id));
    assert_eq!(g["contact_id"], json!(contact.id));
    // Both sides list it.
    let mine = s.get("/v1/emergency", Some(&ot.access)).await.expect(200);
    assert_eq!(mine["given"][0]["id"], json!(id));
    assert_eq!(mine["held"], json!([]));
    let theirs = s.get("/v1/emergency", Some(&ct.access)).await.expect(200);
    assert_eq!(theirs["held"][0]["id"], json!(id));
    assert_eq!(theirs["held"][0]["signature"], body["signature"]);

    // Not requested: nothing.
    let release = format!("/v1/emergency/{id}/release");
    s.get(&release, Some(&ct.access))
        .await
        .problem(409, "conflict");
    // Requested, then denied within the wait: nothing, even after the wait.
    let r = s
        .post(
            &format!("/v1/emergency/{id}/request"),
            Some(&ct.access),
            &json!({}),
        )
        .await
        .expect(200);
    assert_eq!(r["state"], "requested");
    assert!(
        r["seconds_left"]
            .as_u64()
            .is_some_and(|n| (1..=2).contains(&n)),
        "{r}"
    );
    let seen = s.get("/v1/emergency", Some(&ot.access)).await.expect(200);
    assert_eq!(seen["given"][0]["state"], "requested");
    let waiting = s.get(&release, Some(&ct.access)).await;
    let p = waiting.problem(403, "emergency_waiting");
    assert!(waiting.header("retry-after").is_some(), "{p}");
    assert!(!waiting.text().contains(&sealed));
    s.post(
        &format!("/v1/emergency/{id}/deny"),
        Some(&ot.access),
        &json!({}),
    )
    .await
    .expect(204);
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    let refused = s.get(&release, Some(&ct.access)).await;
    refused.problem(409, "conflict");
    assert!(!refused.text().contains(&sealed));
    // The vaults stay closed.
    s.get(&format!("/v1/emergency/{id}/vaults"), Some(&ct.access))
        .await
        .problem(404, "not_found");

    // Asked again, and the wait passes: released, the box as stored.
    s.post(
        &format!("/v1/emergency/{id}/request"),
        Some(&ct.access),
        &json!({}),
    )
    .await
    .expect(200);
    s.get(&release, Some(&ct.access))
        .await
        .problem(403, "emergency_waiting");
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    let got = s.get(&release, Some(&ct.access)).await.expect(200);
    assert_eq!(got["sealed"], json!(sealed));
    assert_eq!(got["grant"]["state"], "released");
    assert_eq!(got["grant"]["signature"], body["signature"]);
    // Again: the same.
    s.get(&release, Some(&ct.access)).await.expect(200);
    // A denial now is too late (nothing pending).
    s.post(
        &format!("/v1/emergency/{id}/deny"),
        Some(&ot.access),
        &json!({}),
    )
    .await
    .problem(404, "not_found");

    // The owner's vaults, read only through the released grant.
    let v = s.create_vault(&ot.access).await;
    s.push_ok(&ot.access, v, vec![common::change(Uuid::now_v7(), 0, 1)])
        .await;
    let vaults = s
        .get(&format!("/v1/emergency/{id}/vaults"), Some(&ct.access))
        .await
        .expect(200);
    assert_eq!(vaults[0]["id"], json!(v));
    let page = s
        .get(
            &format!("/v1/emergency/{id}/vaults/{v}/changes?since=0"),
            Some(&ct.access),
        )
        .await
        .expect(200);
    assert_eq!(page["records"].as_array().map(Vec::len), Some(1));
    // Not the owner's vault: 404.
    let (_x, xt) = s.account("em-x").await;
    let xv = s.create_vault(&xt.access).await;
    s.get(
        &format!("/v1/emergency/{id}/vaults/{xv}/changes?since=0"),
        Some(&ct.access),
    )
    .await
    .problem(404, "not_found");
    // The owner revokes: all gone.
    s.call(
        Method::DELETE,
        &format!("/v1/emergency/{id}"),
        Some(&ot.access),
        None,
    )
    .await
    .expect(204);
    s.get(&release, Some(&ct.access))
        .await
        .problem(404, "not_found");
    s.get(&format!("/v1/emergency/{id}/vaults"), Some(&ct.access))
        .await
        .problem(404, "not_found");
    let audit = s.audit(&ot.access).await;
    for kind in [
        "emergency_granted",
        "emergency_requested",
        "emergency_denied",
        "emergency_released",
        "emergency_revoked",
    ] {
        assert!(audit.iter().any(|e| e["kind"] == kind), "{kind}: {audit:?}");
    }
}

async fn only_the_owner_and_the_contact_act_and_revoke_deletes(s: &Server) {
    let (_owner, ot) = s.account("em-o2").await;
    let (contact, ct) = s.account("em-c2").await;
    let (_other, xt) = s.account("em-x2").await;
    // Out of range, wrong keys, oneself, unknown: refused.
    s.post(
        "/v1/emergency",
        Some(&ot.access),
        &grant(&contact, 0, &blob(120)),
    )
    .await
    .problem(422, "validation_failed");
    s.post(
        "/v1/emergency",
        Some(&ot.access),
        &grant(&contact, 91 * 86_400, &blob(120)),
    )
    .await
    .problem(422, "validation_failed");
    let mut bad_role = grant(&contact, 60, &blob(120));
    bad_role["role"] = json!("admin");
    s.post("/v1/emergency", Some(&ot.access), &bad_role)
        .await
        .problem(422, "validation_failed");
    let mut swapped = grant(&contact, 60, &blob(120));
    swapped["contact_x25519"] = json!(b64(&random_bytes(32)));
    s.post("/v1/emergency", Some(&ot.access), &swapped)
        .await
        .problem(422, "validation_failed");
    let nobody = TestAccount::unique("em-nobody");
    s.post(
        "/v1/emergency",
        Some(&ot.access),
        &grant(&nobody, 60, &blob(120)),
    )
    .await
    .problem(404, "not_found");

    let body = grant(&contact, 60, &blob(120));
    let id = body["id"].as_str().expect("id").to_owned();
    create(s, &ot, &body).await;
    // One grant per contact.
    s.post(
        "/v1/emergency",
        Some(&ot.access),
        &grant(&contact, 60, &blob(120)),
    )
    .await
    .problem(409, "conflict");
    // Only the contact asks; only the owner denies and revokes.
    for t in [&ot, &xt] {
        s.post(
            &format!("/v1/emergency/{id}/request"),
            Some(&t.access),
            &json!({}),
        )
        .await
        .problem(404, "not_found");
        s.get(&format!("/v1/emergency/{id}/release"), Some(&t.access))
            .await
            .problem(404, "not_found");
    }
    s.post(
        &format!("/v1/emergency/{id}/request"),
        Some(&ct.access),
        &json!({}),
    )
    .await
    .expect(200);
    for t in [&ct, &xt] {
        s.post(
            &format!("/v1/emergency/{id}/deny"),
            Some(&t.access),
            &json!({}),
        )
        .await
        .problem(404, "not_found");
        s.call(
            Method::DELETE,
            &format!("/v1/emergency/{id}"),
            Some(&t.access),
            None,
        )
        .await
        .problem(404, "not_found");
    }
    // Nobody else sees it.
    let x = s.get("/v1/emergency", Some(&xt.access)).await.expect(200);
    assert_eq!(x, json!({"given": [], "held": []}));
    s.call(
        Method::DELETE,
        &format!("/v1/emergency/{id}"),
        Some(&ot.access),
        None,
    )
    .await
    .expect(204);
    let left = s.get("/v1/emergency", Some(&ct.access)).await.expect(200);
    assert_eq!(left["held"], json!([]));
}

fn rotation(version: u32, vault: Uuid, emergency: Value) -> Value {
    json!({
        "account_key_version": version,
        "wrapped_account_key": blob(72),
        "wrapped_private_keys": blob(120),
        "vaults": [{"id": vault, "wrapped_key": blob(72)}],
        "mac": b64(&random_bytes(32)),
        "emergency": emergency,
    })
}

async fn rotations_reseal_to_exactly_the_grants(s: &Server) {
    let (_owner, ot) = s.account("em-rot").await;
    let (c1, _) = s.account("em-rc1").await;
    let (c2, c2t) = s.account("em-rc2").await;
    let v = s.create_vault(&ot.access).await;
    let g1 = grant(&c1, 60, &blob(120));
    let g2 = grant(&c2, 1, &blob(120));
    create(s, &ot, &g1).await;
    create(s, &ot, &g2).await;
    // Missing one, or naming another: refused, nothing changes.
    s.post(
        "/v1/account/key",
        Some(&ot.access),
        &rotation(2, v, json!([{"id": g1["id"], "sealed": blob(120)}])),
    )
    .await
    .problem(409, "conflict");
    s.post(
        "/v1/account/key",
        Some(&ot.access),
        &rotation(
            2,
            v,
            json!([{"id": g1["id"], "sealed": blob(120)}, {"id": Uuid::now_v7(), "sealed": blob(120)}]),
        ),
    )
    .await
    .problem(409, "conflict");
    let new2 = blob(130);
    s.post(
        "/v1/account/key",
        Some(&ot.access),
        &rotation(
            2,
            v,
            json!([{"id": g1["id"], "sealed": blob(120)}, {"id": g2["id"], "sealed": new2}]),
        ),
    )
    .await
    .expect(204);
    let id2 = g2["id"].as_str().expect("id");
    s.post(
        &format!("/v1/emergency/{id2}/request"),
        Some(&c2t.access),
        &json!({}),
    )
    .await
    .expect(200);
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let got = s
        .get(&format!("/v1/emergency/{id2}/release"), Some(&c2t.access))
        .await
        .expect(200);
    assert_eq!(got["sealed"], json!(new2), "the re-sealed box is released");
}

on_every_backend!(a_takeover_grant_sets_new_credentials_once);

fn credentials(new_auth: &[u8]) -> Value {
    json!({
        "kdf": common::kdf(),
        "salt": b64(&random_bytes(16)),
        "auth_key": b64(new_auth),
        "wrapped_account_key": blob(72),
        "mac": b64(&random_bytes(32)),
    })
}

async fn a_takeover_grant_sets_new_credentials_once(s: &Server) {
    let (owner, ot) = s.account("em-take-o").await;
    let other = s.login(&owner, Uuid::now_v7()).await;
    let (viewer, vt) = s.account("em-take-v").await;
    let (heir, ht) = s.account("em-take-h").await;
    let view = grant(&viewer, 1, &blob(120));
    let mut take = grant(&heir, 1, &blob(120));
    take["role"] = json!("takeover");
    create(s, &ot, &view).await;
    create(s, &ot, &take).await;
    let (vid, tid) = (
        view["id"].as_str().expect("id").to_owned(),
        take["id"].as_str().expect("id").to_owned(),
    );
    // Not released yet: nothing.
    s.post(
        &format!("/v1/emergency/{tid}/takeover"),
        Some(&ht.access),
        &credentials(&random_bytes(32)),
    )
    .await
    .problem(404, "not_found");
    for (id, t) in [(&vid, &vt), (&tid, &ht)] {
        s.post(
            &format!("/v1/emergency/{id}/request"),
            Some(&t.access),
            &json!({}),
        )
        .await
        .expect(200);
    }
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    for (id, t) in [(&vid, &vt), (&tid, &ht)] {
        s.get(&format!("/v1/emergency/{id}/release"), Some(&t.access))
            .await
            .expect(200);
    }
    // A view grant does not take over.
    s.post(
        &format!("/v1/emergency/{vid}/takeover"),
        Some(&vt.access),
        &credentials(&random_bytes(32)),
    )
    .await
    .problem(409, "conflict");
    let new_auth = random_bytes(32);
    s.post(
        &format!("/v1/emergency/{tid}/takeover"),
        Some(&ht.access),
        &credentials(&new_auth),
    )
    .await
    .expect(204);
    // Every session of the owner ended; the old auth key fails, the new one works.
    for token in [&ot.access, &other.access] {
        s.get("/v1/vaults", Some(token))
            .await
            .problem(401, "unauthorized");
    }
    let mut body = owner.login_body(Uuid::now_v7(), "Old");
    s.post("/v1/accounts/login", None, &body)
        .await
        .problem(401, "bad_credentials");
    body["auth_key"] = json!(b64(&new_auth));
    let fresh = s.post("/v1/accounts/login", None, &body).await.expect(200);
    let access = fresh["access_token"].as_str().expect("token").to_owned();
    // The grant is used up; the other stays.
    s.post(
        &format!("/v1/emergency/{tid}/takeover"),
        Some(&ht.access),
        &credentials(&random_bytes(32)),
    )
    .await
    .problem(404, "not_found");
    let left = s.get("/v1/emergency", Some(&access)).await.expect(200);
    assert_eq!(left["given"].as_array().map(Vec::len), Some(1), "{left}");
    assert_eq!(left["given"][0]["id"], json!(vid));
    let audit = s.audit(&access).await;
    assert!(
        audit.iter().any(|e| e["kind"] == "emergency_takeover"),
        "{audit:?}"
    );
    let _ = heir;
}
