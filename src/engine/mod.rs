//! The local engine: the only API the CLI, the TUI and the agent call.
//!
//! It owns the key hierarchy above the primitives (DESIGN §2): it unlocks a
//! vault directory with the master password and the Secret Key, keeps the
//! account and vault keys for the session, decrypts overviews for listing and
//! search, decrypts details only for the item asked for, and seals every
//! change before the store sees it. Nothing here knows that a terminal exists.

pub mod error;
pub mod files;
pub mod fresh;
pub mod generator;
pub mod merge;
pub mod model;
pub mod remote;
pub mod search;
pub mod sshkey;
pub mod state;
pub mod strength;
pub mod sync;

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use rayon::prelude::*;
use serde::Serialize;
use serde::de::DeserializeOwned;
use uuid::Uuid;
use zeroize::Zeroizing;

use crate::crypto::totp::Totp;
use crate::crypto::{self, Aad, AccountKeyPair, Key, PublicKeys, SecretKey};
pub use crate::crypto::{ExposeSecret, KdfParams, SecretString};
use crate::store::{self, Header, ItemRecord, Store, VaultRecord};
pub use error::{Error, Result};
use model::{
    Details, Entry, Field, FieldKind, Item, ItemKind, ItemRef, Overview, label, now_millis,
};
use search::{Query, SearchIndex};

/// Plaintext is padded with JSON whitespace to a multiple of this many bytes
/// before sealing, so ciphertext sizes say little about the contents.
const PAD_TO: usize = 64;
/// Longest item name, field label and field value accepted.
const MAX_NAME: usize = 1024;
const MAX_LABEL: usize = 256;
const MAX_VALUE: usize = 256 * 1024;

/// An item that could not be decrypted: its id and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DamagedItem {
    pub id: String,
    pub why: String,
}

/// A new item, before it is sealed.
#[derive(Debug, Clone)]
pub struct ItemDraft {
    pub kind: ItemKind,
    pub name: String,
    pub fields: Vec<Field>,
    pub tags: Vec<String>,
    pub folder: Option<String>,
    pub favorite: bool,
}

/// Changes to an existing item. List-valued parts (`urls`, `tags`) replace
/// the whole list when given.
#[derive(Debug, Clone, Default)]
pub struct ItemPatch {
    pub name: Option<String>,
    /// Set these fields: replaces the first field with the same label, or appends.
    pub set_fields: Vec<Field>,
    pub urls: Option<Vec<String>>,
    /// Removes every field with one of these labels.
    pub remove_fields: Vec<String>,
    pub tags: Option<Vec<String>>,
    pub folder: Option<Option<String>>,
    pub favorite: Option<bool>,
    /// Clears a sync merge's conflict flag (saves a version even when
    /// nothing else changes).
    pub resolve: bool,
}

/// One version in an item's history and what changed from the one before.
/// It names fields, never their values.
#[derive(Debug, Clone, Serialize)]
pub struct VersionSummary {
    pub version: u64,
    pub updated_at: i64,
    pub current: bool,
    pub changes: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub damaged: Option<String>,
}

/// One vault of the account, opened: its id, name and key. A [`Session`]
/// holds every vault the account has on this device.
struct Vault {
    id: Uuid,
    name: String,
    key: Key,
}

impl Vault {
    /// Unwraps a stored vault's key with the account key and reads its name
    /// (a damaged name is shown as such; a key that does not open is damage).
    fn open(account_key: &Key, account_id: Uuid, v: &store::VaultRecord) -> Result<Self> {
        let key = crypto::unwrap_key(
            account_key,
            &Aad::vault_key(account_id, v.id),
            &v.wrapped_key,
        )
        .map_err(|_| Error::Damaged(format!("the key of vault {} cannot be decrypted", v.id)))?;
        let name = open_json::<serde_json::Value>(&key, &Aad::vault_meta(v.id), &v.meta)
            .ok()
            .and_then(|m| m.get("name").and_then(|n| n.as_str()).map(str::to_owned))
            .unwrap_or_else(|| "(damaged name)".to_owned());
        Ok(Self {
            id: v.id,
            name,
            key,
        })
    }
}

struct Loaded {
    entries: Vec<Entry>,
    by_id: HashMap<Uuid, usize>,
    damaged: Vec<DamagedItem>,
    /// Built by the first search; `None` until then (or after a purge), so
    /// that edits never patch an index that does not line up with `entries`.
    search: Option<SearchIndex>,
}

/// The unlocked local state of one account on this device: its keys, its
/// server record and the vaults it holds (one today: the personal
/// vault). Dropping it wipes every key it holds.
pub struct Session {
    dir: PathBuf,
    store: Store,
    header: Header,
    secret_key: SecretKey,
    account_key: Key,
    /// Authenticates the local state ([`state`]), derived from the account key.
    state_key: Key,
    /// Proves the password and Secret Key to a server; derived at unlock.
    auth_key: Key,
    /// Wraps the account key (the header's form and the server's); derived at unlock.
    unlock_key: Key,
    /// The server this vault is registered with, if any.
    remote: Option<remote::RemoteRecord>,
    keypair: AccountKeyPair,
    vaults: Vec<Vault>,
    loaded: Option<Loaded>,
    /// This unlock adopted a master password changed on another device.
    adopted_password_change: bool,
    /// Where the database stood when [`Session::catch_up`] last looked.
    seen: Option<store::ChangeMarker>,
    /// While set, every server request must be done by then (a sync with a
    /// time limit, the server part of `status`).
    deadline: Option<crate::sync::client::Deadline>,
}

/// How [`Session::unlock_with`] may treat a password changed on another device.
#[derive(Debug, Clone, Default)]
pub struct UnlockOptions {
    /// Accept key derivation parameters below the floor from the server
    /// (`openk login --allow-weak-kdf`).
    pub allow_weak_kdf: bool,
    /// The server the user named for this unlock (`openk login --server
    /// URL`). A password this vault does not know may be a master password
    /// changed on another device, but only the server can say so, and the
    /// vault's record of its server cannot be authenticated without the
    /// account key that password does not open. So the question (and the
    /// auth key) goes to the record's server only when it is this one;
    /// otherwise nothing is sent and the unlock fails with
    /// [`Error::WrongPasswordRegistered`].
    pub confirmed_server: Option<String>,
}

fn seal_json<T: Serialize>(key: &Key, aad: &Aad, value: &T) -> Vec<u8> {
    let mut plain = Zeroizing::new(serde_json::to_vec(value).unwrap_or_default());
    let padded = plain.len().div_ceil(PAD_TO).max(1) * PAD_TO;
    plain.resize(padded, b' ');
    crypto::seal(key, aad, &plain)
}

