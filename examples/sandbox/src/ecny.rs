//! TEST DOUBLE of the e-CNY operator: hard wallets bound to cards, with balances, and its
//! settlement port (account = wallet id; `credit` tops the wallet up, `debit` pays a merchant
//! named in the reference).
//!
//! `POST /wallets` `{"holder_ref", "tier"}` → `{"wallet_id"}` — one hard wallet per holder, so
//! opening again answers the same wallet; `GET /wallets/{id}` → `{"wallet_id", "balance_fen",
//! "tier"}`. Tiers and their balance caps are DOMAIN.md's: `class4` 10,000 CNY, `class2`
//! 500,000 CNY; a credit beyond the cap is `429 limit_exceeded`, a debit beyond the balance
//! `402 insufficient_funds`. (Single-payment and daily limits are the gateway plugin's to
//! enforce; this double does not duplicate them.)

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::bank::SetBalance;
use crate::settlement::{self, AccountRules, Kind, Ledger, Refusal, Settlement};
use crate::{Shared, lock};

/// Balance cap per tier, fen.
pub const TIERS: [(&str, u64); 2] = [("class4", 1_000_000), ("class2", 50_000_000)];

#[derive(Debug, Clone, Serialize)]
pub struct Wallet {
    pub holder_ref: String,
    pub tier: String,
}

#[derive(Debug, Serialize)]
pub struct EcnyState {
    pub wallets: BTreeMap<String, Wallet>,
    pub ledger: Ledger,
}

impl AccountRules for BTreeMap<String, Wallet> {
    fn admit(&self, account: &str, s: &Settlement) -> Result<Option<u64>, Refusal> {
        let wallet = self.get(account).ok_or_else(|| Refusal::Declined(format!("no wallet {account}")))?;
        if s.kind == Kind::Debit && s.reference.trim().is_empty() {
            return Err(Refusal::Declined("a payment names its merchant in the reference".into()));
        }
        Ok(cap(&wallet.tier))
    }
}

