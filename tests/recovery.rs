//! Account recovery end to end, with the real `openk` and a real server:
//! set up a code, split it into shares, check them, and recover on a new
//! machine with the code or K shares. The new password then works, the old
//! one and every old session do not, and the code is used up.

use crate::sync::{Serve, logged_in, registered};
use crate::util::TestEnv;

const EMAIL: &str = "recovery@example.org";
const NEW_PASSWORD: &str = "correct horse battery staple recovered";

fn write(env: &TestEnv, name: &str, text: &str) -> std::path::PathBuf {
    let path = env.root().join(name);
    std::fs::write(&path, text).expect("write");
    path
}

fn recover_with(server: &Serve, flag: &str, file: &std::path::Path) -> (TestEnv, String) {
    let mut c = TestEnv::new();
    let out = c
        .cmd([
            "--json",
            "recovery",
            "recover",
            "--server",
            &server.url(),
            "--email",
            EMAIL,
        ])
        .arg(flag)
        .arg(file)
        .args(["--new-password-stdin", "--device-name", "rescue"])
        .stdin(format!("{NEW_PASSWORD}\n"))
        .json();
    let secret_key = out["secret_key"].as_str().expect("secret_key").to_owned();
    assert!(secret_key.starts_with("OK1-"), "{out}");
    c.set_password(NEW_PASSWORD);
    (c, secret_key)
}

#[test]
fn k_of_n_shares_recover_the_account_and_the_old_credentials_stop_working() {
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
        "gh-pw-1",
    ]);
    a.run(&["sync"]);
    let b = logged_in(&server, EMAIL, a.secret_key(), "laptop");
    b.run(&["sync"]);

    assert_eq!(a.json(&["recovery", "status"])["set_up"], false);
    let code = a.json(&["recovery", "setup"])["code"]
        .as_str()
        .expect("code")
        .to_owned();
    assert!(code.starts_with("OKR-"), "{code}");
    assert_eq!(a.json(&["recovery", "status"])["set_up"], true);
    // Not again without --yes (no terminal to ask on).
    a.cmd(["recovery", "setup"]).code(2).stderr_has("--yes");

    let code_file = write(&a, "code.txt", &format!("{code}\n"));
    let split = a
        .cmd([
            "--json",
            "recovery",
            "split",
            "--shares",
            "5",
            "--threshold",
            "3",
            "--code-file",
        ])
        .arg(&code_file)
        .json();
    let shares: Vec<String> = split["shares"]
        .as_array()
        .expect("shares")
        .iter()
        .map(|s| s.as_str().expect("share").to_owned())
        .collect();
    assert_eq!(shares.len(), 5);
    assert!(shares.iter().all(|s| s.starts_with("OKS-")), "{shares:?}");

    // Two shares are not enough; three (any three) are; the code is too.
    let two = write(&a, "two.txt", &format!("{}\n{}\n", shares[0], shares[3]));
    a.cmd(["recovery", "verify", "--shares-file"])
        .arg(&two)
        .code(2)
        .stderr_has("need 3");
    let three = write(
        &a,
        "three.txt",
        &format!("{}\n\n{}\n{}\n", shares[4], shares[1], shares[2]),
    );
    a.cmd(["recovery", "verify", "--shares-file"])
        .arg(&three)
        .ok();
    a.cmd(["recovery", "verify", "--code-file"])
        .arg(&code_file)
        .ok();
    // Without a vault, against the server.
    TestEnv::new()
        .cmd([
            "recovery",
            "verify",
            "--server",
            &server.url(),
            "--email",
            EMAIL,
            "--code-file",
        ])
        .arg(&code_file)
        .ok();
    // Another account's code (a fresh one) is refused, and says nothing of it.
    let other = write(
        &a,
        "other.txt",
        "OKR-AAAAAA-AAAAAA-AAAAAA-AAAAAA-AAAAAA-AH\n",
    );
    let run = a
        .cmd(["recovery", "verify", "--code-file"])
        .arg(&other)
        .fails();
    run.assert_no_panic();

    // Recovery on a new machine with three shares.
    let (c, new_secret_key) = recover_with(&server, "--shares-file", &three);
    assert_eq!(c.run(&["get", "GitHub"]).trim_end(), "gh-pw-1");
    c.add(&["login", "--name", "Bank", "--password", "bank-pw"]);
    c.run(&["sync"]);

    // Every old session ended; the old password and Secret Key no longer sign in.
    a.cmd(["sync"]).code(3);
    b.cmd(["sync"]).code(3);
    TestEnv::new()
        .cmd([
            "login",
            "--server",
            &server.url(),
            "--email",
            EMAIL,
            "--secret-key",
            a.secret_key(),
            "--device-name",
            "old",
        ])
        .code(3);
    // The new ones do, and see everything.
    let mut d = TestEnv::new();
    d.set_password(NEW_PASSWORD);
    d.cmd([
        "login",
        "--server",
        &server.url(),
        "--email",
        EMAIL,
        "--secret-key",
        &new_secret_key,
        "--device-name",
        "new",
    ])
    .ok();
    d.run(&["sync"]);
    assert_eq!(d.run(&["get", "Bank"]).trim_end(), "bank-pw");
    assert_eq!(d.run(&["get", "GitHub"]).trim_end(), "gh-pw-1");

    // The code is used up: neither it nor the shares work again.
    TestEnv::new()
        .cmd([
            "recovery",
            "verify",
            "--server",
            &server.url(),
            "--email",
            EMAIL,
            "--code-file",
        ])
        .arg(&code_file)
        .code(3);
    assert_eq!(c.json(&["recovery", "status"])["set_up"], false);
}

