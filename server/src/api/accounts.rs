//! Accounts: prelogin, register, login, refresh, logout, account info and
//! password change.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::extract::ApiJson;
use super::types::{
    AccountResponse, B64, ChangePasswordRequest, KdfParams, LoginRequest, PreloginRequest,
    PreloginResponse, RefreshRequest, RegisterRequest, RotateAccountKeyRequest, TokenResponse,
};
use super::validate;
use crate::auth::{
    self, ACCESS_PREFIX, AuthDevice, ClientAddr, FRESH_LOGIN_MS, REFRESH_PREFIX, limits,
};
use crate::error::{ApiError, ApiResult};
use crate::settings::Registration;
use crate::state::{AppState, now_millis, rfc3339};
use crate::store::{
    Account, AccountKeyRotation, AuditEntry, Device, NewTokens, RefreshOutcome, Session, StoreError,
};

/// Parameters made up for unknown emails look like a default registration.
const FAKE_KDF: KdfParams = KdfParams {
    memory_kib: 256 * 1024,
    iterations: 3,
    parallelism: 4,
};

/// A stable, plausible UUIDv7 for an unknown email: a timestamp within the
/// two years before 2026-11 and random-looking bits, all from an HMAC.
fn fake_account_id(mac: &[u8]) -> uuid::Uuid {
    const START_MS: u64 = 1_700_000_000_000;
    const SPAN_MS: u64 = 2 * 365 * 24 * 3600 * 1000;
    let mut n = [0u8; 8];
    n.copy_from_slice(&mac[..8]);
    let ms = START_MS + u64::from_be_bytes(n) % SPAN_MS;
    let mut rand = [0u8; 10];
    rand.copy_from_slice(&mac[8..18]);
    uuid::Builder::from_unix_timestamp_millis(ms, &rand).into_uuid()
}

/// Records a security event for the account.
pub(crate) async fn audit(
    state: &AppState,
    account_id: uuid::Uuid,
    kind: &str,
    device_id: Option<uuid::Uuid>,
    addr: &ClientAddr,
    detail: Option<String>,
) -> ApiResult<()> {
    state
        .store
        .add_audit(&AuditEntry {
            id: 0,
            account_id,
            at: now_millis(),
            kind: kind.to_owned(),
            device_id,
            address: addr.0.map(|a| a.to_string()),
            detail,
        })
        .await?;
    Ok(())
}

/// A fresh pair of tokens and their expiry times.
struct Issued {
    access: String,
    refresh: String,
    access_expires_at: i64,
    refresh_expires_at: i64,
}

impl Issued {
    fn new(state: &AppState, now: i64) -> Self {
        let s = &state.settings;
        let ttl_ms = |secs: u64| i64::try_from(secs.saturating_mul(1000)).unwrap_or(i64::MAX);
        Self {
            access: auth::new_token(ACCESS_PREFIX),
            refresh: auth::new_token(REFRESH_PREFIX),
            access_expires_at: now.saturating_add(ttl_ms(s.access_token_ttl_secs)),
            refresh_expires_at: now.saturating_add(ttl_ms(s.refresh_token_ttl_secs)),
        }
    }

    fn response(
        self,
        state: &AppState,
        account_id: uuid::Uuid,
        device_id: uuid::Uuid,
    ) -> TokenResponse {
        TokenResponse {
            account_id,
            device_id,
            access_token: self.access,
            access_expires_in: state.settings.access_token_ttl_secs,
            refresh_token: self.refresh,
            refresh_expires_in: state.settings.refresh_token_ttl_secs,
        }
    }
}

/// Starts a session for a device and returns its tokens.
async fn open_session(
    state: &AppState,
    account: &Account,
    device_id: uuid::Uuid,
) -> ApiResult<TokenResponse> {
    let now = now_millis();
    let issued = Issued::new(state, now);
    let session = Session {
        id: uuid::Uuid::now_v7(),
        account_id: account.id,
        device_id,
        access_hash: auth::token_hash(&issued.access),
        access_expires_at: issued.access_expires_at,
        refresh_hash: auth::token_hash(&issued.refresh),
        refresh_expires_at: issued.refresh_expires_at,
        authenticated_at: now,
    };
    state.store.create_session(&session).await?;
    Ok(issued.response(state, account.client_id, device_id))
}

