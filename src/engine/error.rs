//! The engine's error type. Each case says what happened, with the values
//! it is about as fields and the underlying error (store, crypto, I/O,
//! server) as its source; none contains a secret. What to do about it (the
//! command to run) and the exit code are the front end's: the CLI's
//! mapping is `cli::errors` (DESIGN §8).

use std::path::PathBuf;

use uuid::Uuid;

use crate::crypto::{CryptoError, KdfParams};
use crate::store::StoreError;
use crate::sync::SyncError;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("wrong master password or Secret Key (or the vault header was tampered with)")]
    WrongPassword,
    /// The server took no recovery code like this one for the email.
    #[error(
        "the server did not accept this recovery code for that email (a wrong code or email, no \
         recovery set up, or the code was used already)"
    )]
    WrongRecoveryCode,
    #[error("the vault is locked: {0}")]
    Locked(String),
    /// No vault in the directory named.
    #[error("no vault at {0}")]
    NoVault(PathBuf),
    #[error("a vault already exists at {0}; nothing was changed")]
    VaultExists(PathBuf),
    /// No item matches the query.
    #[error("no item matches {0:?}")]
    NotFound(String),
    #[error("item {id} has no version {version}")]
    NoVersion { id: Uuid, version: u64 },
    /// A name several items have (`candidates`: one line each, with its
    /// vault when `across_vaults`: they are not all in one vault).
    #[error("{query:?} matches {} items; use an id (or id prefix) instead:\n{}", candidates.len(), candidates.join("\n"))]
    Ambiguous {
        query: String,
        candidates: Vec<String>,
        across_vaults: bool,
    },
    /// No item matches the query in the vault it was looked up in.
    #[error("no item matches {query:?} in vault {vault:?}")]
    NotFoundIn { query: String, vault: String },
    /// No vault has this name or an id starting with it (`known`: the
    /// vaults there are, by name).
    #[error("no vault is named {query:?} or has an id starting with it (the vaults here: {})", known.join(", "))]
    NoSuchVault { query: String, known: Vec<String> },
    /// A name several vaults have (one line each: id and name).
    #[error("{query:?} names {} vaults; use the vault's id (or an id prefix) instead:\n{}", candidates.len(), candidates.join("\n"))]
    AmbiguousVault {
        query: String,
        candidates: Vec<String>,
    },
    /// A live item of this name (in any letter case) is already in the
    /// vault; `vault` is named when the account has more than one.
    #[error(
        "an item named {name:?} already exists{} ({kind}, id {id}); names must differ in more \
         than letter case within a vault; nothing was changed",
        vault.as_ref().map(|v| format!(" in vault {v:?}")).unwrap_or_default()
    )]
    NameTaken {
        name: String,
        kind: String,
        id: Uuid,
        vault: Option<String>,
    },
    #[error("{0}")]
    Invalid(String),
    /// A line of a batch (`openk apply`) that cannot be applied; nothing of
    /// the batch was written.
    #[error("line {line}: {source}; nothing of the batch was written")]
    BatchLine {
        line: usize,
        #[source]
        source: Box<Error>,
    },
    /// A named key version below the key's minimum version was asked to
    /// work (`openk key rotate NAME --min-version N` retired it).
    #[error(
        "version {version} of key {name:?} is retired (its min version is {min_version}): it no \
         longer encrypts, decrypts, signs or verifies anything"
    )]
    KeyRetired {
        name: String,
        version: u32,
        min_version: u32,
    },
    /// A named key refused its input: an envelope that does not open (tampered,
    /// truncated, another key's), a signature or MAC that does not verify.
    #[error("{0}")]
    KeyRefused(String),
    /// A device approval ended without the Secret Key sent: nothing was
    /// sent (approver) or received (new device).
    #[error("device approval ended: {0}; nothing was sent")]
    ApprovalEnded(super::approval::ApprovalEnd),
    /// An item without a name (or only white space).
    #[error("an item needs a name")]
    NoName,
    /// A device name the rule refuses (`why` says which part).
    #[error("a device name must {why}")]
    BadDeviceName { why: String },
    /// The vault is not connected to a server (never registered or logged in).
    #[error("this vault is not connected to a server")]
    NotConnected,
    /// Key material that does not parse: KDF parameters, a Secret Key.
    #[error("{}", crypto_input_message(.0))]
    BadKeyInput(#[source] CryptoError),
    #[error("item {id} is damaged and cannot be read ({why}); the other items are unaffected")]
    DamagedItem { id: Uuid, why: String },
    /// Damage the engine found (what is said).
    #[error("{0}")]
    Damaged(String),
    /// The vault database is damaged (a bad file, a damaged record).
    #[error("{}", store_damage_message(.0))]
    StoreDamaged(#[source] StoreError),
    /// A decryption or a key that failed where no wrong password can be the
    /// reason: the data is damaged.
    #[error("{0}")]
    Crypto(#[source] CryptoError),
    /// Local state that steers the client (the part named) does not match
    /// its MAC: the vault file was damaged or edited. Nothing was sent.
    #[error(
        "vault damaged or tampered: {0} does not match its authentication code; nothing was sent \
         anywhere"
    )]
    Tampered(String),
    #[error("{path}: {why}")]
    Permissions { path: PathBuf, why: String },
    /// A read-only vault (its directory named) whose database needs a write
    /// (`why`) before it can be used.
    #[error("{}: the vault is read-only, but its database {why}, which needs write access", dir.display())]
    NeedsWrite { dir: PathBuf, why: &'static str },
    /// A write to a vault opened read-only (see `files::is_read_only`); the
    /// vault directory, or an empty path when it is not known.
    #[error("{}", read_only_message(.0))]
    ReadOnly(PathBuf),
    /// Another process saved the item between this one's read and write.
    #[error("item {0} was changed by another openk process")]
    Conflict(Uuid),
    #[error("{0}")]
    Session(String),
    /// This device has no server session (it logged out).
    #[error("logged out of the server")]
    LoggedOut,
    /// The server ended the session (logged out, revoked or expired).
    #[error("the server session has ended (logged out, revoked or expired)")]
    SessionEnded,
    /// The stored server session does not open (`why`).
    #[error("the stored server session cannot be read ({why})")]
    SessionUnreadable { why: String },
    /// The server refused this device's access token (said by `status`).
    #[error("the server did not accept this device's access token")]
    TokenRejected,
    /// The server holds a newer master password than this vault: it was
    /// changed on another device (this device still has the old one).
    #[error("the master password was changed on another device")]
    PasswordChanged,
    /// A password this registered vault does not know: wrong, or changed on
    /// another device. The server (as the unauthenticated record names it)
    /// was not asked.
    #[error("wrong master password or Secret Key (or the vault header was tampered with)")]
    WrongPasswordRegistered(String),
    /// A push met a head that moved on the server.
    #[error("the vault changed on the server while this device was pushing")]
    HeadMoved,
    /// A push to a shared vault met a rotated key (a sync takes the new one).
    #[error("the shared vault's key was rotated while this device was pushing")]
    KeyRotated,
    /// A sync gave up: every push met `head_moved` (the vault, named, kept
    /// moving on the server) for as many rounds as it tries.
    #[error("vault {0:?} kept changing on the server during the sync")]
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
    /// Plain `http://` to a server that is not on this machine (its host
    /// named), while that is not allowed.
    #[error(
        "refusing plain http:// to {host}: the login key and the session tokens would cross the network \
         unencrypted, where anyone on the path can read them and answer in the server's place"
    )]
    PlainHttp { host: String },
    /// Another failure of a server request.
    #[error("{0}")]
    Remote(#[source] SyncError),
    /// A server answer that fails verification (DESIGN §6): nothing local
    /// was changed.
    #[error("{0}; nothing local was changed")]
    Untrusted(String),
    /// No account on the server has this (normalised) email.
    #[error("no account on the server has the email {0}")]
    NoSuchAccount(String),
    /// A contact's keys differ from the ones this device pinned: sharing to
    /// them waits until the new fingerprint is confirmed out of band.
    #[error(
        "the keys of {email} are not the ones this device pinned (pinned fingerprint {pinned}, \
         the server now shows {now}); nothing was shared"
    )]
    KeyChanged {
        email: String,
        pinned: String,
        now: String,
    },
    /// No emergency grant between this account and the one named.
    #[error("no emergency access grant between you and {0}")]
    NoEmergencyGrant(String),
    /// An emergency grant with no pending request (never asked, or the
    /// owner denied it).
    #[error("no emergency access request is pending between you and {0}")]
    NoEmergencyRequest(String),
    /// The wait of an emergency request still runs.
    #[error(
        "the emergency access to {owner} is not open yet: {secs} s of the wait are left (the owner can still deny it)"
    )]
    EmergencyWaiting { owner: String, secs: u64 },
    /// A fingerprint to confirm that is not the account's.
    #[error(
        "the fingerprint given for {email} is not the one of its keys ({actual}); nothing was pinned"
    )]
    FingerprintMismatch { email: String, actual: String },
    /// A fork alarm: the server shows this device, for the vault, a history
    /// other than the one it accepted (`what` says how).
    #[error(
        "fork detected on vault {vault_id}: {what}. The server is showing the devices of this account \
         different histories (a server restored from an old copy, a split database, or an attack); \
         nothing was applied. Do not trust this server's copy until its operator explains it; \
         nothing local was changed"
    )]
    Fork { vault_id: Uuid, what: String },
    /// A manifest without the link to the one before it, after this device
    /// accepted a linked one (made by an older OpenK, or a fork).
    #[error(
        "vault {vault_id}: the server's manifest number {counter} has no link to the manifest before it \
         (it was made by an OpenK older than this one), and this device has already accepted a \
         linked one, so it cannot tell this from a fork; nothing was applied; nothing local was changed"
    )]
    UnlinkedManifest { vault_id: Uuid, counter: u64 },
    /// The records the server sent do not add up to its manifest.
    #[error(
        "vault {vault_id}: the server's records do not match the vault manifest \
         (manifest: {manifest_items} items at revision {manifest_head}; received state: {items} \
         items at revision {head}); nothing local was changed"
    )]
    ManifestMismatch {
        vault_id: Uuid,
        manifest_items: u64,
        manifest_head: i64,
        items: u64,
        head: i64,
    },
    /// The server (at login) offers KDF parameters below the floor, and
    /// weak ones were not allowed.
    #[error(
        "the server offers key derivation parameters below the recommended floor ({0}); refusing"
    )]
    KdfBelowFloor(KdfParams),
    /// The server says the master password changed elsewhere but offers
    /// KDF parameters below the floor, and weak ones were not allowed.
    #[error(
        "the server says the master password was changed on another device, but offers key derivation \
         parameters below the recommended floor ({0}); refusing; nothing local was changed"
    )]
    WeakKdfOffered(KdfParams),
    /// The account's security history as the server shows it does not hold
    /// up (a dropped, reordered, altered or forged entry, or a tail this
    /// device saw that is gone): the first bad entry and what is wrong.
    #[error("the security history was tampered with at entry {}: {}", .0.seq, .0.what)]
    HistoryTampered(super::security::Tamper),
    /// Text that is not a share link (`why` says which part is wrong).
    #[error("not a share link: {0}")]
    BadShareLink(String),
    /// The server has no such share link: it expired, was used up or
    /// revoked, or never existed (one answer for all).
    #[error("this share link has expired or was already used (or it was revoked)")]
    ShareGone,
    /// None of the account's live share links has this id.
    #[error("no live share link {0:?} on the server")]
    NoShare(String),
    /// A share link whose ciphertext does not open with its key: the key
    /// was cut short or changed, or the data was altered.
    #[error(
        "this share link does not decrypt: its key is wrong or incomplete, or the data was changed"
    )]
    ShareUndecryptable,
    #[error("{0}")]
    Store(#[source] StoreError),
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
}

