//! `mv` and `cp`: an item into another vault.

#[allow(clippy::wildcard_imports)]
use super::*;

pub async fn mv(g: &Global, a: &MoveArgs) -> CliResult {
    let item = match (&a.item, &a.bulk.query) {
        (_, Some(query)) => return bulk::mv_where(g, a, query).await,
        (Some(item), None) => item,
        (None, None) => return Err(CliError::usage("name the item, or many with --where QUERY")),
    };
    if a.bulk.dry_run {
        return Err(CliError::usage("--dry-run is for --where QUERY"));
    }
    let target = match (&a.vault, &a.folder) {
        (Some(v), None) => v,
        (None, Some(folder)) => return to_folder(g, a, item, folder).await,
        _ => {
            return Err(CliError::usage(
                "say where the item goes: --vault VAULT or --folder FOLDER (\"\" for none)",
            ));
        }
    };
    let (mut vault, id) = resolve_one(g, item, a.from.as_deref(), false).await?;
    let moved = async {
        let to = vault.resolve_vault(target)?;
        let from = vault.item(id).await?.r.vault_id;
        Ok::<_, crate::engine::Error>((from, vault.move_item(id, to).await?))
    }
    .await;
    let (from, item) = match moved {
        Ok(m) => m,
        Err(e) => {
            vault.close().await;
            return Err(e.into());
        }
    };
    let from_name = vault.vault_name(from).to_owned();
    let mut json = written_json(&vault, &item);
    json["moved_from"] = json!({ "id": id, "vault_id": from, "vault": from_name });
    let text = format!(
        "Moved {:?} from vault {from_name:?} to vault {:?} with its history (its id is now {}).\n",
        item.overview.name,
        vault.vault_name(item.r.vault_id),
        item.r.id
    );
    written(g, vault, json, &text).await
}

/// `mv ITEM --folder F`: the item into a folder of its vault (a new version).
async fn to_folder(g: &Global, a: &MoveArgs, item: &str, folder: &str) -> CliResult {
    let (mut vault, id) = resolve_one(g, item, a.from.as_deref(), false).await?;
    let patch = ItemPatch {
        folder: Some(Some(folder.to_owned()).filter(|f| !f.trim().is_empty())),
        ..ItemPatch::default()
    };
    let item = match vault.update(id, &patch).await {
        Ok(i) => i,
        Err(e) => {
            vault.close().await;
            return Err(e.into());
        }
    };
    let text = match &item.overview.folder {
        Some(f) => format!(
            "Moved {:?} to folder {:?}.\n",
            crate::text::line(&item.overview.name),
            crate::text::line(f)
        ),
        None => format!(
            "Took {:?} out of its folder.\n",
            crate::text::line(&item.overview.name)
        ),
    };
    let json = written_json(&vault, &item);
    written(g, vault, json, &text).await
}

pub async fn cp(g: &Global, a: &CopyItemArgs) -> CliResult {
    let (mut vault, id) = resolve_one(g, &a.item, a.from.as_deref(), false).await?;
    let copied = async {
        let original = vault.item(id).await?;
        let to = match &a.vault {
            Some(v) => vault.resolve_vault(v)?,
            None => original.r.vault_id,
        };
        let copy = vault.copy_item(id, to, a.name.as_deref()).await?;
        Ok::<_, crate::engine::Error>((original, copy))
    }
    .await;
    let (original, item) = match copied {
        Ok(c) => c,
        Err(e) => {
            vault.close().await;
            return Err(e.into());
        }
    };
    let mut json = written_json(&vault, &item);
    json["copied_from"] = json!({
        "id": original.r.id,
        "vault_id": original.r.vault_id,
        "vault": vault.vault_name(original.r.vault_id),
    });
    let text = format!(
        "Copied {:?} to vault {:?} as {:?} (id {}); the original stays.\n",
        original.overview.name,
        vault.vault_name(item.r.vault_id),
        item.overview.name,
        item.r.id
    );
    written(g, vault, json, &text).await
}
