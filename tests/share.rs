//! Share links end to end: the real `openk` binary makes, opens, lists and
//! revokes links against a real server on a random port; an expired link;
//! the key never reaches the server (its database and its log at trace
//! level); and the browser page, opened for real in headless Chromium.

use std::net::TcpListener;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use openk_server::Settings;

use crate::util::{LocalServer as Server, TestEnv, bin, free_port};

const PASSWORD_VALUE: &str = "Tr0ub4dor-share-me";
const NOTE_VALUE: &str = "the spare key is under the mat";

/// A registered vault holding one login ("GitHub").
fn sender(url: &str) -> TestEnv {
    let env = TestEnv::init();
    env.add(&[
        "login",
        "--name",
        "GitHub",
        "--username",
        "octo",
        "--password",
        PASSWORD_VALUE,
        "--notes",
        NOTE_VALUE,
    ]);
    env.cmd([
        "register",
        "--server",
        url,
        "--email",
        &format!("share-{}@example.org", uuid::Uuid::now_v7().simple()),
        "--device-name",
        "desk",
    ])
    .ok();
    env
}

/// `openk share link ARGS --json`: the link.
fn make_link(env: &TestEnv, args: &[&str]) -> String {
    let mut all = vec!["share", "link"];
    all.extend_from_slice(args);
    let v = env.json(&all);
    let url = v["url"].as_str().expect("url").to_owned();
    assert!(url.contains("/s/") && url.contains('#'), "{v}");
    url
}

fn id_of(link: &str) -> String {
    link.split('#')
        .next()
        .and_then(|l| l.rsplit("/s/").next())
        .expect("id")
        .to_owned()
}

/// `openk share open -` with the link on stdin, from a directory without
/// any vault (a recipient without OpenK's vault).
fn open_cmd(recipient: &TestEnv, link: &str) -> crate::util::TestCommand {
    recipient
        .cmd(["share", "open", "-"])
        .stdin(format!("{link}\n"))
}

