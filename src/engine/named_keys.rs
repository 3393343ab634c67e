//! Named keys (`openk key create|rotate|derive|encrypt|decrypt|sign|verify|
//! public|ls|show`): keys an application uses, kept as items of the kind
//! [`ItemKind::Key`], so they sync, share, move and keep history like any
//! item, and are sealed under their vault's key like any item.
//!
//! An item of this kind has public fields a list can show (type, key id,
//! current version, min version) and one hidden field, `key material`, that
//! holds the `Ring`: every version's 32 bytes and creation time, as JSON.
//! The ring is the authority; the public fields are rewritten from it on
//! every change. `openk edit` cannot change a key's fields, and `get`,
//! `copy` and `show --reveal` refuse the key material: the bytes leave only
//! through `openk key show NAME --export`.
//!
//! Versions: `rotate` adds one (the new current version: every encryption,
//! signature and MAC uses it), older ones still decrypt and verify; the min
//! version retires the versions below it, which then refuse everything.
//! "Last used" is the item usage the engine records for every item
//! ([`super::usage`]): one sealed event per use, no item version.
//!
//! Two devices that rotate one key while apart both make "version N+1";
//! the sync keeps one ring (the merge's rule for one field both sides
//! changed) and flags the conflict; what the other device encrypted under
//! its own N+1 no longer opens. Rotate on one device, or sync first.

use base64::Engine as _;
use serde::{Deserialize, Serialize};
use uuid::Uuid;
use zeroize::Zeroizing;

use super::error::{Error, Result};
use super::model::{Details, Field, FieldKind, Item, ItemKind, label, now_millis};
use super::security::{SecurityKind, detail};
use super::{ItemDraft, Session};
use crate::crypto::named;
pub use crate::crypto::named::KeyType;
use crate::crypto::{CryptoError, Key};

/// The first bytes of every envelope (`openk key encrypt`).
pub const ENVELOPE_MAGIC: &[u8; 4] = named::MAGIC;

/// The key version an envelope names, if it parses (nothing is checked).
#[must_use]
pub fn envelope_version(envelope: &[u8]) -> Option<u32> {
    named::envelope_header(envelope).ok().map(|h| h.version)
}

/// The ring's format this build writes and reads.
const FORMAT: u32 = 1;

/// A version as stored in the ring.
#[derive(Serialize, Deserialize)]
struct StoredVersion {
    version: u32,
    created_at: i64,
    /// Base64 of the 32 bytes.
    secret: Zeroizing<String>,
}

/// Every version of a key, as the hidden field holds it (JSON).
#[derive(Serialize, Deserialize)]
struct Ring {
    format: u32,
    key_id: Uuid,
    #[serde(rename = "type")]
    kind: String,
    min_version: u32,
    versions: Vec<StoredVersion>,
}

/// One version of a named key, without its bytes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct KeyVersionInfo {
    pub version: u32,
    /// Unix milliseconds.
    pub created_at: i64,
    /// Below the min version: refuses everything.
    pub retired: bool,
}

/// What `openk key ls|show` and the TUI show of a named key: never its bytes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct KeyInfo {
    pub name: String,
    /// The item's id.
    pub item_id: Uuid,
    pub vault_id: Uuid,
    /// The key's own id (in every envelope; kept by moves and copies).
    pub key_id: Uuid,
    #[serde(rename = "type", serialize_with = "ser_type")]
    pub kind: KeyType,
    /// The version new encryptions, signatures and MACs use.
    pub current_version: u32,
    pub min_version: u32,
    pub versions: Vec<KeyVersionInfo>,
    /// Unix milliseconds (the first version's).
    pub created_at: i64,
    /// Unix milliseconds of the account's last use of the key (any device
    /// whose uses this one has synced), if any.
    pub last_used: Option<i64>,
    pub uses: u64,
}

#[allow(clippy::trivially_copy_pass_by_ref)] // serde's signature
fn ser_type<S: serde::Serializer>(k: &KeyType, s: S) -> std::result::Result<S::Ok, S::Error> {
    s.serialize_str(k.as_str())
}

/// A named key with its bytes, for one operation (wiped on drop).
pub struct NamedKey {
    info: KeyInfo,
    /// (version, bytes), oldest first.
    versions: Vec<(u32, Key)>,
}

