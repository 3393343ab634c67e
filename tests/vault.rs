//! Vault commands: init, passwd, kit, unlocking, permissions, concurrency.

use std::fs;

use crate::util::{self, KDF_FLOOR, PASSWORD, TestEnv, chmod, mode};

/// The value after `Label:` on a line of `text`.
fn line_value<'a>(text: &'a str, label: &str) -> &'a str {
    text.lines()
        .find_map(|l| l.trim_start().strip_prefix(label))
        .map(str::trim)
        .unwrap_or_else(|| panic!("no {label:?} line in:\n{text}"))
}

fn assert_secret_key_format(sk: &str) {
    let groups: Vec<usize> = sk.split('-').map(str::len).collect();
    assert!(sk.starts_with("OK1-"), "{sk}");
    assert_eq!(groups, [3, 6, 6, 6, 6, 4], "Secret Key format: {sk}");
}

// init prints the Secret Key and the kit path, writes a 0600 kit with the key and account id, and a 0700 vault of 0600 files.
#[test]
fn init_prints_the_secret_key_and_writes_private_files() {
    let env = TestEnv::new();
    let kit = env.kit_path();
    let run = env
        .cmd(["init"])
        .args(KDF_FLOOR)
        .arg("--kit")
        .arg(&kit)
        .ok();
    run.stderr_lacks("warning");
    let sk = line_value(&run.stdout, "Secret Key:");
    assert_secret_key_format(sk);
    let account = line_value(&run.stdout, "Account ID:");
    run.stdout_has(&kit.display().to_string());
    run.stdout_has(&env.vault().display().to_string());

    assert_eq!(mode(&kit), 0o600, "kit file mode");
    let kit_text = fs::read_to_string(&kit).expect("read the kit");
    assert!(
        kit_text.contains(sk),
        "kit lacks the Secret Key:\n{kit_text}"
    );
    assert!(
        kit_text.contains(account),
        "kit lacks the account id:\n{kit_text}"
    );

    assert_eq!(mode(&env.vault()), 0o700, "vault dir mode");
    let files = env.vault_files();
    assert!(files.iter().any(|f| f.ends_with("vault.db")), "{files:?}");
    assert!(files.iter().any(|f| f.ends_with("secret.key")), "{files:?}");
    for f in &files {
        assert_eq!(mode(f), 0o600, "mode of {}", f.display());
    }
    // The vault opens with the password and the Secret Key file.
    env.cmd(["ls"]).ok().stdout_has("No items");
}

// A second init fails (exit 1) saying a vault exists, and leaves vault.db, secret.key and the items untouched.
#[test]
fn init_refuses_an_existing_vault_and_changes_nothing() {
    let env = TestEnv::init();
    env.add(&["login", "--name", "Keep", "--password", "keep-pw"]);
    // A refused init must not write at all; start from a vault.db that holds
    // every change (see `writes_are_in_vault_db_when_the_command_exits`).
    env.settle();
    let before = util::snapshot(&env.vault());
    let kit2 = env.root().join("kit2.txt");
    env.cmd(["init"])
        .args(KDF_FLOOR)
        .arg("--kit")
        .arg(&kit2)
        .code(1)
        .stderr_has("vault already exists");
    // Also with another password, through --password-stdin.
    env.cmd(["--password-stdin", "init"])
        .args(KDF_FLOOR)
        .arg("--kit")
        .arg(&kit2)
        .env_remove("OPENK_PASSWORD")
        .stdin("another-master-pw-Rt6y\n")
        .code(1)
        .stderr_has("vault already exists");
    assert!(!kit2.exists(), "no second kit is written");
    util::assert_same_files(&before, &util::snapshot(&env.vault()));
    assert_eq!(env.run(&["get", "Keep"]), "keep-pw\n");
}

