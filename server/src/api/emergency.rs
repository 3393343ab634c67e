//! Emergency access (issue 13): an owner grants a contact its account key
//! after a wait. The owner's device seals the key to the contact and signs
//! the grant; the server keeps both, and releases the box to the contact
//! only once a request of the contact has waited the grant's wait without
//! the owner denying it (see [`crate::store::emergency`]). The server is
//! trusted with the wait, and with nothing else: it cannot open the box,
//! forge a grant or swap the contact's key (the clients check).

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use uuid::Uuid;

use super::accounts::{audit, validate_keys};
use super::extract::{ApiJson, ApiPath, ApiQuery};
use super::types::{
    B64, ChangePasswordRequest, ChangesPage, ChangesQuery, CreateGrantRequest, GrantResponse,
    GrantsResponse, ReleaseResponse, VaultResponse,
};
use super::validate;
use crate::auth::{self, AuthDevice, ClientAddr};
use crate::error::{ApiError, ApiResult};
use crate::settings::MAX_EMERGENCY_WAIT_SECS;
use crate::state::{AppState, now_millis, rfc3339};
use crate::store::{Grant, GrantState, Release, StoreError};

/// The roles a grant may give.
const ROLES: &[&str] = &["view", "takeover"];

/// A grant as the API shows it: the two accounts by their client ids and
/// emails.
async fn response(state: &AppState, g: &Grant, now: i64) -> ApiResult<GrantResponse> {
    let owner = state
        .store
        .account(g.owner)
        .await?
        .ok_or(ApiError::NotFound)?;
    let contact = state
        .store
        .account(g.contact)
        .await?
        .ok_or(ApiError::NotFound)?;
    let release_at = g.release_at();
    Ok(GrantResponse {
        id: g.id,
        owner_id: owner.client_id,
        owner_email: owner.email,
        contact_id: contact.client_id,
        contact_email: contact.email,
        role: g.role.clone(),
        wait_secs: u64::try_from(g.wait_secs).unwrap_or(0),
        state: g.state.as_str().to_owned(),
        requested_at: g.requested_at.map(rfc3339),
        release_at: release_at.map(rfc3339),
        seconds_left: match (g.state, release_at) {
            (GrantState::Requested, Some(at)) => {
                Some(u64::try_from((at - now).max(0)).unwrap_or(0).div_ceil(1000))
            }
            _ => None,
        },
        created_at: rfc3339(g.created_at),
        signature: B64(g.signature.clone()),
        contact_x25519: B64(g.contact_x25519.clone()),
        contact_ed25519: B64(g.contact_ed25519.clone()),
    })
}

/// Records an emergency event in the owner's audit log (the grant's id as
/// the detail).
async fn record(
    state: &AppState,
    g: &Grant,
    kind: &str,
    who: &AuthDevice,
    addr: &ClientAddr,
) -> ApiResult<()> {
    let device = (who.account_id == g.owner).then_some(who.device_id);
    audit(
        state,
        g.owner,
        kind,
        device,
        addr,
        Some(format!("grant {}", g.id)),
    )
    .await
}

/// Grants emergency access to the account `contact_email` names.
#[utoipa::path(post, path = "/v1/emergency", tag = "emergency", security(("bearer" = [])),
    request_body = CreateGrantRequest,
    responses((status = 201, body = GrantResponse),
        (status = 404, body = super::types::Problem, description = "`not_found`: no account has that email"),
        (status = 409, body = super::types::Problem, description = "`conflict`: a grant to that account exists (revoke it first), or the id is taken"),
        (status = 422, body = super::types::Problem, description = "`validation_failed`: a role, wait or size out of range; the contact's keys are not the account's; yourself")))]
