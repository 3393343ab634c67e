//! Exporters: every item of a vault (or of all) written out in one format,
//! one file per format (`openk export`). The engine streams the items
//! ([`Session::export_each`]); a format writes each one as it comes, so an
//! export never holds every item in memory. Nothing here prompts, prints
//! or touches the file system: the CLI opens the file, asks for
//! confirmation and passphrases and reports.
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
pub fn vault_filter(session: &Session, vault: Option<&str>) -> crate::engine::Result<Option<uuid::Uuid>> {
    vault.map(|v| session.resolve_vault(v)).transpose()
}
