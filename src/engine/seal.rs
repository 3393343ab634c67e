//! Sealing and opening what the store keeps: JSON padded and encrypted
//! under a key with associated data, and whole item versions.

use serde::Serialize;
use serde::de::DeserializeOwned;
use zeroize::Zeroizing;

use super::model::{Details, Entry, Item, ItemRef, Overview};
use crate::crypto::{self, Aad, Key};
use crate::store::ItemRecord;

/// Plaintext is padded with JSON whitespace to a multiple of this many bytes
/// before sealing, so ciphertext sizes say little about the contents.
const PAD_TO: usize = 64;

pub(super) fn seal_json<T: Serialize>(key: &Key, aad: &Aad, value: &T) -> Vec<u8> {
    let mut plain = Zeroizing::new(serde_json::to_vec(value).unwrap_or_default());
    let padded = plain.len().div_ceil(PAD_TO).max(1) * PAD_TO;
    plain.resize(padded, b' ');
    crypto::seal(key, aad, &plain)
}

pub(super) fn open_json<T: DeserializeOwned>(
    key: &Key,
    aad: &Aad,
    blob: &[u8],
) -> std::result::Result<T, String> {
    let plain = crypto::open(key, aad, blob).map_err(|e| e.to_string())?;
    serde_json::from_slice(&plain).map_err(|_| "its contents do not parse".to_owned())
}

/// Seals one item version under a fresh item key of its own, wrapped by the
/// vault key. A key per version (not per item) means that a member removed
/// from a shared vault, who may have kept the item keys it could open, reads
/// nothing written after the vault key was rotated.
pub(super) fn seal_item(
    vault_key: &Key,
    r: ItemRef,
    overview: &Overview,
    details: &Details,
) -> ItemRecord {
    let item_key = &Key::random();
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

pub(super) fn item_ref(rec: &ItemRecord) -> ItemRef {
    ItemRef {
        id: rec.id,
        vault_id: rec.vault_id,
        version: rec.version,
    }
}

pub(super) fn open_item_key(vault_key: &Key, rec: &ItemRecord) -> std::result::Result<Key, String> {
    crypto::unwrap_key(
        vault_key,
        &Aad::item_key(rec.vault_id, rec.id, rec.version),
        &rec.wrapped_key,
    )
    .map_err(|e| format!("item key: {e}"))
}

pub(super) fn open_entry(vault_key: &Key, rec: &ItemRecord) -> std::result::Result<Entry, String> {
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

pub(super) fn open_full(vault_key: &Key, rec: &ItemRecord) -> std::result::Result<Item, String> {
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
    Ok(Item {
        r,
        overview,
        details,
    })
}