// init --json reports vault, account_id, secret_key, emergency_kit and kdf.
#[test]
fn init_json_output() {
    let env = TestEnv::new();
    let kit = env.kit_path();
    let out = env
        .cmd(["--json", "init"])
        .args(KDF_FLOOR)
        .arg("--kit")
        .arg(&kit)
        .json();
    assert_eq!(
        out["home"].as_str(),
        Some(env.vault().to_str().expect("utf-8"))
    );
    assert_eq!(
        out["emergency_kit"].as_str(),
        Some(kit.to_str().expect("utf-8"))
    );
    let sk = out["secret_key"].as_str().expect("secret_key");
    assert_secret_key_format(sk);
    let account = out["account_id"].as_str().expect("account_id");
    assert_eq!(account.len(), 36, "{out}");
    assert_eq!(out["kdf"]["memory_kib"], 19 * 1024, "{out}");
    assert_eq!(out["kdf"]["iterations"], 2, "{out}");
    assert_eq!(out["kdf"]["parallelism"], 1, "{out}");
    let kit_text = fs::read_to_string(&kit).expect("read the kit");
    assert!(
        kit_text.contains(sk) && kit_text.contains(account),
        "{kit_text}"
    );
}

// KDF parameters below the floor work with a warning; absurd ones are a usage error (exit 2) that creates nothing.
#[test]
fn init_kdf_parameters_floor_and_ceiling() {
    let weak = TestEnv::new();
    weak.cmd(["init", "--kdf-memory-mib", "8", "--kdf-iterations", "1"])
        .args(["--kdf-parallelism", "1", "--kit"])
        .arg(weak.kit_path())
        .ok()
        .stderr_has("warning")
        .stderr_has("below the recommended floor");
    weak.cmd(["ls"]).ok();
    for absurd in [
        [
            "--kdf-memory-mib",
            "19",
            "--kdf-iterations",
            "2",
            "--kdf-parallelism",
            "99",
        ],
        [
            "--kdf-memory-mib",
            "999999",
            "--kdf-iterations",
            "2",
            "--kdf-parallelism",
            "1",
        ],
        [
            "--kdf-memory-mib",
            "19",
            "--kdf-iterations",
            "0",
            "--kdf-parallelism",
            "1",
        ],
    ] {
        let env = TestEnv::new();
        env.cmd(["init"])
            .args(absurd)
            .arg("--kit")
            .arg(env.kit_path())
            .code(2)
            .stderr_has("invalid key derivation parameters")
            .stderr_lacks("below the recommended floor");
        assert!(!env.db().exists(), "no vault after a refused init");
        assert!(!env.kit_path().exists(), "no kit after a refused init");
    }
}

// passwd via --password-stdin --new-password-stdin: the old password then fails (exit 3), the new one opens the same items; kit still shows the same Secret Key.
#[test]
fn passwd_changes_the_password_and_kit_shows_the_same_secret_key() {
    let mut env = TestEnv::init();
    env.add(&["login", "--name", "Mail", "--password", "item-pw-1"]);
    env.add(&["note", "--name", "Diary", "--notes", "dear diary"]);
    let new = "brand new master password 9";
    env.cmd(["--password-stdin", "passwd", "--new-password-stdin"])
        .env_remove("OPENK_PASSWORD")
        .stdin(format!("{PASSWORD}\n{new}\n"))
        .ok()
        .stdout_has("Master password changed");
    env.cmd(["ls"]).code(3).stderr_has("wrong master password");
    env.set_password(new);
    assert_eq!(env.ls_names(&[]), ["Diary", "Mail"]);
    assert_eq!(env.run(&["get", "Mail"]), "item-pw-1\n");
    assert_eq!(env.run(&["get", "Diary"]), "dear diary\n");

    let kit = env.run(&["kit"]);
    assert_eq!(line_value(&kit, "Secret Key:"), env.secret_key());
    assert_eq!(line_value(&kit, "Account ID:"), env.account_id());
    let json = env.json(&["kit"]);
    assert_eq!(json["secret_key"].as_str(), Some(env.secret_key()));
    assert_eq!(json["account_id"].as_str(), Some(env.account_id()));
    let out = env.root().join("kit-again.txt");
    env.cmd(["kit", "--out"]).arg(&out).ok();
    assert_eq!(mode(&out), 0o600);
    assert!(
        fs::read_to_string(&out)
            .expect("read")
            .contains(env.secret_key())
    );

    // A wrong current password changes nothing.
    env.cmd(["--password-stdin", "passwd", "--new-password-stdin"])
        .env_remove("OPENK_PASSWORD")
        .stdin("not the password\nwhatever\n")
        .code(3);
    env.cmd(["ls"]).ok();
}

