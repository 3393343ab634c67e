//! Sync through the engine against a real server (in-process, on a random
//! port): merging, offline work, replayed pushes, verification, a server
//! that lies, and a property test of random interleavings on 2–3 devices.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use proptest::prelude::*;
use sqlx::Row;
use uuid::Uuid;

use super::model::{Field, FieldKind, label};
use super::sync::SyncOptions;
use super::*;
use crate::crypto::{KdfParams, SecretString};

use super::test_fixtures::{FAST_KDF as FAST, login, password as pw};

const EMAIL: &str = "sync@example.org";

use super::test_server::TestServer;

/// The first device (registers the account) and a way to add more.
struct Account {
    tmp: tempfile::TempDir,
    secret_key: String,
    server: String,
    devices: usize,
}

impl Account {
    async fn new(server: &TestServer) -> (Self, Session) {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = tmp.path().join("d0");
        let mut v = Session::init(&dir, pw(), FAST).await.expect("init");
        v.register(&server.url, EMAIL, "device 0")
            .await
            .expect("register");
        let secret_key = v.secret_key.display().to_string();
        (
            Self {
                tmp,
                secret_key,
                server: server.url.clone(),
                devices: 1,
            },
            v,
        )
    }

    async fn device(&mut self) -> Session {
        let dir = self.tmp.path().join(format!("d{}", self.devices));
        self.devices += 1;
        remote::login(
            &dir,
            &self.server,
            EMAIL,
            pw(),
            &self.secret_key,
            true,
            &format!("device {}", self.devices),
        )
        .await
        .expect("login")
    }
}

async fn sync(v: &mut Session) -> sync::SyncReport {
    v.sync(&SyncOptions::default()).await.expect("sync")
}

fn set(label_: &str, value: &str) -> ItemPatch {
    ItemPatch {
        set_fields: vec![Field::new(label_, value, FieldKind::Secret)],
        ..ItemPatch::default()
    }
}

pub(super) fn value(item: &Item, l: &str) -> String {
    item.field(l)
        .map(|f| f.value.expose().to_owned())
        .unwrap_or_default()
}

/// Every value a field ever had on this device (current or history).
pub(super) async fn all_values(v: &Session, id: Uuid, l: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    if let Ok(item) = v.item(id).await {
        out.insert(value(&item, l));
    }
    for rec in v.store.history(id).await.expect("history") {
        if let Ok(item) = open_full(v.vault_key(rec.vault_id).expect("key"), &rec) {
            out.insert(value(&item, l));
        }
    }
    out
}

