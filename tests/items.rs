//! Item commands: add, ls, show, get, edit, history, rm, restore, purge,
//! search, totp, and how ITEM arguments are resolved.

use std::collections::BTreeMap;
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::Value as Json;

use crate::util::{self, TestEnv, names, unique_prefix};

/// RFC 6238's usual example seed ("Hello!\xDE\xAD\xBE\xEF" in base32).
const TOTP_SEED: &str = "JBSWY3DPEHPK3PXP";

/// The fields of a `show --json` item: label → (value, concealed); repeated
/// labels get their values joined with a newline.
fn fields(item: &Json) -> BTreeMap<String, (Json, bool)> {
    let mut out: BTreeMap<String, (Json, bool)> = BTreeMap::new();
    for f in item["fields"].as_array().expect("fields array") {
        let label = f["label"].as_str().expect("label").to_owned();
        let concealed = f["concealed"].as_bool().expect("concealed");
        let value = f["value"].clone();
        out.entry(label)
            .and_modify(|(v, _)| {
                *v = Json::String(format!(
                    "{}\n{}",
                    v.as_str().unwrap_or_default(),
                    value.as_str().unwrap_or_default()
                ));
            })
            .or_insert((value, concealed));
    }
    out
}

fn field<'a>(fields: &'a BTreeMap<String, (Json, bool)>, label: &str) -> &'a (Json, bool) {
    fields
        .get(label)
        .unwrap_or_else(|| panic!("no field {label:?} in {fields:?}"))
}

fn strings(v: &Json) -> Vec<String> {
    v.as_array()
        .unwrap_or_else(|| panic!("not an array: {v}"))
        .iter()
        .map(|s| s.as_str().expect("a string").to_owned())
        .collect()
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs()
}

/// RFC 6238 TOTP (SHA-1, 6 digits) of `key` for a 30 s step.
fn totp_code(key: &[u8], step: u64) -> String {
    use hmac::Mac;
    let mut mac = hmac::Hmac::<sha1::Sha1>::new_from_slice(key).expect("any key length");
    mac.update(&step.to_be_bytes());
    let hash = mac.finalize().into_bytes();
    let offset = usize::from(hash[19] & 0x0f);
    let bin = u32::from_be_bytes([
        hash[offset] & 0x7f,
        hash[offset + 1],
        hash[offset + 2],
        hash[offset + 3],
    ]);
    format!("{:06}", bin % 1_000_000)
}

/// The codes valid at some time between `from` and `to` (Unix seconds).
fn totp_codes_between(from: u64, to: u64) -> Vec<String> {
    let key = b"Hello!\xDE\xAD\xBE\xEF";
    (from / 30..=to / 30)
        .map(|step| totp_code(key, step))
        .collect()
}

// Our own TOTP helper matches RFC 6238 appendix B (SHA-1, T = 59 s: 94287082, whose last 6 digits are 287082).
#[test]
fn totp_reference_vector() {
    let code = totp_code(b"12345678901234567890", 59 / 30);
    assert_eq!(code, "287082");
}

// A login takes every login flag (username, password, 2 URLs, TOTP, tags, folder, favourite, text and secret fields).
#[test]
fn add_login_with_every_flag() {
    let env = TestEnv::init();
    let id = env.add(&[
        "login",
        "--name",
        "GitHub",
        "--username",
        "octocat",
        "--password",
        "gh-pass-1",
        "--url",
        "https://github.com",
        "--url",
        "https://api.github.com",
        "--totp",
        TOTP_SEED,
        "--tag",
        "a",
        "--tag",
        "b",
        "--folder",
        "F",
        "--favorite",
        "--field",
        "Team=blue",
        "--secret-field",
        "PIN=1234",
    ]);
    let item = env.json(&["show", &id, "--reveal"]);
    assert_eq!(item["id"], id.as_str());
    assert_eq!(item["kind"], "login");
    assert_eq!(item["name"], "GitHub");
    assert_eq!(item["subtitle"], "octocat");
    assert_eq!(item["folder"], "F");
    assert_eq!(item["favorite"], true);
    assert_eq!(item["has_totp"], true);
    assert_eq!(item["version"], 1);
    assert_eq!(strings(&item["tags"]), ["a", "b"]);
    assert_eq!(
        strings(&item["urls"]),
        ["https://github.com", "https://api.github.com"]
    );
    let f = fields(&item);
    assert_eq!(field(&f, "username"), &(Json::from("octocat"), false));
    assert_eq!(field(&f, "password"), &(Json::from("gh-pass-1"), true));
    assert_eq!(field(&f, "PIN"), &(Json::from("1234"), true));
    assert_eq!(field(&f, "Team"), &(Json::from("blue"), false));
    assert_eq!(
        field(&f, "url").0,
        Json::from("https://github.com\nhttps://api.github.com")
    );
    let (totp, concealed) = field(&f, "totp");
    assert!(*concealed, "the TOTP seed is concealed");
    assert!(totp.as_str().expect("totp").contains(TOTP_SEED), "{totp}");
    // The plain `add` message names the kind, the name and the id.
    let run = env.cmd(["add", "login", "--name", "Plain"]).ok();
    run.stdout_has("Added login \"Plain\"");
}

