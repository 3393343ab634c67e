//! Plaintext JSON: one document, written item by item.
//!
//! ```json
//! {"format": "openk-json", "schema": 1, "exported_at": 1765000000000,
//!  "items": [
//!   {"id": "…", "vault": "Personal", "kind": "login", "name": "GitHub",
//!    "fields": [{"label": "password", "value": "…", "kind": "secret", "hidden": false}],
//!    "tags": ["work"], "folder": "Dev", "favorite": false,
//!    "created_at": 1765000000000, "updated_at": 1765000000000, "trashed_at": null}
//!  ]}
//! ```
//!
//! Times are unix milliseconds. Attachments are fields of kind `file`
//! whose value is the file in standard base64 (the label is the file
//! name). History is left out: the `openk` format keeps it.

use std::io::Write;

use serde::Serialize;
use uuid::Uuid;

use super::Written;
use crate::engine::model::{Field, ItemKind};
use crate::engine::{Error, Result, Session};

/// One item of the `items` array.
#[derive(Debug, Serialize)]
pub struct JsonItem<'a> {
    pub id: Uuid,
    pub vault: &'a str,
    pub kind: ItemKind,
    pub name: &'a str,
    pub fields: &'a [Field],
    pub tags: &'a [String],
    pub folder: Option<&'a str>,
    pub favorite: bool,
    pub created_at: i64,
    pub updated_at: i64,
    pub trashed_at: Option<i64>,
}

/// Writes every item of `vault` (or of every vault) to `out`.
///
/// # Errors
/// Database errors and the writer's errors.
pub async fn write<W: Write>(
    session: &Session,
    vault: Option<Uuid>,
    mut out: W,
    progress: &(dyn Fn(u64) + Sync),
) -> Result<(W, Written)> {
    let io = Error::io("writing the export");
    write!(
        out,
        "{{\"format\":\"openk-json\",\"schema\":1,\"exported_at\":{},\"items\":[",
        crate::engine::model::now_millis()
    )
    .map_err(io)?;
    let mut first = true;
    let mut done = 0u64;
    let summary = session
        .export_each(vault, |item| {
            done += 1;
            progress(done);
            let current = item.current();
            let o = &current.overview;
            out.write_all(if first { &b"\n"[..] } else { &b",\n"[..] })?;
            first = false;
            serde_json::to_writer(
                &mut out,
                &JsonItem {
                    id: item.id,
                    vault: &item.vault,
                    kind: o.kind,
                    name: &o.name,
                    fields: &current.details.fields,
                    tags: &o.tags,
                    folder: o.folder.as_deref(),
                    favorite: o.favorite,
                    created_at: o.created_at,
                    updated_at: o.updated_at,
                    trashed_at: o.trashed_at,
                },
            )
            .map_err(std::io::Error::other)
        })
        .await?;
    out.write_all(b"\n]}\n")
        .and_then(|()| out.flush())
        .map_err(Error::io("writing the export"))?;
    Ok((
        out,
        Written {
            items: summary.items,
            versions: summary.items,
            attachments_left_out: 0,
            damaged: summary.damaged,
        },
    ))
}
