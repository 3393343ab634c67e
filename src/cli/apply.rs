//! `openk apply [FILE]`: a batch of item operations, one JSON object per
//! line (schema in docs/cli.md, "openk apply"), mirroring the flags of
//! `openk add`, `openk edit` and `openk rm`. Every line is parsed first,
//! then checked in order by the engine, then all of it is written in one
//! transaction; a bad line names its number and nothing is written.

use std::io::Read as _;
use std::path::PathBuf;

use clap::Args;
use serde_json::{Map, Value as Json, json};

use super::output::{print, print_json};
use super::sync::{after_write, note_sync};
use super::{CliError, CliResult, Global, exit, unlock};
use crate::engine::batch::{BatchLine, BatchOp, BatchOutcome};
use crate::engine::generator::{self, PasswordSpec};
use crate::engine::model::{Field, FieldKind, ItemKind, label};
use crate::engine::{ExposeSecret, ItemDraft, ItemPatch, sshkey};

/// The most input `apply` reads.
const MAX_INPUT: u64 = 64 * 1024 * 1024;

#[derive(Debug, Args)]
pub struct ApplyArgs {
    /// A file of JSON lines (default: standard input)
    pub file: Option<PathBuf>,
    /// Check every line and list what would change; write nothing
    #[arg(long)]
    pub dry_run: bool,
}

pub async fn apply(g: &Global, a: &ApplyArgs) -> CliResult {
    // With --password-stdin the password is the first line of standard
    // input and the operations follow it: unlock first then.
    let read_after_unlock = a.file.is_none() && g.password_stdin;
    let mut lines = None;
    if !read_after_unlock {
        lines = Some(parse_input(&read_input(a)?)?);
    }
    let mut vault = unlock(g).await?;
    let lines = match lines {
        Some(l) => l,
        None => match read_input(a).and_then(|t| parse_input(&t)) {
            Ok(l) => l,
            Err(e) => {
                vault.close().await;
                return Err(e);
            }
        },
    };
    let count = lines.len();
    let outcomes = match vault.apply_batch(lines, a.dry_run).await {
        Ok(o) => o,
        Err(e) => {
            vault.close().await;
            return Err(e.into());
        }
    };
    let ops: Vec<Json> = outcomes
        .iter()
        .map(|o| {
            json!({
                "line": o.line,
                "op": o.op,
                "id": o.id,
                "name": o.name,
                "kind": o.kind,
                "vault": vault.vault_name(o.vault_id),
                "changed": o.changed,
            })
        })
        .collect();
    let json = json!({ "dry_run": a.dry_run, "operations": ops });
    let text = summary(&outcomes, count, a.dry_run);
    if a.dry_run {
        vault.close().await;
        return if g.json {
            print_json(&json)
        } else {
            print(&text)
        };
    }
    let note = after_write(g, &mut vault).await;
    vault.close().await;
    note_sync(note.as_deref());
    if g.json {
        print_json(&json)
    } else {
        print(&text)
    }
}

fn summary(outcomes: &[BatchOutcome], count: usize, dry_run: bool) -> String {
    let n = |op: &str| outcomes.iter().filter(|o| o.op == op && o.changed).count();
    let same = outcomes.iter().filter(|o| !o.changed).count();
    let mut text = format!(
        "{} {count} operation(s): {} added, {} edited, {} moved to the trash",
        if dry_run { "Would apply" } else { "Applied" },
        n("add"),
        n("edit"),
        n("rm"),
    );
    if same > 0 {
        text.push_str(&format!(", {same} edit(s) changed nothing"));
    }
    text.push_str(if dry_run {
        "; nothing was written.\n"
    } else {
        ".\n"
    });
    if dry_run {
        for o in outcomes {
            text.push_str(&format!(
                "  line {}: {} {} {:?}{}\n",
                o.line,
                o.op,
                o.kind,
                crate::text::line(&o.name),
                if o.changed { "" } else { " (no change)" }
            ));
        }
    }
    text
}

