//! The catalog's HTTP API (axum): admin, issuer, holder and sync endpoints, the OpenAPI
//! document at `/openapi.json`, one body-size limit for every route, and JSON errors for
//! everything including unknown routes.

pub mod admin;
pub mod extract;
pub mod holder;
pub mod issuer;
pub mod nodelay;
pub mod openapi;
pub mod response;
pub mod sync;

#[cfg(test)]
mod tests;

use std::time::Duration;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use tower_http::limit::RequestBodyLimitLayer;
use utoipa::OpenApi as _;

use crate::error::{Error, Refusal, codes};
use crate::store::Store;

/// Settings of the API.
#[derive(Debug, Clone)]
pub struct ApiConfig {
    /// Largest accepted request body, in bytes.
    pub max_body_bytes: usize,
    /// Lifetime of a served snapshot.
    pub snapshot_ttl: chrono::Duration,
    /// How often a long-poll looks for changes written by other processes.
    pub poll_interval: Duration,
}

impl Default for ApiConfig {
    fn default() -> Self {
        ApiConfig {
            max_body_bytes: 4 * 1024 * 1024,
            snapshot_ttl: chrono::Duration::hours(1),
            poll_interval: Duration::from_millis(500),
        }
    }
}

/// State shared by the handlers.
#[derive(Debug, Clone)]
pub struct AppState {
    /// The database.
    pub store: Store,
    /// Snapshot lifetime.
    pub snapshot_ttl: chrono::Duration,
    /// Long-poll fallback interval.
    pub poll_interval: Duration,
}

/// The API router over `store`.
pub fn router(store: Store, config: &ApiConfig) -> Router {
    let state = AppState { store, snapshot_ttl: config.snapshot_ttl, poll_interval: config.poll_interval };
    Router::new()
        .route("/health", get(health))
        .route("/openapi.json", get(openapi_json))
        .route("/v1/admin/whoami", get(admin::whoami))
        .route("/v1/admin/catalog", get(admin::catalog))
        .route("/v1/admin/export", get(admin::export))
        .route("/v1/admin/apply", post(admin::apply))
        .route("/v1/admin/provinces/{id}", put(admin::put_province).delete(admin::delete_province))
        .route("/v1/admin/cities/{id}", put(admin::put_city).delete(admin::delete_city))
        .route("/v1/admin/departments/{id}", put(admin::put_department).delete(admin::delete_department))
        .route("/v1/admin/applications/{id}", put(admin::put_application).get(admin::get_application).delete(admin::delete_application))
        .route("/v1/admin/applications/{id}/filings", post(admin::create_filing))
        .route("/v1/admin/applications/{id}/filings/{number}/transitions", post(admin::transition))
        .route("/v1/admin/channels/{id}", put(admin::put_channel).delete(admin::delete_channel))
        .route("/v1/admin/grants/{channel}/{application}", put(admin::put_grant).delete(admin::delete_grant))
        .route("/v1/admin/grants/{channel}/{application}/revoke", post(admin::revoke_grant))
        .route("/v1/admin/venues/{id}", put(admin::put_venue).delete(admin::delete_venue))
        .route("/v1/admin/policies", put(admin::put_policy).get(admin::list_policies))
        .route("/v1/admin/policies/{id}", axum::routing::delete(admin::delete_policy))
        .route("/v1/admin/issuer-keys/{id}", put(admin::put_issuer_key).delete(admin::delete_issuer_key))
        .route("/v1/admin/tokens", post(admin::create_token).get(admin::list_tokens))
        .route("/v1/admin/tokens/{id}/revoke", post(admin::revoke_token))
        .route("/v1/admin/changes", get(admin::journal))
        .route("/v1/admin/gateways", get(admin::gateways))
        .route("/v1/admin/rollout", get(admin::rollout))
        .route("/v1/issuer/cards", post(issuer::register))
        .route("/v1/issuer/cards/{card_ref}", get(issuer::get))
        .route("/v1/issuer/cards/{card_ref}/status", post(issuer::set_status))
        .route("/v1/holder/consents", get(holder::list).post(holder::grant))
        .route("/v1/holder/consents/{id}/revoke", post(holder::revoke))
        .route("/v1/holder/accesses", get(holder::accesses))
        .route("/v1/sync/snapshot", get(sync::snapshot))
        .route("/v1/sync/changes", get(sync::changes))
        .route("/v1/sync/report", post(sync::report))
        .route("/v1/sync/accesses", post(sync::accesses))
        .route("/v1/sync/public-key", get(sync::public_key))
        .route("/v1/sync/artifacts/{sha256}", get(sync::artifact))
        .route("/v1/admin/artifacts", post(admin::put_artifact))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(config.max_body_bytes))
        .layer(RequestBodyLimitLayer::new(config.max_body_bytes))
        .layer(axum::middleware::map_response(json_413))
        .with_state(state)
}

async fn health(axum::extract::State(s): axum::extract::State<AppState>) -> Result<axum::Json<serde_json::Value>, Error> {
    let version = s.store.version().await?;
    Ok(axum::Json(serde_json::json!({ "status": "ok", "version": version })))
}

async fn openapi_json() -> impl IntoResponse {
    axum::Json(openapi::ApiDoc::openapi())
}

async fn not_found() -> Error {
    Error::not_found(codes::NOT_FOUND, "no such endpoint; see /openapi.json")
}

async fn method_not_allowed() -> Error {
    Error::refused(Refusal::MethodNotAllowed, codes::METHOD_NOT_ALLOWED, "method not allowed on this endpoint; see /openapi.json")
}

/// tower-http answers an oversized body with a bare 413; give it the catalog's JSON error.
async fn json_413(resp: Response) -> Response {
    let is_json = resp
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if resp.status() == StatusCode::PAYLOAD_TOO_LARGE && !is_json {
        return extract::too_large().into_response();
    }
    resp
}

/// Serves the API on `listener` until ctrl-c.
pub async fn serve(listener: tokio::net::TcpListener, store: Store, config: &ApiConfig) -> std::io::Result<()> {
    tracing::info!(addr = ?listener.local_addr().ok(), "catalog API listening");
    axum::serve(nodelay::answering_at_once(listener), router(store, config))
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await
}
