//! Bitwarden's exports: the JSON export (unencrypted, or "password
//! protected": the whole vault encrypted with a key derived from a password
//! of the export's own) and the CSV export (logins and secure notes only).
//! The mapping is in docs/import.md.

use serde_json::{Map, Value};

use super::table::{self, Table, push, push_hidden, push_totp};
use super::{Format, ImportError, ImportItem, Parsed, Problem, Result, Source};
use crate::crypto::{
    BitwardenKdf, EncStringError, ExposeSecret, bitwarden_export_key, bitwarden_open,
};
use crate::engine::ItemDraft;
use crate::engine::model::{Field, FieldKind, ItemKind, label};

const JSON: Format = Format::BitwardenJson;
const CSV: Format = Format::BitwardenCsv;

/// Whether `bytes` is a Bitwarden JSON export: an object with an
/// `encrypted` flag and `items` (plain, or encrypted with the account key)
/// or `data` (password protected).
#[must_use]
pub fn detect_json(bytes: &[u8]) -> bool {
    let start = bytes.iter().position(|b| !b.is_ascii_whitespace());
    if start.map(|i| bytes[i]) != Some(b'{') {
        return false;
    }
    serde_json::from_slice::<Map<String, Value>>(bytes).is_ok_and(|m| {
        m.get("encrypted").is_some_and(Value::is_boolean)
            && (m.get("items").is_some_and(Value::is_array)
                || m.get("data").is_some_and(Value::is_string))
    })
}

/// Whether the first line is a Bitwarden CSV header (personal or
/// organization export).
#[must_use]
pub fn detect_csv(bytes: &[u8]) -> bool {
    table::header_cells(bytes).is_some_and(|h| {
        table::has_all(
            &h,
            &[
                "type",
                "name",
                "login_uri",
                "login_username",
                "login_password",
            ],
        ) && (table::has_all(&h, &["folder"]) || table::has_all(&h, &["collections"]))
    })
}

fn malformed(format: Format, at: impl Into<String>, why: impl Into<String>) -> ImportError {
    ImportError::Malformed {
        format,
        at: at.into(),
        why: why.into(),
    }
}

/// Reads a Bitwarden JSON export, decrypting it first when it is password
/// protected.
///
/// # Errors
/// [`ImportError::NeedsPassword`] / [`ImportError::WrongPassword`] for a
/// password-protected export; [`ImportError::Malformed`] for anything that
/// is not a readable export, and for exports encrypted with the Bitwarden
/// account's key (which OpenK cannot have).
pub fn parse_json(source: &Source<'_>) -> Result<Parsed> {
    let root = json_object(source.bytes)?;
    let encrypted = root
        .get("encrypted")
        .and_then(Value::as_bool)
        .ok_or_else(|| malformed(JSON, "header", "there is no \"encrypted\" flag"))?;
    if !encrypted {
        return parse_plain(&root, source);
    }
    if root.get("passwordProtected").and_then(Value::as_bool) != Some(true) {
        return Err(malformed(
            JSON,
            "header",
            "this export is encrypted with your Bitwarden account's key, which only Bitwarden \
             can open: export again from Bitwarden choosing the format \".json (Encrypted)\" \
             with the export type \"Password protected\", or plain \".json\"",
        ));
    }
    let plain = decrypt(&root, source)?;
    let inner = json_object(&plain)?;
    if inner.get("encrypted").and_then(Value::as_bool) != Some(false) {
        return Err(malformed(
            JSON,
            "data",
            "the decrypted contents are not an unencrypted export",
        ));
    }
    parse_plain(&inner, source)
}

fn json_object(bytes: &[u8]) -> Result<Map<String, Value>> {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    match serde_json::from_slice::<Value>(bytes) {
        Ok(Value::Object(m)) => Ok(m),
        Ok(_) => Err(malformed(JSON, "line 1", "the file is not a JSON object")),
        Err(e) => Err(malformed(
            JSON,
            format!("line {} column {}", e.line(), e.column()),
            if e.is_eof() {
                "the JSON ends too early (is the file truncated?)"
            } else {
                "this is not valid JSON"
            },
        )),
    }
}

