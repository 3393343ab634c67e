//! A hostile server (a fake one on a random port): its strings never reach
//! the terminal as control bytes, its answers cannot exhaust the client's
//! memory, its key derivation parameters cannot stall the client, and plain
//! `http://` goes nowhere but to this machine unless the user says so
//! (docs/security.md, "What a hostile server, file or network can and
//! cannot do").

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::{Duration, Instant};

use serde_json::json;

use crate::util::TestEnv;

/// Escape bytes a hostile server puts in its strings: an OSC title change
/// ended by BEL, a CSI (clear screen), a C1 CSI and a bidi override.
const EVIL: &str = "evil\u{1b}]0;pwned\u{7}\u{1b}[2J\u{9b}31m\u{202e}gnp.exe";

/// What the fake server answers to one request.
enum Answer {
    Json(u16, serde_json::Value),
    /// A 200 that streams this many bytes of JSON-looking junk, chunked.
    Endless(u64),
}

/// A fake server: `route(method, path)` says what to answer.
fn fake_server(route: fn(&str, &str) -> Answer) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            std::thread::spawn(move || serve_one(stream, route));
        }
    });
    url
}

fn serve_one(stream: TcpStream, route: fn(&str, &str) -> Answer) {
    let mut reader = BufReader::new(stream.try_clone().expect("clone"));
    let mut out = stream;
    loop {
        let mut request_line = String::new();
        if reader.read_line(&mut request_line).unwrap_or(0) == 0 {
            return;
        }
        let mut length = 0usize;
        loop {
            let mut h = String::new();
            if reader.read_line(&mut h).unwrap_or(0) == 0 {
                return;
            }
            let h = h.trim_end();
            if h.is_empty() {
                break;
            }
            if let Some((k, v)) = h.split_once(':')
                && k.eq_ignore_ascii_case("content-length")
            {
                length = v.trim().parse().unwrap_or(0);
            }
        }
        let mut body = vec![0; length];
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        let mut parts = request_line.split_whitespace();
        let method = parts.next().unwrap_or("").to_owned();
        let path = parts.next().unwrap_or("").to_owned();
        match route(&method, &path) {
            Answer::Json(status, v) => {
                let body = v.to_string();
                let head = format!(
                    "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
                    body.len()
                );
                if out.write_all(head.as_bytes()).is_err()
                    || out.write_all(body.as_bytes()).is_err()
                {
                    return;
                }
            }
            Answer::Endless(total) => {
                let _ = out.write_all(
                    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n",
                );
                let chunk = vec![b' '; 64 * 1024];
                let mut sent = 0u64;
                while sent < total {
                    let ok = out
                        .write_all(format!("{:x}\r\n", chunk.len()).as_bytes())
                        .and_then(|()| out.write_all(&chunk))
                        .and_then(|()| out.write_all(b"\r\n"));
                    if ok.is_err() {
                        return;
                    }
                    sent += chunk.len() as u64;
                }
                let _ = out.write_all(b"0\r\n\r\n");
                return;
            }
        }
    }
}

fn problem(status: u16, detail: &str) -> Answer {
    Answer::Json(
        status,
        json!({ "type": "about:blank", "title": EVIL, "status": status, "code": EVIL, "detail": detail }),
    )
}

fn tokens() -> Answer {
    Answer::Json(
        200,
        json!({
            "account_id": uuid::Uuid::nil(), "device_id": uuid::Uuid::nil(),
            "access_token": "a", "access_expires_in": 3600,
            "refresh_token": "r", "refresh_expires_in": 3600,
        }),
    )
}

/// The account routes a registration needs, then hostile lists.
fn evil_lists(method: &str, path: &str) -> Answer {
    match (method, path.split('?').next().unwrap_or(path)) {
        ("POST", "/v1/accounts/register") => tokens(),
        ("GET", "/v1/vaults") => Answer::Json(200, json!([])),
        ("POST", "/v1/vaults") => problem(422, EVIL),
        ("GET", "/v1/devices") => Answer::Json(
            200,
            json!([{ "id": uuid::Uuid::nil(), "name": EVIL, "created_at": EVIL, "last_seen_at": EVIL, "current": true, "platform": EVIL, "approved_by": uuid::Uuid::nil() }]),
        ),
        ("GET", "/v1/approvals") => Answer::Json(
            200,
            json!([{ "id": uuid::Uuid::nil(), "state": EVIL, "device_name": EVIL, "platform": EVIL,
                     "created_at": EVIL, "expires_in": 60, "pub_n": "", "commit": "" }]),
        ),
        ("GET", "/v1/audit") => Answer::Json(
            200,
            json!([{ "id": 1, "at": EVIL, "kind": EVIL, "device_id": null, "address": EVIL, "detail": EVIL }]),
        ),
        _ => problem(404, EVIL),
    }
}

/// No ESC, BEL, other C0 controls but line breaks, C1 controls or bidi
/// controls in what the binary printed.
fn assert_clean(what: &str, out: &str) {
    let bad: Vec<char> = out
        .chars()
        .filter(|&c| (c.is_control() && c != '\n' && c != '\t') || openk::text::is_bidi_control(c))
        .collect();
    assert!(bad.is_empty(), "{what} carries {bad:?}:\n{out}");
}

