//! `openk key`: rotating the account's own keys (`rotate --account`,
//! `--vault V`, `--secret-key`) and named keys for applications (`create`,
//! `rotate NAME`, `derive`, `encrypt`, `decrypt`, `sign`, `verify`,
//! `public`, `ls`, `show`). Schemas and the envelope format: docs/cli.md
//! and docs/security.md.

use std::io::{IsTerminal as _, Read as _, Write as _};
use std::path::PathBuf;

use base64::Engine as _;
use clap::{ArgGroup, Args, Subcommand};
use serde_json::{Value as Json, json};
use zeroize::Zeroizing;

use super::output::{self, human_time, print, print_json, rfc3339, table};
use super::sync::{after_write, note_sync};
use super::{CliError, CliResult, Global, input, unlock, vault_dir};
use crate::engine::named_keys::KeyType;
use crate::engine::named_keys::{ENVELOPE_MAGIC, KeyInfo, NamedKey};
use crate::engine::{self, Session};

#[derive(Debug, Subcommand)]
pub enum KeyCommand {
    /// Rotate a key: the account key (--account), a vault's key (--vault V), the Secret Key (--secret-key), or a named key (NAME: a new version; --min-version N retires older ones)
    #[command(group(ArgGroup::new("what").required(true).multiple(true).args(["name", "account", "secret_key", "vault"])))]
    Rotate(RotateArgs),
    /// Create a named key for an application (version 1)
    Create(CreateArgs),
    /// List the named keys (type, versions, created, last used; never the bytes)
    Ls(LsArgs),
    /// Show a named key (never the bytes, unless --export)
    Show(ShowArgs),
    /// Derive bytes from a named key: HKDF-SHA256 (RFC 5869), the context as info; the same for the same version and context
    Derive(DeriveArgs),
    /// Encrypt standard input into a versioned envelope (aes256-gcm, xchacha20 keys)
    Encrypt(EncryptArgs),
    /// Decrypt an envelope from standard input (the version it names; hex, base64 or raw)
    Decrypt(NameArgs),
    /// Sign standard input: Ed25519 (ed25519 keys) or HMAC-SHA256 (hmac-sha256 keys)
    #[command(visible_alias = "mac")]
    Sign(SignArgs),
    /// Check a signature or MAC of standard input against every version in force
    Verify(VerifyArgs),
    /// Print the public key (ed25519, x25519 keys)
    Public(PublicArgs),
}

#[derive(Debug, Args)]
pub struct RotateArgs {
    /// A named key to give a new version
    pub name: Option<String>,
    /// Rotate the account key: every vault key is wrapped anew; the other devices log in again
    #[arg(long, conflicts_with_all = ["name", "secret_key", "vault", "min_version"])]
    pub account: bool,
    /// Rotate the Secret Key (the password stays): a new Emergency Kit, shown once
    #[arg(long, conflicts_with_all = ["name", "account", "vault", "min_version"])]
    pub secret_key: bool,
    /// Without NAME: rotate this vault's key (name or id). With NAME: the vault the named key is in
    #[arg(long, value_name = "VAULT")]
    pub vault: Option<String>,
    /// With NAME: retire every version below N instead of making a new one (they then refuse everything)
    #[arg(long, value_name = "N", requires = "name")]
    pub min_version: Option<u32>,
    /// With --secret-key: also write the new Emergency Kit to this file (mode 0600; must not exist)
    #[arg(long, value_name = "PATH", requires = "secret_key")]
    pub kit: Option<PathBuf>,
    /// Do not ask for confirmation
    #[arg(long, short)]
    pub yes: bool,
}

#[derive(Debug, Args)]
pub struct CreateArgs {
    /// The key's name (an item name: unique in its vault)
    pub name: String,
    /// aes256-gcm, xchacha20, ed25519, x25519 or hmac-sha256
    #[arg(long = "type", value_name = "TYPE", value_parser = parse_type)]
    pub kind: KeyType,
    /// The vault to keep it in (default: the personal vault)
    #[arg(long)]
    pub vault: Option<String>,
}

#[derive(Debug, Args)]
pub struct LsArgs {
    /// Only the keys of this vault
    #[arg(long)]
    pub vault: Option<String>,
}

#[derive(Debug, Args)]
pub struct NameArgs {
    /// The key: name, id or unique id prefix
    pub name: String,
    /// The vault the key is in (when two vaults have a key of that name)
    #[arg(long)]
    pub vault: Option<String>,
}

