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

/// Invites `email` to `vault` with `role`, with the invitee's own
/// fingerprint, and has it accept and sync.
fn join(
    owner: &crate::util::TestEnv,
    (member, email): (&crate::util::TestEnv, &str),
    vault: &str,
    role: &str,
) {
    let fp = member.json(&["status"])["fingerprint"]
        .as_str()
        .expect("fingerprint")
        .to_owned();
    owner.run(&[
        "vault",
        "invite",
        vault,
        email,
        "--role",
        role,
        "--fingerprint",
        &fp,
    ]);
    let invites = member.json(&["vault", "invitations"]);
    let id = invites[0]["vault_id"].as_str().expect("id").to_owned();
    member.run(&["vault", "accept", &id]);
    member.run(&["sync"]);
}

/// A manager removes a member (the key is rotated), another member leaves
/// (the owner's next sync rotates), and the activity log tells it all.
#[test]
fn members_are_removed_or_leave_and_the_activity_log_says_so() {
    let tmp = tempfile::tempdir().expect("tmp");
    let server = Serve::start(tmp.path());
    let ana = registered(&server, "ana@example.org");
    let ben = registered(&server, "ben@example.org");
    let cy = registered(&server, "cy@example.org");
    ana.run(&["vault", "create", "Team"]);
    ana.add(&[
        "note", "--name", "Runbook", "--vault", "Team", "--notes", "v1",
    ]);
    join(&ana, (&ben, "ben@example.org"), "Team", "editor");
    join(&ana, (&cy, "cy@example.org"), "Team", "viewer");
    assert_eq!(cy.ls_names(&["--vault", "Team"]), ["Runbook"]);

    // Without a terminal, removal wants --yes; nothing happens before.
    let unconfirmed = ana
        .cmd(["vault", "remove", "Team", "cy@example.org"])
        .code(2);
    assert!(
        unconfirmed.stderr.contains("--yes"),
        "{}",
        unconfirmed.stderr
    );
    let by_editor = ben
        .cmd(["vault", "remove", "Team", "cy@example.org", "--yes"])
        .code(2);
    assert!(by_editor.stderr.contains("manager"), "{}", by_editor.stderr);
    let removed = ana.run(&["vault", "remove", "Team", "cy@example.org", "--yes"]);
    assert!(removed.contains("rotated"), "{removed}");
    let members = ana.json(&["vault", "members", "Team"]);
    assert_eq!(members.as_array().map(Vec::len), Some(2), "{members}");

    // Ben takes the new key and edits; Cy's device lets the vault go.
    let synced = ben.run(&["sync"]);
    assert!(synced.contains("Took the rotated key"), "{synced}");
    ben.run(&["edit", "Runbook", "--notes", "v2"]);
    let gone = cy.run(&["sync"]);
    assert!(gone.contains("no longer on this device"), "{gone}");
    assert!(cy.ls_names(&[]).is_empty());
    let cy_vaults = cy.json(&["vault", "ls"]);
    assert_eq!(cy_vaults.as_array().map(Vec::len), Some(1), "{cy_vaults}");

    // Ben leaves; the owner's next sync rotates the key.
    let left = ben.run(&["vault", "leave", "Team", "--yes"]);
    assert!(left.contains("no longer on this device"), "{left}");
    let synced = ana.run(&["sync"]);
    assert!(synced.contains("Rotated the key"), "{synced}");
    let owner_leaves = ana.cmd(["vault", "leave", "Team", "--yes"]).code(2);
    assert!(
        owner_leaves.stderr.contains("yours"),
        "{}",
        owner_leaves.stderr
    );

    let activity = ana.json(&["vault", "activity", "Team"]);
    let lines: Vec<String> = activity
        .as_array()
        .expect("lines")
        .iter()
        .map(|a| {
            format!(
                "{} {}",
                a["who"].as_str().unwrap_or(""),
                a["what"].as_str().unwrap_or("")
            )
        })
        .collect();
    for want in [
        "ana@example.org removed cy@example.org (the key was rotated)",
        "ben@example.org left the vault",
        "ana@example.org rotated the vault key",
        "ben@example.org changed \"Runbook\" (changed notes)",
        "ana@example.org invited ben@example.org as editor",
    ] {
        assert!(
            lines.iter().any(|l| l == want),
            "{want:?} not in {lines:#?}"
        );
    }
    let table = ana.run(&["vault", "activity", "Team", "--limit", "3"]);
    assert!(table.starts_with("WHEN"), "{table}");
    assert_eq!(table.lines().count(), 4, "{table}");
}
