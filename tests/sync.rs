//! Sync end to end: the real `openk` binary on two devices against the real
//! server run as `openk serve` (SQLite file, restartable on its port).

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value as Json;

use crate::util::{PgDatabase, TestEnv, bin, free_port};

const EMAIL: &str = "sync@example.org";

/// `openk serve` on a fixed port with a SQLite file; can be stopped and
/// started again (same port, same data).
pub(crate) struct Serve {
    pub(crate) port: u16,
    db: String,
    extra: Vec<String>,
    child: Option<Child>,
}

impl Serve {
    pub(crate) fn start(dir: &Path) -> Self {
        let db = format!("sqlite://{}", dir.join("server.db").display());
        Self::with(free_port(), db, Vec::new())
    }

    pub(crate) fn with(port: u16, db: String, extra: Vec<String>) -> Self {
        let mut s = Self {
            port,
            db,
            extra,
            child: None,
        };
        s.up();
        s
    }

    pub(crate) fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn up(&mut self) {
        let mut child = Command::new(bin())
            .args([
                "serve",
                "--listen",
                &format!("127.0.0.1:{}", self.port),
                "--database",
                &self.db,
                "--auth-rate-limit",
                "100000",
            ])
            .args(&self.extra)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn openk serve");
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                break;
            }
            if let Ok(Some(status)) = child.try_wait() {
                panic!("openk serve exited early: {status}");
            }
            assert!(Instant::now() < deadline, "openk serve did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        self.child = Some(child);
    }

    pub(crate) fn down(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        self.down();
    }
}

/// A new vault registered with the server as `email` (one account each).
pub(crate) fn registered(server: &Serve, email: &str) -> TestEnv {
    let env = TestEnv::init();
    env.cmd([
        "register",
        "--server",
        &server.url(),
        "--email",
        email,
        "--device-name",
        "desk",
    ])
    .ok();
    env
}

/// Device A: a vault with `items`, registered with the server.
fn first_device(server: &Serve) -> TestEnv {
    let a = TestEnv::init();
    a.cmd([
        "register",
        "--server",
        &server.url(),
        "--email",
        EMAIL,
        "--device-name",
        "desk",
    ])
    .ok();
    a
}

/// Device B: logs in to A's account with the Secret Key.
fn second_device(a: &TestEnv, server: &Serve) -> TestEnv {
    logged_in(server, EMAIL, a.secret_key(), "laptop")
}

/// A new device (a fresh directory) logged in to `email`'s account with
/// the default password and `secret_key`, named `name`.
pub(crate) fn logged_in(server: &Serve, email: &str, secret_key: &str, name: &str) -> TestEnv {
    let b = TestEnv::new();
    b.cmd([
        "login",
        "--server",
        &server.url(),
        "--email",
        email,
        "--secret-key",
        secret_key,
        "--device-name",
        name,
    ])
    .ok();
    b
}

fn password_of(env: &TestEnv, item: &str) -> String {
    env.run(&["get", item]).trim_end().to_owned()
}

fn sync_status(env: &TestEnv) -> Json {
    env.json(&["status"])["sync"].clone()
}

// A second device downloads everything; writes sync right after the local
// commit, both ways.
#[test]
fn two_devices_stay_in_step() {
    let tmp = tempfile::tempdir().expect("tmp");
    let server = Serve::start(tmp.path());
    let a = first_device(&server);
    a.add(&[
        "login",
        "--name",
        "GitHub",
        "--username",
        "octo",
        "--password",
        "gh-one",
    ]);
    a.add(&["note", "--name", "Recovery codes", "--notes", "1111 2222"]);
    let b = second_device(&a, &server);
    let out = b.json(&["sync"]);
    assert_eq!(out["vaults"][0]["pulled"], 2, "{out}");
    assert_eq!(password_of(&b, "GitHub"), "gh-one");
    assert_eq!(sync_status(&b)["pending"], 0);
    assert!(sync_status(&b)["last_sync"].is_string());

    // An edit on B syncs at once; A sees it after its own sync.
    b.run(&["edit", "GitHub", "--password", "gh-two"]);
    assert_eq!(sync_status(&b)["pending"], 0);
    let out = a.json(&["sync"]);
    assert_eq!(out["vaults"][0]["pulled"], 1, "{out}");
    assert_eq!(password_of(&a, "GitHub"), "gh-two");
    // The old value is in A's history.
    let v1 = a.json(&["show", "GitHub", "--version", "1", "--reveal"]);
    assert!(v1.to_string().contains("gh-one"));

    // Trash on A reaches B.
    a.run(&["rm", "Recovery codes"]);
    b.run(&["sync"]);
    assert_eq!(
        b.json(&["ls", "--trash"])["items"][0]["name"],
        "Recovery codes"
    );
    // Nothing new: nothing moves.
    let out = b.json(&["sync"]);
    assert_eq!(out["vaults"][0]["pulled"], 0);
    assert_eq!(out["vaults"][0]["pushed"], 0);
    let text = b.run(&["sync"]);
    assert!(text.contains("pulled 0, pushed 0"), "{text}");
}

