//! Accounts' public identities (DESIGN §7): the public keys with the
//! account's self-signature, published to the account's contacts. The
//! server keeps the signature opaque: clients verify it and pin the keys,
//! so a server that answers other keys shows as a changed fingerprint.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;

use super::accounts::audit;
use super::extract::ApiJson;
use super::types::{B64, IdentityLookup, IdentityRequest, IdentityResponse};
use super::validate;
use crate::auth::{AuthDevice, ClientAddr, limits};
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;
use crate::store::Identity;
use crate::time::now_millis;

/// The length of an Ed25519 signature.
pub const SIGNATURE_LEN: usize = 64;

/// Another account's public identity, by email (in the body, so that no
/// address stands in a URL or an access log). Any logged-in device may ask;
/// the lookups spend the address's account-route budget.
#[utoipa::path(post, path = "/v1/identities/lookup", tag = "identities", security(("bearer" = [])),
    request_body = IdentityLookup,
    responses((status = 200, body = IdentityResponse),
        (status = 404, body = super::types::Problem, description = "no account has this email"),
        (status = 422, body = super::types::Problem)))]
pub async fn lookup(
    State(state): State<AppState>,
    _who: AuthDevice,
    addr: ClientAddr,
    ApiJson(req): ApiJson<IdentityLookup>,
) -> ApiResult<Json<IdentityResponse>> {
    limits::spend_auth_budget(&state, &addr).await?;
    let email = validate::email(&req.email)?;
    let account = state
        .store
        .account_by_email(&email)
        .await?
        .ok_or(ApiError::NotFound)?;
    let identity = state.store.identity(account.id).await?;
    Ok(Json(IdentityResponse {
        account_id: account.client_id,
        email: account.email,
        key_version: identity.as_ref().map_or(1, |i| i.key_version),
        public_x25519: B64(account.public_x25519),
        public_ed25519: B64(account.public_ed25519),
        signature: identity.map(|i| B64(i.signature)),
    }))
}

/// Publishes this account's self-signature: once for a key version (the
/// same signature again is accepted, as Ed25519 signs deterministically), or
/// for a newer key version.
#[utoipa::path(put, path = "/v1/account/identity", tag = "identities", security(("bearer" = [])),
    request_body = IdentityRequest,
    responses((status = 204, description = "published"),
        (status = 409, body = super::types::Problem, description = "another signature is published for this key version"),
        (status = 422, body = super::types::Problem)))]
pub async fn publish(
    State(state): State<AppState>,
    who: AuthDevice,
    addr: ClientAddr,
    ApiJson(req): ApiJson<IdentityRequest>,
) -> ApiResult<StatusCode> {
    check(req.key_version, &req.signature)?;
    if let Some(current) = state.store.identity(who.account_id).await? {
        if current.key_version == req.key_version && current.signature == req.signature.0 {
            return Ok(StatusCode::NO_CONTENT);
        }
        if current.key_version >= req.key_version {
            return Err(ApiError::Conflict(format!(
                "this account already published its identity for key version {}",
                current.key_version
            )));
        }
    }
    put(&state, who.account_id, req.key_version, req.signature.0).await?;
    audit(
        &state,
        who.account_id,
        "identity_published",
        Some(who.device_id),
        &addr,
        None,
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The shape of a published identity: a key version from 1, a signature of
/// an Ed25519 signature's length.
pub(crate) fn check(key_version: u32, signature: &B64) -> ApiResult<()> {
    if key_version == 0 {
        return Err(ApiError::Validation("key_version starts at 1".into()));
    }
    validate::exact(signature, SIGNATURE_LEN, "identity signature")
}

/// Stores the account's (server id) identity.
pub(crate) async fn put(
    state: &AppState,
    account_id: uuid::Uuid,
    key_version: u32,
    signature: Vec<u8>,
) -> ApiResult<()> {
    let identity = Identity {
        key_version,
        signature,
        published_at: now_millis(),
    };
    state.store.put_identity(account_id, &identity).await?;
    Ok(())
}
