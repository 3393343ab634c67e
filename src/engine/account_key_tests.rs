//! Rotating the account key against a real server: the rotating device and
//! another device of the account (which takes the key at its next login)
//! keep every item, vault, contact, shared vault and session readable; the
//! old key opens nothing the server holds now; a key the server makes up is
//! refused.

use sqlx::Row;

use super::members::Role;
use super::shared_vaults_tests::{password_of, set_password, sync, world};
use super::sync::SyncOptions;
use super::sync_tests::server_pool;
use super::test_fixtures::{login, password};
use super::{Error, Session};
use crate::crypto::{self, Aad};

/// Everything a device holds still opens, also after a fresh unlock.
async fn still_whole(s: Session, id: uuid::Uuid, want: &str) -> Session {
    assert_eq!(password_of(&s.item(id).await.expect("item")), want);
    assert!(!s.contacts().await.expect("contacts").is_empty());
    assert_eq!(s.vault_list().await.expect("vaults").len(), 2);
    let dir = s.dir().to_path_buf();
    s.close().await;
    let s = Session::unlock(&dir, password(), None)
        .await
        .expect("unlock");
    assert_eq!(password_of(&s.item(id).await.expect("item")), want);
    s
}

#[tokio::test]
async fn the_account_key_rotates_on_every_device() {
    let mut w = world().await;
    let id = w
        .ana
        .add(login("Bank", "me", "v1"))
        .await
        .expect("add")
        .r
        .id;
    let team = w.ana.create_vault("Team").await.expect("team");
    w.ana
        .invite(team, "ben@example.org", Role::Editor, None)
        .await
        .expect("invite");
    w.ben.accept(team).await.expect("accept");
    sync(&mut w.ana).await;
    let mut laptop = w.device(&w.ana, "ana-laptop").await;
    sync(&mut laptop).await;
    laptop.contact("ben@example.org").await.expect("pin ben");
    let old = w.ana.account_key.duplicate();

    w.ana.rotate_account_key().await.expect("rotate");
    assert_ne!(w.ana.account_key.expose(), old.expose());
    // Nothing the server holds opens with the old key any more.
    let pool = server_pool(&w.db).await;
    let rows = sqlx::query(
        "SELECT v.client_id, v.wrapped_key FROM vaults v JOIN accounts a ON a.id = v.account_id \
         WHERE a.email = 'ana@example.org'",
    )
    .fetch_all(&pool)
    .await
    .expect("vaults");
    assert_eq!(rows.len(), 2);
    for r in rows {
        let vault = uuid::Uuid::parse_str(&r.get::<String, _>("client_id")).expect("id");
        let wrapped: Vec<u8> = r.get("wrapped_key");
        let aad = Aad::vault_key(w.ana.account_id(), vault);
        assert!(crypto::unwrap_key(&old, &aad, &wrapped).is_err());
        assert!(crypto::unwrap_key(&w.ana.account_key, &aad, &wrapped).is_ok());
    }
    w.ana
        .update(id, &set_password("after"))
        .await
        .expect("edit");
    sync(&mut w.ana).await;
    w.ana.contact("ben@example.org").await.expect("contacts");
    // Every meta value of a vault that has used every feature is known to
    // the rekey (sealed and re-sealed, or not sealed with the account key).
    w.ana
        .share_link(&id.to_string(), &Default::default())
        .await
        .expect("a share link");
    let keys: Vec<String> = sqlx::query("SELECT key FROM meta")
        .fetch_all(w.ana.store().pool())
        .await
        .expect("meta")
        .iter()
        .map(|r| r.get::<String, _>("key"))
        .collect();
    let known: Vec<&str> = super::account_key::sealed_meta(w.ana.account_id())
        .into_iter()
        .map(|(k, _)| k)
        .chain(super::account_key::OTHER_META.iter().copied())
        .collect();
    for k in &keys {
        assert!(
            known.contains(&k.as_str()),
            "meta {k:?} is not known to the account-key rotation (engine/account_key.rs)"
        );
    }
    let mut ana = still_whole(w.ana, id, "after").await;
    // The security history state was sealed anew too, and says so.
    let h = ana
        .security_history()
        .await
        .expect("the history state opens under the new key");
    assert!(h.verified, "{h:?}");
    assert!(
        h.entries
            .iter()
            .any(|e| e.kind == super::security::SecurityKind::AccountKeyRotated),
        "{h:?}"
    );

    // The laptop's session ended; its next login takes the new key.
    let err = laptop
        .sync(&SyncOptions::default())
        .await
        .map(|_| ())
        .expect_err("session ended");
    assert!(matches!(err, Error::SessionEnded), "{err:?}");
    laptop.relogin().await.expect("login");
    assert_eq!(laptop.account_key.expose(), ana.account_key.expose());
    sync(&mut laptop).await;
    let laptop = still_whole(laptop, id, "after").await;
    laptop.close().await;
    // Ben, a member of Ana's shared vault, is not touched.
    sync(&mut w.ben).await;
    // A device logging in afterwards gets the new key.
    let mut w2 = super::shared_vaults_tests::World { ana, ..w };
    let mut phone = w2.device(&w2.ana, "ana-phone").await;
    sync(&mut phone).await;
    assert_eq!(password_of(&phone.item(id).await.expect("item")), "after");
    sync(&mut w2.ana).await;
}

