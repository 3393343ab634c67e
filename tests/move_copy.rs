//! Items across vaults, end to end through the real binary and a real
//! server: `openk mv` into a shared vault that a member then reads, the
//! source's tombstone on another device of the account, `openk cp`,
//! `--vault` to tell items of one name apart, the `vault:` search filter,
//! and the refusals (unknown vault, a viewer, a name taken, its own vault).

use serde_json::Value as Json;

use crate::sync::{Serve, registered};
use crate::util::{TestEnv, names};

/// Another device of `env`'s account (logged in with its Secret Key).
fn second_device(env: &TestEnv, server: &Serve, email: &str) -> TestEnv {
    let phone = TestEnv::new();
    phone
        .cmd([
            "login",
            "--server",
            &server.url(),
            "--email",
            email,
            "--secret-key",
            env.secret_key(),
            "--device-name",
            "phone",
        ])
        .ok();
    phone
}

/// Ana with a vault "Team" shared with Ben (`role`), and a phone.
fn team(role: &str) -> (tempfile::TempDir, Serve, TestEnv, TestEnv, TestEnv) {
    let tmp = tempfile::tempdir().expect("tmp");
    let server = Serve::start(tmp.path());
    let ana = registered(&server, "ana@example.org");
    let ben = registered(&server, "ben@example.org");
    ana.run(&["vault", "create", "Team"]);
    let fp = ben.json(&["status"])["fingerprint"]
        .as_str()
        .expect("fingerprint")
        .to_owned();
    ana.cmd([
        "vault",
        "invite",
        "Team",
        "ben@example.org",
        "--role",
        role,
        "--fingerprint",
        &fp,
    ])
    .ok();
    let id = ben.json(&["vault", "invitations"])[0]["vault_id"]
        .as_str()
        .expect("invited")
        .to_owned();
    ben.run(&["vault", "accept", &id]);
    let phone = second_device(&ana, &server, "ana@example.org");
    (tmp, server, ana, ben, phone)
}

fn history_len(env: &TestEnv, item: &[&str]) -> usize {
    let mut args = vec!["history"];
    args.extend_from_slice(item);
    env.json(&args)["versions"].as_array().map_or(0, Vec::len)
}

