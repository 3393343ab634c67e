use proptest::prelude::*;

use crate::engine::model::{FieldKind, ItemKind, label};
use crate::import::table::testing::{check_damaged, field, fixture, item, ok, run, value, values};
use crate::import::{Format, ImportError, Parsed, detect_bytes};

const PASSWORD: &str = "correct horse battery staple ü";

/// Everything plain.json holds, wherever it came from (plain or decrypted).
fn check_plain(p: &Parsed) {
    assert_eq!(p.items.len(), 7, "eight items, one of an unknown type");
    assert_eq!(p.problems.len(), 1);
    assert_eq!(p.problems[0].at, "item 7");
    assert!(
        p.problems[0].why.contains("type 99"),
        "{}",
        p.problems[0].why
    );

    let gh = item(p, "GitHub — Ünïcødé 🔑");
    assert_eq!(gh.draft.kind, ItemKind::Login);
    assert_eq!(value(gh, label::USERNAME), "octocat@example.com");
    assert_eq!(
        field(gh, label::PASSWORD),
        ("  p@ss wörd with spaces  ", FieldKind::Secret, false)
    );
    assert_eq!(
        values(gh, label::URL),
        ["https://github.com/login", "https://gist.github.com"]
    );
    assert_eq!(field(gh, label::TOTP).1, FieldKind::Totp);
    assert!(value(gh, label::TOTP).contains("JBSWY3DPEHPK3PXP"));
    assert_eq!(
        value(gh, label::NOTES),
        "Recovery codes are in the safe.\nSecond line\n\tindented third line"
    );
    assert_eq!(
        field(gh, "Security question"),
        ("Name of first pet? Rex", FieldKind::Text, false)
    );
    assert_eq!(field(gh, "PIN"), ("4321", FieldKind::Secret, true));
    assert_eq!(value(gh, "2FA enabled"), "true");
    assert!(gh.unmapped.iter().any(|u| u.contains("Login name")));
    assert!(gh.draft.favorite);
    assert_eq!(gh.draft.folder.as_deref(), Some("Personal"));
    assert_eq!(gh.created_at, Some(1_623_053_350_111));
    assert_eq!(gh.updated_at, Some(1_706_933_106_789));
    assert!(!gh.trashed);
    assert_eq!(
        gh.source_id.as_deref(),
        Some("0b0f0a00-1111-4111-8111-000000000001")
    );
    assert_eq!(gh.at, "item 1");
    // Password history: oldest first, only the password differs.
    assert_eq!(gh.history.len(), 2);
    assert_eq!(value_of(&gh.history[0].0, label::PASSWORD), "oldest-pass-1");
    assert_eq!(gh.history[0].1, Some(1_642_235_400_000));
    assert_eq!(value_of(&gh.history[1].0, label::PASSWORD), "older-pass-2");
    assert_eq!(
        value_of(&gh.history[1].0, label::USERNAME),
        "octocat@example.com"
    );

    let note = item(p, "Wi-Fi at home");
    assert_eq!(note.draft.kind, ItemKind::Note);
    assert_eq!(
        value(note, label::NOTES),
        "SSID: Home-5G\nPassword: correct horse battery staple"
    );
    assert_eq!(note.draft.folder, None);
    assert!(note.unmapped.iter().any(|u| u.contains("re-prompt")));

    let card = item(p, "Visa");
    assert_eq!(card.draft.kind, ItemKind::Card);
    assert_eq!(value(card, label::CARDHOLDER), "Jane Q. Doe");
    assert_eq!(
        field(card, label::NUMBER),
        ("4111111111111111", FieldKind::Secret, false)
    );
    assert_eq!(value(card, label::EXPIRY), "07/2029");
    assert_eq!(value(card, label::CVV), "123");
    assert_eq!(value(card, "brand"), "Visa");

    let id = item(p, "Jane's identity");
    assert_eq!(id.draft.kind, ItemKind::Identity);
    assert_eq!(value(id, label::FULL_NAME), "Dr Jane Quinn Doe");
    assert_eq!(
        field(id, label::EMAIL),
        ("jane@example.com", FieldKind::Email, false)
    );
    assert_eq!(value(id, label::PHONE), "+1 555 0100");
    assert_eq!(
        value(id, label::ADDRESS),
        "1 Main Street\nApt 2\nSpringfield, IL 62701\nUS"
    );
    assert_eq!(value(id, label::COMPANY), "Acme Corp");
    assert_eq!(value(id, label::USERNAME), "jdoe");
    assert_eq!(field(id, "ssn"), ("123-45-6789", FieldKind::Secret, true));
    assert_eq!(value(id, "passport number"), "X1234567");
    assert_eq!(value(id, "license number"), "D123-4567");
    assert!(values(id, label::NOTES).is_empty());

    let ssh = item(p, "Deploy key");
    assert_eq!(ssh.draft.kind, ItemKind::SshKey);
    assert!(value(ssh, label::PRIVATE_KEY).starts_with("-----BEGIN OPENSSH PRIVATE KEY-----\n"));
    assert_eq!(
        value(ssh, label::PUBLIC_KEY),
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHk1 deploy@example"
    );
    assert_eq!(
        value(ssh, label::FINGERPRINT),
        "SHA256:abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"
    );
    assert_eq!(ssh.draft.folder.as_deref(), Some("Work/Servers"));

    let old = item(p, "Old forum");
    assert!(old.trashed);
    // A Steam seed is kept, as a secret, and named in the report.
    assert_eq!(
        field(old, "totp seed"),
        ("steam://ABCDEFGH", FieldKind::Secret, false)
    );
    assert!(values(old, label::TOTP).is_empty());
    assert!(old.unmapped.iter().any(|u| u.contains("TOTP")));

    let nameless = item(p, "www.nameless.example");
    assert_eq!(value(nameless, label::USERNAME), "anon");
    assert_eq!(nameless.at, "item 8");
}

