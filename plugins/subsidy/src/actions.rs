//! `disburse` (one batch item to the beneficiary's card) and `status` (whether a person has been
//! paid for a policy period).

use onecard_sdk::clock::{self, Datetime};
use onecard_sdk::payments::{self, Kind, Payment};
use onecard_sdk::{CardView, HandleError, Request, Response, log};
use serde::{Deserialize, Serialize};

use crate::batch::{self, ItemRecord, Outcome};
use crate::claim::{self, Claim, Taken};
use crate::config::Config;
use crate::eligibility::{self, Item};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct DisburseParams {
    batch_id: String,
    item_id: String,
    policy: String,
    period: String,
    beneficiary_ref: String,
    amount_fen: u64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct StatusParams {
    policy: String,
    period: String,
    beneficiary_ref: String,
}

#[derive(Serialize)]
struct Paid<'a> {
    decision: &'static str,
    batch_id: &'a str,
    item_id: &'a str,
    policy: &'a str,
    period: &'a str,
    amount_fen: u64,
    receipt: Option<&'a str>,
    settled_at_ms: Option<i64>,
    /// True when this answers a resent item already paid: nothing moved again.
    replayed: bool,
}

/// A part of a key (batch, item, policy, period): what the schema's pattern allows, checked
/// again here because keys are built from it.
pub fn key_part(field: &str, value: &str) -> Result<(), HandleError> {
    let ok = (1..=64).contains(&value.len()) && value.bytes().all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(HandleError::invalid("INVALID_PARAMS", format!("parameters: field `{field}`: 1 to 64 of A-Z a-z 0-9 . _ -")))
    }
}

fn config(request: &Request) -> Result<Config, HandleError> {
    let config: Config = request.config()?;
    config.validate()?;
    Ok(config)
}

impl DisburseParams {
    fn validate(&self) -> Result<(), HandleError> {
        key_part("batch_id", &self.batch_id)?;
        key_part("item_id", &self.item_id)?;
        key_part("policy", &self.policy)?;
        key_part("period", &self.period)?;
        if self.beneficiary_ref.is_empty() || self.beneficiary_ref.len() > 96 {
            return Err(HandleError::invalid("INVALID_PARAMS", "parameters: field `beneficiary_ref`: 1 to 96 bytes"));
        }
        if self.amount_fen == 0 {
            return Err(HandleError::invalid("INVALID_PARAMS", "parameters: field `amount_fen`: must be positive"));
        }
        Ok(())
    }

    fn same_item(&self, record: &ItemRecord) -> bool {
        (record.policy.as_str(), record.period.as_str(), record.beneficiary_ref.as_str(), record.amount_fen)
            == (self.policy.as_str(), self.period.as_str(), self.beneficiary_ref.as_str(), self.amount_fen)
    }

    fn record(&self, outcome: Outcome, now: Datetime) -> ItemRecord {
        ItemRecord {
            item_id: self.item_id.clone(),
            policy: self.policy.clone(),
            period: self.period.clone(),
            beneficiary_ref: self.beneficiary_ref.clone(),
            amount_fen: self.amount_fen,
            outcome,
            receipt: None,
            settled_at_ms: None,
            code: None,
            message: None,
            at_ms: now.unix_ms,
        }
    }

    fn paid(&self, record: &ItemRecord, replayed: bool) -> Result<Response, HandleError> {
        Response::json(&Paid {
            decision: "paid",
            batch_id: &self.batch_id,
            item_id: &self.item_id,
            policy: &self.policy,
            period: &self.period,
            amount_fen: record.amount_fen,
            receipt: record.receipt.as_deref(),
            settled_at_ms: record.settled_at_ms,
            replayed,
        })
    }
}

/// Pay one batch item to the beneficiary's own card, or refuse it with its code. Every outcome
/// but a transient one (`DISBURSEMENT_IN_PROGRESS`, a backend failure) is recorded in the batch
/// report; that record is the only state a refusal writes.
pub fn disburse(request: &Request) -> Result<Response, HandleError> {
    let params: DisburseParams = request.params()?;
    params.validate()?;
    let config = config(request)?;
    let card = request.card()?;
    let now = clock::now();
    if let Some(done) = batch::load(&params.batch_id, &params.item_id)?
        && done.outcome == Outcome::Paid
    {
        if !params.same_item(&done) {
            return Err(HandleError::invalid(
                "ITEM_MISMATCH",
                format!("item `{}` of batch `{}` was paid with other details", params.item_id, params.batch_id),
            ));
        }
        return params.paid(&done, true);
    }
    match pay(&config, &params, card, now) {
        Ok(response) => Ok(response),
        Err(HandleError::Refused(r)) if r.code != "DISBURSEMENT_IN_PROGRESS" => {
            let mut refused = params.record(Outcome::Refused, now);
            refused.code = Some(r.code.clone());
            refused.message = Some(r.message.clone());
            batch::record(&params.batch_id, &refused)?;
            Err(HandleError::Refused(r))
        }
        Err(e) => Err(e),
    }
}

