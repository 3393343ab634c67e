//! The server commands end to end: the real `openk` binary against a real
//! server (in-process on a random port, or `openk serve` as a process).

use std::io::Read;
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use openk_server::Settings;

use crate::util::{LocalServer as Server, TestEnv, bin, free_port};

/// A second device of the same person: an empty vault directory.
fn second_device() -> TestEnv {
    TestEnv::new()
}

fn register(env: &TestEnv, server: &Server, email: &str) {
    env.cmd([
        "register",
        "--server",
        &server.url,
        "--email",
        email,
        "--device-name",
        "desk",
    ])
    .ok();
}

fn login_new_device(
    env: &TestEnv,
    server: &Server,
    email: &str,
    sk: &str,
) -> crate::util::TestCommand {
    env.cmd([
        "login",
        "--server",
        &server.url,
        "--email",
        email,
        "--secret-key",
        sk,
        "--device-name",
        "laptop",
    ])
}

// Register uploads the account; status, devices and audit show it.
#[test]
fn register_then_status_devices_and_audit() {
    let server = Server::start();
    let a = TestEnv::init();
    a.add(&["login", "--name", "GitHub", "--password", "pw-on-a"]);
    register(&a, &server, "Alice@Example.org");
    let status = a.json(&["status"]);
    assert_eq!(status["server"]["server"], server.url.as_str());
    assert_eq!(status["server"]["email"], "alice@example.org");
    assert_eq!(status["server"]["session"], "active");
    assert_eq!(status["server"]["reachable"], true);
    assert_eq!(status["account_id"], a.account_id());
    let devices = a.json(&["device", "ls"]);
    assert_eq!(devices.as_array().map(Vec::len), Some(1));
    assert_eq!(devices[0]["name"], "desk");
    assert_eq!(devices[0]["current"], true);
    let kinds: Vec<String> = a.json(&["audit"])["server_events"]
        .as_array()
        .expect("list")
        .iter()
        .map(|e| e["kind"].as_str().unwrap_or("").to_owned())
        .collect();
    for k in ["register", "device_added", "vault_created"] {
        assert!(kinds.iter().any(|x| x == k), "{k} missing from {kinds:?}");
    }
    // Registering twice is refused and says where it is registered.
    a.cmd([
        "register",
        "--server",
        &server.url,
        "--email",
        "alice@example.org",
    ])
    .code(2)
    .stderr_has("already registered");
    // Another vault cannot take the same email.
    let other = TestEnv::init();
    other
        .cmd([
            "register",
            "--server",
            &server.url,
            "--email",
            "alice@example.org",
        ])
        .fails()
        .stderr_has("already exists");
}

// A new device logs in with password + Secret Key and gets the same account.
#[test]
fn login_on_a_new_device() {
    let server = Server::start();
    let a = TestEnv::init();
    register(&a, &server, "bob@example.org");
    let b = second_device();
    // Wrong password and wrong Secret Key: exit 3, and no vault is created.
    b.cmd([
        "login",
        "--server",
        &server.url,
        "--email",
        "bob@example.org",
        "--secret-key",
        a.secret_key(),
    ])
    .env("OPENK_PASSWORD", "not the password")
    .code(3);
    assert!(
        !b.db().exists(),
        "a failed login must not leave a vault behind"
    );
    let other_sk = TestEnv::init();
    login_new_device(&b, &server, "bob@example.org", other_sk.secret_key()).code(3);
    assert!(!b.db().exists());
    // The Secret Key from the environment works too (and the right one logs in).
    b.cmd([
        "login",
        "--server",
        &server.url,
        "--email",
        "bob@example.org",
    ])
    .env("OPENK_SECRET_KEY", a.secret_key())
    .ok()
    .stdout_has("Logged in");
    let status = b.json(&["status"]);
    assert_eq!(status["account_id"], a.account_id());
    assert_ne!(status["device_id"], a.json(&["status"])["device_id"]);
    assert_eq!(b.json(&["kit"])["secret_key"], a.secret_key());
    assert_eq!(a.json(&["device", "ls"]).as_array().map(Vec::len), Some(2));
    // Logging in again over an existing vault of another account is refused.
    let c = TestEnv::init();
    login_new_device(&c, &server, "bob@example.org", a.secret_key())
        .code(2)
        .stderr_has("not registered");
}

