//! Sync API for gateways (city operator tokens): the signed snapshot, the long-poll change
//! feed, version reports, and data-access reports; plus the catalog's public key.

use std::time::Duration;

use axum::extract::State;
use base64::Engine as _;
use serde::{Deserialize, Serialize};

use super::AppState;
use super::extract::{Auth, Json, Query};
use crate::error::{Error, Result};
use crate::feed::ChangePage;
use crate::roles::Role;
use crate::snapshot::{SignedSnapshot, Snapshot, key_id};
use crate::store::{AccessRecord, GatewayReport, GatewayStatus};

const GATEWAYS: &[Role] = &[Role::CityOperator, Role::ProvinceAdmin];

/// The whole enforceable state at the current version, signed, with an expiry.
#[utoipa::path(get, path = "/v1/sync/snapshot", tag = "sync", security(("bearer" = [])),
    responses((status = 200, body = SignedSnapshot)))]
pub async fn snapshot(State(s): State<AppState>, Auth(who): Auth) -> Result<axum::Json<SignedSnapshot>> {
    who.require(GATEWAYS)?;
    let (catalog, version) = s.store.full_catalog().await?;
    let snap = Snapshot::build(&catalog, version, crate::model::now(), s.snapshot_ttl);
    s.store.record_snapshot_hash(version, &snap.content_hash()).await?;
    Ok(axum::Json(SignedSnapshot::sign(&snap, &s.store.signing_key().await?)))
}

/// Change-feed parameters.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct ChangesQuery {
    /// Return changes after this version.
    pub after: i64,
    /// Wait up to this many milliseconds for a change when there is none (≤ 60000).
    #[serde(default)]
    pub wait_ms: u64,
    /// At most this many changes (≤ 1000).
    #[serde(default = "default_limit")]
    pub limit: i64,
}

fn default_limit() -> i64 {
    1000
}

/// Changes after a version; long-polls when there are none yet.
#[utoipa::path(get, path = "/v1/sync/changes", tag = "sync", security(("bearer" = [])), params(ChangesQuery),
    responses((status = 200, body = ChangePage)))]
pub async fn changes(State(s): State<AppState>, Auth(who): Auth, Query(q): Query<ChangesQuery>) -> Result<axum::Json<ChangePage>> {
    who.require(GATEWAYS)?;
    if q.after < 0 {
        return Err(Error::bad_request(crate::error::codes::INVALID_QUERY, "after must be 0 or more"));
    }
    let wait = Duration::from_millis(q.wait_ms.min(60_000));
    Ok(axum::Json(s.store.wait_changes(q.after, q.limit, wait, s.poll_interval).await?))
}

/// A gateway reports the version it enforces and its snapshot hash.
#[utoipa::path(post, path = "/v1/sync/report", tag = "sync", security(("bearer" = [])),
    request_body = GatewayReport, responses((status = 200, body = GatewayStatus)))]
pub async fn report(State(s): State<AppState>, Auth(who): Auth, Json(r): Json<GatewayReport>) -> Result<axum::Json<GatewayStatus>> {
    who.require(GATEWAYS)?;
    crate::ids::validate_slug("gateway id", &r.gateway_id).map_err(Error::invalid)?;
    crate::ids::validate_sha256_hex(&r.snapshot_sha256).map_err(Error::invalid)?;
    if r.applied_version < 0 || r.applied_version > s.store.version().await? {
        return Err(Error::invalid("applied_version is not a version of this catalog"));
    }
    Ok(axum::Json(s.store.record_report(&who.name, &r).await?))
}

/// Data accesses served by a gateway.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AccessReport {
    /// Reporting gateway.
    pub gateway_id: String,
    /// Accesses.
    pub records: Vec<AccessRecord>,
}

/// Records data accesses so holders can see them.
#[utoipa::path(post, path = "/v1/sync/accesses", tag = "sync", security(("bearer" = [])),
    request_body = AccessReport, responses((status = 204)))]
pub async fn accesses(State(s): State<AppState>, Auth(who): Auth, Json(r): Json<AccessReport>) -> Result<axum::http::StatusCode> {
    who.require(GATEWAYS)?;
    crate::ids::validate_slug("gateway id", &r.gateway_id).map_err(Error::invalid)?;
    for (i, a) in r.records.iter().enumerate() {
        crate::ids::validate_sha256_hex(&a.card_ref).map_err(|e| Error::invalid(format!("records[{i}]: {e}")))?;
    }
    s.store.record_accesses(&r.gateway_id, &r.records).await?;
    Ok(axum::http::StatusCode::NO_CONTENT)
}

/// The catalog's snapshot-signing public key.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct PublicKey {
    /// Key id, as in signed snapshots.
    pub key_id: String,
    /// Always `ed25519`.
    pub algorithm: String,
    /// Public key, base64.
    pub public_key: String,
}

/// The public key that verifies snapshots. Pin it in gateway configuration rather than
/// trusting this endpoint on first use.
#[utoipa::path(get, path = "/v1/sync/public-key", tag = "sync", responses((status = 200, body = PublicKey)))]
pub async fn public_key(State(s): State<AppState>) -> Result<axum::Json<PublicKey>> {
    let vk = s.store.signing_key().await?.verifying_key();
    Ok(axum::Json(PublicKey {
        key_id: key_id(&vk),
        algorithm: "ed25519".into(),
        public_key: base64::engine::general_purpose::STANDARD.encode(vk.as_bytes()),
    }))
}

/// The bytes of a filed plugin artifact, by SHA-256 (gateways check the hash again).
#[utoipa::path(get, path = "/v1/sync/artifacts/{sha256}", tag = "sync", security(("bearer" = [])),
    params(("sha256" = String, Path, description = "SHA-256 of the artifact, hex")),
    responses((status = 200, content_type = "application/wasm", body = Vec<u8>), (status = 404, body = super::response::ErrorBody)))]
pub async fn artifact(
    State(s): State<AppState>,
    Auth(who): Auth,
    super::extract::Path(sha256): super::extract::Path<String>,
) -> Result<impl axum::response::IntoResponse> {
    who.require(GATEWAYS)?;
    crate::ids::validate_sha256_hex(&sha256).map_err(Error::invalid)?;
    let bytes = s
        .store
        .artifact(&sha256)
        .await?
        .ok_or_else(|| Error::not_found(crate::error::codes::ARTIFACT_NOT_FOUND, format!("no artifact {sha256}")))?;
    Ok(([(axum::http::header::CONTENT_TYPE, "application/wasm")], bytes))
}
