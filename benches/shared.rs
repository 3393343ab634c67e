//! Shared vaults at scale (issue 12): a vault of N items (10 000 by
//! default) shared with a second account, measured from the member's side:
//! accepting the invitation (the membership log verified, the sealed key
//! opened) and the first sync that brings every item (each version's author
//! checked), then a sync after one change, and the owner's invitation;
//! then a member removal, whose key rotation re-wraps every item key
//! (timed on the owner's side, from the first sync it makes to the last),
//! and the remaining member's sync that takes the new key.
//!
//! `cargo bench --bench shared [-- SIZE…]` prints a table and writes
//! `target/bench-shared.json`. The server runs in this process on a
//! temporary SQLite file; both accounts use the tiny test KDF (derivation is
//! not what is measured).

use std::time::Instant;

use openk::engine::members::Role;
use openk::engine::model::{Field, FieldKind, ItemKind, label};
use openk::engine::sync::SyncOptions;
use openk::engine::{ItemDraft, Session};
use serde_json::{Value as Json, json};

#[path = "common/harness.rs"]
mod harness;
#[path = "common/stats.rs"]
mod stats;

use harness::{password, target_dir};
use stats::{TINY_KDF, loadavg, ms};

/// The budget for a member to open (accept and sync) a shared vault of
/// 10 000 items.
const BUDGET_OPEN_MS: f64 = 15_000.0;
/// The budget for removing a member from a shared vault of 10 000 items
/// (issue 12: the key rotated, every item key re-wrapped).
const BUDGET_REMOVE_MS: f64 = 5_000.0;
/// The budget for rotating the account key of an account with 10 000
/// items (issue 13).
const BUDGET_ACCOUNT_KEY_MS: f64 = 10_000.0;

fn draft(i: usize) -> ItemDraft {
    ItemDraft {
        kind: ItemKind::Login,
        name: format!("service {i:05}"),
        fields: vec![
            Field::new(label::USERNAME, format!("user{i}"), FieldKind::Text),
            Field::new(
                label::PASSWORD,
                format!("pw-{i}-{}", i * 7919),
                FieldKind::Secret,
            ),
        ],
        tags: vec!["team".into()],
        folder: None,
        favorite: false,
    }
}

async fn server(db: &std::path::Path) -> (String, tokio::sync::oneshot::Sender<()>) {
    let mut settings = openk_server::Settings::for_tests();
    settings.database = format!("sqlite://{}", db.display());
    settings.auth_rate_limit = 1_000_000;
    settings.data_rate_limit = 0;
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    let state = openk_server::build_state(settings).await.expect("state");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(async move {
        let _ = openk_server::serve_listener(state, listener, async {
            let _ = stopped.await;
        })
        .await;
    });
    (url, stop)
}

async fn account(dir: &std::path::Path, url: &str, email: &str) -> Session {
    let mut s = Session::init(&dir.join(email), password(), TINY_KDF)
        .await
        .expect("init");
    s.register(url, email, "bench").await.expect("register");
    s
}

