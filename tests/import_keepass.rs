//! `openk import` of KeePass / KeePassXC files and a `pass` store through
//! the real binary: the fixtures of tests/fixtures/{keepass,pass} (made by
//! keepassxc-cli, pykeepass and pass: their READMEs say how), values read
//! back with `openk get` as `keepassxc-cli show` printed them, importing
//! again adds nothing, a wrong password or a missing key file exits 3 and
//! writes nothing.

use std::path::{Path, PathBuf};

use serde_json::Value as Json;

use crate::util::TestEnv;

const KDBX_PASSWORD: &str = "fixture-pass";

fn fixture(rel: &str) -> String {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(rel)
        .to_string_lossy()
        .into_owned()
}

fn count(report: &Json, key: &str) -> usize {
    report[key].as_array().map_or(0, Vec::len)
}

fn import_kdbx(env: &TestEnv, rel: &str, extra: &[&str]) -> Json {
    env.cmd(["--json", "import", &fixture(rel), "--file-password-stdin"])
        .args(extra)
        .stdin(format!("{KDBX_PASSWORD}\n").into_bytes())
        .json()
}

fn get(env: &TestEnv, item: &str, field: &str) -> String {
    env.run(&["get", item, field])
}

#[test]
fn a_kdbx4_database_imports_with_every_field_and_again_adds_nothing() {
    let env = TestEnv::init();
    let first = import_kdbx(&env, "keepass/kdbx4.kdbx", &[]);
    assert_eq!(first["format"], "kdbx", "{first}");
    assert_eq!(count(&first, "imported"), 7, "{first}");
    // As `keepassxc-cli show -s --all` printed them (kdbx4.show).
    assert_eq!(get(&env, "GitHub", "username"), "alice-renamed\n");
    assert_eq!(get(&env, "GitHub", "password"), "gh-current-password\n");
    assert_eq!(get(&env, "GitHub", "Plan"), "Pro\n");
    assert_eq!(get(&env, "GitHub", "Recovery Codes"), "rc-1111 rc-2222\n");
    assert_eq!(get(&env, "Bank of X", "PIN"), "4321\n");
    assert_eq!(get(&env, "Bank of X", "Account No"), "DE00 1234 5678\n");
    assert_eq!(
        get(&env, "GitLab", "password"),
        "gitlab pass with trailing space \n"
    );
    // TOTP in both KeePassXC forms gives codes.
    assert!(env.run(&["totp", "GitHub"]).len() >= 6);
    assert!(env.run(&["totp", "Bank of X"]).len() >= 8);
    // Groups are folders; the entry history is the item's history.
    let shown = env.json(&["show", "GitLab"]);
    assert_eq!(shown["folder"], "Web/Dev", "{shown}");
    // keepassxc-cli saved a version at each edit and at the attachment.
    let history = env.json(&["history", "GitHub"]);
    assert_eq!(
        history["versions"].as_array().map(Vec::len),
        Some(4),
        "{history}"
    );
    // The Recycle Bin's entry is in the trash.
    let names = env.ls_names(&["--trash"]);
    assert_eq!(names, ["Old Account"], "{names:?}");

    let again = import_kdbx(&env, "keepass/kdbx4.kdbx", &[]);
    assert_eq!(count(&again, "imported"), 0, "{again}");
    assert_eq!(count(&again, "duplicates"), 7, "{again}");
    // The same entries from the XML export are the same items.
    let xml = env
        .cmd(["--json", "import", &fixture("keepass/kdbx4.xml")])
        .json();
    assert_eq!(xml["format"], "keepassxc-xml", "{xml}");
    assert_eq!(count(&xml, "imported"), 0, "{xml}");
}

#[test]
fn a_wrong_password_or_a_missing_key_file_exits_3_and_writes_nothing() {
    let env = TestEnv::init();
    let run = env
        .cmd([
            "import",
            &fixture("keepass/kdbx31.kdbx"),
            "--file-password-stdin",
        ])
        .stdin(b"not the password\n".to_vec())
        .code(3);
    assert!(run.stderr.contains("kdbx"), "{}", run.stderr);
    assert!(
        run.stderr.contains("nothing was imported"),
        "{}",
        run.stderr
    );
    env.cmd([
        "import",
        &fixture("keepass/keyfile.kdbx"),
        "--file-password-stdin",
    ])
    .stdin(format!("{KDBX_PASSWORD}\n").into_bytes())
    .code(3);
    assert!(env.ls_names(&[]).is_empty());
    let with_key = import_kdbx(
        &env,
        "keepass/keyfile.kdbx",
        &["--key-file", &fixture("keepass/keyfile.keyx")],
    );
    assert!(count(&with_key, "imported") > 0, "{with_key}");
}

#[test]
fn a_truncated_database_names_the_format_and_writes_nothing() {
    let env = TestEnv::init();
    let bytes = std::fs::read(fixture("keepass/kdbx4.kdbx")).expect("fixture");
    let cut = env.root().join("cut.kdbx");
    std::fs::write(&cut, &bytes[..bytes.len() / 2]).expect("write");
    let run = env
        .cmd([
            "import",
            cut.to_str().expect("utf-8"),
            "--file-password-stdin",
        ])
        .stdin(format!("{KDBX_PASSWORD}\n").into_bytes())
        .fails();
    assert!(run.stderr.contains("kdbx"), "{}", run.stderr);
    assert!(env.ls_names(&[]).is_empty());
    let garbage = env.root().join("garbage.csv");
    std::fs::write(&garbage, "\u{0}\u{1}not,a\nknown format").expect("write");
    env.cmd(["import", garbage.to_str().expect("utf-8")])
        .code(2);
}

/// The test GNUPGHOME copied where gpg accepts its permissions.
fn gnupg_home(to: &Path) -> PathBuf {
    use std::os::unix::fs::PermissionsExt as _;
    fn copy(from: &Path, to: &Path) {
        std::fs::create_dir_all(to).expect("mkdir");
        std::fs::set_permissions(to, std::fs::Permissions::from_mode(0o700)).expect("chmod");
        for e in std::fs::read_dir(from).expect("read_dir") {
            let e = e.expect("entry");
            let target = to.join(e.file_name());
            if e.file_type().expect("type").is_dir() {
                copy(&e.path(), &target);
            } else if e.file_type().expect("type").is_file() {
                std::fs::copy(e.path(), &target).expect("copy");
            }
        }
    }
    let home = to.join("gnupg");
    copy(Path::new(&fixture("pass/gnupghome")), &home);
    home
}

#[test]
fn a_pass_store_imports_through_gpg_byte_exact() {
    let env = TestEnv::init();
    let home = gnupg_home(env.root());
    let report = env
        .cmd(["--json", "import", &fixture("pass/store")])
        .env("GNUPGHOME", &home)
        .json();
    assert_eq!(report["format"], "pass", "{report}");
    assert_eq!(count(&report, "imported"), 7, "{report}");
    // The entry encrypted to a key this home lacks is named, not imported.
    assert_eq!(count(&report, "problems"), 1, "{report}");
    assert_eq!(
        get(&env, "github.com", "password"),
        "gh-pass with trailing spaces  \n"
    );
    assert_eq!(get(&env, "github.com", "username"), "alice\n");
    assert_eq!(get(&env, "github.com", "pin"), "1234\n");
    let shown = env.json(&["show", "github.com"]);
    assert_eq!(shown["folder"], "web", "{shown}");
    let again = env
        .cmd(["--json", "import", &fixture("pass/store")])
        .env("GNUPGHOME", &home)
        .json();
    assert_eq!(count(&again, "imported"), 0, "{again}");
}
