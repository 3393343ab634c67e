//! `rm`, `restore` and `purge`.

#[allow(clippy::wildcard_imports)]
use super::*;

pub async fn rm(g: &Global, a: &RmArgs) -> CliResult {
    let item = match (&a.item, &a.bulk.query) {
        (_, Some(query)) => return bulk::rm_where(g, a, query).await,
        (Some(item), None) => item,
        (None, None) => return Err(CliError::usage("name the item, or many with --where QUERY")),
    };
    if a.bulk.dry_run {
        return Err(CliError::usage("--dry-run is for --where QUERY"));
    }
    let (mut vault, id) = resolve_one(g, item, a.vault.as_deref(), false).await?;
    let item = vault.trash(id).await?;
    let text = format!(
        "Moved {:?} to the trash; `openk restore {}` brings it back.\n",
        item.overview.name, item.r.id
    );
    let json = written_json(&vault, &item);
    written(g, vault, json, &text).await
}

pub async fn restore(g: &Global, a: &ItemArg) -> CliResult {
    let (mut vault, id) = resolve_one(g, &a.item, a.vault.as_deref(), true).await?;
    let item = vault.restore(id).await?;
    let text = format!("Restored {:?}.\n", item.overview.name);
    let json = written_json(&vault, &item);
    written(g, vault, json, &text).await
}

pub async fn purge(g: &Global, a: &PurgeArgs) -> CliResult {
    let (mut vault, id) = resolve_one(g, &a.item, a.vault.as_deref(), true).await?;
    let (entries, _) = vault.entries().await?;
    let name = entries
        .iter()
        .find(|e| e.r.id == id)
        .map(|e| e.overview.name.clone())
        .unwrap_or_default();
    if !a.yes && !confirm(&format!("Destroy {name:?} and all its history for good?")) {
        vault.close().await;
        return Err(CliError::usage(
            "purge destroys the item and its history and cannot be undone; confirm on a terminal or pass --yes",
        ));
    }
    vault.purge(id).await?;
    let text = format!("Purged {name:?}.\n");
    written(g, vault, json!({ "id": id, "purged": true }), &text).await
}