// Wrong password → exit 3; no password and no terminal → exit 3 with a hint; missing vault → exit 4 naming `openk init`.
#[test]
fn locked_and_missing_vault_errors() {
    let env = TestEnv::init();
    env.add(&["login", "--name", "X", "--password", "x-pw"]);
    env.cmd(["ls"])
        .env("OPENK_PASSWORD", "wrong password")
        .code(3)
        .stderr_has("wrong master password");
    env.cmd(["get", "X"])
        .env("OPENK_PASSWORD", "wrong password")
        .code(3)
        .stdout_lacks("x-pw");
    let run = env.cmd(["ls"]).env_remove("OPENK_PASSWORD").code(3);
    run.stderr_has("OPENK_PASSWORD")
        .stderr_has("--password-stdin");
    env.cmd(["--password-stdin", "ls"])
        .env_remove("OPENK_PASSWORD")
        .stdin("")
        .code(3)
        .stderr_has("standard input");
    env.cmd(["--password-stdin", "get", "X"])
        .env_remove("OPENK_PASSWORD")
        .stdin(format!("{PASSWORD}\n"))
        .ok()
        .stdout_has("x-pw");

    let empty = TestEnv::new();
    empty.cmd(["ls"]).code(4).stderr_has("openk init");
    empty
        .cmd(["add", "note", "--name", "n", "--notes", "x"])
        .code(4)
        .stderr_has("openk init");
    // --home wins over OPENK_HOME.
    let run = empty
        .cmd(["--home"])
        .arg(env.vault())
        .args(["get", "X"])
        .ok();
    assert_eq!(run.stdout, "x-pw\n");
    env.cmd(["--home"])
        .arg(empty.vault())
        .arg("ls")
        .code(4)
        .stderr_has("openk init")
        .stderr_has(&empty.vault().display().to_string());
}

// Without secret.key the vault stays locked (exit 3) until OPENK_SECRET_KEY gives the key from the kit;
// a wrong one is not saved; the right one is saved to secret.key (0600) once it opened the vault, as
// the kit promises ("set it once"), so the next command needs no OPENK_SECRET_KEY.
#[test]
fn missing_secret_key_file_needs_openk_secret_key() {
    let env = TestEnv::init();
    env.add(&["login", "--name", "X", "--password", "x-pw"]);
    let kit = fs::read_to_string(env.kit_path()).expect("kit");
    assert!(kit.contains("OPENK_SECRET_KEY=<Secret Key> once"), "{kit}");
    let file = env.vault().join("secret.key");
    fs::remove_file(&file).expect("rm secret.key");
    env.cmd(["ls"]).code(3).stderr_has("OPENK_SECRET_KEY");
    let other = TestEnv::init();
    env.cmd(["ls"])
        .env("OPENK_SECRET_KEY", other.secret_key())
        .code(3);
    assert!(
        !file.exists(),
        "a Secret Key that did not open the vault is not saved"
    );
    let run = env
        .cmd(["get", "X"])
        .env("OPENK_SECRET_KEY", env.secret_key())
        .ok();
    assert_eq!(run.stdout, "x-pw\n");
    assert_eq!(mode(&file) & 0o777, 0o600, "saved, private");
    assert_eq!(
        fs::read_to_string(&file).expect("read").trim(),
        env.secret_key()
    );
    let run = env.cmd(["get", "X"]).ok();
    assert_eq!(run.stdout, "x-pw\n");
}