// `add login --generate` stores a 20-character password; --length and --words change its shape.
#[test]
fn add_login_with_generated_passwords() {
    let env = TestEnv::init();
    env.add(&["login", "--name", "Gen", "--generate"]);
    env.add(&["login", "--name", "Gen32", "--generate", "--length", "32"]);
    env.add(&["login", "--name", "Words", "--generate", "--words", "5"]);
    let pw = env.run(&["get", "Gen"]);
    assert_eq!(pw.trim_end_matches('\n').chars().count(), 20, "{pw:?}");
    let pw = env.run(&["get", "Gen32"]);
    assert_eq!(pw.trim_end_matches('\n').chars().count(), 32, "{pw:?}");
    let phrase = env.run(&["get", "Words"]);
    let words: Vec<&str> = phrase.trim_end().split('-').collect();
    assert_eq!(words.len(), 5, "{phrase:?}");
    assert!(
        words
            .iter()
            .all(|w| !w.is_empty() && w.chars().all(|c| c.is_ascii_lowercase())),
        "{phrase:?}"
    );
    env.cmd([
        "add",
        "login",
        "--name",
        "Both",
        "--generate",
        "--password",
        "x",
    ])
    .code(2)
    .stderr_has("--generate");
    env.cmd(["add", "card", "--name", "NoGen", "--generate"])
        .code(2)
        .stderr_has("--generate");
}

// Note (notes from stdin), card, identity and api-key items store their kind's fields and conceal the secret ones.
#[test]
fn add_note_card_identity_api_key() {
    let env = TestEnv::init();
    let note = env
        .cmd(["--json", "add", "note", "--name", "Diary", "--notes", "-"])
        .stdin("line one\nline two\n")
        .json();
    assert_eq!(note["kind"], "note");
    assert_eq!(env.run(&["get", "Diary"]), "line one\nline two\n");
    assert_eq!(env.run(&["get", "Diary", "notes"]), "line one\nline two\n");

    env.add(&[
        "card",
        "--name",
        "Visa",
        "--cardholder",
        "J Doe",
        "--number",
        "4111111111111111",
        "--expiry",
        "08/29",
        "--cvv",
        "737",
        "--pin",
        "9876",
    ]);
    let card = env.json(&["show", "Visa", "--reveal"]);
    assert_eq!(card["kind"], "card");
    assert_eq!(card["subtitle"], "•••• 1111");
    let f = fields(&card);
    assert_eq!(field(&f, "cardholder"), &(Json::from("J Doe"), false));
    assert_eq!(field(&f, "number"), &(Json::from("4111111111111111"), true));
    assert_eq!(field(&f, "expiry"), &(Json::from("08/29"), false));
    assert_eq!(field(&f, "cvv"), &(Json::from("737"), true));
    assert_eq!(field(&f, "pin"), &(Json::from("9876"), true));
    assert_eq!(env.run(&["get", "Visa"]), "4111111111111111\n");
    assert_eq!(env.run(&["get", "Visa", "cvv"]), "737\n");

    env.add(&[
        "identity",
        "--name",
        "Me",
        "--full-name",
        "Jane Doe",
        "--email",
        "jane@example.com",
        "--phone",
        "+1 555 0100",
        "--address",
        "1 Main St",
        "--birthday",
        "1990-01-01",
        "--company",
        "ACME",
    ]);
    let me = env.json(&["show", "Me"]);
    assert_eq!(me["kind"], "identity");
    assert_eq!(me["subtitle"], "jane@example.com");
    let f = fields(&me);
    for (label, value) in [
        ("full name", "Jane Doe"),
        ("email", "jane@example.com"),
        ("phone", "+1 555 0100"),
        ("address", "1 Main St"),
        ("birthday", "1990-01-01"),
        ("company", "ACME"),
    ] {
        assert_eq!(field(&f, label).0, Json::from(value), "{label}");
    }
    assert_eq!(env.run(&["get", "Me"]), "Jane Doe\n");

    env.add(&[
        "api-key",
        "--name",
        "Stripe",
        "--username",
        "svc",
        "--key",
        "sk-live-abc",
        "--url",
        "https://api.stripe.example",
    ]);
    let api = env.json(&["show", "Stripe"]);
    assert_eq!(api["kind"], "api-key");
    assert_eq!(strings(&api["urls"]), ["https://api.stripe.example"]);
    assert_eq!(field(&fields(&api), "key"), &(Json::Null, true));
    assert_eq!(env.run(&["get", "Stripe"]), "sk-live-abc\n");
    assert_eq!(env.run(&["get", "Stripe", "username"]), "svc\n");
}

