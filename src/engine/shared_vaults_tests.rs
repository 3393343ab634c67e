//! Shared vaults against a real server: invite with the fingerprint, accept
//! after verifying the log, roles that the engine and the server enforce,
//! and a server that substitutes an invitee's keys.

use sqlx::Row;

use super::members::Role;
use super::sync::SyncOptions;
use super::sync_tests::server_pool;
use super::test_fixtures::{FAST_KDF, login, password};
use super::test_server::TestServer;
use super::{Error, Session};
use crate::crypto::AccountKeyPair;

pub(super) struct World {
    pub(super) tmp: tempfile::TempDir,
    pub(super) db: std::path::PathBuf,
    pub(super) server: TestServer,
    pub(super) ana: Session,
    pub(super) ben: Session,
}

impl World {
    /// Another device of `who` (`ana` or `ben`), signed in with the
    /// password and the Secret Key.
    pub(super) async fn device(&self, who: &Session, name: &str) -> Session {
        super::remote::login(
            &self.tmp.path().join(name),
            &self.server.url,
            &who.remote_or_err().expect("remote").email,
            password(),
            &who.secret_key_display(),
            true,
            name,
        )
        .await
        .expect("login")
    }
}

pub(super) async fn registered(tmp: &std::path::Path, server: &TestServer, email: &str) -> Session {
    let mut s = Session::init(&tmp.join(email), password(), FAST_KDF)
        .await
        .expect("init");
    s.register(&server.url, email, "laptop")
        .await
        .expect("register");
    s
}

pub(super) async fn world() -> World {
    let tmp = tempfile::tempdir().expect("tmp");
    let db = tmp.path().join("server.db");
    let server = TestServer::start(&format!("sqlite://{}", db.display())).await;
    let ana = registered(tmp.path(), &server, "ana@example.org").await;
    let ben = registered(tmp.path(), &server, "ben@example.org").await;
    World {
        tmp,
        db,
        server,
        ana,
        ben,
    }
}

pub(super) async fn sync(s: &mut Session) {
    s.sync(&SyncOptions::default()).await.expect("sync");
}

pub(super) async fn names(s: &mut Session) -> Vec<String> {
    let (entries, _) = s.entries().await.expect("entries");
    let mut n: Vec<String> = entries.iter().map(|e| e.overview.name.clone()).collect();
    n.sort();
    n
}

#[tokio::test]
async fn a_team_shares_a_vault_with_roles_both_sides_enforce() {
    let mut w = world().await;
    let team = w.ana.create_vault("Team").await.expect("create");
    assert!(
        w.ana.create_vault("team").await.is_err(),
        "names differ in more than case"
    );
    w.ana
        .add_to(team, login("Deploy key", "ci", "s3cret"))
        .await
        .expect("add");
    sync(&mut w.ana).await;
    // A fingerprint that is not Ben's: nothing is shared.
    let err = w
        .ana
        .invite(team, "ben@example.org", Role::Viewer, Some("1234"))
        .await
        .expect_err("wrong fingerprint");
    assert!(matches!(err, Error::FingerprintMismatch { .. }), "{err:?}");
    let ben_fp = w.ben.fingerprint();
    w.ana
        .invite(team, "ben@example.org", Role::Viewer, Some(&ben_fp))
        .await
        .expect("invite");
    let invites = w.ben.invitations().await.expect("invitations");
    assert_eq!(invites.len(), 1);
    assert_eq!(invites[0].name, "Team");
    assert_eq!(invites[0].owner_email, "ana@example.org");
    assert_eq!(w.ben.accept(team).await.expect("accept"), "Team");
    sync(&mut w.ben).await;
    assert!(names(&mut w.ben).await.contains(&"Deploy key".to_owned()));
    let listed = w.ben.vault_list().await.expect("vaults");
    let shared = listed.iter().find(|v| v.id == team).expect("listed");
    assert_eq!(shared.shared.as_ref().map(|s| s.role), Some(Role::Viewer));
    // A viewer writes nothing, here or on the server.
    let err = w
        .ben
        .add_to(team, login("Planted", "x", "y"))
        .await
        .expect_err("viewer");
    assert!(matches!(err, Error::Invalid(_)), "{err:?}");
    // Promoted, Ben writes; Ana gets it.
    w.ana
        .set_role(team, "ben@example.org", Role::Editor)
        .await
        .expect("promote");
    sync(&mut w.ben).await;
    w.ben
        .add_to(team, login("Ben's note", "ben", "pw"))
        .await
        .expect("editor adds");
    sync(&mut w.ben).await;
    sync(&mut w.ana).await;
    assert!(names(&mut w.ana).await.contains(&"Ben's note".to_owned()));
    let members = w.ana.members(team).await.expect("members");
    let roles: Vec<(String, Role)> = members.iter().map(|m| (m.email.clone(), m.role)).collect();
    assert_eq!(
        roles,
        vec![
            ("ana@example.org".to_owned(), Role::Manager),
            ("ben@example.org".to_owned(), Role::Editor)
        ]
    );
    // Ben's personal vault stayed his own.
    assert_eq!(w.ben.vault_list().await.expect("vaults").len(), 2);
}

