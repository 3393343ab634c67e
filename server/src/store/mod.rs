//! Server storage: one [`Store`] trait, backends chosen by the database URL.
//!
//! - `memory`: an in-memory SQLite database (tests, `--database memory`);
//! - `sqlite://PATH`: the embedded default;
//! - `postgres://…`: production, several server nodes on one database.
//!
//! Both SQL backends run the same statements (`$N` placeholders work in
//! SQLite and PostgreSQL) against their own migration folder. The store sees
//! only ids, numbers, hashes and opaque ciphertext.

pub mod approvals;
pub mod emergency;
pub mod history;
mod members;
pub mod recovery;
pub mod shares;
mod sql;
pub mod usage;

use async_trait::async_trait;
use uuid::Uuid;

use crate::api::types::{KdfParams, PushResponse, Record};

pub use approvals::{Approval, ApprovalState, ApprovalStore, DeviceDetails};
pub use emergency::{EmergencyStore, Grant, GrantState, Release};
pub use history::{HistoryAppend, HistoryStore};
pub use members::{
    Appended, LogRow, MemberInfo, MemberStore, MemberWrite, Membership, RewrappedIn, RotationIn,
    SharedVault,
};
pub use recovery::{Recovery, RecoveryStore};
pub use shares::{Share, ShareStore};
pub use sql::{StoreKind, connect};
pub use usage::{ItemUsageStore, UsageBlob};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("not found")]
    NotFound,
    /// A unique constraint (e.g. an email or vault id that exists).
    #[error("already exists")]
    Conflict,
    /// The request is well-formed but impossible (e.g. the same item twice in a batch).
    #[error("{0}")]
    Invalid(String),
    #[error("database unavailable: {0}")]
    Unavailable(String),
    #[error("database error: {0}")]
    Other(String),
}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        match &e {
            sqlx::Error::RowNotFound => Self::NotFound,
            sqlx::Error::Database(db) if db.is_unique_violation() => Self::Conflict,
            // SQLite BUSY/LOCKED after the busy timeout: another writer holds the database.
            sqlx::Error::Database(db) if matches!(db.code().as_deref(), Some("5" | "6")) => {
                Self::Unavailable(e.to_string())
            }
            sqlx::Error::PoolTimedOut | sqlx::Error::Io(_) | sqlx::Error::PoolClosed => {
                Self::Unavailable(e.to_string())
            }
            _ => Self::Other(e.to_string()),
        }
    }
}

pub type StoreResult<T> = Result<T, StoreError>;

/// An account. Key material is wrapped by the client; the server keeps a
/// salted hash of the auth key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    /// The server's own key for the account (what sessions, vaults and
    /// audit entries name); never shown to a client.
    pub id: Uuid,
    /// The id the client chose at `openk init` (its records' associated
    /// data name it): a label, not unique across accounts.
    pub client_id: Uuid,
    /// Lower-cased.
    pub email: String,
    pub kdf: KdfParams,
    pub salt: Vec<u8>,
    /// SHA-256(auth_salt || auth_key).
    pub auth_hash: Vec<u8>,
    pub auth_salt: Vec<u8>,
    pub wrapped_account_key: Vec<u8>,
    pub public_x25519: Vec<u8>,
    pub public_ed25519: Vec<u8>,
    pub wrapped_private_keys: Vec<u8>,
    /// Unix milliseconds.
    pub created_at: i64,
    /// The client's MAC over the values of the last password change (opaque
    /// to the server); `None` until the first change.
    pub password_mac: Option<Vec<u8>>,
}

/// A new account key as the store applies it (already validated).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountKeyRotation {
    pub version: u32,
    pub wrapped_account_key: Vec<u8>,
    pub wrapped_private_keys: Vec<u8>,
    pub mac: Vec<u8>,
    /// (vault client id, wrapped key) for every vault of the account.
    pub vaults: Vec<(Uuid, Vec<u8>)>,
    /// The new account key sealed to the recovery key, exactly when the
    /// account has recovery set up (`Conflict` otherwise).
    pub recovery: Option<Vec<u8>>,
    /// (grant id, the new account key sealed to the grant's contact) for
    /// exactly the account's emergency grants (`Conflict` otherwise).
    pub emergency: Vec<(Uuid, Vec<u8>)>,
}

