//! The account on a server: register a local vault, log in on a new device,
//! log out, devices, audit. Only wrapped keys, the auth key and ciphertext
//! leave this machine; tokens are kept sealed with the account key.

use std::future::Future;
use std::path::Path;
use std::sync::Arc;

use openk_server::api::types::{
    self as wire, AuditEvent, ChangePasswordRequest, CreateVaultRequest, DeviceInfo,
    DeviceResponse, LoginRequest, RegisterRequest, TokenResponse,
};
use serde::{Deserialize, Serialize};
use uuid::Uuid;
use zeroize::Zeroizing;

use super::error::{Error, Result};
use super::model::now_millis;
use super::{Session, Vault, files, open_json, password_key, seal_json};
use crate::crypto::{self, Aad, AccountKeyPair, KdfParams, Key, SecretKey, SecretString};
use crate::store::{self, Header, Store, VaultRecord};
use crate::sync::{Client, SyncError};

pub use openk_server::api::types::{AuditEvent as Event, DeviceResponse as Device};

/// Normalises a server URL as stored (scheme required, no trailing slash).
///
/// # Errors
/// A URL that is not http(s), with a message saying so.
pub fn normalize_server_url(url: &str) -> Result<String> {
    crate::sync::client::normalize_url(url).map_err(Error::Invalid)
}

/// `meta` key of the remote record.
const REMOTE_KEY: &str = "remote";

impl From<SyncError> for Error {
    fn from(e: SyncError) -> Self {
        match e {
            SyncError::Unreachable { .. } => Self::Unreachable(e.to_string()),
            SyncError::NotAnswering { .. } => Self::NotAnswering(e.to_string()),
            SyncError::Tls(m) => Self::Tls(m),
            SyncError::Unauthorized => Self::SessionEnded,
            SyncError::BadCredentials => Self::Session(e.to_string()),
            SyncError::NotFound => Self::NotFound("that on the server".into()),
            SyncError::Conflict(m) => Self::Invalid(format!("the server refused: {m}")),
            SyncError::HeadMoved => Self::HeadMoved,
            SyncError::PlainHttp { host } => Self::PlainHttp { host },
            SyncError::Setup(m) => Self::Invalid(m),
            other => Self::Remote(other),
        }
    }
}

/// Where this vault syncs, stored in the local `meta` table. The tokens are
/// sealed with the account key.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RemoteRecord {
    pub server: String,
    pub email: String,
    pub device_name: String,
    pub registered_at: i64,
    /// The sealed session tokens (access and refresh), absent after logout.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tokens: Option<wire::B64>,
    /// This device's key, sealed with the account key: 32 random bytes sent
    /// as `device_proof` at login so that this device's logins count in its
    /// own rate-limit bucket on the server (docs/security.md). Absent in
    /// vaults registered before it existed (made at the next login).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device_key: Option<wire::B64>,
    /// The MAC over the fields above (`engine::state`); absent only in a
    /// vault made before local state was authenticated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mac: Option<wire::B64>,
}

/// A new device key (see [`RemoteRecord::device_key`]).
fn new_device_key() -> Zeroizing<Vec<u8>> {
    use rand::RngCore;
    let mut k = Zeroizing::new(vec![0u8; 32]);
    rand::rngs::OsRng.fill_bytes(&mut k);
    k
}

fn seal_device_key(key: &Key, account_id: Uuid, device_id: Uuid, device_key: &[u8]) -> wire::B64 {
    wire::B64(seal_json(
        key,
        &Aad::remote_device_key(account_id, device_id),
        &wire::B64(device_key.to_vec()),
    ))
}

#[derive(Serialize, Deserialize)]
pub(super) struct Tokens {
    access: Zeroizing<String>,
    access_expires_at: i64,
    refresh: Zeroizing<String>,
    refresh_expires_at: i64,
}

impl Tokens {
    fn from_response(t: &TokenResponse) -> Self {
        let now = now_millis();
        let ms = |secs: u64| i64::try_from(secs.saturating_mul(1000)).unwrap_or(i64::MAX);
        Self {
            access: Zeroizing::new(t.access_token.clone()),
            access_expires_at: now.saturating_add(ms(t.access_expires_in)),
            refresh: Zeroizing::new(t.refresh_token.clone()),
            refresh_expires_at: now.saturating_add(ms(t.refresh_expires_in)),
        }
    }
}

