//! Fork detection on a plain `openk sync` (docs/security.md): a server
//! that shows two devices different histories at the same manifest counter
//! is caught, nothing is applied, and the error says it is a fork.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU16, Ordering};

use crate::sync::Serve;
use crate::util::TestEnv;

const EMAIL: &str = "fork@example.org";

/// A TCP proxy on a random port that sends each new connection to the
/// port `upstream` holds at that moment: one server URL for the devices,
/// whichever copy of the server is behind it.
fn switch(upstream: Arc<AtomicU16>) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    std::thread::spawn(move || {
        for client in listener.incoming().flatten() {
            let port = upstream.load(Ordering::SeqCst);
            let Ok(server) = TcpStream::connect(("127.0.0.1", port)) else {
                continue;
            };
            for (mut from, mut to) in [
                (
                    client.try_clone().expect("clone"),
                    server.try_clone().expect("clone"),
                ),
                (server, client),
            ] {
                std::thread::spawn(move || {
                    let mut buf = [0u8; 16 * 1024];
                    while let Ok(n) = from.read(&mut buf) {
                        if n == 0 || to.write_all(&buf[..n]).is_err() {
                            break;
                        }
                    }
                    let _ = to.shutdown(std::net::Shutdown::Write);
                });
            }
        }
    });
    url
}

/// Copies a stopped server's SQLite database (with its WAL, if any).
fn copy_database(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for name in ["server.db", "server.db-wal", "server.db-shm"] {
        if from.join(name).exists() {
            std::fs::copy(from.join(name), to.join(name)).expect("copy");
        }
    }
}

// Two copies of one server database; each device pushes to its own copy,
// then syncs against the other's: both refuse with a fork alarm (exit 1),
// and neither applies anything of the other branch.
#[test]
fn two_copies_of_a_server_are_caught_as_a_fork_on_a_plain_sync() {
    let tmp = tempfile::tempdir().expect("tmp");
    let (one, two) = (tmp.path().join("one"), tmp.path().join("two"));
    std::fs::create_dir_all(&one).expect("mkdir");
    let mut first = Serve::start(&one);
    let upstream = Arc::new(AtomicU16::new(first.port));
    let url = switch(upstream.clone());

    let a = TestEnv::init();
    a.cmd([
        "register",
        "--server",
        &url,
        "--email",
        EMAIL,
        "--device-name",
        "desk",
    ])
    .ok();
    a.add(&["login", "--name", "shared", "--password", "same-pw"]);
    let b = TestEnv::new();
    b.cmd([
        "login",
        "--server",
        &url,
        "--email",
        EMAIL,
        "--device-name",
        "laptop",
    ])
    .arg("--secret-key")
    .arg(a.secret_key())
    .ok();
    b.cmd(["sync"]).ok();
    a.cmd(["sync"]).ok();

    // The same database, twice, each behind its own server.
    first.down();
    copy_database(&one, &two);
    let copy_one = Serve::start(&one);
    let copy_two = Serve::start(&two);

    // Each device pushes to its own copy: the same counter, two histories.
    upstream.store(copy_one.port, Ordering::SeqCst);
    a.add(&["login", "--name", "only-on-one", "--password", "a-pw"]);
    a.cmd(["sync"]).ok();
    upstream.store(copy_two.port, Ordering::SeqCst);
    b.add(&["login", "--name", "only-on-two", "--password", "b-pw"]);
    b.cmd(["sync"]).ok();

    // A against B's copy, then B against A's copy.
    let run = a.cmd(["sync"]).code(1);
    run.stderr_has("fork detected")
        .stderr_has("nothing was applied");
    assert!(!a.ls_names(&[]).contains(&"only-on-two".to_owned()));
    upstream.store(copy_one.port, Ordering::SeqCst);
    let run = b.cmd(["sync"]).code(1);
    run.stderr_has("fork detected")
        .stderr_has("nothing was applied");
    assert!(!b.ls_names(&[]).contains(&"only-on-one".to_owned()));
    // Each still syncs with its own copy.
    a.cmd(["sync"]).ok();
}

/// A forked server where A pushed once to copy one and B pushed `pushes`
/// times to copy two; returns A's `openk sync` against copy two.
fn a_after_b_pushed(pushes: usize) -> (TestEnv, crate::util::Run) {
    let tmp = tempfile::tempdir().expect("tmp");
    let (one, two) = (tmp.path().join("one"), tmp.path().join("two"));
    std::fs::create_dir_all(&one).expect("mkdir");
    let mut first = Serve::start(&one);
    let upstream = Arc::new(AtomicU16::new(first.port));
    let url = switch(upstream.clone());
    let a = TestEnv::init();
    a.cmd(["register", "--server", &url, "--email", EMAIL]).ok();
    a.add(&["login", "--name", "shared", "--password", "same-pw"]);
    let b = TestEnv::new();
    b.cmd(["login", "--server", &url, "--email", EMAIL])
        .arg("--secret-key")
        .arg(a.secret_key())
        .ok();
    b.cmd(["sync"]).ok();
    first.down();
    copy_database(&one, &two);
    let copy_one = Serve::start(&one);
    let copy_two = Serve::start(&two);
    upstream.store(copy_one.port, Ordering::SeqCst);
    a.add(&["login", "--name", "only-on-one", "--password", "a-pw"]);
    upstream.store(copy_two.port, Ordering::SeqCst);
    for n in 0..pushes {
        b.add(&["login", "--name", &format!("two-{n}"), "--password", "b-pw"]);
    }
    let run = a.cmd(["sync"]).code(1);
    assert!(!a.ls_names(&[]).contains(&"two-0".to_owned()));
    (a, run)
}

// The manifest right after the one this device accepted must name it:
// B's second manifest on copy two follows B's first, not A's.
#[test]
fn the_next_manifest_must_follow_the_one_accepted() {
    let (_a, run) = a_after_b_pushed(2);
    run.stderr_has("fork detected")
        .stderr_has("follows another manifest number");
}

// After a gap (this device missed manifests and the server hands out only
// the newest) the link cannot be followed; the manifest's digest must still
// describe what this device knows, which the other branch does not.
#[test]
fn a_fork_is_caught_after_missed_manifests() {
    let (_a, run) = a_after_b_pushed(3);
    run.stderr_has("do not match the vault manifest");
}
