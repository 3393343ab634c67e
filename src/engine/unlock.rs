//! Creating a vault and opening one: the password (or an agent's password
//! key) and the Secret Key, checked against the authenticated local state.

use std::path::Path;

use uuid::Uuid;

use super::error::{Error, Result};
use super::model::now_millis;
use super::{
    ExposeSecret, KdfParams, Loaded, SecretString, Session, SessionKeys, UnlockOptions, Vault,
    files, remote, state,
};
use crate::crypto::{self, Aad, AccountKeyPair, Key, SecretKey};
use crate::store::{self, Header, Store};

/// What opens a vault: the master password, or the password key an agent kept.
pub(super) enum Unlocker<'a> {
    Password(SecretString),
    PasswordKey(&'a Key),
}

pub(super) async fn password_key(
    password: SecretString,
    salt: Vec<u8>,
    kdf: KdfParams,
) -> Result<Key> {
    tokio::task::spawn_blocking(move || crypto::kdf::password_key(&password, &salt, &kdf))
        .await
        .map_err(|e| Error::Damaged(format!("key derivation stopped: {e}")))?
        .map_err(Error::from)
}

/// Opens the store of an existing vault after checking its permissions:
/// read-only when the directory or `vault.db` is not writable.
pub(super) async fn open_store(dir: &Path) -> Result<Store> {
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

    pub(super) async fn create(dir: &Path, password: SecretString, kdf: KdfParams) -> Result<Self> {
        let account_id = Uuid::now_v7();
        let salt = crypto::secret::random_array::<{ crypto::kdf::SALT_LEN }>().to_vec();
        let secret_key = SecretKey::generate();
        let pk = password_key(password, salt.clone(), kdf).await?;
        let derived = crypto::keys::derive(&pk, &secret_key, account_id);
        let account_key = Key::random();
        let keypair = AccountKeyPair::generate();
        let public = keypair.public();
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
        let (vault, record) = Vault::create(&account_key, account_id, "Personal", now);
        files::write_secret_key(dir, &secret_key)?;
        let store = Store::open(dir, true).await?;
        store.initialise(&header, &record).await?;
        files::restrict_db_files(dir)?;
        tracing::info!(account = %account_id, vault = %record.id, "created vault");
        let keys = SessionKeys {
            secret_key,
            account_key,
            derived,
            keypair,
        };
        let mut session = Self::from_parts(dir, store, header, keys, vec![vault]);
        session.loaded = Some(Loaded::empty());
        Ok(session)
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

    /// Takes a master password and Secret Key changed on another device
    /// (`openk key rotate --secret-key` there, or a recovery), with the
    /// password and the new Secret Key the user typed: the server's new
    /// wrapped account key must open with them and carry the MAC of one of
    /// the account's devices, as for [`Session::unlock_with`]'s adoption;
    /// the new Secret Key becomes this vault's file.
    ///
    /// # Errors
    /// As [`Session::unlock_with`]; [`Error::WrongPassword`] when neither
    /// the typed Secret Key nor this vault's opens the server's key.
    pub async fn take_changed_credentials(
        dir: &Path,
        password: SecretString,
        secret_key: &str,
        options: UnlockOptions,
    ) -> Result<Self> {
        remote::adopt_password_change(dir, password, Some(secret_key), options).await
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

    pub(super) async fn open_with(
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
        let mut secret_key_file = dir.join(files::SECRET_KEY_FILE).exists();
        let mut secret_key = files::read_secret_key(dir, secret_key_fallback)?;
        let pk = match unlocker {
            Unlocker::Password(password) => {
                password_key(password, header.salt.clone(), header.kdf).await?
            }
            Unlocker::PasswordKey(pk) => pk.duplicate(),
        };
        let mut derived = crypto::keys::derive(&pk, &secret_key, header.account_id);
        let mut opened = state::open_account_key(&derived.unlock, &header);
        // A Secret Key rotation that stopped after the header took the new
        // key: the pending key opens it, and becomes the file.
        if matches!(opened, Err(Error::WrongPassword))
            && let Some(next) = files::read_next_secret_key(dir)
        {
            let d = crypto::keys::derive(&pk, &next, header.account_id);
            if let Ok(o) = state::open_account_key(&d.unlock, &header) {
                if !store.is_read_only() {
                    files::promote_secret_key(dir, &next)?;
                }
                (secret_key, derived, opened, secret_key_file) = (next, d, Ok(o), true);
            }
        }
        let (account_key, legacy_wrap) = opened?;
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
        let keys = SessionKeys {
            secret_key,
            account_key,
            derived,
            keypair,
        };
        let mut session = Self::from_parts(dir, store, header, keys, vaults);
        session.remote = remote;
        Ok(session)
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
        self.record_security(
            super::security::SecurityKind::PasswordChanged,
            super::security::Detail::new(),
        )
        .await;
        tracing::info!(account = %self.header.account_id, "master password changed");
        Ok(())
    }
}