fn value_of<'a>(d: &'a crate::engine::ItemDraft, l: &str) -> &'a str {
    d.fields
        .iter()
        .find(|f| f.label == l)
        .map(|f| f.value.expose())
        .expect("field")
}

#[test]
fn plain_json_maps_every_item_type() {
    check_plain(&ok(Format::BitwardenJson, "bitwarden-json/plain.json"));
}

#[test]
fn password_protected_pbkdf2_and_argon2id_open() {
    for f in ["encrypted-pbkdf2.json", "encrypted-argon2id.json"] {
        let bytes = fixture(&format!("bitwarden-json/{f}"));
        assert_eq!(detect_bytes(&bytes), Some(Format::BitwardenJson));
        let p = run(Format::BitwardenJson, &bytes, Some(PASSWORD)).expect(f);
        check_plain(&p);
    }
}

#[test]
fn wrong_or_missing_password() {
    for f in ["encrypted-pbkdf2.json", "encrypted-argon2id.json"] {
        let bytes = fixture(&format!("bitwarden-json/{f}"));
        assert!(matches!(
            run(
                Format::BitwardenJson,
                &bytes,
                Some("correct horse battery staple")
            ),
            Err(ImportError::WrongPassword {
                format: Format::BitwardenJson,
                key_file: false
            })
        ));
        assert!(matches!(
            run(Format::BitwardenJson, &bytes, None),
            Err(ImportError::NeedsPassword(Format::BitwardenJson))
        ));
    }
}

