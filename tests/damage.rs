//! A damaged or tampered vault: blobs changed with the `sqlite3` CLI, old
//! versions put back, truncated and garbage database files. Damage is
//! reported (exit 1, naming the item) and never a panic; undamaged items stay
//! readable.

use std::fs;

use serde_json::Value as Json;

use crate::util::{self, TestEnv, names};

/// Runs SQL on the vault database with the `sqlite3` CLI; None (after saying
/// why) when it is not installed.
fn sqlite(env: &TestEnv, sql: &str) -> Option<String> {
    if !util::have("sqlite3") {
        eprintln!("skipping: the sqlite3 CLI is not installed");
        return None;
    }
    let db = env.db();
    Some(util::external(
        "sqlite3",
        &[db.to_str().expect("utf-8 path"), sql],
    ))
}

/// Flips one byte of `column` of item `id`, and checks that exactly that byte changed.
fn flip_byte(env: &TestEnv, id: &str, column: &str, at: usize) -> Option<()> {
    let read = format!("SELECT hex({column}) FROM items WHERE id = '{id}';");
    let before = sqlite(env, &read)?;
    sqlite(
        env,
        &format!(
            "UPDATE items SET {column} = CAST(substr({column}, 1, {keep}) || \
             CASE WHEN substr({column}, {at}, 1) = X'41' THEN X'42' ELSE X'41' END || \
             substr({column}, {after}) AS BLOB) WHERE id = '{id}';",
            keep = at - 1,
            after = at + 1,
        ),
    )?;
    let after = sqlite(env, &read)?;
    let (b, a) = (before.trim(), after.trim());
    assert_eq!(b.len(), a.len(), "the blob keeps its length");
    let differing = b
        .as_bytes()
        .chunks(2)
        .zip(a.as_bytes().chunks(2))
        .filter(|(x, y)| x != y)
        .count();
    assert_eq!(differing, 1, "exactly one byte flipped:\n{b}\n{a}");
    Some(())
}

// A flipped byte in one item's overview: ls lists the others and exits 1 naming the damaged id; other items still open.
#[test]
fn damaged_overview_is_reported_and_isolated() {
    let env = TestEnv::init();
    let a = env.add(&["login", "--name", "Alpha", "--password", "alpha-pw"]);
    env.add(&["login", "--name", "Bravo", "--password", "bravo-pw"]);
    env.add(&["note", "--name", "Charlie", "--notes", "charlie notes"]);
    if flip_byte(&env, &a, "overview", 40).is_none() {
        return;
    }
    let run = env.cmd(["ls"]).code(1);
    run.stdout_has("Bravo")
        .stdout_has("Charlie")
        .stdout_lacks("Alpha");
    run.stderr_has(&a).stderr_has("damaged");
    let run = env.cmd(["--json", "ls"]).code(1);
    let json = run.json();
    assert_eq!(names(&json["items"]), ["Bravo", "Charlie"]);
    let damaged = json["damaged"].as_array().expect("damaged array");
    assert_eq!(damaged.len(), 1, "{json}");
    assert_eq!(damaged[0]["id"], a.as_str());
    let run = env.cmd(["search", "bravo"]).code(1);
    run.stdout_has("Bravo").stderr_has(&a);

    assert_eq!(env.run(&["get", "Bravo"]), "bravo-pw\n");
    env.cmd(["show", "Charlie"]).ok();
    let run = env.cmd(["show", &a]).code(1);
    run.stderr_has(&a).stderr_has("damaged");
    let run = env.cmd(["get", &a]).code(1);
    run.stderr_has(&a).stdout_lacks("alpha-pw");
    // Writing to a damaged item fails too, and changes nothing.
    env.cmd(["edit", &a, "--password", "x"])
        .code(1)
        .stderr_has("damaged");
    env.cmd(["rm", &a]).code(1);
    // The healthy items can still be changed.
    env.run(&["edit", "Bravo", "--username", "b"]);
    env.run(&["add", "login", "--name", "Delta"]);
    let run = env.cmd(["--json", "ls"]).code(1);
    assert_eq!(names(&run.json()["items"]), ["Bravo", "Charlie", "Delta"]);
}

