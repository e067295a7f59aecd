//! Every refusal of the data plane, classified by who is to blame and turned into an HTTP
//! response in one place ([`GatewayError::into_response_with`]). The table [`CODES`] is the
//! single list of stable codes: `docs/ERRORS.md` and the OpenAPI document are checked against
//! it by tests, so a code cannot be added without being documented.

use std::borrow::Cow;
use std::time::Duration;

use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::auth::AuthError;
use crate::credential::CredentialError;
use crate::runtime::InvokeError;

/// Who is to blame for a refusal (Spin's and pingora's practice: the blame decides the
/// status family, what is logged, and who gets paged).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Blame {
    /// The calling channel or venue sent a bad, unauthorized or excessive request.
    Caller,
    /// The card or its holder does not meet a rule (status, assurance, consent, business rule).
    Holder,
    /// The catalog's state refuses it (application not online, suspended, no grant).
    Catalog,
    /// The plugin misbehaved (timeout, trap, broken contract).
    Plugin,
    /// A system behind the plugin failed (insurance, bank, fare system).
    Backend,
    /// The gateway itself cannot serve (stale catalog, audit backpressure, capacity).
    Gateway,
}

impl Blame {
    /// The snake_case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Blame::Caller => "caller",
            Blame::Holder => "holder",
            Blame::Catalog => "catalog",
            Blame::Plugin => "plugin",
            Blame::Backend => "backend",
            Blame::Gateway => "gateway",
        }
    }
}

/// One documented code.
#[derive(Debug, Clone, Copy)]
pub struct CodeDoc {
    /// The stable code.
    pub code: &'static str,
    /// Its HTTP status.
    pub status: u16,
    /// Who is to blame.
    pub blame: Blame,
    /// The pipeline step that answers it.
    pub step: &'static str,
    /// What it means and what to do.
    pub meaning: &'static str,
}