// Make a link, open it in the terminal (stdin and argv, text and JSON), see
// the views counted in `share ls`, use it up; revoke another; the errors
// for a used-up, unknown, tampered or malformed link and for a server
// that cannot be reached, each with its exit code.
#[test]
fn share_link_open_ls_revoke_and_errors() {
    let server = Server::with(Settings::for_tests());
    let env = sender(&server.url);
    let r = TestEnv::new();
    let link = make_link(&env, &["GitHub", "--max-views", "3"]);
    assert!(link.starts_with(&format!("{}/s/", server.url)), "{link}");

    let shown = open_cmd(&r, &link).stdout();
    assert!(shown.starts_with("GitHub (login)\n"), "{shown}");
    for needle in ["octo", PASSWORD_VALUE, NOTE_VALUE] {
        assert!(shown.contains(needle), "{shown}");
    }
    let ls = env.json(&["share", "ls"]);
    assert_eq!(ls[0]["id"], id_of(&link), "{ls}");
    assert_eq!(ls[0]["views_left"], 2, "{ls}");
    // This device made it: it names the item (the server never knows it).
    assert_eq!(ls[0]["item"], "GitHub", "{ls}");
    let table = env.run(&["share", "ls"]);
    assert!(
        table.contains("VIEWS LEFT") && table.contains(&id_of(&link)) && table.contains("GitHub"),
        "{table}"
    );

    // The link as an argument works too (docs: prefer `-`), and --json.
    let v = TestEnv::new()
        .cmd(["--json", "share", "open", &link])
        .json();
    assert_eq!(v["name"], "GitHub");
    let password = v["fields"]
        .as_array()
        .expect("fields")
        .iter()
        .find(|f| f["label"] == "password")
        .expect("password field");
    assert_eq!(password["value"], PASSWORD_VALUE);
    assert_eq!(password["concealed"], true);

    // The third view is the last; then the link is gone (exit 4).
    open_cmd(&r, &link).ok();
    open_cmd(&r, &link)
        .code(4)
        .stderr_has("expired or was already used")
        .stdout_lacks(PASSWORD_VALUE);
    assert_eq!(env.json(&["share", "ls"]), serde_json::json!([]));

    // Only the fields asked for.
    let only = make_link(&env, &["GitHub", "--fields", "username", "--expires", "1h"]);
    let shown = open_cmd(&r, &only).stdout();
    assert!(shown.contains("octo"), "{shown}");
    assert!(
        !shown.contains(PASSWORD_VALUE) && !shown.contains(NOTE_VALUE),
        "{shown}"
    );

    // Revoke: gone at once; an unknown id is exit 4 too.
    let revoked = make_link(&env, &["GitHub"]);
    env.cmd(["share", "revoke", &id_of(&revoked)])
        .ok()
        .stdout_has("Revoked share link");
    open_cmd(&r, &revoked)
        .code(4)
        .stderr_has("expired or was already used");
    env.cmd(["share", "revoke", &id_of(&revoked)])
        .code(4)
        .stderr_has("openk share ls");

    // A tampered key: exit 1, nothing shown.
    let (head, key) = only.split_once('#').expect("#");
    let mut bytes: Vec<char> = key.chars().collect();
    bytes[0] = if bytes[0] == 'A' { 'B' } else { 'A' };
    let tampered = format!("{head}#{}", bytes.into_iter().collect::<String>());
    open_cmd(&r, &tampered)
        .code(1)
        .stderr_has("does not decrypt")
        .stdout_lacks("octo");
    // Malformed links: exit 2, and nothing is sent (the view is still there).
    for bad in [
        head.to_owned(),
        format!("{head}#short"),
        "not a link".to_owned(),
    ] {
        open_cmd(&r, &bad).code(2).stderr_has("not a share link");
    }
    // The tampered open used a view of `only` (the server cannot tell).
    // A server that cannot be reached: exit 7.
    let nowhere = format!("http://127.0.0.1:{}/s/{}#{key}", free_port(), id_of(&only));
    open_cmd(&r, &nowhere).code(7);

    // Limits the CLI checks before anything is sent.
    env.cmd(["share", "link", "GitHub", "--expires", "31d"])
        .code(2);
    env.cmd(["share", "link", "GitHub", "--expires", "30m"])
        .code(2);
    env.cmd(["share", "link", "GitHub", "--max-views", "0"])
        .code(2)
        .stderr_has("1 to 1000");
    env.cmd(["share", "link", "GitHub", "--fields", "pin"])
        .code(2)
        .stderr_has("no field \"pin\"");
    env.cmd(["share", "link", "Nope"]).code(4);
    // A vault that is not registered cannot make links.
    TestEnv::init()
        .cmd(["share", "link", "x"])
        .code(2)
        .stderr_has("not connected");
}

/// Moves every link's expiry in the server's database to the past.
fn expire_all(db: &Path) {
    use sqlx::Connection as _;
    let db = db.to_owned();
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
        .block_on(async move {
            let mut c = sqlx::SqliteConnection::connect(&format!("sqlite://{}", db.display()))
                .await
                .expect("open the server database");
            sqlx::query("UPDATE share_links SET expires_at = 1")
                .execute(&mut c)
                .await
                .expect("expire");
        });
}

fn rows(db: &Path) -> i64 {
    use sqlx::Connection as _;
    let db = db.to_owned();
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
        .block_on(async move {
            let mut c = sqlx::SqliteConnection::connect(&format!("sqlite://{}", db.display()))
                .await
                .expect("open the server database");
            sqlx::query_scalar("SELECT COUNT(*) FROM share_links")
                .fetch_one(&mut c)
                .await
                .expect("count")
        })
}

// An expired link: exit 4 with the "gone" message, and its row is deleted.
#[test]
fn an_expired_link_is_gone() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("server.db");
    let server = Server::sqlite(&db);
    let env = sender(&server.url);
    let r = TestEnv::new();
    let link = make_link(&env, &["GitHub", "--expires", "1h"]);
    assert_eq!(rows(&db), 1);
    expire_all(&db);
    open_cmd(&r, &link)
        .code(4)
        .stderr_has("this share link has expired or was already used")
        .stderr_has("ask the sender for a new one");
    assert_eq!(rows(&db), 0, "the expired link's row is gone");
}

