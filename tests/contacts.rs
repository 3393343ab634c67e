//! Contacts end to end: two accounts on one `openk serve`, each reading the
//! other's fingerprint and comparing it with what that person's `openk
//! status` shows.

use crate::sync::{Serve, registered};

#[test]
fn contacts_are_pinned_then_verified_by_the_fingerprint_their_owner_shows() {
    let tmp = tempfile::tempdir().expect("tmp");
    let server = Serve::start(tmp.path());
    let alice = registered(&server, "alice@example.org");
    let bob = registered(&server, "bob@example.org");
    let bob_status = bob.json(&["status"]);
    let fp = bob_status["fingerprint"].as_str().expect("fingerprint");
    assert_eq!(fp.len(), 39, "{fp}");
    assert!(bob.run(&["status"]).contains(fp), "status shows it");

    let first = alice.json(&["contact", "show", "bob@example.org"]);
    assert_eq!(first["fingerprint"], fp);
    assert_eq!(first["trust"], "new (pinned now)");
    let text = alice.run(&["contact", "show", "bob@example.org"]);
    assert!(
        text.contains(fp) && text.contains("not yet verified"),
        "{text}"
    );

    // A fingerprint that is not Bob's: refused, nothing changes.
    let wrong = alice
        .cmd([
            "contact",
            "verify",
            "bob@example.org",
            "--fingerprint",
            "1111 1111 1111 1111 1111 1111 1111 1111",
        ])
        .code(1);
    assert!(
        wrong.stderr.contains("is not the one of its keys"),
        "{}",
        wrong.stderr
    );
    alice
        .cmd(["contact", "verify", "bob@example.org", "--fingerprint", fp])
        .ok();
    let listed = alice.json(&["contact", "ls"]);
    assert_eq!(listed[0]["email"], "bob@example.org");
    assert_eq!(listed[0]["trust"], "verified");

    let unknown = alice.cmd(["contact", "show", "nobody@example.org"]).code(4);
    assert!(
        unknown.stderr.contains("no account on the server"),
        "{}",
        unknown.stderr
    );
}
