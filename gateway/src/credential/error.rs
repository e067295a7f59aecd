//! Why a card credential was refused (each with a stable code), and why one could not be minted.

use http::StatusCode;

use crate::auth::NonceError;

/// A refusal of a card credential. [`CredentialError::code`] is the stable, documented code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CredentialError {
    /// Not a `v1` token, bad base64, or a payload that does not decode.
    #[error("the card credential is malformed: {0}")]
    Malformed(String),
    /// Longer than the format allows.
    #[error("the card credential has {len} bytes, more than {max}")]
    TooLarge {
        /// Its length.
        len: usize,
        /// The bound.
        max: usize,
    },
    /// No active issuer key with this id is valid now.
    #[error("issuer key {key_id} is not trusted now")]
    IssuerUntrusted {
        /// The key id in the token.
        key_id: String,
    },
    /// The issuer's signature does not verify.
    #[error("the card credential's signature is invalid")]
    SignatureInvalid,
    /// Issued in the future (beyond the allowed skew).
    #[error("the card credential is not valid before {issued_at} (now {now})")]
    NotYetValid {
        /// Issue time, unix seconds.
        issued_at: u64,
        /// The gateway's time.
        now: u64,
    },
    /// Its validity has passed.
    #[error("the card credential expired at {expires_at} (now {now})")]
    Expired {
        /// End of validity, unix seconds (skew not included).
        expires_at: u64,
        /// The gateway's time.
        now: u64,
    },
    /// Already presented once.
    #[error("the card credential was already used")]
    Replayed,
    /// The replay cache is at capacity.
    #[error("the replay cache is full; retry later")]
    NonceStoreFull,
    /// The replay cache cannot be reached.
    #[error("the replay cache is unavailable")]
    NonceStoreUnavailable(String),
}

impl CredentialError {
    /// The stable code.
    pub fn code(&self) -> &'static str {
        match self {
            CredentialError::Malformed(_) => "CREDENTIAL_MALFORMED",
            CredentialError::TooLarge { .. } => "CREDENTIAL_TOO_LARGE",
            CredentialError::IssuerUntrusted { .. } => "CREDENTIAL_ISSUER_UNTRUSTED",
            CredentialError::SignatureInvalid => "CREDENTIAL_SIGNATURE_INVALID",
            CredentialError::NotYetValid { .. } => "CREDENTIAL_NOT_YET_VALID",
            CredentialError::Expired { .. } => "CREDENTIAL_EXPIRED",
            CredentialError::Replayed => "CREDENTIAL_REPLAYED",
            // The replay cache is the one channel authentication uses: same codes.
            CredentialError::NonceStoreFull => "NONCE_STORE_FULL",
            CredentialError::NonceStoreUnavailable(_) => "NONCE_STORE_UNAVAILABLE",
        }
    }

    /// The HTTP status that fits: `400` for a token that is not one, `401` for one that does
    /// not prove the card, `503` when the replay cache cannot take it.
    pub fn status(&self) -> StatusCode {
        match self {
            CredentialError::Malformed(_) | CredentialError::TooLarge { .. } => StatusCode::BAD_REQUEST,
            CredentialError::NonceStoreFull | CredentialError::NonceStoreUnavailable(_) => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            _ => StatusCode::UNAUTHORIZED,
        }
    }
}

impl From<NonceError> for CredentialError {
    fn from(e: NonceError) -> Self {
        match e {
            NonceError::Replayed => CredentialError::Replayed,
            NonceError::Full => CredentialError::NonceStoreFull,
            NonceError::Unavailable(why) => CredentialError::NonceStoreUnavailable(why),
        }
    }
}

/// Why a credential could not be minted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MintError {
    /// A claim is out of the format's bounds.
    #[error("invalid credential claims: {0}")]
    InvalidClaims(String),
    /// The key cannot sign credentials (HMAC).
    #[error("a {0} key cannot sign card credentials (Ed25519 or SM2 only)")]
    WrongAlgorithm(&'static str),
}