impl std::fmt::Debug for NamedKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NamedKey")
            .field("info", &self.info)
            .field("versions", &"***")
            .finish()
    }
}

fn damaged(item: &Item, why: &str) -> Error {
    Error::DamagedItem {
        id: item.r.id,
        why: format!("its key material {why}"),
    }
}

fn parse_ring(item: &Item) -> Result<Ring> {
    if item.overview.kind != ItemKind::Key {
        return Err(Error::Invalid(format!(
            "{:?} is a {}, not a named key (`openk key ls` lists the keys)",
            item.overview.name, item.overview.kind
        )));
    }
    let field = item
        .field(label::KEY_MATERIAL)
        .ok_or_else(|| damaged(item, "is missing"))?;
    let ring: Ring =
        serde_json::from_str(field.value.expose()).map_err(|_| damaged(item, "does not parse"))?;
    if ring.format != FORMAT {
        return Err(damaged(
            item,
            &format!(
                "has format {} (this OpenK reads {FORMAT}; update it)",
                ring.format
            ),
        ));
    }
    if KeyType::parse(&ring.kind).is_none() {
        return Err(damaged(
            item,
            &format!("names an unknown type {:?}", ring.kind),
        ));
    }
    if ring.versions.is_empty() {
        return Err(damaged(item, "has no version"));
    }
    Ok(ring)
}

/// The key as a front end shows it (type, versions, created, min version;
/// never the bytes).
///
/// # Errors
/// [`Error::DamagedItem`] for a key whose material does not parse.
pub fn key_info(item: &Item) -> Result<KeyInfo> {
    let ring = parse_ring(item)?;
    Ok(info_of(item, &ring))
}

fn info_of(item: &Item, ring: &Ring) -> KeyInfo {
    let current = ring.versions.iter().map(|v| v.version).max().unwrap_or(1);
    KeyInfo {
        name: item.overview.name.clone(),
        item_id: item.r.id,
        vault_id: item.r.vault_id,
        key_id: ring.key_id,
        kind: KeyType::parse(&ring.kind).unwrap_or(KeyType::XChaCha20),
        current_version: current,
        min_version: ring.min_version,
        versions: ring
            .versions
            .iter()
            .map(|v| KeyVersionInfo {
                version: v.version,
                created_at: v.created_at,
                retired: v.version < ring.min_version,
            })
            .collect(),
        created_at: ring
            .versions
            .iter()
            .map(|v| v.created_at)
            .min()
            .unwrap_or(item.overview.created_at),
        last_used: None,
        uses: 0,
    }
}

/// The fields of a key item for `ring`.
fn ring_fields(ring: &Ring) -> Result<Vec<Field>> {
    let current = ring.versions.iter().map(|v| v.version).max().unwrap_or(1);
    let json = Zeroizing::new(
        serde_json::to_string(ring)
            .map_err(|e| Error::Damaged(format!("cannot write the key material: {e}")))?,
    );
    let mut material = Field::new(label::KEY_MATERIAL, json.as_str(), FieldKind::Secret);
    material.hidden = true;
    Ok(vec![
        Field::new(label::KEY_TYPE, ring.kind.clone(), FieldKind::Text),
        Field::new(label::KEY_ID, ring.key_id.to_string(), FieldKind::Text),
        Field::new(label::KEY_VERSION, current.to_string(), FieldKind::Text),
        Field::new(
            label::KEY_MIN_VERSION,
            ring.min_version.to_string(),
            FieldKind::Text,
        ),
        material,
    ])
}

fn new_version(version: u32) -> StoredVersion {
    let key = named::generate();
    StoredVersion {
        version,
        created_at: now_millis(),
        secret: Zeroizing::new(base64::engine::general_purpose::STANDARD.encode(key.expose())),
    }
}

impl NamedKey {
    #[must_use]
    pub fn info(&self) -> &KeyInfo {
        &self.info
    }

    fn refused(&self, why: impl std::fmt::Display) -> Error {
        Error::KeyRefused(format!("key {:?}: {why}", self.info.name))
    }

    fn wrong_type(&self, op: &str, types: &str) -> Error {
        Error::Invalid(format!(
            "key {:?} is an {} key; {op} needs {types}",
            self.info.name, self.info.kind
        ))
    }

