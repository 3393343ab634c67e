//! The caller's own security events.

use axum::Json;
use axum::extract::State;

use super::extract::ApiQuery;
use super::types::{AuditEvent, AuditQuery};
use crate::auth::AuthDevice;
use crate::error::ApiResult;
use crate::state::{AppState, rfc3339};

#[utoipa::path(get, path = "/v1/audit", tag = "audit", security(("bearer" = [])), params(AuditQuery),
    responses((status = 200, body = Vec<AuditEvent>), (status = 401, body = super::types::Problem)))]
pub async fn index(
    State(state): State<AppState>,
    who: AuthDevice,
    ApiQuery(q): ApiQuery<AuditQuery>,
) -> ApiResult<Json<Vec<AuditEvent>>> {
    let limit = q.limit.unwrap_or(100).clamp(1, 1000);
    let events = state.store.audit(who.account_id, limit).await?;
    Ok(Json(
        events
            .into_iter()
            .map(|e| AuditEvent {
                id: e.id,
                at: rfc3339(e.at),
                kind: e.kind,
                device_id: e.device_id,
                address: e.address,
                detail: e.detail,
            })
            .collect(),
    ))
}
