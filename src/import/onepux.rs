//! 1Password's 1PUX export: a zip archive holding `export.attributes`,
//! `export.data` (JSON: accounts → vaults → items) and, under `files/`, the
//! documents and attached files (`files/DOCUMENTID__FILENAME`). The
//! mapping is in docs/import.md.

use std::collections::HashMap;
use std::io::{Cursor, Read};

use base64::Engine as _;
use serde_json::{Map, Value};

use super::table::{self, push, push_hidden, push_totp};
use super::{Format, ImportError, ImportItem, Parsed, Problem, Result, Source};
use crate::engine::model::{Field, FieldKind, ItemKind, label};
use crate::engine::{ItemDraft, MAX_FILE};

const FORMAT: Format = Format::OnePux;
/// Largest `export.data` read (a zip entry's declared size can lie).
const MAX_DATA: u64 = 256 * 1024 * 1024;

/// Whether `bytes` is a zip archive with an `export.data` entry.
#[must_use]
pub fn detect(bytes: &[u8]) -> bool {
    bytes.starts_with(b"PK\x03\x04")
        && zip::ZipArchive::new(Cursor::new(bytes))
            .is_ok_and(|z| z.index_for_name("export.data").is_some())
}

fn malformed(at: impl Into<String>, why: impl Into<String>) -> ImportError {
    ImportError::Malformed {
        format: FORMAT,
        at: at.into(),
        why: why.into(),
    }
}

type Zip<'a> = zip::ZipArchive<Cursor<&'a [u8]>>;

/// Reads a 1PUX archive.
///
/// # Errors
/// [`ImportError::Malformed`] when the archive or its `export.data` cannot
/// be read.
pub fn parse(source: &Source<'_>) -> Result<Parsed> {
    let mut zip = zip::ZipArchive::new(Cursor::new(source.bytes))
        .map_err(|e| malformed("zip directory", format!("not a readable zip archive: {e}")))?;
    let data = {
        let entry = zip
            .by_name("export.data")
            .map_err(|_| malformed("export.data", "the archive has no export.data"))?;
        let mut buf = Vec::new();
        entry
            .take(MAX_DATA + 1)
            .read_to_end(&mut buf)
            .map_err(|e| malformed("export.data", format!("the entry does not unpack: {e}")))?;
        if buf.len() as u64 > MAX_DATA {
            return Err(malformed("export.data", "larger than 256 MiB"));
        }
        buf
    };
    let root: Map<String, Value> = match serde_json::from_slice(&data) {
        Ok(Value::Object(m)) => m,
        Ok(_) => return Err(malformed("export.data", "not a JSON object")),
        Err(e) => {
            return Err(malformed(
                format!("export.data line {} column {}", e.line(), e.column()),
                if e.is_eof() {
                    "the JSON ends too early"
                } else {
                    "this is not valid JSON"
                },
            ));
        }
    };
    let accounts = root
        .get("accounts")
        .and_then(Value::as_array)
        .ok_or_else(|| malformed("export.data", "there is no \"accounts\" list"))?;
    let files = file_index(&zip);
    let mut parsed = Parsed::default();
    let vaults: Vec<&Map<String, Value>> = accounts
        .iter()
        .filter_map(|a| a.get("vaults").and_then(Value::as_array))
        .flatten()
        .filter_map(Value::as_object)
        .collect();
    let total: u64 = vaults
        .iter()
        .map(|v| v.get("items").and_then(Value::as_array).map_or(0, Vec::len) as u64)
        .sum();
    let mut done = 0;
    for vault in vaults {
        let vault_name = vault
            .get("attrs")
            .and_then(|a| a.get("name"))
            .and_then(Value::as_str)
            .unwrap_or("");
        for (i, it) in vault
            .get("items")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .enumerate()
        {
            let at = format!("vault {:?} item {}", crate::text::line(vault_name), i + 1);
            match item(it, vault_name, &at, &mut zip, &files) {
                Ok(Some(item)) => parsed.items.push(item),
                Ok(None) => {}
                Err(why) => parsed.problems.push(Problem { at, why }),
            }
            done += 1;
            (source.progress)(done, total);
        }
    }
    Ok(parsed)
}

/// `documentId` → zip entry index of `files/DOCUMENTID__NAME`.
fn file_index(zip: &Zip<'_>) -> HashMap<String, usize> {
    let mut out = HashMap::new();
    for i in 0..zip.len() {
        let Some(Ok(name)) = zip.name_for_index(i) else {
            continue;
        };
        if let Some(rest) = name.strip_prefix("files/") {
            let id = rest.split_once("__").map_or(rest, |(id, _)| id);
            if !id.is_empty() {
                out.insert(id.to_owned(), i);
            }
        }
    }
    out
}

