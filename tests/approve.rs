//! Device approval end to end: two real `openk` processes (two homes) and a
//! real server (`openk serve`) on a random port. The new device runs `openk
//! login --approve` and waits with a code; the signed-in one runs `openk
//! device approve --code -` and is given the code the new device printed;
//! the new device then signs in and reads the vault. A wrong code is
//! refused on both sides and nothing reaches the new device.

use std::io::{BufRead as _, BufReader, Write as _};
use std::process::{Child, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::sync::{Serve, registered};
use crate::util::TestEnv;

const EMAIL: &str = "approve@example.org";
const WAIT: Duration = Duration::from_secs(60);

/// `openk login --approve` on a new home, running; its stderr lines arrive
/// on the receiver.
fn start_new_device(n: &TestEnv, server: &Serve, name: &str) -> (Child, mpsc::Receiver<String>) {
    let mut child = n
        .cmd([
            "login",
            "--server",
            &server.url(),
            "--email",
            EMAIL,
            "--approve",
            "--timeout",
            "60s",
            "--device-name",
            name,
        ])
        .into_command()
        .spawn()
        .expect("spawn the new device");
    let stderr = child.stderr.take().expect("stderr");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    (child, rx)
}

/// The code the new device prints (`code: 123 456`).
fn code_from(lines: &mpsc::Receiver<String>) -> String {
    let deadline = Instant::now() + WAIT;
    let mut seen = Vec::new();
    while Instant::now() < deadline {
        match lines.recv_timeout(Duration::from_millis(200)) {
            Ok(line) => {
                if let Some(code) = line.trim().strip_prefix("code: ") {
                    return code.to_owned();
                }
                seen.push(line);
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
        }
    }
    panic!("the new device printed no code:\n{}", seen.join("\n"));
}

/// `openk device approve --code -` on `a`, running, stdin piped.
fn start_approver(a: &TestEnv) -> Child {
    let mut cmd = a
        .cmd(["device", "approve", "--code", "-", "--timeout", "60s"])
        .into_command();
    cmd.stdin(Stdio::piped());
    cmd.spawn().expect("spawn the approver")
}

/// Waits for `child` to exit (at most [`WAIT`]); its exit code and stdout.
fn finish(mut child: Child, what: &str) -> (i32, String) {
    let deadline = Instant::now() + WAIT;
    loop {
        if let Some(status) = child.try_wait().expect("wait") {
            let mut out = String::new();
            if let Some(mut stdout) = child.stdout.take() {
                use std::io::Read as _;
                stdout.read_to_string(&mut out).expect("stdout");
            }
            return (status.code().unwrap_or(-1), out);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("{what} did not finish in {WAIT:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Waits until `a` sees `count` waiting requests.
fn wait_for_requests(a: &TestEnv, count: usize) {
    let deadline = Instant::now() + WAIT;
    loop {
        let list = a.json(&["device", "requests"]);
        if list.as_array().map(Vec::len) == Some(count) {
            return;
        }
        assert!(Instant::now() < deadline, "no request arrived: {list}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn a_new_device_approved_with_the_code_it_shows_reads_the_vault() {
    let tmp = tempfile::tempdir().expect("tmp");
    let server = Serve::start(tmp.path());
    let a = registered(&server, EMAIL);
    a.add(&[
        "login",
        "--name",
        "GitHub",
        "--username",
        "me",
        "--password",
        "pw-approved",
    ]);
    a.run(&["sync"]);

    // Without a terminal and without --code, approving is a usage error
    // (before anything is taken or sent).
    a.cmd(["device", "approve"]).code(2);

    let n = TestEnv::new();
    let (new_device, lines) = start_new_device(&n, &server, "phone");
    wait_for_requests(&a, 1);
    let listed = a.json(&["device", "requests"]);
    assert_eq!(listed[0]["device_name"], "phone", "{listed}");
    let listed_text = a.run(&["device", "requests"]);
    assert!(listed_text.contains("phone"), "{listed_text}");

    let mut approver = start_approver(&a);
    let code = code_from(&lines);
    assert_eq!(code.len(), 7, "{code}");
    writeln!(approver.stdin.take().expect("stdin"), "{code}").expect("type the code");
    let (status, out) = finish(approver, "the approver");
    assert_eq!(status, 0, "approve: {out}");
    assert!(out.contains("Approved \"phone\""), "{out}");
    let (status, out) = finish(new_device, "the new device");
    assert_eq!(status, 0, "login --approve: {out}");
    assert!(out.contains("Approved. Logged in"), "{out}");

    // The new device reads the vault with its own master password and the
    // Secret Key it was sent.
    n.run(&["sync"]);
    assert_eq!(n.run(&["get", "GitHub"]).trim_end(), "pw-approved");

    // The device list says who approved whom, on which platform.
    let devices = a.json(&["device", "ls"]);
    let list = devices.as_array().expect("list");
    let desk = list.iter().find(|d| d["name"] == "desk").expect("desk");
    let phone = list.iter().find(|d| d["name"] == "phone").expect("phone");
    assert_eq!(phone["approved_by"], desk["id"], "{devices}");
    assert!(desk["approved_by"].is_null(), "{devices}");
    assert!(
        phone["platform"]
            .as_str()
            .is_some_and(|p| p.contains(std::env::consts::OS)),
        "{devices}"
    );
    let table = a.run(&["device", "ls"]);
    assert!(table.contains("APPROVED BY"), "{table}");
    let phone_row = table
        .lines()
        .find(|l| l.contains("phone"))
        .expect("phone row");
    assert!(phone_row.trim_end().ends_with("desk"), "{table}");
}

#[test]
fn a_wrong_code_is_refused_and_the_new_device_gets_nothing() {
    let tmp = tempfile::tempdir().expect("tmp");
    let server = Serve::start(tmp.path());
    let a = registered(&server, EMAIL);
    let n = TestEnv::new();
    let (new_device, lines) = start_new_device(&n, &server, "stranger");
    wait_for_requests(&a, 1);
    let mut approver = start_approver(&a);
    let code = code_from(&lines);
    let digits: u32 = code.replace(' ', "").parse().expect("digits");
    let wrong = format!("{:06}", (digits + 1) % 1_000_000);
    writeln!(approver.stdin.take().expect("stdin"), "{wrong}").expect("type");
    let (status, _) = finish(approver, "the approver");
    assert_eq!(status, 9, "a wrong code ends the approval (exit 9)");
    let (status, _) = finish(new_device, "the new device");
    assert_eq!(status, 9, "the new device's wait ends: denied");
    assert!(
        !n.vault().join("vault.db").exists(),
        "no vault was made on the new device"
    );
    let empty = a.json(&["device", "requests"]);
    assert_eq!(empty.as_array().map(Vec::len), Some(0), "{empty}");

    // A request can also be denied outright.
    let n2 = TestEnv::new();
    let (new_device, _lines) = start_new_device(&n2, &server, "other");
    wait_for_requests(&a, 1);
    let out = a.run(&["device", "deny"]);
    assert!(out.contains("Denied"), "{out}");
    let (status, _) = finish(new_device, "the denied device");
    assert_eq!(status, 9);
}
