//! `openk copy`: a field to the clipboard, cleared later; and the hidden
//! `openk __clipboard-hold` helper that `crate::clipboard` starts.

use std::time::Duration;

use clap::{Args, ValueEnum};
use serde_json::json;
use zeroize::Zeroizing;

use super::items::{default_field, field_value, find};
use super::output::{print, print_json};
use super::{CliError, CliResult, Global, unlock};
use crate::clipboard::{self, HoldOptions, Via};

#[derive(Debug, Args)]
pub struct CopyArgs {
    /// Item: id, unique id prefix (4+ characters) or exact name
    pub item: String,
    /// password (default for logins), username, url, notes, totp (the current code), or a field label
    pub field: Option<String>,
    /// Look ITEM up only in this vault (name or id)
    #[arg(long, value_name = "VAULT")]
    pub vault: Option<String>,
    /// Clear the clipboard after SECS seconds if it still holds the value
    /// (0: never; default: `[clipboard] clear_after_secs` in the config, 30)
    #[arg(long, value_name = "SECS")]
    pub clear_after: Option<u64>,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum ViaArg {
    Display,
    Osc52,
}

#[derive(Debug, Args)]
pub struct HoldArgs {
    #[arg(long, value_enum)]
    pub via: ViaArg,
    /// 0: never clear
    #[arg(long, default_value_t = 0)]
    pub clear_after_ms: u64,
    #[arg(long)]
    pub detached: bool,
}

pub async fn copy(g: &Global, a: &CopyArgs) -> CliResult {
    let clear_secs = a.clear_after.unwrap_or(g.config.clipboard.clear_after_secs);
    let mut vault = unlock(g).await?;
    let item = match find(&mut vault, &a.item, a.vault.as_deref(), false).await {
        Ok(id) => vault.item(id).await.map_err(CliError::from),
        Err(e) => Err(e),
    };
    let vault_name = item
        .as_ref()
        .ok()
        .map(|i| vault.vault_name(i.r.vault_id).to_owned());
    let item = match item {
        Ok(item) => item,
        Err(e) => {
            vault.close().await;
            return Err(e);
        }
    };
    let field = a.field.clone().unwrap_or_else(|| default_field(&item));
    let clear_after = (clear_secs > 0).then(|| Duration::from_secs(clear_secs));
    let copied = field_value(&item, &field).and_then(|v| {
        let value = Zeroizing::new(v);
        clipboard::copy(&value, clear_after).map_err(|e| CliError::general(e.to_string()))
    });
    // Only a copy that happened is a use.
    if copied.is_ok() {
        vault.record_use(item.r.id).await;
    }
    vault.close().await;
    let copied = copied?;
    let clear_secs = copied.clear_after.map(|d| d.as_secs());
    if g.json {
        return print_json(&json!({
            "id": item.r.id,
            "vault_id": item.r.vault_id,
            "vault": vault_name.unwrap_or_default(),
            "field": field,
            "via": copied.via.as_str(),
            "clear_after_secs": clear_secs,
        }));
    }
    let when = match clear_secs {
        Some(s) => format!("it will be cleared in {s} s if it is still there"),
        None => "it will not be cleared".to_owned(),
    };
    let caveat = if copied.via == Via::Osc52 {
        " (if your terminal supports OSC 52)"
    } else {
        ""
    };
    print(&format!(
        "Copied the {field} of {:?} to {}{caveat}; {when}.\n",
        item.overview.name, copied.via
    ))
}

/// `openk __clipboard-hold`: never run by hand (see `crate::clipboard`).
pub fn hold(a: &HoldArgs) -> CliResult {
    let options = HoldOptions {
        via: match a.via {
            ViaArg::Display => Via::Display,
            ViaArg::Osc52 => Via::Osc52,
        },
        clear_after: (a.clear_after_ms > 0).then(|| Duration::from_millis(a.clear_after_ms)),
        detached: a.detached,
    };
    clipboard::hold(&options).map_err(CliError::general)
}
