//! Engine behaviour end to end over a real vault directory: what a user or an
//! attacker with write access to the files can do, and what the engine must
//! then say. Every test uses tiny Argon2 parameters so the suite stays fast.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use sqlx::Row;
use uuid::Uuid;

use super::model::{Field, FieldKind, Item, ItemKind, label};
use super::search::Query;
use super::*;
use crate::crypto::{Aad, KdfParams, Key, SecretKey, SecretString};
use crate::store::Store;

use super::test_fixtures::{FAST_KDF as FAST, PASSWORD, draft, login};

const TOTP_SEED: &str = "JBSWY3DPEHPK3PXP";

fn pw(s: &str) -> SecretString {
    SecretString::from(s.to_owned())
}

/// A fresh vault in a new (not yet existing) subdirectory of a temp dir.
async fn new_vault() -> (tempfile::TempDir, PathBuf, Session) {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("vault");
    let vault = Session::init(&dir, pw(PASSWORD), FAST).await.expect("init");
    (tmp, dir, vault)
}

async fn open(dir: &Path, password: &str) -> Result<Session> {
    Session::unlock(dir, pw(password), None).await
}

async fn reopen(vault: Session) -> Session {
    let dir = vault.dir().to_path_buf();
    vault.close().await;
    open(&dir, PASSWORD).await.expect("unlock")
}

/// The error of a result whose success type may not be `Debug` (e.g. `Session`).
fn err<T>(r: Result<T>) -> Error {
    match r {
        Ok(_) => panic!("expected an error, got success"),
        Err(e) => e,
    }
}

fn note(name: &str, text: &str) -> ItemDraft {
    draft(
        ItemKind::Note,
        name,
        vec![Field::new(label::NOTES, text, FieldKind::Multiline)],
    )
}

fn value<'a>(item: &'a Item, l: &str) -> &'a str {
    item.field(l).map_or("", |f| f.value.expose())
}

fn has(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

/// Every file in the vault directory, by name, as bytes.
fn dir_files(dir: &Path) -> Vec<(String, Vec<u8>)> {
    std::fs::read_dir(dir)
        .expect("read dir")
        .map(|e| {
            let e = e.expect("dir entry");
            (
                e.file_name().to_string_lossy().into_owned(),
                std::fs::read(e.path()).expect("read file"),
            )
        })
        .collect()
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path)
        .expect("metadata")
        .permissions()
        .mode()
        & 0o777
}

fn flip_bit(mut blob: Vec<u8>, at: usize) -> Vec<u8> {
    blob[at] ^= 0x01;
    blob
}

async fn item_blob(pool: &sqlx::SqlitePool, id: Uuid, column: &str) -> Vec<u8> {
    assert!(["overview", "details", "wrapped_key"].contains(&column));
    sqlx::query(&format!("SELECT {column} FROM items WHERE id = ?"))
        .bind(id.to_string())
        .fetch_one(pool)
        .await
        .expect("select blob")
        .get(0)
}

async fn set_item_blob(pool: &sqlx::SqlitePool, id: Uuid, column: &str, blob: &[u8]) {
    assert!(["overview", "details", "wrapped_key"].contains(&column));
    let done = sqlx::query(&format!("UPDATE items SET {column} = ? WHERE id = ?"))
        .bind(blob)
        .bind(id.to_string())
        .execute(pool)
        .await
        .expect("update blob");
    assert_eq!(done.rows_affected(), 1);
}

async fn raw_header(pool: &sqlx::SqlitePool) -> Vec<u8> {
    sqlx::query("SELECT value FROM meta WHERE key = 'header'")
        .fetch_one(pool)
        .await
        .expect("header row")
        .get(0)
}

async fn set_raw_header(pool: &sqlx::SqlitePool, bytes: &[u8]) {
    sqlx::query("UPDATE meta SET value = ? WHERE key = 'header'")
        .bind(bytes)
        .execute(pool)
        .await
        .expect("write header");
}

async fn count(pool: &sqlx::SqlitePool, sql: &str, id: Uuid) -> i64 {
    sqlx::query(sql)
        .bind(id.to_string())
        .fetch_one(pool)
        .await
        .expect("count")
        .get(0)
}

fn damaged_ids(damaged: &[DamagedItem]) -> Vec<String> {
    let mut ids: Vec<String> = damaged.iter().map(|d| d.id.clone()).collect();
    ids.sort();
    ids
}

fn assert_damaged_item(e: &Error, id: Uuid) {
    assert!(
        matches!(e, Error::DamagedItem { id: got, .. } if *got == id),
        "expected DamagedItem({id}), got {e:?}"
    );
    assert!(e.to_string().contains(&id.to_string()), "{e}");
}

fn gh_id(items: &[Item]) -> Uuid {
    items
        .iter()
        .find(|i| i.overview.name == "GitHub")
        .expect("github")
        .r
        .id
}

// 1 -------------------------------------------------------------------------

// Items of several kinds survive close and unlock with every part intact.
#[tokio::test]
async fn items_round_trip_through_close_and_unlock() {
    let (_tmp, dir, mut vault) = new_vault().await;
    let mut github = login("GitHub", "octocat", "s3cret-gh");
    github
        .fields
        .push(Field::new(label::URL, "https://github.com", FieldKind::Url));
    github
        .fields
        .push(Field::new(label::TOTP, TOTP_SEED, FieldKind::Totp));
    github.tags = vec!["work".into(), "dev".into()];
    github.folder = Some("Code".into());
    github.favorite = true;
    let mut card = draft(
        ItemKind::Card,
        "Visa",
        vec![
            Field::new(label::NUMBER, "4111 1111 1111 4242", FieldKind::Secret),
            Field::new(label::CVV, "123", FieldKind::Secret),
            Field::new(label::EXPIRY, "12/30", FieldKind::Text),
        ],
    );
    card.folder = Some("Money".into());
    let identity = draft(
        ItemKind::Identity,
        "Me",
        vec![
            Field::new(label::FULL_NAME, "Ada Lovelace", FieldKind::Text),
            Field::new(label::EMAIL, "ada@example.com", FieldKind::Email),
        ],
    );
    let api = draft(
        ItemKind::ApiKey,
        "Stripe",
        vec![Field::new(label::KEY, "sk_live_abc", FieldKind::Secret)],
    );
    let added = vault
        .add_many(vec![
            github,
            note("Diary", "line one\nline two"),
            card,
            identity,
            api,
        ])
        .await
        .expect("add");
    assert_eq!(added.len(), 5);
    vault.close().await;

    let mut vault = open(&dir, PASSWORD).await.expect("unlock");
    assert_eq!(vault.default_vault().1, "Personal");
    let (entries, damaged) = vault.entries().await.expect("entries");
    assert!(damaged.is_empty(), "{damaged:?}");
    assert_eq!(entries.len(), 5);
    for a in &added {
        let e = entries
            .iter()
            .find(|e| e.r.id == a.r.id)
            .expect("listed after reopening");
        assert_eq!(e.overview, a.overview);
        assert_eq!(e.r, a.r);
        // An overview never carries a secret value.
        let json = serde_json::to_string(&e.overview).expect("json");
        for f in a.details.fields.iter().filter(|f| f.is_concealed()) {
            assert!(!json.contains(f.value.expose()), "{} leaked", f.label);
        }
    }
    let gh = entries
        .iter()
        .find(|e| e.overview.name == "GitHub")
        .expect("github");
    assert_eq!(gh.overview.kind, ItemKind::Login);
    assert_eq!(gh.overview.subtitle.as_deref(), Some("octocat"));
    assert_eq!(gh.overview.urls, vec!["https://github.com"]);
    assert_eq!(gh.overview.tags, vec!["work", "dev"]);
    assert_eq!(gh.overview.folder.as_deref(), Some("Code"));
    assert!(gh.overview.favorite && gh.overview.has_totp);
    let visa = entries
        .iter()
        .find(|e| e.overview.name == "Visa")
        .expect("visa");
    assert_eq!(visa.overview.subtitle.as_deref(), Some("•••• 4242"));
    assert!(!visa.overview.favorite);

    for a in &added {
        let item = vault.item(a.r.id).await.expect("item");
        assert_eq!(item.details, a.details);
        assert_eq!(item.overview, a.overview);
        assert_eq!(item.r.version, 1);
    }
    let gh = vault.item(gh_id(&added)).await.expect("item");
    assert_eq!(value(&gh, label::PASSWORD), "s3cret-gh");
    assert_eq!(value(&gh, label::USERNAME), "octocat");
    let diary = added
        .iter()
        .find(|i| i.overview.name == "Diary")
        .expect("diary");
    assert_eq!(
        value(&vault.item(diary.r.id).await.expect("item"), label::NOTES),
        "line one\nline two"
    );
}

