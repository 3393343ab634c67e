//! 1Password's CSV export. 1Password 8 writes
//! `Title,Url,Username,Password,OTPAuth,Favorite,Archived,Tags,Notes`;
//! older versions and hand-edited files name and order columns
//! differently, so columns are found by name, case-insensitively, and any
//! other column becomes a custom field.

use super::table::{self, Table, push, push_totp};
use super::{Format, ImportItem, Parsed, Result, Source};
use crate::engine::ItemDraft;
use crate::engine::model::{FieldKind, ItemKind, label};

const FORMAT: Format = Format::OnePasswordCsv;

/// Accepted names of each column, first the one 1Password 8 writes.
const TITLE: [&str; 2] = ["title", "name"];
const URL: [&str; 4] = ["url", "urls", "website", "login_uri"];
const USERNAME: [&str; 3] = ["username", "login", "user"];
const PASSWORD: [&str; 1] = ["password"];
const OTP: [&str; 4] = ["otpauth", "one-time password", "totp", "otp"];
const FAVORITE: [&str; 2] = ["favorite", "favourite"];
const ARCHIVED: [&str; 1] = ["archived"];
const TAGS: [&str; 1] = ["tags"];
const NOTES: [&str; 3] = ["notes", "notesplain", "note"];

/// Whether the first line looks like 1Password's header: a title and a
/// password column and one of 1Password's own (`OTPAuth`, `Archived`), and
/// not a KeePassXC export (which has `Group`).
#[must_use]
pub fn detect(bytes: &[u8]) -> bool {
    table::header_cells(bytes).is_some_and(|h| {
        table::has_all(&h, &["title", "password"])
            && (table::has_all(&h, &["otpauth"]) || table::has_all(&h, &["archived"]))
            && !table::has_all(&h, &["group"])
    })
}

fn col<'a>(t: &Table, row: &'a table::Row, names: &[&str]) -> &'a str {
    names
        .iter()
        .find(|n| t.has(n))
        .map_or("", |n| t.get(row, n))
}

fn truthy(s: &str) -> bool {
    matches!(
        s.trim().to_ascii_lowercase().as_str(),
        "true" | "1" | "yes" | "y" | "✓"
    )
}

