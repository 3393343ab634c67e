//! `ls` and `search`.

#[allow(clippy::wildcard_imports)]
use super::*;

pub(super) fn entry_rows(entries: &[&Entry], all: &[uuid::Uuid]) -> Vec<Vec<String>> {
    let short = short_ids(all);
    entries
        .iter()
        .map(|e| {
            let o = &e.overview;
            let cell = |s: &str, max| clip(&crate::text::cell(s), max);
            vec![
                short.get(&e.r.id).cloned().unwrap_or_default(),
                format!(
                    "{}{}{}",
                    if o.conflict.is_some() { "! " } else { "" },
                    if o.favorite { "★ " } else { "" },
                    cell(&o.name, 40)
                ),
                o.kind.to_string(),
                cell(o.subtitle.as_deref().unwrap_or(""), 32),
                cell(o.folder.as_deref().unwrap_or(""), 20),
                cell(&o.tags.join(","), 30),
            ]
        })
        .collect()
}

pub(super) const LIST_HEADER: [&str; 6] = ["ID", "NAME", "KIND", "USERNAME", "FOLDER", "TAGS"];

/// The list table; with `used`, a USED column says how often and when each
/// item was last used; with more than one vault, a VAULT column names each
/// item's vault.
fn list_table(
    entries: &[&Entry],
    all: &[uuid::Uuid],
    used: Option<&Usage>,
    vaults: &VaultNames,
) -> String {
    let mut rows = entry_rows(entries, all);
    let mut header = LIST_HEADER.to_vec();
    if let Some(usage) = used {
        for (row, e) in rows.iter_mut().zip(entries) {
            row.push(output::use_cell(usage.of(e.r.id)));
        }
        header.push("USED");
    }
    if vaults.many {
        for (row, e) in rows.iter_mut().zip(entries) {
            row.push(clip(&crate::text::cell(vaults.name(e.r.vault_id)), 20));
        }
        header.push("VAULT");
    }
    table(&header, &rows)
}

pub async fn ls(g: &Global, a: &LsArgs) -> CliResult {
    let mut vault = unlock(g).await?;
    let names = VaultNames::of(&vault).await?;
    let only = a
        .vault
        .as_deref()
        .map(|v| vault.resolve_vault(v))
        .transpose()?;
    let query = Query {
        kind: a.kind,
        tags: a.tags.clone(),
        folder: a.folder.clone(),
        vault_id: only,
        favorite: a.favorites,
        trash: a.trash,
        ..Query::default()
    };
    let all: Vec<uuid::Uuid> = vault.entries().await?.0.iter().map(|e| e.r.id).collect();
    let usage = if g.json || a.sort == SortBy::Used {
        Some(vault.usage().await?)
    } else {
        None
    };
    let (mut entries, damaged) = vault.list_by(&query, a.sort.order()).await?;
    if a.conflicts {
        entries.retain(|e| e.overview.conflict.is_some());
    }
    let out = if g.json {
        let usage = usage.unwrap_or_default();
        print_json(&json!({
            "items": entries.iter().map(|e| {
                let mut v = entry_json(e);
                output::add_use_json(&mut v, usage.of(e.r.id));
                names.json(v, e.r.vault_id)
            }).collect::<Vec<_>>(),
            "damaged": damaged,
        }))
    } else if entries.is_empty() && a.conflicts {
        print("No conflicts.\n")
    } else if entries.is_empty() {
        print(if a.trash {
            "The trash is empty.\n"
        } else {
            "No items. Add one with `openk add login --name NAME`.\n"
        })
    } else {
        print(&list_table(&entries, &all, usage.as_ref(), &names))
    };
    let damaged = damaged.to_vec();
    vault.close().await;
    out?;
    report_damaged(&damaged)
}

pub async fn search(g: &Global, a: &SearchArgs) -> CliResult {
    let mut query = Query::parse(&a.query.join(" ")).map_err(CliError::usage)?;
    let mut vault = unlock(g).await?;
    let names = VaultNames::of(&vault).await?;
    if let Some(v) = &a.vault {
        let id = vault.resolve_vault(v)?;
        if let Some(named) = query.vault.take()
            && vault.resolve_vault(&named)? != id
        {
            vault.close().await;
            return Err(CliError::usage(format!(
                "--vault {v:?} and vault:{named} name two different vaults; give one"
            )));
        }
        query.vault_id = Some(id);
    }
    let found = vault.search(&query, a.limit).await?;
    let (entries, damaged) = vault.entries().await?;
    let hits = &found.hits;
    let shown: Vec<&Entry> = hits.iter().map(|h| &entries[h.index]).collect();
    let out = if g.json {
        let items: Vec<_> = hits
            .iter()
            .map(|h| {
                let e = &entries[h.index];
                let mut v = names.json(entry_json(e), e.r.vault_id);
                v["score"] = json!(h.score);
                v
            })
            .collect();
        print_json(&json!({ "items": items, "total": found.total, "damaged": damaged }))
    } else if shown.is_empty() {
        print("No matches.\n")
    } else {
        let all: Vec<uuid::Uuid> = entries.iter().map(|e| e.r.id).collect();
        let mut text = list_table(&shown, &all, None, &names);
        if found.total > shown.len() {
            text.push_str(&format!(
                "… {} more (use --limit)\n",
                found.total - shown.len()
            ));
        }
        print(&text)
    };
    let damaged = damaged.to_vec();
    vault.close().await;
    out?;
    report_damaged(&damaged)
}
