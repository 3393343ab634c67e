//! A bulk edit of 2000 items (`openk tag add|rm --where … --yes`) killed
//! (SIGKILL) at points drawn at random: afterwards the vault opens, every
//! item decrypts, and the items are either all as before or all changed
//! (every one tagged at the new version, or none), never a mix.

use std::process::Stdio;
use std::time::{Duration, Instant};

use openk::engine::ItemDraft;
use openk::engine::model::{Field, FieldKind, ItemKind, label};
use openk::engine::{SecretString, Session};
use proptest::test_runner::{Config, TestRunner};

use crate::util::{PASSWORD, TestEnv};

const ITEMS: usize = 2000;
const TAG: &str = "bulk";

fn draft(i: usize) -> ItemDraft {
    ItemDraft {
        kind: ItemKind::Login,
        name: format!("svc {i:04}"),
        fields: vec![Field::new(
            label::PASSWORD,
            format!("pw-{i}"),
            FieldKind::Secret,
        )],
        tags: vec!["base".into()],
        folder: Some("Ops".into()),
        favorite: false,
    }
}

/// How many items carry the tag, after checking that the vault opens,
/// every item decrypts, and each item's version says the same (tagged at
/// an even number of bulk edits after creation means untagged).
fn tagged(rt: &tokio::runtime::Runtime, env: &TestEnv) -> usize {
    rt.block_on(async {
        let mut s = Session::unlock(
            &env.vault(),
            SecretString::from(PASSWORD.to_owned()),
            Some(env.secret_key()),
        )
        .await
        .expect("the vault opens");
        let (entries, damaged) = s.entries().await.expect("entries");
        assert!(damaged.is_empty(), "{} items do not decrypt", damaged.len());
        assert_eq!(entries.len(), ITEMS);
        let versions: std::collections::BTreeSet<u64> =
            entries.iter().map(|e| e.r.version).collect();
        assert_eq!(
            versions.len(),
            1,
            "items at different versions: {versions:?}"
        );
        let n = entries
            .iter()
            .filter(|e| e.overview.tags.iter().any(|t| t == TAG))
            .count();
        s.close().await;
        n
    })
}

fn toggle(env: &TestEnv, tagged_now: bool) -> std::process::Command {
    let verb = if tagged_now { "rm" } else { "add" };
    env.cmd(["tag", verb, TAG, "--where", "folder:Ops", "--yes"])
        .into_command()
}

#[test]
fn a_bulk_edit_killed_anywhere_leaves_all_or_nothing() {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let env = TestEnv::init();
    rt.block_on(async {
        let mut s = Session::unlock(
            &env.vault(),
            SecretString::from(PASSWORD.to_owned()),
            Some(env.secret_key()),
        )
        .await
        .expect("unlock");
        s.add_many((0..ITEMS).map(draft).collect())
            .await
            .expect("items");
        s.close().await;
    });
    // One whole run, to know how long one takes.
    let t = Instant::now();
    let status = toggle(&env, false)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("run");
    assert!(status.success());
    let whole = t.elapsed();
    assert_eq!(tagged(&rt, &env), ITEMS);

    let mut runner = TestRunner::new(Config {
        cases: 4,
        failure_persistence: None,
        ..Config::default()
    });
    let span = u64::try_from(whole.as_millis()).unwrap_or(2_000) * 5 / 4 + 20;
    runner
        .run(&(0..span), |delay| {
            let before = tagged(&rt, &env);
            let mut child = toggle(&env, before == ITEMS)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("spawn");
            std::thread::sleep(Duration::from_millis(delay));
            let _ = child.kill();
            let _ = child.wait();
            let after = tagged(&rt, &env);
            assert!(
                after == 0 || after == ITEMS,
                "killed at {delay} ms: {after} of {ITEMS} items tagged"
            );
            Ok(())
        })
        .unwrap_or_else(|e| panic!("{e}"));
}