pub async fn create(
    State(state): State<AppState>,
    addr: ClientAddr,
    who: AuthDevice,
    ApiJson(req): ApiJson<CreateGrantRequest>,
) -> ApiResult<(StatusCode, Json<GrantResponse>)> {
    if !ROLES.contains(&req.role.as_str()) {
        return Err(ApiError::Validation("role must be view or takeover".into()));
    }
    let min = state.settings.emergency_min_wait_secs;
    if req.wait_secs < min || req.wait_secs > MAX_EMERGENCY_WAIT_SECS {
        return Err(ApiError::Validation(format!(
            "wait_secs must be from {min} to {MAX_EMERGENCY_WAIT_SECS} (90 days)"
        )));
    }
    validate::exact(&req.signature, 64, "signature")?;
    validate::exact(&req.contact_x25519, 32, "contact_x25519")?;
    validate::exact(&req.contact_ed25519, 32, "contact_ed25519")?;
    validate::bounded(&req.sealed, 81, 1024, "sealed")?;
    let email = crate::email::normalize(&req.contact_email)
        .map_err(|e| ApiError::Validation(e.to_string()))?;
    let contact = state
        .store
        .account_by_email(&email)
        .await?
        .ok_or(ApiError::NotFound)?;
    if contact.id == who.account_id {
        return Err(ApiError::Validation(
            "an account cannot be its own emergency contact".into(),
        ));
    }
    if contact.public_x25519 != req.contact_x25519.0
        || contact.public_ed25519 != req.contact_ed25519.0
    {
        return Err(ApiError::Validation(
            "the contact's keys are not the ones the account has now".into(),
        ));
    }
    let now = now_millis();
    let g = Grant {
        id: req.id,
        owner: who.account_id,
        contact: contact.id,
        role: req.role,
        wait_secs: i64::try_from(req.wait_secs).unwrap_or(i64::MAX),
        sealed: req.sealed.0,
        signature: req.signature.0,
        contact_x25519: req.contact_x25519.0,
        contact_ed25519: req.contact_ed25519.0,
        state: GrantState::Granted,
        requested_at: None,
        created_at: now,
    };
    state.store.create_grant(&g).await.map_err(|e| match e {
        StoreError::Conflict => ApiError::Conflict(
            "this account already has an emergency grant to that contact (or the id is taken); \
             revoke it first"
                .into(),
        ),
        other => other.into(),
    })?;
    record(&state, &g, "emergency_granted", &who, &addr).await?;
    Ok((StatusCode::CREATED, Json(response(&state, &g, now).await?)))
}

/// The grants the account gave and the ones it holds.
#[utoipa::path(get, path = "/v1/emergency", tag = "emergency", security(("bearer" = [])),
    responses((status = 200, body = GrantsResponse), (status = 401, body = super::types::Problem)))]
pub async fn index(
    State(state): State<AppState>,
    who: AuthDevice,
) -> ApiResult<Json<GrantsResponse>> {
    let now = now_millis();
    let (given, held) = state.store.grants_of(who.account_id).await?;
    let mut out = GrantsResponse {
        given: Vec::with_capacity(given.len()),
        held: Vec::with_capacity(held.len()),
    };
    for g in &given {
        out.given.push(response(&state, g, now).await?);
    }
    for g in &held {
        out.held.push(response(&state, g, now).await?);
    }
    Ok(Json(out))
}

/// The contact asks for access: the wait starts (a grant already asked for
/// stays as it is).
#[utoipa::path(post, path = "/v1/emergency/{id}/request", tag = "emergency", security(("bearer" = [])),
    params(("id" = Uuid, Path)),
    responses((status = 200, body = GrantResponse),
        (status = 404, body = super::types::Problem, description = "`not_found`: no such grant to this account")))]
pub async fn request(
    State(state): State<AppState>,
    addr: ClientAddr,
    who: AuthDevice,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<Json<GrantResponse>> {
    let now = now_millis();
    let before = state.store.grant(id).await?;
    if !state.store.request_grant(id, who.account_id, now).await? {
        return Err(ApiError::NotFound);
    }
    let g = state.store.grant(id).await?.ok_or(ApiError::NotFound)?;
    if before.is_some_and(|b| b.state == GrantState::Granted) && g.state == GrantState::Requested {
        record(&state, &g, "emergency_requested", &who, &addr).await?;
        tracing::info!(grant = %id, "emergency access requested");
    }
    Ok(Json(response(&state, &g, now).await?))
}

/// The owner denies a pending request: nothing is released, the grant
/// stays (the contact may ask again).
#[utoipa::path(post, path = "/v1/emergency/{id}/deny", tag = "emergency", security(("bearer" = [])),
    params(("id" = Uuid, Path)),
    responses((status = 204),
        (status = 404, body = super::types::Problem, description = "`not_found`: no such grant of this account with a pending request")))]