fn open_json<T: DeserializeOwned>(
    key: &Key,
    aad: &Aad,
    blob: &[u8],
) -> std::result::Result<T, String> {
    let plain = crypto::open(key, aad, blob).map_err(|e| e.to_string())?;
    serde_json::from_slice(&plain).map_err(|_| "its contents do not parse".to_owned())
}

fn seal_item(
    vault_key: &Key,
    item_key: &Key,
    r: ItemRef,
    overview: &Overview,
    details: &Details,
) -> ItemRecord {
    ItemRecord {
        id: r.id,
        vault_id: r.vault_id,
        version: r.version,
        wrapped_key: crypto::wrap_key(
            vault_key,
            &Aad::item_key(r.vault_id, r.id, r.version),
            item_key,
        ),
        overview: seal_json(
            item_key,
            &Aad::item_overview(r.vault_id, r.id, r.version),
            overview,
        ),
        details: seal_json(
            item_key,
            &Aad::item_details(r.vault_id, r.id, r.version),
            details,
        ),
    }
}

fn item_ref(rec: &ItemRecord) -> ItemRef {
    ItemRef {
        id: rec.id,
        vault_id: rec.vault_id,
        version: rec.version,
    }
}

fn open_item_key(vault_key: &Key, rec: &ItemRecord) -> std::result::Result<Key, String> {
    crypto::unwrap_key(
        vault_key,
        &Aad::item_key(rec.vault_id, rec.id, rec.version),
        &rec.wrapped_key,
    )
    .map_err(|e| format!("item key: {e}"))
}

fn open_entry(vault_key: &Key, rec: &ItemRecord) -> std::result::Result<Entry, String> {
    let ik = open_item_key(vault_key, rec)?;
    let overview = open_json(
        &ik,
        &Aad::item_overview(rec.vault_id, rec.id, rec.version),
        &rec.overview,
    )
    .map_err(|e| format!("overview: {e}"))?;
    Ok(Entry {
        r: item_ref(rec),
        overview,
    })
}

fn open_full(vault_key: &Key, rec: &ItemRecord) -> std::result::Result<(Item, Key), String> {
    let ik = open_item_key(vault_key, rec)?;
    let r = item_ref(rec);
    let overview = open_json(
        &ik,
        &Aad::item_overview(r.vault_id, r.id, r.version),
        &rec.overview,
    )
    .map_err(|e| format!("overview: {e}"))?;
    let details = open_json(
        &ik,
        &Aad::item_details(r.vault_id, r.id, r.version),
        &rec.details,
    )
    .map_err(|e| format!("details: {e}"))?;
    Ok((
        Item {
            r,
            overview,
            details,
        },
        ik,
    ))
}

fn clean_name(name: &str) -> Result<String> {
    let name = name.trim();
    if name.is_empty() {
        return Err(Error::NoName);
    }
    if name.chars().count() > MAX_NAME {
        return Err(Error::Invalid(format!(
            "the name is longer than {MAX_NAME} characters"
        )));
    }
    Ok(name.to_owned())
}

fn clean_tags(tags: &[String]) -> Result<Vec<String>> {
    let mut out: Vec<String> = Vec::new();
    for t in tags {
        let t = t.trim();
        if t.is_empty() {
            return Err(Error::Invalid("a tag cannot be empty".into()));
        }
        if t.chars().any(char::is_whitespace) {
            return Err(Error::Invalid(format!(
                "tag {t:?} contains a space; use - or _ instead"
            )));
        }
        if t.chars().count() > MAX_LABEL {
            return Err(Error::Invalid(format!(
                "a tag is longer than {MAX_LABEL} characters"
            )));
        }
        if !out.iter().any(|o| o.eq_ignore_ascii_case(t)) {
            out.push(t.to_owned());
        }
    }
    Ok(out)
}

fn clean_folder(folder: Option<&str>) -> Result<Option<String>> {
    match folder.map(str::trim) {
        None | Some("") => Ok(None),
        Some(f) if f.chars().count() > MAX_LABEL => Err(Error::Invalid(format!(
            "the folder name is longer than {MAX_LABEL} characters"
        ))),
        Some(f) => Ok(Some(f.to_owned())),
    }
}

/// The part of an item that a validation error is about, so that a form
/// can put the cursor on it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ItemPart {
    Name,
    Tags,
    Folder,
    /// The field with this label.
    Field(String),
}

/// Checks a draft exactly as [`Session::add`] would, without a vault:
/// `Err` names the part that is wrong and says why.
///
/// # Errors
/// The first invalid part and the engine's message for it.
pub fn check_draft(draft: &ItemDraft) -> std::result::Result<(), (ItemPart, String)> {
    let at = |part: ItemPart| move |e: Error| (part, e.to_string());
    clean_name(&draft.name).map_err(at(ItemPart::Name))?;
    clean_tags(&draft.tags).map_err(at(ItemPart::Tags))?;
    clean_folder(draft.folder.as_deref()).map_err(at(ItemPart::Folder))?;
    for f in &draft.fields {
        clean_field(f.clone()).map_err(at(ItemPart::Field(f.label.clone())))?;
    }
    Ok(())
}

/// Checks a field and brings TOTP seeds to their canonical otpauth URI.
fn clean_field(mut f: Field) -> Result<Field> {
    f.label = f.label.trim().to_owned();
    if f.label.is_empty() {
        return Err(Error::Invalid("a field needs a label (LABEL=VALUE)".into()));
    }
    if f.label.chars().count() > MAX_LABEL {
        return Err(Error::Invalid(format!(
            "field label is longer than {MAX_LABEL} characters"
        )));
    }
    if f.value.expose().len() > MAX_VALUE {
        return Err(Error::Invalid(format!(
            "the value of field {:?} is larger than {} KiB",
            f.label,
            MAX_VALUE / 1024
        )));
    }
    if f.kind == FieldKind::Totp {
        let totp = Totp::parse(f.value.expose())
            .map_err(|e| Error::Invalid(format!("the TOTP secret is not valid: {e}")))?;
        f.value = model::Value::new(totp.to_uri());
    }
    Ok(f)
}