// ssh-key --generate makes an OpenSSH Ed25519 pair; --private-key-file imports one with the same public key.
#[test]
fn add_ssh_keys_generated_and_imported() {
    let env = TestEnv::init();
    env.add(&[
        "ssh-key",
        "--name",
        "deploy",
        "--generate",
        "--comment",
        "ci@example",
    ]);
    let private = env.run(&["get", "deploy", "private key"]);
    assert!(
        private.starts_with("-----BEGIN OPENSSH PRIVATE KEY-----\n"),
        "{private}"
    );
    assert!(
        private.contains("-----END OPENSSH PRIVATE KEY-----"),
        "{private}"
    );
    assert_eq!(
        env.run(&["get", "deploy"]),
        private,
        "private key is the primary field"
    );
    let public = env.run(&["get", "deploy", "public key"]);
    assert!(public.starts_with("ssh-ed25519 "), "{public}");
    let fingerprint = env.run(&["get", "deploy", "fingerprint"]);
    assert!(fingerprint.starts_with("SHA256:"), "{fingerprint}");
    let shown = env.json(&["show", "deploy"]);
    assert_eq!(shown["subtitle"].as_str(), Some(fingerprint.trim_end()));
    assert_eq!(field(&fields(&shown), "private key"), &(Json::Null, true));

    let key_file = env.root().join("id_test");
    let expected_public = if util::have("ssh-keygen") {
        util::external(
            "ssh-keygen",
            &[
                "-q",
                "-t",
                "ed25519",
                "-N",
                "",
                "-C",
                "test@host",
                "-f",
                key_file.to_str().expect("utf-8"),
            ],
        );
        std::fs::read_to_string(key_file.with_extension("pub")).expect("read .pub")
    } else {
        eprintln!("ssh-keygen not found: re-importing the key exported from `deploy`");
        std::fs::write(&key_file, &private).expect("write key");
        public.clone()
    };
    env.cmd(["add", "ssh-key", "--name", "imported", "--private-key-file"])
        .arg(&key_file)
        .ok();
    let imported_public = env.run(&["get", "imported", "public key"]);
    // Same key type, key and comment as the .pub file.
    assert_eq!(imported_public.trim_end(), expected_public.trim_end());
    let imported_private = env.run(&["get", "imported", "private key"]);
    assert_eq!(
        imported_private.trim_end(),
        std::fs::read_to_string(&key_file)
            .expect("read key")
            .trim_end()
    );

    // An encrypted key is kept as it is, with its passphrase in a secret field.
    if util::have("ssh-keygen") {
        let encrypted = env.root().join("id_encrypted");
        let path = encrypted.to_str().expect("utf-8");
        util::external(
            "ssh-keygen",
            &["-q", "-t", "ed25519", "-N", "kp-pass", "-f", path],
        );
        env.cmd([
            "add",
            "ssh-key",
            "--name",
            "enc",
            "--passphrase",
            "-",
            "--private-key-file",
        ])
        .arg(&encrypted)
        .stdin("kp-pass\n")
        .ok();
        assert_eq!(env.run(&["get", "enc", "passphrase"]), "kp-pass\n");
        let public = std::fs::read_to_string(encrypted.with_extension("pub")).expect("read .pub");
        let key_part = |line: &str| {
            line.split_whitespace()
                .take(2)
                .collect::<Vec<_>>()
                .join(" ")
        };
        assert_eq!(
            key_part(&env.run(&["get", "enc", "public key"])),
            key_part(&public)
        );
        let stored = env.run(&["get", "enc", "private key"]);
        assert_eq!(
            stored.trim_end(),
            std::fs::read_to_string(&encrypted)
                .expect("read key")
                .trim_end()
        );
        let shown = env.cmd(["show", "enc"]).ok();
        shown.stdout_lacks("kp-pass");
    }

    let not_a_key = env.root().join("not-a-key");
    std::fs::write(&not_a_key, "hello\n").expect("write");
    env.cmd(["add", "ssh-key", "--name", "bad", "--private-key-file"])
        .arg(&not_a_key)
        .code(2)
        .stderr_has("not an OpenSSH private key");
}

// A custom item holds free text and secret fields; flags of other kinds are refused (exit 2) naming the flag.
#[test]
fn add_custom_and_flags_of_the_wrong_kind() {
    let env = TestEnv::init();
    env.add(&[
        "custom",
        "--name",
        "Misc",
        "--field",
        "Host=db.local",
        "--secret-field",
        "Token=tok-1",
        "--notes",
        "free text",
    ]);
    let misc = env.json(&["show", "Misc"]);
    assert_eq!(misc["kind"], "custom");
    let f = fields(&misc);
    assert_eq!(field(&f, "Host"), &(Json::from("db.local"), false));
    assert_eq!(field(&f, "Token"), &(Json::Null, true));
    assert_eq!(env.run(&["get", "Misc", "token"]), "tok-1\n");
    assert_eq!(env.run(&["get", "Misc", "host"]), "db.local\n");

    for (args, flag) in [
        (
            &["add", "card", "--name", "x", "--username", "u"][..],
            "--username",
        ),
        (
            &["add", "note", "--name", "x", "--url", "https://x"][..],
            "--url",
        ),
        (
            &["add", "identity", "--name", "x", "--cvv", "1"][..],
            "--cvv",
        ),
        (&["add", "login", "--name", "x", "--key", "k"][..], "--key"),
        (
            &["add", "login", "--name", "x", "--field", "novalue"][..],
            "--field",
        ),
        (&["add", "login", "--username", "u"][..], "--name"),
    ] {
        env.cmd(args).code(2).stderr_has(flag);
    }
    env.cmd(["add", "login", "--name", "x", "--totp", "not base32!"])
        .code(2)
        .stderr_has("TOTP");
    env.cmd(["add", "spaceship", "--name", "x"]).code(2);
    env.cmd([
        "add",
        "login",
        "--name",
        "x",
        "--password",
        "-",
        "--notes",
        "-",
    ])
    .stdin("a\nb\n")
    .code(2)
    .stderr_has("standard input");
    assert_eq!(env.ls_names(&[]), ["Misc"], "refused adds save nothing");
}

