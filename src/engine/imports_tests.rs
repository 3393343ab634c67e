//! Writing imported items: times and history kept, duplicates left out,
//! names numbered, fields the engine refuses dropped and named, a dry run
//! that writes nothing, and history that reaches the server by sync.

use super::imports::{ImportOptions, ImportReport};
use super::model::{Field, FieldKind, ItemKind, label};
use super::search::Query;
use super::sync::SyncOptions;
use super::test_fixtures::{FAST_KDF, login, password};
use super::test_server::TestServer;
use super::{ItemDraft, Session};
use crate::import::{Format, ImportItem, Parsed, Problem};

async fn local() -> (tempfile::TempDir, Session) {
    let tmp = tempfile::tempdir().expect("tmp");
    let s = Session::init(&tmp.path().join("v"), password(), FAST_KDF)
        .await
        .expect("init");
    (tmp, s)
}

fn with_url(mut d: ItemDraft, url: &str) -> ItemDraft {
    d.fields.push(Field::new(label::URL, url, FieldKind::Url));
    d
}

/// Three GitHub versions (two in history), a trashed note with a source
/// id, and a malformed entry the parser reported.
fn parsed() -> Parsed {
    let mut github = ImportItem::new(
        with_url(login("GitHub", "octo", "pw-3"), "https://github.com"),
        "Root/Web/GitHub",
    );
    github.draft.folder = Some("Web".into());
    github.draft.tags = vec!["dev tools".into()];
    github.created_at = Some(1_500_000_000_000);
    github.updated_at = Some(1_600_000_000_000);
    github.source_id = Some("aaaa".into());
    github.history = vec![
        (
            with_url(login("GitHub", "octo", "pw-1"), "https://github.com"),
            Some(1_500_000_000_000),
        ),
        (
            with_url(login("GitHub", "octo", "pw-2"), "https://github.com"),
            Some(1_550_000_000_000),
        ),
    ];
    let mut old = ImportItem::new(
        ItemDraft {
            kind: ItemKind::Note,
            name: "Old note".into(),
            fields: vec![Field::new(label::NOTES, "gone", FieldKind::Multiline)],
            tags: Vec::new(),
            folder: None,
            favorite: false,
        },
        "Root/Recycle Bin/Old note",
    );
    old.trashed = true;
    old.source_id = Some("bbbb".into());
    Parsed {
        items: vec![github, old],
        problems: vec![Problem {
            at: "line 7".into(),
            why: "too few columns".into(),
        }],
        notes: vec!["a remark".into()],
    }
}

async fn import(s: &mut Session, parsed: Parsed, opts: &ImportOptions) -> ImportReport {
    let vault = s.default_vault().0;
    s.import(vault, Format::Kdbx, parsed, opts, &|_, _| {})
        .await
        .expect("import")
}

#[tokio::test]
async fn an_import_keeps_times_history_folders_and_trash() {
    let (_tmp, mut s) = local().await;
    let report = import(&mut s, parsed(), &ImportOptions::default()).await;
    assert_eq!(report.imported.len(), 2);
    assert_eq!(report.problems.len(), 1);
    assert_eq!(report.notes, ["a remark"]);
    let github = report.imported[0].id.expect("id");
    let item = s.item(github).await.expect("item");
    assert_eq!(item.r.version, 3);
    assert_eq!(item.overview.created_at, 1_500_000_000_000);
    assert_eq!(item.overview.updated_at, 1_600_000_000_000);
    assert_eq!(item.overview.folder.as_deref(), Some("Web"));
    assert_eq!(item.overview.tags, ["dev-tools"]);
    assert_eq!(item.overview.source.as_deref(), Some("kdbx:aaaa"));
    assert_eq!(
        item.field(label::PASSWORD).expect("pw").value.expose(),
        "pw-3"
    );
    let history = s.history(github).await.expect("history");
    assert_eq!(history.len(), 3);
    let first = s.item_version(github, 1).await.expect("v1");
    assert_eq!(
        first.field(label::PASSWORD).expect("pw").value.expose(),
        "pw-1"
    );
    assert_eq!(first.overview.updated_at, 1_500_000_000_000);
    let old = s
        .item(report.imported[1].id.expect("id"))
        .await
        .expect("item");
    assert!(old.overview.trashed_at.is_some());
    // Kept after the vault is closed and opened again.
    let dir = s.dir().to_path_buf();
    s.close().await;
    let s = Session::unlock(&dir, password(), None)
        .await
        .expect("unlock");
    assert_eq!(s.history(github).await.expect("history").len(), 3);
}