fn apply_patch(item: &Item, patch: &ItemPatch) -> Result<(Overview, Details)> {
    let mut overview = item.overview.clone();
    let mut fields = item.details.fields.clone();
    for label in &patch.remove_fields {
        let before = fields.len();
        fields.retain(|f| !f.label.eq_ignore_ascii_case(label.trim()));
        if fields.len() == before {
            return Err(Error::Invalid(format!(
                "the item has no field {label:?} to remove"
            )));
        }
    }
    if let Some(urls) = &patch.urls {
        let at = fields
            .iter()
            .position(|f| f.kind == FieldKind::Url)
            .unwrap_or(fields.len());
        fields.retain(|f| f.kind != FieldKind::Url);
        let new: Vec<Field> = urls
            .iter()
            .map(|u| Field::new(label::URL, u.trim(), FieldKind::Url))
            .collect();
        let at = at.min(fields.len());
        fields.splice(at..at, new);
    }
    for f in &patch.set_fields {
        let f = clean_field(f.clone())?;
        match fields
            .iter_mut()
            .find(|o| o.label.eq_ignore_ascii_case(&f.label))
        {
            Some(existing) => *existing = f,
            None => fields.push(f),
        }
    }
    if let Some(name) = &patch.name {
        overview.name = clean_name(name)?;
    }
    if let Some(tags) = &patch.tags {
        overview.tags = clean_tags(tags)?;
    }
    if let Some(folder) = &patch.folder {
        overview.folder = clean_folder(folder.as_deref())?;
    }
    if let Some(fav) = patch.favorite {
        overview.favorite = fav;
    }
    let details = Details { fields };
    model::derive_overview(item.overview.kind, &details, &mut overview);
    Ok((overview, details))
}

/// What changed between two versions, by field label (never values).
fn describe_changes(old: &Item, new: &Item) -> Vec<String> {
    let mut out = Vec::new();
    let (o, n) = (&old.overview, &new.overview);
    if o.name != n.name {
        out.push("renamed".to_owned());
    }
    match (o.trashed_at, n.trashed_at) {
        (None, Some(_)) => out.push("moved to trash".to_owned()),
        (Some(_), None) => out.push("restored from trash".to_owned()),
        _ => {}
    }
    if o.tags != n.tags {
        out.push("tags changed".to_owned());
    }
    if o.folder != n.folder {
        out.push("folder changed".to_owned());
    }
    if o.favorite != n.favorite {
        out.push(
            if n.favorite {
                "marked favorite"
            } else {
                "unmarked favorite"
            }
            .to_owned(),
        );
    }
    let labels = |item: &Item| {
        let mut l: Vec<String> = item
            .details
            .fields
            .iter()
            .map(|f| f.label.to_lowercase())
            .collect();
        l.dedup();
        l
    };
    let (ol, nl) = (labels(old), labels(new));
    for l in &nl {
        let before: Vec<&Field> = old.fields_named(l).collect();
        let after: Vec<&Field> = new.fields_named(l).collect();
        if before.is_empty() {
            out.push(format!("added {l}"));
        } else if before != after {
            out.push(format!("changed {l}"));
        }
    }
    for l in ol.iter().filter(|l| !nl.contains(l)) {
        out.push(format!("removed {l}"));
    }
    if out.is_empty() {
        out.push("no visible change".to_owned());
    }
    out
}

/// What opens a vault: the master password, or the password key an agent kept.
enum Unlocker<'a> {
    Password(SecretString),
    PasswordKey(&'a Key),
}

async fn password_key(password: SecretString, salt: Vec<u8>, kdf: KdfParams) -> Result<Key> {
    tokio::task::spawn_blocking(move || crypto::kdf::password_key(&password, &salt, &kdf))
        .await
        .map_err(|e| Error::Damaged(format!("key derivation stopped: {e}")))?
        .map_err(Error::from)
}

/// Opens the store of an existing vault after checking its permissions:
/// read-only when the directory or `vault.db` is not writable.
async fn open_store(dir: &Path) -> Result<Store> {
    files::check_dir(dir)?;
    files::check_db_files(dir)?;
    if files::is_read_only(dir) {
        tracing::info!(dir = %dir.display(), "the vault is read-only");
        return Ok(Store::open_read_only(dir).await?);
    }
    Ok(Store::open(dir, false).await?)
}

/// Whether `dir` has a vault database file (without opening it).
#[must_use]
pub fn has_vault_file(dir: &Path) -> bool {
    dir.join(store::DB_FILE).exists()
}

/// Whether `dir` holds a vault. Any `vault.db` counts, even a damaged one,
/// and the file is not opened: `init` and `login` must never write to (or
/// over) a database that may hold someone's secrets. A failed `init` removes
/// what it wrote, so no half-made vault is left to block a new one.
///
/// # Errors
/// None today; kept fallible for callers that may need to look inside.
pub async fn vault_exists(dir: &Path) -> Result<bool> {
    Ok(has_vault_file(dir))
}

impl Session {
    /// Creates a new vault in `dir`: account, keys, the Secret Key file and a
    /// personal vault. Returns the unlocked vault and the Secret Key (shown
    /// once). An existing vault is refused and left untouched; a failure
    /// leaves no half-written vault behind.
    ///
    /// # Errors
    /// [`Error::VaultExists`], invalid KDF parameters, I/O errors.
    pub async fn init(dir: &Path, password: SecretString, kdf: KdfParams) -> Result<Self> {
        kdf.validate()?;
        if password.expose_secret().is_empty() {
            return Err(Error::Invalid("the master password cannot be empty".into()));
        }
        if dir.exists() {
            files::check_dir(dir)?;
            if vault_exists(dir).await? {
                return Err(Error::VaultExists(dir.to_path_buf()));
            }
        }
        files::create_private_dir(dir)?;
        let result = Self::create(dir, password, kdf).await;
        if result.is_err() {
            // Nothing was committed: remove what this attempt wrote.
            files::remove_partial_vault(dir);
        }
        result
    }

