//! `openk key`: rotating the account key, a vault key and the Secret Key
//! with the real binary against a real server (a second device takes each
//! rotation and reads every item; the old Secret Key stops working), and
//! named keys end to end (encrypt, rotate, decrypt across versions, retire,
//! tamper, sign and verify, derive, on two devices).

use serde_json::Value as Json;

use crate::sync::{Serve, registered};
use crate::util::TestEnv;

const EMAIL: &str = "keys@example.org";

/// Device B of `a`'s account, logged in with `secret_key`.
fn device(a: &TestEnv, server: &Serve, secret_key: &str, name: &str) -> TestEnv {
    let b = TestEnv::new();
    b.cmd([
        "login",
        "--server",
        &server.url(),
        "--email",
        EMAIL,
        "--secret-key",
        secret_key,
        "--device-name",
        name,
    ])
    .ok();
    b.run(&["sync"]);
    let _ = a;
    b
}

/// Every item and its password, as `env` reads them.
fn all_items(env: &TestEnv) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for name in env.ls_names(&[]) {
        let pw = env.run(&["get", &name]).trim_end().to_owned();
        out.push((name, pw));
    }
    out
}

fn expected() -> Vec<(String, String)> {
    vec![
        ("Bank".to_owned(), "bank-pw-1".to_owned()),
        ("Mail".to_owned(), "mail-pw-1".to_owned()),
        ("Shop".to_owned(), "shop-pw-1".to_owned()),
    ]
}

// Each rotation on device A; device B (another --home) takes it and reads
// every item; without --yes and without a terminal nothing rotates.
#[test]
fn rotations_reach_a_second_device_and_the_old_secret_key_stops_working() {
    let tmp = tempfile::tempdir().expect("tmp");
    let server = Serve::start(tmp.path());
    let a = registered(&server, EMAIL);
    for (name, pw) in expected() {
        a.add(&["login", "--name", &name, "--password", &pw]);
    }
    let b = device(&a, &server, a.secret_key(), "laptop");
    assert_eq!(all_items(&b), expected());

    // No terminal, no --yes: refused, nothing changes.
    for args in [
        &["key", "rotate", "--account"][..],
        &["key", "rotate", "--vault", "Personal"][..],
        &["key", "rotate", "--secret-key"][..],
    ] {
        a.cmd(args).code(2).stderr_has("needs confirmation");
    }
    a.cmd(["key", "rotate"]).code(2);
    b.run(&["sync"]);

    // The account key.
    let out = a.json(&["key", "rotate", "--account", "--yes"]);
    assert_eq!(out["rotated"], "account", "{out}");
    assert_eq!(out["on_server"], true, "{out}");
    assert_eq!(all_items(&a), expected());
    // B's session ended; it logs in again (same password and Secret Key).
    b.cmd(["sync"]).code(3).stderr_has("openk login");
    b.cmd(["login", "--server", &server.url()]).ok();
    assert_eq!(all_items(&b), expected());
    b.run(&["sync"]);

    // A vault key.
    let out = a.json(&["key", "rotate", "--vault", "Personal", "--yes"]);
    assert_eq!(out["rotated"], "vault", "{out}");
    assert_eq!(out["vault"], "Personal", "{out}");
    a.add(&["login", "--name", "Zoo", "--password", "zoo-pw-1"]);
    b.run(&["sync"]);
    let mut want = expected();
    want.push(("Zoo".to_owned(), "zoo-pw-1".to_owned()));
    assert_eq!(all_items(&b), want);
    assert_eq!(all_items(&a), want);

    // The Secret Key: a new Emergency Kit, shown once.
    let old_sk = a.secret_key().to_owned();
    let kit = tmp.path().join("new-kit.txt");
    let out = a
        .cmd(["--json", "key", "rotate", "--secret-key", "--yes", "--kit"])
        .arg(&kit)
        .json();
    let new_sk = out["secret_key"].as_str().expect("secret_key").to_owned();
    assert_ne!(new_sk, old_sk);
    assert!(
        out["text"].as_str().expect("kit text").contains(&new_sk),
        "{out}"
    );
    assert_eq!(out["account_id"], a.account_id());
    let written = std::fs::read_to_string(&kit).expect("kit written");
    assert!(written.contains(&new_sk) && written.contains("Emergency Kit"));
    // A still opens with its password (the new Secret Key is in its file).
    assert_eq!(all_items(&a), want);
    assert_eq!(a.json(&["kit"])["secret_key"], new_sk.as_str());

    // A new device: the old Secret Key fails, the new one works.
    let c = TestEnv::new();
    c.cmd([
        "login",
        "--server",
        &server.url(),
        "--email",
        EMAIL,
        "--secret-key",
        &old_sk,
        "--device-name",
        "old-kit",
    ])
    .code(3);
    let c = device(&a, &server, &new_sk, "new-kit");
    assert_eq!(all_items(&c), want);

    // B: its session ended; the old Secret Key is refused, the new one adopted.
    b.cmd(["sync"]).code(3);
    b.cmd(["login", "--server", &server.url()]).code(3);
    b.cmd(["login", "--server", &server.url(), "--secret-key", &new_sk])
        .ok();
    assert_eq!(all_items(&b), want);
    b.cmd(["ls"]).ok().stderr_lacks("changed on another device");

    // A vault that is not connected to a server rotates locally.
    let local = TestEnv::init();
    local.add(&["login", "--name", "Solo", "--password", "solo-pw"]);
    let out = local.json(&["key", "rotate", "--account", "--yes"]);
    assert_eq!(out["on_server"], false, "{out}");
    assert_eq!(local.run(&["get", "Solo"]), "solo-pw\n");
}

