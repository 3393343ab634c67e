//! The account on a server: register a local vault, log in on a new device,
//! log out, devices, audit. Only wrapped keys, the auth key and ciphertext
//! leave this machine; tokens are kept sealed with the account key.
mod account;
mod devices;
mod login;
pub mod share;

use std::future::Future;

use openk_server::api::types::{self as wire, TokenResponse};
use serde::{Deserialize, Serialize};
use uuid::Uuid;
use zeroize::Zeroizing;

use super::error::{Error, Result};
use super::model::now_millis;
use super::{Session, open_json, seal_json};
use crate::crypto::{Aad, KdfParams, Key};
use crate::store::Store;
use crate::sync::{Client, SyncError};

pub use devices::{Device, Event};
pub(super) use login::adopt_password_change;
pub use login::login;
pub(super) use login::login_with;

/// Normalises a server URL as stored (scheme required, no trailing slash).
///
/// # Errors
/// A URL that is not http(s), with a message saying so.
pub fn normalize_server_url(url: &str) -> Result<String> {
    crate::sync::client::normalize_url(url).map_err(Error::Invalid)
}

/// What this device runs on, as the device list shows it (`linux x86_64`).
#[must_use]
pub fn platform() -> String {
    format!("{} {}", std::env::consts::OS, std::env::consts::ARCH)
}

/// `meta` key of the remote record.
pub(super) const REMOTE_KEY: &str = "remote";

impl From<SyncError> for Error {
    fn from(e: SyncError) -> Self {
        match e {
            SyncError::Unreachable { .. } => Self::Unreachable(e.to_string()),
            SyncError::NotAnswering { .. } => Self::NotAnswering(e.to_string()),
            SyncError::Tls(m) => Self::Tls(m),
            SyncError::Unauthorized => Self::SessionEnded,
            SyncError::BadCredentials => Self::Session(e.to_string()),
            SyncError::NotFound => Self::NotFound("that on the server".into()),
            // A refusal by the server (exit 1, docs/errors.md), not a usage error.
            SyncError::Conflict(m) => Self::Remote(SyncError::Conflict(m)),
            SyncError::HeadMoved => Self::HeadMoved,
            SyncError::KeyRotated => Self::KeyRotated,
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

pub(super) fn seal_device_key(
    key: &Key,
    account_id: Uuid,
    device_id: Uuid,
    device_key: &[u8],
) -> wire::B64 {
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
    pub problem: Option<std::sync::Arc<Error>>,
    /// Emergency access requests pending against this account (its
    /// contacts asked; the wait runs and the owner can deny them).
    pub emergency_requests: Vec<super::emergency::GrantInfo>,
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
        self.problem = Some(std::sync::Arc::new(e));
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

pub(super) fn aad_tokens(account_id: Uuid) -> Aad {
    Aad::remote_tokens(account_id)
}

pub(crate) fn kdf_from_wire(k: wire::KdfParams) -> KdfParams {
    KdfParams {
        memory_kib: k.memory_kib,
        iterations: k.iterations,
        parallelism: k.parallelism,
    }
}

pub(crate) fn kdf_to_wire(k: KdfParams) -> wire::KdfParams {
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

    pub(crate) fn remote_or_err(&self) -> Result<&RemoteRecord> {
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

    /// Records this device's registration with `server`: the account's
    /// email, the device's name and its key (sealed with the account key),
    /// then the session's tokens.
    async fn save_registration(
        &mut self,
        server: &str,
        email: String,
        device_name: &str,
        device_key: &[u8],
        tokens: &TokenResponse,
    ) -> Result<()> {
        let h = &self.header;
        let device_key = seal_device_key(&self.account_key, h.account_id, h.device_id, device_key);
        self.save_remote(RemoteRecord {
            server: server.to_owned(),
            email,
            device_name: device_name.to_owned(),
            registered_at: now_millis(),
            tokens: None,
            device_key: Some(device_key),
            mac: None,
        })
        .await?;
        self.save_tokens(Some(&Tokens::from_response(tokens))).await
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
}