    async fn create(dir: &Path, password: SecretString, kdf: KdfParams) -> Result<Self> {
        let account_id = Uuid::now_v7();
        let salt = crypto::secret::random_array::<{ crypto::kdf::SALT_LEN }>().to_vec();
        let secret_key = SecretKey::generate();
        let pk = password_key(password, salt.clone(), kdf).await?;
        let derived = crypto::keys::derive(&pk, &secret_key, account_id);
        let account_key = Key::random();
        let keypair = AccountKeyPair::generate();
        let public = keypair.public();
        let vault_id = Uuid::now_v7();
        let vault_key = Key::random();
        let now = now_millis();
        let header = Header {
            format: store::HEADER_FORMAT,
            account_id,
            device_id: Uuid::now_v7(),
            wrapped_account_key: Vec::new(),
            salt,
            kdf,
            public_x25519: public.x25519.to_vec(),
            public_ed25519: public.ed25519.to_vec(),
            wrapped_private_keys: crypto::seal(
                &account_key,
                &Aad::account_private_keys(account_id),
                &keypair.to_private_bytes(),
            ),
            created_at: now,
            mac: None,
        };
        let state_key = crypto::keys::local_state_key(&account_key);
        let mut header = header;
        header.wrapped_account_key = state::local_wrap(&derived.unlock, &header, &account_key);
        state::seal_header(&state_key, &mut header);
        let name = "Personal".to_owned();
        let vault = VaultRecord {
            id: vault_id,
            wrapped_key: crypto::wrap_key(
                &account_key,
                &Aad::vault_key(account_id, vault_id),
                &vault_key,
            ),
            meta: seal_json(
                &vault_key,
                &Aad::vault_meta(vault_id),
                &serde_json::json!({ "name": name }),
            ),
            created_at: now,
        };
        files::write_secret_key(dir, &secret_key)?;
        let store = Store::open(dir, true).await?;
        store.initialise(&header, &vault).await?;
        files::restrict_db_files(dir)?;
        tracing::info!(account = %account_id, vault = %vault_id, "created vault");
        Ok(Self {
            dir: dir.to_path_buf(),
            store,
            header,
            secret_key,
            account_key,
            state_key,
            auth_key: derived.auth,
            unlock_key: derived.unlock,
            remote: None,
            keypair,
            vaults: vec![Vault {
                id: vault_id,
                name,
                key: vault_key,
            }],
            loaded: Some(Loaded {
                entries: Vec::new(),
                by_id: HashMap::new(),
                damaged: Vec::new(),
                search: None,
            }),
            adopted_password_change: false,
            seen: None,
            deadline: None,
        })
    }

    /// Opens the vault in `dir` with the master password and the Secret Key
    /// (from the vault's Secret Key file, else `secret_key_fallback`, which
    /// is then saved to the file once it has opened the vault).
    ///
    /// A password that does not open the vault here may be one changed on
    /// another device: for a vault registered with a server, and only then,
    /// the server is asked (see [`Session::adopted_password_change`]).
    ///
    /// # Errors
    /// [`Error::NoVault`], [`Error::WrongPassword`] (also for a tampered
    /// header), [`Error::Damaged`], [`Error::Permissions`],
    /// [`Error::Untrusted`] for a password change the server cannot prove.
    pub async fn unlock(
        dir: &Path,
        password: SecretString,
        secret_key_fallback: Option<&str>,
    ) -> Result<Self> {
        Self::unlock_with(dir, password, secret_key_fallback, UnlockOptions::default()).await
    }

    /// [`Session::unlock`] with options.
    ///
    /// # Errors
    /// As [`Session::unlock`].
    pub async fn unlock_with(
        dir: &Path,
        password: SecretString,
        secret_key_fallback: Option<&str>,
        options: UnlockOptions,
    ) -> Result<Self> {
        let again = password.clone();
        match Self::open_with(dir, Unlocker::Password(password), secret_key_fallback).await {
            Err(Error::WrongPassword) => {
                remote::adopt_password_change(dir, again, secret_key_fallback, options).await
            }
            other => other,
        }
    }

    /// Whether this unlock learnt a master password changed on another
    /// device from the server and re-wrapped the local vault for it (the
    /// front end says so, and syncs the changes this device kept).
    #[must_use]
    pub fn adopted_password_change(&self) -> bool {
        self.adopted_password_change
    }

    /// Opens the vault in `dir` with a password key (the Argon2id output)
    /// that the agent kept, instead of the password: everything after the
    /// KDF is exactly [`Session::unlock`], so material that does not belong to
    /// this vault's current header (a stale or lying agent) fails the same
    /// way a wrong password does.
    ///
    /// # Errors
    /// As [`Session::unlock`].
    pub async fn unlock_with_password_key(
        dir: &Path,
        password_key: &Key,
        secret_key_fallback: Option<&str>,
    ) -> Result<Self> {
        Self::open_with(
            dir,
            Unlocker::PasswordKey(password_key),
            secret_key_fallback,
        )
        .await
    }

    /// Runs the KDF of the vault in `dir` on `password` (for the agent, which
    /// keeps the result). Does not check the password: pass the key to
    /// [`Session::unlock_with_password_key`] for that.
    ///
    /// # Errors
    /// [`Error::NoVault`], [`Error::WrongPassword`] for a tampered header,
    /// database errors.
    pub async fn derive_password_key(dir: &Path, password: SecretString) -> Result<Key> {
        if !dir.join(store::DB_FILE).exists() {
            return Err(Error::NoVault(dir.to_path_buf()));
        }
        let store = open_store(dir).await?;
        let header = store.header().await;
        store.close().await;
        let header = header?.ok_or_else(|| Error::NoVault(dir.to_path_buf()))?;
        if header.kdf.validate().is_err() {
            return Err(Error::WrongPassword);
        }
        password_key(password, header.salt, header.kdf).await
    }