fn read_input(a: &ApplyArgs) -> CliResult<String> {
    let mut bytes = Vec::new();
    let read = match &a.file {
        Some(path) => std::fs::File::open(path)
            .and_then(|f| f.take(MAX_INPUT + 1).read_to_end(&mut bytes))
            .map_err(|e| CliError::usage(format!("cannot read {}: {e}", path.display()))),
        None => std::io::stdin()
            .lock()
            .take(MAX_INPUT + 1)
            .read_to_end(&mut bytes)
            .map_err(|e| CliError::usage(format!("cannot read standard input: {e}"))),
    };
    read?;
    if bytes.len() as u64 > MAX_INPUT {
        return Err(CliError::usage(format!(
            "the batch is larger than {} MiB; split it into several files",
            MAX_INPUT / 1024 / 1024
        )));
    }
    String::from_utf8(bytes).map_err(|e| {
        CliError::usage(format!(
            "the batch is not UTF-8 text (byte {}); nothing was written",
            e.utf8_error().valid_up_to()
        ))
    })
}

/// Every non-blank line as an operation; the first bad one is an error
/// naming its number.
fn parse_input(text: &str) -> CliResult<Vec<BatchLine>> {
    let mut out = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line = i + 1;
        if raw.trim().is_empty() {
            continue;
        }
        let op = parse_line(raw).map_err(|why| CliError {
            code: exit::USAGE,
            message: format!(
                "line {line}: {}; nothing of the batch was written (docs/cli.md, \"openk apply\", has the format)",
                crate::text::line(&why)
            ),
        })?;
        out.push(BatchLine { line, op });
    }
    if out.is_empty() {
        return Err(CliError::usage(
            "the batch has no operations (one JSON object per line, e.g. {\"op\":\"rm\",\"item\":\"GitHub\"})",
        ));
    }
    Ok(out)
}

/// The standard fields: JSON key, label, kind of field, item kinds.
const STANDARD: &[(&str, &str, FieldKind, &[ItemKind])] = {
    use ItemKind::{ApiKey, Card, Identity, Login, SshKey};
    &[
        (
            "username",
            label::USERNAME,
            FieldKind::Text,
            &[Login, ApiKey],
        ),
        ("password", label::PASSWORD, FieldKind::Secret, &[Login]),
        ("totp", label::TOTP, FieldKind::Totp, &[Login]),
        ("cardholder", label::CARDHOLDER, FieldKind::Text, &[Card]),
        ("number", label::NUMBER, FieldKind::Secret, &[Card]),
        ("expiry", label::EXPIRY, FieldKind::Text, &[Card]),
        ("cvv", label::CVV, FieldKind::Secret, &[Card]),
        ("pin", label::PIN, FieldKind::Secret, &[Card]),
        ("full_name", label::FULL_NAME, FieldKind::Text, &[Identity]),
        ("email", label::EMAIL, FieldKind::Email, &[Identity]),
        ("phone", label::PHONE, FieldKind::Text, &[Identity]),
        ("address", label::ADDRESS, FieldKind::Multiline, &[Identity]),
        ("birthday", label::BIRTHDAY, FieldKind::Text, &[Identity]),
        ("company", label::COMPANY, FieldKind::Text, &[Identity]),
        ("key", label::KEY, FieldKind::Secret, &[ApiKey]),
        (
            "passphrase",
            label::PASSPHRASE,
            FieldKind::Secret,
            &[SshKey],
        ),
    ]
};

/// The keys every op may have, besides the standard fields.
const ADD_KEYS: &[&str] = &[
    "op", "kind", "name", "vault", "fields", "tags", "folder", "favorite", "notes", "urls", "url",
    "generate",
];
const EDIT_KEYS: &[&str] = &[
    "op", "item", "vault", "name", "set", "fields", "remove", "tags", "folder", "favorite",
    "notes", "urls", "url", "generate",
];
const RM_KEYS: &[&str] = &["op", "item", "vault"];

