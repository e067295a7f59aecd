//! Card registry and holder data: issuer status changes and consent lookups. The record of data
//! accesses is in [`super::accesses`].

use serde::{Deserialize, Serialize};
use sqlx::Row as _;

use super::{Store, from_json};
use crate::error::Result;
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
}