/// How binary output is written.
#[derive(Debug, Args, Clone, Copy)]
pub struct Encoding {
    /// Base64 instead of hex
    #[arg(long, conflicts_with = "raw")]
    pub base64: bool,
    /// The bytes themselves (never to a terminal)
    #[arg(long)]
    pub raw: bool,
}

#[derive(Debug, Args)]
pub struct ShowArgs {
    #[command(flatten)]
    pub key: NameArgs,
    /// Also print every version's key bytes (asks first; --yes for scripts)
    #[arg(long)]
    pub export: bool,
    /// Base64 instead of hex for --export
    #[arg(long, requires = "export")]
    pub base64: bool,
    /// Do not ask for confirmation
    #[arg(long, short)]
    pub yes: bool,
}

#[derive(Debug, Args)]
pub struct DeriveArgs {
    #[command(flatten)]
    pub key: NameArgs,
    /// The context (HKDF info), e.g. "myapp/v1/session-key"
    #[arg(long, value_name = "CTX")]
    pub context: String,
    /// Bytes to derive (1 to 8160)
    #[arg(long, default_value_t = 32)]
    pub length: usize,
    /// The version to derive from (default: the current one)
    #[arg(long = "key-version", value_name = "N")]
    pub version: Option<u32>,
    #[command(flatten)]
    pub encoding: Encoding,
}

#[derive(Debug, Args)]
pub struct EncryptArgs {
    #[command(flatten)]
    pub key: NameArgs,
    #[command(flatten)]
    pub encoding: Encoding,
}

#[derive(Debug, Args)]
pub struct SignArgs {
    #[command(flatten)]
    pub key: NameArgs,
    #[command(flatten)]
    pub encoding: Encoding,
}

#[derive(Debug, Args)]
#[command(group(ArgGroup::new("sig").required(true).args(["signature", "signature_file"])))]
pub struct VerifyArgs {
    #[command(flatten)]
    pub key: NameArgs,
    /// The signature or MAC, hex or base64
    #[arg(long, value_name = "SIG")]
    pub signature: Option<String>,
    /// A file holding the signature or MAC (raw, hex or base64)
    #[arg(long, value_name = "FILE")]
    pub signature_file: Option<PathBuf>,
    /// Check against this version only
    #[arg(long = "key-version", value_name = "N")]
    pub version: Option<u32>,
}

#[derive(Debug, Args)]
pub struct PublicArgs {
    #[command(flatten)]
    pub key: NameArgs,
    /// The version (default: the current one)
    #[arg(long = "key-version", value_name = "N")]
    pub version: Option<u32>,
    #[command(flatten)]
    pub encoding: Encoding,
}

fn parse_type(s: &str) -> Result<KeyType, String> {
    KeyType::parse(s).ok_or_else(|| {
        format!(
            "unknown key type {s:?}; the types are {}",
            KeyType::ALL.map(KeyType::as_str).join(", ")
        )
    })
}

pub async fn key(g: &Global, c: &KeyCommand) -> CliResult {
    match c {
        KeyCommand::Rotate(a) => rotate(g, a).await,
        KeyCommand::Create(a) => create(g, a).await,
        KeyCommand::Ls(a) => ls(g, a).await,
        KeyCommand::Show(a) => show(g, a).await,
        KeyCommand::Derive(a) => derive(g, a).await,
        KeyCommand::Encrypt(a) => encrypt(g, a).await,
        KeyCommand::Decrypt(a) => decrypt(g, a).await,
        KeyCommand::Sign(a) => sign(g, a).await,
        KeyCommand::Verify(a) => verify(g, a).await,
        KeyCommand::Public(a) => public(g, a).await,
    }
}

/// Asks `question` on a terminal unless `yes`; without a terminal and
/// without `--yes`, a usage error saying so (`what` needs confirmation).
fn confirmed(yes: bool, question: &str, what: &str) -> CliResult {
    if yes {
        return Ok(());
    }
    if !input::interactive() {
        return Err(CliError::usage(format!(
            "{what} needs confirmation; confirm on a terminal or pass --yes"
        )));
    }
    if input::confirm(question) {
        Ok(())
    } else {
        Err(CliError::general("cancelled; nothing was changed"))
    }
}

/// A vault connected to a server must be logged in for an account-wide
/// rotation: the server holds the account's keys, and a change made here
/// alone would be overwritten by the server's at the next login.
fn needs_login(vault: &Session, what: &str) -> CliResult {
    if vault.remote().is_some() && !vault.is_logged_in() {
        return Err(CliError {
            code: super::exit::LOCKED,
            message: format!(
                "{what} changes the account on its server, and this device is logged out; run \
                 `openk login`, then rotate again (nothing was changed)"
            ),
        });
    }
    Ok(())
}

