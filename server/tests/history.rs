//! The security history over the API (`/v1/account/history`): appends must
//! name the head (seq and prev), a stale one is 409 and changes nothing,
//! the entries come back in order and paged, another account sees none,
//! malformed entries and the per-account bound are refused. Each story
//! runs on a temporary SQLite file and, when `OPENK_TEST_POSTGRES_URL` is
//! set, on PostgreSQL.

mod common;

use axum::http::Method;
use common::{Server, b64, unb64};
use openk_server::api::history::{FORMAT, SIGNATURE_LEN, record_hash};
use openk_server::store::HistoryAppend;
use serde_json::{Value, json};
use uuid::Uuid;

/// An entry of the format (the server never checks the signature).
fn entry(seq: u64, prev: [u8; 32], kind: &str) -> Vec<u8> {
    let detail = br#"{"device":"laptop"}"#;
    let mut r = vec![FORMAT];
    r.extend_from_slice(&seq.to_be_bytes());
    r.extend_from_slice(&prev);
    r.extend_from_slice(&1_765_000_000i64.to_be_bytes());
    r.extend_from_slice(Uuid::now_v7().as_bytes());
    r.extend_from_slice(&u16::try_from(kind.len()).expect("short").to_be_bytes());
    r.extend_from_slice(kind.as_bytes());
    r.extend_from_slice(&u32::try_from(detail.len()).expect("short").to_be_bytes());
    r.extend_from_slice(detail);
    r.extend_from_slice(&[7u8; SIGNATURE_LEN]);
    r
}

async fn append(s: &Server, token: &str, e: &[u8]) -> common::Resp {
    s.call(
        Method::POST,
        "/v1/account/history",
        Some(token),
        Some(&json!({ "entry": b64(e) })),
    )
    .await
}

async fn page(s: &Server, token: &str, after: i64) -> Value {
    s.get(&format!("/v1/account/history?after={after}"), Some(token))
        .await
        .expect(200)
}

fn entries(page: &Value) -> Vec<Vec<u8>> {
    page["entries"]
        .as_array()
        .expect("entries")
        .iter()
        .map(unb64)
        .collect()
}

async fn story(s: &Server) {
    let (alice, a1) = s.account("alice").await;
    let a2 = s.login(&alice, Uuid::now_v7()).await;
    let (_, bob) = s.account("bob").await;

    assert_eq!(
        page(s, &a1.access, 0).await,
        json!({ "entries": [], "head": 0, "has_more": false })
    );

    // The first entry: seq 1, prev zeros.
    let e1 = entry(1, [0; 32], "device_added");
    assert_eq!(
        append(s, &a1.access, &e1).await.expect(200),
        json!({ "seq": 1 })
    );
    // Another device appends on top of it (it names its hash).
    let e2 = entry(2, record_hash(&e1), "device_added");
    append(s, &a2.access, &e2).await.expect(200);

    // A stale append (the same seq again, or the right seq with the wrong
    // prev, or a seq beyond the head): 409, nothing stored.
    let again = entry(2, record_hash(&e1), "password_changed");
    let p = append(s, &a1.access, &again).await.problem(409, "conflict");
    assert!(
        p["detail"]
            .as_str()
            .is_some_and(|d| d.contains("head is entry 2")),
        "{p}"
    );
    append(s, &a1.access, &entry(3, record_hash(&e1), "x"))
        .await
        .problem(409, "conflict");
    append(s, &a1.access, &entry(4, record_hash(&e2), "x"))
        .await
        .problem(409, "conflict");
    append(s, &a1.access, &entry(0, [0; 32], "x"))
        .await
        .problem(422, "validation_failed");
    let e3 = entry(3, record_hash(&e2), "password_changed");
    append(s, &a1.access, &e3).await.expect(200);

    // In order, whole, from any point; the head is said.
    let all = page(s, &a2.access, 0).await;
    assert_eq!(entries(&all), [e1.clone(), e2.clone(), e3.clone()]);
    assert_eq!(all["head"], 3);
    assert_eq!(all["has_more"], false);
    assert_eq!(
        entries(&page(s, &a1.access, 2).await),
        std::slice::from_ref(&e3)
    );
    let past = page(s, &a1.access, 3).await;
    assert!(entries(&past).is_empty());
    assert_eq!(past["head"], 3);

    // Another account has its own history, and sees none of alice's.
    assert!(entries(&page(s, &bob.access, 0).await).is_empty());
    append(s, &bob.access, &entry(1, [0; 32], "device_added"))
        .await
        .expect(200);
    assert_eq!(page(s, &a1.access, 0).await["head"], 3);

    // Malformed entries and bad requests.
    let mut bad = entry(4, record_hash(&e3), "x");
    bad[0] = 9;
    append(s, &a1.access, &bad)
        .await
        .problem(422, "validation_failed");
    let mut short = entry(4, record_hash(&e3), "x");
    short.pop();
    append(s, &a1.access, &short)
        .await
        .problem(422, "validation_failed");
    append(s, &a1.access, &[1u8; 5000])
        .await
        .problem(422, "validation_failed");
    s.get("/v1/account/history?after=-1", Some(&a1.access))
        .await
        .problem(400, "bad_request");
    s.get("/v1/account/history", None)
        .await
        .problem(401, "unauthorized");
    s.call(
        Method::POST,
        "/v1/account/history",
        Some(&a1.access),
        Some(&json!({ "entry": b64(&e3), "seq": 4 })),
    )
    .await
    .problem(422, "validation_failed");
    assert_eq!(page(s, &a1.access, 0).await["head"], 3, "nothing stored");
}