// A secret given literally on the command line (readable by every local user through /proc and kept in shell history) is refused with exit 2 and a message naming the other ways, without repeating it, and nothing is saved; -, @FILE, env:NAME work, and a prompt without a terminal says what to do instead.
#[test]
fn literal_secrets_on_the_command_line_are_refused() {
    let env = TestEnv::init();
    let literal = "Zq-literal-secret-77";
    for args in [
        &["add", "login", "--name", "x", "--password", literal][..],
        &[
            "add",
            "login",
            "--name",
            "x",
            &format!("--password={literal}"),
        ],
        &["add", "login", "--name", "x", "--totp", literal],
        &["add", "card", "--name", "x", "--number", literal],
        &["add", "card", "--name", "x", "--cvv", literal],
        &["add", "card", "--name", "x", "--pin", literal],
        &["add", "api-key", "--name", "x", "--key", literal],
        &["add", "ssh-key", "--name", "x", "--passphrase", literal],
        &[
            "add",
            "custom",
            "--name",
            "x",
            "--secret-field",
            &format!("PIN={literal}"),
        ],
        &["edit", "x", "--password", literal],
        &[
            "login",
            "--server",
            "http://127.0.0.1:9",
            "--email",
            "a@b.c",
            "--secret-key",
            literal,
        ],
    ] {
        let run = env.cmd(args).literal_secrets().code(2);
        run.stderr_has("does not take a secret on the command line")
            .stderr_has("env:NAME")
            .stderr_has("@FILE")
            .stderr_lacks(literal);
    }
    env.cmd(["add", "login", "--name", "x", "--password", literal])
        .literal_secrets()
        .code(2)
        .stderr_has("--generate");
    assert!(env.ls_names(&[]).is_empty(), "refused adds save nothing");

    // The ways that work.
    let file = env.root().join("pw.txt");
    std::fs::write(&file, "from-a-file\n").expect("write");
    let at_file = format!("@{}", file.display());
    for (name, args, stdin, want) in [
        (
            "A",
            vec!["--password", "-"],
            Some("from-stdin\n"),
            "from-stdin",
        ),
        (
            "B",
            vec!["--password", at_file.as_str()],
            None,
            "from-a-file",
        ),
        (
            "C",
            vec!["--password", "env:ZQ_PW"],
            None,
            "from the environment",
        ),
        // A literal starting with @ goes through a file (or stdin, or a variable).
        (
            "D",
            vec!["--password", "-"],
            Some("@not-a-file"),
            "@not-a-file",
        ),
    ] {
        let mut cmd = env
            .cmd(["add", "login", "--name", name])
            .args(&args)
            .literal_secrets()
            .env("ZQ_PW", "from the environment");
        if let Some(input) = stdin {
            cmd = cmd.stdin(input);
        }
        cmd.ok();
        assert_eq!(env.run(&["get", name]), format!("{want}\n"), "{args:?}");
    }
    env.cmd([
        "add",
        "custom",
        "--name",
        "E",
        "--secret-field",
        "PIN=env:ZQ_PIN",
    ])
    .literal_secrets()
    .env("ZQ_PIN", "4321")
    .ok();
    assert_eq!(env.run(&["get", "E", "PIN"]), "4321\n");
    env.cmd(["edit", "A", "--password", "env:ZQ_PW"])
        .literal_secrets()
        .env("ZQ_PW", "changed")
        .ok();
    assert_eq!(env.run(&["get", "A"]), "changed\n");

    // Sources that cannot be read: exit 2, saying why.
    env.cmd(["add", "login", "--name", "y", "--password", "env:ZQ_UNSET"])
        .literal_secrets()
        .code(2)
        .stderr_has("ZQ_UNSET is not set");
    env.cmd([
        "add",
        "login",
        "--name",
        "y",
        "--password",
        "@/nonexistent/pw",
    ])
    .literal_secrets()
    .code(2)
    .stderr_has("/nonexistent/pw");
    for args in [&["--password"][..], &["--password", "prompt"]] {
        env.cmd(["add", "login", "--name", "y"])
            .args(args)
            .literal_secrets()
            .code(2)
            .stderr_has("no terminal")
            .stderr_has("--password -");
    }
    // Flags that are not secrets keep literal values.
    env.cmd([
        "add",
        "login",
        "--name",
        "Plain",
        "--username",
        "me",
        "--url",
        "https://x.example",
        "--tag",
        "t",
        "--generate",
    ])
    .literal_secrets()
    .ok();
    assert_eq!(env.run(&["get", "Plain", "username"]), "me\n");
    assert_eq!(env.ls_names(&[]), ["A", "B", "C", "D", "E", "Plain"]);
}

