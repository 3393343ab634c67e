//! Vaults and their encrypted records: create, list, pull changes, push a
//! batch, item history. The server checks sizes and revisions only.

use axum::Json;
use axum::extract::State;
use std::time::Duration;

use axum::extract::FromRequestParts;
use axum::http::StatusCode;
use axum::http::request::Parts;
use uuid::Uuid;

use super::accounts::audit;
use super::extract::{ApiJson, ApiPath, ApiQuery};
use super::types::{
    B64, ChangesPage, ChangesQuery, CreateVaultRequest, PushRequest, PushResponse, Record,
    VaultResponse,
};
use super::validate;
use crate::auth::{AuthDevice, ClientAddr};
use crate::error::{ApiError, ApiResult};
use crate::events::VaultChanged;
use crate::state::{AppState, now_millis, rfc3339};
use crate::store::{ChangeIn, PushBatch, PushOutcome, Vault};

/// An authenticated device that has spent one request of its session's
/// per-minute budget on the vault routes (`--data-rate-limit`; 429
/// `request_budget` with `Retry-After` when it is spent). The budget is
/// per session, so refreshing the access token does not renew it.
pub struct Budgeted(pub AuthDevice);

impl FromRequestParts<AppState> for Budgeted {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let who = AuthDevice::from_request_parts(parts, state).await?;
        let limit = state.settings.data_rate_limit;
        if limit > 0 {
            let w = state
                .cache
                .hit(
                    &format!("data-rate:{}", who.session_id),
                    Duration::from_secs(60),
                )
                .await?;
            if w.count > limit {
                return Err(ApiError::RequestBudget(w.resets_in));
            }
        }
        Ok(Self(who))
    }
}

/// The largest author signature a version carries (JSON: an id, a number
/// and a signature).
pub(crate) const MAX_AUTHORSHIP: usize = 1024;

/// The account's storage quota, if it has one.
fn quota(state: &AppState) -> Option<u64> {
    let q = state.settings.storage_quota_bytes;
    (q > 0).then_some(q)
}

pub(super) fn response(v: Vault, shared: bool, key_epoch: u32) -> VaultResponse {
    VaultResponse {
        id: v.id,
        wrapped_key: B64(v.wrapped_key),
        meta: B64(v.meta),
        revision: v.revision,
        created_at: rfc3339(v.created_at),
        shared,
        key_epoch,
    }
}

#[utoipa::path(get, path = "/v1/vaults", tag = "vaults", security(("bearer" = [])),
    responses((status = 200, body = Vec<VaultResponse>), (status = 401, body = super::types::Problem)))]
pub async fn index(
    State(state): State<AppState>,
    Budgeted(who): Budgeted,
) -> ApiResult<Json<Vec<VaultResponse>>> {
    let shared = state.store.shared_own(who.account_id).await?;
    let epochs: std::collections::HashMap<Uuid, u32> = state
        .store
        .key_epochs(who.account_id)
        .await?
        .into_iter()
        .collect();
    Ok(Json(
        state
            .store
            .vaults(who.account_id)
            .await?
            .into_iter()
            .map(|v| {
                let is_shared = shared.contains(&v.id);
                let epoch = epochs.get(&v.id).copied().unwrap_or(1);
                response(v, is_shared, epoch)
            })
            .collect(),
    ))
}

#[utoipa::path(post, path = "/v1/vaults", tag = "vaults", security(("bearer" = [])), request_body = CreateVaultRequest,
    responses((status = 201, body = VaultResponse), (status = 409, body = super::types::Problem), (status = 422, body = super::types::Problem)))]
pub async fn create(
    State(state): State<AppState>,
    addr: ClientAddr,
    Budgeted(who): Budgeted,
    ApiJson(req): ApiJson<CreateVaultRequest>,
) -> ApiResult<(StatusCode, Json<VaultResponse>)> {
    validate::bounded(
        &req.wrapped_key,
        41,
        validate::MAX_WRAPPED_KEY,
        "wrapped_key",
    )?;
    validate::bounded(&req.meta, 41, validate::MAX_MANIFEST, "meta")?;
    if let Some(quota) = quota(&state) {
        let used = state.store.usage(who.account_id).await?
            + (req.wrapped_key.0.len() + req.meta.0.len()) as u64;
        if used > quota {
            return Err(ApiError::QuotaExceeded { used, quota });
        }
    }
    let vault = Vault {
        id: req.id,
        account_id: who.account_id,
        wrapped_key: req.wrapped_key.0,
        meta: req.meta.0,
        revision: 0,
        manifest: None,
        created_at: now_millis(),
    };
    state
        .store
        .create_vault(&vault)
        .await
        .map_err(|e| match e {
            crate::store::StoreError::Conflict => {
                ApiError::Conflict("this account already has a vault with this id".into())
            }
            other => other.into(),
        })?;
    audit(
        &state,
        who.account_id,
        "vault_created",
        Some(who.device_id),
        &addr,
        Some(vault.id.to_string()),
    )
    .await?;
    Ok((StatusCode::CREATED, Json(response(vault, false, 1))))
}

#[utoipa::path(get, path = "/v1/vaults/{id}/changes", tag = "vaults", security(("bearer" = [])),
    params(("id" = Uuid, Path), ChangesQuery),
    responses((status = 200, body = ChangesPage), (status = 404, body = super::types::Problem)))]
