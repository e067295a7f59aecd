//! `top_up` and `pay`: money into the wallet (credit) and from the wallet to a merchant (debit),
//! both through the settlement port of the e-CNY operator; the gateway only routes and records.
//!
//! Each carries the channel's operation id (`op_id`); the idempotency key is
//! `ecny:{top-up|pay}:{wallet}:{op_id}`, and the operation's kv record answers a retry again.
//!
//! Limits: a payment must not exceed the tier's single-payment limit, and is reserved against the
//! daily total before it is submitted (see [`crate::limits`]). A top-up must not take the
//! balance over the tier's balance limit: the plugin asks the operator for the balance before
//! crediting (the operator holds the balance; the gateway tracks none), and the operator itself
//! refuses a credit beyond the cap (`limit_exceeded`), which closes the gap between two
//! concurrent top-ups.

use onecard_sdk::payments::{self, Kind, Payment, Receipt};
use onecard_sdk::{CardView, HandleError, PaymentError, Request, Response, clock, kv, log};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::config::Config;
use crate::limits;
use crate::operator;
use crate::records::{self, OpRecord, op_key};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TopUpParams {
    op_id: String,
    amount_fen: u64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PayParams {
    op_id: String,
    merchant: String,
    amount_fen: u64,
}

fn unlocked(card: &CardView) -> Result<(), HandleError> {
    if card.financial_locked {
        return Err(HandleError::refused(
            "CARD_FINANCIAL_LOCKED",
            "the card's financial account is locked or not activated; its wallet cannot move money",
        ));
    }
    Ok(())
}

/// What an existing operation record means for this request.
enum Prior {
    None,
    /// Submitted before without a final answer: submit again under the same key.
    Pending(Vec<u8>, OpRecord),
    Done(Value),
}

fn prior(key: &str, this: &OpRecord) -> Result<Prior, HandleError> {
    match records::get::<OpRecord>(key)? {
        None => Ok(Prior::None),
        Some((_, known)) if !known.same_as(this) => Err(HandleError::invalid(
            "OP_ID_REUSED",
            format!("parameters: field `op_id`: operation {key} was another {} of {} fen", known.kind, known.amount_fen),
        )),
        Some((_, OpRecord { response: Some(mut response), .. })) => {
            response["replayed"] = json!(true);
            Ok(Prior::Done(response))
        }
        Some((bytes, known)) => Ok(Prior::Pending(bytes, known)),
    }
}

/// Claim `key` for a new operation, or refuse if another request just did.
fn claim(key: &str, record: &OpRecord) -> Result<Vec<u8>, HandleError> {
    let bytes = records::bytes(record)?;
    if !kv::compare_and_swap(key, None, &bytes, None)? {
        return Err(HandleError::refused("OPERATION_IN_PROGRESS", "this operation is being processed by another request"));
    }
    Ok(bytes)
}

/// Record the answer of a completed operation.
fn finish(key: &str, claimed: &[u8], mut record: OpRecord, response: &Value) -> Result<(), HandleError> {
    record.response = Some(response.clone());
    if !kv::compare_and_swap(key, Some(claimed), &records::bytes(&record)?, None)? {
        log::warn(&format!("operation record {key} changed while its payment was in flight"));
    }
    Ok(())
}

fn submit(kind: Kind, wallet_id: &str, amount_fen: u64, reference: String, idempotency_key: String) -> Result<Receipt, PaymentError> {
    payments::submit(&Payment { kind, account: wallet_id.into(), amount_fen, reference, idempotency_key, original_receipt: None })
}

fn pending(what: &str) -> HandleError {
    HandleError::backend(
        "PAYMENT_PENDING",
        format!("the e-CNY operator did not confirm the {what}; send it again with the same op_id to learn its outcome"),
    )
}

pub fn top_up(request: &Request) -> Result<Response, HandleError> {
    let params: TopUpParams = request.params()?;
    let config: Config = request.config()?;
    let card = request.card()?;
    let (wallet_id, tier) = records::loaded_wallet(&card.holder_ref)?;
    unlocked(card)?;
    let limits = config.tier(&tier)?;
    let key = op_key(&wallet_id, &params.op_id);
    let record = OpRecord { kind: "top_up".into(), amount_fen: params.amount_fen, merchant: None, reserved_on: None, response: None };

    let (claimed, balance_before) = match prior(&key, &record)? {
        Prior::Done(response) => return Response::json(&response),
        Prior::Pending(bytes, _) => (bytes, None),
        Prior::None => {
            let balance = operator::wallet(&config.backend, &wallet_id)?.balance_fen;
            if balance.saturating_add(params.amount_fen) > limits.balance_limit_fen {
                return Err(balance_limit(limits.balance_limit_fen, balance));
            }
            (claim(&key, &record)?, Some(balance))
        }
    };

    let receipt = match submit(Kind::Credit, &wallet_id, params.amount_fen, format!("top-up:{}", params.op_id), format!("ecny:top-up:{wallet_id}:{}", params.op_id)) {
        Ok(receipt) => receipt,
        Err(PaymentError::Timeout | PaymentError::Unavailable(_)) => return Err(pending("top-up")),
        Err(e) => {
            kv::delete(&key)?;
            return Err(match e {
                PaymentError::LimitExceeded(_) => balance_limit(limits.balance_limit_fen, balance_before.unwrap_or(0)),
                other => other.into(),
            });
        }
    };
    let response = json!({
        "wallet_id": wallet_id,
        "op_id": params.op_id,
        "amount_fen": receipt.amount_fen,
        "receipt": receipt.id,
        "balance_fen": balance_before.map(|b| b + params.amount_fen),
        "replayed": false,
    });
    finish(&key, &claimed, record, &response)?;
    Response::json(&response)
}

fn balance_limit(limit: u64, balance: u64) -> HandleError {
    HandleError::refused(
        "BALANCE_LIMIT_EXCEEDED",
        format!("the wallet may hold at most {limit} fen and holds {balance} fen; at most {} fen can be topped up", limit.saturating_sub(balance)),
    )
}

pub fn pay(request: &Request) -> Result<Response, HandleError> {
    let params: PayParams = request.params()?;
    let config: Config = request.config()?;
    let card = request.card()?;
    let merchant = config.merchant(&params.merchant)?;
    let (wallet_id, tier) = records::loaded_wallet(&card.holder_ref)?;
    unlocked(card)?;
    let limits = config.tier(&tier)?;
    let now = clock::now();
    let key = op_key(&wallet_id, &params.op_id);
    let daily_key = limits::daily_key(&wallet_id, &now);
    let mut record = OpRecord {
        kind: "pay".into(),
        amount_fen: params.amount_fen,
        merchant: Some(params.merchant.clone()),
        reserved_on: Some(daily_key),
        response: None,
    };

    let claimed = match prior(&key, &record)? {
        Prior::Done(response) => return Response::json(&response),
        Prior::Pending(bytes, known) => {
            // Its amount is reserved on the day it was first sent.
            record.reserved_on = known.reserved_on;
            bytes
        }
        Prior::None => {
            if params.amount_fen > limits.single_payment_limit_fen {
                return Err(HandleError::refused(
                    "SINGLE_LIMIT_EXCEEDED",
                    format!("one payment from this wallet may be at most {} fen", limits.single_payment_limit_fen),
                ));
            }
            let claimed = claim(&key, &record)?;
            if let Err(refusal) = limits::reserve(record.reserved_on.as_deref().unwrap_or_default(), params.amount_fen, &limits, &now) {
                kv::delete(&key)?;
                return Err(refusal);
            }
            claimed
        }
    };
    let reserved_on = record.reserved_on.clone().unwrap_or_default();

    let reference = format!("merchant:{}:{}", params.merchant, params.op_id);
    let receipt = match submit(Kind::Debit, &wallet_id, params.amount_fen, reference, format!("ecny:pay:{wallet_id}:{}", params.op_id)) {
        Ok(receipt) => receipt,
        // Unknown outcome: the reservation stays, so the daily total can only be over-counted.
        Err(PaymentError::Timeout | PaymentError::Unavailable(_)) => return Err(pending("payment")),
        Err(e) => {
            limits::release(&reserved_on, params.amount_fen)?;
            kv::delete(&key)?;
            return Err(e.into());
        }
    };
    let spent = limits::spent(&reserved_on)?;
    let response = json!({
        "wallet_id": wallet_id,
        "op_id": params.op_id,
        "merchant": params.merchant,
        "merchant_name": merchant.name,
        "amount_fen": receipt.amount_fen,
        "receipt": receipt.id,
        "paid_today_fen": spent,
        "daily_remaining_fen": limits.daily_payment_limit_fen.saturating_sub(spent),
        "replayed": false,
    });
    finish(&key, &claimed, record, &response)?;
    Response::json(&response)
}
