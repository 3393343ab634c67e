//! Member removal and key rotation against a real server: what a removed
//! member can still open and what not, leaving, a server that hands out a
//! key of its own, edits made while the key changed.

use sqlx::Row;

use super::members::{Role, seal_vault_key};
use super::shared_vaults_tests::{
    World, names, password_of, registered, set_password, sync, world,
};
use super::sync::SyncOptions;
use super::sync_tests::server_pool;
use super::test_fixtures::login;
use super::{Error, Key, Session, open_full};
use crate::store::ItemRecord;

/// Ana's vault "Team" with one item, Ben an editor and Cy a viewer, all
/// synced; returns Cy's session, the vault and the item.
async fn team(w: &mut World) -> (Session, uuid::Uuid, uuid::Uuid) {
    let mut cy = registered(w.tmp.path(), &w.server, "cy@example.org").await;
    let team = w.ana.create_vault("Team").await.expect("create");
    let id = w
        .ana
        .add_to(team, login("Deploy key", "ci", "v1"))
        .await
        .expect("add")
        .r
        .id;
    sync(&mut w.ana).await;
    for (who, role) in [
        ("ben@example.org", Role::Editor),
        ("cy@example.org", Role::Viewer),
    ] {
        w.ana.invite(team, who, role, None).await.expect("invite");
    }
    w.ben.accept(team).await.expect("ben accepts");
    cy.accept(team).await.expect("cy accepts");
    sync(&mut w.ben).await;
    sync(&mut cy).await;
    (cy, team, id)
}

/// The server's current record of `item`, as the store keeps it.
async fn server_record(w: &World, team: uuid::Uuid, item: uuid::Uuid) -> ItemRecord {
    let pool = server_pool(&w.db).await;
    let row = sqlx::query(
        "SELECT r.version, r.wrapped_key, r.overview, r.details FROM records r \
         JOIN vaults v ON v.id = r.vault_id WHERE v.client_id = ? AND r.item_id = ?",
    )
    .bind(team.to_string())
    .bind(item.to_string())
    .fetch_one(&pool)
    .await
    .expect("record");
    ItemRecord {
        id: item,
        vault_id: team,
        version: u64::try_from(row.get::<i64, _>("version")).expect("version"),
        wrapped_key: row.get("wrapped_key"),
        overview: row.get("overview"),
        details: row.get("details"),
    }
}

/// A removed viewer keeps what it had, opens nothing written after, loses
/// the vault on its next sync; the others take the new key and go on.
#[tokio::test]
async fn a_removed_member_cannot_open_what_is_written_after() {
    let mut w = world().await;
    let (mut cy, team, id) = team(&mut w).await;
    // What Cy could keep: the vault key of the first epoch.
    let cy_key = cy.vault_key(team).expect("cy's key").duplicate();
    let before = server_record(&w, team, id).await;
    assert!(open_full(&cy_key, &before).is_ok(), "Cy reads what it had");

    w.ana
        .remove_member(team, "cy@example.org")
        .await
        .expect("remove Cy");
    let members = w.ana.members(team).await.expect("members");
    assert_eq!(
        members.iter().map(|m| m.email.as_str()).collect::<Vec<_>>(),
        ["ana@example.org", "ben@example.org"]
    );
    // Ana's device already holds the server's state after the rotation:
    // nothing to pull, and it verifies.
    let r = w
        .ana
        .sync(&SyncOptions {
            verify: true,
            ..SyncOptions::default()
        })
        .await
        .expect("sync");
    let v = r.vaults.iter().find(|v| v.vault_id == team).expect("team");
    assert_eq!(v.pulled, 0, "{v:?}");
    assert!(v.verify.as_ref().is_some_and(|v| v.matches), "{v:?}");
    // Everything the server holds now is under the new key.
    let rewrapped = server_record(&w, team, id).await;
    assert_eq!(rewrapped.version, before.version);
    assert!(open_full(&cy_key, &rewrapped).is_err(), "re-wrapped");

    // Ben takes the new key at his next sync and edits.
    let report = w.ben.sync(&SyncOptions::default()).await.expect("sync");
    assert_eq!(report.vaults.iter().find_map(|v| v.new_key_epoch), Some(2));
    // The version Ana wrote before sharing was renumbered by the rotation
    // and vouched for by her: still accepted.
    assert!(
        report.vaults.iter().all(|v| v.refused.is_empty()),
        "{report:?}"
    );
    w.ben.update(id, &set_password("v2")).await.expect("edit");
    sync(&mut w.ben).await;
    let after = server_record(&w, team, id).await;
    assert!(open_full(&cy_key, &after).is_err(), "written after removal");
    assert!(
        open_full(w.ben.vault_key(team).expect("key"), &after).is_ok(),
        "Ben's new key opens it"
    );
    sync(&mut w.ana).await;
    assert_eq!(password_of(&w.ana.item(id).await.expect("item")), "v2");

    // Cy's device: the vault is gone, nothing of it is left here.
    let report = cy.sync(&SyncOptions::default()).await.expect("sync");
    assert_eq!(report.left.len(), 1, "{report:?}");
    assert_eq!(report.left[0].name, "Team");
    assert!(!names(&mut cy).await.contains(&"Deploy key".to_owned()));
    assert!(
        cy.vault_list()
            .await
            .expect("vaults")
            .iter()
            .all(|v| v.id != team)
    );
    // Ana cannot be removed, and Ben (an editor) removes nobody.
    let err = w
        .ben
        .remove_member(team, "ana@example.org")
        .await
        .expect_err("editor");
    assert!(matches!(err, Error::Invalid(_)), "{err:?}");
}