/// KDF parameters and salt for an email (made up, but stable, when unknown).
#[utoipa::path(post, path = "/v1/accounts/prelogin", tag = "accounts", request_body = PreloginRequest,
    responses((status = 200, body = PreloginResponse), (status = 422, body = super::types::Problem), (status = 429, body = super::types::Problem)))]
pub async fn prelogin(
    State(state): State<AppState>,
    addr: ClientAddr,
    ApiJson(req): ApiJson<PreloginRequest>,
) -> ApiResult<Json<PreloginResponse>> {
    let email = begin_auth(&state, &addr, &req.email).await?;
    // Both answers are computed every time, so real and unknown emails take
    // the same work.
    let account = state.store.account_by_email(&email).await?;
    let salt = prelogin_mac(&state, b"openk/prelogin-salt|", &email)?[..16].to_vec();
    let fake_id = fake_account_id(&prelogin_mac(&state, b"openk/prelogin-id|", &email)?);
    Ok(Json(match account {
        Some(a) => PreloginResponse {
            account_id: a.client_id,
            kdf: a.kdf,
            salt: B64(a.salt),
        },
        None => PreloginResponse {
            account_id: fake_id,
            kdf: FAKE_KDF,
            salt: B64(salt),
        },
    }))
}

/// What every route that takes an email does first: spends the caller's
/// request budget, then brings the email under the email rule.
pub(crate) async fn begin_auth(
    state: &AppState,
    addr: &ClientAddr,
    email: &str,
) -> ApiResult<String> {
    limits::spend_auth_budget(state, addr).await?;
    validate::email(email)
}

/// The password-derived values register and a password change take: KDF
/// parameters, salt, auth key and wrapped account key.
pub(crate) fn validate_keys(
    kdf: &KdfParams,
    salt: &B64,
    auth_key: &B64,
    wrapped_account_key: &B64,
) -> ApiResult<()> {
    validate::kdf(kdf)?;
    validate::bounded(salt, 16, 64, "salt")?;
    validate::exact(auth_key, 32, "auth_key")?;
    validate::bounded(
        wrapped_account_key,
        41,
        validate::MAX_WRAPPED_KEY,
        "wrapped_account_key",
    )
}

/// A device as register and login take it: its description and, if given,
/// its 32-byte device key.
fn validate_device(device: &super::types::DeviceInfo, proof: Option<&B64>) -> ApiResult<()> {
    validate::device(device)?;
    if let Some(proof) = proof {
        validate::exact(proof, 32, "device_proof")?;
    }
    Ok(())
}

/// HMAC-SHA256 under the server's prelogin secret: stable made-up values for unknown emails.
fn prelogin_mac(state: &AppState, purpose: &[u8], email: &str) -> ApiResult<Vec<u8>> {
    let mut mac = Hmac::<Sha256>::new_from_slice(&state.prelogin_secret)
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    mac.update(purpose);
    mac.update(email.as_bytes());
    Ok(mac.finalize().into_bytes().to_vec())
}

/// Creates an account with its first device and logs that device in.
#[utoipa::path(post, path = "/v1/accounts/register", tag = "accounts", request_body = RegisterRequest,
    responses((status = 201, body = TokenResponse),
        (status = 403, body = super::types::Problem, description = "`registration_closed`, `invite_required` or `invite_invalid` (unknown or used code)"),
        (status = 409, body = super::types::Problem), (status = 422, body = super::types::Problem)))]
