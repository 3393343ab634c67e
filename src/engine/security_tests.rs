//! The security history: the chain checks on their own (a dropped,
//! reordered, altered or forged entry, a truncated or rewritten tail), and
//! through the engine against a real server whose database is tampered
//! with, with two devices appending at once.

use super::*;
use crate::engine::test_fixtures::{FAST_KDF, password};
use crate::engine::test_server::TestServer;

fn chain(pair: &AccountKeyPair, n: u64) -> Vec<Vec<u8>> {
    let device = Uuid::now_v7();
    let mut prev = [0u8; 32];
    (1..=n)
        .map(|seq| {
            let e = SecurityEntry {
                seq,
                prev,
                at: 1_765_000_000 + i64::try_from(seq).expect("small"),
                device_id: device,
                kind: SecurityKind::KNOWN[usize::try_from(seq).expect("small") % 21].clone(),
                detail: detail([("by", "laptop"), ("n", &seq.to_string())]),
            };
            let r = e.sign(pair);
            prev = format::record_hash(&r);
            r
        })
        .collect()
}

fn head_of(records: &[Vec<u8>]) -> Head {
    Head {
        seq: records.len() as u64,
        hash: format::record_hash(records.last().expect("one")),
    }
}

fn bad_seq(records: &[Vec<u8>], pair: &AccountKeyPair, server_head: u64, seen: Head) -> u64 {
    let (_, bad) = check_chain(&pair.public().ed25519, records, server_head, seen);
    bad.expect("tampering reported").seq
}

#[test]
fn a_whole_chain_verifies_and_every_kind_of_tampering_names_the_first_bad_entry() {
    let pair = AccountKeyPair::generate();
    let public = pair.public().ed25519;
    let good = chain(&pair, 5);
    let (ok, bad) = check_chain(&public, &good, 5, head_of(&good));
    assert!(bad.is_none(), "{bad:?}");
    assert_eq!(ok.len(), 5);
    assert_eq!(ok[2].entry.detail["n"], "3");

    // Dropped: entry 3 is gone.
    let mut dropped = good.clone();
    dropped.remove(2);
    let (_, bad) = check_chain(&public, &dropped, 4, Head::default());
    let bad = bad.expect("dropped");
    assert_eq!(bad.seq, 3);
    assert!(bad.what.contains("entry 3 is missing"), "{}", bad.what);

    // Reordered: 3 and 4 swapped.
    let mut swapped = good.clone();
    swapped.swap(2, 3);
    assert_eq!(bad_seq(&swapped, &pair, 5, Head::default()), 3);

    // Altered: one byte of entry 2's detail.
    let mut altered = good.clone();
    let last = altered[1].len() - 70;
    altered[1][last] ^= 1;
    let (_, bad) = check_chain(&public, &altered, 5, Head::default());
    let bad = bad.expect("altered");
    assert_eq!(bad.seq, 2);
    assert!(bad.what.contains("signature"), "{}", bad.what);

    // Forged: a well-formed entry 4 signed by another key (the server's).
    let mut forged = good.clone();
    let fake = SecurityEntry {
        seq: 4,
        prev: format::record_hash(&good[2]),
        at: 0,
        device_id: Uuid::nil(),
        kind: SecurityKind::DeviceAdded,
        detail: detail([("by", "attacker")]),
    };
    forged[3] = fake.sign(&AccountKeyPair::generate());
    assert_eq!(bad_seq(&forged, &pair, 5, Head::default()), 4);

    // Replaced: a genuine but older entry in another's place (a replay).
    let mut replayed = good.clone();
    replayed[3] = good[1].clone();
    assert_eq!(bad_seq(&replayed, &pair, 5, Head::default()), 4);

    // Truncated tail: this device saw entry 5, the server shows 3 (and
    // claims 3), which alone would look whole.
    let short = good[..3].to_vec();
    assert!(check_chain(&public, &short, 3, Head::default()).1.is_none());
    let (_, bad) = check_chain(&public, &short, 3, head_of(&good));
    let bad = bad.expect("truncated");
    assert_eq!(bad.seq, 4);
    assert!(bad.what.contains("tail was dropped"), "{}", bad.what);

    // Rewritten: another genuine chain (two devices' forks) at the entry
    // this device saw.
    let other = chain(&pair, 5);
    assert_eq!(bad_seq(&other, &pair, 5, head_of(&good)), 5);

    // Fewer entries than the server claims.
    assert_eq!(bad_seq(&short, &pair, 5, Head::default()), 4);
    // Nothing at all, after this device saw some.
    assert_eq!(bad_seq(&[], &pair, 0, head_of(&good)), 1);
}