// Server down: the write succeeds locally and stays pending, `openk sync`
// exits 7 naming the server, and the next sync after it is back sends it.
#[test]
fn offline_changes_stay_pending_until_the_server_is_back() {
    let tmp = tempfile::tempdir().expect("tmp");
    let mut server = Serve::start(tmp.path());
    let a = first_device(&server);
    let b = second_device(&a, &server);
    server.down();
    let run = a
        .cmd([
            "add",
            "login",
            "--name",
            "Offline",
            "--password",
            "made-offline",
        ])
        .ok();
    run.stderr_has("not synced");
    assert_eq!(sync_status(&a)["pending"], 1);
    let status = a.run(&["status"]);
    assert!(status.contains("1 pending change"), "{status}");
    let run = a.cmd(["sync"]).code(7);
    run.stderr_has(&server.url());
    assert_eq!(sync_status(&a)["pending"], 1, "a failed sync loses nothing");

    server.up();
    a.run(&["sync"]);
    assert_eq!(sync_status(&a)["pending"], 0);
    b.run(&["sync"]);
    assert_eq!(password_of(&b, "Offline"), "made-offline");
}

// `openk passwd` on A follows the user to B, which edited offline before:
// with the old password B's sync says the password was changed on another
// device (exit 3, not "session ended", not "log in as a new device"); with
// the new one a plain command asks nothing of the server (the vault's record
// of it cannot be authenticated yet) and says to run `openk login --server
// URL`, which adopts it, keeps the edit and pushes it.
#[test]
fn a_password_changed_on_one_device_follows_to_the_other() {
    let tmp = tempfile::tempdir().expect("tmp");
    let server = Serve::start(tmp.path());
    let mut a = first_device(&server);
    a.add(&["login", "--name", "Shared", "--password", "v1"]);
    let mut b = second_device(&a, &server);
    b.run(&["sync"]);
    b.cmd(["edit", "Shared", "--password", "edited-on-b", "--no-sync"])
        .ok();
    a.cmd(["passwd", "--new-password-stdin"])
        .stdin("the-second-master-pw-Ks8w\n")
        .ok();
    a.set_password("the-second-master-pw-Ks8w");

    // The old password still opens B here, but the server has moved on.
    for args in [&["sync"][..], &["login"][..]] {
        let run = b.cmd(args).code(3);
        run.stderr_has("the master password was changed on another device")
            .stderr_has("type the new one")
            .stderr_lacks("session")
            .stderr_lacks("--home");
    }
    assert_eq!(sync_status(&b)["pending"], 1, "nothing is lost");

    // The new password on B: a plain command sends nothing and says how.
    b.set_password("the-second-master-pw-Ks8w");
    b.cmd(["ls"])
        .code(3)
        .stderr_has(&format!("openk login --server {}", server.url()));
    // Naming a different server adopts nothing either.
    b.cmd(["login", "--server", "http://127.0.0.1:9"])
        .code(3)
        .stderr_has("openk login --server");
    // `login` with the vault's server: adopted, the edit is kept and pushed.
    let run = b.cmd(["login", "--server", &server.url()]).ok();
    run.stdout_has("Logged in")
        .stderr_has(
            "the master password was changed on another device; this device now uses the new one",
        )
        .stderr_has("synced the 1 change(s)");
    assert_eq!(sync_status(&b)["pending"], 0);
    a.run(&["sync"]);
    assert_eq!(password_of(&a, "Shared"), "edited-on-b");
    b.cmd(["ls"]).ok().stderr_lacks("changed on another device");

    // A second change; B edits offline again and recovers through `login`.
    b.cmd(["edit", "Shared", "--password", "edited-again", "--no-sync"])
        .ok();
    a.cmd(["passwd", "--new-password-stdin"])
        .stdin("the-third-master-pw-Vb3n\n")
        .ok();
    a.set_password("the-third-master-pw-Vb3n");
    b.set_password("the-third-master-pw-Vb3n");
    b.cmd(["login", "--server", &server.url()])
        .ok()
        .stdout_has("Logged in");
    assert_eq!(sync_status(&b)["pending"], 0);
    a.run(&["sync"]);
    assert_eq!(password_of(&a, "Shared"), "edited-again");
    b.set_password("the-second-master-pw-Ks8w");
    b.cmd(["ls"]).code(3).stderr_has("wrong master password");
}