async fn rotate(g: &Global, a: &RotateArgs) -> CliResult {
    if let Some(name) = &a.name {
        return rotate_named(g, a, name).await;
    }
    if a.secret_key {
        return rotate_secret_key(g, a).await;
    }
    let mut vault = unlock(g).await?;
    let result = if a.account {
        rotate_account(g, a, &mut vault).await
    } else if let Some(v) = &a.vault {
        rotate_vault(g, a, &mut vault, v).await
    } else {
        Err(CliError::usage(
            "say what to rotate: NAME, --account, --vault VAULT or --secret-key",
        ))
    };
    vault.close().await;
    result
}

async fn rotate_account(g: &Global, a: &RotateArgs, vault: &mut Session) -> CliResult {
    needs_login(vault, "rotating the account key")?;
    let on_server = vault.is_logged_in();
    confirmed(
        a.yes,
        &if on_server {
            "Rotate the account key? Every vault key is wrapped anew, and your other devices are \
             signed out (they log in again with the same password and Secret Key)."
                .to_owned()
        } else {
            "Rotate the account key of this vault?".to_owned()
        },
        "rotating the account key",
    )?;
    vault.rotate_account_key().await?;
    if g.json {
        print_json(&json!({ "rotated": "account", "on_server": on_server }))
    } else if on_server {
        print(
            "Account key rotated on the server and here. Your other devices were signed out: \
             `openk login` on each (same password and Secret Key) takes the new key.\n",
        )
    } else {
        print("Account key rotated (this vault is not connected to a server).\n")
    }
}

async fn rotate_vault(g: &Global, a: &RotateArgs, vault: &mut Session, v: &str) -> CliResult {
    let id = vault.resolve_vault(v)?;
    let name = crate::text::line(vault.vault_name(id)).into_owned();
    confirmed(
        a.yes,
        &format!(
            "Rotate the key of vault {name:?}? Every item key is wrapped anew; members and your \
             other devices take the new key at their next sync."
        ),
        "rotating a vault key",
    )?;
    vault.rotate_vault_key(id).await?;
    if g.json {
        print_json(&json!({ "rotated": "vault", "vault": name, "vault_id": id }))
    } else {
        print(&format!(
            "Rotated the key of vault {name:?}; other devices and members take it at their next sync.\n"
        ))
    }
}

async fn rotate_secret_key(g: &Global, a: &RotateArgs) -> CliResult {
    if let Some(kit) = &a.kit
        && kit.exists()
    {
        return Err(CliError::usage(format!(
            "{} already exists; choose another --kit path",
            kit.display()
        )));
    }
    let dir = vault_dir(g)?;
    if !engine::has_vault_file(&dir) {
        return Err(engine::Error::NoVault(dir).into());
    }
    // The password proves itself again (an agent's key is not enough) and
    // derives the new keys with the new Secret Key.
    let password = input::master_password(g, "Master password: ")?;
    let fallback = std::env::var("OPENK_SECRET_KEY").ok().map(Zeroizing::new);
    let mut vault = Session::unlock_with(
        &dir,
        password.clone(),
        fallback.as_deref().map(String::as_str),
        engine::UnlockOptions::default(),
    )
    .await?;
    let done = async {
        needs_login(&vault, "rotating the Secret Key")?;
        confirmed(
            a.yes,
            "Rotate the Secret Key? The old one and the old Emergency Kit stop working; your \
             other devices are signed out and log in with the new Secret Key.",
            "rotating the Secret Key",
        )?;
        vault.rotate_secret_key(password).await?;
        Ok::<_, CliError>(())
    }
    .await;
    let kit = vault.emergency_kit();
    let secret_key = vault.secret_key_display();
    let account_id = vault.account_id();
    vault.close().await;
    done?;
    // The agent's password key was derived with the old salt.
    super::session::lock_after_password_change(g).await;
    eprintln!(
        "Secret Key rotated. The old Secret Key and the old Emergency Kit no longer work: destroy \
         them. Keep the new kit below somewhere safe and offline; it is shown once (`openk kit` \
         shows it again on this device)."
    );
    super::vault::print_kit(g, &kit, &secret_key, account_id, a.kit.as_deref())
}

