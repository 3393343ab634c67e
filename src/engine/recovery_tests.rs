//! Account recovery against a real server: the code survives account-key
//! rotations (each seals the new key to it), a recovery key the server
//! swaps in is refused before anything is sealed to it, and a recovery
//! leaves the old credentials and sessions useless.

use sqlx::Row;

use super::recovery::recover;
use super::shared_vaults_tests::{password_of, sync, world};
use super::sync_tests::server_pool;
use super::test_fixtures::{login, password};
use super::{Error, Session};
use crate::crypto::recovery::RecoveryCode;
use crate::crypto::{self, SecretString};

fn new_password() -> SecretString {
    SecretString::from("a new password after recovery".to_owned())
}

#[tokio::test]
async fn the_code_opens_the_account_key_after_rotations_and_recovery_rotates_it_again() {
    let mut w = world().await;
    let id = w
        .ana
        .add(login("Bank", "me", "v1"))
        .await
        .expect("add")
        .r
        .id;
    sync(&mut w.ana).await;
    let code = w.ana.setup_recovery().await.expect("setup");
    let status = w.ana.verify_recovery_code(&code).await.expect("verify");
    assert_eq!(status.account_key_version, 1);
    assert!(matches!(
        w.ana.verify_recovery_code(&RecoveryCode::generate()).await,
        Err(Error::WrongRecoveryCode)
    ));
    w.ana.rotate_account_key().await.expect("rotate");
    w.ana.rotate_account_key().await.expect("rotate again");
    let status = w
        .ana
        .recovery_status()
        .await
        .expect("status")
        .expect("set up");
    assert_eq!(status.account_key_version, 3);
    let rotated = w.ana.account_key.duplicate();

    let dir = w.tmp.path().join("rescue");
    let recovered = recover(
        &dir,
        &w.server.url,
        "ana@example.org",
        &code,
        new_password(),
        true,
        "rescue",
    )
    .await
    .expect("recover");
    let mut s = recovered.session;
    sync(&mut s).await;
    assert_eq!(password_of(&s.item(id).await.expect("item")), "v1");
    // A new account key again, and the code is used up.
    assert_ne!(s.account_key.expose(), rotated.expose());
    assert!(s.recovery_status().await.expect("status").is_none());
    let again = recover(
        &w.tmp.path().join("again"),
        &w.server.url,
        "ana@example.org",
        &code,
        new_password(),
        true,
        "again",
    )
    .await;
    assert!(
        matches!(again, Err(Error::WrongRecoveryCode)),
        "{:?}",
        again.map(|_| "recovered")
    );
    // The old device's session ended and its password is no longer the account's.
    let err = w.ana.relogin().await.expect_err("old credentials");
    assert!(
        matches!(
            err,
            Error::PasswordChanged | Error::WrongPassword | Error::SessionEnded
        ),
        "{err:?}"
    );
    // The new credentials work on another device; the old password does not.
    let fresh = super::remote::login(
        &w.tmp.path().join("fresh"),
        &w.server.url,
        "ana@example.org",
        new_password(),
        &recovered.secret_key,
        true,
        "fresh",
    )
    .await
    .expect("login with the new credentials");
    fresh.close().await;
    let old = super::remote::login(
        &w.tmp.path().join("old"),
        &w.server.url,
        "ana@example.org",
        password(),
        &w.ana.secret_key_display(),
        true,
        "old",
    )
    .await;
    assert!(
        matches!(old, Err(Error::WrongPassword)),
        "{:?}",
        old.map(|_| "signed in")
    );
    let dir = s.dir().to_path_buf();
    s.close().await;
    let s = Session::unlock(&dir, new_password(), None)
        .await
        .expect("unlock with the new password");
    s.close().await;
}

/// The server swaps the recovery public key for one of its own: the next
/// rotation checks the identity signature, refuses, and seals nothing.
#[tokio::test]
async fn a_recovery_key_the_server_swaps_in_is_refused_at_rotation() {
    let mut w = world().await;
    sync(&mut w.ana).await;
    w.ana.setup_recovery().await.expect("setup");
    let pool = server_pool(&w.db).await;
    let theirs = RecoveryCode::generate().keys().public;
    sqlx::query("UPDATE account_recovery SET public_key = ?")
        .bind(theirs.as_slice())
        .execute(&pool)
        .await
        .expect("swap");
    let before = w.ana.account_key.duplicate();
    let err = w.ana.rotate_account_key().await.expect_err("refused");
    assert!(matches!(err, Error::Untrusted(_)), "{err:?}");
    assert_eq!(w.ana.account_key.expose(), before.expose());
    let row = sqlx::query("SELECT account_key_version FROM account_recovery")
        .fetch_one(&pool)
        .await
        .expect("row");
    assert_eq!(row.get::<i64, _>("account_key_version"), 1);
    assert!(matches!(
        w.ana.recovery_status().await,
        Err(Error::Untrusted(_))
    ));
}

/// The server hands the code's holder an account key of its own, sealed to
/// the right recovery key: it does not open the account's private keys, so
/// the recovery stops before any credential changes.
#[tokio::test]
async fn a_sealed_key_the_server_makes_up_changes_nothing() {
    let mut w = world().await;
    sync(&mut w.ana).await;
    let code = w.ana.setup_recovery().await.expect("setup");
    let pool = server_pool(&w.db).await;
    let forged = crypto::recovery::seal_account_key(
        &code.keys().public,
        w.ana.account_id(),
        1,
        &crypto::Key::random(),
    )
    .expect("seal");
    sqlx::query("UPDATE account_recovery SET sealed_account_key = ?")
        .bind(&forged)
        .execute(&pool)
        .await
        .expect("forge");
    let err = recover(
        &w.tmp.path().join("rescue"),
        &w.server.url,
        "ana@example.org",
        &code,
        new_password(),
        true,
        "rescue",
    )
    .await
    .expect_err("refused");
    assert!(matches!(err, Error::Damaged(_)), "{err:?}");
    // Nothing changed: the old credentials still sign in.
    w.ana.relogin().await.expect("old credentials still work");
}
