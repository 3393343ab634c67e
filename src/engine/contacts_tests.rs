//! Contacts against a real server: first sight pins, a confirmed
//! fingerprint verifies, and a server that substitutes a member's keys or
//! forges their signature is caught.

use sqlx::Row;

use super::contacts::Trust;
use super::sync_tests::server_pool;
use super::test_fixtures::{FAST_KDF, password};
use super::test_server::TestServer;
use super::{Error, Session};
use crate::crypto::AccountKeyPair;

struct World {
    _tmp: tempfile::TempDir,
    db: std::path::PathBuf,
    _server: TestServer,
    alice: Session,
    bob: Session,
}

async fn world() -> World {
    let tmp = tempfile::tempdir().expect("tmp");
    let db = tmp.path().join("server.db");
    let server = TestServer::start(&format!("sqlite://{}", db.display())).await;
    let mut alice = Session::init(&tmp.path().join("alice"), password(), FAST_KDF)
        .await
        .expect("init");
    alice
        .register(&server.url, "alice@example.org", "laptop")
        .await
        .expect("register");
    let mut bob = Session::init(&tmp.path().join("bob"), password(), FAST_KDF)
        .await
        .expect("init");
    bob.register(&server.url, "Bob@Example.org", "phone")
        .await
        .expect("register");
    World {
        _tmp: tmp,
        db,
        _server: server,
        alice,
        bob,
    }
}

#[tokio::test]
async fn first_sight_pins_and_the_owners_fingerprint_verifies() {
    let mut w = world().await;
    let first = w.alice.contact("bob@example.org").await.expect("lookup");
    assert_eq!(first.trust, Trust::New);
    assert_eq!(first.email, "bob@example.org");
    assert_eq!(
        first.fingerprint,
        w.bob.fingerprint(),
        "what Bob's status shows"
    );
    let again = w.alice.contact("BOB@example.org").await.expect("lookup");
    assert_eq!(again.trust, Trust::Pinned);
    // A wrong fingerprint pins nothing.
    let err = w
        .alice
        .verify_contact("bob@example.org", "0000 0000 0000 0000 0000 0000 0000 0000")
        .await
        .expect_err("mismatch");
    assert!(matches!(err, Error::FingerprintMismatch { .. }), "{err:?}");
    let fp = w.bob.fingerprint().replace(' ', "-");
    let verified = w
        .alice
        .verify_contact("bob@example.org", &fp)
        .await
        .expect("verify");
    assert_eq!(verified.trust, Trust::Verified);
    let listed = w.alice.contacts().await.expect("ls");
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].trust, Trust::Verified);
    // One's own account is recognised, and nobody else's.
    let me = w.alice.contact("alice@example.org").await.expect("me");
    assert_eq!(me.trust, Trust::Me);
    let err = w
        .alice
        .contact("nobody@example.org")
        .await
        .expect_err("unknown");
    assert!(matches!(err, Error::NoSuchAccount(_)), "{err:?}");
}

/// The server answers keys of its own for Bob, signed with them: the
/// signature verifies, but they are not the pinned keys: an alarm, and
/// nothing can be shared until the user confirms the new fingerprint.
#[tokio::test]
async fn a_server_that_substitutes_keys_shows_a_changed_fingerprint() {
    let mut w = world().await;
    let pinned = w.alice.contact("bob@example.org").await.expect("pin");
    let evil = AccountKeyPair::generate();
    let pool = server_pool(&w.db).await;
    let row = sqlx::query("SELECT id, client_id FROM accounts WHERE email = 'bob@example.org'")
        .fetch_one(&pool)
        .await
        .expect("bob");
    let id: String = row.get("id");
    let client_id: String = row.get("client_id");
    let client_id = uuid::Uuid::parse_str(&client_id).expect("uuid");
    let keys = evil.public();
    sqlx::query("UPDATE accounts SET public_x25519 = ?, public_ed25519 = ? WHERE id = ?")
        .bind(keys.x25519.as_slice())
        .bind(keys.ed25519.as_slice())
        .bind(&id)
        .execute(&pool)
        .await
        .expect("swap keys");
    let forged = evil.sign_identity(client_id, "bob@example.org", 1);
    sqlx::query("UPDATE identities SET signature = ? WHERE account_id = ?")
        .bind(forged.as_slice())
        .bind(&id)
        .execute(&pool)
        .await
        .expect("re-sign");
    let now = w.alice.contact("bob@example.org").await.expect("lookup");
    assert_eq!(
        now.trust,
        Trust::Changed {
            pinned: pinned.fingerprint.clone()
        }
    );
    assert_ne!(now.fingerprint, pinned.fingerprint);
    let err = now.check_shareable().expect_err("blocked");
    assert!(matches!(err, Error::KeyChanged { .. }), "{err:?}");
    // The pin stays: asking again still alarms.
    let again = w.alice.contact("bob@example.org").await.expect("lookup");
    assert!(matches!(again.trust, Trust::Changed { .. }));
    // Bob's real fingerprint does not confirm the server's keys.
    let err = w
        .alice
        .verify_contact("bob@example.org", &w.bob.fingerprint())
        .await
        .expect_err("not these keys");
    assert!(matches!(err, Error::FingerprintMismatch { .. }), "{err:?}");
}

/// Keys whose signature does not verify (the server swapped one key and
/// kept Bob's signature) are refused outright, pinned or not.
#[tokio::test]
async fn a_forged_identity_is_refused_and_pins_nothing() {
    let mut w = world().await;
    let pool = server_pool(&w.db).await;
    sqlx::query("UPDATE accounts SET public_x25519 = ? WHERE email = 'bob@example.org'")
        .bind(AccountKeyPair::generate().public().x25519.as_slice())
        .execute(&pool)
        .await
        .expect("swap one key");
    let err = w
        .alice
        .contact("bob@example.org")
        .await
        .expect_err("refused");
    assert!(matches!(err, Error::Untrusted(_)), "{err:?}");
    assert!(w.alice.contacts().await.expect("ls").is_empty());
}

/// The pins are sealed with the account key: an edit of the vault file
/// is reported as tampering, never taken.
#[tokio::test]
async fn edited_pins_are_tampering() {
    let mut w = world().await;
    w.alice.contact("bob@example.org").await.expect("pin");
    w.alice
        .store
        .set_meta("contacts", Some(b"not sealed"))
        .await
        .expect("edit");
    let err = w.alice.contacts().await.expect_err("tampered");
    assert!(matches!(err, Error::Tampered(_)), "{err:?}");
}
