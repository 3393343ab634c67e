//! The router and its middleware, outermost first: request id, tracing span,
//! timeout, body-size limit (small for account routes, larger for pushes),
//! compression, security headers, problem documents, metrics; rate limits
//! and auth are extractors of the handlers that need them.
//!
//! The event stream (`GET /v1/events`) passes through all of it unharmed:
//! the timeout bounds the time to the response head only, never a body;
//! compression skips `text/event-stream` (tower-http's default predicate),
//! so nothing is buffered; and "run to completion" ends when the handler
//! returns the stream, which the connection then polls.

use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, patch, post, put};
use tower::ServiceBuilder;
use tower_http::compression::CompressionLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::timeout::{RequestBodyTimeoutLayer, TimeoutBody, TimeoutLayer};
use tower_http::trace::TraceLayer;
use utoipa::OpenApi;

use crate::api::types::Problem;
use crate::api::{
    accounts, approvals, audit, devices, emergency, events, health, history, identities, members,
    recovery, shares, usage, vaults,
};
use crate::state::AppState;

/// Body limit of the account routes.
pub const AUTH_BODY_LIMIT: usize = 64 * 1024;
/// Body limit of everything else (pushes carry up to 1000 items).
pub const DATA_BODY_LIMIT: usize = 32 * 1024 * 1024;

static REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

#[derive(OpenApi)]
#[openapi(
    info(title = "OpenK API", version = "1", description = "The OpenK sync server. It stores only ciphertext: every blob is encrypted by the client."),
    paths(
        accounts::prelogin, accounts::register, accounts::login, accounts::refresh, accounts::logout,
        accounts::account, accounts::change_password, accounts::rotate_key,
        identities::lookup, identities::publish,
        devices::index, devices::get, devices::rename, devices::revoke,
        approvals::create, approvals::index, approvals::get, approvals::claim, approvals::reveal,
        approvals::approve, approvals::deny, approvals::cancel,
        vaults::index, vaults::create, vaults::pull, vaults::push, vaults::history,
        members::update, members::append, members::log, members::members, members::answer, members::shared,
        members::key, members::rotate_unshared,
        audit::index,
        shares::create, shares::index, shares::revoke, shares::open,
        shares::page, shares::page_js, shares::page_css,
        usage::put, usage::index,
        recovery::put, recovery::get, recovery::delete, recovery::start, recovery::complete,
        history::append, history::index,
        emergency::create, emergency::index, emergency::request, emergency::deny, emergency::revoke,
        emergency::release, emergency::vaults, emergency::changes, emergency::takeover,
        events::stream,
        health::healthz, health::readyz, health::metrics, openapi_json,
    ),
    components(schemas(
        crate::api::types::ReadyEvent, crate::api::types::VaultHead, crate::api::types::VaultEvent,
    )),
    modifiers(&BearerAuth),
)]
pub struct ApiDoc;

struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)),
        );
    }
}

/// This OpenAPI document (generated from the handlers, so it cannot drift).
#[utoipa::path(get, path = "/openapi.json", tag = "health",
    responses((status = 200, description = "the OpenAPI 3.1 document of this API", content_type = "application/json")))]
async fn openapi_json() -> impl IntoResponse {
    axum::Json(ApiDoc::openapi())
}

