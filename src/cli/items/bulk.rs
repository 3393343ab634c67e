//! Bulk commands: `tag add|rm … --where Q`, `mv --where Q`, `rm --where Q`.
//! The query is the search language (`openk search`); every change is
//! shown (count, and on a terminal the first names), confirmed (or
//! `--yes`), then written in one transaction and synced in one sync.

#[allow(clippy::wildcard_imports)]
use super::*;
use crate::engine::bulk::{BulkChange, BulkOp, BulkReport};

/// How many names a confirmation on a terminal shows.
const SHOWN: usize = 5;

#[derive(Debug, clap::Subcommand)]
pub enum TagCommand {
    /// Add tags to every item a query matches
    Add(TagArgs),
    /// Remove tags from every item a query matches
    #[command(visible_alias = "remove")]
    Rm(TagArgs),
}

#[derive(Debug, Args)]
pub struct TagArgs {
    /// The tags
    #[arg(required = true, num_args = 1.., value_name = "TAG")]
    pub tags: Vec<String>,
    #[command(flatten)]
    pub bulk: BulkArgs,
}

/// The flags every bulk command takes.
#[derive(Debug, Args, Default)]
pub struct BulkArgs {
    /// The items: a search query (words, kind:K tag:T folder:F vault:V is:fav is:trash)
    #[arg(long = "where", value_name = "QUERY")]
    pub query: Option<String>,
    /// Do not ask for confirmation
    #[arg(long, short)]
    pub yes: bool,
    /// Only list what would change
    #[arg(long)]
    pub dry_run: bool,
}

pub async fn tag(g: &Global, c: &TagCommand) -> CliResult {
    let (a, op, verb) = match c {
        TagCommand::Add(a) => (a, BulkOp::AddTags(a.tags.clone()), "Tagged"),
        TagCommand::Rm(a) => (a, BulkOp::RemoveTags(a.tags.clone()), "Untagged"),
    };
    let Some(query) = &a.bulk.query else {
        return Err(CliError::usage(
            "name the items with --where QUERY (e.g. --where 'folder:Dev tag:old'); `openk edit ITEM --tag T` sets one item's tags",
        ));
    };
    let shown = a
        .tags
        .iter()
        .map(|t| crate::text::line(t).into_owned())
        .collect::<Vec<_>>()
        .join(", ");
    let question = match c {
        TagCommand::Add(_) => format!("Add tag(s) {shown} to"),
        TagCommand::Rm(_) => format!("Remove tag(s) {shown} from"),
    };
    bulk(g, query, &a.bulk, &op, &question, verb).await
}

/// `mv --where Q --folder F | --vault V`.
pub async fn mv_where(g: &Global, a: &MoveArgs, query: &str) -> CliResult {
    let s = unlock(g).await?;
    let op = match (&a.vault, &a.folder) {
        (Some(v), None) => match s.resolve_vault(v) {
            Ok(to) => BulkOp::MoveVault(to),
            Err(e) => {
                s.close().await;
                return Err(e.into());
            }
        },
        (None, Some(f)) => BulkOp::Folder(Some(f.clone()).filter(|f| !f.trim().is_empty())),
        _ => {
            s.close().await;
            return Err(CliError::usage(
                "say where the items go: --folder FOLDER (\"\" for none) or --vault VAULT",
            ));
        }
    };
    let question = match &op {
        BulkOp::MoveVault(to) => format!(
            "Move to vault {:?}",
            crate::text::line(s.vault_name(*to)).into_owned()
        ),
        BulkOp::Folder(Some(f)) => {
            format!("Move to folder {:?}", crate::text::line(f).into_owned())
        }
        _ => "Take out of their folder".to_owned(),
    };
    bulk_in(g, s, query, &a.bulk, &op, &question, "Moved").await
}

/// `rm --where Q`.
pub async fn rm_where(g: &Global, a: &RmArgs, query: &str) -> CliResult {
    bulk(
        g,
        query,
        &a.bulk,
        &BulkOp::Trash,
        "Move to the trash",
        "Trashed",
    )
    .await
}

async fn bulk(
    g: &Global,
    query: &str,
    a: &BulkArgs,
    op: &BulkOp,
    question: &str,
    verb: &str,
) -> CliResult {
    Query::parse(query).map_err(CliError::usage)?;
    let s = unlock(g).await?;
    bulk_in(g, s, query, a, op, question, verb).await
}