fn s<'a>(o: &'a Map<String, Value>, k: &str) -> &'a str {
    o.get(k).and_then(Value::as_str).unwrap_or("")
}

fn kind_of(category: &str) -> ItemKind {
    match category {
        "001" | "005" | "102" | "110" => ItemKind::Login,
        "002" => ItemKind::Card,
        "003" | "006" => ItemKind::Note,
        "004" => ItemKind::Identity,
        "112" => ItemKind::ApiKey,
        "114" => ItemKind::SshKey,
        _ => ItemKind::Custom,
    }
}

/// The standard label a section field of this category maps to, by the
/// field's 1Password id.
fn standard_label(kind: ItemKind, id: &str) -> Option<&'static str> {
    Some(match (kind, id) {
        (ItemKind::Card, "cardholder") => label::CARDHOLDER,
        (ItemKind::Card, "ccnum") => label::NUMBER,
        (ItemKind::Card, "cvv") => label::CVV,
        (ItemKind::Card, "expiry") => label::EXPIRY,
        (ItemKind::Card, "pin") => label::PIN,
        (ItemKind::Identity, "email") => label::EMAIL,
        (ItemKind::Identity, "defphone") => label::PHONE,
        (ItemKind::Identity, "address") => label::ADDRESS,
        (ItemKind::Identity, "birthdate") => label::BIRTHDAY,
        (ItemKind::Identity, "company") => label::COMPANY,
        (ItemKind::Login | ItemKind::ApiKey, "username") => label::USERNAME,
        (ItemKind::Login, "password") => label::PASSWORD,
        (ItemKind::Login, "url") | (ItemKind::ApiKey, "hostname") => label::URL,
        (ItemKind::ApiKey, "credential") => label::KEY,
        _ => return None,
    })
}

fn item(
    v: &Value,
    vault: &str,
    at: &str,
    zip: &mut Zip<'_>,
    files: &HashMap<String, usize>,
) -> std::result::Result<Option<ImportItem>, String> {
    let o = v.as_object().ok_or("the item is not a JSON object")?;
    let state = s(o, "state");
    if state == "deleted" {
        return Ok(None);
    }
    let category = s(o, "categoryUuid");
    if category.is_empty() {
        return Err("the item has no categoryUuid".into());
    }
    let kind = kind_of(category);
    let empty = Map::new();
    let overview = o
        .get("overview")
        .and_then(Value::as_object)
        .unwrap_or(&empty);
    let details = o
        .get("details")
        .and_then(Value::as_object)
        .unwrap_or(&empty);
    let mut fields: Vec<Field> = Vec::new();
    let mut unmapped = Vec::new();

    for lf in details
        .get("loginFields")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_object)
    {
        let value = s(lf, "value");
        match s(lf, "designation") {
            "username" => push(&mut fields, label::USERNAME, value, FieldKind::Text),
            "password" => push(&mut fields, label::PASSWORD, value, FieldKind::Secret),
            _ if value.is_empty() => {}
            _ => {
                let name = match s(lf, "name") {
                    "" => "form field",
                    n => n,
                };
                match s(lf, "fieldType") {
                    "P" => push_hidden(&mut fields, name, value),
                    "C" => push(
                        &mut fields,
                        name,
                        if value == "✓" { "true" } else { value },
                        FieldKind::Text,
                    ),
                    _ => push(&mut fields, name, value, FieldKind::Text),
                }
            }
        }
    }
    push(
        &mut fields,
        label::PASSWORD,
        s(details, "password"),
        FieldKind::Secret,
    );
    let mut urls: Vec<&str> = Vec::new();
    let first = s(overview, "url");
    if !first.is_empty() {
        urls.push(first);
    }
    for u in overview
        .get("urls")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_object)
    {
        let u = s(u, "url");
        if !u.is_empty() && !urls.contains(&u) {
            urls.push(u);
        }
    }
    for u in &urls {
        push(&mut fields, label::URL, u, FieldKind::Url);
    }

    let mut name_parts: [String; 3] = Default::default();
    for section in details
        .get("sections")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_object)
    {
        for f in section
            .get("fields")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_object)
        {
            let id = s(f, "id");
            if kind == ItemKind::Identity {
                let slot = match id {
                    "firstname" => Some(0),
                    "initial" => Some(1),
                    "lastname" => Some(2),
                    _ => None,
                };
                if let Some(slot) = slot {
                    s(
                        f.get("value").and_then(Value::as_object).unwrap_or(&empty),
                        "string",
                    )
                    .clone_into(&mut name_parts[slot]);
                    continue;
                }
            }
            section_field(f, kind, zip, files, &mut fields, &mut unmapped);
        }
    }
    if kind == ItemKind::Identity {
        let full = name_parts
            .iter()
            .map(|p| p.trim())
            .filter(|p| !p.is_empty())
            .collect::<Vec<_>>()
            .join(" ");
        if !full.is_empty() {
            fields.insert(0, Field::new(label::FULL_NAME, full, FieldKind::Text));
        }
    }
    if let Some(doc) = details.get("documentAttributes").and_then(Value::as_object) {
        attach(doc, zip, files, &mut fields, &mut unmapped);
    }
    push(
        &mut fields,
        label::NOTES,
        s(details, "notesPlain"),
        FieldKind::Multiline,
    );

    let tags: Vec<String> = overview
        .get("tags")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .filter_map(table::clean_tag)
        .collect();
    let username = fields
        .iter()
        .find(|f| f.label == label::USERNAME)
        .map(|f| f.value.expose().to_owned())
        .unwrap_or_default();
    let draft = ItemDraft {
        kind,
        name: table::fallback_name(
            s(overview, "title"),
            urls.first().copied().unwrap_or(""),
            &username,
            kind,
        ),
        fields,
        tags,
        folder: Some(vault.to_owned()).filter(|v| !v.trim().is_empty()),
        favorite: o.get("favIndex").and_then(Value::as_u64).unwrap_or(0) > 0,
    };
    let mut item = ImportItem::new(draft, at);
    let ms = |k: &str| {
        o.get(k)
            .and_then(Value::as_i64)
            .and_then(|t| t.checked_mul(1000))
    };
    item.created_at = ms("createdAt");
    item.updated_at = ms("updatedAt");
    item.trashed = state == "archived";
    item.source_id = Some(s(o, "uuid"))
        .filter(|u| !u.is_empty())
        .map(str::to_owned);
    item.history = password_history(details, &item.draft);
    item.unmapped = unmapped;
    Ok(Some(item))
}

