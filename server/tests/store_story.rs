//! The store story: one scenario, run against every backend.
//!
//! Memory and a temporary SQLite file always run. PostgreSQL runs when
//! `OPENK_TEST_POSTGRES_URL` names a server whose user may create databases
//! (e.g. `postgres://postgres@127.0.0.1:5432/test`): each test creates its own
//! `openk_test_<random>` database and drops it afterwards, also on failure.
//! When the variable is set but the server is unreachable the test fails.

use std::collections::BTreeSet;
use std::sync::Arc;

use openk_server::api::types::{Applied, B64, KdfParams, PushResponse, Record};
use openk_server::store::{
    Account, Appended, AuditEntry, ChangeIn, Device, LogRow, MemberInfo, MemberWrite, Membership,
    NewTokens, PushBatch, PushOutcome, RefreshOutcome, RewrappedIn, RotationIn, Session, Store,
    StoreError, StoreKind, Vault, connect,
};
use uuid::Uuid;

mod common;
use common::PgDatabase;

// ------------------------------------------------------------------ backends

/// A store under test and whatever must live as long as it.
struct Backend {
    store: Arc<dyn Store>,
    _dir: Option<tempfile::TempDir>,
    _database: Option<PgDatabase>,
}

async fn memory() -> Backend {
    let store = connect("memory").await.expect("memory store");
    assert_eq!(store.kind(), StoreKind::Memory);
    Backend {
        store,
        _dir: None,
        _database: None,
    }
}

async fn sqlite() -> Backend {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("server.db");
    let store = connect(&format!("sqlite://{}", path.display()))
        .await
        .expect("sqlite store");
    assert_eq!(store.kind(), StoreKind::Sqlite);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&path)
            .expect("db file")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "database file mode {mode:o}");
    }
    Backend {
        store,
        _dir: Some(dir),
        _database: None,
    }
}

/// `None` (after saying so) when `OPENK_TEST_POSTGRES_URL` is not set.
async fn postgres() -> Option<Backend> {
    let database = PgDatabase::create("openk_test").await?;
    let store = connect(&database.url()).await.expect("postgres store");
    assert_eq!(store.kind(), StoreKind::Postgres);
    Some(Backend {
        store,
        _dir: None,
        _database: Some(database),
    })
}

// ------------------------------------------------------------------- helpers

fn new_id() -> Uuid {
    Uuid::now_v7()
}

fn account(email: &str, created_at: i64) -> Account {
    Account {
        id: new_id(),
        client_id: new_id(),
        email: email.to_owned(),
        kdf: KdfParams {
            memory_kib: 65_536,
            iterations: 3,
            parallelism: 4,
        },
        salt: vec![1; 16],
        auth_hash: vec![2; 32],
        auth_salt: vec![3; 16],
        wrapped_account_key: vec![4; 72],
        public_x25519: vec![5; 32],
        public_ed25519: vec![6; 32],
        wrapped_private_keys: vec![7; 120],
        created_at,
        password_mac: None,
    }
}

fn device(account_id: Uuid, name: &str, at: i64) -> Device {
    Device {
        id: new_id(),
        account_id,
        name: name.to_owned(),
        created_at: at,
        last_seen_at: at,
        revoked_at: None,
    }
}

fn session(account_id: Uuid, device_id: Uuid, tag: &str, now: i64) -> Session {
    Session {
        id: new_id(),
        account_id,
        device_id,
        access_hash: format!("access-{tag}").into_bytes(),
        access_expires_at: now + 900_000,
        refresh_hash: format!("refresh-{tag}").into_bytes(),
        refresh_expires_at: now + 30 * 86_400_000,
        authenticated_at: now,
    }
}

fn vault(account_id: Uuid, at: i64) -> Vault {
    Vault {
        id: new_id(),
        account_id,
        wrapped_key: b"wrapped vault key".to_vec(),
        meta: b"sealed vault name".to_vec(),
        revision: 0,
        manifest: None,
        created_at: at,
    }
}

fn change(item_id: Uuid, base_revision: i64, version: u64, tag: &str) -> ChangeIn {
    ChangeIn {
        item_id,
        base_revision,
        version,
        deleted: false,
        wrapped_key: format!("key-{tag}").into_bytes(),
        overview: format!("overview-{tag}").into_bytes(),
        details: format!("details-{tag}").into_bytes(),
        authorship: None,
    }
}

fn tombstone(item_id: Uuid, base_revision: i64, version: u64) -> ChangeIn {
    ChangeIn {
        item_id,
        base_revision,
        version,
        deleted: true,
        wrapped_key: Vec::new(),
        overview: Vec::new(),
        details: Vec::new(),
        authorship: None,
    }
}

/// What the server should hold after applying `change` at `revision`.
fn record_of(change: &ChangeIn, revision: i64) -> Record {
    Record {
        item_id: change.item_id,
        version: change.version,
        revision,
        deleted: change.deleted,
        wrapped_key: B64(change.wrapped_key.clone()),
        overview: B64(change.overview.clone()),
        details: B64(change.details.clone()),
        authorship: None,
    }
}

fn revisions(records: &[Record]) -> Vec<i64> {
    records.iter().map(|r| r.revision).collect()
}

fn sorted(hashes: Vec<Vec<u8>>) -> BTreeSet<Vec<u8>> {
    hashes.into_iter().collect()
}

/// A push without a head precondition: the response a client would get
/// (first time or replayed).
async fn push(
    store: &dyn Store,
    account_id: Uuid,
    vault_id: Uuid,
    client_change_id: Uuid,
    changes: &[ChangeIn],
    manifest: Option<&[u8]>,
    now: i64,
) -> Result<PushResponse, StoreError> {
    let batch = PushBatch {
        client_change_id,
        changes,
        manifest,
        expected_head: None,
        quota: None,
        key_epoch: None,
    };
    store
        .push(account_id, vault_id, batch, now)
        .await
        .map(|outcome| match outcome {
            PushOutcome::Done(r) | PushOutcome::Replayed(r) => r,
            PushOutcome::QuotaExceeded { .. } => panic!("no quota here"),
            PushOutcome::KeyRotated { epoch } => {
                panic!("key rotated to {epoch} in a personal vault")
            }
            PushOutcome::HeadMoved { head } => {
                panic!("head moved to {head} without a precondition")
            }
        })
}

fn assert_conflict<T: std::fmt::Debug>(result: Result<T, StoreError>, what: &str) {
    match result {
        Err(StoreError::Conflict) => {}
        other => panic!("{what}: expected Conflict, got {other:?}"),
    }
}

fn assert_not_found<T: std::fmt::Debug>(result: Result<T, StoreError>, what: &str) {
    match result {
        Err(StoreError::NotFound) => {}
        other => panic!("{what}: expected NotFound, got {other:?}"),
    }
}

fn assert_invalid<T: std::fmt::Debug>(result: Result<T, StoreError>, what: &str) {
    match result {
        Err(StoreError::Invalid(_)) => {}
        other => panic!("{what}: expected Invalid, got {other:?}"),
    }
}

// --------------------------------------------------------------------- story

