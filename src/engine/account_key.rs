//! Rotating the account key (`openk key rotate --account`): a new account
//! key, the private keys and every one of the account's vault keys wrapped
//! under it, in one server transaction that also ends every other session;
//! and on each device, every value sealed or MACed with the old key sealed
//! anew, in one local transaction.
//!
//! Another device finds out at its next login (its session was ended): the
//! server's wrapped account key opens with its unlock key (only a holder of
//! the password and the Secret Key can have made it) to another key than
//! its own; it takes that key only if it opens the account's private keys
//! (whose public halves it knows) and carries a MAC under itself over the
//! wrap, as a password change does, then seals everything anew.

use openk_server::api::types::{self as wire, AccountResponse, RotateAccountKeyRequest};
use uuid::Uuid;

use super::error::{Error, Result};
use super::remote::{REMOTE_KEY, aad_tokens, seal_device_key};
use super::sync::SyncOptions;
use super::{Session, open_json, seal_json, state};
use crate::crypto::{self, Aad, AccountKeyPair, Key};
use crate::store::Rekey;

/// Set while this device rotates the account key, until its local state is
/// sealed anew: a device interrupted in between checks the server's key at
/// its next sync.
const ROTATING_KEY: &str = "account_key_rotating";

/// The `meta` keys that hold nothing sealed with the account key, or that
/// [`Session::rekey_local`] reseals on their own: with [`sealed_meta`],
/// every key a vault may hold (a test checks that nothing else appears).
#[cfg(test)]
pub(super) const OTHER_META: &[&str] = &[
    "header",
    REMOTE_KEY,
    ROTATING_KEY,
    crate::store::ADOPT_MACS_KEY,
    "usage_cursor",
];

/// The `meta` values sealed (as JSON) with the account key, and their
/// associated data. A new value sealed with the account key must be listed
/// here, or a rotation leaves it unreadable.
pub(super) fn sealed_meta(account_id: Uuid) -> Vec<(&'static str, Aad)> {
    vec![
        (super::contacts::CONTACTS_KEY, Aad::contacts(account_id)),
        (super::shared_vaults::SHARES_KEY, Aad::shares(account_id)),
        (
            super::remote::share::NOTES_KEY,
            Aad::share_links(account_id),
        ),
        (
            super::security::HISTORY_KEY,
            Aad::security_history(account_id),
        ),
    ]
}

impl Session {
    /// Rotates the account key: on the server (one transaction; the other
    /// devices' sessions end and they take the new key at their next login)
    /// when this device syncs, and here.
    ///
    /// # Errors
    /// Not all of the account's vaults are on this device (sync first); the
    /// key changed meanwhile on another device; network errors. Nothing
    /// changes here unless the server took it.
    pub async fn rotate_account_key(&mut self) -> Result<()> {
        let new = Key::random();
        if !self.is_logged_in() {
            self.rekey_local(new).await?;
            self.record_security(
                super::security::SecurityKind::AccountKeyRotated,
                super::security::Detail::new(),
            )
            .await;
            tracing::info!("rotated the account key (this device only)");
            return Ok(());
        }
        self.sync(&SyncOptions {
            skip_rotation: true,
            ..SyncOptions::default()
        })
        .await?;
        // The server wants a recent login for this.
        self.relogin().await?;
        let a = self.header.account_id;
        let own = self.authed(|c| async move { c.vaults().await }).await?;
        let mut vaults = Vec::with_capacity(own.len());
        for v in &own {
            let vk = self.vault_key(v.id).map_err(|_| {
                Error::Invalid(format!(
                    "vault {} is on the server but not on this device yet: run `openk sync`, \
                     then rotate again",
                    v.id
                ))
            })?;
            vaults.push(wire::VaultKeyWrap {
                id: v.id,
                wrapped_key: wire::B64(crypto::wrap_key(&new, &Aad::vault_key(a, v.id), vk)),
            });
        }
        let account = self.authed(|c| async move { c.account().await }).await?;
        let server_wrap = state::server_wrap(&self.unlock_key, &self.header, &new);
        let mac = crypto::keys::password_change_mac(
            &new,
            a,
            &self.header.kdf,
            &self.header.salt,
            &server_wrap,
        )?;
        let req = RotateAccountKeyRequest {
            account_key_version: account.account_key_version + 1,
            wrapped_account_key: wire::B64(server_wrap),
            wrapped_private_keys: wire::B64(crypto::seal(
                &new,
                &Aad::account_private_keys(a),
                &self.keypair.to_private_bytes(),
            )),
            vaults,
            mac: wire::B64(mac.to_vec()),
            recovery_sealed_account_key: self
                .seal_for_recovery(&new, account.account_key_version + 1)
                .await?,
            emergency: self.seal_for_emergency(&new).await?,
        };
        self.store.set_meta(ROTATING_KEY, Some(b"1")).await?;
        self.authed(|c| {
            let req = req.clone();
            async move { c.rotate_account_key(&req).await }
        })
        .await?;
        self.rekey_local(new).await?;
        self.store.set_meta(ROTATING_KEY, None).await?;
        let version = req.account_key_version.to_string();
        self.record_security(
            super::security::SecurityKind::AccountKeyRotated,
            super::security::detail([("version", version.as_str())]),
        )
        .await;
        tracing::info!(version = req.account_key_version, "rotated the account key");
        Ok(())
    }