// An agent that B started with the old password: the sync that finds the
// change locks it (its key is the old password's), so the next command asks
// for the password; after `openk login --server URL` with the new one,
// `openk unlock` starts an agent with it.
#[test]
fn an_agent_with_the_old_password_is_locked_when_the_password_changed() {
    struct Lock<'a>(&'a TestEnv, PathBuf);
    impl Drop for Lock<'_> {
        fn drop(&mut self) {
            let _ = self
                .0
                .cmd(["lock"])
                .env("XDG_RUNTIME_DIR", &self.1)
                .output();
        }
    }
    let tmp = tempfile::tempdir().expect("tmp");
    let server = Serve::start(tmp.path());
    let mut a = first_device(&server);
    let b = second_device(&a, &server);
    let run = b.root().join("run");
    std::fs::create_dir(&run).expect("run dir");
    std::fs::set_permissions(&run, std::os::unix::fs::PermissionsExt::from_mode(0o700))
        .expect("chmod");
    let _lock = Lock(&b, run.clone());
    b.cmd(["unlock", "--idle-timeout", "120"])
        .env("XDG_RUNTIME_DIR", &run)
        .ok();
    a.cmd(["passwd", "--new-password-stdin"])
        .stdin("the-agents-new-master-pw-Dm5p\n")
        .ok();
    a.set_password("the-agents-new-master-pw-Dm5p");
    b.cmd(["sync"])
        .env("XDG_RUNTIME_DIR", &run)
        .env_remove("OPENK_PASSWORD")
        .code(3)
        .stderr_has("changed on another device")
        .stderr_has("was locked");
    b.cmd(["ls"])
        .env("XDG_RUNTIME_DIR", &run)
        .env_remove("OPENK_PASSWORD")
        .code(3);
    b.cmd(["unlock", "--idle-timeout", "120"])
        .env("XDG_RUNTIME_DIR", &run)
        .env("OPENK_PASSWORD", "the-agents-new-master-pw-Dm5p")
        .code(3)
        .stderr_has("openk login --server");
    b.cmd(["login", "--server", &server.url()])
        .env("XDG_RUNTIME_DIR", &run)
        .env("OPENK_PASSWORD", "the-agents-new-master-pw-Dm5p")
        .ok();
    b.cmd(["unlock", "--idle-timeout", "120"])
        .env("XDG_RUNTIME_DIR", &run)
        .env("OPENK_PASSWORD", "the-agents-new-master-pw-Dm5p")
        .ok()
        .stdout_has("Unlocked.");
    b.cmd(["sync"])
        .env("XDG_RUNTIME_DIR", &run)
        .env_remove("OPENK_PASSWORD")
        .ok();
}

