//! Issuer trust anchors: keys that sign card credentials (dynamic QR tokens).

use serde::{Deserialize, Serialize};

use super::ActiveStatus;

/// Algorithms of credential-signing keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum IssuerAlgorithm {
    /// Ed25519.
    Ed25519,
    /// SM2 (signer id `1234567812345678`, DER signatures).
    Sm2,
}

/// A key that signs card credentials.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct IssuerKey {
    /// Key id carried in credentials.
    pub key_id: String,
    /// Who holds the private key (e.g. the provincial card platform).
    pub issuer: String,
    /// Algorithm.
    pub algorithm: IssuerAlgorithm,
    /// Public key, base64.
    pub public_key: String,
    /// Start of validity.
    pub not_before: chrono::DateTime<chrono::Utc>,
    /// End of validity.
    pub not_after: chrono::DateTime<chrono::Utc>,
    /// Status.
    #[serde(default)]
    pub status: ActiveStatus,
}