// ls filters by kind, tag, folder, favourites and trash, lists favourites first, and --json has items and damaged arrays.
#[test]
fn ls_filters_order_and_json() {
    let env = TestEnv::init();
    env.cmd(["ls", "--trash"])
        .ok()
        .stdout_has("The trash is empty");
    let alpha = env.add(&[
        "login",
        "--name",
        "Alpha",
        "--username",
        "al",
        "--url",
        "https://alpha.example",
        "--tag",
        "work",
        "--folder",
        "Dev",
    ]);
    env.add(&["login", "--name", "Zeta", "--favorite"]);
    env.add(&[
        "card",
        "--name",
        "Card1",
        "--number",
        "4000000000000002",
        "--folder",
        "Money",
    ]);
    env.add(&["note", "--name", "Note1", "--notes", "n", "--tag", "work"]);

    assert_eq!(env.ls_names(&[]), ["Zeta", "Alpha", "Card1", "Note1"]);
    let text = env.run(&["ls"]);
    let first_row = text.lines().nth(1).expect("a row");
    assert!(
        first_row.contains("Zeta") && first_row.contains('★'),
        "{text}"
    );
    assert!(
        text.lines().next().expect("header").contains("NAME"),
        "{text}"
    );
    assert!(
        text.contains("al") && text.contains("Dev") && text.contains("work"),
        "{text}"
    );

    assert_eq!(env.ls_names(&["--kind", "card"]), ["Card1"]);
    assert_eq!(env.ls_names(&["--kind", "login"]), ["Zeta", "Alpha"]);
    assert_eq!(env.ls_names(&["--tag", "work"]), ["Alpha", "Note1"]);
    assert_eq!(
        env.ls_names(&["--tag", "WORK", "--kind", "note"]),
        ["Note1"]
    );
    assert_eq!(env.ls_names(&["--folder", "Dev"]), ["Alpha"]);
    assert_eq!(env.ls_names(&["--favorites"]), ["Zeta"]);
    assert!(env.ls_names(&["--kind", "ssh-key"]).is_empty());
    env.cmd(["ls", "--kind", "spaceship"]).code(2);

    let json = env.json(&["ls"]);
    assert_eq!(json["damaged"], Json::Array(vec![]));
    let a = json["items"]
        .as_array()
        .expect("items")
        .iter()
        .find(|i| i["name"] == "Alpha")
        .expect("Alpha listed");
    assert_eq!(a["id"], alpha.as_str());
    assert_eq!(a["kind"], "login");
    assert_eq!(a["subtitle"], "al");
    assert_eq!(strings(&a["tags"]), ["work"]);
    assert_eq!(a["folder"], "Dev");
    assert_eq!(a["favorite"], false);
    assert_eq!(strings(&a["urls"]), ["https://alpha.example"]);
    assert_eq!(a["has_totp"], false);
    assert_eq!(a["trashed"], false);
    assert_eq!(a["version"], 1);
    assert!(a["fields"].is_null(), "ls never includes fields: {a}");

    env.run(&["rm", "Note1"]);
    assert_eq!(env.ls_names(&[]), ["Zeta", "Alpha", "Card1"]);
    assert_eq!(env.ls_names(&["--trash"]), ["Note1"]);
    let trash = env.json(&["ls", "--trash"]);
    assert_eq!(trash["items"][0]["trashed"], true);
    // `list` is an alias.
    assert_eq!(
        names(&env.json(&["list", "--kind", "card"])["items"]),
        ["Card1"]
    );
}

// show masks concealed values unless --reveal (text and JSON), and --version shows an older version.
#[test]
fn show_masks_secrets_and_shows_old_versions() {
    let env = TestEnv::init();
    let id = env.add(&[
        "login",
        "--name",
        "Mask",
        "--username",
        "mask-user",
        "--password",
        "pw-never-shown",
        "--secret-field",
        "PIN=8642",
        "--totp",
        TOTP_SEED,
    ]);
    let run = env.cmd(["show", "Mask"]).ok();
    run.stdout_has("mask-user")
        .stdout_has("••••••••")
        .stdout_has(&id)
        .stdout_has("--reveal")
        .stdout_lacks("pw-never-shown")
        .stdout_lacks("8642")
        .stdout_lacks(TOTP_SEED);
    let run = env.cmd(["show", "Mask", "--reveal"]).ok();
    run.stdout_has("pw-never-shown")
        .stdout_has("8642")
        .stdout_has(TOTP_SEED);

    let json = env.json(&["show", "Mask"]);
    let f = fields(&json);
    assert_eq!(field(&f, "password"), &(Json::Null, true));
    assert_eq!(field(&f, "PIN"), &(Json::Null, true));
    assert_eq!(field(&f, "totp"), &(Json::Null, true));
    assert_eq!(field(&f, "username"), &(Json::from("mask-user"), false));
    assert!(!json.to_string().contains("pw-never-shown"));
    assert_eq!(json["trashed_at"], Json::Null);
    let f = fields(&env.json(&["show", "Mask", "--reveal"]));
    assert_eq!(field(&f, "password"), &(Json::from("pw-never-shown"), true));

    env.run(&[
        "edit",
        "Mask",
        "--username",
        "user-v2",
        "--password",
        "pw-version-2",
    ]);
    let old = env.cmd(["show", "Mask", "--version", "1", "--reveal"]).ok();
    old.stdout_has("version 1")
        .stdout_has("mask-user")
        .stdout_has("pw-never-shown");
    old.stdout_lacks("user-v2").stdout_lacks("pw-version-2");
    let old = env.json(&["show", "Mask", "--version", "1"]);
    assert_eq!(old["version"], 1);
    assert_eq!(field(&fields(&old), "password"), &(Json::Null, true));
    let current = env.cmd(["show", "Mask"]).ok();
    current
        .stdout_has("version 2")
        .stdout_has("user-v2")
        .stdout_lacks("pw-version-2");
    env.cmd(["show", "Mask", "--version", "9"]).code(4);
}

