//! `openk import` of every format of src/import/{bitwarden,onepux,
//! onepassword_csv,lastpass,chrome,firefox}.rs through the real binary:
//! each fixture of tests/fixtures/ is imported (its format told from its
//! contents), values are read back with `openk get`, and importing the same
//! file again adds nothing.

use std::path::PathBuf;

use serde_json::Value as Json;

use crate::util::TestEnv;

fn fixture(rel: &str) -> String {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(rel)
        .to_string_lossy()
        .into_owned()
}

/// Imports `rel` (format detected) and returns the JSON report.
fn import(env: &TestEnv, rel: &str, file_password: Option<&str>) -> Json {
    let mut cmd = env.cmd(["--json", "import", &fixture(rel)]);
    if let Some(pw) = file_password {
        cmd = cmd
            .arg("--file-password-stdin")
            .stdin(format!("{pw}\n").into_bytes());
    }
    cmd.json()
}

fn count(report: &Json, key: &str) -> usize {
    report[key].as_array().map_or(0, Vec::len)
}

/// Imports `rel` twice: the first time `items` items and `problems`
/// problems, the second time nothing new.
fn import_twice(
    env: &TestEnv,
    rel: &str,
    pw: Option<&str>,
    format: &str,
    items: usize,
    problems: usize,
) {
    let first = import(env, rel, pw);
    assert_eq!(first["format"], format, "{first}");
    assert_eq!(count(&first, "imported"), items, "{first}");
    assert_eq!(count(&first, "problems"), problems, "{first}");
    let again = import(env, rel, pw);
    assert_eq!(count(&again, "imported"), 0, "{again}");
    assert_eq!(count(&again, "duplicates"), items, "{again}");
}

fn get(env: &TestEnv, item: &str, field: &str) -> String {
    env.run(&["get", item, field])
}

const BW_PASSWORD: &str = "correct horse battery staple ü";

fn check_bitwarden_plain(env: &TestEnv) {
    let gh = "GitHub — Ünïcødé 🔑";
    assert_eq!(get(env, gh, "username"), "octocat@example.com\n");
    assert_eq!(get(env, gh, "password"), "  p@ss wörd with spaces  \n");
    assert_eq!(get(env, gh, "PIN"), "4321\n");
    assert_eq!(
        get(env, gh, "notes"),
        "Recovery codes are in the safe.\nSecond line\n\tindented third line\n"
    );
    assert_eq!(get(env, "Visa", "expiry"), "07/2029\n");
    assert_eq!(get(env, "Visa", "number"), "4111111111111111\n");
    assert_eq!(
        get(env, "Jane's identity", "full name"),
        "Dr Jane Quinn Doe\n"
    );
    assert_eq!(
        get(env, "Deploy key", "fingerprint"),
        "SHA256:abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG\n"
    );
    assert_eq!(
        get(env, "Wi-Fi at home", "notes"),
        "SSID: Home-5G\nPassword: correct horse battery staple\n"
    );
    // The trashed login is in the trash, not in the list.
    let live = env.ls_names(&[]);
    assert!(!live.iter().any(|n| n == "Old forum"), "{live:?}");
    assert!(live.iter().any(|n| n == gh), "{live:?}");
}

#[test]
fn bitwarden_json_plain() {
    let env = TestEnv::init();
    import_twice(
        &env,
        "bitwarden-json/plain.json",
        None,
        "bitwarden-json",
        7,
        1,
    );
    check_bitwarden_plain(&env);
}

#[test]
fn bitwarden_json_password_protected() {
    let env = TestEnv::init();
    // A wrong password imports nothing, exit 3.
    let run = env
        .cmd(["import", &fixture("bitwarden-json/encrypted-pbkdf2.json")])
        .arg("--file-password-stdin")
        .stdin(b"not the password\n".to_vec())
        .code(3);
    assert!(run.stderr.contains("password"), "{run}");
    assert!(env.ls_names(&[]).is_empty());
    import_twice(
        &env,
        "bitwarden-json/encrypted-argon2id.json",
        Some(BW_PASSWORD),
        "bitwarden-json",
        7,
        1,
    );
    check_bitwarden_plain(&env);
    // The same export encrypted under PBKDF2 holds the same ids: nothing new.
    let again = import(
        &env,
        "bitwarden-json/encrypted-pbkdf2.json",
        Some(BW_PASSWORD),
    );
    assert_eq!(count(&again, "imported"), 0, "{again}");
}

#[test]
fn bitwarden_account_restricted_is_refused() {
    let env = TestEnv::init();
    let run = env
        .cmd(["import", &fixture("bitwarden-json/account-restricted.json")])
        .code(1);
    assert!(run.stderr.contains("Password protected"), "{run}");
    assert!(env.ls_names(&[]).is_empty());
}