// KDF parameters below the floor from a server are refused unless allowed.
#[test]
fn weak_kdf_from_the_server_is_refused_unless_allowed() {
    let server = Server::start();
    let weak = TestEnv::new();
    weak.cmd([
        "init",
        "--kdf-memory-mib",
        "8",
        "--kdf-iterations",
        "1",
        "--kdf-parallelism",
        "1",
        "--kit",
    ])
    .arg(weak.root().join("kit.txt"))
    .ok();
    let kit = std::fs::read_to_string(weak.root().join("kit.txt")).expect("kit");
    let sk = kit
        .lines()
        .find_map(|l| l.strip_prefix("Secret Key:"))
        .expect("sk line")
        .trim()
        .to_owned();
    register(&weak, &server, "weak@example.org");
    let b = second_device();
    login_new_device(&b, &server, "weak@example.org", &sk)
        .code(2)
        .stderr_has("--allow-weak-kdf");
    assert!(!b.db().exists());
    b.cmd([
        "login",
        "--server",
        &server.url,
        "--email",
        "weak@example.org",
        "--secret-key",
        &sk,
        "--allow-weak-kdf",
    ])
    .ok();
}

// Rename and revoke devices; a revoked device is signed out at once.
#[test]
fn rename_and_revoke_devices() {
    let server = Server::start();
    let a = TestEnv::init();
    register(&a, &server, "carol@example.org");
    let b = second_device();
    login_new_device(&b, &server, "carol@example.org", a.secret_key()).ok();
    a.cmd(["device", "rename", "current", "work desk"])
        .ok()
        .stdout_has("work desk");
    a.cmd(["device", "revoke", "laptop"])
        .code(2)
        .stderr_has("--yes");
    b.run(&["device", "ls"]);
    a.cmd(["device", "revoke", "laptop", "--yes"]).ok();
    b.cmd(["device", "ls"]).code(3).stderr_has("openk login");
    a.cmd(["device", "revoke", "nope", "--yes"]).code(4);
    let devices = a.json(&["device", "ls"]);
    assert_eq!(devices.as_array().map(Vec::len), Some(1));
    assert_eq!(devices[0]["name"], "work desk");
    let audit = a.json(&["audit"]).to_string();
    assert!(
        audit.contains("device_revoked") && audit.contains("device_renamed"),
        "{audit}"
    );
}

// Logout ends the session; `openk login` starts a new one.
#[test]
fn logout_and_login_again() {
    let server = Server::start();
    let a = TestEnv::init();
    register(&a, &server, "dan@example.org");
    a.run(&["logout"]);
    assert_eq!(a.json(&["status"])["server"]["session"], "logged out");
    a.cmd(["device", "ls"]).code(3);
    a.cmd(["login"]).ok().stdout_has("Logged in");
    a.run(&["device", "ls"]);
    let audit = a.json(&["audit"]).to_string();
    assert!(audit.contains("\"logout\""), "{audit}");
}

// A server that cannot be reached: exit 7 with the URL named.
#[test]
fn unreachable_server_exits_7_with_the_url() {
    let closed = {
        let l = TcpListener::bind("127.0.0.1:0").expect("bind");
        format!("http://{}", l.local_addr().expect("addr"))
    };
    let a = TestEnv::init();
    a.cmd(["register", "--server", &closed, "--email", "e@example.org"])
        .code(7)
        .stderr_has(&closed);
    let b = second_device();
    b.cmd([
        "login",
        "--server",
        &closed,
        "--email",
        "e@example.org",
        "--secret-key",
        a.secret_key(),
    ])
    .code(7)
    .stderr_has(&closed);
    // A registered vault whose server went away still works offline.
    let server = Server::start();
    register(&a, &server, "e@example.org");
    drop(server);
    a.cmd(["device", "ls"]).code(7);
    a.run(&["ls"]);
    assert_eq!(a.json(&["status"])["server"]["reachable"], false);
}

// Repeated failed logins: "too many attempts, try again in N s".
#[test]
fn rate_limited_login_says_when_to_retry() {
    let server = Server::with(Settings {
        login_failure_limit: 2,
        ..Settings::for_tests()
    });
    let a = TestEnv::init();
    register(&a, &server, "erin@example.org");
    let b = second_device();
    for _ in 0..2 {
        b.cmd([
            "login",
            "--server",
            &server.url,
            "--email",
            "erin@example.org",
            "--secret-key",
            a.secret_key(),
        ])
        .env("OPENK_PASSWORD", "wrong")
        .code(3);
    }
    let run = login_new_device(&b, &server, "erin@example.org", a.secret_key()).fails();
    run.stderr_has("too many attempts, try again in");
}

