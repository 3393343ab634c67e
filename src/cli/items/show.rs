//! `show`, `get` and `totp`.

#[allow(clippy::wildcard_imports)]
use super::*;

pub(super) fn show_text(item: &Item, reveal: bool, vault: Option<&str>, used: ItemUse) -> String {
    let o = &item.overview;
    let mut rows: Vec<Vec<String>> = Vec::new();
    for f in &item.details.fields {
        let value = if f.is_concealed() && !reveal {
            MASK.to_owned()
        } else if f.kind == FieldKind::Totp {
            match f.totp_now() {
                Ok(t) => format!(
                    "{} ({} s left)  {}",
                    t.code,
                    t.seconds_left,
                    f.value.expose()
                ),
                Err(_) => f.value.expose().to_owned(),
            }
        } else {
            f.value.expose().to_owned()
        };
        let mut lines = value.lines();
        rows.push(vec![f.label.clone(), lines.next().unwrap_or("").to_owned()]);
        for more in lines {
            rows.push(vec![String::new(), more.to_owned()]);
        }
    }
    if let Some(v) = vault {
        rows.push(vec!["vault".into(), crate::text::cell(v).into_owned()]);
    }
    if !o.tags.is_empty() {
        rows.push(vec!["tags".into(), o.tags.join(", ")]);
    }
    if let Some(folder) = &o.folder {
        rows.push(vec!["folder".into(), folder.clone()]);
    }
    if o.favorite {
        rows.push(vec!["favorite".into(), "yes".into()]);
    }
    rows.push(vec!["created".into(), human_time(o.created_at)]);
    rows.push(vec!["updated".into(), human_time(o.updated_at)]);
    rows.push(vec!["used".into(), output::use_text(used)]);
    if let Some(t) = o.trashed_at {
        rows.push(vec!["trashed".into(), human_time(t)]);
    }
    if let Some(c) = &o.conflict {
        rows.push(vec!["CONFLICT".into(), c.note.clone()]);
        rows.push(vec![
            String::new(),
            format!(
                "`openk show {} --version {}` shows the other side; `openk edit {} --resolve` clears this",
                item.r.id, c.other_version, item.r.id
            ),
        ]);
    }
    let mut text = format!(
        "{} ({})  id {}  version {}{}\n",
        crate::text::line(&o.name),
        o.kind,
        item.r.id,
        item.r.version,
        match (o.trashed_at.is_some(), o.conflict.is_some()) {
            (true, true) => "  [in trash] [conflict]",
            (true, false) => "  [in trash]",
            (false, true) => "  [conflict]",
            (false, false) => "",
        }
    );
    let body = table(&["", ""], &rows);
    for line in body.lines().skip(1) {
        text.push_str("  ");
        text.push_str(line);
        text.push('\n');
    }
    if !reveal && item.details.fields.iter().any(Field::is_concealed) {
        text.push_str(
            "  (secret values hidden; --reveal shows them, `openk get ITEM FIELD` prints one)\n",
        );
    }
    text
}

pub async fn show(g: &Global, a: &ShowArgs) -> CliResult {
    let (vault, id) = resolve_one(g, &a.item, a.vault.as_deref(), false).await?;
    let item = match a.version {
        Some(v) => vault.item_version(id, v).await,
        None => vault.item(id).await,
    };
    // Revealing the secrets is a use (and counts in what is shown).
    if a.reveal && item.is_ok() {
        vault.record_use(id).await;
    }
    let used = vault.item_use(id).await;
    let names = VaultNames::of(&vault).await;
    vault.close().await;
    let (mut item, names, used) = (item?, names?, used?);
    // A named key's bytes are never shown here, even with --reveal.
    if item.overview.kind == crate::engine::model::ItemKind::Key {
        item.details
            .fields
            .retain(|f| f.label != crate::engine::model::label::KEY_MATERIAL);
    }
    if g.json {
        let mut v = item_json(&item, a.reveal);
        output::add_use_json(&mut v, used);
        print_json(&names.json(v, item.r.vault_id))
    } else {
        // With more than one vault, the item's is named.
        print(&show_text(
            &item,
            a.reveal,
            names.shown(item.r.vault_id),
            used,
        ))
    }
}