// --no-sync and `auto_sync = false` keep a change local until `openk sync`;
// a broken config file is a clear usage error and nothing is written.
#[test]
fn no_sync_and_auto_sync_false_keep_changes_local() {
    let tmp = tempfile::tempdir().expect("tmp");
    let server = Serve::start(tmp.path());
    let a = first_device(&server);
    a.cmd([
        "add",
        "login",
        "--name",
        "Local",
        "--password",
        "p",
        "--no-sync",
    ])
    .ok();
    assert_eq!(sync_status(&a)["pending"], 1);
    let config = a.root().join("openk.toml");
    std::fs::write(&config, "auto_sync = false\n").expect("config");
    a.cmd(["edit", "Local", "--password", "q"])
        .env("OPENK_CONFIG", &config)
        .ok();
    assert_eq!(sync_status(&a)["pending"], 1);
    a.run(&["sync"]);
    assert_eq!(sync_status(&a)["pending"], 0);

    // A broken config stops the command before it changes anything (the
    // same for every command: tests/config.rs).
    std::fs::write(&config, "auto_sync = maybe\n").expect("config");
    a.cmd(["edit", "Local", "--password", "r"])
        .env("OPENK_CONFIG", &config)
        .code(2)
        .stderr_has("openk.toml");
    std::fs::write(&config, "autosync = false\n").expect("config");
    a.cmd(["edit", "Local", "--password", "s"])
        .env("OPENK_CONFIG", &config)
        .code(2)
        .stderr_has("unknown key `autosync`; did you mean `auto_sync`?");
    assert_eq!(sync_status(&a)["pending"], 0, "neither edit was saved");
    assert_eq!(password_of(&a, "Local"), "q");
}

// The same field edited on two devices: the later edit wins everywhere,
// the other side stays in history, the item is flagged until resolved.
#[test]
fn conflicts_are_listed_shown_and_resolved() {
    let tmp = tempfile::tempdir().expect("tmp");
    let server = Serve::start(tmp.path());
    let a = first_device(&server);
    a.add(&[
        "login",
        "--name",
        "Shared",
        "--username",
        "ann",
        "--password",
        "base",
    ]);
    let b = second_device(&a, &server);
    b.run(&["sync"]);
    a.cmd(["edit", "Shared", "--password", "from-a", "--no-sync"])
        .ok();
    std::thread::sleep(Duration::from_millis(20));
    b.cmd(["edit", "Shared", "--password", "from-b", "--no-sync"])
        .ok();
    b.cmd(["edit", "Shared", "--username", "bob", "--no-sync"])
        .ok();
    a.run(&["sync"]);
    let out = b.json(&["sync"]);
    assert_eq!(
        out["vaults"][0]["conflicts"].as_array().map(Vec::len),
        Some(1),
        "{out}"
    );
    a.run(&["sync"]);
    for env in [&a, &b] {
        assert_eq!(password_of(env, "Shared"), "from-b", "the later edit wins");
        assert_eq!(env.run(&["get", "Shared", "username"]).trim(), "bob");
        let listed = env.json(&["ls", "--conflicts"]);
        assert_eq!(listed["items"][0]["name"], "Shared");
        let conflict = &listed["items"][0]["conflict"];
        assert_eq!(conflict["fields"][0], "password");
        let other = conflict["other_version"]
            .as_u64()
            .expect("version")
            .to_string();
        let shown = env.run(&["show", "Shared"]);
        assert!(
            shown.contains("[conflict]") && shown.contains("--version"),
            "{shown}"
        );
        let side = env.json(&["show", "Shared", "--version", &other, "--reveal"]);
        assert!(side.to_string().contains("from-a"), "{side}");
        assert!(env.run(&["ls"]).contains("! Shared"));
    }
    a.run(&["edit", "Shared", "--resolve"]);
    b.run(&["sync"]);
    assert_eq!(
        b.json(&["ls", "--conflicts"])["items"],
        serde_json::json!([])
    );
    assert!(b.run(&["ls", "--conflicts"]).contains("No conflicts."));
}

/// Runs SQL on the server database with the sqlite3 CLI (None: not installed).
fn server_sql(dir: &Path, sql: &str) -> Option<String> {
    if !crate::util::have("sqlite3") {
        eprintln!("skipped: the sqlite3 CLI is not installed (.ci/run installs it)");
        return None;
    }
    Some(crate::util::external(
        "sqlite3",
        &[dir.join("server.db").display().to_string(), sql.to_owned()],
    ))
}