    /// The bytes of `version`, refusing a retired or unknown one.
    fn version(&self, version: u32) -> Result<&Key> {
        if version < self.info.min_version {
            return Err(Error::KeyRetired {
                name: self.info.name.clone(),
                version,
                min_version: self.info.min_version,
            });
        }
        self.versions
            .iter()
            .find(|(v, _)| *v == version)
            .map(|(_, k)| k)
            .ok_or_else(|| {
                self.refused(format_args!(
                    "it has no version {version} (its versions: 1 to {}; sync, or check the \
                     key's name)",
                    self.info.current_version
                ))
            })
    }

    /// The version asked for, else the current one.
    fn pick(&self, version: Option<u32>) -> Result<(u32, &Key)> {
        let v = version.unwrap_or(self.info.current_version);
        Ok((v, self.version(v)?))
    }

    /// Encrypts into a versioned envelope (`crypto::named`) with the current version.
    ///
    /// # Errors
    /// [`Error::Invalid`] for a key that does not encrypt.
    pub fn encrypt(&self, plaintext: &[u8]) -> Result<Vec<u8>> {
        if self.info.kind.algorithm().is_none() {
            return Err(self.wrong_type("encrypt", "an aes256-gcm or xchacha20 key"));
        }
        let (v, key) = self.pick(None)?;
        named::seal_envelope(self.info.kind, key, self.info.key_id, v, plaintext)
            .map_err(Error::Crypto)
    }

    /// Decrypts an envelope with the version it names.
    ///
    /// # Errors
    /// [`Error::KeyRefused`] for an envelope of another key or algorithm, or
    /// one that does not open (tampered, truncated); [`Error::KeyRetired`].
    pub fn decrypt(&self, envelope: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
        if self.info.kind.algorithm().is_none() {
            return Err(self.wrong_type("decrypt", "an aes256-gcm or xchacha20 key"));
        }
        let header = named::envelope_header(envelope).map_err(|e| self.refused(e))?;
        if header.key_id != self.info.key_id {
            return Err(self.refused(format_args!(
                "the envelope was made with another key (key id {}; this key's id is {})",
                header.key_id, self.info.key_id
            )));
        }
        if Some(header.algorithm) != self.info.kind.algorithm() {
            return Err(self.refused(format_args!(
                "the envelope names algorithm {}, not this key's {}",
                header.algorithm, self.info.kind
            )));
        }
        let key = self.version(header.version)?;
        named::open_envelope(self.info.kind, key, envelope).map_err(|_| {
            self.refused(format_args!(
                "the envelope does not open with version {}: it was changed, truncated or \
                 made with another copy of the key",
                header.version
            ))
        })
    }

    /// Signs (Ed25519) or MACs (HMAC-SHA256) with the current version.
    ///
    /// # Errors
    /// [`Error::Invalid`] for a key that does neither.
    pub fn sign(&self, data: &[u8]) -> Result<(u32, Vec<u8>)> {
        if !matches!(self.info.kind, KeyType::Ed25519 | KeyType::HmacSha256) {
            return Err(self.wrong_type("sign", "an ed25519 or hmac-sha256 key"));
        }
        let (v, key) = self.pick(None)?;
        Ok((
            v,
            named::sign(self.info.kind, key, data).map_err(Error::Crypto)?,
        ))
    }

    /// Checks a signature or MAC against every version still in force
    /// (`version`: that one only); returns the version it holds for.
    ///
    /// # Errors
    /// [`Error::KeyRefused`] when no version in force makes it hold;
    /// [`Error::KeyRetired`] when only a retired version does.
    pub fn verify(&self, data: &[u8], signature: &[u8], version: Option<u32>) -> Result<u32> {
        if !matches!(self.info.kind, KeyType::Ed25519 | KeyType::HmacSha256) {
            return Err(self.wrong_type("verify", "an ed25519 or hmac-sha256 key"));
        }
        let holds = |k: &Key| named::verify(self.info.kind, k, data, signature).is_ok();
        if let Some(v) = version {
            let key = self.version(v)?;
            return if holds(key) {
                Ok(v)
            } else {
                Err(self.refused(format_args!(
                    "the signature does not verify with version {v}"
                )))
            };
        }
        // Newest first: a current signature is found at once.
        for (v, key) in self.versions.iter().rev() {
            if *v >= self.info.min_version && holds(key) {
                return Ok(*v);
            }
        }
        if let Some((v, _)) = self
            .versions
            .iter()
            .find(|(v, k)| *v < self.info.min_version && holds(k))
        {
            return Err(Error::KeyRetired {
                name: self.info.name.clone(),
                version: *v,
                min_version: self.info.min_version,
            });
        }
        Err(self.refused("the signature does not verify (changed data, another key, or not a signature of this key)"))
    }