pub async fn register(
    State(state): State<AppState>,
    addr: ClientAddr,
    ApiJson(req): ApiJson<RegisterRequest>,
) -> ApiResult<(StatusCode, Json<TokenResponse>)> {
    limits::spend_auth_budget(&state, &addr).await?;
    let invite = invite_hash(&state, req.invite.as_deref())?;
    let email = validate::email(&req.email)?;
    validate_keys(&req.kdf, &req.salt, &req.auth_key, &req.wrapped_account_key)?;
    validate::exact(&req.public_x25519, 32, "public_x25519")?;
    validate::exact(&req.public_ed25519, 32, "public_ed25519")?;
    validate::bounded(
        &req.wrapped_private_keys,
        41,
        validate::MAX_WRAPPED_KEY,
        "wrapped_private_keys",
    )?;
    validate_device(&req.device, req.device_proof.as_ref())?;
    if let Some(signature) = &req.identity_signature {
        super::identities::check(1, signature)?;
    }
    let now = now_millis();
    let auth_salt = {
        use rand::RngCore;
        let mut s = vec![0u8; 16];
        rand::rngs::OsRng.fill_bytes(&mut s);
        s
    };
    // The server keys the account by an id of its own: the client's id is a
    // label, so a taken one is no way to block or probe a registration.
    let account = Account {
        id: uuid::Uuid::now_v7(),
        client_id: req.account_id,
        email,
        kdf: req.kdf,
        salt: req.salt.0,
        auth_hash: auth::auth_hash(&auth_salt, &req.auth_key.0),
        auth_salt,
        wrapped_account_key: req.wrapped_account_key.0,
        public_x25519: req.public_x25519.0,
        public_ed25519: req.public_ed25519.0,
        wrapped_private_keys: req.wrapped_private_keys.0,
        created_at: now,
        password_mac: None,
    };
    let device = Device {
        id: req.device.id,
        account_id: account.id,
        name: req.device.name.trim().to_owned(),
        created_at: now,
        last_seen_at: now,
        revoked_at: None,
    };
    let created = match &invite {
        None => state
            .store
            .create_account(&account, &device)
            .await
            .map(|()| true),
        Some(hash) => {
            state
                .store
                .create_invited_account(&account, &device, hash)
                .await
        }
    };
    let created = created.map_err(|e| match e {
        crate::store::StoreError::Conflict => {
            ApiError::Conflict("an account with this email already exists; log in instead".into())
        }
        other => other.into(),
    })?;
    if !created {
        return Err(ApiError::InviteInvalid);
    }
    if let Some(proof) = &req.device_proof {
        state
            .store
            .set_device_key_hash(account.id, device.id, &auth::device_key_hash(&proof.0))
            .await?;
    }
    if let Some(platform) = &req.device.platform {
        state
            .store
            .set_device_details(account.id, device.id, Some(platform.trim()), None)
            .await?;
    }
    if let Some(signature) = req.identity_signature {
        super::identities::put(&state, account.id, 1, signature.0).await?;
    }
    audit(&state, account.id, "register", Some(device.id), &addr, None).await?;
    audit(
        &state,
        account.id,
        "device_added",
        Some(device.id),
        &addr,
        Some(device.name.clone()),
    )
    .await?;
    tracing::info!(account = %account.id, device = %device.id, "account registered");
    Ok((
        StatusCode::CREATED,
        Json(open_session(&state, &account, device.id).await?),
    ))
}

/// What the server's registration mode asks of a register request: `None`
/// (open) or the hash of the invite code it carries.
fn invite_hash(state: &AppState, invite: Option<&str>) -> ApiResult<Option<Vec<u8>>> {
    match state.settings.registration {
        Registration::Open => Ok(None),
        Registration::Closed => Err(ApiError::RegistrationClosed),
        Registration::InviteOnly => {
            let code = invite
                .map(str::trim)
                .filter(|c| !c.is_empty())
                .ok_or(ApiError::InviteRequired)?;
            if code.len() > 100 {
                return Err(ApiError::InviteInvalid);
            }
            Ok(Some(auth::token_hash(code)))
        }
    }
}

/// Proves the auth key and starts a session for the device.
#[utoipa::path(post, path = "/v1/accounts/login", tag = "accounts", request_body = LoginRequest,
    responses((status = 200, body = TokenResponse), (status = 401, body = super::types::Problem), (status = 429, body = super::types::Problem)))]