/// What `openk status` shows about the server side.
#[derive(Debug, Clone, Serialize)]
pub struct RemoteStatus {
    pub server: String,
    pub email: String,
    pub device_name: String,
    /// `active`, `expired` (the next sync renews it), `rejected` (the
    /// server refused the access token: the next sync renews the session or
    /// says it ended) or `logged out`. As this device last knew it unless
    /// `confirmed`.
    pub session: String,
    /// The server answered within the time `status` gives it.
    pub reachable: bool,
    /// `session` is certain: the server confirmed it just now, or this
    /// device is logged out.
    pub confirmed: bool,
    /// `answering`, `not answering` (no answer in time), `unreachable`
    /// (refused, unknown host…), `tls error` or `error`.
    pub state: String,
    /// What went wrong, if anything (a front end words it: the CLI adds
    /// it to `status --json` as `problem`).
    #[serde(skip)]
    pub problem: Option<Arc<Error>>,
}

impl RemoteStatus {
    fn failed(&mut self, e: Error) {
        self.state = match e {
            Error::NotAnswering(_) => "not answering",
            Error::Unreachable(_) => "unreachable",
            Error::Tls(_) => "tls error",
            _ => "error",
        }
        .into();
        self.problem = Some(Arc::new(e));
    }
}

/// What `status` needs to tell a password changed on another device.
struct HeaderKdf {
    account_id: Uuid,
    salt: Vec<u8>,
    kdf: KdfParams,
}

impl HeaderKdf {
    /// The server's settings for this account differ from this vault's: the
    /// master password was changed on another device.
    fn changed_by(&self, pre: &wire::PreloginResponse) -> bool {
        pre.account_id == self.account_id
            && (pre.salt.0 != self.salt || kdf_from_wire(pre.kdf) != self.kdf)
    }
}

pub(super) async fn load(store: &Store) -> Result<Option<RemoteRecord>> {
    match store.meta(REMOTE_KEY).await? {
        None => Ok(None),
        Some(bytes) => serde_json::from_slice(&bytes).map(Some).map_err(|e| {
            Error::Damaged(format!(
                "the server settings of this vault do not parse ({e})"
            ))
        }),
    }
}

fn aad_tokens(account_id: Uuid) -> Aad {
    Aad::remote_tokens(account_id)
}

fn kdf_from_wire(k: wire::KdfParams) -> KdfParams {
    KdfParams {
        memory_kib: k.memory_kib,
        iterations: k.iterations,
        parallelism: k.parallelism,
    }
}

fn kdf_to_wire(k: KdfParams) -> wire::KdfParams {
    wire::KdfParams {
        memory_kib: k.memory_kib,
        iterations: k.iterations,
        parallelism: k.parallelism,
    }
}

/// Refuses KDF parameters a server offers that are weaker than the floor
/// (unless allowed) or absurd (always): a malicious server must not be able
/// to downgrade the derivation or hang the client.
///
/// # Errors
/// [`Error::Invalid`] saying what was offered.
pub fn check_offered_kdf(kdf: &KdfParams, allow_weak: bool) -> Result<()> {
    if kdf.validate().is_ok()
        && let Err(why) = kdf.check_offered()
    {
        return Err(Error::Untrusted(format!(
            "the server offers key derivation parameters above what a server may ask for: {why}; refusing \
             (nothing was derived). A server that asks for more may be trying to stall or exhaust this machine"
        )));
    }
    if kdf.validate().is_err() {
        return Err(Error::Invalid(format!(
            "the server offers impossible key derivation parameters ({} KiB, {} iterations, {} lanes); refusing",
            kdf.memory_kib, kdf.iterations, kdf.parallelism
        )));
    }
    if kdf.is_below_floor() && !allow_weak {
        return Err(Error::KdfBelowFloor(*kdf));
    }
    Ok(())
}

/// Allows (or forbids again) plain `http://` to servers that are not on a
/// loopback address, for every client this process builds
/// (`--insecure-http`, `insecure_http = true`).
pub fn allow_insecure_http(allow: bool) {
    crate::sync::client::allow_insecure_http(allow);
}

