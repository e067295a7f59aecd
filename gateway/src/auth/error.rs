//! Why channel authentication refused a request, each reason with a stable code that venues
//! and the audit trail see.

use http::StatusCode;

use super::nonce::NonceError;

/// A refusal of channel authentication. [`AuthError::code`] is the stable, documented code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// An authentication header is absent or empty.
    #[error("header {header} is missing")]
    HeaderMissing {
        /// The header's name.
        header: &'static str,
    },
    /// An authentication header is present but not well-formed.
    #[error("header {header} is malformed: {reason}")]
    HeaderMalformed {
        /// The header's name.
        header: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// The catalog has no such channel.
    #[error("channel {channel} is not known")]
    ChannelUnknown {
        /// Channel number.
        channel: String,
    },
    /// The channel has no usable key with this id.
    #[error("channel {channel} has no key {key_id}")]
    KeyUnknown {
        /// Channel number.
        channel: String,
        /// Key id.
        key_id: String,
    },
    /// The key exists but is outside its validity window.
    #[error("key {key_id} of channel {channel} is not valid now (expired or not yet valid)")]
    KeyExpired {
        /// Channel number.
        channel: String,
        /// Key id.
        key_id: String,
    },
    /// The signature does not verify against the key.
    #[error("the request signature is invalid")]
    SignatureInvalid,
    /// The timestamp is too far from the gateway's clock.
    #[error("request timestamp {timestamp} is more than {max_skew_secs} s from the gateway's time {now}")]
    TimestampSkew {
        /// The request's timestamp.
        timestamp: u64,
        /// The gateway's time.
        now: u64,
        /// The bound.
        max_skew_secs: u64,
    },
    /// The nonce was already used within the replay window.
    #[error("the request nonce was already used")]
    Replayed,
    /// The nonce store is at capacity and refuses new nonces.
    #[error("the replay cache is full; retry later")]
    NonceStoreFull,
    /// The nonce store cannot be reached.
    #[error("the replay cache is unavailable")]
    NonceStoreUnavailable(String),
}

impl AuthError {
    /// The stable code.
    pub fn code(&self) -> &'static str {
        match self {
            AuthError::HeaderMissing { .. } | AuthError::HeaderMalformed { .. } => "CHANNEL_HEADERS_MISSING",
            AuthError::ChannelUnknown { .. } => "CHANNEL_UNKNOWN",
            AuthError::KeyUnknown { .. } => "CHANNEL_KEY_UNKNOWN",
            AuthError::KeyExpired { .. } => "CHANNEL_KEY_EXPIRED",
            AuthError::SignatureInvalid => "CHANNEL_SIGNATURE_INVALID",
            AuthError::TimestampSkew { .. } => "REQUEST_TIMESTAMP_SKEW",
            AuthError::Replayed => "REQUEST_REPLAYED",
            AuthError::NonceStoreFull => "NONCE_STORE_FULL",
            AuthError::NonceStoreUnavailable(_) => "NONCE_STORE_UNAVAILABLE",
        }
    }

    /// The HTTP status that fits: `401` for the caller's faults, `503` when the gateway's
    /// replay cache cannot take the nonce (the request may be retried with a new nonce).
    pub fn status(&self) -> StatusCode {
        match self {
            AuthError::NonceStoreFull | AuthError::NonceStoreUnavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            _ => StatusCode::UNAUTHORIZED,
        }
    }

    /// Whether the gateway (not the caller) is to blame.
    pub fn is_gateway_fault(&self) -> bool {
        matches!(self, AuthError::NonceStoreFull | AuthError::NonceStoreUnavailable(_))
    }
}

impl From<NonceError> for AuthError {
    fn from(e: NonceError) -> Self {
        match e {
            NonceError::Replayed => AuthError::Replayed,
            NonceError::Full => AuthError::NonceStoreFull,
            NonceError::Unavailable(why) => AuthError::NonceStoreUnavailable(why),
        }
    }
}
