//! `openk export` (the encrypted archive and the plaintext formats),
//! `openk backup` and `openk restore FILE`, end to end.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use serde_json::Value as Json;

use crate::sync::{Serve, registered};
use crate::util::{KDF_FLOOR, TestCommand, TestEnv};

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).expect("stat").permissions().mode() & 0o777
}

/// A vault with a login (edited twice: history), a note, a card and an
/// item in the trash.
fn stocked() -> TestEnv {
    let env = TestEnv::init();
    env.add(&[
        "login",
        "--name",
        "GitHub",
        "--username",
        "octocat",
        "--password",
        "gh-pass-1",
        "--url",
        "https://github.com",
        "--tag",
        "work",
        "--folder",
        "Dev",
    ]);
    env.run(&["edit", "GitHub", "--password", "gh-pass-2"]);
    env.run(&["edit", "GitHub", "--username", "octo-ünï"]);
    env.cmd(["add", "note", "--name", "Diary 😀", "--notes", "-"])
        .stdin("line one\nline two\n")
        .ok();
    env.add(&[
        "card",
        "--name",
        "Visa",
        "--number",
        "4111111111111111",
        "--cvv",
        "737",
    ]);
    env.add(&["login", "--name", "Old", "--password", "old-pass"]);
    env.run(&["rm", "Old"]);
    env
}

/// Every item with every version (see [`by_name`]).
fn everything(env: &TestEnv) -> Vec<Json> {
    by_name(env)
}

fn export(env: &TestEnv, args: &[&str]) -> TestCommand {
    env.cmd(["export"]).args(args)
}

// json/csv are refused without --unencrypted (exit 2, saying why), need
// --yes without a terminal, are written 0600 and never over a file
// without --force; `-` writes to stdout.
#[test]
fn plaintext_exports_are_refused_confirmed_and_private() {
    let env = stocked();
    let out = env.root().join("out.json");
    let out_s = out.to_str().expect("utf-8");
    export(&env, &["--format", "json", out_s])
        .code(2)
        .stderr_has("--unencrypted")
        .stderr_has("in the clear");
    assert!(!out.exists());
    export(&env, &["--format", "json", "--unencrypted", out_s])
        .code(2)
        .stderr_has("--yes");
    assert!(!out.exists());
    export(&env, &["--format", "json", "--unencrypted", "--yes", out_s])
        .ok()
        .stderr_has("Exported 4 item(s)")
        .stderr_has(out_s);
    assert_eq!(mode(&out), 0o600);
    let doc: Json = serde_json::from_slice(&std::fs::read(&out).expect("read")).expect("json");
    assert_eq!(doc["format"], "openk-json");
    let items = doc["items"].as_array().expect("items");
    assert_eq!(items.len(), 4);
    let gh = items
        .iter()
        .find(|i| i["name"] == "GitHub")
        .expect("GitHub");
    assert_eq!(gh["tags"], serde_json::json!(["work"]));
    assert_eq!(gh["folder"], "Dev");
    assert!(gh["created_at"].as_i64().expect("time") > 0);
    let pw = gh["fields"]
        .as_array()
        .expect("fields")
        .iter()
        .find(|f| f["label"] == "password")
        .expect("password");
    assert_eq!(pw["value"], "gh-pass-2");
    let old = items.iter().find(|i| i["name"] == "Old").expect("Old");
    assert!(old["trashed_at"].as_i64().is_some());

    // Never over an existing file without --force; with it, replaced.
    std::fs::write(&out, "keep me").expect("write");
    export(&env, &["--format", "json", "--unencrypted", "--yes", out_s])
        .code(2)
        .stderr_has("--force");
    assert_eq!(std::fs::read_to_string(&out).expect("read"), "keep me");
    export(
        &env,
        &[
            "--format",
            "csv",
            "--unencrypted",
            "--yes",
            "--force",
            out_s,
        ],
    )
    .ok();
    let csv = std::fs::read_to_string(&out).expect("read");
    assert!(csv.starts_with("id,vault,kind,name,username,password,url,totp,notes,folder,tags,favorite,trashed,created_at,updated_at,extra_fields\n"), "{csv}");
    assert!(csv.contains("gh-pass-2"));
    assert!(csv.contains("\"\"label\"\":\"\"number\"\""), "{csv}");

    // Standard output.
    let stdout = export(&env, &["--format", "csv", "--unencrypted", "--yes", "-"]).stdout();
    assert!(stdout.contains("octo-ünï"));
    // No partial files are left beside the target.
    let left: Vec<PathBuf> = std::fs::read_dir(env.root())
        .expect("ls")
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.to_string_lossy().contains("partial"))
        .collect();
    assert!(left.is_empty(), "{left:?}");
}