// 2 -------------------------------------------------------------------------

// A wrong password or Secret Key fails with the one generic error, harmlessly.
#[tokio::test]
async fn wrong_password_or_secret_key_is_refused() {
    let (_tmp, dir, mut vault) = new_vault().await;
    let id = vault
        .add(login("Mail", "me", "pw1"))
        .await
        .expect("add")
        .r
        .id;
    vault.close().await;

    let e = err(open(&dir, "correct horse battery stapler").await);
    assert!(matches!(e, Error::WrongPassword), "{e:?}");
    // Case and surrounding spaces matter: the password is used exactly as typed.
    assert!(matches!(
        err(open(&dir, &PASSWORD.to_uppercase()).await),
        Error::WrongPassword
    ));
    assert!(matches!(
        err(open(&dir, &format!(" {PASSWORD}")).await),
        Error::WrongPassword
    ));

    let vault = open(&dir, PASSWORD)
        .await
        .expect("right password still works");
    assert_eq!(
        value(&vault.item(id).await.expect("item"), "password"),
        "pw1"
    );
    vault.close().await;

    let key_file = dir.join(files::SECRET_KEY_FILE);
    let real_key = std::fs::read_to_string(&key_file).expect("secret key");
    let other = SecretKey::generate();
    std::fs::write(&key_file, other.display().as_bytes()).expect("write");
    let e = err(open(&dir, PASSWORD).await);
    assert!(matches!(e, Error::WrongPassword), "{e:?}");

    // Without the file the Secret Key can come from the fallback (OPENK_SECRET_KEY).
    std::fs::remove_file(&key_file).expect("remove");
    let e = err(open(&dir, PASSWORD).await);
    assert!(matches!(e, Error::Locked(_)), "{e:?}");
    let vault = Session::unlock(&dir, pw(PASSWORD), Some(real_key.trim()))
        .await
        .expect("unlock with fallback key");
    assert_eq!(vault.item(id).await.expect("item").overview.name, "Mail");
}

// 3 -------------------------------------------------------------------------

// A header with altered salt or KDF parameters fails like a wrong password, and
// absurd parameters are refused before any key derivation runs.
#[tokio::test]
async fn tampered_header_fails_like_a_wrong_password() {
    let (_tmp, dir, vault) = new_vault().await;
    vault.close().await;
    let raw = Store::open(&dir, false).await.expect("raw store");
    let original = raw_header(raw.pool()).await;
    raw.close().await;
    let header: serde_json::Value = serde_json::from_slice(&original).expect("json");
    let write_header = |bytes: Vec<u8>| {
        let dir = dir.clone();
        async move {
            let raw = Store::open(&dir, false).await.expect("raw store");
            set_raw_header(raw.pool(), &bytes).await;
            raw.close().await;
        }
    };

    let mut tampered = Vec::new();
    for (path, new) in [
        ("iterations", serde_json::json!(2)),
        ("memory_kib", serde_json::json!(128)),
        ("parallelism", serde_json::json!(2)),
    ] {
        let mut h = header.clone();
        h["kdf"][path] = new;
        tampered.push(h);
    }
    let mut h = header.clone();
    h["salt"] = serde_json::json!(crate::store::b64_encode(&[7u8; 16]));
    tampered.push(h);

    for h in tampered {
        write_header(serde_json::to_vec(&h).expect("json")).await;
        let e = err(open(&dir, PASSWORD).await);
        assert!(matches!(e, Error::WrongPassword), "{h}: {e:?}");
        write_header(original.clone()).await;
        open(&dir, PASSWORD)
            .await
            .expect("the untampered header unlocks")
            .close()
            .await;
    }

    // Memory above the 4 GiB ceiling (and other absurd values): refused at
    // once, the key derivation never runs.
    for (path, absurd) in [
        ("memory_kib", u64::from(KdfParams::CEILING.memory_kib) + 1),
        ("iterations", 1_000_000),
        ("parallelism", 0),
    ] {
        let mut h = header.clone();
        h["kdf"][path] = serde_json::json!(absurd);
        write_header(serde_json::to_vec(&h).expect("json")).await;
        let started = Instant::now();
        let e = err(open(&dir, PASSWORD).await);
        assert!(matches!(e, Error::WrongPassword), "{path}: {e:?}");
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "{path}: took {:?}",
            started.elapsed()
        );
    }
    write_header(original).await;
    open(&dir, PASSWORD).await.expect("unlocks again");
}

// 4 -------------------------------------------------------------------------

// `init` over an existing vault is refused and changes nothing on disk.
#[tokio::test]
async fn init_refuses_an_existing_vault_and_leaves_it_intact() {
    let (_tmp, dir, mut vault) = new_vault().await;
    let id = vault
        .add(login("Bank", "me", "pin-1234"))
        .await
        .expect("add")
        .r
        .id;
    vault.close().await;
    let db_before = std::fs::read(dir.join(crate::store::DB_FILE)).expect("db");
    let key_before = std::fs::read(dir.join(files::SECRET_KEY_FILE)).expect("key");

    let e = err(Session::init(&dir, pw("another password"), FAST).await);
    assert!(matches!(e, Error::VaultExists(ref d) if d == &dir), "{e:?}");
    assert!(e.to_string().contains("nothing was changed"), "{e}");

    assert_eq!(
        std::fs::read(dir.join(crate::store::DB_FILE)).expect("db"),
        db_before
    );
    assert_eq!(
        std::fs::read(dir.join(files::SECRET_KEY_FILE)).expect("key"),
        key_before
    );
    assert!(matches!(
        err(open(&dir, "another password").await),
        Error::WrongPassword
    ));
    let vault = open(&dir, PASSWORD).await.expect("old vault unlocks");
    assert_eq!(
        value(&vault.item(id).await.expect("item"), "password"),
        "pin-1234"
    );
}

// 5 -------------------------------------------------------------------------

