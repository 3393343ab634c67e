//! A typed HTTP client for the `/v1` API (reqwest + rustls).
//!
//! Errors are mapped to what a user can act on: a server that is not
//! answering or cannot be reached (exit 7, URL named), a TLS trust failure
//! (exit 8, pointing at `OPENK_CA_CERT`), an expired session, too many
//! attempts (with the `Retry-After` seconds), or the server's problem
//! detail.
//!
//! Every request is bounded in time ([`limits`]): a connect timeout, an
//! idle timeout (silence while waiting for the answer or its next bytes),
//! a per-request deadline, and optionally the deadline of the whole
//! operation it belongs to ([`Deadline`]), so a silent server never holds a
//! command for long.

use std::path::Path;
use std::time::{Duration, Instant};

use openk_server::api::types::{
    AccountResponse, AppendLogRequest, AuditEvent, ChangesPage, CreateVaultRequest, DeviceResponse,
    IdentityLookup, IdentityRequest, IdentityResponse, LogEntry, LoginRequest, MemberResponse,
    MembershipRequest, PreloginRequest, PreloginResponse, Problem, PushRequest, PushResponse,
    Record, RefreshRequest, RegisterRequest, RenameDeviceRequest, RotateAccountKeyRequest,
    Rotation, SharedVaultResponse, TokenResponse, UpdateVaultRequest, VaultKeyResponse,
    VaultResponse,
};
use reqwest::{Method, StatusCode};
use serde::Serialize;
use serde::de::DeserializeOwned;
use uuid::Uuid;

/// The sync client's time limits, in one place (docs/architecture.md,
/// "Network deadlines").
pub mod limits {
    use std::time::Duration;

    /// Setting up the TCP connection and the TLS handshake.
    pub const CONNECT: Duration = Duration::from_secs(5);
    /// Longest silence while waiting for the head of an answer or for its
    /// next bytes. A large transfer that keeps moving is never cut by it.
    pub const IDLE: Duration = Duration::from_secs(15);
    /// Overall deadline of one request: a pull page (1000 records, about
    /// 1.2 MB) or a push batch needs far less on any working link.
    pub const CALL: Duration = Duration::from_secs(120);
    /// How long an idle pooled connection is kept: less than the server's
    /// default header timeout (7 s), after which it closes idle connections.
    pub const POOL_IDLE: Duration = Duration::from_secs(4);
    /// The whole sync that follows a write (`add`, `edit`, `rm`, …): the
    /// write is committed locally first; after this it stays pending.
    pub const AFTER_WRITE: Duration = Duration::from_secs(3);
    /// The server part of `openk status` (the local part needs no network).
    pub const STATUS: Duration = Duration::from_millis(600);
    /// Silence on an event stream (`openk sync --watch`) before it counts as
    /// dead and is reopened: longer than the longest keep-alive interval a
    /// server may be configured with (300 s).
    pub const EVENTS_IDLE: Duration = Duration::from_secs(330);
}

/// The most the client reads of one answer (docs/security.md): a server
/// cannot exhaust the client's memory by sending an endless body.
pub mod body_limits {
    /// JSON answers of the account routes (tokens, prelogin, the account,
    /// device, vault and audit lists): the server's own request limit on
    /// these routes is 64 KiB; lists of up to 1000 entries fit in 1 MiB.
    pub const ACCOUNT: usize = 1024 * 1024;
    /// A page of changes or an item's history, or a page of the devices'
    /// usage counters (32 blobs of at most 512 KiB). One record is at most
    /// 2 × 1 MiB of blobs plus a wrapped key (about 2.8 MiB as base64
    /// JSON); a page holds up to 1000. A page over this limit is asked for
    /// again with fewer records (down to one), so this only has to hold one
    /// record with room to spare.
    pub const PAGE: usize = 64 * 1024 * 1024;
    /// A problem (error) body.
    pub const PROBLEM: usize = 64 * 1024;
    /// The longest problem `detail` kept for a message, in characters.
    pub const DETAIL_CHARS: usize = 300;
}

