//! Item usage (issue 12): each device of an account keeps its own counters
//! of which items it used, how often and when, and uploads them sealed with
//! the account key; the other devices download them and add them up. The
//! server stores one opaque blob per (account, device) and never reads it:
//! which items are used, and when, stays on the clients. Usage is the
//! account's own (a viewer of a shared vault records use without any
//! write access to the vault), and it never touches a vault's records.

use axum::Json;
use axum::extract::State;

use super::extract::{ApiJson, ApiQuery};
use super::types::{B64, DeviceUsage, PutUsageRequest, PutUsageResponse, UsagePage, UsageQuery};
use super::validate;
use super::vaults::Budgeted;
use crate::error::{ApiError, ApiResult};
use crate::state::{AppState, now_millis, rfc3339};

/// The largest usage blob a device may store (the client keeps its
/// counters of the most recently used items within it).
pub const MAX_USAGE_BLOB: usize = 512 * 1024;
/// The smallest: an envelope around nothing (version, nonce, tag).
const MIN_USAGE_BLOB: usize = 41;
/// Devices' blobs per page of `GET /v1/usage` (a page stays under 24 MiB
/// of JSON even when every blob is as large as allowed).
pub const USAGE_PAGE: u32 = 32;

/// Stores this device's usage counters (the device is the session's),
/// replacing the ones it uploaded before.
#[utoipa::path(put, path = "/v1/usage", tag = "usage", security(("bearer" = [])),
    request_body = PutUsageRequest,
    responses((status = 200, body = PutUsageResponse),
        (status = 401, body = super::types::Problem),
        (status = 413, body = super::types::Problem),
        (status = 422, body = super::types::Problem, description = "`validation_failed`: the blob is not 41 bytes to 512 KiB"),
        (status = 429, body = super::types::Problem, description = "`request_budget`: this session's requests per minute are spent (`Retry-After`)")))]
pub async fn put(
    State(state): State<AppState>,
    Budgeted(who): Budgeted,
    ApiJson(req): ApiJson<PutUsageRequest>,
) -> ApiResult<Json<PutUsageResponse>> {
    validate::bounded(&req.blob, MIN_USAGE_BLOB, MAX_USAGE_BLOB, "usage blob")?;
    let revision = state
        .store
        .put_item_usage(who.account_id, who.device_id, &req.blob.0, now_millis())
        .await?;
    Ok(Json(PutUsageResponse { revision }))
}

/// The usage counters of every device of the account (revoked ones
/// included) uploaded after revision `since`, lowest revision first, at
/// most 32 a page.
#[utoipa::path(get, path = "/v1/usage", tag = "usage", security(("bearer" = [])),
    params(UsageQuery),
    responses((status = 200, body = UsagePage),
        (status = 400, body = super::types::Problem, description = "`bad_request`: since is negative"),
        (status = 401, body = super::types::Problem),
        (status = 429, body = super::types::Problem, description = "`request_budget`: this session's requests per minute are spent (`Retry-After`)")))]
pub async fn index(
    State(state): State<AppState>,
    Budgeted(who): Budgeted,
    ApiQuery(q): ApiQuery<UsageQuery>,
) -> ApiResult<Json<UsagePage>> {
    if q.since < 0 {
        return Err(ApiError::BadRequest("since must be 0 or more".into()));
    }
    let blobs = state
        .store
        .item_usage(who.account_id, q.since, USAGE_PAGE)
        .await?;
    let has_more = blobs.len() == USAGE_PAGE as usize;
    let next_since = blobs.last().map_or(q.since, |b| b.revision);
    Ok(Json(UsagePage {
        devices: blobs
            .into_iter()
            .map(|b| DeviceUsage {
                device_id: b.device_id,
                revision: b.revision,
                updated_at: rfc3339(b.updated_at),
                blob: B64(b.blob),
            })
            .collect(),
        has_more,
        next_since,
    }))
}