// The archive: a passphrase of its own (none on stdin and no terminal →
// exit 2), 0600, the magic header, no plaintext in it.
#[test]
fn the_archive_is_encrypted_with_its_own_passphrase() {
    let env = stocked();
    let out = env.root().join("vault.openk");
    let out_s = out.to_str().expect("utf-8");
    export(&env, &["--format", "openk", out_s])
        .args(KDF_FLOOR)
        .code(2)
        .stderr_has("--passphrase-stdin");
    assert!(!out.exists());
    export(&env, &["--format", "openk", "--passphrase-stdin", out_s])
        .args(KDF_FLOOR)
        .stdin("archive-Passphrase-9x7!\n")
        .ok()
        .stderr_has("Exported 4 item(s) (")
        .stderr_has("versions with history) as openk");
    assert_eq!(mode(&out), 0o600);
    let bytes = std::fs::read(&out).expect("read");
    assert!(bytes.starts_with(b"OPENKARC"));
    for secret in [
        "gh-pass-2",
        "octocat",
        "GitHub",
        "Diary",
        "4111111111111111",
    ] {
        assert!(
            !bytes.windows(secret.len()).any(|w| w == secret.as_bytes()),
            "{secret} in the archive"
        );
    }
    // A weak passphrase is refused unless asked for.
    let weak = env.root().join("weak.openk");
    export(&env, &["--passphrase-stdin", weak.to_str().expect("utf-8")])
        .args(KDF_FLOOR)
        .stdin("abc\n")
        .fails();
    assert!(!weak.exists());
}

/// Starts an agent for `env` in a private runtime dir.
fn runtime(env: &TestEnv) -> PathBuf {
    let dir = env.root().join("run");
    if !dir.exists() {
        std::fs::create_dir(&dir).expect("mkdir");
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).expect("chmod");
    }
    dir
}

// A backup made while an agent runs, restored over a changed vault, gives
// back the same items and history; the agent is stopped, the replaced
// database kept aside. A wrong password or a file that is not a backup
// replaces nothing.
#[test]
fn backup_and_restore_give_back_every_item_and_version() {
    let env = stocked();
    let run = runtime(&env);
    env.cmd(["unlock", "--idle-timeout", "120"])
        .env("XDG_RUNTIME_DIR", &run)
        .ok();
    let before = everything(&env);
    let backup = env.root().join("backup.db");
    let backup_s = backup.to_str().expect("utf-8");
    env.cmd(["backup", backup_s])
        .env("XDG_RUNTIME_DIR", &run)
        .env_remove("OPENK_PASSWORD")
        .ok()
        .stdout_has("Secret Key is not in it");
    assert_eq!(mode(&backup), 0o600);
    assert!(
        std::fs::read(&backup)
            .expect("read")
            .starts_with(b"SQLite format 3\0")
    );
    env.cmd(["backup", backup_s]).code(2).stderr_has("--force");

    // Change the vault: an edit, a new item, a purge.
    env.run(&["edit", "GitHub", "--password", "changed"]);
    env.add(&["login", "--name", "New", "--password", "x"]);
    env.cmd(["purge", "Visa", "--yes"]).ok();
    assert_ne!(everything(&env), before);

    // Wrong password: nothing replaced.
    env.cmd(["restore", backup_s])
        .env("OPENK_PASSWORD", "not-the-password")
        .code(3);
    assert_eq!(env.run(&["get", "GitHub"]), "changed\n");
    // Not a backup.
    let notes = env.root().join("notes.txt");
    std::fs::write(&notes, "hello").expect("write");
    env.cmd(["restore", "--backup", notes.to_str().expect("utf-8")])
        .fails()
        .stderr_has("not an OpenK backup");
    assert_eq!(env.run(&["get", "GitHub"]), "changed\n");

    let restored = env
        .cmd(["--json", "restore", backup_s])
        .env("XDG_RUNTIME_DIR", &run)
        .ok();
    restored.stderr_has("stopped the agent");
    let report = restored.json();
    assert_eq!(report["items"], 4);
    let replaced = PathBuf::from(report["replaced"].as_str().expect("replaced"));
    assert!(replaced.exists());
    assert_eq!(mode(&replaced), 0o600);
    assert_eq!(everything(&env), before);
    // No staging directory is left behind.
    assert!(
        !std::fs::read_dir(env.vault())
            .expect("ls")
            .flatten()
            .any(|e| e.file_name().to_string_lossy().starts_with(".restore-"))
    );
    // Onto a new machine: the Secret Key from OPENK_SECRET_KEY, written
    // beside the restored database.
    let fresh = TestEnv::new();
    fresh
        .cmd(["restore", backup_s])
        .env("OPENK_SECRET_KEY", env.secret_key())
        .ok();
    assert_eq!(mode(&fresh.vault().join("secret.key")), 0o600);
    assert_eq!(by_name(&fresh), before);
    // `openk restore ITEM` still restores from the trash.
    env.run(&["restore", "Old"]);
    assert!(env.ls_names(&[]).contains(&"Old".to_owned()));
}

