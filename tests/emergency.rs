//! Emergency access end to end: two real accounts on a real `openk serve`
//! (whose shortest wait is lowered to 1 s with `--emergency-min-wait`).
//! The owner grants with the contact's fingerprint; the contact asks; the
//! owner sees it and denies it, and nothing is released even after the
//! wait; the contact asks again, the wait passes, and the contact lists and
//! reads the owner's items.

use std::time::Duration;

use crate::sync::{Serve, registered};
use crate::util::free_port;

fn server(dir: &std::path::Path) -> Serve {
    let db = format!("sqlite://{}", dir.join("server.db").display());
    Serve::with(
        free_port(),
        db,
        vec!["--emergency-min-wait".into(), "1".into()],
    )
}

fn wait_out() {
    std::thread::sleep(Duration::from_millis(2500));
}

#[test]
fn a_contact_gets_the_owners_items_only_after_an_undenied_wait() {
    let tmp = tempfile::tempdir().expect("tmp");
    let server = server(tmp.path());
    let ana = registered(&server, "ana@example.org");
    let ben = registered(&server, "ben@example.org");
    ana.add(&[
        "login",
        "--name",
        "Bank",
        "--username",
        "ana",
        "--password",
        "bank-pw-1",
    ]);
    ana.run(&["sync"]);
    let fp = ben.json(&["status"])["fingerprint"]
        .as_str()
        .expect("fingerprint")
        .to_owned();

    // Without a terminal and without --fingerprint: nothing granted.
    ana.cmd(["emergency", "grant", "ben@example.org", "--wait", "2s"])
        .code(2)
        .stderr_has("nothing was granted");
    ana.cmd([
        "emergency",
        "grant",
        "ben@example.org",
        "--wait",
        "2s",
        "--fingerprint",
        "0000 0000",
    ])
    .code(1);
    ana.cmd([
        "emergency",
        "grant",
        "ben@example.org",
        "--wait",
        "2s",
        "--role",
        "admin",
        "--fingerprint",
        &fp,
    ])
    .code(2);
    ana.cmd(["emergency", "grant", "ben@example.org", "--wait", "91d"])
        .code(2)
        .stderr_has("is not a wait");
    ana.cmd([
        "emergency",
        "grant",
        "ben@example.org",
        "--wait",
        "2s",
        "--fingerprint",
        &fp,
    ])
    .ok()
    .stdout_has("Granted ben@example.org");
    let held = ben.json(&["emergency", "ls"]);
    assert_eq!(held["held"][0]["owner_email"], "ana@example.org", "{held}");
    assert_eq!(held["held"][0]["state"], "granted", "{held}");
    // Nothing to open before asking.
    ben.cmd(["emergency", "open", "ana@example.org"])
        .code(3)
        .stderr_has("no emergency access request is pending");

    // Asked: the owner is told, and denies within the wait.
    ben.cmd(["emergency", "request", "ana@example.org"])
        .ok()
        .stdout_has("Asked ana@example.org");
    ben.cmd(["emergency", "open", "ana@example.org"])
        .code(3)
        .stderr_has("not open yet");
    ana.cmd(["status"])
        .ok()
        .stdout_has("ben@example.org asked for emergency access");
    let status = ana.json(&["status"]);
    assert_eq!(
        status["server"]["emergency_requests"][0]["contact_email"], "ben@example.org",
        "{status}"
    );
    ana.cmd(["emergency", "ls"])
        .ok()
        .stdout_has("requested, opens in");
    ana.cmd(["emergency", "deny", "ben@example.org"])
        .ok()
        .stdout_has("Denied");
    wait_out();
    ben.cmd(["emergency", "open", "ana@example.org"])
        .code(3)
        .stderr_has("no emergency access request is pending");
    ben.cmd(["emergency", "get", "ana@example.org", "Bank"])
        .code(3)
        .stdout_lacks("bank-pw-1");
    ana.cmd(["status"])
        .ok()
        .stdout_lacks("asked for emergency access");

    // Asked again; the wait passes: ben reads ana's items.
    ben.run(&["emergency", "request", "ana@example.org"]);
    wait_out();
    let open = ben.json(&["emergency", "open", "ana@example.org"]);
    assert_eq!(open["items"][0]["name"], "Bank", "{open}");
    assert_eq!(open["items"][0]["kind"], "login", "{open}");
    assert_eq!(open["role"], "view", "{open}");
    ben.cmd(["emergency", "open", "ana@example.org"])
        .ok()
        .stdout_has("Bank");
    assert_eq!(
        ben.run(&["emergency", "get", "ana@example.org", "Bank"]),
        "bank-pw-1\n"
    );
    assert_eq!(
        ben.run(&["emergency", "get", "ana@example.org", "bank", "username"]),
        "ana\n"
    );
    ana.cmd(["emergency", "ls"]).ok().stdout_has("released");

    // Revoked: gone for good.
    ana.run(&["emergency", "revoke", "ben@example.org", "--yes"]);
    ben.cmd(["emergency", "get", "ana@example.org", "Bank"])
        .code(4)
        .stderr_has("no emergency access grant");
    let audit = ana.json(&["audit"]);
    let kinds = |part: &str| -> Vec<String> {
        audit[part]
            .as_array()
            .expect("events")
            .iter()
            .filter_map(|e| e["kind"].as_str().map(str::to_owned))
            .collect()
    };
    // The server's word: every step, the release included.
    let server = kinds("server_events");
    for kind in [
        "emergency_granted",
        "emergency_requested",
        "emergency_denied",
        "emergency_released",
        "emergency_revoked",
    ] {
        assert!(server.iter().any(|k| k == kind), "{kind}: {server:?}");
    }
    // The owner's own steps are signed in the account's history too.
    assert_eq!(audit["verified"], true, "{audit}");
    let signed = kinds("entries");
    for kind in ["emergency_granted", "emergency_denied", "emergency_revoked"] {
        assert!(signed.iter().any(|k| k == kind), "{kind}: {signed:?}");
    }
}