/// A device of one account: `(account_id, id)` is its key, so the same
/// device id in two accounts is two devices.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct Device {
    #[sqlx(try_from = "String")]
    pub id: Uuid,
    #[sqlx(try_from = "String")]
    pub account_id: Uuid,
    pub name: String,
    pub created_at: i64,
    pub last_seen_at: i64,
    pub revoked_at: Option<i64>,
}

/// A device's login session: hashed access and refresh tokens.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct Session {
    #[sqlx(try_from = "String")]
    pub id: Uuid,
    #[sqlx(try_from = "String")]
    pub account_id: Uuid,
    #[sqlx(try_from = "String")]
    pub device_id: Uuid,
    pub access_hash: Vec<u8>,
    pub access_expires_at: i64,
    pub refresh_hash: Vec<u8>,
    pub refresh_expires_at: i64,
    /// When the password was last proven (login); refresh keeps it.
    pub authenticated_at: i64,
}

/// The tokens a refresh issues in place of a session's, hashed, with their
/// expiry times.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NewTokens<'a> {
    pub access_hash: &'a [u8],
    pub access_expires_at: i64,
    pub refresh_hash: &'a [u8],
    pub refresh_expires_at: i64,
}

/// Result of presenting a refresh token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RefreshOutcome {
    /// Rotated: the session now has the new tokens. Carries the access hash
    /// it replaced (to drop from caches: the old access token dies at once).
    Rotated {
        session: Session,
        replaced_access_hash: Vec<u8>,
    },
    /// The token was already used: the device's sessions were all ended.
    /// Carries the ended sessions' access hashes (to drop from caches).
    Reused {
        account_id: Uuid,
        device_id: Uuid,
        revoked_access_hashes: Vec<Vec<u8>>,
    },
    /// Unknown or expired token.
    Invalid,
}

/// A vault of one account. `id` is the account's id for it (unique within
/// the account only); the server keys its rows by an id of its own.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct Vault {
    #[sqlx(rename = "client_id", try_from = "String")]
    pub id: Uuid,
    #[sqlx(try_from = "String")]
    pub account_id: Uuid,
    pub wrapped_key: Vec<u8>,
    pub meta: Vec<u8>,
    pub revision: i64,
    pub manifest: Option<Vec<u8>>,
    pub created_at: i64,
}

/// One change of a push batch (already size-checked).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChangeIn {
    pub item_id: Uuid,
    pub base_revision: i64,
    pub version: u64,
    pub deleted: bool,
    pub wrapped_key: Vec<u8>,
    pub overview: Vec<u8>,
    pub details: Vec<u8>,
    /// The author's signature over the version (shared vaults; opaque).
    pub authorship: Option<Vec<u8>>,
}

/// A push batch as the store sees it (already validated).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PushBatch<'a> {
    /// Chosen by the client; a repeated id gets the first answer.
    pub client_change_id: Uuid,
    pub changes: &'a [ChangeIn],
    /// The vault manifest after these changes (kept as the latest).
    pub manifest: Option<&'a [u8]>,
    /// Apply only if the vault's head revision is still this.
    pub expected_head: Option<i64>,
    /// The account's storage quota in bytes ([`AccountStore::usage`]): a batch
    /// that stores anything and would leave the account above it is not
    /// applied; a batch of deletions only is never refused.
    pub quota: Option<u64>,
    /// The key epoch the batch is sealed under (shared vaults): a batch
    /// under another epoch than the vault's, or without one once the key
    /// was rotated, is not applied.
    pub key_epoch: Option<u32>,
}

/// What became of a push.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PushOutcome {
    /// Handled now: every change applied (`applied` lists the new
    /// revisions), or none because some conflict (`conflicts` lists them).
    Done(PushResponse),
    /// The `client_change_id` was applied before: its first answer,
    /// unchanged. Nothing was applied now.
    Replayed(PushResponse),
    /// `expected_head` is not the vault's head any more: nothing applied.
    HeadMoved { head: i64 },
    /// The batch would take the account over its quota: nothing applied.
    QuotaExceeded { used: u64, quota: u64 },
    /// The batch is not sealed under the vault's key epoch: nothing applied.
    KeyRotated { epoch: u32 },
}

impl PushOutcome {
    /// The response a client gets (`None` for [`PushOutcome::HeadMoved`]).
    #[must_use]
    pub fn into_response(self) -> Option<PushResponse> {
        match self {
            Self::Done(r) | Self::Replayed(r) => Some(r),
            Self::HeadMoved { .. } | Self::QuotaExceeded { .. } | Self::KeyRotated { .. } => None,
        }
    }
}