/// The decrypted `data` of a password-protected export.
fn decrypt(root: &Map<String, Value>, source: &Source<'_>) -> Result<zeroize::Zeroizing<Vec<u8>>> {
    let str_of = |k: &str| {
        root.get(k)
            .and_then(Value::as_str)
            .ok_or_else(|| malformed(JSON, "header", format!("\"{k}\" is missing")))
    };
    let u32_of = |k: &str| {
        root.get(k)
            .and_then(Value::as_u64)
            .and_then(|n| u32::try_from(n).ok())
            .ok_or_else(|| malformed(JSON, "header", format!("\"{k}\" is not a number")))
    };
    let salt = str_of("salt")?;
    let validation = str_of("encKeyValidation_DO_NOT_EDIT")?;
    let data = str_of("data")?;
    let kdf = match root.get("kdfType").and_then(Value::as_u64) {
        Some(0) => BitwardenKdf::Pbkdf2 {
            iterations: u32_of("kdfIterations")?,
        },
        Some(1) => BitwardenKdf::Argon2id {
            iterations: u32_of("kdfIterations")?,
            memory_mib: u32_of("kdfMemory")?,
            parallelism: u32_of("kdfParallelism")?,
        },
        _ => {
            return Err(malformed(
                JSON,
                "header",
                "\"kdfType\" is neither 0 (PBKDF2) nor 1 (Argon2id)",
            ));
        }
    };
    let password = source.password.ok_or(ImportError::NeedsPassword(JSON))?;
    let key = bitwarden_export_key(password.expose_secret(), salt, kdf)
        .map_err(|e| malformed(JSON, "header", e.to_string()))?;
    match bitwarden_open(&key, validation) {
        Ok(_) => {}
        Err(EncStringError::Mac) => {
            return Err(ImportError::WrongPassword {
                format: JSON,
                key_file: false,
            });
        }
        Err(EncStringError::Malformed(why)) => {
            return Err(malformed(JSON, "encKeyValidation_DO_NOT_EDIT", why));
        }
    }
    bitwarden_open(&key, data).map_err(|e| match e {
        EncStringError::Mac => malformed(
            JSON,
            "data",
            "the password is right but the data was altered after export",
        ),
        EncStringError::Malformed(why) => malformed(JSON, "data", why),
    })
}

fn s<'a>(o: &'a Map<String, Value>, k: &str) -> &'a str {
    o.get(k).and_then(Value::as_str).unwrap_or("")
}

/// `id` → `name` of the `folders` or `collections` list.
fn names_by_id(root: &Map<String, Value>, key: &str) -> Vec<(String, String)> {
    root.get(key)
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_object)
                .map(|f| (s(f, "id").to_owned(), s(f, "name").to_owned()))
                .collect()
        })
        .unwrap_or_default()
}

fn parse_plain(root: &Map<String, Value>, source: &Source<'_>) -> Result<Parsed> {
    let items = root
        .get("items")
        .and_then(Value::as_array)
        .ok_or_else(|| malformed(JSON, "items", "there is no \"items\" list"))?;
    let folders = names_by_id(root, "folders");
    let collections = names_by_id(root, "collections");
    let mut parsed = Parsed::default();
    let total = items.len() as u64;
    for (i, v) in items.iter().enumerate() {
        let at = format!("item {}", i + 1);
        match json_item(v, &folders, &collections, &at) {
            Ok(item) => parsed.items.push(item),
            Err(why) => parsed.problems.push(Problem { at, why }),
        }
        (source.progress)(i as u64 + 1, total);
    }
    Ok(parsed)
}

fn lookup<'a>(table: &'a [(String, String)], id: &str) -> Option<&'a str> {
    table
        .iter()
        .find(|(k, _)| k == id)
        .map(|(_, v)| v.as_str())
        .filter(|v| !v.is_empty())
}

