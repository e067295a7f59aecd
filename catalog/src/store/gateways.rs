//! Gateways' reports of the snapshot version they enforce, and the rollout view: per
//! application, "effective at N of M gateways".

use serde::{Deserialize, Serialize};
use sqlx::Row as _;

use super::Store;
use crate::error::{Error, Result};
use crate::model::{format_ts, now};

/// What a gateway reports after applying a snapshot or changes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GatewayReport {
    /// Gateway id (stable per gateway instance).
    pub gateway_id: String,
    /// Catalog version it enforces.
    pub applied_version: i64,
    /// Content hash of its snapshot (`Snapshot::content_hash`).
    pub snapshot_sha256: String,
}

/// A gateway as the catalog last heard of it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct GatewayStatus {
    /// Gateway id.
    pub gateway_id: String,
    /// Version applied.
    pub applied_version: i64,
    /// Its snapshot content hash.
    pub snapshot_sha256: String,
    /// Whether the hash matches the catalog's snapshot of that version (unknown when the
    /// catalog did not serve that version).
    pub hash_ok: Option<bool>,
    /// When it reported.
    pub reported_at: chrono::DateTime<chrono::Utc>,
    /// Token holder that reported.
    pub reported_by: String,
}

/// Rollout of one application.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RolloutEntry {
    /// Application.
    pub application: String,
    /// Version of its last change.
    pub version: i64,
    /// Gateways enforcing that version or later, with a matching hash where known.
    pub effective: usize,
    /// Gateways known.
    pub gateways: usize,
    /// "effective at N of M gateways".
    pub summary: String,
}

impl Store {
    /// Remembers the content hash of the snapshot served at `version`.
    pub async fn record_snapshot_hash(&self, version: i64, sha256: &str) -> Result<()> {
        sqlx::query("INSERT INTO snapshot_hashes (version, sha256) VALUES ($1, $2) ON CONFLICT (version) DO NOTHING")
            .bind(version)
            .bind(sha256.to_string())
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Records a gateway's report.
    pub async fn record_report(&self, by: &str, r: &GatewayReport) -> Result<GatewayStatus> {
        let known: Option<String> = sqlx::query_scalar("SELECT sha256 FROM snapshot_hashes WHERE version = $1")
            .bind(r.applied_version)
            .fetch_optional(&self.pool)
            .await?;
        let hash_ok = known.map(|h| h == r.snapshot_sha256);
        let at = now();
        let mut tx = self.pool.begin().await?;
        sqlx::query("DELETE FROM gateways WHERE id = $1").bind(r.gateway_id.clone()).execute(&mut *tx).await?;
        sqlx::query(
            "INSERT INTO gateways (id, applied_version, snapshot_sha256, hash_ok, reported_at, reported_by) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(r.gateway_id.clone())
        .bind(r.applied_version)
        .bind(r.snapshot_sha256.clone())
        .bind(hash_ok.map(i64::from))
        .bind(format_ts(&at))
        .bind(by.to_string())
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(GatewayStatus {
            gateway_id: r.gateway_id.clone(),
            applied_version: r.applied_version,
            snapshot_sha256: r.snapshot_sha256.clone(),
            hash_ok,
            reported_at: at,
            reported_by: by.into(),
        })
    }

    /// Every gateway known.
    pub async fn gateways(&self) -> Result<Vec<GatewayStatus>> {
        let rows = sqlx::query(
            "SELECT id, applied_version, snapshot_sha256, hash_ok, reported_at, reported_by FROM gateways ORDER BY id",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                let at: String = row.try_get(4)?;
                Ok(GatewayStatus {
                    gateway_id: row.try_get(0)?,
                    applied_version: row.try_get(1)?,
                    snapshot_sha256: row.try_get(2)?,
                    hash_ok: row.try_get::<Option<i64>, _>(3)?.map(|v| v != 0),
                    reported_at: at.parse().map_err(|_| Error::Internal(format!("bad timestamp {at}")))?,
                    reported_by: row.try_get(5)?,
                })
            })
            .collect()
    }

    /// Forgets a decommissioned gateway.
    pub async fn remove_gateway(&self, id: &str) -> Result<bool> {
        let r = sqlx::query("DELETE FROM gateways WHERE id = $1").bind(id.to_string()).execute(&self.pool).await?;
        Ok(r.rows_affected() > 0)
    }

    /// Per application: at how many gateways its last change is in force.
    pub async fn rollout(&self) -> Result<Vec<RolloutEntry>> {
        let gateways = self.gateways().await?;
        let catalog = self.catalog().await?;
        let mut out = Vec::new();
        for app in &catalog.applications {
            let version = self.application_version(&app.id).await?;
            let effective = gateways
                .iter()
                .filter(|g| g.applied_version >= version && g.hash_ok != Some(false))
                .count();
            out.push(RolloutEntry {
                application: app.id.clone(),
                version,
                effective,
                gateways: gateways.len(),
                summary: format!("effective at {effective} of {} gateways", gateways.len()),
            });
        }
        Ok(out)
    }
}
