//! Importers: another tool's file (or `pass` store directory) turned into
//! items to add. One file per format. Nothing here prompts, prints or
//! touches a vault: the CLI and the TUI ask for passwords and show
//! progress, and [`crate::engine::Session::import`] writes what a parser
//! returns.
//!
//! A parser returns [`Err`] only when the file cannot be read at all
//! (wrong format, wrong password, truncated container): then nothing is
//! written. An entry it cannot make sense of is a [`Problem`] of the
//! [`Parsed`] result, named by its line or entry path, and the rest is
//! imported.

pub mod bitwarden;
pub mod chrome;
pub mod firefox;
pub mod lastpass;
pub mod onepassword_csv;
pub mod onepux;
pub mod openk;
mod table;

use std::path::Path;

pub mod kdbx;
mod keepass_entry;
pub mod keepass_xml;
pub mod keepassxc_csv;
pub mod pass;

use serde::Serialize;

use crate::engine::ItemDraft;
use crate::engine::SecretString;

/// The formats `openk import` reads. The names are the `--format` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, clap::ValueEnum)]
pub enum Format {
    /// KeePass / KeePassXC database, KDBX 3.1 and 4.x.
    #[value(name = "kdbx")]
    #[serde(rename = "kdbx")]
    Kdbx,
    /// KeePassXC's XML export (KeePass 2 XML).
    #[value(name = "keepassxc-xml")]
    #[serde(rename = "keepassxc-xml")]
    KeepassxcXml,
    /// KeePassXC's CSV export.
    #[value(name = "keepassxc-csv")]
    #[serde(rename = "keepassxc-csv")]
    KeepassxcCsv,
    /// Bitwarden's JSON export, plain or password-protected.
    #[value(name = "bitwarden-json")]
    #[serde(rename = "bitwarden-json")]
    BitwardenJson,
    /// Bitwarden's CSV export.
    #[value(name = "bitwarden-csv")]
    #[serde(rename = "bitwarden-csv")]
    BitwardenCsv,
    /// 1Password's 1PUX export (a zip archive).
    #[value(name = "1pux")]
    #[serde(rename = "1pux")]
    OnePux,
    /// 1Password's CSV export.
    #[value(name = "1password-csv")]
    #[serde(rename = "1password-csv")]
    OnePasswordCsv,
    /// LastPass's CSV export.
    #[value(name = "lastpass-csv")]
    #[serde(rename = "lastpass-csv")]
    LastpassCsv,
    /// Chrome / Chromium's password CSV.
    #[value(name = "chrome-csv")]
    #[serde(rename = "chrome-csv")]
    ChromeCsv,
    /// Firefox's password CSV.
    #[value(name = "firefox-csv")]
    #[serde(rename = "firefox-csv")]
    FirefoxCsv,
    /// A `pass` store: a directory of `.gpg` files, read through `gpg`.
    #[value(name = "pass")]
    #[serde(rename = "pass")]
    Pass,
    /// OpenK's own encrypted archive (`openk export --format openk`).
    #[value(name = "openk")]
    #[serde(rename = "openk")]
    Openk,
}

impl Format {
    pub const ALL: [Self; 12] = [
        Self::Kdbx,
        Self::KeepassxcXml,
        Self::KeepassxcCsv,
        Self::BitwardenJson,
        Self::BitwardenCsv,
        Self::OnePux,
        Self::OnePasswordCsv,
        Self::LastpassCsv,
        Self::ChromeCsv,
        Self::FirefoxCsv,
        Self::Pass,
        Self::Openk,
    ];