/// A takeover grant: after the wait the contact sets a new password and
/// Secret Key for the owner's account into a new directory; the owner's old
/// credentials stop working and the grant is used up.
#[test]
fn a_takeover_grant_hands_the_account_over_after_the_wait() {
    let tmp = tempfile::tempdir().expect("tmp");
    let server = server(tmp.path());
    let ana = registered(&server, "ana@example.org");
    let ben = registered(&server, "ben@example.org");
    ana.add(&["note", "--name", "Will", "--notes", "in the drawer"]);
    ana.run(&["sync"]);
    let fp = ben.json(&["status"])["fingerprint"]
        .as_str()
        .expect("fingerprint")
        .to_owned();
    ana.run(&[
        "emergency",
        "grant",
        "ben@example.org",
        "--wait",
        "1s",
        "--role",
        "takeover",
        "--fingerprint",
        &fp,
    ]);
    ben.run(&["emergency", "request", "ana@example.org"]);
    wait_out();
    let into = tmp.path().join("ana-taken");
    let out = ben
        .cmd([
            "--json",
            "emergency",
            "takeover",
            "ana@example.org",
            "--into",
        ])
        .arg(&into)
        .args(["--new-password-stdin", "--device-name", "heir"])
        .stdin("a long new password for ana's account\n")
        .json();
    assert!(
        out["secret_key"]
            .as_str()
            .is_some_and(|k| k.starts_with("OK1-")),
        "{out}"
    );
    let notes = ben
        .cmd(["--home"])
        .arg(&into)
        .args(["get", "Will", "notes"])
        .env("OPENK_PASSWORD", "a long new password for ana's account")
        .ok()
        .stdout;
    assert_eq!(notes, "in the drawer\n");
    // The owner's old device is signed out; the grant is used up.
    ana.cmd(["sync"]).code(3);
    ben.cmd(["emergency", "open", "ana@example.org"])
        .code(4)
        .stderr_has("no emergency access grant");
}
