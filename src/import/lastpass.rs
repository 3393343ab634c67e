//! LastPass's CSV export: `url,username,password,totp,extra,name,grouping,fav`
//! (`totp` only in newer exports). A row whose URL is `http://sn` is a
//! secure note; a note whose `extra` starts with `NoteType:` holds
//! `Key:Value` lines of a typed note (credit card, address, SSH key, …),
//! mapped to the closest OpenK kind. The mapping is in docs/import.md.

use super::table::{self, Table, push, push_hidden, push_totp};
use super::{Format, ImportItem, Parsed, Result, Source};
use crate::engine::ItemDraft;
use crate::engine::model::{Field, FieldKind, ItemKind, label};

const FORMAT: Format = Format::LastpassCsv;
const REQUIRED: [&str; 6] = ["url", "username", "password", "extra", "name", "grouping"];
const KNOWN: [&str; 8] = [
    "url", "username", "password", "totp", "extra", "name", "grouping", "fav",
];

/// Whether the first line is LastPass's header.
#[must_use]
pub fn detect(bytes: &[u8]) -> bool {
    table::header_cells(bytes).is_some_and(|h| table::has_all(&h, &REQUIRED))
}

/// Reads a LastPass CSV export.
///
/// # Errors
/// [`super::ImportError::Malformed`] at `line 1` when the header is not LastPass's.
pub fn parse(source: &Source<'_>) -> Result<Parsed> {
    let t = Table::read(FORMAT, source.bytes, &REQUIRED)?;
    let mut parsed = Parsed {
        problems: t.problems.clone(),
        ..Parsed::default()
    };
    let total = t.rows.len() as u64;
    for (i, row) in t.rows.iter().enumerate() {
        let url = t.get(row, "url").trim();
        let extra = t.get(row, "extra");
        let mut unmapped = Vec::new();
        let (kind, fields) = if url == "http://sn" {
            note(extra, &mut unmapped)
        } else {
            let mut f = Vec::new();
            push(
                &mut f,
                label::USERNAME,
                t.get(row, "username"),
                FieldKind::Text,
            );
            push(
                &mut f,
                label::PASSWORD,
                t.get(row, "password"),
                FieldKind::Secret,
            );
            push(&mut f, label::URL, url, FieldKind::Url);
            push_totp(&mut f, t.get(row, "totp"), &mut unmapped);
            push(&mut f, label::NOTES, extra, FieldKind::Multiline);
            (ItemKind::Login, f)
        };
        let folder = t
            .get(row, "grouping")
            .split('\\')
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .collect::<Vec<_>>()
            .join("/");
        let name_url = if url == "http://sn" { "" } else { url };
        let draft = ItemDraft {
            kind,
            name: table::fallback_name(t.get(row, "name"), name_url, t.get(row, "username"), kind),
            fields,
            tags: Vec::new(),
            folder: Some(folder).filter(|f| !f.is_empty()),
            favorite: t.get(row, "fav").trim() == "1",
        };
        let mut item = ImportItem::new(draft, row.at());
        item.unmapped = unmapped;
        parsed.items.push(item);
        (source.progress)(i as u64 + 1, total);
    }
    let extra = t.other_columns(&KNOWN);
    if !extra.is_empty() {
        parsed
            .notes
            .push(format!("columns not imported: {}", extra.join(", ")));
    }
    Ok(parsed)
}

