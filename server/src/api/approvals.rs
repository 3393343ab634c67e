//! Device approval (issue 13): a new device asks to be let in
//! (`POST /v1/approvals`, no account), a signed-in device of the account
//! claims the request with its one-time key and nonce, the new device opens
//! its commitment, and the signed-in device, once the person compared the
//! code both show, sends the sealed Secret Key. The server only relays:
//! why it cannot cheat the code is in docs/security.md ("Device approval").
//!
//! The new device authenticates its calls with the request's poll token
//! (`Authorization: Bearer okap_…`); the approver with its access token.
//! A request to an unknown email is answered exactly like any other and
//! simply never gets approved.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use subtle::ConstantTimeEq as _;
use uuid::Uuid;

use super::accounts::audit;
use super::extract::{ApiJson, ApiPath};
use super::types::{
    ApprovalResponse, ApproveApprovalRequest, B64, ClaimApprovalRequest, CreateApprovalRequest,
    CreateApprovalResponse, RevealApprovalRequest,
};
use super::validate;
use crate::auth::{self, AuthDevice, ClientAddr, limits};
use crate::error::{ApiError, ApiResult};
use crate::state::{AppState, now_millis, rfc3339};
use crate::store::{Approval, ApprovalState};

/// The prefix of a poll token.
pub const POLL_PREFIX: &str = "okap_";
/// How long a request stays open.
pub const APPROVAL_TTL_MS: i64 = 10 * 60 * 1000;
/// How long an approved request stays usable for the new device's login.
pub const USE_TTL_MS: i64 = 10 * 60 * 1000;
/// Key, nonce and commitment length.
const LEN: usize = 32;
/// The largest sealed box (a Secret Key and the account id, sealed).
const MAX_SEALED: usize = 4096;

/// Who is asking about a request.
enum Caller {
    /// The new device, by the request's poll token (its hash).
    NewDevice(Vec<u8>),
    /// A device of an account.
    Account(AuthDevice),
}

async fn caller(state: &AppState, headers: &HeaderMap) -> ApiResult<Caller> {
    let token = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .ok_or(ApiError::Unauthorized)?;
    if token.starts_with(POLL_PREFIX) {
        if token.len() > 100 {
            return Err(ApiError::Unauthorized);
        }
        return Ok(Caller::NewDevice(auth::token_hash(token)));
    }
    let hash = auth::bearer_hash(headers)?;
    Ok(Caller::Account(AuthDevice::from(
        &auth::live_session(state, &hash).await?,
    )))
}

/// The request `id` if `caller` may see it: the new device that holds its
/// poll token, or a device of its account. Anything else is `404`.
async fn visible(state: &AppState, caller: &Caller, id: Uuid) -> ApiResult<Approval> {
    let a = state.store.approval(id).await?.ok_or(ApiError::NotFound)?;
    let ok = match caller {
        Caller::NewDevice(hash) => bool::from(hash.ct_eq(&a.poll_hash)),
        Caller::Account(who) => a.account_id == Some(who.account_id),
    };
    if ok { Ok(a) } else { Err(ApiError::NotFound) }
}

fn state_name(a: &Approval, now: i64) -> &'static str {
    let live = matches!(a.state, ApprovalState::Approved) || a.state.is_open();
    if live && a.expires_at <= now {
        "expired"
    } else {
        a.state.as_str()
    }
}

fn response(a: Approval, caller: &Caller, now: i64) -> ApprovalResponse {
    let new_device = matches!(caller, Caller::NewDevice(_));
    let left_ms = a.expires_at.saturating_sub(now).max(0);
    ApprovalResponse {
        id: a.id,
        state: state_name(&a, now).to_owned(),
        created_at: rfc3339(a.created_at),
        expires_in: u64::try_from(left_ms / 1000).unwrap_or(0),
        pub_n: B64(a.pub_n),
        commit: B64(a.commitment),
        pub_a: a.pub_a.map(B64),
        nonce_a: a.nonce_a.map(B64),
        nonce_n: a.nonce_n.map(B64),
        sealed: a.sealed.filter(|_| new_device).map(B64),
        claimed_by: a.claimed_by.filter(|_| !new_device),
        device_name: a.device_name,
        platform: a.platform,
    }
}

/// A step that did not apply: why, in words a client can show.
async fn refused(state: &AppState, id: Uuid, step: &str) -> ApiError {
    let now = now_millis();
    match state.store.approval(id).await {
        Ok(Some(a)) => {
            let name = state_name(&a, now);
            ApiError::Conflict(format!("this request is {name}; it cannot be {step}"))
        }
        Ok(None) => ApiError::NotFound,
        Err(e) => e.into(),
    }
}