#[test]
fn mv_into_a_shared_vault_reaches_the_member_and_the_tombstone_the_other_device() {
    let (_tmp, _server, ana, ben, phone) = team("viewer");
    let old_id = ana.add(&[
        "login",
        "--name",
        "Deploy key",
        "--username",
        "ci",
        "--password",
        "first-pass",
    ]);
    ana.run(&["edit", "Deploy key", "--password", "second-pass"]);
    phone.run(&["sync"]);
    assert_eq!(phone.ls_names(&[]), ["Deploy key"]);
    let created = ana.json(&["show", "Deploy key"])["created_at"].clone();

    let moved = ana.json(&["mv", "Deploy key", "--vault", "Team"]);
    assert_eq!(moved["vault"], "Team", "{moved}");
    assert_eq!(moved["moved_from"]["id"], old_id.as_str(), "{moved}");
    assert_eq!(moved["moved_from"]["vault"], "Personal", "{moved}");
    assert_eq!(moved["created_at"], created, "times kept");
    let new_id = moved["id"].as_str().expect("id").to_owned();
    assert_ne!(new_id, old_id);
    // Its history came along.
    assert_eq!(history_len(&ana, &["Deploy key"]), 2);
    let v1 = ana.run(&["show", "Deploy key", "--version", "1", "--reveal"]);
    assert!(v1.contains("first-pass"), "{v1}");
    ana.cmd(["show", &old_id]).code(4);
    assert_eq!(ana.ls_names(&["--vault", "Team"]), ["Deploy key"]);
    assert!(ana.ls_names(&["--vault", "Personal"]).is_empty());

    // The member reads it after a sync: the move was pushed with the write.
    ben.run(&["sync"]);
    assert_eq!(ben.ls_names(&["--vault", "Team"]), ["Deploy key"]);
    assert_eq!(ben.run(&["get", "Deploy key"]).trim_end(), "second-pass");
    let shown = ben.run(&["show", "Deploy key"]);
    assert!(shown.contains("vault") && shown.contains("Team"), "{shown}");

    // Ana's phone takes the tombstone and the moved item.
    phone.run(&["sync"]);
    phone.cmd(["show", &old_id]).code(4);
    let on_phone = phone.json(&["show", "Deploy key"]);
    assert_eq!(on_phone["id"], new_id.as_str());
    assert_eq!(on_phone["vault"], "Team");

    // The search filter, by name (any case, quoted or not) or id prefix.
    ana.add(&["note", "--name", "Deploy notes", "--notes", "mine"]);
    let found = ana.json(&["search", "deploy", "vault:team"]);
    assert_eq!(names(&found["items"]), ["Deploy key"], "{found}");
    assert_eq!(found["items"][0]["vault"], "Team");
    let found = ana.json(&["search", "deploy", "vault:\"Personal\""]);
    assert_eq!(names(&found["items"]), ["Deploy notes"], "{found}");
    let found = ana.json(&["search", "deploy", "--vault", "Team"]);
    assert_eq!(names(&found["items"]), ["Deploy key"], "{found}");
    let text = ana.run(&["search", "vault:Team"]);
    assert!(
        text.contains("Deploy key") && !text.contains("Deploy notes"),
        "{text}"
    );
    let unknown = ana.cmd(["search", "vault:Nope"]).code(4);
    assert!(
        unknown.stderr.contains("no vault is named \"Nope\"")
            && unknown.stderr.contains("Personal, Team")
            && unknown.stderr.contains("openk vault ls"),
        "{}",
        unknown.stderr
    );
}

