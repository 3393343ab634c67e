//! Account recovery (issue 13): a recovery code only the user holds sets new
//! credentials for an account whose password or Secret Key is lost.
//!
//! The server keeps ciphertext and a hash only (see
//! [`crate::store::recovery`]). Setting up needs a recent login; using a code
//! needs no session: its two steps are rate limited like a login and answer
//! the same for an unknown email as for a wrong code.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;

use super::accounts::{audit, begin_auth, validate_keys};
use super::extract::ApiJson;
use super::types::{
    B64, PutRecoveryRequest, RecoveryCompleteRequest, RecoveryResponse, RecoveryStartRequest,
    RecoveryStartResponse,
};
use super::validate;
use crate::auth::{self, AuthDevice, ClientAddr, FRESH_LOGIN_MS, limits};
use crate::error::{ApiError, ApiResult};
use crate::state::{AppState, now_millis, rfc3339};
use crate::store::{Account, Recovery, StoreError};

/// Sets up (or replaces) the account's recovery data. Needs a login from
/// the last 5 minutes; the sealed key must be of the account key's version
/// now.
#[utoipa::path(put, path = "/v1/account/recovery", tag = "recovery", security(("bearer" = [])),
    request_body = PutRecoveryRequest,
    responses((status = 204, description = "set up; an earlier code no longer works"),
        (status = 401, body = super::types::Problem, description = "`login_required`: log in again first"),
        (status = 409, body = super::types::Problem, description = "`conflict`: the account key was rotated meanwhile"),
        (status = 422, body = super::types::Problem)))]
pub async fn put(
    State(state): State<AppState>,
    addr: ClientAddr,
    who: AuthDevice,
    ApiJson(req): ApiJson<PutRecoveryRequest>,
) -> ApiResult<StatusCode> {
    if now_millis() - who.authenticated_at > FRESH_LOGIN_MS {
        return Err(ApiError::StaleLogin);
    }
    validate::exact(&req.public_key, 32, "public_key")?;
    validate::exact(&req.signature, 64, "signature")?;
    validate::exact(&req.auth_key, 32, "auth_key")?;
    validate::bounded(&req.sealed_account_key, 81, 1024, "sealed_account_key")?;
    let mut auth_salt = vec![0u8; 16];
    rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut auth_salt);
    let recovery = Recovery {
        public_key: req.public_key.0,
        signature: req.signature.0,
        auth_hash: auth::auth_hash(&auth_salt, &req.auth_key.0),
        auth_salt,
        sealed_account_key: req.sealed_account_key.0,
        account_key_version: req.account_key_version,
        created_at: now_millis(),
    };
    state
        .store
        .put_recovery(who.account_id, &recovery)
        .await
        .map_err(|e| match e {
            StoreError::Conflict => ApiError::Conflict(
                "the account key was rotated meanwhile; sync and set recovery up again".into(),
            ),
            other => other.into(),
        })?;
    audit(
        &state,
        who.account_id,
        "recovery_set_up",
        Some(who.device_id),
        &addr,
        None,
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The account's recovery data (public part), or 404 when none is set up.
#[utoipa::path(get, path = "/v1/account/recovery", tag = "recovery", security(("bearer" = [])),
    responses((status = 200, body = RecoveryResponse),
        (status = 401, body = super::types::Problem),
        (status = 404, body = super::types::Problem, description = "`not_found`: no recovery set up")))]
pub async fn get(
    State(state): State<AppState>,
    who: AuthDevice,
) -> ApiResult<Json<RecoveryResponse>> {
    let r = state
        .store
        .recovery(who.account_id)
        .await?
        .ok_or(ApiError::NotFound)?;
    Ok(Json(RecoveryResponse {
        public_key: B64(r.public_key),
        signature: B64(r.signature),
        account_key_version: r.account_key_version,
        created_at: rfc3339(r.created_at),
    }))
}

/// Removes the account's recovery data (the code stops working).
#[utoipa::path(delete, path = "/v1/account/recovery", tag = "recovery", security(("bearer" = [])),
    responses((status = 204), (status = 401, body = super::types::Problem),
        (status = 404, body = super::types::Problem, description = "`not_found`: no recovery set up")))]