/// Reads an answer's body, refusing (without reading on) one longer than
/// `cap`: a declared `Content-Length` over it, or more bytes than that.
async fn read_capped(
    base: &str,
    path: &str,
    mut res: reqwest::Response,
    cap: usize,
    started: Instant,
) -> Result<Vec<u8>, SyncError> {
    let too_large = || SyncError::TooLarge {
        what: path.split('?').next().unwrap_or(path).to_owned(),
        limit: cap,
    };
    if res.content_length().is_some_and(|n| n > cap as u64) {
        return Err(too_large());
    }
    let mut body = Vec::new();
    while let Some(chunk) = res
        .chunk()
        .await
        .map_err(|e| transport_error(base, &e, Some(started)))?
    {
        if body.len() + chunk.len() > cap {
            return Err(too_large());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// The limit for the answer of `path`.
fn body_cap(path: &str) -> usize {
    let route = path.split('?').next().unwrap_or(path);
    if route.ends_with("/changes") || route.ends_with("/history") || route == "/v1/usage" {
        body_limits::PAGE
    } else {
        body_limits::ACCOUNT
    }
}

/// A server's problem detail as it may appear in a message: one line, no
/// control characters or bidi overrides, at most
/// [`body_limits::DETAIL_CHARS`] characters.
fn clean_detail(detail: &str) -> String {
    let line = crate::text::line(detail);
    let mut out: String = line.chars().take(body_limits::DETAIL_CHARS).collect();
    if line.chars().count() > body_limits::DETAIL_CHARS {
        out.push('…');
    }
    out
}

/// The point in time by which a whole operation (several requests) must be
/// done, and how long it was given (for messages).
#[derive(Debug, Clone, Copy)]
pub struct Deadline {
    at: Instant,
    allowed: Duration,
}

impl Deadline {
    /// `allowed` from now.
    #[must_use]
    pub fn after(allowed: Duration) -> Self {
        Self {
            at: Instant::now() + allowed,
            allowed,
        }
    }

    /// Time left (zero once passed).
    #[must_use]
    pub fn left(&self) -> Duration {
        self.at.saturating_duration_since(Instant::now())
    }

    /// How long the operation was given.
    #[must_use]
    pub fn allowed(&self) -> Duration {
        self.allowed
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    /// The connection or the answer did not come in time (a silent,
    /// overloaded or firewalled server).
    #[error("the server at {url} is not answering ({why})")]
    NotAnswering { url: String, why: String },
    #[error("cannot reach the server at {url}: {why}")]
    Unreachable { url: String, why: String },
    /// The TLS handshake failed: an untrusted certificate (the message
    /// says what to do with `OPENK_CA_CERT`) or another TLS problem.
    #[error("{0}")]
    Tls(String),
    #[error("the server session has ended (logged out, revoked or expired)")]
    Unauthorized,
    #[error("wrong email, master password or Secret Key")]
    BadCredentials,
    #[error("too many attempts, try again in {0} s")]
    RateLimited(u64),
    #[error("not found on the server")]
    NotFound,
    #[error("the server refused the request: {0}")]
    Conflict(String),
    #[error("the vault moved on while pushing; pull and push again")]
    HeadMoved,
    /// A push was refused because the shared vault's key was rotated
    /// (409 `key_rotated`): take the new key and push again.
    #[error("the shared vault's key was rotated; take the new key and push again")]
    KeyRotated,
    #[error("the server refused the request ({code}): {detail}")]
    Refused { code: String, detail: String },
    /// An emergency grant's wait still runs (403 `emergency_waiting`):
    /// seconds left.
    #[error("the emergency access wait has {0} s left")]
    Waiting(u64),
    #[error("the server answered something unexpected: {0}")]
    Protocol(String),
    /// An answer longer than the client reads ([`body_limits`]).
    #[error(
        "the server's answer to {what} is larger than the {} KiB this client reads; refusing it \
         (a server must not send more; it may be misbehaving or hostile)", limit / 1024
    )]
    TooLarge { what: String, limit: usize },
    /// Plain `http://` to a host that is not loopback (named), while that
    /// is not allowed ([`allow_insecure_http`]).
    #[error(
        "refusing plain http:// to {host}: the login key and the session tokens would cross the network \
         unencrypted, where anyone on the path can read them and answer in the server's place"
    )]
    PlainHttp { host: String },
    /// The client cannot be set up: a bad URL, an `OPENK_CA_CERT` file that
    /// cannot be used, the HTTP client itself.
    #[error("{0}")]
    Setup(String),
}

/// Environment variable naming a PEM file of certificates to trust for the
/// server: CA certificates (trusted as roots, besides the built-in ones)
/// and self-signed server certificates (pinned: trusted when the server
/// presents exactly that certificate).
pub const CA_CERT_ENV: &str = "OPENK_CA_CERT";

