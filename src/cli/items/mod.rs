//! Item commands: add, ls, show, get, edit, rm, restore, purge, history,
//! search, totp, mv, cp, and the bulk forms (`tag`, `mv --where`, `rm --where`).
mod bulk;
mod edit;
mod fields;
mod history;
mod list;
mod show;
mod transfer;
mod trash;

use clap::Args;
use serde_json::json;

use super::input::{confirm, value_or_stdin};
use super::output::{
    self, MASK, clip, entry_json, human_time, item_json, print, print_exact, print_json, short_ids,
    table,
};
use super::secret_arg::{Ask, PROMPT, SecretField, SecretSource};
use super::sync::{after_write, note_sync};
use super::{CliError, CliResult, Global, exit, unlock};
use crate::engine::generator::{self, PasswordSpec};
use crate::engine::model::{Entry, Field, FieldKind, Item, ItemKind, label};
use crate::engine::search::Query;
use crate::engine::usage::{ItemUse, Usage};
use crate::engine::{DamagedItem, ExposeSecret, ItemDraft, ItemPatch, ListOrder, Session, sshkey};

pub use bulk::{BulkArgs, TagCommand, tag};
pub use edit::{add, edit};
pub use history::history;
pub use list::{ls, search};
pub(in crate::cli) use show::{default_field, field_value};
pub use show::{get, show, totp};
pub use transfer::{cp, mv};
pub use trash::{purge, restore, rm};

/// The end of every command that writes: the sync that follows a write
/// (when wanted), the vault closed, a note when that sync failed, then the
/// result, as JSON with `--json` or as `text`.
async fn written(g: &Global, mut vault: Session, json: serde_json::Value, text: &str) -> CliResult {
    let note = after_write(g, &mut vault).await;
    vault.close().await;
    note_sync(note.as_deref());
    if g.json {
        print_json(&json)
    } else {
        print(text)
    }
}

/// The `item` JSON of a write's result (concealed values `null`), with its
/// vault's name.
fn written_json(s: &Session, item: &Item) -> serde_json::Value {
    let mut json = item_json(item, false);
    json["vault"] = json!(s.vault_name(item.r.vault_id));
    json
}