macro_rules! codes {
    ($( $name:ident = $status:literal, $blame:ident, $step:literal, $meaning:literal; )*) => {
        /// The stable codes, as constants.
        pub mod codes {
            $( #[doc = $meaning] pub const $name: &str = stringify!($name); )*
        }
        /// Every code the gateway answers with itself (plugins add their own business codes).
        pub const CODES: &[CodeDoc] = &[
            $( CodeDoc { code: stringify!($name), status: $status, blame: Blame::$blame, step: $step, meaning: $meaning }, )*
        ];
    };
}

codes! {
    CHANNEL_HEADERS_MISSING = 401, Caller, "authentication", "A signature header is missing, repeated or malformed.";
    CHANNEL_UNKNOWN = 401, Caller, "authentication", "No channel with this number is in the catalog.";
    CHANNEL_KEY_UNKNOWN = 401, Caller, "authentication", "The channel has no key with this id.";
    CHANNEL_KEY_EXPIRED = 401, Caller, "authentication", "The key exists but is not valid now.";
    CHANNEL_SIGNATURE_INVALID = 401, Caller, "authentication", "The signature does not verify over the canonical request.";
    REQUEST_TIMESTAMP_SKEW = 401, Caller, "authentication", "The request timestamp is more than the allowed skew from the gateway clock.";
    REQUEST_REPLAYED = 401, Caller, "authentication", "The nonce was already used within the replay window.";
    NONCE_STORE_FULL = 503, Gateway, "authentication", "The replay cache is full; it refuses rather than forgets. Retry later with a new nonce.";
    NONCE_STORE_UNAVAILABLE = 503, Gateway, "authentication", "The shared replay cache cannot be reached.";
    INVALID_BODY = 400, Caller, "admission", "The body is not the invoke JSON (a field is unknown, missing or of the wrong type).";
    APP_UNKNOWN = 404, Caller, "admission", "No application with this id is in the catalog.";
    ACTION_UNKNOWN = 404, Caller, "admission", "The application has no action with this name.";
    APP_NOT_ONLINE = 403, Catalog, "admission", "The application is filed but not online (or terminated).";
    APP_SUSPENDED = 503, Catalog, "admission", "The application is suspended; the response carries the province's notice.";
    CHANNEL_SUSPENDED = 403, Catalog, "admission", "The channel is suspended or terminated by the province.";
    CHANNEL_NOT_AUTHORIZED = 403, Catalog, "admission", "The channel holds no live grant (渠道授权) for this application and action.";
    VENUE_NOT_REGISTERED = 403, Caller, "admission", "The venue is not registered to this application, not active, or operated by another channel.";
    TERMINAL_NOT_REGISTERED = 403, Caller, "admission", "The terminal is not one of the venue's registered terminals.";
    PLUGIN_UNAVAILABLE = 503, Gateway, "admission", "The application's filed plugin could not be fetched or loaded by this gateway.";
    RATE_LIMITED = 429, Caller, "rate limits", "A channel, venue or card-holder limit is reached; see Retry-After.";
    INVALID_PARAMS = 400, Caller, "validation", "The parameters break the action's JSON Schema; `field` names the first offending field.";
    IDEMPOTENCY_KEY_REQUIRED = 400, Caller, "validation", "Money-moving actions need an idempotency key.";
    CREDENTIAL_REQUIRED = 401, Caller, "credential", "The action needs a card credential and none was sent.";
    CREDENTIAL_MALFORMED = 400, Caller, "credential", "The card credential is not a v1 token.";
    CREDENTIAL_TOO_LARGE = 400, Caller, "credential", "The card credential is longer than 512 bytes.";
    CREDENTIAL_ISSUER_UNTRUSTED = 401, Caller, "credential", "The credential's issuer key is not a trusted, active issuer key of the catalog.";
    CREDENTIAL_SIGNATURE_INVALID = 401, Caller, "credential", "The credential's signature does not verify.";
    CREDENTIAL_NOT_YET_VALID = 401, Caller, "credential", "The credential is issued in the future.";
    CREDENTIAL_EXPIRED = 401, Caller, "credential", "The credential's validity window is over; show a fresh code.";
    CREDENTIAL_REPLAYED = 401, Caller, "credential", "The credential was already used once.";
    CARD_UNKNOWN = 403, Holder, "credential", "The card is not in the card registry.";
    CARD_EXPIRED = 403, Holder, "credential", "The card is past its validity.";
    CARD_SEALED = 403, Holder, "credential", "The card's social functions are not enabled yet.";
    CARD_TEMPORARILY_LOST = 403, Holder, "credential", "The card is reported temporarily lost and this action does not allow it.";
    HOLDER_AUTHORIZATION_REQUIRED = 403, Holder, "credential", "The card is temporarily lost; the holder must authorize its use for this application (consent scope `card.temporary_loss_use`).";
    CARD_LOST = 403, Holder, "credential", "The card is formally lost.";
    CARD_CANCELLED = 403, Holder, "credential", "The card is cancelled.";
    CARD_LOCKED = 403, Holder, "credential", "The card's social or financial account is locked and this action needs it unlocked.";
    CARD_STATUS_NOT_ALLOWED = 403, Holder, "credential", "The card's status is not allowed by this action's card-status policy.";
    ASSURANCE_NOT_MET = 403, Holder, "credential", "The card does not meet the assurance level (实名/实卡/实人) the action requires.";
    CONSENT_REQUIRED = 403, Holder, "consent", "The action reads holder data and no live consent of this holder covers its scopes.";
    CONSENT_REVOKED = 403, Holder, "consent", "The holder revoked the consent that covered these scopes.";
    PLUGIN_TIMEOUT = 504, Plugin, "plugin", "The plugin did not answer within its deadline.";
    PLUGIN_FAULT = 502, Plugin, "plugin", "The plugin trapped, ran out of memory, stack or host-call budget, or broke the contract.";
    GATEWAY_BUSY = 503, Gateway, "plugin", "Every plugin instance slot is in use.";
    BACKEND_UNAVAILABLE = 502, Backend, "plugin", "A backend the plugin depends on failed or timed out.";
    CATALOG_STALE = 503, Gateway, "before authentication", "The gateway's catalog snapshot is older than its staleness bound; it fails closed. /health says why.";
    AUDIT_BACKPRESSURE = 503, Gateway, "before authentication; consent", "The audit queue (or the holder-data access log) is full; the gateway refuses new work rather than dropping records.";
    LEDGER_CONFLICT = 409, Caller, "audit", "The money movement's idempotency key was already used for another ledger entry of this application.";
    LEDGER_INVALID = 502, Plugin, "audit", "The plugin moved money with an entry the ledger cannot take (no account, zero amount).";
    AUDIT_UNAVAILABLE = 503, Gateway, "audit", "The audit store could not commit the decision (money-moving actions are not answered without it).";
    NOT_FOUND = 404, Caller, "routing", "No such route.";
}

/// The Markdown table of [`CODES`], as `docs/ERRORS.md` holds it between its markers.
pub fn markdown_table() -> String {
    let mut t = String::from("| code | HTTP | blame | step | meaning |\n|---|---|---|---|---|\n");
    for c in CODES {
        t.push_str(&format!("| `{}` | {} | {} | {} | {} |\n", c.code, c.status, c.blame.as_str(), c.step, c.meaning));
    }
    t
}

/// The documentation of `code`, if the gateway defines it.
pub fn code_doc(code: &str) -> Option<&'static CodeDoc> {
    CODES.iter().find(|c| c.code == code)
}

