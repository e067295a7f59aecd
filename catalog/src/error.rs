//! The catalog's error type, classified by who is to blame.
//!
//! Every refusal carries a stable SCREAMING_SNAKE code that callers may match on; the HTTP
//! layer turns an [`Error`] into a response in exactly one place (`api::response`).

use serde::Serialize;

/// Who caused a failure; shown to callers so they know whom to call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Blame {
    /// The request was wrong: fix it and retry.
    Caller,
    /// The catalog failed (database, bug): retrying later may help.
    Catalog,
}

/// The kind of refusal, which decides the HTTP status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// 400: the input is malformed or violates a rule.
    BadRequest,
    /// 401: no valid credential.
    Unauthorized,
    /// 403: a valid credential without the right to do this.
    Forbidden,
    /// 404: the thing named does not exist.
    NotFound,
    /// 405: the route exists, the method does not.
    MethodNotAllowed,
    /// 409: the request conflicts with the current state.
    Conflict,
    /// 413: the body is too large.
    PayloadTooLarge,
    /// 415: the body is not JSON.
    UnsupportedMediaType,
    /// 422: well-formed JSON that does not fit the expected shape.
    Unprocessable,
}

/// Everything that can go wrong in the catalog.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The caller asked for something the catalog refuses; nothing was changed.
    #[error("{message}")]
    Refused {
        /// Decides the HTTP status.
        kind: Refusal,
        /// Stable machine-readable code.
        code: &'static str,
        /// Human-readable explanation naming the place.
        message: String,
    },
    /// The database failed.
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    /// Migrations could not be applied.
    #[error("database migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// A bug or broken invariant inside the catalog.
    #[error("internal error: {0}")]
    Internal(String),
}

/// Shorthand for results in this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// A refusal of the given kind and code.
    pub fn refused(kind: Refusal, code: &'static str, message: impl Into<String>) -> Self {
        Error::Refused { kind, code, message: message.into() }
    }
    /// 400 with a code.
    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::refused(Refusal::BadRequest, code, message)
    }
    /// 400 `INVALID_CATALOG`: the resulting catalog would break a rule.
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::refused(Refusal::BadRequest, codes::INVALID_CATALOG, message)
    }
    /// 404 with a code.
    pub fn not_found(code: &'static str, message: impl Into<String>) -> Self {
        Self::refused(Refusal::NotFound, code, message)
    }
    /// 403 with a code.
    pub fn forbidden(code: &'static str, message: impl Into<String>) -> Self {
        Self::refused(Refusal::Forbidden, code, message)
    }
    /// 409 with a code.
    pub fn conflict(code: &'static str, message: impl Into<String>) -> Self {
        Self::refused(Refusal::Conflict, code, message)
    }

    /// The stable code.
    pub fn code(&self) -> &'static str {
        match self {
            Error::Refused { code, .. } => code,
            Error::Database(_) | Error::Migrate(_) => codes::DATABASE_UNAVAILABLE,
            Error::Internal(_) => codes::INTERNAL,
        }
    }

    /// Who is to blame.
    pub fn blame(&self) -> Blame {
        match self {
            Error::Refused { .. } => Blame::Caller,
            _ => Blame::Catalog,
        }
    }
}