/// The end of the message of every error about a server answer that fails
/// verification ([`Error::is_untrusted`]).
pub const NOTHING_LOCAL_CHANGED: &str = "; nothing local was changed";

fn read_only_message(dir: &std::path::Path) -> String {
    if dir.as_os_str().is_empty() {
        return "the vault is read-only (no write permission on its directory or vault.db), so nothing was changed"
            .to_owned();
    }
    format!(
        "the vault {} is read-only (no write permission on the directory or vault.db), so nothing was changed",
        dir.display(),
    )
}

fn store_damage_message(e: &StoreError) -> String {
    match e {
        StoreError::Damaged(what) => format!("the vault database is damaged ({what})"),
        StoreError::DamagedRecord { id, what } => {
            format!("a record is damaged (item {id}: {what})")
        }
        other => other.to_string(),
    }
}

fn crypto_input_message(e: &CryptoError) -> String {
    match e {
        CryptoError::KdfParams(m) => format!("invalid key derivation parameters: {m}"),
        other => other.to_string(),
    }
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

    /// Whether this device has no live server session (logged out, or the
    /// server ended or refused it).
    #[must_use]
    pub fn is_session_over(&self) -> bool {
        matches!(
            self,
            Self::Session(_) | Self::LoggedOut | Self::SessionEnded
        )
    }

    /// Whether a server answer failed verification (nothing local was
    /// changed; the message ends in [`NOTHING_LOCAL_CHANGED`]).
    #[must_use]
    pub fn is_untrusted(&self) -> bool {
        matches!(
            self,
            Self::Untrusted(_)
                | Self::Fork { .. }
                | Self::UnlinkedManifest { .. }
                | Self::ManifestMismatch { .. }
                | Self::WeakKdfOffered(_)
        )
    }

    pub(crate) fn io(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> Self {
        let context = context.into();
        move |source| Self::Io { context, source }
    }
}

impl From<StoreError> for Error {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Damaged(_) | StoreError::DamagedRecord { .. } => Self::StoreDamaged(e),
            StoreError::Conflict(id) => Self::Conflict(id),
            StoreError::ReadOnly(dir) => Self::ReadOnly(dir),
            StoreError::NeedsWrite { dir, why } => Self::NeedsWrite { dir, why },
            other => Self::Store(other),
        }
    }
}

impl From<CryptoError> for Error {
    fn from(e: CryptoError) -> Self {
        match e {
            CryptoError::KdfParams(_)
            | CryptoError::SecretKeyFormat(_)
            | CryptoError::RecoveryFormat(_) => Self::BadKeyInput(e),
            other => Self::Crypto(other),
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
