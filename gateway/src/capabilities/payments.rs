//! `payments`: money movement through the settlement port (a bank, an acquirer, the e-CNY
//! operator). The gateway never holds funds: it routes and records. Every payment carries an
//! idempotency key, and the same key never moves money twice.
//!
//! Backends: [`MemoryLedger`] (tests and the local harness, a test double of the settlement
//! system); the real settlement port client comes with the scenario plugins (issue 5).

use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use wasmtime::component::Linker;

use super::HostState;
use super::meter::{Metered, MeteredData};
use crate::bindings::onecard::plugin::payments::{Host, Payment, PaymentError, Receipt, add_to_linker};

/// Where payments are settled.
#[async_trait]
pub trait SettlementPort: Send + Sync + fmt::Debug {
    async fn submit(&self, app: &str, payment: Payment) -> Result<Receipt, PaymentError>;
}

/// An in-memory settlement system: idempotent by key, with a failure switch.
#[derive(Debug, Default)]
pub struct MemoryLedger {
    inner: Mutex<Ledger>,
}

#[derive(Debug, Default)]
struct Ledger {
    receipts: BTreeMap<String, Receipt>,
    entries: Vec<(String, Payment)>,
    failure: Option<PaymentError>,
}

impl MemoryLedger {
    pub fn new() -> Self {
        Self::default()
    }

    /// Make later payments fail with `error` (`None`: succeed again).
    pub fn fail_with(&self, error: Option<PaymentError>) {
        self.lock().failure = error;
    }

    /// `(app, payment)` for every payment that moved money.
    pub fn entries(&self) -> Vec<(String, Payment)> {
        self.lock().entries.clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Ledger> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[async_trait]
impl SettlementPort for MemoryLedger {
    async fn submit(&self, app: &str, payment: Payment) -> Result<Receipt, PaymentError> {
        let mut ledger = self.lock();
        let key = format!("{app}/{}", payment.idempotency_key);
        if let Some(receipt) = ledger.receipts.get(&key) {
            return Ok(receipt.clone());
        }
        if let Some(error) = ledger.failure.clone() {
            return Err(error);
        }
        let receipt = Receipt {
            id: format!("rcpt-{:06}", ledger.entries.len() + 1),
            amount_fen: payment.amount_fen,
            settled_at_ms: super::clock::ClockState::now().unix_ms,
        };
        ledger.receipts.insert(key, receipt.clone());
        ledger.entries.push((app.into(), payment));
        Ok(receipt)
    }
}

/// Per-instance payments state.
#[derive(Debug, Clone)]
pub struct PaymentsState {
    pub app: String,
    pub port: Arc<dyn SettlementPort>,
    /// Every payment that moved money during this call, with its receipt: the gateway writes
    /// them to its ledger in the same transaction as the decision's audit record.
    pub moved: Vec<(Payment, Receipt)>,
}

impl PaymentsState {
    pub fn new(app: &str, port: Arc<dyn SettlementPort>) -> Self {
        PaymentsState { app: app.into(), port, moved: Vec::new() }
    }
}

impl Host for Metered<'_, PaymentsState> {
    async fn submit(&mut self, payment: Payment) -> wasmtime::Result<Result<Receipt, PaymentError>> {
        let state = self.charge("payments.submit")?;
        if payment.idempotency_key.is_empty() || payment.amount_fen == 0 {
            return Ok(Err(PaymentError::Declined("a payment needs an idempotency key and a positive amount".into())));
        }
        let result = state.port.submit(&state.app, payment.clone()).await;
        if let Ok(receipt) = &result {
            state.moved.push((payment, receipt.clone()));
        }
        Ok(result)
    }
}

pub(crate) fn link(linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
    add_to_linker::<HostState, MeteredData<PaymentsState>>(linker, |s| Metered { state: &mut s.payments, meter: &mut s.meter })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bindings::onecard::plugin::payments::Kind;

    fn debit(key: &str) -> Payment {
        Payment { kind: Kind::Debit, account: "acct".into(), amount_fen: 250, reference: "trip-1".into(), idempotency_key: key.into(), original_receipt: None }
    }

    #[tokio::test]
    async fn the_same_key_moves_money_once() {
        let ledger = MemoryLedger::new();
        let a = ledger.submit("transit", debit("k1")).await.unwrap();
        let b = ledger.submit("transit", debit("k1")).await.unwrap();
        assert_eq!(a, b);
        assert_eq!(ledger.entries().len(), 1);
    }

    #[tokio::test]
    async fn a_failing_port_records_nothing() {
        let ledger = MemoryLedger::new();
        ledger.fail_with(Some(PaymentError::Timeout));
        assert_eq!(ledger.submit("transit", debit("k1")).await, Err(PaymentError::Timeout));
        assert!(ledger.entries().is_empty());
    }
}
