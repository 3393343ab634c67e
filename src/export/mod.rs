//! Exporters: every item of a vault (or of all) written out in one format,
//! one file per format (`openk export`). The engine streams the items
//! ([`Session::export_each`]); a format writes each one as it comes, so an
//! export never holds every item in memory. Nothing here prompts or
//! prints: the CLI and the TUI ask for confirmation and passphrases and
//! report; [`to_file`] writes a private file that takes its name only
//! once complete.
//!
//! - [`openk`]: the encrypted archive `openk import` reads back with every
//!   version, time and id (docs/security.md, "Export archives").
//! - [`json`] and [`csv`]: plaintext, for other tools (docs/cli.md).

pub mod csv;
pub mod json;
pub mod openk;

use serde::Serialize;

use crate::engine::{DamagedItem, Session};

/// The formats `openk export` writes (the `--format` values).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum ExportFormat {
    /// OpenK's encrypted archive (its own passphrase); `openk import` reads it.
    Openk,
    /// Plaintext JSON: every item with its fields, tags, folder and times.
    Json,
    /// Plaintext CSV: one row per item.
    Csv,
}

impl ExportFormat {
    /// Whether the file holds the secrets in the clear.
    #[must_use]
    pub fn is_plaintext(self) -> bool {
        !matches!(self, Self::Openk)
    }

    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Openk => "openk",
            Self::Json => "json",
            Self::Csv => "csv",
        }
    }
}

/// What an export wrote.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Written {
    pub items: u64,
    /// Versions written (history included; the current version of each
    /// item in formats without history).
    pub versions: u64,
    /// Attachments (file fields) left out: the CSV format has no place
    /// for them.
    pub attachments_left_out: u64,
    /// Items or versions that did not decrypt and were left out.
    pub damaged: Vec<DamagedItem>,
}

/// `millis` as RFC 3339 in UTC (`2026-12-08T01:02:03.004Z`).
#[must_use]
pub fn rfc3339(millis: i64) -> String {
    let nanos = i128::from(millis) * 1_000_000;
    time::OffsetDateTime::from_unix_timestamp_nanos(nanos)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_default()
}

/// The vault `--vault` names, or every vault.
///
/// # Errors
/// [`crate::engine::Error::NoSuchVault`] and the like.
pub fn vault_filter(
    session: &Session,
    vault: Option<&str>,
) -> crate::engine::Result<Option<uuid::Uuid>> {
    vault.map(|v| session.resolve_vault(v)).transpose()
}

/// Writes `format` to `out`, calling `progress` with the items done.
///
/// # Errors
/// [`crate::engine::Error::Invalid`] for an archive without a passphrase;
/// database and writer errors.
pub async fn write_to<W: std::io::Write>(
    session: &Session,
    vault: Option<uuid::Uuid>,
    format: ExportFormat,
    out: W,
    passphrase: Option<&crate::engine::SecretString>,
    kdf: &crate::engine::KdfParams,
    progress: &(dyn Fn(u64) + Sync),
) -> crate::engine::Result<(W, Written)> {
    match (format, passphrase) {
        (ExportFormat::Openk, Some(p)) => openk::write(session, vault, out, p, kdf, progress).await,
        (ExportFormat::Openk, None) => Err(crate::engine::Error::Invalid(
            "the archive needs a passphrase".into(),
        )),
        (ExportFormat::Json, _) => json::write(session, vault, out, progress).await,
        (ExportFormat::Csv, _) => csv::write(session, vault, out, progress).await,
    }
}

