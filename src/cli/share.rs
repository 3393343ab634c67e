//! `openk share`: share links (make, open, list, revoke). Opening needs no
//! vault: the link alone (its key is the part after `#`).

use std::time::Duration;

use clap::{Args, Subcommand};
use serde_json::json;

use super::input;
use super::output::{print, print_json, table};
use super::{CliError, CliResult, Global, unlock};
use crate::engine::remote::share::{self, ShareOptions};
use crate::text;

#[derive(Debug, Subcommand)]
pub enum ShareCommand {
    /// Make a link to one item that anyone who has it can open, in a browser or with `openk share open`
    Link(LinkArgs),
    /// Open a share link and print its fields (no vault needed); URL `-` reads it from standard input
    Open(OpenArgs),
    /// List this account's live share links
    Ls,
    /// Delete a share link on the server at once
    Revoke(RevokeArgs),
}

#[derive(Debug, Args)]
pub struct LinkArgs {
    /// The item: id, id prefix or name
    pub item: String,
    /// How long the link works: 1h to 30d (units s, m, h, d, w)
    #[arg(long, default_value = "7d", value_parser = share::parse_expiry, value_name = "DURATION")]
    pub expires: Duration,
    /// The link is gone after this many opens (1 to 1000; default: only the expiry ends it)
    #[arg(long, value_name = "N")]
    pub max_views: Option<u32>,
    /// Share only these fields (labels, comma-separated; default: every field)
    #[arg(long, value_delimiter = ',', value_name = "F1,F2")]
    pub fields: Option<Vec<String>>,
}

#[derive(Debug, Args)]
pub struct OpenArgs {
    /// The link (https://SERVER/s/ID#KEY), or `-` to read it from standard
    /// input. The link carries the key: other users of this machine can
    /// read a command line, so prefer `-`.
    #[arg(value_name = "URL")]
    pub url: String,
}

#[derive(Debug, Args)]
pub struct RevokeArgs {
    /// The link's id (`openk share ls`)
    #[arg(allow_hyphen_values = true)]
    pub id: String,
}

pub async fn share(g: &Global, cmd: &ShareCommand) -> CliResult {
    match cmd {
        ShareCommand::Open(a) => open(g, a).await,
        ShareCommand::Link(a) => {
            let mut vault = unlock(g).await?;
            let result = link(g, &mut vault, a).await;
            vault.close().await;
            result
        }
        ShareCommand::Ls => {
            let mut vault = unlock(g).await?;
            let result = ls(g, &mut vault).await;
            vault.close().await;
            result
        }
        ShareCommand::Revoke(a) => {
            let mut vault = unlock(g).await?;
            let result = revoke(g, &mut vault, a).await;
            vault.close().await;
            result
        }
    }
}

async fn link(g: &Global, vault: &mut crate::engine::Session, a: &LinkArgs) -> CliResult {
    let options = ShareOptions {
        expires: a.expires,
        max_views: a.max_views,
        fields: a.fields.clone(),
    };
    let made = vault.share_link(&a.item, &options).await?;
    if g.json {
        return print_json(&serde_json::to_value(&made).unwrap_or_default());
    }
    // The link alone on stdout (for a pipe); what it holds on stderr.
    print(&format!("{}\n", made.url.as_str()))?;
    let views = match made.max_views {
        Some(1) => ", 1 view".to_owned(),
        Some(n) => format!(", {n} views"),
        None => String::new(),
    };
    eprintln!(
        "Share link {} for {:?} ({}): until {}{views}. Anyone with the link can read these \
         fields; `openk share revoke {}` deletes it.",
        made.id,
        text::line(&made.item),
        if made.fields.is_empty() {
            "no fields".to_owned()
        } else {
            text::line(&made.fields.join(", ")).into_owned()
        },
        made.expires_at,
        made.id
    );
    Ok(())
}

async fn open(g: &Global, a: &OpenArgs) -> CliResult {
    let url = if a.url == "-" {
        input::value_or_stdin("URL", "-", false)?
    } else {
        zeroize::Zeroizing::new(a.url.clone())
    };
    let item = share::open_link(&url).await?;
    if g.json {
        return print_json(&json!({
            "name": item.name,
            "kind": item.kind,
            "fields": item.fields.iter().map(|f| json!({
                "label": f.label,
                "value": f.value.expose(),
                "kind": f.kind,
                "concealed": f.concealed,
            })).collect::<Vec<_>>(),
        }));
    }
    let mut out = format!("{} ({})\n", text::line(&item.name), text::line(&item.kind));
    let width = item
        .fields
        .iter()
        .map(|f| super::output::width(&text::line(&f.label)))
        .max()
        .unwrap_or(0);
    for f in &item.fields {
        let label = text::line(&f.label);
        let pad = " ".repeat(width - super::output::width(&label));
        let value = text::text(f.value.expose());
        let mut lines = value.lines();
        out.push_str(&format!(
            "{label}{pad}  {}\n",
            lines.next().unwrap_or_default()
        ));
        for more in lines {
            out.push_str(&format!("{}  {more}\n", " ".repeat(width)));
        }
    }
    print(&out)
}

async fn ls(g: &Global, vault: &mut crate::engine::Session) -> CliResult {
    let links = vault.share_links().await?;
    if g.json {
        return print_json(&serde_json::to_value(&links).unwrap_or_default());
    }
    if links.is_empty() {
        eprintln!("No live share links.");
        return Ok(());
    }
    let rows: Vec<Vec<String>> = links
        .iter()
        .map(|l| {
            vec![
                text::cell(&l.id).into_owned(),
                text::cell(&l.created_at).into_owned(),
                text::cell(&l.expires_at).into_owned(),
                l.views_left
                    .map_or_else(|| "unlimited".to_owned(), |n| n.to_string()),
                l.item.as_deref().map_or_else(
                    || "(made on another device)".to_owned(),
                    |i| text::cell(i).into_owned(),
                ),
            ]
        })
        .collect();
    print(&table(
        &["ID", "CREATED", "EXPIRES", "VIEWS LEFT", "ITEM"],
        &rows,
    ))
}

async fn revoke(g: &Global, vault: &mut crate::engine::Session, a: &RevokeArgs) -> CliResult {
    // A whole link names its id before the `#`; the key is not needed.
    let id =
        a.id.split('#')
            .next()
            .unwrap_or_default()
            .rsplit("/s/")
            .next()
            .unwrap_or_default()
            .trim()
            .to_owned();
    if id.is_empty() {
        return Err(CliError::usage(
            "name the link to revoke: its id (`openk share ls`)",
        ));
    }
    vault.revoke_share(&id).await?;
    if g.json {
        print_json(&json!({ "revoked": id }))
    } else {
        print(&format!("Revoked share link {}.\n", text::line(&id)))
    }
}