fn parse_line(raw: &str) -> Result<BatchOp, String> {
    let value: Json = serde_json::from_str(raw).map_err(|e| format!("not valid JSON ({e})"))?;
    let Json::Object(obj) = value else {
        return Err(
            "each line must be one JSON object, e.g. {\"op\":\"rm\",\"item\":\"GitHub\"}".into(),
        );
    };
    let op = string(&obj, "op")?.ok_or("missing \"op\" (add, edit or rm)")?;
    let known = |keys: &[&str]| -> Result<(), String> {
        for k in obj.keys() {
            if !keys.contains(&k.as_str()) && !STANDARD.iter().any(|s| s.0 == k) {
                return Err(format!("unknown key {k:?} for op {op:?}"));
            }
        }
        Ok(())
    };
    match op.as_str() {
        "add" => {
            known(ADD_KEYS)?;
            let kind_name = string(&obj, "kind")?
                .ok_or("an add needs \"kind\" (login, note, card, identity, api-key, ssh-key)")?;
            let kind = ItemKind::parse(&kind_name)
                .filter(|k| *k != ItemKind::Key)
                .ok_or_else(|| format!("unknown kind {kind_name:?}; kinds are login, note, card, identity, api-key, ssh-key (named keys: `openk key create`)"))?;
            let name = string(&obj, "name")?.ok_or("an add needs \"name\"")?;
            let fields = fields_of(&obj, kind, "fields")?;
            Ok(BatchOp::Add {
                vault: string(&obj, "vault")?,
                draft: ItemDraft {
                    kind,
                    name,
                    fields,
                    tags: strings(&obj, "tags")?.unwrap_or_default(),
                    folder: string(&obj, "folder")?,
                    favorite: boolean(&obj, "favorite")?.unwrap_or(false),
                },
            })
        }
        "edit" => {
            known(EDIT_KEYS)?;
            if obj.contains_key("set") && obj.contains_key("fields") {
                return Err("give \"set\" or \"fields\", not both".into());
            }
            let item = string(&obj, "item")?.ok_or("an edit needs \"item\" (a name or id)")?;
            // The item's kind is known only once the engine finds it: a
            // standard key sets that field, whatever the kind.
            let set_key = if obj.contains_key("fields") {
                "fields"
            } else {
                "set"
            };
            let fields = any_kind_fields(&obj, set_key)?;
            let urls = urls(&obj)?;
            Ok(BatchOp::Edit {
                item,
                vault: string(&obj, "vault")?,
                patch: ItemPatch {
                    name: string(&obj, "name")?,
                    set_fields: fields
                        .into_iter()
                        .filter(|f| f.kind != FieldKind::Url)
                        .collect(),
                    urls,
                    remove_fields: strings(&obj, "remove")?.unwrap_or_default(),
                    tags: strings(&obj, "tags")?,
                    folder: string(&obj, "folder")?
                        .map(|f| Some(f).filter(|f| !f.trim().is_empty())),
                    favorite: boolean(&obj, "favorite")?,
                    resolve: false,
                },
            })
        }
        "rm" | "trash" => {
            known(RM_KEYS)?;
            Ok(BatchOp::Trash {
                item: string(&obj, "item")?.ok_or("an rm needs \"item\" (a name or id)")?,
                vault: string(&obj, "vault")?,
            })
        }
        other => Err(format!("unknown op {other:?}; ops are add, edit and rm")),
    }
}

/// The fields of an add (or an edit's `set`), checked against `kind`.
fn fields_of(obj: &Map<String, Json>, kind: ItemKind, custom: &str) -> Result<Vec<Field>, String> {
    let mut fields = Vec::new();
    for (key, label, fkind, kinds) in STANDARD {
        let Some(v) = string(obj, key)? else { continue };
        if !kinds.contains(&kind) {
            let names: Vec<&str> = kinds.iter().map(|k| k.as_str()).collect();
            return Err(format!(
                "{key:?} is for {} items, not {kind}",
                names.join(" and ")
            ));
        }
        fields.push(Field::new(label, v, *fkind));
    }
    standard_rest(obj, kind, custom, &mut fields)?;
    fields.sort_by_key(|f| crate::engine::model::field_rank(&f.label));
    Ok(fields)
}

/// An edit's fields: the standard keys (each as its own kind of field),
/// notes, custom fields and URLs.
fn any_kind_fields(obj: &Map<String, Json>, custom: &str) -> Result<Vec<Field>, String> {
    let mut fields = Vec::new();
    for (key, label, fkind, _) in STANDARD {
        if let Some(v) = string(obj, key)? {
            fields.push(Field::new(label, v, *fkind));
        }
    }
    let mut rest = Vec::new();
    custom_fields(obj, custom, &mut rest)?;
    if let Some(n) = string(obj, "notes")? {
        rest.push(Field::new(label::NOTES, n, FieldKind::Multiline));
    }
    if boolean(obj, "generate")?.unwrap_or(false) {
        return Err("\"generate\" is for login and ssh-key items".into());
    }
    fields.extend(rest);
    fields.extend(
        urls(obj)?
            .unwrap_or_default()
            .into_iter()
            .map(|u| Field::new(label::URL, u, FieldKind::Url)),
    );
    Ok(fields)
}