async fn run(n: usize) -> Json {
    let tmp = tempfile::tempdir().expect("tmp");
    let (url, _stop) = server(&tmp.path().join("server.db")).await;
    let mut owner = account(tmp.path(), &url, "owner@example.org").await;
    let mut member = account(tmp.path(), &url, "member@example.org").await;
    let mut leaver = account(tmp.path(), &url, "leaver@example.org").await;
    let team = owner.create_vault("Team").await.expect("vault");
    owner
        .add_many_to(team, (0..n).map(draft).collect())
        .await
        .expect("items");
    owner
        .sync(&SyncOptions::default())
        .await
        .expect("owner sync");
    let t = Instant::now();
    owner
        .invite(team, "member@example.org", Role::Editor, None)
        .await
        .expect("invite");
    let invite_ms = ms(t.elapsed());
    let t = Instant::now();
    member.accept(team).await.expect("accept");
    let accept_ms = ms(t.elapsed());
    let t = Instant::now();
    let report = member.sync(&SyncOptions::default()).await.expect("sync");
    let first_sync_ms = ms(t.elapsed());
    let pulled: u64 = report.vaults.iter().map(|v| v.pulled).sum();
    let refused: usize = report.vaults.iter().map(|v| v.refused.len()).sum();
    owner.add_to(team, draft(n + 1)).await.expect("one more");
    owner
        .sync(&SyncOptions::default())
        .await
        .expect("owner sync");
    let t = Instant::now();
    member.sync(&SyncOptions::default()).await.expect("sync");
    let change_sync_ms = ms(t.elapsed());
    owner
        .invite(team, "leaver@example.org", Role::Viewer, None)
        .await
        .expect("invite");
    leaver.accept(team).await.expect("accept");
    let t = Instant::now();
    owner
        .remove_member(team, "leaver@example.org")
        .await
        .expect("remove");
    let remove_ms = ms(t.elapsed());
    let t = Instant::now();
    let report = member.sync(&SyncOptions::default()).await.expect("sync");
    let rekey_ms = ms(t.elapsed());
    assert!(report.vaults.iter().any(|v| v.new_key_epoch == Some(2)));
    let refused = refused + report.vaults.iter().map(|v| v.refused.len()).sum::<usize>();
    let t = Instant::now();
    owner.rotate_account_key().await.expect("account key");
    let account_key_ms = ms(t.elapsed());
    json!({
        "items": n,
        "invite_ms": invite_ms,
        "accept_ms": accept_ms,
        "first_sync_ms": first_sync_ms,
        "open_ms": accept_ms + first_sync_ms,
        "change_sync_ms": change_sync_ms,
        "remove_ms": remove_ms,
        "rekey_sync_ms": rekey_ms,
        "account_key_ms": account_key_ms,
        "pulled": pulled,
        "refused": refused,
    })
}

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let sizes: Vec<usize> = if args.is_empty() {
        vec![10_000]
    } else {
        args.iter().filter_map(|a| harness::parse_size(a)).collect()
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let rows: Vec<Json> = sizes.iter().map(|&n| rt.block_on(run(n))).collect();
    println!("shared vault, member's side (load {})", loadavg());
    println!(
        "{:>8} {:>10} {:>10} {:>12} {:>10} {:>12} {:>10} {:>12}",
        "items",
        "invite ms",
        "accept ms",
        "1st sync ms",
        "open ms",
        "1 change ms",
        "remove ms",
        "rekey sync ms"
    );
    for r in &rows {
        let f = |k: &str| r[k].as_f64().unwrap_or(0.0);
        println!(
            "{:>8} {:>10.0} {:>10.0} {:>12.0} {:>10.0} {:>12.0} {:>10.0} {:>12.0}",
            r["items"],
            f("invite_ms"),
            f("accept_ms"),
            f("first_sync_ms"),
            f("open_ms"),
            f("change_sync_ms"),
            f("remove_ms"),
            f("rekey_sync_ms")
        );
        assert_eq!(r["refused"], 0, "no version may be refused: {r}");
    }
    for r in rows.iter().filter(|r| r["items"] == 10_000) {
        let open = r["open_ms"].as_f64().unwrap_or(f64::MAX);
        println!(
            "budget: open a shared vault of 10k items < {BUDGET_OPEN_MS:.0} ms: {:.0} ms {}",
            open,
            stats::verdict(open < BUDGET_OPEN_MS)
        );
        let remove = r["remove_ms"].as_f64().unwrap_or(f64::MAX);
        println!(
            "budget: remove a member of a shared vault of 10k items (key rotated) < {BUDGET_REMOVE_MS:.0} ms: {:.0} ms {}",
            remove,
            stats::verdict(remove < BUDGET_REMOVE_MS)
        );
        let ak = r["account_key_ms"].as_f64().unwrap_or(f64::MAX);
        println!(
            "budget: rotate the account key of an account with 10k items < {BUDGET_ACCOUNT_KEY_MS:.0} ms: {:.0} ms {}",
            ak,
            stats::verdict(ak < BUDGET_ACCOUNT_KEY_MS)
        );
    }
    let out = target_dir(&std::env::current_exe().unwrap_or_default()).join("bench-shared.json");
    let _ = std::fs::write(&out, serde_json::to_vec_pretty(&rows).unwrap_or_default());
}