/// More entries than a page holds; and the per-account bound.
async fn paging_and_bound(s: &Server) {
    let (carol, t) = s.account("carol").await;
    let id = s.internal_id(&carol).await;
    let mut prev = [0u8; 32];
    let mut expected = Vec::new();
    for seq in 1..=150u64 {
        let e = entry(seq, prev, "key_rotated");
        let hash = record_hash(&e);
        let done = s
            .state
            .store
            .append_history(
                id,
                i64::try_from(seq).expect("small"),
                &prev,
                &hash,
                &e,
                150,
                1,
            )
            .await
            .expect("append");
        assert_eq!(done, HistoryAppend::Stored);
        prev = hash;
        expected.push(e);
    }
    let first = page(s, &t.access, 0).await;
    assert_eq!(first["has_more"], true);
    assert_eq!(first["head"], 150);
    assert_eq!(entries(&first).len(), 100);
    let second = page(s, &t.access, 100).await;
    assert_eq!(second["has_more"], false);
    let seen: Vec<Vec<u8>> = entries(&first)
        .into_iter()
        .chain(entries(&second))
        .collect();
    assert_eq!(seen, expected);
    // At the bound: refused, nothing stored.
    let e = entry(151, prev, "key_rotated");
    let full = s
        .state
        .store
        .append_history(id, 151, &prev, &record_hash(&e), &e, 150, 1)
        .await
        .expect("append");
    assert_eq!(full, HistoryAppend::Full { max: 150 });
    assert_eq!(page(s, &t.access, 0).await["head"], 150);
}

#[tokio::test]
async fn history_on_sqlite() {
    let s = Server::sqlite().await;
    story(&s).await;
    paging_and_bound(&s).await;
}

#[tokio::test]
async fn history_on_postgres() {
    let Some(s) = Server::postgres().await else {
        return;
    };
    story(&s).await;
    paging_and_bound(&s).await;
}

/// Two devices appending the same seq at once: exactly one is stored.
#[tokio::test]
async fn concurrent_appends_store_one() {
    for s in [Some(Server::sqlite().await), Server::postgres().await]
        .into_iter()
        .flatten()
    {
        let (dave, _) = s.account("dave").await;
        let id = s.internal_id(&dave).await;
        let tasks: Vec<_> = (0..8)
            .map(|_| {
                let store = s.state.store.clone();
                tokio::spawn(async move {
                    let e = entry(1, [0; 32], "device_added");
                    store
                        .append_history(id, 1, &[0; 32], &record_hash(&e), &e, 100, 1)
                        .await
                        .expect("append")
                })
            })
            .collect();
        let mut stored = 0;
        for t in tasks {
            match t.await.expect("task") {
                HistoryAppend::Stored => stored += 1,
                other => assert_eq!(other, HistoryAppend::Stale { head: 1 }),
            }
        }
        assert_eq!(stored, 1);
    }
}