/// The longest device name (the server's limit too).
pub const MAX_DEVICE_NAME: usize = 100;

/// Checks a device name the user typed (or the host name) before it is sent
/// or saved: 1 to [`MAX_DEVICE_NAME`] characters after trimming, none of them a
/// control character or a bidi override. The name saved locally is this
/// one, never the server's echo of it.
///
/// # Errors
/// [`Error::BadDeviceName`] saying what is wrong.
pub fn check_device_name(name: &str) -> Result<String> {
    let n = name.trim();
    if n.is_empty() || n.chars().count() > MAX_DEVICE_NAME {
        return Err(Error::BadDeviceName {
            why: format!("be 1 to {MAX_DEVICE_NAME} characters"),
        });
    }
    if n.chars().any(crate::text::is_unsafe) {
        return Err(Error::BadDeviceName {
            why: "not contain control characters or bidi overrides".into(),
        });
    }
    Ok(n.to_owned())
}

/// This machine's name and a random suffix (`vm-3f2a`), for the device list.
#[must_use]
pub fn default_device_name() -> String {
    let uname = rustix::system::uname();
    let host = uname.nodename().to_string_lossy().into_owned();
    // A short random suffix: several vaults on one machine are several
    // devices, and `device revoke NAME` must tell them apart.
    let suffix: String = crate::crypto::secret::random_array::<2>()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    if host.is_empty() {
        format!("openk-{suffix}")
    } else {
        format!("{host}-{suffix}")
    }
}

impl Session {
    /// The server this vault is registered with.
    #[must_use]
    pub fn remote(&self) -> Option<&RemoteRecord> {
        self.remote.as_ref()
    }

    pub(super) fn remote_or_err(&self) -> Result<&RemoteRecord> {
        self.remote.as_ref().ok_or(Error::NotConnected)
    }

    async fn save_remote(&mut self, mut record: RemoteRecord) -> Result<()> {
        super::state::seal_remote(&self.state_key, &self.header, &mut record);
        let json = serde_json::to_vec(&record).map_err(|e| Error::Damaged(e.to_string()))?;
        self.store.set_meta(REMOTE_KEY, Some(&json)).await?;
        self.remote = Some(record);
        Ok(())
    }

    /// Test helper: points the (authenticated) remote record at `url`, as
    /// if the server had moved there.
    #[cfg(test)]
    pub(crate) async fn move_server_for_test(&mut self, url: &str) -> Result<()> {
        let mut record = self.remote_or_err()?.clone();
        record.server = url.to_owned();
        self.save_remote(record).await
    }

    async fn save_tokens(&mut self, tokens: Option<&Tokens>) -> Result<()> {
        let mut record = self.remote_or_err()?.clone();
        record.tokens = tokens.map(|t| {
            wire::B64(seal_json(
                &self.account_key,
                &aad_tokens(self.header.account_id),
                t,
            ))
        });
        self.save_remote(record).await
    }

    /// This device's key, when the vault has one that opens.
    fn device_key(&self) -> Option<Zeroizing<Vec<u8>>> {
        let sealed = self.remote.as_ref()?.device_key.as_ref()?;
        let aad = Aad::remote_device_key(self.header.account_id, self.header.device_id);
        match open_json::<wire::B64>(&self.account_key, &aad, &sealed.0) {
            Ok(k) if k.0.len() == 32 => Some(Zeroizing::new(k.0)),
            _ => {
                tracing::warn!("the stored device key does not open; making a new one");
                None
            }
        }
    }

    pub(super) fn tokens(&self) -> Result<Tokens> {
        let sealed = self
            .remote_or_err()?
            .tokens
            .as_ref()
            .ok_or(Error::LoggedOut)?;
        open_json(
            &self.account_key,
            &aad_tokens(self.header.account_id),
            &sealed.0,
        )
        .map_err(|why| Error::SessionUnreadable { why })
    }

    fn client(&self) -> Result<Client> {
        Ok(Client::new(&self.remote_or_err()?.server)
            .map_err(Error::from)?
            .with_deadline(self.deadline))
    }