// A stranger who knows only the email (and even the Secret Key) tries ten
// wrong passwords from unknown devices: new devices are throttled, but the
// owner's registered device proves its device key and still logs in, twice.
#[test]
fn wrong_logins_from_strangers_do_not_lock_out_a_known_device() {
    // A back-off long enough that the last refusal still holds on a loaded
    // machine (the default 1 s doubles from the fifth failure, and ten
    // logins can outlast it).
    let server = Server::with(openk_server::Settings {
        login_backoff: std::time::Duration::from_secs(120),
        ..openk_server::Settings::for_tests()
    });
    let a = TestEnv::init();
    register(&a, &server, "olga@example.org");
    let stranger = second_device();
    for _ in 0..10 {
        stranger
            .cmd([
                "login",
                "--server",
                &server.url,
                "--email",
                "olga@example.org",
                "--secret-key",
                a.secret_key(),
            ])
            .env("OPENK_PASSWORD", "wrong")
            .fails();
    }
    login_new_device(
        &second_device(),
        &server,
        "olga@example.org",
        a.secret_key(),
    )
    .fails()
    .stderr_has("too many attempts, try again in");
    for _ in 0..2 {
        a.run(&["logout"]);
        a.cmd(["login"]).ok().stdout_has("Logged in");
    }
    a.run(&["device", "ls"]);
}

// `openk passwd` on a registered vault changes the password on the server too.
#[test]
fn password_change_reaches_the_server() {
    let server = Server::start();
    let mut a = TestEnv::init();
    register(&a, &server, "fay@example.org");
    a.cmd(["passwd", "--new-password-stdin"])
        .stdin("brand-new-pw-Hq4t9Zr\n")
        .ok();
    a.set_password("brand-new-pw-Hq4t9Zr");
    a.run(&["device", "ls"]);
    let b = second_device();
    login_new_device(&b, &server, "fay@example.org", a.secret_key()).code(3);
    b.cmd([
        "login",
        "--server",
        &server.url,
        "--email",
        "fay@example.org",
        "--secret-key",
        a.secret_key(),
    ])
    .env("OPENK_PASSWORD", "brand-new-pw-Hq4t9Zr")
    .ok();
}