/// Flags shared by `add` and `edit`.
#[derive(Debug, Args, Default)]
pub struct FieldArgs {
    /// Item name (on edit: rename)
    #[arg(long)]
    pub name: Option<String>,
    /// Tag (repeatable; on edit the given tags replace the old ones)
    #[arg(long = "tag", value_name = "TAG")]
    pub tags: Vec<String>,
    /// Folder ("" for none)
    #[arg(long)]
    pub folder: Option<String>,
    /// Mark as favourite
    #[arg(long)]
    pub favorite: bool,
    /// Text field LABEL=VALUE (repeatable)
    #[arg(long = "field", value_name = "LABEL=VALUE")]
    pub fields: Vec<String>,
    /// Secret (masked) field LABEL=SOURCE (repeatable; SOURCE: -, @FILE, env:NAME or prompt)
    #[arg(long = "secret-field", value_name = "LABEL=SOURCE", value_parser = SecretField::parser())]
    pub secret_fields: Vec<SecretField>,
    /// Notes (- reads stdin)
    #[arg(long)]
    pub notes: Option<String>,
    /// [login, api-key] Username
    #[arg(long)]
    pub username: Option<String>,
    /// [login] Password from SOURCE: - (stdin), @FILE, env:NAME or prompt (the default); never the password itself
    #[arg(long, num_args = 0..=1, default_missing_value = PROMPT, value_name = "SOURCE", value_parser = SecretSource::parser())]
    pub password: Option<SecretSource>,
    /// [login] Generate a password; [ssh-key] generate an Ed25519 key pair
    #[arg(long)]
    pub generate: bool,
    /// With --generate: password length
    #[arg(long, value_name = "N", requires = "generate")]
    pub length: Option<usize>,
    /// With --generate: a passphrase of N words instead
    #[arg(
        long,
        value_name = "N",
        requires = "generate",
        conflicts_with = "length"
    )]
    pub words: Option<usize>,
    /// [login, api-key] URL (repeatable; on edit the given URLs replace the old ones)
    #[arg(long = "url", value_name = "URL")]
    pub urls: Vec<String>,
    /// [login] TOTP secret (base32 or an otpauth:// URI) from SOURCE: -, @FILE, env:NAME or prompt
    #[arg(long, num_args = 0..=1, default_missing_value = PROMPT, value_name = "SOURCE", value_parser = SecretSource::parser())]
    pub totp: Option<SecretSource>,
    /// [card] Cardholder name
    #[arg(long)]
    pub cardholder: Option<String>,
    /// [card] Card number from SOURCE: -, @FILE, env:NAME or prompt
    #[arg(long, num_args = 0..=1, default_missing_value = PROMPT, value_name = "SOURCE", value_parser = SecretSource::parser())]
    pub number: Option<SecretSource>,
    /// [card] Expiry, e.g. 08/29
    #[arg(long)]
    pub expiry: Option<String>,
    /// [card] Security code from SOURCE: -, @FILE, env:NAME or prompt
    #[arg(long, num_args = 0..=1, default_missing_value = PROMPT, value_name = "SOURCE", value_parser = SecretSource::parser())]
    pub cvv: Option<SecretSource>,
    /// [card] PIN from SOURCE: -, @FILE, env:NAME or prompt
    #[arg(long, num_args = 0..=1, default_missing_value = PROMPT, value_name = "SOURCE", value_parser = SecretSource::parser())]
    pub pin: Option<SecretSource>,
    /// [identity] Full name
    #[arg(long)]
    pub full_name: Option<String>,
    /// [identity] Email address
    #[arg(long)]
    pub email: Option<String>,
    /// [identity] Phone number
    #[arg(long)]
    pub phone: Option<String>,
    /// [identity] Postal address
    #[arg(long)]
    pub address: Option<String>,
    /// [identity] Birthday
    #[arg(long)]
    pub birthday: Option<String>,
    /// [identity] Company
    #[arg(long)]
    pub company: Option<String>,
    /// [api-key] The key or token from SOURCE: -, @FILE, env:NAME or prompt
    #[arg(long, num_args = 0..=1, default_missing_value = PROMPT, value_name = "SOURCE", value_parser = SecretSource::parser())]
    pub key: Option<SecretSource>,
    /// [ssh-key] Import a private key in OpenSSH format from this file
    #[arg(long, value_name = "PATH", conflicts_with = "generate")]
    pub private_key_file: Option<std::path::PathBuf>,
    /// [ssh-key] Passphrase of an imported encrypted key from SOURCE: -, @FILE, env:NAME or prompt
    #[arg(long, num_args = 0..=1, default_missing_value = PROMPT, value_name = "SOURCE", value_parser = SecretSource::parser())]
    pub passphrase: Option<SecretSource>,
    /// [ssh-key] Comment for a generated key
    #[arg(long)]
    pub comment: Option<String>,
}

#[derive(Debug, Args)]
pub struct AddArgs {
    /// Kind of item
    #[arg(value_enum)]
    pub kind: ItemKind,
    /// The vault to add it to (name or id; default: the personal vault)
    #[arg(long, value_name = "VAULT")]
    pub vault: Option<String>,
    #[command(flatten)]
    pub fields: FieldArgs,
}

#[derive(Debug, Args)]
pub struct EditArgs {
    /// Item: id, unique id prefix (4+ characters) or exact name
    pub item: String,
    /// Look ITEM up only in this vault (name or id); `openk mv` moves items
    #[arg(long, value_name = "VAULT")]
    pub vault: Option<String>,
    #[command(flatten)]
    pub fields: FieldArgs,
    /// Remove every field with this label (repeatable)
    #[arg(long, value_name = "LABEL")]
    pub remove_field: Vec<String>,
    /// Unmark as favourite
    #[arg(long, conflicts_with = "favorite")]
    pub unfavorite: bool,
    /// Clear the conflict flag a sync merge set (after checking the item)
    #[arg(long)]
    pub resolve: bool,
}