    /// Renews the tokens with the refresh token.
    ///
    /// The server rotates the refresh token on every use and ends the
    /// session when a used one comes back, so once it has answered, the new
    /// tokens must be stored even if the caller is cancelled meanwhile (Esc
    /// on a TUI sync aborts its task at any await): the request and the
    /// save run in a task of their own that finishes regardless.
    async fn refresh(&mut self) -> Result<Client> {
        let tokens = self.tokens()?;
        let client = self.client()?;
        let store = self.store.clone();
        let mut record = self.remote_or_err()?.clone();
        let key = self.account_key.duplicate();
        let state_key = self.state_key.duplicate();
        let header = self.header.clone();
        let account = self.header.account_id;
        let caller = client.clone();
        // `None`: the server refused the refresh token (the session ended).
        let renewed = tokio::spawn(async move {
            let t = match caller.refresh(&tokens.refresh).await {
                Ok(t) => t,
                Err(SyncError::Unauthorized) => return Err(None),
                Err(e) => return Err(Some(Error::from(e))),
            };
            let fresh = Tokens::from_response(&t);
            record.tokens = Some(wire::B64(seal_json(&key, &aad_tokens(account), &fresh)));
            super::state::seal_remote(&state_key, &header, &mut record);
            let json =
                serde_json::to_vec(&record).map_err(|e| Some(Error::Damaged(e.to_string())))?;
            store
                .set_meta(REMOTE_KEY, Some(&json))
                .await
                .map_err(|e| Some(Error::from(e)))?;
            Ok((fresh, record))
        })
        .await
        .map_err(|e| Error::Damaged(format!("the session renewal stopped: {e}")))?;
        match renewed {
            Ok((fresh, record)) => {
                self.remote = Some(record);
                Ok(client.with_token(Some(fresh.access.to_string())))
            }
            Err(None) => {
                self.save_tokens(None).await?;
                Err(self.session_ended(SyncError::Unauthorized.into()).await)
            }
            Err(Some(e)) => Err(e),
        }
    }

    /// Whether the server's key derivation settings for this account differ
    /// from this vault's header, i.e. the master password was changed on
    /// another device. False when the server cannot be asked.
    async fn password_changed_on_server(&self) -> bool {
        let (Ok(record), Ok(client)) = (self.remote_or_err(), self.client()) else {
            return false;
        };
        match client.prelogin(&record.email).await {
            Ok(pre) => {
                pre.account_id == self.header.account_id
                    && (pre.salt.0 != self.header.salt || kdf_from_wire(pre.kdf) != self.header.kdf)
            }
            Err(e) => {
                tracing::debug!(error = %e, "prelogin after a session error failed");
                false
            }
        }
    }

    /// The error to report when this device has no live session: `e`, or
    /// [`Error::PasswordChanged`] when the password change on another device
    /// is what ended it.
    pub(super) async fn session_ended(&self, e: Error) -> Error {
        if self.password_changed_on_server().await {
            Error::PasswordChanged
        } else {
            e
        }
    }

    /// The stored tokens; without any (logged out, or a session the server
    /// ended), says whether a password change elsewhere is the reason.
    pub(super) async fn live_tokens(&self) -> Result<Tokens> {
        match self.tokens() {
            Err(e) if e.is_session_over() => Err(self.session_ended(e).await),
            other => other,
        }
    }

    /// Runs an authenticated call, refreshing the session once if the server
    /// says the access token is no longer good.
    pub(super) async fn authed<T, F, Fut>(&mut self, call: F) -> Result<T>
    where
        F: Fn(Client) -> Fut,
        Fut: Future<Output = std::result::Result<T, SyncError>>,
    {
        let tokens = self.live_tokens().await?;
        let client = if tokens.access_expires_at <= now_millis() + 5_000 {
            self.refresh().await?
        } else {
            self.client()?.with_token(Some(tokens.access.to_string()))
        };
        match call(client).await {
            Err(SyncError::Unauthorized) => {
                let client = self.refresh().await?;
                Ok(call(client).await?)
            }
            other => Ok(other?),
        }
    }

