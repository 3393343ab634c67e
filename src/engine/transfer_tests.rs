//! Moving and copying items between vaults: contents, times and history
//! kept; the source purged in the same transaction; refusals that change
//! nothing; and, against a real server, a move into a shared vault that a
//! member then reads and a tombstone another device of the account takes.

use super::members::Role;
use super::model::{Field, FieldKind, label};
use super::search::Query;
use super::sync::SyncOptions;
use super::test_fixtures::{FAST_KDF, login, password};
use super::test_server::TestServer;
use super::{Error, ItemPatch, Session};

async fn local() -> (tempfile::TempDir, Session) {
    let tmp = tempfile::tempdir().expect("tmp");
    let s = Session::init(&tmp.path().join("v"), password(), FAST_KDF)
        .await
        .expect("init");
    (tmp, s)
}

fn set_password(value: &str) -> ItemPatch {
    ItemPatch {
        set_fields: vec![Field::new(label::PASSWORD, value, FieldKind::Secret)],
        ..ItemPatch::default()
    }
}

async fn names_in(s: &mut Session, vault: uuid::Uuid) -> Vec<String> {
    let q = Query {
        vault_id: Some(vault),
        ..Query::default()
    };
    let (listed, _) = s.list(&q).await.expect("list");
    listed.iter().map(|e| e.overview.name.clone()).collect()
}

#[tokio::test]
async fn a_move_keeps_contents_times_and_history_and_purges_the_source() {
    let (_tmp, mut s) = local().await;
    let personal = s.default_vault().0;
    let team = s.create_vault("Team").await.expect("create");
    let added = s.add(login("GitHub", "octo", "v1")).await.expect("add");
    s.update(added.r.id, &set_password("v2"))
        .await
        .expect("edit");
    let before = s
        .update(
            added.r.id,
            &ItemPatch {
                tags: Some(vec!["work".into()]),
                ..ItemPatch::default()
            },
        )
        .await
        .expect("edit");
    let history_before = s.history(added.r.id).await.expect("history");

    let moved = s.move_item(added.r.id, team).await.expect("move");
    assert_ne!(moved.r.id, added.r.id, "a moved item gets a new id");
    assert_eq!(moved.r.vault_id, team);
    assert_eq!(moved.r.version, before.r.version);
    assert_eq!(moved.overview, before.overview, "contents and times kept");
    assert_eq!(moved.details, before.details);
    // What is on disk opens as the item of its new vault.
    let reread = s.item(moved.r.id).await.expect("read");
    assert_eq!(reread.overview, before.overview);
    assert_eq!(reread.details, before.details);
    let history_after = s.history(moved.r.id).await.expect("history");
    let summary = |h: &[super::VersionSummary]| -> Vec<(u64, Vec<String>, i64)> {
        h.iter()
            .map(|v| (v.version, v.changes.clone(), v.updated_at))
            .collect()
    };
    assert_eq!(summary(&history_after), summary(&history_before));
    assert!(history_after.iter().all(|v| v.damaged.is_none()));
    assert_eq!(
        s.item_version(moved.r.id, 1)
            .await
            .expect("v1")
            .field(label::PASSWORD)
            .map(|f| f.value.expose().to_owned()),
        Some("v1".to_owned())
    );
    // The source is gone, with a tombstone for the sync, and the name
    // now finds the moved item.
    assert!(matches!(s.item(added.r.id).await, Err(Error::NotFound(_))));
    assert_eq!(
        s.store().tombstone(added.r.id).await.expect("tombstone"),
        Some(before.r.version)
    );
    assert_eq!(
        s.resolve("GitHub", false).await.expect("name").id,
        moved.r.id
    );
    assert!(names_in(&mut s, personal).await.is_empty());
    assert_eq!(names_in(&mut s, team).await, ["GitHub"]);
    // Both sides wait for the next sync.
    let dirty: Vec<_> = s
        .store()
        .dirty_items(personal)
        .await
        .expect("dirty")
        .into_iter()
        .map(|i| i.item_id)
        .chain(
            s.store()
                .dirty_items(team)
                .await
                .expect("dirty")
                .into_iter()
                .map(|i| i.item_id),
        )
        .collect();
    assert!(dirty.contains(&added.r.id) && dirty.contains(&moved.r.id));
    // A fresh unlock reads the same.
    let dir = s.dir().to_path_buf();
    s.close().await;
    let mut s = Session::unlock(&dir, password(), None)
        .await
        .expect("unlock");
    assert_eq!(names_in(&mut s, team).await, ["GitHub"]);
}