/// A new device asks to be let in. The answer is the same whether the email
/// has an account or not.
#[utoipa::path(post, path = "/v1/approvals", tag = "approvals", request_body = CreateApprovalRequest,
    responses((status = 201, body = CreateApprovalResponse), (status = 422, body = super::types::Problem),
        (status = 429, body = super::types::Problem)))]
pub async fn create(
    State(state): State<AppState>,
    addr: ClientAddr,
    ApiJson(req): ApiJson<CreateApprovalRequest>,
) -> ApiResult<(StatusCode, Json<CreateApprovalResponse>)> {
    limits::spend_auth_budget(&state, &addr).await?;
    let email = validate::email(&req.email)?;
    validate::name(&req.device_name, "device name")?;
    validate::name(&req.platform, "platform")?;
    validate::exact(&req.pub_n, LEN, "pub_n")?;
    validate::exact(&req.commit, LEN, "commit")?;
    limits::begin_approval(&state, &email, &addr).await?;
    let account = state.store.account_by_email(&email).await?;
    let now = now_millis();
    let poll_token = auth::new_token(POLL_PREFIX);
    let approval = Approval {
        id: Uuid::now_v7(),
        account_id: account.as_ref().map(|a| a.id),
        device_name: req.device_name.trim().to_owned(),
        platform: req.platform.trim().to_owned(),
        pub_n: req.pub_n.0,
        commitment: req.commit.0,
        poll_hash: auth::token_hash(&poll_token),
        state: ApprovalState::Pending,
        created_at: now,
        expires_at: now + APPROVAL_TTL_MS,
        claimed_by: None,
        pub_a: None,
        nonce_a: None,
        nonce_n: None,
        sealed: None,
        decided_at: None,
    };
    state.store.create_approval(&approval, now).await?;
    if let Some(account) = account {
        let (audit_state, name, id) = (state.clone(), approval.device_name.clone(), approval.id);
        // Off the response path, so that its time tells nothing either.
        tokio::spawn(async move {
            if let Err(e) = audit(
                &audit_state,
                account.id,
                "approval_requested",
                None,
                &addr,
                Some(name),
            )
            .await
            {
                tracing::warn!(error = %e, approval = %id, "could not record an approval request");
            }
        });
    }
    Ok((
        StatusCode::CREATED,
        Json(CreateApprovalResponse {
            id: approval.id,
            poll_token,
            expires_in: u64::try_from(APPROVAL_TTL_MS / 1000).unwrap_or(600),
        }),
    ))
}

/// The account's requests still waiting for a decision, oldest first.
#[utoipa::path(get, path = "/v1/approvals", tag = "approvals", security(("bearer" = [])),
    responses((status = 200, body = Vec<ApprovalResponse>), (status = 401, body = super::types::Problem)))]
pub async fn index(
    State(state): State<AppState>,
    who: AuthDevice,
) -> ApiResult<Json<Vec<ApprovalResponse>>> {
    let now = now_millis();
    let caller = Caller::Account(who.clone());
    let open = state.store.open_approvals(who.account_id, now).await?;
    Ok(Json(
        open.into_iter()
            .map(|a| response(a, &caller, now))
            .collect(),
    ))
}

/// One request, to the new device (poll token) or a device of its account.
#[utoipa::path(get, path = "/v1/approvals/{id}", tag = "approvals", security(("bearer" = [])),
    params(("id" = Uuid, Path)),
    responses((status = 200, body = ApprovalResponse), (status = 401, body = super::types::Problem),
        (status = 404, body = super::types::Problem)))]
pub async fn get(
    State(state): State<AppState>,
    headers: HeaderMap,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<Json<ApprovalResponse>> {
    let caller = caller(&state, &headers).await?;
    let a = visible(&state, &caller, id).await?;
    Ok(Json(response(a, &caller, now_millis())))
}

/// An approver takes a pending request with its one-time key and nonce.
/// Once only: the first claim wins.
#[utoipa::path(post, path = "/v1/approvals/{id}/claim", tag = "approvals", security(("bearer" = [])),
    params(("id" = Uuid, Path)), request_body = ClaimApprovalRequest,
    responses((status = 200, body = ApprovalResponse), (status = 404, body = super::types::Problem),
        (status = 409, body = super::types::Problem), (status = 422, body = super::types::Problem)))]
