//! Issuer API: card issuers register cards (the SSN is hashed, never stored) and change their
//! status and account locks; each change reaches gateways through the change feed.

use axum::extract::State;
use serde::Deserialize;

use super::AppState;
use super::extract::{Auth, Json, Path};
use crate::error::{Error, Result, codes};
use crate::model::{Card, CardStatus};
use crate::roles::Role;
use crate::service;
use crate::store::CardUpdate;

/// A card to register.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RegisterCard {
    /// The holder's 18-character ID number (hashed on arrival).
    pub ssn: String,
    /// Card number.
    pub card_number: String,
    /// 32-hex card identification code.
    pub card_id_code: String,
    /// Issuing region (6 digits).
    pub issuing_region: String,
    /// Initial status (usually `sealed` or `normal`).
    pub status: CardStatus,
    /// 实名 verified.
    #[serde(default)]
    pub real_name: bool,
    /// 实卡 activated.
    #[serde(default)]
    pub real_card: bool,
    /// Bank account activated.
    #[serde(default)]
    pub bank_activated: bool,
    /// Face enrolled.
    #[serde(default)]
    pub real_person: bool,
    /// End of validity.
    pub valid_until: chrono::DateTime<chrono::Utc>,
}

/// Registers a card.
#[utoipa::path(post, path = "/v1/issuer/cards", tag = "issuer", security(("bearer" = [])),
    request_body = RegisterCard, responses((status = 200, body = Card), (status = 409, body = super::response::ErrorBody)))]
pub async fn register(State(s): State<AppState>, Auth(who): Auth, Json(r): Json<RegisterCard>) -> Result<axum::Json<Card>> {
    who.require(&[Role::CardIssuer])?;
    let card = Card {
        card_ref: String::new(),
        card_number: r.card_number,
        card_id_code: r.card_id_code,
        issuing_region: r.issuing_region,
        status: r.status,
        social_locked: false,
        financial_locked: false,
        real_name: r.real_name,
        real_card: r.real_card,
        bank_activated: r.bank_activated,
        real_person: r.real_person,
        valid_until: r.valid_until,
    };
    Ok(axum::Json(service::register_card(&s.store, &who, &r.ssn, card).await?))
}

/// A registered card.
#[utoipa::path(get, path = "/v1/issuer/cards/{card_ref}", tag = "issuer", security(("bearer" = [])),
    params(("card_ref" = String, Path)), responses((status = 200, body = Card), (status = 404, body = super::response::ErrorBody)))]
pub async fn get(State(s): State<AppState>, Auth(who): Auth, Path(card_ref): Path<String>) -> Result<axum::Json<Card>> {
    who.require(&[Role::CardIssuer, Role::Auditor, Role::ProvinceAdmin])?;
    s.store
        .card(&card_ref)
        .await?
        .map(axum::Json)
        .ok_or_else(|| Error::not_found(codes::CARD_NOT_FOUND, format!("no card {card_ref}")))
}

/// Changes a card's status or account locks.
#[utoipa::path(post, path = "/v1/issuer/cards/{card_ref}/status", tag = "issuer", security(("bearer" = [])),
    params(("card_ref" = String, Path)), request_body = CardUpdate,
    responses((status = 200, body = Card), (status = 409, body = super::response::ErrorBody)))]
pub async fn set_status(State(s): State<AppState>, Auth(who): Auth, Path(card_ref): Path<String>, Json(u): Json<CardUpdate>) -> Result<axum::Json<Card>> {
    Ok(axum::Json(service::update_card(&s.store, &who, &card_ref, u).await?))
}