// A vault dir writable by others is refused with a "chmod 700" hint by every vault command; 0700 makes it work again.
#[test]
fn unsafe_vault_dir_permissions_are_refused() {
    let env = TestEnv::init();
    env.add(&["login", "--name", "X", "--password", "x-pw"]);
    chmod(&env.vault(), 0o777);
    let commands: [&[&str]; 13] = [
        &["ls"],
        &["totp", "X"],
        &["restore", "X"],
        &["purge", "X", "--yes"],
        &["passwd"],
        &["show", "X"],
        &["get", "X"],
        &["add", "note", "--name", "Sneaky", "--notes", "n"],
        &["edit", "X", "--username", "u"],
        &["rm", "X"],
        &["history", "X"],
        &["search", "X"],
        &["kit"],
    ];
    for args in commands {
        env.cmd(args).fails().stderr_has("chmod 700");
    }
    chmod(&env.vault(), 0o770);
    env.cmd(["ls"]).fails().stderr_has("chmod 700");
    chmod(&env.vault(), 0o700);
    assert_eq!(env.ls_names(&[]), ["X"], "nothing changed while refused");
    assert_eq!(env.run(&["get", "X"]), "x-pw\n");

    // init into an existing, world-writable empty directory is refused too.
    let fresh = TestEnv::new();
    fs::create_dir(fresh.vault()).expect("mkdir");
    chmod(&fresh.vault(), 0o777);
    fresh
        .cmd(["init"])
        .args(KDF_FLOOR)
        .arg("--kit")
        .arg(fresh.kit_path())
        .fails()
        .stderr_has("chmod 700");
    assert!(!fresh.db().exists());
}

// Several `openk add` processes started together on one vault all succeed and all their items are saved.
#[test]
fn concurrent_adds_all_succeed() {
    let env = TestEnv::init();
    let mut expected = Vec::new();
    for round in 0..3 {
        let mut children = Vec::new();
        for i in 0..4 {
            let name = format!("Concurrent {round}-{i}");
            let cmd = env.cmd(["add", "login", "--name", &name, "--password", "pw"]);
            let desc = cmd.describe();
            let child = cmd.into_command().spawn().expect("spawn openk add");
            children.push((desc, child));
            expected.push(name);
        }
        // A reader at the same time.
        let cmd = env.cmd(["ls"]);
        let desc = cmd.describe();
        children.push((desc, cmd.into_command().spawn().expect("spawn openk ls")));
        for (desc, child) in children {
            let run = util::wait(child, desc);
            run.assert_no_panic();
            assert_eq!(run.code, Some(0), "a concurrent command failed\n{run}");
        }
    }
    expected.sort();
    assert_eq!(env.ls_names(&[]), expected);
}

// Edits racing on one item succeed or exit 6 (conflict) with no lost update, and reads during the edits never report the item as damaged.
#[test]
fn concurrent_edits_conflict_cleanly() {
    let env = TestEnv::init();
    let id = env.add(&["login", "--name", "Shared", "--username", "u0"]);
    let mut saved = Vec::new();
    for round in 0..20 {
        let mut children = Vec::new();
        for i in 0..2 {
            let user = format!("user-{round}-{i}");
            let cmd = env.cmd(["edit", &id, "--username", &user]);
            let desc = cmd.describe();
            let child = cmd.into_command().spawn().expect("spawn openk edit");
            children.push((Some(user), desc, child));
        }
        for _ in 0..4 {
            let cmd = env.cmd(["get", &id, "username"]);
            let desc = cmd.describe();
            let child = cmd.into_command().spawn().expect("spawn openk get");
            children.push((None, desc, child));
        }
        for (user, desc, child) in children {
            let run = util::wait(child, desc);
            run.assert_no_panic();
            match (user, run.code) {
                (Some(user), Some(0)) => saved.push(user),
                (Some(_), Some(6)) => {
                    run.stderr_has("another openk process");
                }
                (Some(_), _) => {
                    panic!("a concurrent edit must succeed or conflict (exit 6)\n{run}")
                }
                (None, Some(0)) => {}
                (None, _) => panic!("a read during an edit must succeed\n{run}"),
            }
        }
    }
    assert!(!saved.is_empty(), "some edits win");
    let history = env.json(&["history", &id]);
    let versions = history["versions"].as_array().expect("versions");
    assert_eq!(
        versions.len(),
        saved.len() + 1,
        "one version per successful edit: {history}"
    );
    let current = env.run(&["get", &id, "username"]);
    assert!(
        saved.contains(&current.trim_end().to_owned()),
        "{current:?} not in {saved:?}"
    );
}