fn wait_for(url: &str, child: &mut std::process::Child) {
    let deadline = Instant::now() + Duration::from_secs(20);
    let addr = url.trim_start_matches("http://");
    while Instant::now() < deadline {
        if std::net::TcpStream::connect(addr).is_ok() {
            return;
        }
        if let Ok(Some(status)) = child.try_wait() {
            panic!("openk serve exited early: {status}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("openk serve did not start listening on {url}");
}

// The key exists only in the link: after a link is made and opened through
// `openk serve` (logging at trace level), neither the server's database
// nor its log holds the key (raw, base64url, base64 or hex) or the
// plaintext, and the link is no secret to the log's request lines either.
#[test]
fn the_link_key_never_reaches_the_server() {
    use base64::Engine as _;
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("server.db");
    let log = dir.path().join("server.log");
    let port = free_port();
    let url = format!("http://127.0.0.1:{port}");
    let mut child = Command::new(bin())
        .args([
            "serve",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--database",
            &format!("sqlite://{}", db.display()),
        ])
        .env("OPENK_LOG", "trace")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).expect("log file"))
        .spawn()
        .expect("spawn openk serve");
    wait_for(&url, &mut child);
    let env = sender(&url);
    let r = TestEnv::new();
    let link = make_link(&env, &["GitHub", "--max-views", "5"]);
    let shown = open_cmd(&r, &link).stdout();
    assert!(shown.contains(PASSWORD_VALUE), "{shown}");
    env.run(&["share", "ls"]);
    rustix::process::kill_process(
        rustix::process::Pid::from_child(&child),
        rustix::process::Signal::TERM,
    )
    .expect("signal");
    assert!(child.wait().expect("wait").success());

    let key_text = link.split_once('#').expect("#").1.to_owned();
    let key = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(&key_text)
        .expect("base64url key");
    assert_eq!(key.len(), 32);
    let key_std = base64::engine::general_purpose::STANDARD.encode(&key);
    let key_hex = hex::encode(&key);
    let log_text = std::fs::read_to_string(&log).expect("log");
    assert!(log_text.contains("share link created"), "{log_text}");
    let mut stored = Vec::new();
    for name in ["server.db", "server.db-wal"] {
        if let Ok(bytes) = std::fs::read(dir.path().join(name)) {
            stored.extend(bytes);
        }
    }
    assert!(!stored.is_empty());
    let has = |hay: &[u8], needle: &[u8]| hay.windows(needle.len()).any(|w| w == needle);
    for needle in [
        key.as_slice(),
        key_text.as_bytes(),
        key_std.as_bytes(),
        key_hex.as_bytes(),
        PASSWORD_VALUE.as_bytes(),
        NOTE_VALUE.as_bytes(),
    ] {
        assert!(
            !has(&stored, needle),
            "the server database holds {needle:?}"
        );
        assert!(
            !has(log_text.as_bytes(), needle),
            "the server log holds {needle:?}"
        );
    }
    // The device that made it keeps the link to copy again, sealed with
    // the account key: not one of its files holds the key in the clear.
    for file in env.vault_files() {
        let bytes = std::fs::read(&file).unwrap_or_default();
        for needle in [
            key.as_slice(),
            key_text.as_bytes(),
            key_std.as_bytes(),
            key_hex.as_bytes(),
        ] {
            assert!(!has(&bytes, needle), "{} holds {needle:?}", file.display());
        }
    }
}

/// The browser for the page test: `OPENK_TEST_CHROMIUM` names it (`.ci/run`
/// sets it and installs Debian's `chromium`); unset, the test is skipped.
fn chromium() -> Option<String> {
    let Some(path) = std::env::var("OPENK_TEST_CHROMIUM")
        .ok()
        .filter(|p| !p.trim().is_empty())
    else {
        println!("skipped: OPENK_TEST_CHROMIUM is not set (e.g. /usr/bin/chromium)");
        return None;
    };
    assert!(
        Path::new(&path).is_file(),
        "OPENK_TEST_CHROMIUM={path} but there is no such browser (apt-get install chromium)"
    );
    Some(path)
}

/// The page's DOM after its script ran, as headless Chromium dumps it.
fn dump_dom(browser: &str, profile: &Path, url: &str) -> String {
    let out = Command::new(browser)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--no-first-run",
            "--disable-extensions",
            "--virtual-time-budget=10000",
            "--dump-dom",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg(url)
        .env("HOME", profile)
        .stdin(Stdio::null())
        .output()
        .expect("run chromium");
    assert!(
        out.status.success(),
        "chromium failed ({}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

// A recipient without OpenK: the link opens in a real browser, whose page
// decrypts it with WebCrypto and shows the fields (the secret masked, with
// reveal and copy buttons); opened again once used up, it says it is gone.
#[test]
fn the_share_page_decrypts_in_headless_chromium() {
    let Some(browser) = chromium() else {
        return;
    };
    let server = Server::with(Settings::for_tests());
    let env = sender(&server.url);
    let r = TestEnv::new();
    let link = make_link(&env, &["GitHub", "--max-views", "1"]);
    let profile = tempfile::tempdir().expect("profile dir");

    let dom = dump_dom(&browser, profile.path(), &link);
    assert!(dom.contains("data-state=\"shown\""), "{dom}");
    assert!(dom.contains("GitHub"), "{dom}");
    assert!(dom.contains(">octo<"), "{dom}");
    assert!(
        dom.contains(&format!("data-label=\"password\">{PASSWORD_VALUE}<")),
        "the decrypted password is on the page: {dom}"
    );
    assert!(
        dom.contains("class=\"value masked\""),
        "the secret is masked: {dom}"
    );
    assert!(dom.contains(">Reveal<") && dom.contains(">Copy<"), "{dom}");
    assert!(dom.contains(NOTE_VALUE), "{dom}");

    // Its one view is used: the page says so, and shows nothing.
    let dom = dump_dom(&browser, profile.path(), &link);
    assert!(dom.contains("data-state=\"gone\""), "{dom}");
    assert!(
        dom.contains("This link has expired or was already used"),
        "{dom}"
    );
    assert!(!dom.contains(PASSWORD_VALUE), "{dom}");

    // A link without its key says it is incomplete and asks the server nothing.
    let other = make_link(&env, &["GitHub", "--max-views", "1"]);
    let dom = dump_dom(
        &browser,
        profile.path(),
        other.split('#').next().expect("url"),
    );
    assert!(dom.contains("This link is incomplete"), "{dom}");
    open_cmd(&r, &other).ok().stdout_has(PASSWORD_VALUE);
}

// The README's "Share one secret" block, run as written by `sh -e` in a
// registered vault (the server's port aside, which the block never names).
#[test]
fn the_readme_share_block_works_as_written() {
    let readme = include_str!("../README.md");
    let section = &readme[readme.find("### Share one secret").expect("the section")..];
    let block = &section[section.find("```sh\n").expect("a sh block") + 6..];
    let block = &block[..block.find("```").expect("the end of the block")];
    let server = Server::with(Settings::for_tests());
    let env = sender(&server.url);
    let dir = bin().parent().expect("bin dir").to_owned();
    let path = format!(
        "{}:{}",
        dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    // The harness's environment for `openk` (HOME, OPENK_HOME, the password, …).
    let openk = env.cmd(Vec::<&str>::new()).into_command();
    let mut sh = Command::new("sh");
    for (k, v) in openk.get_envs() {
        match v {
            Some(v) => sh.env(k, v),
            None => sh.env_remove(k),
        };
    }
    let out = sh
        .arg("-euc")
        .arg(block)
        .env("PATH", path)
        .current_dir(env.root())
        .stdin(Stdio::null())
        .output()
        .expect("run sh");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "{block}\nstdout:\n{stdout}\nstderr:\n{stderr}"
    );
    assert!(stdout.contains(&format!("{}/s/", server.url)), "{stdout}");
    assert!(
        stdout.contains(PASSWORD_VALUE) && stdout.contains("octo"),
        "{stdout}"
    );
    assert!(
        !stdout.contains(NOTE_VALUE),
        "only the fields named: {stdout}"
    );
    assert!(stdout.contains("Revoked share link"), "{stdout}");
    assert!(stdout.contains("VIEWS LEFT"), "{stdout}");
    assert_eq!(env.json(&["share", "ls"]), serde_json::json!([]));
}

/// A stand-in server that answers every request with `200` and `body`
/// (JSON), for links whose contents a test makes itself.
fn fake_server(body: String) -> String {
    use std::io::{Read as _, Write as _};
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut s) = stream else { return };
            let mut buf = [0u8; 4096];
            let _ = s.read(&mut buf);
            let _ = write!(
                s,
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    url
}

/// A link to `snapshot` (JSON) sealed as `openk share link` seals it,
/// served by a stand-in server.
fn hostile_link(snapshot: &str) -> String {
    use aes_gcm::aead::{Aead, KeyInit, Payload};
    use base64::Engine as _;
    let key = [7u8; 32];
    let nonce = [9u8; 12];
    let sealed = aes_gcm::Aes256Gcm::new((&key).into())
        .encrypt(
            (&nonce).into(),
            Payload {
                msg: snapshot.as_bytes(),
                aad: b"openk/v1/share-link",
            },
        )
        .expect("seal");
    let mut blob = vec![1u8];
    blob.extend_from_slice(&nonce);
    blob.extend_from_slice(&sealed);
    let b64 = base64::engine::general_purpose::STANDARD.encode(&blob);
    let url = fake_server(format!("{{\"ciphertext\":\"{b64}\"}}"));
    format!(
        "{url}/s/AAAAAAAAAAAAAAAAAAAAAA#{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(key)
    )
}

// Strings in a link are the sender's data: terminal controls and bidi
// overrides never reach the terminal (JSON escapes them); a link whose
// server answers garbage does not decrypt (exit 1).
#[test]
fn strings_from_a_link_are_data() {
    let r = TestEnv::new();
    let snapshot = serde_json::json!({
        "format": 1,
        "name": "\u{1b}]0;pwned\u{7}Evil\u{1b}[2J",
        "kind": "login\u{1b}[31m",
        "fields": [
            {"label": "pass\u{202e}word", "value": "s3cret\u{1b}[8m\nline two\u{9b}1m", "kind": "secret", "concealed": true}
        ]
    })
    .to_string();
    let link = hostile_link(&snapshot);
    let out = open_cmd(&r, &link).stdout();
    assert!(
        out.contains("Evil") && out.contains("s3cret") && out.contains("line two"),
        "{out:?}"
    );
    for bad in ['\u{1b}', '\u{7}', '\u{202e}', '\u{9b}'] {
        assert!(!out.contains(bad), "{bad:?} reached the terminal: {out:?}");
    }
    let v = r.cmd(["--json", "share", "open", "-"]).stdin(link).json();
    assert_eq!(
        v["name"], "\u{1b}]0;pwned\u{7}Evil\u{1b}[2J",
        "JSON keeps the data, escaped"
    );

    // A newer snapshot format: says to update.
    let newer = hostile_link(r#"{"format": 2, "name": "x", "kind": "login", "fields": []}"#);
    open_cmd(&r, &newer).code(2).stderr_has("newer OpenK");
    // A ciphertext that is not one: does not decrypt.
    let url = fake_server("{\"ciphertext\":\"AQID\"}".to_owned());
    let garbage = format!("{url}/s/AAAAAAAAAAAAAAAAAAAAAA#{}", "A".repeat(43));
    open_cmd(&r, &garbage)
        .code(1)
        .stderr_has("does not decrypt");
}