/// What a device shows: id → (name, password, trashed).
async fn state(v: &mut Session) -> BTreeMap<Uuid, (String, String, bool)> {
    let ids: Vec<Uuid> = v
        .entries()
        .await
        .expect("entries")
        .0
        .iter()
        .map(|e| e.r.id)
        .collect();
    let mut out = BTreeMap::new();
    for id in ids {
        let item = v.item(id).await.expect("item");
        out.insert(
            id,
            (
                item.overview.name.clone(),
                value(&item, label::PASSWORD),
                item.overview.trashed_at.is_some(),
            ),
        );
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_device_gets_everything_and_changes_flow_both_ways() {
    let server = TestServer::start("memory").await;
    let (mut acct, mut a) = Account::new(&server).await;
    let gh = a.add(login("GitHub", "octo", "one")).await.expect("add");
    a.add(login("Bank", "me", "pin")).await.expect("add");
    let r = sync(&mut a).await;
    assert_eq!(r.vaults[0].pushed, 2);
    assert_eq!(a.local_sync_status().await.expect("status").pending, 0);

    let mut b = acct.device().await;
    let r = sync(&mut b).await;
    assert_eq!(r.vaults[0].pulled, 2);
    assert_eq!(state(&mut b).await, state(&mut a).await);

    // An edit on B reaches A; nothing new is cheap and changes nothing.
    b.update(gh.r.id, &set(label::PASSWORD, "two"))
        .await
        .expect("edit");
    sync(&mut b).await;
    let r = sync(&mut a).await;
    assert_eq!(r.vaults[0].pulled, 1);
    assert_eq!(
        value(&a.item(gh.r.id).await.expect("item"), label::PASSWORD),
        "two"
    );
    // A keeps the old value in history.
    assert!(
        all_values(&a, gh.r.id, label::PASSWORD)
            .await
            .contains("one")
    );
    let r = sync(&mut a).await;
    assert_eq!((r.vaults[0].pulled, r.vaults[0].pushed), (0, 0));

    // Trash and purge travel too.
    a.trash(gh.r.id).await.expect("trash");
    sync(&mut a).await;
    sync(&mut b).await;
    assert!(
        b.item(gh.r.id)
            .await
            .expect("item")
            .overview
            .trashed_at
            .is_some()
    );
    b.purge(gh.r.id).await.expect("purge");
    sync(&mut b).await;
    sync(&mut a).await;
    assert!(matches!(a.item(gh.r.id).await, Err(Error::NotFound(_))));
    assert_eq!(state(&mut a).await, state(&mut b).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offline_edits_to_different_fields_merge_and_same_field_is_flagged() {
    let server = TestServer::start("memory").await;
    let (mut acct, mut a) = Account::new(&server).await;
    let item = a.add(login("Mail", "ann", "base")).await.expect("add");
    let id = item.r.id;
    sync(&mut a).await;
    let mut b = acct.device().await;
    sync(&mut b).await;

    // Different fields: both kept, no flag.
    a.update(id, &set(label::PASSWORD, "from-a"))
        .await
        .expect("edit");
    b.update(
        id,
        &ItemPatch {
            set_fields: vec![Field::new(label::USERNAME, "bob", FieldKind::Text)],
            ..ItemPatch::default()
        },
    )
    .await
    .expect("edit");
    sync(&mut a).await;
    let r = sync(&mut b).await;
    assert_eq!(r.vaults[0].merged, vec![id]);
    assert!(r.vaults[0].conflicts.is_empty());
    sync(&mut a).await;
    for v in [&a, &b] {
        let it = v.item(id).await.expect("item");
        assert_eq!(value(&it, label::PASSWORD), "from-a");
        assert_eq!(value(&it, label::USERNAME), "bob");
        assert!(it.overview.conflict.is_none());
    }

    // The same field: the later edit wins, the other stays in history, flagged.
    a.update(id, &set(label::PASSWORD, "a-wins?"))
        .await
        .expect("edit");
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    b.update(id, &set(label::PASSWORD, "b-later"))
        .await
        .expect("edit");
    sync(&mut a).await;
    let r = sync(&mut b).await;
    assert_eq!(r.vaults[0].conflicts, vec![id]);
    sync(&mut a).await;
    for v in [&a, &b] {
        let it = v.item(id).await.expect("item");
        assert_eq!(value(&it, label::PASSWORD), "b-later");
        let c = it.overview.conflict.clone().expect("flagged");
        assert_eq!(c.fields, vec![label::PASSWORD.to_owned()]);
        let other = v
            .item_version(id, c.other_version)
            .await
            .expect("other side");
        assert_eq!(value(&other, label::PASSWORD), "a-wins?");
        assert!(all_values(v, id, label::PASSWORD).await.contains("a-wins?"));
    }
    // Resolving clears the flag everywhere.
    a.update(
        id,
        &ItemPatch {
            resolve: true,
            ..ItemPatch::default()
        },
    )
    .await
    .expect("resolve");
    sync(&mut a).await;
    sync(&mut b).await;
    assert!(b.item(id).await.expect("item").overview.conflict.is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn edit_beats_trash_and_purge() {
    let server = TestServer::start("memory").await;
    let (mut acct, mut a) = Account::new(&server).await;
    let one = a.add(login("One", "u", "p1")).await.expect("add").r.id;
    let two = a.add(login("Two", "u", "p2")).await.expect("add").r.id;
    sync(&mut a).await;
    let mut b = acct.device().await;
    sync(&mut b).await;

    a.trash(one).await.expect("trash");
    b.update(one, &set(label::PASSWORD, "edited"))
        .await
        .expect("edit");
    b.purge(two).await.expect("purge");
    a.update(two, &set(label::PASSWORD, "kept"))
        .await
        .expect("edit");
    sync(&mut a).await;
    sync(&mut b).await;
    sync(&mut a).await;
    for v in [&mut a, &mut b] {
        let it = v.item(one).await.expect("one");
        assert!(it.overview.trashed_at.is_none(), "the edit brings it back");
        assert_eq!(value(&it, label::PASSWORD), "edited");
        assert!(it.overview.conflict.is_some());
        let it = v.item(two).await.expect("two survives the purge");
        assert_eq!(value(&it, label::PASSWORD), "kept");
    }
    assert_eq!(state(&mut a).await, state(&mut b).await);

    // The purge reaches the server first, the edit second.
    let three = a.add(login("Three", "u", "p3")).await.expect("add").r.id;
    sync(&mut a).await;
    sync(&mut b).await;
    b.purge(three).await.expect("purge");
    sync(&mut b).await;
    a.update(three, &set(label::PASSWORD, "still here"))
        .await
        .expect("edit");
    sync(&mut a).await;
    sync(&mut b).await;
    for v in [&mut a, &mut b] {
        let it = v.item(three).await.expect("three survives the purge");
        assert_eq!(value(&it, label::PASSWORD), "still here");
        assert!(it.overview.conflict.is_some());
    }
    assert_eq!(a.local_sync_status().await.expect("status").pending, 0);
    assert_eq!(state(&mut a).await, state(&mut b).await);
}

/// A TCP proxy in front of the server that, when armed, lets a push
/// through to the server but cuts the connection before its answer comes
/// back (the client cannot know whether it was applied).
struct LossyProxy {
    url: String,
    armed: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl LossyProxy {
    async fn start(upstream: &str) -> Self {
        use std::sync::atomic::Ordering;
        use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
        let upstream = upstream.trim_start_matches("http://").to_owned();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        let armed = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = armed.clone();
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let Ok(server) = tokio::net::TcpStream::connect(&upstream).await else {
                    continue;
                };
                let armed = flag.clone();
                tokio::spawn(async move {
                    let (mut cr, mut cw) = client.into_split();
                    let (mut sr, mut sw) = server.into_split();
                    let saw_push = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
                    let seen = saw_push.clone();
                    let up = tokio::spawn(async move {
                        let mut buf = vec![0u8; 64 * 1024];
                        while let Ok(n) = cr.read(&mut buf).await {
                            if n == 0 {
                                break;
                            }
                            let text = String::from_utf8_lossy(&buf[..n]);
                            if text.starts_with("POST /v1/vaults/") && text.contains("/changes") {
                                seen.store(true, Ordering::SeqCst);
                            }
                            if sw.write_all(&buf[..n]).await.is_err() {
                                break;
                            }
                        }
                    });
                    let mut buf = vec![0u8; 64 * 1024];
                    while let Ok(n) = sr.read(&mut buf).await {
                        if n == 0 {
                            break;
                        }
                        if armed.load(Ordering::SeqCst) && saw_push.load(Ordering::SeqCst) {
                            // The server answered; the client never hears it.
                            armed.store(false, Ordering::SeqCst);
                            break;
                        }
                        if cw.write_all(&buf[..n]).await.is_err() {
                            break;
                        }
                    }
                    up.abort();
                });
            }
        });
        Self { url, armed }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_push_whose_answer_was_lost_is_replayed_once() {
    let server = TestServer::start("memory").await;
    let proxy = LossyProxy::start(&server.url).await;
    let tmp = tempfile::tempdir().expect("tempdir");
    let mut a = Session::init(&tmp.path().join("a"), pw(), FAST)
        .await
        .expect("init");
    a.register(&proxy.url, EMAIL, "a").await.expect("register");
    let id = a.add(login("X", "u", "p")).await.expect("add").r.id;
    sync(&mut a).await;
    a.update(id, &set(label::PASSWORD, "q"))
        .await
        .expect("edit");

    // The push reaches the server, its answer is lost.
    proxy.armed.store(true, std::sync::atomic::Ordering::SeqCst);
    let e = a
        .sync(&SyncOptions::default())
        .await
        .map(|_| ())
        .expect_err("lost");
    assert!(matches!(e, Error::Unreachable(_)), "{e}");
    let vault_id = a.default_vault().0;
    assert!(
        a.store
            .sync_state(vault_id)
            .await
            .expect("state")
            .pending
            .is_some()
    );
    assert_eq!(a.local_sync_status().await.expect("status").pending, 1);

    // The retry re-sends the same batch: applied once, nothing pushed twice.
    let r = sync(&mut a).await;
    assert_eq!(r.vaults[0].pushed, 1, "the replayed batch counts once");
    assert!(
        a.store
            .sync_state(vault_id)
            .await
            .expect("state")
            .pending
            .is_none()
    );
    assert_eq!(a.local_sync_status().await.expect("status").pending, 0);
    let secret_key = a.secret_key.display().to_string();
    let b_dir = tmp.path().join("b");
    let mut b = remote::login(&b_dir, &server.url, EMAIL, pw(), &secret_key, true, "b")
        .await
        .expect("login");
    let r = sync(&mut b).await;
    assert_eq!(
        r.vaults[0].head, 2,
        "two pushes in all: the add and the edit"
    );
    let item = b.item(id).await.expect("item");
    assert_eq!(
        (item.r.version, value(&item, label::PASSWORD).as_str()),
        (2, "q")
    );
    let r = sync(&mut a).await;
    assert_eq!((r.vaults[0].pulled, r.vaults[0].pushed), (0, 0));

    // Lost again, and this time the record of it is gone too (another
    // process overwrote it): the change comes back as our own, not a conflict.
    a.update(id, &set(label::PASSWORD, "r"))
        .await
        .expect("edit");
    proxy.armed.store(true, std::sync::atomic::Ordering::SeqCst);
    a.sync(&SyncOptions::default())
        .await
        .map(|_| ())
        .expect_err("lost");
    a.store
        .apply_sync(
            &[crate::store::SyncOp::Pending {
                vault_id,
                pending: None,
            }],
            &a.sync_sealer(),
        )
        .await
        .expect("forget");
    let r = sync(&mut a).await;
    assert!(r.vaults[0].merged.is_empty(), "{r:?}");
    assert_eq!(r.vaults[0].pushed, 0);
    let item = a.item(id).await.expect("item");
    assert_eq!(
        (item.r.version, value(&item, label::PASSWORD).as_str()),
        (3, "r")
    );
    assert_eq!(a.local_sync_status().await.expect("status").pending, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_server_keeps_changes_pending() {
    let server = TestServer::start("memory").await;
    let (mut acct, mut a) = Account::new(&server).await;
    let id = a.add(login("X", "u", "p")).await.expect("add").r.id;
    sync(&mut a).await;
    let mut b = acct.device().await;
    sync(&mut b).await;
    let url = server.url.clone();
    drop(server);
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    a.update(id, &set(label::PASSWORD, "offline"))
        .await
        .expect("edit");
    let e = a
        .sync(&SyncOptions::default())
        .await
        .map(|_| ())
        .expect_err("down");
    assert!(matches!(e, Error::Unreachable(_)), "{e}");
    assert_eq!(a.local_sync_status().await.expect("status").pending, 1);
    let _ = (url, &mut acct, &mut b);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_matches_and_catches_a_dropped_item_and_repushes_it() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let db = tmp.path().join("server.db");
    let url = format!("sqlite://{}", db.display());
    let server = TestServer::start(&url).await;
    let (_acct, mut a) = Account::new(&server).await;
    let keep = a.add(login("Keep", "u", "p")).await.expect("add").r.id;
    let lost = a.add(login("Lost", "u", "p")).await.expect("add").r.id;
    sync(&mut a).await;
    let r = a
        .sync(&SyncOptions {
            verify: true,
            ..SyncOptions::default()
        })
        .await
        .expect("verify");
    assert!(r.vaults[0].verify.as_ref().expect("report").matches);

    // The server silently drops an item.
    let pool = server_pool(&db).await;
    sqlx::query("DELETE FROM records WHERE item_id = ?")
        .bind(lost.to_string())
        .execute(&pool)
        .await
        .expect("delete");
    let r = a
        .sync(&SyncOptions {
            verify: true,
            ..SyncOptions::default()
        })
        .await
        .expect("verify");
    let v = r.vaults[0].verify.clone().expect("report");
    assert!(!v.matches && !v.server_matches_manifest);
    assert_eq!(v.missing_on_server, vec![lost]);
    assert_eq!(v.repushed, 1);
    // Pushed again: the next check is clean.
    let r = a
        .sync(&SyncOptions {
            verify: true,
            ..SyncOptions::default()
        })
        .await
        .expect("verify");
    assert!(r.vaults[0].verify.as_ref().expect("report").matches);
    let _ = keep;
}

pub(super) async fn server_pool(db: &Path) -> sqlx::SqlitePool {
    let opts = sqlx::sqlite::SqliteConnectOptions::new()
        .filename(db)
        .busy_timeout(std::time::Duration::from_secs(10));
    sqlx::SqlitePool::connect_with(opts)
        .await
        .expect("server db")
}

/// A server whose database is tampered with between syncs.
async fn lying_setup() -> (
    tempfile::TempDir,
    PathBuf,
    TestServer,
    Account,
    Session,
    Session,
    Uuid,
    Uuid,
) {
    let tmp = tempfile::tempdir().expect("tempdir");
    let db = tmp.path().join("server.db");
    let server = TestServer::start(&format!("sqlite://{}", db.display())).await;
    let (mut acct, mut a) = Account::new(&server).await;
    let x = a.add(login("X", "u", "px")).await.expect("add").r.id;
    let y = a.add(login("Y", "u", "py")).await.expect("add").r.id;
    sync(&mut a).await;
    let mut b = acct.device().await;
    sync(&mut b).await;
    (tmp, db, server, acct, a, b, x, y)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_swaps_edits_or_moves_records_is_caught() {
    let (_tmp, db, _server, _acct, mut a, mut b, x, y) = lying_setup().await;
    a.update(x, &set(label::PASSWORD, "px2"))
        .await
        .expect("edit");
    a.update(y, &set(label::PASSWORD, "py2"))
        .await
        .expect("edit");
    sync(&mut a).await;
    let before = state(&mut b).await;
    let pool = server_pool(&db).await;

    // Swap the two items' ciphertexts.
    let rows =
        sqlx::query("SELECT item_id, overview, details, wrapped_key FROM records ORDER BY item_id")
            .fetch_all(&pool)
            .await
            .expect("rows");
    let get = |i: usize, c: &str| rows[i].get::<Vec<u8>, _>(c);
    for (i, j) in [(0usize, 1usize), (1, 0)] {
        let id: String = rows[i].get("item_id");
        sqlx::query(
            "UPDATE records SET overview = ?, details = ?, wrapped_key = ? WHERE item_id = ?",
        )
        .bind(get(j, "overview"))
        .bind(get(j, "details"))
        .bind(get(j, "wrapped_key"))
        .bind(id)
        .execute(&pool)
        .await
        .expect("swap");
    }
    let e = b
        .sync(&SyncOptions::default())
        .await
        .map(|_| ())
        .expect_err("caught");
    assert!(matches!(e, Error::Untrusted(_)), "{e}");
    assert!(e.to_string().contains("do not decrypt"), "{e}");
    assert_eq!(state(&mut b).await, before, "nothing local changed");
    // Put them back; flip one byte of a ciphertext instead.
    for (i, _) in [(0usize, 1usize), (1, 0)] {
        let id: String = rows[i].get("item_id");
        sqlx::query(
            "UPDATE records SET overview = ?, details = ?, wrapped_key = ? WHERE item_id = ?",
        )
        .bind(get(i, "overview"))
        .bind(get(i, "details"))
        .bind(get(i, "wrapped_key"))
        .bind(id)
        .execute(&pool)
        .await
        .expect("restore");
    }
    let mut flipped = get(0, "details");
    flipped[40] ^= 1;
    sqlx::query("UPDATE records SET details = ? WHERE item_id = ?")
        .bind(flipped)
        .bind(rows[0].get::<String, _>("item_id"))
        .execute(&pool)
        .await
        .expect("flip");
    let e = b
        .sync(&SyncOptions::default())
        .await
        .map(|_| ())
        .expect_err("caught");
    assert!(matches!(e, Error::Untrusted(_)), "{e}");
    assert_eq!(state(&mut b).await, before);
    sqlx::query("UPDATE records SET details = ? WHERE item_id = ?")
        .bind(get(0, "details"))
        .bind(rows[0].get::<String, _>("item_id"))
        .execute(&pool)
        .await
        .expect("unflip");
    sync(&mut b).await;
    let before = state(&mut b).await;

    // Move an item into another (real) vault of the same account.
    let (home, orig_rev): (String, i64) = {
        let r = sqlx::query("SELECT vault_id, revision FROM records WHERE item_id = ?")
            .bind(x.to_string())
            .fetch_one(&pool)
            .await
            .expect("record");
        (r.get("vault_id"), r.get("revision"))
    };
    let other = Uuid::now_v7();
    let other_key = crate::crypto::Key::random();
    let wrapped = crate::crypto::wrap_key(
        &a.account_key,
        &crate::crypto::Aad::vault_key(a.account_id(), other),
        &other_key,
    );
    let meta = seal_json(
        &other_key,
        &crate::crypto::Aad::vault_meta(other),
        &serde_json::json!({ "name": "Other" }),
    );
    // The server keys accounts and vaults by ids of its own (client_id is
    // the client's); this vault uses `other` as both.
    sqlx::query(
        "INSERT INTO vaults (id, client_id, account_id, wrapped_key, meta, revision, created_at) \
                 VALUES (?, ?, (SELECT id FROM accounts WHERE client_id = ?), ?, ?, 1, 0)",
    )
    .bind(other.to_string())
    .bind(other.to_string())
    .bind(a.account_id().to_string())
    .bind(wrapped)
    .bind(meta)
    .execute(&pool)
    .await
    .expect("vault");
    sqlx::query("UPDATE records SET vault_id = ?, revision = 1 WHERE item_id = ?")
        .bind(other.to_string())
        .bind(x.to_string())
        .execute(&pool)
        .await
        .expect("move");
    let e = b
        .sync(&SyncOptions::default())
        .await
        .map(|_| ())
        .expect_err("caught");
    assert!(matches!(e, Error::Untrusted(_)), "{e}");
    assert!(e.to_string().contains(&x.to_string()), "{e}");
    assert_eq!(state(&mut b).await, before, "nothing local changed");
    // Put it back: B converges with A.
    sqlx::query("UPDATE records SET vault_id = ?, revision = ? WHERE item_id = ?")
        .bind(home)
        .bind(orig_rev)
        .bind(x.to_string())
        .execute(&pool)
        .await
        .expect("move back");
    sqlx::query("DELETE FROM vaults WHERE id = ?")
        .bind(other.to_string())
        .execute(&pool)
        .await
        .expect("drop vault");
    let _ = y;
    // Honest again: B converges.
    sync(&mut b).await;
    assert_eq!(state(&mut b).await, state(&mut a).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_goes_back_in_time_is_refused() {
    let (tmp, db, server, _acct, mut a, mut b, x, _y) = lying_setup().await;
    let pool = server_pool(&db).await;
    let snapshot = tmp.path().join("old.db");
    sqlx::query(&format!("VACUUM INTO '{}'", snapshot.display()))
        .execute(&pool)
        .await
        .expect("snapshot");
    a.update(x, &set(label::PASSWORD, "newer"))
        .await
        .expect("edit");
    sync(&mut a).await;
    sync(&mut b).await;
    let before = state(&mut b).await;
    // The server comes back from the old snapshot.
    drop(server);
    pool.close().await;
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", db.display()));
    }
    std::fs::copy(&snapshot, &db).expect("restore");
    let url = b.remote().expect("remote").server.clone();
    let port: u16 = url.rsplit(':').next().expect("port").parse().expect("port");
    let _server = restart_on(port, &db).await;
    let e = b
        .sync(&SyncOptions::default())
        .await
        .map(|_| ())
        .expect_err("refused");
    assert!(e.to_string().contains("server state went backwards"), "{e}");
    assert_eq!(state(&mut b).await, before, "nothing local changed");
}

async fn restart_on(port: u16, db: &Path) -> TestServer {
    for _ in 0..50 {
        if let Ok(listener) = std::net::TcpListener::bind(("127.0.0.1", port)) {
            return TestServer::on(listener, &format!("sqlite://{}", db.display())).await;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("the old port {port} did not become free");
}

// ---------------------------------------------------------------- property

#[derive(Debug, Clone)]
enum Op {
    Add(usize),
    Edit {
        device: usize,
        item: usize,
        field: bool,
    },
    Trash {
        device: usize,
        item: usize,
    },
    Restore {
        device: usize,
        item: usize,
    },
    Sync(usize),
}

fn op(devices: usize) -> impl Strategy<Value = Op> {
    prop_oneof![
        (0..devices).prop_map(Op::Add),
        (0..devices, 0..6usize, any::<bool>()).prop_map(|(device, item, field)| Op::Edit {
            device,
            item,
            field
        }),
        (0..devices, 0..6usize).prop_map(|(device, item)| Op::Trash { device, item }),
        (0..devices, 0..6usize).prop_map(|(device, item)| Op::Restore { device, item }),
        (0..devices).prop_map(Op::Sync),
    ]
}

fn scenario() -> impl Strategy<Value = (usize, Vec<Op>)> {
    (2..=3usize).prop_flat_map(|n| (Just(n), prop::collection::vec(op(n), 1..40)))
}

async fn run_scenario(devices: usize, ops: Vec<Op>) {
    let server = TestServer::start("memory").await;
    let (mut acct, first) = Account::new(&server).await;
    let mut ds = vec![first];
    for _ in 1..devices {
        ds.push(acct.device().await);
    }
    // Every value each device saved: (item, field label, value).
    let mut saved: Vec<(usize, Uuid, &'static str, String)> = Vec::new();
    let mut n = 0;
    for op in ops {
        n += 1;
        match op {
            Op::Add(d) => {
                let v = format!("p{n}");
                let it = ds[d]
                    .add(login(&format!("item{n}"), &format!("u{n}"), &v))
                    .await
                    .expect("add");
                saved.push((d, it.r.id, label::PASSWORD, v));
            }
            Op::Edit {
                device,
                item,
                field,
            } => {
                let ids: Vec<Uuid> = ds[device]
                    .entries()
                    .await
                    .expect("e")
                    .0
                    .iter()
                    .map(|e| e.r.id)
                    .collect();
                if let Some(&id) = ids.get(item % ids.len().max(1)) {
                    let l = if field {
                        label::PASSWORD
                    } else {
                        label::USERNAME
                    };
                    let v = format!("{l}-{n}");
                    let patch = ItemPatch {
                        set_fields: vec![Field::new(l, &v, FieldKind::Text)],
                        ..ItemPatch::default()
                    };
                    ds[device].update(id, &patch).await.expect("edit");
                    saved.push((device, id, l, v));
                }
            }
            Op::Trash { device, item } | Op::Restore { device, item } => {
                let trash = matches!(op, Op::Trash { .. });
                let ids: Vec<(Uuid, bool)> = ds[device]
                    .entries()
                    .await
                    .expect("e")
                    .0
                    .iter()
                    .map(|e| (e.r.id, e.overview.trashed_at.is_some()))
                    .collect();
                if let Some(&(id, trashed)) = ids.get(item % ids.len().max(1))
                    && trashed != trash
                {
                    if trash {
                        ds[device].trash(id).await.expect("trash");
                    } else {
                        ds[device].restore(id).await.expect("restore");
                    }
                }
            }
            Op::Sync(d) => {
                sync(&mut ds[d]).await;
            }
        }
    }
    // Everyone syncs until nothing moves: two rounds settle every merge.
    for _ in 0..3 {
        for d in ds.iter_mut() {
            sync(d).await;
        }
    }
    let first = state(&mut ds[0]).await;
    for d in ds.iter_mut().skip(1) {
        assert_eq!(state(d).await, first, "devices converge");
    }
    for d in &ds {
        assert_eq!(d.store.pending_count().await.expect("pending"), 0);
    }
    // Nothing lost: every value a device saved is still current or in
    // history on that device.
    for (d, id, l, v) in &saved {
        assert!(
            all_values(&ds[*d], *id, l).await.contains(v),
            "value {v:?} of item {id} ({l}) saved on device {d} is lost there"
        );
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 40, ..ProptestConfig::default() })]
    #[test]
    fn devices_converge_and_nothing_is_lost((devices, ops) in scenario()) {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime");
        rt.block_on(run_scenario(devices, ops));
    }
}

// ------------------------------------------------ a password changed elsewhere

const NEW_PASSWORD: &str = "a brand new master password";

fn new_pw() -> SecretString {
    SecretString::from(NEW_PASSWORD.to_owned())
}

/// The header of the vault in `dir`, as stored (JSON).
async fn stored_header(dir: &Path) -> String {
    let store = Store::open(dir, false).await.expect("open");
    let h = store.header().await.expect("header").expect("some");
    store.close().await;
    serde_json::to_string(&h).expect("json")
}

// A: `passwd` with floor parameters. B edited offline before; with the old
// password it still opens locally but every server call says the password
// changed elsewhere (exit 3); with the new one it adopts the new header,
// keeps and pushes its edit, and opens without the network afterwards.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn password_changed_on_another_device_is_adopted_at_unlock() {
    let server = TestServer::start("memory").await;
    let (mut acct, mut a) = Account::new(&server).await;
    let id = a.add(login("X", "u", "p1")).await.expect("add").r.id;
    sync(&mut a).await;
    let mut b = acct.device().await;
    sync(&mut b).await;
    b.update(id, &set(label::PASSWORD, "edited on b offline"))
        .await
        .expect("offline edit");
    let b_dir = b.dir().to_path_buf();
    b.close().await;

    a.change_password(new_pw(), Some(KdfParams::FLOOR))
        .await
        .expect("passwd on a");

    // The old password on B: local work goes on, the server says why not.
    let mut b = Session::unlock(&b_dir, pw(), None)
        .await
        .expect("old pw opens");
    assert!(!b.adopted_password_change());
    let e = b
        .sync(&SyncOptions::default())
        .await
        .map(|_| ())
        .expect_err("stale");
    assert!(matches!(e, Error::PasswordChanged), "{e}");
    assert!(e.to_string().contains("changed on another device"), "{e}");
    // Again, now without any session at all, and through `login`.
    let e = b
        .sync(&SyncOptions::default())
        .await
        .map(|_| ())
        .expect_err("stale");
    assert!(matches!(e, Error::PasswordChanged), "{e}");
    let e = b.relogin().await.expect_err("old password");
    assert!(matches!(e, Error::PasswordChanged), "{e}");
    let status = b
        .remote_status(std::time::Duration::from_secs(5))
        .expect("remote")
        .await;
    assert!(
        status
            .problem
            .as_deref()
            .is_some_and(|p| matches!(p, Error::PasswordChanged)),
        "{status:?}"
    );
    assert_eq!(b.local_sync_status().await.expect("local").pending, 1);
    b.close().await;

    // The new password on B, without naming the server: nothing is asked
    // (the record of the server cannot be authenticated yet), the header
    // stays, and the error names the server to log in to.
    let before = stored_header(&b_dir).await;
    let e = Session::unlock(&b_dir, new_pw(), None)
        .await
        .map(|_| ())
        .expect_err("not confirmed");
    assert!(
        matches!(&e, Error::WrongPasswordRegistered(url) if *url == server.url),
        "{e}"
    );
    assert_eq!(stored_header(&b_dir).await, before);
    // Naming the vault's server adopts it.
    let mut b = Session::unlock_with(&b_dir, new_pw(), None, at(&server))
        .await
        .expect("new password adopted");
    assert!(b.adopted_password_change());
    assert_eq!(b.kdf(), KdfParams::FLOOR);
    assert_eq!(
        value(&b.item(id).await.expect("item"), label::PASSWORD),
        "edited on b offline"
    );
    assert_eq!(b.local_sync_status().await.expect("local").pending, 1);
    assert!(b.is_logged_in(), "the adoption logged in");
    let r = sync(&mut b).await;
    assert_eq!(r.vaults[0].pushed, 1);
    sync(&mut a).await;
    assert_eq!(
        value(&a.item(id).await.expect("item"), label::PASSWORD),
        "edited on b offline"
    );
    b.close().await;

    // From now on B is like A: the old password is wrong (and the server,
    // whose settings now match, says no more), the new one opens at once.
    let e = Session::unlock(&b_dir, pw(), None)
        .await
        .map(|_| ())
        .expect_err("old");
    assert!(matches!(e, Error::WrongPasswordRegistered(_)), "{e}");
    let e = Session::unlock_with(&b_dir, pw(), None, at(&server))
        .await
        .map(|_| ())
        .expect_err("old");
    assert!(matches!(e, Error::WrongPassword), "{e}");
    let b = Session::unlock(&b_dir, new_pw(), None).await.expect("new");
    assert!(!b.adopted_password_change());
    b.close().await;
    // A wrong password while the server holds a change is a wrong password.
    a.change_password(pw(), Some(KdfParams::FLOOR))
        .await
        .expect("passwd back");
    let e = Session::unlock_with(
        &b_dir,
        SecretString::from("nope".to_owned()),
        None,
        at(&server),
    )
    .await
    .map(|_| ())
    .expect_err("wrong");
    assert!(matches!(e, Error::WrongPassword), "{e}");
}

// A server that hands out a change without a valid MAC, or with KDF
// parameters below the floor, is refused and B's vault is left as it was;
// the genuine change is then adopted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_password_change_the_server_cannot_prove_is_refused() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let db = tmp.path().join("server.db");
    let server = TestServer::start(&format!("sqlite://{}", db.display())).await;
    let (mut acct, mut a) = Account::new(&server).await;
    let id = a.add(login("X", "u", "p1")).await.expect("add").r.id;
    sync(&mut a).await;
    let mut b = acct.device().await;
    sync(&mut b).await;
    b.update(id, &set(label::PASSWORD, "kept"))
        .await
        .expect("offline edit");
    let b_dir = b.dir().to_path_buf();
    b.close().await;
    a.change_password(new_pw(), Some(KdfParams::FLOOR))
        .await
        .expect("passwd on a");
    let before = stored_header(&b_dir).await;

    let pool = server_pool(&db).await;
    let account = a.account_id().to_string();
    let genuine: Vec<u8> = sqlx::query("SELECT password_mac FROM accounts WHERE client_id = ?")
        .bind(&account)
        .fetch_one(&pool)
        .await
        .expect("mac")
        .get("password_mac");
    assert_eq!(genuine.len(), 32, "passwd sent a MAC");

    let refused = |what: &'static str| {
        let b_dir = b_dir.clone();
        let options = at(&server);
        async move {
            let e = Session::unlock_with(&b_dir, new_pw(), None, options)
                .await
                .map(|_| ())
                .expect_err(what);
            assert!(e.is_untrusted(), "{what}: {e}");
            e.to_string()
        }
    };
    // A tampered MAC.
    let mut tampered = genuine.clone();
    tampered[0] ^= 1;
    sqlx::query("UPDATE accounts SET password_mac = ? WHERE client_id = ?")
        .bind(&tampered)
        .bind(&account)
        .execute(&pool)
        .await
        .expect("tamper");
    let m = refused("tampered MAC").await;
    assert!(m.contains("MAC does not verify"), "{m}");
    assert_eq!(stored_header(&b_dir).await, before);
    // No MAC at all.
    sqlx::query("UPDATE accounts SET password_mac = NULL WHERE client_id = ?")
        .bind(&account)
        .execute(&pool)
        .await
        .expect("strip");
    let m = refused("no MAC").await;
    assert!(m.contains("no MAC"), "{m}");
    assert_eq!(stored_header(&b_dir).await, before);
    // Lowered KDF parameters: refused before any key derivation.
    sqlx::query(
        "UPDATE accounts SET password_mac = ?, kdf_memory_kib = 64, kdf_iterations = 1 WHERE client_id = ?",
    )
    .bind(&genuine)
    .bind(&account)
    .execute(&pool)
    .await
    .expect("lower");
    let m = refused("weak KDF").await;
    assert!(m.contains("below the recommended floor"), "{m}");
    assert!(
        !m.contains("--allow-weak-kdf"),
        "the CLI names the flag: {m}"
    );
    assert_eq!(stored_header(&b_dir).await, before);
    // Still the old password's vault, with its edit.
    let b = Session::unlock(&b_dir, pw(), None)
        .await
        .expect("old still opens");
    assert_eq!(
        value(&b.item(id).await.expect("item"), label::PASSWORD),
        "kept"
    );
    b.close().await;

    // The genuine values are adopted.
    sqlx::query("UPDATE accounts SET kdf_memory_kib = ?, kdf_iterations = ? WHERE client_id = ?")
        .bind(i64::from(KdfParams::FLOOR.memory_kib))
        .bind(i64::from(KdfParams::FLOOR.iterations))
        .bind(&account)
        .execute(&pool)
        .await
        .expect("restore");
    let b = Session::unlock_with(&b_dir, new_pw(), None, at(&server))
        .await
        .expect("adopted");
    assert!(b.adopted_password_change());
    assert_ne!(stored_header(&b_dir).await, before);
    b.close().await;
}

// Parameters below the floor that a device chose itself are adopted only
// when allowed (`openk login --allow-weak-kdf`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_weak_kdf_change_is_adopted_only_when_allowed() {
    let server = TestServer::start("memory").await;
    let (mut acct, mut a) = Account::new(&server).await;
    let b = acct.device().await;
    let b_dir = b.dir().to_path_buf();
    b.close().await;
    a.change_password(new_pw(), Some(FAST))
        .await
        .expect("passwd on a");
    let e = Session::unlock_with(&b_dir, new_pw(), None, at(&server))
        .await
        .map(|_| ())
        .expect_err("weak");
    assert!(e.to_string().contains("below the recommended floor"), "{e}");
    let b = Session::unlock_with(
        &b_dir,
        new_pw(),
        None,
        UnlockOptions {
            allow_weak_kdf: true,
            ..at(&server)
        },
    )
    .await
    .expect("allowed");
    assert!(b.adopted_password_change());
    assert_eq!(b.kdf(), FAST);
    b.close().await;
}

/// Unlock options that name the test server (`openk login --server URL`).
fn at(server: &TestServer) -> UnlockOptions {
    UnlockOptions {
        confirmed_server: Some(server.url.clone()),
        ..UnlockOptions::default()
    }
}