pub async fn pull(
    State(state): State<AppState>,
    Budgeted(who): Budgeted,
    ApiPath(id): ApiPath<Uuid>,
    ApiQuery(q): ApiQuery<ChangesQuery>,
) -> ApiResult<Json<ChangesPage>> {
    if q.since < 0 {
        return Err(ApiError::BadRequest("since must be 0 or more".into()));
    }
    let limit = q.limit.unwrap_or(500).clamp(1, 1000);
    let a = super::members::member_access(&state, who.account_id, id).await?;
    let pulled = state.store.pull(a.owner, id, q.since, limit).await?;
    let next_since = pulled.records.last().map_or(q.since, |r| r.revision);
    let has_more = pulled.records.len() == limit as usize && next_since < pulled.head;
    Ok(Json(ChangesPage {
        vault_id: id,
        head: pulled.head,
        records: pulled.records,
        has_more,
        next_since,
        manifest: pulled.manifest.map(B64),
    }))
}

#[utoipa::path(post, path = "/v1/vaults/{id}/changes", tag = "vaults", security(("bearer" = [])),
    params(("id" = Uuid, Path)), request_body = PushRequest,
    responses((status = 200, body = PushResponse, description = "every change applied, or none (conflicts listed)"),
        (status = 403, body = super::types::Problem, description = "`forbidden`: a viewer of a shared vault, or an invitation not accepted yet; nothing applied"),
        (status = 404, body = super::types::Problem),
        (status = 409, body = super::types::Problem, description = "`key_rotated`: a shared vault's key was rotated, and the batch is sealed under another `key_epoch` (or carries none); take the new key (`GET /v1/vaults/{id}/key`) and push again. `head_moved`: the vault's head is not `expected_head` (the problem's `head` member says what it is). Either way nothing applied"),
        (status = 413, body = super::types::Problem), (status = 422, body = super::types::Problem),
        (status = 429, body = super::types::Problem, description = "`request_budget`: this session's requests per minute are spent (`Retry-After`)"),
        (status = 507, body = super::types::Problem, description = "`quota_exceeded`: the batch would take the account over its storage quota; nothing applied")))]
pub async fn push(
    State(state): State<AppState>,
    Budgeted(who): Budgeted,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(req): ApiJson<PushRequest>,
) -> ApiResult<Json<PushResponse>> {
    let a = super::members::member_access(&state, who.account_id, id).await?;
    if !a.writes() {
        return Err(ApiError::Forbidden(
            "a viewer of this vault cannot change its items; nothing was stored".into(),
        ));
    }
    if req.changes.len() > validate::MAX_BATCH {
        return Err(ApiError::Validation(format!(
            "at most {} changes per batch",
            validate::MAX_BATCH
        )));
    }
    let mut changes = Vec::with_capacity(req.changes.len());
    for c in req.changes {
        if c.base_revision < 0 || c.version == 0 || c.version > i64::MAX as u64 {
            return Err(ApiError::Validation(format!(
                "change for item {}: base_revision must be ≥ 0 and version ≥ 1",
                c.item_id
            )));
        }
        if c.deleted {
            if !(c.wrapped_key.0.is_empty() && c.overview.0.is_empty() && c.details.0.is_empty()) {
                return Err(ApiError::Validation(format!(
                    "deletion of item {} must not carry data",
                    c.item_id
                )));
            }
        } else {
            validate::bounded(&c.wrapped_key, 41, validate::MAX_WRAPPED_KEY, "wrapped_key")?;
            validate::bounded(&c.overview, 41, validate::MAX_BLOB, "overview")?;
            validate::bounded(&c.details, 41, validate::MAX_BLOB, "details")?;
        }
        if let Some(a) = &c.authorship {
            validate::bounded(a, 1, MAX_AUTHORSHIP, "authorship")?;
        }
        changes.push(ChangeIn {
            item_id: c.item_id,
            base_revision: c.base_revision,
            version: c.version,
            deleted: c.deleted,
            wrapped_key: c.wrapped_key.0,
            overview: c.overview.0,
            details: c.details.0,
            authorship: c.authorship.map(|a| a.0),
        });
    }
    if let Some(m) = &req.manifest {
        validate::bounded(m, 1, validate::MAX_MANIFEST, "manifest")?;
    }
    if req.expected_head.is_some_and(|h| h < 0) {
        return Err(ApiError::Validation(
            "expected_head must be 0 or more".into(),
        ));
    }
    let batch = PushBatch {
        client_change_id: req.client_change_id,
        changes: &changes,
        manifest: req.manifest.as_ref().map(|m| m.0.as_slice()),
        expected_head: req.expected_head,
        quota: quota(&state),
        key_epoch: req.key_epoch,
    };
    match state.store.push(a.owner, id, batch, now_millis()).await? {
        PushOutcome::Done(out) => {
            if !out.applied.is_empty() {
                state.events.publish(VaultChanged {
                    account_id: a.owner,
                    vault_id: id,
                    head: out.head,
                    device_id: who.device_id,
                });
            }
            Ok(Json(out))
        }
        // Published when it was applied the first time.
        PushOutcome::Replayed(out) => Ok(Json(out)),
        PushOutcome::HeadMoved { head } => Err(ApiError::HeadMoved { head }),
        PushOutcome::QuotaExceeded { used, quota } => Err(ApiError::QuotaExceeded { used, quota }),
        PushOutcome::KeyRotated { epoch } => Err(ApiError::KeyRotated { epoch }),
    }
}

#[utoipa::path(get, path = "/v1/vaults/{id}/items/{item}/history", tag = "vaults", security(("bearer" = [])),
    params(("id" = Uuid, Path), ("item" = Uuid, Path)),
    responses((status = 200, body = Vec<Record>), (status = 404, body = super::types::Problem)))]
pub async fn history(
    State(state): State<AppState>,
    Budgeted(who): Budgeted,
    ApiPath((id, item)): ApiPath<(Uuid, Uuid)>,
) -> ApiResult<Json<Vec<Record>>> {
    let a = super::members::member_access(&state, who.account_id, id).await?;
    Ok(Json(state.store.item_history(a.owner, id, item).await?))
}
