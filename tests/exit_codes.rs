//! Every exit code and typical cause in docs/errors.md, end to end. Rows
//! tested elsewhere are named here with their test; the rest are below.
//!
//! | Code | Cause | Test |
//! |---|---|---|
//! | 0 | ok | everywhere |
//! | 1 | damaged item / vault.db | damage.rs |
//! | 1 | init on an existing vault | vault.rs `init_refuses_existing_vault` and below |
//! | 1 | change to a read-only vault | files.rs |
//! | 1 | a share link that does not decrypt | share.rs |
//! | 2 | config unknown key, missing `OPENK_CONFIG` | config.rs |
//! | 2 | bad KDF values | vault.rs and below |
//! | 2 | purge without --yes | items.rs `trash_restore_and_purge` |
//! | 2 | a name another item has (any case) | output.rs |
//! | 2 | a bad keymap file | below |
//! | 2 | a new master password zxcvbn rates under 10^8 guesses | below |
//! | 2 | not a share link; share link limits, an unknown `--fields` label, no server | share.rs |
//! | 3 | wrong password | vault.rs, sync.rs |
//! | 3 | no password source, empty password | below |
//! | 4 | not found | items.rs |
//! | 4 | a share link that expired, was used up or revoked; revoking an unknown one | share.rs |
//! | 5 | ambiguous | items.rs `item_resolution` |
//! | 6 | conflict | engine tests (a race between two processes) |
//! | 6 | the vault kept moving on the server during a sync | below (`a_vault_that_keeps_moving_is_a_conflict`) |
//! | 7 | unreachable, not answering | sync.rs, server.rs, network.rs |
//! | 8 | tls | server.rs |
//! | 9 | a device approval denied, with a wrong code | approve.rs |

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use serde_json::json;

use crate::sync::Serve;
use crate::util::{KDF_FLOOR, TestEnv};

// init without a password source (no terminal, no OPENK_PASSWORD, no --password-stdin) is exit 3, as is an empty password from either source.
#[test]
fn init_without_a_password_is_locked() {
    let env = TestEnv::new();
    env.cmd(["init"])
        .args(KDF_FLOOR)
        .env_remove("OPENK_PASSWORD")
        .code(3)
        .stderr_has("OPENK_PASSWORD");
    env.cmd(["init"])
        .args(KDF_FLOOR)
        .env("OPENK_PASSWORD", "")
        .code(3)
        .stderr_has("empty");
    env.cmd(["--password-stdin", "init"])
        .args(KDF_FLOOR)
        .env_remove("OPENK_PASSWORD")
        .stdin("\n")
        .code(3);
    assert!(!env.db().exists(), "no vault was made");
}

// An empty OPENK_PASSWORD says it is empty, at once (no key derivation), instead of "wrong master password".
#[test]
fn an_empty_password_is_named_before_the_kdf() {
    let env = TestEnv::init();
    let started = std::time::Instant::now();
    env.cmd(["ls"])
        .env("OPENK_PASSWORD", "")
        .code(3)
        .stderr_has("OPENK_PASSWORD is set but empty")
        .stderr_lacks("wrong");
    assert!(started.elapsed() < std::time::Duration::from_secs(5));
}

// A keymap file that does not parse: exit 2 and a lowercase "error:" naming the file, before the terminal is touched.
#[test]
fn a_bad_keymap_is_a_usage_error() {
    let env = TestEnv::init();
    let keymap = env.root().join("bad-keymap.toml");
    std::fs::write(&keymap, "no_such_action = [\"q\"]\n").expect("write keymap");
    let config = env.root().join("config.toml");
    std::fs::write(
        &config,
        format!("[tui]\nkeymap = {:?}\n", keymap.display().to_string()),
    )
    .expect("write config");
    let run = env.cmd(["tui"]).env("OPENK_CONFIG", &config).code(2);
    run.stderr_has("error: ").stderr_has("bad-keymap.toml");
    assert!(!run.stderr.contains("Error:"), "{run}");
}

// init on an existing vault is exit 1 and changes nothing; KDF values over the ceiling are exit 2.
#[test]
fn init_refusals() {
    let env = TestEnv::init();
    let before = std::fs::read(env.db()).expect("read db");
    env.cmd(["init"])
        .args(KDF_FLOOR)
        .code(1)
        .stderr_has("already exists");
    assert_eq!(std::fs::read(env.db()).expect("read db"), before);
    let fresh = TestEnv::new();
    fresh.cmd(["init", "--kdf-memory-mib", "999999"]).code(2);
    fresh.cmd(["init", "--kdf-iterations", "0"]).code(2);
}

// A new master password that zxcvbn rates under 10^8 guesses is refused (exit 2, nothing made) unless --weak-password; init and passwd alike.
#[test]
fn a_guessable_master_password_is_refused_unless_insisted() {
    let mut env = TestEnv::new();
    for weak in ["a", "password1", "qwerty123"] {
        env.cmd(["init"])
            .args(KDF_FLOOR)
            .env("OPENK_PASSWORD", weak)
            .code(2)
            .stderr_has("too easy to guess")
            .stderr_has("--weak-password");
        assert!(!env.db().exists(), "no vault was made for {weak:?}");
    }
    env.cmd(["init", "--weak-password"])
        .args(KDF_FLOOR)
        .env("OPENK_PASSWORD", "password1")
        .code(0)
        .stderr_has("easy to guess");
    env.set_password("password1");
    env.cmd(["passwd", "--new-password-stdin"])
        .stdin("letmein\n")
        .code(2)
        .stderr_has("too easy to guess")
        .stderr_lacks("letmein");
    env.cmd(["ls"]).code(0);
    env.cmd(["passwd", "--new-password-stdin", "--weak-password"])
        .stdin("letmein\n")
        .code(0);
}