    /// The `--format` name.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Kdbx => "kdbx",
            Self::KeepassxcXml => "keepassxc-xml",
            Self::KeepassxcCsv => "keepassxc-csv",
            Self::BitwardenJson => "bitwarden-json",
            Self::BitwardenCsv => "bitwarden-csv",
            Self::OnePux => "1pux",
            Self::OnePasswordCsv => "1password-csv",
            Self::LastpassCsv => "lastpass-csv",
            Self::ChromeCsv => "chrome-csv",
            Self::FirefoxCsv => "firefox-csv",
            Self::Pass => "pass",
            Self::Openk => "openk",
        }
    }

    /// Whether the file itself is encrypted with a password of its own
    /// (always for KDBX and OpenK archives; a Bitwarden JSON export only
    /// when it was password-protected: see [`needs_password`]).
    #[must_use]
    pub fn may_need_password(self) -> bool {
        matches!(self, Self::Kdbx | Self::Openk | Self::BitwardenJson)
    }
}

impl std::fmt::Display for Format {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a parser reads.
pub struct Source<'a> {
    /// The file, or the `pass` store's directory.
    pub path: &'a Path,
    /// The file's bytes (empty for a directory).
    pub bytes: &'a [u8],
    /// The file's own password (KDBX, an OpenK archive, an encrypted
    /// Bitwarden export), when the format needs one.
    pub password: Option<&'a SecretString>,
    /// A KeePass key file's contents (`--key-file`).
    pub key_file: Option<&'a [u8]>,
    /// Called with (entries done, entries in all) as a parser goes, for a
    /// progress bar. Parsers that cannot count ahead call it with the
    /// total they know so far.
    pub progress: &'a (dyn Fn(u64, u64) + Sync),
}

impl std::fmt::Debug for Source<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Source")
            .field("path", &self.path)
            .field("bytes", &self.bytes.len())
            .field("password", &self.password.is_some())
            .field("key_file", &self.key_file.is_some())
            .finish_non_exhaustive()
    }
}

/// One item as the other tool had it.
#[derive(Debug, Clone)]
pub struct ImportItem {
    /// The item as it is now. Attachments are fields of kind
    /// [`FieldKind::File`](crate::engine::model::FieldKind::File).
    pub draft: ItemDraft,
    /// Unix milliseconds, when the tool kept them.
    pub created_at: Option<i64>,
    pub updated_at: Option<i64>,
    /// The tool put it in its trash / recycle bin.
    pub trashed: bool,
    /// Earlier versions, oldest first (KeePass entry history; OpenK
    /// archives), each with the time it was saved (unix milliseconds).
    pub history: Vec<(ItemDraft, Option<i64>)>,
    /// The tool's own id for the item (KeePass UUID, Bitwarden id, 1Password
    /// uuid), so that importing the same file again adds nothing.
    pub source_id: Option<String>,
    /// Where it is in the file, for the report: `line 12`,
    /// `Root/Web/GitHub`, `web/github.com.gpg`.
    pub at: String,
    /// What of the entry could not be mapped (named, never with values).
    pub unmapped: Vec<String>,
}

impl ImportItem {
    /// An item found at `at`, with nothing else known about it.
    #[must_use]
    pub fn new(draft: ItemDraft, at: impl Into<String>) -> Self {
        Self {
            draft,
            created_at: None,
            updated_at: None,
            trashed: false,
            history: Vec::new(),
            source_id: None,
            at: at.into(),
            unmapped: Vec::new(),
        }
    }
}

/// An entry that was skipped because it could not be read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Problem {
    /// `line 12`, `entry Root/Web/GitHub`, `item 3`.
    pub at: String,
    pub why: String,
}

/// Everything a parser found in a file.
#[derive(Debug, Clone, Default)]
pub struct Parsed {
    pub items: Vec<ImportItem>,
    pub problems: Vec<Problem>,
    /// Remarks on the whole file (e.g. attachments an XML export references
    /// but does not carry).
    pub notes: Vec<String>,
}

/// Why a file could not be read at all. Nothing is written.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// The file (or its key file) did not open with the password given.
    #[error("the {format} file did not open with that password{}", key_file_hint(*.key_file))]
    WrongPassword { format: Format, key_file: bool },
    /// The file is encrypted and no password was given.
    #[error("the {0} file is encrypted: its password is needed")]
    NeedsPassword(Format),
    /// Not this format, damaged or truncated.
    #[error("this is not a readable {format} file ({at}): {why}")]
    Malformed {
        format: Format,
        /// Where reading stopped: `byte 1024`, `line 3`, `header`.
        at: String,
        why: String,
    },
    /// The format could not be told from the contents.
    #[error("could not tell the format of {0}: give it with --format (one of {1})")]
    Unknown(String, String),
    /// Reading the file or running a tool (`gpg`) failed.
    #[error("{0}")]
    Io(String),
}

