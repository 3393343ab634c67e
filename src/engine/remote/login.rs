//! Signing in on a new device, and adopting a master password changed on
//! another device.

use std::path::Path;

use openk_server::api::types::{self as wire, CreateVaultRequest, DeviceInfo, LoginRequest};
use uuid::Uuid;

use super::super::error::{Error, Result};
use super::super::model::now_millis;
use super::super::vault::own_copy_epoch;
use super::super::{Session, Vault, files, password_key, seal_json};
use super::*;
use crate::crypto::{self, Aad, AccountKeyPair, Key, SecretKey, SecretString};
use crate::store::{self, Header, Store, VaultRecord};
use crate::sync::{Client, SyncError};

/// Signs in on a new device: fetches the account from the server, checks
/// that the password and Secret Key unwrap its keys, and creates a local
/// vault in `dir` (which must not hold one) with the account's vault keys.
/// Items arrive with `openk sync`.
///
/// # Errors
/// Weak or absurd KDF parameters from the server, wrong password or Secret
/// Key (exit 3), a server whose answers do not fit together, server errors.
pub async fn login(
    dir: &Path,
    server: &str,
    email: &str,
    password: SecretString,
    secret_key: &str,
    allow_weak_kdf: bool,
    device_name: &str,
) -> Result<Session> {
    login_with(
        dir,
        server,
        email,
        password,
        secret_key,
        allow_weak_kdf,
        device_name,
        None,
    )
    .await
}

