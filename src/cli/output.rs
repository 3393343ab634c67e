//! Output: tables for people, JSON for scripts (schemas in docs/cli.md), and
//! a writer that treats a closed pipe (`openk ls | head`) as success.

use std::io::Write;

use serde_json::{Value as Json, json};

use super::{CliError, CliResult};
use crate::engine::model::{Entry, Field, Item};

/// Masked stand-in for a concealed value.
pub const MASK: &str = "••••••••";

/// Writes to stdout; a closed pipe is not an error.
pub fn print(text: &str) -> CliResult {
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
            Err(CliError::general(format!("cannot write output: {e}")))
        }
        _ => Ok(()),
    }
}

/// Prints a JSON value (pretty, one trailing newline).
pub fn print_json(value: &Json) -> CliResult {
    let mut text = serde_json::to_string_pretty(value).unwrap_or_default();
    text.push('\n');
    print(&text)
}

/// RFC 3339 UTC time from Unix milliseconds.
#[must_use]
pub fn rfc3339(millis: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(millis.div_euclid(1000))
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_default()
}

/// Short human time: `2026-11-25 19:04 UTC`.
#[must_use]
pub fn human_time(millis: i64) -> String {
    let fmt = time::macros::format_description!("[year]-[month]-[day] [hour]:[minute] UTC");
    time::OffsetDateTime::from_unix_timestamp(millis.div_euclid(1000))
        .ok()
        .and_then(|t| t.format(&fmt).ok())
        .unwrap_or_default()
}

/// The JSON form of a listed item (the `entry` schema).
#[must_use]
pub fn entry_json(e: &Entry) -> Json {
    let o = &e.overview;
    json!({
        "id": e.r.id,
        "vault_id": e.r.vault_id,
        "version": e.r.version,
        "kind": o.kind,
        "name": o.name,
        "subtitle": o.subtitle,
        "urls": o.urls,
        "tags": o.tags,
        "folder": o.folder,
        "favorite": o.favorite,
        "has_totp": o.has_totp,
        "created_at": rfc3339(o.created_at),
        "updated_at": rfc3339(o.updated_at),
        "trashed": o.trashed_at.is_some(),
        "conflict": o.conflict.as_ref().map(|c| json!({
            "fields": c.fields,
            "other_version": c.other_version,
            "note": c.note,
            "at": rfc3339(c.at),
        })),
    })
}

fn field_json(f: &Field, reveal: bool) -> Json {
    let concealed = f.is_concealed();
    json!({
        "label": f.label,
        "kind": f.kind,
        "concealed": concealed,
        "value": if concealed && !reveal { Json::Null } else { Json::String(f.value.expose().to_owned()) },
    })
}

/// The JSON form of a whole item (the `item` schema); concealed values are
/// `null` unless `reveal`.
#[must_use]
pub fn item_json(item: &Item, reveal: bool) -> Json {
    let mut v = entry_json(&Entry {
        r: item.r,
        overview: item.overview.clone(),
    });
    if let Some(obj) = v.as_object_mut() {
        obj.insert(
            "fields".into(),
            item.details
                .fields
                .iter()
                .map(|f| field_json(f, reveal))
                .collect(),
        );
        obj.insert(
            "trashed_at".into(),
            item.overview
                .trashed_at
                .map(rfc3339)
                .map_or(Json::Null, Json::String),
        );
    }
    v
}

/// Cuts `s` to `max` characters with an ellipsis.
#[must_use]
pub fn clip(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_owned()
    } else {
        let mut out: String = s.chars().take(max.saturating_sub(1)).collect();
        out.push('…');
        out
    }
}

/// Renders rows as aligned columns; the last column is not padded.
#[must_use]
pub fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            if let Some(w) = widths.get_mut(i) {
                *w = (*w).max(cell.chars().count());
            }
        }
    }
    let mut out = String::new();
    let mut line = |cells: Vec<&str>| {
        let last = cells.len().saturating_sub(1);
        for (i, cell) in cells.iter().enumerate() {
            out.push_str(cell);
            if i < last {
                let pad = widths[i] - cell.chars().count() + 2;
                out.extend(std::iter::repeat_n(' ', pad));
            }
        }
        let trimmed = out.trim_end_matches(' ').len();
        out.truncate(trimmed);
        out.push('\n');
    };
    line(header.to_vec());
    for row in rows {
        line(row.iter().map(String::as_str).collect());
    }
    out
}

/// The shortest prefix (at least 8 characters) of each id that no other id
/// in `ids` shares, like git's abbreviated hashes. UUIDv7 ids start with a
/// timestamp, so items made in the same minute need longer prefixes.
#[must_use]
pub fn short_ids(ids: &[uuid::Uuid]) -> std::collections::HashMap<uuid::Uuid, String> {
    let mut texts: Vec<(String, uuid::Uuid)> = ids.iter().map(|id| (id.to_string(), *id)).collect();
    texts.sort();
    let common = |a: &str, b: &str| a.bytes().zip(b.bytes()).take_while(|(x, y)| x == y).count();
    let mut out = std::collections::HashMap::with_capacity(texts.len());
    for i in 0..texts.len() {
        let before = i
            .checked_sub(1)
            .map_or(0, |j| common(&texts[j].0, &texts[i].0));
        let after = texts.get(i + 1).map_or(0, |n| common(&n.0, &texts[i].0));
        let mut len = (before.max(after) + 1).max(8).min(texts[i].0.len());
        if texts[i].0.as_bytes().get(len - 1) == Some(&b'-') {
            len += 1;
        }
        out.insert(texts[i].1, texts[i].0[..len].to_owned());
    }
    out
}
