//! Share links (DESIGN §7): an account stores one encrypted item snapshot
//! under a random id, lists and revokes its links; anyone with the id opens
//! it (`POST`, counted), and `GET /s/{id}` serves the page that does that in
//! a browser and decrypts with the key in the URL fragment, which browsers
//! never send. The server sees ciphertext, sizes and times only.
//!
//! Every way a link can be missing (never made, expired, used up, revoked,
//! another account's) answers the same `404`.

use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use rand::RngCore as _;

use super::extract::{ApiJson, ApiPath};
use super::types::{B64, CreateShareRequest, OpenShareResponse, ShareResponse};
use super::vaults::Budgeted;
use crate::auth::{ClientAddr, limits};
use crate::error::{ApiError, ApiResult};
use crate::state::{AppState, now_millis, rfc3339};
use crate::store::Share;

/// The largest ciphertext a link may hold (an item snapshot is a few KiB).
pub const MAX_SHARE_CIPHERTEXT: usize = 32 * 1024;
/// The smallest: a version byte, a 12-byte nonce and a 16-byte tag.
pub const MIN_SHARE_CIPHERTEXT: usize = 29;
/// The longest a link may live.
pub const MAX_SHARE_LIFETIME: Duration = Duration::from_secs(30 * 24 * 3600);
/// The shortest a link may live.
pub const MIN_SHARE_LIFETIME: Duration = Duration::from_secs(60);
/// The most views a link may allow.
pub const MAX_SHARE_VIEWS: u32 = 1000;
/// Live links one account may have at once.
pub const MAX_SHARES_PER_ACCOUNT: u32 = 1000;
/// How often the server deletes expired and used-up links ([`spawn_sweep`]).
pub const SWEEP_EVERY: Duration = Duration::from_secs(60);
/// Random bytes of a link id (base64url: 22 characters).
const ID_BYTES: usize = 16;

/// The page a browser gets for `/s/{id}` and its script and style (from the
/// repository's `assets/share/`, built into the binary).
const PAGE_HTML: &str = include_str!("../../../assets/share/index.html");
const PAGE_JS: &str = include_str!("../../../assets/share/share.js");
const PAGE_CSS: &str = include_str!("../../../assets/share/share.css");
/// No inline script or style, nothing from elsewhere: the page's own script
/// and style, and requests to this server only.
pub const PAGE_CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
     connect-src 'self'; img-src 'self'; base-uri 'none'; form-action 'none'; \
     frame-ancestors 'none'";

/// A new link id. One that starts with `-` is drawn again, so that no id
/// reads as a command-line flag (`openk share revoke ID`).
fn new_id() -> String {
    loop {
        let mut bytes = [0u8; ID_BYTES];
        rand::rngs::OsRng.fill_bytes(&mut bytes);
        let id = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
        if !id.starts_with('-') {
            return id;
        }
    }
}

/// Whether `id` could be one of ours (anything else is 404 without a lookup).
fn plausible_id(id: &str) -> bool {
    id.len() == 22
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

fn refuse(message: impl Into<String>) -> ApiError {
    ApiError::BadRequest(message.into())
}

fn response(s: &Share) -> ShareResponse {
    ShareResponse {
        id: s.id.clone(),
        created_at: rfc3339(s.created_at),
        expires_at: rfc3339(s.expires_at),
        max_views: s.max_views,
        views_left: s.views_left(),
    }
}

#[utoipa::path(post, path = "/v1/shares", tag = "shares", security(("bearer" = [])),
    request_body = CreateShareRequest,
    responses((status = 201, body = ShareResponse),
        (status = 400, body = super::types::Problem, description = "`bad_request`: a ciphertext over 32 KiB, an expiry outside 60 s..30 days, max_views outside 1..1000, or the account's 1000 live links"),
        (status = 401, body = super::types::Problem)))]
pub async fn create(
    State(state): State<AppState>,
    Budgeted(who): Budgeted,
    ApiJson(req): ApiJson<CreateShareRequest>,
) -> ApiResult<(StatusCode, Json<ShareResponse>)> {
    let len = req.ciphertext.0.len();
    if !(MIN_SHARE_CIPHERTEXT..=MAX_SHARE_CIPHERTEXT).contains(&len) {
        return Err(refuse(format!(
            "a share link's ciphertext must be {MIN_SHARE_CIPHERTEXT} to {MAX_SHARE_CIPHERTEXT} bytes"
        )));
    }
    let lifetime = Duration::from_secs(req.expires_in);
    if !(MIN_SHARE_LIFETIME..=MAX_SHARE_LIFETIME).contains(&lifetime) {
        return Err(refuse(format!(
            "a share link must expire in {} s to {} days",
            MIN_SHARE_LIFETIME.as_secs(),
            MAX_SHARE_LIFETIME.as_secs() / 86400
        )));
    }
    if let Some(n) = req.max_views
        && !(1..=MAX_SHARE_VIEWS).contains(&n)
    {
        return Err(refuse(format!("max_views must be 1 to {MAX_SHARE_VIEWS}")));
    }
    let now = now_millis();
    let share = Share {
        id: new_id(),
        account_id: who.account_id,
        ciphertext: req.ciphertext.0,
        created_at: now,
        expires_at: now + i64::try_from(lifetime.as_millis()).unwrap_or(i64::MAX / 2),
        max_views: req.max_views,
        views: 0,
    };
    state
        .store
        .create_share(&share, MAX_SHARES_PER_ACCOUNT)
        .await
        .map_err(|e| match e {
            crate::store::StoreError::Invalid(m) => refuse(m),
            other => other.into(),
        })?;
    tracing::info!(account = %who.account_id, "share link created");
    Ok((StatusCode::CREATED, Json(response(&share))))
}

