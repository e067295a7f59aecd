//! The request path (DESIGN.md "The request path"): `POST /v1/apps/{app}/actions/{action}`
//! runs eight steps in order, each in a module of its own, and every decision — allowed or
//! refused — leaves one audit record:
//!
//! 1. channel authentication ([`crate::auth`]); 2. admission ([`admission`]);
//! 3. rate limits ([`crate::limits`]); 4. input validation (the filed JSON Schema);
//! 5. the card credential and the card's status and assurance ([`card`]);
//! 6. personal authorization ([`consent`]); 7. the plugin call ([`call`]); 8. audit.
//!
//! Before step 1 the gateway reserves the request's audit slot (a full queue answers
//! `AUDIT_BACKPRESSURE`, the one refusal that cannot be audited) and fails closed on a stale
//! catalog (`CATALOG_STALE`, audited).

pub mod admission;
pub mod body;
mod call;
pub mod card;
pub mod consent;

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use axum::http::request::Parts;
use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use onecard_audit::{AuditEntry, AuditHandle, LedgerEntry, Outcome};
use onecard_catalog::store::AccessRecord;
use serde::{Deserialize, Serialize};

use self::body::InvokeBody;
use crate::auth::{AuthConfig, NonceStore, RequestParts, authenticate};
use crate::credential;
use crate::enforced::Enforced;
use crate::error::{Blame, GatewayError, REQUEST_ID, codes};
use crate::holders::{HolderDirectory, consented_view};
use crate::limits::{LimitKey, Limiters};
use crate::runtime::Runtime;
use crate::server::metrics::ActionMetrics;
use crate::sync::{AccessReporter, CatalogState};

/// Settings of the request path (the `[gateway]` table).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PipelineConfig {
    /// This gateway's id: its audit chain and its name in catalog reports.
    pub gateway_id: String,
    /// Channel authentication.
    pub auth: AuthConfig,
    /// Clock skew tolerated on card credentials, seconds. Default 5.
    pub credential_skew_secs: u64,
}

impl Default for PipelineConfig {
    fn default() -> Self {
        PipelineConfig { gateway_id: "gateway-1".into(), auth: AuthConfig::default(), credential_skew_secs: 5 }
    }
}

/// The data plane: everything a request needs, shared by all requests.
#[derive(Debug, Clone)]
pub struct Gateway {
    /// The enforced catalog.
    pub state: Arc<CatalogState>,
    /// Plugins run here.
    pub runtime: Arc<Runtime>,
    /// Request and credential nonces.
    pub nonces: Arc<dyn NonceStore>,
    /// Rate limiters.
    pub limiters: Arc<Limiters>,
    /// The audit trail.
    pub audit: AuditHandle,
    /// Holder data (outside onecard).
    pub holders: Arc<dyn HolderDirectory>,
    /// The holder access log.
    pub accesses: AccessReporter,
    /// Settings.
    pub config: Arc<PipelineConfig>,
}

/// What steps 1–7 learned, for the audit record.
#[derive(Debug, Default)]
struct Trace {
    channel: Option<String>,
    venue: Option<String>,
    terminal: Option<String>,
    card_ref: Option<String>,
    plugin_sha256: Option<String>,
    ledger: Vec<LedgerEntry>,
    plugin_time: Option<Duration>,
    /// The admitted action's metric handles.
    metrics: Option<Arc<ActionMetrics>>,
}

/// An allowed decision.
struct Allowed {
    result: Box<serde_json::value::RawValue>,
    headers: Vec<(HeaderName, HeaderValue)>,
}

/// The body of an allowed decision.
#[derive(serde::Serialize)]
struct AllowedBody<'a> {
    request_id: &'a str,
    decision: &'static str,
    /// The plugin's answer.
    result: &'a serde_json::value::RawValue,
}

/// A fresh request id: 16 bytes, hex, time-ordered (see [`onecard_catalog::ids::time_ordered_hex`]).
pub fn new_request_id() -> String {
    onecard_catalog::ids::time_ordered_hex::<16>()
}

