use base64::Engine as _;
use proptest::prelude::*;

use crate::engine::model::{FieldKind, ItemKind, label};
use crate::import::table::testing::{check_damaged, field, fixture, item, ok, run, value, values};
use crate::import::{Format, ImportError, detect_bytes};

const FIXTURE: &str = "1pux/export.1pux";

fn b64(b: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(b)
}

#[test]
fn every_category_maps() {
    let p = ok(Format::OnePux, FIXTURE);
    assert_eq!(p.items.len(), 13);
    assert_eq!(p.problems.len(), 1);
    assert_eq!(p.problems[0].at, "vault \"Work\" item 8");
    assert!(p.problems[0].why.contains("categoryUuid"));

    let gh = item(&p, "GitHub — Ünïcødé 🔑");
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
    assert_eq!(field(gh, "PIN"), ("4321", FieldKind::Secret, true));
    assert_eq!(value(gh, "Security question"), "Rex");
    assert_eq!(
        field(gh, "recovery.txt"),
        (
            b64(b"recovery codes:\n1111-2222\n3333-4444\n").as_str(),
            FieldKind::File,
            false
        )
    );
    assert_eq!(
        value(gh, label::NOTES),
        "Recovery codes are attached.\nSecond line"
    );
    assert_eq!(gh.draft.tags, ["dev", "two-words"]);
    assert_eq!(gh.draft.folder.as_deref(), Some("Personal"));
    assert!(gh.draft.favorite);
    assert_eq!(gh.created_at, Some(1_614_298_956_000));
    assert_eq!(gh.updated_at, Some(1_635_346_445_000));
    assert_eq!(gh.source_id.as_deref(), Some("loginuuid0000000000000000a"));
    assert_eq!(gh.history.len(), 2);
    assert_eq!(gh.history[0].1, Some(1_642_235_400_000));
    assert_eq!(
        gh.history[0]
            .0
            .fields
            .iter()
            .find(|f| f.label == label::PASSWORD)
            .map(|f| f.value.expose()),
        Some("oldest-pass-1")
    );
    assert!(!gh.trashed);

    let card = item(&p, "Visa");
    assert_eq!(card.draft.kind, ItemKind::Card);
    assert_eq!(value(card, label::CARDHOLDER), "Jane Q. Doe");
    assert_eq!(
        field(card, label::NUMBER),
        ("4111111111111111", FieldKind::Secret, false)
    );
    assert_eq!(value(card, label::CVV), "123");
    assert_eq!(value(card, label::EXPIRY), "07/2029");
    assert_eq!(value(card, label::PIN), "9876");
    assert_eq!(value(card, "type"), "visa");

    let note = item(&p, "Wi-Fi at home");
    assert_eq!(note.draft.kind, ItemKind::Note);
    assert_eq!(
        value(note, label::NOTES),
        "SSID: Home-5G\nPassword: correct horse battery staple\nПривет 👋"
    );

    let id = item(&p, "Jane's identity");
    assert_eq!(id.draft.kind, ItemKind::Identity);
    assert_eq!(value(id, label::FULL_NAME), "Jane Q Doe");
    assert_eq!(value(id, label::BIRTHDAY), "1990-01-01");
    assert_eq!(
        value(id, label::ADDRESS),
        "1 Main Street\nSpringfield IL 62701\nus"
    );
    assert_eq!(value(id, label::PHONE), "+1 555 0100");
    assert_eq!(
        field(id, label::EMAIL),
        ("jane@example.com", FieldKind::Email, false)
    );
    assert_eq!(value(id, label::COMPANY), "Acme Corp");
    assert_eq!(value(id, "occupation"), "Engineer");

    let pw = item(&p, "Router admin");
    assert_eq!(pw.draft.kind, ItemKind::Login);
    assert_eq!(value(pw, label::PASSWORD), "r0uter!");

    let doc = item(&p, "Passport scan");
    assert_eq!(doc.draft.kind, ItemKind::Note);
    let bytes: Vec<u8> = (0..=255u8).cycle().take(768).collect();
    assert_eq!(
        field(doc, "passport.bin"),
        (b64(&bytes).as_str(), FieldKind::File, false)
    );

    let server = item(&p, "Build server");
    assert_eq!(server.draft.kind, ItemKind::Login);
    assert_eq!(server.draft.folder.as_deref(), Some("Work"));
    assert_eq!(
        field(server, label::URL),
        ("ssh://build.example.com", FieldKind::Text, false)
    );
    assert_eq!(value(server, label::USERNAME), "builder");
    assert_eq!(value(server, label::PASSWORD), "b@ild");

    let db = item(&p, "Orders DB");
    assert_eq!(db.draft.kind, ItemKind::Login);
    assert_eq!(value(db, label::USERNAME), "orders");
    assert_eq!(value(db, label::PASSWORD), "pg-secret");
    assert_eq!(value(db, "server"), "db.example.com");
    assert_eq!(value(db, "port"), "5432");
    assert_eq!(value(db, "type"), "postgresql");

    let api = item(&p, "Payments API");
    assert_eq!(api.draft.kind, ItemKind::ApiKey);
    assert_eq!(value(api, label::USERNAME), "acct_123");
    assert_eq!(
        field(api, label::KEY),
        ("sk_live_abcdef", FieldKind::Secret, false)
    );
    assert_eq!(value(api, label::URL), "https://api.pay.example");
    assert_eq!(value(api, "expires"), "2031-01-01");

    let ssh = item(&p, "Deploy key");
    assert_eq!(ssh.draft.kind, ItemKind::SshKey);
    assert!(value(ssh, label::PRIVATE_KEY).starts_with("-----BEGIN OPENSSH PRIVATE KEY-----\n"));
    assert_eq!(
        value(ssh, label::PUBLIC_KEY),
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHk1"
    );
    assert_eq!(value(ssh, label::FINGERPRINT), "SHA256:abcdefghijklmnop");

    let bank = item(&p, "Checking");
    assert_eq!(bank.draft.kind, ItemKind::Custom);
    assert_eq!(value(bank, "bank name"), "First Bank");
    assert_eq!(value(bank, "IBAN"), "DE89370400440532013000");
    assert_eq!(field(bank, "PIN"), ("2468", FieldKind::Secret, true));

    let lic = item(&p, "Editor licence");
    assert_eq!(lic.draft.kind, ItemKind::Custom);
    assert_eq!(
        field(lic, "license key"),
        ("ABCD-EFGH-IJKL\nline two", FieldKind::Multiline, false)
    );
    assert!(lic.unmapped.iter().any(|u| u.contains("linked login")));

    let old = item(&p, "Old forum");
    assert!(old.trashed);
    assert_eq!(value(old, label::PASSWORD), "trashed-pass");
}

