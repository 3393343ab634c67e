//! Helpers shared by the CSV and JSON importers (Bitwarden, 1Password,
//! LastPass, Chrome, Firefox): reading a CSV file by its header names,
//! building fields, TOTP seeds, times and fallback names.

use std::collections::HashMap;

use super::{Format, ImportError, Problem, Result};
use crate::engine::model::{Field, FieldKind, ItemKind, label};

/// A CSV file read with its header: columns by lower-case name, and the
/// rows that could be read (the others are [`Problem`]s).
pub(crate) struct Table {
    cols: HashMap<String, usize>,
    pub rows: Vec<Row>,
    pub problems: Vec<Problem>,
}

/// One CSV record and the line it starts on.
pub(crate) struct Row {
    pub line: u64,
    pub rec: csv::StringRecord,
}

impl Row {
    /// `line N`, for [`super::ImportItem::at`] and problems.
    pub fn at(&self) -> String {
        format!("line {}", self.line)
    }
}

impl Table {
    /// Reads `bytes` as CSV with a header row that must name every column of
    /// `required` (case-insensitively, in any order; other columns are
    /// allowed). A row that does not parse (wrong number of cells, bad
    /// UTF-8) becomes a problem and the others are kept.
    ///
    /// # Errors
    /// [`ImportError::Malformed`] at `line 1` when the header is missing,
    /// unreadable or lacks a required column.
    pub fn read(format: Format, bytes: &[u8], required: &[&str]) -> Result<Self> {
        let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
        let malformed = |why: String| ImportError::Malformed {
            format,
            at: "line 1".into(),
            why,
        };
        let mut reader = csv::ReaderBuilder::new()
            .has_headers(true)
            .flexible(false)
            .from_reader(bytes);
        let headers = reader
            .headers()
            .map_err(|e| {
                malformed(format!(
                    "the header row does not read as CSV: {}",
                    csv_why(&e)
                ))
            })?
            .clone();
        let mut cols: HashMap<String, usize> = HashMap::new();
        for (i, h) in headers.iter().enumerate() {
            cols.entry(h.trim().to_ascii_lowercase()).or_insert(i);
        }
        let missing: Vec<&str> = required
            .iter()
            .copied()
            .filter(|r| !cols.contains_key(*r))
            .collect();
        if !missing.is_empty() {
            return Err(malformed(format!(
                "the header row lacks the column{} {}; a {format} export starts with the columns {}",
                if missing.len() == 1 { "" } else { "s" },
                missing.join(", "),
                required.join(",")
            )));
        }
        let mut rows = Vec::new();
        let mut problems = Vec::new();
        let mut lines = LineCounter {
            bytes,
            offset: 0,
            line: 1,
        };
        for rec in reader.records() {
            match rec {
                Ok(rec) => {
                    let line = lines.line_at(rec.position());
                    if rec.iter().all(str::is_empty) {
                        continue;
                    }
                    rows.push(Row { line, rec });
                }
                Err(e) => {
                    let line = lines.line_at(e.position());
                    problems.push(Problem {
                        at: format!("line {line}"),
                        why: csv_why(&e),
                    });
                    if matches!(e.kind(), csv::ErrorKind::Io(_)) {
                        break;
                    }
                }
            }
        }
        Ok(Self {
            cols,
            rows,
            problems,
        })
    }

    /// The cell of `row` under the column `name` (lower case), or "" when
    /// the file has no such column.
    pub fn get<'r>(&self, row: &'r Row, name: &str) -> &'r str {
        self.cols
            .get(name)
            .and_then(|&i| row.rec.get(i))
            .unwrap_or("")
    }

    /// Whether the file has the column `name` (lower case).
    pub fn has(&self, name: &str) -> bool {
        self.cols.contains_key(name)
    }

    /// The header names (lower case) that are not in `known`, for the
    /// report's "not mapped".
    pub fn other_columns(&self, known: &[&str]) -> Vec<String> {
        let mut v: Vec<(usize, String)> = self
            .cols
            .iter()
            .filter(|(k, _)| !known.contains(&k.as_str()))
            .map(|(k, &i)| (i, k.clone()))
            .collect();
        v.sort();
        v.into_iter().map(|(_, k)| k).collect()
    }
}

/// The line a record starts on, from its byte offset. (The csv crate's own
/// line numbers lag by one after a CRLF line end, whose `\n` it counts as
/// part of the next record.)
struct LineCounter<'a> {
    bytes: &'a [u8],
    offset: usize,
    line: u64,
}