fn json_item(
    v: &Value,
    folders: &[(String, String)],
    collections: &[(String, String)],
    at: &str,
) -> std::result::Result<ImportItem, String> {
    let o = v.as_object().ok_or("the item is not a JSON object")?;
    let ty = o
        .get("type")
        .and_then(Value::as_u64)
        .ok_or("the item has no \"type\"")?;
    let empty = Map::new();
    let sub = |k: &str| o.get(k).and_then(Value::as_object).unwrap_or(&empty);
    let mut fields = Vec::new();
    let mut unmapped = Vec::new();
    let mut url_for_name = String::new();
    let mut user_for_name = String::new();
    let kind = match ty {
        1 => {
            let l = sub("login");
            push(
                &mut fields,
                label::USERNAME,
                s(l, "username"),
                FieldKind::Text,
            );
            push(
                &mut fields,
                label::PASSWORD,
                s(l, "password"),
                FieldKind::Secret,
            );
            for u in l
                .get("uris")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                let uri = u.get("uri").and_then(Value::as_str).unwrap_or("").trim();
                if url_for_name.is_empty() {
                    uri.clone_into(&mut url_for_name);
                }
                push(&mut fields, label::URL, uri, FieldKind::Url);
            }
            push_totp(&mut fields, s(l, "totp"), &mut unmapped);
            if l.get("fido2Credentials")
                .and_then(Value::as_array)
                .is_some_and(|a| !a.is_empty())
            {
                unmapped.push("passkey (FIDO2 credential)".into());
            }
            s(l, "username").clone_into(&mut user_for_name);
            ItemKind::Login
        }
        2 => ItemKind::Note,
        3 => {
            let c = sub("card");
            push(
                &mut fields,
                label::CARDHOLDER,
                s(c, "cardholderName"),
                FieldKind::Text,
            );
            push(
                &mut fields,
                label::NUMBER,
                s(c, "number"),
                FieldKind::Secret,
            );
            push(
                &mut fields,
                label::EXPIRY,
                &expiry(s(c, "expMonth"), s(c, "expYear")),
                FieldKind::Text,
            );
            push(&mut fields, label::CVV, s(c, "code"), FieldKind::Secret);
            push(&mut fields, "brand", s(c, "brand"), FieldKind::Text);
            ItemKind::Card
        }
        4 => {
            let id = sub("identity");
            let full = join(
                " ",
                &["title", "firstName", "middleName", "lastName"].map(|k| s(id, k)),
            );
            push(&mut fields, label::FULL_NAME, &full, FieldKind::Text);
            push(&mut fields, label::EMAIL, s(id, "email"), FieldKind::Email);
            push(&mut fields, label::PHONE, s(id, "phone"), FieldKind::Text);
            let city_line = {
                let mut l = s(id, "city").to_owned();
                let state = join(" ", &[s(id, "state"), s(id, "postalCode")]);
                if !state.is_empty() {
                    if !l.is_empty() {
                        l.push_str(", ");
                    }
                    l.push_str(&state);
                }
                l
            };
            let address = join(
                "\n",
                &[
                    s(id, "address1"),
                    s(id, "address2"),
                    s(id, "address3"),
                    &city_line,
                    s(id, "country"),
                ],
            );
            push(&mut fields, label::ADDRESS, &address, FieldKind::Multiline);
            push(
                &mut fields,
                label::COMPANY,
                s(id, "company"),
                FieldKind::Text,
            );
            push(
                &mut fields,
                label::USERNAME,
                s(id, "username"),
                FieldKind::Text,
            );
            push_hidden(&mut fields, "ssn", s(id, "ssn"));
            push_hidden(&mut fields, "passport number", s(id, "passportNumber"));
            push_hidden(&mut fields, "license number", s(id, "licenseNumber"));
            s(id, "email").clone_into(&mut user_for_name);
            ItemKind::Identity
        }
        5 => {
            let k = sub("sshKey");
            push(
                &mut fields,
                label::PRIVATE_KEY,
                s(k, "privateKey"),
                FieldKind::Secret,
            );
            push(
                &mut fields,
                label::PUBLIC_KEY,
                s(k, "publicKey"),
                FieldKind::Text,
            );
            push(
                &mut fields,
                label::FINGERPRINT,
                s(k, "keyFingerprint"),
                FieldKind::Text,
            );
            ItemKind::SshKey
        }
        n => return Err(format!("unknown Bitwarden item type {n}")),
    };
    for (n, f) in o
        .get("fields")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .enumerate()
    {
        let Some(f) = f.as_object() else { continue };
        let name = match s(f, "name").trim() {
            "" => format!("field {}", n + 1),
            name => name.to_owned(),
        };
        let value = match f.get("value") {
            Some(Value::String(v)) => v.clone(),
            Some(Value::Bool(b)) => b.to_string(),
            Some(Value::Number(x)) => x.to_string(),
            _ => String::new(),
        };
        match f.get("type").and_then(Value::as_u64).unwrap_or(0) {
            1 => push_hidden(&mut fields, &name, &value),
            3 => unmapped.push(format!(
                "linked field {name:?} (it repeats another field of the item)"
            )),
            _ => push(&mut fields, &name, &value, FieldKind::Text),
        }
    }
    push(
        &mut fields,
        label::NOTES,
        s(o, "notes"),
        FieldKind::Multiline,
    );
    if o.get("reprompt").and_then(Value::as_u64) == Some(1) {
        unmapped.push("master password re-prompt".into());
    }
    let collection_names: Vec<&str> = o
        .get("collectionIds")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .filter_map(|c| lookup(collections, c))
        .collect();
    let folder = o
        .get("folderId")
        .and_then(Value::as_str)
        .and_then(|f| lookup(folders, f))
        .or_else(|| collection_names.first().copied())
        .map(str::to_owned);
    if collection_names.len() > 1 {
        unmapped.push(format!(
            "{} more collections (an item has one folder)",
            collection_names.len() - 1
        ));
    }
    let draft = ItemDraft {
        kind,
        name: table::fallback_name(s(o, "name"), &url_for_name, &user_for_name, kind),
        fields,
        tags: Vec::new(),
        folder,
        favorite: o.get("favorite").and_then(Value::as_bool).unwrap_or(false),
    };
    let mut item = ImportItem::new(draft, at);
    item.created_at = table::rfc3339_ms(s(o, "creationDate"));
    item.updated_at = table::rfc3339_ms(s(o, "revisionDate"));
    item.trashed = o.get("deletedDate").is_some_and(|d| !d.is_null());
    item.source_id = Some(s(o, "id"))
        .filter(|id| !id.is_empty())
        .map(str::to_owned);
    item.unmapped = unmapped;
    if kind == ItemKind::Login {
        item.history = password_history(o, &item.draft);
    }
    Ok(item)
}