/// One server, optionally with an access token and a deadline.
#[derive(Clone)]
pub struct Client {
    http: reqwest::Client,
    /// The TLS setup for `OPENK_CA_CERT` (none: reqwest's built-in roots).
    tls: Option<rustls::ClientConfig>,
    base: String,
    access_token: Option<String>,
    deadline: Option<Deadline>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("base", &self.base)
            .finish_non_exhaustive()
    }
}

pub use super::events::EventStream;

// More routes' calls, each group in its own file.
mod approvals;
mod emergency;
mod history;
mod recovery;
mod shares;
mod usage;
use super::tls;

/// Normalises a server URL: scheme required, no trailing slash.
///
/// # Errors
/// A URL that is not http(s).
pub fn normalize_url(url: &str) -> Result<String, String> {
    let parsed =
        url::Url::parse(url.trim()).map_err(|e| format!("invalid server URL {url:?}: {e}"))?;
    if !matches!(parsed.scheme(), "http" | "https") || parsed.host_str().is_none() {
        return Err(format!(
            "invalid server URL {url:?}: use http(s)://HOST[:PORT]"
        ));
    }
    Ok(parsed.as_str().trim_end_matches('/').to_owned())
}

/// Whether plain `http://` to a host that is not loopback is allowed
/// (`--insecure-http`, config `insecure_http`).
static INSECURE_HTTP: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Allows (or forbids again) plain `http://` to hosts that are not loopback.
pub fn allow_insecure_http(allow: bool) {
    INSECURE_HTTP.store(allow, std::sync::atomic::Ordering::Relaxed);
}

/// Refuses plain `http://` to anything but a loopback address unless
/// [`allow_insecure_http`] said so.
///
/// # Errors
/// [`SyncError::PlainHttp`] naming the host; [`SyncError::Setup`] for a
/// URL that does not parse.
pub fn check_transport(url: &str) -> Result<(), SyncError> {
    let parsed = url::Url::parse(url)
        .map_err(|e| SyncError::Setup(format!("invalid server URL {url:?}: {e}")))?;
    if parsed.scheme() != "http" || INSECURE_HTTP.load(std::sync::atomic::Ordering::Relaxed) {
        return Ok(());
    }
    let loopback = match parsed.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        Some(url::Host::Domain(d)) => {
            let d = d.trim_end_matches('.').to_ascii_lowercase();
            d == "localhost" || d.ends_with(".localhost")
        }
        None => false,
    };
    if loopback {
        return Ok(());
    }
    Err(SyncError::PlainHttp {
        host: crate::text::line(parsed.host_str().unwrap_or(url)).into_owned(),
    })
}

/// A reqwest client with the connect timeout, optionally the idle timeout,
/// and the `OPENK_CA_CERT` TLS setup.
fn http_client(
    tls: Option<&rustls::ClientConfig>,
    idle: Option<Duration>,
) -> Result<reqwest::Client, String> {
    let mut builder = reqwest::Client::builder()
        .connect_timeout(limits::CONNECT)
        .timeout(limits::CALL)
        // The server closes a connection idle for its header timeout (7 s
        // by default): drop pooled ones before it does, so that a request
        // never goes out on a connection the server is just closing.
        .pool_idle_timeout(limits::POOL_IDLE)
        // A redirect is never followed: tokens and the auth key go only to
        // the authenticated server URL, never to a host a 3xx names.
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("openk/", env!("CARGO_PKG_VERSION")));
    if let Some(idle) = idle {
        builder = builder.read_timeout(idle);
    }
    if let Some(tls) = tls {
        builder = builder.use_preconfigured_tls(tls.clone());
    }
    builder
        .build()
        .map_err(|e| format!("cannot start the HTTP client: {e}"))
}

impl Client {
    /// # Errors
    /// An invalid URL; an `OPENK_CA_CERT` file that cannot be read or holds
    /// no certificate.
    pub fn new(base: &str) -> Result<Self, SyncError> {
        let base = normalize_url(base).map_err(SyncError::Setup)?;
        check_transport(&base)?;
        let tls = match std::env::var_os(CA_CERT_ENV) {
            Some(path) if !path.is_empty() => {
                Some(tls::config(Path::new(&path)).map_err(SyncError::Setup)?)
            }
            _ => None,
        };
        let http = http_client(tls.as_ref(), Some(limits::IDLE)).map_err(SyncError::Setup)?;
        Ok(Self {
            http,
            tls,
            base,
            access_token: None,
            deadline: None,
        })
    }

    #[must_use]
    pub fn with_token(mut self, token: Option<String>) -> Self {
        self.access_token = token;
        self
    }

