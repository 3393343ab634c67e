//! Local state is authenticated: a vault directory in a synced or shared
//! folder edited with `sqlite3` cannot steer the client. A tampered server
//! URL, device id or public key is refused (exit 1, "tampered", naming the
//! part) before any request, and a password the vault does not know sends
//! nothing to the server its file names; a redirect to another host is not
//! followed.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::sync::Serve;
use crate::util::{self, TestEnv};

const EMAIL: &str = "state@example.org";

fn sqlite(env: &TestEnv, sql: &str) -> Option<String> {
    if !util::have("sqlite3") {
        eprintln!("skipping: the sqlite3 CLI is not installed");
        return None;
    }
    Some(util::external(
        "sqlite3",
        &[env.db().to_str().expect("utf-8 path"), sql],
    ))
}

/// A listener on another port that counts connections and answers each
/// with `reply` (an HTTP response).
fn counting_listener(reply: &'static str) -> (u16, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let hits = Arc::new(AtomicUsize::new(0));
    let counter = hits.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut s) = stream else { continue };
            counter.fetch_add(1, Ordering::SeqCst);
            let mut buf = [0u8; 4096];
            let _ = s.read(&mut buf);
            let _ = s.write_all(reply.replace("{port}", "0").as_bytes());
        }
    });
    (port, hits)
}

fn registered(server: &Serve) -> TestEnv {
    let env = TestEnv::init();
    env.cmd(["register", "--server", &server.url(), "--email", EMAIL])
        .ok();
    env
}

#[test]
fn a_tampered_server_url_sends_nothing_to_the_other_host() {
    let tmp = tempfile::tempdir().expect("tmp");
    let server = Serve::start(tmp.path());
    let env = registered(&server);
    let (other, hits) = counting_listener("HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}");
    let Some(_) = sqlite(
        &env,
        &format!(
            "UPDATE meta SET value = CAST(replace(CAST(value AS TEXT), '127.0.0.1:{}', '127.0.0.1:{other}') AS BLOB) WHERE key = 'remote';",
            server.port
        ),
    ) else {
        return;
    };
    assert!(
        sqlite(
            &env,
            "SELECT CAST(value AS TEXT) FROM meta WHERE key = 'remote';"
        )
        .expect("read")
        .contains(&format!(":{other}")),
        "the URL was edited"
    );
    for args in [&["status"][..], &["sync"], &["login"]] {
        env.cmd(args.iter().copied())
            .code(1)
            .stderr_has("tampered")
            .stderr_has("remote record");
    }
    // A password the vault does not know (say, one changed on another
    // device) cannot be checked locally, so the record cannot be either:
    // nothing goes to its server unless the user names that server.
    let real = server.url();
    for args in [
        &["status"][..],
        &["sync"],
        &["ls"],
        &["login"],
        &["login", "--server", &real],
    ] {
        env.cmd(args.iter().copied())
            .env("OPENK_PASSWORD", "a-new-master-password-from-elsewhere")
            .code(3)
            .stderr_has("openk login --server");
    }
    assert_eq!(
        hits.load(Ordering::SeqCst),
        0,
        "nothing reached the other host"
    );
}

#[test]
fn a_tampered_device_id_or_public_key_is_refused() {
    let env = TestEnv::init();
    let Some(before) = sqlite(
        &env,
        "SELECT CAST(value AS TEXT) FROM meta WHERE key = 'header';",
    ) else {
        return;
    };
    let header: serde_json::Value = serde_json::from_str(before.trim()).expect("header json");
    for (field, value) in [
        (
            "device_id",
            serde_json::json!("01890000-0000-7000-8000-000000000000"),
        ),
        (
            "public_ed25519",
            serde_json::json!("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="),
        ),
        ("created_at", serde_json::json!(1)),
    ] {
        let mut h = header.clone();
        h[field] = value;
        let sql = format!(
            "UPDATE meta SET value = CAST('{}' AS BLOB) WHERE key = 'header';",
            h.to_string().replace('\'', "''")
        );
        sqlite(&env, &sql).expect("edit");
        env.cmd(["ls"])
            .code(1)
            .stderr_has("tampered")
            .stderr_has("vault header");
        let sql = format!(
            "UPDATE meta SET value = CAST('{}' AS BLOB) WHERE key = 'header';",
            before.trim().replace('\'', "''")
        );
        sqlite(&env, &sql).expect("restore");
        env.cmd(["ls"]).ok();
    }
}