pub async fn claim(
    State(state): State<AppState>,
    who: AuthDevice,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(req): ApiJson<ClaimApprovalRequest>,
) -> ApiResult<Json<ApprovalResponse>> {
    validate::exact(&req.pub_a, LEN, "pub_a")?;
    validate::exact(&req.nonce_a, LEN, "nonce_a")?;
    let caller = Caller::Account(who.clone());
    visible(&state, &caller, id).await?;
    let now = now_millis();
    let done = state
        .store
        .claim_approval(
            who.account_id,
            id,
            who.device_id,
            &req.pub_a.0,
            &req.nonce_a.0,
            now,
        )
        .await?;
    if !done {
        return Err(refused(&state, id, "claimed").await);
    }
    let a = visible(&state, &caller, id).await?;
    Ok(Json(response(a, &caller, now)))
}

/// The new device opens its commitment (after the claim).
#[utoipa::path(post, path = "/v1/approvals/{id}/reveal", tag = "approvals", security(("bearer" = [])),
    params(("id" = Uuid, Path)), request_body = RevealApprovalRequest,
    responses((status = 204), (status = 404, body = super::types::Problem),
        (status = 409, body = super::types::Problem)))]
pub async fn reveal(
    State(state): State<AppState>,
    headers: HeaderMap,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(req): ApiJson<RevealApprovalRequest>,
) -> ApiResult<StatusCode> {
    validate::exact(&req.nonce_n, LEN, "nonce_n")?;
    let caller = caller(&state, &headers).await?;
    if !matches!(caller, Caller::NewDevice(_)) {
        return Err(ApiError::NotFound);
    }
    visible(&state, &caller, id).await?;
    if !state
        .store
        .reveal_approval(id, &req.nonce_n.0, now_millis())
        .await?
    {
        return Err(refused(&state, id, "revealed").await);
    }
    Ok(StatusCode::NO_CONTENT)
}

/// The approver, once the person confirmed the code, sends the sealed box.
#[utoipa::path(post, path = "/v1/approvals/{id}/approve", tag = "approvals", security(("bearer" = [])),
    params(("id" = Uuid, Path)), request_body = ApproveApprovalRequest,
    responses((status = 204), (status = 404, body = super::types::Problem),
        (status = 409, body = super::types::Problem), (status = 422, body = super::types::Problem)))]
pub async fn approve(
    State(state): State<AppState>,
    addr: ClientAddr,
    who: AuthDevice,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(req): ApiJson<ApproveApprovalRequest>,
) -> ApiResult<StatusCode> {
    validate::bounded(&req.sealed, 1 + LEN + 16, MAX_SEALED, "sealed")?;
    let a = visible(&state, &Caller::Account(who.clone()), id).await?;
    let now = now_millis();
    if !state
        .store
        .approve_approval(
            who.account_id,
            id,
            who.device_id,
            &req.sealed.0,
            now,
            now + USE_TTL_MS,
        )
        .await?
    {
        return Err(refused(&state, id, "approved by this device").await);
    }
    audit(
        &state,
        who.account_id,
        "device_approved",
        Some(who.device_id),
        &addr,
        Some(a.device_name),
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// An approver refuses a request: nothing is ever sent for it.
#[utoipa::path(post, path = "/v1/approvals/{id}/deny", tag = "approvals", security(("bearer" = [])),
    params(("id" = Uuid, Path)),
    responses((status = 204), (status = 404, body = super::types::Problem),
        (status = 409, body = super::types::Problem)))]
pub async fn deny(
    State(state): State<AppState>,
    addr: ClientAddr,
    who: AuthDevice,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<StatusCode> {
    let a = visible(&state, &Caller::Account(who.clone()), id).await?;
    if !state
        .store
        .deny_approval(who.account_id, id, now_millis())
        .await?
    {
        return Err(refused(&state, id, "denied").await);
    }
    audit(
        &state,
        who.account_id,
        "approval_denied",
        Some(who.device_id),
        &addr,
        Some(a.device_name),
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The new device gives up waiting (Ctrl-C, timeout): the request closes.
#[utoipa::path(post, path = "/v1/approvals/{id}/cancel", tag = "approvals", security(("bearer" = [])),
    params(("id" = Uuid, Path)),
    responses((status = 204), (status = 404, body = super::types::Problem),
        (status = 409, body = super::types::Problem)))]
pub async fn cancel(
    State(state): State<AppState>,
    headers: HeaderMap,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<StatusCode> {
    let caller = caller(&state, &headers).await?;
    if !matches!(caller, Caller::NewDevice(_)) {
        return Err(ApiError::NotFound);
    }
    visible(&state, &caller, id).await?;
    if !state.store.cancel_approval(id, now_millis()).await? {
        return Err(refused(&state, id, "cancelled").await);
    }
    Ok(StatusCode::NO_CONTENT)
}