    async fn open_with(
        dir: &Path,
        unlocker: Unlocker<'_>,
        secret_key_fallback: Option<&str>,
    ) -> Result<Self> {
        if !dir.join(store::DB_FILE).exists() {
            return Err(Error::NoVault(dir.to_path_buf()));
        }
        let store = open_store(dir).await?;
        let header = store
            .header()
            .await?
            .ok_or_else(|| Error::NoVault(dir.to_path_buf()))?;
        if header.kdf.validate().is_err() {
            // A header asking for absurd work was tampered with; don't hang on it.
            return Err(Error::WrongPassword);
        }
        let secret_key_file = dir.join(files::SECRET_KEY_FILE).exists();
        let secret_key = files::read_secret_key(dir, secret_key_fallback)?;
        let pk = match unlocker {
            Unlocker::Password(password) => {
                password_key(password, header.salt.clone(), header.kdf).await?
            }
            Unlocker::PasswordKey(pk) => pk.duplicate(),
        };
        let derived = crypto::keys::derive(&pk, &secret_key, header.account_id);
        let (account_key, legacy_wrap) = state::open_account_key(&derived.unlock, &header)?;
        let state_key = crypto::keys::local_state_key(&account_key);
        let mut header = header;
        let mut remote = remote::load(&store).await?;
        // A vault made before local state was authenticated gets its MACs
        // now, once; after that a missing or wrong MAC is tampering. Only a
        // header still in the legacy wrap can be one: a marker planted in a
        // newer vault changes nothing.
        let adopt = legacy_wrap && store.meta(store::ADOPT_MACS_KEY).await?.is_some();
        if adopt {
            let before = header.clone();
            header.wrapped_account_key = state::local_wrap(&derived.unlock, &header, &account_key);
            state::seal_header(&state_key, &mut header);
            if let Some(r) = remote.as_mut() {
                state::seal_remote(&state_key, &header, r);
            }
            if !store.is_read_only() {
                let json = remote
                    .as_ref()
                    .map(serde_json::to_vec)
                    .transpose()
                    .map_err(|e| Error::Damaged(e.to_string()))?;
                let sync_macs = state::seal_all_sync(&store, &state_key, header.account_id).await?;
                store
                    .adopt_state_macs(&before, &header, json.as_deref(), &sync_macs)
                    .await?;
                tracing::info!("authenticated the local state of a vault made by an older openk");
            }
        }
        state::verify_header(&state_key, &header)?;
        if let Some(r) = &remote {
            state::verify_remote(&state_key, &header, r)?;
        }
        // A read-only vault being adopted has no stored sync MACs to check.
        if !(adopt && store.is_read_only()) {
            state::verify_sync(&store, &state_key, header.account_id).await?;
        }
        if legacy_wrap && !adopt && !store.is_read_only() {
            // Authenticated under the legacy wrap (a vault adopted before the
            // header had its own form): move it to the local form, so that
            // from now on a planted marker cannot pass it off as an old vault.
            let before = header.clone();
            header.wrapped_account_key = state::local_wrap(&derived.unlock, &header, &account_key);
            state::seal_header(&state_key, &mut header);
            store.replace_header(&before, &header).await?;
        }
        let private = crypto::open(
            &account_key,
            &Aad::account_private_keys(header.account_id),
            &header.wrapped_private_keys,
        )
        .map_err(|_| Error::Damaged("the account's private keys cannot be decrypted".into()))?;
        let keypair = AccountKeyPair::from_private_bytes(&private)?;
        let mut vaults = Vec::new();
        for v in store.vaults().await? {
            vaults.push(Vault::open(&account_key, header.account_id, &v)?);
        }
        if vaults.is_empty() {
            return Err(Error::Damaged("the vault database has no vault".into()));
        }
        if !secret_key_file && !store.is_read_only() {
            // The key from OPENK_SECRET_KEY opened the vault: keep it, as
            // the Emergency Kit promises ("set it once"); a read-only vault
            // gets nothing written.
            match files::write_secret_key(dir, &secret_key) {
                Ok(()) => tracing::info!(
                    "saved the Secret Key to {}",
                    dir.join(files::SECRET_KEY_FILE).display()
                ),
                Err(e) => tracing::warn!(error = %e, "the Secret Key could not be saved"),
            }
        }
        tracing::debug!(account = %header.account_id, vaults = vaults.len(), "unlocked");
        Ok(Self {
            dir: dir.to_path_buf(),
            store,
            header,
            secret_key,
            account_key,
            state_key,
            auth_key: derived.auth,
            unlock_key: derived.unlock,
            remote,
            keypair,
            vaults,
            loaded: None,
            adopted_password_change: false,
            seen: None,
            deadline: None,
        })
    }

    /// Flushes and closes the database.
    pub async fn close(self) {
        self.store.close().await;
    }

    #[must_use]
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Whether the vault was opened read-only (its directory or `vault.db`
    /// is not writable): reads work, every change fails with
    /// [`Error::ReadOnly`].
    #[must_use]
    pub fn is_read_only(&self) -> bool {
        self.store.is_read_only()
    }

    #[must_use]
    pub fn account_id(&self) -> Uuid {
        self.header.account_id
    }

    #[must_use]
    pub fn device_id(&self) -> Uuid {
        self.header.device_id
    }

    #[must_use]
    pub fn kdf(&self) -> KdfParams {
        self.header.kdf
    }

    #[must_use]
    pub fn public_keys(&self) -> PublicKeys {
        self.keypair.public()
    }

    /// The default (personal) vault's id and name.
    #[must_use]
    pub fn default_vault(&self) -> (Uuid, &str) {
        self.vaults
            .first()
            .map_or((Uuid::nil(), ""), |v| (v.id, v.name.as_str()))
    }

    /// Direct access to the store, for tests that tamper with it.
    #[doc(hidden)]
    #[must_use]
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// What [`Store::apply_sync`] seals each vault's sync state with.
    fn sync_sealer(&self) -> impl Fn(Uuid, &store::SyncFields) -> Vec<u8> + Send + Sync + '_ {
        move |vault_id, fields| {
            state::seal_sync(&self.state_key, self.header.account_id, vault_id, fields)
        }
    }

    fn vault_key(&self, vault_id: Uuid) -> Result<&Key> {
        self.vaults
            .iter()
            .find(|v| v.id == vault_id)
            .map(|v| &v.key)
            .ok_or_else(|| Error::Damaged(format!("an item refers to unknown vault {vault_id}")))
    }

    /// Decrypts every item's overview (never details), on all cores.
    async fn ensure_loaded(&mut self) -> Result<&mut Loaded> {
        if self.loaded.is_none() {
            self.loaded = Some(self.load_overviews().await?);
        }
        self.loaded
            .as_mut()
            .ok_or_else(|| Error::Damaged("the vault could not be loaded".into()))
    }

    /// Streams the current records from the store and decrypts them in
    /// chunks on the rayon pool while later rows are still being read, so
    /// reading and decrypting overlap and no more than a chunk of raw rows
    /// is held at once.
    async fn load_overviews(&self) -> Result<Loaded> {
        use futures::StreamExt as _;
        const CHUNK: usize = 4096;
        type Opened = Vec<std::result::Result<Entry, DamagedItem>>;
        let keys: std::sync::Arc<HashMap<Uuid, Key>> = std::sync::Arc::new(
            self.vaults
                .iter()
                .map(|v| (v.id, v.key.duplicate()))
                .collect(),
        );
        let (tx, rx) = std::sync::mpsc::channel::<(usize, Opened)>();
        let decrypt = |n: usize, chunk: Vec<ItemRecord>| {
            let keys = keys.clone();
            let tx = tx.clone();
            rayon::spawn(move || {
                let opened: Opened = chunk
                    .iter()
                    .map(|rec| {
                        keys.get(&rec.vault_id)
                            .ok_or_else(|| "unknown vault".to_owned())
                            .and_then(|k| open_entry(k, rec))
                            .map_err(|why| DamagedItem {
                                id: rec.id.to_string(),
                                why,
                            })
                    })
                    .collect();
                let _ = tx.send((n, opened));
            });
        };
        let mut damaged = Vec::new();
        let mut chunk = Vec::with_capacity(CHUNK);
        let mut chunks = 0;
        let mut rows = self.store.overview_stream();
        while let Some(row) = rows.next().await {
            match row {
                Ok(rec) => chunk.push(rec),
                Err(e @ store::StoreError::DamagedRecord { .. }) => {
                    let id = match &e {
                        store::StoreError::DamagedRecord { id, .. } => id.clone(),
                        _ => String::new(),
                    };
                    damaged.push(DamagedItem {
                        id,
                        why: e.to_string(),
                    });
                }
                Err(e) => return Err(e.into()),
            }
            if chunk.len() == CHUNK {
                decrypt(
                    chunks,
                    std::mem::replace(&mut chunk, Vec::with_capacity(CHUNK)),
                );
                chunks += 1;
            }
        }
        drop(rows);
        if !chunk.is_empty() {
            decrypt(chunks, chunk);
            chunks += 1;
        }
        drop(tx);
        let mut parts: Vec<(usize, Opened)> =
            tokio::task::spawn_blocking(move || rx.iter().collect())
                .await
                .map_err(|e| Error::Damaged(format!("decryption stopped: {e}")))?;
        if parts.len() != chunks {
            return Err(Error::Damaged("decryption stopped early".into()));
        }
        parts.sort_unstable_by_key(|(n, _)| *n);
        let mut entries = Vec::with_capacity(parts.iter().map(|(_, p)| p.len()).sum());
        for opened in parts.into_iter().flat_map(|(_, p)| p) {
            match opened {
                Ok(e) => entries.push(e),
                Err(d) => damaged.push(d),
            }
        }
        for d in &damaged {
            tracing::warn!(item = %d.id, why = %d.why, "damaged item");
        }
        let by_id = entries
            .iter()
            .enumerate()
            .map(|(i, e)| (e.r.id, i))
            .collect();
        Ok(Loaded {
            entries,
            by_id,
            damaged,
            search: None,
        })
    }