pub async fn deny(
    State(state): State<AppState>,
    addr: ClientAddr,
    who: AuthDevice,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<StatusCode> {
    if !state.store.deny_grant(id, who.account_id).await? {
        return Err(ApiError::NotFound);
    }
    let g = state.store.grant(id).await?.ok_or(ApiError::NotFound)?;
    record(&state, &g, "emergency_denied", &who, &addr).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The owner revokes a grant: it and its sealed key are deleted.
#[utoipa::path(delete, path = "/v1/emergency/{id}", tag = "emergency", security(("bearer" = [])),
    params(("id" = Uuid, Path)),
    responses((status = 204),
        (status = 404, body = super::types::Problem, description = "`not_found`: no such grant of this account")))]
pub async fn revoke(
    State(state): State<AppState>,
    addr: ClientAddr,
    who: AuthDevice,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<StatusCode> {
    let g = state
        .store
        .grant(id)
        .await?
        .filter(|g| g.owner == who.account_id)
        .ok_or(ApiError::NotFound)?;
    if !state.store.delete_grant(id, who.account_id).await? {
        return Err(ApiError::NotFound);
    }
    record(&state, &g, "emergency_revoked", &who, &addr).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The contact fetches the sealed key, once its request has waited the
/// grant's wait.
#[utoipa::path(get, path = "/v1/emergency/{id}/release", tag = "emergency", security(("bearer" = [])),
    params(("id" = Uuid, Path)),
    responses((status = 200, body = ReleaseResponse),
        (status = 403, body = super::types::Problem, description = "`emergency_waiting`: the wait still runs (the detail and `Retry-After` give the seconds left)"),
        (status = 404, body = super::types::Problem, description = "`not_found`: no such grant to this account"),
        (status = 409, body = super::types::Problem, description = "`conflict`: not requested, or the request was denied")))]
pub async fn release(
    State(state): State<AppState>,
    addr: ClientAddr,
    who: AuthDevice,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<Json<ReleaseResponse>> {
    let now = now_millis();
    let before = state.store.grant(id).await?.map(|g| g.state);
    match state.store.release_grant(id, who.account_id, now).await? {
        Release::NotFound => Err(ApiError::NotFound),
        Release::NotRequested => Err(ApiError::Conflict(
            "no request is pending for this grant (never asked, or the owner denied it); ask \
             first"
                .into(),
        )),
        Release::Waiting(ms) => Err(ApiError::EmergencyWaiting(
            u64::try_from(ms).unwrap_or(1).div_ceil(1000),
        )),
        Release::Released(g) => {
            if before == Some(GrantState::Requested) {
                record(&state, &g, "emergency_released", &who, &addr).await?;
                tracing::info!(grant = %id, "emergency access released");
            }
            Ok(Json(ReleaseResponse {
                grant: response(&state, &g, now).await?,
                sealed: B64(g.sealed),
            }))
        }
    }
}

/// The released grant `id` of the caller, or 404 (not its grant, or not
/// released).
async fn released(state: &AppState, who: &AuthDevice, id: Uuid) -> ApiResult<Grant> {
    state
        .store
        .grant(id)
        .await?
        .filter(|g| g.contact == who.account_id && g.state == GrantState::Released)
        .ok_or(ApiError::NotFound)
}

/// The owner's own vaults, for the holder of a released grant.
#[utoipa::path(get, path = "/v1/emergency/{id}/vaults", tag = "emergency", security(("bearer" = [])),
    params(("id" = Uuid, Path)),
    responses((status = 200, body = Vec<VaultResponse>),
        (status = 404, body = super::types::Problem, description = "`not_found`: no released grant of this id to this account")))]
