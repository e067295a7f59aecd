//! Settling against the medical-insurance system without ever settling twice.
//!
//! The message id is stored with the record (state `sending`) before the settlement message
//! leaves. Then:
//! - answered: the split is checked (parts sum to the total, the total is the one the holder
//!   confirmed), the record becomes `settled`, and the holder's self-pay is debited through the
//!   settlement port with the message id as idempotency key (`paid`);
//! - refused: nothing took effect; the record returns to what it was;
//! - no answer: the settlement is reversed (2601, referencing the message id) — never re-sent. If
//!   the reversal goes through, the record is open again and the reversal is on file; if not, the
//!   record is `uncertain` and `reconcile` tries the reversal again later.
//!
//! A self-pay debit the port refuses (insufficient funds, declined) reverses the insurance
//! settlement too; one that times out leaves the record `settled`, and a retry of the same
//! settlement re-submits the debit under the same key (the port moves money at most once).
//!
//! Only the self-pay goes through `payments`. The fund and personal-account parts are paid by the
//! insurance system to the institution (the personal account is held by the insurance system,
//! not by the card's bank account), so they move no money through the gateway.

use onecard_sdk::payments::{self, Kind, Payment};
use onecard_sdk::{HandleError, PaymentError, Response, log};
use serde_json::{Value, json};

use crate::insurance::{Insurance, Outcome, Split, infno};
use crate::record::{Reversal, Settlement, SettlementState, Settles, Stored};

/// One settlement to run on a record.
#[derive(Debug)]
pub struct Job<'a> {
    pub insurance: &'a Insurance<'a>,
    /// `2207` (outpatient) or `2102` (pharmacy).
    pub infno: &'static str,
    /// The message input, without the message id.
    pub input: Value,
    /// The total the holder confirmed.
    pub expected_total_fen: u64,
    /// What the response names the record by (`mdtrt_id` or `order_id`).
    pub subject: (&'static str, &'a str),
}

/// Run (or continue) the settlement of `record`.
pub fn settle<T: Settles>(record: &mut Stored<T>, job: &Job<'_>) -> Result<Response, HandleError> {
    match record.value.settlement_mut().clone() {
        None => send(record, job),
        Some(s) => match s.state {
            SettlementState::Paid => answer(job, &s, true),
            SettlementState::Settled => collect(record, job),
            SettlementState::Sending => Err(in_progress(&s)),
            SettlementState::Uncertain => Err(uncertain(&s.msgid)),
        },
    }
}

fn send<T: Settles>(record: &mut Stored<T>, job: &Job<'_>) -> Result<Response, HandleError> {
    let msgid = job.insurance.next_msgid()?;
    *record.value.settlement_mut() = Some(Settlement {
        state: SettlementState::Sending,
        msgid: msgid.clone(),
        infno: job.infno.into(),
        started_ms: job.insurance.now().unix_ms,
        setl_id: None,
        split: None,
        receipt: None,
    });
    record.save()?;

    let outcome = match job.insurance.send(job.infno, &msgid, job.input.clone()) {
        Ok(outcome) => outcome,
        Err(e) => {
            // The host refused the request before it left: nothing reached the insurance system.
            *record.value.settlement_mut() = None;
            record.save()?;
            return Err(e);
        }
    };
    match outcome {
        Outcome::Refused(err_msg) => {
            *record.value.settlement_mut() = None;
            record.save()?;
            Err(crate::insurance::refused(&err_msg))
        }
        Outcome::Unknown(why) => {
            let reason = format!("no answer to the settlement: {why}");
            Err(reverse(record, job.insurance, &reason, || {
                HandleError::backend(
                    "SETTLEMENT_REVERSED",
                    format!("the insurance system did not answer ({why}); the settlement was reversed and nothing was charged — settle again"),
                )
            }))
        }
        Outcome::Answered(output) => {
            let split = Split::from_output(&output).filter(|s| s.total_fen == job.expected_total_fen);
            let setl_id = output.get("setl_id").and_then(Value::as_str).map(str::to_owned);
            let (Some(split), Some(setl_id)) = (split, setl_id) else {
                let reason = format!("the settlement answer does not match the confirmed total {} fen: {output}", job.expected_total_fen);
                return Err(reverse(record, job.insurance, &reason, || {
                    HandleError::refused(
                        "AMOUNT_MISMATCH",
                        format!("the insurance system settled an amount other than the confirmed {} fen; the settlement was reversed", job.expected_total_fen),
                    )
                }));
            };
            if let Some(s) = record.value.settlement_mut() {
                s.state = SettlementState::Settled;
                s.setl_id = Some(setl_id);
                s.split = Some(split);
            }
            record.save()?;
            collect(record, job)
        }
    }
}