#[test]
fn the_code_survives_an_account_key_rotation_and_bad_input_is_refused() {
    let tmp = tempfile::tempdir().expect("tmp");
    let server = Serve::start(tmp.path());
    let a = registered(&server, EMAIL);
    a.add(&["login", "--name", "Wifi", "--password", "wifi-pw"]);
    a.run(&["sync"]);
    let code = a.json(&["recovery", "setup"])["code"]
        .as_str()
        .expect("code")
        .to_owned();
    let code_file = write(&a, "code.txt", &code);

    // Bad input: a typo, K > N, both a file of shares and the password on stdin.
    // One data character after `OKR-` changed: the checksum catches it.
    let typo: String = code
        .chars()
        .enumerate()
        .map(|(i, c)| match (i, c) {
            (4, 'A') => 'B',
            (4, _) => 'A',
            _ => c,
        })
        .collect();
    let typo = write(&a, "typo.txt", &typo);
    a.cmd(["recovery", "verify", "--code-file"])
        .arg(&typo)
        .code(2)
        .stderr_has("checksum");
    a.cmd([
        "recovery",
        "split",
        "--shares",
        "2",
        "--threshold",
        "3",
        "--code-file",
    ])
    .arg(&code_file)
    .code(2)
    .stderr_has("--threshold");
    TestEnv::new()
        .cmd([
            "recovery",
            "recover",
            "--server",
            &server.url(),
            "--email",
            EMAIL,
        ])
        .args(["--shares-file", "-", "--new-password-stdin"])
        .code(2)
        .stderr_has("standard input");
    // Recovering into a directory that holds a vault is refused, and changes nothing.
    a.cmd([
        "recovery",
        "recover",
        "--server",
        &server.url(),
        "--email",
        EMAIL,
        "--code-file",
    ])
    .arg(&code_file)
    .arg("--new-password-stdin")
    .stdin(format!("{NEW_PASSWORD}\n"))
    .code(2)
    .stderr_has("--home");
    a.cmd(["recovery", "verify", "--code-file"])
        .arg(&code_file)
        .ok();

    // A rotation of the account key seals the new key to the same code.
    a.run(&["key", "rotate", "--account", "--yes"]);
    a.cmd(["recovery", "verify", "--code-file"])
        .arg(&code_file)
        .ok();
    let (c, _) = recover_with(&server, "--code-file", &code_file);
    assert_eq!(c.run(&["get", "Wifi"]).trim_end(), "wifi-pw");
}
