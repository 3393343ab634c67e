//! Bulk operations end to end: `tag add|rm --where`, `mv --where`,
//! `rm --where` and `openk apply`, with the real binary: exactly the
//! matching items change, nothing matching is exit 4, no confirmation
//! without a terminal or `--yes`, a bad batch line writes nothing, and a
//! bulk change is pushed by one sync.

use std::collections::BTreeSet;
use std::path::Path;

use serde_json::Value as Json;

use crate::sync::{Serve, registered};
use crate::util::TestEnv;

/// A vault with three Dev logins (two tagged old), a Home login and a note.
fn vault() -> TestEnv {
    let env = TestEnv::init();
    env.add(&[
        "login",
        "--name",
        "alpha",
        "--folder",
        "Dev",
        "--tag",
        "old",
        "--username",
        "a",
    ]);
    env.add(&["login", "--name", "beta", "--folder", "Dev", "--tag", "old"]);
    env.add(&["login", "--name", "gamma", "--folder", "Dev"]);
    env.add(&[
        "login", "--name", "delta", "--folder", "Home", "--tag", "old",
    ]);
    env.add(&[
        "note", "--name", "epsilon", "--folder", "Dev", "--tag", "old",
    ]);
    env
}

/// Every live item: name → its JSON entry.
fn items(env: &TestEnv, extra: &[&str]) -> Vec<Json> {
    env.cmd(["--json", "ls"]).args(extra).json()["items"]
        .as_array()
        .expect("items")
        .clone()
}

fn by_name(env: &TestEnv, name: &str, extra: &[&str]) -> Json {
    items(env, extra)
        .into_iter()
        .find(|e| e["name"] == name)
        .unwrap_or_else(|| panic!("{name} is not listed"))
}