pub async fn vaults(
    State(state): State<AppState>,
    who: AuthDevice,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<Json<Vec<VaultResponse>>> {
    let g = released(&state, &who, id).await?;
    let shared = state.store.shared_own(g.owner).await?;
    let epochs: std::collections::HashMap<Uuid, u32> =
        state.store.key_epochs(g.owner).await?.into_iter().collect();
    Ok(Json(
        state
            .store
            .vaults(g.owner)
            .await?
            .into_iter()
            .map(|v| {
                let is_shared = shared.contains(&v.id);
                let epoch = epochs.get(&v.id).copied().unwrap_or(1);
                super::vaults::response(v, is_shared, epoch)
            })
            .collect(),
    ))
}

/// One of the owner's vaults' changes, for the holder of a released grant
/// (as `GET /v1/vaults/{id}/changes`).
#[utoipa::path(get, path = "/v1/emergency/{id}/vaults/{vault}/changes", tag = "emergency", security(("bearer" = [])),
    params(("id" = Uuid, Path), ("vault" = Uuid, Path), ChangesQuery),
    responses((status = 200, body = ChangesPage),
        (status = 404, body = super::types::Problem, description = "`not_found`: no released grant, or not a vault of the owner")))]
pub async fn changes(
    State(state): State<AppState>,
    who: AuthDevice,
    ApiPath((id, vault)): ApiPath<(Uuid, Uuid)>,
    ApiQuery(q): ApiQuery<ChangesQuery>,
) -> ApiResult<Json<ChangesPage>> {
    if q.since < 0 {
        return Err(ApiError::BadRequest("since must be 0 or more".into()));
    }
    let g = released(&state, &who, id).await?;
    state
        .store
        .vault(g.owner, vault)
        .await?
        .ok_or(ApiError::NotFound)?;
    let limit = q.limit.unwrap_or(500).clamp(1, 1000);
    let pulled = state.store.pull(g.owner, vault, q.since, limit).await?;
    let next_since = pulled.records.last().map_or(q.since, |r| r.revision);
    let has_more = pulled.records.len() == limit as usize && next_since < pulled.head;
    Ok(Json(ChangesPage {
        vault_id: vault,
        head: pulled.head,
        records: pulled.records,
        has_more,
        next_since,
        manifest: pulled.manifest.map(B64),
    }))
}

/// The contact of a released `takeover` grant takes the owner's account
/// over: new credentials for it (as a password change: the account key
/// wrapped under the new keys, with the MAC other devices check), in one
/// transaction that ends every session of the owner and uses the grant up.
#[utoipa::path(post, path = "/v1/emergency/{id}/takeover", tag = "emergency", security(("bearer" = [])),
    params(("id" = Uuid, Path)), request_body = ChangePasswordRequest,
    responses((status = 204, description = "the owner's new credentials are set; every session of the owner ended; the grant is used up"),
        (status = 404, body = super::types::Problem, description = "`not_found`: no released grant of this id to this account"),
        (status = 409, body = super::types::Problem, description = "`conflict`: the grant's role is not takeover, or it was used or revoked meanwhile"),
        (status = 422, body = super::types::Problem)))]
pub async fn takeover(
    State(state): State<AppState>,
    addr: ClientAddr,
    who: AuthDevice,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(req): ApiJson<ChangePasswordRequest>,
) -> ApiResult<StatusCode> {
    validate_keys(&req.kdf, &req.salt, &req.auth_key, &req.wrapped_account_key)?;
    validate::exact(&req.mac, 32, "mac")?;
    let g = released(&state, &who, id).await?;
    if g.role != "takeover" {
        return Err(ApiError::Conflict(
            "this grant lets you read the account, not take it over".into(),
        ));
    }
    let mut a = state
        .store
        .account(g.owner)
        .await?
        .ok_or(ApiError::NotFound)?;
    a.kdf = req.kdf;
    a.salt = req.salt.0;
    a.auth_hash = auth::auth_hash(&a.auth_salt, &req.auth_key.0);
    a.wrapped_account_key = req.wrapped_account_key.0;
    a.password_mac = Some(req.mac.0);
    let ended = state
        .store
        .take_over(&a, id, who.account_id)
        .await
        .map_err(|e| match e {
            StoreError::Conflict => {
                ApiError::Conflict("the grant was used or revoked meanwhile".into())
            }
            other => other.into(),
        })?;
    state.cache.drop_sessions(&ended).await?;
    record(&state, &g, "emergency_takeover", &who, &addr).await?;
    tracing::info!(grant = %id, "account taken over through emergency access");
    Ok(StatusCode::NO_CONTENT)
}