/// Notes, generated values, custom fields and URLs.
fn standard_rest(
    obj: &Map<String, Json>,
    kind: ItemKind,
    custom: &str,
    fields: &mut Vec<Field>,
) -> Result<(), String> {
    if boolean(obj, "generate")?.unwrap_or(false) {
        match kind {
            ItemKind::Login => {
                if obj.contains_key("password") {
                    return Err("give either \"password\" or \"generate\", not both".into());
                }
                let generated =
                    generator::password(&PasswordSpec::default()).map_err(|e| e.to_string())?;
                fields.push(Field::new(
                    label::PASSWORD,
                    generated.value.expose_secret(),
                    FieldKind::Secret,
                ));
            }
            ItemKind::SshKey => fields.extend(sshkey::generate(None).map_err(|e| e.to_string())?),
            other => {
                return Err(format!(
                    "\"generate\" is for login and ssh-key items, not {other}"
                ));
            }
        }
    }
    if let Some(n) = string(obj, "notes")? {
        fields.push(Field::new(label::NOTES, n, FieldKind::Multiline));
    }
    custom_fields(obj, custom, fields)?;
    let urls = urls(obj)?.unwrap_or_default();
    if !urls.is_empty() && !matches!(kind, ItemKind::Login | ItemKind::ApiKey) {
        return Err(format!(
            "\"urls\" is for login and api-key items, not {kind}"
        ));
    }
    fields.extend(
        urls.into_iter()
            .map(|u| Field::new(label::URL, u, FieldKind::Url)),
    );
    Ok(())
}

/// `"fields"` (or `"set"`): an object `{"LABEL": "VALUE"}` of text fields,
/// or an array of `{"label", "value", "kind"}` (kind: text, secret, url,
/// email, totp, multiline; default text).
fn custom_fields(
    obj: &Map<String, Json>,
    key: &str,
    fields: &mut Vec<Field>,
) -> Result<(), String> {
    match obj.get(key) {
        None | Some(Json::Null) => Ok(()),
        Some(Json::Object(map)) => {
            for (label, v) in map {
                let Json::String(v) = v else {
                    return Err(format!("{key:?}: the value of {label:?} must be a string"));
                };
                fields.push(Field::new(label, v.as_str(), FieldKind::Text));
            }
            Ok(())
        }
        Some(Json::Array(list)) => {
            for f in list {
                let Json::Object(f) = f else {
                    return Err(format!(
                        "{key:?}: each field must be an object {{\"label\", \"value\", \"kind\"}}"
                    ));
                };
                for k in f.keys() {
                    if !["label", "value", "kind"].contains(&k.as_str()) {
                        return Err(format!(
                            "{key:?}: unknown key {k:?} in a field (label, value, kind)"
                        ));
                    }
                }
                let label = string(f, "label")?
                    .ok_or_else(|| format!("{key:?}: a field needs \"label\""))?;
                let value = string(f, "value")?
                    .ok_or_else(|| format!("{key:?}: field {label:?} needs \"value\""))?;
                let kind = match string(f, "kind")?.as_deref() {
                    None | Some("text") => FieldKind::Text,
                    Some("secret") => FieldKind::Secret,
                    Some("url") => FieldKind::Url,
                    Some("email") => FieldKind::Email,
                    Some("totp") => FieldKind::Totp,
                    Some("multiline") => FieldKind::Multiline,
                    Some(other) => {
                        return Err(format!(
                            "{key:?}: field {label:?} has unknown kind {other:?} (text, secret, url, email, totp, multiline)"
                        ));
                    }
                };
                fields.push(Field::new(&label, value, kind));
            }
            Ok(())
        }
        Some(_) => Err(format!(
            "{key:?} must be an object {{\"LABEL\": \"VALUE\"}} or an array of {{\"label\", \"value\", \"kind\"}}"
        )),
    }
}