// get prints one raw value plus a newline (password by default, or username/url/notes/totp/a custom label); a missing field is exit 4 listing the fields.
#[test]
fn get_prints_raw_values() {
    let env = TestEnv::init();
    let id = env.add(&[
        "login",
        "--name",
        "G",
        "--username",
        "gu",
        "--password",
        "gp w! '\"$x",
        "--url",
        "https://g.example",
        "--url",
        "https://second.example",
        "--notes",
        "some notes\nline 2",
        "--totp",
        TOTP_SEED,
        "--field",
        "Team=blue",
    ]);
    assert_eq!(env.run(&["get", "G"]), "gp w! '\"$x\n");
    assert_eq!(env.run(&["get", "G", "password"]), "gp w! '\"$x\n");
    assert_eq!(env.run(&["get", "G", "username"]), "gu\n");
    assert_eq!(env.run(&["get", "G", "url"]), "https://g.example\n");
    assert_eq!(env.run(&["get", "G", "notes"]), "some notes\nline 2\n");
    assert_eq!(env.run(&["get", "G", "Team"]), "blue\n");
    assert_eq!(env.run(&["get", "G", "team"]), "blue\n");
    let before = unix_now();
    let code = env.run(&["get", "G", "totp"]);
    let after = unix_now();
    assert!(
        totp_codes_between(before, after).contains(&code.trim_end().to_owned()),
        "{code:?} is not the RFC 6238 code of the seed"
    );
    let run = env.cmd(["get", "G", "nope"]).code(4);
    run.stderr_has("nope")
        .stderr_has("username")
        .stderr_has("password")
        .stderr_has("Team");
    assert!(run.stdout.is_empty(), "{run}");
    let json = env.json(&["get", "G"]);
    assert_eq!(json["id"], id.as_str());
    assert_eq!(json["field"], "password");
    assert_eq!(json["value"], "gp w! '\"$x");
    let json = env.json(&["get", "G", "username"]);
    assert_eq!(json["value"], "gu");

    env.add(&["note", "--name", "N", "--notes", "only notes"]);
    env.cmd(["get", "N", "password"])
        .code(4)
        .stderr_has("notes");
    env.cmd(["get", "Nobody"]).code(4);
}

// ITEM is a full id, a unique id prefix (4+ chars) or an exact case-insensitive name; ambiguity is exit 5 listing the ids, unknown is exit 4.
#[test]
fn item_resolution() {
    let env = TestEnv::init();
    // Two live items cannot share a name; two in the trash can.
    let a = env.add(&["login", "--name", "Twin", "--username", "first"]);
    env.cmd(["rm", &a]).ok();
    let b = env.add(&["login", "--name", "Twin", "--username", "second"]);
    env.cmd(["rm", &b]).ok();
    let c = env.add(&["note", "--name", "Solo Item", "--notes", "x"]);
    let ids = [a.as_str(), b.as_str(), c.as_str()];

    env.cmd(["show", &a])
        .ok()
        .stdout_has(&a)
        .stdout_has("first");
    env.cmd(["show", &a.to_uppercase()]).ok().stdout_has(&a);
    for id in ids {
        let prefix = unique_prefix(id, &ids);
        assert!(prefix.len() >= 4);
        env.cmd(["show", &prefix]).ok().stdout_has(id);
    }
    env.cmd(["show", "solo item"]).ok().stdout_has(&c);
    env.cmd(["show", "  SOLO ITEM "]).ok().stdout_has(&c);

    let run = env.cmd(["show", "twin"]).code(5);
    run.stderr_has(&a).stderr_has(&b).stderr_lacks(&c);
    let run = env.cmd(["get", "Twin", "username"]).code(5);
    assert!(run.stdout.is_empty(), "{run}");
    // A prefix shared by every id (UUIDv7 ids made together share their time bits).
    let shared = &a[..4];
    // (`restore` prefers the trash, where both twins are.)
    if b.starts_with(shared) {
        env.cmd(["restore", shared])
            .code(5)
            .stderr_has(&a)
            .stderr_has(&b);
    }
    // Shorter than 4 characters is not a prefix.
    env.cmd(["show", &c[..3]]).code(4);
    env.cmd(["show", "Solo"]).code(4);
    env.cmd(["show", "does not exist"])
        .code(4)
        .stderr_has("does not exist");
    env.cmd(["show", "00000000-0000-7000-8000-000000000000"])
        .code(4);
    env.cmd(["purge", "Twin", "--yes"]).code(5);
    assert_eq!(
        env.ls_names(&["--trash"]).len(),
        2,
        "an ambiguous purge destroys nothing"
    );
}

