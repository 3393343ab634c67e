//! The vault manifest of DESIGN §6: the vault id, a counter, the head
//! revision it describes, and a digest over (item id, version, ciphertext
//! hash) of every item and tombstone, sealed with the vault key. The server
//! stores the latest one and hands it out with every pull; it cannot make
//! one, so a server that drops, swaps, edits or rolls back records is caught
//! when a client compares the manifest with what it was given.

use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};
use uuid::Uuid;

use crate::crypto::{self, Aad, Key};

/// SHA-256 of one record's ciphertext (wrapped key, overview, details, each
/// length-prefixed so that bytes cannot move between parts).
#[must_use]
pub fn record_hash(wrapped_key: &[u8], overview: &[u8], details: &[u8]) -> [u8; 32] {
    let mut h = Sha256::new();
    for part in [wrapped_key, overview, details] {
        h.update((part.len() as u64).to_be_bytes());
        h.update(part);
    }
    h.finalize().into()
}

/// What the digest covers for one item: a live record or a tombstone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Line {
    pub item_id: Uuid,
    pub version: u64,
    pub deleted: bool,
    /// [`record_hash`] of a live record; zeros for a tombstone.
    pub hash: [u8; 32],
}

impl Line {
    /// The line of a version: `hash` is the record's hash, `None` for a
    /// tombstone.
    #[must_use]
    pub fn new(item_id: Uuid, version: u64, deleted: bool, hash: Option<[u8; 32]>) -> Self {
        Self {
            item_id,
            version,
            deleted,
            hash: hash.unwrap_or([0; 32]),
        }
    }
}

/// The digest over every line, in item id order (the input is sorted here).
#[must_use]
pub fn digest(lines: &mut [Line]) -> [u8; 32] {
    lines.sort_unstable_by_key(|l| l.item_id);
    let mut h = Sha256::new();
    h.update(b"openk/v1/manifest-digest");
    h.update((lines.len() as u64).to_be_bytes());
    for l in lines.iter() {
        h.update(l.item_id.as_bytes());
        h.update(l.version.to_be_bytes());
        h.update([u8::from(l.deleted)]);
        h.update(l.hash);
    }
    h.finalize().into()
}

/// The manifest format that links each manifest to the one before it
/// ([`Manifest::prev`]). Format 1 (no `format` member) has no link.
pub const CHAINED: u32 = 2;

fn format_one() -> u32 {
    1
}

/// A manifest's identity: SHA-256 over its sealed bytes, as the server
/// stores and returns them. Devices store the id of the last manifest they
/// accepted, and every new manifest names the id of the one it follows, so
/// two different manifests at one counter (a fork) are told apart.
#[must_use]
pub fn manifest_id(sealed: &[u8]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(b"openk/v1/manifest-id");
    h.update(sealed);
    h.finalize().into()
}

/// A vault's state as one device vouches for it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    /// 1 (absent: made by an OpenK before the chain) or [`CHAINED`].
    #[serde(default = "format_one")]
    pub format: u32,
    /// [`manifest_id`] of the manifest this one follows (hex), sealed with
    /// the rest; `None` for the first manifest of a vault and in format 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prev: Option<String>,
    pub vault_id: Uuid,
    /// Grows by one with every push that carries a manifest.
    pub counter: u64,
    /// The server revision this state is at.
    pub head: i64,
    /// Items and tombstones covered.
    pub items: u64,
    /// [`digest`], hex.
    pub digest: String,
    /// The device that made it.
    pub device_id: Uuid,
    /// Unix milliseconds.
    pub created_at: i64,
}

impl Manifest {
    /// Seals the manifest with the vault key.
    #[must_use]
    pub fn seal(&self, vault_key: &Key) -> Vec<u8> {
        let json = serde_json::to_vec(self).unwrap_or_default();
        crypto::seal(vault_key, &Aad::vault_manifest(self.vault_id), &json)
    }