    /// Every current item (overviews only), and the items that failed to decrypt.
    ///
    /// # Errors
    /// Database errors.
    pub async fn entries(&mut self) -> Result<(&[Entry], &[DamagedItem])> {
        let loaded = self.ensure_loaded().await?;
        Ok((&loaded.entries, &loaded.damaged))
    }

    /// Items that pass the filters of `query` (free text ignored), favourites
    /// first, then by name.
    ///
    /// # Errors
    /// Database errors.
    pub async fn list(&mut self, query: &Query) -> Result<(Vec<&Entry>, &[DamagedItem])> {
        let loaded = self.ensure_loaded().await?;
        let mut listed: Vec<&Entry> = loaded.entries.iter().filter(|e| query.admits(e)).collect();
        listed
            .sort_by_cached_key(|e| (!e.overview.favorite, e.overview.name.to_lowercase(), e.r.id));
        Ok((listed, &loaded.damaged))
    }

    /// Fuzzy search (see [`search`]): the best `limit` hits, ranked, and
    /// the number of matches; hits index into [`Session::entries`].
    ///
    /// # Errors
    /// Database errors.
    pub async fn search(&mut self, query: &Query, limit: usize) -> Result<search::Results> {
        let loaded = self.ensure_loaded().await?;
        let index = loaded
            .search
            .get_or_insert_with(|| SearchIndex::build(&loaded.entries));
        Ok(index.search(&loaded.entries, query, limit))
    }

    /// Finds one item by full id, unique id prefix (4+ characters) or exact
    /// name (case-insensitive). Items in the trash are considered only when no
    /// live item matches, or first when `prefer_trashed`.
    ///
    /// # Errors
    /// [`Error::NotFound`], [`Error::Ambiguous`] listing the candidates.
    pub async fn resolve(&mut self, query: &str, prefer_trashed: bool) -> Result<ItemRef> {
        let q = query.trim();
        if let Ok(id) = Uuid::parse_str(q) {
            if let Some(rec) = self.store.item(id).await? {
                return Ok(item_ref(&rec));
            }
            return Err(Error::NotFound(q.to_owned()));
        }
        let loaded = self.ensure_loaded().await?;
        let lower = q.to_lowercase();
        let is_prefix = q.len() >= 4 && q.chars().all(|c| c.is_ascii_hexdigit() || c == '-');
        let matches: Vec<&Entry> = loaded
            .entries
            .iter()
            .filter(|e| {
                (is_prefix && e.r.id.to_string().starts_with(&lower))
                    || e.overview.name.to_lowercase() == lower
            })
            .collect();
        let (trashed, live): (Vec<&Entry>, Vec<&Entry>) = matches
            .into_iter()
            .partition(|e| e.overview.trashed_at.is_some());
        let preferred = if prefer_trashed {
            (&trashed, &live)
        } else {
            (&live, &trashed)
        };
        let mut pick = if preferred.0.is_empty() {
            preferred.1.clone()
        } else {
            preferred.0.clone()
        };
        // "GitHub" and "github" (made on two devices, or before names were
        // checked): the exact spelling wins.
        if pick.len() > 1 && pick.iter().any(|e| e.overview.name == q) {
            pick.retain(|e| e.overview.name == q);
        }
        match pick.as_slice() {
            [] => Err(Error::NotFound(q.to_owned())),
            [one] => Ok(one.r),
            many => Err(Error::Ambiguous {
                query: q.to_owned(),
                candidates: many
                    .iter()
                    .map(|e| {
                        format!(
                            "  {}  {} ({}{})",
                            e.r.id,
                            e.overview.name,
                            e.overview.kind,
                            if e.overview.trashed_at.is_some() {
                                ", in trash"
                            } else {
                                ""
                            }
                        )
                    })
                    .collect(),
            }),
        }
    }

    async fn load_record(&self, id: Uuid) -> Result<ItemRecord> {
        self.store
            .item(id)
            .await?
            .ok_or_else(|| Error::NotFound(id.to_string()))
    }

    async fn open_record(&self, rec: &ItemRecord) -> Result<(Item, Key)> {
        let vk = self
            .vault_key(rec.vault_id)
            .map_err(|_| Error::DamagedItem {
                id: rec.id,
                why: format!("it refers to unknown vault {}", rec.vault_id),
            })?;
        open_full(vk, rec).map_err(|why| Error::DamagedItem { id: rec.id, why })
    }

    /// The current version of an item, decrypted (details included).
    ///
    /// # Errors
    /// [`Error::NotFound`], [`Error::DamagedItem`] (also when the stored
    /// version is not newer than its history: a rollback).
    pub async fn item(&self, id: Uuid) -> Result<Item> {
        let (rec, newest_old) = self
            .store
            .item_and_newest_history(id)
            .await?
            .ok_or_else(|| Error::NotFound(id.to_string()))?;
        if newest_old >= rec.version {
            return Err(Error::DamagedItem {
                id,
                why: format!(
                    "version {} is not newer than its history (version {newest_old}): an old copy was put back",
                    rec.version
                ),
            });
        }
        Ok(self.open_record(&rec).await?.0)
    }

