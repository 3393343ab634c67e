//! Item usage through the engine: recording makes no version, uses fold
//! into counters, and two devices' counters merge through a real server
//! (in-process, on a random port), where counters that do not open, were
//! sealed for another device or went backwards are reported and ignored.

use uuid::Uuid;

use super::model::now_millis;
use super::sync::SyncOptions;
use super::test_fixtures::{FAST_KDF as FAST, login, password as pw};
use super::test_server::TestServer;
use super::usage::ItemUse;
use super::*;

const EMAIL: &str = "usage@example.org";

async fn sync(v: &mut Session) -> sync::SyncReport {
    v.sync(&SyncOptions::default()).await.expect("sync")
}

/// A registered first device and a second one of the same account.
async fn two_devices(server: &TestServer, tmp: &tempfile::TempDir) -> (Session, Session) {
    let mut a = Session::init(&tmp.path().join("a"), pw(), FAST)
        .await
        .expect("init");
    a.register(&server.url, EMAIL, "device a")
        .await
        .expect("register");
    let b = another(server, tmp, &a, "b").await;
    (a, b)
}

async fn another(server: &TestServer, tmp: &tempfile::TempDir, a: &Session, name: &str) -> Session {
    remote::login(
        &tmp.path().join(name),
        &server.url,
        EMAIL,
        pw(),
        a.secret_key.display().as_ref(),
        true,
        &format!("device {name}"),
    )
    .await
    .expect("login")
}

/// This device's own sealed counters as stored (after a fold).
async fn own_blob(v: &Session) -> Vec<u8> {
    v.store
        .usage_state()
        .await
        .expect("state")
        .counters
        .into_iter()
        .find(|r| r.device_id == v.device_id())
        .expect("own counters")
        .sealed
}

#[tokio::test]
async fn recording_a_use_makes_no_version_no_history_and_nothing_to_push() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let mut v = Session::init(&tmp.path().join("v"), pw(), FAST)
        .await
        .expect("init");
    let item = v.add(login("GitHub", "octo", "pw")).await.expect("add");
    let id = item.r.id;
    let versions = v.store.item_versions().await.expect("versions");
    let pending = v.store.pending_count().await.expect("pending");
    assert_eq!(v.item_use(id).await.expect("usage"), ItemUse::default());

    let before = now_millis();
    for _ in 0..3 {
        v.record_use(id).await;
    }
    let used = v.item_use(id).await.expect("usage");
    assert_eq!(used.count, 3);
    assert!(used.last_used.is_some_and(|t| t >= before), "{used:?}");
    assert_eq!(
        v.item(id).await.expect("item").r.version,
        1,
        "no new version"
    );
    assert!(v.store.history(id).await.expect("history").is_empty());
    assert_eq!(v.store.item_versions().await.expect("versions"), versions);
    assert_eq!(v.store.pending_count().await.expect("pending"), pending);
    assert_eq!(
        v.history(id).await.expect("history").len(),
        1,
        "history shows only the creation"
    );
    // A use of an item that is not there is recorded all the same (the
    // callers only pass ids they just read) and hurts nothing else.
    let other = Uuid::now_v7();
    v.record_use(other).await;
    assert_eq!(v.item_use(other).await.expect("usage").count, 1);
    // What the store keeps of the uses names neither the item nor the time.
    let state = v.store.usage_state().await.expect("state");
    assert_eq!(state.events.len(), 4);
    let needle = id.to_string();
    for (_, sealed) in &state.events {
        assert!(!sealed.windows(needle.len()).any(|w| w == needle.as_bytes()));
        assert!(!sealed.windows(16).any(|w| w == id.as_bytes()));
    }
    v.close().await;
}

#[tokio::test]
async fn uses_fold_into_the_devices_counters_and_keep_counting() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let mut v = Session::init(&tmp.path().join("v"), pw(), FAST)
        .await
        .expect("init");
    let a = v.add(login("A", "a", "1")).await.expect("add").r.id;
    let b = v.add(login("B", "b", "2")).await.expect("add").r.id;
    for i in 0..300 {
        v.record_use(if i % 3 == 0 { b } else { a }).await;
    }
    let state = v.store.usage_state().await.expect("state");
    assert_eq!(state.counters.len(), 1, "folded at the 256th use");
    assert!(state.events.len() < 256, "{}", state.events.len());
    let usage = v.usage().await.expect("usage");
    assert_eq!(usage.of(a).count, 200);
    assert_eq!(usage.of(b).count, 100);
    assert!(usage.of(a).last_used >= usage.of(b).last_used);
    // A damaged event is skipped, the rest still count.
    v.store.add_usage_event(b"not sealed").await.expect("event");
    assert_eq!(v.usage().await.expect("usage").of(a).count, 200);
    v.close().await;
}

#[tokio::test]
async fn a_moved_item_keeps_its_uses_under_its_new_id() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let mut v = Session::init(&tmp.path().join("v"), pw(), FAST)
        .await
        .expect("init");
    let team = v.create_vault("Team").await.expect("create");
    let id = v
        .add(login("GitHub", "octo", "pw"))
        .await
        .expect("add")
        .r
        .id;
    v.record_use(id).await;
    v.record_use(id).await;
    let before = v.item_use(id).await.expect("usage");
    let moved = v.move_item(id, team).await.expect("move").r.id;
    assert_eq!(v.item_use(moved).await.expect("usage"), before);
    v.record_use(moved).await;
    assert_eq!(v.item_use(moved).await.expect("usage").count, 3);
    // An item never used moves without a count.
    let other = v.add(login("Bank", "me", "pin")).await.expect("add").r.id;
    let moved = v.move_item(other, team).await.expect("move").r.id;
    assert_eq!(v.item_use(moved).await.expect("usage"), ItemUse::default());
    v.close().await;
}