#[tokio::test]
async fn refused_moves_change_nothing() {
    let (_tmp, mut s) = local().await;
    let personal = s.default_vault().0;
    let team = s.create_vault("Team").await.expect("create");
    let mine = s.add(login("GitHub", "me", "a")).await.expect("add");
    // The same name in another vault is allowed (names are per vault)…
    let theirs = s
        .add_to(team, login("GitHub", "team", "b"))
        .await
        .expect("same name, other vault");
    // …and `resolve` tells them apart by vault.
    let err = s.resolve("GitHub", false).await.expect_err("ambiguous");
    match err {
        Error::Ambiguous {
            candidates,
            across_vaults,
            ..
        } => {
            assert!(across_vaults);
            assert!(
                candidates.iter().any(|c| c.contains("vault Team")),
                "{candidates:?}"
            );
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        s.resolve_in("GitHub", false, Some(team))
            .await
            .expect("in team")
            .id,
        theirs.r.id
    );
    assert!(matches!(
        s.resolve_in(&mine.r.id.to_string(), false, Some(team))
            .await,
        Err(Error::NotFoundIn { .. })
    ));
    // Into a vault with an item of that name: refused.
    let err = s.move_item(mine.r.id, team).await.expect_err("name taken");
    assert!(
        matches!(&err, Error::NameTaken { vault: Some(v), .. } if v == "Team"),
        "{err:?}"
    );
    // Into its own vault: refused.
    let err = s.move_item(mine.r.id, personal).await.expect_err("same");
    assert!(err.to_string().contains("already in vault"), "{err}");
    // Into a vault that does not exist: refused.
    let err = s
        .move_item(mine.r.id, uuid::Uuid::now_v7())
        .await
        .expect_err("unknown vault");
    assert!(matches!(err, Error::NoSuchVault { .. }), "{err:?}");
    // Nothing moved.
    assert_eq!(s.item(mine.r.id).await.expect("still").r.vault_id, personal);
    assert_eq!(s.store().tombstone(mine.r.id).await.expect("t"), None);
    assert_eq!(names_in(&mut s, team).await, ["GitHub"]);
    // A trashed item takes no name: it moves into the target's trash.
    s.trash(mine.r.id).await.expect("trash");
    let moved = s.move_item(mine.r.id, team).await.expect("move trashed");
    assert!(moved.overview.trashed_at.is_some());
    let q = Query {
        vault_id: Some(team),
        trash: true,
        ..Query::default()
    };
    assert_eq!(s.list(&q).await.expect("trash").0.len(), 1);
}

#[tokio::test]
async fn a_damaged_version_in_history_stops_the_move() {
    let (_tmp, mut s) = local().await;
    let team = s.create_vault("Team").await.expect("create");
    let item = s.add(login("GitHub", "me", "a")).await.expect("add");
    s.update(item.r.id, &set_password("b")).await.expect("edit");
    sqlx::query("UPDATE item_history SET details = x'00' WHERE item_id = ?")
        .bind(item.r.id.to_string())
        .execute(s.store().pool())
        .await
        .expect("damage");
    let err = s.move_item(item.r.id, team).await.expect_err("damaged");
    assert!(err.to_string().contains("does not decrypt"), "{err}");
    assert!(s.item(item.r.id).await.is_ok(), "the item stays");
    // A copy takes the current version only, so it still works.
    let copy = s.copy_item(item.r.id, team, None).await.expect("copy");
    assert_eq!(copy.overview.name, "GitHub");
    assert_eq!(s.history(copy.r.id).await.expect("history").len(), 1);
}

#[tokio::test]
async fn a_copy_is_a_new_item_and_a_duplicate_gets_a_copy_name() {
    let (_tmp, mut s) = local().await;
    let personal = s.default_vault().0;
    let team = s.create_vault("Team").await.expect("create");
    let item = s.add(login("GitHub", "me", "a")).await.expect("add");
    s.update(item.r.id, &set_password("b")).await.expect("edit");
    let copy = s.copy_item(item.r.id, team, None).await.expect("copy");
    assert_ne!(copy.r.id, item.r.id);
    assert_eq!((copy.r.vault_id, copy.r.version), (team, 1));
    assert_eq!(copy.overview.name, "GitHub");
    assert_eq!(
        copy.field(label::PASSWORD)
            .map(|f| f.value.expose().to_owned()),
        Some("b".to_owned())
    );
    assert!(s.item(item.r.id).await.is_ok(), "the original stays");
    // Again into Team: the name is taken there.
    assert!(matches!(
        s.copy_item(item.r.id, team, None).await,
        Err(Error::NameTaken { .. })
    ));
    let named = s
        .copy_item(item.r.id, team, Some("GitHub (ops)"))
        .await
        .expect("named copy");
    assert_eq!(named.overview.name, "GitHub (ops)");
    // Into its own vault: "NAME (copy)", then "NAME (copy 2)".
    let dup = s.copy_item(item.r.id, personal, None).await.expect("dup");
    assert_eq!(dup.overview.name, "GitHub (copy)");
    let dup2 = s.copy_item(item.r.id, personal, None).await.expect("dup");
    assert_eq!(dup2.overview.name, "GitHub (copy 2)");
    assert!(matches!(
        s.copy_item(item.r.id, personal, Some("GitHub")).await,
        Err(Error::NameTaken { .. })
    ));
}

#[tokio::test]
async fn search_filters_by_vault_name_or_id_prefix() {
    let (_tmp, mut s) = local().await;
    let team = s.create_vault("Team Alpha").await.expect("create");
    s.add(login("GitHub", "me", "a")).await.expect("add");
    s.add_to(team, login("GitLab", "ops", "b"))
        .await
        .expect("add");
    async fn found(s: &mut Session, q: &str) -> Result<Vec<String>, Error> {
        let q = Query::parse(q).expect("parses");
        let hits = s.search(&q, 10).await?;
        let (entries, _) = s.entries().await?;
        Ok(hits
            .hits
            .iter()
            .map(|h| entries[h.index].overview.name.clone())
            .collect())
    }
    assert_eq!(
        found(&mut s, "git vault:\"team alpha\"").await.expect("q"),
        ["GitLab"]
    );
    // UUIDv7 ids start with the time: past it, the random part.
    let prefix = &team.to_string()[..20];
    assert_eq!(
        found(&mut s, &format!("vault:{prefix}")).await.expect("q"),
        ["GitLab"]
    );
    let personal = s.default_vault().1.to_owned();
    assert_eq!(
        found(&mut s, &format!("git vault:{personal}"))
            .await
            .expect("q"),
        ["GitHub"]
    );
    let err = found(&mut s, "vault:Nope").await.expect_err("unknown");
    assert!(matches!(err, Error::NoSuchVault { .. }), "{err:?}");
    assert!(err.to_string().contains("Team Alpha"), "{err}");
    // `list` takes the same filter.
    let q = Query::parse("vault:\"Team Alpha\"").expect("parses");
    assert_eq!(s.list(&q).await.expect("list").0.len(), 1);
}

async fn registered(dir: &std::path::Path, server: &TestServer, email: &str) -> Session {
    let mut s = Session::init(dir, password(), FAST_KDF)
        .await
        .expect("init");
    s.register(&server.url, email, "laptop")
        .await
        .expect("register");
    s
}

async fn sync(s: &mut Session) {
    s.sync(&SyncOptions::default()).await.expect("sync");
}

#[tokio::test]
async fn a_move_into_a_shared_vault_reaches_its_members_and_the_tombstone_other_devices() {
    let tmp = tempfile::tempdir().expect("tmp");
    let server =
        TestServer::start(&format!("sqlite://{}", tmp.path().join("s.db").display())).await;
    let mut ana = registered(&tmp.path().join("ana"), &server, "ana@example.org").await;
    let mut ben = registered(&tmp.path().join("ben"), &server, "ben@example.org").await;
    let team = ana.create_vault("Team").await.expect("create");
    sync(&mut ana).await;
    let fp = ben.fingerprint();
    ana.invite(team, "ben@example.org", Role::Viewer, Some(&fp))
        .await
        .expect("invite");
    ben.accept(team).await.expect("accept");
    // Ana's second device.
    let secret_key = ana.secret_key_display().to_string();
    let mut phone = super::remote::login(
        &tmp.path().join("ana-phone"),
        &server.url,
        "ana@example.org",
        password(),
        &secret_key,
        true,
        "phone",
    )
    .await
    .expect("login");

    let item = ana.add(login("Deploy", "ci", "v1")).await.expect("add");
    ana.update(item.r.id, &set_password("v2"))
        .await
        .expect("edit");
    sync(&mut ana).await;
    sync(&mut phone).await;
    assert!(phone.item(item.r.id).await.is_ok());

    let moved = ana.move_item(item.r.id, team).await.expect("move");
    sync(&mut ana).await;
    // Ben reads it in the shared vault, signed by Ana.
    sync(&mut ben).await;
    let seen = ben.item(moved.r.id).await.expect("ben reads it");
    assert_eq!(
        seen.field(label::PASSWORD)
            .map(|f| f.value.expose().to_owned()),
        Some("v2".to_owned())
    );
    assert_eq!(seen.overview.created_at, item.overview.created_at);
    // Ana's phone takes the tombstone and the moved item.
    sync(&mut phone).await;
    assert!(matches!(
        phone.item(item.r.id).await,
        Err(Error::NotFound(_))
    ));
    assert_eq!(
        phone.item(moved.r.id).await.expect("moved").r.vault_id,
        team
    );

    // A viewer moves nothing out of the vault and copies nothing into it;
    // copying out (reading) is allowed.
    let ben_personal = ben.default_vault().0;
    let err = ben
        .move_item(moved.r.id, ben_personal)
        .await
        .expect_err("viewer source");
    assert!(err.to_string().contains("viewer"), "{err}");
    let own = ben.add(login("Mine", "ben", "x")).await.expect("add");
    let err = ben
        .move_item(own.r.id, team)
        .await
        .expect_err("viewer target");
    assert!(err.to_string().contains("viewer"), "{err}");
    let err = ben
        .copy_item(own.r.id, team, None)
        .await
        .expect_err("viewer target");
    assert!(err.to_string().contains("viewer"), "{err}");
    assert!(ben.item(own.r.id).await.is_ok());
    assert!(ben.item(moved.r.id).await.is_ok());
    let copied = ben
        .copy_item(moved.r.id, ben_personal, None)
        .await
        .expect("copy out");
    assert_eq!(copied.overview.name, "Deploy");

    // Out again: Team's activity names what came in and what left, signed.
    let back = ana
        .move_item(moved.r.id, ana.default_vault().0)
        .await
        .expect("move back");
    sync(&mut ana).await;
    let lines: Vec<(String, &str)> = ana
        .activity(team, 50)
        .await
        .expect("activity")
        .into_iter()
        .filter(|a| a.item_id.is_some())
        .map(|a| (a.what, a.proof))
        .collect();
    assert!(
        lines.contains(&("added \"Deploy\"".to_owned(), "signed")),
        "{lines:?}"
    );
    assert!(
        lines.contains(&("removed for good \"Deploy\"".to_owned(), "signed")),
        "{lines:?}"
    );
    sync(&mut ben).await;
    assert!(matches!(
        ben.item(moved.r.id).await,
        Err(Error::NotFound(_))
    ));
    assert!(ana.item(back.r.id).await.is_ok());
}
