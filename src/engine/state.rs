//! Local state that steers the client is authenticated (DESIGN §6 "Local
//! state"): the vault header, the remote record and each vault's sync
//! state (in its `sync_state` row) carry an
//! HMAC-SHA256 under `crypto::keys::local_state_key(account key)` over a
//! canonical, length-prefixed encoding of their fields, bound to the record
//! kind and the account id. The field lists live here and only here: a new
//! field that steers the client is added to one of these functions.
//!
//! A mismatch is [`Error::Tampered`] naming the part; the unlock refuses the
//! vault before any network request is made.

use uuid::Uuid;

use super::error::{Error, Result};
use super::remote::RemoteRecord;
use crate::crypto::{self, Aad, Key, keys};
use crate::store::{Header, Store, SyncFields};

/// Record kinds bound into the MAC, so one record's MAC never fits another.
const HEADER: &str = "header";
const REMOTE: &str = "remote";
const SYNC: &str = "sync-state";

/// The account key of a header, and whether its wrap is the legacy form
/// (the server's label, as written before local state was authenticated):
/// only such a header may be adopted through the upgrade marker. A header
/// wrapped under `Aad::account_key_local` must carry valid MACs whatever
/// the marker says, and nobody can turn it back into the legacy form
/// without the unlock key.
///
/// # Errors
/// [`Error::WrongPassword`] when neither form opens.
pub fn open_account_key(unlock: &Key, h: &Header) -> Result<(Key, bool)> {
    if let Ok(k) = crypto::unwrap_key(
        unlock,
        &Aad::account_key_local(h.account_id, &h.salt, &h.kdf),
        &h.wrapped_account_key,
    ) {
        return Ok((k, false));
    }
    crypto::unwrap_key(
        unlock,
        &Aad::account_key(h.account_id, &h.salt, &h.kdf),
        &h.wrapped_account_key,
    )
    .map(|k| (k, true))
    .map_err(|_| Error::WrongPassword)
}

/// The account key wrapped for this device's header (`Aad::account_key_local`).
#[must_use]
pub fn local_wrap(unlock: &Key, h: &Header, account_key: &Key) -> Vec<u8> {
    crypto::wrap_key(
        unlock,
        &Aad::account_key_local(h.account_id, &h.salt, &h.kdf),
        account_key,
    )
}

/// The account key wrapped for the server and the other devices (`Aad::account_key`).
#[must_use]
pub fn server_wrap(unlock: &Key, h: &Header, account_key: &Key) -> Vec<u8> {
    crypto::wrap_key(
        unlock,
        &Aad::account_key(h.account_id, &h.salt, &h.kdf),
        account_key,
    )
}

/// The part named by [`Error::Tampered`].
pub const HEADER_PART: &str = "the vault header";
pub const REMOTE_PART: &str = "the remote record (server URL, email, session)";

/// Every field of the header but its MAC.
fn header_fields(h: &Header) -> Vec<Vec<u8>> {
    let kdf: Vec<u8> = [h.kdf.memory_kib, h.kdf.iterations, h.kdf.parallelism]
        .iter()
        .flat_map(|n| n.to_be_bytes())
        .collect();
    vec![
        h.format.to_be_bytes().to_vec(),
        h.account_id.as_bytes().to_vec(),
        h.device_id.as_bytes().to_vec(),
        h.salt.clone(),
        kdf,
        h.wrapped_account_key.clone(),
        h.public_x25519.clone(),
        h.public_ed25519.clone(),
        h.wrapped_private_keys.clone(),
        h.created_at.to_be_bytes().to_vec(),
    ]
}

/// Every field of the remote record but its MAC, and the device id it
/// belongs to.
fn remote_fields(r: &RemoteRecord, device_id: Uuid) -> Vec<Vec<u8>> {
    vec![
        r.server.as_bytes().to_vec(),
        r.email.as_bytes().to_vec(),
        r.device_name.as_bytes().to_vec(),
        r.registered_at.to_be_bytes().to_vec(),
        device_id.as_bytes().to_vec(),
        // Present or not, then the sealed tokens.
        vec![u8::from(r.tokens.is_some())],
        r.tokens.as_ref().map(|t| t.0.clone()).unwrap_or_default(),
        // Present or not, then the sealed device key (the login proof).
        vec![u8::from(r.device_key.is_some())],
        r.device_key
            .as_ref()
            .map(|k| k.0.clone())
            .unwrap_or_default(),
    ]
}

