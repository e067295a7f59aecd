//! Card registry and holder data: issuer status changes, consent lookups and the record of
//! data accesses gateways report, which holders may list.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};
use sqlx::Row as _;

use super::{Store, from_json};
use crate::error::{Error, Result};
use crate::model::{Card, CardStatus, Consent};

/// A status change by a card issuer; fields left out keep their value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CardUpdate {
    /// New status.
    #[serde(default)]
    pub status: Option<CardStatus>,
    /// Lock or unlock the social account.
    #[serde(default)]
    pub social_locked: Option<bool>,
    /// Lock or unlock the financial account.
    #[serde(default)]
    pub financial_locked: Option<bool>,
    /// Why (kept in the journal).
    #[serde(default)]
    pub note: Option<String>,
}

/// One access to a holder's data, reported by a gateway.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AccessRecord {
    /// When.
    pub at: chrono::DateTime<chrono::Utc>,
    /// Holder's card reference.
    pub card_ref: String,
    /// Application.
    pub application: String,
    /// Action.
    pub action: String,
    /// Calling channel.
    pub channel: String,
    /// Consent it relied on.
    #[serde(default)]
    pub consent_id: Option<String>,
    /// Scopes read.
    pub scopes: BTreeSet<String>,
    /// Gateway that served it (filled in by the catalog).
    #[serde(default)]
    pub gateway: String,
}

impl Store {
    /// The card `card_ref`.
    pub async fn card(&self, card_ref: &str) -> Result<Option<Card>> {
        let body: Option<String> = sqlx::query_scalar("SELECT body FROM cards WHERE card_ref = $1")
            .bind(card_ref.to_string())
            .fetch_optional(&self.pool)
            .await?;
        body.map(|b| from_json("card", &b)).transpose()
    }

    /// Whether a card is registered.
    pub async fn card_exists(&self, card_ref: &str) -> Result<bool> {
        Ok(self.card(card_ref).await?.is_some())
    }

    /// The consents of a holder, newest first.
    pub async fn consents_of(&self, card_ref: &str) -> Result<Vec<Consent>> {
        let rows = sqlx::query("SELECT body FROM consents WHERE card_ref = $1 ORDER BY updated_at DESC, id")
            .bind(card_ref.to_string())
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(|r| from_json("consent", &r.try_get::<String, _>(0)?)).collect()
    }

    /// Records data accesses reported by `gateway`, in one transaction of multi-row inserts.
    pub async fn record_accesses(&self, gateway: &str, records: &[AccessRecord]) -> Result<()> {
        const COLUMNS: usize = 9;
        let mut tx = self.pool.begin().await?;
        for chunk in records.chunks(super::ROWS_PER_STATEMENT) {
            let sql = format!(
                "INSERT INTO accesses (id, at, card_ref, application, action, channel, consent_id, scopes, gateway) VALUES {}",
                super::values_placeholders(self.backend, chunk.len(), COLUMNS)
            );
            let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
            for r in chunk {
                query = query
                    .bind(crate::ids::time_ordered_hex::<14>())
                    .bind(crate::model::format_ts(&r.at))
                    .bind(r.card_ref.clone())
                    .bind(r.application.clone())
                    .bind(r.action.clone())
                    .bind(r.channel.clone())
                    .bind(r.consent_id.clone())
                    .bind(serde_json::to_string(&r.scopes).map_err(|e| Error::Internal(e.to_string()))?)
                    .bind(gateway.to_string());
            }
            query.execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Accesses to a holder's data, newest first (at most 500).
    pub async fn accesses_of(&self, card_ref: &str) -> Result<Vec<AccessRecord>> {
        let rows = sqlx::query(
            "SELECT at, card_ref, application, action, channel, consent_id, scopes, gateway FROM accesses \
             WHERE card_ref = $1 ORDER BY at DESC, id LIMIT 500",
        )
        .bind(card_ref.to_string())
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                let at: String = row.try_get(0)?;
                Ok(AccessRecord {
                    at: at.parse().map_err(|_| Error::Internal(format!("bad timestamp {at}")))?,
                    card_ref: row.try_get(1)?,
                    application: row.try_get(2)?,
                    action: row.try_get(3)?,
                    channel: row.try_get(4)?,
                    consent_id: row.try_get(5)?,
                    scopes: from_json("scopes", &row.try_get::<String, _>(6)?)?,
                    gateway: row.try_get(7)?,
                })
            })
            .collect()
    }
}
