//! What the crate's own tests share: the cheapest key derivation, the test
//! password, item drafts, made-up contacts, and a server that swaps an
//! account's keys.

use sqlx::Row as _;
use uuid::Uuid;

use super::contacts::{Contact, Trust};
use super::model::{Field, FieldKind, ItemKind, label};
use super::{ItemDraft, KdfParams, SecretString};
use crate::crypto::{AccountKeyPair, PublicKeys};

/// Argon2id at its cheapest, so that a test vault opens at once. Below the
/// floor on purpose: never for a real vault.
pub(crate) const FAST_KDF: KdfParams = KdfParams {
    memory_kib: 64,
    iterations: 1,
    parallelism: 1,
};

/// The master password of the tests' vaults.
pub(crate) const PASSWORD: &str = "correct horse battery staple";

/// [`PASSWORD`] as the engine takes it.
pub(crate) fn password() -> SecretString {
    SecretString::from(PASSWORD.to_owned())
}

/// A draft of `kind` with these fields, no tags, no folder.
pub(crate) fn draft(kind: ItemKind, name: &str, fields: Vec<Field>) -> ItemDraft {
    ItemDraft {
        kind,
        name: name.to_owned(),
        fields,
        tags: Vec::new(),
        folder: None,
        favorite: false,
    }
}

/// A login draft with a username and a password.
pub(crate) fn login(name: &str, user: &str, password: &str) -> ItemDraft {
    draft(
        ItemKind::Login,
        name,
        vec![
            Field::new(label::USERNAME, user, FieldKind::Text),
            Field::new(label::PASSWORD, password, FieldKind::Secret),
        ],
    )
}

/// The fingerprint of made-up keys `n` (the same on every run).
pub(crate) fn fixed_fingerprint(n: u8) -> String {
    fixed_keys(n).fingerprint()
}

fn fixed_keys(n: u8) -> PublicKeys {
    PublicKeys {
        x25519: [n; 32],
        ed25519: [n ^ 0x5a; 32],
    }
}

/// An account with made-up keys `n`, as a lookup would show it.
pub(crate) fn fixed_contact(email: &str, account_id: Uuid, n: u8, trust: Trust) -> Contact {
    let keys = fixed_keys(n);
    Contact {
        email: email.to_owned(),
        account_id,
        key_version: 1,
        fingerprint: keys.fingerprint(),
        trust,
        keys,
    }
}

/// Makes the server whose SQLite file is `db` hand out other keys for
/// `email`, self-signed by a key pair of its own (what a server that
/// substitutes keys does); the new keys' fingerprint.
pub(crate) async fn swap_identity(db: &std::path::Path, email: &str) -> String {
    let opts = sqlx::sqlite::SqliteConnectOptions::new()
        .filename(db)
        .busy_timeout(std::time::Duration::from_secs(10));
    let pool = sqlx::SqlitePool::connect_with(opts)
        .await
        .expect("server db");
    let row = sqlx::query("SELECT id, client_id FROM accounts WHERE email = ?")
        .bind(email)
        .fetch_one(&pool)
        .await
        .expect("account");
    let account: String = row.get("id");
    let client_id = Uuid::parse_str(&row.get::<String, _>("client_id")).expect("uuid");
    let evil = AccountKeyPair::generate();
    let k = evil.public();
    sqlx::query("UPDATE accounts SET public_x25519 = ?, public_ed25519 = ? WHERE id = ?")
        .bind(k.x25519.as_slice())
        .bind(k.ed25519.as_slice())
        .bind(&account)
        .execute(&pool)
        .await
        .expect("swap");
    sqlx::query("UPDATE identities SET signature = ? WHERE account_id = ?")
        .bind(evil.sign_identity(client_id, email, 1).as_slice())
        .bind(&account)
        .execute(&pool)
        .await
        .expect("re-sign");
    pool.close().await;
    k.fingerprint()
}

/// A new local vault in a temporary directory (kept alive by the first value).
pub(crate) async fn session() -> (tempfile::TempDir, super::Session) {
    let tmp = tempfile::tempdir().expect("tempdir");
    let s = super::Session::init(&tmp.path().join("v"), password(), FAST_KDF)
        .await
        .expect("init");
    (tmp, s)
}