/// [`login`], naming the device approval (`openk login --approve`) that let
/// this device in, so that the server records which device approved it.
#[allow(clippy::too_many_arguments)]
pub(in crate::engine) async fn login_with(
    dir: &Path,
    server: &str,
    email: &str,
    password: SecretString,
    secret_key: &str,
    allow_weak_kdf: bool,
    device_name: &str,
    approval: Option<Uuid>,
) -> Result<Session> {
    if dir.exists() && super::super::vault_exists(dir).await? {
        return Err(Error::VaultExists(dir.to_path_buf()));
    }
    let device_name = check_device_name(device_name)?;
    let device_name = device_name.as_str();
    let secret_key = SecretKey::parse(secret_key)?;
    let client = Client::new(server).map_err(Error::from)?;
    let email = openk_server::email::normalize(email).map_err(|e| Error::Invalid(e.to_string()))?;
    let pre = client.prelogin(&email).await?;
    let kdf = kdf_from_wire(pre.kdf);
    check_offered_kdf(&kdf, allow_weak_kdf)?;
    let pk = password_key(password, pre.salt.0.clone(), kdf).await?;
    let derived = crypto::keys::derive(&pk, &secret_key, pre.account_id);
    let device_id = Uuid::now_v7();
    let device_key = new_device_key();
    let t = client
        .login(&LoginRequest {
            email: email.clone(),
            auth_key: wire::B64(derived.auth.expose().to_vec()),
            device: DeviceInfo {
                platform: Some(super::platform()),
                id: device_id,
                name: device_name.to_owned(),
            },
            device_proof: Some(wire::B64(device_key.to_vec())),
            approval,
        })
        .await
        .map_err(|e| match e {
            SyncError::BadCredentials => Error::WrongPassword,
            other => other.into(),
        })?;
    let authed = client.clone().with_token(Some(t.access_token.clone()));
    let account = authed.account().await?;
    let lying = |what: &str| {
        Error::Damaged(format!(
            "the server's answers do not fit together ({what}); nothing was saved"
        ))
    };
    if account.account_id != pre.account_id || t.account_id != pre.account_id {
        return Err(lying("account id"));
    }
    if kdf_from_wire(account.kdf) != kdf || account.salt.0 != pre.salt.0 {
        return Err(lying("key derivation settings"));
    }
    // The wrapped account key's associated data binds the id, salt and KDF
    // parameters: only the real account's key unwraps here.
    let account_key = crypto::unwrap_key(
        &derived.unlock,
        &Aad::account_key(account.account_id, &account.salt.0, &kdf),
        &account.wrapped_account_key.0,
    )
    .map_err(|_| lying("the account key does not decrypt with this password and Secret Key"))?;
    // After a password change the values carry the MAC of the device that
    // changed it; the registration values have none (the wrap above is
    // their proof).
    if let Some(mac) = &account.password_mac {
        crypto::keys::verify_password_change_mac(
            &account_key,
            account.account_id,
            &kdf,
            &account.salt.0,
            &account.wrapped_account_key.0,
            &mac.0,
        )
        .map_err(|_| lying("the password change is not authenticated by the account key"))?;
    }
    let private = crypto::open(
        &account_key,
        &Aad::account_private_keys(account.account_id),
        &account.wrapped_private_keys.0,
    )
    .map_err(|_| lying("the account's private keys do not decrypt"))?;
    let keypair = AccountKeyPair::from_private_bytes(&private)?;
    let public = keypair.public();
    if public.x25519.as_slice() != account.public_x25519.0
        || public.ed25519.as_slice() != account.public_ed25519.0
    {
        return Err(lying(
            "the published public keys do not match the private keys",
        ));
    }
    let mut vaults = Vec::new();
    let mut records = Vec::new();
    for v in authed.vaults().await? {
        let vault = Vault::unwrap(
            &account_key,
            account.account_id,
            v.id,
            &v.wrapped_key.0,
            &v.meta.0,
            own_copy_epoch(&v),
        )
        .map_err(|_| lying("a vault key does not decrypt"))?;
        records.push(VaultRecord {
            id: v.id,
            key_epoch: own_copy_epoch(&v),
            wrapped_key: v.wrapped_key.0,
            meta: v.meta.0,
            created_at: now_millis(),
        });
        vaults.push(vault);
    }
    let mut upload = None;
    if vaults.is_empty() {
        let (vault, record) =
            Vault::create(&account_key, account.account_id, "Personal", now_millis());
        upload = Some(CreateVaultRequest {
            id: record.id,
            wrapped_key: wire::B64(record.wrapped_key.clone()),
            meta: wire::B64(record.meta.clone()),
        });
        records.push(record);
        vaults.push(vault);
    }
    let header = Header {
        format: store::HEADER_FORMAT,
        account_id: account.account_id,
        device_id,
        salt: account.salt.0.clone(),
        kdf,
        wrapped_account_key: Vec::new(),
        public_x25519: account.public_x25519.0.clone(),
        public_ed25519: account.public_ed25519.0.clone(),
        wrapped_private_keys: account.wrapped_private_keys.0.clone(),
        created_at: now_millis(),
        mac: None,
    };
    let state_key = crypto::keys::local_state_key(&account_key);
    let mut header = header;
    // This device's header keeps its own form of the wrap (authenticated state).
    header.wrapped_account_key =
        super::super::state::local_wrap(&derived.unlock, &header, &account_key);
    super::super::state::seal_header(&state_key, &mut header);
    files::create_private_dir(dir)?;
    let created = async {
        files::write_secret_key(dir, &secret_key)?;
        let store = Store::open(dir, true).await?;
        let mut first = records.iter();
        if let Some(v) = first.next() {
            store.initialise(&header, v).await?;
        }
        for v in first {
            store.insert_vault(v).await?;
        }
        files::restrict_db_files(dir)?;
        Ok::<Store, Error>(store)
    }
    .await;
    let store = match created {
        Ok(s) => s,
        Err(e) => {
            files::remove_partial_vault(dir);
            return Err(e);
        }
    };
    let keys = super::super::SessionKeys {
        secret_key,
        account_key,
        derived,
        keypair,
    };
    let mut vault = Session::from_parts(dir, store, header, keys, vaults);
    vault
        .save_registration(client.base(), email, device_name, &device_key, &t)
        .await?;
    if let Some(req) = upload {
        authed.create_vault(&req).await?;
    }
    // An account registered before identities were signed publishes its
    // self-signature from its first device that logs in with this version.
    if let Err(e) = vault
        .publish_identity(account.identity_signature.as_ref())
        .await
    {
        tracing::warn!(error = %e, "the account's identity signature could not be published");
    }
    vault
        .record_security(
            crate::engine::security::SecurityKind::DeviceAdded,
            crate::engine::security::detail([("device", device_name), ("how", "login")]),
        )
        .await;
    tracing::info!(account = %vault.header.account_id, device = %device_id, "logged in as a new device");
    Ok(vault)
}