    /// Opens a manifest of `vault_id`.
    ///
    /// # Errors
    /// A message when it was not made with this vault's key, for this vault.
    pub fn open(vault_key: &Key, vault_id: Uuid, blob: &[u8]) -> Result<Self, String> {
        let plain =
            crypto::open(vault_key, &Aad::vault_manifest(vault_id), blob).map_err(|_| {
                "the vault manifest is not authentic (it was not made with this vault's key)"
                    .to_owned()
            })?;
        let m: Self = serde_json::from_slice(&plain)
            .map_err(|_| "the vault manifest does not parse".to_owned())?;
        if m.vault_id != vault_id {
            return Err("the vault manifest belongs to another vault".into());
        }
        Ok(m)
    }

    /// Whether it describes exactly these lines.
    #[must_use]
    #[cfg_attr(not(test), allow(dead_code))]
    pub fn matches(&self, lines: &mut [Line]) -> bool {
        self.items == lines.len() as u64 && self.digest == hex_lower(&digest(lines))
    }
}

/// Lower-case hex.
#[must_use]
pub fn hex_lower(bytes: &[u8]) -> String {
    data_encoding::HEXLOWER.encode(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(n: u128, version: u64, body: &[u8]) -> Line {
        Line {
            item_id: Uuid::from_u128(n),
            version,
            deleted: false,
            hash: record_hash(b"k", body, b"d"),
        }
    }

    #[test]
    fn digest_is_order_independent_and_sensitive_to_everything() {
        let mut a = vec![line(1, 1, b"x"), line(2, 3, b"y")];
        let mut b = vec![line(2, 3, b"y"), line(1, 1, b"x")];
        let d = digest(&mut a);
        assert_eq!(d, digest(&mut b));
        // Another version, other bytes, a missing line, swapped contents.
        assert_ne!(d, digest(&mut [line(1, 2, b"x"), line(2, 3, b"y")]));
        assert_ne!(d, digest(&mut [line(1, 1, b"z"), line(2, 3, b"y")]));
        assert_ne!(d, digest(&mut [line(1, 1, b"x")]));
        assert_ne!(d, digest(&mut [line(1, 1, b"y"), line(2, 3, b"x")]));
        let mut gone = line(2, 3, b"y");
        gone.deleted = true;
        assert_ne!(d, digest(&mut [line(1, 1, b"x"), gone]));
        // Bytes cannot move between the parts of a record.
        assert_ne!(record_hash(b"ab", b"c", b""), record_hash(b"a", b"bc", b""));
    }

    #[test]
    fn only_the_vault_key_makes_and_opens_a_manifest() {
        let key = Key::random();
        let vault = Uuid::from_u128(9);
        let m = Manifest {
            format: CHAINED,
            prev: Some(hex_lower(&manifest_id(b"before"))),
            vault_id: vault,
            counter: 4,
            head: 12,
            items: 2,
            digest: hex_lower(&digest(&mut [line(1, 1, b"x"), line(2, 1, b"y")])),
            device_id: Uuid::from_u128(5),
            created_at: 1,
        };
        let blob = m.seal(&key);
        assert_eq!(Manifest::open(&key, vault, &blob).expect("opens"), m);
        assert!(Manifest::open(&Key::random(), vault, &blob).is_err());
        assert!(Manifest::open(&key, Uuid::from_u128(8), &blob).is_err());
        let mut flipped = blob.clone();
        flipped[30] ^= 1;
        assert!(Manifest::open(&key, vault, &flipped).is_err());
        assert!(m.matches(&mut [line(2, 1, b"y"), line(1, 1, b"x")]));
        assert!(!m.matches(&mut [line(1, 1, b"x")]));
        assert_ne!(manifest_id(&blob), manifest_id(&m.seal(&key)));
    }

    #[test]
    fn a_manifest_from_before_the_chain_opens_as_format_one() {
        let key = Key::random();
        let vault = Uuid::from_u128(9);
        let old = serde_json::json!({
            "vault_id": vault, "counter": 3, "head": 5, "items": 0,
            "digest": hex_lower(&digest(&mut [])), "device_id": Uuid::from_u128(5), "created_at": 1,
        });
        let blob = crypto::seal(
            &key,
            &Aad::vault_manifest(vault),
            &serde_json::to_vec(&old).expect("json"),
        );
        let m = Manifest::open(&key, vault, &blob).expect("opens");
        assert_eq!((m.format, m.prev, m.counter), (1, None, 3));
    }
}