fn wait_for(url: &str, child: &mut Child) {
    let deadline = Instant::now() + Duration::from_secs(20);
    let addr = url.trim_start_matches("http://");
    while Instant::now() < deadline {
        if std::net::TcpStream::connect(addr).is_ok() {
            return;
        }
        if let Ok(Some(status)) = child.try_wait() {
            panic!("openk serve exited early: {status}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("openk serve did not start listening on {url}");
}

// `openk serve` runs the bundled server; neither its database nor its log
// (at trace level) ever holds the master password, the Secret Key or an item.
#[test]
fn openk_serve_stores_and_logs_no_secret() {
    let env = TestEnv::init();
    let port = free_port();
    let url = format!("http://127.0.0.1:{port}");
    let db = env.root().join("server.db");
    let mut child = Command::new(bin())
        .args([
            "serve",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--database",
            &format!("sqlite://{}", db.display()),
        ])
        .env("OPENK_LOG", "trace")
        .env("HOME", env.root())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn openk serve");
    wait_for(&url, &mut child);
    // Read the trace log while the server runs: a full pipe would block it.
    let mut stderr = child.stderr.take().expect("stderr");
    let log_reader = std::thread::spawn(move || {
        let mut log = String::new();
        stderr.read_to_string(&mut log).expect("log");
        log
    });
    env.add(&[
        "login",
        "--name",
        "ZEBRA-ITEM-NAME",
        "--password",
        "ZEBRA-ITEM-PASSWORD",
    ]);
    env.cmd([
        "-vvv",
        "register",
        "--server",
        &url,
        "--email",
        "gus@example.org",
    ])
    .ok();
    let b = second_device();
    b.cmd([
        "-vvv",
        "login",
        "--server",
        &url,
        "--email",
        "gus@example.org",
        "--secret-key",
        env.secret_key(),
    ])
    .ok();
    b.cmd([
        "login",
        "--server",
        &url,
        "--email",
        "gus@example.org",
        "--secret-key",
        env.secret_key(),
    ])
    .env("OPENK_PASSWORD", "wrong password")
    .fails();
    env.run(&["device", "ls"]);
    env.run(&["audit"]);
    env.run(&["logout"]);
    // SIGTERM: drain and exit 0.
    rustix::process::kill_process(
        rustix::process::Pid::from_child(&child),
        rustix::process::Signal::TERM,
    )
    .expect("signal");
    let status = child.wait().expect("wait");
    assert!(
        status.success(),
        "openk serve did not exit cleanly: {status}"
    );
    let log = log_reader.join().expect("log reader");
    assert!(log.contains("listening on"), "{log}");
    let mut stored = Vec::new();
    for name in ["server.db", "server.db-wal"] {
        if let Ok(bytes) = std::fs::read(env.root().join(name)) {
            stored.extend(bytes);
        }
    }
    assert!(!stored.is_empty());
    let sk_plain = env.secret_key().replace('-', "");
    for secret in [
        env.password(),
        "wrong password",
        env.secret_key(),
        sk_plain.as_str(),
        "ZEBRA-ITEM-NAME",
        "ZEBRA-ITEM-PASSWORD",
    ] {
        assert!(!log.contains(secret), "the server log contains {secret:?}");
        assert!(
            !stored.windows(secret.len()).any(|w| w == secret.as_bytes()),
            "the server database contains {secret:?}"
        );
    }
}

/// Makes a CA and a server certificate for 127.0.0.1 with the openssl CLI.
fn make_certs(dir: &std::path::Path) -> bool {
    let run = |args: &[&str]| {
        Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    std::fs::write(
        dir.join("ext.cnf"),
        "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\n",
    )
    .expect("ext");
    run(&[
        "req",
        "-x509",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
        "-days",
        "1",
        "-subj",
        "/CN=OpenK test CA",
    ]) && run(&[
        "req",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
        "-keyout",
        "server.key",
        "-out",
        "server.csr",
        "-subj",
        "/CN=127.0.0.1",
    ]) && run(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "server.pem",
        "-days",
        "1",
        "-extfile",
        "ext.cnf",
    ])
}

// `openk serve --tls-cert/--tls-key` serves HTTPS; a client trusts a private
// CA through OPENK_CA_CERT and refuses the server without it: a TLS error
// (exit 8) that names the server and OPENK_CA_CERT, not "unreachable".
#[test]
fn tls_with_a_private_ca() {
    if !crate::util::have("openssl") {
        eprintln!(
            "skipped: the openssl command is not installed (needed to make test certificates)"
        );
        return;
    }
    let env = TestEnv::init();
    assert!(
        make_certs(env.root()),
        "openssl could not make the test certificates"
    );
    let port = free_port();
    let url = format!("https://127.0.0.1:{port}");
    let mut child = Command::new(bin())
        .args([
            "serve",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--database",
            "memory",
            "--tls-cert",
        ])
        .arg(env.root().join("server.pem"))
        .arg("--tls-key")
        .arg(env.root().join("server.key"))
        .env("HOME", env.root())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn openk serve");
    wait_for(&format!("http://127.0.0.1:{port}"), &mut child);
    let untrusted = env
        .cmd(["register", "--server", &url, "--email", "tls@example.org"])
        .code(8);
    untrusted
        .stderr_has(&url)
        .stderr_has("TLS certificate this device does not trust")
        .stderr_has("not signed by a certificate authority this device trusts")
        .stderr_has("set OPENK_CA_CERT")
        .stderr_lacks("cannot reach");
    env.cmd(["register", "--server", &url, "--email", "tls@example.org"])
        .env("OPENK_CA_CERT", env.root().join("ca.pem"))
        .ok();
    let status = env
        .cmd(["--json", "status"])
        .env("OPENK_CA_CERT", env.root().join("ca.pem"))
        .json();
    assert_eq!(status["server"]["reachable"], true);
    let _ = child.kill();
    let _ = child.wait();
}

/// `openk serve ARGS` to completion: (success, stderr).
fn serve_admin(args: &[&str]) -> (bool, String) {
    let out = Command::new(bin())
        .arg("serve")
        .args(args)
        .env_remove("OPENK_SERVER_DATABASE")
        .stdin(Stdio::null())
        .output()
        .expect("run openk serve");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `openk serve` on this port and database, logging to `log`.
fn spawn_serve(port: u16, db: &std::path::Path, log: &std::path::Path) -> Child {
    let mut child = Command::new(bin())
        .args([
            "serve",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--database",
            &format!("sqlite://{}", db.display()),
        ])
        .env("OPENK_LOG", "info")
        .env_remove("NO_COLOR")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(log).expect("log file"))
        .spawn()
        .expect("spawn openk serve");
    wait_for(&format!("http://127.0.0.1:{port}"), &mut child);
    child
}

fn stop(mut child: Child) {
    rustix::process::kill_process(
        rustix::process::Pid::from_child(&child),
        rustix::process::Signal::TERM,
    )
    .expect("signal");
    let status = child.wait().expect("wait");
    assert!(
        status.success(),
        "openk serve did not exit cleanly: {status}"
    );
}

// What docs/operations.md says works with the binary the README installs:
// `openk serve backup` snapshots a running server's SQLite database,
// `openk serve restore` puts it back (refusing to overwrite without --force,
// refusing garbage), and a server on the restored database serves the same
// account to a new device. Mirrors server/tests/faults.rs
// (`backup_while_running_and_restore`) through `openk`.
#[test]
fn openk_serve_backup_and_restore() {
    let env = TestEnv::init();
    let dir = env.root();
    let db = dir.join("s.db");
    let port = free_port();
    let url = format!("http://127.0.0.1:{port}");
    let server = spawn_serve(port, &db, &dir.join("serve.log"));
    env.add(&["login", "--name", "Backed-up", "--password", "pw-backup"]);
    env.cmd([
        "register",
        "--server",
        &url,
        "--email",
        "backup@example.org",
    ])
    .ok();

    let snap = dir.join("snap.db");
    let db_url = format!("sqlite://{}", db.display());
    let snap_arg = snap.display().to_string();
    let (ok, err) = serve_admin(&["backup", "--database", &db_url, "--out", &snap_arg]);
    assert!(ok, "backup failed: {err}");
    assert!(err.contains("Snapshot written to"), "{err}");
    let (ok, err) = serve_admin(&["backup", "--database", &db_url, "--out", &snap_arg]);
    assert!(!ok && err.contains("already exists"), "{err}");
    stop(server);

    let restored = dir.join("restored.db");
    let target = format!("sqlite://{}", restored.display());
    let (ok, err) = serve_admin(&["restore", &snap_arg, "--database", &target]);
    assert!(ok, "restore failed: {err}");
    let (ok, err) = serve_admin(&["restore", &snap_arg, "--database", &target]);
    assert!(!ok && err.contains("--force"), "{err}");
    let garbage = dir.join("garbage.db");
    std::fs::write(&garbage, b"not a database at all").expect("write");
    let (ok, err) = serve_admin(&[
        "restore",
        &garbage.display().to_string(),
        "--database",
        &target,
        "--force",
    ]);
    assert!(!ok && err.contains("not"), "{err}");
    // The server's own database flag works before the subcommand too.
    let (ok, err) = serve_admin(&["--database", &db_url, "backup", "--out", &snap_arg]);
    assert!(!ok && err.contains("already exists"), "{err}");

    let port = free_port();
    let url = format!("http://127.0.0.1:{port}");
    let again = spawn_serve(port, &restored, &dir.join("serve2.log"));
    let b = second_device();
    b.cmd([
        "login",
        "--server",
        &url,
        "--email",
        "backup@example.org",
        "--secret-key",
        env.secret_key(),
    ])
    .ok();
    b.run(&["sync"]);
    assert_eq!(b.run(&["get", "Backed-up"]).trim(), "pw-backup");
    stop(again);
}

// Log lines carry no colour codes when stderr is a file (NO_COLOR unset),
// for the server and for a command's own stderr logging.
#[test]
fn no_colour_codes_in_logs_off_a_terminal() {
    let env = TestEnv::init();
    let log = env.root().join("serve.log");
    let port = free_port();
    let server = spawn_serve(port, &env.root().join("s.db"), &log);
    env.cmd([
        "-vv",
        "register",
        "--server",
        &format!("http://127.0.0.1:{port}"),
        "--email",
        "colour@example.org",
    ])
    .env_remove("NO_COLOR")
    .ok();
    stop(server);
    let text = std::fs::read(&log).expect("read the log");
    assert!(
        String::from_utf8_lossy(&text).contains("listening on"),
        "{}",
        String::from_utf8_lossy(&text)
    );
    assert!(!text.contains(&0x1b), "ESC in the server log");
    let run = env.cmd(["-vv", "ls"]).env_remove("NO_COLOR").ok();
    assert!(!run.stderr.is_empty(), "-vv logs something\n{run}");
    assert!(
        !run.stderr.contains('\u{1b}'),
        "ESC in the command's log\n{run}"
    );
}

/// A self-signed ed25519 server certificate for localhost and 127.0.0.1,
/// made the ordinary way (`openssl req -x509`, so it says CA:TRUE).
fn make_self_signed(dir: &std::path::Path, name: &str) -> bool {
    Command::new("openssl")
        .args(["req", "-x509", "-newkey", "ed25519", "-nodes", "-keyout"])
        .arg(format!("{name}.key"))
        .arg("-out")
        .arg(format!("{name}.pem"))
        .args([
            "-days",
            "1",
            "-subj",
            "/CN=localhost",
            "-addext",
            "subjectAltName=DNS:localhost,IP:127.0.0.1",
        ])
        .current_dir(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

// OPENK_CA_CERT with the server's own self-signed certificate pins it: the
// client connects. Another self-signed
// certificate in OPENK_CA_CERT, or none, is a TLS error (exit 8) naming the
// server and OPENK_CA_CERT; the write before it is kept and pending.
#[test]
fn tls_with_a_pinned_self_signed_certificate() {
    if !crate::util::have("openssl") {
        eprintln!(
            "skipped: the openssl command is not installed (needed to make test certificates)"
        );
        return;
    }
    let env = TestEnv::init();
    assert!(
        make_self_signed(env.root(), "leaf") && make_self_signed(env.root(), "other"),
        "openssl could not make the test certificates"
    );
    let port = free_port();
    let url = format!("https://127.0.0.1:{port}");
    let mut child = Command::new(bin())
        .args([
            "serve",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--database",
            "memory",
            "--tls-cert",
        ])
        .arg(env.root().join("leaf.pem"))
        .arg("--tls-key")
        .arg(env.root().join("leaf.key"))
        .env("HOME", env.root())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn openk serve");
    wait_for(&format!("http://127.0.0.1:{port}"), &mut child);
    let pinned = env.root().join("leaf.pem");
    env.cmd(["register", "--server", &url, "--email", "pin@example.org"])
        .env("OPENK_CA_CERT", &pinned)
        .ok();
    env.cmd(["add", "login", "--name", "Pinned", "--password", "pw-1"])
        .env("OPENK_CA_CERT", &pinned)
        .ok()
        .stderr_lacks("not synced");
    let status = env
        .cmd(["--json", "status"])
        .env("OPENK_CA_CERT", &pinned)
        .json();
    assert_eq!(status["server"]["reachable"], true, "{status}");
    assert_eq!(status["server"]["confirmed"], true, "{status}");
    assert_eq!(status["sync"]["pending"], 0, "{status}");
    let other = env.root().join("other.pem");
    let wrong = env.cmd(["sync"]).env("OPENK_CA_CERT", &other).code(8);
    wrong
        .stderr_has(&url)
        .stderr_has("TLS certificate this device does not trust")
        .stderr_has(&format!("check OPENK_CA_CERT={}", other.display()))
        .stderr_lacks("cannot reach");
    let none = env.cmd(["sync"]).code(8);
    none.stderr_has(&url).stderr_has("set OPENK_CA_CERT");
    // A write commits locally and says why it did not sync.
    env.cmd(["edit", "Pinned", "--password", "pw-2"])
        .env("OPENK_CA_CERT", &other)
        .ok()
        .stderr_has("saved here; not synced")
        .stderr_has("TLS certificate this device does not trust");
    let status = env
        .cmd(["--json", "status"])
        .env("OPENK_CA_CERT", &other)
        .json();
    assert_eq!(status["server"]["state"], "tls error", "{status}");
    assert_eq!(status["sync"]["pending"], 1, "{status}");
    env.cmd(["sync"]).env("OPENK_CA_CERT", &pinned).ok();
    let status = env
        .cmd(["--json", "status"])
        .env("OPENK_CA_CERT", &pinned)
        .json();
    assert_eq!(status["sync"]["pending"], 0, "{status}");
    let _ = child.kill();
    let _ = child.wait();
}