pub async fn login(
    State(state): State<AppState>,
    addr: ClientAddr,
    ApiJson(req): ApiJson<LoginRequest>,
) -> ApiResult<Json<TokenResponse>> {
    let email = begin_auth(&state, &addr, &req.email).await?;
    validate::exact(&req.auth_key, 32, "auth_key")?;
    validate_device(&req.device, req.device_proof.as_ref())?;
    // Real and unknown emails take the same steps (a device-key lookup, an
    // auth-hash comparison, an audit write off the response path), so that
    // neither the answer nor its timing tells them apart.
    let account = state.store.account_by_email(&email).await?;
    let account_id = match &account {
        Some(a) => a.id,
        None => fake_account_id(&prelogin_mac(&state, b"openk/prelogin-id|", &email)?),
    };
    let key_hash = state
        .store
        .device_key_hash(account_id, req.device.id)
        .await?;
    let proven = match (&key_hash, &req.device_proof) {
        (Some(hash), Some(proof)) => auth::verify_device_key(&proof.0, hash),
        _ => false,
    };
    let attempt = limits::begin_login(
        &state,
        &email,
        proven.then_some((account_id, req.device.id)),
        &addr,
    )
    .await?;
    let ok = match &account {
        Some(a) => auth::verify_auth_key(&a.auth_salt, &req.auth_key.0, &a.auth_hash),
        None => {
            let _ = auth::verify_auth_key(&[0; 16], &req.auth_key.0, &[0; 32]);
            false
        }
    };
    let Some(account) = account.as_ref().filter(|_| ok) else {
        let audit_state = state.clone();
        let real = account.is_some();
        tokio::spawn(async move {
            if real
                && let Err(e) =
                    audit(&audit_state, account_id, "login_failed", None, &addr, None).await
            {
                tracing::warn!(error = %e, "could not record a failed login");
            }
        });
        tracing::info!(address = %addr.label(), "login failed");
        return Err(ApiError::BadCredentials);
    };
    attempt.succeeded(&state).await?;
    let now = now_millis();
    // A device let in by an approval: the request must be this account's,
    // approved and not used yet (it is used now).
    let approved_by = match req.approval {
        None => None,
        Some(id) => Some(
            state
                .store
                .use_approval(account.id, id, now)
                .await?
                .ok_or_else(|| {
                    ApiError::Conflict(
                        "this device approval is not approved, has expired or was used; \
                         ask again with `openk login --approve`"
                            .into(),
                    )
                })?,
        ),
    };
    let known = state.store.device(account.id, req.device.id).await?;
    state
        .store
        .upsert_device(&Device {
            id: req.device.id,
            account_id: account.id,
            name: req.device.name.trim().to_owned(),
            created_at: now,
            last_seen_at: now,
            revoked_at: None,
        })
        .await
        .map_err(|e| match e {
            crate::store::StoreError::Conflict => ApiError::Conflict(
                "this device was removed from the account; sign in as a new device".into(),
            ),
            other => other.into(),
        })?;
    if known.is_none() {
        audit(
            &state,
            account.id,
            "device_added",
            Some(req.device.id),
            &addr,
            Some(req.device.name.trim().to_owned()),
        )
        .await?;
    }
    audit(
        &state,
        account.id,
        "login",
        Some(req.device.id),
        &addr,
        None,
    )
    .await?;
    if req.device.platform.is_some() || approved_by.is_some() {
        state
            .store
            .set_device_details(
                account.id,
                req.device.id,
                req.device.platform.as_deref().map(str::trim),
                approved_by,
            )
            .await?;
    }
    if let Some(proof) = req.device_proof.as_ref().filter(|_| !proven) {
        state
            .store
            .set_device_key_hash(account.id, req.device.id, &auth::device_key_hash(&proof.0))
            .await?;
    }
    Ok(Json(open_session(&state, account, req.device.id).await?))
}

/// Trades a refresh token for new tokens. A refresh token works once.
#[utoipa::path(post, path = "/v1/accounts/refresh", tag = "accounts", request_body = RefreshRequest,
    responses((status = 200, body = TokenResponse), (status = 401, body = super::types::Problem)))]