    /// A given version of an item (current or from history).
    ///
    /// # Errors
    /// [`Error::NotFound`] for a version that does not exist.
    pub async fn item_version(&self, id: Uuid, version: u64) -> Result<Item> {
        let current = self.load_record(id).await?;
        if current.version == version {
            return self.item(id).await;
        }
        let rec = self
            .store
            .history(id)
            .await?
            .into_iter()
            .find(|r| r.version == version)
            .ok_or(Error::NoVersion { id, version })?;
        Ok(self.open_record(&rec).await?.0)
    }

    /// Every version of an item, oldest first, with what changed in each.
    ///
    /// # Errors
    /// [`Error::NotFound`]; damaged versions are reported in their summary.
    pub async fn history(&self, id: Uuid) -> Result<Vec<VersionSummary>> {
        let current = self.load_record(id).await?;
        let mut records = self.store.history(id).await?;
        records.push(current);
        let mut out = Vec::with_capacity(records.len());
        let mut previous: Option<Item> = None;
        let last = records.len().saturating_sub(1);
        for (i, rec) in records.iter().enumerate() {
            match self.open_record(rec).await {
                Ok((item, _)) => {
                    let changes = previous.as_ref().map_or_else(
                        || vec!["created".to_owned()],
                        |p| describe_changes(p, &item),
                    );
                    out.push(VersionSummary {
                        version: rec.version,
                        updated_at: item.overview.updated_at,
                        current: i == last,
                        changes,
                        damaged: None,
                    });
                    previous = Some(item);
                }
                Err(e) => {
                    previous = None;
                    out.push(VersionSummary {
                        version: rec.version,
                        updated_at: 0,
                        current: i == last,
                        changes: Vec::new(),
                        damaged: Some(e.to_string()),
                    });
                }
            }
        }
        Ok(out)
    }

    fn build_new(&self, draft: ItemDraft, vault_id: Uuid, now: i64) -> Result<(ItemRecord, Item)> {
        let fields = draft
            .fields
            .into_iter()
            .map(clean_field)
            .collect::<Result<Vec<_>>>()?;
        let details = Details { fields };
        let mut overview = Overview {
            name: clean_name(&draft.name)?,
            kind: draft.kind,
            subtitle: None,
            urls: Vec::new(),
            tags: clean_tags(&draft.tags)?,
            folder: clean_folder(draft.folder.as_deref())?,
            favorite: draft.favorite,
            has_totp: false,
            created_at: now,
            updated_at: now,
            trashed_at: None,
            updated_by: Some(self.header.device_id),
            conflict: None,
        };
        model::derive_overview(draft.kind, &details, &mut overview);
        let r = ItemRef {
            id: Uuid::now_v7(),
            vault_id,
            version: 1,
        };
        let item_key = Key::random();
        let rec = seal_item(self.vault_key(vault_id)?, &item_key, r, &overview, &details);
        Ok((
            rec,
            Item {
                r,
                overview,
                details,
            },
        ))
    }

    fn remember(&mut self, item: &Item) {
        self.remember_entry(Entry {
            r: item.r,
            overview: item.overview.clone(),
        });
    }

    /// Puts a changed or new entry into the loaded list and search index.
    fn remember_entry(&mut self, entry: Entry) {
        if let Some(loaded) = self.loaded.as_mut() {
            let id = entry.r.id;
            let index = match loaded.by_id.get(&id) {
                Some(&i) => {
                    loaded.entries[i] = entry;
                    i
                }
                None => {
                    loaded.entries.push(entry);
                    loaded.by_id.insert(id, loaded.entries.len() - 1);
                    loaded.entries.len() - 1
                }
            };
            if let Some(search) = loaded.search.as_mut() {
                search.update(index, &loaded.entries[index]);
            }
        }
    }

    /// Drops a destroyed item from the loaded list (the search index is
    /// rebuilt by the next search).
    fn forget(&mut self, id: Uuid) {
        if let Some(loaded) = self.loaded.as_mut()
            && let Some(i) = loaded.by_id.remove(&id)
        {
            loaded.entries.remove(i);
            loaded.by_id = loaded
                .entries
                .iter()
                .enumerate()
                .map(|(i, e)| (e.r.id, i))
                .collect();
            loaded.search = None;
        }
    }

    /// Adds an item to the default vault.
    ///
    /// # Errors
    /// [`Error::Invalid`] for a bad draft; database errors.
    pub async fn add(&mut self, draft: ItemDraft) -> Result<Item> {
        self.check_name_free(&draft.name, None).await?;
        let mut items = self.add_many(vec![draft]).await?;
        items
            .pop()
            .ok_or_else(|| Error::Damaged("the item was not saved".into()))
    }

    /// Refuses `name` when another live item (`except` aside) already has
    /// it, compared case-insensitively: names are how the user fetches an
    /// item, and two that differ only by case could not be told apart.
    async fn check_name_free(&mut self, name: &str, except: Option<Uuid>) -> Result<()> {
        let wanted = name.trim().to_lowercase();
        let loaded = self.ensure_loaded().await?;
        if let Some(e) = loaded.entries.iter().find(|e| {
            Some(e.r.id) != except
                && e.overview.trashed_at.is_none()
                && e.overview.name.to_lowercase() == wanted
        }) {
            return Err(Error::Invalid(format!(
                "an item named {:?} already exists ({}, id {}); names must differ in more than \
                 letter case: choose another name, or change that item",
                e.overview.name, e.overview.kind, e.r.id
            )));
        }
        Ok(())
    }

    /// Adds many items in one transaction (imports, benchmarks; names are
    /// not checked against each other or the vault, unlike [`Session::add`]).
    ///
    /// # Errors
    /// As [`Session::add`]; nothing is saved if any draft is invalid.
    pub async fn add_many(&mut self, drafts: Vec<ItemDraft>) -> Result<Vec<Item>> {
        let vault_id = self.default_vault().0;
        let now = now_millis();
        let built = drafts
            .into_par_iter()
            .map(|d| self.build_new(d, vault_id, now))
            .collect::<Result<Vec<_>>>()?;
        let (records, items): (Vec<ItemRecord>, Vec<Item>) = built.into_iter().unzip();
        self.store.insert_items(&records).await?;
        for item in &items {
            tracing::debug!(item = %item.r.id, kind = %item.overview.kind, "added item");
            self.remember(item);
        }
        Ok(items)
    }

    async fn save_version(
        &mut self,
        item: &Item,
        ik: &Key,
        mut overview: Overview,
        details: Details,
    ) -> Result<Item> {
        overview.updated_at = now_millis().max(item.overview.updated_at);
        overview.updated_by = Some(self.header.device_id);
        // The user has seen the item again: a merge's flag is done.
        overview.conflict = None;
        self.store_version(item, ik, overview, details).await
    }