/// After `password` failed to open the vault in `dir`: if the vault is
/// registered with a server and the server's key derivation settings differ
/// from the local header, the password may be a new one set on another
/// device. Derives the keys with it and this vault's Secret Key, logs in
/// (the auth key proves the password), fetches the account and adopts its
/// new wrapped account key, salt and KDF parameters, but only when
///
/// - the KDF parameters are sane and not below the floor (unless allowed),
/// - the new wrap opens with the new password to this vault's own account
///   key (it opens the local private keys), and
/// - the change carries a valid MAC under that account key
///   (`crypto::keys::password_change_mac`): one of the account's devices
///   made it, not the server.
///
/// The new header and the new session are written in one transaction; items,
/// pending changes and sync state are untouched. Nothing is written on any
/// failure. Talks to the network only in this case (a vault without a
/// server, or whose server settings are unchanged, is a wrong password).
pub(in crate::engine) async fn adopt_password_change(
    dir: &Path,
    password: SecretString,
    secret_key_fallback: Option<&str>,
    options: super::super::UnlockOptions,
) -> Result<Session> {
    let store = Store::open(dir, false).await?;
    let adopted = adopt_into_store(&store, dir, password, secret_key_fallback, options).await;
    store.close().await;
    let password_key = adopted?;
    let mut vault = Session::open_with(
        dir,
        super::super::unlock::Unlocker::PasswordKey(&password_key),
        secret_key_fallback,
    )
    .await?;
    vault.adopted_password_change = true;
    tracing::info!(account = %vault.header.account_id, "adopted the master password changed on another device");
    Ok(vault)
}