/// The vault `--vault` names, if given.
fn vault_of(s: &Session, vault: Option<&str>) -> CliResult<Option<uuid::Uuid>> {
    Ok(vault.map(|v| s.resolve_vault(v)).transpose()?)
}

async fn rotate_named(g: &Global, a: &RotateArgs, name: &str) -> CliResult {
    let mut s = unlock(g).await?;
    let done = async {
        let vault = vault_of(&s, a.vault.as_deref())?;
        let info = match a.min_version {
            Some(n) => s.retire_named_key_versions(name, vault, n).await?,
            None => s.rotate_named_key(name, vault).await?,
        };
        Ok::<_, CliError>(info)
    }
    .await;
    let note = match &done {
        Ok(_) => after_write(g, &mut s).await,
        Err(_) => None,
    };
    s.close().await;
    let info = done?;
    note_sync(note.as_deref());
    if g.json {
        return print_json(&info_json(&info));
    }
    let name = crate::text::line(&info.name).into_owned();
    match a.min_version {
        Some(n) => print(&format!(
            "Key {name:?}: versions below {n} are retired (they refuse everything); current version {}.\n",
            info.current_version
        )),
        None => print(&format!(
            "Key {name:?} is now at version {}; older versions still decrypt and verify.\n",
            info.current_version
        )),
    }
}

async fn create(g: &Global, a: &CreateArgs) -> CliResult {
    let mut s = unlock(g).await?;
    let done = async {
        let vault = vault_of(&s, a.vault.as_deref())?;
        Ok::<_, CliError>(s.create_named_key(&a.name, a.kind, vault).await?)
    }
    .await;
    let note = match &done {
        Ok(_) => after_write(g, &mut s).await,
        Err(_) => None,
    };
    s.close().await;
    let info = done?;
    note_sync(note.as_deref());
    if g.json {
        print_json(&info_json(&info))
    } else {
        print(&format!(
            "Created key {:?} ({}, version 1, id {}).\n",
            crate::text::line(&info.name),
            info.kind,
            info.key_id
        ))
    }
}

fn info_json(info: &KeyInfo) -> Json {
    let mut v = serde_json::to_value(info).unwrap_or(Json::Null);
    v["created"] = json!(rfc3339(info.created_at));
    v["last_used_at"] = json!(info.last_used.map(rfc3339));
    v
}

async fn ls(g: &Global, a: &LsArgs) -> CliResult {
    let mut s = unlock(g).await?;
    let listed = async {
        let vault = vault_of(&s, a.vault.as_deref())?;
        Ok::<_, CliError>(s.named_keys(vault).await?)
    }
    .await;
    s.close().await;
    let keys = listed?;
    if g.json {
        return print_json(&json!({ "keys": keys.iter().map(info_json).collect::<Vec<_>>() }));
    }
    if keys.is_empty() {
        return print("No named keys; `openk key create NAME --type TYPE` makes one.\n");
    }
    let rows: Vec<Vec<String>> = keys
        .iter()
        .map(|k| {
            vec![
                k.name.clone(),
                k.kind.to_string(),
                format!("v{}", k.current_version),
                k.min_version.to_string(),
                human_time(k.created_at),
                k.last_used.map_or_else(|| "never".to_owned(), human_time),
            ]
        })
        .collect();
    print(&table(
        &["NAME", "TYPE", "VERSION", "MIN", "CREATED", "LAST USED"],
        &rows,
    ))
}

fn show_text(info: &KeyInfo) -> String {
    let mut out = format!(
        "{}\n  type         {}\n  key id       {}\n  version      {} (current)\n  min version  {}\n  created      {}\n  last used    {}\n  versions\n",
        info.name,
        info.kind,
        info.key_id,
        info.current_version,
        info.min_version,
        human_time(info.created_at),
        info.last_used.map_or_else(
            || "never".to_owned(),
            |t| format!("{} ({} uses)", human_time(t), info.uses)
        ),
    );
    for v in &info.versions {
        out.push_str(&format!(
            "    v{:<4} created {}{}\n",
            v.version,
            human_time(v.created_at),
            if v.retired { "  retired" } else { "" }
        ));
    }
    out
}