/// Builds the whole application.
pub fn router(state: AppState) -> Router {
    let auth_routes = Router::new()
        .route("/v1/accounts/prelogin", post(accounts::prelogin))
        .route("/v1/accounts/register", post(accounts::register))
        .route("/v1/accounts/login", post(accounts::login))
        .route("/v1/accounts/refresh", post(accounts::refresh))
        .route("/v1/accounts/logout", post(accounts::logout))
        .route("/v1/account", get(accounts::account))
        .route("/v1/account/password", post(accounts::change_password))
        .route("/v1/account/key", post(accounts::rotate_key))
        .route("/v1/account/identity", put(identities::publish))
        .route(
            "/v1/account/recovery",
            get(recovery::get)
                .put(recovery::put)
                .delete(recovery::delete),
        )
        .route("/v1/recovery/start", post(recovery::start))
        .route("/v1/recovery/complete", post(recovery::complete))
        .route(
            "/v1/emergency",
            get(emergency::index).post(emergency::create),
        )
        .route(
            "/v1/emergency/{id}",
            axum::routing::delete(emergency::revoke),
        )
        .route("/v1/emergency/{id}/request", post(emergency::request))
        .route("/v1/emergency/{id}/deny", post(emergency::deny))
        .route("/v1/emergency/{id}/release", get(emergency::release))
        .route("/v1/emergency/{id}/takeover", post(emergency::takeover))
        .route("/v1/emergency/{id}/vaults", get(emergency::vaults))
        .route(
            "/v1/emergency/{id}/vaults/{vault}/changes",
            get(emergency::changes),
        )
        .route("/v1/identities/lookup", post(identities::lookup))
        .route("/v1/devices", get(devices::index))
        .route(
            "/v1/devices/{id}",
            get(devices::get)
                .patch(devices::rename)
                .delete(devices::revoke),
        )
        .route(
            "/v1/approvals",
            get(approvals::index).post(approvals::create),
        )
        .route("/v1/approvals/{id}", get(approvals::get))
        .route("/v1/approvals/{id}/claim", post(approvals::claim))
        .route("/v1/approvals/{id}/reveal", post(approvals::reveal))
        .route("/v1/approvals/{id}/approve", post(approvals::approve))
        .route("/v1/approvals/{id}/deny", post(approvals::deny))
        .route("/v1/approvals/{id}/cancel", post(approvals::cancel))
        .route("/v1/audit", get(audit::index))
        .route(
            "/v1/account/history",
            get(history::index).post(history::append),
        )
        .route("/v1/events", get(events::stream))
        .layer(DefaultBodyLimit::max(AUTH_BODY_LIMIT));
    let data_routes = Router::new()
        .route("/v1/vaults", get(vaults::index).post(vaults::create))
        .route(
            "/v1/vaults/{id}/changes",
            get(vaults::pull).post(vaults::push),
        )
        .route("/v1/vaults/{id}/items/{item}/history", get(vaults::history))
        .route("/v1/vaults/{id}", patch(members::update))
        .route(
            "/v1/vaults/{id}/log",
            get(members::log).post(members::append),
        )
        .route("/v1/vaults/{id}/members", get(members::members))
        .route("/v1/vaults/{id}/key", get(members::key))
        .route("/v1/vaults/{id}/rotate", post(members::rotate_unshared))
        .route("/v1/vaults/{id}/membership", post(members::answer))
        .route("/v1/shared", get(members::shared))
        .route("/v1/usage", get(usage::index).put(usage::put))
        .layer(DefaultBodyLimit::max(DATA_BODY_LIMIT));
    let share_routes = Router::new()
        .route("/v1/shares", get(shares::index).post(shares::create))
        .route("/v1/shares/{id}", axum::routing::delete(shares::revoke))
        .route("/v1/shares/{id}/open", post(shares::open))
        .route("/s/{id}", get(shares::page))
        .route("/assets/share/share.js", get(shares::page_js))
        .route("/assets/share/share.css", get(shares::page_css))
        .layer(DefaultBodyLimit::max(AUTH_BODY_LIMIT));
    let ops_routes = Router::new()
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .route("/metrics", get(health::metrics))
        .route("/openapi.json", get(openapi_json));

    let timeout = Duration::from_secs(state.settings.request_timeout_secs);
    let layers = ServiceBuilder::new()
        .layer(SetRequestIdLayer::new(REQUEST_ID.clone(), MakeRequestUuid))
        .layer(PropagateRequestIdLayer::new(REQUEST_ID.clone()))
        .layer(TraceLayer::new_for_http().make_span_with(|req: &Request<Body>| {
            let id = req.headers().get(&REQUEST_ID).and_then(|v| v.to_str().ok()).unwrap_or("");
            // The path is logged without the query string.
            tracing::info_span!("request", method = %req.method(), path = %req.uri().path(), request_id = %id)
        }))
        .layer(TimeoutLayer::with_status_code(StatusCode::REQUEST_TIMEOUT, timeout))
        // A body that trickles in fails when it stops arriving in time.
        .layer(RequestBodyTimeoutLayer::new(Duration::from_secs(state.settings.body_timeout_secs)))
        .map_request(|req: Request<TimeoutBody<Body>>| req.map(Body::new))
        .layer(CompressionLayer::new())
        .layer(SetResponseHeaderLayer::overriding(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff")))
        .layer(SetResponseHeaderLayer::overriding(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY")))
        .layer(SetResponseHeaderLayer::overriding(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer")))
        .layer(SetResponseHeaderLayer::if_not_present(header::CACHE_CONTROL, HeaderValue::from_static("no-store")))
        // The share page (api/shares.rs) sets its own, as strict.
        .layer(SetResponseHeaderLayer::if_not_present(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static("default-src 'none'; frame-ancestors 'none'"),
        ))
        .layer(middleware::from_fn(problems));

    Router::new()
        .merge(auth_routes)
        .merge(data_routes)
        .merge(share_routes)
        .merge(ops_routes)
        .fallback(|| async { crate::error::ApiError::NotFound })
        .layer(middleware::from_fn(run_to_completion))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            record_metrics,
        ))
        .layer(layers)
        .with_state(state)
}

/// Runs each handler in its own task, so that a client that disconnects (or
/// a request timeout) cannot cancel it half-way through a database
/// transaction: the work finishes and commits or rolls back cleanly, and a
/// pooled connection is never returned in the middle of a transaction.
async fn run_to_completion(req: Request, next: Next) -> Response {
    match tokio::spawn(next.run(req)).await {
        Ok(response) => response,
        Err(e) => {
            tracing::error!(error = %e, "handler task failed");
            crate::error::ApiError::Internal("handler task failed".into()).into_response()
        }
    }
}

async fn record_metrics(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = req.method().as_str().to_owned();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let response = next.run(req).await;
    state.metrics.record(
        &method,
        &route,
        response.status().as_u16(),
        started.elapsed(),
    );
    response
}

/// Makes every error response a problem document carrying the request id,
/// including errors produced by layers (405, 408, 413…).
async fn problems(req: Request, next: Next) -> Response {
    let request_id = req
        .headers()
        .get(&REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let response = next.run(req).await;
    let status = response.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return response;
    }
    let is_problem = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes() == b"application/problem+json");
    let (mut parts, body) = response.into_parts();
    let mut problem = if is_problem {
        match axum::body::to_bytes(body, 64 * 1024).await {
            Ok(bytes) => serde_json::from_slice::<Problem>(&bytes).ok(),
            Err(_) => None,
        }
    } else {
        None
    }
    .unwrap_or_else(|| generic_problem(status));
    problem.request_id = request_id;
    let body = serde_json::to_vec(&problem).unwrap_or_default();
    parts.headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/problem+json"),
    );
    parts.headers.remove(header::CONTENT_LENGTH);
    Response::from_parts(parts, Body::from(body))
}

fn generic_problem(status: StatusCode) -> Problem {
    let code = match status {
        StatusCode::NOT_FOUND => "not_found",
        StatusCode::METHOD_NOT_ALLOWED => "method_not_allowed",
        StatusCode::REQUEST_TIMEOUT => "timeout",
        StatusCode::PAYLOAD_TOO_LARGE => "payload_too_large",
        StatusCode::UNSUPPORTED_MEDIA_TYPE => "unsupported_media_type",
        s if s.is_server_error() => "internal",
        _ => "bad_request",
    };
    Problem {
        kind: format!("https://openk.invalid/errors#{code}"),
        title: status.canonical_reason().unwrap_or("error").to_owned(),
        status: status.as_u16(),
        code: code.to_owned(),
        detail: None,
        request_id: None,
        head: None,
    }
}
