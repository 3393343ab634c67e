//! `mv` and `cp`: an item into another vault.

#[allow(clippy::wildcard_imports)]
use super::*;

pub async fn mv(g: &Global, a: &MoveArgs) -> CliResult {
    let (mut vault, id) = resolve_one(g, &a.item, a.from.as_deref(), false).await?;
    let moved = async {
        let to = vault.resolve_vault(&a.vault)?;
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
