//! Item usage over the API (`/v1/usage`): each device stores one opaque
//! blob, the account's devices read each other's (revoked ones included)
//! by revision, another account reads none of them, and the size bound.
//! Each story runs on a temporary SQLite file and, when
//! `OPENK_TEST_POSTGRES_URL` is set, on PostgreSQL.

mod common;

use axum::http::Method;
use common::{Server, Tokens, b64, random_bytes, unb64};
use serde_json::{Value, json};
use uuid::Uuid;

/// A fake sealed blob: `version(1) || nonce(24) || ciphertext+tag`.
fn sealed(len: usize) -> Vec<u8> {
    let mut b = random_bytes(len);
    b[0] = 1;
    b
}

async fn put(s: &Server, token: &str, blob: &[u8]) -> common::Resp {
    s.call(
        Method::PUT,
        "/v1/usage",
        Some(token),
        Some(&json!({ "blob": b64(blob) })),
    )
    .await
}

async fn put_ok(s: &Server, t: &Tokens, blob: &[u8]) -> i64 {
    put(s, &t.access, blob).await.expect(200)["revision"]
        .as_i64()
        .expect("revision")
}

async fn page(s: &Server, token: &str, since: i64) -> Value {
    s.get(&format!("/v1/usage?since={since}"), Some(token))
        .await
        .expect(200)
}

/// The (device, blob) pairs of a page, in its order.
fn devices(page: &Value) -> Vec<(String, Vec<u8>)> {
    page["devices"]
        .as_array()
        .expect("devices")
        .iter()
        .map(|d| {
            (
                d["device_id"].as_str().expect("id").to_owned(),
                unb64(&d["blob"]),
            )
        })
        .collect()
}

async fn story(s: &Server) {
    let (alice, a1) = s.account("alice").await;
    let a2 = s.login(&alice, Uuid::now_v7()).await;
    let (_, bob) = s.account("bob").await;

    // Nothing yet.
    let empty = page(s, &a1.access, 0).await;
    assert_eq!(
        empty,
        json!({ "devices": [], "has_more": false, "next_since": 0 })
    );

    // Each device stores its own blob; uploads are numbered in order.
    let one = sealed(200);
    let two = sealed(300);
    let r1 = put_ok(s, &a1, &one).await;
    let r2 = put_ok(s, &a2, &two).await;
    assert!(r2 > r1, "{r1} then {r2}");
    let all = page(s, &a2.access, 0).await;
    assert_eq!(
        devices(&all),
        [
            (a1.device_id.to_string(), one.clone()),
            (a2.device_id.to_string(), two.clone())
        ]
    );
    assert_eq!(all["next_since"], r2);
    assert_eq!(all["has_more"], false);
    assert!(
        all["devices"][0]["updated_at"]
            .as_str()
            .is_some_and(|t| t.ends_with('Z'))
    );
    // Only what changed since a revision.
    assert_eq!(
        devices(&page(s, &a1.access, r1).await),
        [(a2.device_id.to_string(), two.clone())]
    );
    assert!(devices(&page(s, &a1.access, r2).await).is_empty());
    // A new upload replaces the device's blob and moves it past the others.
    let newer = sealed(250);
    let r3 = put_ok(s, &a1, &newer).await;
    assert!(r3 > r2);
    let all = page(s, &a1.access, 0).await;
    assert_eq!(
        devices(&all),
        [
            (a2.device_id.to_string(), two.clone()),
            (a1.device_id.to_string(), newer.clone())
        ]
    );
    assert_eq!(
        devices(&page(s, &a2.access, r2).await),
        [(a1.device_id.to_string(), newer.clone())]
    );

    // Another account reads none of them, and its own numbering is its own.
    assert!(devices(&page(s, &bob.access, 0).await).is_empty());
    let before = openk_server::state::now_millis();
    let b1 = put_ok(s, &bob, &sealed(100)).await;
    assert!(
        b1 >= before,
        "a revision is at least the upload's time: {b1}"
    );
    assert_eq!(devices(&page(s, &bob.access, 0).await).len(), 1);
    assert_eq!(
        devices(&page(s, &a1.access, 0).await).len(),
        2,
        "alice's are unchanged"
    );

    // A revoked device's counts still count.
    s.call(
        Method::DELETE,
        &format!("/v1/devices/{}", a2.device_id),
        Some(&a1.access),
        None,
    )
    .await
    .expect(204);
    put(s, &a2.access, &sealed(100))
        .await
        .problem(401, "unauthorized");
    let all = page(s, &a1.access, 0).await;
    assert!(
        devices(&all).contains(&(a2.device_id.to_string(), two.clone())),
        "{all}"
    );

    // The size bound: 41 bytes (an empty envelope) to 512 KiB.
    put_ok(s, &a1, &sealed(512 * 1024)).await;
    put_ok(s, &a1, &sealed(41)).await;
    for bad in [40, 512 * 1024 + 1] {
        let p = put(s, &a1.access, &sealed(bad))
            .await
            .problem(422, "validation_failed");
        assert!(
            p["detail"]
                .as_str()
                .is_some_and(|d| d.contains("usage blob")),
            "{p}"
        );
    }
    let last = devices(&page(s, &a1.access, 0).await);
    assert!(
        last.iter()
            .any(|(d, b)| *d == a1.device_id.to_string() && b.len() == 41),
        "a refused upload changes nothing"
    );

    // Bad requests and no session.
    s.get("/v1/usage?since=-1", Some(&a1.access))
        .await
        .problem(400, "bad_request");
    s.get("/v1/usage?since=0&device=x", Some(&a1.access))
        .await
        .problem(400, "bad_request");
    s.get("/v1/usage", None).await.problem(401, "unauthorized");
    s.call(
        Method::PUT,
        "/v1/usage",
        Some(&a1.access),
        Some(&json!({ "blob": b64(&one), "device_id": a2.device_id })),
    )
    .await
    .problem(422, "validation_failed");
}

