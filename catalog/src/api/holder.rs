//! Holder API: through an authorized channel (a channel token), a holder grants, lists and
//! revokes consents, and sees who accessed their data under which consent. The holder is named
//! by the `x-onecard-holder-ssn` header; only its hash is used.

use axum::extract::State;

use super::AppState;
use super::extract::{Auth, Holder, Json, Path};
use crate::error::Result;
use crate::model::Consent;
use crate::roles::Role;
use crate::service::{self, NewConsent};
use crate::store::AccessRecord;

/// The holder's consents.
#[utoipa::path(get, path = "/v1/holder/consents", tag = "holder", security(("bearer" = [])),
    params(("x-onecard-holder-ssn" = String, Header)), responses((status = 200, body = [Consent])))]
pub async fn list(State(s): State<AppState>, Auth(who): Auth, Holder(card_ref): Holder) -> Result<axum::Json<Vec<Consent>>> {
    who.require(&[Role::Channel])?;
    Ok(axum::Json(s.store.consents_of(&card_ref).await?))
}

/// Grants a consent.
#[utoipa::path(post, path = "/v1/holder/consents", tag = "holder", security(("bearer" = [])),
    params(("x-onecard-holder-ssn" = String, Header)), request_body = NewConsent, responses((status = 200, body = Consent)))]
pub async fn grant(State(s): State<AppState>, Auth(who): Auth, Holder(card_ref): Holder, Json(c): Json<NewConsent>) -> Result<axum::Json<Consent>> {
    Ok(axum::Json(service::grant_consent(&s.store, &who, &card_ref, c).await?))
}

/// Revokes a consent.
#[utoipa::path(post, path = "/v1/holder/consents/{id}/revoke", tag = "holder", security(("bearer" = [])),
    params(("id" = String, Path), ("x-onecard-holder-ssn" = String, Header)), responses((status = 200, body = Consent)))]
pub async fn revoke(State(s): State<AppState>, Auth(who): Auth, Holder(card_ref): Holder, Path(id): Path<String>) -> Result<axum::Json<Consent>> {
    Ok(axum::Json(service::revoke_consent(&s.store, &who, &card_ref, &id).await?))
}

/// Who accessed the holder's data, under which consent.
#[utoipa::path(get, path = "/v1/holder/accesses", tag = "holder", security(("bearer" = [])),
    params(("x-onecard-holder-ssn" = String, Header)), responses((status = 200, body = [AccessRecord])))]
pub async fn accesses(State(s): State<AppState>, Auth(who): Auth, Holder(card_ref): Holder) -> Result<axum::Json<Vec<AccessRecord>>> {
    who.require(&[Role::Channel])?;
    Ok(axum::Json(s.store.accesses_of(&card_ref).await?))
}