    /// HKDF-SHA256 of `version` (default: current) with `context` as info.
    ///
    /// # Errors
    /// [`Error::Invalid`] for a type that does not derive or a bad length.
    pub fn derive(
        &self,
        context: &[u8],
        len: usize,
        version: Option<u32>,
    ) -> Result<(u32, Zeroizing<Vec<u8>>)> {
        if !self.info.kind.derives() {
            return Err(self.wrong_type("derive", "an aes256-gcm, xchacha20 or hmac-sha256 key"));
        }
        if len == 0 || len > named::MAX_DERIVE {
            return Err(Error::Invalid(format!(
                "--length must be 1 to {} bytes, not {len}",
                named::MAX_DERIVE
            )));
        }
        let (v, key) = self.pick(version)?;
        let out = named::derive(key, context, len).map_err(|e: CryptoError| Error::Crypto(e))?;
        Ok((v, out))
    }

    /// The public half of `version` (default: current).
    ///
    /// # Errors
    /// [`Error::Invalid`] for a symmetric key.
    pub fn public(&self, version: Option<u32>) -> Result<(u32, [u8; 32])> {
        if !self.info.kind.has_public() {
            return Err(self.wrong_type("public", "an ed25519 or x25519 key"));
        }
        let (v, key) = self.pick(version)?;
        Ok((
            v,
            named::public(self.info.kind, key).map_err(Error::Crypto)?,
        ))
    }

    /// Every version's bytes (retired ones too), oldest first: for `openk key
    /// show --export` only.
    #[must_use]
    pub fn export(&self) -> Vec<(u32, Zeroizing<Vec<u8>>)> {
        self.versions
            .iter()
            .map(|(v, k)| (*v, Zeroizing::new(k.expose().to_vec())))
            .collect()
    }
}

fn open_ring(item: &Item) -> Result<NamedKey> {
    let ring = parse_ring(item)?;
    let mut versions = Vec::with_capacity(ring.versions.len());
    for v in &ring.versions {
        let bytes = Zeroizing::new(
            base64::engine::general_purpose::STANDARD
                .decode(v.secret.as_bytes())
                .map_err(|_| damaged(item, "has a version that does not decode"))?,
        );
        let key = Key::from_slice(&bytes)
            .ok_or_else(|| damaged(item, "has a version that is not 32 bytes"))?;
        versions.push((v.version, key));
    }
    versions.sort_by_key(|(v, _)| *v);
    Ok(NamedKey {
        info: info_of(item, &ring),
        versions,
    })
}

/// A key name as the user gave it, checked.
fn check_name(name: &str) -> Result<()> {
    if name.trim().is_empty() {
        return Err(Error::NoName);
    }
    Ok(())
}

impl Session {
    /// Finds the named key `name` (name, id or id prefix), in `vault` if given.
    async fn key_item(&mut self, name: &str, vault: Option<Uuid>) -> Result<Item> {
        let r = self.resolve_in(name, false, vault).await?;
        let item = self.item(r.id).await?;
        if item.overview.kind != ItemKind::Key {
            return Err(Error::Invalid(format!(
                "{:?} is a {}, not a named key (`openk key ls` lists the keys)",
                item.overview.name, item.overview.kind
            )));
        }
        Ok(item)
    }

    async fn with_use(&self, mut info: KeyInfo) -> KeyInfo {
        if let Ok(u) = self.item_use(info.item_id).await {
            info.last_used = u.last_used.filter(|_| u.count > 0);
            info.uses = u.count;
        }
        info
    }

