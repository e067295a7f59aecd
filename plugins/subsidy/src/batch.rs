//! The batch report: what became of every item of a batch (paid with the bank's receipt, or
//! refused with its code), for reconciliation with the bank and the department's register.
//!
//! Keys: `item:{batch}:{item}` holds the item's latest outcome; `batch:{batch}:count` and
//! `batch:{batch}:{n}` list the batch's items in the order they were first seen (the store has no
//! listing). A paid outcome is final: a later refusal of a resent item never overwrites it.

use std::collections::BTreeMap;

use onecard_sdk::{HandleError, Request, Response, kv};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Paid,
    Refused,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ItemRecord {
    pub item_id: String,
    pub policy: String,
    pub period: String,
    pub beneficiary_ref: String,
    pub amount_fen: u64,
    pub outcome: Outcome,
    /// The bank's receipt (paid).
    pub receipt: Option<String>,
    pub settled_at_ms: Option<i64>,
    /// The refusal (refused).
    pub code: Option<String>,
    pub message: Option<String>,
    /// When this outcome was decided.
    pub at_ms: i64,
}

fn item_key(batch: &str, item: &str) -> String {
    format!("item:{batch}:{item}")
}

fn count_key(batch: &str) -> String {
    format!("batch:{batch}:count")
}

fn slot_key(batch: &str, n: u64) -> String {
    format!("batch:{batch}:{n}")
}

fn decode(raw: &[u8]) -> Result<ItemRecord, HandleError> {
    serde_json::from_slice(raw).map_err(|e| HandleError::Internal(format!("stored item is unreadable: {e}")))
}

pub fn load(batch: &str, item: &str) -> Result<Option<ItemRecord>, HandleError> {
    kv::get(&item_key(batch, item))?.map(|raw| decode(&raw)).transpose()
}

/// Record an item's outcome; an item seen for the first time joins the batch's list.
pub fn record(batch: &str, record: &ItemRecord) -> Result<(), HandleError> {
    let key = item_key(batch, &record.item_id);
    let new = serde_json::to_vec(record).map_err(|e| HandleError::Internal(format!("item not serializable: {e}")))?;
    for _ in 0..4 {
        let raw = kv::get(&key)?;
        if let Some(existing) = raw.as_deref().map(decode).transpose()?
            && existing.outcome == Outcome::Paid
            && record.outcome == Outcome::Refused
        {
            return Ok(());
        }
        if kv::compare_and_swap(&key, raw.as_deref(), &new, None)? {
            if raw.is_none() {
                let n = kv::increment(&count_key(batch), 1, None)?;
                kv::set(&slot_key(batch, n.unsigned_abs()), record.item_id.as_bytes(), None)?;
            }
            return Ok(());
        }
    }
    Err(HandleError::backend("KV_CONTENDED", format!("item `{}` kept changing under concurrent updates", record.item_id)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ReconcileParams {
    batch_id: String,
    /// Items to skip (paging). Default 0.
    offset: Option<u64>,
    /// Items in this page. Default 100.
    limit: Option<u64>,
}

#[derive(Default, Serialize)]
struct Report {
    batch_id: String,
    /// Items of the batch seen so far.
    items_total: u64,
    offset: u64,
    /// The next page's offset, when there is one.
    next_offset: Option<u64>,
    /// Totals of this page (all of the batch when `offset` is 0 and `next_offset` is null).
    paid_count: u64,
    paid_fen: u64,
    refused_count: u64,
    refused_by_code: BTreeMap<String, u64>,
    items: Vec<ItemRecord>,
}

/// The batch report, a page at a time.
pub fn reconcile(request: &Request) -> Result<Response, HandleError> {
    let params: ReconcileParams = request.params()?;
    crate::actions::key_part("batch_id", &params.batch_id)?;
    let config: crate::config::Config = request.config()?;
    config.validate()?;
    let batch = params.batch_id;
    let total = kv::get(&count_key(&batch))?.and_then(|v| String::from_utf8(v).ok()?.parse::<u64>().ok()).unwrap_or(0);
    let offset = params.offset.unwrap_or(0);
    let end = total.min(offset.saturating_add(params.limit.unwrap_or(100)));
    let mut report = Report { batch_id: batch.clone(), items_total: total, offset, ..Report::default() };
    for n in offset + 1..=end {
        let Some(item) = kv::get(&slot_key(&batch, n))? else { continue };
        let Some(record) = load(&batch, &String::from_utf8_lossy(&item))? else { continue };
        match record.outcome {
            Outcome::Paid => {
                report.paid_count += 1;
                report.paid_fen += record.amount_fen;
            }
            Outcome::Refused => {
                report.refused_count += 1;
                *report.refused_by_code.entry(record.code.clone().unwrap_or_default()).or_default() += 1;
            }
        }
        report.items.push(record);
    }
    report.next_offset = (end < total).then_some(end);
    Response::json(&report)
}
