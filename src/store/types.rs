//! What the store keeps: the header, vault and item records, and its errors.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::kdf_params::KdfParams;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The file is not a database, or SQLite found it corrupt.
    #[error("the vault database is damaged ({0})")]
    Damaged(String),
    /// A record whose plaintext columns make no sense (bad id, negative version).
    #[error("damaged record for item {id}: {what}")]
    DamagedRecord { id: String, what: &'static str },
    #[error("the vault is busy: another openk process holds it; try again")]
    Busy,
    /// A write to a vault opened read-only (its directory or `vault.db`
    /// is not writable); the path is empty when SQLite found out itself.
    #[error("the vault database is read-only")]
    ReadOnly(PathBuf),
    /// A read-only vault that cannot be read without writing first: its
    /// database needs a migration, or it has an unfinished write-ahead log.
    #[error("the vault database {why}, which needs write access")]
    NeedsWrite { dir: PathBuf, why: &'static str },
    /// The item changed since it was read (another process edited it).
    #[error("item {0} was changed by another process")]
    Conflict(Uuid),
    #[error("vault database error: {0}")]
    Db(sqlx::Error),
}

impl From<sqlx::migrate::MigrateError> for StoreError {
    fn from(e: sqlx::migrate::MigrateError) -> Self {
        match e {
            sqlx::migrate::MigrateError::Execute(inner) => inner.into(),
            other => Self::Damaged(other.to_string()),
        }
    }
}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        if let sqlx::Error::Database(db) = &e {
            // SQLite primary result codes: 5 BUSY, 6 LOCKED, 8 READONLY,
            // 11 CORRUPT, 26 NOTADB.
            let code = db
                .code()
                .and_then(|c| c.parse::<u32>().ok())
                .map(|c| c & 0xff);
            match code {
                Some(5 | 6) => return Self::Busy,
                Some(8) => return Self::ReadOnly(PathBuf::new()),
                Some(11 | 26) => return Self::Damaged(db.message().to_owned()),
                _ => {}
            }
        }
        if let sqlx::Error::Migrate(m) = &e {
            return Self::Damaged(m.to_string());
        }
        Self::Db(e)
    }
}

pub(crate) type Result<T, E = StoreError> = std::result::Result<T, E>;

/// Binary fields as base64 in the JSON header.
mod b64 {
    use base64::Engine as _;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&base64::engine::general_purpose::STANDARD.encode(bytes))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let text = String::deserialize(d)?;
        base64::engine::general_purpose::STANDARD
            .decode(text)
            .map_err(serde::de::Error::custom)
    }
}

/// The vault header: who the account is and its wrapped keys. Stored as JSON
/// in `meta`; every secret in it is wrapped.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Header {
    pub format: u32,
    pub account_id: Uuid,
    pub device_id: Uuid,
    #[serde(with = "b64")]
    pub salt: Vec<u8>,
    pub kdf: KdfParams,
    /// The account key wrapped by the unlock key.
    #[serde(with = "b64")]
    pub wrapped_account_key: Vec<u8>,
    #[serde(with = "b64")]
    pub public_x25519: Vec<u8>,
    #[serde(with = "b64")]
    pub public_ed25519: Vec<u8>,
    /// X25519 and Ed25519 private keys wrapped by the account key.
    #[serde(with = "b64")]
    pub wrapped_private_keys: Vec<u8>,
    pub created_at: i64,
    /// HMAC-SHA256 over every other field under a key derived from the
    /// account key (`engine::state`); absent only in a vault made before
    /// local state was authenticated, until its first unlock adopts it.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "b64_opt")]
    pub mac: Option<Vec<u8>>,
}

/// Optional binary fields as base64 in the JSON header.
mod b64_opt {
    use base64::Engine as _;
    use serde::{Deserialize, Deserializer, Serializer};

    #[allow(clippy::ref_option)]
    pub fn serialize<S: Serializer>(bytes: &Option<Vec<u8>>, s: S) -> Result<S::Ok, S::Error> {
        match bytes {
            Some(b) => s.serialize_str(&base64::engine::general_purpose::STANDARD.encode(b)),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<u8>>, D::Error> {
        let text = Option::<String>::deserialize(d)?;
        text.map(|t| {
            base64::engine::general_purpose::STANDARD
                .decode(t)
                .map_err(serde::de::Error::custom)
        })
        .transpose()
    }
}

/// `meta` key set by the migration that introduced local-state MACs: the
/// vault was made before them, and its next unlock computes them (once).
pub const ADOPT_MACS_KEY: &str = "adopt_state_macs";

/// The only header format this build reads.
pub const HEADER_FORMAT: u32 = 1;

#[derive(Debug, Clone)]
pub struct VaultRecord {
    pub id: Uuid,
    pub wrapped_key: Vec<u8>,
    pub meta: Vec<u8>,
    pub created_at: i64,
    /// The epoch of the key `wrapped_key` holds (1 until it is rotated).
    pub key_epoch: u32,
}

/// One stored version of an item.
#[derive(Debug, Clone)]
pub struct ItemRecord {
    pub id: Uuid,
    pub vault_id: Uuid,
    pub version: u64,
    pub wrapped_key: Vec<u8>,
    pub overview: Vec<u8>,
    /// Empty when only the overview was loaded.
    pub details: Vec<u8>,
}