// One flipped bit damages exactly one item; the rest of the vault stays usable.
#[tokio::test]
async fn a_flipped_bit_damages_only_that_item() {
    let (_tmp, _dir, mut vault) = new_vault().await;
    let items = vault
        .add_many(vec![
            login("A", "a", "pa"),
            login("B", "b", "pb"),
            login("C", "c", "pc"),
            note("D", "notes"),
        ])
        .await
        .expect("add");
    let (a, b) = (items[0].r.id, items[1].r.id);
    let pool = vault.store().pool().clone();

    // Overview of A.
    let blob = item_blob(&pool, a, "overview").await;
    set_item_blob(&pool, a, "overview", &flip_bit(blob, 40)).await;
    let mut vault = reopen(vault).await;
    let pool = vault.store().pool().clone();
    let (entries, damaged) = vault.entries().await.expect("entries");
    let mut listed: Vec<&str> = entries.iter().map(|e| e.overview.name.as_str()).collect();
    listed.sort_unstable();
    assert_eq!(listed, vec!["B", "C", "D"]);
    assert_eq!(damaged_ids(damaged), vec![a.to_string()]);
    assert!(damaged[0].why.contains("overview"), "{:?}", damaged[0]);
    assert_damaged_item(&err(vault.item(a).await), a);
    let e = err(vault.item(a).await);
    assert!(matches!(e, Error::DamagedItem { .. }), "{e:?}");

    // Details of B: listing is unaffected, only opening B fails.
    let blob = item_blob(&pool, b, "details").await;
    set_item_blob(&pool, b, "details", &flip_bit(blob, 33)).await;
    let mut vault = reopen(vault).await;
    let (entries, damaged) = vault.entries().await.expect("entries");
    assert_eq!(entries.len(), 3);
    assert!(entries.iter().any(|e| e.r.id == b));
    assert_eq!(damaged_ids(damaged), vec![a.to_string()]);
    assert_damaged_item(&err(vault.item(b).await), b);
    for other in &items[2..] {
        vault.item(other.r.id).await.expect("others still open");
    }
    // A damaged item cannot be edited either (its key cannot be trusted).
    assert_damaged_item(
        &err(vault
            .update(
                b,
                &ItemPatch {
                    name: Some("B2".into()),
                    ..ItemPatch::default()
                },
            )
            .await),
        b,
    );
}

// A row whose plaintext columns make no sense is reported, and the rest listed.
#[tokio::test]
async fn an_unreadable_row_is_reported_by_id() {
    let (_tmp, _dir, mut vault) = new_vault().await;
    let items = vault
        .add_many(vec![login("A", "a", "pa"), login("B", "b", "pb")])
        .await
        .expect("add");
    let a = items[0].r.id;
    sqlx::query("UPDATE items SET version = -5 WHERE id = ?")
        .bind(a.to_string())
        .execute(vault.store().pool())
        .await
        .expect("tamper");
    let mut vault = reopen(vault).await;
    let (entries, damaged) = vault.entries().await.expect("entries");
    assert_eq!(entries.len(), 1);
    assert_eq!(damaged_ids(damaged), vec![a.to_string()]);
    let e = err(vault.item(a).await);
    assert!(e.to_string().contains(&a.to_string()), "{e}");
}

// 6 -------------------------------------------------------------------------

// Swapped blobs and items moved to another vault are damaged, never shown.
#[tokio::test]
async fn swapped_or_moved_items_are_damaged() {
    let (_tmp, _dir, mut vault) = new_vault().await;
    let items = vault
        .add_many(vec![
            login("A", "a", "pa"),
            login("B", "b", "pb"),
            login("C", "c", "pc"),
            login("D", "d", "pd"),
            login("E", "e", "pe"),
        ])
        .await
        .expect("add");
    let [a, b, c, d, e] = [0, 1, 2, 3, 4].map(|i| items[i].r.id);
    let pool = vault.store().pool().clone();

    // A and B trade every blob.
    for column in ["overview", "details", "wrapped_key"] {
        let blob_a = item_blob(&pool, a, column).await;
        let blob_b = item_blob(&pool, b, column).await;
        set_item_blob(&pool, a, column, &blob_b).await;
        set_item_blob(&pool, b, column, &blob_a).await;
    }

    // C moves to a genuine second vault of this account (its key is known).
    let other_vault = Uuid::now_v7();
    let other_key = Key::random();
    sqlx::query("INSERT INTO vaults (id, wrapped_key, meta, created_at) VALUES (?, ?, ?, ?)")
        .bind(other_vault.to_string())
        .bind(crypto::wrap_key(
            &vault.account_key,
            &Aad::vault_key(vault.account_id(), other_vault),
            &other_key,
        ))
        .bind(seal_json(
            &other_key,
            &Aad::vault_meta(other_vault),
            &serde_json::json!({ "name": "Work" }),
        ))
        .bind(vault.header.created_at + 1)
        .execute(&pool)
        .await
        .expect("second vault");
    sqlx::query("UPDATE items SET vault_id = ? WHERE id = ?")
        .bind(other_vault.to_string())
        .bind(c.to_string())
        .execute(&pool)
        .await
        .expect("move c");

    // D moves to a vault nobody knows.
    let mut conn = pool.acquire().await.expect("conn");
    sqlx::query("PRAGMA foreign_keys = OFF")
        .execute(&mut *conn)
        .await
        .expect("pragma");
    sqlx::query("UPDATE items SET vault_id = ? WHERE id = ?")
        .bind(Uuid::now_v7().to_string())
        .bind(d.to_string())
        .execute(&mut *conn)
        .await
        .expect("move d");
    drop(conn);

    let mut vault = reopen(vault).await;
    assert_eq!(vault.default_vault().1, "Personal");
    assert_eq!(vault.vaults.len(), 2);
    let (entries, damaged) = vault.entries().await.expect("entries");
    assert_eq!(
        entries.iter().map(|x| x.r.id).collect::<Vec<_>>(),
        vec![e],
        "only the untouched item is listed"
    );
    let mut expected = vec![a.to_string(), b.to_string(), c.to_string(), d.to_string()];
    expected.sort();
    assert_eq!(damaged_ids(damaged), expected);
    for id in [a, b, c, d] {
        assert_damaged_item(&err(vault.item(id).await), id);
    }
    assert_eq!(
        value(&vault.item(e).await.expect("e opens"), "password"),
        "pe"
    );
}

// 7 -------------------------------------------------------------------------

// Putting an old version back (with or without its old number) is detected.
#[tokio::test]
async fn rolled_back_items_are_damaged() {
    let (_tmp, _dir, mut vault) = new_vault().await;
    let id = vault
        .add(login("Site", "me", "first"))
        .await
        .expect("add")
        .r
        .id;
    for pass in ["second", "third"] {
        vault
            .update(
                id,
                &ItemPatch {
                    set_fields: vec![Field::new(label::PASSWORD, pass, FieldKind::Secret)],
                    ..ItemPatch::default()
                },
            )
            .await
            .expect("update");
    }
    assert_eq!(vault.item(id).await.expect("item").r.version, 3);
    let pool = vault.store().pool().clone();
    let v1 = sqlx::query(
        "SELECT wrapped_key, overview, details FROM item_history WHERE item_id = ? AND version = 1",
    )
    .bind(id.to_string())
    .fetch_one(&pool)
    .await
    .expect("version 1");
    let (wk, ov, de): (Vec<u8>, Vec<u8>, Vec<u8>) = (v1.get(0), v1.get(1), v1.get(2));

    // Old blobs under the current version number.
    sqlx::query("UPDATE items SET wrapped_key = ?, overview = ?, details = ? WHERE id = ?")
        .bind(&wk)
        .bind(&ov)
        .bind(&de)
        .bind(id.to_string())
        .execute(&pool)
        .await
        .expect("replay blobs");
    assert_damaged_item(&err(vault.item(id).await), id);

    // The whole old row, number included.
    sqlx::query("UPDATE items SET version = 1 WHERE id = ?")
        .bind(id.to_string())
        .execute(&pool)
        .await
        .expect("replay version");
    let e = err(vault.item(id).await);
    assert_damaged_item(&e, id);
    assert!(e.to_string().contains("not newer"), "{e}");
}