#[tokio::test]
async fn ls_by_use_puts_the_most_recent_first_and_the_never_used_last() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let mut v = Session::init(&tmp.path().join("v"), pw(), FAST)
        .await
        .expect("init");
    let mut ids = Vec::new();
    for name in ["Alpha", "Bravo", "Charlie", "Delta"] {
        ids.push(v.add(login(name, "u", "p")).await.expect("add").r.id);
    }
    v.record_use(ids[2]).await;
    tokio::time::sleep(std::time::Duration::from_millis(3)).await;
    v.record_use(ids[1]).await;
    let (listed, _) = v
        .list_by(&search::Query::default(), ListOrder::Used)
        .await
        .expect("list");
    let names: Vec<&str> = listed.iter().map(|e| e.overview.name.as_str()).collect();
    assert_eq!(names, ["Bravo", "Charlie", "Alpha", "Delta"]);
    v.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_devices_counters_merge_through_the_server() {
    let server = TestServer::start("memory").await;
    let tmp = tempfile::tempdir().expect("tempdir");
    let (mut a, mut b) = two_devices(&server, &tmp).await;
    let id = a
        .add(login("GitHub", "octo", "pw"))
        .await
        .expect("add")
        .r
        .id;
    sync(&mut a).await;
    sync(&mut b).await;

    a.record_use(id).await;
    a.record_use(id).await;
    tokio::time::sleep(std::time::Duration::from_millis(3)).await;
    b.record_use(id).await;
    let b_last = b.item_use(id).await.expect("usage").last_used;
    let r = sync(&mut a).await;
    assert!(r.usage.uploaded, "{:?}", r.usage);
    assert_eq!(r.vaults[0].pushed, 0, "a use pushes no item");
    let r = sync(&mut b).await;
    assert!(r.usage.uploaded);
    assert_eq!(r.usage.received, 1, "a's counters");
    assert!(r.usage.refused.is_empty(), "{:?}", r.usage.refused);
    let r = sync(&mut a).await;
    assert!(!r.usage.uploaded, "unchanged counters are not sent again");
    assert_eq!(r.usage.received, 1, "b's counters");
    for v in [&a, &b] {
        let used = v.item_use(id).await.expect("usage");
        assert_eq!(used.count, 3, "counts add up");
        assert_eq!(used.last_used, b_last, "the latest use wins");
    }
    // Nothing new: nothing sent, nothing taken.
    let r = sync(&mut b).await;
    assert!(!r.usage.uploaded && r.usage.received == 0, "{:?}", r.usage);
    assert_eq!(a.item(id).await.expect("item").r.version, 1);

    // A revoked device's uses still count, also for a device that comes later.
    let b_id = b.device_id();
    a.revoke_device(b_id).await.expect("revoke");
    let mut c = another(&server, &tmp, &a, "c").await;
    let r = sync(&mut c).await;
    assert_eq!(r.usage.received, 2, "a's and the revoked b's");
    assert_eq!(c.item_use(id).await.expect("usage").count, 3);
    for v in [a, b, c] {
        v.close().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn counters_that_do_not_open_or_go_backwards_are_reported_and_ignored() {
    let server = TestServer::start("memory").await;
    let tmp = tempfile::tempdir().expect("tempdir");
    let (mut a, mut b) = two_devices(&server, &tmp).await;
    let mut c = another(&server, &tmp, &a, "c").await;
    let id = a
        .add(login("GitHub", "octo", "pw"))
        .await
        .expect("add")
        .r
        .id;
    sync(&mut a).await;

    b.record_use(id).await;
    sync(&mut b).await;
    let b_first = own_blob(&b).await;
    b.record_use(id).await;
    sync(&mut b).await;
    assert_eq!(sync(&mut a).await.usage.received, 1);
    assert_eq!(a.item_use(id).await.expect("usage").count, 2);

    // c uploads garbage; then b's older counters come back (a replay).
    c.authed(|cl| async move { cl.put_usage(&[1; 60]).await })
        .await
        .expect("put garbage");
    b.authed(|cl| {
        let old = b_first.clone();
        async move { cl.put_usage(&old).await }
    })
    .await
    .expect("put b's old counters");
    a.update(
        id,
        &ItemPatch {
            name: Some("GitHub 2".into()),
            ..ItemPatch::default()
        },
    )
    .await
    .expect("edit");
    let r = sync(&mut a).await;
    assert_eq!(r.vaults[0].pushed, 1, "the items sync all the same");
    assert_eq!(r.usage.refused.len(), 2, "{:?}", r.usage.refused);
    assert!(
        r.usage
            .refused
            .iter()
            .any(|w| w.contains(&c.device_id().to_string()) && w.contains("do not open"))
    );
    assert!(
        r.usage
            .refused
            .iter()
            .any(|w| w.contains(&b.device_id().to_string()) && w.contains("went backwards"))
    );
    assert_eq!(
        a.item_use(id).await.expect("usage").count,
        2,
        "what was good stays"
    );

    // The server passing b's counters off as c's: sealed for b, they do
    // not open as c's.
    b.record_use(id).await;
    sync(&mut b).await;
    let b_now = own_blob(&b).await;
    c.authed(|cl| {
        let blob = b_now.clone();
        async move { cl.put_usage(&blob).await }
    })
    .await
    .expect("put b's counters as c's");
    let r = sync(&mut a).await;
    assert_eq!(r.usage.received, 1, "b's newer counters");
    assert_eq!(r.usage.refused.len(), 1, "{:?}", r.usage.refused);
    assert!(r.usage.refused[0].contains(&c.device_id().to_string()));
    assert_eq!(a.item_use(id).await.expect("usage").count, 3);
    for v in [a, b, c] {
        v.close().await;
    }
}