fn cap(tier: &str) -> Option<u64> {
    TIERS.iter().find(|(name, _)| *name == tier).map(|(_, cap)| *cap)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Open {
    holder_ref: String,
    tier: String,
}

pub fn routes() -> Router {
    let state: Shared<EcnyState> = Arc::new(Mutex::new(EcnyState { wallets: BTreeMap::new(), ledger: Ledger::new("ecny") }));
    let business = Router::new()
        .route("/wallets", post(open))
        .route("/wallets/{id}", get(show))
        .route("/settlements", post(settle))
        .with_state(Arc::clone(&state));
    let setup = Router::new().route("/_balances/{account}", put(set_balance)).with_state(Arc::clone(&state));
    crate::backend(business, state, Default::default()).merge(setup)
}

fn declined(status: StatusCode, error: &str, message: String) -> Response {
    (status, Json(json!({ "error": error, "message": message }))).into_response()
}

async fn open(State(state): State<Shared<EcnyState>>, body: Bytes) -> Response {
    let open: Open = match serde_json::from_slice(&body) {
        Ok(open) => open,
        Err(e) => return declined(StatusCode::BAD_REQUEST, "bad_request", e.to_string()),
    };
    if cap(&open.tier).is_none() || open.holder_ref.is_empty() {
        return declined(StatusCode::UNPROCESSABLE_ENTITY, "declined", format!("tier `{}` is not offered", open.tier));
    }
    let mut state = lock(&state);
    let existing = state.wallets.iter().find(|(_, w)| w.holder_ref == open.holder_ref).map(|(id, _)| id.clone());
    let wallet_id = existing.unwrap_or_else(|| {
        let id = format!("W{:06}", state.wallets.len() + 1);
        state.wallets.insert(id.clone(), Wallet { holder_ref: open.holder_ref, tier: open.tier });
        id
    });
    Json(json!({ "wallet_id": wallet_id })).into_response()
}

async fn show(State(state): State<Shared<EcnyState>>, Path(id): Path<String>) -> Response {
    let state = lock(&state);
    match state.wallets.get(&id) {
        Some(wallet) => {
            let balance = state.ledger.balances.get(&id).copied().unwrap_or(0);
            Json(json!({ "wallet_id": id, "balance_fen": balance, "tier": wallet.tier })).into_response()
        }
        None => declined(StatusCode::NOT_FOUND, "not_found", format!("no wallet {id}")),
    }
}

async fn settle(State(state): State<Shared<EcnyState>>, body: Bytes) -> Response {
    let request: Settlement = match serde_json::from_slice(&body) {
        Ok(request) => request,
        Err(e) => return settlement::bad_request(&e),
    };
    let mut state = lock(&state);
    let EcnyState { wallets, ledger } = &mut *state;
    settlement::answer(ledger.settle(request, wallets))
}

async fn set_balance(State(state): State<Shared<EcnyState>>, Path(id): Path<String>, Json(set): Json<SetBalance>) -> Response {
    let mut state = lock(&state);
    if !state.wallets.contains_key(&id) {
        return declined(StatusCode::NOT_FOUND, "not_found", format!("no wallet {id}"));
    }
    state.ledger.balances.insert(id, set.balance_fen);
    Json(set.balance_fen).into_response()
}

#[cfg(test)]
mod tests {
    use axum::http::StatusCode;
    use serde_json::{Value, json};

    use crate::testing::{call, request};

    fn settlement(kind: &str, wallet: &str, amount: u64, key: &str) -> Value {
        json!({"kind": kind, "account": wallet, "amount_fen": amount, "reference": "merchant:m-1:op", "idempotency_key": key})
    }

    async fn open(app: &axum::Router, holder: &str, tier: &str) -> (StatusCode, Value) {
        call(app, request("POST", "/wallets", Some(json!({"holder_ref": holder, "tier": tier})))).await
    }

    #[tokio::test]
    async fn one_hard_wallet_per_holder_with_a_balance() {
        let app = super::routes();
        let (status, first) = open(&app, "h1", "class4").await;
        assert_eq!(status, StatusCode::OK);
        let (_, again) = open(&app, "h1", "class4").await;
        assert_eq!(again, first);
        let (status, _) = open(&app, "h2", "class9").await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
        let id = first["wallet_id"].as_str().unwrap();
        call(&app, request("POST", "/settlements", Some(settlement("credit", id, 5_000, "t1")))).await;
        let (_, view) = call(&app, request("GET", &format!("/wallets/{id}"), None)).await;
        assert_eq!(view, json!({"wallet_id": id, "balance_fen": 5_000, "tier": "class4"}));
        let (status, _) = call(&app, request("GET", "/wallets/W999999", None)).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
    }

    #[tokio::test]
    async fn payments_need_funds_top_ups_respect_the_tier_cap_and_keys_settle_once() {
        let app = super::routes();
        let (_, opened) = open(&app, "h1", "class4").await;
        let id = opened["wallet_id"].as_str().unwrap();
        let (status, body) = call(&app, request("POST", "/settlements", Some(settlement("debit", id, 1, "p0")))).await;
        assert_eq!((status, body["error"].as_str()), (StatusCode::PAYMENT_REQUIRED, Some("insufficient_funds")));
        let (status, _) = call(&app, request("POST", "/settlements", Some(settlement("credit", id, 1_000_000, "t1")))).await;
        assert_eq!(status, StatusCode::OK);
        let (status, body) = call(&app, request("POST", "/settlements", Some(settlement("credit", id, 1, "t2")))).await;
        assert_eq!((status, body["error"].as_str()), (StatusCode::TOO_MANY_REQUESTS, Some("limit_exceeded")));
        let (_, paid) = call(&app, request("POST", "/settlements", Some(settlement("debit", id, 2_500, "p1")))).await;
        let (_, again) = call(&app, request("POST", "/settlements", Some(settlement("debit", id, 2_500, "p1")))).await;
        assert_eq!(paid, again);
        let (status, _) = call(&app, request("POST", "/settlements", Some(settlement("debit", "W999999", 1, "p2")))).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
        let (_, state) = call(&app, request("GET", "/_state", None)).await;
        assert_eq!(state["ledger"]["balances"][id], 997_500);
        assert_eq!(state["ledger"]["entries"].as_array().unwrap().len(), 2);
    }

    #[tokio::test]
    async fn a_delay_holds_every_answer() {
        let app = super::routes();
        call(&app, request("PUT", "/_faults", Some(json!({"delay_ms": 150})))).await;
        let started = tokio::time::Instant::now();
        open(&app, "h1", "class4").await;
        assert!(started.elapsed() >= std::time::Duration::from_millis(150));
    }
}
