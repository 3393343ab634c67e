//! Shared vaults end to end: two accounts on one `openk serve`; one creates
//! a vault, invites the other with their fingerprint, the other accepts and
//! reads, and a viewer's write is refused.

use crate::sync::{Serve, registered};

#[test]
fn a_vault_is_shared_by_invitation_with_roles() {
    let tmp = tempfile::tempdir().expect("tmp");
    let server = Serve::start(tmp.path());
    let ana = registered(&server, "ana@example.org");
    let ben = registered(&server, "ben@example.org");
    ana.run(&["vault", "create", "Team"]);
    ana.add(&[
        "note",
        "--name",
        "Runbook",
        "--vault",
        "Team",
        "--notes",
        "restart it",
    ]);
    ana.add(&["note", "--name", "Diary", "--notes", "mine"]);
    assert_eq!(ana.ls_names(&["--vault", "Team"]), ["Runbook"]);
    let vaults = ana.json(&["vault", "ls"]);
    assert_eq!(vaults.as_array().map(Vec::len), Some(2), "{vaults}");

    let fp = ben.json(&["status"])["fingerprint"]
        .as_str()
        .expect("fingerprint")
        .to_owned();
    // Without a terminal and without --fingerprint, nothing is shared.
    let refused = ana
        .cmd([
            "vault",
            "invite",
            "Team",
            "ben@example.org",
            "--role",
            "viewer",
        ])
        .code(2);
    assert!(
        refused.stderr.contains("nothing was shared"),
        "{}",
        refused.stderr
    );
    let wrong = ana
        .cmd([
            "vault",
            "invite",
            "Team",
            "ben@example.org",
            "--role",
            "viewer",
            "--fingerprint",
            "0000 0000",
        ])
        .code(1);
    assert!(
        wrong.stderr.contains("is not the one of its keys"),
        "{}",
        wrong.stderr
    );
    ana.cmd([
        "vault",
        "invite",
        "Team",
        "ben@example.org",
        "--role",
        "viewer",
        "--fingerprint",
        &fp,
    ])
    .ok();

    let invites = ben.json(&["vault", "invitations"]);
    assert_eq!(invites[0]["name"], "Team", "{invites}");
    let id = invites[0]["vault_id"].as_str().expect("id").to_owned();
    ben.run(&["vault", "accept", &id]);
    ben.run(&["sync"]);
    assert_eq!(ben.ls_names(&["--vault", "Team"]), ["Runbook"]);
    let shown = ben.run(&["show", "Runbook"]);
    assert!(shown.contains("vault") && shown.contains("Team"), "{shown}");
    assert_eq!(ben.json(&["show", "Runbook"])["vault"], "Team");
    assert_eq!(
        ben.ls_names(&[]),
        ["Runbook"],
        "Ana's personal items stay hers"
    );
    let viewer = ben
        .cmd([
            "add", "note", "--name", "Planted", "--vault", "Team", "--notes", "x",
        ])
        .code(2);
    assert!(viewer.stderr.contains("viewer"), "{}", viewer.stderr);

    ana.run(&["vault", "role", "Team", "ben@example.org", "editor"]);
    ben.run(&["sync"]);
    ben.add(&[
        "note",
        "--name",
        "Ben's fix",
        "--vault",
        "Team",
        "--notes",
        "done",
    ]);
    ana.run(&["sync"]);
    assert_eq!(ana.ls_names(&["--vault", "Team"]), ["Ben's fix", "Runbook"]);
    let members = ana.json(&["vault", "members", "Team"]);
    let roles: Vec<(&str, &str)> = members
        .as_array()
        .expect("members")
        .iter()
        .map(|m| {
            (
                m["email"].as_str().unwrap_or(""),
                m["role"].as_str().unwrap_or(""),
            )
        })
        .collect();
    assert_eq!(
        roles,
        [
            ("ana@example.org", "manager"),
            ("ben@example.org", "editor")
        ]
    );
    // Lists name the vault once there is more than one.
    let listed = ana.run(&["ls"]);
    assert!(
        listed.contains("VAULT") && listed.contains("Team"),
        "{listed}"
    );
    // The owner renames; the member takes the name at the next sync, and
    // an editor (not a manager) cannot rename.
    ana.run(&["vault", "rename", "Team", "Ops"]);
    ben.run(&["sync"]);
    let names: Vec<String> = ben
        .json(&["vault", "ls"])
        .as_array()
        .expect("vaults")
        .iter()
        .map(|v| v["name"].as_str().unwrap_or("").to_owned())
        .collect();
    assert!(names.contains(&"Ops".to_owned()), "{names:?}");
    let refused = ben.cmd(["vault", "rename", "Ops", "Mine"]).code(1);
    assert!(refused.stderr.contains("manager"), "{}", refused.stderr);
}
