//! The data directory on disk: a relative `--home` is made absolute once,
//! a read-only vault can be read but not changed, and files other users
//! could abuse are refused the way `ssh` refuses an unprotected key.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use crate::util::{KDF_FLOOR, TestEnv, assert_same_files, chmod, snapshot};

/// The private runtime dir of `env`, for agent sockets (created 0700).
fn run_dir(env: &TestEnv) -> PathBuf {
    let dir = env.root().join("run");
    if !dir.exists() {
        std::fs::create_dir(&dir).expect("create the runtime dir");
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).expect("chmod");
    }
    dir
}

/// Locks the agent of a vault when the test ends, even on failure.
struct Locker<'a>(&'a TestEnv, PathBuf);

impl Drop for Locker<'_> {
    fn drop(&mut self) {
        let _ = self
            .0
            .cmd(["lock"])
            .env("OPENK_HOME", &self.1)
            .env("XDG_RUNTIME_DIR", run_dir(self.0))
            .output();
    }
}

// `--home v1` (or OPENK_HOME=v1, or the deprecated OPENK_VAULT=v1) is resolved against the working
// directory once: init, unlock (whose agent runs in /), ls, status and the
// kit all work from there and print the absolute path; from elsewhere the
// absolute path opens the same vault.
#[test]
fn a_relative_vault_path_is_made_absolute_once() {
    let env = TestEnv::new();
    let abs = env.root().join("v1");
    let abs_text = abs.display().to_string();
    let rel = |args: &[&str]| {
        env.cmd(["--home", "v1"])
            .args(args)
            .env_remove("OPENK_HOME")
            .env("XDG_RUNTIME_DIR", run_dir(&env))
    };
    let init = rel(&["--json", "init", "--kit", "kit.txt"])
        .args(KDF_FLOOR)
        .json();
    assert_eq!(init["home"], abs_text.as_str());
    assert_eq!(
        init["emergency_kit"],
        env.root().join("kit.txt").display().to_string().as_str()
    );
    rel(&["add", "login", "--name", "GitHub", "--password", "pw-1"]).ok();

    let _lock = Locker(&env, abs.clone());
    rel(&["unlock", "--idle-timeout", "120"])
        .ok()
        .stdout_has("Unlocked.")
        .stdout_has(&abs_text);
    // Through the agent: no password needed.
    let ls = rel(&["--json", "ls"]).env_remove("OPENK_PASSWORD").json();
    assert_eq!(crate::util::names(&ls["items"]), ["GitHub"]);
    let status = rel(&["--json", "status"]).json();
    assert_eq!(status["home"], abs_text.as_str());
    assert!(status["agent"]["pid"].is_number(), "{status}");
    rel(&["status"])
        .ok()
        .stdout_has(&abs_text)
        .stdout_has("Personal (");
    rel(&["kit"])
        .ok()
        .stdout_has(&format!("Vault:        {abs_text}"));
    // OPENK_HOME relative too, and the deprecated OPENK_VAULT the same way.
    for var in ["OPENK_HOME", "OPENK_VAULT"] {
        let status = env
            .cmd(["--json", "status"])
            .env_remove("OPENK_HOME")
            .env(var, "v1")
            .json();
        assert_eq!(status["home"], abs_text.as_str(), "{var}");
    }
    // Another working directory with the absolute path: the same vault and agent.
    let elsewhere = tempfile::tempdir().expect("tmp");
    let ls = env
        .cmd(["--json", "ls"])
        .env("OPENK_HOME", &abs)
        .env("XDG_RUNTIME_DIR", run_dir(&env))
        .env_remove("OPENK_PASSWORD")
        .current_dir(elsewhere.path())
        .json();
    assert_eq!(crate::util::names(&ls["items"]), ["GitHub"]);
    // ... while the relative path there is another (missing) vault.
    env.cmd(["ls"])
        .env("OPENK_HOME", "v1")
        .current_dir(elsewhere.path())
        .code(4)
        .stderr_has(&format!(
            "no vault at {}",
            elsewhere.path().join("v1").display()
        ));
    env.cmd(["ls"]).env("OPENK_HOME", "").code(2);
}

/// Puts write permission back when a test ends, so the temp dir can go.
struct Writable(Vec<(PathBuf, u32)>);

impl Drop for Writable {
    fn drop(&mut self) {
        for (path, mode) in &self.0 {
            let _ = std::fs::set_permissions(path, std::fs::Permissions::from_mode(*mode));
        }
    }
}