#[test]
fn an_incremental_check_from_the_remembered_head() {
    let pair = AccountKeyPair::generate();
    let public = pair.public().ed25519;
    let good = chain(&pair, 6);
    let seen = head_of(&good[..4]);
    // The client asks after entry 3: it gets 4, 5, 6.
    let (ok, bad) = walk(&public, &good[3..], 4, None);
    assert!(bad.is_none());
    assert!(against_remembered(&ok, 4, seen).is_none());
    // Entry 4 replaced by another genuine one: caught against the head.
    let other = chain(&pair, 6);
    let (ok, bad) = walk(&public, &other[3..], 4, None);
    assert!(bad.is_none(), "a chain of its own");
    assert_eq!(against_remembered(&ok, 4, seen).expect("caught").seq, 4);
}

#[test]
fn kinds_have_stable_names_and_unknown_ones_are_kept() {
    let names: Vec<&str> = SecurityKind::KNOWN
        .iter()
        .map(SecurityKind::as_str)
        .collect();
    assert_eq!(
        names,
        [
            "device_added",
            "device_approved",
            "device_revoked",
            "password_changed",
            "secret_key_rotated",
            "account_key_rotated",
            "vault_key_rotated",
            "recovery_setup",
            "recovery_used",
            "emergency_granted",
            "emergency_requested",
            "emergency_denied",
            "emergency_released",
            "emergency_revoked",
            "member_invited",
            "member_added",
            "member_removed",
            "member_role_changed",
            "member_left",
            "key_created",
            "key_rotated",
            "emergency_takeover",
        ]
    );
    for k in SecurityKind::KNOWN {
        assert_eq!(SecurityKind::parse(k.as_str()), k);
    }
    assert_eq!(
        SecurityKind::parse("passkey_added"),
        SecurityKind::Other("passkey_added".into())
    );
    // An unknown kind signs and opens as itself.
    let pair = AccountKeyPair::generate();
    let e = SecurityEntry {
        seq: 1,
        prev: [0; 32],
        at: -5,
        device_id: Uuid::max(),
        kind: SecurityKind::Other("passkey_added".into()),
        detail: Detail::new(),
    };
    let opened = SecurityEntry::open(&e.sign(&pair), &pair.public().ed25519).expect("opens");
    assert_eq!(opened, e);
}

