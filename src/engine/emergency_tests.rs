//! Emergency access against a real server (its minimum wait is 1 s in
//! tests): a denied request releases nothing; a request that waits opens
//! the owner's items to the contact; the owner's account-key rotations
//! re-seal the key, so a released grant still opens everything; a grant
//! whose box or signature the server altered is refused.

use sqlx::Row;

use super::emergency::EmergencyRole;
use super::shared_vaults_tests::{password_of, sync, world};
use super::sync_tests::server_pool;
use super::test_fixtures::login;
use super::{Error, Session};
use crate::crypto::SecretString;

const WAIT: u64 = 1;

async fn wait_out() {
    tokio::time::sleep(std::time::Duration::from_millis(1200)).await;
}

async fn add_synced(s: &mut Session, name: &str, pw: &str) -> uuid::Uuid {
    let id = s.add(login(name, "me", pw)).await.expect("add").r.id;
    sync(s).await;
    id
}

#[tokio::test]
async fn a_denied_request_releases_nothing_and_a_waited_one_opens_the_items() {
    let mut w = world().await;
    add_synced(&mut w.ana, "Bank", "bank-pw").await;
    let (ben, g) = w
        .ana
        .emergency_grant("ben@example.org", EmergencyRole::View, WAIT, None)
        .await
        .expect("grant");
    assert_eq!(ben.email, "ben@example.org");
    assert_eq!(g.state, "granted");
    // A wrong fingerprint: nothing granted (and one grant per contact).
    let again = w
        .ana
        .emergency_grant("ben@example.org", EmergencyRole::View, WAIT, Some("1234"))
        .await;
    assert!(
        matches!(again, Err(Error::FingerprintMismatch { .. })),
        "{again:?}"
    );

    let held = w.ben.emergency_grants().await.expect("ls");
    assert_eq!(held.held.len(), 1);
    assert_eq!(held.held[0].owner_email, "ana@example.org");
    // Not asked: nothing.
    let err = w
        .ben
        .emergency_open("ana@example.org")
        .await
        .expect_err("not asked");
    assert!(matches!(err, Error::NoEmergencyRequest(_)), "{err:?}");
    // Asked: the owner sees it and denies within the wait.
    w.ben
        .emergency_request("ana@example.org")
        .await
        .expect("request");
    let err = w
        .ben
        .emergency_open("ana@example.org")
        .await
        .expect_err("waiting");
    assert!(matches!(err, Error::EmergencyWaiting { .. }), "{err:?}");
    let mine = w.ana.emergency_grants().await.expect("ls");
    assert_eq!(mine.pending().len(), 1);
    w.ana.emergency_deny("ben@example.org").await.expect("deny");
    assert!(
        w.ana
            .emergency_grants()
            .await
            .expect("ls")
            .pending()
            .is_empty()
    );
    wait_out().await;
    let err = w
        .ben
        .emergency_open("ana@example.org")
        .await
        .expect_err("denied");
    assert!(matches!(err, Error::NoEmergencyRequest(_)), "{err:?}");
    assert!(matches!(
        w.ana.emergency_deny("ben@example.org").await,
        Err(Error::NoEmergencyRequest(_))
    ));

    // Asked again, the wait passes: ben reads ana's items.
    w.ben
        .emergency_request("ana@example.org")
        .await
        .expect("request");
    wait_out().await;
    let access = w.ben.emergency_open("ana@example.org").await.expect("open");
    assert_eq!(access.role, EmergencyRole::View);
    assert_eq!(access.unreadable, 0);
    let names: Vec<&str> = access
        .items
        .iter()
        .map(|i| i.item.overview.name.as_str())
        .collect();
    assert_eq!(names, ["Bank"]);
    let item = w
        .ben
        .emergency_item("ana@example.org", "bank")
        .await
        .expect("item");
    assert_eq!(password_of(&item), "bank-pw");
    // A view grant does not take the account over; nothing is written.
    let dir = w.tmp.path().join("not-taken");
    let err = w
        .ben
        .emergency_takeover(
            "ana@example.org",
            &dir,
            SecretString::from("a new password".to_owned()),
            true,
            "heir",
        )
        .await
        .expect_err("view only");
    assert!(matches!(err, Error::Invalid(_)), "{err:?}");
    assert!(!dir.exists());
    w.ana
        .relogin()
        .await
        .expect("the owner's credentials stand");
    // Revoked: gone.
    w.ana
        .emergency_revoke("ben@example.org")
        .await
        .expect("revoke");
    let err = w
        .ben
        .emergency_open("ana@example.org")
        .await
        .expect_err("revoked");
    assert!(matches!(err, Error::NoEmergencyGrant(_)), "{err:?}");
}