fn make_read_only(dir: &Path, db: &Path) -> Writable {
    chmod(dir, 0o500);
    chmod(db, 0o400);
    Writable(vec![(dir.to_path_buf(), 0o700), (db.to_path_buf(), 0o600)])
}

// A vault whose directory and vault.db have no write permission: every read
// command works, every change fails saying the vault is read-only, and not
// a byte on disk changes (no -wal or -shm appears). The read-only state is
// taken from the permission bits as well as access(2), so this holds when
// the tests run as root, whom chmod does not stop.
#[test]
fn a_read_only_vault_can_be_read_but_not_changed() {
    let env = TestEnv::init();
    env.add(&[
        "login",
        "--name",
        "GitHub",
        "--username",
        "octocat",
        "--password",
        "pw-read-only",
        "--totp",
        "JBSWY3DPEHPK3PXP",
        "--tag",
        "work",
    ]);
    env.cmd(["edit", "GitHub", "--username", "octo"]).ok();
    env.settle();
    let before = snapshot(&env.vault());
    let _w = make_read_only(&env.vault(), &env.db());

    assert_eq!(env.ls_names(&[]), ["GitHub"]);
    env.cmd(["show", "GitHub", "--reveal"])
        .ok()
        .stdout_has("pw-read-only");
    assert_eq!(env.run(&["get", "GitHub"]).trim(), "pw-read-only");
    env.cmd(["search", "git"]).ok().stdout_has("GitHub");
    env.cmd(["history", "GitHub"]).ok().stdout_has("username");
    env.cmd(["totp", "GitHub"]).ok().stdout_has("s left");
    env.cmd(["kit"]).ok().stdout_has(env.secret_key());
    let status = env.json(&["status"]);
    assert_eq!(status["read_only"], true, "{status}");
    assert_eq!(status["items"], 1);
    env.cmd(["status"]).ok().stdout_has("read-only");
    // copy reads the vault; only the clipboard may be missing here.
    let copy = env.cmd(["copy", "GitHub"]).output();
    assert!(
        copy.code == Some(0) || copy.stderr.contains("no clipboard to copy to"),
        "{copy}"
    );

    for args in [
        &["add", "note", "--name", "New", "--notes", "x"][..],
        &["edit", "GitHub", "--username", "someone"],
        &["rm", "GitHub"],
        &["purge", "GitHub", "--yes"],
    ] {
        env.cmd(args)
            .code(1)
            .stderr_has("is read-only")
            .stderr_has("nothing was changed")
            .stderr_has("chmod u+w");
    }
    env.cmd(["passwd", "--new-password-stdin"])
        .stdin("vN7#kq2!Lp9@xR4m-Tz\n")
        .code(1)
        .stderr_has("is read-only");
    assert_same_files(&before, &snapshot(&env.vault()));

    // Writable again: the vault is exactly as it was and takes changes.
    drop(_w);
    env.cmd(["edit", "GitHub", "--username", "someone"]).ok();
    assert_eq!(env.json(&["status"])["read_only"], false);
}

// Like ssh's "UNPROTECTED PRIVATE KEY FILE": a Secret Key file other users
// can read is not used, and a database file they can write is refused; the
// message names the file and the chmod that fixes it. A vault.db others can
// only read is accepted (it is ciphertext, useless without the Secret Key).
#[test]
fn files_other_users_could_abuse_are_refused_like_ssh_keys() {
    let env = TestEnv::init();
    env.add(&["note", "--name", "N", "--notes", "x"]);
    env.settle();
    let key = env.vault().join("secret.key");
    for mode in [0o644, 0o640, 0o604, 0o660] {
        chmod(&key, mode);
        env.cmd(["ls"])
            .code(1)
            .stderr_has("UNPROTECTED SECRET KEY FILE")
            .stderr_has(&format!("mode {mode:o}"))
            .stderr_has(&format!("chmod 600 '{}'", key.display()));
    }
    // Not even the agent takes it.
    env.cmd(["unlock"])
        .env("XDG_RUNTIME_DIR", run_dir(&env))
        .fails()
        .stderr_has("chmod 600");
    chmod(&key, 0o600);
    env.run(&["ls"]);
    chmod(&key, 0o400);
    env.run(&["ls"]);

    for mode in [0o666, 0o622, 0o602] {
        chmod(&env.db(), mode);
        env.cmd(["ls"])
            .code(1)
            .stderr_has("writable by other users")
            .stderr_has(&format!("chmod 600 '{}'", env.db().display()));
    }
    chmod(&env.db(), 0o644);
    env.run(&["ls"]);
    chmod(&env.db(), 0o600);
    env.cmd(["add", "note", "--name", "M", "--notes", "y"]).ok();
}
