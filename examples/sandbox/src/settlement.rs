//! The settlement port protocol both the bank and the e-CNY operator doubles serve
//! (`POST /settlements`): idempotent by key, with balances per account.
//!
//! `debit` takes money from the account, `credit` puts money in, `refund` moves (part of) an
//! earlier receipt back. Answers: 200 with a receipt (the same receipt again for the same key);
//! 402 `insufficient_funds`; 422 `declined` (unknown account, bad refund, a key reused for
//! another payment); 429 `limit_exceeded` (a balance cap).

use std::collections::BTreeMap;
use std::time::{SystemTime, UNIX_EPOCH};

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::json;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    Debit,
    Credit,
    Refund,
}

/// One request to the settlement port.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settlement {
    pub kind: Kind,
    pub account: String,
    pub amount_fen: u64,
    pub reference: String,
    pub idempotency_key: String,
    #[serde(default)]
    pub original_receipt: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Receipt {
    pub receipt_id: String,
    pub amount_fen: u64,
    pub settled_at_ms: i64,
}

/// A settlement that moved money.
#[derive(Debug, Clone, Serialize)]
pub struct Entry {
    pub receipt: Receipt,
    pub settlement: Settlement,
}

/// Why the port said no.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    InsufficientFunds,
    Declined(String),
    LimitExceeded(String),
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        match self {
            Refusal::InsufficientFunds => (StatusCode::PAYMENT_REQUIRED, Json(json!({ "error": "insufficient_funds" }))),
            Refusal::Declined(m) => (StatusCode::UNPROCESSABLE_ENTITY, Json(json!({ "error": "declined", "message": m }))),
            Refusal::LimitExceeded(m) => (StatusCode::TOO_MANY_REQUESTS, Json(json!({ "error": "limit_exceeded", "message": m }))),
        }
        .into_response()
    }
}

/// What an account may do, decided by the backend that keeps it.
pub trait AccountRules {
    /// `Ok(cap)` when `account` may settle, with the most it may hold (`None`: no cap).
    fn admit(&self, account: &str, settlement: &Settlement) -> Result<Option<u64>, Refusal>;
}

/// Balances, receipts by idempotency key, and every entry in order.
#[derive(Debug, Default, Serialize)]
pub struct Ledger {
    /// Receipt id prefix (`bank`, `ecny`).
    #[serde(skip)]
    prefix: String,
    pub balances: BTreeMap<String, u64>,
    pub entries: Vec<Entry>,
    /// Refused requests, for tests: (idempotency key, error).
    pub refused: Vec<(String, String)>,
    #[serde(skip)]
    by_key: BTreeMap<String, usize>,
}

fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

impl Ledger {
    pub fn new(prefix: &str) -> Self {
        Ledger { prefix: prefix.into(), ..Ledger::default() }
    }

    /// Settle `s` once per idempotency key.
    pub fn settle(&mut self, s: Settlement, rules: &dyn AccountRules) -> Result<Receipt, Refusal> {
        let result = self.try_settle(s.clone(), rules);
        if let Err(refusal) = &result {
            self.refused.push((s.idempotency_key, format!("{refusal:?}")));
        }
        result
    }

    fn try_settle(&mut self, s: Settlement, rules: &dyn AccountRules) -> Result<Receipt, Refusal> {
        if let Some(&at) = self.by_key.get(&s.idempotency_key) {
            let earlier = &self.entries[at];
            if earlier.settlement != s {
                return Err(Refusal::Declined("idempotency key already used for another payment".into()));
            }
            return Ok(earlier.receipt.clone());
        }
        if s.amount_fen == 0 || s.idempotency_key.is_empty() || s.account.is_empty() {
            return Err(Refusal::Declined("a settlement needs an account, an idempotency key and a positive amount".into()));
        }
        let cap = rules.admit(&s.account, &s)?;
        let incoming = match s.kind {
            Kind::Credit => true,
            Kind::Debit => false,
            Kind::Refund => self.refundable(&s)?,
        };
        let balance = self.balances.get(&s.account).copied().unwrap_or(0);
        let new_balance = if incoming {
            let sum = balance.checked_add(s.amount_fen).ok_or_else(|| Refusal::Declined("amount too large".into()))?;
            if let Some(cap) = cap.filter(|cap| sum > *cap) {
                return Err(Refusal::LimitExceeded(format!("the account may hold at most {cap} fen and holds {balance} fen")));
            }
            sum
        } else {
            balance.checked_sub(s.amount_fen).ok_or(Refusal::InsufficientFunds)?
        };
        self.balances.insert(s.account.clone(), new_balance);
        let receipt = Receipt { receipt_id: format!("{}-{:06}", self.prefix, self.entries.len() + 1), amount_fen: s.amount_fen, settled_at_ms: now_ms() };
        self.by_key.insert(s.idempotency_key.clone(), self.entries.len());
        self.entries.push(Entry { receipt: receipt.clone(), settlement: s });
        Ok(receipt)
    }