#[allow(clippy::too_many_lines)]
async fn story(store: &dyn Store) {
    let now: i64 = 1_764_000_000_000;
    store.ping().await.expect("ping");

    // The server secret is made once and then stays.
    let secret = store.server_secret().await.expect("secret");
    assert!(secret.len() >= 16);
    assert_eq!(store.server_secret().await.expect("secret again"), secret);

    // ------------------------------------------------------------ accounts
    let alice = account("alice@example.com", now);
    let laptop = device(alice.id, "laptop", now);
    store
        .create_account(&alice, &laptop)
        .await
        .expect("create alice");
    let mut same_email = account("alice@example.com", now);
    let spare = device(same_email.id, "x", now);
    assert_conflict(
        store.create_account(&same_email, &spare).await,
        "duplicate email",
    );
    same_email.email = "other@example.com".into();
    same_email.id = alice.id;
    assert_conflict(
        store.create_account(&same_email, &spare).await,
        "duplicate server key",
    );
    assert_eq!(
        store
            .account_by_email("other@example.com")
            .await
            .expect("other"),
        None,
        "a failed registration leaves nothing behind"
    );
    let bob = account("bob@example.com", now + 1);
    let bob_phone = device(bob.id, "bob's phone", now + 1);
    store
        .create_account(&bob, &bob_phone)
        .await
        .expect("create bob");
    // Client ids are labels inside an account: another account's id and
    // another account's device id are Carol's to use as well.
    let mut carol = account("carol@example.com", now);
    carol.client_id = alice.client_id;
    let carol_phone = device(carol.id, "carol's phone", now);
    let carol_phone = Device {
        id: bob_phone.id,
        ..carol_phone
    };
    store
        .create_account(&carol, &carol_phone)
        .await
        .expect("carol, with ids other accounts use");
    assert_eq!(
        store
            .account(carol.id)
            .await
            .expect("carol")
            .map(|a| a.client_id),
        Some(alice.client_id)
    );

    assert_eq!(
        store
            .account_by_email("alice@example.com")
            .await
            .expect("by email"),
        Some(alice.clone())
    );
    assert_eq!(
        store
            .account_by_email("ALICE@example.com")
            .await
            .expect("by email"),
        None,
        "emails match as stored (the caller lower-cases)"
    );
    assert_eq!(
        store.account(alice.id).await.expect("by id"),
        Some(alice.clone())
    );
    assert_eq!(store.account(new_id()).await.expect("unknown id"), None);

    let mut rekeyed = alice.clone();
    rekeyed.kdf = KdfParams {
        memory_kib: 131_072,
        iterations: 4,
        parallelism: 2,
    };
    rekeyed.salt = vec![9; 16];
    rekeyed.auth_hash = vec![8; 32];
    rekeyed.auth_salt = vec![7; 16];
    rekeyed.wrapped_account_key = vec![6; 72];
    rekeyed.password_mac = Some(vec![5; 32]);
    rekeyed.email = "ignored@example.com".into();
    store.update_account_keys(&rekeyed).await.expect("rekey");
    let stored = store
        .account(alice.id)
        .await
        .expect("rekeyed")
        .expect("exists");
    assert_eq!(stored.kdf, rekeyed.kdf);
    assert_eq!(stored.salt, rekeyed.salt);
    assert_eq!(stored.auth_hash, rekeyed.auth_hash);
    assert_eq!(stored.auth_salt, rekeyed.auth_salt);
    assert_eq!(stored.wrapped_account_key, rekeyed.wrapped_account_key);
    assert_eq!(stored.password_mac, rekeyed.password_mac);
    assert_eq!(
        alice.password_mac, None,
        "a registered account has no password-change MAC"
    );
    assert_eq!(stored.email, alice.email, "only key material changes");
    assert_eq!(stored.public_x25519, alice.public_x25519);
    let mut ghost = alice.clone();
    ghost.id = new_id();
    assert_not_found(
        store.update_account_keys(&ghost).await,
        "rekey unknown account",
    );

    // ------------------------------------------------------------- devices
    let phone = device(alice.id, "phone", now + 10);
    assert_eq!(store.upsert_device(&phone).await.expect("add phone"), phone);
    let mut again = phone.clone();
    again.name = "phone (login)".into();
    again.created_at = now + 999;
    again.last_seen_at = now + 20;
    let upserted = store.upsert_device(&again).await.expect("upsert phone");
    assert_eq!(upserted.name, "phone (login)");
    assert_eq!(upserted.last_seen_at, now + 20);
    assert_eq!(upserted.created_at, phone.created_at, "created_at is kept");
    // Carol's device with Bob's device's id is Carol's: a login under it
    // renames hers and leaves Bob's alone.
    let mut carols = bob_phone.clone();
    carols.account_id = carol.id;
    carols.name = "carol's phone, renamed".into();
    assert_eq!(
        store.upsert_device(&carols).await.expect("carol's").name,
        "carol's phone, renamed"
    );
    assert_eq!(
        store
            .device(bob.id, bob_phone.id)
            .await
            .expect("bob's")
            .map(|d| d.name),
        Some("bob's phone".to_owned())
    );

    store
        .rename_device(alice.id, laptop.id, "work laptop")
        .await
        .expect("rename");
    assert_not_found(
        store.rename_device(bob.id, laptop.id, "mine").await,
        "rename another account's device",
    );
    store
        .touch_device(alice.id, laptop.id, now + 50)
        .await
        .expect("touch");
    store
        .touch_device(alice.id, laptop.id, now + 5)
        .await
        .expect("touch older");
    store
        .touch_device(alice.id, new_id(), now)
        .await
        .expect("touch unknown");
    let listed = store.devices(alice.id).await.expect("devices");
    assert_eq!(
        listed.iter().map(|d| d.id).collect::<Vec<_>>(),
        vec![laptop.id, phone.id]
    );
    assert_eq!(listed[0].name, "work laptop");
    assert_eq!(
        listed[0].last_seen_at,
        now + 50,
        "last seen never goes back"
    );
    assert_eq!(
        store.device(alice.id, phone.id).await.expect("device"),
        Some(upserted.clone())
    );
    assert_eq!(
        store.device(alice.id, bob_phone.id).await.expect("device"),
        None
    );
    assert_eq!(store.devices(bob.id).await.expect("bob's").len(), 1);

    // ------------------------------------------------------------ sessions
    let s1 = session(alice.id, laptop.id, "1", now);
    store.create_session(&s1).await.expect("session");
    assert_conflict(store.create_session(&s1).await, "same session twice");
    assert_eq!(
        store
            .session_by_access(&s1.access_hash, now)
            .await
            .expect("lookup"),
        Some(s1.clone())
    );
    assert_eq!(
        store
            .session_by_access(&s1.access_hash, s1.access_expires_at)
            .await
            .expect("expired lookup"),
        None,
        "an expired access token finds nothing"
    );
    assert_eq!(
        store.session_by_access(b"nope", now).await.expect("lookup"),
        None
    );

    // Rotation: new tokens, same session, authenticated_at kept.
    let later = now + 600_000;
    let rotated = store
        .refresh_session(
            &s1.refresh_hash,
            NewTokens {
                access_hash: b"access-1b",
                access_expires_at: later + 900_000,
                refresh_hash: b"refresh-1b",
                refresh_expires_at: later + 86_400_000,
            },
            later,
        )
        .await
        .expect("refresh");
    let RefreshOutcome::Rotated { session: s1b, .. } = rotated else {
        panic!("expected a rotation, got {rotated:?}");
    };
    assert_eq!(s1b.id, s1.id);
    assert_eq!(s1b.access_hash, b"access-1b");
    assert_eq!(s1b.access_expires_at, later + 900_000);
    assert_eq!(s1b.refresh_hash, b"refresh-1b");
    assert_eq!(s1b.refresh_expires_at, later + 86_400_000);
    assert_eq!(s1b.authenticated_at, s1.authenticated_at);
    assert_eq!(
        store
            .session_by_access(&s1.access_hash, later)
            .await
            .expect("old access"),
        None
    );
    assert_eq!(
        store
            .session_by_access(b"access-1b", later)
            .await
            .expect("new access"),
        Some(s1b.clone())
    );
    let refresh = |hash: &'static [u8], at: i64| {
        let new = NewTokens {
            access_hash: b"access-x",
            access_expires_at: at + 1,
            refresh_hash: b"refresh-x",
            refresh_expires_at: at + 2,
        };
        store.refresh_session(hash, new, at)
    };
    assert_eq!(
        refresh(b"refresh-unknown", later).await.expect("unknown"),
        RefreshOutcome::Invalid
    );
    assert_eq!(
        refresh(b"refresh-1b", later + 86_400_000)
            .await
            .expect("expired"),
        RefreshOutcome::Invalid,
        "an expired refresh token is invalid"
    );

    // A second session on the laptop, one on the phone.
    let s2 = session(alice.id, laptop.id, "2", later);
    let s3 = session(alice.id, phone.id, "3", later);
    store.create_session(&s2).await.expect("s2");
    store.create_session(&s3).await.expect("s3");

    // Reuse of the rotated token ends every laptop session, not the phone's.
    let reused = refresh(b"refresh-1", later + 1000).await.expect("reuse");
    let RefreshOutcome::Reused {
        account_id,
        device_id,
        revoked_access_hashes,
    } = reused
    else {
        panic!("expected reuse, got {reused:?}");
    };
    assert_eq!((account_id, device_id), (alice.id, laptop.id));
    assert_eq!(
        sorted(revoked_access_hashes),
        sorted(vec![b"access-1b".to_vec(), s2.access_hash.clone()])
    );
    for gone in [b"access-1b".as_slice(), s2.access_hash.as_slice()] {
        assert_eq!(
            store.session_by_access(gone, later).await.expect("gone"),
            None
        );
    }
    assert!(
        store
            .session_by_access(&s3.access_hash, later)
            .await
            .expect("s3")
            .is_some()
    );
    assert_eq!(
        refresh(b"refresh-1b", later + 2000)
            .await
            .expect("after reuse"),
        RefreshOutcome::Invalid,
        "the ended session's current token is dead too"
    );
    assert_eq!(
        refresh(b"refresh-1", later + 3000)
            .await
            .expect("reuse again"),
        RefreshOutcome::Invalid,
        "once the session is gone a replay is merely invalid"
    );

    // Logout, and "log out everywhere else".
    assert_eq!(
        store.delete_session(s3.id).await.expect("logout"),
        Some(s3.access_hash.clone())
    );
    assert_eq!(
        store.delete_session(s3.id).await.expect("logout again"),
        None
    );
    assert_eq!(
        refresh(b"refresh-3", later)
            .await
            .expect("refresh after logout"),
        RefreshOutcome::Invalid
    );
    let s4 = session(alice.id, laptop.id, "4", later);
    let s5 = session(alice.id, phone.id, "5", later);
    let s6 = session(alice.id, laptop.id, "6", later);
    let bobs = session(bob.id, bob_phone.id, "bob", later);
    for s in [&s4, &s5, &s6, &bobs] {
        store.create_session(s).await.expect("session");
    }
    assert_eq!(
        sorted(
            store
                .delete_other_sessions(alice.id, s4.id)
                .await
                .expect("others")
        ),
        sorted(vec![s5.access_hash.clone(), s6.access_hash.clone()])
    );
    assert!(
        store
            .session_by_access(&s4.access_hash, later)
            .await
            .expect("s4")
            .is_some()
    );
    assert!(
        store
            .session_by_access(&bobs.access_hash, later)
            .await
            .expect("bob")
            .is_some()
    );

    // Revoking a device ends its sessions and bars the id.
    let s7 = session(alice.id, phone.id, "7", later);
    store.create_session(&s7).await.expect("s7");
    assert_not_found(
        store.revoke_device(bob.id, phone.id, later).await,
        "revoke another account's device",
    );
    assert_eq!(
        store
            .revoke_device(alice.id, phone.id, later)
            .await
            .expect("revoke"),
        vec![s7.access_hash.clone()]
    );
    assert_eq!(
        store
            .session_by_access(&s7.access_hash, later)
            .await
            .expect("s7"),
        None
    );
    assert!(
        store
            .session_by_access(&s4.access_hash, later)
            .await
            .expect("s4")
            .is_some()
    );
    let revoked = store
        .device(alice.id, phone.id)
        .await
        .expect("revoked")
        .expect("kept");
    assert_eq!(revoked.revoked_at, Some(later));
    assert_conflict(store.upsert_device(&phone).await, "revoked device id");
    // Even a session that slipped in is refused while its device is revoked.
    let s8 = session(alice.id, phone.id, "8", later);
    store.create_session(&s8).await.expect("s8");
    assert_eq!(
        store
            .session_by_access(&s8.access_hash, later)
            .await
            .expect("s8"),
        None
    );
    assert_eq!(
        refresh(b"refresh-8", later).await.expect("refresh s8"),
        RefreshOutcome::Invalid,
        "a session of a revoked device is not renewed"
    );

    // -------------------------------------------------------------- vaults
    let v1 = vault(alice.id, now);
    store.create_vault(&v1).await.expect("vault");
    assert_conflict(store.create_vault(&v1).await, "same vault twice");
    // Another account's vault of the same id is another vault.
    let mut carols_vault = v1.clone();
    carols_vault.account_id = carol.id;
    carols_vault.meta = b"carol's".to_vec();
    store
        .create_vault(&carols_vault)
        .await
        .expect("a vault id another account uses");
    assert_eq!(
        store.vault(carol.id, v1.id).await.expect("carol's"),
        Some(carols_vault.clone())
    );
    let bob_vault = vault(bob.id, now + 1);
    store.create_vault(&bob_vault).await.expect("bob's vault");
    assert_eq!(
        store.vaults(alice.id).await.expect("vaults"),
        vec![v1.clone()]
    );
    assert_eq!(
        store.vault(alice.id, v1.id).await.expect("vault"),
        Some(v1.clone())
    );
    assert_eq!(
        store.vault(bob.id, v1.id).await.expect("foreign vault"),
        None
    );
    assert_not_found(
        store.pull(bob.id, v1.id, 0, 10).await,
        "pull a foreign vault",
    );
    assert_not_found(
        push(store, bob.id, v1.id, new_id(), &[], None, now).await,
        "push to a foreign vault",
    );
    assert_not_found(
        store.item_history(bob.id, v1.id, new_id()).await,
        "history of a foreign vault",
    );
    assert_not_found(
        store.pull(alice.id, new_id(), 0, 10).await,
        "pull a missing vault",
    );

    let empty = store
        .pull(alice.id, v1.id, 0, 100)
        .await
        .expect("empty pull");
    assert_eq!(
        (empty.head, empty.records.len(), empty.manifest),
        (0, 0, None)
    );

    // ---------------------------------------------------------------- push
    let items: Vec<Uuid> = (0..5).map(|_| new_id()).collect();
    let first: Vec<ChangeIn> = items
        .iter()
        .enumerate()
        .map(|(i, id)| change(*id, 0, 1, &format!("{i}a")))
        .collect();
    let push1 = push(
        store,
        alice.id,
        v1.id,
        new_id(),
        &first,
        Some(b"manifest-1"),
        now,
    )
    .await
    .expect("push new items");
    assert_eq!(push1.head, 5);
    assert!(push1.conflicts.is_empty());
    let carols_pull = store.pull(carol.id, v1.id, 0, 100).await.expect("carol's");
    assert_eq!(
        (carols_pull.head, carols_pull.records.len()),
        (0, 0),
        "Alice's push does not reach Carol's vault of the same id"
    );
    assert_eq!(
        push1.applied,
        items
            .iter()
            .zip(1..)
            .map(|(item_id, revision)| Applied {
                item_id: *item_id,
                revision
            })
            .collect::<Vec<_>>()
    );

    let all = store
        .pull(alice.id, v1.id, 0, 1000)
        .await
        .expect("pull all");
    assert_eq!(all.head, 5);
    assert_eq!(all.manifest.as_deref(), Some(b"manifest-1".as_slice()));
    assert_eq!(
        all.records,
        first
            .iter()
            .zip(1..)
            .map(|(c, r)| record_of(c, r))
            .collect::<Vec<_>>()
    );
    let tail = store
        .pull(alice.id, v1.id, 3, 1000)
        .await
        .expect("pull since 3");
    assert_eq!(revisions(&tail.records), vec![4, 5]);
    let mut pages = Vec::new();
    let mut since = 0;
    loop {
        let page = store.pull(alice.id, v1.id, since, 2).await.expect("page");
        assert_eq!(page.head, 5);
        let Some(last) = page.records.last() else {
            break;
        };
        since = last.revision;
        pages.push(revisions(&page.records));
    }
    assert_eq!(pages, vec![vec![1, 2], vec![3, 4], vec![5]]);
    let stored_vault = store
        .vault(alice.id, v1.id)
        .await
        .expect("vault")
        .expect("exists");
    assert_eq!(stored_vault.revision, 5);
    assert_eq!(
        stored_vault.manifest.as_deref(),
        Some(b"manifest-1".as_slice())
    );

    // A stale base: every mismatch reported, nothing applied.
    let absent = new_id();
    let stale = vec![
        change(items[0], 0, 2, "0-stale"), // the server has revision 1
        change(items[1], 2, 2, "1b"),      // matches
        change(new_id(), 0, 1, "fresh"),   // new, fine
        change(absent, 3, 2, "absent"),    // claims a copy the server never had
    ];
    let conflicted = push(
        store,
        alice.id,
        v1.id,
        new_id(),
        &stale,
        Some(b"manifest-x"),
        now,
    )
    .await
    .expect("stale push");
    assert_eq!(conflicted.head, 5);
    assert!(conflicted.applied.is_empty());
    assert_eq!(conflicted.conflicts.len(), 2);
    assert_eq!(conflicted.conflicts[0].item_id, items[0]);
    assert_eq!(conflicted.conflicts[0].current, record_of(&first[0], 1));
    assert_eq!(conflicted.conflicts[1].item_id, absent);
    assert_eq!(
        conflicted.conflicts[1].current,
        Record {
            item_id: absent,
            version: 0,
            revision: 0,
            deleted: true,
            wrapped_key: B64(Vec::new()),
            overview: B64(Vec::new()),
            details: B64(Vec::new()),
            authorship: None,
        }
    );
    let unchanged = store.pull(alice.id, v1.id, 0, 1000).await.expect("pull");
    assert_eq!(unchanged.head, 5);
    assert_eq!(unchanged.records, all.records, "nothing applied");
    assert_eq!(
        unchanged.manifest.as_deref(),
        Some(b"manifest-1".as_slice())
    );

    // Updates, then the same batch retried: one answer, applied once.
    let updates = vec![change(items[0], 1, 2, "0b"), change(items[1], 2, 2, "1b")];
    let batch = new_id();
    let push2 = push(
        store,
        alice.id,
        v1.id,
        batch,
        &updates,
        Some(b"manifest-2"),
        now + 1,
    )
    .await
    .expect("update");
    assert_eq!(
        push2,
        PushResponse {
            head: 7,
            applied: vec![
                Applied {
                    item_id: items[0],
                    revision: 6
                },
                Applied {
                    item_id: items[1],
                    revision: 7
                },
            ],
            conflicts: Vec::new(),
        }
    );
    let retried = push(
        store,
        alice.id,
        v1.id,
        batch,
        &updates,
        Some(b"manifest-2"),
        now + 2,
    )
    .await
    .expect("retry");
    assert_eq!(retried, push2, "a retry gets the first answer");
    // Even a retry whose body no longer matches (or would conflict) gets it.
    let retried_stale = push(store, alice.id, v1.id, batch, &stale, None, now + 3)
        .await
        .expect("retry with other content");
    assert_eq!(retried_stale, push2);
    let after_retry = store.pull(alice.id, v1.id, 0, 1000).await.expect("pull");
    assert_eq!(after_retry.head, 7, "nothing applied twice");
    assert_eq!(
        after_retry.manifest.as_deref(),
        Some(b"manifest-2".as_slice())
    );
    assert_eq!(
        store
            .item_history(alice.id, v1.id, items[0])
            .await
            .expect("history"),
        vec![record_of(&first[0], 1)],
        "the retry made no extra history"
    );

    // Batches that make no sense.
    assert_invalid(
        push(
            store,
            alice.id,
            v1.id,
            new_id(),
            &[change(items[2], 3, 2, "x"), change(items[2], 3, 3, "y")],
            None,
            now,
        )
        .await,
        "the same item twice in a batch",
    );
    let noop_id = new_id();
    let noop = push(store, alice.id, v1.id, noop_id, &[], None, now)
        .await
        .expect("empty batch");
    assert_eq!(
        noop,
        PushResponse {
            head: 7,
            applied: Vec::new(),
            conflicts: Vec::new()
        }
    );
    assert_eq!(
        push(store, alice.id, v1.id, noop_id, &[], None, now)
            .await
            .expect("again"),
        noop
    );

    // A tombstone: empty blobs, and no copy of the item stays in history.
    let purge = tombstone(items[2], 3, 2);
    let push3 = push(
        store,
        alice.id,
        v1.id,
        new_id(),
        std::slice::from_ref(&purge),
        None,
        now,
    )
    .await
    .expect("tombstone");
    assert_eq!(push3.head, 8);
    let pulled = store
        .pull(alice.id, v1.id, 7, 1000)
        .await
        .expect("pull tombstone");
    assert_eq!(pulled.records, vec![record_of(&purge, 8)]);
    assert!(pulled.records[0].deleted);
    assert!(pulled.records[0].details.0.is_empty());
    assert_eq!(pulled.manifest.as_deref(), Some(b"manifest-2".as_slice()));
    assert!(
        store
            .item_history(alice.id, v1.id, items[2])
            .await
            .expect("history")
            .is_empty(),
        "a purge leaves no history on the server"
    );
    // Re-created over the tombstone: the tombstone itself is not history.
    let revived = change(items[2], 8, 3, "2c");
    let push4 = push(
        store,
        alice.id,
        v1.id,
        new_id(),
        std::slice::from_ref(&revived),
        None,
        now,
    )
    .await
    .expect("revive");
    assert_eq!(push4.head, 9);
    assert_eq!(
        store
            .item_history(alice.id, v1.id, items[2])
            .await
            .expect("history"),
        Vec::<Record>::new()
    );

    // History: older versions, oldest first, the current one excluded.
    let third = change(items[0], 6, 3, "0c");
    push(
        store,
        alice.id,
        v1.id,
        new_id(),
        std::slice::from_ref(&third),
        None,
        now,
    )
    .await
    .expect("third version");
    assert_eq!(
        store
            .item_history(alice.id, v1.id, items[0])
            .await
            .expect("history"),
        vec![record_of(&first[0], 1), record_of(&updates[0], 6)]
    );
    assert_eq!(
        store
            .item_history(alice.id, v1.id, items[4])
            .await
            .expect("no history"),
        Vec::new()
    );
    let current = store.pull(alice.id, v1.id, 0, 1000).await.expect("pull");
    assert_eq!(current.head, 10);
    assert_eq!(revisions(&current.records), vec![4, 5, 7, 9, 10]);

    // Another vault's revisions are its own.
    let v2 = vault(alice.id, now + 5);
    store.create_vault(&v2).await.expect("second vault");
    let other = push(
        store,
        alice.id,
        v2.id,
        batch,
        &[change(new_id(), 0, 1, "v2")],
        None,
        now,
    )
    .await
    .expect("push to v2 with a client id used in v1");
    assert_eq!(other.head, 1);
    assert_eq!(
        store.vaults(alice.id).await.expect("vaults").len(),
        2,
        "vaults are listed"
    );

    // --------------------------------------------------------------- audit
    for i in 0..5_i64 {
        store
            .add_audit(&AuditEntry {
                id: 0,
                account_id: alice.id,
                at: now + i,
                kind: format!("event-{i}"),
                device_id: (i % 2 == 0).then_some(laptop.id),
                address: (i == 3).then(|| "192.0.2.7".to_owned()),
                detail: (i == 4).then(|| "work laptop".to_owned()),
            })
            .await
            .expect("audit");
    }
    store
        .add_audit(&AuditEntry {
            id: 0,
            account_id: bob.id,
            at: now,
            kind: "login".into(),
            device_id: None,
            address: None,
            detail: None,
        })
        .await
        .expect("bob's audit");
    let events = store.audit(alice.id, 3).await.expect("audit list");
    assert_eq!(
        events.iter().map(|e| e.kind.as_str()).collect::<Vec<_>>(),
        vec!["event-4", "event-3", "event-2"]
    );
    assert!(events.windows(2).all(|w| w[0].id > w[1].id), "newest first");
    assert_eq!(events[0].detail.as_deref(), Some("work laptop"));
    assert_eq!(events[0].device_id, Some(laptop.id));
    assert_eq!(events[1].address.as_deref(), Some("192.0.2.7"));
    assert_eq!(events[1].device_id, None);
    assert_eq!(events[2].at, now + 2);
    assert!(events.iter().all(|e| e.account_id == alice.id));
    assert_eq!(store.audit(alice.id, 100).await.expect("all").len(), 5);
    assert_eq!(store.audit(bob.id, 100).await.expect("bob").len(), 1);

    // -------------------------------------------------------------- backup
    let dir = tempfile::tempdir().expect("tempdir");
    let target = dir.path().join("backup.db");
    if store.kind() != StoreKind::Sqlite {
        assert_invalid(store.backup_to(&target).await, "backup of a non-file store");
        assert!(!target.exists());
        return;
    }
    store.backup_to(&target).await.expect("backup");
    assert_invalid(
        store.backup_to(&target).await,
        "backup over an existing file",
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&target)
            .expect("backup")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "backup file mode {mode:o}");
    }
    let copy = connect(&format!("sqlite://{}", target.display()))
        .await
        .expect("open the backup");
    assert_eq!(copy.server_secret().await.expect("secret"), secret);
    assert_eq!(
        copy.account_by_email("alice@example.com")
            .await
            .expect("alice"),
        store.account(alice.id).await.expect("alice")
    );
    let copied = copy
        .pull(alice.id, v1.id, 0, 1000)
        .await
        .expect("pull the copy");
    assert_eq!(copied, current);
    assert_eq!(
        copy.item_history(alice.id, v1.id, items[0])
            .await
            .expect("history"),
        vec![record_of(&first[0], 1), record_of(&updates[0], 6)]
    );
}