#[test]
fn altered_data_with_the_right_password_is_malformed() {
    let text = String::from_utf8(fixture("bitwarden-json/encrypted-pbkdf2.json")).expect("utf8");
    let mut v: serde_json::Value = serde_json::from_str(&text).expect("json");
    let data = v["data"].as_str().expect("data").to_owned();
    // Swap two base64 characters of the ciphertext.
    let (head, rest) = data.split_once('|').expect("iv");
    let mut ct: Vec<char> = rest.chars().collect();
    ct.swap(0, 1);
    if ct[0] == ct[1] {
        ct[0] = if ct[0] == 'A' { 'B' } else { 'A' };
    }
    v["data"] = serde_json::Value::String(format!("{head}|{}", ct.iter().collect::<String>()));
    let bytes = serde_json::to_vec(&v).expect("json");
    match run(Format::BitwardenJson, &bytes, Some(PASSWORD)) {
        Err(ImportError::Malformed { at, why, .. }) => {
            assert_eq!(at, "data");
            assert!(why.contains("altered"), "{why}");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn account_restricted_export_is_refused_with_advice() {
    let bytes = fixture("bitwarden-json/account-restricted.json");
    assert_eq!(detect_bytes(&bytes), Some(Format::BitwardenJson));
    match run(Format::BitwardenJson, &bytes, Some(PASSWORD)) {
        Err(e @ ImportError::Malformed { .. }) => {
            let msg = e.to_string();
            assert!(msg.contains("Password protected"), "{msg}");
            assert!(msg.contains("account"), "{msg}");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn organization_export_uses_collections_as_folder() {
    let p = ok(Format::BitwardenJson, "bitwarden-json/organization.json");
    let db = item(&p, "Shared database");
    assert_eq!(db.draft.folder.as_deref(), Some("Ops"));
    assert_eq!(value(db, label::PASSWORD), "s3cr3t");
    assert!(db.unmapped.iter().any(|u| u.contains("1 more collections")));
}

#[test]
fn csv_export_maps_logins_and_notes() {
    let bytes = fixture("bitwarden-csv/export.csv");
    assert_eq!(detect_bytes(&bytes), Some(Format::BitwardenCsv));
    let p = run(Format::BitwardenCsv, &bytes, None).expect("parses");
    assert_eq!(p.items.len(), 3);
    assert_eq!(p.problems.len(), 2, "{:?}", p.problems);
    assert_eq!(p.problems[0].at, "line 7");
    assert!(
        p.problems[0].why.contains("7 cells"),
        "{}",
        p.problems[0].why
    );
    assert_eq!(p.problems[1].at, "line 8");
    assert!(p.problems[1].why.contains("card"));

    let gh = item(&p, "GitHub — Ünïcødé 🔑");
    assert_eq!(gh.draft.kind, ItemKind::Login);
    assert_eq!(gh.at, "line 2");
    assert!(gh.draft.favorite);
    assert_eq!(gh.draft.folder.as_deref(), Some("Personal"));
    assert_eq!(value(gh, label::USERNAME), "octocat@example.com");
    assert_eq!(value(gh, label::PASSWORD), "  p@ss wörd, with \"quotes\"  ");
    assert_eq!(
        values(gh, label::URL),
        ["https://github.com/login", "https://gist.github.com"]
    );
    assert_eq!(
        field(gh, label::TOTP),
        ("JBSWY3DPEHPK3PXP", FieldKind::Totp, false)
    );
    assert_eq!(
        value(gh, label::NOTES),
        "Recovery codes are in the safe.\nSecond line"
    );
    assert_eq!(value(gh, "Security question"), "Name of first pet? Rex");
    assert_eq!(value(gh, "PIN"), "4321");

    let note = item(&p, "Wi-Fi at home");
    assert_eq!(note.draft.kind, ItemKind::Note);
    assert_eq!(
        value(note, label::NOTES),
        "SSID: Home-5G\nPassword: correct horse battery staple"
    );
    assert!(note.unmapped.iter().any(|u| u.contains("re-prompt")));
    assert_eq!(item(&p, "www.nameless.example").at, "line 9");
}

#[test]
fn csv_organization_export() {
    let bytes = fixture("bitwarden-csv/organization.csv");
    assert_eq!(detect_bytes(&bytes), Some(Format::BitwardenCsv));
    let p = run(Format::BitwardenCsv, &bytes, None).expect("parses");
    let db = item(&p, "Shared database");
    assert_eq!(db.draft.folder.as_deref(), Some("Ops"));
    assert_eq!(value(db, label::USERNAME), "dbadmin");
}

#[test]
fn garbage_and_wrong_headers_are_malformed() {
    for (format, bytes) in [
        (
            Format::BitwardenJson,
            &b"{\"encrypted\": false, \"items\": [{"[..],
        ),
        (Format::BitwardenJson, b"[1,2,3]"),
        (Format::BitwardenJson, b"\x00\x01garbage"),
        (Format::BitwardenJson, b"{\"encrypted\": false}"),
        (
            Format::BitwardenCsv,
            b"name,url,username,password\nx,y,z,w\n",
        ),
        (Format::BitwardenCsv, b""),
        (Format::BitwardenCsv, b"\xff\xfe\x00garbage"),
    ] {
        match run(format, bytes, None) {
            Err(ImportError::Malformed { format: f, at, .. }) => {
                assert_eq!(f, format);
                assert!(!at.is_empty());
            }
            other => panic!("{format}: {other:?}"),
        }
    }
    match run(
        Format::BitwardenJson,
        b"{\"encrypted\": false, \"items\": [",
        None,
    ) {
        Err(ImportError::Malformed { at, why, .. }) => {
            assert_eq!(at, "line 1 column 31");
            assert!(why.contains("truncated"));
        }
        other => panic!("{other:?}"),
    }
    match run(Format::BitwardenCsv, b"name,url\n", None) {
        Err(ImportError::Malformed { at, .. }) => assert_eq!(at, "line 1"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn detection_tells_the_two_apart() {
    assert_eq!(
        detect_bytes(&fixture("bitwarden-json/plain.json")),
        Some(Format::BitwardenJson)
    );
    assert_eq!(detect_bytes(b"{\"items\": []}"), None);
    assert_eq!(detect_bytes(b"folder,favorite,type,name\n"), None);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]
    #[test]
    fn damaged_files_never_panic(cut in 0usize..6000, at in 0usize..6000, byte in any::<u8>()) {
        for (format, rel, pw) in [
            (Format::BitwardenJson, "bitwarden-json/plain.json", None),
            (Format::BitwardenJson, "bitwarden-json/encrypted-pbkdf2.json", Some(PASSWORD)),
            (Format::BitwardenCsv, "bitwarden-csv/export.csv", None),
        ] {
            let full = fixture(rel);
            let truncated = &full[..cut.min(full.len())];
            check_damaged(format, truncated, pw);
            let mut flipped = full.clone();
            let i = at % flipped.len();
            flipped[i] ^= byte | 1;
            check_damaged(format, &flipped, pw);
        }
    }
}