fn key_file_hint(key_file: bool) -> &'static str {
    if key_file { " and key file" } else { "" }
}

/// Result of a parser.
pub type Result<T> = std::result::Result<T, ImportError>;

/// Tells the format from a file's first bytes, its name, or (for a
/// directory) a `pass` store's `.gpg-id`.
///
/// # Errors
/// [`ImportError::Unknown`] when nothing matches.
pub fn detect(path: &Path, bytes: &[u8]) -> Result<Format> {
    if path.is_dir() {
        return Ok(Format::Pass);
    }
    detect_bytes(bytes).ok_or_else(|| {
        ImportError::Unknown(
            path.display().to_string(),
            Format::ALL.map(Format::as_str).join(", "),
        )
    })
}

/// The format of a file from its contents alone.
#[must_use]
pub fn detect_bytes(bytes: &[u8]) -> Option<Format> {
    // Magic bytes first (KDBX, OpenK archives), then JSON, zip and CSV headers.
    if kdbx::detect(bytes) {
        return Some(Format::Kdbx);
    }
    if openk::detect(bytes) {
        return Some(Format::Openk);
    }
    if bitwarden::detect_json(bytes) {
        return Some(Format::BitwardenJson);
    }
    if onepux::detect(bytes) {
        return Some(Format::OnePux);
    }
    if bitwarden::detect_csv(bytes) {
        return Some(Format::BitwardenCsv);
    }
    if firefox::detect(bytes) {
        return Some(Format::FirefoxCsv);
    }
    if lastpass::detect(bytes) {
        return Some(Format::LastpassCsv);
    }
    if chrome::detect(bytes) {
        return Some(Format::ChromeCsv);
    }
    if onepassword_csv::detect(bytes) {
        return Some(Format::OnePasswordCsv);
    }
    if keepass_xml::detect(bytes) {
        return Some(Format::KeepassxcXml);
    }
    if keepassxc_csv::detect(bytes) {
        return Some(Format::KeepassxcCsv);
    }
    None
}

/// Whether a file of this format needs its own password before it can be
/// read: KDBX databases and OpenK archives always (a key-file-only KeePass
/// database takes an empty one), a Bitwarden JSON export when it was
/// password-protected.
#[must_use]
pub fn needs_password(format: Format, bytes: &[u8]) -> bool {
    match format {
        Format::Kdbx | Format::Openk => true,
        Format::BitwardenJson => {
            #[derive(serde::Deserialize)]
            struct Head {
                #[serde(default)]
                encrypted: bool,
                #[serde(default, rename = "passwordProtected")]
                password_protected: bool,
            }
            serde_json::from_slice::<Head>(bytes).is_ok_and(|h| h.encrypted && h.password_protected)
        }
        _ => false,
    }
}

/// Reads `source` as `format`.
///
/// # Errors
/// [`ImportError`] when the file cannot be read at all.
pub fn parse(format: Format, source: &Source<'_>) -> Result<Parsed> {
    match format {
        Format::BitwardenJson => bitwarden::parse_json(source),
        Format::BitwardenCsv => bitwarden::parse_csv(source),
        Format::OnePux => onepux::parse(source),
        Format::OnePasswordCsv => onepassword_csv::parse(source),
        Format::LastpassCsv => lastpass::parse(source),
        Format::ChromeCsv => chrome::parse(source),
        Format::FirefoxCsv => firefox::parse(source),
        Format::Openk => openk::parse(source),
        Format::Kdbx => kdbx::parse(source),
        Format::KeepassxcXml => keepass_xml::parse(source),
        Format::KeepassxcCsv => keepassxc_csv::parse(source),
        Format::Pass => pass::parse(source),
    }
}
