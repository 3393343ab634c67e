//! A server that accepts connections and then never answers, or refuses
//! them: writes commit locally and say "not synced" quickly, `status`
//! answers from local state, `sync` gives up with exit 7 naming the server
//! (docs/architecture.md, "Network deadlines").

use std::net::{TcpListener, TcpStream};
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
    let (run, took) = timed(env.cmd(["--json", "status"]));
    assert_eq!(run.code, Some(0), "{run}");
    assert!(took < Duration::from_secs(1), "status took {took:?}\n{run}");
    let status = run.json();
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
    let (run, took) = timed(env.cmd(["status"]));
    assert_eq!(run.code, Some(0), "{run}");
    assert!(took < Duration::from_secs(1), "status took {took:?}\n{run}");
    run.stdout_has(&url)
        .stdout_has("not answering (could not confirm the session)")
        .stdout_has("1 pending change(s)");
    let (run, took) = timed(env.cmd(["--json", "status"]));
    assert_eq!(run.code, Some(0), "{run}");
    assert!(took < Duration::from_secs(1), "status took {took:?}\n{run}");
    let status = run.json();
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