#[test]
fn cp_copies_and_vault_tells_same_names_apart() {
    let (_tmp, _server, ana, ben, _phone) = team("editor");
    ana.add(&[
        "login",
        "--name",
        "GitHub",
        "--username",
        "ana",
        "--password",
        "personal-pass",
    ]);
    let copied = ana.json(&["cp", "GitHub", "--vault", "Team"]);
    assert_eq!(copied["vault"], "Team", "{copied}");
    assert_eq!(copied["copied_from"]["vault"], "Personal", "{copied}");
    ana.run(&[
        "edit",
        "GitHub",
        "--vault",
        "Team",
        "--password",
        "team-pass",
    ]);
    // Two items of one name: ambiguous without --vault, with the vaults named.
    let both = ana.cmd(["get", "GitHub"]).code(5);
    assert!(
        both.stderr.contains("vault Team")
            && both.stderr.contains("vault Personal")
            && both.stderr.contains("--vault VAULT"),
        "{}",
        both.stderr
    );
    assert_eq!(
        ana.run(&["get", "GitHub", "--vault", "Team"]).trim_end(),
        "team-pass"
    );
    assert_eq!(
        ana.run(&["get", "GitHub", "--vault", "Personal"])
            .trim_end(),
        "personal-pass"
    );
    let shown = ana.json(&["show", "GitHub", "--vault", "Team"]);
    assert_eq!(shown["vault"], "Team");
    assert!(shown["vault_id"].is_string(), "{shown}");
    let listed = ana.json(&["ls"]);
    let vaults: Vec<&str> = listed["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|i| i["vault"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(vaults.len(), 2);
    assert!(vaults.contains(&"Team") && vaults.contains(&"Personal"));
    let missing = ana.cmd(["show", "Nothing", "--vault", "Team"]).code(4);
    assert!(
        missing.stderr.contains("in vault \"Team\""),
        "{}",
        missing.stderr
    );
    // A copy into its own vault is a duplicate named "NAME (copy)".
    let dup = ana.json(&["cp", "GitHub", "--vault", "Personal", "--from", "Personal"]);
    assert_eq!(dup["name"], "GitHub (copy)");
    assert_eq!(dup["vault"], "Personal");
    let dup2 = ana.json(&["cp", "GitHub", "--from", "Personal"]);
    assert_eq!(dup2["name"], "GitHub (copy 2)");
    let named = ana.json(&["cp", "GitHub", "--from", "Team", "--name", "GitHub ops"]);
    assert_eq!(
        (named["name"].as_str(), named["vault"].as_str()),
        (Some("GitHub ops"), Some("Team"))
    );
    // The editor gets the copy and its edit.
    ben.run(&["sync"]);
    assert_eq!(ben.run(&["get", "GitHub"]).trim_end(), "team-pass");
    // `rm` / `history` / `totp` / `copy` take --vault too.
    ana.run(&["rm", "GitHub", "--vault", "Team"]);
    assert_eq!(history_len(&ana, &["GitHub", "--vault", "Personal"]), 1);
    assert_eq!(ana.run(&["get", "GitHub"]).trim_end(), "personal-pass");
}

#[test]
fn refusals_say_why_and_change_nothing() {
    let (_tmp, _server, ana, ben, _phone) = team("viewer");
    ana.add(&[
        "note", "--name", "Runbook", "--vault", "Team", "--notes", "x",
    ]);
    ana.add(&["note", "--name", "Runbook", "--notes", "mine"]);
    ana.add(&["note", "--name", "Diary", "--notes", "mine"]);
    ben.run(&["sync"]);
    ben.add(&["note", "--name", "Mine", "--notes", "ben's"]);
    let before: Json = ana.json(&["ls"]);

    // An unknown vault.
    let r = ana.cmd(["mv", "Diary", "--vault", "Nope"]).code(4);
    assert!(
        r.stderr.contains("no vault is named \"Nope\""),
        "{}",
        r.stderr
    );
    ana.cmd(["cp", "Diary", "--vault", "Nope"]).code(4);
    ana.cmd(["show", "Diary", "--vault", "Nope"]).code(4);
    // Its own vault.
    let r = ana.cmd(["mv", "Diary", "--vault", "Personal"]).code(2);
    assert!(
        r.stderr.contains("already in vault \"Personal\""),
        "{}",
        r.stderr
    );
    // A name the target vault has: say how to resolve it.
    let r = ana
        .cmd(["mv", "Runbook", "--from", "Personal", "--vault", "Team"])
        .code(2);
    assert!(
        r.stderr.contains("already exists in vault \"Team\"")
            && r.stderr.contains("openk edit ITEM --name NEW")
            && r.stderr.contains("nothing was changed"),
        "{}",
        r.stderr
    );
    // An ambiguous source without --from.
    ana.cmd(["mv", "Runbook", "--vault", "Team"]).code(5);
    assert_eq!(ana.json(&["ls"]), before, "nothing changed");

    // A viewer moves nothing out and copies nothing in.
    let r = ben.cmd(["mv", "Runbook", "--vault", "Personal"]).code(2);
    assert!(r.stderr.contains("viewer"), "{}", r.stderr);
    let r = ben.cmd(["cp", "Mine", "--vault", "Team"]).code(2);
    assert!(r.stderr.contains("viewer"), "{}", r.stderr);
    let r = ben.cmd(["mv", "Mine", "--vault", "Team"]).code(2);
    assert!(r.stderr.contains("viewer"), "{}", r.stderr);
    assert_eq!(ben.ls_names(&["--vault", "Team"]), ["Runbook"]);
    assert_eq!(ben.ls_names(&["--vault", "Personal"]), ["Mine"]);
    // Reading is allowed: a viewer copies out into a vault of their own.
    let out = ben.json(&["cp", "Runbook", "--vault", "Personal"]);
    assert_eq!(out["vault"], "Personal");
    // A missing --vault on mv is a usage error.
    ana.cmd(["mv", "Diary"]).code(2);
}
