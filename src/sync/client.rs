//! A typed HTTP client for the `/v1` API (reqwest + rustls).
//!
//! Errors are mapped to what a user can act on: an unreachable server (exit
//! 7, URL named), an expired session, too many attempts (with the
//! `Retry-After` seconds), or the server's problem detail.

use std::time::Duration;

use openk_server::api::types::{
    AccountResponse, AuditEvent, ChangesPage, CreateVaultRequest, DeviceResponse, LoginRequest,
    PreloginRequest, PreloginResponse, Problem, PushRequest, PushResponse, Record, RefreshRequest,
    RegisterRequest, RenameDeviceRequest, TokenResponse, VaultResponse,
};
use reqwest::{Method, StatusCode};
use serde::Serialize;
use serde::de::DeserializeOwned;
use uuid::Uuid;

#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    #[error("cannot reach the server at {url}: {why}")]
    Unreachable { url: String, why: String },
    #[error(
        "the server session has ended (logged out, revoked or expired); run `openk login` again"
    )]
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
    #[error("the server refused the request ({code}): {detail}")]
    Refused { code: String, detail: String },
    #[error("the server answered something unexpected: {0}")]
    Protocol(String),
}

/// Environment variable naming a PEM file of extra CA certificates to trust
/// (a self-hosted server with its own CA or a self-signed certificate).
pub const CA_CERT_ENV: &str = "OPENK_CA_CERT";

/// One server, optionally with an access token.
#[derive(Clone)]
pub struct Client {
    http: reqwest::Client,
    base: String,
    access_token: Option<String>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("base", &self.base)
            .finish_non_exhaustive()
    }
}

/// One server-sent event: its type and its data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerEvent {
    pub event: String,
    pub data: String,
}

/// A server-sent event stream (the `text/event-stream` format: `event:`
/// and `data:` lines, a blank line ends an event, `:` starts a comment).
pub struct EventStream {
    inner: std::pin::Pin<Box<dyn futures::Stream<Item = reqwest::Result<bytes::Bytes>> + Send>>,
    buf: Vec<u8>,
    event: String,
    data: String,
    base: String,
}

/// Longest event line accepted (a server sending more is cut off).
const MAX_EVENT_LINE: usize = 64 * 1024;

impl EventStream {
    /// The next event; `None` when the server closed the stream.
    pub async fn next(&mut self) -> Option<Result<ServerEvent, SyncError>> {
        use futures::StreamExt as _;
        loop {
            if let Some(pos) = self.buf.iter().position(|&b| b == b'\n') {
                let raw: Vec<u8> = self.buf.drain(..=pos).collect();
                let line = String::from_utf8_lossy(&raw[..pos]);
                let line = line.strip_suffix('\r').unwrap_or(&line);
                if line.is_empty() {
                    if self.event.is_empty() && self.data.is_empty() {
                        continue;
                    }
                    let event = std::mem::take(&mut self.event);
                    return Some(Ok(ServerEvent {
                        event: if event.is_empty() {
                            "message".into()
                        } else {
                            event
                        },
                        data: std::mem::take(&mut self.data),
                    }));
                }
                if line.starts_with(':') {
                    continue;
                }
                let (field, value) = line.split_once(':').unwrap_or((line, ""));
                let value = value.strip_prefix(' ').unwrap_or(value);
                match field {
                    "event" => self.event = value.to_owned(),
                    "data" => {
                        if !self.data.is_empty() {
                            self.data.push('\n');
                        }
                        self.data.push_str(value);
                    }
                    _ => {}
                }
                continue;
            }
            if self.buf.len() > MAX_EVENT_LINE {
                return Some(Err(SyncError::Protocol("an event line is too long".into())));
            }
            match self.inner.next().await {
                Some(Ok(bytes)) => self.buf.extend_from_slice(&bytes),
                Some(Err(e)) => {
                    return Some(Err(SyncError::Unreachable {
                        url: self.base.clone(),
                        why: root_cause(&e),
                    }));
                }
                None => return None,
            }
        }
    }
}

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