// Two items' details swapped: show/get of either fails with exit 1 naming it, while ls stays fine.
#[test]
fn swapped_details_are_detected() {
    let env = TestEnv::init();
    let a = env.add(&["login", "--name", "Alpha", "--password", "alpha-pw"]);
    let b = env.add(&["login", "--name", "Bravo", "--password", "bravo-pw"]);
    env.add(&["login", "--name", "Charlie", "--password", "charlie-pw"]);
    let swap = format!(
        "CREATE TEMP TABLE saved AS SELECT id, details FROM items; \
         UPDATE items SET details = (SELECT details FROM saved WHERE saved.id = \
         CASE items.id WHEN '{a}' THEN '{b}' ELSE '{a}' END) WHERE id IN ('{a}', '{b}');"
    );
    if sqlite(&env, &swap).is_none() {
        return;
    }
    assert_eq!(env.ls_names(&[]), ["Alpha", "Bravo", "Charlie"]);
    for (id, name, other_pw) in [(&a, "Alpha", "bravo-pw"), (&b, "Bravo", "alpha-pw")] {
        let run = env.cmd(["show", name, "--reveal"]).code(1);
        run.stderr_has(id)
            .stderr_has("damaged")
            .stdout_lacks(other_pw);
        let run = env.cmd(["get", name]).code(1);
        run.stderr_has(id).stdout_lacks(other_pw);
    }
    assert_eq!(env.run(&["get", "Charlie"]), "charlie-pw\n");
}

// An older version put back into `items` (rollback) is refused as damaged, with or without its old version number.
#[test]
fn rolled_back_versions_are_detected() {
    let env = TestEnv::init();
    let a = env.add(&["login", "--name", "Alpha", "--password", "v1-password"]);
    env.run(&["edit", "Alpha", "--password", "v2-password"]);
    env.add(&["login", "--name", "Bravo", "--password", "bravo-pw"]);
    let put_back = format!(
        "UPDATE items SET \
         wrapped_key = (SELECT wrapped_key FROM item_history WHERE item_id = '{a}' AND version = 1), \
         overview = (SELECT overview FROM item_history WHERE item_id = '{a}' AND version = 1), \
         details = (SELECT details FROM item_history WHERE item_id = '{a}' AND version = 1) \
         WHERE id = '{a}';"
    );
    if sqlite(&env, &put_back).is_none() {
        return;
    }
    // The blobs of version 1 under version number 2.
    let run = env.cmd(["show", &a, "--reveal"]).code(1);
    run.stderr_has("damaged")
        .stderr_has(&a)
        .stdout_lacks("v1-password");
    env.cmd(["get", &a]).code(1).stdout_lacks("v1-password");
    assert_eq!(env.run(&["get", "Bravo"]), "bravo-pw\n");

    // The whole of version 1, number included.
    sqlite(
        &env,
        &format!("UPDATE items SET version = 1 WHERE id = '{a}';"),
    );
    let run = env.cmd(["show", &a, "--reveal"]).code(1);
    run.stderr_has("damaged")
        .stderr_has(&a)
        .stdout_lacks("v1-password");
    let run = env.cmd(["get", &a]).code(1);
    run.stderr_has("damaged").stdout_lacks("v1-password");
    env.cmd(["edit", &a, "--password", "v3"]).fails();
    assert_eq!(env.run(&["get", "Bravo"]), "bravo-pw\n");
}

/// Deterministic junk (xorshift), so a failure can be reproduced.
fn junk(len: usize, mut seed: u64) -> Vec<u8> {
    (0..len)
        .map(|_| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed.to_le_bytes()[0]
        })
        .collect()
}

/// Every command on a broken vault.db exits 1 saying "damaged", without a panic.
fn assert_damaged_everywhere(env: &TestEnv, what: &str) {
    let commands: [&[&str]; 7] = [
        &["ls"],
        &["show", "Alpha"],
        &["get", "Alpha"],
        &["add", "login", "--name", "New"],
        &["search", "a"],
        &["kit"],
        &["--json", "ls"],
    ];
    for args in commands {
        let run = env.cmd(args).code(1);
        assert!(
            run.stderr.contains("damaged"),
            "{what}: no \"damaged\" in the message\n{run}"
        );
    }
    // init never writes over a vault.db, damaged or not.
    env.cmd([
        "init",
        "--kdf-memory-mib",
        "19",
        "--kdf-iterations",
        "2",
        "--kdf-parallelism",
        "1",
    ])
    .code(1)
    .stderr_has("already exists");
}

