//! `history`.

#[allow(clippy::wildcard_imports)]
use super::*;

pub async fn history(g: &Global, a: &ItemArg) -> CliResult {
    let (vault, id) = resolve_one(g, &a.item, a.vault.as_deref(), false).await?;
    let versions = vault.history(id).await?;
    vault.close().await;
    if g.json {
        let list: Vec<_> = versions
            .iter()
            .map(|v| {
                json!({
                    "version": v.version,
                    "updated_at": (v.updated_at > 0).then(|| output::rfc3339(v.updated_at)),
                    "current": v.current,
                    "changes": v.changes,
                    "damaged": v.damaged,
                })
            })
            .collect();
        return print_json(&json!({ "id": id, "versions": list }));
    }
    let rows: Vec<Vec<String>> = versions
        .iter()
        .map(|v| {
            vec![
                format!("{}{}", v.version, if v.current { " (current)" } else { "" }),
                if v.updated_at > 0 {
                    human_time(v.updated_at)
                } else {
                    String::new()
                },
                v.damaged
                    .as_ref()
                    .map_or_else(|| v.changes.join(", "), |d| format!("DAMAGED: {d}")),
            ]
        })
        .collect();
    print(&table(&["VERSION", "SAVED", "CHANGES"], &rows))?;
    print("`openk show ITEM --version N` shows an older version.\n")
}