/// Writes `data` through `openk key encrypt NAME` (hex) and returns the envelope text.
fn encrypt(env: &TestEnv, name: &str, data: &[u8]) -> String {
    env.cmd(["key", "encrypt", name])
        .stdin(data.to_vec())
        .stdout()
}

fn decrypt(env: &TestEnv, name: &str, envelope: &str) -> crate::util::Run {
    env.cmd(["key", "decrypt", name])
        .stdin(envelope.as_bytes().to_vec())
        .output()
}

fn envelope_version(hex_text: &str) -> u32 {
    let bytes = hex::decode(hex_text.trim()).expect("hex");
    assert_eq!(&bytes[..4], b"OKE1");
    u32::from_be_bytes(bytes[21..25].try_into().expect("4 bytes"))
}

// encrypt with v1, rotate, v1 still decrypts, new encryptions use v2;
// --min-version 2 retires v1 (a clear error); a tampered envelope is
// refused; key bytes are shown only by --export with --yes.
#[test]
fn named_keys_encrypt_rotate_retire_and_refuse_tampering() {
    let env = TestEnv::init();
    let made = env.json(&["key", "create", "app-data", "--type", "xchacha20"]);
    assert_eq!(made["type"], "xchacha20", "{made}");
    assert_eq!(made["current_version"], 1, "{made}");
    env.cmd(["key", "create", "app-data", "--type", "aes256-gcm"])
        .code(2)
        .stderr_has("already exists");
    env.cmd(["key", "create", "x", "--type", "rsa"]).code(2);

    let env1 = encrypt(&env, "app-data", b"secret one\n");
    assert_eq!(envelope_version(&env1), 1);
    assert_eq!(decrypt(&env, "app-data", &env1).stdout, "secret one\n");

    let rotated = env.json(&["key", "rotate", "app-data", "--vault", "Personal"]);
    assert_eq!(rotated["current_version"], 2, "{rotated}");
    env.cmd(["key", "rotate", "app-data", "--account"]).code(2);
    env.cmd(["key", "rotate", "--account", "--secret-key"])
        .code(2);
    let env2 = encrypt(&env, "app-data", b"secret two");
    assert_eq!(envelope_version(&env2), 2);
    assert_eq!(decrypt(&env, "app-data", &env1).stdout, "secret one\n");
    assert_eq!(decrypt(&env, "app-data", &env2).stdout, "secret two");
    // With --password-stdin the password is the first line, the data the rest.
    let piped = env
        .cmd(["--password-stdin", "key", "encrypt", "app-data"])
        .stdin(format!("{}\npiped data", env.password()).into_bytes())
        .stdout();
    assert_eq!(decrypt(&env, "app-data", &piped).stdout, "piped data");
    // Base64 and raw envelopes decrypt too.
    let b64 = env
        .cmd(["key", "encrypt", "app-data", "--base64"])
        .stdin(b"b64".to_vec())
        .stdout();
    assert_eq!(decrypt(&env, "app-data", &b64).stdout, "b64");

    // Tampered: one bit of the ciphertext, or the version in the header.
    let mut bytes = hex::decode(env2.trim()).expect("hex");
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    let run = decrypt(&env, "app-data", &hex::encode(&bytes));
    assert_eq!(run.code, Some(1), "{run}");
    assert!(run.stderr.contains("does not open"), "{run}");
    assert!(run.stdout.is_empty());
    let mut bytes = hex::decode(env2.trim()).expect("hex");
    bytes[24] = 1;
    let run = decrypt(&env, "app-data", &hex::encode(&bytes));
    assert_eq!(run.code, Some(1), "{run}");
    decrypt(&env, "app-data", "not an envelope").assert_no_panic();
    // Another key's envelope.
    env.run(&["key", "create", "other", "--type", "xchacha20"]);
    let run = decrypt(&env, "other", &env1);
    assert_eq!(run.code, Some(1), "{run}");
    assert!(run.stderr.contains("another key"), "{run}");

    // Retire v1.
    let retired = env.json(&["key", "rotate", "app-data", "--min-version", "2"]);
    assert_eq!(retired["min_version"], 2, "{retired}");
    assert_eq!(retired["versions"][0]["retired"], true, "{retired}");
    let run = decrypt(&env, "app-data", &env1);
    assert_eq!(run.code, Some(1), "{run}");
    assert!(
        run.stderr
            .contains("version 1 of key \"app-data\" is retired"),
        "{run}"
    );
    assert_eq!(decrypt(&env, "app-data", &env2).stdout, "secret two");
    env.cmd(["key", "rotate", "app-data", "--min-version", "3"])
        .code(2)
        .stderr_has("current version");

    // ls / show: type, versions, min version, last used; never the bytes.
    let ls = env.json(&["key", "ls"]);
    let keys = ls["keys"].as_array().expect("keys");
    assert_eq!(keys.len(), 2, "{ls}");
    assert_eq!(keys[0]["name"], "app-data");
    assert!(keys[0]["last_used"].as_i64().is_some(), "{ls}");
    let shown = env.run(&["key", "show", "app-data"]);
    assert!(
        shown.contains("min version  2") && shown.contains("retired"),
        "{shown}"
    );
    // The item itself: listed as a key; its material never shown or printed.
    let item = env.json(&["show", "app-data", "--reveal"]);
    assert!(!item.to_string().contains("\"secret\""), "{item}");
    env.cmd(["get", "app-data"]).code(2).stderr_has("--export");
    env.cmd(["edit", "app-data", "--field", "type=ed25519"])
        .code(2)
        .stderr_has("openk key rotate");
    // --export: refused without a terminal unless --yes.
    env.cmd(["key", "show", "app-data", "--export"])
        .code(2)
        .stderr_has("needs confirmation");
    let ex = env.json(&["key", "show", "app-data", "--export", "--yes"]);
    let versions = ex["export"].as_array().expect("export");
    assert_eq!(versions.len(), 2, "{ex}");
    assert_eq!(versions[1]["key"].as_str().expect("hex").len(), 64);
}