/// A refusal on its way to the caller.
#[derive(Debug, Clone)]
pub struct GatewayError {
    /// Stable code (a gateway code or a plugin's business code).
    pub code: Cow<'static, str>,
    /// Who is to blame.
    pub blame: Blame,
    /// HTTP status.
    pub status: StatusCode,
    /// Human-readable message (never secrets, never personal data).
    pub message: String,
    /// The offending field, for validation errors.
    pub field: Option<String>,
    /// The province's notice, for suspended applications.
    pub notice: Option<String>,
    /// Extra headers (Retry-After, RateLimit-*).
    pub headers: Vec<(HeaderName, HeaderValue)>,
}

impl GatewayError {
    /// A refusal with a gateway code from [`CODES`] (status and blame from the table).
    pub fn of(code: &'static str, message: impl Into<String>) -> Self {
        let (status, blame) = code_doc(code)
            .map_or((StatusCode::INTERNAL_SERVER_ERROR, Blame::Gateway), |d| {
                (StatusCode::from_u16(d.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR), d.blame)
            });
        GatewayError { code: Cow::Borrowed(code), blame, status, message: message.into(), field: None, notice: None, headers: Vec::new() }
    }

    /// Names the offending field.
    pub fn with_field(mut self, field: impl Into<String>) -> Self {
        self.field = Some(field.into());
        self
    }

    /// Carries the province's notice.
    pub fn with_notice(mut self, notice: Option<String>) -> Self {
        self.notice = notice;
        self
    }

    /// Adds response headers.
    pub fn with_headers(mut self, headers: Vec<(HeaderName, HeaderValue)>) -> Self {
        self.headers.extend(headers);
        self
    }

    /// A `Retry-After` of `after`, rounded up to whole seconds (at least 1).
    pub fn retry_after(self, after: Duration) -> Self {
        let secs = after.as_secs() + u64::from(after.subsec_nanos() > 0);
        let value = HeaderValue::from(secs.max(1));
        self.with_headers(vec![(axum::http::header::RETRY_AFTER, value)])
    }

    /// The JSON body.
    pub fn body(&self, request_id: &str) -> ErrorBody {
        ErrorBody {
            request_id: request_id.to_string(),
            decision: "refused",
            error: ErrorDetail {
                code: self.code.to_string(),
                message: self.message.clone(),
                blame: self.blame,
                field: self.field.clone(),
                notice: self.notice.clone(),
            },
        }
    }

    /// The HTTP response: status, headers, `X-Request-Id` and the JSON body.
    pub fn into_response_with(self, request_id: &str) -> Response {
        let body = self.body(request_id);
        let mut response = (self.status, axum::Json(body)).into_response();
        let headers = response.headers_mut();
        for (name, value) in self.headers {
            headers.insert(name, value);
        }
        if let Ok(id) = HeaderValue::from_str(request_id) {
            headers.insert(REQUEST_ID, id);
        }
        response
    }
}

/// The response header carrying the request id.
pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The body of every refusal.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    /// The request id (also in `X-Request-Id` and in the audit record).
    pub request_id: String,
    /// Always `refused`.
    pub decision: &'static str,
    /// What went wrong.
    pub error: ErrorDetail,
}

/// The error of a refusal.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ErrorDetail {
    /// Stable code (see docs/ERRORS.md).
    pub code: String,
    /// Human-readable message.
    pub message: String,
    /// Who is to blame.
    pub blame: Blame,
    /// Offending field (validation errors).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// Notice of the province (suspended applications).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub notice: Option<String>,
}

