//! `openk backup FILE` and `openk restore` (an item from the trash, or the
//! vault from a backup file).

use std::path::{Path, PathBuf};

use clap::Args;
use serde_json::json;

use super::items::{self, ItemArg};
use super::output::{print, print_json};
use super::{CliError, CliResult, Global, input, sync, vault_dir};
use crate::engine::{self, backup};

#[derive(Debug, Args)]
pub struct BackupArgs {
    /// Where to write the copy of the vault database (created 0600)
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
    /// Replace FILE if it exists
    #[arg(long)]
    pub force: bool,
}

#[derive(Debug, Args)]
pub struct RestoreArgs {
    /// An item in the trash (id, id prefix or name), or a backup file made by `openk backup`
    #[arg(value_name = "ITEM|FILE")]
    pub target: String,
    /// Look ITEM up only in this vault (name or id)
    #[arg(long, value_name = "VAULT")]
    pub vault: Option<String>,
    /// TARGET is a backup file, even when it does not look like one
    #[arg(long)]
    pub backup: bool,
}

pub async fn backup(g: &Global, a: &BackupArgs) -> CliResult {
    let dir = vault_dir(g)?;
    let size = backup::backup(&dir, &a.file, a.force).await?;
    let shown = crate::text::line(&a.file.display().to_string()).into_owned();
    if g.json {
        return print_json(&json!({ "file": a.file, "bytes": size }));
    }
    print(&format!(
        "Backed up the vault database to {shown} ({size} bytes, mode 0600).\n\
         It is as encrypted as the vault; the Secret Key is not in it: restoring needs \
         your master password and Secret Key (`openk restore {shown}`).\n"
    ))
}

/// Whether `openk restore TARGET` restores a backup: `--backup`, or TARGET
/// names an existing file that starts like an SQLite database.
fn is_backup(a: &RestoreArgs) -> bool {
    a.backup || {
        let p = Path::new(&a.target);
        p.is_file() && backup::is_sqlite_file(p)
    }
}

pub async fn restore(g: &Global, a: &RestoreArgs) -> CliResult {
    if !is_backup(a) {
        return items::restore(
            g,
            &ItemArg {
                item: a.target.clone(),
                vault: a.vault.clone(),
            },
        )
        .await;
    }
    if a.vault.is_some() {
        return Err(CliError::usage(
            "--vault names the vault of an item; a backup restore replaces the whole local vault",
        ));
    }
    let dir = vault_dir(g)?;
    let file = PathBuf::from(&a.target);
    if !file.is_file() {
        return Err(CliError::usage(format!(
            "{} is not a file; name a backup made by `openk backup FILE`",
            crate::text::line(&a.target)
        )));
    }
    let password = input::master_password(g, "Master password (of the backup): ")?;
    let fallback = std::env::var("OPENK_SECRET_KEY")
        .ok()
        .map(zeroize::Zeroizing::new);
    let staged = backup::prepare_restore(
        &dir,
        &file,
        password.clone(),
        fallback.as_deref().map(String::as_str),
    )
    .await?;
    // The agent's key may not open the restored database (a backup from
    // before a password change): it stops, and the next command asks.
    if let Some(info) = crate::agent::client::lock(&dir).await {
        eprintln!(
            "openk: stopped the agent (pid {}); `openk unlock` starts it again",
            info.pid
        );
    }
    let restored = staged.commit().await?;
    let replaced = restored
        .replaced
        .as_ref()
        .map(|p| crate::text::line(&p.display().to_string()).into_owned());
    // Logged in: the server's newer versions come back, and changes kept
    // only in the backup go up.
    let mut note = None;
    let mut synced = false;
    if !g.no_sync {
        let mut vault = engine::Session::unlock_with(
            &dir,
            password,
            fallback.as_deref().map(String::as_str),
            engine::UnlockOptions::default(),
        )
        .await?;
        if vault.remote().is_some() {
            note = sync::sync_unless_off(g, &mut vault, None).await;
            synced = note.is_none();
        }
        vault.close().await;
    }
    if g.json {
        return print_json(&json!({
            "restored": file,
            "items": restored.items,
            "replaced": restored.replaced,
            "synced": synced,
            "sync_note": note,
        }));
    }
    let mut text = format!(
        "Restored the vault from {} ({} item(s)).\n",
        crate::text::line(&a.target),
        restored.items
    );
    if let Some(r) = replaced {
        text.push_str(&format!("The replaced database is kept as {r}.\n"));
    }
    if synced {
        text.push_str("Synced with the server.\n");
    }
    sync::note_sync(note.as_deref());
    print(&text)
}
