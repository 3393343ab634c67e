//! Item commands: add, ls, show, get, edit, rm, restore, purge, history,
//! search, totp.

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
use crate::engine::{DamagedItem, ExposeSecret, ItemDraft, ItemPatch, Session, sshkey};

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
    #[command(flatten)]
    pub fields: FieldArgs,
}

#[derive(Debug, Args)]
pub struct EditArgs {
    /// Item: id, unique id prefix (4+ characters) or exact name
    pub item: String,
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
}

#[derive(Debug, Args)]
pub struct PurgeArgs {
    /// Item: id, unique id prefix (4+ characters) or exact name
    pub item: String,
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
}

#[derive(Debug, Args)]
pub struct ShowArgs {
    /// Item: id, unique id prefix (4+ characters) or exact name
    pub item: String,
    /// Show secret values
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
    /// password (default for logins), username, url, notes, totp (the current code), or a field label
    pub field: Option<String>,
}

#[derive(Debug, Args)]
pub struct SearchArgs {
    /// Words to match, plus filters: kind:K tag:T folder:F is:fav is:trash
    #[arg(required = true, num_args = 1..)]
    pub query: Vec<String>,
    /// Show at most this many results
    #[arg(long, default_value_t = 50)]
    pub limit: usize,
}

/// A flag's value: literal text, or where to read a secret from.
#[derive(Clone, Copy)]
enum FlagValue<'a> {
    Text(&'a String),
    Secret(&'a SecretSource),
}

struct FlagSpec<'a> {
    flag: &'static str,
    value: Option<FlagValue<'a>>,
    label: &'static str,
    kind: FieldKind,
    kinds: &'static [ItemKind],
}

