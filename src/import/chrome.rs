//! Chrome's (and Chromium's, Edge's, Brave's) password CSV:
//! `name,url,username,password` and, in newer versions, `note`.

use super::table::{self, Table, push};
use super::{Format, ImportItem, Parsed, Result, Source};
use crate::engine::ItemDraft;
use crate::engine::model::{FieldKind, ItemKind, label};

const FORMAT: Format = Format::ChromeCsv;
const COLUMNS: [&str; 5] = ["name", "url", "username", "password", "note"];

/// Whether the first line is Chrome's header (those columns and no others).
#[must_use]
pub fn detect(bytes: &[u8]) -> bool {
    table::header_cells(bytes).is_some_and(|h| {
        table::has_all(&h, &COLUMNS[..4]) && h.iter().all(|c| COLUMNS.contains(&c.as_str()))
    })
}

/// Reads a Chrome password CSV: every row is a login.
///
/// # Errors
/// [`super::ImportError::Malformed`] at `line 1` when the header is not Chrome's.
pub fn parse(source: &Source<'_>) -> Result<Parsed> {
    let t = Table::read(FORMAT, source.bytes, &COLUMNS[..4])?;
    let mut parsed = Parsed {
        problems: t.problems.clone(),
        ..Parsed::default()
    };
    let total = t.rows.len() as u64;
    for (i, row) in t.rows.iter().enumerate() {
        let url = t.get(row, "url");
        let username = t.get(row, "username");
        let mut fields = Vec::new();
        push(&mut fields, label::USERNAME, username, FieldKind::Text);
        push(
            &mut fields,
            label::PASSWORD,
            t.get(row, "password"),
            FieldKind::Secret,
        );
        push(&mut fields, label::URL, url.trim(), FieldKind::Url);
        push(
            &mut fields,
            label::NOTES,
            t.get(row, "note"),
            FieldKind::Multiline,
        );
        let draft = ItemDraft {
            kind: ItemKind::Login,
            name: table::fallback_name(t.get(row, "name"), url, username, ItemKind::Login),
            fields,
            tags: Vec::new(),
            folder: None,
            favorite: false,
        };
        parsed.items.push(ImportItem::new(draft, row.at()));
        (source.progress)(i as u64 + 1, total);
    }
    let extra = t.other_columns(&COLUMNS);
    if !extra.is_empty() {
        parsed
            .notes
            .push(format!("columns not imported: {}", extra.join(", ")));
    }
    Ok(parsed)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use crate::engine::model::{FieldKind, ItemKind, label};
    use crate::import::table::testing::{check_damaged, field, fixture, item, ok, run, value};
    use crate::import::{Format, ImportError, detect_bytes};

    const FIXTURE: &str = "chrome-csv/Chrome Passwords.csv";

    #[test]
    fn rows_become_logins() {
        let p = ok(Format::ChromeCsv, FIXTURE);
        assert_eq!(p.items.len(), 4);
        assert_eq!(p.problems.len(), 1);
        assert_eq!(p.problems[0].at, "line 5");

        let gh = item(&p, "github.com");
        assert_eq!(gh.draft.kind, ItemKind::Login);
        assert_eq!(gh.at, "line 2");
        assert_eq!(value(gh, label::URL), "https://github.com/login");
        assert_eq!(value(gh, label::USERNAME), "octocat@example.com");
        assert_eq!(
            field(gh, label::PASSWORD),
            ("  p@ss, wörd \"quoted\"  ", FieldKind::Secret, false)
        );
        assert_eq!(
            value(gh, label::NOTES),
            "Recovery codes in the safe.\nSecond line"
        );

        let uni = item(&p, "Ünïcødé 🔑 bank");
        assert_eq!(value(uni, label::PASSWORD), "пароль");
        // A nameless row is named after its URL's host.
        let nameless = item(&p, "www.nameless.example");
        assert_eq!(value(nameless, label::USERNAME), "anon");
        // An Android app entry keeps its URL as it was.
        let app = item(&p, "com.example.app");
        assert_eq!(value(app, label::URL), "android://hash@com.example.app/");
    }

    #[test]
    fn detection_and_bad_header() {
        assert_eq!(detect_bytes(&fixture(FIXTURE)), Some(Format::ChromeCsv));
        assert_eq!(
            detect_bytes(b"name,url,username,password\n"),
            Some(Format::ChromeCsv)
        );
        assert!(matches!(
            run(Format::ChromeCsv, b"title,website\nx,y\n", None),
            Err(ImportError::Malformed { format: Format::ChromeCsv, at, .. }) if at == "line 1"
        ));
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        #[test]
        fn damaged_files_never_panic(cut in 0usize..1000, at in 0usize..1000, byte in any::<u8>()) {
            let full = fixture(FIXTURE);
            check_damaged(Format::ChromeCsv, &full[..cut.min(full.len())], None);
            let mut flipped = full.clone();
            let i = at % flipped.len();
            flipped[i] ^= byte | 1;
            check_damaged(Format::ChromeCsv, &flipped, None);
        }
    }
}