fn tags(entry: &Json) -> BTreeSet<String> {
    entry["tags"]
        .as_array()
        .map(|t| {
            t.iter()
                .filter_map(|x| x.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

fn versions(env: &TestEnv) -> Vec<(String, i64)> {
    let mut v: Vec<(String, i64)> = items(env, &[])
        .iter()
        .map(|e| {
            (
                e["name"].as_str().unwrap_or_default().to_owned(),
                e["version"].as_i64().unwrap_or(-1),
            )
        })
        .collect();
    v.sort();
    v
}

#[test]
fn tag_add_and_rm_change_exactly_the_matching_items() {
    let env = vault();
    let before = versions(&env);
    let out = env
        .cmd([
            "--json",
            "tag",
            "add",
            "stale",
            "--where",
            "folder:Dev tag:old kind:login",
            "--yes",
        ])
        .json();
    let changed: BTreeSet<&str> = out["changed"]
        .as_array()
        .expect("changed")
        .iter()
        .filter_map(|c| c["name"].as_str())
        .collect();
    assert_eq!(changed, BTreeSet::from(["alpha", "beta"]));
    for name in ["alpha", "beta"] {
        assert!(tags(&by_name(&env, name, &[])).contains("stale"), "{name}");
    }
    for name in ["gamma", "delta", "epsilon"] {
        assert!(!tags(&by_name(&env, name, &[])).contains("stale"), "{name}");
    }
    let after = versions(&env);
    for ((n, v0), (_, v1)) in before.iter().zip(&after) {
        let expected = if n == "alpha" || n == "beta" {
            v0 + 1
        } else {
            *v0
        };
        assert_eq!(*v1, expected, "{n}");
    }
    // The old version is in history: the contents are kept.
    assert!(env.run(&["history", "alpha"]).contains("tags"));

    // Removing: an item without the tag is not touched.
    let out = env
        .cmd([
            "--json",
            "tag",
            "rm",
            "old",
            "--where",
            "folder:Dev",
            "--yes",
        ])
        .json();
    assert_eq!(out["changed"].as_array().expect("changed").len(), 3);
    assert_eq!(out["unchanged"], 1);
    assert!(!tags(&by_name(&env, "epsilon", &[])).contains("old"));
    assert!(tags(&by_name(&env, "delta", &[])).contains("old"));
    assert!(tags(&by_name(&env, "alpha", &[])).contains("stale"));
}

#[test]
fn free_text_filters_and_dry_run() {
    let env = vault();
    let before = versions(&env);
    let out = env.run(&["tag", "add", "x", "--where", "alpha", "--dry-run"]);
    assert!(out.contains("alpha"), "{out}");
    assert!(!out.contains("delta"), "{out}");
    // A dry run writes nothing.
    assert_eq!(versions(&env), before);
    let out = env
        .cmd([
            "--json",
            "tag",
            "add",
            "x",
            "--where",
            "is:fav",
            "--dry-run",
        ])
        .code(4);
    out.stderr_has("no item matches");
}

#[test]
fn no_match_is_exit_4_and_nothing_changes() {
    let env = vault();
    let before = versions(&env);
    env.cmd(["tag", "add", "x", "--where", "folder:Nowhere", "--yes"])
        .code(4)
        .stderr_has("no item matches \"folder:Nowhere\"");
    env.cmd(["rm", "--where", "tag:none", "--yes"]).code(4);
    env.cmd(["mv", "--where", "kind:card", "--folder", "X", "--yes"])
        .code(4);
    assert_eq!(versions(&env), before);
    // A query that does not parse is a usage error.
    env.cmd(["rm", "--where", "is:odd", "--yes"]).code(2);
}

#[test]
fn without_a_terminal_and_without_yes_nothing_is_changed() {
    let env = vault();
    let before = versions(&env);
    for args in [
        vec!["tag", "add", "x", "--where", "folder:Dev"],
        vec!["rm", "--where", "folder:Dev"],
        vec!["mv", "--where", "folder:Dev", "--folder", "Work"],
    ] {
        env.cmd(&args)
            .code(2)
            .stderr_has("needs confirmation; confirm on a terminal or pass --yes");
    }
    assert_eq!(versions(&env), before);
}

#[test]
fn rm_where_trashes_only_the_matches() {
    let env = vault();
    env.run(&["rm", "--where", "tag:old kind:login", "--yes"]);
    let live: BTreeSet<String> = env.ls_names(&[]).into_iter().collect();
    assert_eq!(
        live,
        BTreeSet::from(["gamma".to_owned(), "epsilon".to_owned()])
    );
    let trash: BTreeSet<String> = env.ls_names(&["--trash"]).into_iter().collect();
    assert_eq!(trash, ["alpha", "beta", "delta"].map(str::to_owned).into());
    // The single-item form still works and restores work.
    env.run(&["rm", "gamma"]);
    env.run(&["restore", "alpha"]);
    assert!(env.ls_names(&[]).contains(&"alpha".to_owned()));
}

#[test]
fn mv_where_moves_to_a_folder_or_another_vault() {
    let env = vault();
    env.run(&[
        "mv",
        "--where",
        "folder:Dev kind:login",
        "--folder",
        "Work",
        "--yes",
    ]);
    for name in ["alpha", "beta", "gamma"] {
        assert_eq!(by_name(&env, name, &[])["folder"], "Work", "{name}");
    }
    assert_eq!(by_name(&env, "epsilon", &[])["folder"], "Dev");
    assert_eq!(by_name(&env, "delta", &[])["folder"], "Home");
    // The single-item forms: a folder, and "" for none.
    env.run(&["mv", "delta", "--folder", ""]);
    assert!(by_name(&env, "delta", &[])["folder"].is_null());

    env.run(&["vault", "create", "Archive"]);
    let out = env
        .cmd([
            "--json",
            "mv",
            "--where",
            "folder:Work",
            "--vault",
            "Archive",
            "--yes",
        ])
        .json();
    assert_eq!(out["changed"].as_array().expect("changed").len(), 3);
    let archived: BTreeSet<String> = env.ls_names(&["--vault", "Archive"]).into_iter().collect();
    assert_eq!(
        archived,
        ["alpha", "beta", "gamma"].map(str::to_owned).into()
    );
    let personal: BTreeSet<String> = env.ls_names(&["--vault", "Personal"]).into_iter().collect();
    assert_eq!(personal, ["delta", "epsilon"].map(str::to_owned).into());
    // Moved with their contents and history.
    assert_eq!(env.run(&["get", "alpha", "username"]).trim(), "a");
    assert!(env.run(&["history", "alpha"]).lines().count() >= 2);
}

fn write(dir: &Path, name: &str, text: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, text).expect("write");
    path.display().to_string()
}

#[test]
fn apply_writes_a_batch_and_later_lines_see_earlier_ones() {
    let env = vault();
    let batch = [
        r#"{"op":"add","kind":"login","name":"zeta","username":"z","password":"pw-zeta","urls":["https://z.example"],"tags":["new"],"folder":"Dev"}"#,
        r#"{"op":"edit","item":"zeta","set":{"Account":"42"},"name":"zeta2"}"#,
        r#"{"op":"edit","item":"alpha","tags":["kept"],"folder":""}"#,
        r#"{"op":"rm","item":"beta"}"#,
        r#"{"op":"add","kind":"note","name":"eta","notes":"hello","fields":[{"label":"PIN","value":"1234","kind":"secret"}]}"#,
    ]
    .join("\n");
    let file = write(env.root(), "ops.jsonl", &batch);
    let out = env.cmd(["--json", "apply", &file]).json();
    assert_eq!(out["operations"].as_array().expect("ops").len(), 5);
    assert_eq!(env.run(&["get", "zeta2"]).trim(), "pw-zeta");
    assert_eq!(env.run(&["get", "zeta2", "Account"]).trim(), "42");
    // An item added and edited in one batch is written once.
    assert_eq!(by_name(&env, "zeta2", &[])["version"], 1);
    assert_eq!(
        tags(&by_name(&env, "alpha", &[])),
        BTreeSet::from(["kept".to_owned()])
    );
    assert!(env.ls_names(&["--trash"]).contains(&"beta".to_owned()));
    assert_eq!(env.run(&["get", "eta", "PIN"]).trim(), "1234");

    // From standard input, with --dry-run: nothing written.
    let before = versions(&env);
    let out = env
        .cmd(["apply", "--dry-run"])
        .stdin(r#"{"op":"rm","item":"gamma"}"#)
        .stdout();
    assert!(out.contains("gamma"), "{out}");
    assert_eq!(versions(&env), before);
}

#[test]
fn apply_is_all_or_nothing_and_names_the_bad_line() {
    let env = vault();
    let before = versions(&env);
    let good = r#"{"op":"add","kind":"login","name":"one"}"#;
    // A line that does not parse.
    let batch = [
        good,
        r#"{"op":"rm","item":"alpha"}"#,
        r#"{"op":"add","kind":"login","name":"x","colour":"red"}"#,
        r#"{"op":"add","kind":"login","name":"two"}"#,
        r#"{"op":"rm","item":"beta"}"#,
    ]
    .join("\n");
    let file = write(env.root(), "bad.jsonl", &batch);
    env.cmd(["apply", &file])
        .code(2)
        .stderr_has("line 3:")
        .stderr_has("unknown key \"colour\"");
    assert_eq!(versions(&env), before);
    // A line that parses but cannot be applied (a name already taken by an
    // earlier line of the batch; an item that does not exist).
    let batch = [
        good,
        r#"{"op":"rm","item":"alpha"}"#,
        r#"{"op":"add","kind":"login","name":"ONE"}"#,
        r#"{"op":"add","kind":"login","name":"two"}"#,
        r#"{"op":"rm","item":"beta"}"#,
    ]
    .join("\n");
    let file = write(env.root(), "taken.jsonl", &batch);
    env.cmd(["apply", &file])
        .code(2)
        .stderr_has("line 3:")
        .stderr_has("already exists");
    let file = write(
        env.root(),
        "missing.jsonl",
        &[
            good,
            good.replace("one", "two").as_str(),
            r#"{"op":"edit","item":"nope","tags":["t"]}"#,
        ]
        .join("\n"),
    );
    env.cmd(["apply", &file]).code(4).stderr_has("line 3:");
    assert_eq!(versions(&env), before);
    assert!(!env.ls_names(&[]).contains(&"one".to_owned()));
}

/// How many pushes the server applied (its push log, one row per pushed
/// batch) and how many item records it holds at a version above 1.
fn server_pushes(dir: &Path) -> Option<(i64, i64)> {
    if !crate::util::have("sqlite3") {
        eprintln!("skipped: the sqlite3 CLI is not installed");
        return None;
    }
    let db = dir.join("server.db").display().to_string();
    let count = |sql: &str| -> i64 {
        crate::util::external("sqlite3", &[db.clone(), sql.to_owned()])
            .trim()
            .parse()
            .expect("a count")
    };
    Some((
        count("SELECT COUNT(*) FROM push_log"),
        count("SELECT COUNT(*) FROM records WHERE version > 1"),
    ))
}

#[test]
fn a_bulk_change_is_pushed_by_one_sync_in_one_push() {
    let tmp = tempfile::tempdir().expect("tmp");
    let server = Serve::start(tmp.path());
    let env = registered(&server, "bulk@example.org");
    for i in 0..12 {
        env.add(&["login", "--name", &format!("svc {i}"), "--folder", "Ops"]);
    }
    env.run(&["sync"]);
    let Some((pushes, changed)) = server_pushes(tmp.path()) else {
        return;
    };
    assert_eq!(changed, 0);
    env.run(&["tag", "add", "audited", "--where", "folder:Ops", "--yes"]);
    let (after, changed) = server_pushes(tmp.path()).expect("sqlite3");
    assert_eq!(after - pushes, 1, "the 12 changes went in one push");
    assert_eq!(changed, 12);
    // Nothing is left to push.
    let status = env.json(&["status"]);
    assert_eq!(status["sync"]["pending"], 0, "{status}");
}