/// Reads a 1Password CSV export: rows with a username, password or URL are
/// logins, others secure notes.
///
/// # Errors
/// [`super::ImportError::Malformed`] at `line 1` without a `Title` and a
/// `Password` column.
pub fn parse(source: &Source<'_>) -> Result<Parsed> {
    let t = Table::read(FORMAT, source.bytes, &["title", "password"])?;
    let known: Vec<&str> = [
        &TITLE[..],
        &URL,
        &USERNAME,
        &PASSWORD,
        &OTP,
        &FAVORITE,
        &ARCHIVED,
        &TAGS,
        &NOTES,
    ]
    .concat();
    let custom = t.other_columns(&known);
    let mut parsed = Parsed {
        problems: t.problems.clone(),
        ..Parsed::default()
    };
    let total = t.rows.len() as u64;
    for (i, row) in t.rows.iter().enumerate() {
        let url = col(&t, row, &URL);
        let username = col(&t, row, &USERNAME);
        let password = col(&t, row, &PASSWORD);
        let otp = col(&t, row, &OTP);
        let kind = if [url, username, password, otp].iter().all(|v| v.is_empty()) {
            ItemKind::Note
        } else {
            ItemKind::Login
        };
        let mut fields = Vec::new();
        let mut unmapped = Vec::new();
        push(&mut fields, label::USERNAME, username, FieldKind::Text);
        push(&mut fields, label::PASSWORD, password, FieldKind::Secret);
        for u in url.split('\n').map(str::trim) {
            push(&mut fields, label::URL, u, FieldKind::Url);
        }
        push_totp(&mut fields, otp, &mut unmapped);
        for c in &custom {
            push(&mut fields, c, t.get(row, c), FieldKind::Text);
        }
        push(
            &mut fields,
            label::NOTES,
            col(&t, row, &NOTES),
            FieldKind::Multiline,
        );
        let tags = col(&t, row, &TAGS)
            .split([',', ';'])
            .filter_map(table::clean_tag)
            .collect();
        let draft = ItemDraft {
            kind,
            name: table::fallback_name(col(&t, row, &TITLE), url, username, kind),
            fields,
            tags,
            folder: None,
            favorite: truthy(col(&t, row, &FAVORITE)),
        };
        let mut item = ImportItem::new(draft, row.at());
        item.trashed = truthy(col(&t, row, &ARCHIVED));
        item.unmapped = unmapped;
        parsed.items.push(item);
        (source.progress)(i as u64 + 1, total);
    }
    Ok(parsed)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use crate::engine::model::{FieldKind, ItemKind, label};
    use crate::import::table::testing::{check_damaged, field, fixture, item, ok, run, value};
    use crate::import::{Format, ImportError, detect_bytes};

    const FIXTURE: &str = "1password-csv/1PasswordExport.csv";

    #[test]
    fn rows_map_by_header_name() {
        let p = ok(Format::OnePasswordCsv, FIXTURE);
        assert_eq!(p.items.len(), 4);
        assert_eq!(p.problems.len(), 1);
        assert_eq!(p.problems[0].at, "line 6");

        let gh = item(&p, "GitHub — Ünïcødé 🔑");
        assert_eq!(gh.draft.kind, ItemKind::Login);
        assert_eq!(gh.at, "line 2");
        assert_eq!(value(gh, label::URL), "https://github.com/login");
        assert_eq!(value(gh, label::USERNAME), "octocat@example.com");
        assert_eq!(
            field(gh, label::PASSWORD),
            ("  p@ss, wörd \"quoted\"  ", FieldKind::Secret, false)
        );
        assert_eq!(field(gh, label::TOTP).1, FieldKind::Totp);
        assert!(value(gh, label::TOTP).contains("JBSWY3DPEHPK3PXP"));
        assert!(gh.draft.favorite);
        assert!(!gh.trashed);
        assert_eq!(gh.draft.tags, ["dev", "work-stuff"]);
        assert_eq!(
            value(gh, label::NOTES),
            "Recovery codes in the safe.\nSecond line"
        );

        let note = item(&p, "Wi-Fi at home");
        assert_eq!(note.draft.kind, ItemKind::Note);
        assert_eq!(value(note, label::NOTES), "SSID: Home-5G\nPassword: horse");

        let old = item(&p, "Old forum");
        assert!(old.trashed);
        assert!(!old.draft.favorite);
        assert_eq!(value(old, label::PASSWORD), "trashed-pass");

        assert_eq!(value(item(&p, "nameless.example"), label::USERNAME), "anon");
    }

    #[test]
    fn other_header_spellings_and_extra_columns() {
        let csv = "\"NOTES\",\"website\",\"PASSWORD\",\"Title\",\"Security Question\"\n\
                   \"n\",\"https://a.example\",\"pw\",\"A\",\"Rex\"\n";
        let p = run(Format::OnePasswordCsv, csv.as_bytes(), None).expect("parses");
        let a = item(&p, "A");
        assert_eq!(value(a, label::URL), "https://a.example");
        assert_eq!(value(a, label::PASSWORD), "pw");
        assert_eq!(value(a, label::NOTES), "n");
        assert_eq!(value(a, "security question"), "Rex");
    }

    #[test]
    fn detection_and_bad_header() {
        assert_eq!(
            detect_bytes(&fixture(FIXTURE)),
            Some(Format::OnePasswordCsv)
        );
        // KeePassXC's CSV also has Title and Password, but a Group.
        assert_ne!(
            detect_bytes(b"\"Group\",\"Title\",\"Username\",\"Password\",\"URL\",\"Notes\",\"TOTP\",\"Icon\",\"Last Modified\",\"Created\",\"Archived\"\n"),
            Some(Format::OnePasswordCsv)
        );
        assert!(matches!(
            run(Format::OnePasswordCsv, b"url,username\n", None),
            Err(ImportError::Malformed { format: Format::OnePasswordCsv, at, .. }) if at == "line 1"
        ));
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        #[test]
        fn damaged_files_never_panic(cut in 0usize..1000, at in 0usize..1000, byte in any::<u8>()) {
            let full = fixture(FIXTURE);
            check_damaged(Format::OnePasswordCsv, &full[..cut.min(full.len())], None);
            let mut flipped = full.clone();
            let i = at % flipped.len();
            flipped[i] ^= byte | 1;
            check_damaged(Format::OnePasswordCsv, &flipped, None);
        }
    }
}