/// A page of pulled changes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pulled {
    pub head: i64,
    pub records: Vec<Record>,
    pub manifest: Option<Vec<u8>>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEntry {
    pub id: i64,
    pub account_id: Uuid,
    pub at: i64,
    pub kind: String,
    pub device_id: Option<Uuid>,
    pub address: Option<String>,
    pub detail: Option<String>,
}

/// Everything the server stores, in parts (accounts, devices with their
/// sessions, identities, members, vaults, share links, item usage) and the
/// rest: the server secret, the email rule, the audit log and backups. One
/// backend implements every part; callers hold an `Arc<dyn Store>`.
#[async_trait]
pub trait Store:
    AccountStore
    + DeviceStore
    + IdentityStore
    + MemberStore
    + VaultStore
    + ShareStore
    + ItemUsageStore
    + RecoveryStore
    + ApprovalStore
    + HistoryStore
    + EmergencyStore
    + Send
    + Sync
    + 'static
{
    /// Which backend this is (for logs and `/readyz`).
    fn kind(&self) -> StoreKind;

    /// Round-trips to the database (readiness).
    async fn ping(&self) -> StoreResult<()>;

    /// A random server secret, created on first use and stable afterwards
    /// (used to make up prelogin answers for unknown emails).
    async fn server_secret(&self) -> StoreResult<Vec<u8>>;

    /// Brings the stored emails under the email rule ([`crate::email`]),
    /// once per database (remembered in `server_meta`): accounts made
    /// before the rule (lower-cased only) keep working. An email the rule
    /// refuses, or one that becomes another account's, is left as it was
    /// and logged (by account id); returns how many were rewritten.
    async fn apply_email_rule(&self) -> StoreResult<u64>;

    async fn add_audit(&self, entry: &AuditEntry) -> StoreResult<()>;
    /// The account's events, newest first.
    async fn audit(&self, account_id: Uuid, limit: u32) -> StoreResult<Vec<AuditEntry>>;

    /// Writes a consistent snapshot of the database to `path` (SQLite only).
    async fn backup_to(&self, path: &std::path::Path) -> StoreResult<()>;
}

/// Accounts: their keys (wrapped), the auth hash, invites and storage use.
#[async_trait]
pub trait AccountStore: Send + Sync {
    /// Creates an account with its first device. `Conflict` if the email
    /// exists (client ids are not unique: see [`Account::client_id`]).
    async fn create_account(&self, account: &Account, device: &Device) -> StoreResult<()>;
    /// [`AccountStore::create_account`] that also uses up a one-time invite code
    /// (by its hash), in one transaction: `Ok(false)` and nothing created
    /// when the code is unknown or used.
    async fn create_invited_account(
        &self,
        account: &Account,
        device: &Device,
        invite_hash: &[u8],
    ) -> StoreResult<bool>;
    /// Stores a new one-time invite code (by its hash).
    async fn create_invite(&self, invite_hash: &[u8], now: i64) -> StoreResult<()>;
    /// Ciphertext bytes the account stores: its vaults' keys, metadata and
    /// manifests, and every record and earlier version of a record.
    async fn usage(&self, account_id: Uuid) -> StoreResult<u64>;
    async fn account_by_email(&self, email: &str) -> StoreResult<Option<Account>>;
    async fn account(&self, id: Uuid) -> StoreResult<Option<Account>>;
    /// Replaces the KDF parameters, salt, auth hash, wrapped account key and
    /// password-change MAC.
    async fn update_account_keys(&self, account: &Account) -> StoreResult<()>;
    /// [`Self::update_account_keys`] (a password or Secret Key change) and
    /// every session of the account but `keep_session` ended, in one
    /// transaction; returns the ended sessions' access hashes.
    async fn change_password(
        &self,
        account: &Account,
        keep_session: Uuid,
    ) -> StoreResult<Vec<Vec<u8>>>;
    /// The account key's version (1 until it is first rotated).
    async fn account_key_version(&self, id: Uuid) -> StoreResult<u32>;
    /// Rotates the account key in one transaction: the new wrapped account
    /// key, private keys and MAC, every own vault's wrapped key (exactly
    /// the account's vaults: `Conflict` otherwise, or when `version` is not
    /// the next), and every other session of the account ended; returns the
    /// ended sessions' access hashes (to drop from caches).
    async fn rotate_account_key(
        &self,
        id: Uuid,
        rotation: &AccountKeyRotation,
        keep_session: Uuid,
    ) -> StoreResult<Vec<Vec<u8>>>;
}