pub async fn refresh(
    State(state): State<AppState>,
    addr: ClientAddr,
    ApiJson(req): ApiJson<RefreshRequest>,
) -> ApiResult<Json<TokenResponse>> {
    limits::spend_auth_budget(&state, &addr).await?;
    if !req.refresh_token.starts_with(REFRESH_PREFIX) || req.refresh_token.len() > 100 {
        return Err(ApiError::Unauthorized);
    }
    let now = now_millis();
    let issued = Issued::new(&state, now);
    let outcome = state
        .store
        .refresh_session(
            &auth::token_hash(&req.refresh_token),
            NewTokens {
                access_hash: &auth::token_hash(&issued.access),
                access_expires_at: issued.access_expires_at,
                refresh_hash: &auth::token_hash(&issued.refresh),
                refresh_expires_at: issued.refresh_expires_at,
            },
            now,
        )
        .await?;
    match outcome {
        RefreshOutcome::Rotated {
            session,
            replaced_access_hash,
        } => {
            state.cache.drop_sessions(&[replaced_access_hash]).await?;
            // The response names the account by the client's id for it.
            let account = state
                .store
                .account(session.account_id)
                .await?
                .ok_or(ApiError::Unauthorized)?;
            Ok(Json(issued.response(
                &state,
                account.client_id,
                session.device_id,
            )))
        }
        RefreshOutcome::Reused {
            account_id,
            device_id,
            revoked_access_hashes,
        } => {
            state.cache.drop_sessions(&revoked_access_hashes).await?;
            audit(
                &state,
                account_id,
                "refresh_reuse",
                Some(device_id),
                &addr,
                None,
            )
            .await?;
            tracing::warn!(account = %account_id, device = %device_id, "refresh token reused: device session ended");
            Err(ApiError::Unauthorized)
        }
        RefreshOutcome::Invalid => Err(ApiError::Unauthorized),
    }
}

/// Ends the calling device's session.
#[utoipa::path(post, path = "/v1/accounts/logout", tag = "accounts", security(("bearer" = [])),
    responses((status = 204), (status = 401, body = super::types::Problem)))]
pub async fn logout(
    State(state): State<AppState>,
    addr: ClientAddr,
    who: AuthDevice,
) -> ApiResult<StatusCode> {
    if let Some(hash) = state.store.delete_session(who.session_id).await? {
        state.cache.drop_sessions(&[hash]).await?;
    }
    audit(
        &state,
        who.account_id,
        "logout",
        Some(who.device_id),
        &addr,
        None,
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The account and its wrapped keys (what a new device needs to unlock).
#[utoipa::path(get, path = "/v1/account", tag = "accounts", security(("bearer" = [])),
    responses((status = 200, body = AccountResponse), (status = 401, body = super::types::Problem)))]
pub async fn account(
    State(state): State<AppState>,
    who: AuthDevice,
) -> ApiResult<Json<AccountResponse>> {
    let a = state
        .store
        .account(who.account_id)
        .await?
        .ok_or(ApiError::Unauthorized)?;
    let identity = state.store.identity(a.id).await?;
    Ok(Json(AccountResponse {
        account_id: a.client_id,
        email: a.email,
        kdf: a.kdf,
        salt: B64(a.salt),
        wrapped_account_key: B64(a.wrapped_account_key),
        public_x25519: B64(a.public_x25519),
        public_ed25519: B64(a.public_ed25519),
        wrapped_private_keys: B64(a.wrapped_private_keys),
        key_version: identity.as_ref().map_or(1, |i| i.key_version),
        identity_signature: identity.map(|i| B64(i.signature)),
        created_at: rfc3339(a.created_at),
        password_mac: a.password_mac.map(B64),
        account_key_version: state.store.account_key_version(a.id).await?,
    }))
}

/// Rotates the account key: the new key wrapped as before (same password
/// and Secret Key), the private keys and every vault of the account
/// re-wrapped under it, with the client's MAC, in one transaction at the
/// next `account_key_version`; ends the account's other sessions (their
/// devices take the new key at their next login). Needs a login from the
/// last 5 minutes.
#[utoipa::path(post, path = "/v1/account/key", tag = "accounts", security(("bearer" = [])), request_body = RotateAccountKeyRequest,
    responses((status = 204, description = "rotated; the other sessions ended"),
        (status = 401, body = super::types::Problem, description = "`stale_login`: log in again first"),
        (status = 409, body = super::types::Problem, description = "`conflict`: not the next key version, or the vaults listed are not exactly the account's; nothing changed"),
        (status = 422, body = super::types::Problem)))]