// Logged in: a restore of an older database is not a fork: the sync after
// it brings back what the server has and reports a clean state.
#[test]
fn a_restore_then_sync_catches_up_with_the_server() {
    let tmp = tempfile::tempdir().expect("tmp");
    let server = Serve::start(tmp.path());
    let env = registered(&server, "restore@example.org");
    env.add(&["login", "--name", "Before", "--password", "b1"]);
    let backup = env.root().join("backup.db");
    env.run(&["backup", backup.to_str().expect("utf-8")]);
    env.add(&["login", "--name", "After", "--password", "a1"]);
    env.run(&["edit", "Before", "--password", "b2"]);
    let report = env.json(&["restore", backup.to_str().expect("utf-8")]);
    assert_eq!(report["synced"], true, "{report}");
    let mut names = env.ls_names(&[]);
    names.sort();
    assert_eq!(names, ["After", "Before"]);
    assert_eq!(env.run(&["get", "Before"]), "b2\n");
    env.run(&["sync"]);
    env.run(&["sync", "--verify"]);
    let status = env.json(&["status"]);
    assert_eq!(status["sync"]["pending"], 0, "{status}");
}

/// Every item (trash included) by name, as `show --reveal` and `history`
/// give it, with every earlier version, without what a new vault renumbers
/// (ids) or counts (uses).
fn by_name(env: &TestEnv) -> Vec<Json> {
    let strip = |mut v: Json| {
        if let Some(o) = v.as_object_mut() {
            for key in ["id", "vault_id", "use_count", "last_used_at", "vault"] {
                o.remove(key);
            }
        }
        v
    };
    let mut out = Vec::new();
    for extra in [&[][..], &["--trash"][..]] {
        let items = env.cmd(["--json", "ls"]).args(extra).json();
        for item in items["items"].as_array().expect("items") {
            let id = item["id"].as_str().expect("id");
            let history = env.json(&["history", id]);
            let mut versions = Vec::new();
            for v in history["versions"].as_array().expect("versions") {
                let n = v["version"].as_u64().expect("version").to_string();
                versions.push(strip(env.json(&["show", id, "--version", &n, "--reveal"])));
            }
            out.push(serde_json::json!({
                "item": strip(env.json(&["show", id, "--reveal"])),
                "history": history["versions"],
                "versions": versions,
            }));
        }
    }
    out.sort_by_key(|v| v["item"]["name"].as_str().unwrap_or_default().to_owned());
    out
}

// export --format openk → import into a fresh vault: every item, field,
// history version, time and trash state the same; importing again adds
// nothing.
#[test]
fn an_archive_imports_into_a_fresh_vault_as_it_was() {
    let env = stocked();
    let archive = env.root().join("all.openk");
    let archive_s = archive.to_str().expect("utf-8");
    export(&env, &["--passphrase-stdin", archive_s])
        .args(KDF_FLOOR)
        .stdin("archive-Passphrase-9x7!\n")
        .ok();
    let fresh = TestEnv::init();
    fresh
        .cmd(["import", archive_s, "--file-password-stdin"])
        .stdin("wrong-passphrase\n")
        .code(3);
    let report = fresh
        .cmd(["--json", "import", archive_s, "--file-password-stdin"])
        .stdin("archive-Passphrase-9x7!\n")
        .json();
    assert_eq!(
        report["imported"].as_array().expect("imported").len(),
        4,
        "{report}"
    );
    assert_eq!(by_name(&fresh), by_name(&env));
    let again = fresh
        .cmd([
            "--json",
            "import",
            archive_s,
            "--file-password-stdin",
            "--format",
            "openk",
        ])
        .stdin("archive-Passphrase-9x7!\n")
        .json();
    assert_eq!(
        again["imported"].as_array().expect("imported").len(),
        0,
        "{again}"
    );
    assert_eq!(
        again["duplicates"].as_array().expect("duplicates").len(),
        4,
        "{again}"
    );
}