    /// A refund names an earlier receipt of the same account and returns at most what is left
    /// of it; it flows opposite to the original. `Ok(true)`: money comes into the account.
    fn refundable(&self, s: &Settlement) -> Result<bool, Refusal> {
        let original_id = s.original_receipt.as_deref().ok_or_else(|| Refusal::Declined("a refund names its original receipt".into()))?;
        let original = self
            .entries
            .iter()
            .find(|e| e.receipt.receipt_id == original_id && e.settlement.kind != Kind::Refund)
            .ok_or_else(|| Refusal::Declined(format!("no receipt {original_id} to refund")))?;
        if original.settlement.account != s.account {
            return Err(Refusal::Declined("the refund's account is not the original's".into()));
        }
        let refunded: u64 = self
            .entries
            .iter()
            .filter(|e| e.settlement.kind == Kind::Refund && e.settlement.original_receipt.as_deref() == Some(original_id))
            .map(|e| e.settlement.amount_fen)
            .sum();
        if refunded + s.amount_fen > original.settlement.amount_fen {
            return Err(Refusal::Declined(format!("at most {} fen of {original_id} can still be refunded", original.settlement.amount_fen - refunded)));
        }
        Ok(original.settlement.kind == Kind::Debit)
    }
}

/// Answer 400 naming what is wrong with a settlement request body.
pub fn bad_request(error: &serde_json::Error) -> Response {
    (StatusCode::BAD_REQUEST, Json(json!({ "error": "bad_request", "message": error.to_string() }))).into_response()
}

/// The HTTP answer of a settlement.
pub fn answer(result: Result<Receipt, Refusal>) -> Response {
    match result {
        Ok(receipt) => Json(receipt).into_response(),
        Err(refusal) => refusal.into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Open;
    impl AccountRules for Open {
        fn admit(&self, _: &str, _: &Settlement) -> Result<Option<u64>, Refusal> {
            Ok(Some(1_000))
        }
    }

    fn s(kind: Kind, amount: u64, key: &str, original: Option<&str>) -> Settlement {
        Settlement { kind, account: "a".into(), amount_fen: amount, reference: "r".into(), idempotency_key: key.into(), original_receipt: original.map(Into::into) }
    }

    #[test]
    fn balances_caps_and_refunds() {
        let mut ledger = Ledger::new("t");
        assert_eq!(ledger.settle(s(Kind::Debit, 1, "d0", None), &Open), Err(Refusal::InsufficientFunds));
        let credit = ledger.settle(s(Kind::Credit, 800, "c1", None), &Open).unwrap();
        assert!(matches!(ledger.settle(s(Kind::Credit, 201, "c2", None), &Open), Err(Refusal::LimitExceeded(_))));
        let debit = ledger.settle(s(Kind::Debit, 300, "d1", None), &Open).unwrap();
        assert_eq!(ledger.balances["a"], 500);
        ledger.settle(s(Kind::Refund, 200, "r1", Some(&debit.receipt_id)), &Open).unwrap();
        assert_eq!(ledger.balances["a"], 700);
        assert!(matches!(ledger.settle(s(Kind::Refund, 101, "r2", Some(&debit.receipt_id)), &Open), Err(Refusal::Declined(_))));
        ledger.settle(s(Kind::Refund, 100, "r3", Some(&credit.receipt_id)), &Open).unwrap();
        assert_eq!(ledger.balances["a"], 600, "refunding a credit takes it back");
        assert_eq!(ledger.entries.len(), 4);
    }

    #[test]
    fn a_key_settles_once_and_only_for_the_same_payment() {
        let mut ledger = Ledger::new("t");
        let first = ledger.settle(s(Kind::Credit, 100, "k", None), &Open).unwrap();
        assert_eq!(ledger.settle(s(Kind::Credit, 100, "k", None), &Open).unwrap(), first);
        assert!(matches!(ledger.settle(s(Kind::Credit, 101, "k", None), &Open), Err(Refusal::Declined(_))));
        assert_eq!(ledger.balances["a"], 100);
    }
}
