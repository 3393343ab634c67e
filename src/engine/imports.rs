//! Writing what an importer read (`crate::import`) into a vault: every
//! item with its own times and earlier versions, duplicates of what the
//! vault already holds left out, names kept unique, and everything in one
//! transaction (all of it or none).

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};

use rayon::prelude::*;
use serde::Serialize;
use uuid::Uuid;

use super::draft::{clean_field, clean_folder, clean_name};
use super::error::Result;
use super::model::{self, Details, FieldKind, Item, ItemKind, ItemRef, Overview};
use super::{ItemDraft, Session, seal_item};
use crate::import::{Format, ImportItem, Parsed, Problem};
use crate::store::ItemRecord;

/// How [`Session::import`] places what it adds.
#[derive(Debug, Clone, Default)]
pub struct ImportOptions {
    /// Every item goes below this folder (its own folder, if any, under it).
    pub folder: Option<String>,
    /// Work everything out and report it, write nothing.
    pub dry_run: bool,
}

/// What an import did (or, with `dry_run`, would do). Names only, never a value.
#[derive(Debug, Clone, Serialize)]
pub struct ImportReport {
    pub format: Format,
    pub vault: String,
    pub dry_run: bool,
    pub imported: Vec<Imported>,
    pub duplicates: Vec<Duplicate>,
    /// Items imported without some of what the file had for them.
    pub unmapped: Vec<Unmapped>,
    /// Entries the file had that could not be read at all (not imported).
    pub problems: Vec<Problem>,
    /// Remarks on the whole file.
    pub notes: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Imported {
    pub name: String,
    pub kind: ItemKind,
    /// Where it was in the file.
    pub at: String,
    /// The new item's id (`None` in a dry run).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<Uuid>,
    /// Its name in the file, when the vault already had an item of that
    /// name and this one got a number.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub renamed_from: Option<String>,
    /// Versions written (1 + the file's history for it).
    pub versions: usize,
}

#[derive(Debug, Clone, Serialize)]
pub struct Duplicate {
    pub name: String,
    pub at: String,
    /// The item already in the vault (or imported earlier from this file).
    pub existing: Option<Uuid>,
    pub why: &'static str,
}

#[derive(Debug, Clone, Serialize)]
pub struct Unmapped {
    pub name: String,
    pub at: String,
    pub what: Vec<String>,
}

/// What tells two items apart for duplicate detection: the name (any
/// letter case), the subtitle (the username of a login) and the first URL.
type Likeness = (String, Option<String>, Option<String>);

fn likeness(o: &Overview) -> Likeness {
    (
        o.name.to_lowercase(),
        o.subtitle.clone(),
        o.urls.first().cloned(),
    )
}

/// One item made ready to seal: every version's overview and details.
struct Prepared {
    versions: Vec<(Overview, Details)>,
    report: Imported,
}

/// A draft brought within the engine's rules, as far as it can be without
/// losing the item: a field that cannot be kept is dropped and named in
/// `lost`; a bad name becomes "Untitled"; tags lose their spaces.
fn clean_draft(
    draft: &ItemDraft,
    folder_prefix: Option<&str>,
    lost: &mut Vec<String>,
) -> (ItemDraft, Details) {
    let name = match clean_name(&draft.name) {
        Ok(n) => n,
        Err(e) => {
            lost.push(format!("name: {e}; imported as \"Untitled\""));
            "Untitled".to_owned()
        }
    };
    let mut tags: Vec<String> = Vec::new();
    for t in &draft.tags {
        let t: String = t
            .trim()
            .chars()
            .map(|c| if c.is_whitespace() { '-' } else { c })
            .collect();
        if t.is_empty() || tags.iter().any(|o| o.eq_ignore_ascii_case(&t)) {
            continue;
        }
        if t.chars().count() > super::draft::MAX_LABEL {
            lost.push(format!(
                "tag {:?}…: too long",
                t.chars().take(20).collect::<String>()
            ));
            continue;
        }
        tags.push(t);
    }
    let joined = match (folder_prefix, draft.folder.as_deref().map(str::trim)) {
        (Some(p), Some(f)) if !f.is_empty() => Some(format!("{p}/{f}")),
        (Some(p), _) => Some(p.to_owned()),
        (None, f) => f.map(str::to_owned),
    };
    let folder = clean_folder(joined.as_deref()).unwrap_or_else(|e| {
        lost.push(format!("folder: {e}"));
        None
    });
    let mut fields = Vec::with_capacity(draft.fields.len());
    for f in &draft.fields {
        if f.value.expose().is_empty() && f.kind != FieldKind::File {
            continue;
        }
        match clean_field(f.clone()) {
            Ok(f) => fields.push(f),
            Err(e) => lost.push(format!("field {:?}: {e}", f.label)),
        }
    }
    fields.sort_by_key(|f| model::field_rank(&f.label));
    (
        ItemDraft {
            kind: draft.kind,
            name,
            fields: Vec::new(),
            tags,
            folder,
            favorite: draft.favorite,
        },
        Details { fields },
    )
}

/// `name`, or `name (2)`, `name (3)`… whichever no live item of the vault
/// (nor an earlier item of this import) has.
fn free_name(name: &str, taken: &HashSet<String>) -> String {
    if !taken.contains(&name.to_lowercase()) {
        return name.to_owned();
    }
    (2u64..)
        .map(|n| format!("{name} ({n})"))
        .find(|n| !taken.contains(&n.to_lowercase()))
        .unwrap_or_else(|| name.to_owned())
}

impl Session {
    /// Adds what an importer read to the vault `vault_id`: each item with
    /// its creation and modification times and its earlier versions as
    /// history, leaving out duplicates (the same source id as an item the
    /// vault has, or the same name, username and URL), numbering names the
    /// vault already has, all in one transaction. `progress` is called with
    /// (items sealed, items in all).
    ///
    /// # Errors
    /// [`Error::Invalid`](super::Error::Invalid) for a vault this account only views; database
    /// errors (then nothing was written).
    pub async fn import(
        &mut self,
        vault_id: Uuid,
        format: Format,
        parsed: Parsed,
        opts: &ImportOptions,
        progress: &(dyn Fn(u64, u64) + Sync),
    ) -> Result<ImportReport> {
        self.vault_key(vault_id)?;
        self.check_writable(vault_id).await?;
        let folder_prefix = match opts.folder.as_deref() {
            Some(f) => clean_folder(Some(f))?,
            None => None,
        };
        let device = self.header.device_id;
        let now = model::now_millis();
        let loaded = self.ensure_loaded().await?;
        let mut by_source: HashMap<String, Uuid> = HashMap::new();
        let mut by_likeness: HashMap<Likeness, Uuid> = HashMap::new();
        let mut taken: HashSet<String> = HashSet::new();
        for e in loaded.entries.iter().filter(|e| e.r.vault_id == vault_id) {
            if let Some(s) = &e.overview.source {
                by_source.insert(s.clone(), e.r.id);
            }
            by_source.insert(format!("{}:{}", Format::Openk, e.r.id), e.r.id);
            by_likeness.insert(likeness(&e.overview), e.r.id);
            if e.overview.trashed_at.is_none() {
                taken.insert(e.overview.name.to_lowercase());
            }
        }

        let Parsed {
            items,
            problems,
            notes,
        } = parsed;
        let mut prepared: Vec<(Uuid, Prepared)> = Vec::new();
        let mut duplicates = Vec::new();
        let mut unmapped = Vec::new();
        for item in items {
            let ImportItem {
                draft,
                created_at,
                updated_at,
                trashed,
                history,
                source_id,
                at,
                unmapped: mut lost,
            } = item;
            let source = source_id.map(|s| format!("{format}:{s}"));
            let (current, details) = clean_draft(&draft, folder_prefix.as_deref(), &mut lost);
            let mut overview = Overview::new(current.name.clone(), current.kind);
            overview.trashed_at = trashed.then_some(0);
            model::derive_overview(current.kind, &details, &mut overview);
            if let Some(existing) = source.as_ref().and_then(|s| by_source.get(s)) {
                duplicates.push(Duplicate {
                    name: current.name,
                    at,
                    existing: Some(*existing),
                    why: "imported before (same id in the file)",
                });
                continue;
            }
            if let Some(existing) = by_likeness.get(&likeness(&overview)) {
                duplicates.push(Duplicate {
                    name: current.name,
                    at,
                    existing: Some(*existing),
                    why: "same name, username and URL",
                });
                continue;
            }
            let id = Uuid::now_v7();
            let name = if trashed {
                current.name.clone()
            } else {
                free_name(&current.name, &taken)
            };
            let created = created_at
                .or_else(|| history.first().and_then(|(_, t)| *t))
                .or(updated_at)
                .unwrap_or(now);
            let mut versions = Vec::with_capacity(history.len() + 1);
            let mut last = created;
            let mut history_lost = Vec::new();
            for (old, at_time) in &history {
                let (d, det) = clean_draft(old, folder_prefix.as_deref(), &mut history_lost);
                last = at_time.unwrap_or(last).max(last);
                versions.push((d, det, last, false));
            }
            if !history_lost.is_empty() {
                lost.push(format!(
                    "{} part(s) of earlier versions could not be kept",
                    history_lost.len()
                ));
            }
            let updated = updated_at.unwrap_or(last).max(last);
            versions.push((current, details, updated, trashed));
            let versions: Vec<(Overview, Details)> = versions
                .into_iter()
                .map(|(d, det, at_time, trashed)| {
                    let mut o = Overview {
                        tags: d.tags,
                        folder: d.folder,
                        favorite: d.favorite,
                        created_at: created,
                        updated_at: at_time,
                        trashed_at: trashed.then_some(at_time),
                        updated_by: Some(device),
                        source: source.clone(),
                        ..Overview::new(d.name, d.kind)
                    };
                    model::derive_overview(d.kind, &det, &mut o);
                    (o, det)
                })
                .collect();
            let mut versions = versions;
            // The current version takes the (perhaps numbered) name.
            let original = versions
                .last()
                .map(|(o, _)| o.name.clone())
                .unwrap_or_default();
            if let Some((o, _)) = versions.last_mut() {
                o.name.clone_from(&name);
            }
            if let Some(s) = &source {
                by_source.insert(s.clone(), id);
            }
            if let Some((o, _)) = versions.last() {
                by_likeness.insert(likeness(o), id);
                if o.trashed_at.is_none() {
                    taken.insert(name.to_lowercase());
                }
            }
            if !lost.is_empty() {
                unmapped.push(Unmapped {
                    name: name.clone(),
                    at: at.clone(),
                    what: lost,
                });
            }
            prepared.push((
                id,
                Prepared {
                    report: Imported {
                        kind: draft.kind,
                        renamed_from: (name != original).then_some(original),
                        name,
                        at,
                        id: (!opts.dry_run).then_some(id),
                        versions: versions.len(),
                    },
                    versions,
                },
            ));
        }

        let total = prepared.len() as u64;
        progress(0, total);
        let mut imported = Vec::with_capacity(prepared.len());
        if opts.dry_run {
            progress(total, total);
            imported.extend(prepared.into_iter().map(|(_, p)| p.report));
        } else {
            let key = self.vault_key(vault_id)?;
            let done = AtomicU64::new(0);
            let sealed: Vec<(Vec<ItemRecord>, Item, Imported)> = prepared
                .into_par_iter()
                .map(|(id, p)| {
                    let mut records = Vec::with_capacity(p.versions.len());
                    let mut last = None;
                    for (i, (o, d)) in p.versions.into_iter().enumerate() {
                        let r = ItemRef {
                            id,
                            vault_id,
                            version: i as u64 + 1,
                        };
                        records.push(seal_item(key, r, &o, &d));
                        last = Some(Item {
                            r,
                            overview: o,
                            details: d,
                        });
                    }
                    let n = done.fetch_add(1, Ordering::Relaxed) + 1;
                    if n.is_multiple_of(256) || n == total {
                        progress(n, total);
                    }
                    last.map(|item| (records, item, p.report))
                })
                .flatten()
                .collect();
            let (records, saved): (Vec<Vec<ItemRecord>>, Vec<(Item, Imported)>) = sealed
                .into_iter()
                .map(|(records, item, report)| (records, (item, report)))
                .unzip();
            self.store.insert_item_versions(&records).await?;
            drop(records);
            for (item, report) in saved {
                self.remember(&item);
                imported.push(report);
            }
            tracing::debug!(
                format = %format,
                items = imported.len(),
                duplicates = duplicates.len(),
                "imported items"
            );
        }
        Ok(ImportReport {
            format,
            vault: self.vault_name(vault_id).to_owned(),
            dry_run: opts.dry_run,
            imported,
            duplicates,
            unmapped,
            problems,
            notes,
        })
    }
}
