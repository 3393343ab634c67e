//! The signed security history end to end: the real `openk` binary on two
//! devices against `openk serve` (SQLite file). `openk audit` shows the
//! verified chain and, apart, the server's own events; offline it says it
//! could not check; and when the server's database rows are tampered with
//! (an entry replaced, the tail dropped) it names the first bad entry and
//! exits 1.

use std::path::Path;
use std::process::Command;

use crate::sync::{Serve, registered};
use crate::util::TestEnv;

const EMAIL: &str = "history@example.org";

/// Runs SQL on the server's SQLite file (as an operator, or an attacker
/// with the database, could).
fn sql(db: &Path, statement: &str) {
    let out = Command::new("sqlite3")
        .arg("-cmd")
        .arg(".timeout 10000")
        .arg(db)
        .arg(statement)
        .output()
        .expect("run sqlite3");
    assert!(
        out.status.success(),
        "sqlite3 {statement}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn kinds(audit: &serde_json::Value) -> Vec<String> {
    audit["entries"]
        .as_array()
        .expect("entries")
        .iter()
        .map(|e| e["kind"].as_str().unwrap_or_default().to_owned())
        .collect()
}

#[test]
fn audit_verifies_the_signed_history_and_reports_a_server_that_tampers_with_it() {
    let tmp = tempfile::tempdir().expect("tmp");
    let db = tmp.path().join("server.db");
    let mut server = Serve::start(tmp.path());
    let a = registered(&server, EMAIL);
    let b = TestEnv::new();
    b.cmd([
        "login",
        "--server",
        &server.url(),
        "--email",
        EMAIL,
        "--secret-key",
        a.secret_key(),
        "--device-name",
        "laptop",
    ])
    .ok();
    // A revokes B: a third signed event.
    let devices = a.json(&["device", "ls"]);
    let laptop = devices
        .as_array()
        .expect("devices")
        .iter()
        .find(|d| d["name"] == "laptop")
        .and_then(|d| d["id"].as_str())
        .expect("laptop listed")
        .to_owned();
    a.cmd(["device", "revoke", &laptop, "--yes"]).ok();

    let audit = a.json(&["audit"]);
    assert_eq!(audit["verified"], true, "{audit}");
    assert_eq!(
        kinds(&audit),
        ["device_added", "device_added", "device_revoked"],
        "{audit}"
    );
    assert_eq!(audit["entries"][0]["device"], "desk");
    assert_eq!(audit["entries"][1]["detail"]["device"], "laptop");
    assert_eq!(audit["entries"][2]["detail"]["device"], "laptop");
    let server_kinds = audit["server_events"].to_string();
    assert!(server_kinds.contains("\"register\""), "{audit}");
    let text = a.run(&["audit"]);
    assert!(text.contains("verified, 3 entries"), "{text}");
    assert!(
        text.contains("Server's word (not signed by any device)"),
        "{text}"
    );
    assert!(text.contains("device_revoked"), "{text}");

    // Offline: what this device knows, said to be unchecked; not an error.
    let port = server.port;
    server.down();
    let run = a.cmd(["audit"]).ok();
    run.stdout_has("NOT CHECKED").stdout_has("device_revoked");
    let offline = a.cmd(["audit", "--json"]).ok().json();
    assert_eq!(offline["verified"], false);
    assert_eq!(offline["checked_server"], false);
    assert_eq!(kinds(&offline).len(), 3, "{offline}");
    drop(server);
    let server = Serve::with(port, format!("sqlite://{}", db.display()), Vec::new());

    // The server replaces entry 3 with a replay of entry 1.
    sql(
        &db,
        "UPDATE security_history SET entry = (SELECT entry FROM security_history AS h \
         WHERE h.seq = 1 AND h.account_id = security_history.account_id) WHERE seq = 3",
    );
    let run = a.cmd(["audit"]).code(1);
    assert!(
        run.stderr
            .contains("the security history was tampered with at entry 3"),
        "{}",
        run.stderr
    );
    run.stdout_has("TAMPERED at entry 3");
    let json = a.cmd(["audit", "--json"]).code(1).json();
    assert_eq!(json["verified"], false);
    assert_eq!(json["tampering"]["seq"], 3);

    // The server drops the tail (entries 2 and 3): the chain left looks
    // whole, but this device saw entry 3.
    sql(&db, "DELETE FROM security_history WHERE seq >= 2");
    let run = a.cmd(["audit"]).code(1);
    assert!(
        run.stderr.contains("tampered with at entry 2") && run.stderr.contains("tail was dropped"),
        "{}",
        run.stderr
    );
    drop(server);
}
