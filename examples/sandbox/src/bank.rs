//! TEST DOUBLE of a bank's settlement port (subsidy disbursements into the card's financial
//! account, the holder's self-pay at a hospital): `POST /settlements` as in [`crate::settlement`],
//! accounts named by the card's financial account id. Accounts start empty; tests fund them with
//! `PUT /_balances/{account}` `{"balance_fen": n}`.

use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{post, put};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};

use crate::settlement::{self, AccountRules, Ledger, Refusal, Settlement};
use crate::{Shared, lock};

#[derive(Debug, Serialize)]
pub struct BankState {
    pub ledger: Ledger,
}

/// Any account may settle; no balance cap.
struct Accounts;

impl AccountRules for Accounts {
    fn admit(&self, _: &str, _: &Settlement) -> Result<Option<u64>, Refusal> {
        Ok(None)
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SetBalance {
    pub balance_fen: u64,
}

pub fn routes() -> Router {
    let state: Shared<BankState> = Arc::new(Mutex::new(BankState { ledger: Ledger::new("bank") }));
    let business = Router::new()
        .route("/settlements", post(settle))
        .with_state(Arc::clone(&state));
    let setup = Router::new().route("/_balances/{account}", put(set_balance)).with_state(Arc::clone(&state));
    crate::backend(business, state, Default::default()).merge(setup)
}

async fn settle(State(state): State<Shared<BankState>>, body: Bytes) -> Response {
    let request: Settlement = match serde_json::from_slice(&body) {
        Ok(request) => request,
        Err(e) => return settlement::bad_request(&e),
    };
    settlement::answer(lock(&state).ledger.settle(request, &Accounts))
}

async fn set_balance(State(state): State<Shared<BankState>>, Path(account): Path<String>, Json(set): Json<SetBalance>) -> Response {
    lock(&state).ledger.balances.insert(account, set.balance_fen);
    Json(set.balance_fen).into_response()
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use axum::http::StatusCode;
    use serde_json::{Value, json};

    use crate::testing::{call, request, unanswered};

    fn debit(key: &str, amount: u64) -> Value {
        json!({"kind": "debit", "account": "ACC-1", "amount_fen": amount, "reference": "setl-1", "idempotency_key": key, "original_receipt": null})
    }

    #[tokio::test]
    async fn settlements_are_idempotent_by_key_and_keep_balances() {
        let app = super::routes();
        call(&app, request("PUT", "/_balances/ACC-1", Some(json!({"balance_fen": 1_000})))).await;
        let (status, first) = call(&app, request("POST", "/settlements", Some(debit("k1", 400)))).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(first["amount_fen"], 400);
        let (_, again) = call(&app, request("POST", "/settlements", Some(debit("k1", 400)))).await;
        assert_eq!(again, first, "the same key answers the same receipt");
        let (status, body) = call(&app, request("POST", "/settlements", Some(debit("k2", 601)))).await;
        assert_eq!((status, body["error"].as_str()), (StatusCode::PAYMENT_REQUIRED, Some("insufficient_funds")));
        let (status, body) = call(&app, request("POST", "/settlements", Some(debit("k1", 500)))).await;
        assert_eq!((status, body["error"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("declined")));
        let (_, state) = call(&app, request("GET", "/_state", None)).await;
        assert_eq!(state["ledger"]["balances"]["ACC-1"], 600);
        assert_eq!(state["ledger"]["entries"].as_array().unwrap().len(), 1);
    }

    #[tokio::test]
    async fn timeout_next_settles_but_never_answers_and_the_retry_gets_the_receipt() {
        let app = super::routes();
        call(&app, request("PUT", "/_balances/ACC-1", Some(json!({"balance_fen": 1_000})))).await;
        call(&app, request("PUT", "/_faults", Some(json!({"timeout_next": 1})))).await;
        unanswered(&app, request("POST", "/settlements", Some(debit("k1", 400))), Duration::from_millis(200)).await;
        let (_, state) = call(&app, request("GET", "/_state", None)).await;
        assert_eq!(state["ledger"]["balances"]["ACC-1"], 600, "processed although unanswered");
        let (status, receipt) = call(&app, request("POST", "/settlements", Some(debit("k1", 400)))).await;
        assert_eq!((status, receipt["amount_fen"].as_u64()), (StatusCode::OK, Some(400)));
        let (_, state) = call(&app, request("GET", "/_state", None)).await;
        assert_eq!(state["ledger"]["balances"]["ACC-1"], 600, "the retry moved nothing");
    }

    #[tokio::test]
    async fn bad_faults_and_bad_bodies_are_refused() {
        let app = super::routes();
        let (status, _) = call(&app, request("PUT", "/_faults", Some(json!({"error_rate": 1.5})))).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
        let (status, _) = call(&app, request("PUT", "/_faults", Some(json!({"fail_nxt": 1})))).await;
        assert!(status.is_client_error());
        let (status, body) = call(&app, request("POST", "/settlements", Some(json!({"kind": "debit"})))).await;
        assert_eq!((status, body["error"].as_str()), (StatusCode::BAD_REQUEST, Some("bad_request")));
        call(&app, request("PUT", "/_faults", Some(json!({"error_rate": 1.0})))).await;
        let (status, _) = call(&app, request("POST", "/settlements", Some(debit("k", 1)))).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        let (status, _) = call(&app, request("GET", "/_state", None)).await;
        assert_eq!(status, StatusCode::OK, "the test routes are never faulted");
    }
}