impl Client {
    /// # Errors
    /// An invalid URL.
    pub fn new(base: &str) -> Result<Self, String> {
        let base = normalize_url(base)?;
        let mut builder = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .timeout(Duration::from_secs(120))
            .user_agent(concat!("openk/", env!("CARGO_PKG_VERSION")));
        // A self-hosted server with a private CA: trust that CA as well.
        if let Some(path) = std::env::var_os(CA_CERT_ENV) {
            let pem = std::fs::read(&path).map_err(|e| {
                format!(
                    "cannot read {CA_CERT_ENV}={}: {e}",
                    std::path::Path::new(&path).display()
                )
            })?;
            let certs = reqwest::Certificate::from_pem_bundle(&pem)
                .map_err(|e| format!("{CA_CERT_ENV} is not a PEM certificate: {e}"))?;
            for cert in certs {
                builder = builder.add_root_certificate(cert);
            }
        }
        let http = builder
            .build()
            .map_err(|e| format!("cannot start the HTTP client: {e}"))?;
        Ok(Self {
            http,
            base,
            access_token: None,
        })
    }

    #[must_use]
    pub fn with_token(mut self, token: Option<String>) -> Self {
        self.access_token = token;
        self
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
        let mut req = self.http.request(method, &url);
        if let Some(token) = &self.access_token {
            req = req.bearer_auth(token);
        }
        if let Some(b) = body {
            req = req.json(b);
        }
        let res = req.send().await.map_err(|e| SyncError::Unreachable {
            url: self.base.clone(),
            why: root_cause(&e),
        })?;
        let status = res.status();
        if status == StatusCode::NO_CONTENT {
            return Ok(None);
        }
        if status.is_success() {
            let bytes = res.bytes().await.map_err(|e| SyncError::Unreachable {
                url: self.base.clone(),
                why: root_cause(&e),
            })?;
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
        let problem: Option<Problem> = res.json().await.ok();
        let code = problem
            .as_ref()
            .map_or_else(String::new, |p| p.code.clone());
        let detail = problem
            .and_then(|p| p.detail)
            .unwrap_or_else(|| status.to_string());
        match status {
            StatusCode::UNAUTHORIZED if code == "bad_credentials" => SyncError::BadCredentials,
            StatusCode::UNAUTHORIZED => SyncError::Unauthorized,
            StatusCode::TOO_MANY_REQUESTS => SyncError::RateLimited(retry.unwrap_or(60)),
            StatusCode::NOT_FOUND => SyncError::NotFound,
            StatusCode::CONFLICT if code == "head_moved" => SyncError::HeadMoved,
            StatusCode::CONFLICT => SyncError::Conflict(detail),
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
        self.expect::<(), _>(
            Method::GET,
            &format!("/v1/vaults/{vault}/changes?since={since}&limit={limit}"),
            None,
        )
        .await
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
        let mut req = self
            .http
            .get(format!("{}/v1/events", self.base))
            .header(reqwest::header::ACCEPT, "text/event-stream")
            // The stream stays open; only the connect timeout applies.
            .timeout(Duration::from_secs(365 * 24 * 3600));
        if let Some(token) = &self.access_token {
            req = req.bearer_auth(token);
        }
        let res = req.send().await.map_err(|e| SyncError::Unreachable {
            url: self.base.clone(),
            why: root_cause(&e),
        })?;
        if !res.status().is_success() {
            return Err(self.failure(res).await);
        }
        Ok(EventStream {
            inner: Box::pin(res.bytes_stream()),
            buf: Vec::new(),
            event: String::new(),
            data: String::new(),
            base: self.base.clone(),
        })
    }

    pub async fn audit(&self, limit: u32) -> Result<Vec<AuditEvent>, SyncError> {
        self.expect::<(), _>(Method::GET, &format!("/v1/audit?limit={limit}"), None)
            .await
    }
}

/// The innermost error message (e.g. "Connection refused").
fn root_cause(e: &reqwest::Error) -> String {
    let mut source: &dyn std::error::Error = e;
    while let Some(next) = source.source() {
        source = next;
    }
    if e.is_timeout() {
        "timed out".to_owned()
    } else {
        source.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