/// The stable error codes of the catalog API. Documented in the OpenAPI description.
pub mod codes {
    /// An uploaded plugin artifact is not a WebAssembly binary.
    pub const INVALID_ARTIFACT: &str = "INVALID_ARTIFACT";
    /// No artifact is stored under that hash.
    pub const ARTIFACT_NOT_FOUND: &str = "ARTIFACT_NOT_FOUND";
    /// Body is not valid JSON.
    pub const MALFORMED_JSON: &str = "MALFORMED_JSON";
    /// Body has a field the endpoint does not know.
    pub const UNKNOWN_FIELD: &str = "UNKNOWN_FIELD";
    /// Body has a field of the wrong type.
    pub const WRONG_TYPE: &str = "WRONG_TYPE";
    /// Body lacks a required field.
    pub const MISSING_FIELD: &str = "MISSING_FIELD";
    /// Body does not fit the expected shape for another reason.
    pub const INVALID_BODY: &str = "INVALID_BODY";
    /// Body is larger than the endpoint accepts.
    pub const PAYLOAD_TOO_LARGE: &str = "PAYLOAD_TOO_LARGE";
    /// Body is not `application/json`.
    pub const UNSUPPORTED_MEDIA_TYPE: &str = "UNSUPPORTED_MEDIA_TYPE";
    /// Query string is invalid.
    pub const INVALID_QUERY: &str = "INVALID_QUERY";
    /// A path parameter is invalid.
    pub const INVALID_PATH: &str = "INVALID_PATH";
    /// A field value breaks a rule of the catalog (format, reference, limit).
    pub const INVALID_CATALOG: &str = "INVALID_CATALOG";
    /// The declarative TOML does not parse or has unknown keys.
    pub const INVALID_TOML: &str = "INVALID_TOML";
    /// No bearer token.
    pub const TOKEN_MISSING: &str = "TOKEN_MISSING";
    /// Unknown or revoked bearer token.
    pub const TOKEN_INVALID: &str = "TOKEN_INVALID";
    /// The token's role may not do this.
    pub const ROLE_FORBIDDEN: &str = "ROLE_FORBIDDEN";
    /// The application belongs to another department.
    pub const FOREIGN_DEPARTMENT: &str = "FOREIGN_DEPARTMENT";
    /// The filing workflow does not allow this transition.
    pub const INVALID_TRANSITION: &str = "INVALID_TRANSITION";
    /// The card status machine does not allow this change.
    pub const INVALID_CARD_TRANSITION: &str = "INVALID_CARD_TRANSITION";
    /// Unknown route.
    pub const NOT_FOUND: &str = "NOT_FOUND";
    /// Unknown application.
    pub const APP_NOT_FOUND: &str = "APP_NOT_FOUND";
    /// Unknown filing.
    pub const FILING_NOT_FOUND: &str = "FILING_NOT_FOUND";
    /// Unknown card.
    pub const CARD_NOT_FOUND: &str = "CARD_NOT_FOUND";
    /// Unknown consent.
    pub const CONSENT_NOT_FOUND: &str = "CONSENT_NOT_FOUND";
    /// Unknown grant.
    pub const GRANT_NOT_FOUND: &str = "GRANT_NOT_FOUND";
    /// Unknown token.
    pub const TOKEN_NOT_FOUND: &str = "TOKEN_NOT_FOUND";
    /// Unknown catalog entity (province, city, department, channel, venue, key, policy).
    pub const ENTITY_NOT_FOUND: &str = "ENTITY_NOT_FOUND";
    /// Unknown gateway.
    pub const GATEWAY_NOT_FOUND: &str = "GATEWAY_NOT_FOUND";
    /// The thing already exists.
    pub const ALREADY_EXISTS: &str = "ALREADY_EXISTS";
    /// The consent was already revoked.
    pub const CONSENT_REVOKED: &str = "CONSENT_REVOKED";
    /// The channel is not active.
    pub const CHANNEL_NOT_ACTIVE: &str = "CHANNEL_NOT_ACTIVE";
    /// The holder header (`x-onecard-holder-ssn`) is missing.
    pub const HOLDER_MISSING: &str = "HOLDER_MISSING";
    /// A social security number is malformed or its check character is wrong.
    pub const INVALID_SSN: &str = "INVALID_SSN";
    /// Method not allowed on this route.
    pub const METHOD_NOT_ALLOWED: &str = "METHOD_NOT_ALLOWED";
    /// The catalog has not been initialised (`onecard catalog init`).
    pub const NOT_INITIALISED: &str = "NOT_INITIALISED";
    /// The database failed.
    pub const DATABASE_UNAVAILABLE: &str = "DATABASE_UNAVAILABLE";
    /// A bug in the catalog.
    pub const INTERNAL: &str = "INTERNAL";
}