/// The server answers keys of its own for the invitee: the invitation is
/// refused as a changed key, and nothing is added to the log.
#[tokio::test]
async fn a_substituted_invitee_key_is_caught_at_invite() {
    let mut w = world().await;
    let team = w.ana.create_vault("Team").await.expect("create");
    w.ana.contact("ben@example.org").await.expect("pin Ben");
    let pool = server_pool(&w.db).await;
    let row = sqlx::query("SELECT id, client_id FROM accounts WHERE email = 'ben@example.org'")
        .fetch_one(&pool)
        .await
        .expect("ben");
    let id: String = row.get("id");
    let client_id = uuid::Uuid::parse_str(&row.get::<String, _>("client_id")).expect("uuid");
    let evil = AccountKeyPair::generate();
    let k = evil.public();
    sqlx::query("UPDATE accounts SET public_x25519 = ?, public_ed25519 = ? WHERE id = ?")
        .bind(k.x25519.as_slice())
        .bind(k.ed25519.as_slice())
        .bind(&id)
        .execute(&pool)
        .await
        .expect("swap");
    sqlx::query("UPDATE identities SET signature = ? WHERE account_id = ?")
        .bind(
            evil.sign_identity(client_id, "ben@example.org", 1)
                .as_slice(),
        )
        .bind(&id)
        .execute(&pool)
        .await
        .expect("re-sign");
    let err = w
        .ana
        .invite(team, "ben@example.org", Role::Editor, None)
        .await
        .expect_err("caught");
    assert!(matches!(err, Error::KeyChanged { .. }), "{err:?}");
    let log: i64 = sqlx::query("SELECT COUNT(*) AS n FROM vault_log")
        .fetch_one(&pool)
        .await
        .expect("count")
        .get("n");
    assert_eq!(log, 0, "nothing was appended");
}

/// A server that drops the log's last entry after the member saw it is
/// caught (truncation), and one that hands a member a forged entry too.
#[tokio::test]
async fn a_tampered_membership_log_is_refused() {
    let mut w = world().await;
    let team = w.ana.create_vault("Team").await.expect("create");
    sync(&mut w.ana).await;
    w.ana
        .invite(team, "ben@example.org", Role::Viewer, None)
        .await
        .expect("invite");
    w.ben.accept(team).await.expect("accept");
    w.ana
        .set_role(team, "ben@example.org", Role::Editor)
        .await
        .expect("promote");
    w.ben.members(team).await.expect("Ben sees entry 2");
    let pool = server_pool(&w.db).await;
    sqlx::query("DELETE FROM vault_log WHERE seq = 2")
        .execute(&pool)
        .await
        .expect("truncate");
    let err = w.ben.members(team).await.expect_err("truncated");
    assert!(matches!(err, Error::Untrusted(_)), "{err:?}");
    assert!(err.to_string().contains("dropped"), "{err}");
    sqlx::query("UPDATE vault_log SET signature = zeroblob(64) WHERE seq = 1")
        .execute(&pool)
        .await
        .expect("forge");
    let err = w.ana.members(team).await.expect_err("forged");
    assert!(err.to_string().contains("signature"), "{err}");
}

