//! The engine's error type. Every case maps to one of the documented exit codes
//! (DESIGN §8) and its message says what to do; none contains a secret.

use std::path::PathBuf;

use uuid::Uuid;

use crate::crypto::CryptoError;
use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("wrong master password or Secret Key (or the vault header was tampered with)")]
    WrongPassword,
    #[error("the vault is locked: {0}")]
    Locked(String),
    #[error("no vault at {0}: run `openk init` to create one (or pass --home DIR)")]
    NoVault(PathBuf),
    #[error("a vault already exists at {0}; nothing was changed")]
    VaultExists(PathBuf),
    #[error("no item matches {0:?}; `openk ls` lists items and `openk search` finds them")]
    NotFound(String),
    #[error("item {id} has no version {version}; `openk history ITEM` lists its versions")]
    NoVersion { id: Uuid, version: u64 },
    #[error("{query:?} matches {} items; use an id (or id prefix) instead:\n{}", candidates.len(), candidates.join("\n"))]
    Ambiguous {
        query: String,
        candidates: Vec<String>,
    },
    #[error("{0}")]
    Invalid(String),
    #[error("item {id} is damaged and cannot be read ({why}); the other items are unaffected")]
    DamagedItem { id: Uuid, why: String },
    #[error("{0}; restore the vault directory from a backup")]
    Damaged(String),
    /// Local state that steers the client (the part named) does not match
    /// its MAC: the vault file was damaged or edited. Nothing was sent.
    #[error(
        "vault damaged or tampered: {0} does not match its authentication code; nothing was sent \
         anywhere. Restore the vault directory from a backup, or log in again as a new device \
         (`openk login --home NEW_DIR`)"
    )]
    Tampered(String),
    #[error("{path}: {why}")]
    Permissions { path: PathBuf, why: String },
    /// A write to a vault opened read-only (see `files::is_read_only`).
    #[error("{}", read_only_message(.0))]
    ReadOnly(PathBuf),
    #[error("item {0} was changed by another openk process; run the command again")]
    Conflict(Uuid),
    #[error("{0}")]
    Session(String),
    /// The server holds a newer master password than this vault: it was
    /// changed on another device (this device still has the old one).
    #[error(
        "the master password was changed on another device; type the new one in \
         `openk login --server URL` (URL: this vault's server, as `openk status` shows it)"
    )]
    PasswordChanged,
    /// A password this registered vault does not know: wrong, or changed on
    /// another device. The server (as the unauthenticated record names it)
    /// was not asked; `openk login --server URL` asks it.
    #[error(
        "wrong master password or Secret Key (or the vault header was tampered with). If the \
         master password was changed on another device, fetch it with `openk login --server {0}` \
         (the server this vault's file names: check it before you type the password)"
    )]
    WrongPasswordRegistered(String),
    #[error(
        "the vault changed on the server while this device was pushing; run `openk sync` again"
    )]
    HeadMoved,
    /// A sync gave up: every push met `head_moved` (the vault, named, kept
    /// moving on the server) for as many rounds as it tries.
    #[error("vault {0:?} kept changing on the server during the sync; run `openk sync` again")]
    KeptMoving(String),
    /// The server cannot be reached: refused, no route, unknown host.
    #[error("{0}")]
    Unreachable(String),
    /// The server did not answer in time (connect, idle or overall deadline).
    #[error("{0}")]
    NotAnswering(String),
    /// The TLS handshake with the server failed (an untrusted certificate,
    /// not https, …); the message says what to check.
    #[error("{0}")]
    Tls(String),
    #[error("{0}")]
    Remote(String),
    /// A server answer that fails verification (DESIGN §6): nothing local
    /// was changed.
    #[error("{0}; nothing local was changed")]
    Untrusted(String),
    #[error("{0}")]
    Store(StoreError),
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
}

fn read_only_message(dir: &std::path::Path) -> String {
    if dir.as_os_str().is_empty() {
        return "the vault is read-only (no write permission on its directory or vault.db), so nothing was changed; \
                read commands still work; give yourself write access to change it"
            .to_owned();
    }
    format!(
        "the vault {} is read-only (no write permission on the directory or vault.db), so nothing was changed; \
         read commands (ls, show, get, search, …) still work; to change it: chmod u+w '{}' '{}'",
        dir.display(),
        dir.display(),
        dir.join(crate::store::DB_FILE).display()
    )
}

impl Error {
    /// Whether the server could not be talked to at all (unreachable, not
    /// answering, TLS): local changes stay pending for a later sync.
    #[must_use]
    pub fn is_offline(&self) -> bool {
        matches!(
            self,
            Self::Unreachable(_) | Self::NotAnswering(_) | Self::Tls(_)
        )
    }

    /// The process exit code for this error (DESIGN §8).
    #[must_use]
    pub fn exit_code(&self) -> i32 {
        match self {
            Self::WrongPassword
            | Self::WrongPasswordRegistered(_)
            | Self::Locked(_)
            | Self::Session(_)
            | Self::PasswordChanged => 3,
            Self::NotFound(_) | Self::NoVault(_) | Self::NoVersion { .. } => 4,
            Self::Ambiguous { .. } => 5,
            Self::Conflict(_) | Self::HeadMoved | Self::KeptMoving(_) => 6,
            Self::Unreachable(_) | Self::NotAnswering(_) => 7,
            Self::Tls(_) => 8,
            Self::Invalid(_) => 2,
            _ => 1,
        }
    }

    pub(crate) fn io(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> Self {
        let context = context.into();
        move |source| Self::Io { context, source }
    }
}

impl From<StoreError> for Error {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Damaged(what) => {
                Self::Damaged(format!("the vault database is damaged ({what})"))
            }
            StoreError::DamagedRecord { id, what } => {
                Self::Damaged(format!("a record is damaged (item {id}: {what})"))
            }
            StoreError::Conflict(id) => Self::Conflict(id),
            StoreError::ReadOnly(dir) => Self::ReadOnly(dir),
            StoreError::NeedsWrite { dir, why } => Self::Permissions {
                path: dir,
                why: format!(
                    "the vault is read-only, but its database {why}, which needs write access: \
                     run one command with write permission on the directory and vault.db"
                ),
            },
            other => Self::Store(other),
        }
    }
}

impl From<CryptoError> for Error {
    fn from(e: CryptoError) -> Self {
        match e {
            CryptoError::KdfParams(m) => {
                Self::Invalid(format!("invalid key derivation parameters: {m}"))
            }
            CryptoError::SecretKeyFormat(_) => Self::Invalid(e.to_string()),
            other => Self::Damaged(other.to_string()),
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