// edit changes username, URLs, fields, tags, favourite and name, keeps every version, and history names changes but never values.
#[test]
fn edit_and_history() {
    let env = TestEnv::init();
    let id = env.add(&[
        "login",
        "--name",
        "E",
        "--username",
        "eu",
        "--password",
        "old-pass-xyz",
        "--url",
        "https://one.example",
        "--url",
        "https://two.example",
        "--secret-field",
        "PIN=1357",
        "--tag",
        "t1",
        "--tag",
        "t2",
        "--folder",
        "F1",
    ]);
    env.cmd(["edit", "E", "--username", "eu2"])
        .ok()
        .stdout_has("version 2");
    assert_eq!(env.run(&["get", "E", "username"]), "eu2\n");
    env.run(&["edit", "E", "--url", "https://three.example"]);
    assert_eq!(
        strings(&env.json(&["show", "E"])["urls"]),
        ["https://three.example"]
    );
    env.run(&["edit", "E", "--remove-field", "PIN"]);
    env.cmd(["get", "E", "PIN"]).code(4);
    env.run(&["edit", "E", "--tag", "x"]);
    assert_eq!(strings(&env.json(&["show", "E"])["tags"]), ["x"]);
    env.run(&["edit", "E", "--favorite"]);
    assert_eq!(env.json(&["show", "E"])["favorite"], true);
    env.run(&["edit", "E", "--unfavorite"]);
    assert_eq!(env.json(&["show", "E"])["favorite"], false);
    env.run(&["edit", "E", "--name", "Renamed"]);
    env.cmd(["show", "E"]).code(4);
    assert_eq!(env.json(&["show", "Renamed"])["id"], id.as_str());

    env.cmd(["edit", "Renamed"])
        .ok()
        .stdout_has("Nothing changed");
    env.cmd(["edit", "Renamed", "--username", "eu2"])
        .ok()
        .stdout_has("Nothing changed");
    let same = env.json(&["edit", "Renamed", "--folder", "F1"]);
    assert_eq!(same["changed"], false);
    assert_eq!(same["version"], 8);
    env.run(&["edit", "Renamed", "--folder", ""]);
    assert_eq!(env.json(&["show", "Renamed"])["folder"], Json::Null);
    env.cmd(["edit", "Renamed", "--remove-field", "nope"])
        .code(2)
        .stderr_has("nope");
    env.cmd(["edit", "Renamed", "--favorite", "--unfavorite"])
        .code(2);
    env.cmd(["edit", "Renamed", "--cvv", "1"])
        .code(2)
        .stderr_has("--cvv");
    let json = env.json(&["edit", "Renamed", "--password", "new-pass-abc"]);
    assert_eq!(json["changed"], true);
    assert_eq!(json["version"], 10);
    assert_eq!(env.run(&["get", "Renamed"]), "new-pass-abc\n");

    let history = env.run(&["history", "Renamed"]);
    for change in [
        "created",
        "changed username",
        "changed url",
        "removed pin",
        "tags changed",
        "marked favorite",
        "unmarked favorite",
        "renamed",
        "changed password",
        "(current)",
    ] {
        assert!(
            history.to_lowercase().contains(change),
            "no {change:?} in:\n{history}"
        );
    }
    for secret in ["old-pass-xyz", "new-pass-abc", "1357"] {
        assert!(
            !history.contains(secret),
            "history shows {secret:?}:\n{history}"
        );
    }
    let json = env.json(&["history", "Renamed"]);
    let text = json.to_string();
    for secret in ["old-pass-xyz", "new-pass-abc", "1357"] {
        assert!(
            !text.contains(secret),
            "history --json shows {secret:?}: {text}"
        );
    }
    assert_eq!(json["id"], id.as_str());
    let versions = json["versions"].as_array().expect("versions");
    assert_eq!(versions.len(), 10, "{json}");
    assert_eq!(versions[0]["version"], 1);
    assert_eq!(strings(&versions[0]["changes"]), ["created"]);
    assert_eq!(strings(&versions[1]["changes"]), ["changed username"]);
    assert_eq!(versions[9]["current"], true);
    assert_eq!(strings(&versions[8]["changes"]), ["folder changed"]);
    assert_eq!(versions[0]["current"], false);
    assert!(versions.iter().all(|v| v["damaged"].is_null()), "{json}");
    // Every old version is still readable.
    let v1 = env
        .cmd(["show", "Renamed", "--version", "1", "--reveal"])
        .ok();
    v1.stdout_has("old-pass-xyz")
        .stdout_has("1357")
        .stdout_has("https://two.example");
}

// rm moves to the trash, restore brings back, purge needs --yes without a terminal and then destroys the item for good.
#[test]
fn trash_restore_and_purge() {
    let env = TestEnv::init();
    let id = env.add(&["login", "--name", "Trashy", "--password", "t-pw"]);
    env.add(&["login", "--name", "Keeper"]);
    env.cmd(["rm", "Trashy"])
        .ok()
        .stdout_has("trash")
        .stdout_has(&id);
    assert_eq!(env.ls_names(&[]), ["Keeper"]);
    assert_eq!(env.ls_names(&["--trash"]), ["Trashy"]);
    env.cmd(["show", "Trashy"]).ok().stdout_has("[in trash]");
    env.cmd(["rm", "Trashy"])
        .code(2)
        .stderr_has("already in the trash");
    env.cmd(["restore", "Trashy"]).ok().stdout_has("Restored");
    assert_eq!(env.ls_names(&[]), ["Keeper", "Trashy"]);
    assert!(env.ls_names(&["--trash"]).is_empty());
    env.cmd(["restore", "Trashy"])
        .code(2)
        .stderr_has("not in the trash");
    let history = env.run(&["history", "Trashy"]);
    assert!(
        history.contains("moved to trash") && history.contains("restored from trash"),
        "{history}"
    );
    env.run(&["delete", &id]);
    assert_eq!(env.ls_names(&["--trash"]), ["Trashy"]);

    let run = env.cmd(["purge", "Trashy"]).code(2);
    run.stderr_has("--yes");
    assert_eq!(
        env.ls_names(&["--trash"]),
        ["Trashy"],
        "purge without --yes keeps the item"
    );
    assert_eq!(env.run(&["get", &id]), "t-pw\n");

    env.cmd(["purge", "Trashy", "--yes"])
        .ok()
        .stdout_has("Purged");
    assert_eq!(env.ls_names(&[]), ["Keeper"]);
    assert!(env.ls_names(&["--trash"]).is_empty());
    env.cmd(["show", "Trashy"]).code(4);
    env.cmd(["show", &id]).code(4);
    env.cmd(["history", &id]).code(4);
    env.cmd(["purge", &id, "--yes"]).code(4);
    let json = env.json(&["purge", "Keeper", "-y"]);
    assert_eq!(json["purged"], true);
    env.cmd(["ls"]).ok().stdout_has("No items");
}