    /// Every request of this client must be done by `deadline` (besides
    /// its own limits).
    #[must_use]
    pub fn with_deadline(mut self, deadline: Option<Deadline>) -> Self {
        self.deadline = deadline;
        self
    }

    /// The time the next request may take: the per-request limit, cut to
    /// what is left of the deadline.
    ///
    /// # Errors
    /// [`SyncError::NotAnswering`] when the deadline has passed.
    fn budget(&self) -> Result<Duration, SyncError> {
        let Some(d) = self.deadline else {
            return Ok(limits::CALL);
        };
        let left = d.left();
        if left < Duration::from_millis(20) {
            return Err(SyncError::NotAnswering {
                url: self.base.clone(),
                why: format!(
                    "no answer in the {} this command waits",
                    seconds(d.allowed())
                ),
            });
        }
        Ok(left.min(limits::CALL))
    }

    #[must_use]
    pub fn base(&self) -> &str {
        &self.base
    }

    async fn call<B: Serialize, T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<&B>,
    ) -> Result<Option<T>, SyncError> {
        let url = format!("{}{path}", self.base);
        let budget = self.budget()?;
        let mut req = self.http.request(method, &url).timeout(budget);
        if let Some(token) = &self.access_token {
            req = req.bearer_auth(token);
        }
        if let Some(b) = body {
            req = req.json(b);
        }
        let started = Instant::now();
        let res = req
            .send()
            .await
            .map_err(|e| transport_error(&self.base, &e, Some(started)))?;
        let status = res.status();
        if status == StatusCode::NO_CONTENT {
            return Ok(None);
        }
        if status.is_success() {
            let bytes = read_capped(&self.base, path, res, body_cap(path), started).await?;
            return serde_json::from_slice(&bytes)
                .map(Some)
                .map_err(|e| SyncError::Protocol(format!("{path}: {e}")));
        }
        Err(self.failure(res).await)
    }

    /// The error for a non-success answer.
    async fn failure(&self, res: reqwest::Response) -> SyncError {
        let status = res.status();
        let retry = res
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        let body = read_capped(&self.base, "", res, body_limits::PROBLEM, Instant::now())
            .await
            .unwrap_or_default();
        let problem: Option<Problem> = serde_json::from_slice(&body).ok();
        // The code and detail are the server's words: data in a message,
        // never terminal control.
        let code = problem
            .as_ref()
            .map_or_else(String::new, |p| clean_detail(&p.code));
        let detail = problem
            .and_then(|p| p.detail)
            .map_or_else(|| status.to_string(), |d| clean_detail(&d));
        match status {
            StatusCode::UNAUTHORIZED if code == "bad_credentials" => SyncError::BadCredentials,
            StatusCode::UNAUTHORIZED => SyncError::Unauthorized,
            StatusCode::TOO_MANY_REQUESTS => SyncError::RateLimited(retry.unwrap_or(60)),
            StatusCode::NOT_FOUND => SyncError::NotFound,
            StatusCode::CONFLICT if code == "head_moved" => SyncError::HeadMoved,
            StatusCode::CONFLICT if code == "key_rotated" => SyncError::KeyRotated,
            StatusCode::CONFLICT => SyncError::Conflict(detail),
            StatusCode::FORBIDDEN if code == "emergency_waiting" => {
                SyncError::Waiting(retry.unwrap_or(1))
            }
            // The account's storage quota: a refusal, not an outage.
            StatusCode::INSUFFICIENT_STORAGE => SyncError::Refused { code, detail },
            s if s.is_server_error() => SyncError::Unreachable {
                url: self.base.clone(),
                why: format!("server error {s}: {detail}"),
            },
            _ => SyncError::Refused { code, detail },
        }
    }

    async fn expect<B: Serialize, T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<&B>,
    ) -> Result<T, SyncError> {
        self.call(method, path, body)
            .await?
            .ok_or_else(|| SyncError::Protocol(format!("{path}: empty answer")))
    }

    pub async fn prelogin(&self, email: &str) -> Result<PreloginResponse, SyncError> {
        self.expect(
            Method::POST,
            "/v1/accounts/prelogin",
            Some(&PreloginRequest {
                email: email.to_owned(),
            }),
        )
        .await
    }

    pub async fn register(&self, req: &RegisterRequest) -> Result<TokenResponse, SyncError> {
        self.expect(Method::POST, "/v1/accounts/register", Some(req))
            .await
    }

    pub async fn login(&self, req: &LoginRequest) -> Result<TokenResponse, SyncError> {
        self.expect(Method::POST, "/v1/accounts/login", Some(req))
            .await
    }

    pub async fn refresh(&self, refresh_token: &str) -> Result<TokenResponse, SyncError> {
        self.expect(
            Method::POST,
            "/v1/accounts/refresh",
            Some(&RefreshRequest {
                refresh_token: refresh_token.to_owned(),
            }),
        )
        .await
    }

    pub async fn logout(&self) -> Result<(), SyncError> {
        self.call::<(), serde_json::Value>(Method::POST, "/v1/accounts/logout", None)
            .await
            .map(|_| ())
    }

    pub async fn account(&self) -> Result<AccountResponse, SyncError> {
        self.expect::<(), _>(Method::GET, "/v1/account", None).await
    }

    /// Another account's public identity, by email (sent in the body, so
    /// that no address stands in a URL or an access log).
    pub async fn identity(&self, email: &str) -> Result<IdentityResponse, SyncError> {
        self.expect(
            Method::POST,
            "/v1/identities/lookup",
            Some(&IdentityLookup {
                email: email.to_owned(),
            }),
        )
        .await
    }

    /// Appends a signed entry to a shared vault's membership log.
    pub async fn append_log(&self, vault: Uuid, req: &AppendLogRequest) -> Result<(), SyncError> {
        self.call::<_, serde_json::Value>(
            Method::POST,
            &format!("/v1/vaults/{vault}/log"),
            Some(req),
        )
        .await
        .map(|_| ())
    }

    /// Replaces a vault's sealed metadata (a rename).
    pub async fn update_vault(&self, vault: Uuid, meta: &[u8]) -> Result<(), SyncError> {
        self.call::<_, serde_json::Value>(
            Method::PATCH,
            &format!("/v1/vaults/{vault}"),
            Some(&UpdateVaultRequest {
                meta: openk_server::api::types::B64(meta.to_vec()),
            }),
        )
        .await
        .map(|_| ())
    }

    /// A shared vault's membership log, in order.
    pub async fn vault_log(&self, vault: Uuid) -> Result<Vec<LogEntry>, SyncError> {
        self.expect::<(), _>(Method::GET, &format!("/v1/vaults/{vault}/log"), None)
            .await
    }

    /// Rotates the account key (one transaction; ends the other sessions).
    pub async fn rotate_account_key(&self, req: &RotateAccountKeyRequest) -> Result<(), SyncError> {
        self.call::<_, serde_json::Value>(Method::POST, "/v1/account/key", Some(req))
            .await
            .map(|_| ())
    }

    /// Rotates the key of a vault that is not shared (one transaction).
    pub async fn rotate_vault(&self, vault: Uuid, rotation: &Rotation) -> Result<(), SyncError> {
        self.call::<_, serde_json::Value>(
            Method::POST,
            &format!("/v1/vaults/{vault}/rotate"),
            Some(rotation),
        )
        .await
        .map(|_| ())
    }

    /// This account's copy of a shared vault's key (sealed to it) and its
    /// epoch.
    pub async fn vault_key(&self, vault: Uuid) -> Result<VaultKeyResponse, SyncError> {
        self.expect::<(), _>(Method::GET, &format!("/v1/vaults/{vault}/key"), None)
            .await
    }

    /// A shared vault's members and invitees, as the server lists them.
    pub async fn vault_members_raw(&self, vault: Uuid) -> Result<Vec<MemberResponse>, SyncError> {
        self.expect::<(), _>(Method::GET, &format!("/v1/vaults/{vault}/members"), None)
            .await
    }

    /// The vaults other accounts share with this one, and its invitations.
    pub async fn shared(&self) -> Result<Vec<SharedVaultResponse>, SyncError> {
        self.expect::<(), _>(Method::GET, "/v1/shared", None).await
    }

    /// Accepts or declines an invitation.
    pub async fn answer_invitation(&self, vault: Uuid, accept: bool) -> Result<(), SyncError> {
        self.call::<_, serde_json::Value>(
            Method::POST,
            &format!("/v1/vaults/{vault}/membership"),
            Some(&MembershipRequest { accept }),
        )
        .await
        .map(|_| ())
    }

    /// Publishes this account's self-signature.
    pub async fn put_identity(&self, req: &IdentityRequest) -> Result<(), SyncError> {
        self.call::<_, serde_json::Value>(Method::PUT, "/v1/account/identity", Some(req))
            .await
            .map(|_| ())
    }

    pub async fn change_password(
        &self,
        req: &openk_server::api::types::ChangePasswordRequest,
    ) -> Result<(), SyncError> {
        self.call::<_, serde_json::Value>(Method::POST, "/v1/account/password", Some(req))
            .await
            .map(|_| ())
    }

    pub async fn devices(&self) -> Result<Vec<DeviceResponse>, SyncError> {
        self.expect::<(), _>(Method::GET, "/v1/devices", None).await
    }

    pub async fn rename_device(&self, id: Uuid, name: &str) -> Result<DeviceResponse, SyncError> {
        self.expect(
            Method::PATCH,
            &format!("/v1/devices/{id}"),
            Some(&RenameDeviceRequest {
                name: name.to_owned(),
            }),
        )
        .await
    }

    pub async fn revoke_device(&self, id: Uuid) -> Result<(), SyncError> {
        self.call::<(), serde_json::Value>(Method::DELETE, &format!("/v1/devices/{id}"), None)
            .await
            .map(|_| ())
    }

    pub async fn vaults(&self) -> Result<Vec<VaultResponse>, SyncError> {
        self.expect::<(), _>(Method::GET, "/v1/vaults", None).await
    }

    pub async fn create_vault(&self, req: &CreateVaultRequest) -> Result<VaultResponse, SyncError> {
        self.expect(Method::POST, "/v1/vaults", Some(req)).await
    }

    pub async fn pull(
        &self,
        vault: Uuid,
        since: i64,
        limit: u32,
    ) -> Result<ChangesPage, SyncError> {
        // A page over the body limit is asked for again with fewer records
        // (large records); one record always fits.
        let mut limit = limit.max(1);
        loop {
            let got = self
                .expect::<(), _>(
                    Method::GET,
                    &format!("/v1/vaults/{vault}/changes?since={since}&limit={limit}"),
                    None,
                )
                .await;
            match got {
                Err(SyncError::TooLarge { .. }) if limit > 1 => limit = (limit / 4).max(1),
                other => return other,
            }
        }
    }

    pub async fn push(&self, vault: Uuid, req: &PushRequest) -> Result<PushResponse, SyncError> {
        self.expect(
            Method::POST,
            &format!("/v1/vaults/{vault}/changes"),
            Some(req),
        )
        .await
    }

    pub async fn item_history(&self, vault: Uuid, item: Uuid) -> Result<Vec<Record>, SyncError> {
        self.expect::<(), _>(
            Method::GET,
            &format!("/v1/vaults/{vault}/items/{item}/history"),
            None,
        )
        .await
    }

    /// Opens the server-sent event stream of the account (`/v1/events`).
    ///
    /// # Errors
    /// As other calls: unreachable, session ended, refused.
    pub async fn events(&self) -> Result<EventStream, SyncError> {
        // The stream stays open: no idle or overall timeout on the client
        // (the stream's own silence limit is in `EventStream::next`), but the
        // head of the answer must come as for any request.
        let http = http_client(self.tls.as_ref(), None).map_err(SyncError::Protocol)?;
        let mut req = http
            .get(format!("{}/v1/events", self.base))
            .header(reqwest::header::ACCEPT, "text/event-stream")
            .timeout(Duration::from_secs(365 * 24 * 3600));
        if let Some(token) = &self.access_token {
            req = req.bearer_auth(token);
        }
        let started = Instant::now();
        let res = match tokio::time::timeout(limits::IDLE, req.send()).await {
            Ok(sent) => sent.map_err(|e| transport_error(&self.base, &e, Some(started)))?,
            Err(_) => {
                return Err(SyncError::NotAnswering {
                    url: self.base.clone(),
                    why: format!("no answer within {}", seconds(limits::IDLE)),
                });
            }
        };
        if !res.status().is_success() {
            return Err(self.failure(res).await);
        }
        Ok(EventStream::new(
            Box::pin(res.bytes_stream()),
            self.base.clone(),
        ))
    }

    pub async fn audit(&self, limit: u32) -> Result<Vec<AuditEvent>, SyncError> {
        self.expect::<(), _>(Method::GET, &format!("/v1/audit?limit={limit}"), None)
            .await
    }
}

