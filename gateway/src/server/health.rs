//! `/health`: whether this gateway serves, and if not, why (stale catalog, no snapshot yet).

use std::time::SystemTime;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Serialize;

use crate::pipeline::Gateway;

/// The health document.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Health {
    /// `ok` or `stale`.
    pub status: &'static str,
    /// Why the gateway refuses traffic.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Catalog version enforced.
    pub catalog_version: Option<i64>,
    /// Seconds since the last successful catalog sync.
    pub sync_age_secs: Option<f64>,
    /// Last sync error, if the last attempt failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_sync_error: Option<String>,
    /// Audit records waiting to be written.
    pub audit_queue: usize,
    /// This gateway's id.
    pub gateway_id: String,
}

/// Health of the gateway: `200` when it serves, `503` with the reason when it refuses.
#[utoipa::path(get, path = "/health", tag = "gateway", responses((status = 200, body = Health), (status = 503, body = Health)))]
pub async fn health(State(gw): State<Gateway>) -> (StatusCode, Json<Health>) {
    let now = SystemTime::now();
    let fresh = gw.state.fresh(now);
    let health = Health {
        status: if fresh.is_ok() { "ok" } else { "stale" },
        reason: fresh.as_ref().err().map(|s| s.reason.clone()),
        catalog_version: gw.state.load().map(|e| e.version()),
        sync_age_secs: gw.state.age(now).map(|a| a.as_secs_f64()),
        last_sync_error: gw.state.last_error(),
        audit_queue: gw.audit.queue_depth(),
        gateway_id: gw.config.gateway_id.clone(),
    };
    (if fresh.is_ok() { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE }, Json(health))
}