/// The checks and the write of [`adopt_password_change`]; returns the new
/// password key.
async fn adopt_into_store(
    store: &Store,
    dir: &Path,
    password: SecretString,
    secret_key_fallback: Option<&str>,
    options: super::super::UnlockOptions,
) -> Result<Key> {
    let header = store
        .header()
        .await?
        .ok_or_else(|| Error::NoVault(dir.to_path_buf()))?;
    let Some(mut record) = load(store).await? else {
        return Err(Error::WrongPassword);
    };
    // Nothing authenticates the record yet (the password that would is not
    // this vault's): no request goes to its server unless the user named it.
    let confirmed = options
        .confirmed_server
        .as_deref()
        .and_then(|s| normalize_server_url(s).ok());
    if confirmed.as_deref() != Some(record.server.as_str()) {
        return Err(Error::WrongPasswordRegistered(record.server.clone()));
    }
    // The Secret Key may have changed with the password (a rotation on
    // another device, or one here that stopped half-way): the one typed for
    // this login first, then a pending one, then the file's.
    let file_key = files::read_secret_key(dir, None).ok();
    let mut candidates = Vec::new();
    if let Some(text) = secret_key_fallback {
        candidates.push(crate::crypto::SecretKey::parse(text.trim())?);
    }
    candidates.extend(files::read_next_secret_key(dir));
    candidates.extend(file_key);
    if candidates.is_empty() {
        files::read_secret_key(dir, None)?;
    }
    let client = Client::new(&record.server).map_err(Error::from)?;
    let pre = match client.prelogin(&record.email).await {
        Ok(pre) => pre,
        Err(e) => {
            // Cannot tell a new password from a wrong one: the local answer stands.
            tracing::warn!(error = %e, "wrong password here; the server could not be asked whether it changed");
            return Err(Error::WrongPassword);
        }
    };
    let kdf = kdf_from_wire(pre.kdf);
    if pre.account_id != header.account_id || (pre.salt.0 == header.salt && kdf == header.kdf) {
        // The server holds what this vault holds: simply a wrong password.
        return Err(Error::WrongPassword);
    }
    if kdf.validate().is_err() {
        return Err(Error::Untrusted(format!(
            "the server offers impossible key derivation parameters for a new master password \
             ({} KiB, {} iterations, {} lanes); refusing",
            kdf.memory_kib, kdf.iterations, kdf.parallelism
        )));
    }
    if let Err(why) = kdf.check_offered() {
        return Err(Error::Untrusted(format!(
            "the server says the master password was changed on another device, but offers key derivation \
             parameters above what a server may ask for: {why}; refusing (nothing was derived)"
        )));
    }
    if kdf.is_below_floor() && !options.allow_weak_kdf {
        return Err(Error::WeakKdfOffered(kdf));
    }
    let pk = password_key(password, pre.salt.0.clone(), kdf).await?;
    let mut found = None;
    for secret_key in candidates {
        let derived = crypto::keys::derive(&pk, &secret_key, header.account_id);
        let answer = client
            .login(&LoginRequest {
                email: record.email.clone(),
                auth_key: wire::B64(derived.auth.expose().to_vec()),
                device: DeviceInfo {
                    platform: Some(super::platform()),
                    id: header.device_id,
                    name: record.device_name.clone(),
                },
                // The device key opens only with the account key, which
                // this password does not open yet: an unknown-device attempt.
                device_proof: None,
                approval: None,
            })
            .await;
        match answer {
            Ok(t) => {
                found = Some((secret_key, derived, t));
                break;
            }
            Err(SyncError::BadCredentials) => {}
            Err(other) => return Err(other.into()),
        }
    }
    let (secret_key, derived, t) = found.ok_or(Error::WrongPassword)?;
    let account = client
        .clone()
        .with_token(Some(t.access_token.clone()))
        .account()
        .await?;
    let lying = |what: &str| {
        Error::Untrusted(format!(
            "the server's record of a password change does not hold up ({what})"
        ))
    };
    if account.account_id != header.account_id
        || t.account_id != header.account_id
        || t.device_id != header.device_id
    {
        return Err(lying("account or device id"));
    }
    if kdf_from_wire(account.kdf) != kdf || account.salt.0 != pre.salt.0 {
        return Err(lying(
            "its key derivation settings changed between two answers",
        ));
    }
    let account_key = crypto::unwrap_key(
        &derived.unlock,
        &Aad::account_key(header.account_id, &account.salt.0, &kdf),
        &account.wrapped_account_key.0,
    )
    .map_err(|_| {
        lying("the new wrapped account key does not open with this password and Secret Key")
    })?;
    // It must be this vault's account key, not one the server made up.
    crypto::open(
        &account_key,
        &Aad::account_private_keys(header.account_id),
        &header.wrapped_private_keys,
    )
    .map_err(|_| lying("the account key it wraps is not this vault's"))?;
    let Some(mac) = &account.password_mac else {
        return Err(lying(
            "it carries no MAC from the device that changed the password",
        ));
    };
    crypto::keys::verify_password_change_mac(
        &account_key,
        header.account_id,
        &kdf,
        &account.salt.0,
        &account.wrapped_account_key.0,
        &mac.0,
    )
    .map_err(|_| lying("its MAC does not verify under this account's key"))?;
    let state_key = crypto::keys::local_state_key(&account_key);
    let mut new_header = header.clone();
    new_header.salt = account.salt.0.clone();
    new_header.kdf = kdf;
    new_header.wrapped_account_key =
        super::super::state::local_wrap(&derived.unlock, &new_header, &account_key);
    super::super::state::seal_header(&state_key, &mut new_header);
    record.tokens = Some(wire::B64(seal_json(
        &account_key,
        &aad_tokens(header.account_id),
        &Tokens::from_response(&t),
    )));
    super::super::state::seal_remote(&state_key, &new_header, &mut record);
    let json = serde_json::to_vec(&record).map_err(|e| Error::Damaged(e.to_string()))?;
    // The header will be this Secret Key's: pending first (a crash before
    // the file is replaced finds it there), then the file.
    files::write_next_secret_key(dir, &secret_key)?;
    store
        .replace_header_and_meta(&header, &new_header, Some((REMOTE_KEY, &json)))
        .await?;
    files::promote_secret_key(dir, &secret_key)?;
    Ok(pk)
}