/// One field of a section, by its typed value.
fn section_field(
    f: &Map<String, Value>,
    kind: ItemKind,
    zip: &mut Zip<'_>,
    files: &HashMap<String, usize>,
    fields: &mut Vec<Field>,
    unmapped: &mut Vec<String>,
) {
    let id = s(f, "id");
    let title = match s(f, "title").trim() {
        "" => id,
        t => t,
    };
    let title = if title.is_empty() { "field" } else { title };
    let Some((ty, val)) = f
        .get("value")
        .and_then(Value::as_object)
        .and_then(|m| m.iter().next())
    else {
        return;
    };
    let std_label = standard_label(kind, id);
    let lbl = std_label.unwrap_or(title);
    let text = |v: &Value| match v {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        _ => String::new(),
    };
    match ty.as_str() {
        "concealed" | "creditCardNumber" => {
            let value = text(val);
            if std_label.is_some() {
                push(fields, lbl, &value, FieldKind::Secret);
            } else {
                push_hidden(fields, lbl, &value);
            }
        }
        "totp" => push_totp(fields, &text(val), unmapped),
        "url" => push(fields, lbl, &text(val), FieldKind::Url),
        "email" => {
            let value = match val {
                Value::Object(m) => s(m, "email_address").to_owned(),
                v => text(v),
            };
            let k = if lbl == label::EMAIL {
                FieldKind::Email
            } else {
                FieldKind::Text
            };
            push(fields, lbl, &value, k);
        }
        "date" => {
            if let Some(d) = val.as_i64().and_then(date) {
                push(fields, lbl, &d, FieldKind::Text);
            }
        }
        "monthYear" => {
            if let Some(n) = val.as_u64().filter(|n| *n > 0) {
                push(
                    fields,
                    lbl,
                    &format!("{:02}/{}", n % 100, n / 100),
                    FieldKind::Text,
                );
            }
        }
        "address" => {
            let empty = Map::new();
            let a = val.as_object().unwrap_or(&empty);
            let city = [s(a, "city"), s(a, "state"), s(a, "zip")]
                .iter()
                .filter(|p| !p.is_empty())
                .copied()
                .collect::<Vec<_>>()
                .join(" ");
            let addr = [s(a, "street"), &city, s(a, "country")]
                .iter()
                .filter(|p| !p.is_empty())
                .copied()
                .collect::<Vec<_>>()
                .join("\n");
            let lbl = if kind == ItemKind::Identity {
                label::ADDRESS
            } else {
                lbl
            };
            push(fields, lbl, &addr, FieldKind::Multiline);
        }
        "sshKey" => {
            let empty = Map::new();
            let k = val.as_object().unwrap_or(&empty);
            let meta = k
                .get("metadata")
                .and_then(Value::as_object)
                .unwrap_or(&empty);
            push(
                fields,
                label::PRIVATE_KEY,
                s(k, "privateKey"),
                FieldKind::Secret,
            );
            push(
                fields,
                label::PUBLIC_KEY,
                s(meta, "publicKey"),
                FieldKind::Text,
            );
            push(
                fields,
                label::FINGERPRINT,
                s(meta, "fingerprint"),
                FieldKind::Text,
            );
        }
        "file" => {
            if let Some(doc) = val.as_object() {
                attach(doc, zip, files, fields, unmapped);
            }
        }
        "reference" => unmapped.push(format!(
            "reference field {title:?} (a link to another item)"
        )),
        "string" | "phone" | "menu" | "gender" | "creditCardType" => {
            let value = text(val);
            let k = if f.get("multiline").and_then(Value::as_bool) == Some(true)
                || value.contains('\n')
            {
                FieldKind::Multiline
            } else {
                FieldKind::Text
            };
            push(fields, lbl, &value, k);
        }
        other => match val {
            Value::String(_) | Value::Number(_) | Value::Bool(_) => {
                push(fields, lbl, &text(val), FieldKind::Text);
            }
            _ => unmapped.push(format!("field {title:?} of type {other:?}")),
        },
    }
}