#[utoipa::path(get, path = "/v1/shares", tag = "shares", security(("bearer" = [])),
    responses((status = 200, body = Vec<ShareResponse>), (status = 401, body = super::types::Problem)))]
pub async fn index(
    State(state): State<AppState>,
    Budgeted(who): Budgeted,
) -> ApiResult<Json<Vec<ShareResponse>>> {
    let shares = state.store.shares(who.account_id, now_millis()).await?;
    Ok(Json(shares.iter().map(response).collect()))
}

#[utoipa::path(delete, path = "/v1/shares/{id}", tag = "shares", security(("bearer" = [])),
    params(("id" = String, Path)), responses((status = 204), (status = 404, body = super::types::Problem)))]
pub async fn revoke(
    State(state): State<AppState>,
    Budgeted(who): Budgeted,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<StatusCode> {
    if !plausible_id(&id) || !state.store.delete_share(who.account_id, &id).await? {
        return Err(ApiError::NotFound);
    }
    tracing::info!(account = %who.account_id, "share link revoked");
    Ok(StatusCode::NO_CONTENT)
}

/// Opens a link: needs no account, counts one view, and is a `POST` so that
/// a link preview fetching the page never uses a view up.
#[utoipa::path(post, path = "/v1/shares/{id}/open", tag = "shares",
    params(("id" = String, Path)),
    responses((status = 200, body = OpenShareResponse),
        (status = 404, body = super::types::Problem, description = "unknown, expired, used up or revoked: one answer for all"),
        (status = 429, body = super::types::Problem, description = "`rate_limited`: this address's requests per minute are spent (`Retry-After`)")))]
pub async fn open(
    State(state): State<AppState>,
    addr: ClientAddr,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<OpenShareResponse>> {
    limits::spend_share_budget(&state, &addr).await?;
    if !plausible_id(&id) {
        return Err(ApiError::NotFound);
    }
    let ciphertext = state
        .store
        .open_share(&id, now_millis())
        .await?
        .ok_or(ApiError::NotFound)?;
    Ok(Json(OpenShareResponse {
        ciphertext: B64(ciphertext),
    }))
}

/// A static file of the page, with the page's headers.
fn page_file(body: &'static str, content_type: &'static str) -> Response {
    let mut res = body.into_response();
    let h = res.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(PAGE_CSP),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    res
}

/// The page that opens a link in a browser (the same for every id: it
/// reads the id from its address and the key from the fragment).
#[utoipa::path(get, path = "/s/{id}", tag = "shares", params(("id" = String, Path)),
    responses((status = 200, description = "the share page (HTML); it opens the link with `POST /v1/shares/{id}/open`", content_type = "text/html")))]
pub async fn page() -> Response {
    page_file(PAGE_HTML, "text/html; charset=utf-8")
}

/// The share page's script.
#[utoipa::path(get, path = "/assets/share/share.js", tag = "shares",
    responses((status = 200, description = "the share page's script", content_type = "text/javascript")))]
pub async fn page_js() -> Response {
    page_file(PAGE_JS, "text/javascript; charset=utf-8")
}

/// The share page's style sheet.
#[utoipa::path(get, path = "/assets/share/share.css", tag = "shares",
    responses((status = 200, description = "the share page's style sheet", content_type = "text/css")))]
pub async fn page_css() -> Response {
    page_file(PAGE_CSS, "text/css; charset=utf-8")
}

/// Deletes expired and used-up links every [`SWEEP_EVERY`] (opening one
/// deletes it too; this catches the links nobody opens again).
pub fn spawn_sweep(state: &AppState) -> tokio::task::JoinHandle<()> {
    let store = std::sync::Arc::clone(&state.store);
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(SWEEP_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            match store.sweep_shares(now_millis()).await {
                Ok(0) => {}
                Ok(n) => tracing::debug!(deleted = n, "expired share links deleted"),
                Err(e) => tracing::warn!(error = %e, "cannot delete expired share links"),
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_random_and_plausible() {
        let (a, b) = (new_id(), new_id());
        assert_ne!(a, b);
        assert!(plausible_id(&a), "{a}");
        assert!((0..2000).all(|_| !new_id().starts_with('-')));
        assert!(!plausible_id("short"));
        assert!(!plausible_id(&format!("{}!", &a[..21])));
    }

    #[test]
    fn the_page_loads_only_its_own_files() {
        assert!(PAGE_HTML.contains("/assets/share/share.js"));
        assert!(PAGE_HTML.contains("/assets/share/share.css"));
        assert!(!PAGE_HTML.contains("<script>"), "no inline script");
        assert!(!PAGE_HTML.contains("style="), "no inline style");
        assert!(!PAGE_HTML.contains("http"), "nothing from elsewhere");
        assert!(PAGE_JS.contains("openk/v1/share-link"));
    }
}
