//! Account recovery (issue 13): a recovery code (or K of N shares of it)
//! sets a new master password and Secret Key when both are lost.
//!
//! Setup (`openk recovery setup`, a device of the account): a fresh code
//! derives an X25519 key pair and an auth key (`crypto::recovery`);
//! the server gets the public key signed by the account's identity key,
//! the auth key (it keeps a salted hash) and the account key sealed to the
//! public key. Each account-key rotation seals the new key to that public
//! key too (`Session::seal_for_recovery`, in the rotation's transaction),
//! after checking the signature: a server that swaps in its own key is
//! refused, and the code stays good through rotations.
//!
//! Use (`openk recovery recover`, any machine): the code's auth key fetches
//! the sealed account key; the client opens it, checks it against the
//! account's private and public keys, and sets new credentials (a new
//! Secret Key, the account key wrapped under the new password's keys, with
//! the password-change MAC other devices check) in one server transaction
//! that ends every session and uses the code up. Then it signs in here as
//! a new device and rotates the account key, so that whoever saw the code
//! (or the old credentials) holds nothing current.

use std::path::Path;

use openk_server::api::types::{self as wire, PutRecoveryRequest, RecoveryCompleteRequest};
use uuid::Uuid;
use zeroize::Zeroizing;

use super::error::{Error, Result};
use super::remote::{check_offered_kdf, kdf_from_wire, login};
use super::security::{SecurityKind, detail};
use super::{Session, files, password_key};
use crate::crypto::recovery::{RecoveryKeys, key_message, seal_account_key};
use crate::crypto::{self, Aad, AccountKeyPair, Key, SecretKey, SecretString};
use crate::sync::{Client, SyncError};

pub use crate::crypto::recovery::RecoveryCode;

/// The account's recovery as its devices see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecoveryStatus {
    /// RFC 3339, from the server.
    pub created_at: String,
    /// The version of the account key sealed to the code.
    pub account_key_version: u32,
}

/// What [`recover`] leaves: a session on the recovered account and the new
/// Secret Key, for the new Emergency Kit.
pub struct Recovered {
    pub session: Session,
    pub secret_key: Zeroizing<String>,
}

impl std::fmt::Debug for Recovered {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Recovered(***)")
    }
}

impl Session {
    /// Sets up recovery (replacing an earlier code, which stops working)
    /// and returns the new code, to be shown once.
    ///
    /// # Errors
    /// [`Error::NotConnected`] for a vault not on a server; the account key
    /// rotated meanwhile (sync and retry); network errors.
    pub async fn setup_recovery(&mut self) -> Result<RecoveryCode> {
        self.remote_or_err()?;
        // The server wants a recent login for this.
        self.relogin().await?;
        let account = self.authed(|c| async move { c.account().await }).await?;
        let a = self.header.account_id;
        let code = RecoveryCode::generate();
        let keys = code.keys();
        let req = PutRecoveryRequest {
            public_key: wire::B64(keys.public.to_vec()),
            signature: wire::B64(self.keypair.sign(&key_message(a, &keys.public)).to_vec()),
            auth_key: wire::B64(keys.auth.expose().to_vec()),
            sealed_account_key: wire::B64(seal_account_key(
                &keys.public,
                a,
                account.account_key_version,
                &self.account_key,
            )?),
            account_key_version: account.account_key_version,
        };
        self.authed(|c| {
            let req = req.clone();
            async move { c.put_recovery(&req).await }
        })
        .await?;
        tracing::info!("set up account recovery");
        let d = detail([(
            "account_key_version",
            &account.account_key_version.to_string(),
        )]);
        self.record_security(SecurityKind::RecoverySetup, d).await;
        Ok(code)
    }

    /// The account's recovery, or `None` when none is set up.
    ///
    /// # Errors
    /// [`Error::Untrusted`] when the server's recovery key is not signed by
    /// this account; network errors.
    pub async fn recovery_status(&mut self) -> Result<Option<RecoveryStatus>> {
        self.remote_or_err()?;
        let Some(r) = self.authed(|c| async move { c.recovery().await }).await? else {
            return Ok(None);
        };
        self.check_recovery_key(&r)?;
        Ok(Some(RecoveryStatus {
            created_at: r.created_at,
            account_key_version: r.account_key_version,
        }))
    }

    /// Checks that `code` is the account's recovery code now. Changes nothing.
    ///
    /// # Errors
    /// [`Error::WrongRecoveryCode`] for another code (or none set up);
    /// network errors.
    pub async fn verify_recovery_code(&mut self, code: &RecoveryCode) -> Result<RecoveryStatus> {
        self.remote_or_err()?;
        let Some(r) = self.authed(|c| async move { c.recovery().await }).await? else {
            return Err(Error::WrongRecoveryCode);
        };
        let public = self.check_recovery_key(&r)?;
        if public != code.keys().public {
            return Err(Error::WrongRecoveryCode);
        }
        Ok(RecoveryStatus {
            created_at: r.created_at,
            account_key_version: r.account_key_version,
        })
    }