#[test]
fn bitwarden_csv() {
    let env = TestEnv::init();
    import_twice(
        &env,
        "bitwarden-csv/export.csv",
        None,
        "bitwarden-csv",
        3,
        2,
    );
    let gh = "GitHub — Ünïcødé 🔑";
    assert_eq!(
        get(&env, gh, "password"),
        "  p@ss wörd, with \"quotes\"  \n"
    );
    assert_eq!(
        get(&env, gh, "Security question"),
        "Name of first pet? Rex\n"
    );
    assert_eq!(get(&env, "www.nameless.example", "username"), "anon\n");
}

#[test]
fn onepux() {
    let env = TestEnv::init();
    import_twice(&env, "1pux/export.1pux", None, "1pux", 13, 1);
    let gh = "GitHub — Ünïcødé 🔑";
    assert_eq!(get(&env, gh, "password"), "  p@ss wörd with spaces  \n");
    assert_eq!(get(&env, gh, "PIN"), "4321\n");
    assert_eq!(get(&env, "Visa", "expiry"), "07/2029\n");
    assert_eq!(get(&env, "Jane's identity", "birthday"), "1990-01-01\n");
    assert_eq!(get(&env, "Payments API", "key"), "sk_live_abcdef\n");
    assert_eq!(get(&env, "Orders DB", "port"), "5432\n");
    // Attachments are file fields: their bytes in standard base64.
    assert_eq!(
        get(&env, gh, "recovery.txt"),
        "cmVjb3ZlcnkgY29kZXM6CjExMTEtMjIyMgozMzMzLTQ0NDQK\n"
    );
    assert_eq!(
        get(&env, "Wi-Fi at home", "notes"),
        "SSID: Home-5G\nPassword: correct horse battery staple\nПривет 👋\n"
    );
}

#[test]
fn onepassword_csv() {
    let env = TestEnv::init();
    let first = import(&env, "1password-csv/1PasswordExport.csv", None);
    assert_eq!(first["format"], "1password-csv", "{first}");
    assert_eq!(count(&first, "imported"), 4, "{first}");
    assert_eq!(count(&first, "problems"), 1, "{first}");
    // Again: nothing is added. A CSV has no ids, so duplicates are told by
    // name, username and URL; the archived row ("Old forum") matches the
    // trashed item the first import made.
    let again = import(&env, "1password-csv/1PasswordExport.csv", None);
    assert_eq!(count(&again, "duplicates"), 4, "{again}");
    assert_eq!(count(&again, "imported"), 0, "{again}");
    let gh = "GitHub — Ünïcødé 🔑";
    assert_eq!(get(&env, gh, "password"), "  p@ss, wörd \"quoted\"  \n");
    assert_eq!(get(&env, gh, "url"), "https://github.com/login\n");
    assert_eq!(
        get(&env, "Wi-Fi at home", "notes"),
        "SSID: Home-5G\nPassword: horse\n"
    );
}

#[test]
fn lastpass_csv() {
    let env = TestEnv::init();
    import_twice(
        &env,
        "lastpass-csv/lastpass_export.csv",
        None,
        "lastpass-csv",
        8,
        1,
    );
    let gh = "GitHub — Ünïcødé 🔑";
    assert_eq!(get(&env, gh, "password"), "  p@ss, wörd \"quoted\"  \n");
    assert_eq!(get(&env, "Visa", "cvv"), "123\n");
    assert_eq!(get(&env, "Visa", "expiry"), "07/2029\n");
    assert_eq!(get(&env, "Deploy key", "passphrase"), "s3cret\n");
    assert_eq!(get(&env, "Checking", "PIN"), "2468\n");
    assert_eq!(
        get(&env, "Home address", "full name"),
        "Dr Jane Quinn Doe\n"
    );
}

#[test]
fn chrome_csv() {
    let env = TestEnv::init();
    import_twice(
        &env,
        "chrome-csv/Chrome Passwords.csv",
        None,
        "chrome-csv",
        4,
        1,
    );
    assert_eq!(
        get(&env, "github.com", "password"),
        "  p@ss, wörd \"quoted\"  \n"
    );
    assert_eq!(get(&env, "Ünïcødé 🔑 bank", "password"), "пароль\n");
    assert_eq!(get(&env, "www.nameless.example", "username"), "anon\n");
}

#[test]
fn firefox_csv() {
    let env = TestEnv::init();
    import_twice(&env, "firefox-csv/logins.csv", None, "firefox-csv", 4, 1);
    assert_eq!(
        get(&env, "github.com", "password"),
        "  p@ss, wörd \"quoted\"  \n"
    );
    assert_eq!(
        get(&env, "intranet.example.com", "password"),
        "пароль 🔑\nwith newline\n"
    );
    assert_eq!(
        get(&env, "intranet.example.com", "http realm"),
        "Staff only\n"
    );
}