#[tokio::test]
async fn rotations_reseal_so_a_released_grant_still_opens_everything() {
    let mut w = world().await;
    add_synced(&mut w.ana, "Old", "old-pw").await;
    w.ana
        .emergency_grant("ben@example.org", EmergencyRole::View, WAIT, None)
        .await
        .expect("grant");
    w.ana.rotate_account_key().await.expect("rotate");
    add_synced(&mut w.ana, "New", "new-pw").await;
    w.ben
        .emergency_request("ana@example.org")
        .await
        .expect("request");
    wait_out().await;
    let access = w.ben.emergency_open("ana@example.org").await.expect("open");
    let mut names: Vec<&str> = access
        .items
        .iter()
        .map(|i| i.item.overview.name.as_str())
        .collect();
    names.sort_unstable();
    assert_eq!(names, ["New", "Old"]);
    // Released, then rotated again: still good.
    w.ana
        .rotate_account_key()
        .await
        .expect("rotate after release");
    let item = w
        .ben
        .emergency_item("ana@example.org", "new")
        .await
        .expect("item after a rotation");
    assert_eq!(password_of(&item), "new-pw");
}

#[tokio::test]
async fn a_grant_the_server_altered_is_refused_on_both_sides() {
    let mut w = world().await;
    add_synced(&mut w.ana, "Bank", "bank-pw").await;
    w.ana
        .emergency_grant("ben@example.org", EmergencyRole::View, WAIT, None)
        .await
        .expect("grant");
    w.ben
        .emergency_request("ana@example.org")
        .await
        .expect("request");
    wait_out().await;
    let pool = server_pool(&w.db).await;
    let row = sqlx::query("SELECT sealed, signature FROM emergency_grants")
        .fetch_one(&pool)
        .await
        .expect("row");
    let sealed: Vec<u8> = row.get("sealed");
    let signature: Vec<u8> = row.get("signature");

    // A box the server made up (sealed to ben, with a key of its own).
    let mut forged = sealed.clone();
    let last = forged.len() - 1;
    forged[last] ^= 1;
    sqlx::query("UPDATE emergency_grants SET sealed = ?")
        .bind(&forged)
        .execute(&pool)
        .await
        .expect("alter");
    let err = w
        .ben
        .emergency_open("ana@example.org")
        .await
        .expect_err("box");
    assert!(matches!(err, Error::Untrusted(_)), "{err:?}");

    // A longer wait (or any other field) than the owner signed.
    sqlx::query("UPDATE emergency_grants SET sealed = ?, wait_secs = 2")
        .bind(&sealed)
        .execute(&pool)
        .await
        .expect("alter");
    wait_out().await;
    wait_out().await;
    let err = w
        .ben
        .emergency_open("ana@example.org")
        .await
        .expect_err("wait");
    assert!(matches!(err, Error::Untrusted(_)), "{err:?}");
    // The owner's rotation refuses to seal to a grant it did not sign.
    let before = w.ana.account_key.duplicate();
    let err = w
        .ana
        .rotate_account_key()
        .await
        .expect_err("rotation refused");
    assert!(matches!(err, Error::Untrusted(_)), "{err:?}");
    assert_eq!(w.ana.account_key.expose(), before.expose());

    // A signature that is not the owner's.
    let mut bad = signature.clone();
    bad[0] ^= 1;
    sqlx::query("UPDATE emergency_grants SET wait_secs = 1, signature = ?")
        .bind(&bad)
        .execute(&pool)
        .await
        .expect("alter");
    let err = w
        .ben
        .emergency_open("ana@example.org")
        .await
        .expect_err("signature");
    assert!(matches!(err, Error::Untrusted(_)), "{err:?}");
    // Put back as the owner signed it: it opens.
    sqlx::query("UPDATE emergency_grants SET signature = ?")
        .bind(&signature)
        .execute(&pool)
        .await
        .expect("restore");
    w.ben.emergency_open("ana@example.org").await.expect("open");
}

#[tokio::test]
async fn a_takeover_grant_sets_new_credentials_and_rotates_the_key() {
    let mut w = world().await;
    let id = add_synced(&mut w.ana, "Bank", "bank-pw").await;
    w.ana
        .emergency_grant("ben@example.org", EmergencyRole::Takeover, WAIT, None)
        .await
        .expect("grant");
    w.ben
        .emergency_request("ana@example.org")
        .await
        .expect("request");
    wait_out().await;
    let before = w.ana.account_key.duplicate();
    let new_password = || SecretString::from("the heir's new password".to_owned());
    let dir = w.tmp.path().join("taken");
    let taken = w
        .ben
        .emergency_takeover("ana@example.org", &dir, new_password(), true, "heir")
        .await
        .expect("takeover");
    assert!(taken.secret_key.starts_with("OK1-"));
    let mut s = taken.session;
    sync(&mut s).await;
    assert_eq!(password_of(&s.item(id).await.expect("item")), "bank-pw");
    assert_ne!(s.account_key.expose(), before.expose(), "rotated");
    s.close().await;
    // The owner's old device is out; the grant is used up; the new
    // credentials open the new home.
    let err = w.ana.relogin().await.expect_err("old credentials");
    assert!(
        matches!(
            err,
            Error::PasswordChanged | Error::WrongPassword | Error::SessionEnded
        ),
        "{err:?}"
    );
    let err = w
        .ben
        .emergency_open("ana@example.org")
        .await
        .expect_err("used up");
    assert!(matches!(err, Error::NoEmergencyGrant(_)), "{err:?}");
    let again = Session::unlock(&dir, new_password(), None)
        .await
        .expect("unlock the taken-over account");
    again.close().await;
    // The contact's own vault is untouched.
    w.ben.relogin().await.expect("the contact's session stands");
}