// Ed25519 and HMAC keys sign and verify across a rotation; the public key
// verifies elsewhere; derive is deterministic per version and context; a
// key synced to a second device works there.
#[test]
fn named_keys_sign_verify_derive_and_sync_to_another_device() {
    let tmp = tempfile::tempdir().expect("tmp");
    let server = Serve::start(tmp.path());
    let a = registered(&server, EMAIL);
    a.run(&["key", "create", "signer", "--type", "ed25519"]);
    a.run(&["key", "create", "mac", "--type", "hmac-sha256"]);
    a.run(&["key", "create", "kx", "--type", "x25519"]);
    a.run(&["key", "create", "data", "--type", "aes256-gcm"]);

    let sig = a
        .cmd(["key", "sign", "signer"])
        .stdin(b"message".to_vec())
        .stdout();
    assert_eq!(sig.trim().len(), 128, "{sig}");
    let pk = a.run(&["key", "public", "signer"]);
    let vk = ed25519_dalek::VerifyingKey::from_bytes(
        &hex::decode(pk.trim()).expect("hex").try_into().expect("32"),
    )
    .expect("public key");
    let s =
        ed25519_dalek::Signature::from_slice(&hex::decode(sig.trim()).expect("hex")).expect("sig");
    ed25519_dalek::Verifier::verify(&vk, b"message", &s).expect("verifies outside openk");
    a.cmd(["key", "public", "mac"])
        .code(2)
        .stderr_has("ed25519 or x25519");
    assert_eq!(a.run(&["key", "public", "kx"]).trim().len(), 64);

    let mac = a
        .cmd(["key", "mac", "mac"])
        .stdin(b"message".to_vec())
        .stdout();
    assert_eq!(mac.trim().len(), 64);
    let d1 = a.run(&["key", "derive", "mac", "--context", "app/v1/session"]);
    assert_eq!(
        d1,
        a.run(&["key", "derive", "mac", "--context", "app/v1/session"])
    );
    assert_ne!(
        d1,
        a.run(&["key", "derive", "mac", "--context", "app/v1/other"])
    );
    let long = a.run(&[
        "key",
        "derive",
        "mac",
        "--context",
        "c",
        "--length",
        "64",
        "--base64",
    ]);
    assert_eq!(long.trim().len(), 88);
    a.cmd(["key", "derive", "signer", "--context", "c"]).code(2);
    let envelope = encrypt(&a, "data", b"for the laptop");

    // Rotate both; the old signature and MAC still verify (as version 1).
    a.run(&["key", "rotate", "signer"]);
    a.run(&["key", "rotate", "mac"]);
    for (key, sig) in [("signer", &sig), ("mac", &mac)] {
        let out = a
            .cmd(["--json", "key", "verify", key, "--signature", sig.trim()])
            .stdin(b"message".to_vec())
            .json();
        assert_eq!(out["version"], 1, "{out}");
        a.cmd(["key", "verify", key, "--signature", sig.trim()])
            .stdin(b"messag3".to_vec())
            .code(1)
            .stderr_has("does not verify");
    }
    assert_ne!(
        d1,
        a.run(&["key", "derive", "mac", "--context", "app/v1/session"])
    );
    assert_eq!(
        d1,
        a.run(&[
            "key",
            "derive",
            "mac",
            "--context",
            "app/v1/session",
            "--key-version",
            "1"
        ])
    );
    // Retired: the old signature is refused, saying why.
    a.run(&["key", "rotate", "signer", "--min-version", "2"]);
    a.cmd(["key", "verify", "signer", "--signature", sig.trim()])
        .stdin(b"message".to_vec())
        .code(1)
        .stderr_has("is retired");

    // Device B: the keys came with the sync; B decrypts A's envelope.
    let b = device(&a, &server, a.secret_key(), "laptop");
    let keys: Vec<Json> = b.json(&["key", "ls"])["keys"]
        .as_array()
        .expect("keys")
        .clone();
    assert_eq!(keys.len(), 4);
    assert_eq!(decrypt(&b, "data", &envelope).stdout, "for the laptop");
    let shown = b.json(&["key", "show", "signer"]);
    assert_eq!(shown["min_version"], 2, "{shown}");
}