// A command that saved a change and exited 0 has checkpointed the database: the change is in vault.db itself and the write-ahead log is empty.
#[test]
fn writes_are_in_vault_db_when_the_command_exits() {
    let env = TestEnv::init();
    for i in 0..24 {
        let name = format!("Item {i}");
        env.add(&["login", "--name", &name, "--password", "p"]);
        let left: Vec<String> = util::snapshot(&env.vault())
            .into_iter()
            .filter(|(name, bytes)| name == "vault.db-wal" && !bytes.is_empty())
            .map(|(name, bytes)| format!("{name} ({} bytes)", bytes.len()))
            .collect();
        assert!(
            left.is_empty(),
            "`openk add --name {name:?}` exited 0 but left {left:?}: the change is not in vault.db"
        );
    }
}

// init refuses (nothing created) an empty master password (exit 3, as docs/errors.md says), and (exit 2) a kit in a missing folder or an existing kit file; kit --out refuses to overwrite.
#[test]
fn init_and_kit_refusals() {
    let env = TestEnv::new();
    env.cmd(["init"])
        .args(KDF_FLOOR)
        .arg("--kit")
        .arg(env.kit_path())
        .env("OPENK_PASSWORD", "")
        .code(3)
        .stderr_has("OPENK_PASSWORD is set but empty");
    assert!(!env.db().exists());
    env.cmd(["init"])
        .args(KDF_FLOOR)
        .arg("--kit")
        .arg(env.root().join("missing/dir/kit.txt"))
        .code(2)
        .stderr_has("does not exist");
    assert!(!env.db().exists());
    fs::write(env.kit_path(), "precious").expect("write");
    env.cmd(["init"])
        .args(KDF_FLOOR)
        .arg("--kit")
        .arg(env.kit_path())
        .code(2)
        .stderr_has("already exists");
    assert!(!env.db().exists());
    assert_eq!(
        fs::read_to_string(env.kit_path()).expect("read"),
        "precious"
    );
    // Without a terminal and without OPENK_PASSWORD there is nobody to ask (exit 3, locked).
    env.cmd(["init"])
        .args(KDF_FLOOR)
        .arg("--kit")
        .arg(env.root().join("kit2.txt"))
        .env_remove("OPENK_PASSWORD")
        .code(3)
        .stderr_has("OPENK_PASSWORD");
    assert!(!env.db().exists());

    let env = TestEnv::init();
    env.cmd(["kit", "--out"])
        .arg(env.kit_path())
        .code(2)
        .stderr_has("already exists");
    env.cmd(["ls"]).env("OPENK_PASSWORD", "").code(3);
}

// `--password-stdin` together with a field value `-` should take the master password from the first line and the value from the rest (or refuse with exit 2), not fail as if no password had been given.
#[test]
fn password_stdin_with_a_field_from_stdin() {
    let env = TestEnv::init();
    let run = env
        .cmd([
            "--password-stdin",
            "add",
            "login",
            "--name",
            "S",
            "--password",
            "-",
        ])
        .env_remove("OPENK_PASSWORD")
        .stdin(format!("{PASSWORD}\nitem-secret\n"))
        .output();
    match run.code {
        Some(0) => assert_eq!(env.run(&["get", "S"]), "item-secret\n"),
        Some(2) => {
            run.stderr_has("standard input");
        }
        _ => panic!("expected the item saved, or a usage error (exit 2)\n{run}"),
    }
}