impl Gateway {
    /// Runs the request path for one call and answers it.
    pub async fn invoke(&self, app: &str, action: &str, parts: &Parts, body: &[u8]) -> Response {
        let started = Instant::now();
        let request_id = new_request_id();
        let now = SystemTime::now();
        // The audit slot is reserved first: every decision after this point is recorded.
        let slot = match self.audit.reserve() {
            Ok(slot) => slot,
            Err(e) => return self.unaudited(app, action, GatewayError::of(codes::AUDIT_BACKPRESSURE, e.to_string()), &request_id),
        };
        let mut trace = Trace::default();
        let (version, result) = match self.state.fresh(now) {
            Ok(enforced) => (enforced.version(), self.steps(&enforced, &mut trace, &request_id, app, action, parts, body, now).await),
            Err(stale) => (
                self.state.load().map_or(0, |e| e.version()),
                Err(GatewayError::of(codes::CATALOG_STALE, stale.reason)),
            ),
        };
        let latency = started.elapsed();
        let (outcome, status, code, blame, detail) = match &result {
            Ok(_) => (Outcome::Allowed, StatusCode::OK, None, None, serde_json::Value::Null),
            Err(e) => {
                let outcome = if matches!(e.blame, Blame::Caller | Blame::Holder | Blame::Catalog) { Outcome::Refused } else { Outcome::Failed };
                let detail = serde_json::json!({ "message": e.message, "field": e.field, "notice": e.notice });
                (outcome, e.status, Some(e.code.to_string()), Some(e.blame.as_str().to_string()), detail)
            }
        };
        let entry = AuditEntry {
            request_id: request_id.clone(),
            at: chrono::DateTime::from(now),
            channel: trace.channel.take(),
            venue: trace.venue.take(),
            terminal: trace.terminal.take(),
            card_ref: trace.card_ref.take(),
            app: app.to_string(),
            action: action.to_string(),
            plugin_sha256: trace.plugin_sha256.take(),
            snapshot_version: version,
            outcome,
            code: code.clone(),
            blame,
            status: status.as_u16(),
            latency_us: u64::try_from(latency.as_micros()).unwrap_or(u64::MAX),
            detail,
        };
        let result = if trace.ledger.is_empty() {
            slot.record(entry);
            result
        } else {
            // Money moved: the ledger entries and the decision commit together before answering.
            match slot.commit_with_ledger(entry, std::mem::take(&mut trace.ledger)).await {
                Ok(_) => result,
                Err(e) => {
                    tracing::error!(request_id, error = %e, "ledger and audit record not committed");
                    // The writer recorded the refusal under the same code (see onecard-audit).
                    Err(match e.code() {
                        "LEDGER_CONFLICT" => GatewayError::of(codes::LEDGER_CONFLICT, e.to_string()),
                        "LEDGER_INVALID" => GatewayError::of(codes::LEDGER_INVALID, e.to_string()),
                        _ => GatewayError::of(codes::AUDIT_UNAVAILABLE, format!("the decision could not be recorded: {e}; retry with the same idempotency key")),
                    })
                }
            }
        };
        crate::server::metrics::record_decision(trace.metrics.as_deref(), code.as_deref(), latency, trace.plugin_time);
        match result {
            Ok(allowed) => {
                let body = AllowedBody { request_id: &request_id, decision: "allowed", result: &allowed.result };
                let mut response = (StatusCode::OK, axum::Json(body)).into_response();
                let headers = response.headers_mut();
                for (name, value) in allowed.headers {
                    headers.insert(name, value);
                }
                if let Ok(id) = HeaderValue::from_str(&request_id) {
                    headers.insert(REQUEST_ID, id);
                }
                response
            }
            Err(e) => e.into_response_with(&request_id),
        }
    }

    /// Answers a refusal that cannot be audited (the audit queue is full): counted and logged.
    fn unaudited(&self, app: &str, action: &str, error: GatewayError, request_id: &str) -> Response {
        tracing::warn!(request_id, app, action, code = %error.code, message = %error.message, "refused before admission");
        crate::server::metrics::record_decision(None, Some(&error.code), Duration::ZERO, None);
        error.into_response_with(request_id)
    }