    /// Creates a named key of type `kind` (version 1) in `vault` (default:
    /// the personal vault).
    ///
    /// # Errors
    /// [`Error::NameTaken`], [`Error::NoName`]; database errors.
    pub async fn create_named_key(
        &mut self,
        name: &str,
        kind: KeyType,
        vault: Option<Uuid>,
    ) -> Result<KeyInfo> {
        check_name(name)?;
        let ring = Ring {
            format: FORMAT,
            key_id: Uuid::new_v4(),
            kind: kind.as_str().to_owned(),
            min_version: 1,
            versions: vec![new_version(1)],
        };
        let vault_id = vault.unwrap_or(self.default_vault().0);
        let item = self
            .add_to(
                vault_id,
                ItemDraft {
                    kind: ItemKind::Key,
                    name: name.to_owned(),
                    fields: ring_fields(&ring)?,
                    tags: Vec::new(),
                    folder: None,
                    favorite: false,
                },
            )
            .await?;
        tracing::info!(item = %item.r.id, %kind, "created a named key");
        let d = detail([
            ("key", name),
            ("type", kind.as_str()),
            ("key_id", &ring.key_id.to_string()),
        ]);
        self.record_security(SecurityKind::KeyCreated, d).await;
        Ok(info_of(&item, &ring))
    }