/// The value `openk get ITEM FIELD` prints (and `openk copy` copies).
pub(in crate::cli) fn field_value(item: &Item, field: &str) -> CliResult<String> {
    let wanted = field.trim().to_lowercase();
    if item.overview.kind == crate::engine::model::ItemKind::Key
        && wanted == crate::engine::model::label::KEY_MATERIAL
    {
        return Err(CliError::usage(format!(
            "{:?} is a named key: its bytes leave only through `openk key show NAME --export`",
            item.overview.name
        )));
    }
    let f = item.field(&wanted).ok_or_else(|| {
        let labels: Vec<&str> = item
            .details
            .fields
            .iter()
            .map(|f| f.label.as_str())
            .collect();
        CliError {
            code: exit::NOT_FOUND,
            message: format!(
                "{:?} has no field {wanted:?}; its fields are: {}",
                item.overview.name,
                if labels.is_empty() {
                    "(none)".to_owned()
                } else {
                    labels.join(", ")
                }
            ),
        }
    })?;
    if f.kind == FieldKind::Totp {
        return f.totp_now().map(|t| t.code).map_err(CliError::general);
    }
    Ok(f.value.expose().to_owned())
}

/// The field `get` and `copy` use without FIELD: the kind's main secret,
/// else the first concealed field, else the first field (custom items have
/// no fixed layout).
pub(in crate::cli) fn default_field(item: &Item) -> String {
    let primary = item.overview.kind.primary_field();
    if item.field(primary).is_some() {
        primary.to_owned()
    } else {
        item.details
            .fields
            .iter()
            .find(|f| f.is_concealed())
            .or_else(|| item.details.fields.first())
            .map_or_else(|| primary.to_owned(), |f| f.label.clone())
    }
}

pub async fn get(g: &Global, a: &GetArgs) -> CliResult {
    let (vault, id) = resolve_one(g, &a.item, a.vault.as_deref(), false).await?;
    let item = vault.item(id).await;
    let vault_name = item
        .as_ref()
        .ok()
        .map(|i| vault.vault_name(i.r.vault_id).to_owned());
    let picked = item.map_err(CliError::from).and_then(|item| {
        let field = a.field.clone().unwrap_or_else(|| default_field(&item));
        let value = zeroize::Zeroizing::new(field_value(&item, &field)?);
        Ok((item, field, value))
    });
    // A value printed is a use.
    if picked.is_ok() {
        vault.record_use(id).await;
    }
    vault.close().await;
    let (item, field, value) = picked?;
    if g.json {
        print_json(&json!({
            "id": item.r.id,
            "vault_id": item.r.vault_id,
            "vault": vault_name.unwrap_or_default(),
            "field": field,
            "value": value.as_str(),
        }))
    } else if std::io::IsTerminal::is_terminal(&std::io::stdout()) {
        // A terminal never gets raw control characters (docs/cli.md).
        print(&format!("{}\n", value.as_str()))
    } else {
        // A pipe or a file gets the exact value, for scripts.
        print_exact(&zeroize::Zeroizing::new(format!("{}\n", value.as_str())))
    }
}

pub async fn totp(g: &Global, a: &ItemArg) -> CliResult {
    let (vault, id) = resolve_one(g, &a.item, a.vault.as_deref(), false).await?;
    let item = vault.item(id).await;
    let vault_name = item
        .as_ref()
        .ok()
        .map(|i| vault.vault_name(i.r.vault_id).to_owned());
    let code = item.map_err(CliError::from).and_then(|item| {
        let field = item
            .details
            .fields
            .iter()
            .find(|f| f.kind == FieldKind::Totp)
            .ok_or_else(|| CliError {
                code: exit::NOT_FOUND,
                message: format!(
                    "{:?} has no TOTP secret; add one with `openk edit ITEM --totp` (it asks for the secret)",
                    item.overview.name
                ),
            })?;
        let t = field.totp_now().map_err(CliError::general)?;
        Ok((item, t))
    });
    // A code shown is a use.
    if code.is_ok() {
        vault.record_use(id).await;
    }
    vault.close().await;
    let (item, t) = code?;
    if g.json {
        print_json(
            &json!({ "id": id, "vault_id": item.r.vault_id, "vault": vault_name.unwrap_or_default(), "code": t.code, "seconds_left": t.seconds_left, "period": t.period, "digits": t.digits }),
        )
    } else {
        print(&format!("{}  ({} s left)\n", t.code, t.seconds_left))
    }
}