// 8 -------------------------------------------------------------------------

// Every edit is kept and described by field name, never by value.
#[tokio::test]
async fn history_lists_every_version_without_values() {
    let (_tmp, _dir, mut vault) = new_vault().await;
    let original = vault
        .add(login("Router", "admin", "orig-pass-111"))
        .await
        .expect("add");
    let id = original.r.id;
    vault
        .update(
            id,
            &ItemPatch {
                name: Some("Home router".into()),
                ..ItemPatch::default()
            },
        )
        .await
        .expect("rename");
    vault
        .update(
            id,
            &ItemPatch {
                set_fields: vec![Field::new(
                    label::PASSWORD,
                    "new-pass-222",
                    FieldKind::Secret,
                )],
                ..ItemPatch::default()
            },
        )
        .await
        .expect("password");
    vault
        .update(
            id,
            &ItemPatch {
                set_fields: vec![Field::new(label::PIN, "9876", FieldKind::Secret)],
                ..ItemPatch::default()
            },
        )
        .await
        .expect("pin");
    vault.trash(id).await.expect("trash");
    let restored = vault.restore(id).await.expect("restore");
    assert_eq!(restored.r.version, 6);

    let history = vault.history(id).await.expect("history");
    assert_eq!(
        history.iter().map(|v| v.version).collect::<Vec<_>>(),
        vec![1, 2, 3, 4, 5, 6]
    );
    let changes: Vec<Vec<String>> = history.iter().map(|v| v.changes.clone()).collect();
    assert_eq!(
        changes,
        vec![
            vec!["created".to_owned()],
            vec!["renamed".to_owned()],
            vec!["changed password".to_owned()],
            vec!["added pin".to_owned()],
            vec!["moved to trash".to_owned()],
            vec!["restored from trash".to_owned()],
        ]
    );
    assert!(history.iter().all(|v| v.damaged.is_none()));
    assert_eq!(
        history.iter().map(|v| v.current).collect::<Vec<_>>(),
        vec![false, false, false, false, false, true]
    );
    assert!(
        history
            .windows(2)
            .all(|w| w[0].updated_at <= w[1].updated_at)
    );
    let described = serde_json::to_string(&history).expect("json");
    for secret in ["orig-pass-111", "new-pass-222", "9876", "admin"] {
        assert!(!described.contains(secret), "{secret} in {described}");
    }

    let v1 = vault.item_version(id, 1).await.expect("version 1");
    assert_eq!(v1.r.version, 1);
    assert_eq!(v1.overview.name, "Router");
    assert_eq!(v1.details, original.details);
    assert_eq!(value(&v1, label::PASSWORD), "orig-pass-111");
    assert!(v1.field(label::PIN).is_none());
    let v6 = vault.item_version(id, 6).await.expect("current");
    assert_eq!(value(&v6, label::PIN), "9876");
    assert!(matches!(
        err(vault.item_version(id, 7).await),
        Error::NoVersion { version: 7, .. }
    ));
}

// 9 -------------------------------------------------------------------------

// Trash and restore are reversible versions; purge destroys item and history.
#[tokio::test]
async fn trash_restore_and_purge() {
    let (_tmp, dir, mut vault) = new_vault().await;
    let items = vault
        .add_many(vec![
            login("Keep", "k", "pk"),
            login("Bin", "b", "pb"),
            login("Gone", "g", "pg"),
        ])
        .await
        .expect("add");
    let [keep, bin, gone] = [0, 1, 2].map(|i| items[i].r.id);

    vault.trash(bin).await.expect("trash");
    let e = err(vault.trash(bin).await);
    assert!(matches!(e, Error::Invalid(_)), "{e:?}");
    assert!(matches!(err(vault.restore(keep).await), Error::Invalid(_)));
    vault.trash(gone).await.expect("trash");

    let names = |entries: Vec<&Entry>| -> Vec<String> {
        entries.iter().map(|e| e.overview.name.clone()).collect()
    };
    let trash = Query::parse("is:trash").expect("query");
    assert_eq!(
        names(vault.list(&trash).await.expect("list").0),
        vec!["Bin", "Gone"]
    );
    let live = Query::parse("").expect("query");
    assert_eq!(
        names(vault.list(&live).await.expect("list").0),
        vec!["Keep"]
    );
    vault.restore(bin).await.expect("restore");
    assert_eq!(
        names(vault.list(&live).await.expect("list").0),
        vec!["Bin", "Keep"]
    );
    assert_eq!(
        value(&vault.item(bin).await.expect("restored"), "password"),
        "pb"
    );

    let pool = vault.store().pool().clone();
    let mut gone_blobs = Vec::new();
    for column in ["overview", "details", "wrapped_key"] {
        gone_blobs.push(item_blob(&pool, gone, column).await);
    }
    let old_versions = vault.store().history(gone).await.expect("history");
    assert_eq!(old_versions.len(), 1);
    for v in old_versions {
        gone_blobs.extend([v.overview, v.details, v.wrapped_key]);
    }
    vault.purge(gone).await.expect("purge");
    assert!(
        vault
            .store()
            .history(gone)
            .await
            .expect("history")
            .is_empty()
    );
    assert!(matches!(err(vault.item(gone).await), Error::NotFound(_)));
    assert!(matches!(err(vault.history(gone).await), Error::NotFound(_)));
    assert!(matches!(err(vault.purge(gone).await), Error::NotFound(_)));
    assert!(matches!(
        err(vault.resolve("Gone", true).await),
        Error::NotFound(_)
    ));
    assert!(vault.list(&trash).await.expect("list").0.is_empty());
    // The in-memory list and search still agree with the store after a purge.
    let hits = vault
        .search(&Query::parse("keep").expect("query"), 100)
        .await
        .expect("search")
        .hits;
    let (entries, _) = vault.entries().await.expect("entries");
    assert_eq!(entries.len(), 2);
    assert_eq!(hits.len(), 1);
    assert_eq!(entries[hits[0].index].r.id, keep);
    vault.close().await;

    let raw = Store::open(&dir, false).await.expect("raw store");
    let pool = raw.pool();
    assert_eq!(
        count(pool, "SELECT count(*) FROM items WHERE id = ?", gone).await,
        0
    );
    assert_eq!(
        count(
            pool,
            "SELECT count(*) FROM item_history WHERE item_id = ?",
            gone
        )
        .await,
        0
    );
    assert_eq!(
        count(
            pool,
            "SELECT count(*) FROM tombstones WHERE item_id = ?",
            gone
        )
        .await,
        1
    );
    assert_eq!(
        count(pool, "SELECT count(*) FROM items WHERE id = ?", keep).await,
        1
    );
    raw.close().await;
    // Not even the purged ciphertext lingers in the files.
    for (name, bytes) in dir_files(&dir) {
        for blob in &gone_blobs {
            assert!(!has(&bytes, blob), "purged ciphertext left in {name}");
        }
    }
}

// 10 ------------------------------------------------------------------------

