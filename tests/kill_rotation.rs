//! A vault-key rotation of 10 000 items killed (SIGKILL) at points drawn at
//! random, with the real `openk` and a real server: after each kill, every
//! item is readable on the device that was killed (after a plain restart)
//! and on another device of the account, and the next rotation goes
//! through. Kill points range over the whole run: before the server
//! transaction, between it and the local one, in the local re-wrap, after.

use std::process::Stdio;
use std::time::{Duration, Instant};

use openk::engine::ItemDraft;
use openk::engine::model::{Field, FieldKind, ItemKind, label};
use openk::engine::{SecretString, Session};
use proptest::test_runner::{Config, TestRunner};

use crate::sync::{Serve, logged_in, registered};
use crate::util::{PASSWORD, TestEnv};

const EMAIL: &str = "kill@example.org";
const ITEMS: usize = 10_000;

fn draft(i: usize) -> ItemDraft {
    ItemDraft {
        kind: ItemKind::Login,
        name: format!("service {i:05}"),
        fields: vec![Field::new(
            label::PASSWORD,
            format!("pw-{i}"),
            FieldKind::Secret,
        )],
        tags: Vec::new(),
        folder: None,
        favorite: false,
    }
}

/// Opens the vault in-process: every item's overview decrypts (so every
/// item key unwraps under the vault key the device holds now), and the
/// passwords of a spread of items read back whole.
fn all_readable(rt: &tokio::runtime::Runtime, env: &TestEnv, secret_key: &str) {
    rt.block_on(async {
        let mut s = Session::unlock(
            &env.vault(),
            SecretString::from(PASSWORD.to_owned()),
            Some(secret_key),
        )
        .await
        .expect("unlock");
        let ids: Vec<(uuid::Uuid, String)> = {
            let (entries, damaged) = s.entries().await.expect("entries");
            assert!(damaged.is_empty(), "{} items do not decrypt", damaged.len());
            entries
                .iter()
                .map(|e| (e.r.id, e.overview.name.clone()))
                .collect()
        };
        assert_eq!(ids.len(), ITEMS);
        for (id, name) in ids.iter().step_by(97) {
            let item = s.item(*id).await.expect("item");
            let i: usize = name["service ".len()..].parse().expect("number");
            let pw = item.field(label::PASSWORD).expect("password");
            assert_eq!(pw.value.expose(), format!("pw-{i}"));
        }
        s.close().await;
    });
}

#[test]
fn a_rotation_killed_anywhere_leaves_every_item_readable_on_every_device() {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let tmp = tempfile::tempdir().expect("tmp");
    let server = Serve::start(tmp.path());
    let a = registered(&server, EMAIL);
    rt.block_on(async {
        let mut s = Session::unlock(
            &a.vault(),
            SecretString::from(PASSWORD.to_owned()),
            Some(a.secret_key()),
        )
        .await
        .expect("unlock");
        s.add_many((0..ITEMS).map(draft).collect())
            .await
            .expect("items");
        s.close().await;
    });
    a.run(&["sync"]);
    let b = logged_in(&server, EMAIL, a.secret_key(), "laptop");
    b.run(&["sync"]);

    // One whole rotation, to know how long one takes.
    let t = Instant::now();
    a.run(&["key", "rotate", "--vault", "Personal", "--yes"]);
    let whole = t.elapsed();
    b.run(&["sync"]);
    all_readable(&rt, &b, a.secret_key());

    let mut runner = TestRunner::new(Config {
        cases: 4,
        failure_persistence: None,
        ..Config::default()
    });
    // Kill points from the start to a little past the end of a run.
    let span = u64::try_from(whole.as_millis()).unwrap_or(3_000) * 5 / 4 + 50;
    runner
        .run(&(0..span), |delay| {
            let mut child = a
                .cmd(["key", "rotate", "--vault", "Personal", "--yes"])
                .into_command()
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("spawn");
            std::thread::sleep(Duration::from_millis(delay));
            // SIGKILL (or nothing, when it ended before).
            let _ = child.kill();
            let _ = child.wait();
            // The killed device, restarted: every item reads, before and
            // after it syncs; the other device too; and the next rotation
            // goes through.
            all_readable(&rt, &a, a.secret_key());
            a.run(&["sync"]);
            all_readable(&rt, &a, a.secret_key());
            b.run(&["sync"]);
            all_readable(&rt, &b, a.secret_key());
            Ok(())
        })
        .unwrap_or_else(|e| panic!("{e}"));
    a.run(&["key", "rotate", "--vault", "Personal", "--yes"]);
    b.run(&["sync"]);
    all_readable(&rt, &b, a.secret_key());
}