/// An HTTP proxy on a random port in front of the server on `upstream`.
/// While `refuse` is set it answers every push (`POST
/// /v1/vaults/{id}/changes`) itself with the server's `409 head_moved`
/// problem, as if another device always pushed first, and counts them in
/// `refused`; every other request goes to the server (one connection each).
fn head_moving_proxy(upstream: u16, refuse: Arc<AtomicBool>, refused: Arc<AtomicUsize>) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    std::thread::spawn(move || {
        for client in listener.incoming().flatten() {
            let (refuse, refused) = (refuse.clone(), refused.clone());
            std::thread::spawn(move || proxy_one(client, upstream, &refuse, &refused));
        }
    });
    url
}

fn proxy_one(client: TcpStream, upstream: u16, refuse: &AtomicBool, refused: &AtomicUsize) {
    let mut reader = BufReader::new(client.try_clone().expect("clone"));
    let mut out = client;
    loop {
        let mut request_line = String::new();
        if reader.read_line(&mut request_line).unwrap_or(0) == 0 {
            return;
        }
        let (mut headers, mut length) = (String::new(), 0usize);
        loop {
            let mut h = String::new();
            if reader.read_line(&mut h).unwrap_or(0) == 0 {
                return;
            }
            if h.trim_end().is_empty() {
                break;
            }
            let name = h.split_once(':').map_or("", |(k, _)| k.trim());
            if name.eq_ignore_ascii_case("content-length") {
                length = h
                    .split_once(':')
                    .map_or(0, |(_, v)| v.trim().parse().unwrap_or(0));
            }
            if !name.eq_ignore_ascii_case("connection") {
                headers.push_str(&h);
            }
        }
        let mut body = vec![0; length];
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        let mut parts = request_line.split_whitespace();
        let (method, path) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
        let push =
            method == "POST" && path.starts_with("/v1/vaults/") && path.ends_with("/changes");
        if push && refuse.load(Ordering::SeqCst) {
            // The head a racing device would have moved the vault to.
            let head = 1000 + refused.fetch_add(1, Ordering::SeqCst);
            let problem = json!({
                "type": "https://openk.invalid/errors#head_moved", "title": "Conflict",
                "status": 409, "code": "head_moved",
                "detail": format!("the vault moved on to revision {head}; pull and push again"),
                "head": head,
            })
            .to_string();
            let answer = format!(
                "HTTP/1.1 409 Conflict\r\nContent-Type: application/problem+json\r\nContent-Length: {}\r\n\r\n{problem}",
                problem.len()
            );
            if out.write_all(answer.as_bytes()).is_err() {
                return;
            }
            continue;
        }
        let Ok(mut server) = TcpStream::connect(("127.0.0.1", upstream)) else {
            return;
        };
        let request = format!("{request_line}{headers}Connection: close\r\n\r\n");
        if server.write_all(request.as_bytes()).is_err() || server.write_all(&body).is_err() {
            return;
        }
        // The server closes after its answer; so does this connection.
        let _ = std::io::copy(&mut server, &mut out);
        return;
    }
}

// A vault that keeps moving on the server during a sync: every push is
// answered `409 head_moved`, the client pulls, merges and pushes again by
// itself, then gives up with exit 6 and "run `openk sync` again"; the local
// change is kept (still pending) and goes out on the next sync that can.
#[test]
fn a_vault_that_keeps_moving_is_a_conflict() {
    let tmp = tempfile::tempdir().expect("tmp");
    let server = Serve::start(tmp.path());
    let (refuse, refused) = (
        Arc::new(AtomicBool::new(false)),
        Arc::new(AtomicUsize::new(0)),
    );
    let url = head_moving_proxy(server.port, refuse.clone(), refused.clone());
    let env = TestEnv::init();
    env.cmd([
        "register",
        "--server",
        &url,
        "--email",
        "moving@example.org",
    ])
    .ok();
    env.cmd(["sync"]).ok();

    refuse.store(true, Ordering::SeqCst);
    env.cmd([
        "--no-sync",
        "add",
        "login",
        "--name",
        "kept",
        "--password",
        "kept-pw",
    ])
    .ok();
    let before = refused.load(Ordering::SeqCst);
    let run = env.cmd(["sync"]).code(6);
    run.stderr_has("kept changing on the server")
        .stderr_has("run `openk sync` again");
    run.assert_no_panic();
    assert!(
        refused.load(Ordering::SeqCst) - before > 1,
        "the client pushed again by itself before giving up"
    );
    assert!(env.ls_names(&[]).contains(&"kept".to_owned()));
    assert_eq!(env.json(&["status"])["sync"]["pending"], 1);

    // Once the server stops moving, the kept change goes out.
    refuse.store(false, Ordering::SeqCst);
    env.cmd(["sync"]).ok();
    assert_eq!(env.json(&["status"])["sync"]["pending"], 0);
}
