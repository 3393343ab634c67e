//! A server that accepts connections and then never answers, or refuses
//! them: writes commit locally and say "not synced" quickly, `status`
//! answers from local state, `sync` gives up with exit 7 naming the server
//! (docs/architecture.md, "Network deadlines").

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::sync::Serve;
use crate::util::{Run, TestCommand, TestEnv};

const EMAIL: &str = "net@example.org";

/// Accepts every connection on `port` and holds it open without ever
/// reading or answering (the sockets live as long as the test process).
fn silent_listener(port: u16) {
    let deadline = Instant::now() + Duration::from_secs(10);
    let listener = loop {
        match TcpListener::bind(("127.0.0.1", port)) {
            Ok(l) => break l,
            Err(e) => {
                assert!(Instant::now() < deadline, "cannot bind port {port}: {e}");
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    };
    std::thread::spawn(move || {
        let mut held: Vec<TcpStream> = Vec::new();
        for stream in listener.incoming().flatten() {
            held.push(stream);
        }
    });
}

/// A vault registered with a real server that is then stopped: returns the
/// vault, the server's URL and its (now free) port. One change is synced.
fn registered_then_server_gone() -> (TestEnv, String, u16) {
    let tmp = tempfile::tempdir().expect("tmp");
    let mut server = Serve::start(tmp.path());
    let env = TestEnv::init();
    env.cmd(["register", "--server", &server.url(), "--email", EMAIL])
        .ok();
    env.add(&["login", "--name", "GitHub", "--password", "first-pw"]);
    let url = server.url();
    let port = server.port;
    server.down();
    (env, url, port)
}

fn timed(cmd: TestCommand) -> (Run, Duration) {
    let start = Instant::now();
    let run = cmd.output();
    (run, start.elapsed())
}

/// `openk status` (with `extra` arguments first) must exit 0 within a
/// second. The machine running the suite may be busy: up to three tries, so
/// that only a status that really waits (on every try) fails.
fn status_within_a_second(env: &TestEnv, extra: &[&str]) -> Run {
    let mut tries = Vec::new();
    for _ in 0..3 {
        let (run, took) = timed(env.cmd(extra).arg("status"));
        assert_eq!(run.code, Some(0), "{run}");
        if took < Duration::from_secs(1) {
            return run;
        }
        tries.push(took);
    }
    panic!("status took {tries:?}");
}

// A write against a silent server commits locally and gives up its sync
// quickly: exit 0, "saved here; not synced", and the change is pending.
#[test]
fn a_write_against_a_silent_server_returns_quickly_and_stays_pending() {
    let (env, url, port) = registered_then_server_gone();
    silent_listener(port);
    let (run, took) = timed(env.cmd(["edit", "GitHub", "--password", "second-pw"]));
    assert_eq!(run.code, Some(0), "{run}");
    assert!(took < Duration::from_secs(10), "edit took {took:?}\n{run}");
    run.stderr_has("saved here; not synced")
        .stderr_has("not answering")
        .stderr_has(&url)
        .stderr_has("openk sync");
    assert_eq!(env.run(&["get", "GitHub"]).trim_end(), "second-pw");
    let status = status_within_a_second(&env, &["--json"]).json();
    assert_eq!(status["sync"]["pending"], 1, "{status}");
}

// `status` answers from local state within a second and says plainly what it
// could not confirm about the server.
#[test]
fn status_against_a_silent_server_answers_from_local_state() {
    let (env, url, port) = registered_then_server_gone();
    silent_listener(port);
    env.cmd([
        "--no-sync",
        "add",
        "note",
        "--name",
        "offline",
        "--notes",
        "x",
    ])
    .ok();
    let run = status_within_a_second(&env, &[]);
    run.stdout_has(&url)
        .stdout_has("not answering (could not confirm the session)")
        .stdout_has("1 pending change(s)");
    let status = status_within_a_second(&env, &["--json"]).json();
    assert_eq!(status["server"]["reachable"], false, "{status}");
    assert_eq!(status["server"]["confirmed"], false, "{status}");
    assert_eq!(status["server"]["state"], "not answering", "{status}");
    assert_eq!(status["sync"]["pending"], 1, "{status}");
    assert!(status["device_id"].is_string(), "{status}");
}

// `openk sync` against a silent server gives up within its deadline with
// exit 7, naming the server and saying it is not answering.
#[test]
fn sync_against_a_silent_server_exits_7_within_its_deadline() {
    let (env, url, port) = registered_then_server_gone();
    silent_listener(port);
    let (run, took) = timed(env.cmd(["sync"]));
    assert_eq!(run.code, Some(7), "{run}");
    assert!(took < Duration::from_secs(20), "sync took {took:?}\n{run}");
    run.stderr_has(&url).stderr_has("not answering");
}

// A server that refuses connections is told apart from one that does not
// answer; the write still succeeds and its change stays pending.
#[test]
fn a_refused_connection_is_not_a_silent_server() {
    let (env, url, _port) = registered_then_server_gone();
    let run = env.cmd(["sync"]).code(7);
    run.stderr_has(&url)
        .stderr_has("connection refused")
        .stderr_lacks("not answering");
    let run = env.cmd(["edit", "GitHub", "--password", "third-pw"]).ok();
    run.stderr_has("saved here; not synced")
        .stderr_has("connection refused");
    assert_eq!(env.json(&["status"])["sync"]["pending"], 1);
    let status = env.json(&["status"]);
    assert_eq!(status["server"]["state"], "unreachable", "{status}");
}

/// A pass-through HTTP/1.1 proxy to `upstream` that, while `hold` is set,
/// forwards pushes (`POST …/changes`) to the server but never answers them:
/// the push is applied, its answer is lost.
fn lossy_proxy(upstream: u16, hold: Arc<AtomicBool>) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    std::thread::spawn(move || {
        for client in listener.incoming().flatten() {
            let hold = Arc::clone(&hold);
            std::thread::spawn(move || proxy_one(client, upstream, &hold));
        }
    });
    port
}

/// One request on `client` (answered with `Connection: close`).
fn proxy_one(mut client: TcpStream, upstream: u16, hold: &AtomicBool) {
    let mut reader = BufReader::new(client.try_clone().expect("clone"));
    let mut head = String::new();
    let mut length = 0usize;
    let mut request_line = String::new();
    if reader.read_line(&mut request_line).unwrap_or(0) == 0 {
        return;
    }
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        if line == "\r\n" {
            break;
        }
        let lower = line.to_ascii_lowercase();
        if let Some(v) = lower.strip_prefix("content-length:") {
            length = v.trim().parse().unwrap_or(0);
        }
        if !lower.starts_with("connection:") {
            head.push_str(&line);
        }
    }
    let mut body = vec![0; length];
    if reader.read_exact(&mut body).is_err() {
        return;
    }
    let mut server = TcpStream::connect(("127.0.0.1", upstream)).expect("upstream");
    server
        .write_all(format!("{request_line}{head}Connection: close\r\n\r\n").as_bytes())
        .and_then(|()| server.write_all(&body))
        .expect("forward");
    let mut answer = Vec::new();
    let _ = server.read_to_end(&mut answer);
    let is_push = request_line.starts_with("POST ") && request_line.contains("/changes ");
    if is_push && hold.load(Ordering::SeqCst) {
        // Applied on the server; the answer never comes back.
        std::thread::sleep(Duration::from_secs(60));
        return;
    }
    let _ = client.write_all(&answer);
}