/// Earlier versions from `passwordHistory`: the item as it is, with each
/// earlier password, oldest first.
fn password_history(o: &Map<String, Value>, now: &ItemDraft) -> Vec<(ItemDraft, Option<i64>)> {
    let mut out: Vec<(ItemDraft, Option<i64>)> = o
        .get("passwordHistory")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_object)
        .filter(|h| !s(h, "password").is_empty())
        .map(|h| {
            let mut d = now.clone();
            let old = Field::new(label::PASSWORD, s(h, "password"), FieldKind::Secret);
            match d.fields.iter().position(|f| f.label == label::PASSWORD) {
                Some(i) => d.fields[i] = old,
                None => d.fields.insert(0, old),
            }
            (d, table::rfc3339_ms(s(h, "lastUsedDate")))
        })
        .collect();
    out.sort_by_key(|(_, t)| t.unwrap_or(i64::MIN));
    out
}

/// `MM/YYYY` from Bitwarden's separate month and year.
fn expiry(month: &str, year: &str) -> String {
    let month = month.trim();
    let year = year.trim();
    let month = if month.len() == 1 {
        format!("0{month}")
    } else {
        month.to_owned()
    };
    match (month.is_empty(), year.is_empty()) {
        (false, false) => format!("{month}/{year}"),
        (false, true) => month,
        (true, _) => year.to_owned(),
    }
}

