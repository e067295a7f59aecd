//! The catalog's domain model: what a province records about its resident-service
//! applications, who may call them, at what rate, and the cards and consents they act upon.
//!
//! These types are shared by the declarative TOML, the HTTP API and the storage layer; every
//! one rejects unknown fields so a typo is an error, never a silently ignored setting.

mod application;
mod card;
mod channel;
mod consent;
mod geography;
mod issuer;
mod policy;
mod venue;

pub use application::{
    ActionSpec, Application, Assurance, Capability, CardStatusPolicy, Filing, Manifest, SETTLEMENT_BACKEND,
};
pub use card::{Card, CardStatus};
pub use channel::{Channel, ChannelKey, ChannelKind, Grant, GrantStatus, KeyAlgorithm};
pub use consent::Consent;
pub use geography::{City, Department, Province};
pub use issuer::{IssuerAlgorithm, IssuerKey};
pub use policy::{Limits, Policy, PolicyScope};
pub use venue::Venue;

/// Points in time, always UTC.
pub type Timestamp = chrono::DateTime<chrono::Utc>;

/// Whether a channel, venue or key may be used.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, serde::Serialize, serde::Deserialize, utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum ActiveStatus {
    /// In use.
    #[default]
    Active,
    /// Temporarily refused (risk found); may become active again.
    Suspended,
    /// Permanently refused.
    Terminated,
}

/// Formats a timestamp the way the catalog stores and exports it (RFC 3339, millisecond, `Z`).
pub fn format_ts(ts: &Timestamp) -> String {
    ts.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// The current time truncated to milliseconds, so that stored and in-memory values compare equal.
pub fn now() -> Timestamp {
    let now = chrono::Utc::now();
    chrono::DateTime::from_timestamp_millis(now.timestamp_millis()).unwrap_or(now)
}