/// More devices than a page holds: paged by revision, nothing missed.
async fn paging(s: &Server) {
    let (carol, t) = s.account("carol").await;
    let id = s.internal_id(&carol).await;
    let mut expected = Vec::new();
    for _ in 0..33 {
        let device = Uuid::now_v7();
        s.state
            .store
            .put_item_usage(id, device, &sealed(60), 1)
            .await
            .expect("put");
        expected.push(device.to_string());
    }
    let first = page(s, &t.access, 0).await;
    assert_eq!(first["has_more"], true);
    assert_eq!(devices(&first).len(), 32);
    let second = page(s, &t.access, first["next_since"].as_i64().expect("next")).await;
    assert_eq!(second["has_more"], false);
    let seen: Vec<String> = devices(&first)
        .into_iter()
        .chain(devices(&second))
        .map(|(d, _)| d)
        .collect();
    assert_eq!(seen, expected);
}

#[tokio::test]
async fn usage_on_sqlite() {
    let s = Server::sqlite().await;
    story(&s).await;
    paging(&s).await;
}

#[tokio::test]
async fn usage_on_postgres() {
    let Some(s) = Server::postgres().await else {
        return;
    };
    story(&s).await;
    paging(&s).await;
}

/// Two devices of one account uploading at once: every upload gets its own
/// revision, and a reader that saw a revision misses nothing above it.
/// Revisions are at least the time of the upload.
#[tokio::test]
async fn concurrent_uploads_are_numbered_one_by_one() {
    for s in [Some(Server::sqlite().await), Server::postgres().await]
        .into_iter()
        .flatten()
    {
        let (dave, _) = s.account("dave").await;
        let id = s.internal_id(&dave).await;
        let store = s.state.store.clone();
        let tasks: Vec<_> = (0..16)
            .map(|_| {
                let store = store.clone();
                tokio::spawn(async move {
                    store
                        .put_item_usage(id, Uuid::now_v7(), &sealed(60), 1_000)
                        .await
                        .expect("put")
                })
            })
            .collect();
        let mut revisions = Vec::new();
        for t in tasks {
            revisions.push(t.await.expect("task"));
        }
        revisions.sort_unstable();
        assert_eq!(revisions, (1_000..1_016).collect::<Vec<i64>>());
    }
}