    /// Uploads this account to a server (keys stay wrapped; the server gets
    /// the auth key, never the password or the Secret Key) and its vaults.
    ///
    /// # Errors
    /// Already registered, server unreachable (exit 7), email taken.
    pub async fn register(&mut self, server: &str, email: &str, device_name: &str) -> Result<()> {
        self.register_invited(server, email, device_name, None)
            .await
    }

    /// [`Session::register`] with a one-time invite code, for a server whose
    /// registration is invite-only.
    ///
    /// # Errors
    /// As [`Session::register`]; an email the server's rule refuses (exit 2);
    /// a missing, unknown or used invite code (the server says which).
    pub async fn register_invited(
        &mut self,
        server: &str,
        email: &str,
        device_name: &str,
        invite: Option<&secrecy::SecretString>,
    ) -> Result<()> {
        use secrecy::ExposeSecret as _;
        // The one email rule, shared with the server (openk_server::email).
        let email =
            openk_server::email::normalize(email).map_err(|e| Error::Invalid(e.to_string()))?;
        let device_name = check_device_name(device_name)?;
        let device_name = device_name.as_str();
        if let Some(r) = &self.remote {
            return Err(Error::Invalid(format!(
                "this vault is already registered with {} as {}",
                r.server, r.email
            )));
        }
        let client = Client::new(server).map_err(Error::from)?;
        let device_key = new_device_key();
        let h = &self.header;
        let public = self.keypair.public();
        let t = client
            .register(&RegisterRequest {
                account_id: h.account_id,
                email: email.clone(),
                kdf: kdf_to_wire(h.kdf),
                salt: wire::B64(h.salt.clone()),
                auth_key: wire::B64(self.auth_key.expose().to_vec()),
                // The server's form of the wrap, made afresh (the header keeps its own).
                wrapped_account_key: wire::B64(super::state::server_wrap(
                    &self.unlock_key,
                    h,
                    &self.account_key,
                )),
                // Derived from the private keys, never read from a plain column.
                public_x25519: wire::B64(public.x25519.to_vec()),
                public_ed25519: wire::B64(public.ed25519.to_vec()),
                wrapped_private_keys: wire::B64(h.wrapped_private_keys.clone()),
                device: DeviceInfo {
                    id: h.device_id,
                    name: device_name.to_owned(),
                },
                invite: invite.map(|c| c.expose_secret().trim().to_owned()),
                device_proof: Some(wire::B64(device_key.to_vec())),
            })
            .await?;
        self.save_remote(RemoteRecord {
            server: client.base().to_owned(),
            email,
            device_name: device_name.to_owned(),
            registered_at: now_millis(),
            tokens: None,
            device_key: Some(seal_device_key(
                &self.account_key,
                self.header.account_id,
                self.header.device_id,
                &device_key,
            )),
            mac: None,
        })
        .await?;
        self.save_tokens(Some(&Tokens::from_response(&t))).await?;
        self.upload_vaults().await?;
        tracing::info!(account = %self.header.account_id, "registered with server");
        Ok(())
    }

    /// Creates on the server every local vault it does not have yet.
    async fn upload_vaults(&mut self) -> Result<()> {
        let records = self.store.vaults().await?;
        let on_server: Vec<Uuid> = self
            .authed(|c| async move { c.vaults().await })
            .await?
            .iter()
            .map(|v| v.id)
            .collect();
        for v in records.into_iter().filter(|v| !on_server.contains(&v.id)) {
            let req = CreateVaultRequest {
                id: v.id,
                wrapped_key: wire::B64(v.wrapped_key),
                meta: wire::B64(v.meta),
            };
            self.authed(|c| {
                let req = req.clone();
                async move { c.create_vault(&req).await }
            })
            .await?;
        }
        Ok(())
    }