impl From<AuthError> for GatewayError {
    fn from(e: AuthError) -> Self {
        GatewayError::of(e.code(), e.to_string())
    }
}

impl From<CredentialError> for GatewayError {
    fn from(e: CredentialError) -> Self {
        GatewayError::of(e.code(), e.to_string())
    }
}

impl From<InvokeError> for GatewayError {
    fn from(e: InvokeError) -> Self {
        let message = e.message();
        match e {
            InvokeError::Timeout { .. } => GatewayError::of(codes::PLUGIN_TIMEOUT, message),
            InvokeError::Fault { .. } => GatewayError::of(codes::PLUGIN_FAULT, message),
            InvokeError::Busy => GatewayError::of(codes::GATEWAY_BUSY, message),
            InvokeError::Refused { code, .. } => GatewayError {
                code: Cow::Owned(code),
                blame: Blame::Holder,
                status: StatusCode::UNPROCESSABLE_ENTITY,
                message,
                field: None,
                notice: None,
                headers: Vec::new(),
            },
            InvokeError::InvalidParams { code, .. } => GatewayError {
                code: Cow::Owned(code),
                blame: Blame::Caller,
                status: StatusCode::BAD_REQUEST,
                message,
                field: None,
                notice: None,
                headers: Vec::new(),
            },
            InvokeError::Backend { code, .. } => GatewayError {
                code: Cow::Owned(code),
                blame: Blame::Backend,
                status: StatusCode::BAD_GATEWAY,
                message,
                field: None,
                notice: None,
                headers: Vec::new(),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_is_unique_and_has_a_fitting_status() {
        let mut seen = std::collections::BTreeSet::new();
        for c in CODES {
            assert!(seen.insert(c.code), "{} twice", c.code);
            let family = c.status / 100;
            match c.blame {
                Blame::Caller | Blame::Holder | Blame::Catalog => assert!(family == 4 || c.code == "APP_SUSPENDED", "{}", c.code),
                Blame::Plugin | Blame::Backend | Blame::Gateway => assert_eq!(family, 5, "{}", c.code),
            }
        }
    }

    #[test]
    fn auth_and_credential_codes_are_documented() {
        for e in [AuthError::SignatureInvalid, AuthError::Replayed, AuthError::NonceStoreFull] {
            let g = GatewayError::from(e.clone());
            assert_eq!(g.status, e.status(), "{}", e.code());
        }
        for e in [CredentialError::Replayed, CredentialError::SignatureInvalid, CredentialError::Malformed("x".into())] {
            let g = GatewayError::from(e.clone());
            assert_eq!(g.status, e.status(), "{}", e.code());
            assert!(code_doc(e.code()).is_some(), "{}", e.code());
        }
    }

    /// `docs/ERRORS.md` lists exactly [`CODES`]. Regenerate with `ONECARD_BLESS=1 cargo test -p
    /// onecard-gateway --lib errors_doc`.
    #[test]
    fn errors_doc_matches_the_code_table() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/ERRORS.md");
        let doc = std::fs::read_to_string(path).expect("docs/ERRORS.md");
        let (begin, end) = ("<!-- codes:begin -->\n", "<!-- codes:end -->");
        let (head, rest) = doc.split_once(begin).expect("begin marker");
        let (_, tail) = rest.split_once(end).expect("end marker");
        let wanted = format!("{head}{begin}{}{end}{tail}", markdown_table());
        if std::env::var_os("ONECARD_BLESS").is_some() {
            std::fs::write(path, &wanted).expect("write docs/ERRORS.md");
        }
        assert_eq!(doc, wanted, "docs/ERRORS.md is out of date: run with ONECARD_BLESS=1");
    }

    #[test]
    fn retry_after_rounds_up() {
        let e = GatewayError::of(codes::RATE_LIMITED, "x").retry_after(Duration::from_millis(1200));
        assert_eq!(e.headers[0].1, HeaderValue::from(2u64));
        let e = GatewayError::of(codes::RATE_LIMITED, "x").retry_after(Duration::ZERO);
        assert_eq!(e.headers[0].1, HeaderValue::from(1u64));
    }
}