#[tokio::test]
async fn story_memory() {
    let backend = memory().await;
    story(backend.store.as_ref()).await;
}

#[tokio::test]
async fn story_sqlite() {
    let backend = sqlite().await;
    story(backend.store.as_ref()).await;
}

#[tokio::test]
async fn story_postgres() {
    let Some(backend) = postgres().await else {
        return;
    };
    story(backend.store.as_ref()).await;
}

// ------------------------------------------------------- head precondition

/// `expected_head`: a batch applies only on the head its manifest was made
/// for; a replay still gets its first answer.
async fn head_precondition(store: &dyn Store) {
    let now = 1_764_000_000_000;
    let owner = account("heads@example.com", now);
    store
        .create_account(&owner, &device(owner.id, "laptop", now))
        .await
        .expect("account");
    let v = vault(owner.id, now);
    store.create_vault(&v).await.expect("vault");
    let on = |client_change_id, changes, manifest, expected_head| PushBatch {
        client_change_id,
        changes,
        manifest,
        expected_head,
        quota: None,
        key_epoch: None,
    };

    // On an empty vault the head is 0.
    let (a, b) = (new_id(), new_id());
    let first = [change(a, 0, 1, "a1"), change(b, 0, 1, "b1")];
    let first_id = new_id();
    let pushed = store
        .push(
            owner.id,
            v.id,
            on(first_id, &first, Some(b"m-2"), Some(0)),
            now,
        )
        .await
        .expect("push on head 0");
    let first_response = PushResponse {
        head: 2,
        applied: vec![
            Applied {
                item_id: a,
                revision: 1,
            },
            Applied {
                item_id: b,
                revision: 2,
            },
        ],
        conflicts: Vec::new(),
    };
    assert_eq!(pushed, PushOutcome::Done(first_response.clone()));

    // A head behind or ahead of the vault's: nothing applied, nothing
    // logged, the manifest kept, and the head reported.
    let next = [change(a, 1, 2, "a2")];
    for (expected, manifest) in [
        (0, b"m-stale"),
        (1, b"m-stale"),
        (3, b"m-ahead"),
        (99, b"m-ahead"),
    ] {
        let refused_id = new_id();
        let refused = store
            .push(
                owner.id,
                v.id,
                on(refused_id, &next, Some(manifest), Some(expected)),
                now,
            )
            .await
            .expect("push on a moved head");
        assert_eq!(
            refused,
            PushOutcome::HeadMoved { head: 2 },
            "expected_head {expected}"
        );
        let pulled = store.pull(owner.id, v.id, 0, 100).await.expect("pull");
        assert_eq!((pulled.head, pulled.records.len()), (2, 2));
        assert_eq!(pulled.manifest.as_deref(), Some(b"m-2".as_slice()));
        // Not remembered: the same id on the right head applies.
        if expected == 99 {
            let applied = store
                .push(
                    owner.id,
                    v.id,
                    on(refused_id, &next, Some(b"m-3"), Some(2)),
                    now,
                )
                .await
                .expect("the refused id, on the right head");
            assert_eq!(
                applied,
                PushOutcome::Done(PushResponse {
                    head: 3,
                    applied: vec![Applied {
                        item_id: a,
                        revision: 3
                    }],
                    conflicts: Vec::new(),
                })
            );
        }
    }
    let pulled = store.pull(owner.id, v.id, 0, 100).await.expect("pull");
    assert_eq!(pulled.head, 3);
    assert_eq!(pulled.manifest.as_deref(), Some(b"m-3".as_slice()));

    // A replay gets its first answer, whatever the head and precondition now.
    for expected in [None, Some(0), Some(3), Some(7)] {
        let replayed = store
            .push(owner.id, v.id, on(first_id, &first, None, expected), now)
            .await
            .expect("replay");
        assert_eq!(replayed, PushOutcome::Replayed(first_response.clone()));
    }
    assert_eq!(
        store.pull(owner.id, v.id, 0, 100).await.expect("pull").head,
        3
    );

    // The right head with a stale base: the usual conflicts, nothing applied.
    let stale = [change(b, 0, 2, "b-stale")];
    let conflicted = store
        .push(owner.id, v.id, on(new_id(), &stale, None, Some(3)), now)
        .await
        .expect("conflict on the right head");
    let PushOutcome::Done(response) = conflicted else {
        panic!("expected conflicts, got {conflicted:?}");
    };
    assert_eq!((response.head, response.applied.len()), (3, 0));
    assert_eq!(response.conflicts.len(), 1);
    assert_eq!(response.conflicts[0].item_id, b);

    // An empty batch checks the head too.
    assert_eq!(
        store
            .push(owner.id, v.id, on(new_id(), &[], None, Some(2)), now)
            .await
            .expect("empty"),
        PushOutcome::HeadMoved { head: 3 }
    );
    // Someone else's vault is not found, precondition or not.
    let stranger = account("stranger@example.com", now);
    store
        .create_account(&stranger, &device(stranger.id, "phone", now))
        .await
        .expect("stranger");
    assert_not_found(
        store
            .push(stranger.id, v.id, on(new_id(), &[], None, Some(3)), now)
            .await,
        "a foreign vault with a precondition",
    );
}