#[tokio::test]
async fn importing_again_adds_nothing_and_likeness_catches_what_has_no_id() {
    let (_tmp, mut s) = local().await;
    import(&mut s, parsed(), &ImportOptions::default()).await;
    let again = import(&mut s, parsed(), &ImportOptions::default()).await;
    assert!(again.imported.is_empty(), "{:?}", again.imported);
    assert_eq!(again.duplicates.len(), 2);
    // Without ids: the same name, username and URL is a duplicate; the
    // same name with another username is not, and gets a number.
    let mut same = parsed();
    same.items.truncate(1);
    same.items[0].source_id = None;
    let mut other = same.items[0].clone();
    other.draft = with_url(login("github", "someone-else", "x"), "https://github.com");
    same.items.push(other);
    let r = import(&mut s, same, &ImportOptions::default()).await;
    assert_eq!(r.duplicates.len(), 1);
    assert_eq!(r.imported.len(), 1);
    assert_eq!(r.imported[0].name, "github (2)");
    assert_eq!(r.imported[0].renamed_from.as_deref(), Some("github"));
}

#[tokio::test]
async fn a_dry_run_writes_nothing_and_a_folder_prefix_nests() {
    let (_tmp, mut s) = local().await;
    let dry = ImportOptions {
        dry_run: true,
        folder: Some("KeePass".into()),
    };
    let r = import(&mut s, parsed(), &dry).await;
    assert_eq!(r.imported.len(), 2);
    assert!(r.imported.iter().all(|i| i.id.is_none()));
    let all = Query {
        trash: false,
        ..Query::default()
    };
    assert!(s.list(&all).await.expect("list").0.is_empty());
    let opts = ImportOptions {
        dry_run: false,
        folder: Some("KeePass".into()),
    };
    let r = import(&mut s, parsed(), &opts).await;
    let item = s.item(r.imported[0].id.expect("id")).await.expect("item");
    assert_eq!(item.overview.folder.as_deref(), Some("KeePass/Web"));
}

#[tokio::test]
async fn fields_the_engine_refuses_are_dropped_and_named() {
    let (_tmp, mut s) = local().await;
    let mut d = login("Bank", "me", "pw");
    d.fields
        .push(Field::new(label::TOTP, "not base32 !!", FieldKind::Totp));
    d.fields
        .push(Field::new("scan.pdf", "%%%not-base64", FieldKind::File));
    d.name = "   ".into();
    let parsed = Parsed {
        items: vec![ImportItem::new(d, "line 2")],
        ..Parsed::default()
    };
    let r = import(&mut s, parsed, &ImportOptions::default()).await;
    assert_eq!(r.imported.len(), 1);
    assert_eq!(r.imported[0].name, "Untitled");
    let what = r.unmapped[0].what.join("; ");
    assert!(what.contains("\"totp\""), "{what}");
    assert!(what.contains("\"scan.pdf\""), "{what}");
    assert!(what.contains("name"), "{what}");
    let item = s.item(r.imported[0].id.expect("id")).await.expect("item");
    assert!(item.field(label::TOTP).is_none());
    assert_eq!(
        item.field(label::PASSWORD).expect("pw").value.expose(),
        "pw"
    );
}

#[tokio::test]
async fn imported_history_reaches_the_server() {
    let tmp = tempfile::tempdir().expect("tmp");
    let server =
        TestServer::start(&format!("sqlite://{}", tmp.path().join("s.db").display())).await;
    let mut ana = Session::init(&tmp.path().join("ana"), password(), FAST_KDF)
        .await
        .expect("init");
    ana.register(&server.url, "ana@example.org", "laptop")
        .await
        .expect("register");
    let r = import(&mut ana, parsed(), &ImportOptions::default()).await;
    let pushed: u64 = ana
        .sync(&SyncOptions::default())
        .await
        .expect("sync")
        .vaults
        .iter()
        .map(|v| v.pushed)
        .sum();
    // Every version went: GitHub's three and the old note's one.
    assert_eq!(pushed, 4);
    let secret_key = ana.secret_key_display().to_string();
    let mut phone = super::remote::login(
        &tmp.path().join("phone"),
        &server.url,
        "ana@example.org",
        password(),
        &secret_key,
        true,
        "phone",
    )
    .await
    .expect("login");
    phone.sync(&SyncOptions::default()).await.expect("sync");
    let id = r.imported[0].id.expect("id");
    let item = phone.item(id).await.expect("item");
    assert_eq!(item.overview.created_at, 1_500_000_000_000);
    assert_eq!(item.overview.source.as_deref(), Some("kdbx:aaaa"));
    // The versions keep their numbers (a new device fetches history only
    // for the versions it skips of an item it knows: docs/architecture.md,
    // "History travels").
    assert_eq!(item.r.version, 3);
}