    /// Removes the account's recovery (its code stops working); whether
    /// there was one.
    ///
    /// # Errors
    /// Network errors.
    pub async fn remove_recovery(&mut self) -> Result<bool> {
        self.remote_or_err()?;
        let removed = self
            .authed(|c| async move { c.delete_recovery().await })
            .await?;
        if removed {
            tracing::info!("removed account recovery");
        }
        Ok(removed)
    }

    /// For an account-key rotation to `version`: the new key sealed to the
    /// account's recovery key, when recovery is set up.
    ///
    /// # Errors
    /// [`Error::Untrusted`] when the server's recovery key is not signed by
    /// this account (the rotation then stops: nothing is sealed to a key
    /// the server chose); network errors.
    pub(super) async fn seal_for_recovery(
        &mut self,
        new: &Key,
        version: u32,
    ) -> Result<Option<wire::B64>> {
        let Some(r) = self.authed(|c| async move { c.recovery().await }).await? else {
            return Ok(None);
        };
        let public = self.check_recovery_key(&r)?;
        Ok(Some(wire::B64(seal_account_key(
            &public,
            self.header.account_id,
            version,
            new,
        )?)))
    }

    /// The server's recovery public key, once its signature by this
    /// account's identity key holds.
    fn check_recovery_key(&self, r: &wire::RecoveryResponse) -> Result<[u8; 32]> {
        let own = self.keypair.public();
        crypto::keys::verify_signature(
            &own.ed25519,
            &key_message(self.header.account_id, &r.public_key.0),
            &r.signature.0,
        )
        .map_err(|_| {
            Error::Untrusted(
                "the server's account recovery key is not signed by this account; nothing was \
                 sealed to it (set recovery up again with `openk recovery setup`)"
                    .into(),
            )
        })?;
        r.public_key
            .0
            .as_slice()
            .try_into()
            .map_err(|_| Error::Untrusted("the server's recovery key is malformed".into()))
    }
}

/// What the server hands the holder of the recovery code whose `keys`
/// these are, for `email`, opened and checked: the account id and key.
async fn open_recovery(
    client: &Client,
    email: &str,
    keys: &RecoveryKeys,
) -> Result<(Uuid, Key, wire::KdfParams)> {
    let start = client
        .recovery_start(&wire::RecoveryStartRequest {
            email: email.to_owned(),
            auth_key: wire::B64(keys.auth.expose().to_vec()),
        })
        .await
        .map_err(|e| match e {
            SyncError::BadCredentials => Error::WrongRecoveryCode,
            other => other.into(),
        })?;
    let lying = |what: &str| {
        Error::Damaged(format!(
            "the server's answers do not fit together ({what}); nothing was changed"
        ))
    };
    let a = start.account_id;
    let account_key = keys
        .open_account_key(a, start.account_key_version, &start.sealed_account_key.0)
        .map_err(|_| lying("the account key sealed to the recovery code does not open"))?;
    let private = crypto::open(
        &account_key,
        &Aad::account_private_keys(a),
        &start.wrapped_private_keys.0,
    )
    .map_err(|_| lying("the account's private keys do not decrypt with the recovered key"))?;
    let public = AccountKeyPair::from_private_bytes(&private)?.public();
    if public.x25519.as_slice() != start.public_x25519.0
        || public.ed25519.as_slice() != start.public_ed25519.0
    {
        return Err(lying("the public keys do not match the private keys"));
    }
    Ok((a, account_key, start.kdf))
}

/// Checks a recovery code against the account on `server` without a
/// vault here: the server hands out what the code opens, and it opens.
/// Changes nothing (the attempt counts toward the login rate limits).
///
/// # Errors
/// [`Error::WrongRecoveryCode`]; a server whose answers do not hold up;
/// network errors.
pub async fn verify_recovery_on_server(
    server: &str,
    email: &str,
    code: &RecoveryCode,
) -> Result<()> {
    let client = Client::new(server).map_err(Error::from)?;
    let email = openk_server::email::normalize(email).map_err(|e| Error::Invalid(e.to_string()))?;
    open_recovery(&client, &email, &code.keys())
        .await
        .map(|_| ())
}