/// `"urls": [..]` or `"url": ".."`.
fn urls(obj: &Map<String, Json>) -> Result<Option<Vec<String>>, String> {
    match (strings(obj, "urls")?, string(obj, "url")?) {
        (Some(_), Some(_)) => Err("give \"urls\" or \"url\", not both".into()),
        (Some(list), None) => Ok(Some(list)),
        (None, Some(one)) => Ok(Some(vec![one])),
        (None, None) => Ok(None),
    }
}

fn string(obj: &Map<String, Json>, key: &str) -> Result<Option<String>, String> {
    match obj.get(key) {
        None | Some(Json::Null) => Ok(None),
        Some(Json::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(format!("{key:?} must be a string")),
    }
}

fn strings(obj: &Map<String, Json>, key: &str) -> Result<Option<Vec<String>>, String> {
    match obj.get(key) {
        None | Some(Json::Null) => Ok(None),
        Some(Json::Array(list)) => list
            .iter()
            .map(|v| match v {
                Json::String(s) => Ok(s.clone()),
                _ => Err(format!("{key:?} must be a list of strings")),
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Some),
        Some(Json::String(s)) => Ok(Some(vec![s.clone()])),
        Some(_) => Err(format!("{key:?} must be a list of strings")),
    }
}

fn boolean(obj: &Map<String, Json>, key: &str) -> Result<Option<bool>, String> {
    match obj.get(key) {
        None | Some(Json::Null) => Ok(None),
        Some(Json::Bool(b)) => Ok(Some(*b)),
        Some(_) => Err(format!("{key:?} must be true or false")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_each_op() {
        let add = parse_line(
            r#"{"op":"add","kind":"login","name":"GitHub","username":"me","password":"pw","urls":["https://github.com"],"fields":{"Account":"42"},"tags":["dev"],"folder":"Work"}"#,
        )
        .expect("add");
        let BatchOp::Add { draft, vault } = add else {
            panic!("not an add")
        };
        assert!(vault.is_none());
        assert_eq!(draft.name, "GitHub");
        let labels: Vec<&str> = draft.fields.iter().map(|f| f.label.as_str()).collect();
        assert!(labels.contains(&"username") && labels.contains(&"password"));
        assert!(labels.contains(&"Account") && labels.contains(&"url"));
        assert_eq!(draft.folder.as_deref(), Some("Work"));
        let edit = parse_line(
            r#"{"op":"edit","item":"GitHub","set":[{"label":"PIN","value":"1","kind":"secret"}],"remove":["Account"],"folder":""}"#,
        )
        .expect("edit");
        let BatchOp::Edit { patch, .. } = edit else {
            panic!("not an edit")
        };
        assert_eq!(patch.set_fields[0].kind, FieldKind::Secret);
        assert_eq!(patch.remove_fields, vec!["Account"]);
        assert_eq!(patch.folder, Some(None));
        assert!(matches!(
            parse_line(r#"{"op":"rm","item":"x"}"#),
            Ok(BatchOp::Trash { .. })
        ));
    }

    #[test]
    fn refuses_bad_lines_with_reasons() {
        let why = |l: &str| parse_line(l).err().unwrap_or_default();
        assert!(why("nope").contains("not valid JSON"));
        assert!(why("[1]").contains("one JSON object"));
        assert!(why(r#"{"op":"zap"}"#).contains("unknown op"));
        assert!(why(r#"{"op":"add","kind":"note"}"#).contains("\"name\""));
        assert!(why(r#"{"op":"add","kind":"note","name":"n","password":"x"}"#).contains("login"));
        assert!(why(r#"{"op":"rm","item":"x","colour":"red"}"#).contains("unknown key"));
        assert!(why(r#"{"op":"add","kind":"key","name":"k"}"#).contains("unknown kind"));
    }

    #[test]
    fn a_bad_line_is_named_by_its_number() {
        let text = "{\"op\":\"rm\",\"item\":\"a\"}\n\n{\"op\":\"rm\"}\n";
        let e = parse_input(text).expect_err("refused");
        assert_eq!(e.code, exit::USAGE);
        assert!(e.message.starts_with("line 3:"), "{}", e.message);
    }
}