impl FieldArgs {
    fn standard(&self) -> Vec<FlagSpec<'_>> {
        use ItemKind::{ApiKey, Card, Identity, Login};
        let spec = |flag, value, label, kind, kinds| FlagSpec {
            flag,
            value,
            label,
            kind,
            kinds,
        };
        vec![
            spec(
                "--username",
                self.username.as_ref().map(FlagValue::Text),
                label::USERNAME,
                FieldKind::Text,
                &[Login, ApiKey],
            ),
            spec(
                "--password",
                self.password.as_ref().map(FlagValue::Secret),
                label::PASSWORD,
                FieldKind::Secret,
                &[Login],
            ),
            spec(
                "--totp",
                self.totp.as_ref().map(FlagValue::Secret),
                label::TOTP,
                FieldKind::Totp,
                &[Login],
            ),
            spec(
                "--cardholder",
                self.cardholder.as_ref().map(FlagValue::Text),
                label::CARDHOLDER,
                FieldKind::Text,
                &[Card],
            ),
            spec(
                "--number",
                self.number.as_ref().map(FlagValue::Secret),
                label::NUMBER,
                FieldKind::Secret,
                &[Card],
            ),
            spec(
                "--expiry",
                self.expiry.as_ref().map(FlagValue::Text),
                label::EXPIRY,
                FieldKind::Text,
                &[Card],
            ),
            spec(
                "--cvv",
                self.cvv.as_ref().map(FlagValue::Secret),
                label::CVV,
                FieldKind::Secret,
                &[Card],
            ),
            spec(
                "--pin",
                self.pin.as_ref().map(FlagValue::Secret),
                label::PIN,
                FieldKind::Secret,
                &[Card],
            ),
            spec(
                "--full-name",
                self.full_name.as_ref().map(FlagValue::Text),
                label::FULL_NAME,
                FieldKind::Text,
                &[Identity],
            ),
            spec(
                "--email",
                self.email.as_ref().map(FlagValue::Text),
                label::EMAIL,
                FieldKind::Email,
                &[Identity],
            ),
            spec(
                "--phone",
                self.phone.as_ref().map(FlagValue::Text),
                label::PHONE,
                FieldKind::Text,
                &[Identity],
            ),
            spec(
                "--address",
                self.address.as_ref().map(FlagValue::Text),
                label::ADDRESS,
                FieldKind::Multiline,
                &[Identity],
            ),
            spec(
                "--birthday",
                self.birthday.as_ref().map(FlagValue::Text),
                label::BIRTHDAY,
                FieldKind::Text,
                &[Identity],
            ),
            spec(
                "--company",
                self.company.as_ref().map(FlagValue::Text),
                label::COMPANY,
                FieldKind::Text,
                &[Identity],
            ),
            spec(
                "--key",
                self.key.as_ref().map(FlagValue::Secret),
                label::KEY,
                FieldKind::Secret,
                &[ApiKey],
            ),
            spec(
                "--passphrase",
                self.passphrase.as_ref().map(FlagValue::Secret),
                label::PASSPHRASE,
                FieldKind::Secret,
                &[ItemKind::SshKey],
            ),
        ]
    }

    /// Turns the flags into fields for an item of `kind`, refusing flags that
    /// do not belong to that kind.
    fn to_fields(&self, kind: ItemKind) -> CliResult<Vec<Field>> {
        let mut fields = Vec::new();
        for s in self.standard() {
            let Some(value) = s.value else { continue };
            if !s.kinds.contains(&kind) {
                return Err(wrong_kind(s.flag, s.kinds, kind));
            }
            let multiline = s.kind == FieldKind::Multiline;
            let text = match value {
                FlagValue::Text(v) => value_or_stdin(s.flag, v, multiline)?,
                // A value typed at a prompt is new, so it is asked twice: a
                // typo would be saved.
                FlagValue::Secret(src) => src.read(s.flag, s.label, Ask::Twice, multiline)?,
            };
            fields.push(Field::new(s.label, text.as_str(), s.kind));
        }
        if !self.urls.is_empty() && !matches!(kind, ItemKind::Login | ItemKind::ApiKey) {
            return Err(wrong_kind(
                "--url",
                &[ItemKind::Login, ItemKind::ApiKey],
                kind,
            ));
        }
        if self.generate {
            match kind {
                ItemKind::Login => {
                    if self.password.is_some() {
                        return Err(CliError::usage(
                            "give either --password or --generate, not both",
                        ));
                    }
                    fields.push(Field::new(
                        label::PASSWORD,
                        generate_password(self)?.as_str(),
                        FieldKind::Secret,
                    ));
                }
                ItemKind::SshKey => fields.extend(sshkey::generate(self.comment.as_deref())?),
                other => {
                    return Err(wrong_kind(
                        "--generate",
                        &[ItemKind::Login, ItemKind::SshKey],
                        other,
                    ));
                }
            }
        }
        if let Some(path) = &self.private_key_file {
            if kind != ItemKind::SshKey {
                return Err(wrong_kind("--private-key-file", &[ItemKind::SshKey], kind));
            }
            fields.extend(sshkey::import(path)?);
        }
        if self.comment.is_some() && !(kind == ItemKind::SshKey && self.generate) {
            return Err(CliError::usage(
                "--comment is for `--generate` of ssh-key items",
            ));
        }
        if let Some(notes) = &self.notes {
            let text = value_or_stdin("--notes", notes, true)?;
            fields.push(Field::new(
                label::NOTES,
                text.as_str(),
                FieldKind::Multiline,
            ));
        }
        for spec in &self.fields {
            let Some((label, value)) = spec.split_once('=') else {
                return Err(CliError::usage(
                    "--field takes LABEL=VALUE, e.g. --field 'Account=12345'",
                ));
            };
            let text = value_or_stdin("--field", value, false)?;
            fields.push(Field::new(label, text.as_str(), FieldKind::Text));
        }
        for f in &self.secret_fields {
            let flag = format!("--secret-field {}=", f.label);
            let text = f.source.read(&flag, &f.label, Ask::Twice, false)?;
            fields.push(Field::new(&f.label, text.as_str(), FieldKind::Secret));
        }
        fields.extend(
            self.urls
                .iter()
                .map(|u| Field::new(label::URL, u.as_str(), FieldKind::Url)),
        );
        // Standard fields in a familiar order, custom fields next, notes last.
        fields.sort_by_key(|f| crate::engine::model::field_rank(&f.label));
        Ok(fields)
    }
}

fn wrong_kind(flag: &str, kinds: &[ItemKind], kind: ItemKind) -> CliError {
    let names: Vec<&str> = kinds.iter().map(|k| k.as_str()).collect();
    CliError::usage(format!(
        "{flag} is for {} items, not {kind}",
        names.join(" and ")
    ))
}

fn generate_password(args: &FieldArgs) -> CliResult<zeroize::Zeroizing<String>> {
    let generated = match args.words {
        Some(words) => generator::passphrase(&generator::PassphraseSpec {
            words,
            ..Default::default()
        }),
        None => generator::password(&PasswordSpec {
            length: args.length.unwrap_or(PasswordSpec::default().length),
            ..Default::default()
        }),
    }
    .map_err(|e| CliError::usage(e.to_string()))?;
    Ok(zeroize::Zeroizing::new(
        generated.value.expose_secret().to_owned(),
    ))
}