/// A published identity: the self-signature over an account's keys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub key_version: u32,
    pub signature: Vec<u8>,
    pub published_at: i64,
}

/// Accounts' published identities (opaque self-signatures).
#[async_trait]
pub trait IdentityStore: Send + Sync {
    /// The identity the account (server id) published, if any.
    async fn identity(&self, account_id: Uuid) -> StoreResult<Option<Identity>>;
    /// Publishes (or replaces) the account's identity.
    async fn put_identity(&self, account_id: Uuid, identity: &Identity) -> StoreResult<()>;
}

/// Devices of an account and their login sessions.
#[async_trait]
pub trait DeviceStore: Send + Sync {
    /// Adds a device to the account, or (an id the account knows, not
    /// revoked) renames and touches it. `Conflict` when the account revoked
    /// that id; another account's device of the same id is not this one.
    async fn upsert_device(&self, device: &Device) -> StoreResult<Device>;
    async fn devices(&self, account_id: Uuid) -> StoreResult<Vec<Device>>;
    async fn device(&self, account_id: Uuid, device_id: Uuid) -> StoreResult<Option<Device>>;
    async fn rename_device(&self, account_id: Uuid, device_id: Uuid, name: &str)
    -> StoreResult<()>;
    async fn touch_device(&self, account_id: Uuid, device_id: Uuid, at: i64) -> StoreResult<()>;
    /// The hash of the device key of an unrevoked device of the account
    /// (`None` when there is no such device or it has no key yet).
    async fn device_key_hash(
        &self,
        account_id: Uuid,
        device_id: Uuid,
    ) -> StoreResult<Option<Vec<u8>>>;
    /// Sets the hash of an unrevoked device's key (nothing when there is no such device).
    async fn set_device_key_hash(
        &self,
        account_id: Uuid,
        device_id: Uuid,
        hash: &[u8],
    ) -> StoreResult<()>;
    /// Marks the device revoked and ends its sessions; returns their access hashes.
    async fn revoke_device(
        &self,
        account_id: Uuid,
        device_id: Uuid,
        at: i64,
    ) -> StoreResult<Vec<Vec<u8>>>;

    async fn create_session(&self, session: &Session) -> StoreResult<()>;
    /// A live session by access-token hash (not expired at `now`, device not revoked).
    async fn session_by_access(&self, access_hash: &[u8], now: i64)
    -> StoreResult<Option<Session>>;
    /// Rotates a refresh token (single use); see [`RefreshOutcome`].
    async fn refresh_session(
        &self,
        refresh_hash: &[u8],
        new: NewTokens<'_>,
        now: i64,
    ) -> StoreResult<RefreshOutcome>;
    /// Ends one session; returns its access hash.
    async fn delete_session(&self, session_id: Uuid) -> StoreResult<Option<Vec<u8>>>;
    /// Ends every session of the account except `keep` (after a password change).
    async fn delete_other_sessions(
        &self,
        account_id: Uuid,
        keep: Uuid,
    ) -> StoreResult<Vec<Vec<u8>>>;
}

/// Vaults of an account: metadata, records, history and the push log.
#[async_trait]
pub trait VaultStore: Send + Sync {
    /// `Conflict` if the account has a vault of this id (another account's
    /// vault of the same id is another vault).
    async fn create_vault(&self, vault: &Vault) -> StoreResult<()>;
    async fn vaults(&self, account_id: Uuid) -> StoreResult<Vec<Vault>>;
    /// The vault if the account owns it (else `None`: indistinguishable from missing).
    async fn vault(&self, account_id: Uuid, vault_id: Uuid) -> StoreResult<Option<Vault>>;
    /// Replaces the vault's sealed metadata (a rename); `NotFound` if the
    /// account does not own it.
    async fn set_vault_meta(
        &self,
        account_id: Uuid,
        vault_id: Uuid,
        meta: &[u8],
    ) -> StoreResult<()>;