/// The server hands out a wrapped account key of its own: it does not open
/// with the unlock key, so the device refuses it and changes nothing.
#[tokio::test]
async fn an_account_key_the_server_makes_up_is_refused() {
    let mut w = world().await;
    let id = w
        .ana
        .add(login("Bank", "me", "v1"))
        .await
        .expect("add")
        .r
        .id;
    sync(&mut w.ana).await;
    let pool = server_pool(&w.db).await;
    let forged = crypto::wrap_key(
        &crypto::Key::random(),
        &Aad::account_key(w.ana.account_id(), &[0; 16], &crypto::KdfParams::FLOOR),
        &crypto::Key::random(),
    );
    sqlx::query("UPDATE accounts SET wrapped_account_key = ? WHERE email = 'ana@example.org'")
        .bind(&forged)
        .execute(&pool)
        .await
        .expect("forge");
    let before = w.ana.account_key.duplicate();
    let err = w.ana.relogin().await.expect_err("refused");
    assert!(matches!(err, Error::Untrusted(_)), "{err:?}");
    assert_eq!(w.ana.account_key.expose(), before.expose());
    assert_eq!(password_of(&w.ana.item(id).await.expect("item")), "v1");
}

/// The Secret Key rotates: the device that did it unlocks with the new one
/// (the file), the old one opens nothing, another device gets in with the
/// password and the new Secret Key, and a stale pending key changes nothing.
#[tokio::test]
async fn the_secret_key_rotates_and_other_devices_take_it_with_the_new_kit() {
    let mut w = world().await;
    let id = w
        .ana
        .add(login("Bank", "me", "v1"))
        .await
        .expect("add")
        .r
        .id;
    sync(&mut w.ana).await;
    let laptop = w.device(&w.ana, "ana-laptop").await;
    let laptop_dir = laptop.dir().to_path_buf();
    laptop.close().await;
    let old_key = w.ana.secret_key_display().to_string();
    let new_key = w
        .ana
        .rotate_secret_key(password())
        .await
        .expect("rotate")
        .to_string();
    assert_ne!(old_key, new_key);
    let dir = w.ana.dir().to_path_buf();
    assert!(!dir.join(super::files::NEXT_SECRET_KEY_FILE).exists());
    let file = std::fs::read_to_string(dir.join(super::files::SECRET_KEY_FILE)).expect("file");
    assert_eq!(file.trim(), new_key);
    w.ana.close().await;
    let mut ana = Session::unlock(&dir, password(), None)
        .await
        .expect("unlock");
    sync(&mut ana).await;
    assert_eq!(password_of(&ana.item(id).await.expect("item")), "v1");

    // The laptop: its password still opens it here, the server says no;
    // with the new Secret Key it takes the change.
    let mut laptop = Session::unlock(&laptop_dir, password(), None)
        .await
        .expect("local unlock");
    let err = laptop.relogin().await.expect_err("changed");
    assert!(matches!(err, Error::PasswordChanged), "{err:?}");
    laptop.close().await;
    let wrong =
        Session::take_changed_credentials(&laptop_dir, password(), &old_key, Default::default())
            .await;
    assert!(wrong.is_err(), "the old Secret Key does not take it");
    let options = super::UnlockOptions {
        confirmed_server: Some(w.server.url.clone()),
        allow_weak_kdf: true,
    };
    let wrong =
        Session::take_changed_credentials(&laptop_dir, password(), &old_key, options.clone()).await;
    assert!(
        matches!(wrong, Err(Error::WrongPassword)),
        "{:?}",
        wrong.err()
    );
    let mut laptop = Session::take_changed_credentials(&laptop_dir, password(), &new_key, options)
        .await
        .expect("take it");
    sync(&mut laptop).await;
    assert_eq!(password_of(&laptop.item(id).await.expect("item")), "v1");
    let file =
        std::fs::read_to_string(laptop_dir.join(super::files::SECRET_KEY_FILE)).expect("file");
    assert_eq!(file.trim(), new_key);
    laptop.close().await;
    let laptop = Session::unlock(&laptop_dir, password(), None)
        .await
        .expect("unlock with the new file");
    laptop.close().await;
    ana.close().await;
    // A rotation that stopped after the header took the new key, before
    // the file did: the pending key opens the vault and becomes the file.
    std::fs::write(
        dir.join(super::files::SECRET_KEY_FILE),
        format!("{old_key}\n"),
    )
    .expect("old");
    super::files::write_private_file(
        &dir.join(super::files::NEXT_SECRET_KEY_FILE),
        format!("{new_key}\n").as_bytes(),
        false,
    )
    .expect("next");
    let ana = Session::unlock(&dir, password(), None)
        .await
        .expect("the pending key opens it");
    ana.close().await;
    let file = std::fs::read_to_string(dir.join(super::files::SECRET_KEY_FILE)).expect("file");
    assert_eq!(file.trim(), new_key);
    assert!(!dir.join(super::files::NEXT_SECRET_KEY_FILE).exists());
}