/// A member leaves by its own entry; the owner's next sync rotates the
/// key; the one who left opens nothing written after.
#[tokio::test]
async fn a_member_who_leaves_is_rotated_out_at_a_managers_next_sync() {
    let mut w = world().await;
    let (mut cy, team, id) = team(&mut w).await;
    let ben_key = w.ben.vault_key(team).expect("key").duplicate();
    let left = w.ben.leave_vault(team).await.expect("leave");
    assert_eq!(left.name, "Team");
    assert!(left.kept.is_empty());
    assert!(
        w.ben
            .vault_list()
            .await
            .expect("vaults")
            .iter()
            .all(|v| v.id != team)
    );
    let err = w.ana.leave_vault(team).await.expect_err("the owner");
    assert!(matches!(err, Error::Invalid(_)), "{err:?}");

    let report = w.ana.sync(&SyncOptions::default()).await.expect("sync");
    assert!(
        report
            .vaults
            .iter()
            .any(|v| v.vault_id == team && v.rotated),
        "{report:?}"
    );
    assert!(report.warnings.is_empty(), "{:?}", report.warnings);
    w.ana
        .update(id, &set_password("after Ben left"))
        .await
        .expect("edit");
    sync(&mut w.ana).await;
    let rec = server_record(&w, team, id).await;
    assert!(open_full(&ben_key, &rec).is_err());
    // Cy, still a member, reads it.
    sync(&mut cy).await;
    assert_eq!(
        password_of(&cy.item(id).await.expect("item")),
        "after Ben left"
    );
    // Nothing more to rotate.
    let report = w.ana.sync(&SyncOptions::default()).await.expect("sync");
    assert!(report.vaults.iter().all(|v| !v.rotated));
}

/// After a rotation the server seals a key of its own to Ben: Ben's device
/// refuses it (the signed entry commits to another key) and writes nothing.
#[tokio::test]
async fn a_key_the_server_makes_up_is_refused() {
    let mut w = world().await;
    let (_cy, team, id) = team(&mut w).await;
    w.ben
        .update(id, &set_password("offline edit"))
        .await
        .expect("edit");
    w.ana
        .remove_member(team, "cy@example.org")
        .await
        .expect("remove");
    let ben_member = w
        .ana
        .verified_log(team, "ana@example.org")
        .await
        .expect("log")
        .members
        .values()
        .find(|s| s.member.email == "ben@example.org")
        .expect("ben")
        .member
        .clone();
    let fake = Key::random();
    let sealed = seal_vault_key(&fake, team, 2, &ben_member).expect("seal");
    let pool = server_pool(&w.db).await;
    sqlx::query(
        "UPDATE vault_members SET sealed_key = ? WHERE account_id = \
         (SELECT id FROM accounts WHERE email = 'ben@example.org')",
    )
    .bind(&sealed)
    .execute(&pool)
    .await
    .expect("substitute");
    let err = w
        .ben
        .sync(&SyncOptions::default())
        .await
        .expect_err("refused");
    assert!(matches!(err, Error::Untrusted(_)), "{err:?}");
    assert!(err.to_string().contains("signed for"), "{err}");
    // Ben's edit stayed here, unsent.
    assert_eq!(
        password_of(&w.ben.item(id).await.expect("item")),
        "offline edit"
    );
    sync(&mut w.ana).await;
    assert_eq!(password_of(&w.ana.item(id).await.expect("item")), "v1");
}