// resolve() finds items by id, id prefix or exact name, and never guesses.
#[tokio::test]
async fn resolve_by_id_prefix_and_name() {
    let (_tmp, _dir, mut vault) = new_vault().await;
    let items = vault
        .add_many(vec![
            login("Alpha", "a", "1"),
            login("Beta", "b", "2"),
            note("BETA", "other"),
            login("Gamma", "old", "3"),
            login("Gamma", "new", "4"),
            login("Delta", "d", "5"),
        ])
        .await
        .expect("add");
    let [alpha, beta1, beta2, gamma_old, gamma_new, delta] =
        [0, 1, 2, 3, 4, 5].map(|i| items[i].r.id);
    vault.trash(gamma_old).await.expect("trash");
    vault.trash(delta).await.expect("trash");

    assert_eq!(
        vault
            .resolve(&alpha.to_string(), false)
            .await
            .expect("id")
            .id,
        alpha
    );
    let ids: Vec<String> = items.iter().map(|i| i.r.id.to_string()).collect();
    let own = &ids[0];
    let unique = (4..own.len())
        .map(|n| &own[..n])
        .find(|p| ids.iter().filter(|i| i.starts_with(p)).count() == 1)
        .expect("some prefix is unique");
    assert_eq!(
        vault.resolve(unique, false).await.expect("prefix").id,
        alpha
    );
    assert_eq!(
        vault
            .resolve(&unique.to_uppercase(), false)
            .await
            .expect("upper-case prefix")
            .id,
        alpha
    );
    let shared: String = ids[0]
        .chars()
        .zip(ids[1].chars())
        .take_while(|(x, y)| x == y)
        .map(|(x, _)| x)
        .collect();
    if shared.len() >= 4 {
        assert!(matches!(
            err(vault.resolve(&shared, false).await),
            Error::Ambiguous { .. }
        ));
    }

    assert_eq!(
        vault.resolve("  aLpHa ", false).await.expect("name").id,
        alpha
    );
    // Names match whole, not in part.
    assert!(matches!(
        err(vault.resolve("Alph", false).await),
        Error::NotFound(_)
    ));

    // Names that differ only by case: the exact spelling is found first.
    assert_eq!(vault.resolve("Beta", false).await.expect("exact").id, beta1);
    assert_eq!(vault.resolve("BETA", false).await.expect("exact").id, beta2);
    let e = err(vault.resolve("beta", false).await);
    assert!(matches!(e, Error::Ambiguous { .. }), "{e:?}");
    match &e {
        Error::Ambiguous { candidates, .. } => {
            assert_eq!(candidates.len(), 2);
            assert!(candidates.iter().any(|c| c.contains(&beta1.to_string())));
            assert!(candidates.iter().any(|c| c.contains(&beta2.to_string())));
        }
        other => panic!("expected Ambiguous, got {other:?}"),
    }

    let e = err(vault.resolve("no such thing", false).await);
    assert!(matches!(e, Error::NotFound(_)), "{e:?}");
    assert!(matches!(
        err(vault.resolve(&Uuid::now_v7().to_string(), false).await),
        Error::NotFound(_)
    ));

    assert_eq!(
        vault.resolve("gamma", false).await.expect("live").id,
        gamma_new
    );
    assert_eq!(
        vault.resolve("gamma", true).await.expect("trashed").id,
        gamma_old
    );
    // Only in the trash: still found.
    assert_eq!(
        vault.resolve("delta", false).await.expect("trash").id,
        delta
    );
    assert_eq!(
        vault
            .resolve(&gamma_old.to_string(), false)
            .await
            .expect("id")
            .id,
        gamma_old
    );
}

// 11 ------------------------------------------------------------------------

// A new master password replaces the old one; items and keys are untouched.
#[tokio::test]
async fn change_password_rewraps_only_the_account_key() {
    let (_tmp, dir, mut vault) = new_vault().await;
    let item = vault
        .add(login("Mail", "me", "pw-mail"))
        .await
        .expect("add");
    let db_items = |pool: sqlx::SqlitePool| async move {
        sqlx::query("SELECT id, version, wrapped_key, overview, details FROM items")
            .fetch_all(&pool)
            .await
            .expect("items")
            .iter()
            .map(|r| {
                (
                    r.get::<String, _>(0),
                    r.get::<i64, _>(1),
                    r.get::<Vec<u8>, _>(2),
                    r.get::<Vec<u8>, _>(3),
                    r.get::<Vec<u8>, _>(4),
                )
            })
            .collect::<Vec<_>>()
    };
    let before = db_items(vault.store().pool().clone()).await;

    assert!(matches!(
        vault.change_password(pw(""), None).await,
        Err(Error::Invalid(_))
    ));
    let bad = KdfParams {
        memory_kib: KdfParams::CEILING.memory_kib * 2,
        ..FAST
    };
    assert!(matches!(
        vault.change_password(pw("x"), Some(bad)).await,
        Err(Error::BadKeyInput(_))
    ));
    assert_eq!(vault.kdf(), FAST);

    let new_kdf = KdfParams {
        memory_kib: 128,
        iterations: 2,
        parallelism: 1,
    };
    vault
        .change_password(pw("new password"), Some(new_kdf))
        .await
        .expect("change");
    assert_eq!(vault.kdf(), new_kdf);
    assert_eq!(db_items(vault.store().pool().clone()).await, before);
    vault.close().await;

    let e = err(open(&dir, PASSWORD).await);
    assert!(matches!(e, Error::WrongPassword), "{e:?}");
    let mut vault = open(&dir, "new password").await.expect("new password");
    assert_eq!(vault.kdf(), new_kdf);
    let back = vault.item(item.r.id).await.expect("item");
    assert_eq!(back.details, item.details);
    assert_eq!(back.overview, item.overview);

    // Without new parameters, the current ones are kept.
    vault
        .change_password(pw("third"), None)
        .await
        .expect("change");
    vault.close().await;
    assert_eq!(open(&dir, "third").await.expect("third").kdf(), new_kdf);
}

// 12 ------------------------------------------------------------------------

