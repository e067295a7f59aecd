//! At most one payment per (policy, period, person), even when the same item, or two items for
//! the same person, are sent at once.
//!
//! Two guards. First, a claim: before paying, a request swaps the key
//! `claim:{policy}:{period}:{person}` from absent to "claimed by this item" with compare-and-swap;
//! only one request can win it, the others see the claim (`DISBURSEMENT_IN_PROGRESS`) or the
//! payment it led to (`ALREADY_PAID`). Second, the payment's idempotency key is the same
//! business identity (`subsidy:{policy}:{period}:{person}`), so even a request that took over a
//! claim whose owner died after paying gets the first payment's receipt from the bank instead
//! of paying again.
//!
//! A claim whose payment failed is given back (the key returns to what it held), so a later
//! retry works; a claim left by a request that died is taken over once it is older than
//! `claim_stale_after_seconds`.

use onecard_sdk::{HandleError, kv};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum Claim {
    /// A request is paying this item now.
    Claimed { batch_id: String, item_id: String, at_ms: i64 },
    /// Paid, for good.
    Paid { batch_id: String, item_id: String, amount_fen: u64, receipt: String, settled_at_ms: i64 },
}

impl Claim {
    pub fn is_item(&self, batch: &str, item: &str) -> bool {
        let (b, i) = match self {
            Claim::Claimed { batch_id, item_id, .. } | Claim::Paid { batch_id, item_id, .. } => (batch_id, item_id),
        };
        b == batch && i == item
    }
}

/// What [`take`] found.
#[derive(Debug)]
pub enum Taken {
    /// This request holds the claim: `ours` is what it wrote over `previous`.
    Ours { ours: Vec<u8>, previous: Option<Vec<u8>> },
    /// Paid already (by this item or another).
    Paid(Claim),
    /// Another request is paying now.
    Busy(Claim),
}

/// The key of a (policy, period, person) claim. Policy and period ids have no `:`; the person
/// comes last, so keys of different triples never collide.
pub fn key(policy: &str, period: &str, person: &str) -> String {
    format!("claim:{policy}:{period}:{person}")
}

/// The payment's idempotency key: the same business identity as the claim.
pub fn idempotency_key(policy: &str, period: &str, person: &str) -> String {
    format!("subsidy:{policy}:{period}:{person}")
}

pub fn load(key: &str) -> Result<Option<Claim>, HandleError> {
    kv::get(key)?.map(|raw| decode(&raw)).transpose()
}

fn decode(raw: &[u8]) -> Result<Claim, HandleError> {
    serde_json::from_slice(raw).map_err(|e| HandleError::Internal(format!("stored claim is unreadable: {e}")))
}

fn encode(claim: &Claim) -> Result<Vec<u8>, HandleError> {
    serde_json::to_vec(claim).map_err(|e| HandleError::Internal(format!("claim not serializable: {e}")))
}

/// Claim `key` for `(batch, item)` at `now_ms`, taking over a claim older than `stale_ms`.
pub fn take(key: &str, batch: &str, item: &str, now_ms: i64, stale_ms: i64) -> Result<Taken, HandleError> {
    let ours = encode(&Claim::Claimed { batch_id: batch.into(), item_id: item.into(), at_ms: now_ms })?;
    // Two rounds: the second sees whatever beat the first.
    let mut last = None;
    for _ in 0..2 {
        let raw = kv::get(key)?;
        match raw.as_deref().map(decode).transpose()? {
            Some(paid @ Claim::Paid { .. }) => return Ok(Taken::Paid(paid)),
            Some(claimed @ Claim::Claimed { at_ms, .. }) if now_ms - at_ms <= stale_ms => return Ok(Taken::Busy(claimed)),
            Some(stale) => last = Some(stale),
            None => {}
        }
        if kv::compare_and_swap(key, raw.as_deref(), &ours, None)? {
            return Ok(Taken::Ours { ours, previous: raw });
        }
    }
    let busy = last.unwrap_or(Claim::Claimed { batch_id: String::new(), item_id: String::new(), at_ms: now_ms });
    Ok(Taken::Busy(busy))
}

/// Give a claim back after a failed payment: the key returns to what it held before.
pub fn release(key: &str, ours: &[u8], previous: Option<&[u8]>) -> Result<(), HandleError> {
    match previous {
        Some(previous) => {
            kv::compare_and_swap(key, Some(ours), previous, None)?;
        }
        // The store has no compare-and-delete: delete if the claim is still ours (only a stale
        // takeover, minutes later, could slip in between).
        None => {
            if kv::get(key)?.as_deref() == Some(ours) {
                kv::delete(key)?;
            }
        }
    }
    Ok(())
}

/// Record the payment for good.
pub fn mark_paid(key: &str, paid: &Claim) -> Result<(), HandleError> {
    kv::set(key, &encode(paid)?, None)?;
    Ok(())
}