/// Runs a bulk operation in an unlocked session: a dry run first (what
/// would change), then the confirmation, then the change.
async fn bulk_in(
    g: &Global,
    mut s: Session,
    text: &str,
    a: &BulkArgs,
    op: &BulkOp,
    question: &str,
    verb: &str,
) -> CliResult {
    let planned = async {
        let query = Query::parse(text).map_err(crate::engine::Error::Invalid)?;
        s.bulk(&query, text, op, true).await
    }
    .await;
    let preview = match planned {
        Ok(p) => p,
        Err(e) => {
            s.close().await;
            return Err(e.into());
        }
    };
    if a.dry_run || preview.changed.is_empty() {
        let out = report_out(&s, &preview, op, "Would change");
        s.close().await;
        return if g.json {
            print_json(&out.0)
        } else {
            print(&out.1)
        };
    }
    if !a.yes {
        let names = first_names(&preview.changed);
        let n = preview.changed.len();
        let ask = format!("{question} {n} item(s){names}?");
        let refused = if super::super::input::interactive() {
            if confirm(&ask) {
                None
            } else {
                Some(CliError::general("cancelled; nothing was changed"))
            }
        } else {
            Some(CliError::usage(format!(
                "changing {n} item(s) needs confirmation; confirm on a terminal or pass --yes \
                 (--dry-run lists them)"
            )))
        };
        if let Some(e) = refused {
            s.close().await;
            return Err(e);
        }
    }
    let ids: Vec<uuid::Uuid> = preview.changed.iter().map(|c| c.id).collect();
    let done = match s.bulk_ids(&ids, op, false).await {
        Ok(mut r) => {
            // What the preview found needing no change counts too.
            r.unchanged.extend(preview.unchanged);
            r
        }
        Err(e) => {
            s.close().await;
            return Err(e.into());
        }
    };
    let (json, text) = report_out(&s, &done, op, verb);
    written(g, s, json, &text).await
}

/// ": A, B, C and N more" (sanitised), or nothing.
fn first_names(changed: &[BulkChange]) -> String {
    let names: Vec<String> = changed
        .iter()
        .take(SHOWN)
        .map(|c| format!("{:?}", crate::text::line(&c.name)))
        .collect();
    let more = changed.len().saturating_sub(SHOWN);
    if more > 0 {
        format!(": {} and {more} more", names.join(", "))
    } else {
        format!(": {}", names.join(", "))
    }
}

/// The JSON and text of a bulk report.
fn report_out(s: &Session, r: &BulkReport, op: &BulkOp, verb: &str) -> (serde_json::Value, String) {
    let changed: Vec<serde_json::Value> = r
        .changed
        .iter()
        .map(|c| {
            json!({
                "id": c.id,
                "new_id": c.new_id,
                "name": c.name,
                "kind": c.kind,
                "vault": s.vault_name(c.vault_id),
                "version": c.version,
            })
        })
        .collect();
    let json = json!({
        "op": op_name(op),
        "dry_run": r.dry_run,
        "changed": changed,
        "unchanged": r.unchanged.len(),
    });
    let mut text = String::new();
    if r.changed.is_empty() {
        text.push_str(&format!(
            "{} item(s) match; none needs a change.\n",
            r.unchanged.len()
        ));
        return (json, text);
    }
    text.push_str(&format!("{verb} {} item(s)", r.changed.len()));
    if !r.unchanged.is_empty() {
        text.push_str(&format!(
            " ({} other match(es) needed no change)",
            r.unchanged.len()
        ));
    }
    text.push_str(if r.dry_run { ":\n" } else { ".\n" });
    if r.dry_run {
        for c in &r.changed {
            text.push_str(&format!(
                "  {}  {} ({})\n",
                c.id,
                crate::text::line(&c.name),
                c.kind
            ));
        }
    }
    if matches!(op, BulkOp::Trash) && !r.dry_run {
        text.push_str("`openk ls --trash` lists them; `openk restore ITEM` brings one back.\n");
    }
    (json, text)
}

fn op_name(op: &BulkOp) -> &'static str {
    match op {
        BulkOp::AddTags(_) => "tag-add",
        BulkOp::RemoveTags(_) => "tag-rm",
        BulkOp::Folder(_) => "folder",
        BulkOp::Trash => "trash",
        BulkOp::MoveVault(_) => "move-vault",
    }
}