fn pay(config: &Config, params: &DisburseParams, card: &CardView, now: Datetime) -> Result<Response, HandleError> {
    let (policy, period) = config.period(&params.policy, &params.period)?;
    let item = Item { beneficiary_ref: &params.beneficiary_ref, amount_fen: params.amount_fen };
    let account = eligibility::check(&item, policy, period, card, &now.local_date())?;

    let person = &params.beneficiary_ref;
    let key = claim::key(&params.policy, &params.period, person);
    let (ours, previous) = match claim::take(&key, &params.batch_id, &params.item_id, now.unix_ms, config.claim_stale_after_ms())? {
        Taken::Ours { ours, previous } => (ours, previous),
        Taken::Paid(Claim::Paid { batch_id, item_id, amount_fen, receipt, settled_at_ms }) => {
            if batch_id == params.batch_id && item_id == params.item_id {
                // Paid by this item, whose batch record was not written (the request died).
                return finish(params, amount_fen, receipt, settled_at_ms, now, true);
            }
            return Err(already_paid(policy.name.as_str(), &params.period, &batch_id, &item_id, amount_fen));
        }
        Taken::Paid(_) | Taken::Busy(_) => {
            return Err(HandleError::refused(
                "DISBURSEMENT_IN_PROGRESS",
                "this person's payment for the period is being made by another request; resend the item later",
            ));
        }
    };

    let payment = Payment {
        kind: Kind::Credit,
        account: account.to_owned(),
        amount_fen: params.amount_fen,
        reference: format!("{}/{}", params.batch_id, params.item_id),
        idempotency_key: claim::idempotency_key(&params.policy, &params.period, person),
        original_receipt: None,
    };
    let receipt = match payments::submit(&payment) {
        Ok(receipt) => receipt,
        Err(e) => {
            claim::release(&key, &ours, previous.as_deref())?;
            return Err(e.into());
        }
    };
    let paid = Claim::Paid {
        batch_id: params.batch_id.clone(),
        item_id: params.item_id.clone(),
        amount_fen: receipt.amount_fen,
        receipt: receipt.id.clone(),
        settled_at_ms: receipt.settled_at_ms,
    };
    claim::mark_paid(&key, &paid)?;
    if receipt.amount_fen != params.amount_fen {
        // The bank answered with an earlier payment under this person's key (a request that paid
        // and died before recording it): the person has been paid, with that amount.
        log::error(&format!("receipt {} pays {} fen, not {}: an earlier payment under the same key", receipt.id, receipt.amount_fen, params.amount_fen));
        return Err(already_paid(policy.name.as_str(), &params.period, "-", "-", receipt.amount_fen));
    }
    log::info(&format!("paid {} fen for {}/{} (receipt {})", receipt.amount_fen, params.batch_id, params.item_id, receipt.id));
    finish(params, receipt.amount_fen, receipt.id, receipt.settled_at_ms, now, false)
}

fn finish(params: &DisburseParams, amount_fen: u64, receipt: String, settled_at_ms: i64, now: Datetime, replayed: bool) -> Result<Response, HandleError> {
    let mut record = params.record(Outcome::Paid, now);
    record.amount_fen = amount_fen;
    record.receipt = Some(receipt);
    record.settled_at_ms = Some(settled_at_ms);
    batch::record(&params.batch_id, &record)?;
    params.paid(&record, replayed)
}

fn already_paid(policy: &str, period: &str, batch: &str, item: &str, amount_fen: u64) -> HandleError {
    HandleError::refused(
        "ALREADY_PAID",
        format!("{policy}, period {period}, was already paid to this person ({amount_fen} fen, batch {batch} item {item})"),
    )
}

/// Whether a person has been paid for a policy period, and by which item.
pub fn status(request: &Request) -> Result<Response, HandleError> {
    let params: StatusParams = request.params()?;
    key_part("policy", &params.policy)?;
    key_part("period", &params.period)?;
    let config = config(request)?;
    config.period(&params.policy, &params.period)?;
    let claim = claim::load(&claim::key(&params.policy, &params.period, &params.beneficiary_ref))?;
    let state = match &claim {
        None => "unpaid",
        Some(Claim::Claimed { .. }) => "in_progress",
        Some(Claim::Paid { .. }) => "paid",
    };
    Response::json(&serde_json::json!({
        "policy": params.policy,
        "period": params.period,
        "beneficiary_ref": params.beneficiary_ref,
        "state": state,
        "claim": claim,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_parts_are_checked() {
        assert!(key_part("policy", "farm-2026.v1_a").is_ok());
        for bad in ["", "a:b", "a b", &"x".repeat(65)] {
            let err = key_part("policy", bad).unwrap_err();
            assert!(err.message().contains("policy"), "{bad}");
        }
    }
}