#[test]
fn the_entry_encoding_is_stable() {
    let e = SecurityEntry {
        seq: 1,
        prev: [0; 32],
        at: 1,
        device_id: Uuid::nil(),
        kind: SecurityKind::DeviceAdded,
        detail: detail([("by", "a")]),
    };
    let bytes = e.encode();
    let hex = data_encoding::HEXLOWER.encode(&bytes);
    assert_eq!(
        hex,
        format!(
            "01{}{}{}{}000c{}0000000a{}",
            "0000000000000001",
            "00".repeat(32),
            "0000000000000001",
            "00".repeat(16),
            data_encoding::HEXLOWER.encode(b"device_added"),
            data_encoding::HEXLOWER.encode(br#"{"by":"a"}"#),
        )
    );
}

/// The server's SQLite database, to tamper with.
async fn pool(db: &std::path::Path) -> sqlx::SqlitePool {
    let opts = sqlx::sqlite::SqliteConnectOptions::new()
        .filename(db)
        .busy_timeout(std::time::Duration::from_secs(10));
    sqlx::SqlitePool::connect_with(opts).await.expect("db")
}

#[tokio::test]
async fn two_devices_append_verify_and_catch_a_server_that_tampers() {
    let tmp = tempfile::tempdir().expect("tmp");
    let db = tmp.path().join("server.db");
    let server = TestServer::start(&format!("sqlite://{}", db.display())).await;

    // Offline first: the event waits in the queue.
    let mut a = Session::init(&tmp.path().join("a"), password(), FAST_KDF)
        .await
        .expect("init");
    a.record_security(SecurityKind::RecoverySetup, Detail::new())
        .await;
    assert_eq!(a.pending_security().await.expect("pending"), 1);
    let offline = a.security_history().await.expect("history");
    assert!(!offline.checked_server && !offline.verified);
    assert_eq!(offline.entries.len(), 1);
    assert!(offline.entries[0].pending);

    a.register(&server.url, "h@example.org", "laptop")
        .await
        .expect("register");
    let sk = a.secret_key.display().to_string();
    let mut b = crate::engine::remote::login(
        &tmp.path().join("b"),
        &server.url,
        "h@example.org",
        password(),
        &sk,
        true,
        "phone",
    )
    .await
    .expect("login");

    // The register and the login recorded themselves (the queued event
    // went first). Then both devices record at once: whichever comes
    // second finds the head moved (409) and signs on top of it.
    tokio::join!(
        a.record_security(SecurityKind::KeyCreated, detail([("key", "deploy")])),
        b.record_security(SecurityKind::KeyCreated, detail([("key", "backup")])),
    );
    assert_eq!(a.pending_security().await.expect("pending"), 0);
    assert_eq!(b.pending_security().await.expect("pending"), 0);
    let h = b.security_history().await.expect("history");
    assert!(h.verified && h.checked_server, "{h:?}");
    let kinds: Vec<&str> = h.entries.iter().map(|e| e.kind.as_str()).collect();
    assert_eq!(
        kinds,
        [
            "recovery_setup",
            "device_added",
            "device_added",
            "key_created",
            "key_created"
        ]
    );
    assert_eq!(
        h.entries[0].device, "laptop",
        "an event queued before the vault had a server is named at sending"
    );
    assert_eq!(h.entries[1].device, "laptop");
    assert_eq!(h.entries[2].device, "phone");
    assert_eq!(h.entries[2].detail["device"], "phone");
    assert_eq!(h.entries[2].detail["how"], "login");
    let mut keys: Vec<&str> = h.entries[3..]
        .iter()
        .map(|e| e.detail["key"].as_str())
        .collect();
    keys.sort_unstable();
    assert_eq!(keys, ["backup", "deploy"]);
    assert_eq!(
        h.entries.iter().map(|e| e.seq).collect::<Vec<_>>(),
        [1, 2, 3, 4, 5]
    );
    assert!(a.security_history().await.expect("history").verified);

    let pool = pool(&db).await;
    // Forged: the server alters entry 2's bytes.
    let row: Vec<u8> = sqlx::query_scalar("SELECT entry FROM security_history WHERE seq = 2")
        .fetch_one(&pool)
        .await
        .expect("row");
    let mut altered = row.clone();
    let i = altered.len() - 80;
    altered[i] ^= 1;
    sqlx::query("UPDATE security_history SET entry = ? WHERE seq = 2")
        .bind(&altered)
        .execute(&pool)
        .await
        .expect("update");
    let h = a.security_history().await.expect("history");
    assert!(!h.verified);
    assert_eq!(h.tampering.as_ref().expect("tampering").seq, 2);
    assert_eq!(h.entries.len(), 1, "only what comes before the bad entry");
    sqlx::query("UPDATE security_history SET entry = ? WHERE seq = 2")
        .bind(&row)
        .execute(&pool)
        .await
        .expect("put back");
    assert!(a.security_history().await.expect("history").verified);

    // Dropped: entry 3 is gone.
    let third: Vec<u8> = sqlx::query_scalar("SELECT entry FROM security_history WHERE seq = 3")
        .fetch_one(&pool)
        .await
        .expect("row");
    sqlx::query("DELETE FROM security_history WHERE seq = 3")
        .execute(&pool)
        .await
        .expect("delete");
    let h = b.security_history().await.expect("history");
    assert_eq!(h.tampering.expect("tampering").seq, 3);
    // What b appends on top of its own head still goes (b checks from the
    // entry it saw on, which holds), and the full read still says where
    // the gap is.
    b.record_security(SecurityKind::KeyRotated, Detail::new())
        .await;
    assert_eq!(b.pending_security().await.expect("pending"), 0);
    assert_eq!(
        b.security_history()
            .await
            .expect("history")
            .tampering
            .expect("tampering")
            .seq,
        3
    );

    // Truncated tail: entries 3 to 6 gone; the chain alone looks whole,
    // but both devices saw entry 5 (and b 6).
    let rest: Vec<Vec<u8>> =
        sqlx::query_scalar("SELECT entry FROM security_history WHERE seq >= 4 ORDER BY seq")
            .fetch_all(&pool)
            .await
            .expect("rows");
    sqlx::query("DELETE FROM security_history WHERE seq >= 3")
        .execute(&pool)
        .await
        .expect("truncate");
    let h = a.security_history().await.expect("history");
    let t = h.tampering.expect("tampering");
    assert_eq!(t.seq, 3, "{}", t.what);
    assert!(t.what.contains("up to entry 5"), "{}", t.what);
    assert!(!h.verified);
    // A new event is not sent on top of a chain that does not hold up.
    b.record_security(SecurityKind::MemberLeft, Detail::new())
        .await;
    assert_eq!(b.pending_security().await.expect("pending"), 1);

    // Put back: the event b queued is sent on top, and all holds up.
    let back = [third].into_iter().chain(rest);
    for (seq, entry) in (3i64..).zip(back) {
        sqlx::query(
            "INSERT INTO security_history (account_id, seq, entry, hash, stored_at) \
             SELECT account_id, ?, ?, ?, 0 FROM security_history WHERE seq = 1",
        )
        .bind(seq)
        .bind(&entry)
        .bind(format::record_hash(&entry).to_vec())
        .execute(&pool)
        .await
        .expect("insert");
    }
    let h = b.security_history().await.expect("history");
    assert!(h.verified, "{h:?}");
    let kinds: Vec<&str> = h.entries.iter().map(|e| e.kind.as_str()).collect();
    assert_eq!(kinds[5..], ["key_rotated", "member_left"]);
    assert_eq!(b.pending_security().await.expect("pending"), 0);
    drop(server);
}

/// A device that signs on a head another device has moved past gets the
/// 409 the retry in `push_security` waits for, and nothing is stored; its
/// queued event then goes on top of the new head.
#[tokio::test]
async fn a_stale_head_is_refused_with_the_conflict_the_retry_expects() {
    let tmp = tempfile::tempdir().expect("tmp");
    let server = TestServer::start("memory").await;
    let mut a = Session::init(&tmp.path().join("a"), password(), FAST_KDF)
        .await
        .expect("init");
    a.register(&server.url, "stale@example.org", "laptop")
        .await
        .expect("register");
    let sk = a.secret_key.display().to_string();
    let mut b = crate::engine::remote::login(
        &tmp.path().join("b"),
        &server.url,
        "stale@example.org",
        password(),
        &sk,
        true,
        "phone",
    )
    .await
    .expect("login");
    // A knows entry 1 only (its register); B's login appended entry 2.
    let mut local = a.history_local().await.expect("local");
    assert_eq!(local.head().seq, 1);
    let stale = SecurityEntry {
        seq: 2,
        prev: local.head().hash,
        at: 0,
        device_id: a.device_id(),
        kind: SecurityKind::KeyCreated,
        detail: Detail::new(),
    }
    .sign(&a.keypair);
    let refused = a
        .authed(|c| {
            let r = stale.clone();
            async move { c.append_history(&r).await }
        })
        .await;
    assert!(
        matches!(refused, Err(Error::Remote(SyncError::Conflict(_)))),
        "{refused:?}"
    );
    a.catch_up_history(&mut local).await.expect("catch up");
    assert_eq!(local.head().seq, 2);
    a.record_security(SecurityKind::KeyCreated, Detail::new())
        .await;
    let h = b.security_history().await.expect("history");
    assert!(h.verified, "{h:?}");
    assert_eq!(h.entries.len(), 3);
    assert_eq!(h.entries[2].kind, SecurityKind::KeyCreated);
}