// The sync after a write gives up while its push is in flight (the server
// applied it, the answer was lost): the push stays pending, the next sync
// re-sends it with the same id, and the server applies it once.
#[test]
fn a_push_whose_answer_is_lost_is_replayed_once() {
    let tmp = tempfile::tempdir().expect("tmp");
    let server = Serve::start(tmp.path());
    let hold = Arc::new(AtomicBool::new(false));
    let proxy = lossy_proxy(server.port, Arc::clone(&hold));
    let url = format!("http://127.0.0.1:{proxy}");
    let a = TestEnv::init();
    a.cmd(["register", "--server", &url, "--email", EMAIL]).ok();
    a.add(&["login", "--name", "GitHub", "--password", "first-pw"]);
    hold.store(true, Ordering::SeqCst);
    let (run, took) = timed(a.cmd(["edit", "GitHub", "--password", "second-pw"]));
    assert_eq!(run.code, Some(0), "{run}");
    assert!(took < Duration::from_secs(10), "edit took {took:?}\n{run}");
    run.stderr_has("saved here; not synced")
        .stderr_has("not answering");
    assert_eq!(a.json(&["status"])["sync"]["pending"], 1);
    hold.store(false, Ordering::SeqCst);
    a.cmd(["sync"]).ok();
    assert_eq!(a.json(&["status"])["sync"]["pending"], 0);
    // Applied once: this device has versions 1 and 2, the server's state
    // matches its manifest and this device, and another device gets it.
    let history = a.json(&["history", "GitHub"]);
    let versions = history["versions"].as_array().expect("versions").len();
    assert_eq!(versions, 2, "{history}");
    a.cmd(["sync", "--verify"]).ok();
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
    .ok();
    b.cmd(["sync"]).ok();
    assert_eq!(b.run(&["get", "GitHub"]).trim_end(), "second-pw");
    b.cmd(["sync", "--verify"]).ok();
}