/// Prints damaged items on stderr and turns them into exit code 1.
fn report_damaged(damaged: &[DamagedItem]) -> CliResult {
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

pub async fn add(g: &Global, a: &AddArgs) -> CliResult {
    let f = &a.fields;
    let name = f
        .name
        .clone()
        .ok_or_else(|| CliError::usage("an item needs a name: --name NAME"))?;
    // Unlock first: with --password-stdin the password is the first line of
    // standard input, and a field given as `-` takes the rest.
    let mut vault = unlock(g).await?;
    let fields = match f.to_fields(a.kind) {
        Ok(fields) => fields,
        Err(e) => {
            vault.close().await;
            return Err(e);
        }
    };
    let item = vault
        .add(ItemDraft {
            kind: a.kind,
            name,
            fields,
            tags: f.tags.clone(),
            folder: f.folder.clone(),
            favorite: f.favorite,
        })
        .await?;
    let note = after_write(g, &mut vault).await;
    vault.close().await;
    note_sync(note.as_deref());
    if g.json {
        print_json(&item_json(&item, false))
    } else {
        print(&format!(
            "Added {} {:?} ({})\n",
            item.overview.kind, item.overview.name, item.r.id
        ))
    }
}

pub async fn edit(g: &Global, a: &EditArgs) -> CliResult {
    let mut vault = unlock(g).await?;
    let r = vault.resolve(&a.item, false).await?;
    let current = vault.item(r.id).await?;
    let f = &a.fields;
    let patch = ItemPatch {
        name: f.name.clone(),
        set_fields: f
            .to_fields(current.overview.kind)?
            .into_iter()
            .filter(|x| x.kind != FieldKind::Url)
            .collect(),
        urls: (!f.urls.is_empty()).then(|| f.urls.clone()),
        remove_fields: a.remove_field.clone(),
        tags: (!f.tags.is_empty()).then(|| f.tags.clone()),
        folder: f.folder.clone().map(|s| Some(s).filter(|s| !s.is_empty())),
        favorite: if f.favorite {
            Some(true)
        } else if a.unfavorite {
            Some(false)
        } else {
            None
        },
        resolve: a.resolve,
    };
    let item = vault.update(r.id, &patch).await?;
    let note = after_write(g, &mut vault).await;
    vault.close().await;
    note_sync(note.as_deref());
    let changed = item.r.version != current.r.version;
    if g.json {
        let mut v = item_json(&item, false);
        v["changed"] = json!(changed);
        print_json(&v)
    } else if changed {
        print(&format!(
            "Saved {:?} (version {})\n",
            item.overview.name, item.r.version
        ))
    } else {
        print(&format!("Nothing changed in {:?}\n", item.overview.name))
    }
}

fn entry_rows(entries: &[&Entry], all: &[uuid::Uuid]) -> Vec<Vec<String>> {
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

const LIST_HEADER: [&str; 6] = ["ID", "NAME", "KIND", "USERNAME", "FOLDER", "TAGS"];

pub async fn ls(g: &Global, a: &LsArgs) -> CliResult {
    let mut vault = unlock(g).await?;
    let query = Query {
        kind: a.kind,
        tags: a.tags.clone(),
        folder: a.folder.clone(),
        favorite: a.favorites,
        trash: a.trash,
        ..Query::default()
    };
    let all: Vec<uuid::Uuid> = vault.entries().await?.0.iter().map(|e| e.r.id).collect();
    let (mut entries, damaged) = vault.list(&query).await?;
    if a.conflicts {
        entries.retain(|e| e.overview.conflict.is_some());
    }
    let out = if g.json {
        print_json(&json!({
            "items": entries.iter().map(|e| entry_json(e)).collect::<Vec<_>>(),
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
        print(&table(&LIST_HEADER, &entry_rows(&entries, &all)))
    };
    let damaged = damaged.to_vec();
    vault.close().await;
    out?;
    report_damaged(&damaged)
}

pub async fn search(g: &Global, a: &SearchArgs) -> CliResult {
    let query = Query::parse(&a.query.join(" ")).map_err(CliError::usage)?;
    let mut vault = unlock(g).await?;
    let found = vault.search(&query, a.limit).await?;
    let (entries, damaged) = vault.entries().await?;
    let hits = &found.hits;
    let shown: Vec<&Entry> = hits.iter().map(|h| &entries[h.index]).collect();
    let out = if g.json {
        let items: Vec<_> = hits
            .iter()
            .map(|h| {
                let mut v = entry_json(&entries[h.index]);
                v["score"] = json!(h.score);
                v
            })
            .collect();
        print_json(&json!({ "items": items, "total": found.total, "damaged": damaged }))
    } else if shown.is_empty() {
        print("No matches.\n")
    } else {
        let all: Vec<uuid::Uuid> = entries.iter().map(|e| e.r.id).collect();
        let mut text = table(&LIST_HEADER, &entry_rows(&shown, &all));
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

fn show_text(item: &Item, reveal: bool) -> String {
    let o = &item.overview;
    let mut rows: Vec<Vec<String>> = Vec::new();
    for f in &item.details.fields {
        let value = if f.is_concealed() && !reveal {
            MASK.to_owned()
        } else if f.kind == FieldKind::Totp {
            match f.totp_now() {
                Ok(t) => format!(
                    "{} ({} s left)  {}",
                    t.code,
                    t.seconds_left,
                    f.value.expose()
                ),
                Err(_) => f.value.expose().to_owned(),
            }
        } else {
            f.value.expose().to_owned()
        };
        let mut lines = value.lines();
        rows.push(vec![f.label.clone(), lines.next().unwrap_or("").to_owned()]);
        for more in lines {
            rows.push(vec![String::new(), more.to_owned()]);
        }
    }
    if !o.tags.is_empty() {
        rows.push(vec!["tags".into(), o.tags.join(", ")]);
    }
    if let Some(folder) = &o.folder {
        rows.push(vec!["folder".into(), folder.clone()]);
    }
    if o.favorite {
        rows.push(vec!["favorite".into(), "yes".into()]);
    }
    rows.push(vec!["created".into(), human_time(o.created_at)]);
    rows.push(vec!["updated".into(), human_time(o.updated_at)]);
    if let Some(t) = o.trashed_at {
        rows.push(vec!["trashed".into(), human_time(t)]);
    }
    if let Some(c) = &o.conflict {
        rows.push(vec!["CONFLICT".into(), c.note.clone()]);
        rows.push(vec![
            String::new(),
            format!(
                "`openk show {} --version {}` shows the other side; `openk edit {} --resolve` clears this",
                item.r.id, c.other_version, item.r.id
            ),
        ]);
    }
    let mut text = format!(
        "{} ({})  id {}  version {}{}\n",
        crate::text::line(&o.name),
        o.kind,
        item.r.id,
        item.r.version,
        match (o.trashed_at.is_some(), o.conflict.is_some()) {
            (true, true) => "  [in trash] [conflict]",
            (true, false) => "  [in trash]",
            (false, true) => "  [conflict]",
            (false, false) => "",
        }
    );
    let body = table(&["", ""], &rows);
    for line in body.lines().skip(1) {
        text.push_str("  ");
        text.push_str(line);
        text.push('\n');
    }
    if !reveal && item.details.fields.iter().any(Field::is_concealed) {
        text.push_str(
            "  (secret values hidden; --reveal shows them, `openk get ITEM FIELD` prints one)\n",
        );
    }
    text
}

pub async fn show(g: &Global, a: &ShowArgs) -> CliResult {
    let mut vault = unlock(g).await?;
    let r = vault.resolve(&a.item, false).await?;
    let item = match a.version {
        Some(v) => vault.item_version(r.id, v).await?,
        None => vault.item(r.id).await?,
    };
    vault.close().await;
    if g.json {
        print_json(&item_json(&item, a.reveal))
    } else {
        print(&show_text(&item, a.reveal))
    }
}

/// The value `openk get ITEM FIELD` prints (and `openk copy` copies).
pub(super) fn field_value(item: &Item, field: &str) -> CliResult<String> {
    let wanted = field.trim().to_lowercase();
    let f = item.field(&wanted).ok_or_else(|| {
        let labels: Vec<&str> = item
            .details
            .fields
            .iter()
            .map(|f| f.label.as_str())
            .collect();
        CliError {
            code: exit::NOT_FOUND,
            message: format!(
                "{:?} has no field {wanted:?}; its fields are: {}",
                item.overview.name,
                if labels.is_empty() {
                    "(none)".to_owned()
                } else {
                    labels.join(", ")
                }
            ),
        }
    })?;
    if f.kind == FieldKind::Totp {
        return f.totp_now().map(|t| t.code).map_err(CliError::general);
    }
    Ok(f.value.expose().to_owned())
}

/// The field `get` and `copy` use without FIELD: the kind's main secret,
/// else the first concealed field, else the first field (custom items have
/// no fixed layout).
pub(super) fn default_field(item: &Item) -> String {
    let primary = item.overview.kind.primary_field();
    if item.field(primary).is_some() {
        primary.to_owned()
    } else {
        item.details
            .fields
            .iter()
            .find(|f| f.is_concealed())
            .or_else(|| item.details.fields.first())
            .map_or_else(|| primary.to_owned(), |f| f.label.clone())
    }
}

pub async fn get(g: &Global, a: &GetArgs) -> CliResult {
    let mut vault = unlock(g).await?;
    let r = vault.resolve(&a.item, false).await?;
    let item = vault.item(r.id).await?;
    vault.close().await;
    let field = a.field.clone().unwrap_or_else(|| default_field(&item));
    let value = zeroize::Zeroizing::new(field_value(&item, &field)?);
    if g.json {
        print_json(&json!({ "id": item.r.id, "field": field, "value": value.as_str() }))
    } else if std::io::IsTerminal::is_terminal(&std::io::stdout()) {
        // A terminal never gets raw control characters (docs/cli.md).
        print(&format!("{}\n", value.as_str()))
    } else {
        // A pipe or a file gets the exact value, for scripts.
        print_exact(&zeroize::Zeroizing::new(format!("{}\n", value.as_str())))
    }
}

async fn resolve_one(
    g: &Global,
    item: &str,
    prefer_trashed: bool,
) -> CliResult<(Session, uuid::Uuid)> {
    let mut vault = unlock(g).await?;
    let r = vault.resolve(item, prefer_trashed).await?;
    Ok((vault, r.id))
}

pub async fn rm(g: &Global, a: &ItemArg) -> CliResult {
    let (mut vault, id) = resolve_one(g, &a.item, false).await?;
    let item = vault.trash(id).await?;
    let note = after_write(g, &mut vault).await;
    vault.close().await;
    note_sync(note.as_deref());
    if g.json {
        print_json(&item_json(&item, false))
    } else {
        print(&format!(
            "Moved {:?} to the trash; `openk restore {}` brings it back.\n",
            item.overview.name, item.r.id
        ))
    }
}

pub async fn restore(g: &Global, a: &ItemArg) -> CliResult {
    let (mut vault, id) = resolve_one(g, &a.item, true).await?;
    let item = vault.restore(id).await?;
    let note = after_write(g, &mut vault).await;
    vault.close().await;
    note_sync(note.as_deref());
    if g.json {
        print_json(&item_json(&item, false))
    } else {
        print(&format!("Restored {:?}.\n", item.overview.name))
    }
}

pub async fn purge(g: &Global, a: &PurgeArgs) -> CliResult {
    let (mut vault, id) = resolve_one(g, &a.item, true).await?;
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
    let note = after_write(g, &mut vault).await;
    vault.close().await;
    note_sync(note.as_deref());
    if g.json {
        print_json(&json!({ "id": id, "purged": true }))
    } else {
        print(&format!("Purged {name:?}.\n"))
    }
}

pub async fn history(g: &Global, a: &ItemArg) -> CliResult {
    let (vault, id) = resolve_one(g, &a.item, false).await?;
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

pub async fn totp(g: &Global, a: &ItemArg) -> CliResult {
    let (vault, id) = resolve_one(g, &a.item, false).await?;
    let item = vault.item(id).await?;
    vault.close().await;
    let field = item
        .details
        .fields
        .iter()
        .find(|f| f.kind == FieldKind::Totp)
        .ok_or_else(|| CliError {
            code: exit::NOT_FOUND,
            message: format!(
                "{:?} has no TOTP secret; add one with `openk edit ITEM --totp` (it asks for the secret)",
                item.overview.name
            ),
        })?;
    let t = field.totp_now().map_err(CliError::general)?;
    if g.json {
        print_json(
            &json!({ "id": id, "code": t.code, "seconds_left": t.seconds_left, "period": t.period, "digits": t.digits }),
        )
    } else {
        print(&format!("{}  ({} s left)\n", t.code, t.seconds_left))
    }
}