/// Writes an export to `path`: created 0600 under a temporary name beside
/// it and moved into place only when complete, never over an existing
/// file unless `force` (so a failed export leaves nothing behind).
///
/// # Errors
/// [`crate::engine::Error::Invalid`] when `path` exists (without `force`)
/// or is a directory; [`crate::engine::Error::Io`]; as [`write_to`].
#[allow(clippy::too_many_arguments)]
pub async fn to_file(
    session: &Session,
    vault: Option<uuid::Uuid>,
    format: ExportFormat,
    path: &std::path::Path,
    force: bool,
    passphrase: Option<&crate::engine::SecretString>,
    kdf: &crate::engine::KdfParams,
    progress: &(dyn Fn(u64) + Sync),
) -> crate::engine::Result<Written> {
    use crate::engine::Error;
    let shown = crate::text::line(&path.display().to_string()).into_owned();
    if !force && path.symlink_metadata().is_ok() {
        return Err(Error::Invalid(format!(
            "{shown} exists; choose another file or pass --force to replace it"
        )));
    }
    if path.is_dir() {
        return Err(Error::Invalid(format!(
            "{shown} is a directory; name a file"
        )));
    }
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "export".to_owned());
    let temp = path.with_file_name(format!(".{name}.partial-{}", std::process::id()));
    let file = create_private(&temp).map_err(Error::io("creating the export file"))?;
    let out = std::io::BufWriter::new(file);
    let done = write_to(session, vault, format, out, passphrase, kdf, progress).await;
    let finished = done.and_then(|(out, written)| {
        let file = out
            .into_inner()
            .map_err(|e| Error::io("writing the export file")(e.into_error()))?;
        file.sync_all()
            .map_err(Error::io("writing the export file"))?;
        Ok(written)
    });
    let written = match finished {
        Ok(w) => w,
        Err(e) => {
            let _ = std::fs::remove_file(&temp);
            return Err(e);
        }
    };
    // A hard link fails when the name is taken: never over a file that
    // appeared meanwhile, unless `force`.
    let placed = if force {
        std::fs::rename(&temp, path)
    } else {
        std::fs::hard_link(&temp, path).and_then(|()| std::fs::remove_file(&temp))
    };
    placed.map_err(|e| {
        let _ = std::fs::remove_file(&temp);
        if e.kind() == std::io::ErrorKind::AlreadyExists {
            Error::Invalid(format!(
                "{shown} appeared while exporting; nothing was replaced (pass --force to replace it)"
            ))
        } else {
            Error::io("moving the export into place")(e)
        }
    })?;
    Ok(written)
}

/// Creates a new file readable only by its owner.
fn create_private(path: &std::path::Path) -> std::io::Result<std::fs::File> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    options.open(path)
}

#[cfg(test)]
mod tests {
    use crate::engine::model::{Field, FieldKind, ItemKind, label};
    use crate::engine::test_fixtures::{draft, login, session};

    #[test]
    fn times_are_rfc3339_utc() {
        assert_eq!(super::rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(
            super::rfc3339(1_765_155_723_004),
            "2025-12-08T01:02:03.004Z"
        );
    }

    #[tokio::test]
    async fn json_keeps_attachments_and_csv_counts_them_out() {
        let (_tmp, mut s) = session().await;
        let mut d = draft(
            ItemKind::Note,
            "Scan, \"quoted\"",
            vec![
                Field::new(label::NOTES, "line 1\nline 2", FieldKind::Multiline),
                Field::new("scan.pdf", "JVBERi0=", FieldKind::File),
                Field::new("account", "42", FieldKind::Text),
            ],
        );
        d.tags = vec!["a".into(), "b".into()];
        s.add(d).await.expect("add");
        s.add(login("GitHub", "octocat", "hunter2"))
            .await
            .expect("add");

        let (bytes, written) = super::json::write(&s, None, Vec::new(), &|_| {})
            .await
            .expect("json");
        assert_eq!(written.items, 2);
        let doc: serde_json::Value = serde_json::from_slice(&bytes).expect("parse");
        assert_eq!(doc["format"], "openk-json");
        let items = doc["items"].as_array().expect("items");
        let note = items.iter().find(|i| i["kind"] == "note").expect("note");
        let file = note["fields"]
            .as_array()
            .expect("fields")
            .iter()
            .find(|f| f["kind"] == "file")
            .expect("file field");
        assert_eq!(file["label"], "scan.pdf");
        assert_eq!(file["value"], "JVBERi0=");
        assert_eq!(note["tags"], serde_json::json!(["a", "b"]));

        let (bytes, written) = super::csv::write(&s, None, Vec::new(), &|_| {})
            .await
            .expect("csv");
        assert_eq!(written.attachments_left_out, 1);
        let mut rows = ::csv::Reader::from_reader(bytes.as_slice());
        let headers = rows.headers().expect("headers").clone();
        assert_eq!(headers.iter().collect::<Vec<_>>(), super::csv::COLUMNS);
        let rows: Vec<::csv::StringRecord> = rows.records().map(|r| r.expect("row")).collect();
        assert_eq!(rows.len(), 2);
        let note = rows.iter().find(|r| &r[2] == "note").expect("note row");
        assert_eq!(&note[3], "Scan, \"quoted\"");
        assert_eq!(&note[8], "line 1\nline 2");
        assert_eq!(&note[10], "a, b");
        let extra: serde_json::Value = serde_json::from_str(&note[15]).expect("extra");
        assert_eq!(
            extra,
            serde_json::json!([{"label": "account", "value": "42", "kind": "text"}])
        );
        let gh = rows.iter().find(|r| &r[2] == "login").expect("login row");
        assert_eq!((&gh[4], &gh[5], &gh[15]), ("octocat", "hunter2", ""));
        assert!(gh[13].ends_with('Z'));
    }
}
