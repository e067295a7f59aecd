//! Step 7, the plugin call: a fresh instance of the application's plugin with only its granted
//! capabilities, its deadline and limits, the consented card view and the clock; the money it
//! moved comes back as ledger entries for step 8.

use std::time::Duration;

use onecard_audit::LedgerEntry;
use serde_json::value::RawValue;

use super::Gateway;
use super::body::InvokeBody;
use crate::bindings::CardView;
use crate::bindings::onecard::plugin::payments::Kind;
use crate::bindings::onecard::plugin::types::Request;
use crate::capabilities::HostState;
use crate::capabilities::clock::ClockState;
use crate::enforced::EnforcedApp;
use crate::error::{GatewayError, codes};

/// What the call produced.
pub(super) struct CallOutcome {
    pub result: Result<Box<RawValue>, GatewayError>,
    pub ledger: Vec<LedgerEntry>,
    pub elapsed: Duration,
}

pub(super) async fn run(
    gateway: &Gateway,
    app: &EnforcedApp,
    channel: &str,
    request_id: &str,
    action: &str,
    body: &InvokeBody,
    card: Option<CardView>,
) -> CallOutcome {
    let Ok(plugin) = &app.plugin else {
        // Admission already refused applications without a plugin.
        return CallOutcome { result: Err(GatewayError::of(codes::PLUGIN_UNAVAILABLE, "no plugin")), ledger: Vec::new(), elapsed: Duration::ZERO };
    };
    let request = Request {
        app: app.spec.id.clone(),
        action: action.to_string(),
        request_id: request_id.to_string(),
        channel: channel.to_string(),
        venue: body.venue.clone(),
        terminal: body.terminal.clone(),
        params: body.params.to_string(),
        config: app.config_json().to_string(),
        card,
        idempotency_key: body.idempotency_key.clone().unwrap_or_else(|| request_id.to_string()),
    };
    let state = HostState::new(&app.env, gateway.runtime.instance_limits(), request_id, request.card.clone(), ClockState::now());
    let invocation = plugin.handle(state, &request, gateway.runtime.deadline()).await;
    let ledger = invocation
        .state
        .payments
        .moved
        .iter()
        .map(|(payment, receipt)| LedgerEntry {
            app: app.spec.id.clone(),
            kind: match payment.kind {
                Kind::Debit => "debit",
                Kind::Credit => "credit",
                Kind::Refund => "refund",
            }
            .to_string(),
            account: payment.account.clone(),
            amount_fen: payment.amount_fen,
            reference: payment.reference.clone(),
            idempotency_key: payment.idempotency_key.clone(),
            receipt_id: receipt.id.clone(),
            settled_at_ms: receipt.settled_at_ms,
        })
        .collect();
    let result = match invocation.result {
        // Checked to be JSON and passed on as the plugin wrote it, not parsed into a tree and
        // encoded again.
        Ok(response) => RawValue::from_string(response.body)
            .map_err(|e| GatewayError::of(codes::PLUGIN_FAULT, format!("the plugin answered a body that is not JSON: {e}"))),
        Err(e) => Err(GatewayError::from(e)),
    };
    CallOutcome { result, ledger, elapsed: invocation.elapsed }
}
