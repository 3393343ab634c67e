//! Plaintext CSV: a header row, then one row per item (its current
//! version).
//!
//! Columns: `id, vault, kind, name, username, password, url, totp, notes,
//! folder, tags, favorite, trashed, created_at, updated_at, extra_fields`.
//! `username` … `notes` hold the first field with that label; `tags` are
//! joined with `, `; `favorite` and `trashed` are `true`/`false`; times are
//! RFC 3339 in UTC. Every other field (card numbers, a second URL, custom
//! fields) is in `extra_fields` as a JSON array of `{"label", "value",
//! "kind"}`, or empty. Attachments (file fields) are left out and counted.

use std::io::Write;

use uuid::Uuid;

use super::{Written, rfc3339};
use crate::engine::model::{FieldKind, label};
use crate::engine::{Error, Result, Session};

/// The header row.
pub const COLUMNS: [&str; 16] = [
    "id",
    "vault",
    "kind",
    "name",
    label::USERNAME,
    label::PASSWORD,
    label::URL,
    label::TOTP,
    label::NOTES,
    "folder",
    "tags",
    "favorite",
    "trashed",
    "created_at",
    "updated_at",
    "extra_fields",
];

const STANDARD: [&str; 5] = [
    label::USERNAME,
    label::PASSWORD,
    label::URL,
    label::TOTP,
    label::NOTES,
];

/// Writes every item of `vault` (or of every vault) to `out`.
///
/// # Errors
/// Database errors and the writer's errors.
pub async fn write<W: Write>(
    session: &Session,
    vault: Option<Uuid>,
    out: W,
    progress: &(dyn Fn(u64) + Sync),
) -> Result<(W, Written)> {
    let mut csv = ::csv::WriterBuilder::new().from_writer(out);
    csv.write_record(COLUMNS)
        .map_err(|e| Error::io("writing the export")(e.into()))?;
    let mut files = 0u64;
    let mut done = 0u64;
    let summary = session
        .export_each(vault, |item| {
            done += 1;
            progress(done);
            let current = item.current();
            let o = &current.overview;
            let fields = &current.details.fields;
            let mut taken = vec![false; fields.len()];
            let mut standard = Vec::with_capacity(STANDARD.len());
            for name in STANDARD {
                let found = fields.iter().enumerate().position(|(i, f)| {
                    !taken[i] && f.kind != FieldKind::File && f.label.eq_ignore_ascii_case(name)
                });
                standard.push(found.map_or("", |i| {
                    taken[i] = true;
                    fields[i].value.expose()
                }));
            }
            let mut extra = Vec::new();
            for (i, f) in fields.iter().enumerate() {
                if taken[i] {
                    continue;
                }
                if f.kind == FieldKind::File {
                    files += 1;
                    continue;
                }
                extra.push(serde_json::json!({
                    "label": f.label,
                    "value": f.value.expose(),
                    "kind": f.kind,
                }));
            }
            let extra = zeroize::Zeroizing::new(if extra.is_empty() {
                String::new()
            } else {
                serde_json::to_string(&extra).map_err(std::io::Error::other)?
            });
            let id = item.id.to_string();
            let (tags, created, updated) = (
                o.tags.join(", "),
                rfc3339(o.created_at),
                rfc3339(o.updated_at),
            );
            let mut row: Vec<&str> = vec![
                id.as_str(),
                item.vault.as_str(),
                o.kind.as_str(),
                o.name.as_str(),
            ];
            row.extend(standard);
            row.extend([
                o.folder.as_deref().unwrap_or(""),
                tags.as_str(),
                if o.favorite { "true" } else { "false" },
                if o.trashed_at.is_some() {
                    "true"
                } else {
                    "false"
                },
                created.as_str(),
                updated.as_str(),
                extra.as_str(),
            ]);
            csv.write_record(&row).map_err(std::io::Error::from)
        })
        .await?;
    csv.flush().map_err(Error::io("writing the export"))?;
    let out = csv
        .into_inner()
        .map_err(|e| Error::io("writing the export")(e.into_error()))?;
    Ok((
        out,
        Written {
            items: summary.items,
            versions: summary.items,
            attachments_left_out: files,
            damaged: summary.damaged,
        },
    ))
}
