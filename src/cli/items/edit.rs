//! `add` and `edit`.

#[allow(clippy::wildcard_imports)]
use super::*;

pub async fn add(g: &Global, a: &AddArgs) -> CliResult {
    let f = &a.fields;
    let name = f
        .name
        .clone()
        .ok_or_else(|| CliError::usage("an item needs a name: --name NAME"))?;
    // Unlock first: with --password-stdin the password is the first line of
    // standard input, and a field given as `-` takes the rest.
    let mut vault = unlock(g).await?;
    let target = a
        .vault
        .as_deref()
        .map(|v| vault.resolve_vault(v))
        .transpose();
    let (fields, target) = match (f.to_fields(a.kind), target) {
        (Ok(fields), Ok(target)) => (fields, target.unwrap_or(vault.default_vault().0)),
        (Err(e), _) => {
            vault.close().await;
            return Err(e);
        }
        (_, Err(e)) => {
            vault.close().await;
            return Err(e.into());
        }
    };
    let item = vault
        .add_to(
            target,
            ItemDraft {
                kind: a.kind,
                name,
                fields,
                tags: f.tags.clone(),
                folder: f.folder.clone(),
                favorite: f.favorite,
            },
        )
        .await?;
    let text = format!(
        "Added {} {:?} ({})\n",
        item.overview.kind, item.overview.name, item.r.id
    );
    let json = written_json(&vault, &item);
    written(g, vault, json, &text).await
}

pub async fn edit(g: &Global, a: &EditArgs) -> CliResult {
    let (mut vault, id) = resolve_one(g, &a.item, a.vault.as_deref(), false).await?;
    let current = vault.item(id).await?;
    let f = &a.fields;
    let patch = ItemPatch {
        name: f.name.clone(),
        set_fields: f
            .to_fields(current.overview.kind)?
            .into_iter()
            .filter(|x| x.kind != FieldKind::Url)
            .collect(),
        urls: (!f.urls.is_empty()).then(|| f.urls.clone()),
        remove_fields: a.remove_field.clone(),
        tags: (!f.tags.is_empty()).then(|| f.tags.clone()),
        folder: f.folder.clone().map(|s| Some(s).filter(|s| !s.is_empty())),
        favorite: if f.favorite {
            Some(true)
        } else if a.unfavorite {
            Some(false)
        } else {
            None
        },
        resolve: a.resolve,
    };
    let item = vault.update(id, &patch).await?;
    let changed = item.r.version != current.r.version;
    let mut json = written_json(&vault, &item);
    json["changed"] = json!(changed);
    let text = if changed {
        format!(
            "Saved {:?} (version {})\n",
            item.overview.name, item.r.version
        )
    } else {
        format!("Nothing changed in {:?}\n", item.overview.name)
    };
    written(g, vault, json, &text).await
}