// Two handles (two processes) on one vault: adds both land, and a stale edit
// is refused as a conflict instead of overwriting the other.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_handles_never_lose_writes() {
    let (_tmp, dir, vault) = new_vault().await;
    vault.close().await;
    let mut a = open(&dir, PASSWORD).await.expect("a");
    let mut b = open(&dir, PASSWORD).await.expect("b");

    let (ra, rb) = tokio::join!(
        a.add(login("From A", "a", "pa")),
        b.add(login("From B", "b", "pb"))
    );
    let (ia, ib) = (ra.expect("a adds"), rb.expect("b adds"));
    a.close().await;
    b.close().await;
    let mut check = open(&dir, PASSWORD).await.expect("reopen");
    let (entries, _) = check.entries().await.expect("entries");
    assert_eq!(entries.len(), 2);
    check.item(ia.r.id).await.expect("a's item");
    check.item(ib.r.id).await.expect("b's item");
    check.close().await;

    // Both handles read version 1, then both save.
    let id = ia.r.id;
    let mut a = open(&dir, PASSWORD).await.expect("a");
    let mut b = open(&dir, PASSWORD).await.expect("b");
    let item_a = a
        .open_record(&a.load_record(id).await.expect("rec"))
        .await
        .expect("open");
    let item_b = b
        .open_record(&b.load_record(id).await.expect("rec"))
        .await
        .expect("open");
    let patch_a = ItemPatch {
        name: Some("Renamed by A".into()),
        ..ItemPatch::default()
    };
    let patch_b = ItemPatch {
        set_fields: vec![Field::new(label::USERNAME, "user-from-b", FieldKind::Text)],
        ..ItemPatch::default()
    };
    let (ov, de) = apply_patch(&item_a, &patch_a).expect("patch");
    a.save_version(&item_a, ov, de)
        .await
        .expect("first writer wins");
    let (ov, de) = apply_patch(&item_b, &patch_b).expect("patch");
    let e = err(b.save_version(&item_b, ov, de).await);
    assert!(matches!(e, Error::Conflict(got) if got == id), "{e:?}");
    // The loser retries on top of the winner: both changes are kept.
    let merged = b.update(id, &patch_b).await.expect("retry");
    assert_eq!(merged.r.version, 3);
    assert_eq!(merged.overview.name, "Renamed by A");
    assert_eq!(value(&merged, label::USERNAME), "user-from-b");
    assert_eq!(
        a.item(id).await.expect("a sees it").overview.name,
        "Renamed by A"
    );

    // A real race: at most one loses, and whatever was saved is kept.
    let patch_a = ItemPatch {
        tags: Some(vec!["race-a".into()]),
        ..ItemPatch::default()
    };
    let patch_b = ItemPatch {
        folder: Some(Some("race-b".into())),
        ..ItemPatch::default()
    };
    let (ra, rb) = tokio::join!(a.update(id, &patch_a), b.update(id, &patch_b));
    let saved: Vec<Item> = [ra, rb]
        .into_iter()
        .filter_map(|r| match r {
            Ok(item) => Some(item),
            Err(Error::Conflict(_)) => None,
            Err(e) => panic!("unexpected error {e:?}"),
        })
        .collect();
    assert!(!saved.is_empty(), "one writer must succeed");
    for s in &saved {
        let kept = a.item_version(id, s.r.version).await.expect("kept");
        assert_eq!(kept.overview, s.overview);
    }
    let history = a.history(id).await.expect("history");
    assert_eq!(history.len(), 3 + saved.len());
    assert!(history.iter().all(|v| v.damaged.is_none()));
}

// 13 ------------------------------------------------------------------------

// No plaintext the user typed ever reaches the vault files, in any version.
#[tokio::test]
async fn plaintext_never_reaches_the_disk() {
    let (_tmp, dir, mut vault) = new_vault().await;
    let secrets = [
        "ZEBRA-NAME-7731",
        "ZEBRA-USER-7731",
        "zebra-url-7731.example",
        "ZEBRA-TAG-7731",
        "ZEBRA-FOLDER-7731",
        "ZEBRA-NOTES-7731",
        "ZEBRA-PASS-7731",
        "ZEBRA-EDIT-7731",
        "Personal",
    ];
    let mut d = draft(
        ItemKind::Login,
        "ZEBRA-NAME-7731",
        vec![
            Field::new(label::USERNAME, "ZEBRA-USER-7731", FieldKind::Text),
            Field::new(label::PASSWORD, "ZEBRA-PASS-7731", FieldKind::Secret),
            Field::new(
                label::URL,
                "https://zebra-url-7731.example/login",
                FieldKind::Url,
            ),
            Field::new(label::NOTES, "ZEBRA-NOTES-7731", FieldKind::Multiline),
        ],
    );
    d.tags = vec!["ZEBRA-TAG-7731".into()];
    d.folder = Some("ZEBRA-FOLDER-7731".into());
    let id = vault.add(d).await.expect("add").r.id;
    vault.trash(id).await.expect("trash");
    vault
        .update(
            id,
            &ItemPatch {
                set_fields: vec![Field::new("extra", "ZEBRA-EDIT-7731", FieldKind::Text)],
                ..ItemPatch::default()
            },
        )
        .await
        .expect("edit");

    let kit = vault.emergency_kit();
    let secret_key = std::fs::read_to_string(dir.join(files::SECRET_KEY_FILE)).expect("key");
    assert!(kit.contains(secret_key.trim()), "kit has the Secret Key");
    assert!(kit.contains(&vault.account_id().to_string()));
    assert!(!kit.contains(PASSWORD));

    let scan = |when: &str| {
        let found = dir_files(&dir);
        assert!(found.iter().any(|(n, _)| n == crate::store::DB_FILE));
        for (name, bytes) in &found {
            for s in secrets {
                assert!(!has(bytes, s.as_bytes()), "{s} in {name} ({when})");
            }
            assert!(!has(bytes, PASSWORD.as_bytes()), "password in {name}");
        }
        found.len()
    };
    // While open (the WAL holds the latest writes) and after closing.
    assert!(scan("open") >= 3, "vault.db, its WAL files and secret.key");
    vault.close().await;
    scan("closed");
}

// 14 ------------------------------------------------------------------------

// Invalid input is refused with exit code 2 and nothing is saved.
#[tokio::test]
async fn invalid_drafts_are_refused_and_not_saved() {
    let (_tmp, _dir, mut vault) = new_vault().await;
    let mut spaced_tag = login("Tagged", "u", "p");
    spaced_tag.tags = vec!["two words".into()];
    let bad_totp = draft(
        ItemKind::Login,
        "Otp",
        vec![Field::new(
            label::TOTP,
            "not a base32 seed!",
            FieldKind::Totp,
        )],
    );
    let no_label = draft(
        ItemKind::Login,
        "Unlabelled",
        vec![Field::new("  ", "value", FieldKind::Text)],
    );
    for bad in [login("   ", "u", "p"), spaced_tag, bad_totp, no_label] {
        let name = bad.name.clone();
        let e = err(vault.add(bad).await);
        assert!(
            matches!(e, Error::Invalid(_) | Error::NoName),
            "{name:?}: {e:?}"
        );
    }
    // A batch with one bad draft saves none of them.
    let e = err(vault
        .add_many(vec![login("Fine", "u", "p"), login("", "u", "p")])
        .await);
    assert!(matches!(e, Error::NoName), "{e:?}");
    assert!(vault.entries().await.expect("entries").0.is_empty());

    let id = vault.add(login("Good", "u", "p")).await.expect("add").r.id;
    for patch in [
        ItemPatch {
            name: Some(String::new()),
            ..ItemPatch::default()
        },
        ItemPatch {
            tags: Some(vec!["a b".into()]),
            ..ItemPatch::default()
        },
        ItemPatch {
            set_fields: vec![Field::new(label::TOTP, "@@@", FieldKind::Totp)],
            ..ItemPatch::default()
        },
        ItemPatch {
            remove_fields: vec!["no such field".into()],
            ..ItemPatch::default()
        },
    ] {
        assert!(matches!(
            vault.update(id, &patch).await,
            Err(Error::Invalid(_) | Error::NoName)
        ));
    }
    let vault = reopen(vault).await;
    let item = vault.item(id).await.expect("item");
    assert_eq!(item.r.version, 1);
    assert!(vault.store().history(id).await.expect("history").is_empty());
    assert_eq!(
        futures::StreamExt::collect::<Vec<_>>(vault.store().overview_stream())
            .await
            .len(),
        1
    );
}

// 15 ------------------------------------------------------------------------

// A bare base32 TOTP seed is stored as a canonical otpauth:// URI.
#[tokio::test]
async fn totp_seeds_are_stored_canonically() {
    let (_tmp, _dir, mut vault) = new_vault().await;
    let d = draft(
        ItemKind::Login,
        "2FA",
        vec![Field::new(
            label::TOTP,
            "jbsw y3dp ehpk 3pxp",
            FieldKind::Totp,
        )],
    );
    let added = vault.add(d).await.expect("add");
    let uri = value(&added, label::TOTP).to_owned();
    assert!(uri.starts_with("otpauth://totp/"), "{uri}");
    assert!(uri.contains(&format!("secret={TOTP_SEED}")), "{uri}");
    assert!(added.overview.has_totp);
    let vault = reopen(vault).await;
    let back = vault.item(added.r.id).await.expect("item");
    assert_eq!(value(&back, label::TOTP), uri);
    // The canonical form reads back unchanged.
    assert_eq!(
        crate::crypto::totp::Totp::parse(&uri)
            .expect("parses")
            .to_uri(),
        uri
    );
}