    /// Records changed after `since`, oldest first, at most `limit`.
    async fn pull(
        &self,
        account_id: Uuid,
        vault_id: Uuid,
        since: i64,
        limit: u32,
    ) -> StoreResult<Pulled>;
    /// Applies a batch in one transaction: all changes whose base revision
    /// matches, or none (conflicts listed with the current server copy). A
    /// repeated `client_change_id` returns the first response unchanged
    /// (even when `expected_head` no longer matches); otherwise, with an
    /// `expected_head` that is not the vault's head, nothing is applied
    /// ([`PushOutcome::HeadMoved`]). `NotFound` when the vault is not the
    /// account's.
    async fn push(
        &self,
        account_id: Uuid,
        vault_id: Uuid,
        batch: PushBatch<'_>,
        now: i64,
    ) -> StoreResult<PushOutcome>;
    /// Earlier versions of an item, oldest first (the current one excluded).
    async fn item_history(
        &self,
        account_id: Uuid,
        vault_id: Uuid,
        item_id: Uuid,
    ) -> StoreResult<Vec<Record>>;
}

/// The file path of a `sqlite://PATH` URL.
fn sqlite_path(url: &str) -> StoreResult<&std::path::Path> {
    url.strip_prefix("sqlite://").map(std::path::Path::new).ok_or_else(|| {
        StoreError::Invalid(
            "backup and restore work on sqlite:// databases; for PostgreSQL use pg_dump and pg_restore (docs/operations.md)"
                .into(),
        )
    })
}

/// `openk-server backup`: a consistent snapshot (`VACUUM INTO`) of an SQLite
/// database, safe while the server runs.
///
/// # Errors
/// Not an SQLite URL, an existing target, or database errors.
pub async fn backup(url: &str, out: &std::path::Path) -> StoreResult<()> {
    let path = sqlite_path(url)?;
    if !path.exists() {
        return Err(StoreError::Invalid(format!(
            "there is no database at {}",
            path.display()
        )));
    }
    if out.exists() {
        return Err(StoreError::Invalid(format!(
            "{} already exists; choose a new file",
            out.display()
        )));
    }
    let store = connect(url).await?;
    store.backup_to(out).await
}

/// `openk-server restore`: checks a snapshot and puts it in place of the
/// database (stop the server first). The old database is replaced atomically.
///
/// # Errors
/// A snapshot that is not a healthy OpenK database, or an existing target without `force`.
pub async fn restore(snapshot: &std::path::Path, url: &str, force: bool) -> StoreResult<()> {
    use sqlx::Row;
    let target = sqlite_path(url)?;
    if target.exists() && !force {
        return Err(StoreError::Invalid(format!(
            "{} exists; stop the server and pass --force to replace it",
            target.display()
        )));
    }
    let opts = sqlx::sqlite::SqliteConnectOptions::new()
        .filename(snapshot)
        .read_only(true);
    let pool = sqlx::sqlite::SqlitePoolOptions::new()
        .max_connections(1)
        .connect_with(opts)
        .await
        .map_err(|e| {
            StoreError::Invalid(format!("{} cannot be opened: {e}", snapshot.display()))
        })?;
    let check: String = sqlx::query("PRAGMA integrity_check")
        .fetch_one(&pool)
        .await
        .and_then(|r| r.try_get(0))
        .map_err(|e| {
            StoreError::Invalid(format!(
                "{} is not an SQLite database: {e}",
                snapshot.display()
            ))
        })?;
    let migrated = sqlx::query("SELECT count(*) FROM _sqlx_migrations")
        .fetch_one(&pool)
        .await
        .is_ok();
    pool.close().await;
    if check != "ok" || !migrated {
        return Err(StoreError::Invalid(format!(
            "{} is not a healthy OpenK server snapshot ({check})",
            snapshot.display()
        )));
    }
    let tmp = target.with_extension("restore-tmp");
    std::fs::copy(snapshot, &tmp)
        .map_err(|e| StoreError::Other(format!("cannot copy the snapshot: {e}")))?;
    if let Ok(f) = std::fs::File::open(&tmp) {
        let _ = f.sync_all();
    }
    for suffix in ["-wal", "-shm"] {
        let mut p = target.as_os_str().to_owned();
        p.push(suffix);
        let _ = std::fs::remove_file(std::path::PathBuf::from(p));
    }
    std::fs::rename(&tmp, target)
        .map_err(|e| StoreError::Other(format!("cannot put the snapshot in place: {e}")))?;
    Ok(())
}