/// Recovers the account of `email` on `server` with its recovery code:
/// sets `new_password` and a new Secret Key (every session ends, the code
/// is used up), signs in as a new device in `dir` (which must not hold a
/// vault), and rotates the account key.
///
/// The new Secret Key is written to `dir` before the server is told, so
/// that no crash loses it.
///
/// # Errors
/// [`Error::VaultExists`]; [`Error::WrongRecoveryCode`]; weak KDF
/// parameters from the server; a server whose answers do not hold up;
/// network errors.
pub async fn recover(
    dir: &Path,
    server: &str,
    email: &str,
    code: &RecoveryCode,
    new_password: SecretString,
    allow_weak_kdf: bool,
    device_name: &str,
) -> Result<Recovered> {
    check_new_home(dir, device_name).await?;
    let client = Client::new(server).map_err(Error::from)?;
    let email = openk_server::email::normalize(email).map_err(|e| Error::Invalid(e.to_string()))?;
    let keys = code.keys();
    let (a, account_key, wire_kdf) = open_recovery(&client, &email, &keys).await?;
    let (secret_key, creds) = new_credentials(
        dir,
        a,
        &account_key,
        wire_kdf,
        new_password.clone(),
        allow_weak_kdf,
    )
    .await?;
    client
        .recovery_complete(&RecoveryCompleteRequest {
            email: email.clone(),
            recovery_auth_key: wire::B64(keys.auth.expose().to_vec()),
            kdf: creds.kdf,
            salt: creds.salt,
            auth_key: creds.auth_key,
            wrapped_account_key: creds.wrapped_account_key,
            mac: creds.mac,
        })
        .await
        .map_err(|e| match e {
            SyncError::BadCredentials => Error::WrongRecoveryCode,
            other => other.into(),
        })?;
    tracing::info!(account = %a, "recovered the account: new credentials set");
    let mut recovered = sign_in_and_rotate(
        dir,
        server,
        &email,
        new_password,
        &secret_key,
        allow_weak_kdf,
        device_name,
    )
    .await?;
    recovered
        .session
        .record_security(
            SecurityKind::RecoveryUsed,
            detail([("device", device_name)]),
        )
        .await;
    Ok(recovered)
}

/// Refuses a directory that holds a vault, or a bad device name, before
/// anything is asked of a server (a recovery or a takeover).
///
/// # Errors
/// [`Error::VaultExists`]; [`Error::BadDeviceName`].
pub(super) async fn check_new_home(dir: &Path, device_name: &str) -> Result<()> {
    if dir.exists() && super::vault_exists(dir).await? {
        return Err(Error::VaultExists(dir.to_path_buf()));
    }
    super::remote::check_device_name(device_name)?;
    Ok(())
}

/// New credentials for the account `a` whose key is `account_key` (a
/// recovery or an emergency takeover): a new Secret Key, written to `dir`
/// before the server is told (so that no crash loses it), and the values
/// of a password change (the account key wrapped under the new keys, with
/// the MAC other devices check).
///
/// # Errors
/// KDF parameters below the floor (unless allowed) or absurd; I/O errors.
pub(super) async fn new_credentials(
    dir: &Path,
    a: Uuid,
    account_key: &Key,
    wire_kdf: wire::KdfParams,
    new_password: SecretString,
    allow_weak_kdf: bool,
) -> Result<(SecretKey, wire::ChangePasswordRequest)> {
    let kdf = kdf_from_wire(wire_kdf);
    check_offered_kdf(&kdf, allow_weak_kdf)?;
    let secret_key = SecretKey::generate();
    let salt = crypto::secret::random_array::<{ crypto::kdf::SALT_LEN }>().to_vec();
    let pk = password_key(new_password, salt.clone(), kdf).await?;
    let derived = crypto::keys::derive(&pk, &secret_key, a);
    let wrapped = crypto::wrap_key(
        &derived.unlock,
        &Aad::account_key(a, &salt, &kdf),
        account_key,
    );
    let mac = crypto::keys::password_change_mac(account_key, a, &kdf, &salt, &wrapped)?;
    files::create_private_dir(dir)?;
    files::write_next_secret_key(dir, &secret_key)?;
    Ok((
        secret_key,
        wire::ChangePasswordRequest {
            kdf: wire_kdf,
            salt: wire::B64(salt),
            auth_key: wire::B64(derived.auth.expose().to_vec()),
            wrapped_account_key: wire::B64(wrapped),
            mac: wire::B64(mac.to_vec()),
        },
    ))
}

/// Once the server took [`new_credentials`]: signs in to `email` as a new
/// device in `dir` and rotates the account key, so that whoever held the
/// old credentials (or the code, or the grant) holds nothing current.
///
/// # Errors
/// Login and rotation errors.
pub(super) async fn sign_in_and_rotate(
    dir: &Path,
    server: &str,
    email: &str,
    new_password: SecretString,
    secret_key: &SecretKey,
    allow_weak_kdf: bool,
    device_name: &str,
) -> Result<Recovered> {
    let display = secret_key.display();
    let mut session = login(
        dir,
        server,
        email,
        new_password,
        &display,
        allow_weak_kdf,
        device_name,
    )
    .await?;
    files::promote_secret_key(dir, secret_key)?;
    session.rotate_account_key().await?;
    Ok(Recovered {
        session,
        secret_key: display,
    })
}