// search matches fuzzily on name, username, URL, tags and folder (never notes), takes kind:/tag:/folder:/is: filters, and --json scores results.
#[test]
fn search_fuzzy_and_filters() {
    let env = TestEnv::init();
    env.add(&[
        "login",
        "--name",
        "GitHub Work",
        "--username",
        "octocat",
        "--url",
        "https://github.com",
        "--tag",
        "work",
        "--folder",
        "Dev",
        "--favorite",
    ]);
    env.add(&[
        "login",
        "--name",
        "Bank",
        "--username",
        "banker",
        "--url",
        "https://bank.example",
        "--tag",
        "money",
        "--folder",
        "Finance",
    ]);
    env.add(&[
        "note", "--name", "Recipe", "--notes", "quokka", "--tag", "home",
    ]);
    env.add(&[
        "card",
        "--name",
        "Visa",
        "--number",
        "4111111111111111",
        "--folder",
        "Finance",
    ]);
    let search = |q: &[&str]| names(&env.cmd(["--json", "search"]).args(q).json()["items"]);

    assert_eq!(search(&["octocat"]), ["GitHub Work"], "username");
    assert_eq!(search(&["bank.example"]), ["Bank"], "url");
    assert_eq!(search(&["money"]), ["Bank"], "tag");
    let mut finance = search(&["Finance"]);
    finance.sort();
    assert_eq!(finance, ["Bank", "Visa"], "folder");
    assert_eq!(search(&["gthbwrk"]), ["GitHub Work"], "fuzzy");
    assert!(search(&["quokka"]).is_empty(), "notes are not searched");
    assert!(
        search(&["4111"]).is_empty(),
        "card numbers are not searched"
    );

    let mut logins = search(&["kind:login"]);
    logins.sort();
    assert_eq!(logins, ["Bank", "GitHub Work"]);
    assert_eq!(search(&["kind:note"]), ["Recipe"]);
    assert_eq!(search(&["tag:work"]), ["GitHub Work"]);
    assert_eq!(search(&["folder:Dev"]), ["GitHub Work"]);
    assert_eq!(search(&["is:fav"]), ["GitHub Work"]);
    assert_eq!(
        search(&["kind:login", "tag:work", "folder:Dev", "is:fav", "git"]),
        ["GitHub Work"]
    );
    assert!(search(&["kind:card", "bank"]).is_empty());

    let json = env.json(&["search", "octo"]);
    assert_eq!(json["total"], 1);
    assert_eq!(json["items"][0]["name"], "GitHub Work");
    assert!(
        json["items"][0]["score"].as_u64().expect("score") > 0,
        "{json}"
    );
    assert_eq!(json["damaged"], Json::Array(vec![]));

    env.cmd(["search", "octo"])
        .ok()
        .stdout_has("GitHub Work")
        .stdout_lacks("Bank");
    env.cmd(["search", "zzqqxx"]).ok().stdout_has("No matches");
    env.cmd(["search", "kind:spaceship"])
        .code(2)
        .stderr_has("spaceship");
    env.cmd(["search", "is:weird"]).code(2).stderr_has("weird");
    env.cmd(["search"]).code(2);

    env.run(&["rm", "Bank"]);
    assert!(
        search(&["banker"]).is_empty(),
        "trashed items are not found"
    );
    assert_eq!(search(&["is:trash", "banker"]), ["Bank"]);
    let limited = env.json(&["search", "--limit", "1", "e"]);
    assert_eq!(limited["items"].as_array().expect("items").len(), 1);
}

// totp prints the current RFC 6238 code and the seconds left; an item without a seed is exit 4.
#[test]
fn totp_codes() {
    let env = TestEnv::init();
    env.add(&["login", "--name", "T", "--totp", TOTP_SEED]);
    env.add(&["login", "--name", "NoTotp", "--password", "x"]);
    let before = unix_now();
    let out = env.run(&["totp", "T"]);
    let after = unix_now();
    let (code, rest) = out.trim_end().split_once("  ").expect("CODE  (N s left)");
    assert_eq!(code.len(), 6, "{out:?}");
    assert!(code.chars().all(|c| c.is_ascii_digit()), "{out:?}");
    let left: u64 = rest
        .strip_prefix('(')
        .and_then(|r| r.strip_suffix(" s left)"))
        .expect("(N s left)")
        .parse()
        .expect("seconds");
    assert!((1..=30).contains(&left), "{out:?}");
    assert!(
        totp_codes_between(before, after).contains(&code.to_owned()),
        "{code} is not the RFC 6238 code at {before}..{after}"
    );
    let json = env.json(&["totp", "T"]);
    assert_eq!(json["digits"], 6);
    assert_eq!(json["period"], 30);
    assert_eq!(json["code"].as_str().expect("code").len(), 6);
    let left = json["seconds_left"].as_u64().expect("seconds_left");
    assert!((1..=30).contains(&left), "{json}");

    env.cmd(["totp", "NoTotp"]).code(4).stderr_has("no TOTP");
    env.cmd(["totp", "Nobody"]).code(4);
    // An otpauth:// URI works too.
    env.add(&[
        "login",
        "--name",
        "Uri",
        "--totp",
        "otpauth://totp/Example:alice?secret=JBSWY3DPEHPK3PXP&issuer=Example",
    ]);
    let before = unix_now();
    let code = env.run(&["get", "Uri", "totp"]);
    let after = unix_now();
    assert!(
        totp_codes_between(before, after).contains(&code.trim_end().to_owned()),
        "{code}"
    );
}