/// Debit the self-pay of a `settled` record under the message id.
fn collect<T: Settles>(record: &mut Stored<T>, job: &Job<'_>) -> Result<Response, HandleError> {
    let holder = record.value.holder_ref().to_owned();
    let Some(mut s) = record.value.settlement_mut().clone() else {
        return Err(HandleError::Internal("collect without a settlement".into()));
    };
    let (Some(split), Some(setl_id)) = (s.split, s.setl_id.clone()) else {
        return Err(HandleError::Internal("a settled record without its split".into()));
    };
    if split.self_pay_fen > 0 {
        let payment = Payment {
            kind: Kind::Debit,
            account: holder,
            amount_fen: split.self_pay_fen,
            reference: format!("insurance-settlement:{setl_id}"),
            idempotency_key: s.msgid.clone(),
            original_receipt: None,
        };
        match payments::submit(&payment) {
            Ok(receipt) => s.receipt = Some(receipt.id),
            Err(e @ (PaymentError::Timeout | PaymentError::Unavailable(_))) => {
                log::warn(&format!("self-pay of settlement {} not collected: {e:?}", s.msgid));
                return Err(HandleError::backend(
                    "SELF_PAY_PENDING",
                    format!(
                        "the insurance system settled ({setl_id}) but the self-pay of {} fen could not be collected yet; settle again to collect it",
                        split.self_pay_fen
                    ),
                ));
            }
            Err(e) => {
                let refusal = HandleError::from(e);
                let reason = format!("self-pay refused: {}", refusal.message());
                return Err(reverse(record, job.insurance, &reason, || {
                    HandleError::refused(
                        refusal.code(),
                        format!("{}; the insurance settlement was reversed and nothing was charged", refusal.message()),
                    )
                }));
            }
        }
    }
    s.state = SettlementState::Paid;
    *record.value.settlement_mut() = Some(s.clone());
    record.save()?;
    answer(job, &s, false)
}

/// Reverse the record's settlement (2601 referencing its message id). On success the record is
/// open again with the reversal on file and `then()` is the answer; otherwise it is `uncertain`.
pub fn reverse<T: Settles>(record: &mut Stored<T>, insurance: &Insurance<'_>, reason: &str, then: impl FnOnce() -> HandleError) -> HandleError {
    match try_reverse(record, insurance, reason) {
        Ok(()) => then(),
        Err(e) => e,
    }
}

/// The reversal itself: `Ok` when the settlement no longer stands.
pub fn try_reverse<T: Settles>(record: &mut Stored<T>, insurance: &Insurance<'_>, reason: &str) -> Result<(), HandleError> {
    let Some(mut s) = record.value.settlement_mut().clone() else {
        return Err(HandleError::Internal("reverse without a settlement".into()));
    };
    let reversed = insurance.next_msgid().and_then(|reversal_msgid| {
        let input = json!({ "omsgid": s.msgid, "oinfno": s.infno });
        Ok((insurance.send(infno::REVERSAL, &reversal_msgid, input)?, reversal_msgid))
    });
    let why = match reversed {
        Ok((Outcome::Answered(_), reversal_msgid)) => {
            log::warn(&format!("settlement {} reversed by {reversal_msgid}: {reason}", s.msgid));
            *record.value.settlement_mut() = None;
            record.value.reversals_mut().push(Reversal { msgid: s.msgid, reversal_msgid, reason: reason.into() });
            return record.save();
        }
        Ok((Outcome::Refused(why) | Outcome::Unknown(why), _)) => why,
        Err(e) => e.message().to_owned(),
    };
    log::error(&format!("settlement {} could not be reversed ({why}); it needs reconciliation", s.msgid));
    s.state = SettlementState::Uncertain;
    let msgid = s.msgid.clone();
    *record.value.settlement_mut() = Some(s);
    record.save()?;
    Err(uncertain(&msgid))
}

pub fn uncertain(msgid: &str) -> HandleError {
    HandleError::backend(
        "SETTLEMENT_UNCERTAIN",
        format!("settlement {msgid} got no answer and could not be reversed yet; nothing was charged to the holder — run reconcile"),
    )
}

pub fn in_progress(s: &Settlement) -> HandleError {
    HandleError::refused(
        "SETTLEMENT_IN_PROGRESS",
        format!("settlement {} is being sent; wait for it, or run reconcile if it never finishes", s.msgid),
    )
}

fn answer(job: &Job<'_>, s: &Settlement, replayed: bool) -> Result<Response, HandleError> {
    let split = s.split.ok_or_else(|| HandleError::Internal("a paid settlement without its split".into()))?;
    Response::json(&json!({
        job.subject.0: job.subject.1,
        "msgid": s.msgid,
        "setl_id": s.setl_id,
        "total_fen": split.total_fen,
        "fund_fen": split.fund_fen,
        "personal_account_fen": split.personal_account_fen,
        "self_pay_fen": split.self_pay_fen,
        "self_pay_receipt": s.receipt,
        "replayed": replayed,
    }))
}