pub async fn rotate_key(
    State(state): State<AppState>,
    addr: ClientAddr,
    who: AuthDevice,
    ApiJson(req): ApiJson<RotateAccountKeyRequest>,
) -> ApiResult<StatusCode> {
    if now_millis() - who.authenticated_at > FRESH_LOGIN_MS {
        return Err(ApiError::StaleLogin);
    }
    validate::bounded(
        &req.wrapped_account_key,
        41,
        validate::MAX_WRAPPED_KEY,
        "wrapped_account_key",
    )?;
    validate::bounded(&req.wrapped_private_keys, 41, 1024, "wrapped_private_keys")?;
    validate::exact(&req.mac, 32, "mac")?;
    if req.vaults.len() > 10_000 {
        return Err(ApiError::Validation("at most 10000 vaults".into()));
    }
    let mut vaults = Vec::with_capacity(req.vaults.len());
    for v in req.vaults {
        validate::bounded(&v.wrapped_key, 41, validate::MAX_WRAPPED_KEY, "wrapped_key")?;
        vaults.push((v.id, v.wrapped_key.0));
    }
    if let Some(sealed) = &req.recovery_sealed_account_key {
        validate::bounded(sealed, 81, 1024, "recovery_sealed_account_key")?;
    }
    if req.emergency.len() > 1000 {
        return Err(ApiError::Validation("at most 1000 emergency grants".into()));
    }
    let mut emergency = Vec::with_capacity(req.emergency.len());
    for e in req.emergency {
        validate::bounded(&e.sealed, 81, 1024, "emergency sealed")?;
        emergency.push((e.id, e.sealed.0));
    }
    let rotation = AccountKeyRotation {
        version: req.account_key_version,
        wrapped_account_key: req.wrapped_account_key.0,
        wrapped_private_keys: req.wrapped_private_keys.0,
        mac: req.mac.0,
        vaults,
        recovery: req.recovery_sealed_account_key.map(|b| b.0),
        emergency,
    };
    let ended = state
        .store
        .rotate_account_key(who.account_id, &rotation, who.session_id)
        .await
        .map_err(|e| match e {
            StoreError::Conflict => ApiError::Conflict(
                "the account key changed meanwhile, the vaults listed are not exactly the \
                 account's, the account's recovery was set up or used meanwhile, or the \
                 emergency grants sealed to are not exactly the account's; sync and try again"
                    .into(),
            ),
            other => other.into(),
        })?;
    state.cache.drop_sessions(&ended).await?;
    audit(
        &state,
        who.account_id,
        "account_key_rotated",
        Some(who.device_id),
        &addr,
        None,
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Changes the master password: new KDF parameters, salt, auth key,
/// re-wrapped account key and the client's MAC over them (stored as given,
/// returned by `GET /v1/account`). Needs a login from the last 5 minutes; ends the
/// account's other sessions.
#[utoipa::path(post, path = "/v1/account/password", tag = "accounts", security(("bearer" = [])), request_body = ChangePasswordRequest,
    responses((status = 204), (status = 401, body = super::types::Problem), (status = 422, body = super::types::Problem)))]
pub async fn change_password(
    State(state): State<AppState>,
    addr: ClientAddr,
    who: AuthDevice,
    ApiJson(req): ApiJson<ChangePasswordRequest>,
) -> ApiResult<StatusCode> {
    if now_millis() - who.authenticated_at > FRESH_LOGIN_MS {
        return Err(ApiError::StaleLogin);
    }
    validate_keys(&req.kdf, &req.salt, &req.auth_key, &req.wrapped_account_key)?;
    validate::exact(&req.mac, 32, "mac")?;
    let mut a = state
        .store
        .account(who.account_id)
        .await?
        .ok_or(ApiError::Unauthorized)?;
    a.kdf = req.kdf;
    a.salt = req.salt.0;
    a.auth_hash = auth::auth_hash(&a.auth_salt, &req.auth_key.0);
    a.wrapped_account_key = req.wrapped_account_key.0;
    a.password_mac = Some(req.mac.0);
    // The new keys and the end of every other session: one transaction.
    let ended = state.store.change_password(&a, who.session_id).await?;
    state.cache.drop_sessions(&ended).await?;
    audit(
        &state,
        a.id,
        "password_changed",
        Some(who.device_id),
        &addr,
        None,
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}