#[derive(Debug, Args)]
pub struct ItemArg {
    /// Item: id, unique id prefix (4+ characters) or exact name
    pub item: String,
    /// Look ITEM up only in this vault (name or id)
    #[arg(long, value_name = "VAULT")]
    pub vault: Option<String>,
}

#[derive(Debug, Args)]
pub struct PurgeArgs {
    /// Item: id, unique id prefix (4+ characters) or exact name
    pub item: String,
    /// Look ITEM up only in this vault (name or id)
    #[arg(long, value_name = "VAULT")]
    pub vault: Option<String>,
    /// Do not ask for confirmation
    #[arg(long, short)]
    pub yes: bool,
}

#[derive(Debug, Args)]
pub struct LsArgs {
    /// Only items of this kind
    #[arg(long, value_enum)]
    pub kind: Option<ItemKind>,
    /// Only items with this tag (repeatable: all must match)
    #[arg(long = "tag", value_name = "TAG")]
    pub tags: Vec<String>,
    /// Only items in this folder
    #[arg(long)]
    pub folder: Option<String>,
    /// List the trash instead
    #[arg(long)]
    pub trash: bool,
    /// Only favourites
    #[arg(long)]
    pub favorites: bool,
    /// Only items a sync merge flagged (the same field changed on two devices)
    #[arg(long)]
    pub conflicts: bool,
    /// Only items of this vault (name or id)
    #[arg(long, value_name = "VAULT")]
    pub vault: Option<String>,
    /// Order: name (favourites first), used (most recently used first,
    /// never used last), updated or created (newest first)
    #[arg(long, value_enum, default_value_t = SortBy::Name)]
    pub sort: SortBy,
}

/// `ls --sort`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum SortBy {
    Name,
    Used,
    Updated,
    Created,
}

impl SortBy {
    fn order(self) -> ListOrder {
        match self {
            Self::Name => ListOrder::Name,
            Self::Used => ListOrder::Used,
            Self::Updated => ListOrder::Updated,
            Self::Created => ListOrder::Created,
        }
    }
}

#[derive(Debug, Args)]
pub struct ShowArgs {
    /// Item: id, unique id prefix (4+ characters) or exact name
    pub item: String,
    /// Look ITEM up only in this vault (name or id)
    #[arg(long, value_name = "VAULT")]
    pub vault: Option<String>,
    /// Show secret values (counts as a use of the item)
    #[arg(long)]
    pub reveal: bool,
    /// Show this version from the item's history
    #[arg(long, value_name = "N")]
    pub version: Option<u64>,
}

#[derive(Debug, Args)]
pub struct GetArgs {
    /// Item: id, unique id prefix (4+ characters) or exact name
    pub item: String,
    /// Look ITEM up only in this vault (name or id)
    #[arg(long, value_name = "VAULT")]
    pub vault: Option<String>,
    /// password (default for logins), username, url, notes, totp (the current code), or a field label
    pub field: Option<String>,
}

#[derive(Debug, Args)]
pub struct SearchArgs {
    /// Words to match, plus filters: kind:K tag:T folder:F vault:V is:fav is:trash (quote a value with spaces: vault:"Team A")
    #[arg(required = true, num_args = 1..)]
    pub query: Vec<String>,
    /// Show at most this many results
    #[arg(long, default_value_t = 50)]
    pub limit: usize,
    /// Only items of this vault (name or id; as vault:V in the query)
    #[arg(long, value_name = "VAULT")]
    pub vault: Option<String>,
}

#[derive(Debug, Args)]
pub struct MoveArgs {
    /// Item: id, unique id prefix (4+ characters) or exact name (or --where QUERY for many)
    #[arg(required_unless_present = "query", conflicts_with = "query")]
    pub item: Option<String>,
    /// The vault to move it to (name or id)
    #[arg(long, value_name = "VAULT")]
    pub vault: Option<String>,
    /// The folder to move it to ("" for none)
    #[arg(long, value_name = "FOLDER", conflicts_with = "vault")]
    pub folder: Option<String>,
    /// Look ITEM up only in this vault (name or id)
    #[arg(long, value_name = "VAULT", conflicts_with = "query")]
    pub from: Option<String>,
    #[command(flatten)]
    pub bulk: BulkArgs,
}

