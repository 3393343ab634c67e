//! Firefox's password CSV (`about:logins` → Export): `url`, `username`,
//! `password`, `httpRealm`, `formActionOrigin`, `guid`, `timeCreated`,
//! `timeLastUsed`, `timePasswordChanged` (times in unix milliseconds).

use super::table::{self, Table, push};
use super::{Format, ImportItem, Parsed, Result, Source};
use crate::engine::ItemDraft;
use crate::engine::model::{FieldKind, ItemKind, label};

const FORMAT: Format = Format::FirefoxCsv;
const REQUIRED: [&str; 3] = ["url", "username", "password"];
const KNOWN: [&str; 9] = [
    "url",
    "username",
    "password",
    "httprealm",
    "formactionorigin",
    "guid",
    "timecreated",
    "timelastused",
    "timepasswordchanged",
];

/// Whether the first line is Firefox's header (`httpRealm` and `guid` tell
/// it from other URL/username/password files).
#[must_use]
pub fn detect(bytes: &[u8]) -> bool {
    table::header_cells(bytes)
        .is_some_and(|h| table::has_all(&h, &["url", "username", "password", "httprealm", "guid"]))
}

/// Reads a Firefox password CSV: every row is a login named after its
/// site's host.
///
/// # Errors
/// [`super::ImportError::Malformed`] at `line 1` when the header is not Firefox's.
pub fn parse(source: &Source<'_>) -> Result<Parsed> {
    let t = Table::read(FORMAT, source.bytes, &REQUIRED)?;
    let mut parsed = Parsed {
        problems: t.problems.clone(),
        ..Parsed::default()
    };
    let total = t.rows.len() as u64;
    for (i, row) in t.rows.iter().enumerate() {
        let url = t.get(row, "url").trim();
        let username = t.get(row, "username");
        let mut fields = Vec::new();
        push(&mut fields, label::USERNAME, username, FieldKind::Text);
        push(
            &mut fields,
            label::PASSWORD,
            t.get(row, "password"),
            FieldKind::Secret,
        );
        push(&mut fields, label::URL, url, FieldKind::Url);
        push(
            &mut fields,
            "http realm",
            t.get(row, "httprealm"),
            FieldKind::Text,
        );
        let draft = ItemDraft {
            kind: ItemKind::Login,
            name: table::fallback_name("", url, username, ItemKind::Login),
            fields,
            tags: Vec::new(),
            folder: None,
            favorite: false,
        };
        let mut item = ImportItem::new(draft, row.at());
        let ms = |col: &str| {
            t.get(row, col)
                .trim()
                .parse::<i64>()
                .ok()
                .filter(|&v| v > 0)
        };
        item.created_at = ms("timecreated");
        item.updated_at = ms("timepasswordchanged").or(item.created_at);
        item.source_id = Some(t.get(row, "guid").trim())
            .filter(|g| !g.is_empty())
            .map(str::to_owned);
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

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use crate::engine::model::{FieldKind, ItemKind, label};
    use crate::import::table::testing::{
        check_damaged, field, fixture, item, ok, run, value, values,
    };
    use crate::import::{Format, ImportError, detect_bytes};

    const FIXTURE: &str = "firefox-csv/logins.csv";

    #[test]
    fn rows_become_logins_with_times_and_guid() {
        let p = ok(Format::FirefoxCsv, FIXTURE);
        assert_eq!(p.items.len(), 4);
        assert_eq!(p.problems.len(), 1);
        assert_eq!(p.problems[0].at, "line 5");

        let gh = item(&p, "github.com");
        assert_eq!(gh.draft.kind, ItemKind::Login);
        assert_eq!(value(gh, label::URL), "https://github.com");
        assert_eq!(value(gh, label::USERNAME), "octocat@example.com");
        assert_eq!(
            field(gh, label::PASSWORD),
            ("  p@ss, wörd \"quoted\"  ", FieldKind::Secret, false)
        );
        assert_eq!(gh.created_at, Some(1_600_000_000_000));
        assert_eq!(gh.updated_at, Some(1_650_000_000_000));
        assert_eq!(
            gh.source_id.as_deref(),
            Some("{5ec0c5b4-1b8e-4a3e-9d3c-6a1f2e3d4c5b}")
        );
        assert!(values(gh, "http realm").is_empty());

        let realm = item(&p, "intranet.example.com");
        assert_eq!(value(realm, "http realm"), "Staff only");
        assert_eq!(value(realm, label::PASSWORD), "пароль 🔑\nwith newline");

        let user_only = item(&p, "router.local");
        assert_eq!(value(user_only, label::USERNAME), "admin");
        assert_eq!(user_only.updated_at, Some(1_600_000_000_000));
        assert_eq!(item(&p, "accounts.firefox.com").at, "line 7");
    }

    #[test]
    fn detection_and_bad_header() {
        assert_eq!(detect_bytes(&fixture(FIXTURE)), Some(Format::FirefoxCsv));
        assert!(matches!(
            run(Format::FirefoxCsv, b"\"hostname\",\"user\"\n", None),
            Err(ImportError::Malformed { format: Format::FirefoxCsv, at, .. }) if at == "line 1"
        ));
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        #[test]
        fn damaged_files_never_panic(cut in 0usize..1500, at in 0usize..1500, byte in any::<u8>()) {
            let full = fixture(FIXTURE);
            check_damaged(Format::FirefoxCsv, &full[..cut.min(full.len())], None);
            let mut flipped = full.clone();
            let i = at % flipped.len();
            flipped[i] ^= byte | 1;
            check_damaged(Format::FirefoxCsv, &flipped, None);
        }
    }
}
