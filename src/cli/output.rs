//! Output: tables for people, JSON for scripts (schemas in docs/cli.md), and
//! a writer that treats a closed pipe (`openk ls | head`) as success.

use std::io::Write;

use serde_json::{Value as Json, json};

use super::{CliError, CliResult};
use crate::engine::model::{Entry, Field, Item, now_millis};
use crate::engine::usage::ItemUse;

/// Masked stand-in for a concealed value.
pub const MASK: &str = "••••••••";

/// Writes to stdout through [`crate::text::text`], so that no control
/// character or bidi override from a vault or a server reaches the terminal
/// (line feeds and tabs stay); a closed pipe is not an error.
pub fn print(text: &str) -> CliResult {
    print_exact(&crate::text::text(text))
}

/// Writes `text` to stdout byte for byte: for JSON (serde escapes control
/// characters) and for a value `openk get` prints to a pipe or a file.
pub fn print_exact(text: &str) -> CliResult {
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
    print_exact(&text)
}

/// RFC 3339 UTC time from Unix milliseconds (the server's own function).
pub use openk_server::time::rfc3339;

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

/// Adds an item's usage to its JSON: `use_count` and `last_used_at`
/// (RFC 3339, `null` when never used).
pub fn add_use_json(v: &mut Json, u: ItemUse) {
    if let Some(obj) = v.as_object_mut() {
        obj.insert("use_count".into(), json!(u.count));
        obj.insert("last_used_at".into(), json!(u.last_used.map(rfc3339)));
    }
}

/// An item's usage for `show`: `never`, `once, last 2026-12-07 10:00 UTC
/// (5 min ago)`, `3 times, last …`.
#[must_use]
pub fn use_text(u: ItemUse) -> String {
    let Some(at) = u.last_used.filter(|_| u.count > 0) else {
        return "never".to_owned();
    };
    let times = if u.count == 1 {
        "once".to_owned()
    } else {
        format!("{} times", u.count)
    };
    format!(
        "{times}, last {} ({})",
        human_time(at),
        crate::util::time::ago(now_millis(), at)
    )
}

/// An item's usage in a list column: `3× 5 min ago`, or `never`.
#[must_use]
pub fn use_cell(u: ItemUse) -> String {
    match u.last_used.filter(|_| u.count > 0) {
        Some(at) => format!("{}× {}", u.count, crate::util::time::ago(now_millis(), at)),
        None => "never".to_owned(),
    }
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

/// The number of terminal columns `s` takes (an emoji or a ZWJ sequence
/// is two, a combining mark none).
#[must_use]
pub fn width(s: &str) -> usize {
    unicode_width::UnicodeWidthStr::width(s)
}

/// Cuts `s` to at most `max` terminal columns with an ellipsis, never in the
/// middle of a grapheme (an emoji ZWJ sequence stays whole or goes).
#[must_use]
pub fn clip(s: &str, max: usize) -> String {
    use unicode_segmentation::UnicodeSegmentation as _;
    if width(s) <= max {
        return s.to_owned();
    }
    let mut out = String::new();
    let mut used = 0;
    for g in s.graphemes(true) {
        let w = width(g);
        if used + w + 1 > max {
            break;
        }
        used += w;
        out.push_str(g);
    }
    out.push('…');
    out
}

/// Renders rows as aligned columns, padded by display width; the last
/// column is not padded. Every cell goes through [`crate::text::cell`].
#[must_use]
pub fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let rows: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            r.iter()
                .map(|c| crate::text::cell(c).into_owned())
                .collect()
        })
        .collect();
    let mut widths: Vec<usize> = header.iter().map(|h| width(h)).collect();
    for row in &rows {
        for (i, cell) in row.iter().enumerate() {
            if let Some(w) = widths.get_mut(i) {
                *w = (*w).max(width(cell));
            }
        }
    }
    let mut out = String::new();
    let mut line = |cells: Vec<&str>| {
        let last = cells.len().saturating_sub(1);
        for (i, cell) in cells.iter().enumerate() {
            out.push_str(cell);
            if i < last {
                let pad = widths[i].saturating_sub(width(cell)) + 2;
                out.extend(std::iter::repeat_n(' ', pad));
            }
        }
        let trimmed = out.trim_end_matches(' ').len();
        out.truncate(trimmed);
        out.push('\n');
    };
    line(header.to_vec());
    for row in &rows {
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