/// "3 s", "0.8 s", "15 s".
pub(super) fn seconds(d: Duration) -> String {
    if d < Duration::from_secs(10) && d.subsec_millis() != 0 {
        format!("{:.1} s", d.as_secs_f64())
    } else {
        format!("{} s", d.as_secs())
    }
}

/// Every error in the chain, including the one an `io::Error` wraps (its
/// `source()` skips it).
fn chain(e: &reqwest::Error) -> Vec<&(dyn std::error::Error + 'static)> {
    let mut out: Vec<&(dyn std::error::Error + 'static)> = Vec::new();
    let mut next: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = next {
        out.push(err);
        next = match err
            .downcast_ref::<std::io::Error>()
            .and_then(std::io::Error::get_ref)
        {
            Some(inner) => Some(inner as &(dyn std::error::Error + 'static)),
            None => err.source(),
        };
    }
    out
}

/// A failed request, as the user can act on it: a TLS failure, a server
/// that is not answering (a timeout), a refused connection, or another
/// reason it cannot be reached.
pub(super) fn transport_error(
    base: &str,
    e: &reqwest::Error,
    started: Option<Instant>,
) -> SyncError {
    let errors = chain(e);
    if let Some(tls) = errors
        .iter()
        .find_map(|err| err.downcast_ref::<rustls::Error>())
    {
        return SyncError::Tls(tls::message(base, tls));
    }
    let io_kind = errors
        .iter()
        .find_map(|err| err.downcast_ref::<std::io::Error>())
        .map(std::io::Error::kind);
    if e.is_timeout() || io_kind == Some(std::io::ErrorKind::TimedOut) {
        let waited = started.map(|s| s.elapsed());
        let why = match (e.is_connect(), waited) {
            (true, Some(w)) => format!("no connection within {}", seconds(w)),
            (true, None) => "no connection in time".to_owned(),
            (false, Some(w)) => format!("no answer within {}", seconds(w)),
            (false, None) => "it stopped answering".to_owned(),
        };
        return SyncError::NotAnswering {
            url: base.to_owned(),
            why,
        };
    }
    let why = match io_kind {
        Some(std::io::ErrorKind::ConnectionRefused) => {
            "connection refused (is the server running, and on that port?)".to_owned()
        }
        _ => errors
            .last()
            .map_or_else(|| e.to_string(), ToString::to_string),
    };
    SyncError::Unreachable {
        url: base.to_owned(),
        why,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_http_goes_only_to_loopback_unless_allowed() {
        for ok in [
            "http://127.0.0.1:8080",
            "http://127.9.9.9",
            "http://[::1]:9",
            "http://localhost:1",
            "http://a.localhost",
            "https://example.org",
        ] {
            assert!(check_transport(ok).is_ok(), "{ok}");
        }
        for bad in [
            "http://example.org",
            "http://10.0.0.1:80",
            "http://[fe80::1]",
        ] {
            let e = check_transport(bad).expect_err(bad);
            assert!(matches!(e, SyncError::PlainHttp { .. }), "{e}");
            assert!(e.to_string().contains("refusing plain http://"), "{e}");
        }
    }

    #[test]
    fn problem_details_are_one_clean_bounded_line() {
        let d = clean_detail("a\u{1b}]0;x\u{7}b\u{9b}c\u{202e}d\ne");
        assert!(
            !d.chars()
                .any(|c| c.is_control() || crate::text::is_bidi_control(c)),
            "{d:?}"
        );
        assert_eq!(
            clean_detail(&"x".repeat(1000)).chars().count(),
            body_limits::DETAIL_CHARS + 1
        );
    }

    #[tokio::test]
    async fn a_body_over_the_limit_is_refused_while_reading() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.expect("accept");
            let mut buf = [0u8; 4096];
            let _ = s.read(&mut buf).await;
            let _ = s
                .write_all(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n")
                .await;
            let chunk = vec![b' '; 64 * 1024];
            loop {
                let head = format!("{:x}\r\n", chunk.len());
                if s.write_all(head.as_bytes()).await.is_err()
                    || s.write_all(&chunk).await.is_err()
                    || s.write_all(b"\r\n").await.is_err()
                {
                    break;
                }
            }
        });
        let c = Client::new(&url).expect("client");
        let e = c.account().await.expect_err("too large");
        assert!(
            matches!(&e, SyncError::TooLarge { limit, .. } if *limit == body_limits::ACCOUNT),
            "{e}"
        );
        assert!(e.to_string().contains("larger than the 1024 KiB"), "{e}");
    }

    // A page over the limit is asked for again with fewer records, down to
    // one; the oversized answers are refused from their Content-Length.
    #[tokio::test]
    async fn an_oversized_page_is_asked_for_again_with_fewer_records() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        let asked = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let log = asked.clone();
        tokio::spawn(async move {
            loop {
                let Ok((mut s, _)) = listener.accept().await else {
                    return;
                };
                let mut buf = vec![0u8; 8192];
                let n = s.read(&mut buf).await.unwrap_or(0);
                let head = String::from_utf8_lossy(&buf[..n]).to_string();
                let limit: u32 = head
                    .split("limit=")
                    .nth(1)
                    .and_then(|r| r.split(' ').next())
                    .and_then(|l| l.parse().ok())
                    .unwrap_or(0);
                log.lock().expect("log").push(limit);
                let answer = if limit > 1 {
                    format!(
                        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                        body_limits::PAGE + 1
                    )
                } else {
                    let body = serde_json::json!({
                        "vault_id": Uuid::nil(), "head": 0, "records": [], "has_more": false,
                        "next_since": 0, "manifest": null,
                    })
                    .to_string();
                    format!(
                        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                        body.len()
                    )
                };
                let _ = s.write_all(answer.as_bytes()).await;
            }
        });
        let c = Client::new(&url).expect("client");
        let page = c.pull(Uuid::nil(), 0, 1000).await.expect("a page of one");
        assert!(page.records.is_empty());
        assert_eq!(*asked.lock().expect("log"), vec![1000, 250, 62, 15, 3, 1]);
    }

    #[test]
    fn urls_are_normalised() {
        assert_eq!(
            normalize_url("http://127.0.0.1:8420/").expect("ok"),
            "http://127.0.0.1:8420"
        );
        assert_eq!(
            normalize_url(" https://vault.example.org ").expect("ok"),
            "https://vault.example.org"
        );
        assert!(normalize_url("ftp://x").is_err());
        assert!(normalize_url("localhost:8420").is_err());
    }

    /// A listener that accepts connections and never answers.
    async fn silent_server() -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((socket, _)) = listener.accept().await {
                held.push(socket);
            }
        });
        url
    }

    #[test]
    fn the_limits_keep_commands_short() {
        assert!(limits::CONNECT <= Duration::from_secs(5));
        assert!(limits::IDLE < limits::CALL);
        assert!(limits::AFTER_WRITE < Duration::from_secs(10));
        assert!(limits::STATUS <= Duration::from_millis(800));
        assert!(limits::EVENTS_IDLE > Duration::from_secs(300));
    }

    #[tokio::test]
    async fn a_silent_server_is_not_answering_by_the_deadline() {
        let url = silent_server().await;
        let c = Client::new(&url)
            .expect("client")
            .with_deadline(Some(Deadline::after(Duration::from_millis(300))));
        let started = Instant::now();
        match c.prelogin("a@b.c").await {
            Err(SyncError::NotAnswering { url: u, why }) => {
                assert_eq!(u, url);
                assert!(why.contains("no answer within"), "{why}");
            }
            other => panic!("expected not answering, got {other:?}"),
        }
        assert!(started.elapsed() < Duration::from_secs(2));
        // Once the deadline has passed, nothing more is sent.
        let started = Instant::now();
        assert!(matches!(
            c.account().await,
            Err(SyncError::NotAnswering { .. })
        ));
        assert!(started.elapsed() < Duration::from_millis(100));
    }

    #[tokio::test]
    async fn a_refused_connection_is_unreachable_not_silent() {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("free port")
            .port();
        let c = Client::new(&format!("http://127.0.0.1:{port}")).expect("client");
        match c.prelogin("a@b.c").await {
            Err(SyncError::Unreachable { why, .. }) => {
                assert!(why.contains("connection refused"), "{why}");
            }
            other => panic!("expected unreachable, got {other:?}"),
        }
    }

    #[test]
    fn a_ca_cert_file_without_certificates_is_refused() {
        let dir = tempfile::tempdir().expect("tmp");
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "not a certificate\n").expect("write");
        let e = tls::config(&empty).expect_err("no certificate");
        assert!(e.contains("holds no certificate"), "{e}");
        let e = tls::config(&dir.path().join("missing.pem")).expect_err("missing");
        assert!(e.contains("cannot read OPENK_CA_CERT="), "{e}");
    }

    #[tokio::test]
    async fn an_unreachable_server_names_the_url() {
        // Port 9 (discard) on loopback: nothing listens there in the test sandbox.
        let c = Client::new("http://127.0.0.1:9").expect("client");
        match c.prelogin("a@b.c").await {
            Err(SyncError::Unreachable { url, .. }) => assert_eq!(url, "http://127.0.0.1:9"),
            other => panic!("expected unreachable, got {other:?}"),
        }
    }
}