/// A viewer together with a server that takes its write: the server says
/// the viewer is an editor (so the viewer's device writes and the server
/// stores it), but the signed log says viewer, so the other members refuse
/// the version, say so, and keep the last good one.
#[tokio::test]
async fn a_viewers_version_is_refused_by_the_others_even_when_the_server_takes_it() {
    let mut w = world().await;
    let team = w.ana.create_vault("Team").await.expect("create");
    let id = w
        .ana
        .add_to(team, login("Deploy key", "ci", "good"))
        .await
        .expect("add")
        .r
        .id;
    sync(&mut w.ana).await;
    w.ana
        .invite(team, "ben@example.org", Role::Viewer, None)
        .await
        .expect("invite");
    w.ben.accept(team).await.expect("accept");
    sync(&mut w.ben).await;
    // The server lies about Ben's role.
    let pool = server_pool(&w.db).await;
    sqlx::query("UPDATE vault_members SET role = 'editor'")
        .execute(&pool)
        .await
        .expect("lie");
    sync(&mut w.ben).await;
    let patch = super::ItemPatch {
        set_fields: vec![super::model::Field::new(
            super::model::label::PASSWORD,
            "planted",
            super::model::FieldKind::Secret,
        )],
        ..super::ItemPatch::default()
    };
    w.ben.update(id, &patch).await.expect("Ben's device writes");
    sync(&mut w.ben).await;
    let report = w.ana.sync(&SyncOptions::default()).await.expect("sync");
    let refused: Vec<&String> = report.vaults.iter().flat_map(|v| &v.refused).collect();
    assert_eq!(refused.len(), 1, "{report:?}");
    assert!(
        refused[0].contains("not an editor or manager"),
        "{}",
        refused[0]
    );
    let item = w.ana.item(id).await.expect("item");
    assert_eq!(
        item.field(super::model::label::PASSWORD)
            .map(|f| f.value.expose()),
        Some("good"),
        "the last good version is kept"
    );
}

pub(super) fn set_password(value: &str) -> super::ItemPatch {
    super::ItemPatch {
        set_fields: vec![super::model::Field::new(
            super::model::label::PASSWORD,
            value,
            super::model::FieldKind::Secret,
        )],
        ..super::ItemPatch::default()
    }
}

pub(super) fn password_of(item: &super::model::Item) -> String {
    item.field(super::model::label::PASSWORD)
        .map(|f| f.value.expose().to_owned())
        .unwrap_or_default()
}

/// The owner's other device knows the vault is shared (from the server's
/// vault list and the log it verifies) and signs what it writes there, so
/// the members accept its edits.
#[tokio::test]
async fn the_owners_other_device_signs_its_versions_in_a_shared_vault() {
    let mut w = world().await;
    let team = w.ana.create_vault("Team").await.expect("create");
    let id = w
        .ana
        .add_to(team, login("Deploy key", "ci", "v1"))
        .await
        .expect("add")
        .r
        .id;
    sync(&mut w.ana).await;
    w.ana
        .invite(team, "ben@example.org", Role::Viewer, None)
        .await
        .expect("invite");
    w.ben.accept(team).await.expect("accept");
    let mut tablet = w.device(&w.ana, "ana-tablet").await;
    sync(&mut tablet).await;
    let shared = tablet.vault_list().await.expect("vaults");
    let team_here = shared.iter().find(|v| v.id == team).expect("team");
    assert!(
        team_here.shared.as_ref().is_some_and(|s| s.mine),
        "the tablet knows Team is shared: {team_here:?}"
    );
    tablet.update(id, &set_password("v2")).await.expect("edit");
    sync(&mut tablet).await;
    let report = w.ben.sync(&SyncOptions::default()).await.expect("sync");
    let refused: Vec<&String> = report.vaults.iter().flat_map(|v| &v.refused).collect();
    assert!(refused.is_empty(), "{refused:?}");
    assert_eq!(password_of(&w.ben.item(id).await.expect("item")), "v2");
}