/// The `Key:Value` lines of a typed note: a line whose text before the
/// first `:` is a short key starts a value; other lines continue the one
/// before (multi-line keys and addresses); everything after `Notes:` is the
/// note.
fn key_values(extra: &str) -> (Vec<(String, String)>, String) {
    let mut pairs: Vec<(String, String)> = Vec::new();
    let mut lines = extra.split('\n').map(|l| l.strip_suffix('\r').unwrap_or(l));
    let mut notes = String::new();
    while let Some(line) = lines.next() {
        let key = line
            .split_once(':')
            .map(|(k, v)| (k.trim(), v))
            .filter(|(k, _)| !k.is_empty() && k.chars().count() <= 40 && !k.contains("-----"));
        match key {
            Some(("Notes", v)) => {
                notes = std::iter::once(v)
                    .chain(lines.by_ref())
                    .collect::<Vec<_>>()
                    .join("\n");
            }
            Some((k, v)) => pairs.push((k.to_owned(), v.to_owned())),
            None => match pairs.last_mut() {
                Some((_, v)) => {
                    v.push('\n');
                    v.push_str(line);
                }
                None if line.is_empty() => {}
                None => pairs.push(("text".into(), line.to_owned())),
            },
        }
    }
    (pairs, notes)
}

/// `June,2025` (LastPass's expiry) → `06/2025`; other text unchanged.
fn expiry(v: &str) -> String {
    const MONTHS: [&str; 12] = [
        "january",
        "february",
        "march",
        "april",
        "may",
        "june",
        "july",
        "august",
        "september",
        "october",
        "november",
        "december",
    ];
    if let Some((m, y)) = v.split_once(',') {
        let m = m.trim().to_ascii_lowercase();
        if let Some(i) = MONTHS.iter().position(|name| *name == m) {
            return format!("{:02}/{}", i + 1, y.trim());
        }
    }
    v.to_owned()
}

/// What a typed note's keys map to, per note type: `(key, label, kind)`.
fn standard(note_type: &str) -> (ItemKind, &'static [(&'static str, &'static str, FieldKind)]) {
    use FieldKind::{Email, Multiline, Secret, Text, Url};
    match note_type {
        "Credit Card" => (
            ItemKind::Card,
            &[
                ("Name on Card", label::CARDHOLDER, Text),
                ("Number", label::NUMBER, Secret),
                ("Security Code", label::CVV, Secret),
                ("Expiration Date", label::EXPIRY, Text),
                ("Type", "brand", Text),
            ],
        ),
        "Address" => (
            ItemKind::Identity,
            &[
                ("Email Address", label::EMAIL, Email),
                ("Phone", label::PHONE, Text),
                ("Company", label::COMPANY, Text),
                ("Birthday", label::BIRTHDAY, Text),
            ],
        ),
        "SSH Key" => (
            ItemKind::SshKey,
            &[
                ("Private Key", label::PRIVATE_KEY, Secret),
                ("Public Key", label::PUBLIC_KEY, Text),
                ("Passphrase", label::PASSPHRASE, Secret),
            ],
        ),
        "Server" | "Database" | "Email Account" | "Instant Messenger" => (
            ItemKind::Login,
            &[
                ("Username", label::USERNAME, Text),
                ("Password", label::PASSWORD, Secret),
                ("Hostname", label::URL, Url),
            ],
        ),
        "Wi-Fi Password" => (ItemKind::Login, &[("Password", label::PASSWORD, Secret)]),
        "Software License" => (
            ItemKind::Custom,
            &[("License Key", "license key", Multiline)],
        ),
        _ => (ItemKind::Custom, &[]),
    }
}

/// Whether a custom key's value should be hidden.
fn secret_key(key: &str) -> bool {
    let k = key.to_ascii_lowercase();
    [
        "password",
        "pin",
        "code",
        "passphrase",
        "key",
        "number",
        "ssn",
    ]
    .iter()
    .any(|w| {
        k.split(|c: char| !c.is_alphanumeric())
            .any(|part| part == *w)
    })
}

