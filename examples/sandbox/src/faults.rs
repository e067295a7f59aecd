//! Fault switches, one set per test double, settable at runtime with `PUT /{backend}/_faults`:
//! a delay before every answer, a random error rate, the next N requests failing with a status,
//! and the next N requests processed but never answered (the client times out — the case a
//! settlement that must not be retried blindly has to survive).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Json;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::json;

/// The fault switches of one backend. Every field is optional in `PUT /_faults`; the body
/// replaces all switches, so `{}` clears them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Faults {
    /// Wait this long before handling each request, ms. Default 0.
    #[serde(default)]
    pub delay_ms: u64,
    /// Probability (0 to 1) that a request fails with `status` without being processed.
    /// Default 0.
    #[serde(default)]
    pub error_rate: f64,
    /// The next N requests fail with `status` without being processed. Default 0.
    #[serde(default)]
    pub fail_next: u32,
    /// The next N requests are processed and then never answered. Default 0.
    #[serde(default)]
    pub timeout_next: u32,
    /// Status of injected failures. Default 503.
    #[serde(default = "default_status")]
    pub status: u16,
}

fn default_status() -> u16 {
    503
}

impl Default for Faults {
    fn default() -> Self {
        Faults { delay_ms: 0, error_rate: 0.0, fail_next: 0, timeout_next: 0, status: default_status() }
    }
}

/// The switches of one backend, shared by its routes.
pub type Switches = Arc<Mutex<Faults>>;

enum Decision {
    Pass,
    Fail(StatusCode),
    Hang,
}

fn decide(switches: &Switches) -> (u64, Decision) {
    let mut faults = switches.lock().unwrap_or_else(|p| p.into_inner());
    let status = StatusCode::from_u16(faults.status).unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
    let decision = if faults.fail_next > 0 {
        faults.fail_next -= 1;
        Decision::Fail(status)
    } else if faults.timeout_next > 0 {
        faults.timeout_next -= 1;
        Decision::Hang
    } else if faults.error_rate > 0.0 && rand::random::<f64>() < faults.error_rate {
        Decision::Fail(status)
    } else {
        Decision::Pass
    };
    (faults.delay_ms, decision)
}

/// Middleware over a backend's business routes (not its `_faults` and `_state` routes).
pub async fn apply(State(switches): State<Switches>, request: Request, next: Next) -> Response {
    let (delay_ms, decision) = decide(&switches);
    if delay_ms > 0 {
        tokio::time::sleep(Duration::from_millis(delay_ms)).await;
    }
    match decision {
        Decision::Pass => next.run(request).await,
        Decision::Fail(status) => {
            (status, Json(json!({ "error": "unavailable", "message": "fault injected by the sandbox" }))).into_response()
        }
        Decision::Hang => {
            drop(next.run(request).await);
            // Until the client gives up and the connection (and this future) is dropped.
            std::future::pending::<Response>().await
        }
    }
}

/// `PUT /_faults`: replace the switches; answers the switches now in force.
pub async fn put(State(switches): State<Switches>, Json(faults): Json<Faults>) -> Response {
    if !(0.0..=1.0).contains(&faults.error_rate) || !(400..=599).contains(&faults.status) {
        let message = "error_rate must be within 0..=1 and status an HTTP error status (400..=599)";
        return (StatusCode::UNPROCESSABLE_ENTITY, Json(json!({ "error": "invalid_faults", "message": message }))).into_response();
    }
    *switches.lock().unwrap_or_else(|p| p.into_inner()) = faults.clone();
    Json(faults).into_response()
}

/// The switches now in force, for `_state`.
pub fn current(switches: &Switches) -> Faults {
    switches.lock().unwrap_or_else(|p| p.into_inner()).clone()
}