/// Names of the search hits for `q`, best first.
async fn names(vault: &mut Session, q: &str) -> Vec<String> {
    let q = Query::parse(q).expect("query");
    let hits = vault.search(&q, 1000).await.expect("search").hits;
    let (entries, _) = vault.entries().await.expect("entries");
    hits.iter()
        .map(|h| entries[h.index].overview.name.clone())
        .collect()
}

// 16 ------------------------------------------------------------------------

// Search through the engine ranks and filters, and follows renames.
#[tokio::test]
async fn search_ranks_filters_and_follows_edits() {
    let (_tmp, _dir, mut vault) = new_vault().await;
    let items = vault
        .add_many(vec![
            login("Alpha", "alice", "1"),
            login("GitHub", "octocat", "2"),
            login("GitLab", "tanuki", "3"),
            note("Git notes", "rebase tips"),
            draft(ItemKind::Card, "Bank", vec![]),
        ])
        .await
        .expect("add");
    let github = items[1].r.id;
    let mut vault = reopen(vault).await;

    // Edits made before the first search must reach the search index too.
    vault.entries().await.expect("entries");
    for name in ["Interim", "Octo Hub"] {
        vault
            .update(
                github,
                &ItemPatch {
                    name: Some(name.into()),
                    ..ItemPatch::default()
                },
            )
            .await
            .expect("rename");
    }

    let found = names(&mut vault, "git kind:login").await;
    assert_eq!(
        found,
        vec!["GitLab"],
        "the renamed item's name no longer matches"
    );
    assert_eq!(names(&mut vault, "alpha").await, vec!["Alpha"]);
    assert!(names(&mut vault, "interim").await.is_empty());
    assert!(names(&mut vault, "github").await.is_empty());
    assert_eq!(names(&mut vault, "octo hub").await[0], "Octo Hub");
    // The username is searchable; the password never is.
    assert_eq!(names(&mut vault, "tanuki").await, vec!["GitLab"]);
    assert_eq!(names(&mut vault, "kind:note").await, vec!["Git notes"]);

    vault
        .update(
            github,
            &ItemPatch {
                name: Some("GitHub".into()),
                ..ItemPatch::default()
            },
        )
        .await
        .expect("rename back");
    assert_eq!(
        names(&mut vault, "git kind:login").await,
        vec!["GitHub", "GitLab"]
    );
    assert_eq!(names(&mut vault, "github").await[0], "GitHub");
    let all_git = names(&mut vault, "git").await;
    assert_eq!(all_git.len(), 3);
    assert!(all_git.contains(&"Git notes".to_owned()));
    assert!(!all_git.contains(&"Bank".to_owned()));
    vault.trash(github).await.expect("trash");
    assert_eq!(names(&mut vault, "git kind:login").await, vec!["GitLab"]);
    assert_eq!(names(&mut vault, "git is:trash").await, vec!["GitHub"]);
}

// 17 ------------------------------------------------------------------------

// Vault files are private, and a directory others can write to is refused.
#[tokio::test]
async fn vault_files_are_private() {
    let (_tmp, dir, mut vault) = new_vault().await;
    vault.add(login("X", "x", "x")).await.expect("add");
    assert_eq!(mode(&dir), 0o700);
    assert_eq!(mode(&dir.join(crate::store::DB_FILE)), 0o600);
    assert_eq!(mode(&dir.join(files::SECRET_KEY_FILE)), 0o600);
    for wal in ["vault.db-wal", "vault.db-shm"] {
        let p = dir.join(wal);
        if p.exists() {
            assert_eq!(mode(&p), 0o600, "{wal}");
        }
    }
    vault.close().await;

    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).expect("chmod");
    let e = err(open(&dir, PASSWORD).await);
    assert!(matches!(e, Error::Permissions { .. }), "{e:?}");
    assert!(e.to_string().contains("chmod 700"), "{e}");
    // init on the same directory is refused for the same reason.
    assert!(matches!(
        err(Session::init(&dir, pw(PASSWORD), FAST).await),
        Error::Permissions { .. }
    ));
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).expect("chmod");
    open(&dir, PASSWORD).await.expect("unlocks once fixed");
}

// A missing vault is reported as such, not as a wrong password.
#[tokio::test]
async fn unlocking_an_empty_directory_says_there_is_no_vault() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let e = err(open(tmp.path(), PASSWORD).await);
    assert!(matches!(e, Error::NoVault(_)), "{e:?}");
    assert!(!vault_exists(tmp.path()).await.expect("exists"));
    assert!(matches!(
        err(Session::init(tmp.path(), pw(""), FAST).await),
        Error::Invalid(_)
    ));
    assert!(
        !tmp.path().join(crate::store::DB_FILE).exists(),
        "a refused init writes nothing"
    );
}

// Edits made after listing but before the first search keep the search index
// aligned with the list (every entry stays findable by its own name).
#[tokio::test]
async fn search_index_stays_aligned_with_edits_before_first_search() {
    let (_tmp, _dir, mut vault) = new_vault().await;
    let items = vault
        .add_many(vec![login("Alpha", "a", "1"), login("Beta", "b", "2")])
        .await
        .expect("add");
    let beta = items[1].r.id;
    let mut vault = reopen(vault).await;
    vault.entries().await.expect("entries");
    for name in ["Gamma", "Delta"] {
        vault
            .update(
                beta,
                &ItemPatch {
                    name: Some(name.into()),
                    ..ItemPatch::default()
                },
            )
            .await
            .expect("rename");
    }
    assert_eq!(names(&mut vault, "alpha").await, vec!["Alpha"]);
    assert_eq!(names(&mut vault, "delta").await, vec!["Delta"]);
    assert!(names(&mut vault, "gamma").await.is_empty());
}

#[tokio::test]
async fn check_draft_names_the_part_that_add_would_refuse() {
    let (_tmp, _dir, mut vault) = new_vault().await;
    let ok = login("GitHub", "alice", "pw");
    assert_eq!(check_draft(&ok), Ok(()));
    let mut tag = login("GitHub", "alice", "pw");
    tag.tags = vec!["my tag".into()];
    let mut totp = login("GitHub", "alice", "pw");
    totp.fields
        .push(Field::new(label::TOTP, "not base32!", FieldKind::Totp));
    let mut long_folder = login("GitHub", "alice", "pw");
    long_folder.folder = Some("f".repeat(MAX_LABEL + 1));
    for (d, part) in [
        (login("  ", "alice", "pw"), ItemPart::Name),
        (tag, ItemPart::Tags),
        (totp, ItemPart::Field(label::TOTP.into())),
        (long_folder, ItemPart::Folder),
    ] {
        let (got, msg) = check_draft(&d).expect_err("invalid");
        assert_eq!(got, part, "{msg}");
        // The same message as the engine's own refusal.
        assert_eq!(err(vault.add(d).await).to_string(), msg);
    }
}

#[tokio::test]
async fn check_password_accepts_only_the_master_password() {
    let (_tmp, _dir, vault) = new_vault().await;
    vault.check_password(pw(PASSWORD)).await.expect("right");
    assert!(matches!(
        vault.check_password(pw("wrong")).await,
        Err(Error::WrongPassword)
    ));
}