pub async fn delete(
    State(state): State<AppState>,
    addr: ClientAddr,
    who: AuthDevice,
) -> ApiResult<StatusCode> {
    if !state.store.delete_recovery(who.account_id).await? {
        return Err(ApiError::NotFound);
    }
    audit(
        &state,
        who.account_id,
        "recovery_removed",
        Some(who.device_id),
        &addr,
        None,
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The account and recovery data behind an email and a recovery auth key,
/// after the login rate limits; `BadCredentials` alike for an unknown email,
/// an account without recovery and a wrong code.
async fn check_code(
    state: &AppState,
    addr: &ClientAddr,
    email: &str,
    auth_key: &B64,
) -> ApiResult<(Account, Recovery)> {
    let email = begin_auth(state, addr, email).await?;
    validate::exact(auth_key, 32, "auth_key")?;
    let attempt = limits::begin_login(state, &email, None, addr).await?;
    let found = match state.store.account_by_email(&email).await? {
        Some(a) => state.store.recovery(a.id).await?.map(|r| (a, r)),
        None => None,
    };
    let ok = match &found {
        Some((_, r)) => auth::verify_auth_key(&r.auth_salt, &auth_key.0, &r.auth_hash),
        None => {
            let _ = auth::verify_auth_key(&[0; 16], &auth_key.0, &[0; 32]);
            false
        }
    };
    match found.filter(|_| ok) {
        Some(found) => {
            attempt.succeeded(state).await?;
            Ok(found)
        }
        None => {
            if let Some(a) = state.store.account_by_email(&email).await? {
                audit(state, a.id, "recovery_failed", None, addr, None).await?;
            }
            tracing::info!(address = %addr.label(), "recovery code refused");
            Err(ApiError::BadCredentials)
        }
    }
}

/// The first step of a recovery: with the email and the code's auth key,
/// the account key sealed to the code's key and the account's keys to
/// check it against. Changes nothing.
#[utoipa::path(post, path = "/v1/recovery/start", tag = "recovery", request_body = RecoveryStartRequest,
    responses((status = 200, body = RecoveryStartResponse),
        (status = 401, body = super::types::Problem, description = "`bad_credentials`: unknown email, no recovery set up, or a wrong code"),
        (status = 429, body = super::types::Problem)))]
pub async fn start(
    State(state): State<AppState>,
    addr: ClientAddr,
    ApiJson(req): ApiJson<RecoveryStartRequest>,
) -> ApiResult<Json<RecoveryStartResponse>> {
    let (a, r) = check_code(&state, &addr, &req.email, &req.auth_key).await?;
    Ok(Json(RecoveryStartResponse {
        account_id: a.client_id,
        kdf: a.kdf,
        sealed_account_key: B64(r.sealed_account_key),
        account_key_version: r.account_key_version,
        wrapped_private_keys: B64(a.wrapped_private_keys),
        public_x25519: B64(a.public_x25519),
        public_ed25519: B64(a.public_ed25519),
    }))
}

/// The second step: new credentials (as a password change), authorized by
/// the code. In one transaction: the new keys, every session ended, the
/// recovery data deleted (a code works once).
#[utoipa::path(post, path = "/v1/recovery/complete", tag = "recovery", request_body = RecoveryCompleteRequest,
    responses((status = 204, description = "new credentials set; every session ended; the code is used up"),
        (status = 401, body = super::types::Problem, description = "`bad_credentials`: unknown email, no recovery set up, or a wrong code"),
        (status = 409, body = super::types::Problem, description = "`conflict`: the code was used or replaced meanwhile"),
        (status = 422, body = super::types::Problem), (status = 429, body = super::types::Problem)))]
pub async fn complete(
    State(state): State<AppState>,
    addr: ClientAddr,
    ApiJson(req): ApiJson<RecoveryCompleteRequest>,
) -> ApiResult<StatusCode> {
    validate_keys(&req.kdf, &req.salt, &req.auth_key, &req.wrapped_account_key)?;
    validate::exact(&req.mac, 32, "mac")?;
    let (mut a, r) = check_code(&state, &addr, &req.email, &req.recovery_auth_key).await?;
    a.kdf = req.kdf;
    a.salt = req.salt.0;
    a.auth_hash = auth::auth_hash(&a.auth_salt, &req.auth_key.0);
    a.wrapped_account_key = req.wrapped_account_key.0;
    a.password_mac = Some(req.mac.0);
    let ended = state
        .store
        .recover_account(&a, &r.auth_hash)
        .await
        .map_err(|e| match e {
            StoreError::Conflict => {
                ApiError::Conflict("the recovery code was used or replaced meanwhile".into())
            }
            other => other.into(),
        })?;
    state.cache.drop_sessions(&ended).await?;
    audit(&state, a.id, "recovery_used", None, &addr, None).await?;
    tracing::info!(account = %a.id, "account recovered");
    Ok(StatusCode::NO_CONTENT)
}
