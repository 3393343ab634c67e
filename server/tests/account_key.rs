//! Rotating the account key (`POST /v1/account/key`) and the key of a vault
//! that is not shared (`POST /v1/vaults/{id}/rotate`), on every backend
//! (PostgreSQL when `OPENK_TEST_POSTGRES_URL` is set). The server never
//! opens a key, so every byte here is random, of the sizes a client sends.

#[macro_use]
mod common;

use common::{Server, b64, blob, change, random_bytes};
use serde_json::{Value, json};
use uuid::Uuid;

on_every_backend!(the_account_key_rotates_in_one_step);
on_every_backend!(a_vault_that_is_not_shared_rotates_its_key);

fn rotation(version: u32, vaults: &[Uuid]) -> Value {
    json!({
        "account_key_version": version,
        "wrapped_account_key": blob(72),
        "wrapped_private_keys": blob(120),
        "vaults": vaults.iter().map(|v| json!({"id": v, "wrapped_key": blob(72)})).collect::<Vec<_>>(),
        "mac": b64(&random_bytes(32)),
    })
}

async fn the_account_key_rotates_in_one_step(s: &Server) {
    let (ana, t) = s.account("rot-ana").await;
    let other = s.login(&ana, Uuid::now_v7()).await;
    let a = s.create_vault(&t.access).await;
    let b = s.create_vault(&t.access).await;
    let before = s.get("/v1/account", Some(&t.access)).await.expect(200);
    assert_eq!(before["account_key_version"], 1);
    // Refused, nothing changed: another version, a vault missing, one too
    // many, someone else's.
    for body in [
        rotation(3, &[a, b]),
        rotation(1, &[a, b]),
        rotation(2, &[a]),
        rotation(2, &[a, b, Uuid::now_v7()]),
    ] {
        s.post("/v1/account/key", Some(&t.access), &body)
            .await
            .problem(409, "conflict");
    }
    let mut bad = rotation(2, &[a, b]);
    bad["mac"] = json!(b64(&random_bytes(31)));
    s.post("/v1/account/key", Some(&t.access), &bad)
        .await
        .problem(422, "validation_failed");
    let same = s.get("/v1/account", Some(&t.access)).await.expect(200);
    assert_eq!(same, before);
    s.get("/v1/vaults", Some(&other.access)).await.expect(200);

    let body = rotation(2, &[a, b]);
    s.post("/v1/account/key", Some(&t.access), &body)
        .await
        .expect(204);
    let after = s.get("/v1/account", Some(&t.access)).await.expect(200);
    assert_eq!(after["account_key_version"], 2);
    assert_eq!(after["wrapped_account_key"], body["wrapped_account_key"]);
    assert_eq!(after["wrapped_private_keys"], body["wrapped_private_keys"]);
    assert_eq!(after["password_mac"], body["mac"]);
    let vaults = s.get("/v1/vaults", Some(&t.access)).await.expect(200);
    for v in vaults.as_array().expect("vaults") {
        let sent = body["vaults"]
            .as_array()
            .expect("sent")
            .iter()
            .find(|x| x["id"] == v["id"])
            .expect("listed");
        assert_eq!(v["wrapped_key"], sent["wrapped_key"]);
    }
    // The other session ended; this one goes on.
    s.get("/v1/vaults", Some(&other.access))
        .await
        .problem(401, "unauthorized");
    // The same version again is stale.
    s.post("/v1/account/key", Some(&t.access), &rotation(2, &[a, b]))
        .await
        .problem(409, "conflict");
    let audit = s.audit(&t.access).await;
    assert!(
        audit.iter().any(|e| e["kind"] == "account_key_rotated"),
        "{audit:?}"
    );
}

async fn a_vault_that_is_not_shared_rotates_its_key(s: &Server) {
    let (_ana, t) = s.account("rot-vault").await;
    let (_eve, e) = s.account("rot-eve").await;
    let v = s.create_vault(&t.access).await;
    let items = [Uuid::now_v7(), Uuid::now_v7()];
    s.push_ok(
        &t.access,
        v,
        vec![change(items[0], 0, 1), change(items[1], 0, 1)],
    )
    .await;
    let head = s.head(&t.access, v).await;
    let rot = |epoch: u32, head: i64, ids: &[Uuid], owner: bool| {
        let mut r = json!({
            "key_epoch": epoch,
            "sealed_keys": [],
            "records": ids.iter().map(|i| json!({"item_id": i, "version": 1, "wrapped_key": blob(60)})).collect::<Vec<_>>(),
            "meta": blob(64),
            "manifest": blob(80),
            "expected_head": head,
        });
        if owner {
            r["owner_wrapped_key"] = json!(blob(72));
        }
        r
    };
    let path = format!("/v1/vaults/{v}/rotate");
    s.post(&path, Some(&t.access), &rot(2, head, &items, false))
        .await
        .problem(422, "validation_failed");
    s.post(&path, Some(&e.access), &rot(2, head, &items, true))
        .await
        .problem(404, "not_found");
    s.post(&path, Some(&t.access), &rot(2, head - 1, &items, true))
        .await
        .problem(409, "head_moved");
    s.post(&path, Some(&t.access), &rot(3, head, &items, true))
        .await
        .problem(409, "conflict");
    s.post(&path, Some(&t.access), &rot(2, head, &items[..1], true))
        .await
        .problem(409, "conflict");
    assert_eq!(s.head(&t.access, v).await, head, "nothing stored");
    let good = rot(2, head, &items, true);
    s.post(&path, Some(&t.access), &good).await.expect(204);
    let listed = s.get("/v1/vaults", Some(&t.access)).await.expect(200);
    let me = listed
        .as_array()
        .expect("vaults")
        .iter()
        .find(|x| x["id"] == v.to_string())
        .expect("listed")
        .clone();
    assert_eq!(me["key_epoch"], 2);
    assert_eq!(me["wrapped_key"], good["owner_wrapped_key"]);
    assert_eq!(s.head(&t.access, v).await, head + 2);
    // Pushes now carry the epoch.
    let mut stale = common::batch(Uuid::now_v7(), vec![change(items[0], head + 1, 2)]);
    s.push(&t.access, v, &stale)
        .await
        .problem(409, "key_rotated");
    stale["key_epoch"] = json!(2);
    s.push(&t.access, v, &stale).await.expect(200);
}