/// Ben edits offline (and adds an item) while Ana removes Cy: at Ben's
/// sync his edits go up under the new key and Ana gets them.
#[tokio::test]
async fn edits_made_during_a_rotation_go_up_under_the_new_key() {
    let mut w = world().await;
    let (_cy, team, id) = team(&mut w).await;
    w.ben
        .update(id, &set_password("edited offline"))
        .await
        .expect("edit");
    let added = w
        .ben
        .add_to(team, login("Added offline", "b", "p"))
        .await
        .expect("add")
        .r
        .id;
    w.ana
        .remove_member(team, "cy@example.org")
        .await
        .expect("remove");
    let report = w.ben.sync(&SyncOptions::default()).await.expect("sync");
    assert_eq!(report.vaults.iter().find_map(|v| v.new_key_epoch), Some(2));
    assert!(report.vaults.iter().all(|v| v.refused.is_empty()));
    sync(&mut w.ana).await;
    assert_eq!(
        password_of(&w.ana.item(id).await.expect("item")),
        "edited offline"
    );
    assert!(w.ana.item(added).await.is_ok());
    // Ben's history still opens (re-wrapped here too).
    assert!(
        w.ben
            .history(id)
            .await
            .expect("history")
            .iter()
            .all(|h| h.damaged.is_none())
    );
    // The owner's other device takes the key too.
    let mut tablet = w.device(&w.ana, "ana-tablet").await;
    sync(&mut tablet).await;
    assert_eq!(
        password_of(&tablet.item(id).await.expect("item")),
        "edited offline"
    );
    tablet
        .update(id, &set_password("from the tablet"))
        .await
        .expect("edit");
    sync(&mut tablet).await;
    sync(&mut w.ben).await;
    assert_eq!(
        password_of(&w.ben.item(id).await.expect("item")),
        "from the tablet"
    );
    // `sync --verify` holds in the rotated vault, on both accounts.
    for s in [&mut w.ben, &mut w.ana] {
        let r = s
            .sync(&SyncOptions {
                verify: true,
                ..SyncOptions::default()
            })
            .await
            .expect("verify");
        let v = r.vaults.iter().find(|v| v.vault_id == team).expect("team");
        assert!(v.verify.as_ref().is_some_and(|v| v.matches), "{v:?}");
    }
}

/// Cy (made an editor) edits offline and is removed before syncing: the
/// edit cannot go up any more; it is kept in Cy's personal vault.
#[tokio::test]
async fn a_removed_members_unpushed_edit_is_kept_in_its_personal_vault() {
    let mut w = world().await;
    let (mut cy, team, id) = team(&mut w).await;
    w.ana
        .set_role(team, "cy@example.org", Role::Editor)
        .await
        .expect("promote");
    sync(&mut cy).await;
    cy.update(id, &set_password("cy's edit"))
        .await
        .expect("edit");
    w.ana
        .remove_member(team, "cy@example.org")
        .await
        .expect("remove");
    let report = cy.sync(&SyncOptions::default()).await.expect("sync");
    assert_eq!(report.left.len(), 1);
    assert_eq!(report.left[0].kept, ["Deploy key (from Team)"]);
    let kept = cy
        .resolve("Deploy key (from Team)", false)
        .await
        .expect("kept");
    let item = cy.item(kept.id).await.expect("item");
    assert_eq!(password_of(&item), "cy's edit");
    assert_eq!(item.r.vault_id, cy.default_vault().0);
    sync(&mut cy).await;
    sync(&mut w.ana).await;
    assert_eq!(password_of(&w.ana.item(id).await.expect("item")), "v1");
}

