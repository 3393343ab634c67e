//! API errors: RFC 9457 `application/problem+json` with a stable `code`
//! (every code is listed in docs/errors.md). 4xx bodies never carry
//! internals; 5xx causes are logged with the request id, not returned.

use std::time::Duration;

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::api::types::Problem;
use crate::cache::CacheError;
use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    Validation(String),
    #[error("authentication required")]
    Unauthorized,
    #[error("wrong email or auth key")]
    BadCredentials,
    #[error("this needs a recent login: log in again")]
    StaleLogin,
    #[error("not found")]
    NotFound,
    #[error("{0}")]
    Conflict(String),
    /// A push's `expected_head` is not the vault's head any more.
    #[error("the vault moved on to revision {head}; pull and push again")]
    HeadMoved { head: i64 },
    /// A push to a shared vault sealed under another key epoch than the
    /// vault's (its key was rotated).
    #[error(
        "the vault's key was rotated (epoch {epoch}); sync to take the new key, then push again"
    )]
    KeyRotated { epoch: u32 },
    #[error("request body too large")]
    TooLarge,
    #[error("too many attempts, try again in {} s", .0.as_secs().max(1))]
    RateLimited(Duration),
    /// The caller's role in a shared vault does not allow this.
    #[error("{0}")]
    Forbidden(String),
    /// An emergency grant's wait still runs (seconds left).
    #[error("the emergency access wait has {0} s left; ask again then")]
    EmergencyWaiting(u64),
    #[error("this server does not take new accounts; ask its operator")]
    RegistrationClosed,
    #[error(
        "this server takes new accounts by invitation only: register with an invite code (openk register --invite-file FILE)"
    )]
    InviteRequired,
    #[error(
        "this invite code is unknown or was used already; ask the server's operator for a new one"
    )]
    InviteInvalid,
    #[error(
        "the account's storage quota is used up ({used} of {quota} bytes with this change); nothing was stored: delete items or ask the operator for more"
    )]
    QuotaExceeded { used: u64, quota: u64 },
    #[error("too many requests for this session, try again in {} s", .0.as_secs().max(1))]
    RequestBudget(Duration),
    #[error("unsupported media type: send application/json")]
    UnsupportedMediaType,
    #[error("service unavailable")]
    Unavailable(String),
    #[error("internal error")]
    Internal(String),
}

impl ApiError {
    #[must_use]
    pub fn status(&self) -> StatusCode {
        match self {
            Self::BadRequest(_) => StatusCode::BAD_REQUEST,
            Self::Validation(_) => StatusCode::UNPROCESSABLE_ENTITY,
            Self::Unauthorized | Self::BadCredentials | Self::StaleLogin => {
                StatusCode::UNAUTHORIZED
            }
            Self::NotFound => StatusCode::NOT_FOUND,
            Self::Conflict(_) | Self::HeadMoved { .. } | Self::KeyRotated { .. } => {
                StatusCode::CONFLICT
            }
            Self::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Self::RateLimited(_) | Self::RequestBudget(_) => StatusCode::TOO_MANY_REQUESTS,
            Self::Forbidden(_)
            | Self::EmergencyWaiting(_)
            | Self::RegistrationClosed
            | Self::InviteRequired
            | Self::InviteInvalid => StatusCode::FORBIDDEN,
            Self::QuotaExceeded { .. } => StatusCode::INSUFFICIENT_STORAGE,
            Self::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The stable machine code (docs/errors.md).
    #[must_use]
    pub fn code(&self) -> &'static str {
        match self {
            Self::BadRequest(_) => "bad_request",
            Self::Validation(_) => "validation_failed",
            Self::Unauthorized => "unauthorized",
            Self::BadCredentials => "bad_credentials",
            Self::StaleLogin => "login_required",
            Self::NotFound => "not_found",
            Self::Conflict(_) => "conflict",
            Self::HeadMoved { .. } => "head_moved",
            Self::KeyRotated { .. } => "key_rotated",
            Self::TooLarge => "payload_too_large",
            Self::RateLimited(_) => "rate_limited",
            Self::RequestBudget(_) => "request_budget",
            Self::Forbidden(_) => "forbidden",
            Self::EmergencyWaiting(_) => "emergency_waiting",
            Self::RegistrationClosed => "registration_closed",
            Self::InviteRequired => "invite_required",
            Self::InviteInvalid => "invite_invalid",
            Self::QuotaExceeded { .. } => "quota_exceeded",
            Self::UnsupportedMediaType => "unsupported_media_type",
            Self::Unavailable(_) => "unavailable",
            Self::Internal(_) => "internal",
        }
    }

    /// Builds the problem document for this error.
    #[must_use]
    pub fn problem(&self, request_id: Option<String>) -> Problem {
        let status = self.status();
        Problem {
            kind: format!("https://openk.invalid/errors#{}", self.code()),
            title: status.canonical_reason().unwrap_or("error").to_owned(),
            status: status.as_u16(),
            code: self.code().to_owned(),
            detail: Some(self.to_string()),
            request_id,
            head: match self {
                Self::HeadMoved { head } => Some(*head),
                _ => None,
            },
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound => Self::NotFound,
            StoreError::Conflict => Self::Conflict("it already exists".into()),
            StoreError::Invalid(m) => Self::Validation(m),
            StoreError::Unavailable(m) => Self::Unavailable(m),
            StoreError::Other(m) => Self::Internal(m),
        }
    }
}

impl From<CacheError> for ApiError {
    fn from(e: CacheError) -> Self {
        Self::Unavailable(e.to_string())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        match &self {
            Self::Internal(cause) => tracing::error!(code = self.code(), %cause, "request failed"),
            Self::Unavailable(cause) => {
                tracing::warn!(code = self.code(), %cause, "backend unavailable")
            }
            _ => {}
        }
        let status = self.status();
        let retry = match &self {
            Self::RateLimited(after) | Self::RequestBudget(after) => {
                HeaderValue::from_str(&after.as_secs().max(1).to_string()).ok()
            }
            Self::EmergencyWaiting(secs) => HeaderValue::from_str(&secs.to_string()).ok(),
            _ => None,
        };
        // The request id is filled in by the problem layer (router.rs).
        let body = serde_json::to_vec(&self.problem(None)).unwrap_or_default();
        let mut response = (status, body).into_response();
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        if let Some(v) = retry {
            headers.insert(header::RETRY_AFTER, v);
        }
        response
    }
}

pub type ApiResult<T> = Result<T, ApiError>;