fn mac(key: &Key, kind: &str, account_id: Uuid, fields: &[Vec<u8>]) -> Vec<u8> {
    let refs: Vec<&[u8]> = fields.iter().map(Vec::as_slice).collect();
    keys::local_state_mac(key, kind, account_id, &refs).to_vec()
}

fn verify(
    key: &Key,
    kind: &str,
    account_id: Uuid,
    fields: &[Vec<u8>],
    tag: Option<&[u8]>,
    part: &str,
) -> Result<()> {
    let refs: Vec<&[u8]> = fields.iter().map(Vec::as_slice).collect();
    let tag = tag.ok_or_else(|| Error::Tampered(part.to_owned()))?;
    keys::verify_local_state_mac(key, kind, account_id, &refs, tag)
        .map_err(|_| Error::Tampered(part.to_owned()))
}

/// Sets the header's MAC.
pub fn seal_header(key: &Key, h: &mut Header) {
    h.mac = Some(mac(key, HEADER, h.account_id, &header_fields(h)));
}

/// Checks the header's MAC.
///
/// # Errors
/// [`Error::Tampered`] naming the header.
pub fn verify_header(key: &Key, h: &Header) -> Result<()> {
    verify(
        key,
        HEADER,
        h.account_id,
        &header_fields(h),
        h.mac.as_deref(),
        HEADER_PART,
    )
}

/// Sets the remote record's MAC (bound to the header's account and device).
pub fn seal_remote(key: &Key, h: &Header, r: &mut RemoteRecord) {
    r.mac = Some(openk_server::api::types::B64(mac(
        key,
        REMOTE,
        h.account_id,
        &remote_fields(r, h.device_id),
    )));
}

/// Checks the remote record's MAC.
///
/// # Errors
/// [`Error::Tampered`] naming the remote record.
pub fn verify_remote(key: &Key, h: &Header, r: &RemoteRecord) -> Result<()> {
    verify(
        key,
        REMOTE,
        h.account_id,
        &remote_fields(r, h.device_id),
        r.mac.as_ref().map(|m| m.0.as_slice()),
        REMOTE_PART,
    )
}

/// Every authenticated field of a vault's sync state, bound to the vault.
fn sync_fields(vault_id: Uuid, f: &SyncFields) -> Vec<Vec<u8>> {
    vec![
        vault_id.as_bytes().to_vec(),
        f.cursor.to_be_bytes().to_vec(),
        f.counter.to_be_bytes().to_vec(),
        // Present or not, then the value.
        vec![u8::from(f.manifest_id.is_some())],
        f.manifest_id.clone().unwrap_or_default(),
        vec![u8::from(f.lines.is_some())],
        f.lines.clone().unwrap_or_default(),
    ]
}

/// The MAC of a vault's sync state (what `Store::apply_sync`
/// stores next to it).
#[must_use]
pub fn seal_sync(key: &Key, account_id: Uuid, vault_id: Uuid, f: &SyncFields) -> Vec<u8> {
    mac(key, SYNC, account_id, &sync_fields(vault_id, f))
}

/// The part named when a vault's sync state does not match its MAC.
#[must_use]
pub fn sync_part(vault_id: Uuid) -> String {
    format!("the sync state (cursor, manifest counter, server lines) of vault {vault_id}")
}

/// Checks every vault's sync state: a row that holds any progress must carry
/// its MAC; a row with none (only a pending note) has nothing to check.
///
/// # Errors
/// [`Error::Tampered`] naming the vault; database errors.
pub async fn verify_sync(store: &Store, key: &Key, account_id: Uuid) -> Result<()> {
    for (vault_id, fields, tag) in store.sync_macs().await? {
        if fields.is_empty() && tag.is_none() {
            continue;
        }
        verify(
            key,
            SYNC,
            account_id,
            &sync_fields(vault_id, &fields),
            tag.as_deref(),
            &sync_part(vault_id),
        )?;
    }
    Ok(())
}

/// The MAC of every vault's sync state as it stands (to adopt a vault made
/// before the sync state was authenticated).
///
/// # Errors
/// Database errors.
pub async fn seal_all_sync(
    store: &Store,
    key: &Key,
    account_id: Uuid,
) -> Result<Vec<(Uuid, Vec<u8>)>> {
    Ok(store
        .sync_macs()
        .await?
        .into_iter()
        .map(|(vault_id, fields, _)| (vault_id, seal_sync(key, account_id, vault_id, &fields)))
        .collect())
}