/// The managers' activity log: membership entries and item versions with
/// their authors, from signed data; viewers do not get it.
#[tokio::test]
async fn managers_see_who_did_what_from_signed_versions() {
    let mut w = world().await;
    let (mut cy, team, id) = team(&mut w).await;
    let rename = super::ItemPatch {
        name: Some("Deploy key (prod)".into()),
        ..super::ItemPatch::default()
    };
    w.ben.update(id, &set_password("v2")).await.expect("edit");
    w.ben.update(id, &rename).await.expect("rename");
    let note = w
        .ben
        .add_to(team, login("Scratch", "b", "p"))
        .await
        .expect("add")
        .r
        .id;
    sync(&mut w.ben).await;
    sync(&mut w.ana).await;
    w.ben.trash(note).await.expect("trash");
    sync(&mut w.ben).await;
    sync(&mut w.ana).await;
    w.ben.purge(note).await.expect("purge");
    sync(&mut w.ben).await;
    sync(&mut w.ana).await;
    let log = w.ana.activity(team, 100).await.expect("activity");
    let lines: Vec<String> = log
        .iter()
        .map(|a| format!("{} {} [{}]", a.who, a.what, a.proof))
        .collect();
    for want in [
        "ana@example.org shared the vault [signed]",
        "ana@example.org invited ben@example.org as editor [signed]",
        "ana@example.org invited cy@example.org as viewer [signed]",
        "ben@example.org changed \"Deploy key\" (changed password) [signed]",
        "ben@example.org renamed \"Deploy key (prod)\" (from \"Deploy key\") [signed]",
        "ben@example.org added \"Scratch\" [signed]",
        "ben@example.org moved to the trash \"Scratch\" [signed]",
        "ben@example.org removed for good \"Scratch\" [signed]",
    ] {
        assert!(
            lines.iter().any(|l| l == want),
            "{want:?} not in {lines:#?}"
        );
    }
    // Ben's own device has the same story (from its pushes).
    w.ana
        .set_role(team, "ben@example.org", Role::Manager)
        .await
        .expect("promote");
    sync(&mut w.ben).await;
    let bens: Vec<String> = w
        .ben
        .activity(team, 100)
        .await
        .expect("activity")
        .iter()
        .map(|a| format!("{} {} [{}]", a.who, a.what, a.proof))
        .collect();
    assert!(
        bens.iter()
            .any(|l| l == "ben@example.org removed for good \"Scratch\" [signed]"),
        "{bens:#?}"
    );
    assert!(
        bens.iter()
            .any(|l| l == "ana@example.org made ben@example.org manager [signed]")
    );
    // Newest first.
    assert!(log.windows(2).all(|p| p[0].at >= p[1].at));
    // A viewer does not get it; a personal vault has none.
    let err = cy.activity(team, 10).await.expect_err("viewer");
    assert!(matches!(err, Error::Invalid(_)), "{err:?}");
    let personal = w.ana.default_vault().0;
    assert!(w.ana.activity(personal, 10).await.is_err());
    let _ = id;
}

/// A member's event stream hears the shared vault: its head in `ready`,
/// and an event when another account pushes to it.
#[tokio::test]
async fn a_members_event_stream_hears_the_shared_vault() {
    let mut w = world().await;
    let (_cy, team, id) = team(&mut w).await;
    let mut events = w.ben.events().await.expect("stream");
    let ready = tokio::time::timeout(std::time::Duration::from_secs(5), events.next())
        .await
        .expect("ready in time")
        .expect("an event")
        .expect("ok");
    assert_eq!(ready.event, "ready");
    assert!(ready.data.contains(&team.to_string()), "{}", ready.data);
    assert!(!w.ben.event_needs_sync(&ready).await, "Ben is up to date");
    w.ana.update(id, &set_password("v2")).await.expect("edit");
    sync(&mut w.ana).await;
    let ev = tokio::time::timeout(std::time::Duration::from_secs(5), events.next())
        .await
        .expect("an event in time")
        .expect("an event")
        .expect("ok");
    assert_eq!(ev.event, "vault");
    assert!(ev.data.contains(&team.to_string()), "{}", ev.data);
    assert!(w.ben.event_needs_sync(&ev).await);
    sync(&mut w.ben).await;
    assert_eq!(password_of(&w.ben.item(id).await.expect("item")), "v2");
}