#[test]
fn detection() {
    assert_eq!(detect_bytes(&fixture(FIXTURE)), Some(Format::OnePux));
    assert_eq!(detect_bytes(b"PK\x03\x04garbage"), None);
}

#[test]
fn garbage_truncation_and_missing_data_are_malformed() {
    let full = fixture(FIXTURE);
    for bytes in [
        &b""[..],
        b"not a zip",
        &full[..full.len() / 2],
        &full[..full.len() - 10],
    ] {
        match run(Format::OnePux, bytes, None) {
            Err(ImportError::Malformed { format, at, .. }) => {
                assert_eq!(format, Format::OnePux);
                assert_eq!(at, "zip directory");
            }
            other => panic!("{other:?}"),
        }
    }
    // A zip without export.data.
    let mut buf = std::io::Cursor::new(Vec::new());
    {
        let mut z = zip::ZipWriter::new(&mut buf);
        z.start_file("other.txt", zip::write::SimpleFileOptions::default())
            .expect("zip");
        std::io::Write::write_all(&mut z, b"hi").expect("zip");
        z.finish().expect("zip");
    }
    match run(Format::OnePux, buf.get_ref(), None) {
        Err(ImportError::Malformed { at, .. }) => assert_eq!(at, "export.data"),
        other => panic!("{other:?}"),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]
    #[test]
    fn damaged_archives_never_panic(cut in 0usize..20000, at in 0usize..20000, byte in any::<u8>()) {
        let full = fixture(FIXTURE);
        check_damaged(Format::OnePux, &full[..cut.min(full.len())], None);
        let mut flipped = full.clone();
        let i = at % flipped.len();
        flipped[i] ^= byte | 1;
        check_damaged(Format::OnePux, &flipped, None);
    }
}
