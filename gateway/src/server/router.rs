//! The gateway's HTTP surface: the invoke route, `/health`, `/metrics`, `/openapi.json`.

use axum::Router;
use axum::extract::{Path, Request, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};

use super::health::health;
use crate::error::{GatewayError, codes};
use crate::pipeline::{Gateway, new_request_id};

/// Largest invoke body, bytes (a token ≤ 512 B and small parameters).
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// The gateway router.
pub fn router(gateway: Gateway) -> Router {
    Router::new()
        .route("/v1/apps/{app}/actions/{action}", post(invoke))
        .route("/health", get(health))
        .route("/metrics", get(metrics))
        .route("/openapi.json", get(openapi))
        .fallback(not_found)
        .with_state(gateway)
}

/// Runs one action of an application for a channel.
#[utoipa::path(post, path = "/v1/apps/{app}/actions/{action}", tag = "gateway",
    params(("app" = String, Path, description = "Application id"), ("action" = String, Path, description = "Action name"),
        ("X-Onecard-Channel" = String, Header, description = "Channel number"),
        ("X-Onecard-Key-Id" = String, Header, description = "Id of the channel key that signed"),
        ("X-Onecard-Timestamp" = String, Header, description = "Unix seconds"),
        ("X-Onecard-Nonce" = String, Header, description = "Unique per request"),
        ("X-Onecard-Signature" = String, Header, description = "Signature over the canonical request, base64")),
    request_body = crate::pipeline::body::InvokeBody,
    responses((status = 200, description = "Allowed: `{request_id, decision: \"allowed\", result}`"),
        (status = 400, body = crate::error::ErrorBody), (status = 401, body = crate::error::ErrorBody),
        (status = 403, body = crate::error::ErrorBody), (status = 404, body = crate::error::ErrorBody),
        (status = 422, body = crate::error::ErrorBody, description = "The plugin refused (business rule)"),
        (status = 429, body = crate::error::ErrorBody), (status = 502, body = crate::error::ErrorBody),
        (status = 503, body = crate::error::ErrorBody), (status = 504, body = crate::error::ErrorBody)))]
pub async fn invoke(State(gw): State<Gateway>, Path((app, action)): Path<(String, String)>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, MAX_BODY_BYTES).await else {
        return GatewayError::of(codes::INVALID_BODY, format!("the body is larger than {MAX_BODY_BYTES} bytes")).into_response_with(&new_request_id());
    };
    gw.invoke(&app, &action, &parts, &bytes).await
}

async fn metrics(State(gw): State<Gateway>) -> Response {
    let version = gw.state.load().map(|e| e.version());
    let age = gw.state.age(std::time::SystemTime::now());
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], super::metrics::render(version, age)).into_response()
}

async fn openapi() -> Response {
    axum::Json(super::openapi::GatewayApi::openapi()).into_response()
}

async fn not_found() -> Response {
    GatewayError::of(codes::NOT_FOUND, "no such route").into_response_with(&new_request_id())
}