// A truncated vault.db, or one full of random bytes, is reported as damaged (exit 1) by every command, never a panic.
#[test]
fn truncated_and_garbage_databases() {
    let env = TestEnv::init();
    env.add(&["login", "--name", "Alpha", "--password", "alpha-pw"]);
    for i in 0..10 {
        env.add(&[
            "note",
            "--name",
            &format!("Note {i}"),
            "--notes",
            &"x".repeat(2000),
        ]);
    }
    env.settle();
    let original = fs::read(env.db()).expect("read vault.db");
    assert!(original.len() > 4096, "a database bigger than a page");
    fs::File::options()
        .write(true)
        .open(env.db())
        .and_then(|f| f.set_len(1000))
        .expect("truncate vault.db");
    assert_damaged_everywhere(&env, "truncated");
    assert_eq!(
        fs::metadata(env.db()).expect("stat").len(),
        1000,
        "nothing rewrote the file"
    );

    fs::write(env.db(), junk(64 * 1024, 0x9e37_79b9_7f4a_7c15)).expect("write junk");
    assert_damaged_everywhere(&env, "garbage");

    // A valid SQLite header in front of garbage.
    let mut fake = original[..100].to_vec();
    fake.extend(junk(original.len() - 100, 42));
    fs::write(env.db(), &fake).expect("write fake");
    assert_damaged_everywhere(&env, "SQLite header, garbage pages");

    // Back to the original bytes, everything works again.
    for stale in ["vault.db-wal", "vault.db-shm"] {
        let _ = fs::remove_file(env.vault().join(stale));
    }
    fs::write(env.db(), &original).expect("restore vault.db");
    assert_eq!(env.run(&["get", "Alpha"]), "alpha-pw\n");
    let json: Json = env.json(&["ls"]);
    assert_eq!(json["items"].as_array().expect("items").len(), 11);
}

// A tampered header or another vault's Secret Key is exit 3 (like a wrong password); a malformed secret.key is exit 1; a damaged old version is flagged by history while the current one still opens.
#[test]
fn tampered_header_secret_key_and_history() {
    let env = TestEnv::init();
    let id = env.add(&["login", "--name", "H", "--password", "h1"]);
    env.run(&["edit", "H", "--password", "h2"]);

    // Older versions: damage version 1 in the history table.
    let zero = format!(
        "UPDATE item_history SET details = zeroblob(length(details)) WHERE item_id = '{id}' AND version = 1;"
    );
    if sqlite(&env, &zero).is_none() {
        return;
    }
    let history = env.json(&["history", "H"]);
    let versions = history["versions"].as_array().expect("versions");
    assert_eq!(versions.len(), 2, "{history}");
    assert!(
        versions[0]["damaged"].is_string(),
        "version 1 is flagged: {history}"
    );
    assert!(versions[1]["damaged"].is_null(), "{history}");
    env.cmd(["history", "H"]).ok().stdout_has("DAMAGED");
    env.cmd(["show", "H", "--version", "1", "--reveal"])
        .code(1)
        .stderr_has(&id)
        .stdout_lacks("h1");
    assert_eq!(env.run(&["get", "H"]), "h2\n");

    // The header binds its KDF parameters: changing them locks the vault.
    let set_iterations = |from: u32, to: u32| {
        sqlite(
            &env,
            &format!(
                "UPDATE meta SET value = CAST(replace(CAST(value AS TEXT), \
                 '\"iterations\":{from}', '\"iterations\":{to}') AS BLOB) WHERE key = 'header';"
            ),
        )
    };
    set_iterations(2, 3);
    env.cmd(["ls"]).code(3).stderr_has("tampered");
    set_iterations(3, 2);
    env.cmd(["ls"]).ok();

    // Another vault's Secret Key does not open this one.
    let other = TestEnv::init();
    let sk_file = env.vault().join("secret.key");
    let own = fs::read(&sk_file).expect("read secret.key");
    fs::copy(other.vault().join("secret.key"), &sk_file).expect("copy secret.key");
    env.cmd(["get", "H"]).code(3).stdout_lacks("h2");
    fs::write(&sk_file, "not a secret key\n").expect("write");
    env.cmd(["get", "H"])
        .code(1)
        .stderr_has("secret.key")
        .stdout_lacks("h2");
    fs::write(&sk_file, own).expect("restore secret.key");
    assert_eq!(env.run(&["get", "H"]), "h2\n");
}
