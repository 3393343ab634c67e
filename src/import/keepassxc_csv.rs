//! KeePassXC's CSV export (`"Group","Title","Username","Password","URL",
//! "Notes","TOTP","Icon","Last Modified","Created"`; KeePassXC before 2.7
//! wrote the first six columns only), read with the `csv` crate and mapped
//! as in `keepass_entry`. A row that cannot be read is a
//! [`super::Problem`] named by its line; the rest is imported.

use zeroize::Zeroizing;

use super::keepass_entry::{KpEntry, KpString, Place, map_entry};
use super::{Format, ImportError, Parsed, Problem, Result, Source};

/// The columns every KeePassXC CSV export starts with.
const REQUIRED: [&str; 6] = ["Group", "Title", "Username", "Password", "URL", "Notes"];
/// The Recycle Bin's name in KeePassXC (English; the group is named in
/// the language KeePassXC ran in when it made it).
const RECYCLE_BIN: &str = "Recycle Bin";

/// Whether `bytes` start with KeePassXC's CSV header.
#[must_use]
pub fn detect(bytes: &[u8]) -> bool {
    let bytes = bytes.strip_prefix(b"\xef\xbb\xbf").unwrap_or(bytes);
    bytes.starts_with(br#""Group","Title","Username","Password","URL","Notes""#)
}

fn malformed(at: &str, why: impl Into<String>) -> ImportError {
    ImportError::Malformed {
        format: Format::KeepassxcCsv,
        at: at.into(),
        why: why.into(),
    }
}

/// Reads a KeePassXC CSV export.
///
/// # Errors
/// [`ImportError::Malformed`] when the first line is not KeePassXC's header.
pub fn parse(source: &Source<'_>) -> Result<Parsed> {
    let bytes = source
        .bytes
        .strip_prefix(b"\xef\xbb\xbf")
        .unwrap_or(source.bytes);
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .flexible(true)
        .from_reader(bytes);
    let header = reader
        .headers()
        .map_err(|e| malformed("line 1", format!("the header does not read as CSV: {e}")))?
        .clone();
    let column = |name: &str| header.iter().position(|h| h == name);
    let mut cols = [0usize; 6];
    for (slot, name) in cols.iter_mut().zip(REQUIRED) {
        *slot = column(name).ok_or_else(|| {
            malformed(
                "line 1",
                format!(
                    "no {name:?} column: not a KeePassXC CSV export (its header starts \
                     \"Group\",\"Title\",\"Username\",\"Password\",\"URL\",\"Notes\")"
                ),
            )
        })?;
    }
    let [group, title, username, password, url, notes] = cols;
    let (totp, modified, created) = (column("TOTP"), column("Last Modified"), column("Created"));
    // Rows may span lines (notes): a line count is only an estimate.
    let total = u64::try_from(bytes.iter().filter(|&&b| b == b'\n').count()).unwrap_or(0);
    (source.progress)(0, total);
    let mut parsed = Parsed::default();
    let mut record = csv::ByteRecord::new();
    let mut done = 0u64;
    loop {
        let line = reader.position().line() + 1;
        let at = format!("line {line}");
        match reader.read_byte_record(&mut record) {
            Ok(false) => break,
            Ok(true) => {}
            Err(e) => {
                parsed.problems.push(Problem {
                    at,
                    why: format!("the row does not read as CSV: {e}"),
                });
                // A CSV error other than a bad row (I/O) cannot be skipped.
                if !matches!(
                    e.kind(),
                    csv::ErrorKind::Utf8 { .. } | csv::ErrorKind::UnequalLengths { .. }
                ) {
                    break;
                }
                continue;
            }
        }
        done += 1;
        (source.progress)(done.min(total), total);
        let line = record.position().map_or(line, csv::Position::line);
        let at = format!("line {line}");
        if record.len() != header.len() {
            parsed.problems.push(Problem {
                at,
                why: format!(
                    "the row has {} columns, the header {}",
                    record.len(),
                    header.len()
                ),
            });
            continue;
        }
        let cell = |i: usize| -> std::result::Result<Zeroizing<String>, String> {
            let raw = record.get(i).unwrap_or_default();
            std::str::from_utf8(raw)
                .map(|s| Zeroizing::new(s.to_owned()))
                .map_err(|_| format!("column {:?} is not UTF-8 text", header.get(i).unwrap_or("")))
        };
        let cell_opt = |i: Option<usize>| i.map_or_else(|| Ok(Zeroizing::new(String::new())), cell);
        let row = (|| -> std::result::Result<_, String> {
            Ok((
                cell(group)?,
                cell(title)?,
                cell(username)?,
                cell(password)?,
                cell(url)?,
                cell(notes)?,
                cell_opt(totp)?,
                cell_opt(modified)?,
                cell_opt(created)?,
            ))
        })();
        let (g, t, u, p, l, n, o, m, c) = match row {
            Ok(row) => row,
            Err(why) => {
                parsed.problems.push(Problem { at, why });
                continue;
            }
        };
        let s = |key: &str, value: Zeroizing<String>, protected: bool| KpString {
            key: key.into(),
            value,
            protected,
        };
        let time = |v: &str| {
            chrono::DateTime::parse_from_rfc3339(v.trim())
                .ok()
                .map(|d| d.timestamp())
        };
        let entry = KpEntry {
            strings: vec![
                s("Title", t, false),
                s("UserName", u, false),
                s("Password", p, true),
                s("URL", l, false),
                s("Notes", n, false),
                s("otp", o, true),
            ],
            created: time(&c),
            modified: time(&m),
            ..KpEntry::default()
        };
        // "Passwords/Web/Dev": the root group's name first.
        let parts: Vec<&str> = g.split('/').skip(1).collect();
        let trashed = parts.first() == Some(&RECYCLE_BIN);
        let folder_parts = if trashed { &parts[1..] } else { &parts[..] };
        let place = Place {
            folder: (!folder_parts.is_empty()).then(|| folder_parts.join("/")),
            problem_at: at.clone(),
            at,
            trashed,
        };
        match map_entry(&entry, &place) {
            Ok(item) => parsed.items.push(item),
            Err(p) => parsed.problems.push(p),
        }
    }
    Ok(parsed)
}

#[cfg(test)]
mod tests {
    use super::super::keepass_entry::fixture::{bytes, check_against_show, field, item, kind, run};
    use super::*;
    use crate::engine::model::FieldKind;
    use proptest::prelude::*;

    fn csv(data: &[u8]) -> Result<Parsed> {
        run(parse, "x.csv", data, None, None)
    }

    #[test]
    fn export_made_by_keepassxc() {
        for (file, show) in [("kdbx4.csv", "kdbx4.show"), ("kdbx31.csv", "kdbx31.show")] {
            let parsed = csv(&bytes(file)).expect("parses");
            assert!(parsed.problems.is_empty(), "{:?}", parsed.problems);
            // Rows are named by line in the report, not by entry path.
            let mut parsed = parsed;
            for i in &mut parsed.items {
                let folder = i.draft.folder.clone().map(|f| f + "/").unwrap_or_default();
                let bin = if i.trashed { "Recycle Bin/" } else { "" };
                i.at = format!("Passwords/{bin}{folder}{}", i.draft.name);
            }
            check_against_show(&parsed, show, false);
            let gh = item(&parsed, "Web/GitHub");
            assert_eq!(kind(gh, "totp"), Some(FieldKind::Totp));
            assert!(gh.created_at.is_some() && gh.updated_at.is_some());
            let bank = item(&parsed, "Bank/Bank of X");
            assert!(field(bank, "totp").is_some_and(|t| t.contains("digits=8")));
            // KeePassXC writes Steam TOTP as otpauth with encoder=steam.
            let steam = item(&parsed, "Games/Steam");
            assert_eq!(field(steam, "totp"), None);
            assert!(steam.unmapped.iter().any(|u| u.contains("Steam")));
            assert!(
                parsed
                    .items
                    .iter()
                    .any(|i| i.trashed && i.draft.name == "Old Account")
            );
        }
    }

    #[test]
    fn bad_rows_are_problems_and_the_rest_is_imported() {
        let data = "\"Group\",\"Title\",\"Username\",\"Password\",\"URL\",\"Notes\"\n\
                    \"Root/A\",\"One\",\"u\",\"p\",\"\",\"\"\n\
                    \"Root\",\"short row\"\n\
                    \"Root\",\"Two\",\"\",\"\",\"\",\"multi\nline\"\n\
                    \"Root\",\"Three\",\"u3\",\"p3\",\"\",\"\"\n";
        let parsed = csv(data.as_bytes()).expect("parses");
        assert_eq!(
            parsed.problems,
            [Problem {
                at: "line 3".into(),
                why: "the row has 2 columns, the header 6".into()
            }]
        );
        let names: Vec<_> = parsed.items.iter().map(|i| i.draft.name.as_str()).collect();
        assert_eq!(names, ["One", "Two", "Three"]);
        assert_eq!(parsed.items[0].at, "line 2");
        assert_eq!(parsed.items[0].draft.folder.as_deref(), Some("A"));
        assert_eq!(parsed.items[2].at, "line 6");
        let mut bad_utf8 = data.as_bytes().to_vec();
        bad_utf8.extend_from_slice(b"\"Root\",\"\xff\",\"\",\"\",\"\",\"\"\n");
        let parsed = csv(&bad_utf8).expect("parses");
        assert!(
            parsed.problems.iter().any(|p| p.at == "line 7"),
            "{:?}",
            parsed.problems
        );
    }

    #[test]
    fn not_keepassxc_csv_is_malformed() {
        for data in [&b""[..], b"a,b,c\n1,2,3\n", b"\xff\xfe\x00garbage"] {
            assert!(matches!(
                csv(data),
                Err(ImportError::Malformed { format: Format::KeepassxcCsv, ref at, .. }) if at == "line 1"
            ));
        }
    }

    #[test]
    fn detects_keepassxc_csv() {
        assert_eq!(
            super::super::detect_bytes(&bytes("kdbx4.csv")),
            Some(Format::KeepassxcCsv)
        );
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        #[test]
        fn truncations_never_panic(cut in 0usize..1500) {
            let full = bytes("kdbx4.csv");
            let cut = cut.min(full.len());
            match csv(&full[..cut]) {
                Ok(_) | Err(ImportError::Malformed { format: Format::KeepassxcCsv, .. }) => {}
                Err(e) => prop_assert!(false, "{e}"),
            }
        }
    }
}