    #[allow(clippy::too_many_arguments)]
    async fn steps(
        &self,
        enforced: &Arc<Enforced>,
        trace: &mut Trace,
        request_id: &str,
        app_id: &str,
        action: &str,
        parts: &Parts,
        raw_body: &[u8],
        now: SystemTime,
    ) -> Result<Allowed, GatewayError> {
        let now_utc = chrono::DateTime::<chrono::Utc>::from(now);

        // 1. Channel authentication.
        let caller = authenticate(&RequestParts::from_http(parts, raw_body), enforced.as_ref(), self.nonces.as_ref(), now, &self.config.auth).await?;
        trace.channel = Some(caller.channel.clone());

        // 2. Admission.
        let body = InvokeBody::parse(raw_body)?;
        trace.venue.clone_from(&body.venue);
        trace.terminal.clone_from(&body.terminal);
        let app = admission::admit(enforced, &caller.channel, app_id, action, &body, now_utc)?;
        trace.plugin_sha256 = Some(app.spec.plugin_sha256.clone());
        trace.metrics = app.metrics(action).cloned();
        let filed = &app.spec.actions[action];

        // 3. Rate limits. The credential is verified first (pure: nothing is spent) so the card
        // holder's limiter can be keyed; a bad credential is answered in step 5.
        let skew = Duration::from_secs(self.config.credential_skew_secs);
        let verified = body.credential.as_deref().map(|t| credential::verify(t, &enforced.snapshot.issuer_keys, now, skew));
        let holder = verified.as_ref().and_then(|v| v.as_ref().ok()).map(|v| v.claims.card_ref.as_str());
        let limits = self
            .limiters
            .check(&LimitKey { app: app_id, channel: &caller.channel, venue: body.venue.as_deref(), holder })
            .map_err(|r| GatewayError::of(codes::RATE_LIMITED, r.message()).with_headers(r.headers()))?;

        // 4. Input validation.
        app.validate(action, &body.params).map_err(|v| GatewayError::of(codes::INVALID_PARAMS, v.message).with_field(v.field))?;
        if filed.spec.moves_money && body.idempotency_key.is_none() {
            return Err(GatewayError::of(codes::IDEMPOTENCY_KEY_REQUIRED, "money-moving actions need an idempotency key").with_field("idempotency_key"));
        }

        // 5. Credential, card status, assurance.
        let card = match verified {
            None if app.needs_card(action) => {
                return Err(GatewayError::of(codes::CREDENTIAL_REQUIRED, format!("`{app_id}`/`{action}` needs a card credential")).with_field("credential"));
            }
            None => None,
            Some(verified) => {
                let verified = verified?;
                credential::spend(&verified, self.nonces.as_ref(), now, skew).await?;
                let card_ref = verified.claims.card_ref.clone();
                trace.card_ref = Some(card_ref.clone());
                let state = enforced
                    .card(&card_ref)
                    .ok_or_else(|| GatewayError::of(codes::CARD_UNKNOWN, "the card is not in the card registry"))?;
                let consents = enforced.consents(&card_ref, app_id);
                card::check(
                    state,
                    &filed.card_status_policy,
                    &filed.spec.assurance,
                    filed.spec.moves_money,
                    consent::authorizes(consents, card::TEMPORARY_LOSS_SCOPE, now_utc),
                    body.real_person_verified(),
                    now_utc,
                )?;
                // Looked up once: step 6 reads the same list.
                Some((verified, state.clone(), consents))
            }
        };

        // 6. Personal authorization and data minimisation.
        let card_view = match &card {
            None => None,
            Some((verified, state, consents)) => {
                let card_ref = &verified.claims.card_ref;
                let consent = consent::covering(consents, &filed.spec.scopes, now_utc)?;
                let attributes = match consent {
                    Some(c) => {
                        self.accesses.record(AccessRecord {
                            at: now_utc,
                            card_ref: card_ref.clone(),
                            application: app_id.to_string(),
                            action: action.to_string(),
                            channel: caller.channel.clone(),
                            consent_id: Some(c.id.clone()),
                            scopes: filed.spec.scopes.clone(),
                            gateway: String::new(),
                        })
                        .map_err(|full| GatewayError::of(codes::AUDIT_BACKPRESSURE, full.to_string()))?;
                        consented_view(&self.holders.attributes(card_ref), &filed.spec.scopes)
                    }
                    None => Vec::new(),
                };
                Some(crate::bindings::CardView {
                    holder_ref: card_ref.clone(),
                    status: card::view_status(state),
                    financial_locked: state.financial_locked,
                    assurance: card::view_assurance(state, body.real_person_verified()),
                    issuing_region: verified.claims.region.clone(),
                    attributes,
                })
            }
        };

        // 7. The plugin call.
        let outcome = call::run(self, app, &caller.channel, request_id, action, &body, card_view).await;
        trace.plugin_time = Some(outcome.elapsed);
        trace.ledger = outcome.ledger;
        let result = outcome.result?;
        Ok(Allowed { result, headers: limits.map(|l| l.headers()).unwrap_or_default() })
    }
}