#[tokio::test]
async fn head_precondition_memory() {
    head_precondition(memory().await.store.as_ref()).await;
}

#[tokio::test]
async fn head_precondition_sqlite() {
    let backend = sqlite().await;
    head_precondition(backend.store.as_ref()).await;
}

#[tokio::test]
async fn head_precondition_postgres() {
    let Some(backend) = postgres().await else {
        return;
    };
    head_precondition(backend.store.as_ref()).await;
}

/// Each `memory` URL is a fresh database; a SQLite file keeps its data.
#[tokio::test]
async fn stores_persist_as_promised() {
    let first = connect("memory").await.expect("memory");
    let alice = account("alice@example.com", 1);
    first
        .create_account(&alice, &device(alice.id, "laptop", 1))
        .await
        .expect("create");
    let second = connect("memory").await.expect("memory");
    assert_eq!(second.account(alice.id).await.expect("lookup"), None);

    let dir = tempfile::tempdir().expect("tempdir");
    let url = format!("sqlite://{}", dir.path().join("s.db").display());
    let store = connect(&url).await.expect("sqlite");
    store
        .create_account(&alice, &device(alice.id, "laptop", 1))
        .await
        .expect("create");
    let secret = store.server_secret().await.expect("secret");
    drop(store);
    let reopened = connect(&url).await.expect("reopen");
    assert_eq!(
        reopened.account(alice.id).await.expect("lookup"),
        Some(alice)
    );
    assert_eq!(reopened.server_secret().await.expect("secret"), secret);

    let missing_dir = format!("sqlite://{}", dir.path().join("no/such/dir/s.db").display());
    match connect(&missing_dir).await {
        Err(StoreError::Unavailable(_)) => {}
        Err(e) => panic!("expected Unavailable, got {e:?}"),
        Ok(_) => panic!("opened a database in a missing directory"),
    }
    match connect("redis://localhost").await {
        Err(StoreError::Invalid(_)) => {}
        Err(e) => panic!("expected Invalid, got {e:?}"),
        Ok(_) => panic!("accepted a redis URL"),
    }
}

