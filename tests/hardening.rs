//! The server hardening seen from the `openk` binary: `openk serve invite`
//! makes the codes an invite-only `openk serve` asks for, `openk register
//! --invite-file` presents one (once), and the client applies the server's
//! email rule before it sends the email anywhere.

use std::process::Command;

use crate::sync::Serve;
use crate::util::{TestEnv, bin, free_port};

/// `openk serve --database DB invite`: the code it printed.
fn invite(db: &str) -> String {
    let out = Command::new(bin())
        .args(["serve", "--database", db, "invite"])
        .env_remove("OPENK_SERVER_REGISTRATION")
        .output()
        .expect("run openk serve invite");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let code = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    assert!(code.starts_with("oki_"), "{code}");
    code
}

#[test]
fn an_invite_only_server_takes_each_code_once() {
    let dir = tempfile::tempdir().expect("tmp");
    let db = format!("sqlite://{}", dir.path().join("server.db").display());
    let server = Serve::with(
        free_port(),
        db.clone(),
        vec!["--registration".into(), "invite-only".into()],
    );
    let url = server.url();
    let register = |env: &TestEnv, email: &str| {
        env.cmd([
            "register",
            "--server",
            &url,
            "--email",
            email,
            "--device-name",
            "desk",
        ])
    };
    let a = TestEnv::init();
    // Without a code: refused, and the message says how to pass one.
    register(&a, "ada@example.org")
        .code(1)
        .stderr_has("invite")
        .stderr_has("--invite-file");
    let code = invite(&db);
    let file = dir.path().join("invite.txt");
    std::fs::write(&file, format!("{code}\n")).expect("write the code");
    // The email is typed in NFD and capitals: the account is its one form.
    let out = register(&a, "JOSE\u{301}@Example.org")
        .arg("--invite-file")
        .arg(&file)
        .ok();
    assert!(
        out.stdout.contains("jos\u{e9}@example.org"),
        "{}",
        out.stdout
    );
    assert_eq!(
        a.json(&["status"])["server"]["email"],
        "jos\u{e9}@example.org"
    );
    // The code is used up: another account cannot register with it (stdin).
    let b = TestEnv::init();
    register(&b, "bob@example.org")
        .arg("--invite-file")
        .arg("-")
        .stdin(code.clone())
        .code(1)
        .stderr_has("unknown or was used");
    // A fresh code from OPENK_INVITE works.
    register(&b, "bob@example.org")
        .env("OPENK_INVITE", invite(&db))
        .ok();
    // An email with a zero-width space is refused before anything is sent.
    let c = TestEnv::init();
    register(&c, "bob\u{200b}@example.org")
        .env("OPENK_INVITE", invite(&db))
        .code(2)
        .stderr_has("U+200B");
}