// A named key in a shared vault is every member's: a member (viewer)
// decrypts what the owner encrypted and encrypts for the owner, but cannot
// rotate it (a viewer does not write).
#[test]
fn a_named_key_in_a_shared_vault_is_shared_like_any_item() {
    let tmp = tempfile::tempdir().expect("tmp");
    let server = Serve::start(tmp.path());
    let ana = registered(&server, "ana-keys@example.org");
    let ben = registered(&server, "ben-keys@example.org");
    ana.run(&["vault", "create", "Team"]);
    ana.run(&[
        "key",
        "create",
        "team-data",
        "--type",
        "aes256-gcm",
        "--vault",
        "Team",
    ]);
    let envelope = encrypt(&ana, "team-data", b"for the team");
    let fp = ben.json(&["status"])["fingerprint"]
        .as_str()
        .expect("fingerprint")
        .to_owned();
    ana.cmd([
        "vault",
        "invite",
        "Team",
        "ben-keys@example.org",
        "--role",
        "viewer",
        "--fingerprint",
        &fp,
    ])
    .ok();
    let invites = ben.json(&["vault", "invitations"]);
    let id = invites[0]["vault_id"].as_str().expect("id").to_owned();
    ben.run(&["vault", "accept", &id]);
    ben.run(&["sync"]);
    let keys = ben.json(&["key", "ls", "--vault", "Team"]);
    assert_eq!(keys["keys"][0]["name"], "team-data", "{keys}");
    assert_eq!(decrypt(&ben, "team-data", &envelope).stdout, "for the team");
    let back = encrypt(&ben, "team-data", b"from ben");
    assert_eq!(decrypt(&ana, "team-data", &back).stdout, "from ben");
    ben.cmd(["key", "rotate", "team-data"])
        .fails()
        .stderr_has("viewer");
    // The owner rotates; the member takes the new version at its next sync.
    ana.run(&["key", "rotate", "team-data"]);
    ben.run(&["sync"]);
    let v2 = encrypt(&ben, "team-data", b"v2");
    assert_eq!(envelope_version(&v2), 2);
    assert_eq!(decrypt(&ana, "team-data", &v2).stdout, "v2");
}