    /// Rotates the Secret Key (the password stays): a new Secret Key, so
    /// new unlock and auth keys and the account key wrapped anew under
    /// them, on the server (which ends every other session; the other
    /// devices get in with the password and the new Secret Key, from the
    /// new Emergency Kit) and here. The new key is written to a pending
    /// file before the server is told, so no crash loses it. Returns the
    /// new Secret Key's text, for the new Emergency Kit.
    ///
    /// # Errors
    /// [`Error::WrongPassword`] when `password` is not the master password;
    /// network errors (nothing changes then).
    pub async fn rotate_secret_key(
        &mut self,
        password: crate::crypto::SecretString,
    ) -> Result<zeroize::Zeroizing<String>> {
        self.check_password(password.clone()).await?;
        let secret_key = crate::crypto::SecretKey::generate();
        let salt = crypto::secret::random_array::<{ crypto::kdf::SALT_LEN }>().to_vec();
        let pk = super::password_key(password, salt.clone(), self.header.kdf).await?;
        let derived = crypto::keys::derive(&pk, &secret_key, self.header.account_id);
        let mut header = self.header.clone();
        header.salt = salt;
        header.wrapped_account_key = state::local_wrap(&derived.unlock, &header, &self.account_key);
        state::seal_header(&self.state_key, &mut header);
        super::files::write_next_secret_key(&self.dir, &secret_key)?;
        if self.remote.is_some() {
            let server_wrap = state::server_wrap(&derived.unlock, &header, &self.account_key);
            // On an error the pending key stays: an answer lost on the way
            // may hide a change the server made, and only this key opens it.
            self.change_password_on_server(&header, &server_wrap, &derived.auth)
                .await?;
        }
        self.store.replace_header(&self.header, &header).await?;
        super::files::promote_secret_key(&self.dir, &secret_key)?;
        self.header = header;
        self.auth_key = derived.auth;
        self.unlock_key = derived.unlock;
        self.secret_key = secret_key;
        self.record_security(
            super::security::SecurityKind::SecretKeyRotated,
            super::security::Detail::new(),
        )
        .await;
        tracing::info!(account = %self.header.account_id, "rotated the Secret Key");
        Ok(self.secret_key_display())
    }

    /// After a login, or a rotation this device did not finish: takes the
    /// server's account key if another device rotated it (see the module
    /// documentation for the checks). Returns whether it did.
    ///
    /// # Errors
    /// [`Error::Untrusted`] for a key or MAC that does not hold up (nothing
    /// changes); network and database errors.
    pub(super) async fn take_rotated_account_key(&mut self) -> Result<bool> {
        let account = self.authed(|c| async move { c.account().await }).await?;
        let key = self.check_server_account_key(&account)?;
        let taken = match key {
            Some(key) => {
                self.rekey_local(key).await?;
                tracing::info!(
                    version = account.account_key_version,
                    "took the account key rotated on another device"
                );
                true
            }
            None => false,
        };
        self.store.set_meta(ROTATING_KEY, None).await?;
        Ok(taken)
    }

    /// Whether a rotation of this device was interrupted before its local
    /// state was sealed anew.
    pub(super) async fn rotation_unfinished(&self) -> Result<bool> {
        Ok(self.store.meta(ROTATING_KEY).await?.is_some())
    }