/// A secure note: plain, or typed (`NoteType:` first).
fn note(extra: &str, unmapped: &mut Vec<String>) -> (ItemKind, Vec<Field>) {
    let mut fields = Vec::new();
    let Some(rest) = extra.strip_prefix("NoteType:") else {
        push(&mut fields, label::NOTES, extra, FieldKind::Multiline);
        return (ItemKind::Note, fields);
    };
    let (note_type, _) = rest.split_once('\n').unwrap_or((rest, ""));
    let note_type = note_type.trim();
    let (pairs, notes) = key_values(extra);
    let (kind, map) = standard(note_type);
    if kind == ItemKind::Custom && map.is_empty() {
        fields.push(Field::new("type", note_type, FieldKind::Text));
    }
    let mut address: Vec<String> = Vec::new();
    let mut name: [String; 4] = Default::default();
    for (k, v) in &pairs {
        if k == "NoteType" || k == "Language" {
            continue;
        }
        if let Some((_, lbl, fk)) = map.iter().find(|(key, _, _)| key == k) {
            let v = if *lbl == label::EXPIRY {
                expiry(v)
            } else {
                v.clone()
            };
            push(&mut fields, lbl, &v, *fk);
            continue;
        }
        if kind == ItemKind::Identity {
            let slot = ["Title", "First Name", "Middle Name", "Last Name"]
                .iter()
                .position(|n| n == k);
            if let Some(slot) = slot {
                name[slot].clone_from(v);
                continue;
            }
            if [
                "Address 1",
                "Address 2",
                "Address 3",
                "City / Town",
                "County",
                "State",
                "Zip / Postal Code",
                "Country",
            ]
            .contains(&k.as_str())
            {
                if !v.trim().is_empty() {
                    address.push(v.trim().to_owned());
                }
                continue;
            }
        }
        if secret_key(k) {
            push_hidden(&mut fields, k, v);
        } else {
            let fk = if v.contains('\n') {
                FieldKind::Multiline
            } else {
                FieldKind::Text
            };
            push(&mut fields, k, v, fk);
        }
    }
    if kind == ItemKind::Identity {
        let full = name
            .iter()
            .map(|p| p.trim())
            .filter(|p| !p.is_empty())
            .collect::<Vec<_>>()
            .join(" ");
        if !full.is_empty() {
            fields.insert(0, Field::new(label::FULL_NAME, full, FieldKind::Text));
        }
        push(
            &mut fields,
            label::ADDRESS,
            &address.join("\n"),
            FieldKind::Multiline,
        );
    }
    if map.is_empty() && kind == ItemKind::Custom {
        unmapped.push(format!(
            "note type {:?} (kept as a custom item with its fields)",
            crate::text::line(note_type)
        ));
    }
    push(&mut fields, label::NOTES, &notes, FieldKind::Multiline);
    (kind, fields)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use crate::engine::model::{FieldKind, ItemKind, label};
    use crate::import::table::testing::{
        check_damaged, field, fixture, item, ok, run, value, values,
    };
    use crate::import::{Format, ImportError, detect_bytes};

    const FIXTURE: &str = "lastpass-csv/lastpass_export.csv";

    #[test]
    fn logins_notes_and_typed_notes() {
        let p = ok(Format::LastpassCsv, FIXTURE);
        assert_eq!(p.problems.len(), 1, "{:?}", p.problems);
        assert_eq!(p.problems[0].at, "line 16");
        assert_eq!(p.items.len(), 8);

        let gh = item(&p, "GitHub — Ünïcødé 🔑");
        assert_eq!(gh.draft.kind, ItemKind::Login);
        assert_eq!(gh.at, "line 2");
        assert_eq!(value(gh, label::URL), "https://github.com/login");
        assert_eq!(value(gh, label::USERNAME), "octocat@example.com");
        assert_eq!(
            field(gh, label::PASSWORD),
            ("  p@ss, wörd \"quoted\"  ", FieldKind::Secret, false)
        );
        assert_eq!(
            field(gh, label::TOTP),
            ("JBSWY3DPEHPK3PXP", FieldKind::Totp, false)
        );
        assert_eq!(
            value(gh, label::NOTES),
            "Recovery codes in the safe.\nSecond line"
        );
        assert_eq!(gh.draft.folder.as_deref(), Some("Work/Dev"));
        assert!(gh.draft.favorite);

        let note = item(&p, "Wi-Fi notes");
        assert_eq!(note.draft.kind, ItemKind::Note);
        assert_eq!(value(note, label::NOTES), "SSID: Home-5G\nPassword: horse");
        assert_eq!(note.draft.folder, None);

        let card = item(&p, "Visa");
        assert_eq!(card.draft.kind, ItemKind::Card);
        assert_eq!(value(card, label::CARDHOLDER), "Jane Q. Doe");
        assert_eq!(
            field(card, label::NUMBER),
            ("4111111111111111", FieldKind::Secret, false)
        );
        assert_eq!(value(card, label::CVV), "123");
        assert_eq!(value(card, label::EXPIRY), "07/2029");
        assert_eq!(value(card, "brand"), "Visa");
        assert_eq!(value(card, "Start Date"), "January,2020");
        assert_eq!(value(card, label::NOTES), "Card notes\nline two");

        let id = item(&p, "Home address");
        assert_eq!(id.draft.kind, ItemKind::Identity);
        assert_eq!(value(id, label::FULL_NAME), "Dr Jane Quinn Doe");
        assert_eq!(
            field(id, label::EMAIL),
            ("jane@example.com", FieldKind::Email, false)
        );
        assert_eq!(
            value(id, label::ADDRESS),
            "1 Main Street\nApt 2\nSpringfield\nIL\n62701\nUS"
        );
        assert_eq!(value(id, label::COMPANY), "Acme Corp");

        let ssh = item(&p, "Deploy key");
        assert_eq!(ssh.draft.kind, ItemKind::SshKey);
        assert_eq!(
            value(ssh, label::PRIVATE_KEY),
            "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n-----END OPENSSH PRIVATE KEY-----"
        );
        assert_eq!(
            value(ssh, label::PUBLIC_KEY),
            "ssh-ed25519 AAAAC3Nza deploy@example"
        );
        assert_eq!(value(ssh, label::PASSPHRASE), "s3cret");
        assert_eq!(value(ssh, "Hostname"), "build.example.com");

        let db = item(&p, "Orders DB");
        assert_eq!(db.draft.kind, ItemKind::Login);
        assert_eq!(value(db, label::USERNAME), "orders");
        assert_eq!(value(db, label::PASSWORD), "pg-secret");
        assert_eq!(value(db, label::URL), "db.example.com");
        assert_eq!(value(db, "Port"), "5432");

        let bank = item(&p, "Checking");
        assert_eq!(bank.draft.kind, ItemKind::Custom);
        assert_eq!(value(bank, "type"), "Bank Account");
        assert_eq!(value(bank, "Bank Name"), "First Bank");
        assert_eq!(
            field(bank, "Account Number"),
            ("000123456", FieldKind::Secret, true)
        );
        assert_eq!(field(bank, "PIN"), ("2468", FieldKind::Secret, true));
        assert!(bank.unmapped.iter().any(|u| u.contains("Bank Account")));
        assert!(values(bank, label::NOTES).is_empty());

        assert_eq!(value(item(&p, "nameless.example"), label::USERNAME), "anon");
    }

    #[test]
    fn detection_and_bad_header() {
        assert_eq!(detect_bytes(&fixture(FIXTURE)), Some(Format::LastpassCsv));
        assert_eq!(
            detect_bytes(b"url,username,password,extra,name,grouping,fav\n"),
            Some(Format::LastpassCsv)
        );
        assert!(matches!(
            run(Format::LastpassCsv, b"url,username,password\n", None),
            Err(ImportError::Malformed { format: Format::LastpassCsv, at, .. }) if at == "line 1"
        ));
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        #[test]
        fn damaged_files_never_panic(cut in 0usize..2500, at in 0usize..2500, byte in any::<u8>()) {
            let full = fixture(FIXTURE);
            check_damaged(Format::LastpassCsv, &full[..cut.min(full.len())], None);
            let mut flipped = full.clone();
            let i = at % flipped.len();
            flipped[i] ^= byte | 1;
            check_damaged(Format::LastpassCsv, &flipped, None);
        }
    }
}