#[derive(Debug, Args)]
pub struct RmArgs {
    /// Item: id, unique id prefix (4+ characters) or exact name (or --where QUERY for many)
    #[arg(required_unless_present = "query", conflicts_with = "query")]
    pub item: Option<String>,
    /// Look ITEM up only in this vault (name or id; with --where, use vault:V in the query)
    #[arg(long, value_name = "VAULT", conflicts_with = "query")]
    pub vault: Option<String>,
    #[command(flatten)]
    pub bulk: BulkArgs,
}

#[derive(Debug, Args)]
pub struct CopyItemArgs {
    /// Item: id, unique id prefix (4+ characters) or exact name
    pub item: String,
    /// The vault to copy it to (name or id; default: the item's own, where the copy is named "NAME (copy)")
    #[arg(long, value_name = "VAULT")]
    pub vault: Option<String>,
    /// Look ITEM up only in this vault (name or id)
    #[arg(long, value_name = "VAULT")]
    pub from: Option<String>,
    /// Name of the copy (default: the item's name)
    #[arg(long)]
    pub name: Option<String>,
}

/// Prints damaged items on stderr and turns them into exit code 1.
pub(super) fn report_damaged(damaged: &[DamagedItem]) -> CliResult {
    if damaged.is_empty() {
        return Ok(());
    }
    let list: Vec<String> = damaged
        .iter()
        .map(|d| format!("  item {} is damaged ({})", d.id, d.why))
        .collect();
    Err(CliError::general(format!(
        "{} item(s) could not be decrypted and were skipped; every other item is fine:\n{}\nRestore the vault from a backup to recover them.",
        damaged.len(),
        list.join("\n")
    )))
}

/// Unlocks and finds ITEM, among the items of `vault` only when given.
pub(super) async fn resolve_one(
    g: &Global,
    item: &str,
    vault: Option<&str>,
    prefer_trashed: bool,
) -> CliResult<(Session, uuid::Uuid)> {
    let mut s = unlock(g).await?;
    match find(&mut s, item, vault, prefer_trashed).await {
        Ok(id) => Ok((s, id)),
        Err(e) => {
            s.close().await;
            Err(e)
        }
    }
}

/// Finds ITEM in an unlocked session, among the items of `vault` only
/// when given (`--vault`, `--from`).
pub(in crate::cli) async fn find(
    s: &mut Session,
    item: &str,
    vault: Option<&str>,
    prefer_trashed: bool,
) -> CliResult<uuid::Uuid> {
    let only = vault.map(|v| s.resolve_vault(v)).transpose()?;
    Ok(s.resolve_in(item, prefer_trashed, only).await?.id)
}

/// The vaults' names by id, and whether there is more than one (text
/// output then names each item's vault; JSON always does).
pub(super) struct VaultNames {
    names: std::collections::HashMap<uuid::Uuid, String>,
    pub many: bool,
}

impl VaultNames {
    pub(super) async fn of(s: &Session) -> CliResult<Self> {
        let vaults = s.vault_list().await?;
        Ok(Self {
            many: vaults.len() > 1,
            names: vaults.into_iter().map(|v| (v.id, v.name)).collect(),
        })
    }

    pub(super) fn name(&self, id: uuid::Uuid) -> &str {
        self.names.get(&id).map_or("?", String::as_str)
    }

    /// The name to show in text output: only with more than one vault.
    pub(super) fn shown(&self, id: uuid::Uuid) -> Option<&str> {
        self.many.then(|| self.name(id))
    }

    /// `json` (an entry or item) with its vault's name added as `vault`.
    pub(super) fn json(&self, mut json: serde_json::Value, id: uuid::Uuid) -> serde_json::Value {
        json["vault"] = serde_json::json!(self.name(id));
        json
    }
}