    /// Saves `overview` and `details` as the version after `item`, as given.
    async fn store_version(
        &mut self,
        item: &Item,
        ik: &Key,
        overview: Overview,
        details: Details,
    ) -> Result<Item> {
        let r = ItemRef {
            version: item.r.version + 1,
            ..item.r
        };
        let rec = seal_item(self.vault_key(r.vault_id)?, ik, r, &overview, &details);
        self.store.update_item(&rec).await?;
        let saved = Item {
            r,
            overview,
            details,
        };
        tracing::debug!(item = %r.id, version = r.version, "saved item version");
        self.remember(&saved);
        Ok(saved)
    }

    /// Applies a patch, keeping the previous version in history. A patch that
    /// changes nothing saves nothing and returns the item as it was.
    ///
    /// # Errors
    /// [`Error::Invalid`], [`Error::Conflict`] when another process saved first.
    pub async fn update(&mut self, id: Uuid, patch: &ItemPatch) -> Result<Item> {
        let rec = self.load_record(id).await?;
        let (item, ik) = self.open_record(&rec).await?;
        if let Some(name) = &patch.name {
            self.check_name_free(name, Some(id)).await?;
        }
        let (overview, details) = apply_patch(&item, patch)?;
        let flagged = patch.resolve && item.overview.conflict.is_some();
        if overview == item.overview && details == item.details && !flagged {
            return Ok(item);
        }
        self.save_version(&item, &ik, overview, details).await
    }

    /// Moves an item to the trash (a new version; nothing is destroyed).
    ///
    /// # Errors
    /// [`Error::Invalid`] when it is already there.
    pub async fn trash(&mut self, id: Uuid) -> Result<Item> {
        self.set_trashed(id, true).await
    }

    /// Brings an item back from the trash.
    ///
    /// # Errors
    /// [`Error::Invalid`] when it is not in the trash.
    pub async fn restore(&mut self, id: Uuid) -> Result<Item> {
        self.set_trashed(id, false).await
    }

    async fn set_trashed(&mut self, id: Uuid, trashed: bool) -> Result<Item> {
        let rec = self.load_record(id).await?;
        let (item, ik) = self.open_record(&rec).await?;
        if item.overview.trashed_at.is_some() == trashed {
            return Err(Error::Invalid(format!(
                "{:?} is {} the trash",
                item.overview.name,
                if trashed { "already in" } else { "not in" }
            )));
        }
        let mut overview = item.overview.clone();
        overview.trashed_at = trashed.then(now_millis);
        let details = item.details.clone();
        self.save_version(&item, &ik, overview, details).await
    }

    /// Destroys an item and all its history. The only operation that loses data.
    ///
    /// # Errors
    /// [`Error::NotFound`]; database errors.
    pub async fn purge(&mut self, id: Uuid) -> Result<()> {
        let rec = self.load_record(id).await?;
        self.store
            .purge_item(id, rec.vault_id, rec.version, now_millis())
            .await?;
        tracing::debug!(item = %id, "purged item");
        self.forget(id);
        Ok(())
    }

    /// Whether `password` is this vault's master password (runs the KDF;
    /// for a front end that asks for the current password again before a
    /// change).
    ///
    /// # Errors
    /// [`Error::WrongPassword`] when it is not.
    pub async fn check_password(&self, password: SecretString) -> Result<()> {
        let pk = password_key(password, self.header.salt.clone(), self.header.kdf).await?;
        let derived = crypto::keys::derive(&pk, &self.secret_key, self.header.account_id);
        state::open_account_key(&derived.unlock, &self.header).map(drop)
    }

    /// Changes the master password (and optionally the KDF parameters) by
    /// re-wrapping the account key only; items are untouched.
    ///
    /// # Errors
    /// [`Error::Invalid`] for an empty password or bad parameters.
    pub async fn change_password(
        &mut self,
        new_password: SecretString,
        kdf: Option<KdfParams>,
    ) -> Result<()> {
        if new_password.expose_secret().is_empty() {
            return Err(Error::Invalid("the master password cannot be empty".into()));
        }
        let kdf = kdf.unwrap_or(self.header.kdf);
        kdf.validate()?;
        let salt = crypto::secret::random_array::<{ crypto::kdf::SALT_LEN }>().to_vec();
        let pk = password_key(new_password, salt.clone(), kdf).await?;
        let derived = crypto::keys::derive(&pk, &self.secret_key, self.header.account_id);
        let mut header = self.header.clone();
        header.salt = salt;
        header.kdf = kdf;
        header.wrapped_account_key = state::local_wrap(&derived.unlock, &header, &self.account_key);
        state::seal_header(&self.state_key, &mut header);
        if self.remote.is_some() {
            // The server must accept the new auth key first, or the other
            // devices could no longer log in with the new password.
            let server_wrap = state::server_wrap(&derived.unlock, &header, &self.account_key);
            self.change_password_on_server(&header, &server_wrap, &derived.auth)
                .await?;
        }
        self.store.replace_header(&self.header, &header).await?;
        self.header = header;
        self.auth_key = derived.auth;
        self.unlock_key = derived.unlock;
        tracing::info!(account = %self.header.account_id, "master password changed");
        Ok(())
    }

    /// The Emergency Kit: everything besides the master password needed to
    /// open this vault elsewhere.
    #[must_use]
    pub fn emergency_kit(&self) -> Zeroizing<String> {
        emergency_kit_text(
            &self.secret_key,
            self.header.account_id,
            &self.dir,
            self.header.created_at,
        )
    }
}

/// The Emergency Kit text.
#[must_use]
pub fn emergency_kit_text(
    secret_key: &SecretKey,
    account_id: Uuid,
    dir: &Path,
    created_at: i64,
) -> Zeroizing<String> {
    let created = time::OffsetDateTime::from_unix_timestamp(created_at / 1000)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_default();
    let sk = secret_key.display();
    Zeroizing::new(format!(
        "OpenK Emergency Kit
===================

Account ID:   {account_id}
Created:      {created}
Vault:        {dir}
Secret Key:   {sk}

Master password: ________________________________
(write it here by hand only if this sheet is kept somewhere safe)

Opening your vault needs BOTH your master password and this Secret Key.
Nobody, not even OpenK, can recover them for you.

- Print this kit or write it down, and keep it offline: a safe, a locked
  drawer, with your important papers. Delete any digital copy you do not need.
- On a new computer, copy the vault directory, then either put the Secret Key
  into <vault>/secret.key or set OPENK_SECRET_KEY=<Secret Key> once (the
  first unlock saves it to <vault>/secret.key).
- `openk kit` shows this kit again (after unlocking).
",
        dir = dir.display(),
        sk = sk.as_str(),
    ))
}

#[cfg(test)]
mod sync_tests;
#[cfg(test)]
pub(crate) mod test_server;
#[cfg(test)]
mod tests;
