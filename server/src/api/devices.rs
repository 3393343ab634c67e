//! Devices: list, rename, revoke (its tokens die at once).

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use uuid::Uuid;

use super::accounts::audit;
use super::extract::{ApiJson, ApiPath};
use super::types::{DeviceResponse, RenameDeviceRequest};
use super::validate;
use crate::auth::{AuthDevice, ClientAddr};
use crate::error::{ApiError, ApiResult};
use crate::state::{AppState, rfc3339};

#[utoipa::path(get, path = "/v1/devices", tag = "devices", security(("bearer" = [])),
    responses((status = 200, body = Vec<DeviceResponse>), (status = 401, body = super::types::Problem)))]
pub async fn index(
    State(state): State<AppState>,
    who: AuthDevice,
) -> ApiResult<Json<Vec<DeviceResponse>>> {
    let devices = state.store.devices(who.account_id).await?;
    let details = state.store.device_details(who.account_id).await?;
    Ok(Json(
        devices
            .into_iter()
            .filter(|d| d.revoked_at.is_none())
            .map(|d| {
                let detail = details.iter().find(|x| x.id == d.id);
                DeviceResponse {
                    current: d.id == who.device_id,
                    id: d.id,
                    name: d.name,
                    created_at: rfc3339(d.created_at),
                    last_seen_at: rfc3339(d.last_seen_at),
                    platform: detail.and_then(|x| x.platform.clone()),
                    approved_by: detail.and_then(|x| x.approved_by),
                }
            })
            .collect(),
    ))
}

#[utoipa::path(get, path = "/v1/devices/{id}", tag = "devices", security(("bearer" = [])),
    params(("id" = Uuid, Path)), responses((status = 200, body = DeviceResponse), (status = 404, body = super::types::Problem)))]
pub async fn get(
    State(state): State<AppState>,
    who: AuthDevice,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<Json<DeviceResponse>> {
    let d = live_device(&state, &who, id).await?;
    let details = state.store.device_details(who.account_id).await?;
    let detail = details.into_iter().find(|x| x.id == d.id);
    Ok(Json(DeviceResponse {
        current: d.id == who.device_id,
        id: d.id,
        name: d.name,
        created_at: rfc3339(d.created_at),
        last_seen_at: rfc3339(d.last_seen_at),
        platform: detail.as_ref().and_then(|x| x.platform.clone()),
        approved_by: detail.and_then(|x| x.approved_by),
    }))
}

#[utoipa::path(patch, path = "/v1/devices/{id}", tag = "devices", security(("bearer" = [])),
    params(("id" = Uuid, Path)), request_body = RenameDeviceRequest,
    responses((status = 200, body = DeviceResponse), (status = 404, body = super::types::Problem), (status = 422, body = super::types::Problem)))]
pub async fn rename(
    State(state): State<AppState>,
    addr: ClientAddr,
    who: AuthDevice,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(req): ApiJson<RenameDeviceRequest>,
) -> ApiResult<Json<DeviceResponse>> {
    validate::name(&req.name, "device name")?;
    let name = req.name.trim().to_owned();
    live_device(&state, &who, id).await?;
    state.store.rename_device(who.account_id, id, &name).await?;
    audit(
        &state,
        who.account_id,
        "device_renamed",
        Some(id),
        &addr,
        Some(name),
    )
    .await?;
    get(State(state), who, ApiPath(id)).await
}

#[utoipa::path(delete, path = "/v1/devices/{id}", tag = "devices", security(("bearer" = [])),
    params(("id" = Uuid, Path)), responses((status = 204), (status = 404, body = super::types::Problem)))]
pub async fn revoke(
    State(state): State<AppState>,
    addr: ClientAddr,
    who: AuthDevice,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<StatusCode> {
    live_device(&state, &who, id).await?;
    let ended = state
        .store
        .revoke_device(who.account_id, id, crate::state::now_millis())
        .await?;
    state.cache.drop_sessions(&ended).await?;
    audit(
        &state,
        who.account_id,
        "device_revoked",
        Some(id),
        &addr,
        None,
    )
    .await?;
    tracing::info!(account = %who.account_id, device = %id, "device revoked");
    Ok(StatusCode::NO_CONTENT)
}

/// The caller's account's device `id` if it is not revoked; anything else
/// (another account's, unknown, revoked) is `404`.
async fn live_device(
    state: &AppState,
    who: &AuthDevice,
    id: Uuid,
) -> ApiResult<crate::store::Device> {
    state
        .store
        .device(who.account_id, id)
        .await?
        .filter(|d| d.revoked_at.is_none())
        .ok_or(ApiError::NotFound)
}