    /// Logs in again on this device (after `logout`), proving the password
    /// and Secret Key this vault was unlocked with.
    ///
    /// # Errors
    /// Not registered, unreachable, rate limited, or the account changed.
    pub async fn relogin(&mut self) -> Result<()> {
        let record = self.remote_or_err()?.clone();
        let client = self.client()?;
        let pre = client.prelogin(&record.email).await?;
        if pre.account_id == self.header.account_id
            && (kdf_from_wire(pre.kdf) != self.header.kdf || pre.salt.0 != self.header.salt)
        {
            // This vault opened with the old password (a new one would have
            // been adopted at unlock).
            return Err(Error::PasswordChanged);
        }
        let stored = self.device_key();
        let device_key = stored.clone().unwrap_or_else(new_device_key);
        let t = client
            .login(&LoginRequest {
                email: record.email.clone(),
                auth_key: wire::B64(self.auth_key.expose().to_vec()),
                device: DeviceInfo {
                    id: self.header.device_id,
                    // A name an older version saved from a server's echo
                    // may not pass the check: this machine's name instead.
                    name: check_device_name(&record.device_name)
                        .or_else(|_| check_device_name(&default_device_name()))
                        .unwrap_or_else(|_| "openk device".to_owned()),
                },
                device_proof: Some(wire::B64(device_key.to_vec())),
            })
            .await?;
        if stored.is_none() {
            let mut record = self.remote_or_err()?.clone();
            record.device_key = Some(seal_device_key(
                &self.account_key,
                self.header.account_id,
                self.header.device_id,
                &device_key,
            ));
            self.save_remote(record).await?;
        }
        self.save_tokens(Some(&Tokens::from_response(&t))).await
    }

    /// Ends this device's server session (the local vault stays).
    /// Returns false when the server could not be told (tokens are dropped anyway).
    ///
    /// # Errors
    /// Not registered; local database errors.
    pub async fn logout(&mut self) -> Result<bool> {
        self.remote_or_err()?;
        let told = match self.tokens() {
            Ok(_) => match self.authed(|c| async move { c.logout().await }).await {
                Ok(()) => true,
                Err(e) if e.is_session_over() => true,
                Err(e) => {
                    tracing::warn!(error = %e, "logout: server not told");
                    false
                }
            },
            Err(_) => true,
        };
        if self.remote.as_ref().is_some_and(|r| r.tokens.is_some()) {
            self.save_tokens(None).await?;
        }
        Ok(told)
    }

    /// The server side of `openk status`: a future that asks the server for
    /// at most `within` in all (`None`: not registered). It borrows nothing,
    /// so it can run while the local part is read. It never fails: what
    /// could not be confirmed is said in the answer (`confirmed`, `state`,
    /// `problem`). It never renews the session either (a refresh cut off by
    /// the short deadline could cost the session: refresh tokens work once);
    /// an expired access token is reported as such and the next sync renews
    /// it.
    #[must_use]
    pub fn remote_status(
        &self,
        within: std::time::Duration,
    ) -> Option<impl Future<Output = RemoteStatus> + Send + 'static> {
        let record = self.remote.clone()?;
        let mut status = RemoteStatus {
            server: record.server.clone(),
            email: record.email.clone(),
            device_name: record.device_name.clone(),
            session: "logged out".into(),
            reachable: false,
            confirmed: false,
            state: "answering".into(),
            problem: None,
        };
        let client = Client::new(&record.server)
            .map_err(Error::from)
            .map(|c| c.with_deadline(Some(crate::sync::client::Deadline::after(within))));
        let tokens = self.tokens();
        let mine = HeaderKdf {
            account_id: self.header.account_id,
            salt: self.header.salt.clone(),
            kdf: self.header.kdf,
        };
        Some(async move {
            ask_status(client, tokens, &mine, &mut status).await;
            status
        })
    }

    /// The account's devices.
    pub async fn devices(&mut self) -> Result<Vec<DeviceResponse>> {
        self.authed(|c| async move { c.devices().await }).await
    }

    /// Renames a device.
    pub async fn rename_device(&mut self, id: Uuid, name: &str) -> Result<DeviceResponse> {
        let name = check_device_name(name)?;
        let name = name.as_str();
        let renamed = self
            .authed(|c| {
                let name = name.to_owned();
                async move { c.rename_device(id, &name).await }
            })
            .await?;
        if id == self.header.device_id {
            let mut record = self.remote_or_err()?.clone();
            // The name the user typed, never the server's echo of it.
            record.device_name = name.to_owned();
            self.save_remote(record).await?;
        }
        Ok(renamed)
    }

    /// Revokes a device: its tokens stop working at once.
    pub async fn revoke_device(&mut self, id: Uuid) -> Result<()> {
        self.authed(|c| async move { c.revoke_device(id).await })
            .await?;
        if id == self.header.device_id {
            self.save_tokens(None).await?;
        }
        Ok(())
    }

    /// The account's security events, newest first.
    pub async fn audit(&mut self, limit: u32) -> Result<Vec<AuditEvent>> {
        self.authed(|c| async move { c.audit(limit).await }).await
    }

    /// Tells the server about a new password: logs in afresh with the old
    /// auth key (the server wants a recent login), then sends the new auth
    /// key, the re-wrapped account key and the MAC (under the account key)
    /// that lets the other devices check the change before adopting it.
    pub(super) async fn change_password_on_server(
        &mut self,
        header: &Header,
        server_wrap: &[u8],
        new_auth: &Key,
    ) -> Result<()> {
        self.relogin().await?;
        let mac = crypto::keys::password_change_mac(
            &self.account_key,
            header.account_id,
            &header.kdf,
            &header.salt,
            server_wrap,
        )?;
        let req = ChangePasswordRequest {
            kdf: kdf_to_wire(header.kdf),
            salt: wire::B64(header.salt.clone()),
            auth_key: wire::B64(new_auth.expose().to_vec()),
            wrapped_account_key: wire::B64(server_wrap.to_vec()),
            mac: wire::B64(mac.to_vec()),
        };
        self.authed(|c| {
            let req = req.clone();
            async move { c.change_password(&req).await }
        })
        .await
    }
}