#[test]
fn a_stripped_mac_is_tampering_not_an_old_vault() {
    let env = TestEnv::init();
    let Some(before) = sqlite(
        &env,
        "SELECT CAST(value AS TEXT) FROM meta WHERE key = 'header';",
    ) else {
        return;
    };
    let mut h: serde_json::Value = serde_json::from_str(before.trim()).expect("header json");
    h.as_object_mut().expect("object").remove("mac");
    sqlite(
        &env,
        &format!(
            "UPDATE meta SET value = CAST('{}' AS BLOB) WHERE key = 'header';",
            h.to_string().replace('\'', "''")
        ),
    )
    .expect("edit");
    env.cmd(["ls"]).code(1).stderr_has("tampered");
}

#[test]
fn a_redirect_to_another_host_is_not_followed() {
    let (other, hits) = counting_listener("HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}");
    let location: &'static str = Box::leak(
        format!(
            "HTTP/1.1 307 Temporary Redirect\r\nlocation: http://127.0.0.1:{other}/v1/auth/prelogin\r\ncontent-length: 0\r\n\r\n"
        )
        .into_boxed_str(),
    );
    let (first, first_hits) = counting_listener(location);
    let donor = TestEnv::init();
    let env = TestEnv::new();
    env.cmd([
        "login",
        "--server",
        &format!("http://127.0.0.1:{first}"),
        "--email",
        EMAIL,
        "--secret-key",
        donor.secret_key(),
    ])
    .fails();
    assert!(
        first_hits.load(Ordering::SeqCst) >= 1,
        "the first host was asked"
    );
    assert_eq!(
        hits.load(Ordering::SeqCst),
        0,
        "the redirect was not followed"
    );
}

// The sync state steers what the client pulls and which manifests it accepts: a lowered cursor or counter, another manifest id, edited server lines or a stripped MAC in vault.db are tampering (exit 1, the part named); the original row opens again.
#[test]
fn a_tampered_cursor_counter_or_manifest_id_is_refused() {
    let tmp = tempfile::tempdir().expect("tmp");
    let server = Serve::start(tmp.path());
    let env = registered(&server);
    env.cmd(["add", "login", "--name", "Synced", "--username", "u"])
        .ok();
    env.cmd(["sync"]).ok();
    // quote() gives SQL literals (X'..' or NULL) to put the row back with.
    let Some(row) = sqlite(
        &env,
        "SELECT quote(cursor) || ',' || quote(counter) || ',' || quote(manifest_id) || ',' \
         || quote(lines) || ',' || quote(mac) FROM sync_state;",
    ) else {
        return;
    };
    let row = row.trim().to_owned();
    let parts: Vec<&str> = row.split(',').collect();
    assert_eq!(parts.len(), 5, "{row}");
    assert!(
        parts[0] != "0" && parts[1] != "0",
        "the vault synced: {row}"
    );
    assert!(parts[4] != "NULL", "the row has a MAC: {row}");
    let restore = format!(
        "UPDATE sync_state SET cursor = {}, counter = {}, manifest_id = {}, lines = {}, mac = {};",
        parts[0], parts[1], parts[2], parts[3], parts[4]
    );
    for edit in [
        "UPDATE sync_state SET cursor = 0;",
        "UPDATE sync_state SET counter = counter - 1;",
        "UPDATE sync_state SET manifest_id = zeroblob(32);",
        "UPDATE sync_state SET lines = x'00';",
        "UPDATE sync_state SET mac = NULL;",
    ] {
        sqlite(&env, edit).expect("edit");
        for args in [&["ls"][..], &["sync"], &["status"]] {
            env.cmd(args)
                .code(1)
                .stderr_has("tampered")
                .stderr_has("sync state");
        }
        sqlite(&env, &restore).expect("restore");
        env.cmd(["ls"]).ok();
    }
    env.cmd(["sync"]).ok();
}