/// `YYYY-MM-DD` of unix seconds.
fn date(secs: i64) -> Option<String> {
    let t = time::OffsetDateTime::from_unix_timestamp(secs).ok()?;
    Some(format!(
        "{:04}-{:02}-{:02}",
        t.year(),
        u8::from(t.month()),
        t.day()
    ))
}

/// A document (`fileName`, `documentId`) as a File field, from `files/`.
fn attach(
    doc: &Map<String, Value>,
    zip: &mut Zip<'_>,
    files: &HashMap<String, usize>,
    fields: &mut Vec<Field>,
    unmapped: &mut Vec<String>,
) {
    let name = match s(doc, "fileName").trim() {
        "" => "attachment",
        n => n,
    };
    let Some(&index) = files.get(s(doc, "documentId")) else {
        unmapped.push(format!("attachment {name:?} (not in the archive)"));
        return;
    };
    let bytes = zip.by_index(index).ok().and_then(|entry| {
        let mut buf = Vec::new();
        entry
            .take(MAX_FILE as u64 + 1)
            .read_to_end(&mut buf)
            .ok()
            .map(|_| buf)
    });
    match bytes {
        Some(b) if b.len() <= MAX_FILE => {
            let value = base64::engine::general_purpose::STANDARD.encode(&b);
            fields.push(Field::new(name, value, FieldKind::File));
        }
        Some(_) => unmapped.push(format!(
            "attachment {name:?} (larger than {} KiB)",
            MAX_FILE / 1024
        )),
        None => unmapped.push(format!("attachment {name:?} (damaged in the archive)")),
    }
}

/// Earlier passwords (`details.passwordHistory`: value and unix seconds),
/// oldest first, each as the item with that password.
fn password_history(
    details: &Map<String, Value>,
    now: &ItemDraft,
) -> Vec<(ItemDraft, Option<i64>)> {
    let mut out: Vec<(ItemDraft, Option<i64>)> = details
        .get("passwordHistory")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_object)
        .filter(|h| !s(h, "value").is_empty())
        .map(|h| {
            let mut d = now.clone();
            let old = Field::new(label::PASSWORD, s(h, "value"), FieldKind::Secret);
            match d.fields.iter().position(|f| f.label == label::PASSWORD) {
                Some(i) => d.fields[i] = old,
                None => d.fields.insert(0, old),
            }
            let t = h
                .get("time")
                .and_then(Value::as_i64)
                .and_then(|t| t.checked_mul(1000));
            (d, t)
        })
        .collect();
    out.sort_by_key(|(_, t)| t.unwrap_or(i64::MIN));
    out
}

#[cfg(test)]
mod tests;