/// Fills in what the server says about this device's session.
async fn ask_status(
    client: Result<Client>,
    tokens: Result<Tokens>,
    mine: &HeaderKdf,
    status: &mut RemoteStatus,
) {
    let client = match client {
        Ok(c) => c,
        Err(e) => return status.failed(e),
    };
    let tokens = match tokens {
        Ok(t) => t,
        // Logged out (known here): whether the server answers, and whether
        // a password change on another device is the reason.
        Err(e) if e.is_session_over() => {
            status.confirmed = true;
            match client.prelogin(&status.email).await {
                Ok(pre) => {
                    status.reachable = true;
                    if mine.changed_by(&pre) {
                        status.problem = Some(Arc::new(Error::PasswordChanged));
                    }
                }
                Err(e) => status.failed(e.into()),
            }
            return;
        }
        Err(e) => {
            status.session = "unreadable".into();
            return status.failed(e);
        }
    };
    if tokens.access_expires_at <= now_millis() + 5_000 {
        // Not renewed here; the prelogin shows whether the server answers
        // and whether a password change elsewhere ended the session.
        status.session = "expired".into();
        match client.prelogin(&status.email).await {
            Ok(pre) if mine.changed_by(&pre) => {
                status.reachable = true;
                status.session = "logged out".into();
                status.confirmed = true;
                status.problem = Some(Arc::new(Error::PasswordChanged));
            }
            Ok(_) => status.reachable = true,
            Err(e) => status.failed(e.into()),
        }
        return;
    }
    status.session = "active".into();
    match client
        .clone()
        .with_token(Some(tokens.access.to_string()))
        .account()
        .await
    {
        Ok(_) => {
            status.reachable = true;
            status.confirmed = true;
        }
        Err(SyncError::Unauthorized) => {
            status.reachable = true;
            if matches!(client.prelogin(&status.email).await, Ok(pre) if mine.changed_by(&pre)) {
                status.session = "logged out".into();
                status.confirmed = true;
                status.problem = Some(Arc::new(Error::PasswordChanged));
            } else {
                status.session = "rejected".into();
                status.problem = Some(Arc::new(Error::TokenRejected));
            }
        }
        Err(e) => status.failed(e.into()),
    }
}

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
    if dir.exists() && super::vault_exists(dir).await? {
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
                id: device_id,
                name: device_name.to_owned(),
            },
            device_proof: Some(wire::B64(device_key.to_vec())),
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
        let key = crypto::unwrap_key(
            &account_key,
            &Aad::vault_key(account.account_id, v.id),
            &v.wrapped_key.0,
        )
        .map_err(|_| lying("a vault key does not decrypt"))?;
        let name = open_json::<serde_json::Value>(&key, &Aad::vault_meta(v.id), &v.meta.0)
            .ok()
            .and_then(|m| m.get("name").and_then(|n| n.as_str()).map(str::to_owned))
            .unwrap_or_else(|| "(damaged name)".to_owned());
        records.push(VaultRecord {
            id: v.id,
            wrapped_key: v.wrapped_key.0,
            meta: v.meta.0,
            created_at: now_millis(),
        });
        vaults.push(Vault {
            id: v.id,
            name,
            key,
        });
    }
    let mut upload = None;
    if vaults.is_empty() {
        let id = Uuid::now_v7();
        let key = Key::random();
        let record = VaultRecord {
            id,
            wrapped_key: crypto::wrap_key(
                &account_key,
                &Aad::vault_key(account.account_id, id),
                &key,
            ),
            meta: seal_json(
                &key,
                &Aad::vault_meta(id),
                &serde_json::json!({ "name": "Personal" }),
            ),
            created_at: now_millis(),
        };
        upload = Some(CreateVaultRequest {
            id,
            wrapped_key: wire::B64(record.wrapped_key.clone()),
            meta: wire::B64(record.meta.clone()),
        });
        records.push(record);
        vaults.push(Vault {
            id,
            name: "Personal".into(),
            key,
        });
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
    header.wrapped_account_key = super::state::local_wrap(&derived.unlock, &header, &account_key);
    super::state::seal_header(&state_key, &mut header);
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
    let mut vault = Session {
        dir: dir.to_path_buf(),
        store,
        header,
        secret_key,
        account_key,
        state_key,
        auth_key: derived.auth,
        unlock_key: derived.unlock,
        remote: None,
        keypair,
        vaults,
        loaded: None,
        adopted_password_change: false,
        seen: None,
        deadline: None,
    };
    vault
        .save_remote(RemoteRecord {
            server: client.base().to_owned(),
            email,
            device_name: device_name.to_owned(),
            registered_at: now_millis(),
            tokens: None,
            device_key: Some(seal_device_key(
                &vault.account_key,
                vault.header.account_id,
                vault.header.device_id,
                &device_key,
            )),
            mac: None,
        })
        .await?;
    vault.save_tokens(Some(&Tokens::from_response(&t))).await?;
    if let Some(req) = upload {
        authed.create_vault(&req).await?;
    }
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
pub(super) async fn adopt_password_change(
    dir: &Path,
    password: SecretString,
    secret_key_fallback: Option<&str>,
    options: super::UnlockOptions,
) -> Result<Session> {
    let store = Store::open(dir, false).await?;
    let adopted = adopt_into_store(&store, dir, password, secret_key_fallback, options).await;
    store.close().await;
    let password_key = adopted?;
    let mut vault = Session::open_with(
        dir,
        super::Unlocker::PasswordKey(&password_key),
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
    options: super::UnlockOptions,
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
    let secret_key = files::read_secret_key(dir, secret_key_fallback)?;
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
    let derived = crypto::keys::derive(&pk, &secret_key, header.account_id);
    let t = client
        .login(&LoginRequest {
            email: record.email.clone(),
            auth_key: wire::B64(derived.auth.expose().to_vec()),
            device: DeviceInfo {
                id: header.device_id,
                name: record.device_name.clone(),
            },
            // The device key opens only with the account key, which this
            // password does not open yet: an unknown-device attempt.
            device_proof: None,
        })
        .await
        .map_err(|e| match e {
            SyncError::BadCredentials => Error::WrongPassword,
            other => other.into(),
        })?;
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
        super::state::local_wrap(&derived.unlock, &new_header, &account_key);
    super::state::seal_header(&state_key, &mut new_header);
    record.tokens = Some(wire::B64(seal_json(
        &account_key,
        &aad_tokens(header.account_id),
        &Tokens::from_response(&t),
    )));
    super::state::seal_remote(&state_key, &new_header, &mut record);
    let json = serde_json::to_vec(&record).map_err(|e| Error::Damaged(e.to_string()))?;
    store
        .replace_header_and_meta(&header, &new_header, Some((REMOTE_KEY, &json)))
        .await?;
    Ok(pk)
}
