//! The OpenK archive: every item with every version, sealed with a
//! passphrase of its own (`crate::crypto::archive`: Argon2id, then the
//! STREAM construction over XChaCha20-Poly1305 in 64 KiB chunks).
//!
//! The plaintext is JSON Lines, one [`Line`] per line: a
//! [`Line::Header`] first, then one [`Line::Item`] per item, then a
//! [`Line::End`] with the number of items written. JSON escapes every
//! newline inside a string, so a line is always one record.
//! `crate::import::openk` reads it back.

use std::io::Write;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::Written;
use crate::crypto::archive::ArchiveWriter;
use crate::engine::export::ExportedItem;
use crate::engine::model::{Field, Item, ItemKind};
use crate::engine::{Error, KdfParams, Result, SecretString, Session};

/// The only plaintext schema version this build writes and reads.
pub const SCHEMA_VERSION: u32 = 1;

/// One line of the archive's plaintext.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Line {
    Header(Header),
    Item(ArchiveItem),
    End(End),
}

/// The first line.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Header {
    /// [`SCHEMA_VERSION`].
    pub schema: u32,
    /// Unix milliseconds.
    pub exported_at: i64,
    /// Items expected (for a progress bar; [`End`] has the count written).
    pub items: u64,
    /// The vault exported, or `None` for every vault.
    #[serde(default)]
    pub vault: Option<String>,
}

/// The last line.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct End {
    pub items: u64,
}

/// An item with its history.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ArchiveItem {
    /// The item's id (`openk import` keeps it as the source id, so that
    /// importing the same archive again adds nothing).
    pub id: Uuid,
    /// The name of the vault it was in.
    pub vault: String,
    /// Every version, oldest first; the current one last.
    pub versions: Vec<ArchiveVersion>,
}

/// One version of an item.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ArchiveVersion {
    pub version: u64,
    pub kind: ItemKind,
    pub name: String,
    pub fields: Vec<Field>,
    #[serde(default)]
    pub tags: Vec<String>,
    #[serde(default)]
    pub folder: Option<String>,
    #[serde(default)]
    pub favorite: bool,
    /// Unix milliseconds.
    pub created_at: i64,
    pub updated_at: i64,
    /// Set when this version was in the trash.
    #[serde(default)]
    pub trashed_at: Option<i64>,
}

impl ArchiveVersion {
    fn of(item: &Item) -> Self {
        let o = &item.overview;
        Self {
            version: item.r.version,
            kind: o.kind,
            name: o.name.clone(),
            fields: item.details.fields.clone(),
            tags: o.tags.clone(),
            folder: o.folder.clone(),
            favorite: o.favorite,
            created_at: o.created_at,
            updated_at: o.updated_at,
            trashed_at: o.trashed_at,
        }
    }
}

impl ArchiveItem {
    #[must_use]
    pub fn of(item: &ExportedItem) -> Self {
        Self {
            id: item.id,
            vault: item.vault.clone(),
            versions: item.versions.iter().map(ArchiveVersion::of).collect(),
        }
    }
}

/// [`Line`] as it is written, borrowing what it writes.
#[derive(Serialize)]
#[serde(rename_all = "snake_case")]
enum LineRef<'a> {
    Header(&'a Header),
    Item(&'a ArchiveItem),
    End(&'a End),
}

fn line(out: &mut impl Write, line: &LineRef<'_>) -> std::io::Result<()> {
    serde_json::to_writer(&mut *out, line).map_err(std::io::Error::other)?;
    out.write_all(b"\n")
}

/// The archive's plaintext as it is written: the header line at
/// [`ArchiveLines::begin`], one line per item, the end line at
/// [`ArchiveLines::finish`].
pub struct ArchiveLines<W: Write> {
    archive: ArchiveWriter<W>,
    items: u64,
}

impl<W: Write> ArchiveLines<W> {
    /// Derives the keys (Argon2id with `kdf`) and writes the header.
    ///
    /// # Errors
    /// [`Error::Invalid`] for parameters out of bounds; the writer's errors.
    pub fn begin(
        out: W,
        passphrase: &SecretString,
        kdf: &KdfParams,
        header: &Header,
    ) -> Result<Self> {
        let mut archive = ArchiveWriter::create(out, passphrase, kdf).map_err(|e| {
            if e.kind() == std::io::ErrorKind::InvalidInput {
                Error::Invalid(e.to_string())
            } else {
                Error::io("writing the archive")(e)
            }
        })?;
        line(&mut archive, &LineRef::Header(header)).map_err(Error::io("writing the archive"))?;
        Ok(Self { archive, items: 0 })
    }

    /// Adds an item.
    ///
    /// # Errors
    /// The writer's errors.
    pub fn item(&mut self, item: &ArchiveItem) -> std::io::Result<()> {
        self.items += 1;
        line(&mut self.archive, &LineRef::Item(item))
    }

    /// Writes the end line and seals the last chunk.
    ///
    /// # Errors
    /// The writer's errors.
    pub fn finish(mut self) -> std::io::Result<W> {
        line(&mut self.archive, &LineRef::End(&End { items: self.items }))?;
        self.archive.finish()
    }
}

/// Writes the archive of `vault` (or of every vault) to `out`, sealed with
/// `passphrase` (Argon2id with `kdf`).
///
/// # Errors
/// Database errors, parameters out of bounds, the writer's errors.
pub async fn write<W: Write>(
    session: &Session,
    vault: Option<Uuid>,
    out: W,
    passphrase: &SecretString,
    kdf: &KdfParams,
    progress: &(dyn Fn(u64) + Sync),
) -> Result<(W, Written)> {
    let header = Header {
        schema: SCHEMA_VERSION,
        exported_at: crate::engine::model::now_millis(),
        items: session.export_count(vault).await?,
        vault: vault.map(|v| session.vault_name(v).to_owned()),
    };
    let mut lines = ArchiveLines::begin(out, passphrase, kdf, &header)?;
    let mut done = 0u64;
    let summary = session
        .export_each(vault, |item| {
            done += 1;
            progress(done);
            lines.item(&ArchiveItem::of(&item))
        })
        .await?;
    let out = lines.finish().map_err(Error::io("writing the archive"))?;
    Ok((
        out,
        Written {
            items: summary.items,
            versions: summary.versions,
            attachments_left_out: 0,
            damaged: summary.damaged,
        },
    ))
}