    /// The server's account key when it is another (checked) one than this
    /// device's; `None` when it is the same.
    fn check_server_account_key(&self, account: &AccountResponse) -> Result<Option<Key>> {
        let h = &self.header;
        let lying = |what: &str| {
            Error::Untrusted(format!(
                "the server's account key does not hold up ({what}); nothing was taken"
            ))
        };
        let key = crypto::unwrap_key(
            &self.unlock_key,
            &Aad::account_key(h.account_id, &h.salt, &h.kdf),
            &account.wrapped_account_key.0,
        )
        .map_err(|_| lying("it does not open with this password and Secret Key"))?;
        if key.expose() == self.account_key.expose() {
            return Ok(None);
        }
        let private = crypto::open(
            &key,
            &Aad::account_private_keys(h.account_id),
            &account.wrapped_private_keys.0,
        )
        .map_err(|_| lying("the private keys do not open with it"))?;
        let pair = AccountKeyPair::from_private_bytes(&private)?;
        if pair.public() != self.keypair.public() {
            return Err(lying("its private keys are not this account's"));
        }
        let mac = account
            .password_mac
            .as_ref()
            .ok_or_else(|| lying("no MAC from the device that rotated it"))?;
        crypto::keys::verify_password_change_mac(
            &key,
            h.account_id,
            &h.kdf,
            &h.salt,
            &account.wrapped_account_key.0,
            &mac.0,
        )
        .map_err(|_| lying("its MAC does not verify"))?;
        Ok(Some(key))
    }

    /// Seals everything this device holds under `new` instead of the
    /// account key (vault keys, private keys, the header, every sealed
    /// `meta` value, activity and usage rows, sync-state MACs), in one
    /// transaction, then uses `new`.
    ///
    /// A value that does not open under the old key is left as it was (it
    /// was damaged before; it reads as damaged after).
    pub(super) async fn rekey_local(&mut self, new: Key) -> Result<()> {
        let a = self.header.account_id;
        let me = self.header.device_id;
        let old = self.account_key.duplicate();
        let new_state = crypto::keys::local_state_key(&new);
        let mut r = Rekey::default();
        for v in &self.vaults {
            r.vaults.push((
                v.id,
                crypto::wrap_key(&new, &Aad::vault_key(a, v.id), &v.key),
            ));
        }
        let reseal = |aad: &Aad, blob: &[u8]| {
            open_json::<serde_json::Value>(&old, aad, blob)
                .ok()
                .map(|v| seal_json(&new, aad, &v))
        };
        for (key, aad) in sealed_meta(a) {
            if let Some(blob) = self.store.meta(key).await?
                && let Some(sealed) = reseal(&aad, &blob)
            {
                r.meta.push((key.to_owned(), sealed));
            }
        }
        for v in &self.vaults {
            for (key, sealed) in self.store.activity(v.id).await? {
                let aad = super::activity::activity_aad(a, key);
                if let Some(s) = reseal(&aad, &sealed) {
                    r.activity.push((v.id, key, s));
                }
            }
        }
        let usage = self.store.usage_state().await?;
        for (seq, sealed) in &usage.events {
            if let Some(s) = reseal(&Aad::usage_event(a, me), sealed) {
                r.usage_events.push((*seq, s));
            }
        }
        for c in &usage.counters {
            if let Some(s) = reseal(&Aad::usage_counters(a, c.device_id), &c.sealed) {
                r.usage_counters.push((c.device_id, s));
            }
        }
        for (vault, fields, _) in self.store.sync_macs().await? {
            r.sync_macs
                .push((vault, state::seal_sync(&new_state, a, vault, &fields)));
        }
        let mut header = self.header.clone();
        header.wrapped_private_keys = crypto::seal(
            &new,
            &Aad::account_private_keys(a),
            &self.keypair.to_private_bytes(),
        );
        header.wrapped_account_key = state::local_wrap(&self.unlock_key, &header, &new);
        state::seal_header(&new_state, &mut header);
        let remote = match self.remote.clone() {
            Some(mut rec) => {
                rec.tokens = rec
                    .tokens
                    .and_then(|t| reseal(&aad_tokens(a), &t.0).map(wire::B64));
                if let Some(dk) = rec.device_key.take() {
                    rec.device_key =
                        open_json::<wire::B64>(&old, &Aad::remote_device_key(a, me), &dk.0)
                            .ok()
                            .map(|k| seal_device_key(&new, a, me, &k.0));
                }
                state::seal_remote(&new_state, &header, &mut rec);
                let json = serde_json::to_vec(&rec).map_err(|e| Error::Damaged(e.to_string()))?;
                r.meta.push((REMOTE_KEY.to_owned(), json));
                Some(rec)
            }
            None => None,
        };
        self.store.rekey(&self.header, &header, &r).await?;
        self.header = header;
        self.account_key = new;
        self.state_key = new_state;
        self.remote = remote;
        Ok(())
    }
}