// `sync --verify` says the server matches; after the server silently drops
// an item it reports it (exit 1), pushes it again, and matches again.
#[test]
fn verify_reports_a_dropped_item_and_repairs_it() {
    let tmp = tempfile::tempdir().expect("tmp");
    let server = Serve::start(tmp.path());
    let a = first_device(&server);
    a.add(&["login", "--name", "Kept", "--password", "k"]);
    let id = a.json(&["add", "login", "--name", "Dropped", "--password", "d"])["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let out = a.json(&["sync", "--verify"]);
    assert_eq!(out["vaults"][0]["verify"]["matches"], true, "{out}");
    let text = a.run(&["sync", "--verify"]);
    assert!(text.contains("match its manifest"), "{text}");

    if server_sql(
        tmp.path(),
        &format!("DELETE FROM records WHERE item_id = '{id}';"),
    )
    .is_none()
    {
        return;
    }
    let run = a.cmd(["sync", "--verify"]).code(1);
    run.stdout_has("MISMATCH")
        .stdout_has(&id)
        .stdout_has("missing on the server");
    run.stderr_has("does not match");
    let out = a.json(&["sync", "--verify"]);
    assert_eq!(
        out["vaults"][0]["verify"]["matches"], true,
        "repaired: {out}"
    );
    let b = second_device(&a, &server);
    b.run(&["sync"]);
    assert_eq!(password_of(&b, "Dropped"), "d");
}

// A server restored to an older state is refused and changes nothing here.
#[test]
fn a_server_that_goes_back_in_time_is_refused() {
    let tmp = tempfile::tempdir().expect("tmp");
    let mut server = Serve::start(tmp.path());
    let a = first_device(&server);
    a.add(&["login", "--name", "Site", "--password", "old"]);
    let b = second_device(&a, &server);
    b.run(&["sync"]);
    server.down();
    let db = tmp.path().join("server.db");
    let old = tmp.path().join("old.db");
    copy_db(&db, &old);
    server.up();
    a.run(&["edit", "Site", "--password", "new"]);
    b.run(&["sync"]);
    // The item as shown, without its usage (revealing it is a use).
    let item = |env: &TestEnv| {
        let mut v = env.json(&["show", "Site", "--reveal"]);
        for usage in ["use_count", "last_used_at"] {
            v.as_object_mut().map(|o| o.remove(usage));
        }
        v
    };
    let before = item(&b);
    server.down();
    copy_db(&old, &db);
    server.up();
    let run = b.cmd(["sync"]).code(1);
    run.stderr_has("server state went backwards")
        .stderr_has("nothing local was changed");
    assert_eq!(item(&b), before);
}

fn copy_db(from: &Path, to: &Path) {
    for suffix in ["", "-wal", "-shm"] {
        let src = PathBuf::from(format!("{}{suffix}", from.display()));
        let dst = PathBuf::from(format!("{}{suffix}", to.display()));
        let _ = std::fs::remove_file(&dst);
        if src.exists() {
            std::fs::copy(&src, &dst).expect("copy database");
        }
    }
}

/// `openk sync --watch --json` in the background; its stdout lines.
struct Watch {
    child: Child,
    lines: std::sync::mpsc::Receiver<String>,
}

impl Watch {
    fn start(env: &TestEnv) -> Self {
        let mut child = env
            .cmd(["--json", "sync", "--watch"])
            .into_command()
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn watch");
        let out = child.stdout.take().expect("stdout");
        let (tx, lines) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Self { child, lines }
    }

    /// Waits for a line containing `needle`.
    fn expect(&self, needle: &str, within: Duration) -> String {
        let deadline = Instant::now() + within;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) if line.contains(needle) => return line,
                Ok(_) => {}
                Err(_) => {
                    panic!("`openk sync --watch` printed no line with {needle:?} in {within:?}")
                }
            }
        }
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Polls until `check` holds.
fn eventually(within: Duration, what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + within;
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

// `sync --watch` keeps an event stream open and syncs as soon as another
// device pushes; when the server restarts it reconnects and catches up.
#[test]
fn watch_follows_another_device_and_reconnects() {
    let tmp = tempfile::tempdir().expect("tmp");
    let mut server = Serve::start(tmp.path());
    let a = first_device(&server);
    a.add(&["login", "--name", "Live", "--password", "v1"]);
    let b = second_device(&a, &server);
    let watch = Watch::start(&b);
    watch.expect("\"connected\"", Duration::from_secs(20));
    assert_eq!(password_of(&b, "Live"), "v1");

    a.run(&["edit", "Live", "--password", "v2"]);
    watch.expect("\"synced\"", Duration::from_secs(10));
    eventually(Duration::from_secs(10), "B to have v2", || {
        password_of(&b, "Live") == "v2"
    });

    // The server goes away and comes back: the watcher reconnects.
    server.down();
    std::thread::sleep(Duration::from_millis(300));
    server.up();
    a.run(&["edit", "Live", "--password", "v3"]);
    watch.expect("\"connected\"", Duration::from_secs(40));
    eventually(Duration::from_secs(20), "B to have v3", || {
        password_of(&b, "Live") == "v3"
    });
}

// Scale-out: two server nodes on one PostgreSQL and one Redis. B watches
// through node 1, A pushes through node 2, B is told (Redis pub/sub) and
// converges.
#[test]
fn two_nodes_fan_out_changes_through_redis() {
    let (Ok(_), Ok(redis)) = (
        std::env::var("OPENK_TEST_POSTGRES_URL"),
        std::env::var("OPENK_TEST_REDIS_URL"),
    ) else {
        eprintln!(
            "skipped: set OPENK_TEST_POSTGRES_URL and OPENK_TEST_REDIS_URL to run the two-node test"
        );
        return;
    };
    let db = PgDatabase::create_blocking("openk_e2e").expect("OPENK_TEST_POSTGRES_URL is set");
    let prefix = format!("openk-e2e-{}:", uuid::Uuid::now_v7().simple());
    let extra = |_: ()| {
        vec![
            "--redis".to_owned(),
            redis.clone(),
            "--cache-prefix".to_owned(),
            prefix.clone(),
        ]
    };
    let node1 = Serve::with(free_port(), db.url(), extra(()));
    let node2 = Serve::with(free_port(), db.url(), extra(()));
    let a = first_device(&node2);
    a.add(&["login", "--name", "Fan", "--password", "one"]);
    let b = second_device(&a, &node1);
    let watch = Watch::start(&b);
    watch.expect("\"connected\"", Duration::from_secs(20));
    a.run(&["edit", "Fan", "--password", "two"]);
    watch.expect("\"synced\"", Duration::from_secs(10));
    eventually(
        Duration::from_secs(10),
        "B (node 1) to have A's edit (node 2)",
        || password_of(&b, "Fan") == "two",
    );
    drop(watch);
    drop((node1, node2));
    // The test's Redis keys go with it.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let cache = openk_server::cache::RedisCache::connect(&redis, &prefix)
            .await
            .expect("OPENK_TEST_REDIS_URL is set but unreachable");
        cache.remove_prefix().await.expect("remove the test's keys");
    });
}

// A server that lies about the KDF parameters at login (a downgrade below
// the floor) is refused before any password-derived value is sent.
#[test]
fn a_server_offering_a_weak_kdf_at_login_is_refused() {
    let tmp = tempfile::tempdir().expect("tmp");
    let server = Serve::start(tmp.path());
    let a = first_device(&server);
    if server_sql(
        tmp.path(),
        "UPDATE accounts SET kdf_memory_kib = 1024, kdf_iterations = 1;",
    )
    .is_none()
    {
        return;
    }
    let b = TestEnv::new();
    b.cmd([
        "login",
        "--server",
        &server.url(),
        "--email",
        EMAIL,
        "--secret-key",
        a.secret_key(),
    ])
    .code(2)
    .stderr_has("--allow-weak-kdf");
    assert!(!b.db().exists(), "nothing was created");
}