    /// The named keys of every vault (or one), by name; damaged ones are
    /// left out (`openk ls` reports them).
    ///
    /// # Errors
    /// Database errors.
    pub async fn named_keys(&mut self, vault: Option<Uuid>) -> Result<Vec<KeyInfo>> {
        let ids: Vec<Uuid> = self
            .entries()
            .await?
            .0
            .iter()
            .filter(|e| {
                e.overview.kind == ItemKind::Key
                    && e.overview.trashed_at.is_none()
                    && vault.is_none_or(|v| v == e.r.vault_id)
            })
            .map(|e| e.r.id)
            .collect();
        let usage = self.usage().await?;
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            let item = self.item(id).await?;
            match key_info(&item) {
                Ok(mut info) => {
                    let u = usage.of(id);
                    info.last_used = u.last_used.filter(|_| u.count > 0);
                    info.uses = u.count;
                    out.push(info);
                }
                Err(e) => tracing::warn!(item = %id, error = %e, "named key skipped"),
            }
        }
        out.sort_by_key(|a| a.name.to_lowercase());
        Ok(out)
    }

    /// One named key's description (no bytes).
    ///
    /// # Errors
    /// [`Error::NotFound`], [`Error::Invalid`] for an item that is not a key.
    pub async fn named_key_info(&mut self, name: &str, vault: Option<Uuid>) -> Result<KeyInfo> {
        let item = self.key_item(name, vault).await?;
        let info = key_info(&item)?;
        Ok(self.with_use(info).await)
    }

    /// The key with its bytes, for one operation; records a use of it.
    ///
    /// # Errors
    /// As [`Session::named_key_info`].
    pub async fn use_named_key(&mut self, name: &str, vault: Option<Uuid>) -> Result<NamedKey> {
        let item = self.key_item(name, vault).await?;
        let key = open_ring(&item)?;
        self.record_use(item.r.id).await;
        Ok(key)
    }

    /// Adds a new version (the new current one); older versions still
    /// decrypt and verify.
    ///
    /// # Errors
    /// As [`Session::named_key_info`]; a read-only vault; a conflict with
    /// another process.
    pub async fn rotate_named_key(&mut self, name: &str, vault: Option<Uuid>) -> Result<KeyInfo> {
        let item = self.key_item(name, vault).await?;
        let mut ring = parse_ring(&item)?;
        let next = ring.versions.iter().map(|v| v.version).max().unwrap_or(0) + 1;
        ring.versions.push(new_version(next));
        let saved = self.save_ring(&item, &ring).await?;
        tracing::info!(item = %item.r.id, version = next, "rotated a named key");
        let d = detail([
            ("key", item.overview.name.as_str()),
            ("version", &next.to_string()),
        ]);
        self.record_security(SecurityKind::KeyRotated, d).await;
        Ok(self.with_use(info_of(&saved, &ring)).await)
    }

    /// Retires every version below `min_version`: they then refuse to
    /// encrypt, decrypt, sign or verify. The current version cannot be
    /// retired (rotate first), and a retired version is not brought back.
    ///
    /// # Errors
    /// [`Error::Invalid`] for a min version above the current version or
    /// below the present one.
    pub async fn retire_named_key_versions(
        &mut self,
        name: &str,
        vault: Option<Uuid>,
        min_version: u32,
    ) -> Result<KeyInfo> {
        let item = self.key_item(name, vault).await?;
        let mut ring = parse_ring(&item)?;
        let current = ring.versions.iter().map(|v| v.version).max().unwrap_or(1);
        if min_version > current {
            return Err(Error::Invalid(format!(
                "--min-version {min_version} is above the current version {current} of key {:?}; \
                 the current version cannot be retired (`openk key rotate {}` makes a new one first)",
                item.overview.name, item.overview.name
            )));
        }
        if min_version < ring.min_version {
            return Err(Error::Invalid(format!(
                "key {:?} has min version {} already; a retired version is not brought back",
                item.overview.name, ring.min_version
            )));
        }
        if min_version == ring.min_version {
            return Ok(self.with_use(info_of(&item, &ring)).await);
        }
        ring.min_version = min_version;
        let saved = self.save_ring(&item, &ring).await?;
        tracing::info!(item = %item.r.id, min_version, "retired named key versions");
        let d = detail([
            ("key", item.overview.name.as_str()),
            ("min_version", &min_version.to_string()),
        ]);
        self.record_security(SecurityKind::KeyRotated, d).await;
        Ok(self.with_use(info_of(&saved, &ring)).await)
    }

    async fn save_ring(&mut self, item: &Item, ring: &Ring) -> Result<Item> {
        let details = Details {
            fields: ring_fields(ring)?,
        };
        let mut overview = item.overview.clone();
        super::model::derive_overview(ItemKind::Key, &details, &mut overview);
        self.save_version(item, overview, details).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::test_fixtures;

    #[tokio::test]
    async fn encrypt_rotate_decrypt_then_retire() {
        let (_tmp, mut s) = test_fixtures::session().await;
        let info = s
            .create_named_key("app", KeyType::XChaCha20, None)
            .await
            .expect("create");
        assert_eq!((info.current_version, info.min_version), (1, 1));
        let k1 = s.use_named_key("app", None).await.expect("key");
        let env1 = k1.encrypt(b"one").expect("encrypt");
        assert_eq!(named::envelope_header(&env1).expect("h").version, 1);

        let info = s.rotate_named_key("app", None).await.expect("rotate");
        assert_eq!(info.current_version, 2);
        let k2 = s.use_named_key("app", None).await.expect("key");
        assert_eq!(
            k2.decrypt(&env1).expect("v1 still opens").as_slice(),
            b"one"
        );
        let env2 = k2.encrypt(b"two").expect("encrypt");
        assert_eq!(named::envelope_header(&env2).expect("h").version, 2);
        assert_eq!(k2.decrypt(&env2).expect("v2").as_slice(), b"two");

        // Tampered: refused, whatever byte.
        let mut bad = env2.clone();
        let last = bad.len() - 1;
        bad[last] ^= 0x80;
        assert!(matches!(k2.decrypt(&bad), Err(Error::KeyRefused(_))));
        let mut bad = env2.clone();
        bad[24] ^= 1; // the version: 2 → 3 (no such version)
        assert!(matches!(k2.decrypt(&bad), Err(Error::KeyRefused(_))));
        let mut bad = env2.clone();
        bad[24] = 1; // the version: 2 → 1 (the header is bound)
        assert!(matches!(k2.decrypt(&bad), Err(Error::KeyRefused(_))));

        let info = s
            .retire_named_key_versions("app", None, 2)
            .await
            .expect("retire");
        assert!(info.versions[0].retired && !info.versions[1].retired);
        let k3 = s.use_named_key("app", None).await.expect("key");
        let e = k3.decrypt(&env1).expect_err("retired");
        assert!(
            matches!(
                e,
                Error::KeyRetired {
                    version: 1,
                    min_version: 2,
                    ..
                }
            ),
            "{e}"
        );
        assert!(e.to_string().contains("retired"), "{e}");
        assert_eq!(k3.decrypt(&env2).expect("v2").as_slice(), b"two");
        assert!(s.retire_named_key_versions("app", None, 1).await.is_err());
        assert!(s.retire_named_key_versions("app", None, 3).await.is_err());
        assert!(k3.sign(b"x").is_err(), "an xchacha20 key does not sign");
        let used = s.named_key_info("app", None).await.expect("info");
        assert!(used.uses >= 3 && used.last_used.is_some());
    }

    #[tokio::test]
    async fn signatures_verify_across_versions_until_retired() {
        let (_tmp, mut s) = test_fixtures::session().await;
        for kind in [KeyType::Ed25519, KeyType::HmacSha256] {
            let name = kind.as_str();
            s.create_named_key(name, kind, None).await.expect("create");
            let k = s.use_named_key(name, None).await.expect("key");
            let (v, sig) = k.sign(b"data").expect("sign");
            assert_eq!(v, 1);
            s.rotate_named_key(name, None).await.expect("rotate");
            let k = s.use_named_key(name, None).await.expect("key");
            assert_eq!(k.verify(b"data", &sig, None).expect("old verifies"), 1);
            assert!(matches!(
                k.verify(b"dat4", &sig, None),
                Err(Error::KeyRefused(_))
            ));
            let (v2, sig2) = k.sign(b"data").expect("sign");
            assert_eq!(v2, 2);
            s.retire_named_key_versions(name, None, 2)
                .await
                .expect("retire");
            let k = s.use_named_key(name, None).await.expect("key");
            assert!(matches!(
                k.verify(b"data", &sig, None),
                Err(Error::KeyRetired { version: 1, .. })
            ));
            assert_eq!(k.verify(b"data", &sig2, None).expect("v2"), 2);
        }
        let k = s.use_named_key("ed25519", None).await.expect("key");
        assert!(k.public(None).is_ok());
        assert!(matches!(k.public(Some(1)), Err(Error::KeyRetired { .. })));
    }

    #[tokio::test]
    async fn derive_is_deterministic_per_version() {
        let (_tmp, mut s) = test_fixtures::session().await;
        s.create_named_key("kdf", KeyType::HmacSha256, None)
            .await
            .expect("create");
        let k = s.use_named_key("kdf", None).await.expect("key");
        let (_, a) = k.derive(b"ctx", 32, None).expect("derive");
        let (_, b) = k.derive(b"ctx", 32, None).expect("derive");
        let (_, c) = k.derive(b"other", 32, None).expect("derive");
        assert_eq!(a, b);
        assert_ne!(a, c);
        // Exactly HKDF-SHA256(IKM = the version's bytes, no salt, info = ctx).
        let bytes = &k.export()[0].1;
        let expect = named::hkdf_sha256(bytes, None, b"ctx", 32).expect("hkdf");
        assert_eq!(a, expect);
        s.rotate_named_key("kdf", None).await.expect("rotate");
        let k = s.use_named_key("kdf", None).await.expect("key");
        let (v, d) = k.derive(b"ctx", 32, None).expect("derive");
        assert_eq!(v, 2);
        assert_ne!(a, d);
        assert_eq!(k.derive(b"ctx", 32, Some(1)).expect("v1").1, a);
        assert!(k.derive(b"ctx", 0, None).is_err());
        s.create_named_key("signer", KeyType::Ed25519, None)
            .await
            .expect("create");
        let k = s.use_named_key("signer", None).await.expect("key");
        assert!(matches!(k.derive(b"x", 32, None), Err(Error::Invalid(_))));
    }

    #[tokio::test]
    async fn key_material_is_not_editable_and_other_items_are_not_keys() {
        let (_tmp, mut s) = test_fixtures::session().await;
        let info = s
            .create_named_key("k", KeyType::Aes256Gcm, None)
            .await
            .expect("create");
        let patch = crate::engine::ItemPatch {
            set_fields: vec![Field::new(label::KEY_MATERIAL, "{}", FieldKind::Secret)],
            ..Default::default()
        };
        assert!(s.update(info.item_id, &patch).await.is_err());
        let rename = crate::engine::ItemPatch {
            name: Some("k2".into()),
            ..Default::default()
        };
        s.update(info.item_id, &rename)
            .await
            .expect("rename is fine");
        assert!(s.use_named_key("k2", None).await.is_ok());
        s.add(ItemDraft {
            kind: ItemKind::Login,
            name: "login".into(),
            fields: vec![],
            tags: vec![],
            folder: None,
            favorite: false,
        })
        .await
        .expect("add");
        assert!(matches!(
            s.use_named_key("login", None).await,
            Err(Error::Invalid(_))
        ));
        let list = s.named_keys(None).await.expect("list");
        assert_eq!(list.len(), 1);
        let json = serde_json::to_string(&list).expect("json");
        assert!(json.contains("\"type\":\"aes256-gcm\""), "{json}");
        assert!(!json.contains("secret"), "{json}");
    }
}
