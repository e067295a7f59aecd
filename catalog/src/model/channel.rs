//! Channels (government, bank and third-party apps, venue operators), their signing keys, and
//! the grants (渠道授权) that let a channel call an application's actions.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use super::ActiveStatus;

/// What kind of party a channel is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ChannelKind {
    /// A government service app.
    GovernmentApp,
    /// A bank's app.
    BankApp,
    /// A third-party app.
    ThirdPartyApp,
    /// A venue operator (gates, turnstiles, counters).
    VenueOperator,
}

/// Signature algorithms a channel may sign requests with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum KeyAlgorithm {
    /// Ed25519 (public key: 32 bytes, base64).
    Ed25519,
    /// SM2 (public key: SEC1 point, 65 bytes uncompressed or 33 compressed, base64).
    Sm2,
    /// HMAC-SHA256 (shared secret, at least 16 bytes, base64).
    HmacSha256,
    /// HMAC-SM3 (shared secret, at least 16 bytes, base64).
    HmacSm3,
}

impl KeyAlgorithm {
    /// Whether the key is a shared secret (never exported).
    pub fn is_symmetric(self) -> bool {
        matches!(self, KeyAlgorithm::HmacSha256 | KeyAlgorithm::HmacSm3)
    }
}

/// A channel key. During rotation two keys may be valid at once, never three.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChannelKey {
    /// Key id sent by the channel with each request.
    pub key_id: String,
    /// Algorithm.
    pub algorithm: KeyAlgorithm,
    /// Public key (asymmetric algorithms), base64.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub public_key: Option<String>,
    /// Shared secret (HMAC algorithms), base64. Never exported; keep the stored one by
    /// leaving it out of a declarative file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
    /// Start of validity.
    pub not_before: chrono::DateTime<chrono::Utc>,
    /// End of validity.
    pub not_after: chrono::DateTime<chrono::Utc>,
}

/// A channel authorized by the province.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Channel {
    /// Ten digits, province prefix.
    pub id: String,
    /// Display name.
    pub name: String,
    /// Kind.
    pub kind: ChannelKind,
    /// Whether the channel may be used.
    #[serde(default)]
    pub status: ActiveStatus,
    /// Keys (at most two valid at any instant).
    #[serde(default)]
    pub keys: Vec<ChannelKey>,
}

/// Whether a grant stands.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum GrantStatus {
    /// In force within its validity window.
    #[default]
    Active,
    /// Revoked by the province.
    Revoked,
}

/// A channel grant: channel × application × actions, within a validity window.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Grant {
    /// Channel id.
    pub channel: String,
    /// Application id.
    pub application: String,
    /// Actions allowed.
    pub actions: BTreeSet<String>,
    /// Start of validity.
    pub not_before: chrono::DateTime<chrono::Utc>,
    /// End of validity.
    pub not_after: chrono::DateTime<chrono::Utc>,
    /// Status.
    #[serde(default)]
    pub status: GrantStatus,
}

impl Grant {
    /// The grant's key: `channel/application`.
    pub fn key(&self) -> String {
        format!("{}/{}", self.channel, self.application)
    }
}