// A server whose device names, approval requests, audit entries and problem
// details carry escape sequences: `register`, `device ls`, `device requests`,
// `device deny`, `audit`, `device revoke` print
// them as data (no ESC, BEL, C1 or bidi control on stdout or stderr).
#[test]
fn escape_bytes_from_a_server_never_reach_the_terminal() {
    let url = fake_server(evil_lists);
    let env = TestEnv::init();
    // The vault upload is refused with a hostile problem detail.
    let run = env
        .cmd(["register", "--server", &url, "--email", "e@example.org"])
        .fails();
    assert_clean("register stderr", &run.stderr);
    assert_clean("register stdout", &run.stdout);
    run.stderr_has("evil");
    for args in [
        &["device", "ls"][..],
        &["audit"],
        &["status"],
        &["device", "requests"],
        &["device", "deny"],
    ] {
        let run = env.cmd(args).output();
        assert_clean(&format!("{args:?} stdout"), &run.stdout);
        assert_clean(&format!("{args:?} stderr"), &run.stderr);
    }
    let run = env.cmd(["device", "ls"]).ok();
    run.stdout_has("evil").stdout_has("(this device)");
    env.cmd(["audit"]).ok().stdout_has("evil");
    env.cmd(["device", "requests"]).ok().stdout_has("evil");
    let run = env.cmd(["device", "revoke", "current", "--yes"]).output();
    assert_clean("revoke stdout", &run.stdout);
    assert_clean("revoke stderr", &run.stderr);
}

// The device name saved and sent is the one the user typed, checked here:
// a name with control characters is refused before anything is sent.
#[test]
fn a_device_name_with_controls_is_refused_locally() {
    let url = fake_server(evil_lists);
    let env = TestEnv::init();
    let run = env
        .cmd([
            "register",
            "--server",
            &url,
            "--email",
            "e@example.org",
            "--device-name",
            EVIL,
        ])
        .code(2);
    run.stderr_has("device name");
    assert_clean("stderr", &run.stderr);
    let run = env
        .cmd([
            "register",
            "--server",
            &url,
            "--email",
            "e@example.org",
            "--device-name",
            &"x".repeat(101),
        ])
        .code(2);
    run.stderr_has("1 to 100 characters");
}

fn endless_devices(method: &str, path: &str) -> Answer {
    match (method, path) {
        ("GET", "/v1/devices") => Answer::Endless(1 << 30),
        _ => evil_lists(method, path),
    }
}

/// The peak resident memory (VmHWM, KiB) of a process, while it runs.
fn peak_rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

// A server that streams 1 GiB in answer to a small request: the client
// stops at its limit with a clear error, quickly, and its memory stays small.
#[test]
fn an_endless_answer_is_cut_off_with_bounded_memory() {
    let url = fake_server(endless_devices);
    let env = TestEnv::init();
    env.cmd(["register", "--server", &url, "--email", "e@example.org"])
        .fails();
    let started = Instant::now();
    let mut child = env
        .cmd(["device", "ls"])
        .into_command()
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn");
    let pid = child.id();
    let mut peak = 0;
    while child.try_wait().expect("wait").is_none() {
        peak = peak.max(peak_rss_kib(pid).unwrap_or(0));
        assert!(started.elapsed() < Duration::from_secs(30), "still reading");
        std::thread::sleep(Duration::from_millis(5));
    }
    let out = child.wait_with_output().expect("output");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("larger than the 1024 KiB"), "{stderr}");
    assert!(peak < 150 * 1024, "peak RSS {peak} KiB");
}

fn heavy_kdf(method: &str, path: &str) -> Answer {
    match (method, path) {
        ("POST", "/v1/accounts/prelogin") => Answer::Json(
            200,
            json!({
                "account_id": uuid::Uuid::now_v7(),
                "kdf": { "memory_kib": 4 * 1024 * 1024, "iterations": 100, "parallelism": 4 },
                "salt": "AAAAAAAAAAAAAAAAAAAAAA==",
            }),
        ),
        _ => problem(404, "no"),
    }
}

// A server that offers 4 GiB × 100 iterations at login: refused before any
// derivation, in well under a second, with the documented exit code 1.
#[test]
fn server_kdf_above_the_lower_ceiling_is_refused_at_once() {
    let url = fake_server(heavy_kdf);
    let env = TestEnv::init();
    let dir = env.root().join("second");
    let mut took = Duration::MAX;
    for _ in 0..3 {
        let started = Instant::now();
        let run = env
            .cmd([
                "--password-stdin",
                "login",
                "--server",
                &url,
                "--email",
                "e@example.org",
            ])
            .arg("--home")
            .arg(&dir)
            .arg("--secret-key")
            .arg(env.secret_key())
            .stdin(format!("{}\n", env.password()))
            .code(1);
        took = took.min(started.elapsed());
        run.stderr_has("above what a server may ask for")
            .stderr_has("4096 MiB");
    }
    assert!(took < Duration::from_secs(1), "took {took:?}");
}

// Plain http:// to a host that is not loopback is refused before anything
// is sent, naming the risk; --insecure-http lets it through (here to a
// name that does not resolve: unreachable, exit 7); loopback stays allowed.
#[test]
fn plain_http_to_another_host_is_refused_unless_allowed() {
    let env = TestEnv::init();
    let run = env
        .cmd([
            "register",
            "--server",
            "http://openk.invalid",
            "--email",
            "e@example.org",
        ])
        .code(2);
    run.stderr_has("refusing plain http://")
        .stderr_has("--insecure-http")
        .stderr_has("unencrypted");
    env.cmd([
        "--insecure-http",
        "register",
        "--server",
        "http://openk.invalid",
        "--email",
        "e@example.org",
    ])
    .code(7);
    let config = env.root().join("config.toml");
    std::fs::write(&config, "insecure_http = true\n").expect("config");
    env.cmd([
        "register",
        "--server",
        "http://openk.invalid",
        "--email",
        "e@example.org",
    ])
    .env("OPENK_CONFIG", &config)
    .code(7);
    // https:// to the same name is not refused by this rule.
    env.cmd([
        "register",
        "--server",
        "https://openk.invalid",
        "--email",
        "e@example.org",
    ])
    .code(7);
}