// --------------------------------------------------------------- concurrency

async fn concurrent_pushes(store: Arc<dyn Store>) {
    let now = 1_764_000_000_000;
    let owner = account("owner@example.com", now);
    store
        .create_account(&owner, &device(owner.id, "laptop", now))
        .await
        .expect("account");
    let v = vault(owner.id, now);
    store.create_vault(&v).await.expect("vault");

    let tasks: Vec<_> = (0..8)
        .map(|i| {
            let store = Arc::clone(&store);
            tokio::spawn(async move {
                let item = change(new_id(), 0, 1, &format!("c{i}"));
                let response = push(
                    store.as_ref(),
                    owner.id,
                    v.id,
                    new_id(),
                    std::slice::from_ref(&item),
                    None,
                    now,
                )
                .await
                .expect("concurrent push");
                assert!(response.conflicts.is_empty(), "{response:?}");
                assert_eq!(response.applied.len(), 1);
                assert_eq!(response.applied[0].item_id, item.item_id);
                response.applied[0].revision
            })
        })
        .collect();
    let mut revisions = BTreeSet::new();
    for task in tasks {
        assert!(
            revisions.insert(task.await.expect("task")),
            "distinct revisions"
        );
    }
    assert_eq!(revisions, (1..=8).collect::<BTreeSet<i64>>());
    let pulled = store.pull(owner.id, v.id, 0, 100).await.expect("pull");
    assert_eq!(pulled.head, 8);
    assert_eq!(pulled.records.len(), 8);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrency_memory() {
    let backend = memory().await;
    concurrent_pushes(backend.store.clone()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrency_sqlite() {
    let backend = sqlite().await;
    concurrent_pushes(backend.store.clone()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrency_postgres() {
    let Some(backend) = postgres().await else {
        return;
    };
    concurrent_pushes(backend.store.clone()).await;
}

// ------------------------------------------------------------ key rotation

fn log_row(seq: u64) -> LogRow {
    LogRow {
        seq,
        entry: format!("signed entry {seq}").into_bytes(),
        signature: vec![u8::try_from(seq % 256).expect("byte"); 64],
    }
}

fn active(account_id: Uuid, role: &str, now: i64) -> MemberWrite {
    MemberWrite::Add(Membership {
        account_id,
        role: role.to_owned(),
        status: "active".to_owned(),
        sealed_key: format!("sealed to {account_id} at 1").into_bytes(),
        key_epoch: 1,
        added_at: now,
    })
}

/// A rotation to `epoch` on `head` of `records` (item, version), sealed to
/// `members`; every blob names the tag, so that two rotations differ.
fn rotation_in(
    epoch: u32,
    head: i64,
    records: &[(Uuid, u64)],
    members: &[Uuid],
    tag: &str,
) -> RotationIn {
    RotationIn {
        key_epoch: epoch,
        sealed_keys: members
            .iter()
            .map(|m| (*m, format!("sealed to {m} at {epoch} {tag}").into_bytes()))
            .collect(),
        records: records
            .iter()
            .map(|(item, version)| RewrappedIn {
                item_id: *item,
                version: *version,
                wrapped_key: format!("rewrapped {item} {tag}").into_bytes(),
                authorship: None,
            })
            .collect(),
        meta: format!("meta {epoch} {tag}").into_bytes(),
        manifest: format!("manifest {epoch} {tag}").into_bytes(),
        owner_wrapped_key: None,
        expected_head: head,
    }
}

async fn push_under(
    store: &dyn Store,
    owner: Uuid,
    vault_id: Uuid,
    client_change_id: Uuid,
    changes: &[ChangeIn],
    key_epoch: Option<u32>,
) -> PushOutcome {
    let batch = PushBatch {
        client_change_id,
        changes,
        manifest: Some(b"manifest of a push"),
        expected_head: None,
        quota: None,
        key_epoch,
    };
    store
        .push(owner, vault_id, batch, 1_764_000_000_000)
        .await
        .expect("push")
}

/// The live records, (item, version), in pull order.
async fn live(store: &dyn Store, owner: Uuid, vault_id: Uuid) -> Vec<(Uuid, u64)> {
    let pulled = store.pull(owner, vault_id, 0, 1000).await.expect("pull");
    pulled
        .records
        .iter()
        .filter(|r| !r.deleted)
        .map(|r| (r.item_id, r.version))
        .collect()
}

/// Everything a rotation may change, to prove that a refused one did not.
async fn rotation_state(
    store: &dyn Store,
    owner: Uuid,
    vault_id: Uuid,
) -> (
    u32,
    Vec<LogRow>,
    Vec<MemberInfo>,
    Option<Vault>,
    Vec<Record>,
    Option<Vec<u8>>,
) {
    let pulled = store.pull(owner, vault_id, 0, 1000).await.expect("pull");
    (
        store.key_epoch(owner, vault_id).await.expect("epoch"),
        store.log(owner, vault_id).await.expect("log"),
        store.members(owner, vault_id).await.expect("members"),
        store.vault(owner, vault_id).await.expect("vault"),
        pulled.records,
        pulled.manifest,
    )
}

/// A removal and its rotation, a leave and a rotation, as the store
/// applies them: all or nothing, and pushes meet the epoch.
async fn rotation_story(store: &dyn Store) {
    let now: i64 = 1_764_000_000_000;
    let mut accounts = Vec::new();
    for name in ["ana", "bob", "cy", "dee"] {
        let a = account(&format!("{name}@rotation.example"), now);
        store
            .create_account(&a, &device(a.id, "laptop", now))
            .await
            .expect("account");
        accounts.push(a.id);
    }
    let [ana, bob, cy, dee] = accounts[..] else {
        unreachable!()
    };
    let v = vault(ana, now);
    store.create_vault(&v).await.expect("vault");
    let (x, y, z) = (new_id(), new_id(), new_id());
    let signed = ChangeIn {
        authorship: Some(b"by ana".to_vec()),
        ..change(x, 0, 1, "x1")
    };
    push(
        store,
        ana,
        v.id,
        new_id(),
        &[signed, change(y, 0, 1, "y1"), change(z, 0, 1, "z1")],
        None,
        now,
    )
    .await
    .expect("push");
    push(store, ana, v.id, new_id(), &[tombstone(z, 3, 2)], None, now)
        .await
        .expect("purge");
    assert_eq!(store.key_epoch(ana, v.id).await.expect("epoch"), 1);
    assert!(store.shared_own(ana).await.expect("shared").is_empty());
    assert_not_found(store.key_epoch(bob, v.id).await, "another account's vault");

    for (seq, (who, role)) in [(ana, "manager"), (bob, "editor"), (cy, "viewer")]
        .into_iter()
        .enumerate()
    {
        let seq = u64::try_from(seq).expect("seq");
        store
            .append_log(ana, v.id, &log_row(seq), &active(who, role, now))
            .await
            .expect("add");
    }
    assert_eq!(store.shared_own(ana).await.expect("shared"), vec![v.id]);
    assert!(store.shared_own(bob).await.expect("shared").is_empty());

    // Refused: nothing of it stays, not even the log entry.
    let start = rotation_state(store, ana, v.id).await;
    let rows = [(x, 1), (y, 1)];
    let refused: Vec<(MemberWrite, &str, bool)> = vec![
        (
            MemberWrite::Leave { account_id: dee },
            "a non-member leaves",
            false,
        ),
        (
            MemberWrite::Remove {
                account_id: dee,
                rotation: rotation_in(2, 4, &rows, &[ana, bob, cy], "r"),
            },
            "a non-member removed",
            false,
        ),
        (
            MemberWrite::Remove {
                account_id: cy,
                rotation: rotation_in(2, 4, &rows, &[ana, bob, cy], "r"),
            },
            "sealed to the removed member",
            true,
        ),
        (
            MemberWrite::Remove {
                account_id: cy,
                rotation: rotation_in(2, 4, &rows, &[ana], "r"),
            },
            "a member without the key",
            true,
        ),
        (
            MemberWrite::Remove {
                account_id: cy,
                rotation: rotation_in(3, 4, &rows, &[ana, bob], "r"),
            },
            "an epoch two ahead",
            true,
        ),
        (
            MemberWrite::Remove {
                account_id: cy,
                rotation: rotation_in(2, 3, &rows, &[ana, bob], "r"),
            },
            "a stale head",
            true,
        ),
        (
            MemberWrite::Remove {
                account_id: cy,
                rotation: rotation_in(2, 4, &[(x, 1), (y, 1), (z, 2)], &[ana, bob], "r"),
            },
            "a tombstone listed",
            true,
        ),
        (
            MemberWrite::Remove {
                account_id: cy,
                rotation: rotation_in(2, 4, &[(x, 1)], &[ana, bob], "r"),
            },
            "a record missing",
            true,
        ),
        (
            MemberWrite::Remove {
                account_id: cy,
                rotation: rotation_in(2, 4, &[(x, 1), (y, 2)], &[ana, bob], "r"),
            },
            "a version ahead",
            true,
        ),
        (
            MemberWrite::Rotate(rotation_in(2, 4, &rows, &[ana, bob], "r")),
            "a rotation without a member still there",
            true,
        ),
    ];
    for (write, what, conflict) in refused {
        let result = store.append_log(ana, v.id, &log_row(3), &write).await;
        if conflict {
            assert_conflict(result, what);
        } else {
            assert_not_found(result, what);
        }
        assert_eq!(rotation_state(store, ana, v.id).await, start, "{what}");
    }
    assert_conflict(
        store
            .append_log(
                ana,
                v.id,
                &log_row(4),
                &MemberWrite::Rotate(rotation_in(2, 4, &rows, &[ana, bob, cy], "r")),
            )
            .await,
        "a sequence number ahead",
    );
    assert_eq!(rotation_state(store, ana, v.id).await, start);

    // Applied: Cy removed, y then x re-wrapped at revisions 5 and 6; the
    // manager vouches for both, which fills y's missing signature only.
    let mut r = rotation_in(2, 4, &[(y, 1), (x, 1)], &[bob, ana], "r");
    for rec in &mut r.records {
        rec.authorship = Some(format!("vouched for {}", rec.item_id).into_bytes());
    }
    let appended = store
        .append_log(
            ana,
            v.id,
            &log_row(3),
            &MemberWrite::Remove {
                account_id: cy,
                rotation: r.clone(),
            },
        )
        .await
        .expect("remove");
    assert_eq!(appended, Appended::Rotated { head: 6 });
    assert_eq!(store.key_epoch(ana, v.id).await.expect("epoch"), 2);
    let members = store.members(ana, v.id).await.expect("members");
    assert_eq!(members.len(), 2);
    for m in &members {
        let (_, sealed) = r
            .sealed_keys
            .iter()
            .find(|(a, _)| *a == m.membership.account_id)
            .expect("a remaining member");
        assert_eq!(&m.membership.sealed_key, sealed);
        assert_eq!(m.membership.key_epoch, 2);
    }
    assert!(
        store
            .shared_vault(cy, v.id)
            .await
            .expect("lookup")
            .is_none()
    );
    let bobs = store
        .shared_vault(bob, v.id)
        .await
        .expect("lookup")
        .expect("bob's");
    assert_eq!(bobs.membership.key_epoch, 2);
    assert_eq!(bobs.vault.meta, r.meta);
    assert_eq!(bobs.vault.revision, 6);
    let since = store.pull(ana, v.id, 4, 100).await.expect("pull");
    assert_eq!(revisions(&since.records), vec![5, 6]);
    assert_eq!(since.records[0].item_id, y);
    assert_eq!(since.records[0].wrapped_key.0, r.records[0].wrapped_key);
    assert_eq!(since.records[0].overview.0, b"overview-y1");
    assert_eq!(since.records[1].item_id, x);
    assert_eq!(since.records[1].wrapped_key.0, r.records[1].wrapped_key);
    assert_eq!(
        since.records[0].authorship.as_ref().map(|a| a.0.clone()),
        r.records[0].authorship,
        "a missing signature is filled in"
    );
    assert_eq!(
        since.records[1].authorship.as_ref().map(|a| a.0.as_slice()),
        Some(&b"by ana"[..]),
        "an existing signature is never replaced"
    );
    assert_eq!(since.manifest.as_deref(), Some(r.manifest.as_slice()));
    let all = store.pull(ana, v.id, 0, 100).await.expect("pull");
    let gone = all.records.iter().find(|r| r.item_id == z).expect("z");
    assert_eq!(
        (gone.revision, gone.deleted),
        (4, true),
        "the tombstone stays"
    );
    assert_eq!(store.log(ana, v.id).await.expect("log").len(), 4);

    // Pushes under the old epoch, or none, are refused; then one applies.
    let id = new_id();
    let next = [change(x, 6, 2, "x2")];
    for epoch in [Some(1), None, Some(3)] {
        match push_under(store, ana, v.id, id, &next, epoch).await {
            PushOutcome::KeyRotated { epoch: 2 } => {}
            other => panic!("{epoch:?}: {other:?}"),
        }
    }
    assert_eq!(store.pull(ana, v.id, 6, 100).await.expect("pull").head, 6);
    match push_under(store, ana, v.id, id, &next, Some(2)).await {
        PushOutcome::Done(r) => assert_eq!(r.head, 7),
        other => panic!("{other:?}"),
    }

    // Bob leaves: its row goes, the epoch stays; Ana rotates alone.
    assert_eq!(
        store
            .append_log(
                ana,
                v.id,
                &log_row(4),
                &MemberWrite::Leave { account_id: bob }
            )
            .await
            .expect("leave"),
        Appended::Members
    );
    assert_eq!(store.key_epoch(ana, v.id).await.expect("epoch"), 2);
    assert!(
        store
            .shared_vault(bob, v.id)
            .await
            .expect("lookup")
            .is_none()
    );
    let alone = rotation_in(3, 7, &[(y, 1), (x, 2)], &[ana], "alone");
    assert_eq!(
        store
            .append_log(ana, v.id, &log_row(5), &MemberWrite::Rotate(alone))
            .await
            .expect("rotate"),
        Appended::Rotated { head: 9 }
    );
    assert_eq!(store.key_epoch(ana, v.id).await.expect("epoch"), 3);
    assert_eq!(store.log(ana, v.id).await.expect("log").len(), 6);
}

#[tokio::test]
async fn rotation_memory() {
    rotation_story(memory().await.store.as_ref()).await;
}

#[tokio::test]
async fn rotation_sqlite() {
    rotation_story(sqlite().await.store.as_ref()).await;
}

#[tokio::test]
async fn rotation_postgres() {
    let Some(backend) = postgres().await else {
        return;
    };
    rotation_story(backend.store.as_ref()).await;
}

/// A rotation racing a push, or another rotation: exactly one of them
/// applies, and the vault is exactly as that one left it (a push never
/// lands under the old key after a rotation, nor a rotation on a head that
/// moved).
async fn rotation_races(store: Arc<dyn Store>) {
    let now: i64 = 1_764_000_000_000;
    let ana = account("ana@race.example", now);
    let bob = account("bob@race.example", now);
    for a in [&ana, &bob] {
        store
            .create_account(a, &device(a.id, "laptop", now))
            .await
            .expect("account");
    }
    let (ana, bob) = (ana.id, bob.id);
    let v = vault(ana, now);
    store.create_vault(&v).await.expect("vault");
    let items: Vec<Uuid> = (0..5).map(|_| new_id()).collect();
    let first: Vec<ChangeIn> = items.iter().map(|i| change(*i, 0, 1, "first")).collect();
    push(store.as_ref(), ana, v.id, new_id(), &first, None, now)
        .await
        .expect("push");
    for (seq, (who, role)) in [(ana, "manager"), (bob, "editor")].into_iter().enumerate() {
        let seq = u64::try_from(seq).expect("seq");
        store
            .append_log(ana, v.id, &log_row(seq), &active(who, role, now))
            .await
            .expect("add");
    }

    let (mut pushes_won, mut rotations_won) = (0, 0);
    for round in 0..16 {
        let epoch = store.key_epoch(ana, v.id).await.expect("epoch");
        let pulled = store.pull(ana, v.id, 0, 1000).await.expect("pull");
        let head = pulled.head;
        let rows = live(store.as_ref(), ana, v.id).await;
        let seq = u64::try_from(store.log(ana, v.id).await.expect("log").len()).expect("seq");
        let mine = rotation_in(epoch + 1, head, &rows, &[ana, bob], &format!("a{round}"));
        let rotate = {
            let (store, r) = (Arc::clone(&store), mine.clone());
            tokio::spawn(async move {
                store
                    .append_log(ana, v.id, &log_row(seq), &MemberWrite::Rotate(r))
                    .await
            })
        };
        if round % 2 == 0 {
            // Against a push under the epoch it was made in.
            let record = &pulled.records[round % pulled.records.len()];
            let edit = change(record.item_id, record.revision, record.version + 1, "edit");
            let pushing = {
                let store = Arc::clone(&store);
                tokio::spawn(async move {
                    push_under(store.as_ref(), ana, v.id, new_id(), &[edit], Some(epoch)).await
                })
            };
            let (rotated, pushed) = (rotate.await.expect("task"), pushing.await.expect("task"));
            match (&rotated, &pushed) {
                (Ok(Appended::Rotated { head: h }), PushOutcome::KeyRotated { epoch: e }) => {
                    rotations_won += 1;
                    assert_eq!((*h, *e), (head + 5, epoch + 1));
                    let now = store.pull(ana, v.id, head, 1000).await.expect("pull");
                    for (i, r) in now.records.iter().enumerate() {
                        assert_eq!(
                            r.wrapped_key.0, mine.records[i].wrapped_key,
                            "round {round}"
                        );
                    }
                    assert_eq!(now.head, head + 5);
                }
                (Err(StoreError::Conflict), PushOutcome::Done(p)) => {
                    pushes_won += 1;
                    assert_eq!(p.head, head + 1, "round {round}");
                    assert_eq!(store.key_epoch(ana, v.id).await.expect("epoch"), epoch);
                    assert_eq!(
                        store.log(ana, v.id).await.expect("log").len(),
                        usize::try_from(seq).expect("len")
                    );
                }
                other => panic!("round {round}: {other:?}"),
            }
        } else {
            // Against another rotation of the same vault.
            let theirs = rotation_in(epoch + 1, head, &rows, &[bob, ana], &format!("b{round}"));
            let other = {
                let (store, r) = (Arc::clone(&store), theirs.clone());
                tokio::spawn(async move {
                    store
                        .append_log(ana, v.id, &log_row(seq), &MemberWrite::Rotate(r))
                        .await
                })
            };
            let (a, b) = (rotate.await.expect("task"), other.await.expect("task"));
            let winner = match (&a, &b) {
                (Ok(Appended::Rotated { .. }), Err(StoreError::Conflict)) => &mine,
                (Err(StoreError::Conflict), Ok(Appended::Rotated { .. })) => &theirs,
                other => panic!("round {round}: {other:?}"),
            };
            rotations_won += 1;
            let members = store.members(ana, v.id).await.expect("members");
            for m in &members {
                let (_, sealed) = winner
                    .sealed_keys
                    .iter()
                    .find(|(a, _)| *a == m.membership.account_id)
                    .expect("member");
                assert_eq!(&m.membership.sealed_key, sealed, "round {round}");
            }
            let now = store.pull(ana, v.id, head, 1000).await.expect("pull");
            let keys: Vec<&[u8]> = now
                .records
                .iter()
                .map(|r| r.wrapped_key.0.as_slice())
                .collect();
            let want: Vec<&[u8]> = winner
                .records
                .iter()
                .map(|r| r.wrapped_key.as_slice())
                .collect();
            assert_eq!(keys, want, "round {round}");
        }
    }
    assert_eq!(
        store.key_epoch(ana, v.id).await.expect("epoch"),
        1 + u32::try_from(rotations_won).expect("count")
    );
    assert_eq!(pushes_won + rotations_won, 16);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn rotation_races_sqlite() {
    rotation_races(sqlite().await.store.clone()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn rotation_races_postgres() {
    let Some(backend) = postgres().await else {
        return;
    };
    rotation_races(backend.store.clone()).await;
}

// ------------------------------------------------------------------ upgrade

/// A database from before the scoped ids (every migration up to the one
/// before them) keeps working after the upgrade: its account, device,
/// session and vault keep their ids, as key and as label.
#[tokio::test]
async fn a_database_from_before_scoped_ids_keeps_working() {
    use sqlx::migrate::Migrator;
    const LAST_BEFORE: i64 = 20_261_203_000_017;
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("old.db");
    let options = sqlx::sqlite::SqliteConnectOptions::new()
        .filename(&path)
        .create_if_missing(true)
        .foreign_keys(true);
    let pool = sqlx::SqlitePool::connect_with(options).await.expect("open");
    let mut old = Migrator::new(std::path::Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/migrations/sqlite"
    )))
    .await
    .expect("migrations");
    old.migrations = old
        .migrations
        .iter()
        .filter(|m| m.version <= LAST_BEFORE)
        .cloned()
        .collect::<Vec<_>>()
        .into();
    old.run(&pool).await.expect("the old schema");
    let (account, device, vault, session) = (new_id(), new_id(), new_id(), new_id());
    let now: i64 = 1_764_000_000_000;
    for (sql, ids) in [
        (
            "INSERT INTO accounts VALUES ($1, 'old@example.org', 8, 1, 1, x'01', x'02', x'03', \
             x'04', x'05', x'06', x'07', 1, NULL)",
            vec![account],
        ),
        (
            "INSERT INTO devices VALUES ($1, $2, 'old laptop', 1, 1, NULL, NULL)",
            vec![device, account],
        ),
        (
            "INSERT INTO sessions VALUES ($1, $2, $3, x'aa', 9999999999999, x'bb', 9999999999999, 1)",
            vec![session, account, device],
        ),
        (
            "INSERT INTO refresh_tokens VALUES (x'bb', $1, NULL, 9999999999999)",
            vec![session],
        ),
        (
            "INSERT INTO vaults VALUES ($1, $2, x'10', x'11', 1, x'12', 1)",
            vec![vault, account],
        ),
        (
            "INSERT INTO records VALUES ($1, $2, 1, 1, 0, x'20', x'21', x'22')",
            vec![vault, new_id()],
        ),
    ] {
        let mut q = sqlx::query(sql);
        for id in ids {
            q = q.bind(id.to_string());
        }
        q.execute(&pool).await.expect(sql);
    }
    pool.close().await;

    let store = connect(&format!("sqlite://{}", path.display()))
        .await
        .expect("the upgrade");
    let a = store
        .account(account)
        .await
        .expect("account")
        .expect("kept");
    assert_eq!((a.id, a.client_id), (account, account));
    let d = store.device(account, device).await.expect("device");
    assert_eq!(d.map(|d| d.name), Some("old laptop".to_owned()));
    let s = store
        .session_by_access(b"\xaa", now)
        .await
        .expect("session")
        .expect("the session survives the rebuild");
    assert_eq!((s.account_id, s.device_id), (account, device));
    assert!(matches!(
        store
            .refresh_session(
                b"\xbb",
                NewTokens {
                    access_hash: b"new-a",
                    access_expires_at: now + 1,
                    refresh_hash: b"new-r",
                    refresh_expires_at: now + 2,
                },
                now
            )
            .await
            .expect("refresh"),
        RefreshOutcome::Rotated { .. }
    ));
    let pulled = store.pull(account, vault, 0, 10).await.expect("pull");
    assert_eq!((pulled.head, pulled.records.len()), (1, 1));
    // And the devices' new key is in force: revoking ends the session.
    assert_eq!(
        store
            .revoke_device(account, device, now)
            .await
            .expect("revoke")
            .len(),
        1
    );
}