async fn show(g: &Global, a: &ShowArgs) -> CliResult {
    let mut s = unlock(g).await?;
    let found = async {
        let vault = vault_of(&s, a.key.vault.as_deref())?;
        let info = s.named_key_info(&a.key.name, vault).await?;
        if !a.export {
            return Ok::<_, CliError>((info, None));
        }
        confirmed(
            a.yes,
            &format!(
                "Print the key bytes of {:?} (every version) on standard output?",
                crate::text::line(&info.name)
            ),
            "--export",
        )?;
        let key = s.use_named_key(&a.key.name, vault).await?;
        Ok((info, Some(key.export())))
    }
    .await;
    s.close().await;
    let (info, exported) = found?;
    let enc = |b: &[u8]| -> String {
        if a.base64 {
            base64::engine::general_purpose::STANDARD.encode(b)
        } else {
            data_encoding::HEXLOWER.encode(b)
        }
    };
    if g.json {
        let mut v = info_json(&info);
        if let Some(ex) = &exported {
            v["encoding"] = json!(if a.base64 { "base64" } else { "hex" });
            v["export"] = ex
                .iter()
                .map(|(n, b)| json!({ "version": n, "key": enc(b) }))
                .collect();
        }
        return output::print_exact(&Zeroizing::new(format!(
            "{}\n",
            serde_json::to_string_pretty(&v).unwrap_or_default()
        )));
    }
    let mut text = Zeroizing::new(show_text(&info));
    if let Some(ex) = &exported {
        text.push_str("  key bytes\n");
        for (n, b) in ex {
            text.push_str(&format!("    v{n:<4} {}\n", enc(b)));
        }
    }
    print(&text)
}

/// Standard input, whole (wiped on drop).
fn read_stdin() -> CliResult<Zeroizing<Vec<u8>>> {
    let mut buf = Zeroizing::new(Vec::new());
    std::io::stdin()
        .lock()
        .read_to_end(&mut buf)
        .map_err(|e| CliError::general(format!("cannot read standard input: {e}")))?;
    Ok(buf)
}

/// Bytes given as hex or base64 text (white space around is ignored), or
/// raw when `raw_ok` and they are neither.
fn decode_flexible(bytes: &[u8], raw_ok: bool) -> Option<Zeroizing<Vec<u8>>> {
    if let Ok(text) = std::str::from_utf8(bytes) {
        let t = text.trim();
        if !t.is_empty() {
            if let Ok(b) = data_encoding::HEXLOWER_PERMISSIVE.decode(t.as_bytes()) {
                return Some(Zeroizing::new(b));
            }
            if let Ok(b) = base64::engine::general_purpose::STANDARD.decode(t) {
                return Some(Zeroizing::new(b));
            }
            if let Ok(b) = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(t) {
                return Some(Zeroizing::new(b));
            }
        }
    }
    raw_ok.then(|| Zeroizing::new(bytes.to_vec()))
}

/// Writes binary output as asked: hex (default), base64, or raw (never to
/// a terminal). `--json` puts it in `field` of `extra`.
fn write_binary(
    g: &Global,
    enc: Encoding,
    bytes: &[u8],
    field: &str,
    mut extra: Json,
) -> CliResult {
    if g.json {
        if enc.raw {
            return Err(CliError::usage("--raw and --json do not go together"));
        }
        extra["encoding"] = json!(if enc.base64 { "base64" } else { "hex" });
        extra[field] = json!(encode(enc, bytes).as_str());
        return output::print_exact(&Zeroizing::new(format!(
            "{}\n",
            serde_json::to_string_pretty(&extra).unwrap_or_default()
        )));
    }
    if enc.raw {
        return write_raw(bytes);
    }
    let mut line = encode(enc, bytes);
    line.push('\n');
    output::print_exact(&line)
}

fn encode(enc: Encoding, bytes: &[u8]) -> Zeroizing<String> {
    Zeroizing::new(if enc.base64 {
        base64::engine::general_purpose::STANDARD.encode(bytes)
    } else {
        data_encoding::HEXLOWER.encode(bytes)
    })
}

fn write_raw(bytes: &[u8]) -> CliResult {
    if std::io::stdout().is_terminal() {
        return Err(CliError::usage(
            "refusing to write raw bytes to a terminal; redirect standard output, or drop --raw \
             for hex",
        ));
    }
    let mut out = std::io::stdout().lock();
    match out.write_all(bytes).and_then(|()| out.flush()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
            Err(CliError::general(format!("cannot write output: {e}")))
        }
        _ => Ok(()),
    }
}

/// Opens the vault, finds the key and records a use of it, then closes the
/// vault: the key works on its own. Standard input is read only after this,
/// so that `--password-stdin` finds the password on its first line.
async fn load_key(g: &Global, k: &NameArgs) -> CliResult<NamedKey> {
    let mut s = unlock(g).await?;
    let done = async {
        let vault = vault_of(&s, k.vault.as_deref())?;
        Ok::<_, CliError>(s.use_named_key(&k.name, vault).await?)
    }
    .await;
    s.close().await;
    done
}