impl LineCounter<'_> {
    fn line_at(&mut self, pos: Option<&csv::Position>) -> u64 {
        let Some(pos) = pos else {
            return self.line;
        };
        // A record starting on a leftover `\n` starts on the next line.
        let end = usize::try_from(pos.byte())
            .unwrap_or(usize::MAX)
            .saturating_add(1)
            .min(self.bytes.len());
        if end > self.offset {
            self.line += self.bytes[self.offset..end]
                .iter()
                .filter(|&&b| b == b'\n')
                .count() as u64;
            self.offset = end;
        }
        self.line
    }
}

/// A CSV error in words, without the cell's contents.
fn csv_why(e: &csv::Error) -> String {
    match e.kind() {
        csv::ErrorKind::UnequalLengths {
            expected_len, len, ..
        } => format!("the row has {len} cells where the header has {expected_len}"),
        csv::ErrorKind::Utf8 { .. } => "the row is not valid UTF-8".into(),
        csv::ErrorKind::Io(_) => "the file could not be read".into(),
        _ => "the row does not read as CSV".into(),
    }
}

/// The cells of the first line of `bytes`, lower case and unquoted (for
/// format detection). `None` when the first line is not text.
pub(crate) fn header_cells(bytes: &[u8]) -> Option<Vec<String>> {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let end = bytes
        .iter()
        .position(|&b| b == b'\n')
        .unwrap_or(bytes.len())
        .min(4096);
    let line = std::str::from_utf8(&bytes[..end]).ok()?;
    let line = line.trim_end_matches('\r');
    if line.is_empty() {
        return None;
    }
    Some(
        line.split(',')
            .map(|c| c.trim().trim_matches('"').to_ascii_lowercase())
            .collect(),
    )
}

/// Whether `cells` holds every name of `names`.
pub(crate) fn has_all(cells: &[String], names: &[&str]) -> bool {
    names.iter().all(|n| cells.iter().any(|c| c == n))
}

/// Appends a field when its value is not empty.
pub(crate) fn push(fields: &mut Vec<Field>, field_label: &str, value: &str, kind: FieldKind) {
    if !value.is_empty() {
        fields.push(Field::new(field_label, value, kind));
    }
}

/// Appends a hidden custom field when its value is not empty.
pub(crate) fn push_hidden(fields: &mut Vec<Field>, field_label: &str, value: &str) {
    if !value.is_empty() {
        let mut f = Field::new(field_label, value, FieldKind::Secret);
        f.hidden = true;
        fields.push(f);
    }
}

/// A TOTP seed as a TOTP field when OpenK understands it (an otpauth URI
/// or a bare base32 secret), else as a secret field `totp seed` and a note
/// in `unmapped` (e.g. Steam Guard seeds).
pub(crate) fn push_totp(fields: &mut Vec<Field>, value: &str, unmapped: &mut Vec<String>) {
    let value = value.trim();
    if value.is_empty() {
        return;
    }
    if crate::crypto::totp::Totp::parse(value).is_ok() {
        fields.push(Field::new(label::TOTP, value, FieldKind::Totp));
    } else {
        fields.push(Field::new("totp seed", value, FieldKind::Secret));
        unmapped.push(
            "TOTP: a seed OpenK cannot generate codes for (kept as the secret field \"totp seed\")"
                .into(),
        );
    }
}

/// Unix milliseconds of an RFC 3339 time (`2024-01-02T03:04:05.678Z`).
pub(crate) fn rfc3339_ms(s: &str) -> Option<i64> {
    let t = time::OffsetDateTime::parse(s.trim(), &time::format_description::well_known::Rfc3339)
        .ok()?;
    i64::try_from(t.unix_timestamp_nanos() / 1_000_000).ok()
}

/// The host of a URL (`https://www.example.com/login` → `www.example.com`),
/// also for URLs written without a scheme.
pub(crate) fn host_of(url: &str) -> Option<String> {
    let url = url.trim();
    if url.is_empty() {
        return None;
    }
    let parsed = url::Url::parse(url)
        .ok()
        .filter(|u| u.host_str().is_some())
        .or_else(|| url::Url::parse(&format!("https://{url}")).ok())?;
    parsed.host_str().map(str::to_owned)
}