/// A rename from a device that has not synced since a rotation seals the
/// name under the new key (members can read it).
#[tokio::test]
async fn a_rename_after_a_rotation_uses_the_new_key() {
    let mut w = world().await;
    let (_cy, team, _id) = team(&mut w).await;
    let mut tablet = w.device(&w.ana, "ana-tablet").await;
    sync(&mut tablet).await;
    w.ana
        .remove_member(team, "cy@example.org")
        .await
        .expect("remove");
    // Ben holds only the new key from here on.
    sync(&mut w.ben).await;
    tablet.rename_vault(team, "Ops").await.expect("rename");
    sync(&mut w.ben).await;
    let name = w
        .ben
        .vault_list()
        .await
        .expect("vaults")
        .into_iter()
        .find(|v| v.id == team)
        .expect("team")
        .name;
    assert_eq!(name, "Ops");
}

/// A personal vault's key rotated on one device: every item key re-wrapped
/// on the server in one step; another device with an offline edit takes
/// the new key from the server's copy (it opens only with the account
/// key) and pushes its edit under it.
#[tokio::test]
async fn a_personal_vault_key_rotates_and_other_devices_take_it() {
    let mut w = world().await;
    let personal = w.ana.default_vault().0;
    let id = w
        .ana
        .add(login("Bank", "me", "v1"))
        .await
        .expect("add")
        .r
        .id;
    sync(&mut w.ana).await;
    let mut laptop = w.device(&w.ana, "ana-laptop").await;
    sync(&mut laptop).await;
    laptop
        .update(id, &set_password("offline on the laptop"))
        .await
        .expect("edit");
    let old = w.ana.vault_key(personal).expect("key").duplicate();
    w.ana.rotate_vault_key(personal).await.expect("rotate");
    assert_eq!(w.ana.vault_epoch(personal), 2);
    let rec = server_record(&w, personal, id).await;
    assert!(open_full(&old, &rec).is_err(), "re-wrapped on the server");
    let report = laptop.sync(&SyncOptions::default()).await.expect("sync");
    assert!(report.vaults.iter().all(|v| v.refused.is_empty()));
    assert_eq!(laptop.vault_epoch(personal), 2);
    sync(&mut w.ana).await;
    assert_eq!(
        password_of(&w.ana.item(id).await.expect("item")),
        "offline on the laptop"
    );
    let rec = server_record(&w, personal, id).await;
    assert!(open_full(&old, &rec).is_err(), "written after: new key");
    // History written before the rotation still opens on both devices.
    for s in [&w.ana, &laptop] {
        assert!(
            s.history(id)
                .await
                .expect("history")
                .iter()
                .all(|h| h.damaged.is_none())
        );
    }
    // A device that logs in later gets the new key at once.
    let mut phone = w.device(&w.ana, "ana-phone").await;
    sync(&mut phone).await;
    assert_eq!(phone.vault_epoch(personal), 2);
    assert_eq!(
        password_of(&phone.item(id).await.expect("item")),
        "offline on the laptop"
    );
}

/// A vault that is only on this device rotates here.
#[tokio::test]
async fn a_local_vault_key_rotates_here() {
    let tmp = tempfile::tempdir().expect("tmp");
    let mut s = Session::init(
        &tmp.path().join("v"),
        super::test_fixtures::password(),
        super::test_fixtures::FAST_KDF,
    )
    .await
    .expect("init");
    let personal = s.default_vault().0;
    let id = s.add(login("Bank", "me", "v1")).await.expect("add").r.id;
    s.update(id, &set_password("v2")).await.expect("edit");
    s.rotate_vault_key(personal).await.expect("rotate");
    assert_eq!(s.vault_epoch(personal), 2);
    let dir = s.dir().to_path_buf();
    s.close().await;
    let s = Session::unlock(&dir, super::test_fixtures::password(), None)
        .await
        .expect("unlock");
    assert_eq!(password_of(&s.item(id).await.expect("item")), "v2");
    assert!(
        s.history(id)
            .await
            .expect("history")
            .iter()
            .all(|h| h.damaged.is_none())
    );
}