/// [`load_key`], then `op` with it.
async fn with_key<T>(
    g: &Global,
    k: &NameArgs,
    op: impl FnOnce(&NamedKey) -> CliResult<T>,
) -> CliResult<(KeyInfo, T)> {
    let key = load_key(g, k).await?;
    let out = op(&key)?;
    Ok((key.info().clone(), out))
}

fn base(info: &KeyInfo, version: u32) -> Json {
    json!({ "key": info.name, "key_id": info.key_id, "version": version })
}

async fn derive(g: &Global, a: &DeriveArgs) -> CliResult {
    let (info, (v, out)) = with_key(g, &a.key, |k| {
        Ok(k.derive(a.context.as_bytes(), a.length, a.version)?)
    })
    .await?;
    let mut extra = base(&info, v);
    extra["context"] = json!(a.context);
    write_binary(g, a.encoding, &out, "derived", extra)
}

async fn encrypt(g: &Global, a: &EncryptArgs) -> CliResult {
    let (info, envelope) = with_key(g, &a.key, |k| Ok(k.encrypt(&read_stdin()?)?)).await?;
    let v = info.current_version;
    write_binary(g, a.encoding, &envelope, "envelope", base(&info, v))
}

async fn decrypt(g: &Global, a: &NameArgs) -> CliResult {
    let key = load_key(g, a).await?;
    let input = read_stdin()?;
    let envelope = if input.starts_with(ENVELOPE_MAGIC) {
        input
    } else {
        decode_flexible(&input, false).ok_or_else(|| {
            CliError::usage(
                "standard input is not an envelope: give what `openk key encrypt` wrote (hex, \
                 base64 or raw)",
            )
        })?
    };
    let version = crate::engine::named_keys::envelope_version(&envelope).unwrap_or(0);
    let plain = key.decrypt(&envelope)?;
    let info = key.info();
    if g.json {
        let mut v = base(info, version);
        v["data_b64"] = json!(base64::engine::general_purpose::STANDARD.encode(&plain));
        return output::print_exact(&Zeroizing::new(format!(
            "{}\n",
            serde_json::to_string_pretty(&v).unwrap_or_default()
        )));
    }
    if std::io::stdout().is_terminal() {
        // A terminal never gets raw control characters.
        return match std::str::from_utf8(&plain) {
            Ok(text) => print(text),
            Err(_) => Err(CliError::usage(
                "the plaintext is binary; redirect standard output to a file or a pipe",
            )),
        };
    }
    write_raw(&plain)
}

async fn sign(g: &Global, a: &SignArgs) -> CliResult {
    let (info, (v, sig)) = with_key(g, &a.key, |k| Ok(k.sign(&read_stdin()?)?)).await?;
    let field = if info.kind == KeyType::HmacSha256 {
        "mac"
    } else {
        "signature"
    };
    write_binary(g, a.encoding, &sig, field, base(&info, v))
}

async fn verify(g: &Global, a: &VerifyArgs) -> CliResult {
    let sig = match (&a.signature, &a.signature_file) {
        (Some(s), _) => decode_flexible(s.as_bytes(), false)
            .ok_or_else(|| CliError::usage("--signature must be hex or base64"))?,
        (None, Some(f)) => {
            let bytes = std::fs::read(f)
                .map_err(|e| CliError::usage(format!("cannot read {}: {e}", f.display())))?;
            // Hex or base64 text, else the raw bytes.
            decode_flexible(&bytes, true).unwrap_or_default()
        }
        (None, None) => {
            return Err(CliError::usage(
                "pass --signature SIG or --signature-file FILE",
            ));
        }
    };
    let (info, v) = with_key(g, &a.key, |k| {
        Ok(k.verify(&read_stdin()?, &sig, a.version)?)
    })
    .await?;
    if g.json {
        let mut out = base(&info, v);
        out["valid"] = json!(true);
        print_json(&out)
    } else {
        print(&format!(
            "valid (key {:?}, version {v})\n",
            crate::text::line(&info.name)
        ))
    }
}

async fn public(g: &Global, a: &PublicArgs) -> CliResult {
    let (info, (v, pk)) = with_key(g, &a.key, |k| Ok(k.public(a.version)?)).await?;
    write_binary(g, a.encoding, &pk, "public_key", base(&info, v))
}