/// A name for an item its file left nameless: the URL's host, else the
/// username, else the kind (`Login`).
pub(crate) fn fallback_name(name: &str, url: &str, username: &str, kind: ItemKind) -> String {
    if !name.trim().is_empty() {
        return name.to_owned();
    }
    if let Some(h) = host_of(url) {
        return h;
    }
    if !username.trim().is_empty() {
        return username.trim().to_owned();
    }
    let k = kind.as_str();
    let mut c = k.chars();
    c.next().map_or_else(String::new, |f| {
        f.to_uppercase().collect::<String>() + c.as_str()
    })
}

/// Tags as OpenK takes them: no spaces (a space becomes `-`), none empty.
pub(crate) fn clean_tag(tag: &str) -> Option<String> {
    let t: String = tag
        .trim()
        .chars()
        .map(|c| if c.is_whitespace() { '-' } else { c })
        .collect();
    (!t.is_empty()).then_some(t)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_cells_and_times() {
        assert_eq!(
            header_cells(b"\xEF\xBB\xBF\"Url\",User\r\nx").expect("text"),
            vec!["url", "user"]
        );
        assert_eq!(header_cells(b"\xff\xfe"), None);
        assert_eq!(
            rfc3339_ms("2024-01-02T03:04:05.678Z"),
            Some(1_704_164_645_678)
        );
        assert_eq!(rfc3339_ms("yesterday"), None);
        assert_eq!(host_of("example.com/x").as_deref(), Some("example.com"));
        assert_eq!(
            fallback_name("", "", "", ItemKind::Login),
            "Login".to_owned()
        );
        assert_eq!(clean_tag(" two words ").as_deref(), Some("two-words"));
    }
}

/// Shared by the importers' unit tests: fixtures, running a parser, and
/// looking values up.
#[cfg(test)]
pub(crate) mod testing {
    use std::path::Path;

    use crate::engine::SecretString;
    use crate::engine::model::FieldKind;
    use crate::import::{Format, ImportError, ImportItem, Parsed, Result, Source, parse};

    pub fn fixture(rel: &str) -> Vec<u8> {
        std::fs::read(
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("tests/fixtures")
                .join(rel),
        )
        .expect("fixture exists")
    }

    pub fn run(format: Format, bytes: &[u8], password: Option<&str>) -> Result<Parsed> {
        let pw = password.map(|p| SecretString::from(p.to_owned()));
        let progress = |_: u64, _: u64| {};
        parse(
            format,
            &Source {
                path: Path::new("fixture"),
                bytes,
                password: pw.as_ref(),
                key_file: None,
                progress: &progress,
            },
        )
    }

    pub fn ok(format: Format, rel: &str) -> Parsed {
        run(format, &fixture(rel), None).expect("the fixture parses")
    }

    pub fn item<'a>(p: &'a Parsed, name: &str) -> &'a ImportItem {
        p.items
            .iter()
            .find(|i| i.draft.name == name)
            .unwrap_or_else(|| panic!("no item {name:?}"))
    }

    /// Every value of the fields labelled `label`, in order.
    pub fn values<'a>(i: &'a ImportItem, label: &str) -> Vec<&'a str> {
        i.draft
            .fields
            .iter()
            .filter(|f| f.label == label)
            .map(|f| f.value.expose())
            .collect()
    }

    /// The one value of `label`, with its kind and hidden flag.
    pub fn field<'a>(i: &'a ImportItem, label: &str) -> (&'a str, FieldKind, bool) {
        let f = i
            .draft
            .fields
            .iter()
            .find(|f| f.label == label)
            .unwrap_or_else(|| panic!("{:?} has no field {label:?}", i.draft.name));
        (f.value.expose(), f.kind, f.hidden)
    }

    pub fn value<'a>(i: &'a ImportItem, label: &str) -> &'a str {
        field(i, label).0
    }

    /// A damaged file is either read (maybe with problems) or refused as
    /// malformed in this format at a named position; never a panic.
    pub fn check_damaged(format: Format, bytes: &[u8], password: Option<&str>) {
        match run(format, bytes, password) {
            Ok(_) | Err(ImportError::WrongPassword { .. }) => {}
            Err(ImportError::Malformed { format: f, at, why }) => {
                assert_eq!(f, format);
                assert!(!at.is_empty() && !why.is_empty());
            }
            Err(e) => panic!("unexpected error {e}"),
        }
    }
}