fn join(sep: &str, parts: &[&str]) -> String {
    parts
        .iter()
        .map(|p| p.trim())
        .filter(|p| !p.is_empty())
        .collect::<Vec<_>>()
        .join(sep)
}

const CSV_COLUMNS: [&str; 11] = [
    "folder",
    "collections",
    "favorite",
    "type",
    "name",
    "notes",
    "fields",
    "reprompt",
    "login_uri",
    "login_username",
    "login_password",
];

/// Reads a Bitwarden CSV export (`folder` or, from an organization,
/// `collections`; `type` is `login` or `note`).
///
/// # Errors
/// [`ImportError::Malformed`] at `line 1` when the header is not Bitwarden's.
pub fn parse_csv(source: &Source<'_>) -> Result<Parsed> {
    let t = Table::read(
        CSV,
        source.bytes,
        &[
            "type",
            "name",
            "login_uri",
            "login_username",
            "login_password",
        ],
    )?;
    let mut parsed = Parsed {
        problems: t.problems.clone(),
        ..Parsed::default()
    };
    let total = t.rows.len() as u64;
    for (i, row) in t.rows.iter().enumerate() {
        match csv_item(&t, row) {
            Ok(item) => parsed.items.push(item),
            Err(why) => parsed.problems.push(Problem { at: row.at(), why }),
        }
        (source.progress)(i as u64 + 1, total);
    }
    let extra = t.other_columns(&[&CSV_COLUMNS[..], &["login_totp"]].concat());
    if !extra.is_empty() {
        parsed
            .notes
            .push(format!("columns not imported: {}", extra.join(", ")));
    }
    Ok(parsed)
}

fn csv_item(t: &Table, row: &table::Row) -> std::result::Result<ImportItem, String> {
    let kind = match t.get(row, "type").trim().to_ascii_lowercase().as_str() {
        "login" | "" => ItemKind::Login,
        "note" => ItemKind::Note,
        other => {
            return Err(format!(
                "unknown Bitwarden item type {:?} (the CSV export has login and note)",
                crate::text::line(other)
            ));
        }
    };
    let mut fields = Vec::new();
    let mut unmapped = Vec::new();
    let uris = t.get(row, "login_uri");
    if kind == ItemKind::Login {
        push(
            &mut fields,
            label::USERNAME,
            t.get(row, "login_username"),
            FieldKind::Text,
        );
        push(
            &mut fields,
            label::PASSWORD,
            t.get(row, "login_password"),
            FieldKind::Secret,
        );
        for u in uris.split(',') {
            push(&mut fields, label::URL, u.trim(), FieldKind::Url);
        }
        push_totp(&mut fields, t.get(row, "login_totp"), &mut unmapped);
    }
    for (n, line) in t
        .get(row, "fields")
        .split('\n')
        .map(|l| l.strip_suffix('\r').unwrap_or(l))
        .filter(|l| !l.is_empty())
        .enumerate()
    {
        let (name, value) = line.split_once(": ").unwrap_or(("", line));
        let name = match name.trim() {
            "" => format!("field {}", n + 1),
            nm => nm.to_owned(),
        };
        push(&mut fields, &name, value, FieldKind::Text);
    }
    push(
        &mut fields,
        label::NOTES,
        t.get(row, "notes"),
        FieldKind::Multiline,
    );
    if t.get(row, "reprompt").trim() == "1" {
        unmapped.push("master password re-prompt".into());
    }
    let folder = match t.get(row, "folder").trim() {
        "" => t
            .get(row, "collections")
            .split(',')
            .map(str::trim)
            .find(|c| !c.is_empty()),
        f => Some(f),
    }
    .map(str::to_owned);
    let draft = ItemDraft {
        kind,
        name: table::fallback_name(
            t.get(row, "name"),
            uris.split(',').next().unwrap_or(""),
            t.get(row, "login_username"),
            kind,
        ),
        fields,
        tags: Vec::new(),
        folder,
        favorite: matches!(t.get(row, "favorite").trim(), "1" | "true"),
    };
    let mut item = ImportItem::new(draft, row.at());
    item.unmapped = unmapped;
    Ok(item)
}

#[cfg(test)]
mod tests;