// Several vaults on one machine are several devices: their default names differ.
#[test]
fn default_device_names_differ_on_one_machine() {
    let names: std::collections::HashSet<String> = (0..4)
        .map(|_| crate::engine::remote::default_device_name())
        .collect();
    assert!(names.len() > 1, "{names:?}");
    for n in &names {
        let (_, suffix) = n.rsplit_once('-').expect("a suffix");
        assert_eq!(suffix.len(), 4, "{n}");
    }
}

/// Writes the header as an openk from before authenticated local state
/// did: the account key in the server's (legacy) wrap, no MAC.
async fn make_legacy_header(vault: &Session) -> Vec<u8> {
    let mut h = vault.header.clone();
    h.wrapped_account_key = state::server_wrap(&vault.unlock_key, &h, &vault.account_key);
    h.mac = None;
    let bytes = serde_json::to_vec(&h).expect("json");
    set_raw_header(vault.store().pool(), &bytes).await;
    bytes
}

// A vault made before local state was authenticated (legacy wrap, no MACs,
// the marker schema 5 sets) is adopted on its first unlock, exactly once;
// after that a missing MAC is tampering, marker or not.
#[tokio::test]
async fn an_old_vault_gets_its_state_macs_once() {
    let (_tmp, dir, vault) = new_vault().await;
    let stripped = make_legacy_header(&vault).await;
    vault
        .store()
        .set_meta(store::ADOPT_MACS_KEY, Some(b"\x01"))
        .await
        .expect("marker");
    vault.close().await;
    let vault = open(&dir, PASSWORD).await.expect("adopted");
    assert!(
        vault
            .store()
            .meta(store::ADOPT_MACS_KEY)
            .await
            .expect("meta")
            .is_none()
    );
    assert!(
        vault
            .store()
            .header()
            .await
            .expect("h")
            .expect("h")
            .mac
            .is_some()
    );
    // The adopted header is in the local wrap: the old bytes, or a planted
    // marker with the MAC stripped, do not pass for an old vault again.
    let adopted = raw_header(vault.store().pool()).await;
    assert_ne!(adopted, stripped);
    let mut h: serde_json::Value = serde_json::from_slice(&adopted).expect("json");
    h.as_object_mut().expect("object").remove("mac");
    set_raw_header(vault.store().pool(), &serde_json::to_vec(&h).expect("json")).await;
    vault
        .store()
        .set_meta(store::ADOPT_MACS_KEY, Some(b"\x01"))
        .await
        .expect("marker");
    vault.close().await;
    assert!(matches!(
        open(&dir, PASSWORD).await,
        Err(Error::Tampered(_))
    ));
}

// The attack on the upgrade marker: someone who can write vault.db plants
// the marker, strips the MACs and edits the remote record's server URL. A
// header in the local wrap is never adopted: refused as tampered, nothing sent.
#[tokio::test]
async fn a_planted_upgrade_marker_does_not_pass_an_edited_vault() {
    let (_tmp, dir, vault) = new_vault().await;
    let mut h: serde_json::Value =
        serde_json::from_slice(&raw_header(vault.store().pool()).await).expect("json");
    h.as_object_mut().expect("object").remove("mac");
    set_raw_header(vault.store().pool(), &serde_json::to_vec(&h).expect("json")).await;
    vault
        .store()
        .set_meta(store::ADOPT_MACS_KEY, Some(b"\x01"))
        .await
        .expect("marker");
    vault.close().await;
    assert!(matches!(
        open(&dir, PASSWORD).await,
        Err(Error::Tampered(p)) if p.contains("header")
    ));
}

// A vault adopted by the previous version (MACs, but the header still in the
// legacy wrap) is moved to the local wrap on its next unlock, with valid
// MACs; after that, the marker planted with stripped MACs is refused.
#[tokio::test]
async fn a_legacy_wrap_with_valid_macs_moves_to_the_local_wrap() {
    let (_tmp, dir, vault) = new_vault().await;
    let mut h = vault.header.clone();
    h.wrapped_account_key = state::server_wrap(&vault.unlock_key, &h, &vault.account_key);
    state::seal_header(&vault.state_key, &mut h);
    vault
        .store()
        .replace_header(&vault.header, &h)
        .await
        .expect("legacy");
    vault.close().await;
    let vault = open(&dir, PASSWORD).await.expect("opens");
    let now = vault.store().header().await.expect("h").expect("h");
    assert_ne!(now.wrapped_account_key, h.wrapped_account_key);
    assert!(state::open_account_key(&vault.unlock_key, &now).is_ok_and(|(_, legacy)| !legacy));
    let mut raw: serde_json::Value =
        serde_json::from_slice(&raw_header(vault.store().pool()).await).expect("json");
    raw.as_object_mut().expect("object").remove("mac");
    set_raw_header(
        vault.store().pool(),
        &serde_json::to_vec(&raw).expect("json"),
    )
    .await;
    vault
        .store()
        .set_meta(store::ADOPT_MACS_KEY, Some(b"\x01"))
        .await
        .expect("marker");
    vault.close().await;
    assert!(matches!(
        open(&dir, PASSWORD).await,
        Err(Error::Tampered(_))
    ));
}

// Sync state written before it was authenticated (no MAC in its row, the
// marker the migration sets) is adopted on the next unlock; a MAC that does
// not fit, or a stripped one after that, is tampering.
#[tokio::test]
async fn old_sync_state_rows_are_adopted_once_then_checked() {
    let (_tmp, dir, vault) = new_vault().await;
    let vault_id = vault.vaults[0].id;
    let progress = store::SyncOp::Progress {
        vault_id,
        cursor: 7,
        counter: 3,
        manifest_id: Some([9; 32]),
        complete: true,
    };
    // As an older openk left it: progress, no MAC.
    vault
        .store()
        .apply_sync(std::slice::from_ref(&progress), &|_, _| Vec::new())
        .await
        .expect("old row");
    sqlx::query("UPDATE sync_state SET mac = NULL")
        .execute(vault.store().pool())
        .await
        .expect("strip");
    make_legacy_header(&vault).await;
    vault.close().await;
    assert!(matches!(
        open(&dir, PASSWORD).await,
        Err(Error::Tampered(_))
    ));
    let vault = open_with_marker(&dir).await;
    let state = vault.store().sync_state(vault_id).await.expect("state");
    assert_eq!((state.cursor, state.counter), (7, 3));
    // Written by the engine from now on, and checked.
    vault
        .store()
        .apply_sync(&[progress], &vault.sync_sealer())
        .await
        .expect("sealed");
    vault.close().await;
    let vault = open(&dir, PASSWORD).await.expect("opens");
    sqlx::query("UPDATE sync_state SET counter = 2")
        .execute(vault.store().pool())
        .await
        .expect("lower");
    vault.close().await;
    assert!(
        matches!(open(&dir, PASSWORD).await, Err(Error::Tampered(p)) if p.contains("sync state"))
    );
}

/// Opens `dir` after setting the upgrade marker, as the migration does
/// (the header must be in the legacy wrap: [`make_legacy_header`]).
async fn open_with_marker(dir: &Path) -> Session {
    let store = Store::open(dir, false).await.expect("store");
    store
        .set_meta(store::ADOPT_MACS_KEY, Some(b"\x01"))
        .await
        .expect("marker");
    drop(store);
    open(dir, PASSWORD).await.expect("adopted")
}
