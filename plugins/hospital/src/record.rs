//! What the plugin keeps in kv: outpatient visits (`visit:{mdtrt_id}`) and pharmacy orders
//! (`pharmacy:{order_id}`), each with the state of its settlement. Records are JSON and every
//! update is a compare-and-swap on the bytes that were read, so two requests racing on one visit
//! never overwrite each other.

use std::collections::BTreeMap;

use onecard_sdk::{HandleError, kv};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::insurance::Split;

/// One outpatient visit, from registration to settlement.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Visit {
    pub holder_ref: String,
    /// The insured person's number in the insurance system.
    pub psn_no: String,
    pub dept_code: String,
    /// Fee items uploaded, by their serial number (`feedetl_sn`): amount in fen.
    pub fees: BTreeMap<String, FeeItem>,
    /// The last pre-settlement, for the fees as they stand (cleared when fees change).
    pub presettled: Option<Split>,
    pub settlement: Option<Settlement>,
    /// Settlements sent and reversed, oldest first.
    pub reversals: Vec<Reversal>,
}

/// One uploaded fee item.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FeeItem {
    pub code: String,
    pub count: u32,
    pub unit_price_fen: u64,
    pub amount_fen: u64,
}

impl Visit {
    pub fn fees_total_fen(&self) -> u64 {
        self.fees.values().map(|f| f.amount_fen).sum()
    }
}

/// One purchase at the pharmacy counter, settled in one step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PharmacyOrder {
    pub holder_ref: String,
    pub total_fen: u64,
    pub settlement: Option<Settlement>,
    pub reversals: Vec<Reversal>,
}

/// A settlement message and how far it got.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settlement {
    pub state: SettlementState,
    /// The settlement message id, stored before the message is sent; also the idempotency key of
    /// the self-pay debit.
    pub msgid: String,
    pub infno: String,
    /// When the message was about to be sent, unix ms.
    pub started_ms: i64,
    /// The insurance system's settlement id and split, once it answered.
    pub setl_id: Option<String>,
    pub split: Option<Split>,
    /// The settlement port's receipt of the self-pay debit.
    pub receipt: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SettlementState {
    /// Stored, sent or about to be sent; no answer yet.
    Sending,
    /// No answer came and the reversal did not go through either: `reconcile` must reverse it.
    Uncertain,
    /// The insurance system settled; the self-pay is not collected yet.
    Settled,
    /// Settled and the self-pay collected (or there was none): final.
    Paid,
}

/// A settlement that was reversed, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Reversal {
    pub msgid: String,
    pub reversal_msgid: String,
    pub reason: String,
}

/// Either kind of record with a settlement.
pub trait Settles: Serialize + DeserializeOwned {
    fn settlement_mut(&mut self) -> &mut Option<Settlement>;
    fn reversals_mut(&mut self) -> &mut Vec<Reversal>;
    fn holder_ref(&self) -> &str;
}

impl Settles for Visit {
    fn settlement_mut(&mut self) -> &mut Option<Settlement> {
        &mut self.settlement
    }
    fn reversals_mut(&mut self) -> &mut Vec<Reversal> {
        &mut self.reversals
    }
    fn holder_ref(&self) -> &str {
        &self.holder_ref
    }
}

impl Settles for PharmacyOrder {
    fn settlement_mut(&mut self) -> &mut Option<Settlement> {
        &mut self.settlement
    }
    fn reversals_mut(&mut self) -> &mut Vec<Reversal> {
        &mut self.reversals
    }
    fn holder_ref(&self) -> &str {
        &self.holder_ref
    }
}

pub fn visit_key(mdtrt_id: &str) -> String {
    format!("visit:{mdtrt_id}")
}

pub fn order_key(order_id: &str) -> String {
    format!("pharmacy:{order_id}")
}

/// A record as read from kv, with the bytes it was read as (`None`: it did not exist).
#[derive(Debug)]
pub struct Stored<T> {
    pub key: String,
    read: Option<Vec<u8>>,
    pub value: T,
}

impl<T: Serialize + DeserializeOwned> Stored<T> {
    /// Read the record at `key`, if any.
    pub fn load(key: String) -> Result<Option<Self>, HandleError> {
        let Some(bytes) = kv::get(&key)? else { return Ok(None) };
        let value = serde_json::from_slice(&bytes)
            .map_err(|e| HandleError::Internal(format!("kv record `{key}` is unreadable: {e}")))?;
        Ok(Some(Stored { key, read: Some(bytes), value }))
    }

    /// A record that does not exist yet; `save` creates it only if nobody else did.
    pub fn new(key: String, value: T) -> Self {
        Stored { key, read: None, value }
    }

    /// Write the value back if the record still holds what was read; otherwise another request
    /// changed it in between and this one stops.
    pub fn save(&mut self) -> Result<(), HandleError> {
        let bytes = serde_json::to_vec(&self.value)
            .map_err(|e| HandleError::Internal(format!("kv record `{}` not serializable: {e}", self.key)))?;
        if !kv::compare_and_swap(&self.key, self.read.as_deref(), &bytes, None)? {
            return Err(HandleError::refused(
                "CONCURRENT_UPDATE",
                "another request changed this visit or order at the same moment; try again",
            ));
        }
        self.read = Some(bytes);
        Ok(())
    }
}
