//! Personal authorization (个人授权): a holder's revocable consent that an application may read
//! some of their data scopes for a purpose, within a validity window.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};


/// One consent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Consent {
    /// Consent id.
    pub id: String,
    /// The holder's card reference.
    pub card_ref: String,
    /// Application id.
    pub application: String,
    /// Data scopes consented to.
    pub scopes: BTreeSet<String>,
    /// Purpose shown to the holder.
    pub purpose: String,
    /// Channel through which the holder consented.
    pub channel: String,
    /// Start of validity.
    pub not_before: chrono::DateTime<chrono::Utc>,
    /// End of validity.
    pub not_after: chrono::DateTime<chrono::Utc>,
    /// When the holder revoked it, if they did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revoked_at: Option<chrono::DateTime<chrono::Utc>>,
}
